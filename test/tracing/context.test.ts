import t from 'tap'
import { IdSource, formatTraceparent, parseTraceparent, traceRequest, type TraceSettings } from '../../src/tracing/context.js'

const ON: TraceSettings = { requestIdHeader: 'x-request-id', propagate: true, sampleNew: false }
const PARENT = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'

const field = (head: readonly string[], name: string): string[] => {
  const out: string[] = []
  for (let i = 0; i < head.length; i += 2) if (head[i]!.toLowerCase() === name) out.push(head[i + 1]!)
  return out
}

t.test('parseTraceparent: W3C trace-context §3.2', async (t) => {
  t.same(parseTraceparent(PARENT), { traceId: '0af7651916cd43dd8448eb211c80319c', parentId: 'b7ad6b7169203331', sampled: true })
  t.equal(parseTraceparent('00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00')?.sampled, false)
  t.ok(parseTraceparent('01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-future'), 'a later version: its first four fields')
  for (const bad of [undefined, '', 'garbage', '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra', 'ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
    '00-00000000000000000000000000000000-b7ad6b7169203331-01', '00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01',
    '00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01', '00-0af7651916cd43dd8448eb211c80319-b7ad6b7169203331-01']) {
    t.equal(parseTraceparent(bad), undefined, JSON.stringify(bad))
  }
})

t.test('IdSource.requestIds: three ids in one, each lower-case hex of its length, none all zero, not repeating', async (t) => {
  const ids = new IdSource()
  const seen = new Set<string>()
  const malformed: string[] = []
  for (let i = 0; i < 1000; i++) {
    const all = ids.requestIds()
    const parts = [all.slice(0, 32), all.slice(32, 64), all.slice(64, 80)]
    if (!/^[0-9a-f]{80}$/.test(all) || parts.some((p) => /^0+$/.test(p))) malformed.push(all)
    for (const p of parts) seen.add(p)
  }
  t.same(malformed, [], 'every string 80 hex digits, no part all zero')
  t.equal(seen.size, 3000, 'every part different from every other (the pool refills)')
  const tr = traceRequest(['host', 'a'], false, ON, ids)
  t.not(tr.requestId, tr.traceId, 'the request id is not the trace id')
  t.match(tr.spanId, /^[0-9a-f]{16}$/)
})

t.test('traceRequest: request id', async (t) => {
  const ids = new IdSource()
  const fresh = ['host', 'a', 'X-Request-Id', 'from-client']
  const untrusted = traceRequest(fresh, false, ON, ids)
  t.match(untrusted.requestId, /^[0-9a-f]{32}$/, 'an untrusted peer\'s id is replaced')
  t.same(field(fresh, 'x-request-id'), [untrusted.requestId], 'exactly one, ours, upstream')
  const head = ['host', 'a', 'x-request-id', 'abc-123', 'X-Request-Id', 'second']
  t.equal(traceRequest(head, true, ON, ids).requestId, 'abc-123', 'a trusted proxy\'s first id is kept')
  t.same(field(head, 'x-request-id'), ['abc-123'])
  const bad = ['x-request-id', 'has space']
  t.not(traceRequest(bad, true, ON, ids).requestId, 'has space', 'a malformed id is replaced, even from a trusted proxy')
  const none = ['host', 'a']
  t.match(traceRequest(none, true, ON, ids).requestId, /^[0-9a-f]{32}$/, 'none sent: a new one')
  const off = ['host', 'a', 'x-request-id', 'keep-me']
  t.equal(traceRequest(off, false, { ...ON, requestIdHeader: undefined }, ids).requestId, undefined)
  t.same(off, ['host', 'a', 'x-request-id', 'keep-me', 'traceparent', off[5]], 'requestId off: the field is the client\'s business, left as sent')
})

t.test('traceRequest: trace context', async (t) => {
  const ids = new IdSource()
  const head = ['host', 'a', 'traceparent', PARENT, 'tracestate', 'vendor=1,other=2']
  const tr = traceRequest(head, false, ON, ids)
  t.equal(tr.traceId, '0af7651916cd43dd8448eb211c80319c', 'the client\'s trace continues')
  t.equal(tr.parentId, 'b7ad6b7169203331')
  t.not(tr.spanId, 'b7ad6b7169203331', 'a new span for the proxy hop')
  t.equal(tr.sampled, true, 'the client\'s sampling decision')
  t.same(field(head, 'traceparent'), [formatTraceparent(tr)])
  t.same(field(head, 'traceparent')[0], `00-0af7651916cd43dd8448eb211c80319c-${tr.spanId}-01`)
  t.same(field(head, 'tracestate'), ['vendor=1,other=2'], 'tracestate goes on as sent')

  const invalid = ['traceparent', 'nonsense', 'tracestate', 'vendor=1']
  const started = traceRequest(invalid, false, ON, ids)
  t.equal(started.parentId, undefined, 'an invalid traceparent starts a new trace')
  t.equal(started.sampled, false, 'not sampled when nothing exports')
  t.same(field(invalid, 'tracestate'), [], 'a tracestate without a trace to belong to is dropped')
  t.equal(traceRequest(['host', 'a'], false, { ...ON, sampleNew: true }, ids).sampled, true, 'sampled when an exporter is configured')

  const two = ['traceparent', PARENT, 'traceparent', '00-11111111111111111111111111111111-2222222222222222-01']
  t.equal(traceRequest(two, false, ON, ids).parentId, undefined, 'two traceparent fields: a new trace (W3C §3.2.1)')
  t.equal(field(two, 'traceparent').length, 1)

  const long = ['traceparent', PARENT, 'tracestate', 'a='.padEnd(600, 'x')]
  traceRequest(long, false, ON, ids)
  t.same(field(long, 'tracestate'), [], 'an oversized tracestate is dropped')

  const passive = ['traceparent', PARENT, 'tracestate', 'v=1']
  const seen = traceRequest(passive, false, { ...ON, propagate: false }, ids)
  t.equal(seen.traceId, '0af7651916cd43dd8448eb211c80319c', 'propagate: false still logs the client\'s trace')
  t.same(field(passive, 'traceparent'), [PARENT], '...and leaves its fields as sent')
})
