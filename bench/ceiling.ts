// The ceiling: bare node:http, node:https and node:http2 servers answering the
// bytes a Switchyard cache hit answers (the origin's 100-byte body with its
// headers, `cache-control: public, max-age=3600` included), from memory, with
// no proxying at all. A proxy does strictly more work per request than this on
// the same core, so req/s per core against it says how much of Node's own
// limit the proxy uses. One process for all three, pinned like a proxy.
// Prints `{"h1":N,"tls":N,"h2":N}` once listening; exits when the harness that
// started it goes away (its IPC channel closes).
//
//   node dist/bench/ceiling.js <cert.pem> <key.pem>

import { readFileSync } from 'node:fs'
import { createServer } from 'node:http'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { createSecureServer } from 'node:http2'
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2'
import { createServer as createHttpsServer } from 'node:https'
import type { AddressInfo } from 'node:net'

const [certFile, keyFile] = process.argv.slice(2)
if (certFile === undefined || keyFile === undefined) {
  process.stderr.write('usage: ceiling.js <cert.pem> <key.pem>\n')
  process.exit(2)
}

// The same bytes as bench/origin.ts serves under /cached (and so as a cache hit).
const BODY = Buffer.from('switchyard bench origin: the same plain-text body for every request, 100 bytes'.padEnd(99, '.') + '\n')
const HEADERS = { 'content-type': 'text/plain', 'content-length': String(BODY.length), 'cache-control': 'public, max-age=3600' }

const answer = (_req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse): void => {
  res.writeHead(200, HEADERS)
  res.end(BODY)
}

const tlsOptions = { cert: readFileSync(certFile), key: readFileSync(keyFile) }
const h1 = createServer(answer)
const tls = createHttpsServer(tlsOptions, answer)
// allowHTTP1 only for the harness's one-request preflight (node:https); h2load speaks h2.
const h2 = createSecureServer({ ...tlsOptions, allowHTTP1: true }, answer)
for (const s of [h1, tls]) {
  s.keepAliveTimeout = 120_000
  s.headersTimeout = 125_000
}

const listen = (s: { listen: (port: number, host: string, cb: () => void) => unknown, address: () => unknown }): Promise<number> =>
  new Promise((resolve) => { s.listen(0, '127.0.0.1', () => { resolve((s.address() as AddressInfo).port) }) })

const ports = { h1: await listen(h1), tls: await listen(tls), h2: await listen(h2) }
process.stdout.write(JSON.stringify(ports) + '\n')

function stop (): void {
  h1.closeAllConnections()
  tls.closeAllConnections()
  process.exit(0)
}
if (process.connected) process.on('disconnect', stop)
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
