// Sending the PROXY protocol to a server (HAProxy `send-proxy` / `send-proxy-v2`):
// each connection starts with a header naming the client, before TLS.
//
// A header is per connection, and undici's pools share keep-alive
// connections among every request to a server: the first client's address
// would be claimed for everyone after it. So a server that takes the header
// gets one small pool per client connection (keyed by its two endpoints),
// as HAProxy uses a server connection per client connection: keep-alive
// still serves one client's requests, never another's. The cost is one
// upstream connection (and handshake) per client connection.
import type { Socket } from 'node:net'
import { buildConnector, Dispatcher } from 'undici'
import { encodeProxyHeader, type ClientEndpoints } from '../listener/proxy-protocol.js'
import type { SendProxyProtocol, UpstreamProtocol } from '../config/schema.js'
import { guardedConnector, plainConnector } from './connector.js'
import { tlsConnector, type UpstreamTls } from './tls.js'

/** What PerClientPool reads of a pool: undici's Pool.stats (and H1Pool's). */
export interface PoolStats {
  readonly stats: { readonly connected: number, readonly size: number }
}

/** undici dispatch options carrying the client a request is for (ForwardHandler sets it for such servers). */
export interface ProxiedDispatch {
  readonly client?: ClientEndpoints | undefined
}

export const VERSION: Readonly<Record<SendProxyProtocol, 1 | 2>> = Object.freeze({ v1: 1, v2: 2 })

/**
 * A server's connector (`tls` given exactly for https://), whose connections
 * first write `header` when one is given: on the TCP connection, before the
 * TLS handshake. `guards`: undici's HTTP/1.1 client will use them (connector.ts).
 */
export function serverConnector (url: string, timeout: number, tls: UpstreamTls | undefined, header?: Buffer,
  protocol: UpstreamProtocol = 'http1', guards = true): buildConnector.connector {
  const h2c = protocol === 'h2c'
  if (header === undefined) {
    return tls === undefined ? plainConnector(timeout, h2c, guards) : tlsConnector(tls, url, timeout, protocol === 'h2', guards)
  }
  // undici 7's types lack `useH2c`, which its connector reads (see plainConnector).
  const tcpOptions = h2c ? { timeout, useH2c: true } as buildConnector.BuildOptions : { timeout }
  if (tls === undefined) return guardedConnector(buildConnector(tcpOptions), (socket: Socket) => { socket.write(header) }, guards)
  const tcp = buildConnector({ timeout })
  const secure = tlsConnector(tls, url, timeout, protocol === 'h2', guards)
  return (opts, callback) => {
    tcp({ ...opts, protocol: 'http:', port: opts.port === '' ? '443' : opts.port }, (err, socket) => {
      if (err != null || socket == null) {
        callback(err ?? new Error('connect failed'), null)
        return
      }
      socket.write(header)
      // undici's TLS connector takes an established socket as `httpSocket`.
      secure({ ...opts, httpSocket: socket } as buildConnector.Options, callback)
    })
  }
}

/**
 * One Pool per client connection, made on its first request and dropped once
 * it has no connection and nothing to send (its keep-alive ran out, or the
 * connect failed). Keyed by the endpoints object itself, which the listener
 * makes once per client connection (listener/proxy-accept.ts): no key is
 * built per request. Requests without a client (the socket already gone)
 * share a pool whose header speaks for the proxy itself.
 */
export class PerClientPool extends Dispatcher {
  readonly #pools = new Map<ClientEndpoints | undefined, Dispatcher & PoolStats>()
  readonly #make: (header: Buffer) => Dispatcher & PoolStats
  readonly #version: 1 | 2
  /** Its pools pause any response body (ours for HTTP/1.1, see pool.ts pausesAnyBody). */
  readonly pausesAnyBody: boolean

  constructor (version: 1 | 2, make: (header: Buffer) => Dispatcher & PoolStats, pausesAnyBody = false) {
    super()
    this.#version = version
    this.#make = make
    this.pausesAnyBody = pausesAnyBody
  }

  /** Pools open now (one per client connection with requests or idle connections): for tests and status. */
  get size (): number { return this.#pools.size }

  override dispatch (opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    const client = (opts as ProxiedDispatch).client
    let pool = this.#pools.get(client)
    if (pool === undefined) {
      pool = this.#make(encodeProxyHeader(this.#version, client))
      this.#pools.set(client, pool)
      const p = pool
      const idle = (): void => { setImmediate(() => this.#dropIfIdle(client, p)) }
      p.on('disconnect', idle)
      p.on('connectionError', idle)
    }
    return pool.dispatch(opts, handler)
  }

  #dropIfIdle (key: ClientEndpoints | undefined, pool: Dispatcher & PoolStats): void {
    if (this.#pools.get(key) !== pool) return
    const s = pool.stats
    if (s.connected !== 0 || s.size !== 0) return
    this.#pools.delete(key)
    void pool.close()
  }

  override close (): Promise<void>
  override close (callback: () => void): void
  override close (callback?: () => void): Promise<void> | void {
    const pools = [...this.#pools.values()]
    this.#pools.clear()
    const done = Promise.all(pools.map((p) => p.close())).then(() => {})
    if (callback === undefined) return done
    void done.then(callback)
  }

  override destroy (): Promise<void>
  override destroy (err: Error | null): Promise<void>
  override destroy (callback: () => void): void
  override destroy (err: Error | null, callback: () => void): void
  override destroy (a?: Error | null | (() => void), b?: () => void): Promise<void> | void {
    const err = typeof a === 'function' ? null : a ?? null
    const callback = typeof a === 'function' ? a : b
    const pools = [...this.#pools.values()]
    this.#pools.clear()
    const done = Promise.all(pools.map((p) => p.destroy(err))).then(() => {})
    if (callback === undefined) return done
    void done.then(callback)
  }
}
