// Minimal typing for the parts of autocannon used by bench/failover.ts,
// test/e2e/lifecycle.test.ts, test/e2e/cluster.test.ts and test/e2e/access-log.test.ts.
declare module 'autocannon' {
  namespace autocannon {
    interface Result { requests: { total: number }; errors: number; non2xx: number }
    interface Instance {
      on (event: 'response', fn: (client: unknown, status: number) => void): void
      on (event: 'reqError', fn: (err: Error & { code?: string }) => void): void
      stop (): void
    }
  }
  /** `duration` (s) or `amount` (requests) bounds the run; `timeout` (s) per request. */
  function autocannon (opts: { url: string; connections: number; duration?: number; amount?: number; timeout?: number; headers?: Record<string, string> },
    cb: (err: Error | null, res: autocannon.Result) => void): autocannon.Instance
  export default autocannon
}
