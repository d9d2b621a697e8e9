// Request ids and trace context through a real proxy: the id every answer
// carries (h1, h2, cache hits, our own errors) is the one the origin got and
// the access log wrote; a trusted proxy's id is kept, anyone else's replaced;
// the client's W3C trace continues upstream with a new span id; and each
// sampled request becomes one span at a real OTLP/HTTP receiver.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import http from 'node:http'
import t from 'tap'
import { tempDir, testCertificate } from '../helpers/certs.js'
import { h1, h2, rawRequest, tlsAndPlainListeners } from '../helpers/e2e.js'
import { startOrigin, startServer } from '../helpers/origin.js'
import { startProxy } from '../helpers/proxy.js'

const PARENT = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'

interface Received { spans: Array<{ traceId: string, spanId: string, parentSpanId?: string, name: string, attributes: Array<{ key: string, value: Record<string, string> }> }> }

t.test('request ids and trace context', async (t) => {
  const cert = testCertificate(t)
  const dir = tempDir(t)
  const log = join(dir, 'access.log')
  const origin = await startOrigin(t, (seen, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': seen.url.startsWith('/cached') ? 'public, max-age=600' : 'no-store' })
    res.end(JSON.stringify(seen.headers))
  })
  const received: Received['spans'] = []
  const collector = await startServer(t, (req, res) => {
    let body = ''
    req.setEncoding('utf8')
    req.on('data', (c: string) => { body += c })
    req.on('end', () => {
      const doc = JSON.parse(body) as { resourceSpans: Array<{ scopeSpans: Received[] }> }
      for (const rs of doc.resourceSpans) for (const ss of rs.scopeSpans) received.push(...ss.spans)
      res.writeHead(200).end('{}')
    })
  })
  const proxy = await startProxy(t, `${tlsAndPlainListeners(cert)}
accessLog: { path: ${JSON.stringify(log)} }
cache: { maxBytes: 8MiB }
tracing:
  otlp: { endpoint: "${collector.url}/v1/traces", flushInterval: 50ms, maxBatch: 1 }
routes:
  - { name: dead, match: { pathPrefix: /none }, backend: dead }
  - { name: api, backend: origin }
backends:
  origin: { servers: [{ url: "${origin.url}" }] }
  dead: { servers: [{ url: "http://127.0.0.1:1" }], retries: { attempts: 0 } }
`)
  const plain = proxy.url('plain')

  t.test('a new id on every answer, the same one upstream; a client\'s own is replaced', async (t) => {
    const r = await h1(plain, { path: '/a', headers: { 'x-request-id': 'client-chosen' } })
    const id = r.headers['x-request-id'] as string
    t.match(id, /^[0-9a-f]{32}$/, 'not from a trusted proxy: ours')
    const upstream = JSON.parse(r.text) as http.IncomingHttpHeaders
    t.equal(upstream['x-request-id'], id, 'the origin got the same id')
    const viaH2 = await h2(t, proxy.url('tls'), { ':path': '/b' })
    t.match(viaH2.headers['x-request-id'], /^[0-9a-f]{32}$/, 'h2 answers too')
    t.not(viaH2.headers['x-request-id'], id, 'one id per request')
  })

  t.test('cache hits and our own error answers carry their request\'s id', async (t) => {
    const miss = await h1(plain, { path: '/cached/x' })
    const hit = await h1(plain, { path: '/cached/x' })
    t.match(hit.headers['cache-status'], /hit/)
    t.match(hit.headers['x-request-id'], /^[0-9a-f]{32}$/)
    t.not(hit.headers['x-request-id'], miss.headers['x-request-id'], 'the hit\'s own id, not the stored one')
    const h2hits = [await h2(t, proxy.url('tls'), { ':path': '/cached/y' }), await h2(t, proxy.url('tls'), { ':path': '/cached/y' }),
      await h2(t, proxy.url('tls'), { ':path': '/cached/y' })]
    t.equal(new Set(h2hits.map((r) => r.headers['x-request-id'])).size, 3, 'h2 hits from the shared head each get their own id')
    t.equal(h2hits.filter((r) => /hit/.test(String(r.headers['cache-status']))).length, 2)
    const failed = await h1(plain, { path: '/none' })
    t.equal(failed.status, 502)
    t.match(failed.headers['x-request-id'], /^[0-9a-f]{32}$/)
  })

  t.test('a request refused before routing gets an id of ours too, in its answer and its log line', async (t) => {
    const forged = 'f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0'
    const bad = await rawRequest(proxy.port('plain'), `GET /x HTTP/1.1\r\nHost: a..b\r\nX-Request-Id: ${forged}\r\nConnection: close\r\n\r\n`)
    t.equal(bad.status, 400)
    const id = bad.headers['x-request-id']
    t.match(id, /^[0-9a-f]{32}$/, 'the answer carries an id')
    t.not(id, forged, 'not the untrusted client\'s')
    await waitFor(() => readFileSync(log, 'utf8').includes(String(id)))
    const line = readFileSync(log, 'utf8').split('\n').filter((l) => l.includes(String(id))).map((l) => JSON.parse(l) as Record<string, unknown>)[0]!
    t.match(line, { status: 400, request_id: id })
    t.notOk(readFileSync(log, 'utf8').includes(forged), 'the forged id is in no log line')
  })

  t.test('the client\'s trace continues upstream with a new span for the proxy hop', async (t) => {
    const r = await h1(plain, { path: '/traced', headers: { traceparent: PARENT, tracestate: 'vendor=abc' } })
    const upstream = JSON.parse(r.text) as http.IncomingHttpHeaders
    t.match(upstream.traceparent, /^00-0af7651916cd43dd8448eb211c80319c-[0-9a-f]{16}-01$/)
    t.not(upstream.traceparent, PARENT, 'a new span id')
    t.equal(upstream.tracestate, 'vendor=abc')
    const fresh = JSON.parse((await h1(plain, { path: '/untraced' })).text) as http.IncomingHttpHeaders
    t.match(fresh.traceparent, /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/, 'no traceparent: a new, sampled trace (an exporter is configured)')

    // Its span reaches the collector: same trace, the client's span as parent, the proxy hop's id.
    const hop = (upstream.traceparent as string).split('-')[2]
    await waitFor(() => received.some((s) => s.spanId === hop))
    const span = received.find((s) => s.spanId === hop)!
    t.equal(span.traceId, '0af7651916cd43dd8448eb211c80319c')
    t.equal(span.parentSpanId, 'b7ad6b7169203331')
    t.equal(span.name, 'GET api')
    t.match(span.attributes.find((a) => a.key === 'switchyard.request_id')?.value.stringValue, /^[0-9a-f]{32}$/)
  })

  t.test('the access log has each request\'s id and trace', async (t) => {
    const r = await h1(plain, { path: '/logged', headers: { traceparent: PARENT } })
    const id = r.headers['x-request-id'] as string
    await waitFor(() => readFileSync(log, 'utf8').includes(id))
    const line = readFileSync(log, 'utf8').split('\n').filter((l) => l.includes(id)).map((l) => JSON.parse(l) as Record<string, unknown>)[0]!
    t.match(line, { path: '/logged', request_id: id, trace_id: '0af7651916cd43dd8448eb211c80319c' })
  })
})

t.test('a trusted proxy\'s request id is kept; requestId: false sends none', async (t) => {
  const origin = await startOrigin(t, (seen, res) => { res.writeHead(200).end(JSON.stringify(seen.headers)) })
  const trusted = await startProxy(t, `listeners: [{ name: web, bind: "127.0.0.1:0" }]
trustedProxies: [127.0.0.1]
routes: [{ backend: o }]
backends: { o: { servers: [{ url: "${origin.url}" }] } }
`)
  const kept = await h1(trusted.url('web'), { path: '/', headers: { 'x-request-id': 'lb-7f3a' } })
  t.equal(kept.headers['x-request-id'], 'lb-7f3a')
  t.equal((JSON.parse(kept.text) as http.IncomingHttpHeaders)['x-request-id'], 'lb-7f3a')
  const off = await startProxy(t, `listeners: [{ name: web, bind: "127.0.0.1:0" }]
requestId: false
tracing: { propagate: false }
routes: [{ backend: o }]
backends: { o: { servers: [{ url: "${origin.url}" }] } }
`)
  const none = await h1(off.url('web'), { path: '/', headers: { traceparent: PARENT } })
  t.equal(none.headers['x-request-id'], undefined)
  const up = JSON.parse(none.text) as http.IncomingHttpHeaders
  t.equal(up['x-request-id'], undefined)
  t.equal(up.traceparent, PARENT, 'propagate: false passes the client\'s traceparent as sent')
})

async function waitFor (cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time')
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}
