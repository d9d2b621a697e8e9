import t, { type Test } from 'tap'
import { foldExited, Metrics, mergeMetrics, type MetricsExport, type MetricsOptions, type MetricsSnapshot, type RequestRecord } from '../../src/admin/metrics.js'
import { parsePrometheusText } from '../helpers/prometheus-parser.js'

/** 2023-11-14T22:13:20.000Z, on a second boundary. */
const T0 = 1_700_000_000_000
/** Small windows so the stream spans many half-windows (10 s) and wraps the history (60 s). */
const OPTS: MetricsOptions = { summaryWindowMs: 20_000, historySeconds: 60 }
const HALF = 10_000

type Mutable<T> = { -readonly [K in keyof T]: T[K] }

/** Where Metrics places a record in time. */
const endOf = (r: RequestRecord): number => r.time + (r.totalMs > 0 ? r.totalMs : 0)

/**
 * A fixed stream of `n` finished requests, in order of end time: 5 routes on
 * 4 backends of 3 servers, every status class, upstream and other errors,
 * retries, cache outcomes, latencies from 0 (and below) to past the 60 s
 * histogram cap; ~70 requests a second, with a quiet stretch longer than a
 * half-window a third in.
 */
function stream (n: number): RequestRecord[] {
  let seed = 7
  const rand = (): number => {
    seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31
    return seed / 2 ** 31
  }
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!
  const routes = [['api', 'api'], ['api', 'api'], ['web', 'web'], ['static', 'static'], ['search', 'api'], ['admin', 'admin']] as const
  const out: Mutable<RequestRecord>[] = []
  let end = T0 + 250
  for (let i = 0; i < n; i++) {
    end += i === Math.floor(n / 3) ? 25_000 : rand() * 28
    const p = rand()
    let totalMs = 0.05 + -Math.log(1 - rand()) * 8
    if (p < 0.002) totalMs = 70_000 + rand() * 10_000
    else if (p < 0.004) totalMs = 0
    else if (p < 0.005) totalMs = -1.5
    const r: Mutable<RequestRecord> = {
      time: 0, listener: 'https', protocol: i % 3 === 0 ? 'h1' : 'h2', clientAddress: '203.0.113.9', method: 'GET', host: 'x.example',
      path: '/', status: 200, bytes: 100, totalMs, retries: 0
    }
    const q = rand()
    if (q < 0.03) {
      r.status = 404
      r.errorCode = 'LB_ERR_NO_ROUTE'
    } else {
      const [route, backend] = pick(routes)
      r.route = route
      r.backend = backend
      r.shard = 'default'
      r.server = `${backend}-${Math.floor(rand() * 3)}`
      r.upstreamMs = totalMs * 0.8
      if (route === 'web' || route === 'static') r.cacheStatus = pick(['hit', 'hit', 'hit', 'miss', 'stale', 'collapsed', 'revalidate', 'bypass'] as const)
      if (r.cacheStatus === 'hit' || r.cacheStatus === 'stale' || r.cacheStatus === 'collapsed') {
        r.server = undefined
        r.upstreamMs = undefined
      } else if (q < 0.06) {
        r.status = 502
        r.errorCode = 'LB_ERR_UPSTREAM_CONNECT'
        r.retries = 1 + Math.floor(rand() * 2)
      } else if (q < 0.07) {
        r.status = 503
        r.errorCode = 'LB_ERR_NO_HEALTHY_SERVER'
        r.server = undefined
        r.upstreamMs = undefined
      } else if (q < 0.08) {
        r.status = 0
        r.errorCode = 'LB_ERR_CLIENT_ABORTED'
      } else if (q < 0.1) {
        r.status = 500
      } else if (q < 0.15) {
        r.status = 304
      } else if (q < 0.151) {
        r.status = 101
      }
    }
    r.time = end - (totalMs > 0 ? totalMs : 0)
    out.push(r)
  }
  // Two last requests alone in a later second: a worker without one still holds an older second in that history slot.
  for (const totalMs of [3, 4]) out.push({ ...out.at(-1)!, time: end + 1500, totalMs })
  return out.sort((a, b) => endOf(a) - endOf(b))
}

/** The same events on one instance, or spread over several (record i goes to instance i % n). */
function feed (records: readonly RequestRecord[], targets: readonly Metrics[]): void {
  records.forEach((r, i) => {
    const m = targets[i % targets.length]!
    m.record(r)
    if (i % 50 === 0) m.connectionOpened(i % 100 === 0 ? 'https' : 'http', r.protocol)
    if (i % 70 === 0) m.connectionClosed(i % 140 === 0 ? 'https' : 'http', r.protocol)
    if (i % 40 === 0) m.streamOpened('https')
    if (i % 90 === 0) m.streamClosed('https')
    if (i % 500 === 0) m.healthTransition('api', 'default', `api-${i % 3}`, i % 1000 === 0)
    if (i % 3001 === 0) m.internalError()
  })
}

/** What the IPC channel does to an export (process.send serializes as JSON). */
const wire = (x: MetricsExport): MetricsExport => JSON.parse(JSON.stringify(x)) as MetricsExport

interface Sample { readonly name: string, readonly value: number }

function samples (text: string): Map<string, Sample> {
  const out = new Map<string, Sample>()
  for (const f of parsePrometheusText(text)) {
    for (const s of f.samples) out.set(s.name + JSON.stringify(Object.entries(s.labels).sort()), { name: s.name, value: s.value })
  }
  return out
}

/** Both expositions parse, with the same families and samples; values identical but for `_sum` (float additions in another order). */
function sameExposition (t: Test, merged: string, single: string, what: string): void {
  const families = (text: string): unknown[] => parsePrometheusText(text).map((f) => [f.name, f.type, f.help])
  t.same(families(merged), families(single), `${what}: the same families, in the same order`)
  const m = samples(merged)
  const s = samples(single)
  t.same([...m.keys()].sort(), [...s.keys()].sort(), `${what}: the same series`)
  const off: unknown[] = []
  for (const [key, { name, value }] of s) {
    const got = m.get(key)?.value
    // Float sums (latency _sum, seconds counters) add in another order: equal to 12 digits.
    const ok = got !== undefined && (name.endsWith('_sum') || name.endsWith('_seconds_total') ? Math.abs(got - value) <= 1e-12 * Math.abs(value) : Object.is(got, value))
    if (!ok) off.push([key, got, value])
  }
  t.same(off, [], `${what}: every sample equal (${s.size} samples)`)
}

/** Rows by name: a merge lists routes and backends in the order the exports name them, not the order one instance saw them. */
const sorted = <T>(rows: Readonly<Record<string, T>>): [string, T][] => Object.entries(rows).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))

/** The dashboard JSON: everything counted is equal; per-second percentiles follow the merge rule. */
function sameSnapshot (t: Test, merged: MetricsSnapshot, single: MetricsSnapshot, workers: readonly MetricsSnapshot[], what: string): void {
  t.same(merged.totals, single.totals, `${what}: totals`)
  const counts = (s: MetricsSnapshot): unknown => s.history.map((p) => [p.t, p.rps, p.errors, p.hitRatio,
    sorted(p.backends).map(([name, b]) => [name, b.rps, b.errors, b.p50 === null, b.p99 === null])])
  t.same(counts(merged), counts(single), `${what}: per-second requests, errors, hit ratio (${single.history.length} s)`)
  const table = (rows: MetricsSnapshot['routes']): unknown =>
    sorted(rows).map(([name, r]) => [name, r.rps, r.errors, r.requestsTotal, r.errorsTotal, r.p50 === null])
  t.same(table(merged.routes), table(single.routes), `${what}: routes now`)
  t.same(table(merged.backends), table(single.backends), `${what}: backends now`)

  // p50 lies between the workers' own p50 for that second; p99 is the largest of theirs, never below the true one.
  const bad: unknown[] = []
  merged.history.forEach((p, i) => {
    for (const [name, b] of Object.entries(p.backends)) {
      if (b.p50 === null || b.p99 === null) continue
      const own = workers.flatMap((w) => w.history.find((x) => x.t === p.t)?.backends[name] ?? []).filter((x) => x.rps > 0)
      const p50s = own.map((x) => x.p50!)
      const truth = single.history[i]!.backends[name]!
      if (b.p99 !== Math.max(...own.map((x) => x.p99!)) || b.p99 < truth.p99! ||
        b.p50 < Math.min(...p50s) || b.p50 > Math.max(...p50s) || (own.length === 1 && (b.p50 !== truth.p50 || b.p99 !== truth.p99))) {
        bad.push([p.t, name, b, truth, own])
      }
    }
  })
  t.same(bad, [], `${what}: per-second p50 within the workers' range, p99 = their max (an upper bound)`)
}

t.test('three workers merged equal one instance fed the same stream', async (t) => {
  const records = stream(10_000)
  const single = new Metrics(OPTS)
  const workers = [new Metrics(OPTS), new Metrics(OPTS), new Metrics(OPTS)]
  feed(records, [single])
  feed(records, workers)
  const last = endOf(records.at(-1)!)
  t.ok(last - T0 > 150_000, `the stream spans ${Math.round((last - T0) / 1000)} s: many half-windows, the 60 s history wraps`)

  // Every worker exported at the same moment: windows in the last two half-windows.
  const now1 = last + 1
  const exports = workers.map((w) => wire(w.export(now1)))
  let merged = mergeMetrics(exports)
  const text = single.prometheus({}, now1)
  const snap = single.snapshot(now1)
  const own = workers.map((w) => w.snapshot(now1))
  sameExposition(t, merged.prometheus({}, now1), text, 'same now')
  sameSnapshot(t, merged.snapshot(now1), snap, own, 'same now')
  const reversed = mergeMetrics([...exports].reverse())
  sameExposition(t, reversed.prometheus({}, now1), text, 'exports in another order')
  sameSnapshot(t, reversed.snapshot(now1), snap, own, 'exports in another order')
  const quantiles = [...samples(text).values()].filter((s) => s.name.endsWith('duration_recent_seconds') && !Number.isNaN(s.value))
  t.ok(quantiles.length >= 40, `${quantiles.length} quantiles with values compared`)

  // Exports taken at different moments, one of them in the next half-window, merged later still: the half-windows line up.
  const next = (Math.floor(now1 / HALF) + 1) * HALF
  const now2 = next + 1500
  const previous = merged
  merged = mergeMetrics([wire(workers[0]!.export(now1)), wire(workers[1]!.export(next)), wire(workers[2]!.export(now1 + 1))], previous)
  const text2 = single.prometheus({}, now2)
  t.ok([...samples(text2).values()].some((s) => s.name.endsWith('duration_recent_seconds') && !Number.isNaN(s.value)), 'the window still has values')
  sameExposition(t, merged.prometheus({}, now2), text2, 'exports from other half-windows')
  sameSnapshot(t, merged.snapshot(now2), single.snapshot(now2), workers.map((w) => w.snapshot(now2)), 'exports from other seconds')

  // Long after: the windows are empty, _count and _sum stay.
  const now3 = now1 + 5 * HALF
  merged = mergeMetrics(workers.map((w) => wire(w.export(now3))), merged)
  sameExposition(t, merged.prometheus({}, now3), single.prometheus({}, now3), 'windows expired')
  sameSnapshot(t, merged.snapshot(now3), single.snapshot(now3), workers.map((w) => w.snapshot(now3)), 'idle')
})

t.test('workers that exited, folded into one export as each exits, still count every request, however many', async (t) => {
  // More exits than the primary ever kept exports for (it used to keep 64 and drop the oldest).
  const records = stream(7000)
  const single = new Metrics(OPTS)
  const workers = Array.from({ length: 70 }, () => new Metrics(OPTS))
  feed(records, [single])
  feed(records, workers)
  const now = endOf(records.at(-1)!) + 1
  const exits = workers.slice(0, 66)
  const live = workers.slice(66)
  let gone: MetricsExport | undefined
  let previous = mergeMetrics([...exits, ...live].map((w) => wire(w.export(now))))
  const sizes: number[] = []
  for (const w of exits) {
    gone = foldExited(gone, wire(w.export(now)), previous)
    previous = mergeMetrics([gone, ...live.map((w) => wire(w.export(now)))], previous)
    sizes.push(JSON.stringify(gone).length)
  }
  const merged = mergeMetrics([gone!, ...live.map((w) => wire(w.export(now)))], previous)
  // The exited workers' gauges (open connections and streams) are gone with them; everything else is the single instance's.
  const gauges = /^switchyard_active_(connections|streams)/
  const counters = (text: string): string => text.split('\n').filter((l) => !gauges.test(l)).join('\n')
  sameExposition(t, counters(merged.prometheus({}, now)), counters(single.prometheus({}, now)), '66 exited, 4 live')
  const totals = (x: MetricsSnapshot): unknown => ({ ...x.totals, activeConnections: 0, activeStreams: 0 })
  t.same(totals(merged.snapshot(now)), totals(single.snapshot(now)), 'dashboard totals')
  // Its size is that of one instance that saw all their requests, not one export per exit.
  const one = JSON.stringify(single.export(now)).length
  t.ok(sizes.at(-1)! <= 1.25 * one, `one export whatever the number of exits (${sizes[0]!} bytes after one, ${sizes.at(-1)!} after ${exits.length}; one instance: ${one})`)
  const active = (text: string): number => parsePrometheusText(text).find((f) => f.name === 'switchyard_active_connections')!.samples.reduce((n, x) => n + x.value, 0)
  t.equal(active(mergeMetrics([gone!]).prometheus({}, now)), 0, 'no open connection is left to the exited')
})

t.test('an export is plain JSON and comes back from JSON unchanged', async (t) => {
  const m = new Metrics(OPTS)
  feed(stream(2000), [m])
  const x = m.export(T0 + 40_000)
  t.strictSame(wire(x), x, 'no NaN, undefined, Map, Buffer or class instance inside')
  t.equal(x.version, 1)
  t.same(x.options, { maxLabelSets: 1000, maxLatencySeries: 200, summaryWindowMs: 20_000, historySeconds: 60 })
  t.same(x.routes.map((r) => r.name).sort(), ['admin', 'api', 'search', 'static', 'web'])
  t.ok(x.backends.every((b) => typeof b.total.cur === 'string' && b.total.cur.length > 0), 'histograms as compressed base64')
  t.ok(new Metrics().export(T0).routes.length === 0, 'an idle instance exports no series')
})

t.test('per-second percentiles: exact from one worker, weighted p50 and max p99 across workers', async (t) => {
  const rec = (time: number, totalMs: number, backend = 'api'): RequestRecord => ({
    time, listener: 'https', protocol: 'h2', clientAddress: '203.0.113.9', method: 'GET', host: 'x', path: '/', status: 200, bytes: 1,
    route: backend, backend, shard: 'default', server: `${backend}-0`, totalMs, retries: 0
  })
  const a = new Metrics()
  const b = new Metrics()
  // Latencies below 2 ms, where HDR is exact to the µs. Second 0: only a (0.2, 0.4, 0.6 ms). Second 1: a has 1 ms ×3, b has 1.6 ms ×1.
  for (const ms of [0.2, 0.4, 0.6]) a.record(rec(T0, ms))
  for (let i = 0; i < 3; i++) a.record(rec(T0 + 1000, 1))
  b.record(rec(T0 + 1000, 1.6))
  const snap = mergeMetrics([a.export(T0 + 2000), b.export(T0 + 2000)].map(wire)).snapshot(T0 + 2000)
  const second1 = { rps: 4, errors: 0, p50: (1 * 3 + 1.6) / 4, p99: 1.6 }
  t.same(snap.history.map((p) => p.backends.api), [{ rps: 3, errors: 0, p50: 0.4, p99: 0.6 }, second1], 'second 0 exact; second 1 by the rule')
  t.same(snap.backends.api, { ...second1, requestsTotal: 7, errorsTotal: 0 })

  // The second being recorded when exported counts once it is over, as in one instance.
  const c = new Metrics()
  c.record(rec(T0 + 2500, 0.8, 'web'))
  const later = mergeMetrics([a.export(T0 + 2600), c.export(T0 + 2600)].map(wire))
  t.same(later.snapshot(T0 + 2600).routes.web, { rps: 0, errors: 0, p50: null, p99: null, requestsTotal: 1, errorsTotal: 0 }, 'not yet')
  t.same(later.snapshot(T0 + 3000).routes.web, { rps: 1, errors: 0, p50: 0.8, p99: 0.8, requestsTotal: 1, errorsTotal: 0 }, 'its second is over')
})

t.test('label cap: applied to the merged result; `previous` keeps the names it gave', async (t) => {
  const opts = { maxLabelSets: 4, maxLatencySeries: 2 }
  const rec = (route: string): RequestRecord => ({
    time: T0, listener: 'https', protocol: 'h2', clientAddress: '203.0.113.9', method: 'GET', host: 'x', path: '/', status: 200, bytes: 1,
    route, backend: route, shard: 'default', server: 's', totalMs: 3, retries: 0
  })
  // Three workers, three routes each: 9 label sets, none past a worker's own cap (4) …
  const workers = [0, 1, 2].map((w) => {
    const m = new Metrics(opts)
    for (let i = 0; i < 3; i++) for (let k = 0; k <= i; k++) m.record(rec(`w${w}r${i}`))
    return m
  })
  // … and one past it: w3r4 and w3r5 are its own `other`.
  const crowded = new Metrics(opts)
  for (let i = 0; i < 6; i++) crowded.record(rec(`w3r${i}`))
  const exports = [...workers, crowded].map((m) => wire(m.export(T0 + 10)))

  const requests = (text: string): Map<string, number> => new Map(parsePrometheusText(text).find((f) => f.name === 'switchyard_requests_total')!.samples
    .map((s) => [s.labels.route!, s.value]))
  const merged = mergeMetrics(exports)
  const first = requests(merged.prometheus({}, T0 + 10))
  t.same([...first.keys()], ['w0r0', 'w0r1', 'w0r2', 'w1r0', 'other'], 'the first 4 label sets seen keep their names, in export order')
  t.equal([...first.values()].reduce((a, b) => a + b, 0), 3 * 6 + 6, 'nothing is lost')
  t.equal(first.get('other'), 24 - (1 + 2 + 3 + 1), 'the rest, with the crowded worker\'s own other')
  const routesOf = (m: typeof merged): string[] => Object.keys(m.snapshot(T0 + 1000).routes)
  t.same(routesOf(merged), ['w0r0', 'w0r1', 'other'], 'latency series capped too')

  // Another scrape with the exports in another order: without `previous` the names move, with it they stay.
  const reversed = [...exports].reverse()
  t.not([...requests(mergeMetrics(reversed).prometheus({}, T0 + 10)).keys()][0], 'w0r0', 'order decides without previous')
  const again = mergeMetrics(reversed, merged)
  t.same(requests(again.prometheus({}, T0 + 10)), first, 'with previous: the same label sets, the same values')
  t.same(routesOf(again), ['w0r0', 'w0r1', 'other'])
})

t.test('worker gauges only when the primary passes them', async (t) => {
  const m = new Metrics()
  const bare = parsePrometheusText(m.prometheus({}, T0))
  t.notOk(bare.some((f) => f.name.startsWith('switchyard_worker')), 'single process: absent')
  const merged = mergeMetrics([wire(m.export(T0))])
  const fams = parsePrometheusText(merged.prometheus({ workers: { live: 3, restarts: 2 } }, T0))
  const fam = (name: string): unknown => {
    const f = fams.find((x) => x.name === name)
    return f === undefined ? undefined : [f.type, f.samples.map((s) => [s.labels, s.value])]
  }
  t.same(fam('switchyard_workers'), ['gauge', [[{}, 3]]])
  t.same(fam('switchyard_worker_restarts_total'), ['counter', [[{}, 2]]])
})

t.test('merge refuses exports it cannot line up', async (t) => {
  const a = new Metrics().export(T0)
  t.throws(() => mergeMetrics([a, new Metrics({ summaryWindowMs: 60_000 }).export(T0)]), RangeError)
  t.throws(() => mergeMetrics([a, new Metrics({ historySeconds: 10 }).export(T0)]), RangeError)
  t.throws(() => mergeMetrics([{ ...a, version: 2 as 1 }]), /version 2/)
  t.throws(() => mergeMetrics([{ ...a, families: [{ name: 'switchyard_nope_total', rows: [[[], 1]] }] }]), /unknown metric family/)
  const empty = mergeMetrics([])
  t.equal(empty.snapshot(T0).totals.requests, 0, 'no workers yet: an empty view')
  t.ok(parsePrometheusText(empty.prometheus({}, T0)).length > 0)
})

t.test('export size under a typical load', async (t) => {
  // The bench's mix (4 routes, 3 servers each, errors, cache outcomes): 1000 requests a second for the whole 5-minute history.
  const m = new Metrics()
  const routes = ['api', 'web', 'static', 'admin']
  let seed = 42
  const rand = (): number => {
    seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31
    return seed / 2 ** 31
  }
  const n = 300_000
  for (let i = 0; i < n; i++) {
    const route = routes[i % 4]!
    const totalMs = 0.2 + -Math.log(1 - rand()) * 8
    const cached = route === 'web' || route === 'static'
    const failed = rand() < 0.01
    m.record({
      time: T0 + i - totalMs, listener: 'https', protocol: 'h2', clientAddress: '203.0.113.9', method: 'GET', host: 'x', path: '/',
      status: failed ? 502 : 200, bytes: 1, route, backend: route, shard: 'default', server: `${route}-${i % 3}`, totalMs, upstreamMs: totalMs * 0.9,
      retries: 0, ...(cached ? { cacheStatus: rand() < 0.7 ? 'hit' : 'miss' } : {}), ...(failed ? { errorCode: 'LB_ERR_UPSTREAM_CONNECT' } : {})
    })
  }
  const timed = <T>(fn: () => T): [T, number] => {
    const start = performance.now()
    return [fn(), performance.now() - start]
  }
  const [x, ms] = timed(() => m.export(T0 + n))
  const json = JSON.stringify(x)
  const part = (v: unknown): number => JSON.stringify(v).length
  let histograms = 0
  for (const s of [...x.routes, ...x.backends]) for (const l of [s.total, s.upstream]) histograms += (l.cur?.length ?? 0) + (l.prev?.length ?? 0)
  t.comment(`export: ${json.length} bytes of JSON, ${ms.toFixed(1)} ms (of which window histograms ${histograms} bytes; ` +
    `families ${part(x.families)}, history ${part(x.history)}, routes ${part(x.routes)}, backends ${part(x.backends)})`)
  t.ok(json.length < 160 * 1024, `small enough to send every scrape: ${json.length} bytes`)

  const [lean, leanMs] = timed(() => m.export(T0 + n, { windows: false }))
  const leanJson = JSON.stringify(lean)
  t.comment(`export without window histograms (dashboard poll): ${leanJson.length} bytes, ${leanMs.toFixed(1)} ms`)
  t.ok(leanJson.length < json.length - histograms + 100, 'only the histograms are left out')
  const both = mergeMetrics([x, lean].map(wire))
  t.throws(() => both.prometheus({}, T0 + n), /snapshot only/, 'no exposition from exports without windows')
  const snap = both.snapshot(T0 + n)
  t.equal(snap.totals.requests, 2 * n)
  t.equal(snap.history.at(-1)!.rps, 2000)
})
