// A TCP relay on loopback between a proxy and a real redis-server, for the
// network faults a test needs: delay what goes one way, hold what a
// connection sends from a given command on (until released), silently drop
// everything on the connections open now (half-open: new ones still work),
// cut them, refuse new ones for a while, or send new ones elsewhere. Closed
// on teardown.
import net from 'node:net'
import type { Teardown } from './certs.js'

export interface TcpRelay {
  readonly port: number
  /** Where new connections go. */
  target: number
  /** Delay (ms) of bytes towards the target, and back. */
  up: number
  down: number
  /** New connections are closed at once while set. */
  refuse: boolean
  /** Connections accepted so far. */
  readonly accepted: number
  /** Drop every byte of the connections open now, both ways, without closing them. */
  blackholeOpen (): void
  /** Close the connections open now. */
  cut (): void
  /**
   * From the first chunk towards the target that `pattern` matches (its
   * bytes read as latin1), hold everything that connection sends that way
   * until release(): Redis runs none of it, and the client waits for every
   * answer from there on.
   */
  holdFrom (pattern: RegExp): void
  /** The chunks held now, in order. */
  readonly held: readonly Buffer[]
  /** Send what was held, in order, and hold nothing more. */
  release (): void
}

export async function startTcpRelay (t: Teardown, target: number): Promise<TcpRelay> {
  const sockets = new Set<net.Socket>()
  const dead = new WeakSet<net.Socket>()
  let accepted = 0
  // The connection whose bytes are held, once one matched; what it held; what lets them go.
  let hold: { pattern: RegExp, from: net.Socket | undefined, chunks: Buffer[], open: Promise<void>, release: () => void } | undefined
  const relay: Omit<TcpRelay, 'port'> & { port: number } = {
    port: 0,
    target,
    up: 0,
    down: 0,
    refuse: false,
    get accepted () { return accepted },
    blackholeOpen () { for (const s of sockets) dead.add(s) },
    cut () { for (const s of sockets) s.destroy() },
    holdFrom (pattern) {
      let release!: () => void
      const open = new Promise<void>((resolve) => { release = resolve })
      hold = { pattern, from: undefined, chunks: [], open, release }
    },
    get held () { return hold?.chunks ?? [] },
    release () {
      hold?.release()
      hold = undefined
    }
  }
  /** What a chunk from `from` towards the target waits for: undefined when it is not held. */
  const held = (from: net.Socket, d: Buffer): Promise<void> | undefined => {
    if (hold === undefined) return undefined
    if (hold.from === undefined && hold.pattern.test(d.toString('latin1'))) hold.from = from
    if (hold.from !== from) return undefined
    hold.chunks.push(d)
    return hold.open
  }
  const pipe = (from: net.Socket, to: net.Socket, delay: () => number, towardsTarget: boolean): void => {
    let chain = Promise.resolve()
    from.on('data', (d: Buffer) => {
      if (dead.has(from)) return
      const ms = delay()
      const wait = towardsTarget ? held(from, d) : undefined
      // In order, each chunk after its delay (and after the hold, when held).
      chain = chain.then(() => wait).then(() => ms > 0 ? new Promise((resolve) => setTimeout(resolve, ms)) : undefined).then(() => {
        if (!to.destroyed && !dead.has(to)) to.write(d)
      })
    })
  }
  const server = net.createServer((client) => {
    accepted++
    if (relay.refuse) {
      client.destroy()
      return
    }
    const upstream = net.connect(relay.target, '127.0.0.1')
    sockets.add(client)
    sockets.add(upstream)
    pipe(client, upstream, () => relay.up, true)
    pipe(upstream, client, () => relay.down, false)
    const end = (): void => {
      sockets.delete(client)
      sockets.delete(upstream)
      client.destroy()
      upstream.destroy()
    }
    client.on('close', end)
    upstream.on('close', end)
    client.on('error', end)
    upstream.on('error', end)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  relay.port = (server.address() as net.AddressInfo).port
  t.teardown(async () => {
    relay.cut()
    await new Promise((resolve) => server.close(resolve))
  })
  return relay
}
