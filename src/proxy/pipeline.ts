// The request pipeline: one readable function calling the phases in a fixed
// order (Pingora's process_request): plan (parse → route → shard → sticky →
// upstream head → cache decision, see plan.ts) → access (allow/deny, basicAuth)
// → rate limit → cache lookup →
// pick → forward, then the response streams back through the sink (the
// session, or the cache in front of it). A phase either lets the request continue or
// answers it; there is no middleware chain. Picking, queueing at maxConn and
// retrying are one mechanism for ordinary requests and WebSocket upgrades.
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { IncomingHttpHeaders, ServerHttp2Stream } from 'node:http2'
import type { Socket } from 'node:net'
import { Transform, type Readable } from 'node:stream'
import { Errors, type ErrorKind } from '../errors.js'
import { connectFailure, ForwardHandler, refusedStream, reissuable, retryableFailure, type ResponseSink } from '../upstream/pool.js'
import type { Waiter } from '../upstream/queue.js'
import type { Server } from '../upstream/server.js'
import type { Shard } from '../upstream/shard.js'
import type { AccessVerdict } from './access.js'
import { cacheLookup, type CacheForwarder } from './cache-phase.js'
import { clientAddressOf } from '../listener/proxy-accept.js'
import { plan, upstreamRequest, type Plan } from './plan.js'
import { CompressorBudget, CompressSink, MAX_HEAVY_COMPRESSORS } from './compression/sink.js'
import { RefreshSink, type RefreshExchange } from './refresh.js'
import { kSession, Session, type ConnectionInfo, type DownstreamRequest, type DownstreamResponse,
  type ListenerContext, type SessionDriver } from './session.js'
import type { RuntimeState } from './state.js'
import { Tunnel } from './upgrade.js'
import type { Verdict } from '../ratelimit/gcra.js'
import type { RouteLimit } from '../ratelimit/limiter.js'
import { IdSource, traceRequest } from '../tracing/context.js'
import { requestField } from '../fields.js'

export type { RuntimeState } from './state.js'

export interface PipelineHooks {
  /** Called once per request when its session ends (response done, reset or client gone). */
  onSessionEnd?: (session: Session) => void
  /** Called once per WebSocket upgrade (or HTTP/1.1 CONNECT): when it is answered without a tunnel, or its tunnel closes. */
  onTunnelEnd?: (tunnel: Tunnel) => void
  /**
   * Something threw while handling a request: a bug, contained to that request
   * (its stream or connection is reset). Count it and log it.
   */
  onInternalError?: (err: unknown, session: Session | undefined) => void
  /** A stale-while-revalidate refresh `session` started has ended (see refresh.ts): record it. */
  onRefreshEnd?: (session: Session, refresh: RefreshExchange) => void
}

const kConn = Symbol('switchyard.conn')
type ConnHolder = { [kConn]?: ConnectionInfo & { readonly state: RuntimeState } }

export class Pipeline implements SessionDriver, CacheForwarder<Session> {
  #state: RuntimeState
  readonly #hooks: PipelineHooks
  readonly #ids = new IdSource()
  /** Live brotli/zstd streams of this process (their megabytes bounded). */
  readonly #compressors = new CompressorBudget(MAX_HEAVY_COMPRESSORS)
  /** Shutting down: every HTTP/1.1 response closes its connection (h2 gets GOAWAY from the listener). */
  draining = false

  constructor (state: RuntimeState, hooks: PipelineHooks = {}) {
    this.#state = state
    this.#hooks = hooks
    this.#wakeOnAvailable(state)
  }

  get state (): RuntimeState { return this.#state }

  /** Atomic swap: requests already running keep the state they started with. */
  swap (state: RuntimeState): void {
    this.#state = state
    this.#wakeOnAvailable(state)
  }

  /** A server of `state` that becomes available takes its shard's waiters at once (Server.onAvailable). */
  #wakeOnAvailable (state: RuntimeState): void {
    for (const backend of state.backends.values()) {
      for (const shard of backend.shards) {
        const wake = (): void => { if (shard.queue.size > 0) this.drain(shard) }
        for (const server of shard.servers) server.onAvailable = wake
      }
    }
  }

  /**
   * One HTTP/1.1 request. `bodyless`: its connection can no longer carry a request body
   * (Node handed the socket over for an Upgrade we do not tunnel), so a
   * request that announces one is refused rather than left waiting.
   */
  handleRequest (req: IncomingMessage, res: ServerResponse, listener: ListenerContext, bodyless = false): void {
    let s: Session | undefined
    try {
      const state = this.#state
      s = new Session(req, res, listener, connectionInfo(req, false, listener, state), performance.now(), this)
      ;(res as unknown as { [kSession]: Session })[kSession] = s
      res.on('close', onResponseClose) // fires once; `on` spares once()'s wrapper
      s.trustList = state.trustedProxies
      // Every answer, upstream, cached or our own, is timed when the client stops taking it.
      s.sendTimeoutMs = state.config.timeouts.clientSend
      if (this.#hooks.onSessionEnd !== undefined) s.onEnd = this.#hooks.onSessionEnd
      this.#handle(s, state, bodyless)
    } catch (err) {
      // Nothing a request carries may escape into the server: contain it here.
      if (s !== undefined) return s.fault(err)
      this.#hooks.onInternalError?.(err, undefined)
      try { res.destroy() } catch {}
    }
  }

  /** One HTTP/2 stream (node:http2's core API: the stream is the request body and the response). */
  handleStream (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, rawHeaders: string[], listener: ListenerContext): void {
    let s: Session | undefined
    try {
      // A stream destroyed with an error emits it: ours to ignore (the close that follows ends the session).
      stream.on('error', ignore)
      const state = this.#state
      s = new Session(stream, stream, listener, connectionInfo(stream, true, listener, state), performance.now(), this,
        { headers, rawHeaders })
      ;(stream as unknown as { [kSession]: Session })[kSession] = s
      stream.on('close', onResponseClose)
      s.trustList = state.trustedProxies
      // Every answer, upstream, cached or our own, is timed when the client stops taking it.
      s.sendTimeoutMs = state.config.timeouts.clientSend
      if (this.#hooks.onSessionEnd !== undefined) s.onEnd = this.#hooks.onSessionEnd
      this.#handle(s, state, false)
    } catch (err) {
      if (s !== undefined) return s.fault(err)
      this.#hooks.onInternalError?.(err, undefined)
      try { stream.close(NGHTTP2_INTERNAL_ERROR) } catch {}
    }
  }

  /** The phases, in order. */
  #handle (s: Session, state: RuntimeState, bodyless: boolean): void {
    const p = plan(state, s)
    // An answer of ours before any route took the request gets a request id as every answer
    // does (never an untrusted client's, which would forge log lines' ids); no head goes upstream.
    if ('error' in p) {
      this.#identify(s, state, s.rawHeaders.slice())
      return s.refuse(p)
    }
    // An `HTTP/2.0` (or any other) request line on an HTTP/1.1 connection; a malformed request is a 400 first.
    if (!s.h2 && (s.req as IncomingMessage).httpVersionMajor !== 1) {
      this.#identify(s, state, s.rawHeaders.slice())
      return s.sendError(Errors.HTTP_VERSION, `HTTP/${(s.req as IncomingMessage).httpVersion} request line`)
    }
    if ('redirect' in p || 'options' in p) {
      this.#identify(s, state, s.rawHeaders.slice())
      return 'redirect' in p ? s.redirected(p) : s.serverOptions(p)
    }
    s.adopt(p)
    // request id and trace: into the upstream head (its own copy per request)
    this.#identify(s, state, s.upstreamHeaders)
    if (bodyless && s.hasBody) return s.sendError(Errors.BAD_REQUEST, 'a request body after an Upgrade that is not tunnelled')
    // access: the route's allow/deny and basicAuth, before the rate limit, the cache and any upstream
    const access = p.route.access
    if (access === undefined) return this.#limit(s, state, p)
    const a = access.check(s.clientAddress, s.header('authorization'))
    if (!(a instanceof Promise)) return this.#admitted(s, state, p, a)
    a.then((a) => { if (!s.closed) this.#admitted(s, state, p, a) }).catch((err: unknown) => s.fault(err))
  }

  /** The route's access verdict: a refusal carries its challenge (401) or nothing (403). */
  #admitted (s: Session, state: RuntimeState, p: Plan, denial: AccessVerdict): void {
    if (denial === undefined) return this.#limit(s, state, p)
    s.addFields(denial.fields)
    s.sendError(denial.error, denial.detail)
  }

  /** rate limit: the route's, before the cache and any upstream; Redis answers later */
  #limit (s: Session, state: RuntimeState, p: Plan): void {
    const limit = p.route.rateLimit
    if (limit === undefined) return this.#serve(s, state, p)
    const v = limit.check(s)
    if (!(v instanceof Promise)) return this.#limited(s, state, p, limit, v)
    v.then((v) => { if (!s.closed) this.#limited(s, state, p, limit, v) }).catch((err: unknown) => s.fault(err))
  }

  /** `s`'s trace, written into `head`, and its request id onto every answer (the first extra fields). */
  #identify (s: Session, state: RuntimeState, head: string[]): void {
    const id = this.#trace(s, state, head)
    // Its field line, unchecked: the name was at load, and the id is ours or passed REQUEST_ID (visible ASCII).
    if (id !== undefined && !s.h2 && state.requestIdLine !== undefined) s.extraLines = state.requestIdLine + id + '\r\n'
  }

  /** The trace of a session or tunnel, written into `head`, and its request id onto its answers; the id. */
  #trace (x: Session | Tunnel, state: RuntimeState, head: string[]): string | undefined {
    const trace = x.trace = traceRequest(head, x.conn.trusted, state.trace, this.#ids)
    if (trace.requestId !== undefined) x.extraFields = [state.trace.requestIdHeader!, trace.requestId]
    return trace.requestId
  }

  /** The route's verdict: every response of the session carries its fields; a refusal is a 429. */
  #limited (s: Session, state: RuntimeState, p: Plan, limit: RouteLimit, v: Verdict): void {
    s.addFields(limit.responseFields(v))
    if (!v.allowed) return s.sendError(Errors.RATE_LIMITED)
    this.#serve(s, state, p)
  }

  /** The cache phase, then upstream. */
  #serve (s: Session, state: RuntimeState, p: Plan): void {
    // cache: answer from it, wait on a collapsed fetch, or put the cache in front of the session
    const cache = state.cache
    if (p.cache !== undefined && cache !== undefined && cacheLookup(s, {
      cache, route: p.route.cache!, opts: p.route.cacheOptions!, at: p.cache, purgeFrom: state.purgeFrom,
      paths: state.config.pathNormalization
    }, this)) return
    this.forward(s)
  }

  /** CacheForwarder + the tail of #handle: send the request body (buffered or streamed) and attempt. */
  forward (s: Session): void {
    const req = s.req
    const backend = s.backend!
    // compression: between upstream and the cache (which then stores the compressed variant) or the client
    const compression = s.route!.compression
    if (compression !== undefined) s.sink = new CompressSink(s.sink, compression, s.plan!.compression!.coding, s.method, s, this.#compressors)
    // The route's early hints, while the origin works on the answer (not for cache hits: they answer at once).
    const hints = s.route!.earlyHints
    if (hints !== undefined) s.responseInterim(103, hints)
    const timeouts = this.#state.config.timeouts
    if (!s.hasBody) return this.#attemptSession(s)
    s.watchBody(timeouts.clientBody, timeouts.request)

    // h2: a client RST_STREAM ends the request body as if it were complete
    // (Node pushes EOF before the response closes); cancel upstream first so a
    // truncated upload never reaches the origin as a whole one.
    if (s.h2) req.once('aborted', () => { s.error ??= Errors.CLIENT_ABORTED; s.handler?.abort() })
    // A small body is buffered so a retry can replay it: any method's, since
    // a refused connection is retried whatever the method (nothing reached
    // the server). So is one of unknown length (chunked, or h2 without
    // Content-Length) to an HTTP/1.1 backend, up to the same size, to go
    // upstream with a Content-Length as nginx sends it: an origin that ignores
    // chunked framing on a GET would take the body's bytes for its next
    // request (the TE.0 desync). HTTP/2 backends frame any body, and a gRPC
    // stream must flow both ways at once. Anything else streams straight
    // through and is never retried.
    const retries = backend.config.retries
    const length = s.contentLength
    if (length === undefined ? backend.config.protocol === 'http1' : retries.attempts > 0 && length <= retries.bufferBodyBytes) {
      readBody(s, length, retries.bufferBodyBytes, (r) => {
        if (r === undefined || s.closed) return // client went away mid-body
        if (r.whole !== undefined) {
          s.body = r.whole
          return this.#attemptSession(s)
        }
        // RFC 9110 §9.3.1, §9.3.2, §9.3.5, §9.3.7, §9.3.8: a GET, HEAD, DELETE,
        // OPTIONS or TRACE body has no defined meaning (the methods TE.0
        // smuggles with); past what we frame with a Content-Length it is
        // refused rather than sent chunked.
        if (NO_BODY_MEANING.has(s.method)) {
          s.bodyDone()
          return s.sendError(Errors.BODY_TOO_LARGE, `more than ${retries.bufferBodyBytes} bytes (bufferBodyBytes) without a Content-Length`)
        }
        this.#stream(s, r.head)
      })
      return
    }
    this.#stream(s, undefined)
  }

  /** Send the request body as it arrives (after `head`, what was read of it already): chunked unless its length is known. */
  #stream (s: Session, head: readonly Buffer[] | undefined): void {
    s.replayable = false
    s.bodyStream = watchedBody(s, head)
    this.#attemptSession(s)
  }

  /**
   * A session's attempt can come after a reload committed (a collapsed cache
   * miss waking up, a body read, a retry): its backend's servers are retired
   * then, their pools closing. It goes to the live backend's shard of the
   * same name instead (sticky ids and shard hashing are the same there).
   */
  #attemptSession (s: Session): void {
    if (s.backend!.retired) this.#relocate(s)
    this.#attempt(s)
  }

  #relocate (s: Session): void {
    const live = this.#state.backends.get(s.backend!.name)
    const shard = live?.shards.find((x) => x.name === s.shard!.name)
    if (live === undefined || shard === undefined) return // gone from the config: its retired servers answer 503
    s.backend = live
    s.shard = shard
  }

  /** CacheForwarder: fetch `s`'s request in the background into `sink` (stale-while-revalidate), as a GET. */
  refresh (s: Session, sink: ResponseSink): void {
    const onEnd = this.#hooks.onRefreshEnd
    const recorder = onEnd === undefined ? undefined : new RefreshSink(sink, (x) => { onEnd(s, x) })
    if (recorder !== undefined) sink = recorder
    const shard = s.shard!
    const server = shard.balancer.pick(s)
    if (server === undefined) return sink.responseError(Errors.NO_HEALTHY_SERVER, new Error('no server to refresh from'))
    if (recorder !== undefined) recorder.server = server
    const owner = { released: () => { if (shard.queue.size > 0) this.drain(shard) } }
    // Compressed as a foreground answer would be, so the refreshed entry is the same variant.
    const compression = s.route!.compression
    let handler: ForwardHandler | undefined
    if (compression !== undefined) {
      sink = new CompressSink(sink, compression, s.plan!.compression!.coding, 'GET',
        { awaitingDrain: false, resumeUpstream: () => handler?.resume() }, this.#compressors)
    }
    // The same head a foreground request would send (with our validators), without a body.
    handler = new ForwardHandler(server, s.backend!, owner, sink, s.route!.shapeResponse, false)
    handler.dispatch(upstreamRequest(s.plan!, server, null, s.upstreamHeaders, 'GET', s.conn.socket))
  }

  /**
   * CacheForwarder: `s`'s request once more, into `sink` (a revalidation's 304
   * named another representation): a new first attempt with its own retries,
   * compressed as the first was, without the early hints it already sent.
   */
  refetch (s: Session, sink: ResponseSink): boolean {
    if (!s.replayable) return false
    const compression = s.route!.compression
    s.sink = compression === undefined ? sink : new CompressSink(sink, compression, s.plan!.compression!.coding, s.method, s, this.#compressors)
    s.attempts = 0
    s.tried = []
    this.#attemptSession(s)
    return true
  }

  /** pick → send, or queue when every usable server is at maxConn. First tries, dequeues and upgrades alike. */
  #attempt (w: Waiter & { readonly shard: Shard | undefined }): void {
    const shard = w.shard!
    w.panic = shard.panic()
    const server = shard.balancer.pick(w)
    if (server !== undefined) return w.send(server)
    // consistency: a request only the primary may answer is never sent to a replica instead.
    if (!shard.anyBusy(w)) return w.fail(w.primaryOnly === true ? Errors.PRIMARY_UNAVAILABLE : Errors.NO_HEALTHY_SERVER)
    if (!shard.queue.push(w)) return w.fail(Errors.QUEUE_FULL)
    w.queueTimer = setTimeout(onQueueTimeout, shard.queueTimeout, w, shard)
  }

  /**
   * SessionDriver: a slot of `shard` is free; hand it to the oldest waiter
   * that can use it. One that cannot (a write only the primary may take, a
   * retry that tried that server) keeps its place, and those behind it are
   * offered the slot: HAProxy keeps such a request in its server's own queue,
   * so it never holds up the backend's.
   */
  drain (shard: Shard): void {
    // Bounded by the waiters there now: one queued again while this runs waits for the next drain.
    let left = shard.queue.size
    for (const w of shard.queue) {
      if (left-- === 0) return
      if (w.closed) {
        shard.queue.remove(w)
        clearTimeout(w.queueTimer)
        continue
      }
      w.panic = shard.panic()
      const server = shard.balancer.pick(w)
      // Still busy, or not a server it may use: it waits on, in its place, on its own timer.
      if (server === undefined && shard.anyBusy(w)) continue
      shard.queue.remove(w)
      clearTimeout(w.queueTimer)
      if (server !== undefined) {
        w.send(server)
        if (!shard.anyRoom()) return
        continue
      }
      // Nothing here will free a slot for it: a reload retired this shard's servers (the
      // live backend's shard of the same name takes it), or they went down. Afresh.
      if (w instanceof Session) this.#attemptSession(w)
      else w.fail(Errors.NO_HEALTHY_SERVER)
    }
  }

  /** Session.send: dispatch the session's request to `server`. */
  dispatch (s: Session, server: Server): void {
    const backend = s.backend!
    s.server = server
    s.attempts++
    s.setCookie = s.stickyId === server.id ? undefined : backend.stickyCookie(server, s.conn.proto === 'https')
    s.dispatchedAt = performance.now()
    const handler = new ForwardHandler(server, backend, s, s.sink, s.route!.shapeResponse, s.attempts > 1)
    s.handler = handler
    handler.dispatch(upstreamRequest(s.plan!, server, s.body ?? (s.replayable ? null : s.bodyStream!), s.upstreamHeaders, s.plan!.method,
      s.conn.socket))
  }

  /** SessionDriver: a failure before any response byte; try another replica when that is safe. */
  retry (s: Session, kind: ErrorKind, err: Error): boolean {
    const backend = s.backend!
    if (kind === Errors.CLIENT_ABORTED || s.closed || !s.replayable) return false
    if (s.attempts > backend.config.retries.attempts || !retryableFailure(err)) return false
    // A stream an h2 server refused was never processed (RFC 9113 §8.7), and a
    // connection that could not be made carried nothing: a POST may go again
    // then (nginx's proxy_next_upstream error, HAProxy's conn-failure, Envoy's
    // connect-failure), never once the server may have acted on it.
    if (!IDEMPOTENT.has(s.method) && !backend.config.retries.nonIdempotent && !refusedStream(err) && !connectFailure(err)) return false
    // The budget guards against retry storms that multiply work; a refused
    // connection did no work anywhere, so its retry is free, as is one on a
    // keep-alive connection the server closed as the request went out.
    const reissue = reissuable(err)
    if (!connectFailure(err) && !reissue && !backend.retryAllowed()) return false
    const failed = s.server!
    // That close says nothing of the server: it may take the request again, on another connection.
    if (!reissue) s.tried = s.tried.length === 0 ? [failed] : [...s.tried, failed]
    s.retryReasons = kind
    if (backend.retired) this.#relocate(s)
    const shard = s.shard!
    s.panic = shard.panic()
    const next = shard.balancer.pick(s)
    if (next === undefined) {
      // The others are busy, not gone: wait in the queue for one, as a first
      // attempt does (HAProxy's redispatch goes through it). Nobody else to
      // try: answer with this failure.
      if (!shard.anyBusy(s, s.tried) || !shard.queue.push(s)) return false
      s.queueTimer = setTimeout(onQueueTimeout, shard.queueTimeout, s, shard)
      return true
    }
    this.dispatch(s, next)
    return true
  }

  /**
   * The listener's sweep found an answer whose bytes waited
   * timeouts.clientSend with the client taking none, and no timer of the
   * session's on it (its own write never backed up; on h2, one the stream's
   * flow control holds): cut it as the timer would.
   */
  sendStalled (res: DownstreamResponse): void {
    const s = (res as unknown as { [kSession]?: Session })[kSession]
    if (s === undefined || s.closed) res.destroy()
    else s.clientTimeout(Errors.CLIENT_SEND_TIMEOUT)
  }

  /** SessionDriver: see PipelineHooks.onInternalError. */
  internalError (s: Session | undefined, err: unknown): void {
    this.#hooks.onInternalError?.(err, s)
  }

  /**
   * HTTP/1.1 `Upgrade: websocket`: planned like any request, then picked,
   * queued at maxConn and timed out like one; once a server accepts, the
   * sockets are spliced (upgrade.ts).
   */
  handleUpgrade (req: IncomingMessage, socket: Socket, head: Buffer, listener: ListenerContext): void {
    try {
      const state = this.#state
      const t = Tunnel.h1(req, socket, head, connectionInfo(req, false, listener, state), listener, state, this)
      t.onEnd = this.#hooks.onTunnelEnd
      this.#upgrade(t, state, () => socket.destroy())
    } catch (err) {
      this.#hooks.onInternalError?.(err, undefined)
      socket.destroy()
    }
  }

  /** An HTTP/2 extended CONNECT for a WebSocket (RFC 8441): tunnelled as an HTTP/1.1 Upgrade to the server. */
  handleH2Tunnel (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, rawHeaders: string[], listener: ListenerContext): void {
    const reset = (): void => { try { stream.close(NGHTTP2_INTERNAL_ERROR) } catch {} }
    try {
      const state = this.#state
      const t = Tunnel.h2(stream, headers, rawHeaders, connectionInfo(stream, true, listener, state), listener, state, this)
      t.onEnd = this.#hooks.onTunnelEnd
      this.#upgrade(t, state, reset)
    } catch (err) {
      this.#hooks.onInternalError?.(err, undefined)
      reset()
    }
  }

  /** plan → rate limit → pick (or queue) → the tunnel, for either protocol. */
  #upgrade (t: Tunnel, state: RuntimeState, reset: () => void): void {
    const p = plan(state, t)
    // Its request id on every answer, refusals included; only a planned upgrade has a head to go upstream.
    const planned = !('error' in p || 'redirect' in p || 'options' in p)
    this.#trace(t, state, planned ? p.head.headers : t.rawHeaders.slice())
    if ('error' in p) return t.refuse(p)
    if ('redirect' in p) return t.redirect(p)
    if ('options' in p) return t.fail(Errors.BAD_REQUEST) // an Upgrade on OPTIONS *: nothing to tunnel to
    t.planned(p)
    // The route's access control, as for a request.
    const access = p.route.access
    if (access === undefined) return this.#tunnelLimit(t, p, reset)
    const a = access.check(t.clientAddress, requestField(t.rawHeaders, 'authorization'))
    if (!(a instanceof Promise)) return this.#tunnelAdmitted(t, p, a, reset)
    a.then((a) => { if (!t.closed) this.#tunnelAdmitted(t, p, a, reset) }).catch((err: unknown) => {
      this.#hooks.onInternalError?.(err, undefined)
      reset()
    })
  }

  #tunnelAdmitted (t: Tunnel, p: Plan, denial: AccessVerdict, reset: () => void): void {
    if (denial !== undefined) return t.fail(denial.error, denial.fields)
    this.#tunnelLimit(t, p, reset)
  }

  #tunnelLimit (t: Tunnel, p: Plan, reset: () => void): void {
    // The route's rate limit, as for a request; a 101 carries no RateLimit fields.
    const limit = p.route.rateLimit
    if (limit === undefined) return this.#tunnel(t)
    const v = limit.check(t)
    if (!(v instanceof Promise)) return this.#tunnelLimited(t, limit, v)
    v.then((v) => { if (!t.closed) this.#tunnelLimited(t, limit, v) }).catch((err: unknown) => {
      this.#hooks.onInternalError?.(err, undefined)
      reset()
    })
  }

  #tunnelLimited (t: Tunnel, limit: RouteLimit, v: Verdict): void {
    if (!v.allowed) return t.fail(Errors.RATE_LIMITED, limit.responseFields(v))
    this.#tunnel(t)
  }

  #tunnel (t: Tunnel): void {
    if (t.adopt()) this.#attempt(t)
  }
}

function onQueueTimeout (w: Waiter, shard: Shard): void {
  shard.queue.remove(w)
  if (!w.closed) w.fail(Errors.QUEUE_TIMEOUT)
}

/** RFC 9110 §9.2.2: safe to repeat. */
const IDEMPOTENT: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE'])

/**
 * The client's body on its way upstream, watched: every chunk re-arms the
 * idle timer, the end clears it. A client that fails mid-body ends the
 * upstream request as the client's doing, never the server's.
 */
function watchedBody (s: Session, head: readonly Buffer[] | undefined): Readable {
  const req = s.req
  const t = new Transform({
    transform (chunk: Buffer, _enc, cb) { s.bodyProgress(); cb(null, chunk) },
    flush (cb) { s.bodyDone(); cb() }
  })
  if (head !== undefined) for (const c of head) t.push(c)
  const failed = (): void => {
    if (req.readableEnded) return
    s.error ??= Errors.CLIENT_ABORTED
    s.handler?.abort()
    t.destroy()
  }
  req.once('error', failed)
  req.once('close', failed)
  req.pipe(t)
  return t
}

/**
 * What readBody got: the whole body; or, of a body of unknown length, what
 * came before it passed the cap (the rest is still to be read, the request
 * paused); or undefined when the client stopped short.
 */
type BodyRead = { readonly whole: Buffer, readonly head?: undefined } | { readonly whole?: undefined, readonly head: readonly Buffer[] } | undefined

/** Methods whose request body has no defined meaning (RFC 9110 §9.3). */
const NO_BODY_MEANING: ReadonlySet<string> = new Set(['GET', 'HEAD', 'DELETE', 'OPTIONS', 'TRACE'])

/** Read a request body of `length` bytes, or of unknown length up to `cap` bytes, into one Buffer. */
function readBody (s: Session, length: number | undefined, cap: number, done: (r: BodyRead) => void): void {
  const req = s.req
  const chunks: Buffer[] = []
  let size = 0
  let finished = false
  const finish = (r: BodyRead): void => {
    if (finished) return
    finished = true
    req.off('data', onData).off('end', onEnd).off('error', onError).off('close', onEnd)
    if (r?.head === undefined) s.bodyDone()
    done(r)
  }
  const onData = (c: Buffer): void => {
    chunks.push(c)
    size += c.length
    s.bodyProgress()
    if (length === undefined && size > cap) {
      req.pause()
      finish({ head: chunks })
    }
  }
  // Ended whole: all the declared bytes, or an unknown length the client ended
  // (not one cut: an h2 RST_STREAM ends the stream's readable side too, and
  // an HTTP/1.1 message closed short is not `complete`).
  const onEnd = (): void => {
    const cut = s.h2 ? (req as ServerHttp2Stream).aborted : (req as IncomingMessage).complete === false
    finish((length === undefined ? !cut : size === length) ? { whole: Buffer.concat(chunks, size) } : undefined)
  }
  const onError = (): void => { finish(undefined) }
  req.on('data', onData).once('end', onEnd).once('error', onError).once('close', onEnd)
}

function onResponseClose (this: DownstreamResponse): void {
  const s = (this as unknown as { [kSession]?: Session })[kSession]
  if (s === undefined) return
  s.closed = true
  s.bodyDone()
  s.sendDone()
  s.onClose?.()
  if (s.queued) {
    s.shard?.queue.remove(s)
    clearTimeout(s.queueTimer)
  }
  if (!responseCompleted(this, s)) {
    // The client went away (or we reset it) before the response completed.
    s.error ??= Errors.CLIENT_ABORTED
    s.handler?.abort()
  }
  s.onEnd?.(s)
}

/**
 * Whether the whole response went out. An h2 stream's writable side also ends
 * when the client resets it, so on h2 our end() and the stream's close code
 * decide.
 */
function responseCompleted (res: DownstreamResponse, s: Session): boolean {
  if (!s.h2) return res.writableFinished
  return s.ended && (res as ServerHttp2Stream).rstCode === 0
}

const NGHTTP2_INTERNAL_ERROR = 2

function ignore (): void {}

/**
 * Facts about the client connection, computed once per socket (h1) or h2
 * session and recomputed only if the config (trusted proxies, name) changed.
 */
export function connectionInfo (req: DownstreamRequest, h2: boolean, listener: ListenerContext,
  state: RuntimeState): ConnectionInfo {
  const holder = (h2 ? (req as ServerHttp2Stream).session! : (req as IncomingMessage).socket) as ConnHolder
  const cached = holder[kConn]
  if (cached !== undefined && cached.state === state) return cached
  const socket = h2 ? (req as ServerHttp2Stream).session!.socket as Socket : (req as IncomingMessage).socket
  // A PROXY header's client, when the listener takes one (listener/proxy-accept.ts).
  const clientAddress = clientAddressOf(socket)
  const info = {
    socket,
    state,
    servername: (socket as { servername?: string | false }).servername || undefined,
    tlsVersion: (socket as { getProtocol?: () => string | null }).getProtocol?.() ?? undefined,
    clientAddress,
    trusted: clientAddress !== '' &&
      state.trustedProxies.check(clientAddress, clientAddress.includes(':') ? 'ipv6' : 'ipv4'),
    proto: listener.proto,
    viaEntry: h2 ? state.viaH2 : state.viaH1
  }
  holder[kConn] = info
  return info
}
