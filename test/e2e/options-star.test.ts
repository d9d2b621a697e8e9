// `OPTIONS *` (RFC 9110 §9.3.7; asterisk-form, RFC 9112 §3.2.4; h2 `:path: *`,
// RFC 9113 §8.3.1) is about the server itself: the proxy answers it, 200 with
// Content-Length: 0 and no Allow, on plain and TLS listeners, HTTP/1.1 and h2,
// without a route or the origin; the connection stays usable. Any other method
// with `*` is refused: 400 LB_ERR_BAD_REQUEST on HTTP/1.1, and nghttp2 resets
// such an h2 stream itself. Real proxy, origin and clients.
import t from 'tap'
import { testCertificate } from '../helpers/certs.js'
import { h2Request, h2Session, rawRequest, tlsAndPlainListeners } from '../helpers/e2e.js'
import { startOrigin } from '../helpers/origin.js'
import { startProxy } from '../helpers/proxy.js'
import { SessionLog } from '../helpers/stream-kit.js'
import { field, parseResponses } from '../helpers/wire.js'

t.test('OPTIONS * is answered by the proxy; GET * is a 400', async (t) => {
  const cert = testCertificate(t)
  let originRequests = 0
  const maxForwardsSeen: (string | undefined)[] = []
  const origin = await startOrigin(t, (seen, res) => {
    originRequests++
    maxForwardsSeen.push(seen.headers['max-forwards'] as string | undefined)
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '6' }).end('origin')
  })
  const log = new SessionLog()
  // A catch-all route: `*` would reach it if the proxy routed the request.
  const proxy = await startProxy(t, `${tlsAndPlainListeners(cert)}
routes: [{ backend: o }]
backends: { o: { servers: [{ url: "${origin.url}" }] } }
`, log.hooks)

  for (const listener of ['plain', 'tls'] as const) {
    await t.test(`HTTP/1.1 on ${listener}: 200, Content-Length: 0, no Allow; the connection then serves the next request`, async (t) => {
      const before = originRequests
      const reply = await rawRequest(proxy.port(listener),
        'OPTIONS * HTTP/1.1\r\nHost: a.test\r\n\r\nGET /next HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n', { tls: listener === 'tls' })
      const { responses, malformed } = parseResponses(Buffer.from(reply.raw, 'latin1'), 'GET', true)
      t.equal(malformed, undefined, 'well-framed responses')
      t.equal(responses.length, 2, 'both answered on one connection')
      const options = responses[0]!
      t.equal(options.statusLine, 'HTTP/1.1 200 OK')
      t.equal(field(options, 'content-length'), '0')
      t.equal(field(options, 'allow'), undefined, 'no Allow: which methods a resource takes is its origin\'s to say')
      t.equal(field(options, 'x-switchyard-error'), undefined)
      t.equal(options.body.length, 0)
      t.equal(responses[1]!.status, 200)
      t.equal(responses[1]!.body.toString(), 'origin')
      t.equal(originRequests, before + 1, 'only the GET reached the origin')
      const s = log.sessions.find((x) => x.url === '*' && x.h2 === false && x.conn.proto === (listener === 'tls' ? 'https' : 'http'))
      t.ok(s, 'the session was logged')
      t.equal(s?.status, 200)
      t.equal(s?.error, undefined)
      t.equal(s?.route, undefined, 'no route')
      t.equal(s?.path, '*')
    })

    await t.test(`HTTP/1.1 on ${listener}: GET * and HEAD * are 400 LB_ERR_BAD_REQUEST`, async (t) => {
      const before = originRequests
      for (const method of ['GET', 'HEAD']) {
        const reply = await rawRequest(proxy.port(listener), `${method} * HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n`, { tls: listener === 'tls' })
        t.equal(reply.status, 400, method)
        t.equal(reply.headers['x-switchyard-error'], 'LB_ERR_BAD_REQUEST', method)
      }
      t.equal(originRequests, before, 'nothing reached the origin')
    })
  }

  await t.test('HTTP/1.1: absolute-form OPTIONS with an empty path is the same question (RFC 9112 §3.2.4)', async (t) => {
    const before = originRequests
    const reply = await rawRequest(proxy.port('plain'), 'OPTIONS http://a.test HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n')
    t.equal(reply.status, 200)
    t.equal(reply.headers['content-length'], '0')
    t.equal(originRequests, before)
  })

  await t.test('h2: :path * is answered with 200 and no body; the session serves the next stream', async (t) => {
    const before = originRequests
    const session = await h2Session(t, proxy.url('tls'))
    const r = await h2Request(session, { ':method': 'OPTIONS', ':path': '*', ':authority': 'a.test' })
    t.equal(r.status, 200)
    t.equal(r.headers['content-length'], '0')
    t.equal(r.headers.allow, undefined)
    t.equal(r.body.length, 0)
    t.equal(r.rstCode, undefined, 'a clean end, no reset')
    t.equal(originRequests, before, 'the origin was not asked')
    const next = await h2Request(session, { ':path': '/next', ':authority': 'a.test' })
    t.equal(next.text, 'origin')
    // Any other method with :path * is malformed (RFC 9113 §8.3.1): nghttp2 resets the stream before the proxy sees it.
    const bad = await h2Request(session, { ':method': 'GET', ':path': '*', ':authority': 'a.test' }).then(
      (reply) => ({ status: reply.status, rst: reply.rstCode }), (err: Error & { code?: string }) => ({ status: 0, rst: err.code }))
    t.same(bad, { status: 0, rst: 1 }, 'GET with :path *: RST_STREAM(PROTOCOL_ERROR), no answer')
    t.equal(originRequests, before + 1, 'only /next reached the origin')
    t.notOk(session.destroyed, 'the session lives on')
    session.close()
  })

  await t.test('Max-Forwards (RFC 9110 §7.6.2): OPTIONS at 0 is answered here, at 3 goes on with 2; TRACE at 0 is a 405', async (t) => {
    const before = originRequests
    const plain = await rawRequest(proxy.port('plain'), 'OPTIONS /doc HTTP/1.1\r\nHost: a.test\r\nMax-Forwards: 0\r\nConnection: close\r\n\r\n')
    t.equal(plain.status, 200, 'HTTP/1.1 OPTIONS /doc, Max-Forwards: 0: the proxy is the final recipient')
    t.equal(plain.headers['content-length'], '0')
    const session = await h2Session(t, proxy.url('tls'))
    const viaH2 = await h2Request(session, { ':method': 'OPTIONS', ':path': '/doc', ':authority': 'a.test', 'max-forwards': '0' })
    t.equal(viaH2.status, 200, 'h2 alike')
    t.equal(viaH2.body.length, 0)
    const trace = await rawRequest(proxy.port('plain'), 'TRACE /doc HTTP/1.1\r\nHost: a.test\r\nMax-Forwards: 0\r\nConnection: close\r\n\r\n')
    t.equal(trace.status, 405, 'TRACE at 0: refused, never reflected (cookies and credentials would be echoed)')
    t.equal(trace.headers['x-switchyard-error'], 'LB_ERR_METHOD_NOT_ALLOWED')
    t.equal(originRequests, before, 'none of them reached the origin')
    const on = await h2Request(session, { ':method': 'OPTIONS', ':path': '/doc', ':authority': 'a.test', 'max-forwards': '3' })
    t.equal(on.text, 'origin', 'Max-Forwards: 3 is forwarded')
    t.same(maxForwardsSeen.slice(-1), ['2'], 'one hop fewer')
    session.close()
  })
})
