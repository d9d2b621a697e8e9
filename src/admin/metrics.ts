// Request metrics: counters, gauges and HDR latency histograms, fed once per
// finished request (`record`) and by connection / health events; read as
// Prometheus text (`prometheus`) and as JSON for the live dashboard
// (`snapshot`). One instance per app, created by the composition root and
// injected: no globals, no timers. Time is taken from the records themselves
// (start + total) or passed in, and everything that rolls over with time (the
// summary window, the per-second history) is advanced lazily when it is
// touched, so tests drive it with plain numbers.
//
// This file is the public entry: the Metrics class, which declares what is
// measured and does the per-request work, and every type other modules use.
// The parts live in metrics/:
//   types.ts     the shapes: RequestRecord, MetricsOptions, MetricsSnapshot, MetricsExport, …
//   catalog.ts   which counter and gauge families exist; the option defaults
//   registry.ts  counter and gauge families (bounded label sets, `other`), in exposition order
//   latency.ts   HDR histograms and the windowed latency summaries
//   series.ts    per route / per backend: counts, two summaries, the current second
//   history.ts   dashboard totals and the per-second history rings
//   render.ts    Prometheus exposition and dashboard JSON, per scrape / poll
//   merge.ts     one view of several processes (a cluster's workers) from their exports
//
// In cluster mode each worker has its own Metrics; the primary asks each for
// `export()` (plain JSON, sent over IPC) and renders the instance with
// `mergeMetrics(exports).prometheus()` / `.snapshot()`.
//
// The hot path (`record`) builds no strings and allocates nothing once its
// label sets and histograms exist.
import { servedFromCache } from '../cache/outcome.js'
import { Errors } from '../errors.js'
import { defineFamilies, resolveOptions } from './metrics/catalog.js'
import { History, Totals } from './metrics/history.js'
import { newHistogram, toMicros, type Histogram } from './metrics/latency.js'
import { CLASSES, NONE, classIndex, type Cell, type Registry, type Vec } from './metrics/registry.js'
import { dashboardSnapshot, prometheusText } from './metrics/render.js'
import { SeriesMap, SeriesStats } from './metrics/series.js'
import type { MetricsExport, MetricsOptions, MetricsSnapshot, PrometheusExtra, RequestRecord } from './metrics/types.js'
import type { ProxyRefusal } from '../listener/proxy-accept.js'

export { NONE, OTHER } from './metrics/registry.js'
export { foldExited, mergeMetrics, type MergedMetrics } from './metrics/merge.js'
export type {
  BackendPoint, CacheMetricsInput, ConfigMetricsInput, FamilyExport, HistoryExport, HistoryPoint, LatencyExport, MetricsExport, MetricsOptions, MetricsSnapshot,
  PrometheusExtra, RequestDetail, RequestRecord, SecondExport, SeriesExport, SeriesSnapshot, ServerMetricsInput, ServerSnapshot, StatusClass, TotalsExport, WorkerMetricsInput
} from './metrics/types.js'

const UPSTREAM_CODES: ReadonlySet<string> = new Set(Object.values(Errors).filter((k) => k.source === 'upstream').map((k) => k.code))
const RATE_LIMITED = Errors.RATE_LIMITED.code

export class Metrics {
  readonly #options: Required<MetricsOptions>
  readonly #halfWindowMs: number
  readonly #registry: Registry

  // Families fed by record()
  readonly #requests: Vec
  readonly #upstreamErrors: Vec
  readonly #requestErrors: Vec
  readonly #retries: Vec
  readonly #cache: Vec
  readonly #rateLimited: Vec
  readonly #serverUpstreamSeconds: Vec
  readonly #serverUpstreamResponses: Vec
  // Events
  readonly #activeConnections: Vec
  readonly #connections: Vec
  readonly #activeStreams: Vec
  readonly #streams: Vec
  readonly #proxyRefused: Vec
  readonly #healthTransitions: Vec
  readonly #rateLimitTransitions: Vec
  readonly #internalErrors: Cell
  readonly #accessLogDropped: Cell

  readonly #routes: SeriesMap<SeriesStats>
  readonly #backends: SeriesMap<SeriesStats>
  readonly #totals = new Totals()
  readonly #history: History
  /** Reused to merge a summary's two half-window histograms at scrape time. */
  #scratch: Histogram | undefined

  constructor (opts: MetricsOptions = {}) {
    const o = this.#options = resolveOptions(opts)
    const historySize = o.historySeconds
    this.#halfWindowMs = o.summaryWindowMs / 2
    this.#routes = new SeriesMap(o.maxLatencySeries, () => new SeriesStats(0))
    this.#backends = new SeriesMap(o.maxLatencySeries, () => new SeriesStats(historySize))
    this.#history = new History(historySize)

    const { registry, families: f } = defineFamilies(o.maxLabelSets)
    this.#registry = registry
    this.#requests = f.requests
    this.#upstreamErrors = f.upstreamErrors
    this.#requestErrors = f.requestErrors
    this.#retries = f.retries
    this.#cache = f.cache
    this.#rateLimited = f.rateLimited
    this.#serverUpstreamSeconds = f.serverUpstreamSeconds
    this.#serverUpstreamResponses = f.serverUpstreamResponses
    this.#activeConnections = f.activeConnections
    this.#connections = f.connections
    this.#activeStreams = f.activeStreams
    this.#streams = f.streams
    this.#proxyRefused = f.proxyRefused
    this.#healthTransitions = f.healthTransitions
    this.#rateLimitTransitions = f.rateLimitTransitions
    this.#internalErrors = f.internalErrors
    this.#accessLogDropped = f.accessLogDropped
  }

  /** Something threw while handling a request and was contained (see PipelineHooks.onInternalError). */
  internalError (): void {
    this.#internalErrors.value++
  }

  /** An access-log line its destination had no room for. */
  accessLogDropped (): void {
    this.#accessLogDropped.value++
  }

  /** Once per finished request, and once per background refresh (cache outcome `refresh`). */
  record (r: RequestRecord): void {
    if (r.cacheStatus === 'refresh') return this.#refresh(r)
    const end = r.time + (r.totalMs > 0 ? r.totalMs : 0)
    const history = this.#history
    const totals = this.#totals
    const sec = history.advance(Math.floor(end / 1000))
    const epoch = Math.floor(end / this.#halfWindowMs)
    // Label values are never empty (Prometheus reads "" as the label being absent).
    const route = r.route ?? NONE
    const backend = r.backend ?? NONE
    const ci = classIndex(r.status)

    totals.requests++
    totals.classes[ci]!++
    this.#requests.cell(route, backend, r.shard ?? NONE, r.server ?? NONE, CLASSES[ci]!).value++

    let isError = ci === 5
    const code = r.errorCode
    if (code !== undefined) {
      if (UPSTREAM_CODES.has(code)) {
        this.#upstreamErrors.cell(backend, code).value++
        totals.upstreamErrors++
        isError = true
      } else {
        this.#requestErrors.cell(code).value++
        if (code === RATE_LIMITED) this.#rateLimited.cell(route).value++
      }
    }
    if (isError) totals.errors++
    if (r.retries > 0) {
      this.#retries.cell(backend).value += r.retries
      totals.retries += r.retries
    }

    const slot = history.slot(sec)
    history.requests[slot]!++
    if (isError) history.errors[slot]!++

    const cache = r.cacheStatus
    if (cache !== undefined) {
      this.#cache.cell(route, cache).value++
      if (cache !== 'bypass') {
        totals.cacheLookups++
        history.lookups[slot]!++
        if (servedFromCache(cache)) {
          totals.cacheServed++
          history.served[slot]!++
        }
      }
    }

    // An open tunnel's life is no latency: the histograms take its time to the 101, as a request's to its answer.
    const totalMs = r.tunnelMs === undefined ? r.totalMs : r.totalMs - r.tunnelMs
    const totalUs = toMicros(totalMs)
    const upstreamMs = r.upstreamMs
    if (upstreamMs !== undefined && r.server !== undefined) this.#serverUpstream(backend, r.shard ?? NONE, r.server, upstreamMs)
    const upstreamUs = upstreamMs === undefined ? -1 : toMicros(upstreamMs)
    if (r.route !== undefined) this.#add(this.#routes.get(r.route), r, totalMs, totalUs, upstreamUs, epoch, isError)
    if (r.backend !== undefined) this.#add(this.#backends.get(r.backend), r, totalMs, totalUs, upstreamUs, epoch, isError)
  }

  /** Per server: the dashboard's latency column (mean between two polls). */
  #serverUpstream (backend: string, shard: string, server: string, upstreamMs: number): void {
    this.#serverUpstreamSeconds.cell(backend, shard, server).value += upstreamMs / 1000
    this.#serverUpstreamResponses.cell(backend, shard, server).value++
  }

  /**
   * A background refresh is no client's request: it is left out of the
   * request counts, the dashboard and the cache outcomes, and counted where
   * upstream exchanges are (upstream errors, the server's and the upstream
   * latencies).
   */
  #refresh (r: RequestRecord): void {
    const backend = r.backend ?? NONE
    const code = r.errorCode
    if (code !== undefined && UPSTREAM_CODES.has(code)) this.#upstreamErrors.cell(backend, code).value++
    const upstreamMs = r.upstreamMs
    if (upstreamMs === undefined) return
    if (r.server !== undefined) this.#serverUpstream(backend, r.shard ?? NONE, r.server, upstreamMs)
    const epoch = Math.floor((r.time + (r.totalMs > 0 ? r.totalMs : 0)) / this.#halfWindowMs)
    const us = toMicros(upstreamMs)
    if (r.route !== undefined) this.#routes.get(r.route).upstream.record(us, upstreamMs, epoch)
    if (r.backend !== undefined) this.#backends.get(r.backend).upstream.record(us, upstreamMs, epoch)
  }

  #add (s: SeriesStats, r: RequestRecord, totalMs: number, totalUs: number, upstreamUs: number, epoch: number, isError: boolean): void {
    s.requests++
    if (isError) s.errors++
    s.total.record(totalUs, totalMs, epoch)
    if (upstreamUs >= 0) s.upstream.record(upstreamUs, r.upstreamMs!, epoch)
    if (s.second.count === 0) this.#history.dirty.push(s.second)
    s.second.record(totalUs, isError)
  }

  connectionOpened (listener: string, protocol: 'h1' | 'h2'): void {
    this.#activeConnections.cell(listener, protocol).value++
    this.#connections.cell(listener, protocol).value++
  }

  connectionClosed (listener: string, protocol: 'h1' | 'h2'): void {
    this.#activeConnections.cell(listener, protocol).value--
  }

  streamOpened (listener: string): void {
    this.#activeStreams.cell(listener).value++
    this.#streams.cell(listener).value++
  }

  streamClosed (listener: string): void {
    this.#activeStreams.cell(listener).value--
  }

  /** A proxyProtocol listener closed a connection before HTTP (listener/proxy-accept.ts). */
  proxyRefused (listener: string, why: ProxyRefusal): void {
    this.#proxyRefused.cell(listener, why).value++
  }

  /** A server's health flipped (active or passive checks). */
  healthTransition (backend: string, shard: string, server: string, healthy: boolean): void {
    this.#healthTransitions.cell(backend, shard, server, healthy ? 'up' : 'down').value++
  }

  /** Rate limits on Redis switched to the local limit, or back. */
  rateLimitTransition (to: 'local' | 'redis'): void {
    this.#rateLimitTransitions.cell(to).value++
  }

  /** The whole exposition, Prometheus text format 0.0.4. `now` (ms) places the summary window. */
  prometheus (extra: PrometheusExtra = {}, now: number = Date.now()): string {
    return prometheusText({
      registry: this.#registry,
      routes: this.#routes,
      backends: this.#backends,
      halfWindowMs: this.#halfWindowMs,
      scratch: this.#scratch ??= newHistogram()
    }, extra, now)
  }

  /**
   * Everything prometheus() and snapshot() read, as plain JSON (for a cluster
   * primary: mergeMetrics). Advances the history and the summary windows to
   * `now` first, as snapshot() and prometheus() do. `windows: false` leaves
   * out the summary-window histograms, which only prometheus() reads and
   * which are most of the size and of the time (encoding): for a dashboard
   * poll.
   */
  export (now: number = Date.now(), opts: { readonly windows?: boolean } = {}): MetricsExport {
    const history = this.#history
    const sec = history.advance(Math.max(Math.floor(now / 1000), 0))
    const from = sec - history.size
    const epoch = Math.floor(now / this.#halfWindowMs)
    const windows = opts.windows ?? true
    const series = (map: SeriesMap<SeriesStats>) => Array.from(map, ([name, s]) => s.export(name, epoch, windows, sec, from))
    return {
      version: 1,
      now,
      windows,
      options: { ...this.#options },
      families: this.#registry.export(),
      totals: this.#totals.export(),
      history: history.export(from),
      routes: series(this.#routes),
      backends: series(this.#backends)
    }
  }

  /** JSON for the live dashboard at `now` (epoch ms). */
  snapshot (now: number = Date.now()): MetricsSnapshot {
    const nowSec = this.#history.advance(Math.max(Math.floor(now / 1000), 0))
    return dashboardSnapshot({
      totals: this.#totals,
      history: this.#history,
      routes: this.#routes,
      backends: this.#backends,
      cache: this.#cache,
      requests: this.#requests,
      serverUpstreamSeconds: this.#serverUpstreamSeconds,
      serverUpstreamResponses: this.#serverUpstreamResponses,
      activeConnections: this.#activeConnections,
      activeStreams: this.#activeStreams
    }, now, nowSec)
  }
}
