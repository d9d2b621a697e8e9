import t from 'tap'
import { Metrics, type RequestRecord } from '../../src/admin/metrics.js'
import { parsePrometheusText, type ParsedFamily } from '../helpers/prometheus-parser.js'

/** A fixed wall clock: 2023-11-14T22:13:20.000Z, on a second boundary. */
const T0 = 1_700_000_000_000

function rec (over: Partial<RequestRecord> = {}): RequestRecord {
  return {
    time: T0, listener: 'https', protocol: 'h2', clientAddress: '203.0.113.7', method: 'GET', host: 'api.example.com',
    path: '/v1/x', status: 200, bytes: 10, route: 'api', backend: 'api', shard: 'a', server: 'a-1', totalMs: 5, retries: 0, ...over
  }
}

/** Parses the exposition strictly (every line checked against the grammar) and indexes it. */
function scrape (m: Metrics, extra: Parameters<Metrics['prometheus']>[0] = {}, now = T0 + 10) {
  const text = m.prometheus(extra, now)
  const fams = parsePrometheusText(text)
  const byName = new Map<string, ParsedFamily>(fams.map((f) => [f.name, f]))
  const family = (name: string): ParsedFamily => {
    const f = byName.get(name)
    if (f === undefined) throw new Error(`no family ${name}`)
    return f
  }
  /** The value of the one sample named `name` whose labels include `labels`; undefined if none. */
  const value = (name: string, labels: Record<string, string> = {}, familyName = name): number | undefined => {
    const hits = family(familyName).samples.filter((s) => s.name === name &&
      Object.entries(labels).every(([k, v]) => s.labels[k] === v) && Object.keys(s.labels).length >= Object.keys(labels).length)
    const exact = hits.filter((s) => Object.keys(s.labels).length === Object.keys(labels).length)
    const pick = exact.length > 0 ? exact : hits
    if (pick.length > 1) throw new Error(`${pick.length} samples of ${name} match ${JSON.stringify(labels)}`)
    return pick[0]?.value
  }
  const total = (name: string): number => family(name).samples.reduce((a, s) => a + s.value, 0)
  return { text, fams, family, value, total }
}

t.test('counters match a known mix of requests', async (t) => {
  const m = new Metrics()
  const mix: RequestRecord[] = [
    ...Array.from({ length: 6 }, () => rec()),
    ...Array.from({ length: 3 }, () => rec({ server: 'a-2', status: 304 })),
    rec({ status: 404, route: undefined, backend: undefined, shard: undefined, server: undefined, errorCode: 'LB_ERR_NO_ROUTE', errorFlag: 'NR' }),
    rec({ status: 503, server: undefined, errorCode: 'LB_ERR_NO_HEALTHY_SERVER', errorFlag: 'UH' }),
    rec({ status: 502, errorCode: 'LB_ERR_UPSTREAM_CONNECT', errorFlag: 'UF', retries: 2 }),
    rec({ status: 502, server: 'a-2', errorCode: 'LB_ERR_UPSTREAM_CONNECT', errorFlag: 'UF', retries: 1 }),
    rec({ status: 0, errorCode: 'LB_ERR_CLIENT_ABORTED', errorFlag: 'DC' }),
    rec({ status: 200, errorCode: 'LB_ERR_UPSTREAM_RESET', errorFlag: 'UC' }), // reset mid-body: headers were 200
    rec({ status: 500, route: 'web', backend: 'web', shard: 'default', server: 'w-1' }),
    rec({ status: 101, route: 'web', backend: 'web', shard: 'default', server: 'w-1' }),
    rec({ status: 302, route: 'web', backend: 'web', shard: 'default', server: 'w-1', retries: 1 })
  ]
  for (const r of mix) m.record(r)
  const s = scrape(m)

  t.equal(s.total('switchyard_requests_total'), mix.length, 'every request counted once')
  const req = (route: string, backend: string, server: string, codeClass: string): number | undefined =>
    s.value('switchyard_requests_total', { route, backend, server, code_class: codeClass })
  t.equal(req('api', 'api', 'a-1', '2xx'), 7)
  t.equal(req('api', 'api', 'a-2', '3xx'), 3)
  t.equal(req('(none)', '(none)', '(none)', '4xx'), 1, 'no route: (none), never an empty label')
  t.equal(req('api', 'api', '(none)', '5xx'), 1, 'no server picked')
  t.notOk(s.family('switchyard_requests_total').samples.some((x) => Object.values(x.labels).includes('')), 'no empty label values')
  t.equal(s.value('switchyard_requests_total', { route: 'web', backend: 'web', shard: 'default', server: 'w-1', code_class: '1xx' }), 1, 'the server\'s shard is a label')
  t.equal(s.value('switchyard_requests_total', { route: '(none)', backend: '(none)', shard: '(none)', server: '(none)', code_class: '4xx' }), 1)
  t.equal(req('api', 'api', 'a-1', '5xx'), 1)
  t.equal(req('api', 'api', 'a-2', '5xx'), 1)
  t.equal(req('api', 'api', 'a-1', 'none'), 1, 'status 0: no response')
  t.equal(req('web', 'web', 'w-1', '5xx'), 1)
  t.equal(req('web', 'web', 'w-1', '1xx'), 1)
  t.equal(req('web', 'web', 'w-1', '3xx'), 1)
  t.equal(s.family('switchyard_requests_total').samples.length, 10)

  t.equal(s.value('switchyard_upstream_errors_total', { backend: 'api', code: 'LB_ERR_UPSTREAM_CONNECT' }), 2)
  t.equal(s.value('switchyard_upstream_errors_total', { backend: 'api', code: 'LB_ERR_NO_HEALTHY_SERVER' }), 1)
  t.equal(s.value('switchyard_upstream_errors_total', { backend: 'api', code: 'LB_ERR_UPSTREAM_RESET' }), 1)
  t.equal(s.total('switchyard_upstream_errors_total'), 4)
  t.equal(s.value('switchyard_request_errors_total', { code: 'LB_ERR_NO_ROUTE' }), 1, 'not an upstream error')
  t.equal(s.value('switchyard_request_errors_total', { code: 'LB_ERR_CLIENT_ABORTED' }), 1)
  t.equal(s.total('switchyard_request_errors_total'), 2)
  t.equal(s.value('switchyard_retries_total', { backend: 'api' }), 3)
  t.equal(s.value('switchyard_retries_total', { backend: 'web' }), 1)

  const snap = m.snapshot(T0 + 10)
  t.equal(snap.totals.requests, mix.length)
  t.same(snap.totals.statusClasses, { none: 1, '1xx': 1, '2xx': 7, '3xx': 4, '4xx': 1, '5xx': 4, other: 0 })
  t.equal(snap.totals.errors, 5, '4 answered 5xx + 1 upstream reset after a 200')
  t.equal(snap.totals.upstreamErrors, 4)
  t.equal(snap.totals.retries, 4)
  t.equal(snap.routes.api!.requestsTotal, 14)
  t.equal(snap.routes.api!.errorsTotal, 4)
  t.equal(snap.backends.web!.requestsTotal, 3)
  t.equal(snap.backends.web!.errorsTotal, 1)
  t.notOk('' in snap.routes, 'requests without a route have no route row')
})

t.test('HDR summaries: quantiles, _sum, _count and _max for known inputs', async (t) => {
  const m = new Metrics()
  // 1..1000 ms total; upstream = total - 1 ms, only for even ones.
  for (let i = 1; i <= 1000; i++) m.record(rec({ totalMs: i, ...(i % 2 === 0 ? { upstreamMs: i - 1 } : {}) }))
  const s = scrape(m)
  const family = s.family('switchyard_request_duration_seconds')
  t.equal(family.type, 'histogram', 'a histogram: buckets add up across instances')
  // Cumulative buckets in seconds: 1..1000 ms, so le=0.1 holds 100 values, le=0.5 holds 500, +Inf all.
  const bucket = (le: string): number | undefined => s.value('switchyard_request_duration_seconds_bucket', { route: 'api', le }, 'switchyard_request_duration_seconds')
  t.equal(bucket('0.001'), 1)
  t.equal(bucket('0.1'), 100)
  t.equal(bucket('0.5'), 500)
  t.equal(bucket('1'), 1000)
  t.equal(bucket('+Inf'), 1000)
  t.equal(s.family('switchyard_request_duration_recent_seconds').type, 'gauge')
  const q = (name: string, label: Record<string, string>, quantile: string): number =>
    s.value(name.replace(/_seconds$/, '_recent_seconds'), { ...label, quantile })!
  for (const [quantile, expected] of [['0.5', 0.5], ['0.9', 0.9], ['0.99', 0.99], ['0.999', 0.999]] as const) {
    for (const [name, label] of [['switchyard_request_duration_seconds', { route: 'api' }], ['switchyard_backend_request_duration_seconds', { backend: 'api' }]] as const) {
      const v = q(name, label, quantile)
      t.ok(v >= expected && v <= expected * 1.001, `${name} p${quantile} = ${v} (within 3 significant digits of ${expected})`)
    }
  }
  t.equal(s.value('switchyard_request_duration_seconds_sum', { route: 'api' }, 'switchyard_request_duration_seconds'), 500.5, 'exact sum')
  t.equal(s.value('switchyard_request_duration_seconds_count', { route: 'api' }, 'switchyard_request_duration_seconds'), 1000)
  t.equal(s.value('switchyard_request_duration_seconds_max', { route: 'api' }), 1, 'exact max')
  t.equal(s.family('switchyard_request_duration_seconds_max').type, 'gauge')
  // Upstream: 500 values 1, 3, 5 … 999 ms.
  t.equal(s.value('switchyard_upstream_duration_seconds_count', { route: 'api' }, 'switchyard_upstream_duration_seconds'), 500)
  t.equal(s.value('switchyard_backend_upstream_duration_seconds_sum', { backend: 'api' }, 'switchyard_backend_upstream_duration_seconds'), 250)
  const up50 = q('switchyard_upstream_duration_seconds', { route: 'api' }, '0.5')
  t.ok(up50 >= 0.499 && up50 <= 0.4995, `upstream p50 ${up50}`)
  t.equal(s.value('switchyard_backend_upstream_duration_seconds_max', { backend: 'api' }), 0.999)
})

t.test('HDR: microsecond resolution at the low end, 60 s cap at the top', async (t) => {
  const m = new Metrics()
  m.record(rec({ totalMs: 0.25 }))
  m.record(rec({ totalMs: 0.001 }))
  m.record(rec({ totalMs: -3 })) // clock weirdness counts as 0
  m.record(rec({ time: T0 - 120_000, totalMs: 120_000 })) // ends with the others, in the same summary window
  const s = scrape(m)
  const q = (quantile: string): number => s.value('switchyard_request_duration_recent_seconds', { route: 'api', quantile })!
  t.equal(q('0.5'), 0.000001, 'p50 = 1 µs')
  t.ok(q('0.999') >= 60 && q('0.999') < 60.1, 'values above 60 s are clamped in the histogram')
  t.equal(s.value('switchyard_request_duration_seconds_max', { route: 'api' }), 120, '_max keeps the real value')
  const sum = s.value('switchyard_request_duration_seconds_sum', { route: 'api' }, 'switchyard_request_duration_seconds')!
  t.ok(Math.abs(sum - 120.000251) < 1e-9, `_sum keeps the real values (${sum})`)
})

t.test('recent window: quantiles and _max expire, buckets, _sum and _count do not', async (t) => {
  const m = new Metrics({ summaryWindowMs: 60_000 })
  const W0 = 1_700_000_010_000 // a multiple of the 30 s half-window
  for (let i = 1; i <= 100; i++) m.record(rec({ time: W0, totalMs: 100 }))
  let s = scrape(m, {}, W0 + 45_000)
  t.ok(s.value('switchyard_request_duration_recent_seconds', { route: 'api', quantile: '0.5' })! >= 0.1, 'still in the window in the next half-window')
  m.record(rec({ time: W0 + 50_000, totalMs: 2 }))
  s = scrape(m, {}, W0 + 61_000)
  t.ok(s.value('switchyard_request_duration_recent_seconds', { route: 'api', quantile: '0.5' })! < 0.0021, 'the old half-window is gone')
  t.equal(s.value('switchyard_request_duration_seconds_max', { route: 'api' }), 0.002)
  s = scrape(m, {}, W0 + 200_000)
  t.ok(Number.isNaN(s.value('switchyard_request_duration_recent_seconds', { route: 'api', quantile: '0.99' })), 'NaN with nothing in the window')
  t.equal(s.value('switchyard_request_duration_seconds_max', { route: 'api' }), 0)
  t.equal(s.value('switchyard_request_duration_seconds_count', { route: 'api' }, 'switchyard_request_duration_seconds'), 101)
  t.equal(s.value('switchyard_request_duration_seconds_sum', { route: 'api' }, 'switchyard_request_duration_seconds'), 10.002)
})

t.test('connections, streams, health transitions, servers and cache in the exposition', async (t) => {
  const m = new Metrics()
  m.connectionOpened('https', 'h2')
  m.connectionOpened('https', 'h2')
  m.connectionOpened('https', 'h1')
  m.connectionOpened('http', 'h1')
  m.connectionClosed('https', 'h2')
  for (let i = 0; i < 5; i++) m.streamOpened('https')
  m.streamClosed('https')
  m.streamClosed('https')
  m.healthTransition('users', 'a', 'a-1', false)
  m.healthTransition('users', 'a', 'a-1', true)
  m.healthTransition('users', 'a', 'a-1', false)
  const s = scrape(m, {
    servers: [
      { backend: 'users', shard: 'a', server: 'a-1', healthy: false, active: 0 },
      { backend: 'users', shard: 'a', server: 'a-2', healthy: true, active: 7 },
      { backend: 'users', shard: 'a', server: 'a-2', healthy: true, active: 7 } // listed twice: written once
    ],
    cache: {
      hits: 90, misses: 10, staleServed: 3, revalidated304: 4, revalidated200: 1, collapsed: 6, stored: 9, notStored: 2,
      invalidations: 5, purges: 1, entries: 42, keys: 40, bytes: 4096, maxBytes: 65536, evictions: 8
    }
  })
  t.equal(s.value('switchyard_active_connections', { listener: 'https', protocol: 'h2' }), 1)
  t.equal(s.value('switchyard_active_connections', { listener: 'https', protocol: 'h1' }), 1)
  t.equal(s.value('switchyard_active_connections', { listener: 'http', protocol: 'h1' }), 1)
  t.equal(s.value('switchyard_connections_total', { listener: 'https', protocol: 'h2' }), 2)
  t.equal(s.value('switchyard_active_streams', { listener: 'https' }), 3)
  t.equal(s.value('switchyard_streams_total', { listener: 'https' }), 5)
  t.equal(s.value('switchyard_health_transitions_total', { backend: 'users', shard: 'a', server: 'a-1', to: 'down' }), 2)
  t.equal(s.value('switchyard_health_transitions_total', { backend: 'users', shard: 'a', server: 'a-1', to: 'up' }), 1)
  t.equal(s.value('switchyard_server_up', { backend: 'users', shard: 'a', server: 'a-1' }), 0)
  t.equal(s.value('switchyard_server_up', { backend: 'users', shard: 'a', server: 'a-2' }), 1)
  t.equal(s.value('switchyard_server_active_requests', { backend: 'users', shard: 'a', server: 'a-2' }), 7)
  t.equal(s.family('switchyard_server_up').samples.length, 2)
  t.equal(s.value('switchyard_cache_hits_total'), 90)
  t.equal(s.value('switchyard_cache_misses_total'), 10)
  t.equal(s.value('switchyard_cache_stale_served_total'), 3)
  t.equal(s.value('switchyard_cache_revalidations_total', { status: '304' }), 4)
  t.equal(s.value('switchyard_cache_revalidations_total', { status: '200' }), 1)
  t.equal(s.value('switchyard_cache_collapsed_total'), 6)
  t.equal(s.value('switchyard_cache_stored_total'), 9)
  t.equal(s.value('switchyard_cache_not_stored_total'), 2)
  t.equal(s.value('switchyard_cache_invalidations_total'), 5)
  t.equal(s.value('switchyard_cache_purges_total'), 1)
  t.equal(s.value('switchyard_cache_evictions_total'), 8)
  t.equal(s.value('switchyard_cache_entries'), 42)
  t.equal(s.value('switchyard_cache_keys'), 40)
  t.equal(s.value('switchyard_cache_bytes'), 4096)
  t.equal(s.value('switchyard_cache_max_bytes'), 65536)
  for (const f of s.fams) {
    t.ok(f.name.startsWith('switchyard_') || /^(process|nodejs)_/.test(f.name), `${f.name} is prefixed (or is a prom-client default name)`)
    t.ok(f.help !== undefined && f.help.length > 0, `${f.name} has HELP`)
    if (f.type === 'counter') t.ok(f.name.endsWith('_total'), `counter ${f.name} ends in _total`)
  }
  const snap = m.snapshot(T0)
  t.equal(snap.totals.activeConnections, 3)
  t.equal(snap.totals.activeStreams, 3)
  // Without the optional inputs their families are left out.
  const bare = scrape(m)
  t.notOk(bare.fams.some((f) => f.name.startsWith('switchyard_cache_hits') || f.name === 'switchyard_server_up'))
})

t.test('cache outcomes per route and the hit ratio', async (t) => {
  const m = new Metrics()
  for (const c of ['hit', 'hit', 'hit', 'stale', 'collapsed', 'miss', 'miss', 'bypass', 'revalidate'] as const) m.record(rec({ cacheStatus: c }))
  m.record(rec({ route: 'web', cacheStatus: 'hit' }))
  m.record(rec()) // a route without a cache
  const s = scrape(m)
  t.equal(s.value('switchyard_cache_requests_total', { route: 'api', result: 'hit' }), 3)
  t.equal(s.value('switchyard_cache_requests_total', { route: 'api', result: 'miss' }), 2)
  t.equal(s.value('switchyard_cache_requests_total', { route: 'api', result: 'bypass' }), 1)
  t.equal(s.value('switchyard_cache_requests_total', { route: 'web', result: 'hit' }), 1)
  t.equal(s.total('switchyard_cache_requests_total'), 10)
  const snap = m.snapshot(T0 + 1000)
  t.same(snap.totals.cache.outcomes, { hit: 4, stale: 1, collapsed: 1, miss: 2, bypass: 1, revalidate: 1 })
  t.equal(snap.totals.cache.lookups, 9, 'bypass is not a lookup')
  t.equal(snap.totals.cache.served, 6, 'hit, stale and collapsed are served from the cache')
  t.equal(snap.totals.cache.hitRatio, 6 / 9)
  t.equal(snap.history.at(-1)!.hitRatio, 6 / 9)
  t.equal(new Metrics().snapshot(T0).totals.cache.hitRatio, null)
})

t.test('label values are escaped in the exposition and come back intact', async (t) => {
  const m = new Metrics()
  const route = 'we"ird\\route\nname'
  m.record(rec({ route, backend: 'b"1', server: 's\\1', totalMs: 3 }))
  m.connectionOpened('lis"ten\ner', 'h1')
  const s = scrape(m)
  t.equal(s.value('switchyard_requests_total', { route, backend: 'b"1', server: 's\\1', code_class: '2xx' }), 1)
  t.equal(s.value('switchyard_request_duration_seconds_count', { route }, 'switchyard_request_duration_seconds'), 1)
  t.equal(s.value('switchyard_active_connections', { listener: 'lis"ten\ner', protocol: 'h1' }), 1)
  t.notOk(s.text.includes('route\nname'), 'no raw newline inside a label value')
})

t.test('label sets are bounded: past the limit they fold into "other"', async (t) => {
  const m = new Metrics({ maxLabelSets: 3, maxLatencySeries: 2 })
  for (let i = 0; i < 10; i++) m.record(rec({ route: `r${i}`, backend: `b${i}`, server: 's', errorCode: `LB_ERR_X${i}` }))
  const s = scrape(m)
  const requests = s.family('switchyard_requests_total').samples
  t.equal(requests.length, 4, '3 label sets + other')
  t.equal(s.value('switchyard_requests_total', { route: 'other', backend: 'other', server: 'other', code_class: 'other' }), 7)
  t.equal(s.total('switchyard_requests_total'), 10, 'nothing is lost')
  t.equal(s.family('switchyard_request_errors_total').samples.length, 4)
  t.equal(s.value('switchyard_request_errors_total', { code: 'other' }), 7)
  const routes = s.family('switchyard_request_duration_seconds').samples.filter((x) => x.name.endsWith('_count'))
  t.same(routes.map((x) => [x.labels.route, x.value]), [['r0', 1], ['r1', 1], ['other', 8]])
  t.same(Object.keys(m.snapshot(T0 + 1000).routes), ['r0', 'r1', 'other'])
})

t.test('snapshot: per-second history advances with now', async (t) => {
  const m = new Metrics({ historySeconds: 10 })
  // Second 0: three api requests (5, 10, 20 ms), one cache hit and one miss.
  m.record(rec({ totalMs: 5, cacheStatus: 'hit' }))
  m.record(rec({ totalMs: 10, cacheStatus: 'miss' }))
  m.record(rec({ time: T0 + 900, totalMs: 20 }))
  let snap = m.snapshot(T0 + 999)
  t.same(snap.history, [], 'the current second is not complete yet')
  t.equal(snap.backends.api!.rps, 0)

  // Second 1: one 503 on api, one web request; snapshot taken in second 2.
  m.record(rec({ time: T0 + 1000, totalMs: 40, status: 503, errorCode: 'LB_ERR_NO_HEALTHY_SERVER' }))
  m.record(rec({ time: T0 + 1500, route: 'web', backend: 'web', totalMs: 1 }))
  snap = m.snapshot(T0 + 2000)
  t.equal(snap.now, T0 + 2000)
  t.same(snap.history.map((p) => [p.t, p.rps, p.errors, p.hitRatio]), [
    [T0 + 1000, 3, 0, 0.5],
    [T0 + 2000, 2, 1, null]
  ])
  // HDR reports the highest value equivalent to a recorded one (3 significant digits).
  const near = (actual: number | null, expected: number): boolean => actual !== null && actual >= expected && actual <= expected * 1.001
  const api0 = snap.history[0]!.backends.api!
  t.equal(api0.rps, 3)
  t.ok(near(api0.p50, 10), `p50 ${api0.p50}`)
  t.ok(near(api0.p99, 20), `p99 ${api0.p99}`)
  t.same(snap.history[0]!.backends.web, { rps: 0, errors: 0, p50: null, p99: null }, 'web had no requests in second 0')
  const api1 = snap.history[1]!.backends.api!
  t.same([api1.rps, api1.errors], [1, 1])
  t.ok(near(api1.p50, 40) && near(api1.p99, 40))
  const cur = snap.backends.api!
  t.same([cur.rps, cur.errors, cur.requestsTotal, cur.errorsTotal], [1, 1, 4, 1], 'current = the last completed second')
  t.same([cur.p50, cur.p99], [api1.p50, api1.p99])
  t.same(snap.routes.web, { rps: 1, errors: 0, p50: 1, p99: 1, requestsTotal: 1, errorsTotal: 0 }, 'exact below 2 ms')

  // Idle for a while: the current numbers drop to zero, history keeps the last 10 seconds.
  snap = m.snapshot(T0 + 5000)
  t.equal(snap.history.length, 5)
  t.same(snap.history.slice(2).map((p) => p.rps), [0, 0, 0])
  t.same(snap.backends.api, { rps: 0, errors: 0, p50: null, p99: null, requestsTotal: 4, errorsTotal: 1 })
  snap = m.snapshot(T0 + 11_000)
  t.equal(snap.history.length, 10)
  t.equal(snap.history[0]!.t, T0 + 2000, 'second 0 has fallen off')
  t.equal(snap.history[0]!.rps, 2)
  snap = m.snapshot(T0 + 30_000)
  t.equal(snap.history.length, 10)
  t.ok(snap.history.every((p) => p.rps === 0 && p.backends.api!.p50 === null), 'stale ring slots are not reused as data')

  // A second in the future, then a snapshot with an earlier now: time never goes back.
  m.record(rec({ time: T0 + 40_000, totalMs: 7 }))
  snap = m.snapshot(T0 + 39_000)
  t.equal(snap.history.at(-1)!.t, T0 + 40_000, 'history ends before the second being recorded')
  m.record(rec({ time: T0 + 39_500, totalMs: 1 })) // late: counted in the current second
  snap = m.snapshot(T0 + 41_000)
  t.equal(snap.history.at(-1)!.rps, 2)
  t.same(JSON.parse(JSON.stringify(snap)), snap, 'plain JSON')
})

t.test('constructor options are checked', async (t) => {
  t.throws(() => new Metrics({ maxLabelSets: 0 }), RangeError)
  t.throws(() => new Metrics({ historySeconds: 1.5 }), RangeError)
  t.throws(() => new Metrics({ summaryWindowMs: 0 }), RangeError)
})
