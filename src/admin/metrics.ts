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
//   types.ts     the shapes: RequestRecord, MetricsOptions, MetricsSnapshot, …
//   registry.ts  counter and gauge families (bounded label sets, `other`), in exposition order
//   latency.ts   HDR histograms and the windowed latency summaries
//   series.ts    per route / per backend: counts, two summaries, the current second
//   history.ts   dashboard totals and the per-second history rings
//   render.ts    Prometheus exposition and dashboard JSON, per scrape / poll
//
// The hot path (`record`) builds no strings and allocates nothing once its
// label sets and histograms exist.
import { servedFromCache } from '../cache/outcome.js'
import { Errors } from '../errors.js'
import { History, Totals } from './metrics/history.js'
import { newHistogram, toMicros, type Histogram } from './metrics/latency.js'
import { CLASSES, classIndex, Registry, type Vec } from './metrics/registry.js'
import { dashboardSnapshot, prometheusText } from './metrics/render.js'
import { SeriesMap, type SeriesStats } from './metrics/series.js'
import type { MetricsOptions, MetricsSnapshot, PrometheusExtra, RequestRecord } from './metrics/types.js'

export { OTHER } from './metrics/registry.js'
export type {
  BackendPoint, CacheMetricsInput, HistoryPoint, MetricsOptions, MetricsSnapshot, PrometheusExtra, RequestRecord, SeriesSnapshot,
  ServerMetricsInput, StatusClass
} from './metrics/types.js'

const UPSTREAM_CODES: ReadonlySet<string> = new Set(Object.values(Errors).filter((k) => k.source === 'upstream').map((k) => k.code))
/** Cache statuses answered without this request's own upstream exchange. */

export class Metrics {
  readonly #halfWindowMs: number
  readonly #registry: Registry

  // Families fed by record()
  readonly #requests: Vec
  readonly #upstreamErrors: Vec
  readonly #requestErrors: Vec
  readonly #retries: Vec
  readonly #cache: Vec
  // Events
  readonly #activeConnections: Vec
  readonly #connections: Vec
  readonly #activeStreams: Vec
  readonly #streams: Vec
  readonly #healthTransitions: Vec
  #internalErrors = 0

  readonly #routes: SeriesMap
  readonly #backends: SeriesMap
  readonly #totals = new Totals()
  readonly #history: History
  /** Reused to merge a summary's two half-window histograms at scrape time. */
  #scratch: Histogram | undefined

  constructor (opts: MetricsOptions = {}) {
    const maxLabelSets = opts.maxLabelSets ?? 1000
    const maxLatencySeries = opts.maxLatencySeries ?? 200
    const window = opts.summaryWindowMs ?? 120_000
    const historySize = opts.historySeconds ?? 300
    if (!(maxLabelSets >= 1) || !(maxLatencySeries >= 1)) throw new RangeError('maxLabelSets and maxLatencySeries must be at least 1')
    if (!(window >= 2)) throw new RangeError('summaryWindowMs must be at least 2')
    if (!Number.isInteger(historySize) || historySize < 1) throw new RangeError('historySeconds must be a positive integer')
    this.#halfWindowMs = window / 2
    this.#routes = new SeriesMap(maxLatencySeries, 0)
    this.#backends = new SeriesMap(maxLatencySeries, historySize)
    this.#history = new History(historySize)

    const r = this.#registry = new Registry(maxLabelSets)
    this.#requests = r.counter('switchyard_requests_total',
      'Finished requests by route, backend, server and status class (code_class="none": no response was sent).', ['route', 'backend', 'server', 'code_class'])
    this.#upstreamErrors = r.counter('switchyard_upstream_errors_total', 'Requests that failed on the upstream side, by backend and error code.', ['backend', 'code'])
    this.#requestErrors = r.counter('switchyard_request_errors_total',
      'Requests that failed for a reason other than the upstream (no route, bad request, client gone, internal), by error code.', ['code'])
    this.#retries = r.counter('switchyard_retries_total', 'Retries to another server after an upstream failure, by backend.', ['backend'])
    this.#cache = r.counter('switchyard_cache_requests_total', 'Requests by route and cache status (hit, miss, stale, collapsed, bypass...).', ['route', 'result'])
    this.#activeConnections = r.gauge('switchyard_active_connections', 'Open client connections by listener and protocol.', ['listener', 'protocol'])
    this.#connections = r.counter('switchyard_connections_total', 'Client connections accepted by listener and protocol.', ['listener', 'protocol'])
    this.#activeStreams = r.gauge('switchyard_active_streams', 'Open HTTP/2 streams by listener.', ['listener'])
    this.#streams = r.counter('switchyard_streams_total', 'HTTP/2 streams opened by listener.', ['listener'])
    this.#healthTransitions = r.counter('switchyard_health_transitions_total',
      'Server health changes by backend, shard, server and new state (to="up"|"down").', ['backend', 'shard', 'server', 'to'])
    r.counterFunc('switchyard_internal_errors_total',
      'Exceptions contained while handling a request (a bug: that request\'s stream or connection was reset, the process kept serving).',
      () => this.#internalErrors)
  }

  /** Something threw while handling a request and was contained (see PipelineHooks.onInternalError). */
  internalError (): void {
    this.#internalErrors++
  }

  /** Once per finished request. */
  record (r: RequestRecord): void {
    const end = r.time + (r.totalMs > 0 ? r.totalMs : 0)
    const history = this.#history
    const totals = this.#totals
    const sec = history.advance(Math.floor(end / 1000))
    const epoch = Math.floor(end / this.#halfWindowMs)
    const route = r.route ?? ''
    const backend = r.backend ?? ''
    const ci = classIndex(r.status)

    totals.requests++
    totals.classes[ci]!++
    this.#requests.cell(route, backend, r.server ?? '', CLASSES[ci]!).value++

    let isError = ci === 5
    const code = r.errorCode
    if (code !== undefined) {
      if (UPSTREAM_CODES.has(code)) {
        this.#upstreamErrors.cell(backend, code).value++
        totals.upstreamErrors++
        isError = true
      } else {
        this.#requestErrors.cell(code).value++
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

    const totalUs = toMicros(r.totalMs)
    const upstreamMs = r.upstreamMs
    const upstreamUs = upstreamMs === undefined ? -1 : toMicros(upstreamMs)
    if (r.route !== undefined) this.#add(this.#routes.get(r.route), r, totalUs, upstreamUs, epoch, isError)
    if (r.backend !== undefined) this.#add(this.#backends.get(r.backend), r, totalUs, upstreamUs, epoch, isError)
  }

  #add (s: SeriesStats, r: RequestRecord, totalUs: number, upstreamUs: number, epoch: number, isError: boolean): void {
    s.requests++
    if (isError) s.errors++
    s.total.record(totalUs, r.totalMs, epoch)
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

  /** A server's health flipped (active or passive checks). */
  healthTransition (backend: string, shard: string, server: string, healthy: boolean): void {
    this.#healthTransitions.cell(backend, shard, server, healthy ? 'up' : 'down').value++
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

  /** JSON for the live dashboard at `now` (epoch ms). */
  snapshot (now: number = Date.now()): MetricsSnapshot {
    const nowSec = this.#history.advance(Math.max(Math.floor(now / 1000), 0))
    return dashboardSnapshot({
      totals: this.#totals,
      history: this.#history,
      routes: this.#routes,
      backends: this.#backends,
      cache: this.#cache,
      activeConnections: this.#activeConnections,
      activeStreams: this.#activeStreams
    }, now, nowSec)
  }
}
