// The one typed per-request context (Pingora's CTX, Envoy's StreamInfo).
// Created once per request by the pipeline; phases fill it in; it is also the
// sink the upstream handler streams the response into. Nothing else holds
// request state.
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2'
import { Errors, type ErrorKind } from '../errors.js'
import { NONE_TRIED, type PickContext } from '../balancer/balancer.js'
import type { Queued } from '../upstream/queue.js'
import type { Shard } from '../upstream/shard.js'
import type { Server } from '../upstream/server.js'
import type { ForwardHandler, ResponseSink } from '../upstream/pool.js'
import type { Backend } from '../upstream/backend.js'
import { downstreamResponseHeaders, rawHeader, trailerObject, type CompiledHeaderOps, type ForwardContext } from './headers.js'
import type { Authority } from './authority.js'
import { parseRequestTarget } from './request-target.js'
import type { PathNormalizationConfig } from '../config/schema.js'
import type { RouteInput } from '../router/router.js'
import { trustedClientAddress } from './trust.js'
import { cacheResponseData, cacheResponseEnd, cacheResponseHead, cacheSessionEnd, cacheUpstreamError, type CacheState } from './cache-phase.js'
import type { BlockList } from 'node:net'
import type { Readable } from 'node:stream'

export type DownstreamRequest = IncomingMessage | Http2ServerRequest
export type DownstreamResponse = ServerResponse | Http2ServerResponse

/** Per-listener facts, fixed when the listener starts. */
export interface ListenerContext {
  readonly name: string
  readonly proto: 'http' | 'https'
  /** TLS listeners with several certificates: whether `host` belongs to another certificate than the one negotiated for `servername` (421). */
  readonly misdirected?: (servername: string | undefined, host: string) => boolean
  /** Upgraded connections open on this listener, against its maxTunnels. */
  readonly tunnels?: TunnelCount
}

export interface TunnelCount {
  open: number
  readonly max: number
}

/** Per-connection facts, computed once per socket / h2 session. */
export interface ConnectionInfo extends ForwardContext {
  /** The TLS SNI name the client sent, if any. */
  readonly servername: string | undefined
}

/** What the session calls back into: retries and the shard queue (the pipeline). */
export interface SessionDriver {
  /** Shutting down: responses should close their HTTP/1.1 connection. */
  readonly draining: boolean
  /** Try another server after a failure before any response byte; true if it did. */
  retry (s: Session, kind: ErrorKind, err: Error): boolean
  /** A server slot of this shard was freed: dispatch queued requests. */
  drain (shard: Shard): void
  /** Something threw while answering `s`: count and log it (the session resets itself). */
  internalError (s: Session, err: unknown): void
}

/** What a session needs from the route it matched (see proxy/routes.ts). */
export interface SessionRoute {
  readonly name: string
  readonly backend: Backend
  readonly responseOps: CompiledHeaderOps
}

const NGHTTP2_NO_ERROR = 0
const NGHTTP2_INTERNAL_ERROR = 2

function onBodyIdle (s: Session): void { s.clientTimeout(Errors.CLIENT_BODY_TIMEOUT) }
function onDeadline (s: Session): void { s.clientTimeout(Errors.REQUEST_TIMEOUT) }

export class Session implements ResponseSink, PickContext, RouteInput, Queued {
  readonly req: DownstreamRequest
  readonly res: DownstreamResponse
  readonly h2: boolean
  readonly listener: ListenerContext
  readonly conn: ConnectionInfo
  readonly startTime: number
  /** Date.now() at start: RFC 9111 age arithmetic is wall-clock. */
  readonly startWall: number
  readonly method: string
  /** The parsed authority (absolute-form target, :authority or Host): see authority.ts. */
  authorityInfo: Authority | undefined
  /** `host[:port]` as parsed and normalised: what routing, logs, Host and X-Forwarded-Host use. */
  authority = ''
  /** Lower-cased host without port or trailing dot, for routing. */
  host = ''
  /** Request target: the normalised path with the query as sent. */
  target = ''
  /** The normalised path without query, for routing. */
  path = ''
  route: SessionRoute | undefined
  backend: Backend | undefined
  shard: Shard | undefined
  server: Server | undefined
  handler: ForwardHandler | undefined
  /** Via entry added to the response (upstream protocol is HTTP/1.1). */
  responseVia: string | undefined
  status = 0
  error: ErrorKind | undefined
  /** Set when the session ended (response finished, reset or client gone). */
  closed = false
  /** Called once when the session ends (logs, metrics). */
  onEnd: ((s: Session) => void) | undefined
  driver: SessionDriver | undefined
  trustList: BlockList | undefined

  // PickContext (see balancer/balancer.ts)
  tried: readonly Server[] = NONE_TRIED
  panic = false
  stickyId: string | undefined
  #client: string | undefined

  /** Attempts sent upstream so far (1 + retries). */
  attempts = 0
  /** Replayable request: no body, or a body buffered for retries. */
  replayable = true
  /** The buffered request body when it was small enough to replay. */
  body: Buffer | null = null
  /** The request body as it streams upstream (not replayable), watched for stalls. */
  bodyStream: Readable | undefined
  /** The upstream request, built once and reused by retries. */
  upstreamHeaders: string[] = []
  upstreamPath = ''
  /** Kind of the last failure that caused a retry (logs). */
  retryReasons: ErrorKind | undefined
  /** Response body bytes sent to the client (logs, metrics). */
  bytesOut = 0
  /** performance.now() when the current attempt was dispatched, and the time to its response head (ms). */
  dispatchedAt = 0
  upstreamMs: number | undefined
  /** How the cache handled it, for logs: hit, miss, stale, collapsed, bypass. */
  cacheOutcome: string | undefined
  /** Cache state when the route caches (see cache-phase.ts). */
  cacheState: CacheState | undefined
  /** The request has a body to send upstream, and its Content-Length when it sent one. */
  hasBody = false
  contentLength: number | undefined
  /** Set-Cookie to add (sticky sessions), fixed when the server is picked. */
  setCookie: string | undefined
  // Queued
  queued = false
  queueTimer: NodeJS.Timeout | undefined
  /** Client body idle timer (timeouts.clientBody) and whole-request deadline (timeouts.request). */
  #bodyIdle: NodeJS.Timeout | undefined
  #deadline: NodeJS.Timeout | undefined

  constructor (req: DownstreamRequest, res: DownstreamResponse, listener: ListenerContext, conn: ConnectionInfo,
    startTime: number) {
    this.req = req
    this.res = res
    this.h2 = req.httpVersionMajor === 2
    this.listener = listener
    this.conn = conn
    this.startTime = startTime
    this.startWall = Date.now()
    this.method = req.method ?? 'GET'
  }

  get now (): number { return this.startTime }

  /**
   * The request has a body: cut it with 408 (or a reset, once the response
   * has started) when it pauses longer than `idleMs` or is not complete
   * `deadlineMs` after the request started (0 = no deadline).
   */
  watchBody (idleMs: number, deadlineMs: number): void {
    if (idleMs > 0) this.#bodyIdle = setTimeout(onBodyIdle, idleMs, this)
    if (deadlineMs > 0) this.#deadline = setTimeout(onDeadline, Math.max(0, this.startTime + deadlineMs - performance.now()), this)
  }

  /** A body chunk arrived. */
  bodyProgress (): void {
    this.#bodyIdle?.refresh()
  }

  /** The body is complete, or the request is over. */
  bodyDone (): void {
    if (this.#bodyIdle !== undefined) clearTimeout(this.#bodyIdle)
    if (this.#deadline !== undefined) clearTimeout(this.#deadline)
    this.#bodyIdle = this.#deadline = undefined
  }

  /** The client is too slow sending its request: see watchBody. */
  clientTimeout (kind: ErrorKind): void {
    this.bodyDone()
    if (this.closed) return
    this.error = kind
    this.handler?.abort()
    if (this.res.headersSent) return this.resetDownstream()
    this.sendError(kind)
    // The client may still be sending: answered, the stream ends with
    // RST_STREAM(NO_ERROR) (RFC 9113 §8.1), which Node sends once the
    // response is out.
    if (this.h2) (this.res as Http2ServerResponse).stream.close(NGHTTP2_NO_ERROR)
  }

  /** The socket peer, or for a trusted proxy the client it reports in X-Forwarded-For. */
  get clientAddress (): string {
    if (!this.conn.trusted || this.trustList === undefined) return this.conn.clientAddress
    this.#client ??= trustedClientAddress(this.header('x-forwarded-for'), this.conn.clientAddress, this.trustList)
    return this.#client
  }

  /** First value of a request header by lower-case name (h1 raw headers keep the client's case). */
  header (name: string): string | undefined {
    return rawHeader(this.req.rawHeaders, name)
  }

  /**
   * Parse the request line into authority, host, target and path, normalising
   * the path. Returns the error to answer with, if any (the reason is kept in
   * `errorDetail` for the log).
   */
  parseTarget (paths: PathNormalizationConfig): ErrorKind | undefined {
    const req = this.req
    const h2Authority = this.h2 ? (req as Http2ServerRequest).headers[':authority'] ?? '' : undefined
    const t = parseRequestTarget(this.method, req.url ?? '', req.rawHeaders, h2Authority, paths)
    if ('error' in t) {
      this.errorDetail = t.detail
      return t.error
    }
    this.authorityInfo = t.authority
    this.authority = t.authority.value
    this.host = t.authority.host
    this.path = t.path
    this.target = t.target
    return undefined
  }

  // ResponseSink: the upstream handler streams into these.

  responseHead (status: number, statusText: string, rawHeaders: Buffer[]): boolean | string {
    const res = this.res
    if (this.closed || res.destroyed) return false
    this.upstreamMs = performance.now() - this.dispatchedAt
    const shaped = downstreamResponseHeaders(rawHeaders, this.responseVia, this.route!.responseOps)
    if (typeof shaped === 'string') return shaped // malformed: the handler fails the exchange
    let headers = shaped
    const cs = this.cacheState
    if (cs !== undefined) {
      const h = cacheResponseHead(this, cs, status, statusText, headers)
      if (h === undefined) return true // withheld: the cache answered; drain the upstream body
      headers = h
    }
    if (this.setCookie !== undefined) headers.push('set-cookie', this.setCookie)
    this.prepareHead()
    this.status = status
    return this.writeHead(status, headers, this.h2 ? '' : statusText)
  }

  /**
   * Every response head goes out through here. Node throws on what it will not
   * send (a field HTTP/2 forbids, a bad value): that must never escape a
   * request, so it becomes an internal error that resets only this stream or
   * connection. False when the head could not be written.
   */
  writeHead (status: number, headers: readonly string[], statusText = ''): boolean {
    try {
      if (statusText !== '') (this.res as ServerResponse).writeHead(status, statusText, headers as string[])
      else this.res.writeHead(status, headers as never)
      return true
    } catch (err) {
      this.fault(err)
      return false
    }
  }

  /** Something threw while answering: count it, log it, reset this stream or connection. */
  fault (err: unknown): void {
    this.error = Errors.INTERNAL
    this.status = Errors.INTERNAL.status
    this.errorDetail = err instanceof Error ? err.message : String(err)
    this.driver?.internalError(this, err)
    this.handler?.abort()
    this.resetDownstream()
  }

  responseData (chunk: Buffer): boolean {
    const cs = this.cacheState
    if (cs !== undefined) {
      if (cs.withheld) return true
      cacheResponseData(cs, chunk)
    }
    const res = this.res as ServerResponse
    this.bytesOut += chunk.length
    if (res.write(chunk)) return true
    res.once('drain', onDrain)
    return false
  }

  responseEnd (trailers: Buffer[]): void {
    const cs = this.cacheState
    if (cs !== undefined) {
      if (cs.withheld) return
      cacheResponseEnd(cs)
    }
    if (trailers.length > 0) {
      const t = trailerObject(trailers)
      if (t !== undefined) this.res.addTrailers(t)
    }
    this.res.end()
  }

  responseError (kind: ErrorKind, err: Error): void {
    if (kind === Errors.CLIENT_ABORTED) {
      this.error ??= kind
      return
    }
    if (!this.res.headersSent) {
      if (this.driver?.retry(this, kind, err) === true) return
      if (this.cacheState !== undefined && cacheUpstreamError(this, this.cacheState)) return
      this.error = kind
      this.sendError(kind, err.message)
      return
    }
    this.error = kind
    if (this.cacheState !== undefined) cacheSessionEnd(this.cacheState)
    // Mid-body failure: never let a truncated body pass as complete.
    this.resetDownstream()
  }

  released (): void {
    const shard = this.shard
    if (shard !== undefined && shard.queue.size > 0) this.driver?.drain(shard)
  }

  /** Answer with one of our errors (status, code header, short text body). */
  sendError (kind: ErrorKind, detail?: string): void {
    this.error = kind
    this.status = kind.status
    const res = this.res
    if (res.headersSent || res.destroyed) {
      this.resetDownstream()
      return
    }
    const body = errorBody(kind, kind === Errors.NO_ROUTE ? `${this.method} ${this.authority}${this.path}` : undefined)
    const headers = [
      'content-type', 'text/plain; charset=utf-8',
      'content-length', String(body.length),
      'x-content-type-options', 'nosniff',
      'x-switchyard-error', kind.code
    ]
    if (kind.status === 503) headers.push('retry-after', '1')
    // A request answered before its body was read (408, 400…) leaves the
    // connection in an unknown state: HTTP/1.1 closes it.
    if (!this.h2 && kind.source === 'downstream' && this.hasBody) headers.push('connection', 'close')
    if (detail !== undefined) this.errorDetail = detail
    this.prepareHead()
    if (!this.writeHead(kind.status, headers)) return
    if (this.method === 'HEAD') res.end()
    else {
      this.bytesOut += body.length
      res.end(body)
    }
  }

  /** Call before writing a response head: while draining, HTTP/1.1 answers say Connection: close. */
  prepareHead (): void {
    if (!this.h2 && this.driver?.draining === true) (this.res as ServerResponse).shouldKeepAlive = false
  }

  /** For logs only; never sent to the client. */
  errorDetail: string | undefined

  resetDownstream (): void {
    const res = this.res
    try {
      if (this.h2) (res as Http2ServerResponse).stream.close(NGHTTP2_INTERNAL_ERROR)
      else res.destroy()
    } catch {
      // Already gone: nothing left to reset.
    }
  }
}

function onDrain (this: DownstreamResponse): void {
  const s = (this as unknown as { [kSession]?: Session })[kSession]
  s?.handler?.resume()
}

/** Where the pipeline hangs the session on the response, for shared listeners. */
export const kSession = Symbol('switchyard.session')

// Error bodies are fixed per kind: built once, not per failure.
const errorBodies: ReadonlyMap<ErrorKind, Buffer> = new Map(Object.values(Errors).map((k) =>
  [k, Buffer.from(`${k.status} ${k.message} (${k.code})\n`)]))

function errorBody (kind: ErrorKind, what: string | undefined): Buffer {
  if (what !== undefined) return Buffer.from(`${kind.status} ${kind.message}: ${what} (${kind.code})\n`)
  return errorBodies.get(kind) ?? Buffer.from(`${kind.status} ${kind.message} (${kind.code})\n`)
}

/** `Example.COM:8443` → `example.com`; `[::1]:8443` → `[::1]`; trailing dot dropped. */
export function hostOf (authority: string): string {
  let end = authority.length
  if (authority.charCodeAt(0) === 91) { // '['
    const close = authority.indexOf(']')
    end = close === -1 ? end : close + 1
  } else {
    const colon = authority.lastIndexOf(':')
    if (colon !== -1) end = colon
  }
  let h = authority.slice(0, end).toLowerCase()
  if (h.endsWith('.')) h = h.slice(0, -1)
  return h
}
