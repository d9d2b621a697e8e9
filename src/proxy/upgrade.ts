// HTTP/1.1 Upgrade (WebSocket) through the proxy: route and pick like any
// request, ask the server to upgrade, then splice the two sockets. A server
// that declines gets its plain answer relayed, and the connection closed.
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
import type { CompiledRoute } from './routes.js'
import { hostOf, type ConnectionInfo, type DownstreamRequest } from './session.js'

export function proxyUpgrade (req: DownstreamRequest, socket: Socket, head: Buffer, conn: ConnectionInfo,
  state: RuntimeState): void {
  socket.on('error', () => socket.destroy())
  // h1 CONNECT arrives here too (the listener's 'connect' event): not a tunnel we open.
  if (req.method === 'CONNECT') return rawError(socket, Errors.METHOD_NOT_ALLOWED)
  const authority = rawHeader(req.rawHeaders, 'host')
  const target = req.url ?? '/'
  if (authority === undefined || target.charCodeAt(0) !== 47) return rawError(socket, Errors.BAD_REQUEST)
  const q = target.indexOf('?')
  const method = req.method ?? 'GET'
  const input = {
    host: hostOf(authority),
    path: q === -1 ? target : target.slice(0, q),
    method,
    header: (name: string) => rawHeader(req.rawHeaders, name)
  }
  const route = state.router.match(input)
  if (route === undefined) return rawError(socket, Errors.NO_ROUTE)
  const backend = route.backend
  const by = backend.selector.shardBy
  let key: string | undefined
  if (by !== undefined) {
    key = shardKey(by, { target, header: input.header })
    if (key === undefined && by.missing === 'reject') return rawError(socket, Errors.SHARD_KEY_MISSING)
  }
  const shard = backend.selector.select(key)
  const server = shard.balancer.pick({ clientAddress: conn.clientAddress, now: performance.now(), tried: NONE_TRIED,
    panic: shard.panic(), stickyId: undefined })
  if (server === undefined) return rawError(socket, Errors.NO_HEALTHY_SERVER)
  const upHead = upstreamRequestHead(req.rawHeaders, authority,
    backend.config.passHostHeader ? authority : server.hostHeader, conn, route.requestPolicy)
  if ('code' in upHead) return rawError(socket, upHead)

  const handler = new UpgradeHandler(socket, head, server, route, state.config.forwarding.via ? state.viaH1 : undefined)
  server.active++
  server.requests++
  server.dispatcher.dispatch({
    path: route.stripPrefix === undefined && route.addPrefix === undefined
      ? target
      : rewritePath(target, route.stripPrefix, route.addPrefix),
    method: method as Dispatcher.HttpMethod,
    headers: upHead.headers,
    upgrade: rawHeader(req.rawHeaders, 'upgrade') ?? 'websocket'
  }, handler)
}

class UpgradeHandler implements Dispatcher.DispatchHandler {
  readonly #client: Socket
  readonly #head: Buffer
  readonly #server: Server
  readonly #route: CompiledRoute
  readonly #via: string | undefined
  #abort: ((err?: Error) => void) | null = null
  #done = false

  constructor (client: Socket, head: Buffer, server: Server, route: CompiledRoute, via: string | undefined) {
    this.#client = client
    this.#head = head
    this.#server = server
    this.#route = route
    this.#via = via
    client.once('close', () => { if (!this.#done) this.#abort?.(new Error('client aborted')) })
  }

  onConnect (abort: (err?: Error) => void): void { this.#abort = abort }

  onUpgrade (statusCode: number, rawHeaders: Buffer[] | string[] | null, upstream: Duplex): void {
    this.#end()
    const client = this.#client
    if (client.destroyed) {
      upstream.destroy()
      return
    }
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
    this.#end()
    this.#client.end()
  }

  onError (err: Error): void {
    if (this.#done) return
    this.#end()
    const kind = upstreamErrorKind(err)
    if (kind !== Errors.CLIENT_ABORTED) this.#server.failures++
    rawError(this.#client, kind)
  }

  #end (): void {
    if (this.#done) return
    this.#done = true
    this.#server.active--
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
