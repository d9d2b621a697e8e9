// HTTP/1.1 heads written without ServerResponse.writeHead (issue 12, items 2
// and 4). writeHead checks and serialises every field on every response;
// a hit's fields are the same for a second at a time, so they are checked and
// serialised once (with the hit's head, see hit-heads.ts) and the finished
// text is handed to the response as the head Node would have built, which
// then goes out with the body, in one write when the body is small. An origin's head is
// checked as writeHead checks it, in one pass that also writes the text,
// without writeHead's header bookkeeping.
//
// This uses two fields of Node's OutgoingMessage (`_header`, `_headerSent`)
// that are not public API but have not changed since Node 0.x; RAW_HEADS
// checks them once at load and the proxy falls back to writeHead without them.
// Only the plain case is taken: a keep-alive connection, no Expect, a head
// with Content-Length and Date and no connection-level field, so the bytes
// are exactly those writeHead would have sent (the tests compare them).
import { IncomingMessage, ServerResponse, STATUS_CODES, validateHeaderName, validateHeaderValue } from 'node:http'
import { Socket } from 'node:net'

/** The OutgoingMessage fields a raw head sets or reads (Node's own names). */
interface RawResponse {
  _header: string | null
  _headerSent: boolean
  _expect_continue: boolean
  _defaultKeepAlive: boolean
  _keepAliveTimeout: number
  _maxRequestsPerSocket: number | undefined
  maxRequestsOnConnectionReached: boolean
  /** Queued writes of this response not yet handed to the socket. */
  outputData: unknown[]
}

/** A socket knows the response it is writing (Node's `_httpMessage`): a later pipelined one waits its turn. */
interface RawSocket extends Socket {
  _httpMessage: unknown
}

/**
 * Largest body sent in one write with its head (see writeRawResponse): the
 * copy is cheaper than a second buffer in a writev up to here.
 */
export const ONE_WRITE_MAX = 16 * 1024

/** Fields writeHead treats specially: a head with one of them takes writeHead. */
const SPECIAL = new Set(['connection', 'transfer-encoding', 'trailer', 'expect', 'keep-alive', 'content-disposition'])

/** A head as text, and the body length it announces. */
export interface H1Head {
  /** The status line and field lines, no final CRLF. */
  readonly lines: string
  /** Its Content-Length (NaN if that is not a number). */
  readonly contentLength: number
}

/**
 * `status` and `fields` as an HTTP/1.1 status line and field lines (no
 * final CRLF), checked as writeHead checks them; null when writeHead must
 * write this head (a body-less status, no Content-Length or Date, a special
 * field, a field Node would refuse). `reason`: the origin's phrase, which the
 * caller has checked is plain text (else the standard one).
 */
export function h1Head (status: number, fields: readonly string[], reason: string | undefined = STATUS_CODES[status]): H1Head | null {
  if (status < 200 || status === 204 || status === 304) return null
  if (reason === undefined) return null
  const lines = fieldLines(fields)
  if (lines === null || lines.length === undefined || !lines.date) return null
  return { lines: `HTTP/1.1 ${status} ${reason}\r\n${lines.text}`, contentLength: Number(lines.length) }
}

/** h1Head's text alone. */
export function h1HeadLines (status: number, fields: readonly string[]): string | null {
  return h1Head(status, fields)?.lines ?? null
}

/** Per-request fields (request id, rate limit) as field lines; null when one would be refused or is the head's to say. */
export function h1ExtraLines (fields: readonly string[]): string | null {
  const lines = fieldLines(fields)
  return lines === null || lines.length !== undefined || lines.date ? null : lines.text
}

/**
 * `name: `, when a field of that name may go into a raw head (not one the
 * head itself says, nor one writeHead treats specially); undefined otherwise. At
 * load, for fields whose values are known to be plain text.
 */
export function h1FieldStart (name: string): string | undefined {
  return h1ExtraLines([name, '0']) === null ? undefined : `${name}: `
}

/** `fields` as `name: value` lines, checked as writeHead checks them; null when one is special or would be refused. */
function fieldLines (fields: readonly string[]): { text: string, length: string | undefined, date: boolean } | null {
  let text = ''
  let length: string | undefined
  let date = false
  for (let i = 0; i < fields.length; i += 2) {
    const name = fields[i]!
    const value = fields[i + 1]!
    const lower = name.toLowerCase()
    if (SPECIAL.has(lower)) return null
    if (lower === 'content-length') length = value
    else if (lower === 'date') date = true
    try {
      validateHeaderName(name)
      validateHeaderValue(name, value)
    } catch {
      return null
    }
    text += `${name}: ${value}\r\n`
  }
  return { text, length, date }
}

/**
 * Give `res` the finished head `lines` (+ `extra`) with the keep-alive
 * fields writeHead would add; false (nothing done) when the response is not
 * the plain keep-alive case, and the caller uses writeHead.
 */
export function writeRawHead (res: ServerResponse, status: number, lines: string, extra: string): boolean {
  const raw = res as unknown as RawResponse
  if (!plainKeepAlive(res, raw)) return false
  res.statusCode = status
  raw._header = lines + extra + headTail(raw)
  raw._headerSent = false
  return true
}

/**
 * writeRawHead, then the whole `body` (undefined: none, as for HEAD) and the
 * end of the response: in one write with the head when writeRawBody can, else
 * end(body), a writev of the head, the body and an empty chunk through the
 * response's own buffering. False (nothing done) as writeRawHead.
 */
export function writeRawResponse (res: ServerResponse, status: number, lines: string, extra: string, body: Buffer | undefined,
  linesBytes?: Buffer): boolean {
  if (!writeRawHead(res, status, lines, extra)) return false
  if (body === undefined || writeRawBody(res, body, linesBytes)) res.end()
  else res.end(body)
  return true
}

/**
 * After writeRawHead: `body`, the whole body, goes out with the head in one
 * write when the response has its connection to itself (not a pipelined one
 * waiting its turn, nothing queued) and the body is small; false (nothing
 * done) otherwise, and the caller writes it as usual. The caller then ends
 * the response. `linesBytes`: writeRawHead's `lines` as latin1 bytes, kept
 * by the caller (a hit's head): copied, not encoded again; the rest of the
 * head is encoded.
 */
export function writeRawBody (res: ServerResponse, body: Buffer, linesBytes?: Buffer): boolean {
  const raw = res as unknown as RawResponse
  const head = raw._header
  const socket = res.socket as RawSocket | null
  if (head === null || raw._headerSent || body.length > ONE_WRITE_MAX || socket === null || socket._httpMessage !== res ||
    raw.outputData.length !== 0 || !socket.writable || socket.destroyed || res.writableEnded) return false
  send(socket, linesBytes === undefined ? oneBuffer(head, body) : oneBufferFrom(linesBytes, head.slice(linesBytes.length), body))
  raw._headerSent = true
  return true
}

/**
 * Node holds an HTTP/1.1 head until the first body write: send a head that
 * is set but not yet on the wire now (before a mid-body reset, so the client
 * sees a truncated answer, not a close with nothing).
 */
export function flushHeldHead (res: ServerResponse): void {
  const raw = res as unknown as RawResponse
  if (raw._header !== null && !raw._headerSent) res.flushHeaders()
}

/**
 * Write `one` to the response's socket. A TLS socket completes a write
 * later, so the response's end() would find it pending and add an empty
 * write of its own, a second (empty) syscall: corked, both go out as one, and
 * end() (or the next tick, as Node's own writes do) uncorks.
 */
function send (socket: RawSocket, one: Buffer): void {
  if ((socket as RawSocket & { encrypted?: boolean }).encrypted === true) {
    socket.cork()
    process.nextTick(uncork, socket)
  }
  socket.write(one)
}

function uncork (socket: Socket): void {
  if (socket.writableCorked > 0) socket.uncork()
}

/** `head` (latin1: h1Head checked every field) and `body` copied into one buffer. */
function oneBuffer (head: string, body: Buffer): Buffer {
  const one = Buffer.allocUnsafe(head.length + body.length)
  one.write(head, 0, 'latin1')
  body.copy(one, head.length)
  return one
}

/** `lines` (bytes) + `rest` (latin1 text) + `body`, copied into one buffer. */
function oneBufferFrom (lines: Buffer, rest: string, body: Buffer): Buffer {
  const one = Buffer.allocUnsafe(lines.length + rest.length + body.length)
  lines.copy(one, 0)
  one.write(rest, lines.length, 'latin1')
  body.copy(one, lines.length + rest.length)
  return one
}

function plainKeepAlive (res: ServerResponse, raw: RawResponse): boolean {
  return res.shouldKeepAlive && !raw.maxRequestsOnConnectionReached && !raw._expect_continue && raw._header === null &&
    raw._defaultKeepAlive && (raw._maxRequestsPerSocket ?? 0) <= 0
}

/** The keep-alive fields writeHead would add, and the head's end. */
function headTail (raw: RawResponse): string {
  const t = raw._keepAliveTimeout
  return t > 0 ? `Connection: keep-alive\r\nKeep-Alive: timeout=${Math.floor(t / 1000)}\r\n\r\n` : 'Connection: keep-alive\r\n\r\n'
}

/** Whether this Node's ServerResponse has the fields writeRawHead relies on, as it had them when this was written. */
function rawHeadsWork (): boolean {
  try {
    const req = new IncomingMessage(new Socket())
    req.method = 'GET'
    const res = new ServerResponse(req) as unknown as RawResponse & ServerResponse
    const socket = new Socket() as RawSocket
    res.assignSocket(socket)
    const owned = socket._httpMessage === res && Array.isArray(res.outputData) && res.outputData.length === 0
    res.detachSocket(socket)
    return owned && res._header === null && res._headerSent === false && res._expect_continue === false &&
      res._defaultKeepAlive === true && typeof res._keepAliveTimeout === 'number' && typeof res.shouldKeepAlive === 'boolean' &&
      typeof (ServerResponse.prototype as unknown as { _send?: unknown })._send === 'function' && !res.headersSent
  } catch {
    return false
  }
}

/** Checked once at load: false on a Node whose ServerResponse differs, and hits use writeHead. */
export const RAW_HEADS = rawHeadsWork()
