// Our HTTP/1.1 client for http1 servers (plain and TLS): a keep-alive pool
// with one request per connection at a time, parsed by Node's own llhttp
// binding, the one node:http's client uses (`_http_common`'s HTTPParser).
//
// Why not undici's h1 client: measured on one core (a minimal proxy,
// node:http in front, 1 KiB answers), undici cost 37 µs per request and this
// shape of client 28 µs: a quarter of a pass-through's CPU was undici's
// machinery (its wasm parser's copies and callbacks, request objects, its
// queue and timers). It also needed four guards around its h1 parser here:
// an assertion that ended the process on a close while paused
// (nodejs/undici#5360), a reset read as the end of a close-delimited body,
// every unsolicited 100 Continue destroying the connection, and a failed body
// write losing the answer already received. This client has none of them to
// work around: a paused exchange pauses the socket, a reset is a reset, a 100
// is passed over, and a body write the origin's reset fails leaves the
// connection reading.
//
// It speaks to ForwardHandler and UpgradeHandler through undici's dispatch
// handler (onConnect, onHeaders, onData, onComplete, onError, onUpgrade) and
// fails with undici's error codes, so one table (pool.ts FAILURES) classifies
// every failure and h2 servers keep undici's h2 client. Raw header lists are
// latin1 strings, as the parser gives them.
import { EventEmitter } from 'node:events'
import type { Socket } from 'node:net'
import type { Readable } from 'node:stream'
import { Dispatcher, type buildConnector } from 'undici'
import { isSafeHeaderValue } from '../config/forms.js'
import { keepReadingOnReset, type ResetGuard } from './connector.js'
import { consumableHandle, NativeParser, readStart, readStop, type ParseError, type StreamHandle } from '../llhttp.js'

export interface H1PoolOptions {
  /** Connections open at once; more requests wait in order (briefly: a server with all of them busy is full to the balancer, see Server.slots). */
  readonly connections: number
  /** An idle connection is closed after this (ms), or after what the server's `Keep-Alive: timeout` leaves, up to keepAliveMaxTimeout. */
  readonly keepAliveTimeout: number
  readonly keepAliveMaxTimeout: number
  /** From the request's last byte written (or the last 1xx) to the final head (ms; 0 = none). */
  readonly headersTimeout: number
  /** Between two reads of a response body while it is not paused (ms; 0 = none). */
  readonly bodyTimeout: number
  readonly connect: buildConnector.connector
}

/** What is left of a server's `Keep-Alive: timeout` hint, so a connection is never reused just as the server closes it (undici's threshold). */
const KEEP_ALIVE_THRESHOLD = 2000

/** Methods whose request without a body still says `content-length: 0` (as undici). */
const EXPECTS_PAYLOAD = new Set(['PUT', 'POST', 'PATCH', 'QUERY', 'PROPFIND', 'PROPPATCH'])
/** Methods whose declared length is checked against the body (as undici's strictContentLength). */
const NO_LENGTH_CHECK = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'CONNECT'])

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/
const BAD_PATH = /[^\u0021-\u00ff]/

function failure (code: string, message: string): Error {
  return Object.assign(new Error(message), { code })
}

const invalid = (message: string): Error => failure('UND_ERR_INVALID_ARG', message)
const closedSide = (message = 'other side closed'): Error => failure('UND_ERR_SOCKET', message)

/**
 * The code of a failure on a reused keep-alive connection that the server
 * closed (FIN or reset) before any byte of an answer: most likely it closed
 * the idle connection as the request went out, and did not process it. An
 * idempotent request may go again (RFC 9112 §9.3.1; Go's errServerClosedIdle,
 * HAProxy's `retry-on empty-response`). See pool.ts FAILURES.
 */
export const REUSED_CLOSED = 'LB_ERR_UPSTREAM_REUSED_CLOSED'
/** The closes that REUSED_CLOSED stands for. */
const CLOSE_CODES = new Set(['UND_ERR_SOCKET', 'ECONNRESET', 'EPIPE'])

/** A request made ready at dispatch: its head (validated) and how its body goes. */
interface Prepared {
  readonly head: string
  readonly body: Buffer | Readable | null
  /** For a streamed body: its declared length (sent as is), or null (sent chunked). */
  readonly length: number | null
  readonly isHead: boolean
  readonly upgrade: boolean
  /** The request said Connection: close: the connection ends with this exchange. */
  readonly close: boolean
}

/** Request fields as a flat list: ours always are; Dispatcher.request() callers may give an object. */
function flat (headers: Dispatcher.DispatchOptions['headers']): readonly string[] {
  if (headers === null || headers === undefined) return []
  if (Array.isArray(headers)) return headers as readonly string[]
  const out: string[] = []
  for (const [name, value] of Object.entries(headers as Record<string, string | readonly string[] | undefined>)) {
    if (value === undefined) continue
    if (typeof value === 'string') out.push(name, value)
    else for (const v of value) out.push(name, v)
  }
  return out
}

/** The head of one request, checked as undici checks it (the error is undici's). */
function prepare (opts: Dispatcher.DispatchOptions, host: string): Prepared {
  const method = opts.method
  const path = opts.path
  if (typeof method !== 'string' || !TOKEN.test(method)) throw invalid('invalid request method')
  if (typeof path !== 'string' || (path[0] !== '/' && !path.startsWith('http://') && !path.startsWith('https://'))) {
    throw invalid('path must be an absolute URL or start with a slash')
  }
  if (BAD_PATH.test(path)) throw invalid('invalid request path')
  const upgrade = typeof opts.upgrade === 'string'
  let head = `${method} ${path} HTTP/1.1\r\n`
  let hasHost = false
  let declared: number | null = null
  let close = false
  const fields = flat(opts.headers)
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const name = fields[i]!
    const value = fields[i + 1]!
    if (!TOKEN.test(name)) throw invalid('invalid header key')
    if (!isSafeHeaderValue(value)) throw invalid(`invalid ${name} header`)
    // Only these lengths can be a field the framing owns: no lower-casing for the rest.
    const n = name.length
    if (n === 4 || n === 6 || n === 7 || n === 10 || n === 14 || n === 17) {
      const lower = name.toLowerCase()
      if (lower === 'host') hasHost = true
      else if (lower === 'content-length') {
        declared = Number.parseInt(value, 10)
        if (!Number.isSafeInteger(declared) || declared < 0) throw invalid('invalid content-length header')
        continue
      } else if (lower === 'connection') {
        if (value.toLowerCase() === 'close') close = true
        continue
      } else if (lower === 'keep-alive' || lower === 'transfer-encoding' || lower === 'upgrade' || lower === 'expect') {
        // Hop-by-hop or ours to frame: never another hop's.
        continue
      }
    }
    head += `${name}: ${value}\r\n`
  }
  if (!hasHost) head += `host: ${host}\r\n`
  head += upgrade ? `connection: upgrade\r\nupgrade: ${opts.upgrade as string}\r\n` : close ? 'connection: close\r\n' : 'connection: keep-alive\r\n'
  const body = (opts.body ?? null) as Buffer | Readable | null
  let length: number | null = null
  if (body === null || Buffer.isBuffer(body)) {
    const size = body === null ? 0 : body.length
    if (declared !== null && declared !== size && !NO_LENGTH_CHECK.has(method)) {
      throw failure('UND_ERR_REQ_CONTENT_LENGTH_MISMATCH', 'Request body length does not match content-length header')
    }
    if (size > 0 || EXPECTS_PAYLOAD.has(method)) head += `content-length: ${size}\r\n`
  } else if (declared !== null) {
    length = declared
    head += `content-length: ${declared}\r\n`
  } else {
    head += 'transfer-encoding: chunked\r\n'
  }
  return { head: head + '\r\n', body: body !== null && Buffer.isBuffer(body) && body.length === 0 ? null : body, length, isHead: method === 'HEAD', upgrade, close }
}

/** One request: waiting, or on a connection. */
class Exchange {
  readonly handler: Dispatcher.DispatchHandler
  readonly req: Prepared
  conn: Connection | null = null
  settled = false
  /** Aborted while its connection was being made: that connection is spare (see H1Pool.#spare). */
  spare = false
  readonly resume = (): void => {
    const c = this.conn
    if (c !== null && c.exchange === this) c.resume()
  }

  constructor (handler: Dispatcher.DispatchHandler, req: Prepared) {
    this.handler = handler
    this.req = req
  }
}

const enum Phase { None, Headers, Body, Idle }

/** One connection to the server and its parser. */
class Connection {
  readonly #pool: H1Pool
  readonly #o: H1PoolOptions
  socket: Socket | null = null
  readonly #parser: NativeParser
  exchange: Exchange | null = null
  /** Fields the parser flushed on its own (a long head, or trailers). */
  #fields: string[] = []
  #headDone = false
  #interim = false
  /** A streamed body is paused by us on the full socket (undone when we let go of it): the server's stall, not the client's. */
  #uploadHeld = false
  #keepAlive = true
  #closeDelimited = false
  #bodySent = true
  #detachBody: (() => void) | null = null
  #paused = false
  /** A body write the server's reset failed before its answer: the rest is dropped, the answer still read (connector.ts). */
  #reset: ResetGuard = NO_RESET
  #upgrade: { status: number, raw: string[] } | null = null
  /** The answer completed during this read: the connection is free once the parser returns (bytes after it are unasked). */
  #freeAfterRead = false
  /** Exchanges this connection carried to the end (more than 0: a request on it reuses it). */
  #served = 0
  /** Some byte of the current exchange's answer was read. */
  #answered = false
  #idleMs: number
  /** The last Keep-Alive value read, and what it left (see #hint). */
  #hinted = ''
  #hintMs = 0
  #phase = Phase.None
  #deadline = 0
  #timer: NodeJS.Timeout | null = null
  #timerAt = 0
  /** The parser reads the socket's handle itself (see attach); undefined: it is fed 'data' events. */
  #handle: StreamHandle | undefined
  /** A consumed read's parser events, [kind, what] pairs (see #onExecute). */
  readonly #events: unknown[] = []
  /** The message being parsed is a final response (not a 1xx) (see #heldBegin). */
  #parsingFinal = false
  /** Its body is chunked (see readEndsAnswer). */
  #finalChunked = false
  /** The final answer ended in the read being parsed (see #parsed). */
  #endedHere = false
  /** Bytes that start another message came after the final response: the connection is not reused. */
  #surplus = false

  constructor (pool: H1Pool, o: H1PoolOptions) {
    this.#pool = pool
    this.#o = o
    this.#idleMs = o.keepAliveTimeout
    const P = NativeParser!
    const parser = new P()
    parser.initialize(P.RESPONSE, {}, 0, 0)
    parser[P.kOnHeaders] = (fields: string[]) => { for (const f of fields) this.#fields.push(f) }
    // Held, and delivered once the read is parsed (#parsed).
    parser[P.kOnHeadersComplete] = this.#heldHead
    parser[P.kOnBody] = this.#heldBody
    parser[P.kOnMessageComplete] = this.#heldEnd
    this.#parser = parser
  }

  attach (socket: Socket): void {
    this.socket = socket
    // The connection is read by the parser straight from its handle (TCP, or
    // a TLS socket's TLSWrap), as node:http's server reads its sockets: no
    // Buffer and no stream event per read. The stream flows with no 'data'
    // listener: only its end and errors come through it.
    const handle = consumableHandle(socket)
    if (handle !== undefined) {
      this.#handle = handle
      handle._consumed = true
      const P = NativeParser!
      const parser = this.#parser
      parser[P.kOnExecute!] = this.#onExecute
      parser.consume!(handle)
      socket.resume()
    } else {
      socket.on('data', this.#onData)
    }
    socket.on('end', this.#onEnd)
    socket.on('error', this.#onError)
    socket.on('close', this.#onClose)
    this.#reset = keepReadingOnReset(socket, () => this.exchange !== null && (!this.#headDone || this.#interim))
  }

  start (x: Exchange): void {
    const socket = this.socket!
    this.exchange = x
    x.conn = this
    this.#headDone = false
    this.#interim = false
    this.#uploadHeld = false
    this.#answered = false
    this.#closeDelimited = false
    this.#surplus = false
    // Listened for only once the answer has ended (see #heldEnd): no call per message.
    this.#parser[NativeParser!.kOnMessageBegin!] = undefined
    this.#keepAlive = !x.req.close && !x.req.upgrade
    const body = x.req.body
    // A streamed body: the wait for the head starts as #stream says (never while the client is the one to send).
    if (body === null || Buffer.isBuffer(body)) this.#arm(Phase.Headers, this.#o.headersTimeout)
    else this.#disarm() // the idle timer's deadline is over too
    if (body === null) {
      this.#bodySent = true
      socket.write(x.req.head, 'latin1')
    } else if (Buffer.isBuffer(body)) {
      this.#bodySent = true
      socket.cork()
      socket.write(x.req.head, 'latin1')
      socket.write(body)
      socket.uncork()
    } else {
      this.#bodySent = false
      socket.write(x.req.head, 'latin1')
      this.#stream(x, body)
    }
  }

  /** A request body from a stream: chunked unless its length was declared; paused while the socket is full. */
  #stream (x: Exchange, body: Readable): void {
    const socket = this.socket!
    const declared = x.req.length
    let sent = 0
    const onData = (chunk: Buffer): void => {
      if (this.exchange !== x || chunk.length === 0) return
      sent += chunk.length
      if (declared !== null && sent > declared) {
        this.fail(failure('UND_ERR_REQ_CONTENT_LENGTH_MISMATCH', 'Request body length does not match content-length header'))
        return
      }
      if (this.#reset.dropping) return
      let more: boolean
      if (declared === null) {
        socket.cork()
        socket.write(`${chunk.length.toString(16)}\r\n`, 'latin1')
        socket.write(chunk)
        more = socket.write('\r\n', 'latin1')
        socket.uncork()
      } else {
        more = socket.write(chunk)
      }
      if (!more) {
        // The server is not taking the body: from now on its stall, within the headers timeout.
        this.#uploadHeld = true
        body.pause()
        socket.once('drain', onDrain)
        if (!this.#headDone) this.#arm(Phase.Headers, this.#o.headersTimeout)
      }
    }
    const onDrain = (): void => {
      if (this.exchange !== x) return
      this.#uploadHeld = false
      // It took all we had: the client is the one to send the rest (timeouts.clientBody watches it).
      if (!this.#headDone) this.#disarm()
      body.resume()
    }
    const onEnd = (): void => {
      if (this.exchange !== x) return
      detach()
      if (declared !== null && sent !== declared) {
        this.fail(failure('UND_ERR_REQ_CONTENT_LENGTH_MISMATCH', 'Request body length does not match content-length header'))
        return
      }
      if (declared === null && !this.#reset.dropping) socket.write('0\r\n\r\n', 'latin1')
      this.#bodySent = true
      if (!this.#headDone) this.#arm(Phase.Headers, this.#o.headersTimeout)
    }
    const onError = (err: Error): void => { if (this.exchange === x) this.fail(err) }
    const onClose = (): void => {
      if (this.exchange === x && !this.#bodySent) this.fail(failure('UND_ERR_ABORTED', 'request body aborted'))
    }
    const detach = (): void => {
      this.#detachBody = null
      body.off('data', onData)
      body.off('end', onEnd)
      body.off('error', onError)
      body.off('close', onClose)
      socket.off('drain', onDrain)
      // Answered (or failed) before the body was all sent: the rest flows to nowhere, so a
      // client still uploading is not left stuck behind our pause (its next request waits on it).
      if (this.#uploadHeld) body.resume()
    }
    this.#detachBody = detach
    if (body.readableEnded) {
      onEnd()
      return
    }
    if (body.destroyed) {
      this.fail(failure('UND_ERR_ABORTED', 'request body aborted'))
      return
    }
    body.on('data', onData)
    body.on('end', onEnd)
    body.on('error', onError)
    body.on('close', onClose)
    body.resume()
  }

  resume (): void {
    if (!this.#paused) return
    this.#paused = false
    if (this.#phase === Phase.Body) this.#arm(Phase.Body, this.#o.bodyTimeout)
    this.#readStart()
  }

  #readStart (): void {
    const socket = this.socket
    if (socket === null || socket.destroyed) return
    if (this.#handle === undefined) socket.resume()
    else readStart(this.#handle)
  }

  #pause (): void {
    if (this.#paused) return
    this.#paused = true
    // A client that does not read is not the server's stall.
    this.#deadline = 0
    if (this.#handle === undefined) this.socket!.pause()
    else readStop(this.#handle)
  }

  /** The head's fields: what the parser gives with the head, after what it flushed before (a long head). */
  #takeHead (headers: string[] | undefined): string[] {
    let raw: string[]
    if (headers === undefined || headers === null) {
      raw = this.#fields
      this.#fields = []
    } else if (this.#fields.length > 0) {
      raw = this.#fields.concat(headers)
      this.#fields = []
    } else {
      raw = headers
    }
    return raw
  }

  /** A response head; the parser's answer: read its body (0), there is none (1), stop for an upgrade (2). */
  #head (raw: string[], status: number, statusText: string, upgrade: boolean, keepAlive: boolean): number {
    const x = this.exchange
    if (x === null) {
      // Bytes nobody asked for: the connection cannot be trusted.
      this.socket?.destroy()
      return 1
    }
    this.#headDone = true
    const answer = afterHead(x, status, upgrade)
    if (status < 200) {
      this.#interim = true
      if (status === 101) {
        if (answer === 2) {
          this.#upgrade = { status, raw }
          return 2
        }
        this.fail(failure('LB_ERR_UPSTREAM_BAD_RESPONSE', '101 Switching Protocols to a request that asked for no upgrade'))
        return 1
      }
      // A 100 is never relayed (the proxy answers its clients' Expect) and does not restart the wait: 100s without end still time out.
      if (status === 100) return 1
      // The wait for the final head starts again, unless the client is the one to send more of its body (see #stream).
      if (this.#bodySent || this.#uploadHeld) this.#arm(Phase.Headers, this.#o.headersTimeout)
      else this.#disarm()
      try {
        x.handler.onHeaders!(status, raw as unknown as Buffer[], x.resume, statusText)
      } catch (err) {
        this.fail(err as Error)
      }
      return 1
    }
    this.#interim = false
    this.#idleMs = this.#o.keepAliveTimeout
    if (!keepAlive) this.#keepAlive = false
    let chunked = false
    let length = false
    for (let i = 0; i < raw.length; i += 2) {
      const n = raw[i]!.length
      if (n !== 10 && n !== 14 && n !== 17) continue
      const lower = raw[i]!.toLowerCase()
      if (lower === 'content-length') length = true
      else if (lower === 'transfer-encoding') chunked = true
      else if (lower === 'keep-alive') this.#idleMs = this.#hint(raw[i + 1]!)
    }
    this.#closeDelimited = answer === 0 && !chunked && !length
    if (this.#closeDelimited) this.#keepAlive = false
    this.#arm(Phase.Body, this.#o.bodyTimeout)
    let more: boolean
    try {
      more = x.handler.onHeaders!(status, raw as unknown as Buffer[], x.resume, statusText)
    } catch (err) {
      this.fail(err as Error)
      return 1
    }
    if (this.exchange === x && !more) this.#pause()
    return answer
  }

  /**
   * An idle connection's lifetime from the server's `Keep-Alive: timeout=N`
   * (seconds), as undici reads it. A server sends the same value on every
   * answer (Node: `timeout=5`): it is read once per connection.
   */
  #hint (value: string): number {
    if (value !== this.#hinted) {
      this.#hinted = value
      const m = /timeout=(\d+)/.exec(value)
      this.#hintMs = m === null ? this.#o.keepAliveTimeout : Math.min(Number(m[1]) * 1000 - KEEP_ALIVE_THRESHOLD, this.#o.keepAliveMaxTimeout)
    }
    if (this.#hintMs <= 0) this.#keepAlive = false
    return this.#hintMs
  }

  readonly #onBody = (chunk: Buffer): void => {
    const x = this.exchange
    if (x === null || this.#interim) return
    if (this.#phase === Phase.Body && this.#deadline !== 0) this.#deadline = performance.now() + this.#o.bodyTimeout
    let more: boolean
    try {
      more = x.handler.onData!(chunk)
    } catch (err) {
      this.fail(err as Error)
      return
    }
    if (this.exchange === x && !more) this.#pause()
  }

  /** The end of a response (`fields`: its trailers), or of an interim one. */
  #complete (fields: string[]): void {
    const x = this.exchange
    if (x === null) return
    if (this.#interim) {
      this.#interim = false
      this.#headDone = false
      return
    }
    const trailers: Buffer[] = fields.length === 0 ? NO_TRAILERS : fields.map((f) => Buffer.from(f, 'latin1'))
    this.exchange = null
    this.#served++
    x.settled = true
    this.#phase = Phase.None
    this.#deadline = 0
    // Paused on its last bytes: the next exchange reads from the start.
    if (this.#paused) {
      this.#paused = false
      this.#readStart()
    }
    // Answered before its body was all sent: the rest of the upload has nowhere to go but a new connection.
    if (!this.#bodySent) {
      this.#detachBody?.()
      this.#keepAlive = false
    }
    try {
      x.handler.onComplete!(trailers as unknown as string[])
    } catch {
      // The handler's bug, after the exchange: only the connection pays (it is not reused).
      this.#keepAlive = false
    }
    if (this.#keepAlive && !this.#reset.dropping && !this.#surplus) this.#freeAfterRead = true
    else this.socket?.destroy()
  }

  readonly #onData = (chunk: Buffer): void => {
    if (this.exchange === null) {
      // Nothing was asked: whatever this is, the connection is not reused.
      this.socket!.destroy()
      return
    }
    this.#parsed(this.#parser.execute(chunk), chunk)
  }

  // A read the parser took from the handle itself, parsed: its events, in
  // order, then what the read decides, all in this one callback, as a 'data'
  // read has them all within its event. Delivered as the parser calls them,
  // a body's or an end's callback (each a callback scope of its own here,
  // with no JS below it) would run the tick queue between them.
  readonly #onExecute = (r: number | ParseError): void => {
    if (this.exchange === null) {
      // Nothing was asked: as #onData, whatever this is, the connection is not reused.
      this.#events.length = 0
      this.socket?.destroy()
      return
    }
    this.#parsed(r, undefined)
  }

  /**
   * A read parsed (`chunk`: it, for a 'data' read): its events, then what
   * the read decides. A read that brings a response's head and then a
   * framing error (a bad chunk size, a bare CR) fails before that head
   * reaches anyone: nothing has been sent yet, so the client can still get a
   * 502 rather than a head and a cut.
   */
  #parsed (r: number | ParseError, chunk: Buffer | undefined): void {
    this.#answered = true
    if (typeof r !== 'number' && this.#events[0] === HEAD && !this.#events.includes(END)) {
      this.#events.length = 0
      this.fail(r)
      return
    }
    if (this.#endedHere) {
      this.#endedHere = false
      // Bytes after the answer in its read, CR and LF too (llhttp skips them unannounced): the
      // connection is not reused, or what follows them would be the next request's answer.
      if (typeof r === 'number' && !this.#surplus && !readEndsAnswer(chunk?.length ?? r, this.#events, this.#finalChunked, () => chunk ?? this.#parser.getCurrentBuffer!())) {
        this.#surplus = true
      }
    }
    this.#replay()
    this.#onRead(r, chunk)
  }

  /** Deliver the parser's held events (see #parsed), in order. */
  #replay (): void {
    const events = this.#events
    for (let i = 0; i < events.length; i += 2) {
      const e = events[i]
      if (e === BODY) this.#onBody(events[i + 1] as Buffer)
      else if (e === END) this.#complete(events[i + 1] as string[])
      else {
        const h = events[i + 1] as HeldHead
        this.#head(h.raw, h.status, h.statusText, h.upgrade, h.keepAlive && !h.http10)
      }
    }
    events.length = 0
  }

  // A read's events, held for #parsed. A head's answer to the
  // parser cannot wait: it is the one #head gives when it runs.
  readonly #heldHead = (major: number, minor: number, headers: string[] | undefined, _method: unknown, _url: unknown,
    status: number, statusText: string, upgrade: boolean, keepAlive: boolean): number => {
    this.#parsingFinal = status >= 200
    const raw = this.#takeHead(headers)
    const answer = afterHead(this.exchange, status, upgrade)
    const chunked = answer === 0 && hasField(raw, 'transfer-encoding')
    if (status >= 200) this.#finalChunked = chunked
    // RFC 9112 §6.1: an HTTP/1.0 message with Transfer-Encoding has faulty framing; the connection closes after it.
    const http10 = major === 1 && minor === 0 && keepAlive && chunked
    this.#events.push(HEAD, { raw, status, statusText, upgrade, keepAlive, http10 })
    return answer
  }

  readonly #heldBody = (chunk: Buffer): void => { this.#events.push(BODY, chunk) }

  /**
   * A message begins. After the final response, in the read that ended it,
   * that is bytes the server sent past its answer (a body longer than its
   * Content-Length, a body on a 204, 304 or HEAD answer): a head begun there
   * would be the next request's answer, so the connection goes (nginx:
   * "upstream sent more data than specified"). Later reads on an idle
   * connection are refused whole (#onExecute).
   */
  readonly #heldBegin = (): void => {
    this.#surplus = true
  }

  readonly #heldEnd = (): void => {
    if (this.#parsingFinal) {
      this.#parser[NativeParser!.kOnMessageBegin!] = this.#heldBegin
      this.#endedHere = true
    }
    const fields = this.#fields
    if (fields.length > 0) this.#fields = []
    this.#events.push(END, fields)
  }

  /** A read was parsed: `chunk` is it ('data' reads); undefined for a read the parser took itself. */
  #onRead (r: number | ParseError, chunk: Buffer | undefined): void {
    if (typeof r !== 'number') {
      this.fail(r)
      return
    }
    if (this.#upgrade !== null) {
      this.#upgraded((chunk ?? this.#parser.getCurrentBuffer!()).subarray(r))
      return
    }
    if (this.#freeAfterRead) {
      this.#freeAfterRead = false
      const socket = this.socket!
      if (!socket.destroyed) {
        this.#arm(Phase.Idle, this.#idleMs)
        this.#pool.release(this)
      }
    }
  }

  /** A 101 to our upgrade: the socket is the handler's from here on, with the bytes read past the head. */
  #upgraded (rest: Buffer): void {
    const x = this.exchange!
    const { status, raw } = this.#upgrade!
    const socket = this.socket!
    this.#upgrade = null
    this.exchange = null
    x.settled = true
    this.#phase = Phase.None
    this.#deadline = 0
    socket.off('data', this.#onData)
    socket.off('end', this.#onEnd)
    socket.off('error', this.#onError)
    socket.off('close', this.#onClose)
    // The socket's own write path again (see keepReadingOnReset).
    delete (socket as Socket & { _writeGeneric?: unknown })._writeGeneric
    this.socket = null
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = null
    this.#pool.remove(this)
    if (this.#handle !== undefined) {
      // The socket's stream reads again, flowing as it does after a 'data'
      // listener goes: the handler takes it within this call, before any read.
      this.#parser.unconsume!()
      if (!socket.destroyed) readStart(this.#handle)
    }
    // Not within the parser's own call (this may run from its kOnExecute).
    setImmediate(closeParser, this.#parser)
    if (rest.length > 0) socket.unshift(rest)
    x.handler.onUpgrade!(status, raw as unknown as Buffer[], socket)
  }

  readonly #onEnd = (): void => {
    const x = this.exchange
    if (x === null) {
      // The server closed an idle connection: never hand it out again.
      this.socket?.destroy()
      return
    }
    if (!this.#headDone || this.#interim) {
      this.fail(closedSide())
      return
    }
    if (!this.#closeDelimited) {
      this.fail(closedSide('other side closed in the middle of a response'))
      return
    }
    this.#endOrReset(x)
  }

  /**
   * A body only the close ends, ended: by a FIN, or by a reset libuv folded
   * into an end of stream (uv__stream_io reads, then takes POLLHUP after a
   * partial read for EOF). A zero-length write tells them apart on plain TCP:
   * it fails with ECONNRESET on a reset connection and succeeds on a
   * half-closed one (TLS writes nothing for it: the end stands). Nothing
   * reaches the server either way.
   */
  #endOrReset (x: Exchange): void {
    const socket = this.socket!
    const finish = (): void => {
      if (this.exchange !== x) return
      const err = this.#parser.finish()
      // A body the close ends has ended within finish().
      this.#replay()
      if (err !== undefined) this.fail(closedSide('other side closed in the middle of a response'))
    }
    if (!socket.writable) {
      finish()
      return
    }
    socket.write(PROBE, (err) => {
      if ((err as { code?: unknown } | null | undefined)?.code === 'ECONNRESET') this.fail(closedSide('other side closed in the middle of a response'))
      else finish()
    })
  }

  readonly #onError = (err: Error): void => {
    // A reset in the middle of a response cuts it, whatever came before (nginx: a recv() error is an upstream error).
    if ((err as { code?: unknown }).code === 'ECONNRESET' && this.#headDone && !this.#interim) {
      this.fail(closedSide('other side closed in the middle of a response'))
    } else {
      this.fail(err)
    }
  }

  readonly #onClose = (): void => {
    this.fail(closedSide())
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = null
    setImmediate(closeParser, this.#parser)
    this.#pool.remove(this)
  }

  /** The exchange on this connection (if any) fails with `err`; the connection is never reused. */
  fail (err: Error): void {
    const x = this.exchange
    this.exchange = null
    this.#detachBody?.()
    this.#deadline = 0
    this.socket?.destroy()
    if (x === null || x.settled) return
    x.settled = true
    if (this.#served > 0 && !this.#answered && CLOSE_CODES.has((err as { code?: string }).code ?? '')) {
      err = Object.assign(new Error(err.message, { cause: err }), { code: REUSED_CLOSED })
    }
    x.handler.onError!(err)
  }

  /** Open, and not being closed: our idle timer or the server's FIN destroys or ends a socket before its 'close' removes it. */
  get usable (): boolean {
    const socket = this.socket
    return socket !== null && !socket.destroyed && socket.writable
  }

  /** No deadline for now (the timer, if set, finds none when it fires). */
  #disarm (): void {
    this.#deadline = 0
  }

  /** A phase's deadline `ms` from now (0: none). One timer per connection, re-armed only when it would fire too late. */
  #arm (phase: Phase, ms: number): void {
    this.#phase = phase
    if (ms === 0) {
      this.#deadline = 0
      return
    }
    const at = performance.now() + ms
    this.#deadline = at
    if (this.#timer !== null && this.#timerAt <= at) return
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timerAt = at
    this.#timer = setTimeout(this.#onTimer, ms)
    this.#timer.unref()
  }

  readonly #onTimer = (): void => {
    this.#timer = null
    if (this.#deadline === 0) return
    const left = this.#deadline - performance.now()
    if (left > 0) {
      this.#timerAt = this.#deadline
      this.#timer = setTimeout(this.#onTimer, Math.ceil(left))
      this.#timer.unref()
      return
    }
    switch (this.#phase) {
      case Phase.Headers: this.fail(failure('UND_ERR_HEADERS_TIMEOUT', 'Headers Timeout Error')); break
      case Phase.Body: this.fail(failure('UND_ERR_BODY_TIMEOUT', 'Body Timeout Error')); break
      case Phase.Idle: this.socket?.destroy(); break
      default: break
    }
  }
}

function closeParser (parser: NativeParser): void { parser.close() }

/**
 * What the parser does after a head of `x`'s answer: read its body (0), none
 * follows (1: an interim head, HEAD, 204, 304, or bytes nobody asked for),
 * stop for the upgrade `x` asked for (2).
 */
function afterHead (x: Exchange | null, status: number, upgrade: boolean): number {
  if (x === null) return 1
  if (status === 101) return upgrade && x.req.upgrade ? 2 : 1
  if (status < 200) return 1
  return x.req.isHead || status === 204 || status === 304 ? 1 : 0
}

const HEAD_END = Buffer.from('\r\n\r\n')
const CR = 0x0d
const LF = 0x0a

/**
 * Whether a read of `n` bytes ends exactly where the final answer its held
 * `events` end with does (`bytes`: the read's bytes, asked for when needed). A Content-Length body (or none): each head in the read ends at
 * the next empty line, each body chunk is contiguous, so the answer's last
 * byte is found and must be the read's last. A chunked body ends with its
 * last chunk (and trailers) and one empty line: CRLF CRLF after a byte that
 * is neither CR nor LF (any CR or LF more is surplus). A head cut between
 * reads just there reads as surplus too: the cost is one connection.
 */
function readEndsAnswer (n: number, events: readonly unknown[], chunked: boolean, bytes: () => Buffer): boolean {
  if (chunked) {
    const read = bytes()
    return n >= 5 && read[n - 1] === LF && read[n - 2] === CR && read[n - 3] === LF && read[n - 4] === CR && read[n - 5] !== LF && read[n - 5] !== CR
  }
  // The bytes are looked at (a copy, on a read the parser took itself) only for the heads in them.
  let read: Buffer | undefined
  let at = 0
  for (let i = 0; i < events.length; i += 2) {
    const e = events[i]
    if (e === HEAD) {
      const end = (read ??= bytes()).indexOf(HEAD_END, at)
      if (end < 0) return false
      at = end + 4
    } else if (e === BODY) {
      at += (events[i + 1] as Buffer).length
    }
  }
  return at === n
}

/** A response head as the parser gave it, held (see #onExecute). */
interface HeldHead {
  readonly raw: string[]
  readonly status: number
  readonly statusText: string
  readonly upgrade: boolean
  readonly keepAlive: boolean
  /** An HTTP/1.0 answer with Transfer-Encoding (see #heldHead). */
  readonly http10: boolean
}
const HEAD = 0
const BODY = 1
const END = 2

const PROBE = Buffer.alloc(0)
const NO_RESET: ResetGuard = Object.freeze({ dropping: false })
const NO_TRAILERS: Buffer[] = []

/**
 * A server's keep-alive connections, for http1 servers. Requests beyond
 * `connections` wait in order; the most recently used idle connection is
 * taken first, so the others idle out instead of racing the server's close.
 */
export class H1Pool extends Dispatcher {
  readonly #o: H1PoolOptions
  readonly #url: URL
  readonly #host: string
  readonly #all = new Set<Connection>()
  readonly #idle: Connection[] = []
  readonly #queue: Exchange[] = []
  /**
   * Connections still connecting whose request was aborted meanwhile: each
   * takes the next waiting request once connected, so a request arriving
   * now waits for one rather than opening another. Else a client resetting
   * its streams as fast as it opens them (HTTP/2 Rapid Reset) frees each
   * maxConn slot at once, and every next request opened a new connection.
   */
  #spare = 0
  #connected = 0
  #closed = false
  #destroyed = false
  #onEmpty: (() => void) | null = null

  constructor (url: string, options: H1PoolOptions) {
    super()
    this.#url = new URL(url)
    this.#host = this.#url.host
    this.#o = options
  }

  /** As undici's: close() was called (no new requests). */
  get closed (): boolean { return this.#closed }
  get destroyed (): boolean { return this.#destroyed }

  /** As undici's Pool.stats: connections made, and requests waiting or in flight. */
  get stats (): { connected: number, size: number } {
    return { connected: this.#connected, size: this.#queue.length + this.#all.size - this.#idle.length }
  }

  override dispatch (opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    if (this.#closed || this.#destroyed) {
      handler.onError!(this.#destroyed ? failure('UND_ERR_DESTROYED', 'The client is destroyed') : failure('UND_ERR_CLOSED', 'The client is closed'))
      return false
    }
    let req: Prepared
    try {
      req = prepare(opts, this.#host)
    } catch (err) {
      handler.onError!(err as Error)
      return false
    }
    const x = new Exchange(handler, req)
    handler.onConnect!((err?: Error) => this.#abort(x, err))
    if (x.settled) return false
    const idle = this.#takeIdle()
    if (idle !== undefined) idle.start(x)
    else if (this.#queue.length < this.#spare || this.#all.size >= this.#o.connections) this.#queue.push(x)
    else this.#open(x)
    return true
  }

  /**
   * The most recently used idle connection that is still open. One whose
   * idle timer just fired (or whose server just closed it) stays listed
   * until its 'close' event, a turn of the loop later: a request that
   * arrived in that turn was handed a dead socket and failed.
   */
  #takeIdle (): Connection | undefined {
    let conn = this.#idle.pop()
    while (conn !== undefined && !conn.usable) conn = this.#idle.pop()
    return conn
  }

  #abort (x: Exchange, err?: Error): void {
    if (x.settled) return
    const reason = err ?? failure('UND_ERR_ABORTED', 'Request aborted')
    if (x.conn !== null) {
      x.conn.fail(reason)
      return
    }
    x.settled = true
    const i = this.#queue.indexOf(x)
    if (i !== -1) this.#queue.splice(i, 1)
    // Not queued and on no connection: the connection being made for it (#open) is spare.
    else x.spare = true
    if (x.spare) this.#spare++
    x.handler.onError!(reason)
  }

  /** A new connection, made for `x` (which another connection may serve first, if it frees up sooner). */
  #open (x: Exchange): void {
    const conn = new Connection(this, this.#o)
    this.#all.add(conn)
    const url = this.#url
    this.#o.connect({
      hostname: url.hostname,
      host: url.host,
      protocol: url.protocol,
      port: url.port,
      servername: undefined,
      localAddress: null,
      httpSocket: undefined
    } as unknown as buildConnector.Options, (err, socket) => {
      if (x.spare) this.#spare--
      if (err !== null || socket === null || socket === undefined) {
        this.#all.delete(conn)
        const e = err ?? new Error('connect failed')
        this.#tell('connectionError', url, [this], e)
        if (!x.settled) {
          x.settled = true
          x.handler.onError!(e)
        }
        // What waited for this connection gets its own (as after a close).
        this.#openForQueue()
        this.#emptied()
        return
      }
      if (this.#destroyed) {
        this.#all.delete(conn)
        socket.destroy()
        this.#emptied()
        return
      }
      this.#connected++
      conn.attach(socket as Socket)
      this.#tell('connect', url, [this])
      if (!x.settled) conn.start(x)
      else this.release(conn)
    })
  }

  /** `conn` is free: it takes the next waiting request, or idles. */
  release (conn: Connection): void {
    const next = this.#queue.shift()
    if (next !== undefined) {
      conn.start(next)
      return
    }
    if (this.#closed || this.#destroyed) {
      conn.socket?.destroy()
      return
    }
    this.#idle.push(conn)
  }

  /** `conn` closed (or its socket went to an upgrade's handler): forget it, and serve what waits on a new connection. */
  remove (conn: Connection): void {
    if (!this.#all.delete(conn)) return
    this.#connected--
    const i = this.#idle.indexOf(conn)
    if (i !== -1) this.#idle.splice(i, 1)
    this.#tell('disconnect', this.#url, [this], closedSide('closed'))
    this.#openForQueue()
    this.#emptied()
  }

  /** Requests waiting beyond what the spare connections will take get a new connection each, within `connections`. */
  #openForQueue (): void {
    while (this.#queue.length > this.#spare && this.#all.size < this.#o.connections && !this.#destroyed) this.#open(this.#queue.shift()!)
  }

  /** undici's pool events, which PerClientPool listens to (typed there for undici's own errors). */
  #tell (event: 'connect' | 'disconnect' | 'connectionError', ...args: unknown[]): void {
    EventEmitter.prototype.emit.call(this, event, ...args)
  }

  #emptied (): void {
    if (this.#all.size === 0 && this.#queue.length === 0) this.#onEmpty?.()
  }

  override close (): Promise<void>
  override close (callback: () => void): void
  override close (callback?: () => void): Promise<void> | void {
    this.#closed = true
    for (const c of this.#idle.splice(0)) c.socket?.destroy()
    const done = this.#all.size === 0 && this.#queue.length === 0
      ? Promise.resolve()
      : new Promise<void>((resolve) => { this.#onEmpty = resolve })
    if (callback === undefined) return done
    void done.then(callback)
  }

  override destroy (): Promise<void>
  override destroy (err: Error | null): Promise<void>
  override destroy (callback: () => void): void
  override destroy (err: Error | null, callback: () => void): void
  override destroy (a?: Error | null | (() => void), b?: () => void): Promise<void> | void {
    const err = (typeof a === 'function' ? null : a ?? null) ?? failure('UND_ERR_DESTROYED', 'The client is destroyed')
    const callback = typeof a === 'function' ? a : b
    this.#destroyed = true
    for (const x of this.#queue.splice(0)) {
      x.settled = true
      x.handler.onError!(err)
    }
    for (const c of [...this.#all]) c.fail(err)
    const done = this.#all.size === 0
      ? Promise.resolve()
      : new Promise<void>((resolve) => { this.#onEmpty = resolve })
    if (callback === undefined) return done
    void done.then(callback)
  }
}

/** Whether flat field list `raw` has field `name` (lower-case). */
function hasField (raw: readonly string[], name: string): boolean {
  for (let i = 0; i < raw.length; i += 2) if (raw[i]!.length === name.length && raw[i]!.toLowerCase() === name) return true
  return false
}
