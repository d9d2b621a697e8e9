// The span exporter against a real HTTP receiver: batches of OTLP/HTTP JSON,
// a bounded queue that drops instead of waiting, a collector that does not
// answer abandoned after `timeout`.
import http from 'node:http'
import t from 'tap'
import type { RequestRecord } from '../../src/admin/metrics/types.js'
import type { OtlpConfig } from '../../src/config/schema.js'
import { requestSpan, SpanExporter, unixNanos } from '../../src/tracing/otlp.js'
import { startServer } from '../helpers/origin.js'

const RECORD: RequestRecord = {
  time: 1_700_000_000_123, listener: 'web', protocol: 'h2', clientAddress: '203.0.113.9', method: 'GET', host: 'shop.test',
  path: '/cart', status: 502, bytes: 10, route: 'api', backend: 'api', server: 'a-1', errorCode: 'LB_ERR_UPSTREAM_CONNECT',
  totalMs: 1.5, retries: 1
}
const TRACE = { requestId: 'rid', traceId: '0af7651916cd43dd8448eb211c80319c', spanId: '00f067aa0ba902b7', parentId: 'b7ad6b7169203331', sampled: true }

t.test('unixNanos: exact integer nanoseconds in a string', async (t) => {
  t.equal(unixNanos(1_700_000_000_123), '1700000000123000000')
  t.equal(unixNanos(1_700_000_000_123.5), '1700000000123500000')
  t.equal(unixNanos(1.9999999), '2000000', 'rounding up carries into the milliseconds')
})

t.test('requestSpan: a SERVER span with HTTP semantic conventions', async (t) => {
  const s = requestSpan(RECORD, TRACE)
  t.match(s, {
    traceId: TRACE.traceId, spanId: TRACE.spanId, parentSpanId: TRACE.parentId, name: 'GET api', kind: 2,
    startTimeUnixNano: '1700000000123000000', endTimeUnixNano: '1700000000124500000', status: { code: 2 }
  })
  const attrs = Object.fromEntries(s.attributes.map((a) => [a.key, 'stringValue' in a.value ? a.value.stringValue : Number(a.value.intValue)]))
  t.match(attrs, {
    'http.request.method': 'GET', 'url.path': '/cart', 'http.response.status_code': 502, 'http.route': 'api', 'switchyard.server': 'a-1',
    'error.type': 'LB_ERR_UPSTREAM_CONNECT', 'switchyard.request_id': 'rid', 'network.protocol.version': '2', 'switchyard.retries': 1
  })
  t.equal(requestSpan({ ...RECORD, status: 404 }, { ...TRACE, parentId: undefined }).status.code, 0, 'a 4xx is not a server error')
  t.notOk('parentSpanId' in requestSpan(RECORD, { ...TRACE, parentId: undefined }), 'a trace we started has no parent')
})

t.test('requestSpan: a method of the client\'s making is _OTHER, the span named HTTP (no name or series per made-up method)', async (t) => {
  const attrsOf = (s: ReturnType<typeof requestSpan>) =>
    Object.fromEntries(s.attributes.map((a) => [a.key, 'stringValue' in a.value ? a.value.stringValue : Number(a.value.intValue)]))
  const made = requestSpan({ ...RECORD, method: 'CHOSEN0BYCLIENT' }, TRACE)
  t.equal(made.name, 'HTTP api')
  t.match(attrsOf(made), { 'http.request.method': '_OTHER', 'http.request.method_original': 'CHOSEN0BYCLIENT' })
  t.equal(requestSpan({ ...RECORD, method: 'X', route: undefined }, TRACE).name, 'HTTP', 'no route: HTTP alone')
  for (const method of ['PATCH', 'PURGE', 'OPTIONS']) {
    const s = requestSpan({ ...RECORD, method }, TRACE)
    t.equal(s.name, `${method} api`, method)
    t.notOk('http.request.method_original' in attrsOf(s))
  }
})

function config (url: string, over: Partial<OtlpConfig> = {}): OtlpConfig {
  return { endpoint: url, serviceName: 'edge', headers: { 'x-api-key': 'k' }, maxQueue: 10, maxBatch: 4, flushInterval: 3_600_000, timeout: 2000, ...over }
}

t.test('SpanExporter: full batches go at once, the rest on flush; JSON as OTLP/HTTP wants it', async (t) => {
  const bodies: Array<{ headers: http.IncomingHttpHeaders, body: { resourceSpans: Array<{ resource: unknown, scopeSpans: Array<{ spans: unknown[] }> }> } }> = []
  const collector = await startServer(t, (req, res) => {
    let body = ''
    req.setEncoding('utf8')
    req.on('data', (c: string) => { body += c })
    req.on('end', () => {
      bodies.push({ headers: req.headers, body: JSON.parse(body) as never })
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}')
    })
  })
  const ex = new SpanExporter(config(`${collector.url}/v1/traces`))
  t.teardown(() => ex.close())
  for (let i = 0; i < 6; i++) ex.push(requestSpan(RECORD, { ...TRACE, spanId: `00000000000000${String(i).padStart(2, '0')}` }))
  await ex.flush()
  t.same(bodies.map((b) => b.body.resourceSpans[0]!.scopeSpans[0]!.spans.length), [4, 2], 'a full batch of 4, then the 2 left')
  t.equal(bodies[0]!.headers['content-type'], 'application/json')
  t.equal(bodies[0]!.headers['x-api-key'], 'k', 'configured headers sent')
  t.same(bodies[0]!.body.resourceSpans[0]!.resource, { attributes: [{ key: 'service.name', value: { stringValue: 'edge' } }] })
  t.match(ex.stats, { exported: 6, dropped: 0, failed: 0, queued: 0 })
})

t.test('SpanExporter: a collector that never answers costs dropped spans, never a wait', async (t) => {
  const held: http.ServerResponse[] = []
  const collector = await startServer(t, (_req, res) => { held.push(res) })
  t.teardown(() => { for (const r of held) r.destroy() })
  const failures: Error[] = []
  const ex = new SpanExporter(config(`${collector.url}/v1/traces`, { timeout: 200 }), (err) => failures.push(err))
  t.teardown(() => ex.close())
  for (let i = 0; i < 4; i++) ex.push(requestSpan(RECORD, TRACE)) // a full batch: sent, and held by the collector
  for (let i = 0; i < 20; i++) ex.push(requestSpan(RECORD, TRACE)) // push returns at once whatever the collector does
  t.equal(ex.stats.queued, 10, 'the queue holds maxQueue')
  t.equal(ex.stats.dropped, 10, 'the rest are dropped and counted')
  await ex.flush()
  t.equal(ex.stats.failed, 4, 'the held batch was abandoned after timeout')
  t.equal(failures.length, 1, 'one failure reported')
  t.equal(ex.stats.exported, 0)
})
