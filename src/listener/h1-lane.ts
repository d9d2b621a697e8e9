// The HTTP/1.1 request lane of a listener (issue 12): keep-alive requests
// without a body are read by Node's own parser binding (llhttp.ts) and
// answered through node:http's own ServerResponse, without node:http's
// server machinery per request (an IncomingMessage stream, its connection
// state, its per-request listeners and timers). Measured on one core, a
// minimal server answering 100 bytes with a prepared head: node:http 13.9 µs
// per request, this shape 12.1 µs fed by 'data' events, about 2 µs less
// again reading the socket's handle directly (plain TCP, or TLS: a TLSWrap is
// a stream handle too); a cache hit is about 17.
//
// Anything else hands the connection to node:http as it stands: a request
// with a body (Content-Length or Transfer-Encoding), Expect, an upgrade or
// CONNECT, HTTP/1.0, Connection: close, no Host, a head split across two
// reads, a head of more than 32 fields, a parse error. The read that brought
// it is put back in front of the socket and node:http's own connection
// listener takes the socket, once this lane's answers in flight are written;
// from then on node:http serves that connection. So every hard case (bodies,
// 100-continue, tunnels, smuggling defences, error answers, slow heads) has
// one implementation, Node's, and a read is either wholly the lane's or
// wholly node:http's.
import { ServerResponse, type IncomingHttpHeaders } from 'node:http'
import type { Server, Socket } from 'node:net'
import { isName } from '../fields.js'
import { consumableHandle, METHODS, NativeParser, readStart, readStop, type NativeParser as Parser, type ParseError, type StreamHandle } from '../llhttp.js'

/** What the listener gives the lane, read live (a reload changes them). */
export interface LaneSettings {
  /** node:http's maxHeaderSize for this listener: a longer head is a parse error (node:http then answers 431). */
  maxHeaderSize: number
  /** How long a new connection may take to send its first read (ms; 0 = forever), as node:http's headersTimeout. */
  headersTimeout: number
}

export interface LaneHooks {
  /** A request, as node:http's 'request' event would have given it. */
  readonly request: (req: LaneRequest, res: ServerResponse) => void
  /** node:http's own connection listener: the connection is node:http's from now on. */
  readonly handOff: (socket: Socket) => void
  /** The listener's 'clientError': a socket error, or a first request slower than headersTimeout. */
  readonly clientError: (err: NodeJS.ErrnoException, socket: Socket) => void
}

/**
 * A request the lane read: the IncomingMessage fields the proxy reads. It
 * has no body, so it is not a stream: the body is complete and empty.
 */
export class LaneRequest {
  readonly socket: Socket
  readonly method: string
  readonly url: string
  readonly rawHeaders: string[]
  readonly httpVersion = '1.1'
  readonly httpVersionMajor = 1
  readonly httpVersionMinor = 1
  readonly complete = true
  readonly readableEnded = true
  readonly upgrade = false
  #headers: IncomingHttpHeaders | undefined

  constructor (socket: Socket, method: string, url: string, rawHeaders: string[]) {
    this.socket = socket
    this.method = method
    this.url = url
    this.rawHeaders = rawHeaders
  }

  /** As IncomingMessage's, made on first use. */
  get headers (): IncomingHttpHeaders {
    return this.#headers ??= headerObject(this.rawHeaders)
  }

  /** Nothing to read: the body is empty. */
  resume (): this {
    return this
  }
}

/** Fields IncomingMessage keeps the first of (Node's matchKnownFields); set-cookie is a list, cookie joins with '; ', the rest with ', '. */
const FIRST_ONLY: ReadonlySet<string> = new Set(['age', 'authorization', 'content-length', 'content-type', 'etag', 'expires', 'from',
  'host', 'if-modified-since', 'if-unmodified-since', 'last-modified', 'location', 'max-forwards', 'proxy-authorization', 'referer',
  'retry-after', 'server', 'user-agent'])

function headerObject (raw: readonly string[]): IncomingHttpHeaders {
  const out: Record<string, string | string[]> = Object.create(null) as Record<string, string | string[]>
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase()
    const value = raw[i + 1]!
    const prev = out[name]
    if (name === 'set-cookie') {
      if (prev === undefined) out[name] = [value]
      else (prev as string[]).push(value)
    } else if (prev === undefined) out[name] = value
    else if (!FIRST_ONLY.has(name)) out[name] = `${prev as string}${name === 'cookie' ? '; ' : ', '}${value}`
  }
  return out
}

/**
 * A head the lane answers: a keep-alive HTTP/1.1 request with Host and no
 * body or expectation (`fields`: its raw name/value list).
 */
function plainHead (fields: readonly string[]): boolean {
  let host = false
  for (let i = 0; i < fields.length; i += 2) {
    const name = fields[i]!
    switch (name.length) {
      case 4: if (isName(name, 'host')) host = true; break
      case 6: if (isName(name, 'expect')) return false; break
      case 14: if (isName(name, 'content-length')) return false; break
      case 17: if (isName(name, 'transfer-encoding')) return false; break
    }
  }
  return host
}

/** OutgoingMessage's own flag for a write that came back false, which node:http's server clears on the socket's drain. */
const kNeedDrain: symbol | undefined = (() => {
  try {
    const probe = new ServerResponse({ method: 'GET', httpVersionMajor: 1, httpVersionMinor: 1, headers: {} } as never)
    return Object.getOwnPropertySymbols(probe).find((s) => s.description === 'kNeedDrain')
  } catch {
    return undefined
  }
})()

/** Whether this Node has what the lane uses (checked once at load); without it node:http serves every connection. */
export const LANE_WORKS = NativeParser !== undefined && METHODS.length > 0 && kNeedDrain !== undefined

/** Pipelined requests read ahead of the one being answered before the lane stops reading, as node:http pauses. */
const MAX_QUEUED = 16

const kLane = Symbol('switchyard.lane')

/** The node:http fields of a response the lane reads and sets. */
interface LaneResponse extends ServerResponse {
  [kLane]: LaneConnection
  _last: boolean
  _closed: boolean
}

/** ServerResponse's constructor as node:http's server calls it (the options are not in its typings). */
type LaneResponseClass = new (req: LaneRequest, options: { highWaterMark: number }) => LaneResponse

/**
 * Put a lane in front of `server`'s node:http connection listener, the first
 * it has for `event` ('connection'; 'secureConnection' on TLS, where that
 * listener also starts h2 sessions): every connection then comes to the lane,
 * but one that ALPN made h2, and the lane hands node:http what it does not
 * answer. `request` and `clientError`: the server's own handlers.
 */
export function attachLane (server: Server, event: 'connection' | 'secureConnection', settings: LaneSettings,
  request: LaneHooks['request'], clientError: LaneHooks['clientError']): H1Lane {
  const nodeConnection = server.listeners(event)[0] as (socket: Socket) => void
  server.removeListener(event, nodeConnection)
  const lane = new H1Lane(settings, { request, handOff: (socket) => nodeConnection.call(server, socket), clientError })
  server.prependListener(event, (socket: Socket) => {
    if ((socket as Socket & { alpnProtocol?: string | false }).alpnProtocol === 'h2') nodeConnection.call(server, socket)
    else lane.accept(socket)
  })
  return lane
}

/** One listener's lane: its settings, hooks and open connections. */
export class H1Lane {
  readonly settings: LaneSettings
  readonly hooks: LaneHooks
  readonly #connections = new Set<LaneConnection>()

  constructor (settings: LaneSettings, hooks: LaneHooks) {
    this.settings = settings
    this.hooks = hooks
  }

  /** A new connection on the listener. */
  accept (socket: Socket): void {
    this.#connections.add(new LaneConnection(this, socket))
  }

  /** Connections the lane still reads. */
  get size (): number { return this.#connections.size }

  forget (c: LaneConnection): void {
    this.#connections.delete(c)
  }

  /** The listener closes: connections with nothing in flight are closed now, as node:http's closeIdleConnections. */
  closeIdle (): void {
    for (const c of this.#connections) c.closeIfIdle()
  }
}

const REQUEST_TIMEOUT = 'ERR_HTTP_REQUEST_TIMEOUT'

class LaneConnection {
  readonly #lane: H1Lane
  readonly #socket: Socket
  readonly #parser: Parser
  /** Requests read and not yet answered, in order. */
  readonly #queue: LaneRequest[] = []
  /** Requests parsed from the read being parsed. */
  readonly #read: LaneRequest[] = []
  /** The read being parsed holds only heads the lane answers. */
  #plain = true
  /** Reading stopped for a long pipeline (MAX_QUEUED). */
  #paused = false
  /** The parser reads the socket's handle itself (see constructor); undefined: it is fed 'data' events. */
  readonly #handle: StreamHandle | undefined
  /** Direct reads: the parser is inside a message (its head not complete). */
  #inMessage = false
  #current: LaneResponse | null = null
  /** Reads kept for node:http, which takes the connection once the answer in flight is written. */
  #held: Buffer[] | null = null
  #firstRead: NodeJS.Timeout | null = null
  #done = false

  constructor (lane: H1Lane, socket: Socket) {
    this.#lane = lane
    this.#socket = socket
    const P = NativeParser!
    const parser = this.#parser = new P()
    parser.initialize(P.REQUEST, {}, lane.settings.maxHeaderSize, 0)
    parser[P.kOnHeaders] = this.#onSplitHead
    parser[P.kOnHeadersComplete] = this.#onHead
    parser[P.kOnBody] = this.#onBody
    // The socket is read by the parser straight from its handle (a TCP one,
    // or a TLS socket's TLSWrap), as node:http's server reads it: no Buffer
    // and no stream events per read (2 µs a request, measured; a tenth of a
    // TLS request). Its reads then come with no bytes in hand,
    // so whether one ends inside a message is kept by the message callbacks;
    // a 'data' read ends on a message's end when it ends with the empty line
    // (see endsAHead), which spares those two calls from C++ per request.
    const handle = consumableHandle(socket)
    if (handle !== undefined) {
      this.#handle = handle
      handle._consumed = true
      parser[P.kOnMessageBegin!] = this.#onBegin
      parser[P.kOnMessageComplete!] = this.#onComplete
      parser[P.kOnExecute!] = this.#onExecute
      parser.consume!(handle)
      socket.resume() // flowing with no 'data' listener: only the end of the stream comes through it
    } else {
      socket.on('data', this.#onData)
    }
    socket.on('end', this.#onEnd)
    socket.on('error', this.#onError)
    socket.on('close', this.#onClose)
    socket.on('drain', this.#onDrain)
    const ms = lane.settings.headersTimeout
    if (ms > 0) {
      this.#firstRead = setTimeout(onFirstReadTimeout, ms, this)
      this.#firstRead.unref()
    }
  }

  readonly #onBegin = (): void => { this.#inMessage = true }
  readonly #onComplete = (): void => { this.#inMessage = false }
  readonly #onSplitHead = (): void => { this.#plain = false }
  readonly #onBody = (): void => { this.#plain = false }

  readonly #onHead = (major: number, minor: number, fields: string[] | undefined, method: number, url: string | undefined,
    _status: unknown, _reason: unknown, upgrade: boolean, keepAlive: boolean): number => {
    if (major !== 1 || minor !== 1 || upgrade || !keepAlive || fields === undefined || url === undefined || !plainHead(fields)) {
      this.#plain = false
    } else if (this.#plain) {
      this.#read.push(new LaneRequest(this.#socket, METHODS[method] ?? '', url, fields))
    }
    return 0
  }

  readonly #onData = (chunk: Buffer): void => {
    if (this.#held !== null) {
      this.#held.push(chunk)
      return
    }
    this.#onRead(this.#parser.execute(chunk), chunk)
  }

  // A direct read, parsed (the parser calls this after each).
  readonly #onExecute = (parsed: number | ParseError): void => {
    this.#onRead(parsed, undefined)
  }

  /**
   * A read was parsed: `chunk` is it ('data' reads), undefined for a direct
   * read. `#plain` starts true again for the next read whatever this decides.
   */
  #onRead (parsed: number | ParseError, chunk: Buffer | undefined): void {
    const plain = this.#plain
    this.#plain = true
    if (this.#firstRead !== null) {
      clearTimeout(this.#firstRead)
      this.#firstRead = null
    }
    const read = this.#read
    if (typeof parsed !== 'number' && this.#current !== null) {
      // Bytes that are not HTTP behind an answer in flight: as node:http
      // reports them (linger.ts onClientError), that answer goes out whole
      // as the last and the rest is dropped.
      read.length = 0
      this.#stop()
      return this.#lane.hooks.clientError(parsed, this.#socket)
    }
    if (typeof parsed !== 'number' || !plain || (chunk === undefined ? this.#inMessage : !endsAHead(chunk))) {
      read.length = 0
      return this.#handOff(chunk ?? this.#parser.getCurrentBuffer!())
    }
    for (let i = 0; i < read.length; i++) this.#queue.push(read[i]!)
    read.length = 0
    if (this.#queue.length > MAX_QUEUED && !this.#paused) {
      this.#paused = true
      this.#readStop()
    }
    this.#next()
  }

  /** Stop reading the socket (its 'data' events, or the parser's direct reads). */
  #readStop (): void {
    if (this.#handle === undefined) this.#socket.pause()
    else readStop(this.#handle)
  }

  #readStart (): void {
    if (this.#handle === undefined) this.#socket.resume()
    else readStart(this.#handle)
  }

  /** Answer queued requests, one at a time, until one is in flight; then a handover or more reading. */
  #next (): void {
    const queue = this.#queue
    while (this.#current === null && queue.length > 0 && !this.#done) this.#answer(queue.shift()!)
    if (this.#current !== null || this.#done) return
    if (this.#held !== null) return this.#release()
    if (this.#paused) {
      this.#paused = false
      this.#readStart()
    }
  }

  #answer (req: LaneRequest): void {
    const socket = this.#socket
    // As node:http's server makes it (parserOnIncoming): the socket's high-water mark, keep-alive.
    const res = new (ServerResponse as unknown as LaneResponseClass)(req, { highWaterMark: socket.writableHighWaterMark })
    res[kLane] = this
    res.shouldKeepAlive = true
    this.#current = res
    res.assignSocket(socket)
    res.on('finish', onFinish)
    try {
      this.#lane.hooks.request(req, res)
    } catch {
      socket.destroy()
    }
  }

  /** The answer in flight is written (its 'finish'), as node:http's resOnFinish. */
  finished (res: LaneResponse): void {
    const socket = this.#socket
    res.detachSocket(socket)
    process.nextTick(emitClose, res)
    if (this.#current === res) this.#current = null
    if (res._last) {
      this.#stop()
      socket.destroySoon()
      return
    }
    this.#next()
  }

  /** A read the lane does not answer: node:http takes the connection, now or once the answer in flight is written. */
  #handOff (chunk: Buffer): void {
    this.#held = [chunk]
    this.#readStop()
    if (this.#current === null) this.#release()
  }

  #release (): void {
    const socket = this.#socket
    const held = this.#held!
    this.#stop() // a direct parser lets go of the handle here
    // node:http reads what is put back through 'data' events, in order, not
    // straight from the handle (which would pass the put-back read): paused
    // until its listener is on, then flowing, which reads the handle again.
    socket.pause()
    const handle = (socket as unknown as { _handle?: StreamHandle | null })._handle
    if (handle != null) handle._consumed = true
    socket.unshift(held.length === 1 ? held[0]! : Buffer.concat(held))
    this.#lane.hooks.handOff(socket)
    socket.resume()
  }

  /** No more reading here: handed over, closing or closed. */
  #stop (): void {
    if (this.#done) return
    this.#done = true
    const socket = this.#socket
    socket.off('data', this.#onData)
    socket.off('end', this.#onEnd)
    socket.off('error', this.#onError)
    socket.off('close', this.#onClose)
    // 'drain' stays: an answer in flight may still wait for it (#onDrain reads #current, null once it is written).
    if (this.#firstRead !== null) clearTimeout(this.#firstRead)
    this.#firstRead = null
    this.#queue.length = 0
    // The socket's own stream reads again (node:http after a handover; a
    // lingering close reads and drops what still comes). Its stream still
    // waits on the read it asked for before the parser took the handle, and
    // will not ask again: the handle is started here if the lane stopped it.
    if (this.#handle !== undefined) {
      this.#parser.unconsume!()
      if (!socket.destroyed && !socket.readableEnded) this.#readStart()
    }
    // Not within the parser's own call (this may run from its kOnExecute): freed once the stack has unwound, as node:http frees its parsers.
    setImmediate(closeParser, this.#parser)
    this.#lane.forget(this)
    // Errors after this are the closing socket's own (node:http's listener takes them after a handover).
    if (!socket.destroyed) socket.on('error', ignore)
  }

  // The client closed its side: as node:http without httpAllowHalfOpen, the connection is ended.
  readonly #onEnd = (): void => {
    this.#stop()
    if (!this.#socket.destroyed) this.#socket.end()
  }

  readonly #onError = (err: Error): void => {
    this.#stop()
    this.#lane.hooks.clientError(err as NodeJS.ErrnoException, this.#socket)
  }

  readonly #onClose = (): void => {
    this.#stop()
  }

  // node:http's socketOnDrain: the answer whose write came back false may go on.
  readonly #onDrain = (): void => {
    const res = this.#current as (LaneResponse & Record<symbol, unknown>) | null
    if (res !== null && !res.finished && res[kNeedDrain!] === true) {
      res[kNeedDrain!] = false
      res.emit('drain')
    }
  }

  /** No first read within headersTimeout: node:http's 408, through the listener's clientError. */
  firstReadTimeout (): void {
    this.#firstRead = null
    if (this.#done) return
    this.#stop()
    const err = Object.assign(new Error('Request timeout'), { code: REQUEST_TIMEOUT }) as NodeJS.ErrnoException
    this.#lane.hooks.clientError(err, this.#socket)
  }

  closeIfIdle (): void {
    if (this.#current !== null || this.#queue.length > 0 || this.#held !== null || this.#done) return
    this.#stop()
    this.#socket.destroy()
  }
}

/**
 * The read ends with CRLF CRLF. The parser is strict (a line ends with CRLF)
 * and the lane takes only heads without a body, so a read it parsed without
 * error ends on a message's end exactly then: a head ends at its first empty
 * line. Otherwise the read ends inside a head (or is a stray CRLF), and
 * node:http takes the connection.
 */
function endsAHead (chunk: Buffer): boolean {
  const n = chunk.length
  return n >= 4 && chunk[n - 1] === 10 && chunk[n - 2] === 13 && chunk[n - 3] === 10 && chunk[n - 4] === 13
}

function closeParser (parser: Parser): void { parser.close() }

function onFinish (this: LaneResponse): void { this[kLane].finished(this) }

function onFirstReadTimeout (c: LaneConnection): void { c.firstReadTimeout() }

// node:http's emitCloseNT: the response's 'close', the tick after its 'finish'.
function emitClose (res: LaneResponse): void {
  if (res._closed) return
  res.destroyed = true
  res._closed = true
  res.emit('close')
}

function ignore (): void {}
