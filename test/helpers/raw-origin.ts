// An origin that writes its answers byte by byte on a raw socket
// (net.createServer), so it can send what no HTTP library would: repeated
// single-value fields, hop-by-hop fields, obs-fold, non-ASCII bytes,
// conflicting framing, broken chunks, bodies shorter or longer than declared,
// a close mid-body, or nothing at all. The test registers an `Answer` under
// an id and puts `/bad/<id>/` in the request path; other paths get a plain
// `200 ok`. Closed (every socket destroyed) on teardown.
import net from 'node:net'
import type { AddressInfo, Socket } from 'node:net'
import type { Teardown } from './certs.js'

export type Framing =
  /** `Content-Length: bodySize + delta` (delta < 0: more body than declared; > 0: less). */
  | { readonly kind: 'length'; readonly delta: number }
  | { readonly kind: 'chunked'; readonly flaw: 'none' | 'bad-size' | 'no-last-chunk' | 'no-crlf' | 'extension' | 'trailers' | 'huge-size' }
  /** No framing field: the body ends when the connection closes. */
  | { readonly kind: 'none' }
  /** Two Content-Length fields: the real size and `other`. */
  | { readonly kind: 'two-lengths'; readonly other: number }
  | { readonly kind: 'te-and-length' }

export interface Answer {
  /** `HTTP/1.1`, `HTTP/1.0`, or something wrong. */
  readonly version: string
  /** 1xx responses written before the final one. */
  readonly interim: readonly number[]
  /** The status code as written: usually digits, maybe not. */
  readonly status: string
  readonly reason: string
  /** Field lines as written (latin1 bytes; a value may hold CR LF SP, an obs-fold). */
  readonly fields: readonly (readonly [string, string])[]
  readonly framing: Framing
  readonly bodySize: number
  /**
   * keep: stay open for the next request; close: close after the answer;
   * reset: close with a TCP RST right after the answer (no FIN);
   * stall: write the head and half the body, then nothing; stall-head: write nothing.
   */
  readonly ending: 'keep' | 'close' | 'reset' | 'stall' | 'stall-head'
  /** A complete second response (body `SMUGGLED`) written right after this one, unasked. */
  readonly smuggle: boolean
}

const SMUGGLED = Buffer.from('HTTP/1.1 200 OK\r\ncache-control: public, max-age=60\r\ncontent-length: 8\r\n\r\nSMUGGLED', 'latin1')

export interface FuzzOrigin {
  readonly port: number
  readonly url: string
  /** Answers by id (the path segment after `/bad/`). */
  readonly answers: Map<string, Answer>
  /** Request targets received, in order. */
  readonly seen: string[]
}

/** What a raw origin received: the request head, and the body its Content-Length announced. */
export interface RawSeen {
  readonly requestLine: string
  readonly method: string
  readonly target: string
  /** Lower-cased names, every field line kept. */
  readonly headers: readonly (readonly [string, string])[]
  readonly body: Buffer
}

export interface RawServer {
  readonly port: number
  readonly url: string
}

/**
 * The one raw-socket origin: parses each request head (and reads the body its
 * Content-Length announces), then lets `onRequest` write whatever bytes it
 * likes; `onRequest` returns false when nothing more is to be read on that
 * connection. Every socket is destroyed on teardown.
 */
export async function startRawServer (t: Teardown, onRequest: (seen: RawSeen, socket: Socket) => boolean,
  opts: { readonly answerBeforeBody?: boolean } = {}): Promise<RawServer> {
  const sockets = new Set<Socket>()
  const server = net.createServer((socket) => {
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
    socket.on('error', () => {})
    let buffered = Buffer.alloc(0)
    let reading = true
    /** Body bytes still to pass over (answerBeforeBody). */
    let skip = 0
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk])
      while (reading) {
        if (skip > 0) {
          const n = Math.min(skip, buffered.length)
          buffered = buffered.subarray(n)
          skip -= n
          if (skip > 0) return
        }
        const end = buffered.indexOf('\r\n\r\n')
        if (end === -1) return
        const [requestLine = '', ...lines] = buffered.subarray(0, end).toString('latin1').split('\r\n')
        const headers = lines.map((l): [string, string] => {
          const c = l.indexOf(':')
          return [l.slice(0, c).trim().toLowerCase(), l.slice(c + 1).trim()]
        })
        const length = Number(headers.find(([n]) => n === 'content-length')?.[1] ?? 0) || 0
        const [method = '', target = ''] = requestLine.split(' ')
        if (opts.answerBeforeBody === true) {
          // Answer on the head; the body is passed over as it comes.
          buffered = buffered.subarray(end + 4)
          skip = length
          reading = onRequest({ requestLine, method, target, headers, body: Buffer.alloc(0) }, socket)
          continue
        }
        if (buffered.length < end + 4 + length) return
        const body = buffered.subarray(end + 4, end + 4 + length)
        buffered = buffered.subarray(end + 4 + length)
        reading = onRequest({ requestLine, method, target, headers, body }, socket)
      }
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => {
    for (const s of sockets) s.destroy()
    server.close(() => resolve())
  }))
  const port = (server.address() as AddressInfo).port
  return { port, url: `http://127.0.0.1:${port}` }
}

export interface RawOrigin extends RawServer {
  /** Every request received, in order. */
  readonly requests: RawSeen[]
}

/**
 * An origin that writes its answers byte for byte, for responses Node's own
 * server would refuse to send (repeated one-value fields, bad framing…).
 * `answer` returns the whole response; the connection is kept for the next
 * request unless the answer says `connection: close`.
 */
export async function startRawOrigin (t: Teardown, answer: (seen: RawSeen) => string | Buffer): Promise<RawOrigin> {
  const requests: RawSeen[] = []
  const server = await startRawServer(t, (seen, socket) => {
    requests.push(seen)
    const out = answer(seen)
    socket.write(out)
    if (!/\r\nconnection: close\r\n/i.test(out.toString('latin1'))) return true
    socket.end()
    return false
  })
  return { ...server, requests }
}

/** How long a stalled connection is held before the origin drops it. */
const STALL_MS = 8000

const DEFAULT_ANSWER = Buffer.from('HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n\r\nok', 'latin1')

/**
 * The fuzz's origin: the test registers an `Answer` under an id and puts
 * `/bad/<id>/` in the request path; other paths get a plain `200 ok`.
 */
export async function startFuzzOrigin (t: Teardown): Promise<FuzzOrigin> {
  const answers = new Map<string, Answer>()
  const seen: string[] = []
  const server = await startRawServer(t, (req, socket) => {
    seen.push(req.target)
    const id = /\/bad\/([A-Za-z0-9_-]+)/.exec(req.target)?.[1]
    const answer = id === undefined ? undefined : answers.get(id)
    if (answer === undefined) {
      socket.write(DEFAULT_ANSWER)
      return true
    }
    write(socket, answer, req.method === 'HEAD')
    return answer.ending === 'keep' // nothing more is read on this connection
  }, { answerBeforeBody: true })
  return { ...server, answers, seen }
}

/** The bytes of an answer: head, then body (framed as the answer says, flaws included). */
export function answerBytes (a: Answer, head = false): { head: Buffer; body: Buffer } {
  const body = Buffer.alloc(a.bodySize, 0x61) // 'a'
  const lines: string[] = []
  for (const s of a.interim) lines.push(`${a.version} ${s} Interim\r\n\r\n`)
  const fields = a.fields.map(([n, v]) => `${n}: ${v}\r\n`)
  const f = a.framing
  let wire: Buffer = body
  switch (f.kind) {
    case 'length':
      fields.push(`Content-Length: ${Math.max(0, a.bodySize + f.delta)}\r\n`)
      break
    case 'two-lengths':
      fields.push(`Content-Length: ${a.bodySize}\r\n`, `Content-Length: ${f.other}\r\n`)
      break
    case 'te-and-length':
      fields.push(`Content-Length: ${a.bodySize}\r\n`, 'Transfer-Encoding: chunked\r\n')
      wire = chunked(body, 'none')
      break
    case 'chunked':
      fields.push('Transfer-Encoding: chunked\r\n')
      wire = chunked(body, f.flaw)
      break
    case 'none':
      break
  }
  lines.push(`${a.version} ${a.status}${a.reason === '' ? '' : ' ' + a.reason}\r\n`, ...fields, '\r\n')
  const rest = head ? Buffer.alloc(0) : wire
  return { head: Buffer.from(lines.join(''), 'latin1'), body: a.smuggle ? Buffer.concat([rest, SMUGGLED]) : rest }
}

function chunked (body: Buffer, flaw: Extract<Framing, { kind: 'chunked' }>['flaw']): Buffer {
  const half = body.length >> 1
  const parts = body.length === 0 ? [] : [body.subarray(0, half), body.subarray(half)].filter((p) => p.length > 0)
  const out: Buffer[] = []
  for (const p of parts) {
    const size = flaw === 'bad-size' ? 'zz' : flaw === 'huge-size' ? 'ffffffffffffffffff' : p.length.toString(16)
    out.push(Buffer.from(`${size}${flaw === 'extension' ? ';name="v"' : ''}\r\n`, 'latin1'), p,
      Buffer.from(flaw === 'no-crlf' ? '' : '\r\n', 'latin1'))
  }
  if (flaw !== 'no-last-chunk') out.push(Buffer.from(flaw === 'trailers' ? '0\r\nx-trailer: t\r\netag: "tr"\r\n\r\n' : '0\r\n\r\n', 'latin1'))
  return Buffer.concat(out)
}

function write (socket: Socket, a: Answer, isHead: boolean): void {
  if (a.ending === 'stall-head') {
    hold(socket)
    return
  }
  const { head, body } = answerBytes(a, isHead)
  if (a.ending === 'stall') {
    socket.write(Buffer.concat([head, body.subarray(0, body.length >> 1)]))
    hold(socket)
    return
  }
  if (a.ending === 'reset') {
    // RST only once the answer is out: written bytes still queued would be discarded.
    socket.write(Buffer.concat([head, body]), () => socket.resetAndDestroy())
    return
  }
  socket.write(Buffer.concat([head, body]))
  if (a.ending === 'close') socket.end()
}

function hold (socket: Socket): void {
  const timer = setTimeout(() => socket.destroy(), STALL_MS)
  socket.once('close', () => clearTimeout(timer))
}
