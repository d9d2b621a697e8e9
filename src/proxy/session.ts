// The one typed per-request context (Pingora's CTX, Envoy's StreamInfo).
// Created once per request by the pipeline, filled from its Plan; it owns the
// upstream exchanges (retries, the shard queue, body timers) and is the sink
// that writes the response to the client. It knows nothing of the cache: a
// cached route puts a CacheSink in front of it (see cache-phase.ts).
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { IncomingHttpHeaders, OutgoingHttpHeaders, ServerHttp2Stream } from 'node:http2'
import type { BlockList, Socket } from 'node:net'
import type { Readable } from 'node:stream'
import { NONE_TRIED } from '../balancer/balancer.js'
import type { HitHead } from '../cache/hit-heads.js'
import type { CacheOutcome } from '../cache/outcome.js'
import { Errors, type ErrorKind } from '../errors.js'
import type { Backend } from '../upstream/backend.js'
import type { ExchangeOwner, ForwardHandler, ResponseSink } from '../upstream/pool.js'
import type { Waiter } from '../upstream/queue.js'
import type { Server } from '../upstream/server.js'
import type { Shard } from '../upstream/shard.js'
import type { CacheClient } from './cache-phase.js'
import type { CompressFlow } from './compression/sink.js'
import { LOWER_FIELD_NAME, requestField, withoutField, type InterimHead } from '../fields.js'
import type { RequestTrace } from '../tracing/context.js'
import { trailerObject, type ForwardContext } from './headers.js'
import type { Plan, PlanRequest, Redirection, Refusal, ServerOptions } from './plan.js'
import { REDIRECT_TEXT } from './redirect.js'
import type { RedirectConfig } from '../config/schema.js'
import type { CompiledRoute } from './routes.js'
import { trustedClientAddress } from './trust.js'
import { grpcErrorFields, isGrpcRequest } from './grpc-reply.js'
import { flushHeldHead, h1ExtraLines, h1Head, h1HeadLines, RAW_HEADS, writeRawBody, writeRawHead, writeRawResponse } from './h1-head.js'

// HTTP/1.1 comes as node:http's request/response pair; HTTP/2 as the core
// API's stream, which is both (a Duplex: the request body in, the response
// out). The compatibility layer (Http2ServerRequest/Response) is not used:
// it cost more than the rest of the h2 path (header maps built, cleared and
// rebuilt per response).
export type DownstreamRequest = IncomingMessage | ServerHttp2Stream
export type DownstreamResponse = ServerResponse | ServerHttp2Stream

/** An HTTP/2 request head as the 'stream' event gives it. */
export interface H2Head {
  readonly headers: IncomingHttpHeaders
  /** Flat name/value pairs as received, pseudo-headers included. */
  readonly rawHeaders: string[]
}

/** Per-listener facts, fixed when the listener starts. */
export interface ListenerContext {
  readonly name: string
  readonly proto: 'http' | 'https'
  /** TLS listeners with several certificates: whether `host` belongs to another certificate than the one negotiated for `servername` (421). */
  readonly misdirected?: (servername: string | undefined, host: string) => boolean
  /** Upgraded connections open on this listener, against its maxTunnels. */
  readonly tunnels?: TunnelCount
  /** Answers every request on this listener (see plan); a reload that keeps the listener replaces it. */
  redirect?: RedirectConfig | undefined
  /**
   * This listener is closing (a reload removed it; a stop drains every
   * listener through the pipeline's `draining`): HTTP/1.1 answers say
   * Connection: close, so no client is cut at its drain deadline.
   */
  closing?: boolean
}

export interface TunnelCount {
  open: number
  readonly max: number
}

/** Per-connection facts, computed once per socket / h2 session. */
export interface ConnectionInfo extends ForwardContext {
  /** The TLS SNI name the client sent, if any. */
  readonly servername: string | undefined
  /** The negotiated TLS version (`TLSv1.3`), on TLS listeners (access log). */
  readonly tlsVersion?: string | undefined
  /** The client's socket (TLS or plain), for the PROXY header a backend may send; absent in `explain`. */
  readonly socket?: Socket
}

/**
 * What a finished exchange tells the metrics and the access log
 * (admin/api.ts requestRecord): a Session, or a Tunnel (upgrade.ts).
 */
export interface Exchange {
  readonly listener: ListenerContext
  readonly h2: boolean
  readonly conn: ConnectionInfo
  /** performance.now() and Date.now() at start. */
  readonly startTime: number
  readonly startWall: number
  readonly method: string
  readonly url: string
  readonly host: string
  readonly path: string
  readonly route: CompiledRoute | undefined
  readonly backend: Backend | undefined
  readonly shard: Shard | undefined
  readonly server: Server | undefined
  readonly status: number
  /** Bytes sent to the client: the response body, or what a tunnel carried to it. */
  readonly bytesOut: number
  /** Bytes from the client: the request body when known, or what a tunnel carried from it. */
  readonly requestBytes: number | undefined
  /** `HTTP/1.1`, `HTTP/1.0` or `HTTP/2.0`. */
  readonly httpVersion: string
  readonly cacheOutcome: CacheOutcome | undefined
  /** Whether its upstream answer ended up stored (see CacheClient.cacheStored). */
  readonly cacheStored: boolean | undefined
  readonly error: ErrorKind | undefined
  readonly errorDetail: string | undefined
  readonly upstreamMs: number | undefined
  /** performance.now() when a tunnel opened (its 101, or h2 200); absent for a request. */
  readonly openedAt?: number | undefined
  readonly attempts: number
  readonly trace: RequestTrace | undefined
  readonly compressedWith: string | undefined
  header (name: string): string | undefined
}

/** What the session calls back into: the pipeline. */
export interface SessionDriver {
  /** Shutting down: responses should close their HTTP/1.1 connection. */
  readonly draining: boolean
  /** Try another server after a failure before any response byte; true if it did. */
  retry (s: Session, kind: ErrorKind, err: Error): boolean
  /** A server slot of this shard was freed: dispatch queued requests. */
  drain (shard: Shard): void
  /** Send the session's request to `server` (picked by the balancer). */
  dispatch (s: Session, server: Server): void
  /** Something threw while answering `s`: count and log it (the session resets itself). */
  internalError (s: Session, err: unknown): void
}

/** A reason phrase Node writes as it is: visible ASCII, spaces and tabs. */
const PLAIN_REASON = /^[\t\x20-\x7e]*$/

function writeH1Head (res: ServerResponse, status: number, statusText: string, fields: readonly string[]): void {
  if (statusText !== '') res.writeHead(status, statusText, fields as string[])
  else res.writeHead(status, fields as string[])
}

const NGHTTP2_NO_ERROR = 0
const NGHTTP2_INTERNAL_ERROR = 2

const H2_PROCESSING = Object.freeze({ ':status': 102 })

// respond() options, built once.
const H2_BODY = Object.freeze({ endStream: false, waitForTrailers: false })
const H2_TRAILERS = Object.freeze({ endStream: false, waitForTrailers: true })
const H2_END = Object.freeze({ endStream: true })

/**
 * A body longer than this (a large cache hit) goes out a slice at a time, the
 * next once the client has taken the last (its drain): clientSend then times
 * each wait, as for a streamed response, and a slow but steady reader of a
 * large hit is never cut. Smaller bodies go out in one write, as before.
 */
const SEND_SLICE = 256 * 1024

/** Interim (102, 103) responses relayed per request at most: one or two is what origins send. */
const MAX_INTERIM_RESPONSES = 8

function onBodyIdle (s: Session): void { s.clientTimeout(Errors.CLIENT_BODY_TIMEOUT) }
function onSendTimeout (s: Session): void { s.clientTimeout(Errors.CLIENT_SEND_TIMEOUT) }
function onDeadline (s: Session): void { s.clientTimeout(Errors.REQUEST_TIMEOUT) }

export class Session implements ResponseSink, ExchangeOwner, CacheClient, Waiter, PlanRequest, CompressFlow, Exchange {
  readonly req: DownstreamRequest
  readonly res: DownstreamResponse
  readonly h2: boolean
  readonly listener: ListenerContext
  readonly conn: ConnectionInfo
  readonly startTime: number
  /** Date.now() at start: RFC 9111 age arithmetic is wall-clock. */
  readonly startWall: number
  readonly method: string
  readonly driver: SessionDriver
  // PlanRequest
  readonly url: string
  readonly rawHeaders: readonly string[]
  /** The h2 `:authority` ('' when absent); undefined on HTTP/1.1. */
  readonly h2Authority: string | undefined

  /** What the pipeline decided (undefined when the proxy answered the request itself). */
  plan: Plan | undefined
  // What is known for logs, from the plan or from how far a refusal got.
  /** `host[:port]` as parsed and normalised. */
  authority = ''
  /** Lower-cased host without port or trailing dot. */
  host = ''
  /** The normalised path without query. */
  path = ''
  route: CompiledRoute | undefined
  backend: Backend | undefined
  shard: Shard | undefined

  server: Server | undefined
  handler: ForwardHandler | undefined
  status = 0
  error: ErrorKind | undefined
  /** For logs only; never sent to the client. */
  errorDetail: string | undefined
  /** Set when the session ended (response finished, reset or client gone). */
  closed = false
  /** Called once when the session ends (logs, metrics). */
  onEnd: ((s: Session) => void) | undefined
  /** Called once when the client's side ends, before onEnd (the cache sink lets its waiters go). */
  onClose: (() => void) | undefined
  trustList: BlockList | undefined

  // PickContext (see balancer/balancer.ts)
  tried: readonly Server[] = NONE_TRIED
  panic = false
  stickyId: string | undefined
  primaryOnly = false
  #client: string | undefined

  /** Attempts sent upstream so far (1 + retries). */
  attempts = 0
  /** Replayable request: no body, or a body buffered for retries. */
  replayable = true
  /** The buffered request body when it was small enough to replay. */
  body: Buffer | null = null
  /** The request body as it streams upstream (not replayable), watched for stalls. */
  bodyStream: Readable | undefined
  /** The upstream head: the plan's, or a revalidation's (see cache-phase.ts). */
  upstreamHeaders: string[] = []
  /** Kind of the last failure that caused a retry (logs). */
  retryReasons: ErrorKind | undefined
  /** Response body bytes sent to the client (logs, metrics). */
  bytesOut = 0
  /** performance.now() when the current attempt was dispatched, and the time to its response head (ms). */
  dispatchedAt = 0
  upstreamMs: number | undefined
  /** How the cache handled it, for logs and metrics. */
  cacheOutcome: CacheOutcome | undefined
  cacheStored: boolean | undefined
  /** Where upstream responses go: this session, or a decorator in front of it. */
  sink: ResponseSink = this
  /** The request has a body to send upstream, and its Content-Length when it sent one. */
  hasBody = false
  contentLength: number | undefined
  /** Set-Cookie to add (sticky sessions), fixed when the server is picked. */
  setCookie: string | undefined
  /**
   * Fields added to whatever answers, upstream, cached or our own: the
   * request id, the route's rate-limit fields (RateLimit-Policy, RateLimit,
   * Retry-After). The cache stores the upstream's head, never these.
   */
  extraFields: string[] | undefined
  /** extraFields as HTTP/1.1 field lines, when known to be valid (the request id alone); undefined: h1ExtraLines checks them. */
  extraLines: string | undefined
  /** The request id and trace (tracing/context.ts), once planned. */
  trace: RequestTrace | undefined
  // Queued
  queued = false
  queueTimer: NodeJS.Timeout | undefined
  /** h2: our side of the response has ended (the stream's own writableEnded is also set by a client's RST_STREAM). */
  ended = false
  /** A 'drain' listener waits on the response: one, however many writes came back false (see responseData). */
  awaitingDrain = false
  /** CompressFlow: the coding the compression sink applied to this answer (access log). */
  compressedWith: string | undefined = undefined
  /** How long a write may wait for the client's drain (timeouts.clientSend, for every answer: upstream, cached or our own; 0 = forever). */
  sendTimeoutMs = 0
  /** h2: trailers for the 'wantTrailers' event. */
  trailers: Record<string, string> | undefined
  /** HTTP/1.1: the Content-Length of a raw head not yet sent, until the first body chunk (-1: none). */
  wholeBody = -1
  /** h2: the upstream response head as sent (a gRPC Trailers-Only answer's status is in it: see responseEnd). */
  upstreamHead: readonly string[] | undefined
  /** h2: the upstream head is held, with the body chunks that came with it, until the upstream read that brought it is parsed (see responseHead). */
  #held: Buffer[] | undefined
  /** Client body idle timer (timeouts.clientBody) and whole-request deadline (timeouts.request). */
  #bodyIdle: NodeJS.Timeout | undefined
  #deadline: NodeJS.Timeout | undefined
  /** Armed while a write waits for the client's drain (sendTimeoutMs). */
  #sendTimer: NodeJS.Timeout | undefined
  /** What is left of a body written a slice at a time (see SEND_SLICE). */
  #unsent: Buffer | undefined
  /** Interim responses relayed (see responseInterim). */
  #interims = 0

  /** HTTP/1.1: `req` and `res` from node:http. HTTP/2: both are the stream, and `h2` its head. */
  constructor (req: DownstreamRequest, res: DownstreamResponse, listener: ListenerContext, conn: ConnectionInfo,
    startTime: number, driver: SessionDriver, h2?: H2Head) {
    this.req = req
    this.res = res
    this.listener = listener
    this.conn = conn
    this.startTime = startTime
    this.startWall = Date.now()
    this.driver = driver
    if (h2 === undefined) {
      const r = req as IncomingMessage
      this.h2 = false
      this.method = r.method ?? 'GET'
      this.url = r.url ?? ''
      this.rawHeaders = r.rawHeaders
      this.h2Authority = undefined
    } else {
      const h = h2.headers
      this.h2 = true
      this.method = h[':method'] ?? 'GET'
      this.url = h[':path'] ?? ''
      this.rawHeaders = h2.rawHeaders
      this.h2Authority = h[':authority'] ?? ''
    }
  }

  get misdirected (): ListenerContext['misdirected'] { return this.listener.misdirected }

  get now (): number { return this.startTime }
  get peerAddress (): string { return this.conn.clientAddress }

  /** The socket peer, or for a trusted proxy the client it reports in X-Forwarded-For. */
  get clientAddress (): string {
    if (!this.conn.trusted || this.trustList === undefined) return this.conn.clientAddress
    this.#client ??= trustedClientAddress(this.header('x-forwarded-for'), this.conn.clientAddress, this.trustList)
    return this.#client
  }

  /** A request header by lower-case name (see requestField). */
  header (name: string): string | undefined {
    return requestField(this.rawHeaders, name)
  }

  get httpVersion (): string {
    return this.h2 ? 'HTTP/2.0' : `HTTP/${(this.req as IncomingMessage).httpVersion ?? '1.1'}`
  }

  /** Its Content-Length, or the buffered body's size; undefined for a chunked body streamed upstream. */
  get requestBytes (): number | undefined {
    return this.contentLength ?? this.body?.length ?? (this.hasBody ? undefined : 0)
  }

  /** The plan is made: take what it decided. */
  adopt (p: Plan): void {
    this.plan = p
    this.authority = p.authority.value
    this.host = p.authority.host
    this.path = p.path
    this.route = p.route
    this.backend = p.backend
    this.shard = p.shard
    this.stickyId = p.stickyId
    this.primaryOnly = p.primaryOnly !== undefined
    this.upstreamHeaders = p.head.headers
    this.hasBody = this.h2 ? !(this.req as ServerHttp2Stream).endAfterHeaders : p.head.hasBody
    this.contentLength = p.head.contentLength
  }

  /** The plan refused the request: answer with its error, logging what was decided up to then. */
  refuse (r: Refusal): void {
    if (r.authority !== undefined) {
      this.authority = r.authority.value
      this.host = r.authority.host
    }
    if (r.path !== undefined) this.path = r.path
    this.route = r.route
    this.backend = r.backend
    this.shard = r.shard
    // A body in a coding we refuse: its framing is not trusted further, the connection closes after the 501.
    if (r.error === Errors.TRANSFER_CODING) this.hasBody = true
    this.sendError(r.error, r.detail)
  }

  /**
   * The plan answers with a redirect: Location and a one-line body, nothing
   * sent upstream or to the cache. A request body is not read: HTTP/1.1
   * closes the connection after the answer, HTTP/2 ends the stream.
   */
  redirected (r: Redirection): void {
    this.authority = r.authority.value
    this.host = r.authority.host
    this.path = r.path
    this.route = r.route
    const { status, location } = r.redirect
    const body = Buffer.from(`${status} ${REDIRECT_TEXT[status]}: ${location}\n`)
    this.#answerLocally(status, ['location', location, 'content-type', 'text/plain; charset=utf-8', 'content-length', String(body.length)], body)
  }

  /**
   * `OPTIONS *`: 200 with Content-Length: 0 and no Allow (see plan.ts's
   * ServerOptions). A request body is not read, as for a redirect.
   */
  serverOptions (o: ServerOptions): void {
    this.authority = o.authority.value
    this.host = o.authority.host
    this.path = o.path
    // RFC 9110 §9.3.7: Content-Length: 0 when there is no content.
    this.#answerLocally(200, ['content-length', '0'], undefined)
  }

  /**
   * An answer the plan makes itself (a redirect, OPTIONS *): nothing goes
   * upstream or to the cache, and a request body is not read: HTTP/1.1
   * closes the connection after the answer, HTTP/2 closes the stream with
   * NO_ERROR (RFC 9113 §8.1).
   */
  #answerLocally (status: number, headers: string[], body: Buffer | undefined): void {
    this.status = status
    const unread = this.h2 ? !(this.req as ServerHttp2Stream).endAfterHeaders : requestHasBody(this.req as IncomingMessage)
    if (unread && !this.h2) headers.push('connection', 'close')
    if (!this.writeHead(status, headers)) return
    if (body === undefined || this.method === 'HEAD') this.end()
    else {
      this.bytesOut += body.length
      this.end(body)
    }
    if (unread && this.h2) (this.res as ServerHttp2Stream).close(NGHTTP2_NO_ERROR)
  }

  /** The client has gone, or an answer has started: nothing more may be written. */
  get answered (): boolean {
    return this.closed || this.res.headersSent || this.#held !== undefined || this.res.destroyed
  }

  /** A response head has gone out, or is held to go out (see responseHead). */
  get #headSent (): boolean {
    return this.res.headersSent || this.#held !== undefined
  }

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

  /** The client took what waited (its drain), or the session ended: no send timeout is running. */
  sendDone (): void {
    if (this.#sendTimer !== undefined) clearTimeout(this.#sendTimer)
    this.#sendTimer = undefined
  }

  /** The client is too slow sending its request (see watchBody), or taking the response (sendTimeoutMs). */
  clientTimeout (kind: ErrorKind): void {
    this.bodyDone()
    if (this.closed) return
    this.error = kind
    this.handler?.abort()
    if (this.#headSent) return this.resetDownstream()
    this.sendError(kind)
    // The client may still be sending: answered, the stream ends with
    // RST_STREAM(NO_ERROR) (RFC 9113 §8.1), which Node sends once the
    // response is out.
    if (this.h2) (this.res as ServerHttp2Stream).close(NGHTTP2_NO_ERROR)
  }

  // Waiter: the pipeline picked a server, or gave up.

  send (server: Server): void {
    this.driver.dispatch(this, server)
  }

  fail (kind: ErrorKind): void {
    this.sendError(kind)
  }

  // ExchangeOwner: the upstream handler reports here.

  /** A failure before any response byte: another replica, when that is safe. */
  retry (kind: ErrorKind, err: Error): boolean {
    return !this.#headSent && this.driver.retry(this, kind, err)
  }

  /** CompressFlow: zlib has room again (the client's own drain resumes through onDrain). */
  resumeUpstream (): void {
    this.handler?.resume()
  }

  released (): void {
    const shard = this.shard
    if (shard !== undefined && shard.queue.size > 0) this.driver.drain(shard)
  }

  // ResponseSink: the upstream response, to the client.

  /**
   * An interim response ahead of the final one: the origin's 102 or 103, or
   * the route's early hints (a 103 of links). Only while no final head has
   * gone out, and never to an HTTP/1.0 client (1xx did not exist). A 103
   * without a link is not sent (Node's writeEarlyHints requires one, and a
   * browser uses nothing else). It is an optimisation: one Node refuses is
   * left out, nothing else happens.
   */
  responseInterim (status: 102 | 103, head: InterimHead): void {
    if ((status === 103 && head.link.length === 0) || this.answered) return
    // Advisory, and never paused upstream: past a few, or for a client that
    // is not taking what it was sent, they are dropped rather than held in
    // memory (an origin sending 103s without end grew the process by the
    // hundreds of MB it sent within the headers timeout).
    if (this.#interims >= MAX_INTERIM_RESPONSES) return
    try {
      if (this.h2) {
        const stream = this.res as ServerHttp2Stream
        if (stream.closed || stream.session?.socket?.writableNeedDrain !== false) return
        this.#interims++
        stream.additionalHeaders(status === 102 ? H2_PROCESSING : { ...head, ':status': 103 })
      } else if ((this.req as IncomingMessage).httpVersionMinor >= 1) {
        const res = this.res as ServerResponse
        if (res.socket?.writableNeedDrain !== false) return
        this.#interims++
        if (status === 102) res.writeProcessing()
        else res.writeEarlyHints(head)
      }
    } catch {
      // Not sent: the final response follows as usual.
    }
  }

  /** CacheClient: the upstream's response head arrived, whoever answers the client (this session or the cache). */
  upstreamAnswered (): void {
    this.upstreamMs = performance.now() - this.dispatchedAt
  }

  responseHead (status: number, statusText: string, headers: string[]): boolean {
    if (this.answered) return false
    this.upstreamAnswered()
    if (this.setCookie !== undefined) headers.push('set-cookie', this.setCookie)
    // A successful write on a readYourWrites route: this client's reads of the shard go to the primary for the window.
    const ryw = this.plan?.readYourWrites
    if (ryw !== undefined && status >= 200 && status < 400) {
      const value = ryw.ryw.write(ryw.written, ryw.tag, Date.now() + ryw.window)
      headers.push('set-cookie', ryw.ryw.setCookie(value, ryw.window, this.conn.proto === 'https'))
    }
    this.status = status
    if (this.h2) {
      this.upstreamHead = headers
      const stream = this.res as ServerHttp2Stream
      if (stream.closed) return false // reset meanwhile: as #respond
      // Held until undici has parsed the read that brought it (flushHead, next
      // tick): a response that ends within that read, most small ones, goes
      // out whole without waiting for trailers (responseEnd); any other
      // streams, and may end with trailers.
      this.#held = []
      process.nextTick(flushHead, this)
      return true
    }
    // The origin's reason phrase, when it is plain text; else Node's standard one.
    const reason = PLAIN_REASON.test(statusText) ? statusText : ''
    // The plain keep-alive case without writeHead (h1-head.ts): checked and written in one pass.
    if (RAW_HEADS && !this.driver.draining && !this.listener.closing) {
      const head = h1Head(status, headers, reason === '' ? undefined : reason)
      const extra = this.#h1Extra()
      if (head !== null && extra !== null && writeRawHead(this.res as ServerResponse, status, head.lines, extra)) {
        this.wholeBody = head.contentLength
        return true
      }
    }
    return this.writeHead(status, headers, reason)
  }

  responseData (chunk: Buffer): boolean {
    const res = this.res as ServerResponse
    this.bytesOut += chunk.length
    if (this.#held !== undefined) {
      this.#held.push(chunk)
      return true
    }
    // The whole body in its first chunk, after a raw head: both in one write (h1-head.ts).
    if (this.wholeBody >= 0) {
      const whole = chunk.length === this.wholeBody
      this.wholeBody = -1
      if (whole && writeRawBody(res, chunk)) return true
    }
    if (res.write(chunk)) return true
    this.#awaitDrain()
    return false
  }

  /** A write came back false: wait for the client's drain, for sendTimeoutMs at most. */
  #awaitDrain (): void {
    // undici is not always paused by a false (see ForwardHandler.onData): more
    // chunks may come before the drain, and each must not add a listener.
    if (this.awaitingDrain) return
    this.awaitingDrain = true
    this.res.once('drain', onDrain)
    if (this.sendTimeoutMs > 0) this.#sendTimer = setTimeout(onSendTimeout, this.sendTimeoutMs, this)
  }

  /** The client took what waited (onDrain): the rest of a sliced body, or more from upstream. */
  drained (): void {
    this.awaitingDrain = false
    this.sendDone()
    if (this.#unsent !== undefined) this.#sendSlices()
    else this.handler?.resume()
  }

  responseEnd (trailers: Buffer[]): void {
    if (!this.h2) {
      if (trailers.length > 0) {
        const t = trailerObject(trailers)
        if (t !== undefined) (this.res as ServerResponse).addTrailers(t)
      }
      this.res.end()
      return
    }
    // Sent on 'wantTrailers', when the stream was opened to wait for them.
    if (trailers.length > 0) this.trailers = trailerObject(trailers)
    else if (this.bytesOut === 0 && this.upstreamHead !== undefined) this.trailers = grpcTrailersOnly(this.upstreamHead)
    // The whole response is in hand: nothing can cut its body any more, so
    // it needs no wait for trailers (see #respond) unless it has some.
    if (this.#held !== undefined && !this.#release(this.trailers !== undefined)) return
    // Without a listener Node sends empty trailers itself; 'wantTrailers' comes only after end().
    if (this.trailers !== undefined) this.res.on('wantTrailers', onWantTrailers) // fires once; `on` spares once()'s wrapper
    this.end()
    // The origin may answer before the client's body is all sent (a 413).
    if (this.hasBody && this.trailers === undefined) this.#endUpload()
  }

  /**
   * h2: the answer is complete while the client may still be sending its
   * body: RST_STREAM(NO_ERROR) once the answer is out (RFC 9113 §8.1; Node
   * does so itself only for a stream it never read). Without it the client
   * waits on flow control for a stream nobody reads any more.
   */
  #endUpload (): void {
    if (!(this.req as ServerHttp2Stream).readableEnded) (this.res as ServerHttp2Stream).close(NGHTTP2_NO_ERROR)
  }

  /**
   * h2: the held head goes out as a streamed response, with the body chunks
   * held with it (see responseHead). A write over the high-water mark is not
   * waited on here: the next chunk's write sees it and pauses upstream.
   */
  flushHead (): void {
    if (this.#held !== undefined) this.#release(true)
  }

  /** The held head goes out (`streamed`: see #respond), then the chunks held with it; false when the head could not. */
  #release (streamed: boolean): boolean {
    const held = this.#held!
    this.#held = undefined
    if (!this.#respond(this.status, this.upstreamHead!, streamed)) return false
    const stream = this.res as ServerHttp2Stream
    for (let i = 0; i < held.length; i++) stream.write(held[i])
    return true
  }

  responseError (kind: ErrorKind, err: Error): void {
    if (kind === Errors.CLIENT_ABORTED) {
      this.error ??= kind
      return
    }
    this.error = kind
    if (!this.#headSent) return this.sendError(kind, err.message)
    // Mid-body failure: never let a truncated body pass as complete.
    this.resetDownstream()
  }

  /**
   * Every response head goes out through here. Node throws on what it will not
   * send (a field HTTP/2 forbids, a bad value): that must never escape a
   * request, so it becomes an internal error that resets only this stream or
   * connection. False when the head could not be written. While draining,
   * HTTP/1.1 answers say Connection: close. The route's rate-limit fields are
   * added here.
   */
  writeHead (status: number, headers: readonly string[], statusText = ''): boolean {
    if (this.h2) return this.#respond(status, headers, false)
    try {
      const res = this.res as ServerResponse
      if (this.driver.draining || this.listener.closing) res.shouldKeepAlive = false
      // Upstream, cached and our own answers alike (the cache stores the upstream's head, never these).
      const all = this.extraFields === undefined ? headers : headers.concat(this.extraFields)
      try {
        writeH1Head(res, status, statusText, all)
      } catch (err) {
        // Node refuses a Trailer field on an answer it does not send chunked
        // (a Content-Length, HEAD, 204/304, an HTTP/1.0 client, a cache hit):
        // the field announces trailers that cannot come, so it goes, not the answer.
        if ((err as { code?: unknown }).code !== 'ERR_HTTP_TRAILER_INVALID') throw err
        writeH1Head(res, status, statusText, withoutField(all, 'trailer'))
      }
      return true
    } catch (err) {
      this.fault(err)
      return false
    }
  }

  /**
   * A plain cache hit: its prepared head, body and end. On HTTP/1.1 the head
   * is checked and serialised once per hit head, and head and body usually
   * go out in one write (h1-head.ts). On HTTP/2 its header object is made
   * once and kept in `head` for the next h2 hit (Node copies it in
   * respond(), never changes it); rate-limit fields make it a per-request one.
   */
  sendHit (status: number, head: HitHead, body: Buffer | undefined): void {
    if (!this.h2) {
      if (RAW_HEADS && !this.driver.draining && !this.listener.closing) {
        if (head.h1 === undefined) {
          const made = head.h1 = h1HeadLines(status, head.fields)
          if (made !== null) head.h1Bytes = Buffer.from(made, 'latin1')
        }
        const lines = head.h1
        if (lines !== null) {
          const extra = this.#h1Extra()
          if (extra !== null) {
            // A large body goes out a slice at a time (end), after the raw head.
            if (body !== undefined && body.length > SEND_SLICE && this.sendTimeoutMs > 0) {
              if (writeRawHead(this.res as ServerResponse, status, lines, extra)) return this.end(body)
            } else if (writeRawResponse(this.res as ServerResponse, status, lines, extra, body, head.h1Bytes)) {
              if (this.sendTimeoutMs > 0) this.#watchEnd()
              return
            }
          }
        }
      }
      if (this.writeHead(status, head.fields)) this.end(body)
      return
    }
    if (this.#respond(status, head.fields, false, head)) this.end(body)
  }

  /**
   * writeHead on HTTP/2: one header object straight to respond(). `streamed`:
   * the body follows in chunks, or has trailers. Such a stream always waits
   * for trailers (empty ones, which Node sends when nobody listens for
   * 'wantTrailers', end it), even with a Content-Length:
   * then a reset mid-body (stream.close ends the writable side first) can
   * never put END_STREAM on the wire before the RST_STREAM, which would make
   * a truncated body look complete.
   */
  #respond (status: number, headers: readonly string[], streamed: boolean, hit?: HitHead): boolean {
    const stream = this.res as ServerHttp2Stream
    // Reset or gone: there is no head to write (as the compatibility layer did, silently).
    if (stream.closed || stream.destroyed) return false
    try {
      const extra = this.extraFields
      if (hit !== undefined) {
        const shared = hit.h2 ??= h2Head(status, headers, undefined)
        if (extra === undefined) stream.respond(shared, H2_BODY)
        else respondLending(stream, shared, extra, status, headers)
        return true
      }
      const head = h2Head(status, headers, extra)
      // The trailers' listener comes with them (responseEnd).
      stream.respond(head, streamed ? H2_TRAILERS : H2_BODY)
      return true
    } catch (err) {
      this.fault(err)
      return false
    }
  }

  /**
   * The end of an answer, with the whole of its body or the rest of it. With
   * clientSend on, a client that does not take it is timed as for a streamed
   * response: a large body goes out a slice at a time (SEND_SLICE), and the
   * last write is watched if it backed up (#watchEnd).
   */
  end (body?: Buffer): void {
    if (this.h2) {
      this.flushHead()
      const stream = this.res as ServerHttp2Stream
      // respond() has already ended a HEAD, 204 or 304 answer (and a reset one): no body may follow.
      if (stream.writableEnded || stream.destroyed) {
        this.ended = true
        return
      }
    }
    if (body !== undefined && body.length > SEND_SLICE && this.sendTimeoutMs > 0) {
      this.#unsent = body
      return this.#sendSlices()
    }
    this.#endWith(body)
  }

  #endWith (body: Buffer | undefined): void {
    if (this.h2) this.ended = true
    if (body === undefined) this.res.end()
    else this.res.end(body)
    if (this.sendTimeoutMs > 0) this.#watchEnd()
  }

  /** #unsent, a slice at a time, until a write backs up (its drain comes back here through drained) or the last slice ends the answer. */
  #sendSlices (): void {
    const res = this.res
    let rest = this.#unsent!
    if (this.closed || res.destroyed) {
      this.#unsent = undefined
      return
    }
    while (rest.length > SEND_SLICE) {
      const ok = res.write(rest.subarray(0, SEND_SLICE))
      rest = rest.subarray(SEND_SLICE)
      if (!ok) {
        this.#unsent = rest
        return this.#awaitDrain()
      }
    }
    this.#unsent = undefined
    this.#endWith(rest)
  }

  /**
   * The last write of an answer backed up (beyond the connection's or the
   * stream's high-water mark): the client has sendTimeoutMs to take it,
   * until the response closes (sendDone). Nothing is armed when it did not:
   * the usual small hit costs one property read here.
   */
  #watchEnd (): void {
    if (this.#sendTimer !== undefined || this.closed) return
    const backedUp = this.h2
      ? (this.res as ServerHttp2Stream).writableLength >= (this.res as ServerHttp2Stream).writableHighWaterMark
      // After end() the response itself never says: its socket does (a pipelined answer waiting its turn has none yet).
      : (this.res as ServerResponse).socket?.writableNeedDrain === true
    if (backedUp) this.#sendTimer = setTimeout(onSendTimeout, this.sendTimeoutMs, this)
  }

  /** extraFields as HTTP/1.1 field lines ('' for none); null when one would be refused (then writeHead writes the head). */
  #h1Extra (): string | null {
    return this.extraFields === undefined ? '' : this.extraLines ?? h1ExtraLines(this.extraFields)
  }

  /** Add `flat` (name, value…) to every answer of this request (see extraFields). */
  addFields (flat: readonly string[]): void {
    this.extraLines = undefined
    if (this.extraFields === undefined) this.extraFields = flat.slice()
    else for (let i = 0; i < flat.length; i++) this.extraFields.push(flat[i]!)
  }

  /** Something threw while answering: count it, log it, reset this stream or connection. */
  fault (err: unknown): void {
    this.error = Errors.INTERNAL
    this.status = Errors.INTERNAL.status
    this.errorDetail = err instanceof Error ? err.message : String(err)
    this.#held = undefined // no head of an answer that failed: the reset is all that goes out
    this.driver.internalError(this, err)
    this.handler?.abort()
    this.resetDownstream()
  }

  /** Answer with one of our errors (status, code header, short text body). */
  sendError (kind: ErrorKind, detail?: string): void {
    this.error = kind
    this.status = kind.status
    if (detail !== undefined) this.errorDetail = detail
    const res = this.res
    if (this.#headSent || res.destroyed) {
      this.resetDownstream()
      return
    }
    if (this.h2 && isGrpcRequest(this.header('content-type'))) return this.#grpcError(kind)
    const body = errorBody(kind, kind === Errors.NO_ROUTE ? `${this.method} ${this.authority}${this.path}` : undefined)
    const headers = [
      'content-type', 'text/plain; charset=utf-8',
      'content-length', String(body.length),
      'x-content-type-options', 'nosniff',
      'x-switchyard-error', kind.code
    ]
    if (kind.status === 503) headers.push('retry-after', '1')
    // A request answered before its body was read (408, 400…, or a 502 or
    // 503 while it still uploads) leaves the rest of the body in the
    // connection, where the next request would be looked for: HTTP/1.1
    // closes it (after the answer, lingering: linger.ts).
    if (!this.h2 && this.hasBody && (kind.source === 'downstream' || !this.req.readableEnded)) headers.push('connection', 'close')
    if (!this.writeHead(kind.status, headers)) return
    if (this.method === 'HEAD') this.end()
    else {
      this.bytesOut += body.length
      this.end(body)
    }
    // A 502 while the client still uploads, a 408 for one too slow.
    if (this.h2 && this.hasBody) this.#endUpload()
  }

  /** sendError to a gRPC client: one HEADERS frame that ends the stream (Trailers-Only), the status in grpc-status. */
  #grpcError (kind: ErrorKind): void {
    const stream = this.res as ServerHttp2Stream
    if (stream.closed || stream.destroyed) return
    this.status = 200
    this.ended = true
    try {
      stream.respond(h2Head(200, grpcErrorFields(kind), this.extraFields), H2_END)
    } catch (err) {
      this.fault(err)
    }
  }

  resetDownstream (): void {
    const res = this.res
    // A held head goes out first, as it would have without the hold: the reset then cuts its body.
    this.flushHead()
    try {
      if (this.h2) (res as ServerHttp2Stream).close(NGHTTP2_INTERNAL_ERROR)
      else {
        flushHeldHead(res as ServerResponse)
        res.destroy()
      }
    } catch {
      // Already gone: nothing left to reset.
    }
  }
}

function flushHead (s: Session): void { s.flushHead() }

function onDrain (this: DownstreamResponse): void {
  (this as unknown as { [kSession]?: Session })[kSession]?.drained()
}

function onWantTrailers (this: ServerHttp2Stream): void {
  const s = (this as unknown as { [kSession]?: Session })[kSession]
  if (this.closed || this.destroyed) return // reset meanwhile: nothing more goes out
  try {
    this.sendTrailers(s?.trailers ?? NO_TRAILERS)
  } catch (err) {
    // A trailer Node refuses: contained to this stream, like a head.
    if (s === undefined) this.close(NGHTTP2_INTERNAL_ERROR)
    else s.fault(err)
  }
}

const NO_TRAILERS = Object.freeze({})

/**
 * A gRPC Trailers-Only answer (status in the one HEADERS frame, with
 * END_STREAM) reaches us as a head and an end: it goes out as a head without
 * END_STREAM (respond() must choose before the end is known), so its status
 * is repeated in the trailers, where a gRPC client reads it. Undefined for
 * anything else (an empty body with no grpc-status).
 */
export function grpcTrailersOnly (head: readonly string[]): Record<string, string> | undefined {
  let out: Record<string, string> | undefined
  for (let i = 0; i + 1 < head.length; i += 2) {
    const name = head[i]!
    if (name.length < 11 || (name.charCodeAt(0) | 32) !== 103) continue // 'g'
    const lower = name.toLowerCase()
    if (lower === 'grpc-status' || lower === 'grpc-message' || lower === 'grpc-status-details-bin') (out ??= {})[lower] = head[i + 1]!
  }
  return out?.['grpc-status'] === undefined ? undefined : out
}


/**
 * An HTTP/2 response head for respond(): names lower-cased, repeated fields as
 * arrays (Node refuses a repeated one-value field: the caller contains it).
 * A field name Node would send as it is but HTTP forbids is refused here;
 * `Connection` is dropped, as the compatibility layer did (the other
 * connection-specific fields make respond() throw; none reach here).
 */
export function h2Head (status: number, flat: readonly string[], extra: readonly string[] | undefined): OutgoingHttpHeaders {
  const head = new (H2Fields as unknown as new () => Record<string, string | string[] | number>)()
  head[':status'] = status
  addFields(head, flat)
  if (extra !== undefined) addFields(head, extra)
  return head
}

/**
 * A head object with no inherited names (a field may be called `constructor`
 * or `__proto__`) that keeps V8's fast properties: Object.create(null) makes a
 * dictionary, which respond() copies field by field more slowly.
 */
function H2Fields (): void {}
H2Fields.prototype = Object.create(null) as object

function addFields (head: Record<string, string | string[] | number>, flat: readonly string[]): void {
  for (let i = 0; i + 1 < flat.length; i += 2) {
    const name = flat[i]!.toLowerCase()
    if (!LOWER_FIELD_NAME.test(name)) throw Object.assign(new TypeError(`Header name must be a valid HTTP token ["${name}"]`), { code: 'ERR_INVALID_HTTP_TOKEN' })
    if (name === 'connection') continue
    const value = flat[i + 1]!
    const prev = head[name]
    if (prev === undefined) head[name] = value
    else if (typeof prev === 'string') head[name] = [prev, value]
    else (prev as string[]).push(value)
  }
}

/**
 * respond() with a cache hit's shared h2 head plus this request's own fields,
 * without copying the head: the fields are set on it for the call and taken
 * off again. Safe because respond() copies the head synchronously and
 * changes nothing in it; a field the head already has would be lost, so then
 * a head of the request's own is made instead. Taken off means set to
 * undefined, which respond() skips, not deleted: a delete would turn the
 * shared head into a slow dictionary object for every later hit.
 */
function respondLending (stream: ServerHttp2Stream, shared: OutgoingHttpHeaders, extra: readonly string[],
  status: number, fields: readonly string[]): void {
  for (let i = 0; i < extra.length; i += 2) {
    if (shared[extra[i]!.toLowerCase()] !== undefined) {
      stream.respond(h2Head(status, fields, extra), H2_BODY)
      return
    }
  }
  const lent = shared as Record<string, string | string[] | number | undefined>
  try {
    for (let i = 0; i < extra.length; i += 2) {
      const name = extra[i]!.toLowerCase()
      const prev = lent[name]
      lent[name] = prev === undefined ? extra[i + 1]! : Array.isArray(prev) ? [...prev, extra[i + 1]!] : [String(prev), extra[i + 1]!]
    }
    stream.respond(shared, H2_BODY)
  } finally {
    for (let i = 0; i < extra.length; i += 2) lent[extra[i]!.toLowerCase()] = undefined
  }
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

/** An HTTP/1.1 request that announces a body (RFC 9112 §6.3). */
function requestHasBody (req: IncomingMessage): boolean {
  const h = req.headers
  return h['transfer-encoding'] !== undefined || (h['content-length'] !== undefined && h['content-length'] !== '0')
}
