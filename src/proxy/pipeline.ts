// The request pipeline: one readable function calling the phases in a fixed
// order (Pingora's process_request): parse → route → shard → pick → forward,
// then the response streams back through the session. A phase either lets
// the request continue or answers it; there is no middleware chain.
import type { Http2ServerResponse } from 'node:http2'
import type { Socket } from 'node:net'
import { Transform, type Readable } from 'node:stream'
import type { BlockList } from 'node:net'
import type { Config } from '../config/schema.js'
import { Errors, type ErrorKind } from '../errors.js'
import type { Router } from '../router/router.js'
import { rewritePath } from '../router/router.js'
import type { Backend } from '../upstream/backend.js'
import { connectFailure, ForwardHandler, retryableFailure } from '../upstream/pool.js'
import type { Server } from '../upstream/server.js'
import { cookieValue, shardKey, type Shard } from '../upstream/shard.js'
import { normalizeAddress, upstreamRequestHead, withHost } from './headers.js'
import { originOf } from './authority.js'
import { cacheKey, keyedTarget, variantKey } from '../cache/key.js'
import type { CompiledRoute } from './routes.js'
import { kSession, Session, type ConnectionInfo, type DownstreamRequest, type DownstreamResponse,
  type ListenerContext, type SessionDriver } from './session.js'
import { proxyUpgrade } from './upgrade.js'
import type { HttpCache, Inflight } from '../cache/cache.js'
import type { CacheEntry } from '../cache/entry.js'
import { cacheRequest, cacheSessionEnd, RefreshSink, type CacheForwarder, type CacheState } from './cache-phase.js'
import type { ForwardRequest } from '../upstream/pool.js'

/** Everything derived from one config; swapped as a whole on reload. */
export interface RuntimeState {
  readonly config: Config
  readonly router: Router<CompiledRoute>
  readonly backends: ReadonlyMap<string, Backend>
  readonly trustedProxies: BlockList
  /** The shared response cache, when configured. */
  readonly cache: HttpCache | undefined
  /** Who may send PURGE; undefined = PURGE is proxied like any method. */
  readonly purgeFrom: BlockList | undefined
  /** `1.1 <proxyName>` and `2 <proxyName>`, for Via. */
  readonly viaH1: string
  readonly viaH2: string
}

export interface PipelineHooks {
  /** Called once per request when its session ends (response done, reset or client gone). */
  onSessionEnd?: (session: Session) => void
  /**
   * Something threw while handling a request: a bug, contained to that request
   * (its stream or connection is reset). Count it and log it.
   */
  onInternalError?: (err: unknown, session: Session | undefined) => void
}

const kConn = Symbol('switchyard.conn')
type ConnHolder = { [kConn]?: ConnectionInfo & { readonly state: RuntimeState } }

export class Pipeline implements SessionDriver, CacheForwarder {
  #state: RuntimeState
  readonly #hooks: PipelineHooks
  /** Shutting down: every HTTP/1.1 response closes its connection (h2 gets GOAWAY from the listener). */
  draining = false

  constructor (state: RuntimeState, hooks: PipelineHooks = {}) {
    this.#state = state
    this.#hooks = hooks
  }

  get state (): RuntimeState { return this.#state }

  /** Atomic swap: requests already running keep the state they started with. */
  swap (state: RuntimeState): void { this.#state = state }

  handleRequest (req: DownstreamRequest, res: DownstreamResponse, listener: ListenerContext): void {
    let s: Session | undefined
    try {
      const state = this.#state
      const h2 = req.httpVersionMajor === 2
      s = new Session(req, res, listener, connectionInfo(req, h2, listener, state), performance.now())
      ;(res as unknown as { [kSession]: Session })[kSession] = s
      res.on('close', onResponseClose) // fires once; `on` spares once()'s wrapper
      s.driver = this
      s.trustList = state.trustedProxies
      if (this.#hooks.onSessionEnd !== undefined) s.onEnd = this.#hooks.onSessionEnd
      this.#handle(s, state)
    } catch (err) {
      // Nothing a request carries may escape into the server: contain it here.
      if (s !== undefined) return s.fault(err)
      this.#hooks.onInternalError?.(err, undefined)
      try { res.destroy() } catch {}
    }
  }

  /** The phases, in order. */
  #handle (s: Session, state: RuntimeState): void {
    const req = s.req
    // parse
    const parseError = s.parseTarget(state.config.pathNormalization)
    if (parseError !== undefined) return s.sendError(parseError)
    // RFC 9110 §15.5.20: this connection's certificate is not the one for that host.
    if (s.listener.misdirected?.(s.conn.servername, s.host) === true) return s.sendError(Errors.MISDIRECTED)

    // route
    const route = state.router.match(s)
    if (route === undefined) return s.sendError(Errors.NO_ROUTE)
    s.route = route
    const backend = route.backend
    s.backend = backend

    // shard
    const by = backend.selector.shardBy
    let key: string | undefined
    if (by !== undefined) {
      key = shardKey(by, s)
      if (key === undefined && by.missing === 'reject') return s.sendError(Errors.SHARD_KEY_MISSING)
    }
    s.shard = backend.selector.select(key)
    const sticky = backend.config.sticky
    if (sticky !== undefined) s.stickyId = cookieValue(s.header('cookie'), sticky.cookie.name)

    // upstream request head (server-independent unless Host is the server's own)
    const head = upstreamRequestHead(req.rawHeaders, s.authorityInfo!, backend.config.passHostHeader ? s.authority : '', s.conn, route.requestPolicy)
    if ('code' in head) return s.sendError(head)
    s.upstreamHeaders = head.headers
    // Forward what the cache keys: a route's key rules (sorted, ignored
    // parameters) shape the query the origin sees too.
    const cache = state.cache
    const rc = cache === undefined ? undefined : route.cache
    const target = rc === undefined ? s.target : keyedTarget(s.target, rc.key)
    s.upstreamPath = route.stripPrefix === undefined && route.addPrefix === undefined
      ? target
      : rewritePath(target, route.stripPrefix, route.addPrefix)
    s.responseVia = state.config.forwarding.via ? state.viaH1 : undefined
    s.hasBody = s.h2 ? !(req as { stream?: { endAfterHeaders?: boolean } }).stream?.endAfterHeaders : head.hasBody
    s.contentLength = head.contentLength

    // cache: answer from it, wait on a collapsed fetch, or arrange to record the response
    if (rc !== undefined) {
      // Keyed by what the origin is told (scheme, host), and by what else picked the answer (route, shard).
      const origin = originOf(head.proto, head.authority)
      const primary = cacheKey(head.proto, origin, target)
      const variant = variantKey(route.name, backend.shards.length > 1 ? s.shard.name : '', rc.key.headers, (n) => s!.header(n))
      const at = { key: primary, variant, scheme: head.proto, origin, lock: `${primary}\0${variant}` }
      if (cacheRequest(s, cache!, rc, route.cacheOptions!, state.purgeFrom, this, at, state.config.pathNormalization)) return
    }
    this.forward(s)
  }

  /** CacheForwarder + the tail of handleRequest: send the request body (buffered or streamed) and attempt. */
  forward (s: Session): void {
    const req = s.req
    const backend = s.backend!
    if (!s.hasBody) return this.#attempt(s)
    const timeouts = this.#state.config.timeouts
    s.watchBody(timeouts.clientBody, timeouts.request)

    // h2: a client RST_STREAM ends the request body as if it were complete
    // (Node pushes EOF before the response closes); cancel upstream first so a
    // truncated upload never reaches the origin as a whole one.
    if (s.h2) req.once('aborted', () => { s.error ??= Errors.CLIENT_ABORTED; s.handler?.abort() })
    // A small body of a retryable request is buffered so a retry can replay it;
    // anything else streams straight through and is never retried.
    const retries = backend.config.retries
    const length = s.contentLength
    if (retries.attempts > 0 && length !== undefined && length <= retries.bufferBodyBytes &&
      (IDEMPOTENT.has(s.method) || retries.nonIdempotent)) {
      bufferBody(s, length, (body) => {
        if (body === undefined || s.closed) return // client went away mid-body
        s.body = body
        this.#attempt(s)
      })
      return
    }
    s.replayable = false
    s.bodyStream = watchedBody(s)
    this.#attempt(s)
  }

  /** CacheForwarder: refresh a stale entry in the background (stale-while-revalidate), once per key. */
  refresh (s: Session, entry: CacheEntry, leader: Inflight): void {
    const cs = s.cacheState!
    const server = s.shard!.balancer.pick(s)
    if (server === undefined) return cs.cache.finish(leader, undefined)
    const state: CacheState = { ...cs, stale: entry, leader, recording: undefined, withheld: false, fwd: 'stale' }
    const shard = s.shard!
    const sink = new RefreshSink(s, state, () => { if (shard.queue.size > 0) this.drain(shard) })
    // The same head a foreground request would send, as a GET without a body.
    new ForwardHandler(server, s.backend!, sink, false).dispatch({ ...upstreamRequest(s, server), method: 'GET', body: null })
  }

  /** pick → forward, or queue when every usable server is at maxConn. Used for first tries, retries and dequeues. */
  #attempt (s: Session): void {
    const shard = s.shard!
    s.panic = shard.panic()
    const server = shard.balancer.pick(s)
    if (server === undefined) {
      if (shard.anyBusy(s.panic)) return this.#enqueue(s, shard)
      return s.sendError(Errors.NO_HEALTHY_SERVER)
    }
    this.#forward(s, server)
  }

  #forward (s: Session, server: Server): void {
    const backend = s.backend!
    s.server = server
    s.attempts++
    s.setCookie = s.stickyId === server.id ? undefined : backend.stickyCookie(server, s.conn.proto === 'https')
    s.dispatchedAt = performance.now()
    const handler = new ForwardHandler(server, backend, s, s.attempts > 1)
    s.handler = handler
    handler.dispatch(upstreamRequest(s, server))
  }

  /** SessionDriver: a failure before any response byte; try another replica when that is safe. */
  retry (s: Session, kind: ErrorKind, err: Error): boolean {
    const backend = s.backend!
    if (kind === Errors.CLIENT_ABORTED || s.closed || !s.replayable) return false
    if (s.attempts > backend.config.retries.attempts || !retryableFailure(err)) return false
    if (!IDEMPOTENT.has(s.method) && !backend.config.retries.nonIdempotent) return false
    // The budget guards against retry storms that multiply work; a refused
    // connection did no work anywhere, so its retry is free.
    if (!connectFailure(err) && !backend.retryAllowed()) return false
    const failed = s.server!
    s.tried = s.tried.length === 0 ? [failed] : [...s.tried, failed]
    s.retryReasons = kind
    const shard = s.shard!
    s.panic = shard.panic()
    const next = shard.balancer.pick(s)
    if (next === undefined) return false // nobody else to try: answer with this failure
    this.#forward(s, next)
    return true
  }

  #enqueue (s: Session, shard: Shard): void {
    if (!shard.queue.push(s)) return s.sendError(Errors.QUEUE_FULL)
    const timeout = s.backend!.config.timeouts.queue
    s.queueTimer = setTimeout(onQueueTimeout, timeout, s)
  }

  /** SessionDriver: a slot of `shard` is free; hand it to the oldest waiter that can use it. */
  drain (shard: Shard): void {
    while (shard.queue.size > 0) {
      const s = shard.queue.shift() as Session | undefined
      if (s === undefined) return
      clearTimeout(s.queueTimer)
      if (s.closed) continue
      s.panic = shard.panic()
      const server = shard.balancer.pick(s)
      if (server === undefined) {
        // Still full (another path took the slot): back to the head of the line is not
        // possible in a FIFO, so requeue at the tail only if time remains.
        shard.queue.push(s)
        s.queueTimer = setTimeout(onQueueTimeout, Math.max(0, s.startTime + s.backend!.config.timeouts.queue - performance.now()), s)
        return
      }
      this.#forward(s, server)
    }
  }

  /** SessionDriver: see PipelineHooks.onInternalError. */
  internalError (s: Session, err: unknown): void {
    this.#hooks.onInternalError?.(err, s)
  }

  /** HTTP/1.1 `Upgrade: websocket`: route and pick as usual, then splice the sockets. */
  handleUpgrade (req: DownstreamRequest, socket: Socket, head: Buffer, listener: ListenerContext): void {
    const state = this.#state
    try {
      proxyUpgrade(req, socket, head, connectionInfo(req, false, listener, state), state, listener)
    } catch (err) {
      this.#hooks.onInternalError?.(err, undefined)
      socket.destroy()
    }
  }
}

/** The request to send to `server`: every dispatch (first try, retry, dequeue, background refresh) builds it here. */
function upstreamRequest (s: Session, server: Server): ForwardRequest {
  return {
    path: s.upstreamPath,
    method: s.method,
    headers: s.backend!.config.passHostHeader ? s.upstreamHeaders : withHost(s.upstreamHeaders, server.hostHeader),
    body: s.body ?? (s.replayable ? null : s.bodyStream!)
  }
}

/**
 * The client's body on its way upstream, watched: every chunk re-arms the
 * idle timer, the end clears it. A client that fails mid-body ends the
 * upstream request as the client's doing, never the server's.
 */
function watchedBody (s: Session): Readable {
  const req = s.req
  const t = new Transform({
    transform (chunk: Buffer, _enc, cb) { s.bodyProgress(); cb(null, chunk) },
    flush (cb) { s.bodyDone(); cb() }
  })
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

function onQueueTimeout (s: Session): void {
  s.shard?.queue.remove(s)
  if (!s.closed) s.sendError(Errors.QUEUE_TIMEOUT)
}

/** RFC 9110 §9.2.2: safe to repeat. */
const IDEMPOTENT: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE'])

/** Read a request body of known, small length into one Buffer; undefined if the client stops short. */
function bufferBody (s: Session, length: number, done: (body: Buffer | undefined) => void): void {
  const req = s.req
  const chunks: Buffer[] = []
  let size = 0
  let finished = false
  const finish = (body: Buffer | undefined): void => {
    if (finished) return
    finished = true
    s.bodyDone()
    done(body)
  }
  req.on('data', (c: Buffer) => { chunks.push(c); size += c.length; s.bodyProgress() })
  req.once('end', () => finish(size === length ? Buffer.concat(chunks, size) : undefined))
  req.once('error', () => finish(undefined))
  req.once('close', () => finish(size === length && (req as { complete?: boolean }).complete !== false ? Buffer.concat(chunks, size) : undefined))
}

function onResponseClose (this: DownstreamResponse): void {
  const s = (this as unknown as { [kSession]?: Session })[kSession]
  if (s === undefined) return
  s.closed = true
  s.bodyDone()
  if (s.cacheState !== undefined) cacheSessionEnd(s.cacheState)
  if (s.queued) {
    s.shard?.queue.remove(s)
    clearTimeout(s.queueTimer)
  }
  if (!responseCompleted(this, s.h2)) {
    // The client went away (or we reset it) before the response completed.
    s.error ??= Errors.CLIENT_ABORTED
    s.handler?.abort()
  }
  s.onEnd?.(s)
}

/**
 * Whether the whole response went out. Http2ServerResponse reports
 * writableFinished = true on every close, even after the client's RST_STREAM
 * or a dropped session, so on h2 our end() and the stream's close code decide.
 */
function responseCompleted (res: DownstreamResponse, h2: boolean): boolean {
  if (!h2) return res.writableFinished
  return res.writableEnded && (res as Http2ServerResponse).stream.rstCode === 0
}

/**
 * Facts about the client connection, computed once per socket (h1) or h2
 * session and recomputed only if the config (trusted proxies, name) changed.
 */
export function connectionInfo (req: DownstreamRequest, h2: boolean, listener: ListenerContext,
  state: RuntimeState): ConnectionInfo {
  const holder = (h2 ? (req as { stream: { session: object } }).stream.session : req.socket) as ConnHolder
  const cached = holder[kConn]
  if (cached !== undefined && cached.state === state) return cached
  const socket = h2 ? (req as { stream: { session: { socket: Socket } } }).stream.session.socket : req.socket
  const clientAddress = normalizeAddress(socket.remoteAddress)
  const info = {
    state,
    servername: h2
      ? (socket as { servername?: string | false }).servername || undefined
      : (req.socket as { servername?: string | false }).servername || undefined,
    clientAddress,
    trusted: clientAddress !== '' &&
      state.trustedProxies.check(clientAddress, clientAddress.includes(':') ? 'ipv6' : 'ipv4'),
    proto: listener.proto,
    viaEntry: h2 ? state.viaH2 : state.viaH1
  }
  holder[kConn] = info
  return info
}
