// A response head Node refuses to write must never escape a request: it
// becomes a contained internal error (counted, the connection reset) and the
// server keeps serving. Real server, real request and response objects.
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { buildState } from '../../src/proxy/state.js'
import { parseConfig } from '../../src/config/load.js'
import { Pipeline } from '../../src/proxy/pipeline.js'
import { grpcTrailersOnly, Session } from '../../src/proxy/session.js'

t.test('Session.writeHead: a throw resets this connection and reports an internal error', async (t) => {
  const config = parseConfig(`listeners: [{ bind: "127.0.0.1:0" }]
routes: [{ backend: b }]
backends: { b: { servers: [{ url: "http://127.0.0.1:1" }] } }
`, 'test.yaml', { checkFiles: false })
  const contained: unknown[] = []
  const pipeline = new Pipeline(buildState(config), { onInternalError: (err) => contained.push(err) })
  const results: boolean[] = []
  const server = http.createServer((req, res) => {
    const s = new Session(req, res, { name: 'l', proto: 'http' },
      { clientAddress: '127.0.0.1', trusted: false, proto: 'http', viaEntry: '1.1 switchyard', servername: undefined }, performance.now(),
      pipeline)
    res.writeHead(200, ['content-length', '2'])
    res.end('ok')
    // A second head on a finished response: Node throws ERR_HTTP_HEADERS_SENT.
    results.push(s.writeHead(500, []))
    results.push(s.writeHead(200, ['x-bad\u0001name', 'v']))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { server.close(); server.closeAllConnections() })
  const port = (server.address() as AddressInfo).port
  await new Promise<void>((resolve) => {
    http.get({ port, host: '127.0.0.1', agent: false }, (res) => { res.resume(); res.on('end', resolve); res.on('error', () => resolve()) })
      .on('error', () => resolve())
  })
  t.same(results, [false, false], 'writeHead reports failure instead of throwing')
  t.equal(contained.length, 2, 'each one reported as an internal error')
  t.match(String(contained[0]), /headers/i)
  // The server still answers the next request.
  const again = await new Promise<number>((resolve) => {
    http.get({ port, host: '127.0.0.1', agent: false }, (res) => { res.resume(); resolve(res.statusCode ?? 0) }).on('error', () => resolve(0))
  })
  t.equal(again, 200)
})

t.test('grpcTrailersOnly: a gRPC status in a head without body becomes the trailers', async (t) => {
  t.same(grpcTrailersOnly(['content-type', 'application/grpc', 'Grpc-Status', '7', 'grpc-message', 'denied', 'via', '2 switchyard']),
    { 'grpc-status': '7', 'grpc-message': 'denied' })
  t.same(grpcTrailersOnly(['grpc-status', '0', 'grpc-status-details-bin', 'AAAA']), { 'grpc-status': '0', 'grpc-status-details-bin': 'AAAA' })
  t.equal(grpcTrailersOnly(['content-type', 'text/plain', 'content-length', '0']), undefined, 'not gRPC: no trailers invented')
  t.equal(grpcTrailersOnly(['grpc-message', 'no status']), undefined, 'a message without a status is not a status')
})
