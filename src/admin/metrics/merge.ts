// One view of several processes' metrics. In cluster mode every worker keeps
// its own Metrics; the primary asks each for `export()` (plain JSON, sent over
// IPC), merges them here and serves /metrics and /snapshot from the result,
// with the same output as one Metrics fed every request:
//
// - counters and gauges: summed per label set, into a registry built from the
//   same catalog; the label-set cap applies to the merged result (label sets
//   past it, and every process's own `other`, count under `other`);
// - latency summaries: count and sum added; the window histograms added with
//   HDR's add, aligned on the latest half-window (exact quantiles); max of the
//   maxima;
// - dashboard totals and per-second requests, errors and cache lookups/hits:
//   summed per second (exact);
// - per-second p50 and p99 of a route or backend: NOT exact. Each process
//   keeps a second's percentiles as two numbers, not its histogram (300
//   seconds of histograms per backend would not fit an export sent every
//   scrape), and percentiles do not add. The merged second takes p50 = the
//   request-weighted mean of the processes' p50 (it lies between their
//   smallest and largest, as the true p50 does) and p99 = the largest p99
//   (never below the true p99: if each process has at most 1% of its
//   requests above its own p99, at most 1% of all lie above the largest).
//   When a single process served that second, both are its exact values.
//
// Runs per scrape or dashboard poll, never per request. Histograms are
// decoded only when the exposition reads a window.
import { defineFamilies, resolveOptions, type Families } from './catalog.js'
import { History, Second, Totals } from './history.js'
import { MergedLatency, newHistogram, type Histogram } from './latency.js'
import type { Registry } from './registry.js'
import { dashboardSnapshot, prometheusText, type DashboardSeries } from './render.js'
import { SeriesMap } from './series.js'
import type { MetricsExport, MetricsOptions, MetricsSnapshot, PrometheusExtra, SecondExport, SeriesExport } from './types.js'

const orNull = (n: number): number | null => (Number.isNaN(n) ? null : n)

/** One second of one route or backend, summed over processes (see the percentile rule above). */
class SecondSum {
  count = 0
  errors = 0
  /** The largest p99 of any process; NaN when none had one. */
  p99 = NaN
  #p50Count = 0
  #p50First = NaN
  #p50Weighted = 0
  #p50Weight = 0

  add (count: number, errors: number, p50: number | null, p99: number | null): void {
    this.count += count
    this.errors += errors
    if (p50 !== null) {
      if (this.#p50Count++ === 0) this.#p50First = p50
      this.#p50Weighted += p50 * count
      this.#p50Weight += count
    }
    if (p99 !== null && !(p99 <= this.p99)) this.p99 = p99
  }

  /** The request-weighted mean of the processes' p50; exactly theirs when one process had the second. */
  get p50 (): number {
    if (this.#p50Count <= 1) return this.#p50First
    return this.#p50Weighted / this.#p50Weight
  }
}

/** A route or backend summed over processes. */
class MergedSeries {
  requests = 0
  errors = 0
  readonly total = new MergedLatency()
  readonly upstream = new MergedLatency()
  /** Every second any process reported, by second. */
  readonly #seconds = new Map<number, SecondSum>()

  absorb (x: SeriesExport): void {
    this.requests += x.requests
    this.errors += x.errors
    this.total.absorb(x.total)
    this.upstream.absorb(x.upstream)
    for (const [sec, count, errors, p50, p99] of x.seconds) {
      let s = this.#seconds.get(sec)
      if (s === undefined) this.#seconds.set(sec, s = new SecondSum())
      s.add(count, errors, p50, p99)
    }
  }

  /** As SeriesStats.export: the summaries at half-window `epoch`, the seconds from `from` on. */
  export (name: string, epoch: number, from: number): SeriesExport {
    const seconds: SecondExport[] = []
    for (const sec of [...this.#seconds.keys()].filter((sec) => sec >= from).sort((a, b) => a - b)) {
      const s = this.#seconds.get(sec)!
      seconds.push([sec, s.count, s.errors, orNull(s.p50), orNull(s.p99)])
    }
    return { name, requests: this.requests, errors: this.errors, total: this.total.export(epoch), upstream: this.upstream.export(epoch), seconds }
  }

  /** Its seconds completed before `nowSec`, as one Metrics would keep them (a ring of `ringSize`; 0: the last one only). */
  second (nowSec: number, ringSize: number): Second {
    const second = new Second(ringSize)
    const secs = [...this.#seconds.keys()].filter((sec) => sec < nowSec).sort((a, b) => a - b)
    for (const sec of secs) {
      const s = this.#seconds.get(sec)!
      second.put(sec, s.count, s.errors, s.p50, s.p99)
    }
    return second
  }
}

/** The merged metrics of several processes: read-only, with Metrics' prometheus() and snapshot(). */
export class MergedMetrics {
  readonly #options: Required<MetricsOptions>
  readonly #registry: Registry
  readonly #families: Families
  readonly #totals = new Totals()
  readonly #history: History
  readonly #routes: SeriesMap<MergedSeries>
  readonly #backends: SeriesMap<MergedSeries>
  /** Every export carried its window histograms. */
  readonly #windows: boolean
  #scratch: Histogram | undefined

  /** See mergeMetrics. */
  constructor (exports: readonly MetricsExport[], previous?: MergedMetrics) {
    const o = exports[0]?.options ?? (previous === undefined ? resolveOptions() : previous.#options)
    for (const x of exports) {
      if (x.version !== 1) throw new Error(`cannot merge a metrics export of version ${String(x.version)}`)
      if (x.options.summaryWindowMs !== o.summaryWindowMs || x.options.historySeconds !== o.historySeconds) {
        throw new RangeError('metrics exports disagree on summaryWindowMs or historySeconds')
      }
    }
    this.#options = o
    this.#windows = exports.every((x) => x.windows)
    const { registry, families } = defineFamilies(o.maxLabelSets)
    this.#registry = registry
    this.#families = families
    this.#history = new History(o.historySeconds)
    this.#routes = new SeriesMap(o.maxLatencySeries, () => new MergedSeries())
    this.#backends = new SeriesMap(o.maxLatencySeries, () => new MergedSeries())

    if (previous !== undefined) {
      // Label sets and series the last merge named keep their names, in the same order.
      registry.seed(previous.#registry)
      for (const [name] of previous.#routes) this.#routes.get(name)
      for (const [name] of previous.#backends) this.#backends.get(name)
    }
    for (const x of exports) {
      for (const f of x.families) for (const [labels, value] of f.rows) registry.add(f.name, labels, value)
      this.#totals.add(x.totals)
      this.#history.add(x.history)
      for (const s of x.routes) this.#routes.get(s.name).absorb(s)
      for (const s of x.backends) this.#backends.get(s.name).absorb(s)
    }
  }

  /** As Metrics.prometheus: the whole exposition; `now` (ms) places the summary window. */
  prometheus (extra: PrometheusExtra = {}, now: number = Date.now()): string {
    if (!this.#windows) throw new Error('metrics exported with { windows: false } give a snapshot only, not the exposition')
    return prometheusText({
      registry: this.#registry,
      routes: this.#routes,
      backends: this.#backends,
      halfWindowMs: this.#options.summaryWindowMs / 2,
      scratch: this.#scratch ??= newHistogram()
    }, extra, now)
  }

  /**
   * As Metrics.export at `now`: one export that merges like the ones it was
   * made of (a cluster primary folds the exports of the workers that exited
   * into one, see cluster/fleet.ts). No runtime sample: that is a live
   * process's.
   */
  export (now: number): MetricsExport {
    const history = this.#history
    const sec = history.advance(Math.max(Math.floor(now / 1000), 0))
    const from = sec - history.size
    const epoch = Math.floor(now / (this.#options.summaryWindowMs / 2))
    const series = (map: SeriesMap<MergedSeries>): SeriesExport[] => Array.from(map, ([name, s]) => s.export(name, epoch, from))
    return {
      version: 1,
      now,
      windows: this.#windows,
      options: { ...this.#options },
      families: this.#registry.export(),
      totals: this.#totals.export(),
      history: history.export(from),
      routes: series(this.#routes),
      backends: series(this.#backends)
    }
  }

  /** As Metrics.snapshot: the dashboard JSON at `now` (epoch ms). */
  snapshot (now: number = Date.now()): MetricsSnapshot {
    const history = this.#history
    const nowSec = history.advance(Math.max(Math.floor(now / 1000), 0))
    const view = (series: SeriesMap<MergedSeries>, ringSize: number): [string, DashboardSeries][] =>
      Array.from(series, ([name, s]) => [name, { requests: s.requests, errors: s.errors, second: s.second(nowSec, ringSize) }])
    const f = this.#families
    return dashboardSnapshot({
      totals: this.#totals,
      history,
      routes: view(this.#routes, 0),
      backends: view(this.#backends, history.size),
      cache: f.cache,
      requests: f.requests,
      serverUpstreamSeconds: f.serverUpstreamSeconds,
      serverUpstreamResponses: f.serverUpstreamResponses,
      activeConnections: f.activeConnections,
      activeStreams: f.activeStreams
    }, now, nowSec)
  }
}

/**
 * One view of the processes whose exports these are (a cluster's workers,
 * and the primary's own Metrics if it records anything, e.g. health
 * transitions). Exports must agree on summaryWindowMs and historySeconds;
 * the label-set caps are the first export's.
 *
 * Pass the previous scrape's result as `previous` to keep the label sets and
 * series it named under their own names: without it, once the cap is reached
 * which label sets get a name depends on the order of the exports, and a
 * counter could move between its own series and `other` from one scrape to
 * the next.
 */
export function mergeMetrics (exports: readonly MetricsExport[], previous?: MergedMetrics): MergedMetrics {
  return new MergedMetrics(exports, previous)
}

/** The gauge families' names, from the catalog (once, at load). */
const GAUGES: ReadonlySet<string> = new Set(defineFamilies(1).registry.families.filter((f) => f.type === 'gauge').map((f) => f.name))

/**
 * The last export of a process that has exited, to keep merging: its
 * counters stay (a fleet's counters must not go down when a worker is
 * replaced), its gauges (open connections and streams) are zero.
 */
function retiredExport (x: MetricsExport): MetricsExport {
  return {
    ...x,
    families: x.families.map((f) => GAUGES.has(f.name) ? { name: f.name, rows: f.rows.map(([labels]) => [labels, 0]) } : f)
  }
}

/**
 * The processes that have exited, as one export: `sum` (those before, if
 * any) plus `last`, the last export of one more, as retiredExport leaves it.
 * One export however many exit, merged like any other, so memory stays
 * bounded and no exited process's counts are ever dropped. `previous` as in
 * mergeMetrics (the label sets the last scrape named keep their names).
 */
export function foldExited (sum: MetricsExport | undefined, last: MetricsExport, previous?: MergedMetrics): MetricsExport {
  const x = retiredExport(last)
  return mergeMetrics(sum === undefined ? [x] : [sum, x], previous).export(Math.max(sum?.now ?? 0, x.now))
}
