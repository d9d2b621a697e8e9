// Minimal typing for the parts of autocannon the failover bench uses.
declare module 'autocannon' {
  namespace autocannon {
    interface Result { requests: { total: number }; errors: number }
    interface Instance { on (event: 'response', fn: (client: unknown, status: number) => void): void }
  }
  function autocannon (opts: { url: string; connections: number; duration: number },
    cb: (err: Error | null, res: autocannon.Result) => void): autocannon.Instance
  export default autocannon
}
