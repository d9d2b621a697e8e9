// HTTP/1.1 Upgrade (WebSocket) through the proxy: route and pick like any
// request, ask the server to upgrade, then splice the two sockets. A server
// that declines gets its plain answer relayed, and the connection closed.
// Only `websocket` is ever tunnelled (the listener answers any other Upgrade,
// such as h2c, as an ordinary request). An open tunnel holds its server slot
// (maxConn) and a slot of the listener's maxTunnels until it closes, and is
// closed after timeouts.tunnel without traffic either way.
import type { Duplex } from 'node:stream'
import type { Socket } from 'node:net'
import type { Dispatcher } from 'undici'
import { NONE_TRIED } from '../balancer/balancer.js'
import { Errors, type ErrorKind } from '../errors.js'
import { rewritePath } from '../router/router.js'
import { upstreamErrorKind } from '../upstream/pool.js'
import type { Server } from '../upstream/server.js'
import { shardKey } from '../upstream/shard.js'
import { downstreamResponseHeaders, rawHeader, upstreamRequestHead } from './headers.js'
import type { RuntimeState } from './pipeline.js'
import { parseRequestTarget } from './request-target.js'
import type { CompiledRoute } from './routes.js'
import type { ConnectionInfo, DownstreamRequest, ListenerContext, TunnelCount } from './session.js'

/** An HTTP/1.1 request asking to become a WebSocket (RFC 6455 §4.1: a GET with `Upgrade: websocket`). */
export function isWebSocketUpgrade (req: DownstreamRequest): boolean {
  if (req.method !== 'GET') return false
  const upgrade = rawHeader(req.rawHeaders, 'upgrade')
  return upgrade !== undefined && /(?:^|,)\s*websocket\s*(?:,|$)/i.test(upgrade)
}

export function proxyUpgrade (req: DownstreamRequest, socket: Socket, head: Buffer, conn: ConnectionInfo,
  state: RuntimeState, listener: ListenerContext): void {
  socket.on('error', () => socket.destroy())
  const method = req.method ?? 'GET'
  const t = parseRequestTarget(method, req.url ?? '', req.rawHeaders, undefined, state.config.pathNormalization)
  if ('error' in t) return rawError(socket, t.error)
  if (listener.misdirected?.(conn.servername, t.authority.host) === true) return rawError(socket, Errors.MISDIRECTED)
  const header = (name: string): string | undefined => rawHeader(req.rawHeaders, name)
  const route = state.router.match({ host: t.authority.host, path: t.path, method, header })
  if (route === undefined) return rawError(socket, Errors.NO_ROUTE)
  const tunnels = listener.tunnels
  if (tunnels !== undefined && tunnels.open >= tunnels.max) return rawError(socket, Errors.TOO_MANY_TUNNELS)
  const backend = route.backend
  const by = backend.selector.shardBy
  let key: string | undefined
  if (by !== undefined) {
    key = shardKey(by, { target: t.target, header })
    if (key === undefined && by.missing === 'reject') return rawError(socket, Errors.SHARD_KEY_MISSING)
  }
  const shard = backend.selector.select(key)
  const server = shard.balancer.pick({ clientAddress: conn.clientAddress, now: performance.now(), tried: NONE_TRIED,
    panic: shard.panic(), stickyId: undefined })
  if (server === undefined) return rawError(socket, Errors.NO_HEALTHY_SERVER)
  const upHead = upstreamRequestHead(req.rawHeaders, t.authority,
    backend.config.passHostHeader ? t.authority.value : server.hostHeader, conn, route.requestPolicy)
  if ('code' in upHead) return rawError(socket, upHead)

  const handler = new UpgradeHandler(socket, head, server, route, state.config.forwarding.via ? state.viaH1 : undefined,
    state.config.timeouts.tunnel, tunnels)
  server.dispatcher.dispatch({
    path: route.stripPrefix === undefined && route.addPrefix === undefined
      ? t.target
      : rewritePath(t.target, route.stripPrefix, route.addPrefix),
    method: method as Dispatcher.HttpMethod,
    headers: upHead.headers,
    // Only the protocol we tunnel: never let another token (h2c…) through.
    upgrade: 'websocket'
  }, handler)
}

class UpgradeHandler implements Dispatcher.DispatchHandler {
  readonly #client: Socket
  readonly #head: Buffer
  readonly #server: Server
  readonly #route: CompiledRoute
  readonly #via: string | undefined
  readonly #idleMs: number
  readonly #tunnels: TunnelCount | undefined
  #abort: ((err?: Error) => void) | null = null
  /** The exchange before the tunnel is over (declined, failed, or upgraded). */
  #done = false
  /** The server slot and the listener's tunnel slot are held until released once. */
  #held = true

  constructor (client: Socket, head: Buffer, server: Server, route: CompiledRoute, via: string | undefined,
    idleMs: number, tunnels: TunnelCount | undefined) {
    this.#client = client
    this.#head = head
    this.#server = server
    this.#route = route
    this.#via = via
    this.#idleMs = idleMs
    this.#tunnels = tunnels
    server.active++
    server.requests++
    if (tunnels !== undefined) tunnels.open++
    client.once('close', () => {
      if (!this.#done) this.#abort?.(new Error('client aborted'))
      this.#release()
    })
  }

  onConnect (abort: (err?: Error) => void): void { this.#abort = abort }

  onUpgrade (statusCode: number, rawHeaders: Buffer[] | string[] | null, upstream: Duplex): void {
    this.#done = true
    const client = this.#client
    if (client.destroyed) {
      upstream.destroy()
      return
    }
    // timeouts.tunnel: the client socket sees every byte either way (it reads
    // one direction and writes the other), so its idle timer is the tunnel's.
    client.setTimeout(this.#idleMs, () => { client.destroy(); upstream.destroy() })
    // A 101's Connection/Upgrade fields are the point of it: keep them.
    let lines = `HTTP/1.1 ${statusCode} Switching Protocols\r\n`
    const raw = (rawHeaders ?? []) as Buffer[]
    for (let i = 0; i < raw.length; i += 2) lines += `${raw[i]!.toString('latin1')}: ${raw[i + 1]!.toString('latin1')}\r\n`
    client.write(`${lines}\r\n`)
    if (this.#head.length > 0) upstream.write(this.#head)
    upstream.on('error', () => client.destroy())
    client.on('error', () => upstream.destroy())
    upstream.on('close', () => client.destroy())
    client.on('close', () => upstream.destroy())
    upstream.pipe(client)
    client.pipe(upstream)
  }

  // The server declined the upgrade: relay its answer, then close.
  onHeaders (statusCode: number, rawHeaders: Buffer[], _resume: () => void, statusText: string): boolean {
    if (statusCode < 200) return true
    const headers = downstreamResponseHeaders(rawHeaders, this.#via, this.#route.responseOps)
    if (typeof headers === 'string' || statusCode > 599) {
      this.onError(Object.assign(new Error(`malformed response head: ${headers}`), { code: Errors.UPSTREAM_BAD_RESPONSE.code }))
      this.#abort?.(new Error('malformed response head'))
      return false
    }
    let lines = `HTTP/1.1 ${statusCode} ${statusText}\r\n`
    for (let i = 0; i < headers.length; i += 2) {
      if (headers[i]!.toLowerCase() === 'content-length') continue
      lines += `${headers[i]!}: ${headers[i + 1]!}\r\n`
    }
    this.#client.write(`${lines}connection: close\r\n\r\n`)
    return true
  }

  onData (chunk: Buffer): boolean { return this.#client.write(chunk) }

  onComplete (): void {
    this.#done = true
    this.#release()
    this.#client.end()
  }

  onError (err: Error): void {
    if (this.#done) return
    this.#done = true
    this.#release()
    const kind = upstreamErrorKind(err)
    if (kind.source === 'upstream') this.#server.failures++
    rawError(this.#client, kind)
  }

  #release (): void {
    if (!this.#held) return
    this.#held = false
    this.#server.active--
    if (this.#tunnels !== undefined) this.#tunnels.open--
  }
}

/** An error answer written straight to an h1 socket (no ServerResponse on upgrades). */
function rawError (socket: Socket, kind: ErrorKind): void {
  if (socket.destroyed) return
  const body = `${kind.status} ${kind.message} (${kind.code})\n`
  socket.end(`HTTP/1.1 ${kind.status} ${kind.code}\r\ncontent-type: text/plain; charset=utf-8\r\n` +
    `content-length: ${Buffer.byteLength(body)}\r\nx-switchyard-error: ${kind.code}\r\n` +
    `${kind.status === 503 ? 'retry-after: 1\r\n' : ''}connection: close\r\n\r\n${body}`)
}
