// Shared clients for the end-to-end tests: small h1 / h2 / raw-socket clients
// and the listeners block most proxies use (origins are in origin.ts).
// Everything started here is closed on the test's teardown, even when the
// test fails.
import http from 'node:http'
import type { IncomingHttpHeaders } from 'node:http'
import http2 from 'node:http2'
import type { ClientHttp2Session, ClientHttp2Stream, IncomingHttpStatusHeader, OutgoingHttpHeaders } from 'node:http2'
import https from 'node:https'
import net from 'node:net'
import tls from 'node:tls'
import type { PeerCertificate } from 'node:tls'
import type { Teardown } from './certs.js'

/** The YAML `listeners:` block most e2e tests use: TLS `tls` (h2 + h1) and plaintext `plain`, ephemeral ports. */
export function tlsAndPlainListeners (cert: { readonly certPath: string; readonly keyPath: string }): string {
  return `listeners:
  - name: tls
    bind: 127.0.0.1:0
    tls: { cert: ${cert.certPath}, key: ${cert.keyPath} }
  - name: plain
    bind: 127.0.0.1:0`
}

export interface Reply {
  readonly status: number
  readonly headers: IncomingHttpHeaders
  readonly body: Buffer
  readonly text: string
  /** `1.1` or `2.0`. */
  readonly httpVersion: string
  readonly trailers: Record<string, string | string[] | undefined>
  /** TLS only: the certificate the server presented. */
  readonly peerCertificate?: PeerCertificate
}

export interface H1Options {
  readonly method?: string
  readonly path?: string
  readonly headers?: http.OutgoingHttpHeaders
  readonly body?: string | Buffer
  /** TLS: SNI name to send (default none, as for an IP address). */
  readonly servername?: string
  readonly agent?: http.Agent
}

/** One HTTP/1.1 request over http: or https: (certificate not verified; no ALPN, so h1). */
export function h1 (base: string, opts: H1Options = {}): Promise<Reply> {
  const u = new URL(base)
  const secure = u.protocol === 'https:'
  return new Promise((resolve, reject) => {
    const reqOpts: https.RequestOptions = {
      host: u.hostname,
      port: u.port,
      method: opts.method ?? 'GET',
      path: opts.path ?? '/',
      headers: opts.headers ?? {},
      agent: opts.agent ?? false
    }
    if (secure) {
      reqOpts.rejectUnauthorized = false
      if (opts.servername !== undefined) reqOpts.servername = opts.servername
    }
    const req = (secure ? https : http).request(reqOpts, (res) => {
      const peer = secure ? (res.socket as tls.TLSSocket).getPeerCertificate() : undefined
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('error', reject)
      res.on('end', () => {
        const body = Buffer.concat(chunks)
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body,
          text: body.toString('utf8'),
          httpVersion: res.httpVersion,
          trailers: res.trailers,
          ...(peer === undefined ? {} : { peerCertificate: peer })
        })
      })
    })
    req.on('error', reject)
    req.end(opts.body)
  })
}

/** An h2 session to a TLS listener (certificate not verified), closed on teardown. */
export async function h2Session (t: Teardown, base: string, servername?: string): Promise<ClientHttp2Session> {
  const session = http2.connect(base, { rejectUnauthorized: false, ...(servername === undefined ? {} : { servername }) })
  t.teardown(() => { session.destroy() })
  session.on('error', () => {})
  await new Promise<void>((resolve, reject) => {
    session.once('connect', () => { session.off('error', reject); resolve() })
    session.once('error', reject)
  })
  return session
}

export interface H2Reply extends Reply {
  /** Set when the server reset the stream instead of answering. */
  readonly rstCode?: number
}

/**
 * One h2 request on `session`. `headers` defaults to GET /; `:path`, `:method`
 * and any field may be overridden. A body is sent without content-length unless
 * the headers carry one.
 */
/**
 * The stream is closed both ways: its 'close', or its end when an
 * RST_STREAM came with it. Node keeps a client stream whose writes are not
 * all flushed open after an RST_STREAM(NO_ERROR) that arrives before its
 * readable side ends (a server that answered before the whole upload, RFC
 * 9113 §8.1): the RST has closed it (`closed`, `rstCode`), no 'close' follows.
 */
export function h2StreamClosed (stream: ClientHttp2Stream): Promise<void> {
  return new Promise((resolve) => {
    if (stream.destroyed || (stream.closed && stream.readableEnded)) return resolve()
    stream.once('close', () => resolve())
    stream.once('end', () => { if (stream.closed) resolve() })
  })
}

export function h2Request (session: ClientHttp2Session, headers: OutgoingHttpHeaders = {},
  body?: string | Buffer): Promise<H2Reply> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':method': 'GET', ':path': '/', ...headers }, { endStream: body === undefined })
    let head: IncomingHttpHeaders & IncomingHttpStatusHeader = {}
    let trailers: Record<string, string | string[] | undefined> = {}
    const chunks: Buffer[] = []
    stream.on('response', (h) => { head = h })
    stream.on('trailers', (h) => { trailers = { ...h } })
    stream.on('data', (c: Buffer) => chunks.push(c))
    stream.on('error', (err) => {
      if (stream.rstCode !== undefined && stream.rstCode !== 0) return // reported on close
      reject(err)
    })
    void h2StreamClosed(stream).then(() => {
      const b = Buffer.concat(chunks)
      const reply: H2Reply = {
        status: Number(head[':status'] ?? 0),
        headers: head,
        body: b,
        text: b.toString('utf8'),
        httpVersion: '2.0',
        trailers,
        ...(stream.rstCode !== undefined && stream.rstCode !== 0 ? { rstCode: stream.rstCode } : {})
      }
      resolve(reply)
    })
    if (body !== undefined) stream.end(body)
  })
}

/** A fresh session, one request, session closed. */
export async function h2 (t: Teardown, base: string, headers: OutgoingHttpHeaders = {},
  body?: string | Buffer): Promise<H2Reply> {
  const session = await h2Session(t, base)
  try {
    return await h2Request(session, headers, body)
  } finally {
    session.close()
  }
}

export interface RawReply {
  readonly status: number
  /** Lower-cased names; the last value wins. */
  readonly headers: Record<string, string>
  readonly body: string
  readonly raw: string
}

/**
 * Writes `text` on a fresh TCP (or TLS) connection and reads until the server
 * closes it; send `Connection: close` so it does. Bounded by `limitMs`.
 */
export function rawRequest (port: number, text: string | Buffer, opts: { tls?: boolean, limitMs?: number } = {}): Promise<RawReply> {
  return new Promise((resolve, reject) => {
    const socket = opts.tls === true
      ? tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] })
      : net.connect({ host: '127.0.0.1', port })
    const chunks: Buffer[] = []
    const timer = setTimeout(() => {
      socket.destroy()
      reject(new Error(`no end of response within ${opts.limitMs ?? 5000}ms; got ${JSON.stringify(Buffer.concat(chunks).toString('latin1'))}`))
    }, opts.limitMs ?? 5000)
    socket.once(opts.tls === true ? 'secureConnect' : 'connect', () => socket.write(text))
    socket.on('data', (c: Buffer) => chunks.push(c))
    socket.on('error', () => {}) // a reset after the answer still counts as the end
    socket.on('close', () => {
      clearTimeout(timer)
      resolve(parseRaw(Buffer.concat(chunks).toString('latin1')))
    })
  })
}

function parseRaw (raw: string): RawReply {
  const end = raw.indexOf('\r\n\r\n')
  const head = end === -1 ? raw : raw.slice(0, end)
  const lines = head.split('\r\n')
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '')?.[1] ?? 0)
  const headers: Record<string, string> = {}
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':')
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim()
  }
  return { status, headers, body: end === -1 ? '' : raw.slice(end + 4), raw }
}

/** The default origin's JSON answer. */
export interface Echo {
  readonly method: string
  readonly url: string
  readonly httpVersion: string
  readonly headers: IncomingHttpHeaders
  readonly rawHeaders: readonly string[]
  readonly body: string
}

/** Parse the default echo body. */
export function echoed (reply: Reply): Echo {
  return JSON.parse(reply.text) as Echo
}
