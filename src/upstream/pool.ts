// One keep-alive pool per upstream server (ours for HTTP/1.1, h1-client.ts;
// undici's for h2), and the dispatch handler that streams an upstream
// response into a sink with backpressure. Transport errors become our error
// kinds here and nowhere else (reply-from's index.js, Pingora's fail_to_proxy).
import type { Readable } from 'node:stream'
import { Dispatcher, Pool } from 'undici'
import type { BackendConfig, ServerConfig } from '../config/schema.js'
import { Errors, type ErrorKind } from '../errors.js'
import { interimHead, rawFields, type InterimHead, type RawFields } from '../fields.js'
import { guardH2Streams } from './h2-streams.js'
import type { ExchangeOutcome, Server } from './server.js'
import { H1Pool, REUSED_CLOSED } from './h1-client.js'
import { NativeParser } from '../llhttp.js'
import { PerClientPool, serverConnector, VERSION, type PoolStats, type ProxiedDispatch } from './proxy-send.js'
import { tlsFailure, type UpstreamTls } from './tls.js'
import { statusOutcome } from '../health/outlier.js'

/** Builds a server's dispatcher; `tls` (the backend's) is given exactly when the server is https://. */
export type DispatcherFactory = (server: ServerConfig, backend: BackendConfig, tls?: UpstreamTls) => Dispatcher

/** A dispatcher that sends nothing (undici's abstract base, whose dispatch() throws): `explain` builds the real state with it. */
export const sendNothing: DispatcherFactory = () => new Dispatcher()

const NO_FIELDS: InterimHead = Object.freeze({ link: [] as string[] })

/**
 * Streams an h2 connection carries at once (undici's own default, and what a
 * Node h2 server allows): `pipelining` is undici's per-connection limit.
 */
export const H2_STREAMS = 100

/**
 * A server's pool; `tls` (the backend's) is given exactly when the server is
 * https://. HTTP/1.1 servers get our own client (h1-client.ts; undici's
 * where Node lacks the parser it uses). `protocol: h2` / `h2c` use undici's own HTTP/2 client: the same
 * dispatcher and handler, so timeouts, limits, retries and accounting are
 * those of HTTP/1.1; trailers arrive in onComplete. A server that takes a
 * PROXY header gets a pool per client connection instead (upstream/proxy-send.ts).
 */
export function createPool (server: ServerConfig, backend: BackendConfig, tls?: UpstreamTls,
  client: 'ours' | 'undici' = NativeParser === undefined ? 'undici' : 'ours'): Dispatcher {
  const t = backend.timeouts
  const h2 = backend.protocol !== 'http1'
  const ours = !h2 && client === 'ours'
  // A server's Keep-Alive: timeout hint may keep an idle connection past t.keepAlive, up to this.
  const keepAliveMaxTimeout = Math.max(t.keepAlive, 600_000)
  const options: Pool.Options = {
    connections: backend.connections,
    pipelining: h2 ? H2_STREAMS : 1,
    ...(h2 ? { allowH2: true, maxConcurrentStreams: H2_STREAMS } : {}),
    keepAliveTimeout: t.keepAlive,
    keepAliveMaxTimeout,
    headersTimeout: t.headers,
    bodyTimeout: t.body,
    connectTimeout: t.connect,
    strictContentLength: true
  }
  const make = (header?: Buffer): Dispatcher & PoolStats => {
    // The guards are for undici's HTTP/1.1 parser: our client's connections go without them.
    const connect = serverConnector(server.url, t.connect, tls, header, backend.protocol, !ours)
    if (ours) {
      return new H1Pool(server.url, {
        connections: backend.connections,
        keepAliveTimeout: t.keepAlive,
        keepAliveMaxTimeout,
        headersTimeout: t.headers,
        bodyTimeout: t.body,
        connect
      })
    }
    const pool = tls === undefined
      ? new Pool(server.url, { ...options, connect })
      : new TlsPool(server.url, { ...options, connect }, new URL(server.url).host)
    if (h2) guardH2Streams(pool)
    return pool
  }
  const send = server.sendProxyProtocol ?? backend.sendProxyProtocol
  return send === undefined ? make() : new PerClientPool(VERSION[send], make, ours)
}

/** Pools with undici's HTTP/1.1 client even where ours can serve: the fallback, built on purpose (tests). */
export const undiciPools: DispatcherFactory = (server, backend, tls) => createPool(server, backend, tls, 'undici')

/**
 * The dispatcher pauses any response body: our HTTP/1.1 client (alone or
 * per client connection), not undici's (see ForwardHandler.onData).
 */
export function pausesAnyBody (d: Dispatcher): boolean {
  return d instanceof H1Pool || (d instanceof PerClientPool && d.pausesAnyBody)
}

/**
 * undici takes each request's SNI from its Host header, and on an https://
 * origin closes the connection whenever that name changes. A proxy forwards
 * its clients' Host headers, so every request gets one fixed name per server
 * instead (the connector sends the configured SNI whatever it is).
 */
class TlsPool extends Pool {
  readonly #servername: string

  constructor (url: string, options: Pool.Options, servername: string) {
    super(url, options)
    this.#servername = servername
  }

  override dispatch (opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    // Our callers build a fresh options object per request; undici reads `servername` from it.
    (opts as { servername?: string }).servername = this.#servername
    return super.dispatch(opts, handler)
  }
}

/**
 * Where an upstream response goes: the client's session, or a decorator in
 * front of it (the cache), or a background refresh that has no client.
 */
export interface ResponseSink {
  /**
   * An interim response from the origin, relayed to the client before the
   * final one and never stored: 102 Processing, or 103 Early Hints (RFC
   * 8297) with its fields as interimHead keeps them.
   */
  responseInterim (status: 102 | 103, head: InterimHead): void
  /**
   * Headers arrived, already shaped for the client (see ResponseShaper).
   * Returns false if the sink could not take them (client gone).
   */
  responseHead (status: number, statusText: string, headers: string[]): boolean
  /** Returns false when the client is not draining: the handler pauses until `resume()`. */
  responseData (chunk: Buffer): boolean
  responseEnd (trailers: Buffer[]): void
  /** The exchange failed for good (no retry is coming), before or after the response started. */
  responseError (kind: ErrorKind, err: Error): void
  /** One of the calls above threw: a bug, contained to this request (count, log, reset). */
  fault (err: unknown): void
}

/**
 * Turns an upstream's raw response head into the fields the client gets, once, as
 * it arrives; or names what is malformed about it (the exchange then fails
 * with 502 and nothing is used). Built once per route (proxy/headers.ts).
 */
export type ResponseShaper = (status: number, raw: RawFields) => string[] | string

/** What one exchange reports to its backend: in-flight counts, the retry budget, outlier detection. */
export interface ExchangeAccounting {
  /** Exchanges in flight, and retries among them (and in total). */
  active: number
  retrying: number
  retries: number
  /** How long a server may take to send its response head (ms; 0 = no limit). */
  readonly headersTimeout: number
  /**
   * Every response body from these servers can be paused: HTTP/2 (flow
   * control holds the origin back) and our HTTP/1.1 client. Only undici's
   * HTTP/1.1 client (the fallback, see createPool) has the parser bug onData
   * works around.
   */
  readonly pausable?: boolean
  /** A first attempt was sent: it earns its share of a retry. */
  deposit (): void
  observe (server: Server, outcome: ExchangeOutcome): void
  /** Where upstream TLS failures are logged (with their OpenSSL code). */
  readonly log?: { warn (obj: object, msg: string): void } | undefined
}

/** Who owns an exchange: told when its server slot is free, asked whether a failure is retried elsewhere. */
export interface ExchangeOwner {
  /** The exchange ended and its server slot is free again (wakes queued requests). */
  released (): void
  /**
   * A failure before any response byte: true when the owner sends the request
   * elsewhere (the sink then hears nothing of this failure).
   */
  retry? (kind: ErrorKind, err: Error): boolean
}

export interface ForwardRequest {
  readonly path: string
  readonly method: string
  readonly headers: string[]
  /** A buffered (replayable) body, the client's stream, or none. */
  readonly body: Buffer | Readable | null
  /** The client connection, for a server that takes a PROXY header (else undefined). */
  readonly client?: ProxiedDispatch['client']
}

/**
 * One upstream exchange. Counts the server's in-flight requests exactly once
 * (HAProxy's server_take_conn / server_drop_conn) whatever way it ends.
 */
export class ForwardHandler implements Dispatcher.DispatchHandler {
  readonly server: Server
  readonly #backend: ExchangeAccounting
  readonly #sink: ResponseSink
  readonly #owner: ExchangeOwner
  readonly #shape: ResponseShaper
  /** This attempt is a retry (counted against the retry budget while in flight). */
  readonly #retry: boolean
  #abort: ((err?: Error) => void) | null = null
  #resume: (() => void) | null = null
  #done = false
  #aborted = false
  #sentAt = 0
  /** The request body (see #interim), and when the first 1xx arrived (0: none yet). */
  #body: ForwardRequest['body'] = null
  #interimSince = 0
  /** The response head's deadline when this handler times it (see #timeHead), or the upload's watch (#watchUpload); null: neither. */
  #headTimer: NodeJS.Timeout | null = null
  /** Request body chunks undici has sent (see #watchUpload). */
  #sentChunks = 0
  /** Body bytes received, and from how many on undici must not be paused (see onData). */
  #received = 0
  #noPauseFrom = Infinity
  /** The response's Content-Length when its body must have it (not HEAD, 204, 304); -1: none or not checked. */
  #declared = -1
  #head = false
  /** Bytes taken while the client was not draining and undici could not be paused (see onData). */
  #unpaused = 0
  /** The upstream answered with headers (so errors can no longer become a status). */
  started = false

  constructor (server: Server, backend: ExchangeAccounting, owner: ExchangeOwner, sink: ResponseSink, shape: ResponseShaper,
    retry: boolean) {
    this.server = server
    this.#backend = backend
    this.#owner = owner
    this.#sink = sink
    this.#shape = shape
    this.#retry = retry
  }

  /** Send `req` to this handler's server. */
  dispatch (req: ForwardRequest): void {
    const server = this.server
    server.active++
    server.requests++
    this.#backend.active++
    if (this.#retry) {
      this.#backend.retrying++
      this.#backend.retries++
    } else {
      this.#backend.deposit()
    }
    if (server.tracksLatency) this.#sentAt = performance.now()
    this.#body = req.body
    this.#head = req.method === 'HEAD'
    const body = req.body
    // undici's clients time the response head from the request's start, and
    // restart the timer only on body bytes sent: a client pausing its upload
    // would make the server look slow (a 504, a failure against it, an
    // ejection). As our HTTP/1.1 client does, the head is timed from the
    // upload's end here instead; a pausing client meets timeouts.clientBody.
    // While it goes on, a server that takes none of what the client sent is timed (#watchUpload).
    const timeHead = body !== null && !Buffer.isBuffer(body) && this.#backend.headersTimeout !== 0 && !pausesAnyBody(server.dispatcher)
    server.dispatcher.dispatch({
      path: req.path,
      method: req.method as Dispatcher.HttpMethod,
      headers: req.headers,
      body,
      client: req.client,
      ...(timeHead ? { headersTimeout: 0 } : {})
    } as Dispatcher.DispatchOptions, this)
    if (timeHead) {
      if (body.readableEnded) this.#timeHead()
      else {
        body.once('end', () => { this.#timeHead() })
        this.#watchUpload(body)
      }
    }
  }

  /** undici sent a chunk of the request body (see #watchUpload). */
  onBodySent (): void {
    this.#sentChunks++
  }

  /** The client went away: cancel the upstream request. */
  abort (): void {
    if (this.#done) return
    this.#aborted = true
    if (this.#abort !== null) this.#abort(new Error('client aborted'))
  }

  resume (): void {
    this.#unpaused = 0
    const r = this.#resume
    if (r !== null) r()
  }

  onConnect (abort: (err?: Error) => void): void {
    this.#abort = abort
    if (this.#aborted) abort(new Error('client aborted'))
    else if (this.#done) abort(new Error('ended before it was sent')) // see #timeHead
  }

  onHeaders (statusCode: number, rawHeaders: Buffer[] | RawFields, resume: () => void, statusText: string): boolean {
    if (this.#done) return false
    const raw = rawFields(rawHeaders)
    if (statusCode < 200) return this.#interim(statusCode, raw)
    this.started = true
    if (this.#headTimer !== null) this.#stopHeadTimer()
    this.#resume = resume
    if (this.server.tracksLatency) {
      const now = performance.now()
      this.server.recordLatency(now - this.#sentAt, now)
    }
    // HTTP status codes end at 599 (RFC 9110 §15); Node's HTTP/2 refuses more.
    const headers = statusCode > 599 ? `status ${statusCode}` : this.#shape(statusCode, raw)
    if (typeof headers === 'string') {
      this.#badResponse(headers)
      return false
    }
    this.#backend.observe(this.server, statusOutcome(statusCode))
    const framing = bodyFraming(raw)
    this.#noPauseFrom = this.#backend.pausable === true ? Infinity : noPauseFrom(framing)
    if (!this.#head && statusCode !== 204 && statusCode !== 304 && framing >= 0) this.#declared = framing
    let taken: boolean
    try {
      taken = this.#sink.responseHead(statusCode, statusText, headers)
    } catch (err) {
      this.#fault(err)
      return false
    }
    if (!taken) {
      this.abort()
      return false
    }
    // 204 and 304 never have a body (RFC 9110 §6.4.1): the exchange is
    // complete with its head. undici would wait for a Content-Length the
    // origin copied from the 200 and then fail the exchange with a mismatch.
    if (statusCode === 204 || statusCode === 304) this.onComplete(null)
    return true
  }

  onData (chunk: Buffer): boolean {
    if (this.#done) return false
    this.#received += chunk.length
    let more: boolean
    try {
      more = this.#sink.responseData(chunk)
    } catch (err) {
      this.#fault(err)
      return false
    }
    // Never pause undici's HTTP/1.1 client on a body's last bytes (our client
    // and HTTP/2 pause any body, see `pausable`): if the origin closes right
    // after them, undici 7 asserts on its paused parser and takes the process
    // down, or reads the close as a truncation (nodejs/undici#5360, fixed only
    // in undici 8, which needs Node 22). The last chunk is in memory anyway;
    // a body that ends when the origin closes is never paused, for the same
    // reason (and is rare: HTTP/1.0-style origins). What such a body holds
    // for a client that does not read is bounded: past MAX_UNPAUSED_BYTES the
    // exchange is cut, so one slow client cannot make the proxy hold an
    // endless stream.
    if (more) return true
    if (this.#received < this.#noPauseFrom) return false
    this.#unpaused += chunk.length
    if (this.#unpaused > MAX_UNPAUSED_BYTES) {
      this.#cut(Errors.CLIENT_TOO_SLOW, `the client did not read ${MAX_UNPAUSED_BYTES} bytes of a body that cannot be paused`)
      return false
    }
    return true
  }

  onComplete (trailers: string[] | Buffer[] | Record<string, string | string[]> | null): void {
    if (this.#done) return
    // An h2 server's RST_STREAM(NO_ERROR) before END_STREAM reads as an end
    // (h2-streams.ts cannot tell it from a complete stream): the body's length
    // can. A cut body is never relayed or stored as a whole one (RFC 9113 §8.1.1).
    if (this.#declared >= 0 && this.#received !== this.#declared) {
      // As a cut HTTP/1.1 body is: the server's connection (here its stream) ended early.
      const err = new Error(`response body ended at ${this.#received} of its Content-Length ${this.#declared} bytes`) as NodeJS.ErrnoException
      err.code = 'UND_ERR_SOCKET'
      return this.onError(err)
    }
    this.#finish()
    try {
      this.#sink.responseEnd(trailers === null ? NO_TRAILERS : Array.isArray(trailers) ? trailers as Buffer[] : h2Trailers(trailers))
    } catch (err) {
      this.#sink.fault(err)
    }
  }

  onError (err: Error): void {
    if (this.#done) return
    this.#finish()
    const kind = this.#aborted ? Errors.CLIENT_ABORTED : upstreamErrorKind(err)
    // Only the server's own failures count against it: never a client that
    // went away or sent a bad request, nor our own bugs.
    if (kind.source === 'upstream') {
      this.server.failures++
      if (!this.started) this.#backend.observe(this.server, 'gateway')
      const code = (err as { code?: string }).code
      // The code tells a wrong CA from a wrong name or a refused client certificate.
      if (tlsFailure(code)) {
        const s = this.server
        this.#backend.log?.warn({ backend: s.backend, shard: s.shard, server: s.name, url: s.url, code, reason: err.message, flag: kind.flag },
          'upstream TLS failure')
      }
    }
    try {
      // Before any response byte the owner may send it elsewhere; the sink never hears of this attempt.
      if (!this.started && kind !== Errors.CLIENT_ABORTED && this.#owner.retry?.(kind, err) === true) return
      this.#sink.responseError(kind, err)
    } catch (e) {
      this.#sink.fault(e)
    }
  }

  /**
   * An interim (1xx) response (undici hands over every one but 100 and 101):
   * a 102 or 103 is relayed to the client (see ResponseSink.responseInterim).
   * undici restarts its headers timeout on each one, so an origin that sends
   * them without end would hold the request (and its client) forever: the
   * final head must come within the headers timeout of the first 1xx, or of
   * the request body's end when that is later (undici restarts its timer on
   * every body chunk sent: a long upload is not a stall).
   */
  #interim (statusCode: number, raw: RawFields): boolean {
    const limit = this.#backend.headersTimeout
    if (limit !== 0) {
      const now = performance.now()
      const body = this.#body
      if (this.#interimSince === 0 || (body !== null && !Buffer.isBuffer(body) && !body.readableEnded)) {
        this.#interimSince = now
      } else if (now - this.#interimSince > limit) {
        this.#refuse(Errors.UPSTREAM_TIMEOUT, `interim responses only, for more than the headers timeout (${limit} ms)`)
        return false
      }
    }
    if (statusCode !== 102 && statusCode !== 103) return true
    try {
      this.#sink.responseInterim(statusCode, statusCode === 103 ? interimHead(raw) : NO_FIELDS)
    } catch (err) {
      this.#fault(err)
      return false
    }
    return true
  }

  /** The response head is malformed (`why`): the server's failure; never used, never stored. */
  #badResponse (why: string): void {
    this.#refuse(Errors.UPSTREAM_BAD_RESPONSE, `malformed response head: ${why}`)
  }

  /** The server's failure found in its response head (`why`): the exchange ends with `kind`, nothing of it used. */
  #refuse (kind: ErrorKind, why: string): void {
    this.#finish()
    this.server.failures++
    this.#backend.observe(this.server, 'gateway')
    this.#abort?.(new Error(why))
    const err = Object.assign(new Error(why), { code: kind.code })
    try {
      this.#sink.responseError(kind, err)
    } catch (e) {
      this.#sink.fault(e)
    }
  }

  /** A sink call threw: end the exchange here and let the sink contain it. */
  /** The client's doing (`kind`, `why`): the exchange ends, the server is not blamed. */
  #cut (kind: ErrorKind, why: string): void {
    this.#finish()
    this.#aborted = true
    this.#abort?.(new Error(why))
    try {
      this.#sink.responseError(kind, Object.assign(new Error(why), { code: kind.code }))
    } catch (e) {
      this.#sink.fault(e)
    }
  }

  #fault (err: unknown): void {
    if (!this.#done) this.#finish()
    this.#aborted = true
    this.#abort?.(new Error('internal error'))
    this.#sink.fault(err)
  }

  /** Start this handler's own response-head deadline (see dispatch). */
  #timeHead (): void {
    if (this.#headTimer !== null) this.#stopHeadTimer()
    if (this.#done || this.started) return
    const limit = this.#backend.headersTimeout
    this.#headTimer = setTimeout(() => {
      this.#headTimer = null
      if (!this.#done && !this.started) this.#refuse(Errors.UPSTREAM_TIMEOUT, `no response head within the headers timeout (${limit} ms) of the request body's end`)
    }, limit)
  }

  /**
   * While the upload goes on: what the client sent waits (undici paused the
   * body: the server's flow control holds it) and undici sent none of it
   * for the headers timeout: the server's stall, timed as our HTTP/1.1
   * client times a server that stops reading (a 504 and its failure, not
   * the client's 408). Looked at a quarter of the timeout apart.
   */
  #watchUpload (body: Readable): void {
    const limit = this.#backend.headersTimeout
    const step = Math.max(10, Math.floor(limit / 4))
    let heldSince = 0
    let sent = -1
    const look = (): void => {
      this.#headTimer = null
      if (this.#done || this.started || body.readableEnded || body.destroyed) return
      if (body.readableLength > 0 && body.readableFlowing === false && sent === this.#sentChunks) {
        const now = performance.now()
        if (heldSince === 0) heldSince = now
        else if (now - heldSince >= limit) {
          this.#refuse(Errors.UPSTREAM_TIMEOUT, `the server took none of the request body for the headers timeout (${limit} ms)`)
          return
        }
      } else {
        heldSince = 0
      }
      sent = this.#sentChunks
      this.#headTimer = setTimeout(look, step)
    }
    this.#headTimer = setTimeout(look, step)
  }

  #stopHeadTimer (): void {
    clearTimeout(this.#headTimer!)
    this.#headTimer = null
  }

  #finish (): void {
    this.#done = true
    if (this.#headTimer !== null) this.#stopHeadTimer()
    this.server.active--
    this.#backend.active--
    if (this.#retry) this.#backend.retrying--
    this.#owner.released()
  }
}

/** What a response that cannot be paused may hold for a client that is not draining (see ForwardHandler.onData). */
export const MAX_UNPAUSED_BYTES = 16 * 1024 * 1024

const NO_TRAILERS: Buffer[] = []

/**
 * undici's HTTP/1.1 client gives trailers as flat Buffers; its HTTP/2 client
 * gives Node's trailer object ({} when there were none): made flat here, so
 * sinks see one form.
 */
function h2Trailers (t: Record<string, string | string[]>): Buffer[] {
  const out: Buffer[] = []
  for (const name in t) {
    const v = t[name]!
    if (Array.isArray(v)) for (const one of v) out.push(Buffer.from(name, 'latin1'), Buffer.from(one, 'latin1'))
    else out.push(Buffer.from(name, 'latin1'), Buffer.from(String(v), 'latin1'))
  }
  return out
}

/** bodyFraming: a chunked body (Transfer-Encoding); one with no valid Content-Length, which the origin's close ends. */
const CHUNKED = -2
const UNFRAMED = -1

/** How a response's body is framed, from one scan of its fields: CHUNKED, UNFRAMED, or its Content-Length. */
function bodyFraming (raw: RawFields): number {
  let length = UNFRAMED
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!
    if (name.length === 17 && name.toLowerCase() === 'transfer-encoding') return CHUNKED
    if (name.length === 14 && name.toLowerCase() === 'content-length') length = Number(raw[i + 1]!)
  }
  return Number.isInteger(length) && length >= 0 ? length : UNFRAMED
}

/**
 * From how many body bytes on a response must not pause undici (see
 * ForwardHandler.onData): its Content-Length; never for a chunked body (its
 * terminator follows the last data, so a pause there is harmless); from the
 * start for a body that only the origin's close ends.
 */
function noPauseFrom (framing: number): number {
  return framing === CHUNKED ? Infinity : framing === UNFRAMED ? 0 : framing
}

/**
 * What a failed exchange means, from its error code, in one table: the
 * answer the client gets and whether the request may go to another replica.
 * `free`: the connection was never made (refused, unreachable, a connect
 * timeout, a TLS handshake that failed): the request reached no server, so
 * sending it elsewhere adds no work anywhere and needs no retry budget.
 * `budget`: the connection was reset or closed before any response byte
 * (a keep-alive connection the server had just closed, or a server that
 * died): safe to send again for idempotent methods, within the retry budget.
 * `reissue`: our HTTP/1.1 client saw the server close a reused connection
 * before any byte of an answer (h1-client.ts REUSED_CLOSED): the race with
 * its keep-alive close, which says nothing of the server, so an idempotent
 * request goes again with no retry budget, to any server, this one included
 * (on another connection: Go's net/http, HAProxy `retry-on empty-response`).
 * `no`: it may have been processed, or it is not the server's doing.
 */
interface Failure {
  readonly kind: ErrorKind
  readonly retry: 'free' | 'budget' | 'reissue' | 'no'
}

const FAILURES: ReadonlyMap<string, Failure> = new Map(Object.entries({
  ECONNREFUSED: { kind: Errors.UPSTREAM_CONNECT, retry: 'free' },
  EHOSTUNREACH: { kind: Errors.UPSTREAM_CONNECT, retry: 'free' },
  ENETUNREACH: { kind: Errors.UPSTREAM_CONNECT, retry: 'free' },
  EADDRNOTAVAIL: { kind: Errors.UPSTREAM_CONNECT, retry: 'free' },
  ENOTFOUND: { kind: Errors.UPSTREAM_CONNECT, retry: 'free' },
  EAI_AGAIN: { kind: Errors.UPSTREAM_CONNECT, retry: 'free' },
  UND_ERR_CONNECT_TIMEOUT: { kind: Errors.UPSTREAM_TIMEOUT, retry: 'free' },
  ETIMEDOUT: { kind: Errors.UPSTREAM_TIMEOUT, retry: 'free' },
  UND_ERR_HEADERS_TIMEOUT: { kind: Errors.UPSTREAM_TIMEOUT, retry: 'no' },
  UND_ERR_BODY_TIMEOUT: { kind: Errors.UPSTREAM_TIMEOUT, retry: 'no' },
  ECONNRESET: { kind: Errors.UPSTREAM_RESET, retry: 'budget' },
  EPIPE: { kind: Errors.UPSTREAM_RESET, retry: 'budget' },
  UND_ERR_SOCKET: { kind: Errors.UPSTREAM_RESET, retry: 'budget' },
  [REUSED_CLOSED]: { kind: Errors.UPSTREAM_RESET, retry: 'reissue' },
  UND_ERR_CLOSED: { kind: Errors.UPSTREAM_RESET, retry: 'budget' },
  UND_ERR_DESTROYED: { kind: Errors.UPSTREAM_RESET, retry: 'no' },
  UND_ERR_REQ_CONTENT_LENGTH_MISMATCH: { kind: Errors.BAD_REQUEST, retry: 'no' },
  // A client's field or target that undici refuses to send.
  UND_ERR_INVALID_ARG: { kind: Errors.BAD_REQUEST, retry: 'no' },
  UND_ERR_ABORTED: { kind: Errors.CLIENT_ABORTED, retry: 'no' },
  UND_ERR_RES_CONTENT_LENGTH_MISMATCH: { kind: Errors.UPSTREAM_PROTOCOL, retry: 'no' },
  UND_ERR_HEADERS_OVERFLOW: { kind: Errors.UPSTREAM_PROTOCOL, retry: 'no' },
  [Errors.UPSTREAM_BAD_RESPONSE.code]: { kind: Errors.UPSTREAM_BAD_RESPONSE, retry: 'no' }
}))

const TLS_FAILURE: Failure = { kind: Errors.UPSTREAM_CONNECT, retry: 'free' }
/** An h2 server's RST_STREAM(REFUSED_STREAM): it did no processing of the request (RFC 9113 §8.7), so any method may go elsewhere. */
const REFUSED_STREAM: Failure = { kind: Errors.UPSTREAM_RESET, retry: 'free' }
const PARSE_FAILURE: Failure = { kind: Errors.UPSTREAM_PROTOCOL, retry: 'no' }
const OTHER_FAILURE: Failure = { kind: Errors.UPSTREAM_RESET, retry: 'no' }

/** The one classification of an undici / socket / TLS error (see FAILURES). */
export function classifyFailure (err: Error): Failure {
  const code = (err as { code?: string }).code
  // undici 7's llhttp errors carry no code (its ERROR table has no reverse mapping): a NUL or bare CR in a field.
  if (code === undefined) return err.name === 'HTTPParserError' ? PARSE_FAILURE : OTHER_FAILURE
  const known = FAILURES.get(code)
  if (known !== undefined) return known
  // Certificate verification, a name mismatch, an alert from the server: the connection never became usable.
  if (tlsFailure(code)) return TLS_FAILURE
  if (code.startsWith('HPE_')) return PARSE_FAILURE
  // Node names the RST_STREAM code only in the message.
  if (code === 'ERR_HTTP2_STREAM_ERROR' && err.message.includes('NGHTTP2_REFUSED_STREAM')) return REFUSED_STREAM
  return OTHER_FAILURE
}

/** The request reached no server at all: a retry elsewhere is free. */
export function connectFailure (err: Error): boolean {
  return classifyFailure(err).retry === 'free'
}

/** The server closed a reused connection before answering: send again, free, this server included (see FAILURES). */
export function reissuable (err: Error): boolean {
  return classifyFailure(err).retry === 'reissue'
}

/** An h2 stream the server refused before processing it: safe to send again whatever the method. */
export function refusedStream (err: Error): boolean {
  return classifyFailure(err) === REFUSED_STREAM
}

/** Safe to send again elsewhere (when the method is idempotent): it never reached the application. */
export function retryableFailure (err: Error): boolean {
  return classifyFailure(err).retry !== 'no'
}

/** Map an undici / socket error to our error kind. */
export function upstreamErrorKind (err: Error): ErrorKind {
  return classifyFailure(err).kind
}
