// HTTP/1.1 Upgrade (WebSocket) through the proxy. A Tunnel is planned,
// picked, queued at maxConn and timed out in the queue like any request (the
// pipeline does all of that); once picked, it asks the server to upgrade and
// splices the two sockets. A server that declines gets its plain answer
// relayed, and the connection closed. Only `websocket` is ever tunnelled (the
// listener answers any other Upgrade, such as h2c, as an ordinary request).
// An open tunnel holds its server slot (maxConn) and a slot of the listener's
// maxTunnels until it closes, and is closed after timeouts.tunnel without
// traffic either way.
import type { IncomingMessage } from 'node:http'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import type { Dispatcher } from 'undici'
import { NONE_TRIED } from '../balancer/balancer.js'
import { Errors, type ErrorKind } from '../errors.js'
import { upstreamErrorKind, type ResponseShaper } from '../upstream/pool.js'
import type { Waiter } from '../upstream/queue.js'
import type { Server } from '../upstream/server.js'
import type { Shard } from '../upstream/shard.js'
import { requestField } from '../fields.js'
import { upstreamRequest, type Plan, type PlanRequest } from './plan.js'
import type { ConnectionInfo, ListenerContext } from './session.js'
import type { RuntimeState } from './state.js'
import { trustedClientAddress } from './trust.js'

/** An HTTP/1.1 request asking to become a WebSocket (RFC 6455 §4.1: a GET with `Upgrade: websocket`). */
export function isWebSocketUpgrade (req: IncomingMessage): boolean {
  if (req.method !== 'GET') return false
  const upgrade = requestField(req.rawHeaders, 'upgrade')
  return upgrade !== undefined && /(?:^|,)\s*websocket\s*(?:,|$)/i.test(upgrade)
}

/** What a tunnel needs of the pipeline: waking the queue when its server slot frees. */
export interface TunnelDriver {
  drain (shard: Shard): void
}

/** One WebSocket upgrade: a request to plan and pick for, then the tunnel itself. */
export class Tunnel implements PlanRequest, Waiter {
  readonly method: string
  readonly url: string
  readonly rawHeaders: readonly string[]
  readonly h2Authority = undefined
  readonly conn: ConnectionInfo
  readonly misdirected: ListenerContext['misdirected']
  readonly startTime = performance.now()
  readonly #socket: Socket
  /** What the client sent after its request head, until the tunnel opens (see #onEarly). */
  readonly #early: Buffer[]
  #earlyBytes: number
  readonly #listener: ListenerContext
  readonly #state: RuntimeState
  readonly #driver: TunnelDriver
  #plan: Plan | undefined
  /** Holds one of the listener's maxTunnels from adopt() until the client socket closes. */
  #slot = false
  // Waiter (see upstream/queue.ts)
  queued = false
  queueTimer: NodeJS.Timeout | undefined
  panic = false
  readonly tried = NONE_TRIED
  stickyId: string | undefined
  readonly clientAddress: string

  constructor (req: IncomingMessage, socket: Socket, head: Buffer, conn: ConnectionInfo, listener: ListenerContext,
    state: RuntimeState, driver: TunnelDriver) {
    this.method = req.method ?? 'GET'
    this.url = req.url ?? ''
    this.rawHeaders = req.rawHeaders
    this.conn = conn
    this.misdirected = listener.misdirected
    this.#socket = socket
    this.#early = head.length > 0 ? [head] : []
    this.#earlyBytes = head.length
    this.#listener = listener
    this.#state = state
    this.#driver = driver
    this.clientAddress = conn.trusted
      ? trustedClientAddress(requestField(req.rawHeaders, 'x-forwarded-for'), conn.clientAddress, state.trustedProxies)
      : conn.clientAddress
    socket.on('error', () => socket.destroy())
    // Node hands the socket over paused: unread, a client that leaves (FIN)
    // would go unnoticed until the tunnel opened, holding its queue place and
    // its wait for the server. Read it until then.
    socket.on('data', this.#onEarly)
    socket.on('end', this.#onEnd)
    // A client that leaves while queued frees its place at once, as a session does.
    socket.once('close', () => {
      if (!this.queued) return
      this.#plan?.shard.queue.remove(this)
      clearTimeout(this.queueTimer)
    })
  }

  /**
   * Bytes before the 101 (a WebSocket client may not send any, RFC 6455 §4.1,
   * but a request may carry a body): kept for the server. Past a bound the
   * socket is paused again, as Node left it, and the rest waits in it.
   */
  readonly #onEarly = (chunk: Buffer): void => {
    this.#early.push(chunk)
    this.#earlyBytes += chunk.length
    if (this.#earlyBytes >= MAX_EARLY_BYTES) this.#socket.pause()
  }

  /** The client closed its side before the tunnel opened: it has given up. */
  readonly #onEnd = (): void => { this.#socket.destroy() }

  /** The tunnel opens: stop reading here (the splice reads from now on) and take what came early. */
  #takeEarly = (): Buffer => {
    this.#socket.off('data', this.#onEarly)
    this.#socket.off('end', this.#onEnd)
    return this.#early.length === 1 ? this.#early[0]! : Buffer.concat(this.#early)
  }

  get now (): number { return this.startTime }
  get closed (): boolean { return this.#socket.destroyed }
  get shard (): Shard | undefined { return this.#plan?.shard }

  /** Take the plan, and a slot of the listener's maxTunnels; false (answered 503) when there is none. */
  adopt (p: Plan): boolean {
    const tunnels = this.#listener.tunnels
    if (tunnels !== undefined) {
      if (tunnels.open >= tunnels.max) {
        this.fail(Errors.TOO_MANY_TUNNELS)
        return false
      }
      tunnels.open++
      this.#slot = true
      this.#socket.once('close', () => {
        if (this.#slot) tunnels.open--
        this.#slot = false
      })
    }
    this.#plan = p
    this.stickyId = p.stickyId
    return true
  }

  /** Waiter: ask `server` to upgrade. */
  send (server: Server): void {
    const p = this.#plan!
    const handler = new UpgradeHandler(this.#socket, this.#takeEarly, server, p.route.shapeResponse, this.#state.config.timeouts.tunnel,
      p.backend.config.timeouts.headers, () => { if (p.shard.queue.size > 0) this.#driver.drain(p.shard) })
    server.dispatcher.dispatch({
      ...upstreamRequest(p, server),
      method: p.method as Dispatcher.HttpMethod,
      // Only the protocol we tunnel: never let another token (h2c…) through.
      upgrade: 'websocket'
    }, handler)
  }

  /** Waiter: answer with one of our errors (and `fields`, flat: a refusal's rate-limit fields). */
  fail (kind: ErrorKind, fields: readonly string[] = []): void {
    rawError(this.#socket, kind, fields)
  }
}

/** Bytes read from a client before its tunnel opens; more wait unread. */
const MAX_EARLY_BYTES = 16 * 1024

class UpgradeHandler implements Dispatcher.DispatchHandler {
  readonly #client: Socket
  /** What the client sent after its request head, taken when the tunnel opens. */
  readonly #head: () => Buffer
  readonly #server: Server
  readonly #shape: ResponseShaper
  readonly #idleMs: number
  /** The server's response-head timeout, and when the first 1xx came (0: none yet; see onHeaders). */
  readonly #headersMs: number
  #interimSince = 0
  readonly #released: () => void
  #abort: ((err?: Error) => void) | null = null
  /** The exchange before the tunnel is over (declined, failed, or upgraded). */
  #done = false
  /** The server slot is held until released once (the tunnel closes). */
  #held = true

  constructor (client: Socket, head: () => Buffer, server: Server, shape: ResponseShaper, idleMs: number, headersMs: number,
    released: () => void) {
    this.#client = client
    this.#head = head
    this.#server = server
    this.#shape = shape
    this.#idleMs = idleMs
    this.#headersMs = headersMs
    this.#released = released
    server.active++
    server.requests++
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
    const head = this.#head()
    if (head.length > 0) upstream.write(head)
    upstream.on('error', () => client.destroy())
    client.on('error', () => upstream.destroy())
    upstream.on('close', () => client.destroy())
    client.on('close', () => upstream.destroy())
    upstream.pipe(client)
    client.pipe(upstream)
  }

  // The server declined the upgrade: relay its answer, then close.
  onHeaders (statusCode: number, rawHeaders: Buffer[], _resume: () => void, statusText: string): boolean {
    if (statusCode < 200) {
      // undici restarts its headers timeout on every 1xx: without end, they would hold the upgrade forever.
      const now = performance.now()
      if (this.#interimSince === 0) this.#interimSince = now
      if (this.#headersMs === 0 || now - this.#interimSince <= this.#headersMs) return true
      this.onError(Object.assign(new Error('interim responses only, for more than the headers timeout'), { code: 'UND_ERR_HEADERS_TIMEOUT' }))
      this.#abort?.(new Error('headers timeout'))
      return false
    }
    const headers = statusCode > 599 ? `status ${statusCode}` : this.#shape(statusCode, rawHeaders)
    if (typeof headers === 'string') {
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
    this.#released()
  }
}

/** An error answer written straight to an h1 socket (no ServerResponse on upgrades). */
function rawError (socket: Socket, kind: ErrorKind, fields: readonly string[] = []): void {
  if (socket.destroyed) return
  const body = `${kind.status} ${kind.message} (${kind.code})\n`
  let extra = kind.status === 503 ? 'retry-after: 1\r\n' : ''
  for (let i = 0; i < fields.length; i += 2) extra += `${fields[i]!}: ${fields[i + 1]!}\r\n`
  socket.end(`HTTP/1.1 ${kind.status} ${kind.code}\r\ncontent-type: text/plain; charset=utf-8\r\n` +
    `content-length: ${Buffer.byteLength(body)}\r\nx-switchyard-error: ${kind.code}\r\n` +
    `${extra}connection: close\r\n\r\n${body}`)
}
