// Clients that judge what comes back byte by byte, for the fuzz harness:
// an HTTP/1.1 exchange over a raw TCP or TLS socket with a strict response
// parser (RFC 9112 framing), and an h2 exchange whose outcome is a response,
// RST_STREAM or GOAWAY. Both are bounded in time and never throw: every
// outcome, including "nothing came back", is data for the caller to judge.
import type { ClientHttp2Session, IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http2'
import net from 'node:net'
import tls from 'node:tls'

export interface WireResponse {
  readonly status: number
  readonly statusLine: string
  /** Field lines as sent, names in their case. */
  readonly fields: readonly (readonly [string, string])[]
  readonly body: Buffer
  /** The body ended as its framing says (false: the connection closed first). */
  readonly complete: boolean
  /** 1xx responses that came before this one. */
  readonly interim: readonly number[]
}

export interface WireOutcome {
  /** Final responses, in order (a pipelined request may get more than one). */
  readonly responses: readonly WireResponse[]
  /** Why the bytes are not HTTP/1.1 responses; undefined when they are. */
  readonly malformed: string | undefined
  /** The server closed the connection. */
  readonly closed: boolean
  /** Neither an answer nor a close within the bound. */
  readonly timedOut: boolean
  /** The first bytes received, for messages. */
  readonly head: string
}

export interface WireOptions {
  readonly port: number
  readonly tls: boolean
  /** Written in order, as they are. */
  readonly chunks: readonly Buffer[]
  /** Half-close after writing (a request the client never finishes). */
  readonly endAfterWrite?: boolean
  /** The request's method (a HEAD response has no body). */
  readonly method: string
  readonly limitMs: number
}

/**
 * One exchange: write the request bytes, then read until the first final
 * response is complete (and, when it says `Connection: close`, until the
 * server closes, so bytes past the message are seen), the server closes, or
 * the bound passes.
 */
export function h1Exchange (opts: WireOptions): Promise<WireOutcome> {
  return new Promise((resolve) => {
    const socket: net.Socket = opts.tls
      ? tls.connect({ host: '127.0.0.1', port: opts.port, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] })
      : net.connect({ host: '127.0.0.1', port: opts.port })
    const received: Buffer[] = []
    let size = 0
    let closed = false
    let done = false
    const finish = (timedOut: boolean): void => {
      if (done) return
      done = true
      clearTimeout(timer)
      socket.destroy()
      const all = Buffer.concat(received, size)
      const parsed = parseResponses(all, opts.method, true)
      resolve({
        responses: parsed.responses,
        malformed: parsed.malformed,
        closed,
        timedOut,
        head: all.subarray(0, 600).toString('latin1')
      })
    }
    const timer = setTimeout(() => finish(true), opts.limitMs)
    socket.once(opts.tls ? 'secureConnect' : 'connect', () => {
      for (const c of opts.chunks) socket.write(c)
      if (opts.endAfterWrite === true) socket.end()
    })
    socket.on('data', (c: Buffer) => {
      received.push(c)
      size += c.length
      // Done early when the first final response is complete and the server keeps the connection.
      const p = parseResponses(Buffer.concat(received, size), opts.method, false)
      if (p.malformed !== undefined) return finish(false)
      const first = p.responses[0]
      if (first !== undefined && first.complete && !closesAfter(first)) finish(false)
    })
    socket.on('error', () => {}) // a reset is a close
    socket.on('close', () => { closed = true; finish(false) })
  })
}

function closesAfter (r: WireResponse): boolean {
  if (r.status === 101) return false // a tunnel now: nothing more to judge
  return r.fields.some(([n, v]) => n.toLowerCase() === 'connection' && /(^|,)\s*close\s*(,|$)/i.test(v))
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/
// VCHAR, SP, HTAB and obs-text; no other control characters.
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/
const STATUS_LINE = /^HTTP\/1\.[01] (\d{3}) ([\t\x20-\x7e\x80-\xff]*)$/

interface Parsed {
  readonly responses: WireResponse[]
  readonly malformed: string | undefined
}

/**
 * Every response in `buf`. `atEnd`: no more bytes will come, so a response
 * still missing body bytes is truncated (complete: false) rather than pending.
 * Bytes after a response that closes the connection are malformed.
 */
export function parseResponses (buf: Buffer, method: string, atEnd: boolean): Parsed {
  const responses: WireResponse[] = []
  let at = 0
  let interim: number[] = []
  while (at < buf.length) {
    const headEnd = buf.indexOf('\r\n\r\n', at, 'latin1')
    if (headEnd === -1) {
      if (buf.length - at > 64 * 1024) return { responses, malformed: 'response head longer than 64 KiB' }
      if (atEnd) return { responses, malformed: `response head cut short: ${JSON.stringify(buf.subarray(at, at + 200).toString('latin1'))}` }
      return { responses, malformed: undefined }
    }
    const lines = buf.subarray(at, headEnd).toString('latin1').split('\r\n')
    const m = STATUS_LINE.exec(lines[0]!)
    if (m === null) return { responses, malformed: `bad status line ${JSON.stringify(lines[0])}` }
    const status = Number(m[1])
    const fields: [string, string][] = []
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':')
      const name = colon === -1 ? line : line.slice(0, colon)
      if (colon <= 0 || !TOKEN.test(name)) return { responses, malformed: `bad field line ${JSON.stringify(line.slice(0, 200))}` }
      const value = line.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, '')
      if (!FIELD_VALUE.test(value)) return { responses, malformed: `bad field value ${JSON.stringify(line.slice(0, 200))}` }
      fields.push([name, value])
    }
    at = headEnd + 4
    if (status >= 100 && status < 200 && status !== 101) {
      interim.push(status)
      continue
    }
    const framing = bodyFraming(status, method, fields)
    if (typeof framing === 'string' && framing !== 'close' && framing !== 'none' && framing !== 'chunked') {
      return { responses, malformed: framing }
    }
    let body: Buffer
    let complete: boolean
    if (framing === 'none') {
      body = Buffer.alloc(0)
      complete = true
    } else if (framing === 'close') {
      body = buf.subarray(at)
      at = buf.length
      complete = atEnd
    } else if (framing === 'chunked') {
      const c = parseChunked(buf, at)
      if ('malformed' in c) return { responses, malformed: c.malformed }
      body = c.body
      complete = c.complete
      at = c.end
    } else {
      body = buf.subarray(at, at + framing)
      complete = body.length === framing
      at += body.length
    }
    const r: WireResponse = { status, statusLine: lines[0]!, fields, body, complete, interim }
    responses.push(r)
    interim = []
    if (!complete) {
      return { responses, malformed: undefined }
    }
    if (status === 101) break
    if (closesAfter(r) && at < buf.length) {
      return { responses, malformed: `${buf.length - at} bytes after a response that closes the connection: ${JSON.stringify(buf.subarray(at, at + 120).toString('latin1'))}` }
    }
    // Only the first exchange is ours; what follows answers bytes we pipelined (or is garbage).
    if (method !== 'GET') method = 'GET'
  }
  return { responses, malformed: undefined }
}

/** RFC 9112 §6.3: how the body of this response is delimited, or why it cannot be. */
function bodyFraming (status: number, method: string, fields: readonly (readonly [string, string])[]): 'none' | 'close' | 'chunked' | number | string {
  if (method === 'HEAD' || status === 204 || status === 304 || status === 101) return 'none'
  const te = fields.filter(([n]) => n.toLowerCase() === 'transfer-encoding').map(([, v]) => v)
  const cl = fields.filter(([n]) => n.toLowerCase() === 'content-length').map(([, v]) => v)
  if (te.length > 0) {
    if (cl.length > 0) return `both Transfer-Encoding (${te.join(', ')}) and Content-Length (${cl.join(', ')})`
    const codings = te.join(',').split(',').map((c) => c.trim().toLowerCase())
    if (codings.filter((c) => c === 'chunked').length > 1) return `chunked applied twice: ${te.join(', ')}`
    return codings[codings.length - 1] === 'chunked' ? 'chunked' : 'close'
  }
  if (cl.length > 0) {
    const values = new Set(cl.flatMap((v) => v.split(',').map((x) => x.trim())))
    if (values.size !== 1) return `conflicting Content-Length: ${cl.join(' | ')}`
    const v = [...values][0]!
    if (!/^\d{1,15}$/.test(v)) return `invalid Content-Length ${JSON.stringify(v)}`
    return Number(v)
  }
  return 'close'
}

function parseChunked (buf: Buffer, start: number): { body: Buffer; complete: boolean; end: number } | { malformed: string } {
  const parts: Buffer[] = []
  let at = start
  for (;;) {
    const eol = buf.indexOf('\r\n', at, 'latin1')
    if (eol === -1) return { body: Buffer.concat(parts), complete: false, end: buf.length }
    const line = buf.subarray(at, eol).toString('latin1')
    const m = /^([0-9a-fA-F]{1,16})[ \t]*(;.*)?$/.exec(line)
    if (m === null) return { malformed: `bad chunk size line ${JSON.stringify(line.slice(0, 80))}` }
    const n = parseInt(m[1]!, 16)
    at = eol + 2
    if (n === 0) {
      // Trailer section, then an empty line.
      for (;;) {
        const e = buf.indexOf('\r\n', at, 'latin1')
        if (e === -1) return { body: Buffer.concat(parts), complete: false, end: buf.length }
        const tl = buf.subarray(at, e).toString('latin1')
        at = e + 2
        if (tl === '') return { body: Buffer.concat(parts), complete: true, end: at }
        const colon = tl.indexOf(':')
        if (colon <= 0 || !TOKEN.test(tl.slice(0, colon)) || !FIELD_VALUE.test(tl.slice(colon + 1))) {
          return { malformed: `bad trailer line ${JSON.stringify(tl.slice(0, 80))}` }
        }
      }
    }
    if (buf.length < at + n + 2) {
      parts.push(buf.subarray(at, Math.min(buf.length, at + n)))
      return { body: Buffer.concat(parts), complete: false, end: buf.length }
    }
    parts.push(buf.subarray(at, at + n))
    if (buf[at + n] !== 13 || buf[at + n + 1] !== 10) return { malformed: 'chunk data not followed by CRLF' }
    at += n + 2
  }
}

/** First value of a field by name, any case. */
export function field (r: WireResponse, name: string): string | undefined {
  const lower = name.toLowerCase()
  return r.fields.find(([n]) => n.toLowerCase() === lower)?.[1]
}

export interface H2Outcome {
  readonly status: number | undefined
  readonly headers: IncomingHttpHeaders | undefined
  readonly body: Buffer
  /** END_STREAM arrived: the response is complete. */
  readonly ended: boolean
  /** RST_STREAM code, when the stream was reset (by either side). */
  readonly rstCode: number | undefined
  /** The session went away (GOAWAY, error) before the stream ended. */
  readonly sessionError: string | undefined
  /** The stream's 'error', if any. */
  readonly error: string | undefined
  /** The client refused to send this request (Node validates header names and values). */
  readonly refused: string | undefined
  readonly timedOut: boolean
}

/** One h2 request on `session`, bounded by `limitMs`. */
export function h2Exchange (session: ClientHttp2Session, headers: OutgoingHttpHeaders, body: Buffer | undefined,
  limitMs: number): Promise<H2Outcome> {
  return new Promise((resolve) => {
    let stream: ReturnType<ClientHttp2Session['request']>
    const base = { status: undefined, headers: undefined, body: Buffer.alloc(0), ended: false, rstCode: undefined, sessionError: undefined, error: undefined, timedOut: false }
    try {
      stream = session.request(headers, { endStream: body === undefined })
    } catch (err) {
      resolve({ ...base, refused: (err as Error).message })
      return
    }
    let head: IncomingHttpHeaders | undefined
    let ended = false
    let sessionError: string | undefined
    let streamError: string | undefined
    let done = false
    const chunks: Buffer[] = []
    const finish = (timedOut: boolean): void => {
      if (done) return
      done = true
      clearTimeout(timer)
      session.off('goaway', onGoaway)
      session.off('close', onSessionClose)
      if (!stream.closed) stream.close(0x8) // CANCEL: timed out, or answered before it read our body
      const rstCode = ended ? undefined : stream.rstCode
      const status = head?.[':status']
      resolve({
        status: status === undefined ? undefined : Number(status),
        headers: head,
        body: Buffer.concat(chunks),
        ended,
        rstCode: rstCode === undefined || rstCode === 0 ? undefined : rstCode,
        sessionError,
        error: streamError,
        refused: undefined,
        timedOut
      })
    }
    const onGoaway = (code: number): void => { sessionError ??= `GOAWAY ${code}` }
    const onSessionClose = (): void => { sessionError ??= 'session closed'; finish(false) }
    session.on('goaway', onGoaway)
    session.once('close', onSessionClose)
    const timer = setTimeout(() => finish(true), limitMs)
    stream.on('response', (h) => { head = h })
    stream.on('data', (c: Buffer) => chunks.push(c))
    // END_STREAM completes the exchange; the server may still be reading (or ignoring) our body.
    stream.on('end', () => { ended = true; finish(false) })
    stream.on('error', (err: Error) => { streamError ??= err.message })
    stream.on('close', () => finish(false))
    if (body !== undefined) stream.end(body)
  })
}
