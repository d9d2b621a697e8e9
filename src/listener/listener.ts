// Downstream listeners: where traffic enters. A TLS listener speaks h2 and
// http/1.1 on one port (ALPN); a plain one speaks HTTP/1.1. Turns each
// request into a call on the pipeline and does nothing else: no routing here.
import http from 'node:http'
import http2 from 'node:http2'
import https from 'node:https'
import type { AddressInfo, Socket } from 'node:net'
import type { ClientTimeoutsConfig, LimitsConfig, ListenerConfig } from '../config/schema.js'
import type { Pipeline } from '../proxy/pipeline.js'
import type { ListenerContext } from '../proxy/session.js'
import { isH2WebSocket, isWebSocketUpgrade } from '../proxy/upgrade.js'
import { attachLane, LANE_WORKS, type LaneRequest } from './h1-lane.js'
import { KeepAliveSweep } from './keep-alive.js'
import { closingConnection, lingerOnClose, onClientError } from './linger.js'
import { standaloneRequestId } from '../tracing/context.js'
import { acceptProxyProtocol, proxyAcceptSettings, type ProxyRefusal } from './proxy-accept.js'
import { ListenSocket } from './socket.js'
import { createSecureH2Server, createTlsContexts, type TlsContexts } from './tls.js'

export interface ListenerHandle {
  readonly name: string
  readonly context: ListenerContext
  readonly tls: TlsContexts | undefined
  /** Its listening socket: a listener that replaces this one on the same address takes it over. */
  readonly socket: ListenSocket
  address (): AddressInfo
  /** Take the connections of its socket from now on (started on another listener's socket: when the reload commits). */
  accept (): void
  /** Stop accepting; end idle connections now and the rest after `graceMs`. */
  close (graceMs?: number): Promise<void>
  /**
   * A reload that keeps this listener: its maxTunnels, client timeouts and
   * header limits take effect for new connections (and idle timers). Returns
   * what could not be applied without a restart, in `… needs a restart` words.
   */
  update (cfg: ListenerConfig, opts: ListenerOptions): string[]
}

export interface ListenerOptions {
  readonly limits: LimitsConfig
  readonly timeouts: ClientTimeoutsConfig
  /** Told about connections and h2 streams (metrics gauges). */
  readonly observer?: ConnectionObserver
}

export interface ConnectionObserver {
  /** `socket`: the accepted TCP socket, or the TLS socket over it. */
  connectionOpened (listener: string, protocol: 'h1' | 'h2', socket: Socket): void
  connectionClosed (listener: string, protocol: 'h1' | 'h2'): void
  streamOpened (listener: string): void
  streamClosed (listener: string): void
  /** A connection closed before HTTP for want of a good PROXY header from a trusted source. */
  proxyRefused? (listener: string, why: ProxyRefusal, peer: string): void
  /**
   * An HTTP/1.1 request node:http's parser refused (bad bytes in its head, a
   * head too large or too slow), answered `status` before any of ours could
   * see it: `code` is the parser's (HPE_INVALID_METHOD…), `requestId` the
   * one the answer carried (undefined with `requestId: false`).
   */
  badRequest? (listener: string, socket: Socket, status: number, code: string, requestId: string | undefined): void
}

// Node's own limits on a request head sit above ours, which run in the
// pipeline and answer 431 / 414 themselves (one rule for h1 and h2): its h1
// parser counts the request line and framing too (slack for those), and
// nghttp2 counts 32 bytes more per field (RFC 7541 §4.1).
const H1_HEADER_SLACK = 8192
function h1HeadLimit (l: LimitsConfig): number { return l.maxHeaderBytes + l.maxUriBytes + H1_HEADER_SLACK }
function h2HeaderListLimit (l: LimitsConfig): number { return l.maxHeaderBytes * 2 + l.maxUriBytes + 4096 }

const NGHTTP2_INTERNAL_ERROR = 2
const NGHTTP2_NO_ERROR = 0
const MAX_STREAM_ID = 2 ** 31 - 1
/** Between a late session's first GOAWAY and its last: more than a round trip on any sane network. */
const LATE_GOAWAY_MS = 200

/** On close, how long an open connection without a request may still send one. */
const IDLE_GRACE_MS = 500

/** The ServerResponse field Node writes its `Keep-Alive: timeout=N` hint from (set from server.keepAliveTimeout). */
type KeepAliveHint = { _keepAliveTimeout: number }

const kIdle = Symbol('switchyard.idle')
type IdleHolder = { [kIdle]?: SessionIdle }
const kStall = Symbol('switchyard.stall')
/** When a stream's ended answer was first seen held, and how much of it was held then (see SessionIdle.check). */
type StallHolder = { [kStall]?: { readonly since: number, readonly length: number } | undefined }

/** The h2 side of timeouts.clientSend, for SessionIdle: its current value, and what cuts a stream past it. */
interface StalledAnswers {
  readonly sendMs: number
  stalled (stream: http2.ServerHttp2Stream): void
}

/**
 * An h2 session's idle timeout (timeouts.clientIdle): it is closed (GOAWAY;
 * streams in flight finish) once no stream has been open for `ms`, as
 * Envoy's idle_timeout and NGINX's keepalive_timeout count it. Streams are
 * kept as they open and close (the listener's onStream), not watched with
 * session.setTimeout, which Node re-arms on every frame, respond() and write:
 * several timer updates per request. A session with streams open is
 * destroyed when frames wait to go out and no byte has moved for `ms` (see
 * check): it can never finish them.
 */
class SessionIdle {
  /** Streams open now. */
  readonly streams = new Set<http2.ServerHttp2Stream>()
  /** performance.now() when the last stream closed, or the session began. */
  since = performance.now()
  readonly session: http2.ServerHttp2Session
  readonly ms: number
  #timer: NodeJS.Timeout | undefined
  /** The socket's bytes read and written at the last check with streams open (-1: none yet). */
  #bytes = -1
  readonly #answers: StalledAnswers

  constructor (session: http2.ServerHttp2Session, ms: number, answers: StalledAnswers) {
    this.session = session
    this.ms = ms
    this.#answers = answers
    this.#arm(ms)
  }

  #arm (ms: number): void {
    this.#timer = setTimeout(onIdleCheck, ms, this)
    this.#timer.unref() // as Node's own session timer: never what keeps the process up
  }

  /** The timer fired: close if idle long enough, else look again when it could be. */
  check (): void {
    this.#timer = undefined
    if (this.session.closed || this.session.destroyed) return
    if (this.streams.size > 0) {
      // Something waiting to go out, and not a byte moved either way for a
      // whole period: it never will. nghttp2 stops sending and reading once
      // it has sent a GOAWAY for a connection error (a client's DATA on a
      // stream it had ended), and Node then closes neither the streams nor the
      // socket; a client that never opens a stream's window stalls it too.
      const socket = this.session.socket
      const bytes = socket.bytesRead + socket.bytesWritten
      if (bytes === this.#bytes && this.#waiting()) {
        this.session.destroy()
        return
      }
      this.#bytes = bytes
      if (this.#answers.sendMs > 0) this.#cutStalled(this.#answers.sendMs)
      return this.#arm(this.ms)
    }
    this.#bytes = -1
    const left = this.since + this.ms - performance.now()
    if (left > 0) return this.#arm(left)
    this.session.close()
  }

  /**
   * Answers we have ended whose bytes the stream still holds, the same
   * amount since a check at least `sendMs` ago: only the client's flow
   * control keeps them (an answer under the stream's 16 KiB high-water mark
   * never backs up a write, so no timer of the session's watches it), and
   * a client sending PINGs keeps the session's bytes moving. Cut as the
   * session's own clientSend timer would, within clientIdle of it.
   */
  #cutStalled (sendMs: number): void {
    const now = performance.now()
    for (const s of this.streams) {
      const held = s.writableEnded ? s.writableLength : 0
      const mark = (s as StallHolder)[kStall]
      if (held === 0) {
        if (mark !== undefined) (s as StallHolder)[kStall] = undefined
      } else if (mark === undefined || mark.length !== held) {
        (s as StallHolder)[kStall] = { since: now, length: held }
      } else if (now - mark.since >= sendMs) {
        this.#answers.stalled(s)
      }
    }
  }

  /** Frames queued in nghttp2, or a stream's answer held by Node (its window is shut). */
  #waiting (): boolean {
    if (this.session.state.outboundQueueSize! > 0) return true
    for (const s of this.streams) if (s.writableLength > 0) return true
    return false
  }

  stop (): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#timer = undefined
  }
}

function onIdleCheck (idle: SessionIdle): void { idle.check() }

function countConnection (observer: ConnectionObserver, name: string, protocol: 'h1' | 'h2', socket: Socket): void {
  observer.connectionOpened(name, protocol, socket)
  socket.once('close', () => observer.connectionClosed(name, protocol))
}

/** How often node:http checks its connections' headersTimeout, ms. */
const HEADS_CHECK_MS = 1000
/** Cookie fields an h2 request may carry beyond limits.maxHeaderCount (see maxHeaderListPairs). */
const COOKIE_CRUMBS = 256

/**
 * A TLS handshake is bounded as a plaintext head is, by clientHeaders. With
 * clientHeaders 0 (no limit) it keeps Node's own bound, 120 s: Node takes 0
 * for that default anyway.
 */
function handshakeMs (timeouts: ClientTimeoutsConfig): number {
  return timeouts.clientHeaders > 0 ? timeouts.clientHeaders : 120_000
}

/**
 * Binds `cfg`'s address, or with `takeOver` (the socket of a listener this one
 * replaces on the same address) serves that socket's connections once told
 * to (`accept`), without binding.
 */
export async function startListener (cfg: ListenerConfig, pipeline: Pipeline, opts: ListenerOptions,
  takeOver?: ListenSocket): Promise<ListenerHandle> {
  const tls = cfg.tls === undefined ? undefined : createTlsContexts(cfg.tls)
  // Not frozen: a reload may change max.
  const tunnels = { open: 0, max: cfg.maxTunnels }
  // Sealed, not frozen: a reload may replace the redirect.
  const context: ListenerContext = Object.seal({
    name: cfg.name,
    proto: cfg.tls === undefined ? 'http' : 'https',
    tunnels,
    ...(tls === undefined || cfg.tls!.certificates.length < 2 ? {} : { misdirected: tls.misdirected }),
    redirect: cfg.redirect,
    closing: false
  })
  const { limits, timeouts } = opts
  // HTTP/1.1 idleness is swept (keep-alive.ts), not timed per request by
  // Node: its servers get keepAliveTimeout 0, and each response the value
  // for its `Keep-Alive: timeout=N` hint, which Node writes from this field.
  // It also finds answers stalled on a client that takes nothing (clientSend) that no timer of theirs watches.
  const keepAlive = new KeepAliveSweep(timeouts.clientIdle, timeouts.clientSend, (socket, res) => {
    if (res instanceof http.ServerResponse) pipeline.sendStalled(res)
    else socket.destroy()
  }, timeouts.clientHeaders)
  const stalledAnswers: StalledAnswers = {
    get sendMs () { return keepAlive.sendMs },
    stalled: (stream) => { pipeline.sendStalled(stream) }
  }
  const onRequest = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    if (closingConnection(req.socket)) {
      req.resume() // its body is dropped with the rest
      return
    }
    (res as unknown as KeepAliveHint)._keepAliveTimeout = keepAlive.ms
    pipeline.handleRequest(req, res, context)
  }
  const observer = opts.observer
  // Streams are counted here rather than by a second 'stream' listener, and
  // their close by one function per listener rather than a closure per stream.
  const streamClosed = function (this: http2.ServerHttp2Stream & IdleHolder): void {
    const idle = this[kIdle]
    if (idle !== undefined && idle.streams.delete(this) && idle.streams.size === 0) idle.since = performance.now()
    observer?.streamClosed(cfg.name)
  }
  const onStream = (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, _flags: number, rawHeaders: string[]): void => {
    const idle = (stream.session as IdleHolder | undefined)?.[kIdle]
    if (idle !== undefined) {
      idle.streams.add(stream)
      ;(stream as IdleHolder)[kIdle] = idle
    }
    routeStream(stream, headers, rawHeaders)
    observer?.streamOpened(cfg.name)
    if (idle !== undefined || observer !== undefined) stream.on('close', streamClosed) // fires once; `on` spares once()'s wrapper
  }
  const routeStream = (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, rawHeaders: string[]): void => {
    // Expect, as node:http2's compatibility layer answered it: 100-continue
    // at once (the body is read when the request goes upstream), any other
    // expectation 417.
    const expect = headers.expect
    if (expect !== undefined) {
      try {
        if (expect !== '100-continue') {
          stream.on('error', () => {})
          stream.respond({ ':status': 417 }, { endStream: true })
          return
        }
        stream.additionalHeaders({ ':status': 100 })
      } catch {
        return stream.close(NGHTTP2_INTERNAL_ERROR)
      }
    }
    if (isH2WebSocket(headers)) return pipeline.handleH2Tunnel(stream, headers, rawHeaders, context)
    pipeline.handleStream(stream, headers, rawHeaders, context)
  }
  const onUpgrade = (req: http.IncomingMessage, socket: Socket, head: Buffer): void => {
    keepAlive.forget(socket) // a tunnel, or a connection that closes after this answer
    // node:http hands over an Upgrade or a CONNECT pipelined behind requests
    // whose answers are not all written yet: it waits its turn, so those go
    // out whole and first (and no second answer is given the socket).
    const earlier = (socket as Socket & { _httpMessage?: http.ServerResponse | null })._httpMessage
    if (earlier !== null && earlier !== undefined) {
      const next = (): void => {
        earlier.off('finish', next)
        earlier.off('close', next)
        if (!socket.destroyed && socket.writable) onUpgrade(req, socket, head)
      }
      earlier.on('finish', next)
      earlier.on('close', next)
      return
    }
    if (req.method === 'CONNECT' || isWebSocketUpgrade(req)) return pipeline.handleUpgrade(req, socket, head, context)
    // Any other Upgrade (notably h2c, the "h2c smuggling" attack) is not a
    // tunnel we open: the request is answered as an ordinary one (Upgrade is
    // hop-by-hop and never forwarded) on a connection that then closes, since
    // Node has already handed the socket over.
    const res = new http.ServerResponse(req)
    res.shouldKeepAlive = false
    res.assignSocket(socket)
    res.once('finish', () => socket.destroySoon())
    socket.on('error', () => socket.destroy())
    pipeline.handleRequest(req, res, context, true)
  }
  // Read by each new h2 session; a reload may change it.
  let idleMs = timeouts.clientIdle
  const h2Pairs = limits.maxHeaderCount
  const h1Options: http.ServerOptions = {
    maxHeaderSize: h1HeadLimit(limits),
    headersTimeout: timeouts.clientHeaders,
    requestTimeout: 0, // large uploads are bounded by the upstream body timeout, not a wall clock
    keepAliveTimeout: 0, // swept by keepAlive
    // How often node:http looks for heads slower than headersTimeout (its
    // default, 30 s, let a 2 s clientHeaders run to 30).
    connectionsCheckingInterval: HEADS_CHECK_MS
  }

  let server: http.Server | https.Server | http2.Http2SecureServer
  if (cfg.tls === undefined || tls === undefined) {
    server = http.createServer(h1Options, onRequest as http.RequestListener)
  } else {
    if (cfg.tls.http2) {
      // 'request' is HTTP/1.1 here (allowHTTP1). Adding a 'request' listener
      // makes Node wire its compatibility layer to 'stream' too; that
      // listener is removed so h2 streams reach the core API, and us, alone.
      const h2 = createSecureH2Server({
        ...tls.serverOptions,
        ...h1Options,
        handshakeTimeout: handshakeMs(timeouts),
        // Room for the cookie crumbs browsers send as separate fields (Chrome keeps up to 180
        // cookies per domain); they count as one field against maxHeaderCount (headers.ts).
        maxHeaderListPairs: limits.maxHeaderCount * 2 + 16 + COOKIE_CRUMBS,
        // enableConnectProtocol: WebSockets over h2 (RFC 8441).
        settings: { maxHeaderListSize: h2HeaderListLimit(limits), maxConcurrentStreams: 256, enableConnectProtocol: true }
      } as http2.SecureServerOptions, onRequest as never)
      h2.removeAllListeners('stream')
      h2.on('stream', onStream as (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, flags: number) => void)
      // The HTTP/1.1 side of an allowHTTP1 server reads these from the server object.
      Object.assign(h2, {
        headersTimeout: timeouts.clientHeaders,
        connectionsCheckingInterval: HEADS_CHECK_MS, // read when it starts listening
        requestTimeout: 0,
        keepAliveTimeout: 0,
        maxHeaderSize: h1Options.maxHeaderSize
      })
      h2.on('session', (session: http2.ServerHttp2Session) => {
        if (idleMs > 0) {
          const idle = new SessionIdle(session, idleMs, stalledAnswers)
          ;(session as IdleHolder)[kIdle] = idle
          session.once('close', () => idle.stop())
        }
        session.on('error', () => session.destroy())
      })
      h2.on('sessionError', () => {})
      server = h2
    } else {
      const { allowHTTP1: _unused, ...rest } = tls.serverOptions
      server = https.createServer({ ...rest, ...h1Options, handshakeTimeout: handshakeMs(timeouts) }, onRequest as http.RequestListener)
    }
    tls.attach(server as https.Server)
  }
  // Node's parser refusals answered in linger.ts, counted and logged as HAProxy logs its <BADREQ>,
  // with a request id in the answer as on every other, and the same id in the log.
  const badRequest = observer?.badRequest
  const clientError = (err: NodeJS.ErrnoException, socket: Socket): void => {
    const idLine = pipeline.state.requestIdLine
    const id = idLine === undefined ? undefined : standaloneRequestId()
    const status = onClientError(err, socket, id === undefined ? '' : idLine + id + '\r\n')
    if (status !== undefined) badRequest?.call(observer, cfg.name, socket, status, err.code ?? '', id)
  }
  // HTTP/1.1 keep-alive requests without a body take the lane (h1-lane.ts)
  // in front of node:http's connection listener (on a TLS listener, the
  // server's 'secureConnection' one, which also starts h2 sessions), and it
  // takes any connection the lane hands over. Not behind a PROXY header, which is read first.
  const lane = LANE_WORKS && cfg.proxyProtocol === undefined
    ? attachLane(server, cfg.tls === undefined ? 'connection' : 'secureConnection',
      { maxHeaderSize: h1Options.maxHeaderSize!, headersTimeout: timeouts.clientHeaders },
      (req: LaneRequest, res: http.ServerResponse) => onRequest(req as unknown as http.IncomingMessage, res), clientError)
    : undefined
  // Before the listener's own 'connection' bookkeeping below, which sees
  // every socket at once (so close() reaches those still sending a header).
  let pp = cfg.proxyProtocol === undefined ? undefined : proxyAcceptSettings(cfg.proxyProtocol)
  if (pp !== undefined) {
    acceptProxyProtocol(server, () => pp!, observer?.proxyRefused === undefined
      ? undefined
      : (why, peer) => observer.proxyRefused!(cfg.name, why, peer))
  }
  server.on('upgrade', onUpgrade)
  // Expect: 100-continue. node:http's own answer queues the 100 of a request
  // pipelined behind an unfinished answer and then puts this answer's head in
  // front of it (the 100 lands in the body). The 100 goes out once this
  // answer has the connection, and only if nothing of the answer went first.
  server.on('checkContinue', (req: http.IncomingMessage, res: http.ServerResponse) => {
    if (res.socket !== null) res.writeContinue()
    else res.once('socket', () => { if (!res.headersSent) res.writeContinue() })
    onRequest(req, res)
  })
  server.on('clientError', clientError)
  // Node hands an HTTP/1.1 CONNECT to 'connect' with the raw socket, not to
  // 'request' (and closes the connection when nobody listens): it gets our own
  // 405 this way. An h2 CONNECT is a stream like any other (405 in the plan).
  server.on('connect', (req: http.IncomingMessage, socket: Socket, head?: Buffer): void => {
    onUpgrade(req, socket, head ?? Buffer.alloc(0))
  })

  const sockets = new Set<Socket>()
  const sessions = new Set<http2.ServerHttp2Session>()
  let drained: (() => void) | undefined
  server.on('connection', (socket: Socket) => {
    sockets.add(socket)
    socket.once('close', () => {
      sockets.delete(socket)
      if (sockets.size === 0) drained?.()
    })
    // Plain sockets are HTTP/1.1 now; TLS ones are counted once ALPN has spoken.
    if (cfg.tls === undefined) {
      lingerOnClose(socket)
      keepAlive.add(socket)
      if (observer !== undefined) countConnection(observer, cfg.name, 'h1', socket)
    }
  })
  if (cfg.tls !== undefined) {
    server.on('secureConnection', (socket: import('node:tls').TLSSocket) => {
      const protocol = socket.alpnProtocol === 'h2' ? 'h2' : 'h1'
      if (protocol === 'h1') {
        lingerOnClose(socket)
        keepAlive.add(socket) // h2 sessions count their streams (SessionIdle)
      }
      if (observer !== undefined) countConnection(observer, cfg.name, protocol, socket)
    })
  }
  server.on('session', (session: http2.ServerHttp2Session) => {
    sessions.add(session)
    session.once('close', () => sessions.delete(session))
    // Accepted before close() but through its TLS handshake only after: without a GOAWAY its
    // client keeps opening streams until the drain deadline cuts one. RFC 9113 §6.8's graceful
    // form: a first GOAWAY that still takes the streams already on their way, then the last.
    if (context.closing === true) {
      session.goaway(NGHTTP2_NO_ERROR, MAX_STREAM_ID)
      setTimeout(() => { if (!session.destroyed) session.close() }, LATE_GOAWAY_MS).unref()
    }
  })

  // The server never listens (its socket does): this starts what node:http
  // starts on listening, the sweep of heads slower than headersTimeout.
  server.emit('listening')
  const socket = takeOver ?? new ListenSocket(server)
  if (takeOver === undefined) await socket.listen(cfg.port, cfg.host)

  return {
    name: cfg.name,
    context,
    tls,
    socket,
    address: () => socket.address(),
    accept () {
      socket.serve(server)
    },
    update (next, o) {
      // Turned on or off, it is another listener (reload.ts): here it is its trusted sources and timeout.
      if (next.proxyProtocol !== undefined) pp = proxyAcceptSettings(next.proxyProtocol)
      tunnels.max = next.maxTunnels
      context.redirect = next.redirect
      idleMs = o.timeouts.clientIdle
      keepAlive.ms = o.timeouts.clientIdle
      keepAlive.sendMs = o.timeouts.clientSend
      keepAlive.headMs = o.timeouts.clientHeaders
      // Node reads these from the server object for every new connection (h1,
      // and the HTTP/1.1 side of an allowHTTP1 server) and its timeout sweep.
      Object.assign(server, {
        headersTimeout: o.timeouts.clientHeaders,
        maxHeaderSize: h1HeadLimit(o.limits)
      })
      // tls.Server reads its handshake timeout for each new connection from a
      // symbol of its own; absent from a later Node, the first value stays.
      const kHandshake = cfg.tls === undefined ? undefined : Object.getOwnPropertySymbols(server).find((k) => k.description === 'handshake-timeout')
      if (kHandshake !== undefined) (server as unknown as Record<symbol, number>)[kHandshake] = handshakeMs(o.timeouts)
      if (lane !== undefined) {
        lane.settings.headersTimeout = o.timeouts.clientHeaders
        lane.settings.maxHeaderSize = h1HeadLimit(o.limits)
      }
      if ('updateSettings' in server) {
        server.updateSettings({ maxHeaderListSize: h2HeaderListLimit(o.limits) })
        // nghttp2's own cap on header pairs is fixed when the server is made; a
        // lower count is still enforced per request (431), a higher one is not reachable.
        if (o.limits.maxHeaderCount > h2Pairs) return [`limits.maxHeaderCount above ${h2Pairs} needs a restart for HTTP/2 on listener ${cfg.name}`]
      }
      return []
    },
    async close (graceMs = 0): Promise<void> {
      // Stop accepting, but not the way http.Server#close does it: that also
      // cuts every connection without a request in flight at once, including
      // one accepted a moment ago whose client is writing its first request
      // (a reset for an accepted request). Those get IDLE_GRACE_MS to send it;
      // it is answered with Connection: close (the pipeline is draining).
      context.closing = true
      // Not a socket a listener that replaced this one took over: that one serves it now.
      const closed = socket.servedBy(server) ? socket.close() : Promise.resolve()
      keepAlive.stop()
      for (const s of sessions) s.close() // GOAWAY: streams in flight finish
      if (graceMs > 0) await new Promise((resolve) => setTimeout(resolve, Math.min(IDLE_GRACE_MS, graceMs / 4)))
      if ('closeIdleConnections' in server) server.closeIdleConnections()
      lane?.closeIdle()
      if (graceMs > 0 && sockets.size > 0) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, graceMs)
          drained = () => { clearTimeout(timer); resolve() }
        })
      }
      for (const s of sockets) s.destroy()
      server.close() // node:http's sweep of slow heads, started by 'listening'
      await closed
    }
  }
}
