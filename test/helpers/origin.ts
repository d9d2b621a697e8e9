// The one set of HTTP origins for the tests: a plain node:http server on an
// ephemeral loopback port (startServer), a recording origin built on it
// (startOrigin), and a port with nothing listening (closedPort). Raw-socket
// origins that write any bytes are in raw-origin.ts, TLS origins in pki.ts.
// Everything started here is closed on the test's teardown, even when the
// test fails.
import http from 'node:http'
import type { IncomingHttpHeaders, IncomingMessage, RequestListener, ServerResponse } from 'node:http'
import net from 'node:net'
import type { AddressInfo, Socket } from 'node:net'
import type { Teardown } from './certs.js'

export interface Server {
  readonly server: http.Server
  readonly port: number
  /** `http://127.0.0.1:PORT` */
  readonly url: string
  /** Close it now, every connection cut (a server going down). */
  stop (): Promise<void>
  /** Listen again on the same port (the server coming back). */
  restart (): Promise<void>
}

/** A node:http server on 127.0.0.1, keep-alive, no request timeout; every socket is destroyed on stop and teardown. */
export async function startServer (t: Teardown, handler: RequestListener, opts: http.ServerOptions = {}): Promise<Server> {
  const server = http.createServer({ keepAliveTimeout: 60_000, requestTimeout: 0, ...opts }, handler)
  const sockets = new Set<Socket>()
  server.on('connection', (s: Socket) => {
    sockets.add(s)
    s.once('close', () => sockets.delete(s))
  })
  const listen = (port: number): Promise<void> => new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, '127.0.0.1', () => { server.off('error', reject); resolve() })
  })
  const stop = (): Promise<void> => new Promise((resolve) => {
    if (!server.listening) return resolve()
    for (const s of sockets) s.destroy()
    server.close(() => resolve())
  })
  await listen(0)
  t.teardown(stop)
  const port = (server.address() as AddressInfo).port
  return { server, port, url: `http://127.0.0.1:${port}`, stop, restart: () => listen(port) }
}

/** What the origin received, body fully read. */
export interface SeenRequest {
  readonly method: string
  readonly url: string
  readonly httpVersion: string
  readonly headers: IncomingHttpHeaders
  readonly rawHeaders: readonly string[]
  readonly body: Buffer
}

/** Runs once the request body has been read; the default echoes `SeenRequest` as JSON. */
export type OriginHandler = (seen: SeenRequest, res: ServerResponse, req: IncomingMessage) => void

export interface Origin extends Server {
  /** Every request received, in order. */
  readonly requests: SeenRequest[]
}

export const echo: OriginHandler = (seen, res) => {
  const body = JSON.stringify(seen, (k, v: unknown) => k === 'body' ? (v as Buffer).toString('utf8') : v)
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) })
  res.end(body)
}

/** A plain HTTP/1.1 origin on 127.0.0.1 that records every request, then calls `handler`. */
export async function startOrigin (t: Teardown, handler: OriginHandler = echo, opts: http.ServerOptions = {}): Promise<Origin> {
  const requests: SeenRequest[] = []
  const server = await startServer(t, (req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('error', () => {})
    req.on('end', () => {
      const seen: SeenRequest = {
        method: req.method ?? '',
        url: req.url ?? '',
        httpVersion: req.httpVersion,
        headers: req.headers,
        rawHeaders: req.rawHeaders,
        body: Buffer.concat(chunks)
      }
      requests.push(seen)
      handler(seen, res, req)
    })
  }, opts)
  return { ...server, requests }
}

/** A loopback port with nothing listening on it (bound, then released: connect is refused). */
export async function closedPort (): Promise<number> {
  const server = net.createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()))
  const port = (server.address() as AddressInfo).port
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}
