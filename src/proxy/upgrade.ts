// WebSocket through the proxy: an HTTP/1.1 Upgrade, or an HTTP/2 extended
// CONNECT with `:protocol: websocket` (RFC 8441), which becomes an HTTP/1.1
// Upgrade to the backend. A Tunnel is planned (as the GET it stands for),
// picked, queued at maxConn and timed out in the queue like any request (the
// pipeline does all of that); once picked, it asks the server to upgrade and
// splices the client's end (its socket, or its h2 stream) to the server's
// socket. A server that declines gets its plain answer relayed, and the
// client's end closed. Only `websocket` is ever tunnelled (the listener
// answers any other Upgrade, such as h2c, as an ordinary request).
// An open tunnel holds its server slot (maxConn) and a slot of the listener's
// maxTunnels until it closes, and is closed after timeouts.tunnel without
// traffic either way. A tunnel is one request to metrics and the access log
// (HAProxy logs a WebSocket once, at its end): recorded when it is refused or
// fails, or, once open, when it closes, with the bytes each way.
import { createHash, randomBytes } from 'node:crypto'
import { STATUS_CODES, type IncomingMessage } from 'node:http'
import type { IncomingHttpHeaders, OutgoingHttpHeaders, ServerHttp2Stream } from 'node:http2'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import type { Dispatcher } from 'undici'
import { NONE_TRIED } from '../balancer/balancer.js'
import type { CacheOutcome } from '../cache/outcome.js'
import { Errors, type ErrorKind } from '../errors.js'
import type { Backend } from '../upstream/backend.js'
import { upstreamErrorKind, type ResponseShaper } from '../upstream/pool.js'
import type { Waiter } from '../upstream/queue.js'
import type { Server } from '../upstream/server.js'
import type { Shard } from '../upstream/shard.js'
import { firstValue, hasToken, isName, rawFields, requestField, withoutField, type RawFields } from '../fields.js'
import type { RequestTrace } from '../tracing/context.js'
import { upstreamRequest, type Plan, type PlanRequest, type Redirection, type Refusal } from './plan.js'
import type { CompiledRoute } from './routes.js'
import { h2Head, type ConnectionInfo, type Exchange, type ListenerContext } from './session.js'
import type { RuntimeState } from './state.js'
import { trustedClientAddress } from './trust.js'
import { REDIRECT_TEXT } from './redirect.js'

/** An HTTP/1.1 request asking to become a WebSocket (RFC 6455 §4.1: a GET with `Upgrade: websocket`). */
export function isWebSocketUpgrade (req: IncomingMessage): boolean {
  // RFC 9110 §7.8: a server MUST ignore Upgrade in an HTTP/1.0 request (an
  // HTTP/1.0 proxy before us forwards it without knowing it is hop-by-hop).
  if (req.method !== 'GET' || req.httpVersionMajor !== 1 || req.httpVersionMinor === 0) return false
  const upgrade = requestField(req.rawHeaders, 'upgrade')
  return upgrade !== undefined && /(?:^|,)\s*websocket\s*(?:,|$)/i.test(upgrade)
}

/** What a tunnel needs of the pipeline: waking the queue when its server slot frees. */
export interface TunnelDriver {
  drain (shard: Shard): void
}

/**
 * The client's side of a tunnel: an HTTP/1.1 socket after Upgrade, or an
 * HTTP/2 stream after an extended CONNECT. Everything the tunnel writes to
 * the client goes through one of these.
 */
interface ClientEnd {
  readonly closed: boolean
  onClose (fn: () => void): void
  /** Our error answer, then the end closes; the bytes of its body (0 when none went out). */
  fail (kind: ErrorKind, fields: readonly string[]): number
  /**
   * The server upgraded (its 101 head, raw): tell the client, with `extra`
   * (flat: the request id), and return the stream of its bytes; undefined
   * when the 101 cannot be relayed (this end closed, or a head it refuses).
   */
  accept (raw: RawFields, shape: ResponseShaper, extra: readonly string[]): Duplex | undefined
  /**
   * The server declined: relay its head (shaped); its body follows through
   * write/end. False when this end cannot relay that status as a refusal
   * (the exchange then fails instead).
   */
  declined (status: number, statusText: string, headers: readonly string[]): boolean
  write (chunk: Buffer): boolean
  end (): void
  /** Closed after `ms` without traffic either way. */
  idle (ms: number, onIdle: () => void): void
  destroy (): void
  /** The tunnel opens: what the client sent before it (for the server), and stop holding on to it. */
  takeEarly (): Buffer
}

/** Bytes read from a client before its tunnel opens; more wait unread. */
const MAX_EARLY_BYTES = 16 * 1024

class H1End implements ClientEnd {
  readonly #socket: Socket
  /** What the client sent after its request head, until the tunnel opens (see #onEarly). */
  readonly #early: Buffer[]
  #earlyBytes: number

  constructor (socket: Socket, head: Buffer) {
    this.#socket = socket
    this.#early = head.length > 0 ? [head] : []
    this.#earlyBytes = head.length
    socket.on('error', () => socket.destroy())
    // Node hands the socket over paused: unread, a client that leaves (FIN)
    // would go unnoticed until the tunnel opened, holding its queue place and
    // its wait for the server. Read it until then.
    socket.on('data', this.#onEarly)
    socket.on('end', this.#onEnd)
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

  takeEarly (): Buffer {
    this.#socket.off('data', this.#onEarly)
    this.#socket.off('end', this.#onEnd)
    return this.#early.length === 0 ? EMPTY : this.#early.length === 1 ? this.#early[0]! : Buffer.concat(this.#early)
  }

  get closed (): boolean { return this.#socket.destroyed }
  onClose (fn: () => void): void { this.#socket.once('close', fn) }
  fail (kind: ErrorKind, fields: readonly string[]): number { return rawError(this.#socket, kind, fields) }

  accept (raw: RawFields, shape: ResponseShaper, extra: readonly string[]): Duplex | undefined {
    // The route's responseHeaders and Via apply to a 101 as to any answer (the
    // h2 path and a declined upgrade had them; this one went out as the server
    // wrote it, with the fields the route removes). Its Connection and Upgrade,
    // hop-by-hop and so not among the shaped fields, are the point of it.
    const fields = shape(101, raw)
    if (typeof fields === 'string') return undefined
    let lines = 'HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: websocket\r\n'
    for (let i = 0; i < fields.length; i += 2) {
      if (isName(fields[i]!, 'content-length')) continue // never in a 1xx (RFC 9110 §8.6)
      lines += `${fields[i]!}: ${fields[i + 1]!}\r\n`
    }
    for (let i = 0; i < extra.length; i += 2) lines += `${extra[i]!}: ${extra[i + 1]!}\r\n`
    this.#socket.write(`${lines}\r\n`)
    return this.#socket
  }

  declined (status: number, statusText: string, headers: readonly string[]): boolean {
    let lines = `HTTP/1.1 ${status} ${statusText}\r\n`
    for (let i = 0; i < headers.length; i += 2) {
      if (headers[i]!.toLowerCase() === 'content-length') continue
      lines += `${headers[i]!}: ${headers[i + 1]!}\r\n`
    }
    this.#socket.write(`${lines}connection: close\r\n\r\n`)
    return true
  }

  write (chunk: Buffer): boolean { return this.#socket.write(chunk) }
  end (): void { this.#socket.end() }
  idle (ms: number, onIdle: () => void): void { this.#socket.setTimeout(ms, onIdle) }
  destroy (): void { this.#socket.destroy() }
}

const NGHTTP2_NO_ERROR = 0
const NGHTTP2_CANCEL = 8

/** Fields of a 101 that belong to the HTTP/1.1 handshake only (RFC 8441 §5: the h2 answer is a 200). */
const H1_HANDSHAKE_ONLY = new Set(['sec-websocket-accept', 'content-length', 'upgrade'])

class H2End implements ClientEnd {
  readonly #stream: ServerHttp2Stream
  constructor (stream: ServerHttp2Stream) {
    this.#stream = stream
    stream.on('error', () => {})
  }

  get closed (): boolean { return this.#stream.closed || this.#stream.destroyed }
  onClose (fn: () => void): void { this.#stream.once('close', fn) }

  fail (kind: ErrorKind, fields: readonly string[]): number {
    if (this.closed || this.#stream.headersSent) {
      this.destroy()
      return 0
    }
    const body = Buffer.from(`${kind.status} ${kind.message} (${kind.code})\n`)
    const head: OutgoingHttpHeaders = Object.create(null) as OutgoingHttpHeaders
    head[':status'] = kind.status
    head['content-type'] = 'text/plain; charset=utf-8'
    head['content-length'] = body.length
    head['x-switchyard-error'] = kind.code
    if (kind.status === 503) head['retry-after'] = '1'
    for (let i = 0; i < fields.length; i += 2) head[fields[i]!.toLowerCase()] = fields[i + 1]!
    return this.#respond(head, body) ? body.length : 0
  }

  accept (raw: RawFields, shape: ResponseShaper, extra: readonly string[]): Duplex | undefined {
    // The 101's end-to-end fields (Sec-WebSocket-Protocol, -Extensions, cookies…) on a 200.
    const fields = shape(200, raw)
    if (typeof fields === 'string') return undefined
    return this.#head(200, extra.length === 0 ? fields : fields.concat(extra)) ? this.#stream : undefined
  }

  declined (status: number, _statusText: string, headers: readonly string[]): boolean {
    // A 2xx to an extended CONNECT is the tunnel opening (RFC 8441 §5, RFC 9113 §8.5): a declining one cannot be relayed.
    if (status >= 200 && status < 300) return false
    this.#head(status, headers)
    return true
  }

  /** The response head from shaped fields (the session's h2 form), without the HTTP/1.1 handshake's own; false when Node refused it. */
  #head (status: number, flat: readonly string[]): boolean {
    try {
      this.#stream.respond(h2Head(status, flat.filter(notHandshake), undefined), { endStream: false })
      return true
    } catch {
      this.destroy()
      return false
    }
  }

  /** An h2 stream keeps what came early in its own buffer until it is piped. */
  takeEarly (): Buffer { return EMPTY }
  write (chunk: Buffer): boolean { return this.closed || this.#stream.write(chunk) }
  end (): void { if (!this.closed) this.#stream.end() }
  idle (ms: number, onIdle: () => void): void { this.#stream.setTimeout(ms, onIdle) }
  /** After our clean end (the server closed), RST_STREAM NO_ERROR stops the client's side too; otherwise CANCEL. */
  destroy (): void {
    if (!this.#stream.destroyed) this.#stream.close(this.#stream.writableEnded ? NGHTTP2_NO_ERROR : NGHTTP2_CANCEL)
  }

  #respond (head: OutgoingHttpHeaders, body: Buffer): boolean {
    try {
      this.#stream.respond(head, { endStream: false })
      this.#stream.end(body)
      return true
    } catch {
      this.destroy()
      return false
    }
  }
}

/** A flat-list filter: drops each H1_HANDSHAKE_ONLY field (its name and its value). */
function notHandshake (_v: string, i: number, all: readonly string[]): boolean {
  return !H1_HANDSHAKE_ONLY.has(all[i - (i % 2)]!.toLowerCase())
}

/** What RFC 6455 §4.2.2 says the server answers to `key`. */
function acceptFor (key: string): string {
  return createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64')
}

/** An HTTP/2 extended CONNECT for a WebSocket (RFC 8441 §4). */
export function isH2WebSocket (headers: IncomingHttpHeaders): boolean {
  return headers[':method'] === 'CONNECT' && headers[':protocol'] === 'websocket'
}

/** One WebSocket upgrade: a request to plan and pick for, then the tunnel itself. */
export class Tunnel implements PlanRequest, Waiter, Exchange {
  /**
   * HTTP/1.1: the request's (GET, or CONNECT, which planning refuses with
   * 405); HTTP/2: GET, the request an extended CONNECT stands for (so routes
   * match it as they match an HTTP/1.1 upgrade, and the log shows it so).
   */
  readonly method: string
  readonly url: string
  readonly rawHeaders: readonly string[]
  readonly h2Authority: string | undefined
  readonly h2: boolean
  readonly httpVersion: string
  readonly conn: ConnectionInfo
  readonly misdirected: ListenerContext['misdirected']
  readonly startTime = performance.now()
  readonly startWall = Date.now()
  readonly #end: ClientEnd
  /** h2: the Sec-WebSocket-Key we send upstream (the client sent none), to check the 101 against. */
  readonly #key: string | undefined
  /** The listener it arrived on (routing may depend on it). */
  readonly listener: ListenerContext
  readonly #state: RuntimeState
  readonly #driver: TunnelDriver
  #plan: Plan | undefined
  /** Holds one of the listener's maxTunnels from adopt() until the client's end closes. */
  #slot = false
  // Waiter (see upstream/queue.ts)
  queued = false
  queueTimer: NodeJS.Timeout | undefined
  panic = false
  readonly tried = NONE_TRIED
  stickyId: string | undefined
  primaryOnly = false
  readonly clientAddress: string
  // Exchange: what metrics and the access log get, from the plan (or a refusal) and the tunnel.
  host = ''
  path = ''
  route: CompiledRoute | undefined
  backend: Backend | undefined
  shard: Shard | undefined
  server: Server | undefined
  /** What the client was answered: 101 (h2: 200) once the tunnel opened; 0 while nothing was. */
  status = 0
  error: ErrorKind | undefined
  errorDetail: string | undefined
  /** Bytes to the client after the tunnel opened (or of a declining server's body), and from it. */
  bytesOut = 0
  bytesIn = 0
  upstreamMs: number | undefined
  /** When the client was told the tunnel is open. */
  openedAt: number | undefined
  attempts = 0
  readonly cacheOutcome: CacheOutcome | undefined = undefined
  readonly cacheStored: boolean | undefined = undefined
  readonly compressedWith: string | undefined = undefined
  /** The request id and trace (tracing/context.ts), once planned. */
  trace: RequestTrace | undefined
  /** The request id field, on every answer (flat); undefined with `requestId: false`. */
  extraFields: string[] | undefined
  /** Called once, when the tunnel is answered without opening or its client's end closes (logs, metrics). */
  onEnd: ((t: Tunnel) => void) | undefined
  #ended = false
  #dispatchedAt = 0

  /** HTTP/1.1: the request Node handed over with its socket and the bytes after its head. */
  static h1 (req: IncomingMessage, socket: Socket, head: Buffer, conn: ConnectionInfo, listener: ListenerContext,
    state: RuntimeState, driver: TunnelDriver): Tunnel {
    return new Tunnel(new H1End(socket, head), req.method ?? 'GET', req.url ?? '', req.rawHeaders, undefined, undefined, conn, listener,
      state, driver, `HTTP/${req.httpVersion}`)
  }

  /** HTTP/2: an extended CONNECT stream (isH2WebSocket) and its head. */
  static h2 (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, rawHeaders: string[], conn: ConnectionInfo,
    listener: ListenerContext, state: RuntimeState, driver: TunnelDriver): Tunnel {
    return new Tunnel(new H2End(stream), 'GET', headers[':path'] ?? '', rawHeaders, headers[':authority'] ?? '',
      randomBytes(16).toString('base64'), conn, listener, state, driver, 'HTTP/2.0')
  }

  private constructor (end: ClientEnd, method: string, url: string, rawHeaders: readonly string[], h2Authority: string | undefined,
    key: string | undefined, conn: ConnectionInfo, listener: ListenerContext, state: RuntimeState, driver: TunnelDriver,
    httpVersion: string) {
    this.method = method
    this.url = url
    this.rawHeaders = rawHeaders
    this.h2Authority = h2Authority
    this.h2 = h2Authority !== undefined
    this.httpVersion = httpVersion
    this.conn = conn
    this.misdirected = listener.misdirected
    this.#end = end
    this.#key = key
    this.listener = listener
    this.#state = state
    this.#driver = driver
    this.clientAddress = conn.trusted
      ? trustedClientAddress(requestField(rawHeaders, 'x-forwarded-for'), conn.clientAddress, state.trustedProxies)
      : conn.clientAddress
    end.onClose(() => {
      // A client that leaves while queued frees its place at once, as a session does.
      if (this.queued) {
        this.#plan?.shard.queue.remove(this)
        clearTimeout(this.queueTimer)
      }
      // Gone before any answer: as a session's client that went away.
      if (this.status === 0) this.error ??= Errors.CLIENT_ABORTED
      this.finish()
    })
  }

  get now (): number { return this.startTime }
  get closed (): boolean { return this.#end.closed }
  get requestBytes (): number { return this.bytesIn }

  /** A request header by lower-case name (see requestField). */
  header (name: string): string | undefined {
    return requestField(this.rawHeaders, name)
  }

  /** Take the plan (an access or rate-limit refusal is logged with its route too). */
  planned (p: Plan): void {
    this.#plan = p
    this.host = p.authority.host
    this.path = p.path
    this.route = p.route
    this.backend = p.backend
    this.shard = p.shard
    this.stickyId = p.stickyId
    this.primaryOnly = p.primaryOnly !== undefined
  }

  /** Take a slot of the listener's maxTunnels; false (answered 503) when there is none. */
  adopt (): boolean {
    const tunnels = this.listener.tunnels
    if (tunnels !== undefined) {
      if (tunnels.open >= tunnels.max) {
        this.fail(Errors.TOO_MANY_TUNNELS)
        return false
      }
      tunnels.open++
      this.#slot = true
      this.#end.onClose(() => {
        if (this.#slot) tunnels.open--
        this.#slot = false
      })
    }
    return true
  }

  /** The plan refused the upgrade: answer with its error, logging what was decided up to then. */
  refuse (r: Refusal): void {
    if (r.authority !== undefined) this.host = r.authority.host
    if (r.path !== undefined) this.path = r.path
    this.route = r.route
    this.backend = r.backend
    this.shard = r.shard
    this.fail(r.error, [], r.detail)
  }

  /** Waiter: ask `server` to upgrade. */
  send (server: Server): void {
    const p = this.#plan!
    const timeouts = this.#state.config.timeouts
    this.server = server
    this.attempts++
    this.#dispatchedAt = performance.now()
    const handler = new UpgradeHandler(this, this.#end, this.#key, server, p.route.shapeResponse, timeouts.tunnel, timeouts.tunnelFin,
      p.backend.config.timeouts.headers, () => { if (p.shard.queue.size > 0) this.#driver.drain(p.shard) })
    const req = upstreamRequest(p, server, null, p.head.headers, p.method, this.conn.socket)
    server.dispatcher.dispatch({
      ...req,
      // h2 clients send no key (RFC 8441 §5): this hop's handshake is ours, and
      // one a client sent anyway goes (RFC 6455 §4.1: exactly one key).
      headers: this.#key === undefined ? req.headers : [...withoutField(withoutField(req.headers, 'sec-websocket-key'), 'sec-websocket-accept'), 'sec-websocket-key', this.#key],
      method: p.method as Dispatcher.HttpMethod,
      // Only the protocol we tunnel: never let another token (h2c…) through.
      upgrade: 'websocket'
    }, handler)
  }

  /**
   * Waiter: answer with one of our errors (and `fields`, flat: a refusal's
   * rate-limit fields; `detail`: why, for the log only), and record it.
   */
  fail (kind: ErrorKind, fields: readonly string[] = [], detail?: string): void {
    if (!this.#ended) {
      this.status = kind.status
      this.error = kind
      if (detail !== undefined) this.errorDetail = detail
    }
    const extra = this.extraFields
    this.bytesOut += this.#end.fail(kind, extra === undefined ? fields : fields.length === 0 ? extra : [...extra, ...fields])
    this.finish()
  }

  /** A listener's or route's redirect: the Location, no body, and the client's end closed. */
  redirect (r: Redirection): void {
    this.host = r.authority.host
    this.path = r.path
    this.route = r.route
    const { status, location } = r.redirect
    this.status = status
    this.#end.declined(status, REDIRECT_TEXT[status], this.#fields(['location', location]))
    this.#end.end()
    this.finish()
  }

  /** The server's answer head came (the client's status is set by what it is then told). */
  answered (): void {
    this.upstreamMs = performance.now() - this.#dispatchedAt
  }

  /** The server upgraded: tell the client (see ClientEnd.accept). */
  accept (raw: RawFields, shape: ResponseShaper): Duplex | undefined {
    const down = this.#end.accept(raw, shape, this.extraFields ?? NO_FIELDS)
    if (down === undefined) return undefined
    this.status = this.h2 ? 200 : 101
    this.openedAt = performance.now()
    return down
  }

  /** The server declined: relay its answer (see ClientEnd.declined). */
  declined (status: number, statusText: string, headers: readonly string[]): boolean {
    if (!this.#end.declined(status, statusText, this.#fields(headers))) return false
    this.status = status
    return true
  }

  /** `fields` and the request id's, flat. */
  #fields (fields: readonly string[]): readonly string[] {
    return this.extraFields === undefined ? fields : fields.concat(this.extraFields)
  }

  /** Recorded, once: refused, failed or declined (answered in full), or closed. */
  finish (): void {
    if (this.#ended) return
    this.#ended = true
    this.onEnd?.(this)
  }
}

const NO_FIELDS: readonly string[] = []
const EMPTY = Buffer.alloc(0)

class UpgradeHandler implements Dispatcher.DispatchHandler {
  /** Answers the client, and keeps what the log and metrics get. */
  readonly #owner: Tunnel
  /** Where the tunnel's bytes go to and come from. */
  readonly #client: ClientEnd
  readonly #key: string | undefined
  readonly #server: Server
  readonly #shape: ResponseShaper
  readonly #idleMs: number
  readonly #finMs: number
  /** The server's response-head timeout, and when the first 1xx came (0: none yet; see onHeaders). */
  readonly #headersMs: number
  #interimSince = 0
  readonly #released: () => void
  #abort: ((err?: Error) => void) | null = null
  /** The exchange before the tunnel is over (declined, failed, or upgraded). */
  #done = false
  /** The server slot is held until released once (the tunnel closes). */
  #held = true
  /** Upgraded: the connection left the server's pool (Server.tunnels). */
  #tunnel = false

  constructor (owner: Tunnel, client: ClientEnd, key: string | undefined, server: Server, shape: ResponseShaper, idleMs: number,
    finMs: number, headersMs: number, released: () => void) {
    this.#owner = owner
    this.#client = client
    this.#key = key
    this.#server = server
    this.#shape = shape
    this.#idleMs = idleMs
    this.#finMs = finMs
    this.#headersMs = headersMs
    this.#released = released
    server.active++
    server.requests++
    client.onClose(() => {
      if (!this.#done) {
        // The client gave up before the answer: not the server's failure (onError stays silent).
        this.#done = true
        this.#abort?.(new Error('client aborted'))
      }
      this.#release()
    })
  }

  onConnect (abort: (err?: Error) => void): void { this.#abort = abort }

  onUpgrade (_statusCode: number, rawHeaders: Buffer[] | string[] | null, upstream: Duplex): void {
    this.#done = true
    const owner = this.#owner
    owner.answered()
    // The socket is no longer the pool's: its connection is free for a request waiting in the queue.
    if (this.#held) {
      this.#tunnel = true
      this.#server.tunnels++
      this.#released()
    }
    const client = this.#client
    if (client.closed) {
      upstream.destroy()
      return
    }
    const raw = rawFields(rawHeaders)
    // RFC 9110 §7.8: only to the protocol asked for. A 101 to another (h2c) would splice the
    // client into a protocol nobody checked; on h2 our own key must be answered too.
    if (!hasToken(firstValue(raw, 'upgrade') ?? '', 'websocket') ||
      (this.#key !== undefined && firstValue(raw, 'sec-websocket-accept')?.trim() !== acceptFor(this.#key))) {
      // Not a WebSocket server's answer to our key: nothing to splice to.
      upstream.destroy()
      this.#server.failures++
      owner.fail(Errors.UPSTREAM_BAD_RESPONSE, [], 'a 101 not to websocket, or not to our key')
      return
    }
    const down = owner.accept(raw, this.#shape)
    if (down === undefined) {
      upstream.destroy()
      // Still open: the 101 had fields the client's end cannot carry.
      if (!client.closed) owner.fail(Errors.UPSTREAM_BAD_RESPONSE, [], 'a 101 head the client cannot be given')
      return
    }
    // timeouts.tunnel: the client's end sees every byte either way (it reads
    // one direction and writes the other), so its idle timer is the tunnel's.
    // A FIN is passed on and the other way stays open (HAProxy's tunnel). The
    // listener's sockets and the connector's end their own side when the
    // peer's FIN comes (net's default), which closed the whole tunnel at once:
    // what the other side still sent was lost.
    down.allowHalfOpen = true
    upstream.allowHalfOpen = true
    const close = (): void => { client.destroy(); upstream.destroy() }
    client.idle(this.#idleMs, close)
    // Half closed (a client that vanished, a server that ended): the other side has
    // timeouts.tunnelFin of silence to close its own, not timeouts.tunnel.
    const fin = (): void => { if (this.#finMs < this.#idleMs) client.idle(this.#finMs, close) }
    down.once('end', fin)
    upstream.once('end', fin)
    const early = client.takeEarly()
    if (early.length > 0) upstream.write(early)
    // Bytes each way, for the log line written when the tunnel closes.
    owner.bytesIn = early.length
    upstream.on('data', (chunk: Buffer) => { owner.bytesOut += chunk.length })
    down.on('data', (chunk: Buffer) => { owner.bytesIn += chunk.length })
    upstream.on('error', () => client.destroy())
    down.on('error', () => upstream.destroy())
    upstream.on('close', () => client.destroy())
    client.onClose(() => upstream.destroy())
    upstream.pipe(down)
    down.pipe(upstream)
  }

  // The server declined the upgrade: relay its answer, then close.
  onHeaders (statusCode: number, rawHeaders: Buffer[] | RawFields, _resume: () => void, statusText: string): boolean {
    if (statusCode < 200) {
      // undici restarts its headers timeout on every 1xx: without end, they would hold the upgrade forever.
      const now = performance.now()
      if (this.#interimSince === 0) this.#interimSince = now
      if (this.#headersMs === 0 || now - this.#interimSince <= this.#headersMs) return true
      this.onError(Object.assign(new Error('interim responses only, for more than the headers timeout'), { code: 'UND_ERR_HEADERS_TIMEOUT' }))
      this.#abort?.(new Error('headers timeout'))
      return false
    }
    const headers = statusCode > 599 ? `status ${statusCode}` : this.#shape(statusCode, rawFields(rawHeaders))
    if (typeof headers === 'string') {
      this.onError(Object.assign(new Error(`malformed response head: ${headers}`), { code: Errors.UPSTREAM_BAD_RESPONSE.code }))
      this.#abort?.(new Error('malformed response head'))
      return false
    }
    this.#owner.answered()
    if (!this.#owner.declined(statusCode, statusText, headers)) {
      this.onError(Object.assign(new Error(`a ${statusCode} instead of 101 would read as the h2 tunnel opening`), { code: Errors.UPSTREAM_BAD_RESPONSE.code }))
      this.#abort?.(new Error('upgrade declined with a 2xx'))
      return false
    }
    return true
  }

  onData (chunk: Buffer): boolean {
    this.#owner.bytesOut += chunk.length
    return this.#client.write(chunk)
  }

  onComplete (): void {
    this.#done = true
    this.#release()
    this.#client.end()
    this.#owner.finish()
  }

  onError (err: Error): void {
    if (this.#done) return
    this.#done = true
    this.#release()
    const kind = upstreamErrorKind(err)
    if (kind.source === 'upstream') this.#server.failures++
    this.#owner.fail(kind, [], err.message)
  }

  #release (): void {
    if (!this.#held) return
    this.#held = false
    this.#server.active--
    if (this.#tunnel) this.#server.tunnels--
    this.#released()
  }
}


/** An error answer written straight to an h1 socket (no ServerResponse on upgrades). */
function rawError (socket: Socket, kind: ErrorKind, fields: readonly string[] = []): number {
  if (socket.destroyed) return 0
  const body = `${kind.status} ${kind.message} (${kind.code})\n`
  let extra = kind.status === 503 ? 'retry-after: 1\r\n' : ''
  for (let i = 0; i < fields.length; i += 2) extra += `${fields[i]!}: ${fields[i + 1]!}\r\n`
  // The standard reason phrase, as node:http gives every other answer; the code is in x-switchyard-error.
  socket.end(`HTTP/1.1 ${kind.status} ${STATUS_CODES[kind.status] ?? ''}\r\ncontent-type: text/plain; charset=utf-8\r\n` +
    `content-length: ${Buffer.byteLength(body)}\r\nx-switchyard-error: ${kind.code}\r\n` +
    `${extra}connection: close\r\n\r\n${body}`)
  return Buffer.byteLength(body)
}
