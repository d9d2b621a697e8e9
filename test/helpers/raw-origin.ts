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
   * stall: write the head and half the body, then nothing; stall-head: write nothing.
   */
  readonly ending: 'keep' | 'close' | 'stall' | 'stall-head'
  /** A complete second response (body `SMUGGLED`) written right after this one, unasked. */
  readonly smuggle: boolean
}

const SMUGGLED = Buffer.from('HTTP/1.1 200 OK\r\ncache-control: public, max-age=60\r\ncontent-length: 8\r\n\r\nSMUGGLED', 'latin1')

export interface RawOrigin {
  readonly port: number
  readonly url: string
  /** Answers by id (the path segment after `/bad/`). */
  readonly answers: Map<string, Answer>
  /** Request targets received, in order. */
  readonly seen: string[]
}

const DEFAULT_ANSWER = Buffer.from('HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n\r\nok', 'latin1')
/** How long a stalled connection is held before the origin drops it. */
const STALL_MS = 8000

export async function startRawOrigin (t: Teardown): Promise<RawOrigin> {
  const answers = new Map<string, Answer>()
  const seen: string[] = []
  const sockets = new Set<Socket>()
  const server = net.createServer((socket) => {
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
    socket.on('error', () => {})
    let buffered = Buffer.alloc(0)
    let skip = 0
    let busy = false
    const onData = (chunk: Buffer): void => {
      buffered = Buffer.concat([buffered, chunk])
      while (!busy) {
        if (skip > 0) {
          const n = Math.min(skip, buffered.length)
          buffered = buffered.subarray(n)
          skip -= n
          if (skip > 0) return
        }
        const end = buffered.indexOf('\r\n\r\n')
        if (end === -1) return
        const head = buffered.subarray(0, end).toString('latin1')
        buffered = buffered.subarray(end + 4)
        const [requestLine = '', ...lines] = head.split('\r\n')
        const target = requestLine.split(' ')[1] ?? ''
        seen.push(target)
        const cl = lines.find((l) => /^content-length:/i.test(l))
        skip = cl === undefined ? 0 : Number(cl.slice(cl.indexOf(':') + 1).trim()) || 0
        const id = /\/bad\/([A-Za-z0-9_-]+)/.exec(target)?.[1]
        const answer = id === undefined ? undefined : answers.get(id)
        if (answer === undefined) {
          socket.write(DEFAULT_ANSWER)
          continue
        }
        if (answer.ending !== 'keep') busy = true // nothing more is read on this connection
        write(socket, answer, /^HEAD /.test(requestLine))
      }
    }
    socket.on('data', onData)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => {
    for (const s of sockets) s.destroy()
    server.close(() => resolve())
  }))
  const port = (server.address() as AddressInfo).port
  return { port, url: `http://127.0.0.1:${port}`, answers, seen }
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
  socket.write(Buffer.concat([head, body]))
  if (a.ending === 'close') socket.end()
}

function hold (socket: Socket): void {
  const timer = setTimeout(() => socket.destroy(), STALL_MS)
  socket.once('close', () => clearTimeout(timer))
}
