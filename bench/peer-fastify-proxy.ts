// The other Node peer, the one the bars name: fastify with
// @fastify/http-proxy (reply-from on undici's keep-alive pool, its default
// upstream) in front of the bench origin. Plaintext HTTP/1.1 by default; with
// `--h2 <cert> <key>` HTTP/2 over TLS (HTTP/1.1 allowed too, for the harness's
// preflight), so h2load can load it. It adds X-Forwarded-For/-Proto/-Host, as
// Switchyard does by default and the http-proxy peer does with `xfwd`. Logger
// off, like every proxy here. Prints `{"port":N}` once listening; exits when
// the harness that started it goes away (its IPC channel closes).
//
//   node dist/bench/peer-fastify-proxy.js <origin-url> [port] [--h2 <cert.pem> <key.pem>]

import { readFileSync } from 'node:fs'
import type { IncomingHttpHeaders } from 'node:http'
import type { IncomingHttpHeaders as Http2IncomingHttpHeaders } from 'node:http2'
import type { AddressInfo } from 'node:net'
import proxy from '@fastify/http-proxy'
import Fastify from 'fastify'
import type { FastifyInstance, FastifyRequest, RawServerBase, RequestGenericInterface } from 'fastify'

const USAGE = 'usage: peer-fastify-proxy.js <origin-url> [port] [--h2 <cert.pem> <key.pem>]\n'
const args = process.argv.slice(2)
const h2At = args.indexOf('--h2')
const certFile = h2At === -1 ? undefined : args[h2At + 1]
const keyFile = h2At === -1 ? undefined : args[h2At + 2]
const [target, portArg] = h2At === -1 ? args : [...args.slice(0, h2At), ...args.slice(h2At + 3)]
if (target === undefined || (h2At !== -1 && (certFile === undefined || keyFile === undefined))) {
  process.stderr.write(USAGE)
  process.exit(2)
}

// Generous, as for the other peers: a load run must never see an idle close.
const common = { logger: false, keepAliveTimeout: 120_000, http2SessionTimeout: 120_000 } as const

function forwarded (request: FastifyRequest<RequestGenericInterface, RawServerBase>, headers: Http2IncomingHttpHeaders | IncomingHttpHeaders): Http2IncomingHttpHeaders | IncomingHttpHeaders {
  // reply-from hands over its own copy of the headers: no need to copy again.
  const prior = headers['x-forwarded-for']
  headers['x-forwarded-for'] = prior === undefined ? request.ip : `${String(prior)}, ${request.ip}`
  headers['x-forwarded-proto'] = request.protocol
  headers['x-forwarded-host'] = request.host
  return headers
}

// Generic over the server: the h1 and h2 instances are different types, the setup is the same.
async function serve<S extends RawServerBase> (app: FastifyInstance<S>, upstream: string, port: number): Promise<number> {
  await app.register(proxy, { upstream, replyOptions: { rewriteRequestHeaders: forwarded } })
  await app.listen({ port, host: '127.0.0.1' })
  // fastify sets keepAliveTimeout on an HTTP/1.1 server, not headersTimeout, which must outlast it.
  if ('headersTimeout' in app.server) app.server.headersTimeout = 125_000
  return (app.server.address() as AddressInfo).port
}

const wanted = Number(portArg ?? 0)
// allowHTTP1 only for the harness's one-request preflight (node:https); h2load speaks h2.
const port = certFile === undefined || keyFile === undefined
  ? await serve(Fastify(common), target, wanted)
  : await serve(Fastify({ ...common, http2: true, https: { allowHTTP1: true, cert: readFileSync(certFile), key: readFileSync(keyFile) } }), target, wanted)
process.stdout.write(JSON.stringify({ port }) + '\n')

function stop (): void {
  // The harness waits for the exit, not for a drain: the sockets go with the process.
  process.exit(0)
}
// Started by the harness with an IPC channel: it closes when the harness exits, however it exits.
if (process.connected) process.on('disconnect', stop)
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
