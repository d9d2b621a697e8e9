// Request metrics: counters, gauges and HDR latency histograms, fed once per
// finished request (`record`) and by connection / health events; read as
// Prometheus text (`prometheus`) and as JSON for the live dashboard
// (`snapshot`). One instance per app, created by the composition root and
// injected: no globals, no timers. Time is taken from the records themselves
// (start + total) or passed in, and everything that rolls over with time (the
// summary window, the per-second history) is advanced lazily when it is
// touched, so tests drive it with plain numbers.
//
// The hot path (`record`) builds no strings and allocates nothing once its
// label sets exist: label sets live in nested Maps keyed by each label value.
// Every family holds at most `maxLabelSets` label sets (routes, backends and
// servers come from the config, but codes and cache outcomes are open-ended);
// later ones are counted under `other`.
import * as hdr from 'hdr-histogram-js'
import { Errors } from '../errors.js'
import { Exposition } from './prometheus.js'

/** One finished request, built by the pipeline from its Session. */
export interface RequestRecord {
  /** Date.now() at the start of the request. */
  readonly time: number
  readonly listener: string
  readonly protocol: 'h1' | 'h2'
  readonly clientAddress: string
  readonly method: string
  readonly host: string
  readonly path: string
  /** 0 = no response was sent (the client went away first). */
  readonly status: number
  /** Response body bytes sent. */
  readonly bytes: number
  readonly route?: string | undefined
  readonly backend?: string | undefined
  readonly shard?: string | undefined
  readonly server?: string | undefined
  /** 'hit' | 'miss' | 'stale' | 'bypass' | 'collapsed' … */
  readonly cacheStatus?: string | undefined
  readonly errorCode?: string | undefined
  readonly errorFlag?: string | undefined
  /** Why it failed, for the log (e.g. the field an upstream repeated); never sent to the client. */
  readonly errorDetail?: string | undefined
  /** Dispatch → response headers, ms. */
  readonly upstreamMs?: number | undefined
  readonly totalMs: number
  readonly retries: number
}

export interface MetricsOptions {
  /** Most label sets per family; later ones are counted under `other` (default 1000). */
  readonly maxLabelSets?: number
  /** Most routes and most backends with their own latency histograms (about 70 KB each, 5 per route or backend); later ones share `other` (default 200). */
  readonly maxLatencySeries?: number
  /** Summary quantiles and `_max` cover the last `summaryWindowMs / 2` to `summaryWindowMs` (default 120 000). */
  readonly summaryWindowMs?: number
  /** Seconds of per-second history in snapshots (default 300). */
  readonly historySeconds?: number
}

/** What the cache reports (HttpCache.stats()). */
export interface CacheMetricsInput {
  readonly hits: number
  readonly misses: number
  readonly staleServed: number
  readonly revalidated304: number
  readonly revalidated200: number
  readonly collapsed: number
  readonly stored: number
  readonly notStored: number
  readonly invalidations: number
  readonly purges: number
  readonly entries: number
  readonly keys?: number | undefined
  readonly bytes: number
  readonly maxBytes: number
  readonly evictions: number
}

export interface ServerMetricsInput {
  readonly backend: string
  readonly shard: string
  readonly server: string
  readonly healthy: boolean
  /** Requests in flight to this server. */
  readonly active: number
}

/** State owned by other modules, read at scrape time. */
export interface PrometheusExtra {
  readonly cache?: CacheMetricsInput | undefined
  readonly servers?: readonly ServerMetricsInput[] | undefined
}

export type StatusClass = 'none' | '1xx' | '2xx' | '3xx' | '4xx' | '5xx' | 'other'

/** A route or backend now: its last completed second (ms; null when that second had no requests), and totals. */
export interface SeriesSnapshot {
  /** Requests in the last completed second. */
  readonly rps: number
  /** 5xx responses and upstream errors in the last completed second. */
  readonly errors: number
  readonly p50: number | null
  readonly p99: number | null
  /** Since start. */
  readonly requestsTotal: number
  readonly errorsTotal: number
}

/** One backend in one second of history. */
export interface BackendPoint {
  readonly rps: number
  readonly errors: number
  /** Total latency, ms; null when the second had no requests. */
  readonly p50: number | null
  readonly p99: number | null
}

/** One completed second. */
export interface HistoryPoint {
  /** End of the second, epoch ms. */
  readonly t: number
  /** Requests finished in the second. */
  readonly rps: number
  /** 5xx responses and upstream errors in the second. */
  readonly errors: number
  /** Served from cache / cache lookups in the second; null without lookups. */
  readonly hitRatio: number | null
  /** Every backend seen so far. */
  readonly backends: Readonly<Record<string, BackendPoint>>
}

/** JSON for the live dashboard (see admin/dashboard.ts). */
export interface MetricsSnapshot {
  /** The `now` the snapshot was taken at, epoch ms. */
  readonly now: number
  readonly intervalMs: number
  readonly totals: {
    readonly requests: number
    readonly statusClasses: Readonly<Record<StatusClass, number>>
    /** Requests answered 5xx or failed by an upstream error. */
    readonly errors: number
    readonly upstreamErrors: number
    readonly retries: number
    readonly cache: {
      /** Requests that consulted the cache (every cache status but bypass). */
      readonly lookups: number
      /** Of those, answered without their own upstream request (hit, stale, collapsed). */
      readonly served: number
      readonly hitRatio: number | null
      readonly outcomes: Readonly<Record<string, number>>
    }
    readonly activeConnections: number
    readonly activeStreams: number
  }
  /** Completed seconds, oldest first, at most `historySeconds`; the last one ends at or before `now`. */
  readonly history: readonly HistoryPoint[]
  readonly routes: Readonly<Record<string, SeriesSnapshot>>
  readonly backends: Readonly<Record<string, SeriesSnapshot>>
}

export const OTHER = 'other'
const CLASSES: readonly StatusClass[] = ['none', '1xx', '2xx', '3xx', '4xx', '5xx', OTHER]
const QUANTILES = [0.5, 0.9, 0.99, 0.999] as const
/** Histograms record microseconds, 1 µs … 60 s, 3 significant digits; longer values count as 60 s. */
const HIST_MAX_US = 60_000_000
const UPSTREAM_CODES: ReadonlySet<string> = new Set(Object.values(Errors).filter((k) => k.source === 'upstream').map((k) => k.code))
/** Cache statuses answered without this request's own upstream exchange. */
const CACHE_SERVED: ReadonlySet<string> = new Set(['hit', 'stale', 'collapsed', 'HIT', 'STALE', 'COLLAPSED'])
const CACHE_BYPASS: ReadonlySet<string> = new Set(['bypass', 'BYPASS'])

type Histogram = hdr.Histogram

function newHistogram (): Histogram {
  return hdr.build({
    bitBucketSize: 32, // ~70 KB each; quantiles from the packed layout are ~75× slower (a scrape would block for seconds)
    useWebAssembly: false,
    autoResize: false,
    lowestDiscernibleValue: 1,
    highestTrackableValue: HIST_MAX_US,
    numberOfSignificantValueDigits: 3
  })
}

function toMicros (ms: number): number {
  if (!(ms > 0)) return 0
  const us = Math.round(ms * 1000)
  return us < HIST_MAX_US ? us : HIST_MAX_US
}

function classIndex (status: number): number {
  if (status === 0) return 0
  return status >= 100 && status < 600 ? Math.floor(status / 100) : 6
}

/** A counter or gauge value. */
interface Cell { value: number }

/**
 * The label sets of one family as nested Maps, one level per label: finding a
 * cell builds no key string. Past `limit` label sets, new ones share the cell
 * whose labels are all `other`.
 */
class Vec {
  readonly labelNames: readonly string[]
  readonly #limit: number
  readonly #root = new Map<string, unknown>()
  #size = 0

  constructor (labelNames: readonly string[], limit: number) {
    this.labelNames = labelNames
    this.#limit = limit
  }

  cell (a: string, b = '', c = '', d = ''): Cell {
    const depth = this.labelNames.length
    let map = this.#root
    for (let level = 0; level < depth; level++) {
      const next = map.get(level === 0 ? a : level === 1 ? b : level === 2 ? c : d)
      if (next === undefined) return this.#create(a, b, c, d, false)
      if (level === depth - 1) return next as Cell
      map = next as Map<string, unknown>
    }
    return this.#create(a, b, c, d, false)
  }

  #create (a: string, b: string, c: string, d: string, force: boolean): Cell {
    if (!force && this.#size >= this.#limit) return this.#create(OTHER, OTHER, OTHER, OTHER, true)
    const depth = this.labelNames.length
    let map = this.#root
    for (let level = 0; level < depth; level++) {
      const key = level === 0 ? a : level === 1 ? b : level === 2 ? c : d
      let next = map.get(key)
      if (level === depth - 1) {
        if (next === undefined) {
          next = { value: 0 }
          map.set(key, next)
          this.#size++
        }
        return next as Cell
      }
      if (next === undefined) {
        next = new Map<string, unknown>()
        map.set(key, next)
      }
      map = next as Map<string, unknown>
    }
    throw new Error('a labelled family needs at least one label')
  }

  /** Every label set with its cell; `labels` is reused between calls. */
  forEach (fn: (labels: readonly string[], cell: Cell) => void): void {
    const labels = new Array<string>(this.labelNames.length).fill('')
    const walk = (map: Map<string, unknown>, level: number): void => {
      for (const [key, next] of map) {
        labels[level] = key
        if (level === labels.length - 1) fn(labels, next as Cell)
        else walk(next as Map<string, unknown>, level + 1)
      }
    }
    walk(this.#root, 0)
  }

  sum (): number {
    let s = 0
    this.forEach((_, cell) => { s += cell.value })
    return s
  }
}

/** Windowed quantiles and max of one summary, ready to write. */
interface WindowValue { readonly quantiles: (readonly [number, number])[], readonly max: number }

/**
 * One latency summary: count and sum since start; quantiles and max over a
 * sliding window kept as two histograms (this half-window and the last one)
 * that rotate lazily when a later half-window is seen.
 */
class Latency {
  count = 0
  sumMs = 0
  #cur: Histogram | undefined
  #prev: Histogram | undefined
  /** Exact maxima of the two half-windows, ms (not capped at the histogram's 60 s). */
  #curMax = 0
  #prevMax = 0
  #epoch = -1

  record (us: number, ms: number, epoch: number): void {
    this.count++
    if (ms > 0) this.sumMs += ms
    if (epoch > this.#epoch) this.#rotate(epoch)
    const h = this.#cur ??= newHistogram()
    h.recordValue(us)
    if (ms > this.#curMax) this.#curMax = ms
  }

  #rotate (epoch: number): void {
    const cur = this.#cur
    if (epoch === this.#epoch + 1 && cur !== undefined && cur.totalCount > 0) {
      this.#cur = this.#prev
      this.#prev = cur
      this.#prevMax = this.#curMax
    } else {
      this.#prev?.reset()
      this.#prevMax = 0
    }
    this.#cur?.reset()
    this.#curMax = 0
    this.#epoch = epoch
  }

  /** Quantiles (seconds; NaN with no values in the window) and max (seconds; 0 when empty) at `epoch`. */
  window (epoch: number, scratch: Histogram): WindowValue {
    if (epoch > this.#epoch) this.#rotate(epoch)
    const cur = this.#cur !== undefined && this.#cur.totalCount > 0 ? this.#cur : undefined
    const prev = this.#prev !== undefined && this.#prev.totalCount > 0 ? this.#prev : undefined
    let h: Histogram | undefined = cur ?? prev
    if (cur !== undefined && prev !== undefined) {
      scratch.reset()
      scratch.add(prev)
      scratch.add(cur)
      h = scratch
    }
    const quantiles = QUANTILES.map((q) => [q, h === undefined ? NaN : h.getValueAtPercentile(q * 100) / 1e6] as const)
    return { quantiles, max: Math.max(this.#curMax, this.#prevMax) / 1000 }
  }
}

/** Counts and latency of the second being recorded, and what the last completed one left. */
class Second {
  count = 0
  errors = 0
  #hist: Histogram | undefined
  lastSec = -1
  lastCount = 0
  lastErrors = 0
  lastP50 = NaN
  lastP99 = NaN
  /** Per-second history (backends only), a ring indexed by second % size; a slot is valid when `sec` holds its second. */
  readonly ring: { readonly sec: Float64Array, readonly count: Float64Array, readonly errors: Float64Array, readonly p50: Float64Array, readonly p99: Float64Array } | undefined

  constructor (historySize: number) {
    this.ring = historySize > 0
      ? {
          sec: new Float64Array(historySize).fill(-1),
          count: new Float64Array(historySize),
          errors: new Float64Array(historySize),
          p50: new Float64Array(historySize),
          p99: new Float64Array(historySize)
        }
      : undefined
  }

  record (us: number, isError: boolean): void {
    this.count++
    if (isError) this.errors++
    const h = this.#hist ??= newHistogram()
    h.recordValue(us)
  }

  /** Close second `sec`: keep its rate and quantiles, reset for the next. */
  finish (sec: number): void {
    const h = this.#hist
    this.lastSec = sec
    this.lastCount = this.count
    this.lastErrors = this.errors
    this.lastP50 = h !== undefined && h.totalCount > 0 ? h.getValueAtPercentile(50) / 1000 : NaN
    this.lastP99 = h !== undefined && h.totalCount > 0 ? h.getValueAtPercentile(99) / 1000 : NaN
    h?.reset()
    const ring = this.ring
    if (ring !== undefined) {
      const i = sec % ring.sec.length
      ring.sec[i] = sec
      ring.count[i] = this.lastCount
      ring.errors[i] = this.lastErrors
      ring.p50[i] = this.lastP50
      ring.p99[i] = this.lastP99
    }
    this.count = 0
    this.errors = 0
  }
}

/** Everything kept per route or per backend. */
class SeriesStats {
  requests = 0
  errors = 0
  readonly total = new Latency()
  readonly upstream = new Latency()
  readonly second: Second

  constructor (historySize: number) {
    this.second = new Second(historySize)
  }
}

const nullIfNaN = (n: number): number | null => (Number.isNaN(n) ? null : n)

export class Metrics {
  readonly #maxLatencySeries: number
  readonly #halfWindowMs: number
  readonly #historySize: number

  // Prometheus families fed by record()
  readonly #requests: Vec
  readonly #upstreamErrors: Vec
  readonly #requestErrors: Vec
  readonly #retries: Vec
  readonly #cache: Vec
  // Events
  readonly #healthTransitions: Vec
  readonly #activeConnections: Vec
  readonly #connections: Vec
  readonly #activeStreams: Vec
  readonly #streams: Vec

  readonly #routes = new Map<string, SeriesStats>()
  readonly #backends = new Map<string, SeriesStats>()
  /** Reused to merge a summary's two half-window histograms at scrape time. */
  #scratch: Histogram | undefined

  // Totals
  #total = 0
  readonly #classTotals = new Float64Array(CLASSES.length)
  #errors = 0
  #upstreamErrorTotal = 0
  #retryTotal = 0
  #cacheLookups = 0
  #cacheServed = 0
  #internalErrors = 0

  // Per-second history, a ring indexed by second % size; a slot is valid when ringSec holds its second.
  /** The second being recorded; -1 before the first record or snapshot. */
  #sec = -1
  /** The first second seen: history starts there. */
  #firstSec: number | undefined
  readonly #ringSec: Float64Array
  readonly #ringRequests: Float64Array
  readonly #ringErrors: Float64Array
  readonly #ringLookups: Float64Array
  readonly #ringServed: Float64Array
  /** Per-route/backend seconds that saw requests in the current second. */
  readonly #dirty: Second[] = []

  constructor (opts: MetricsOptions = {}) {
    const maxLabelSets = opts.maxLabelSets ?? 1000
    this.#maxLatencySeries = opts.maxLatencySeries ?? 200
    const window = opts.summaryWindowMs ?? 120_000
    this.#historySize = opts.historySeconds ?? 300
    if (!(maxLabelSets >= 1) || !(this.#maxLatencySeries >= 1)) throw new RangeError('maxLabelSets and maxLatencySeries must be at least 1')
    if (!(window >= 2)) throw new RangeError('summaryWindowMs must be at least 2')
    if (!Number.isInteger(this.#historySize) || this.#historySize < 1) throw new RangeError('historySeconds must be a positive integer')
    this.#halfWindowMs = window / 2

    this.#requests = new Vec(['route', 'backend', 'server', 'code_class'], maxLabelSets)
    this.#upstreamErrors = new Vec(['backend', 'code'], maxLabelSets)
    this.#requestErrors = new Vec(['code'], maxLabelSets)
    this.#retries = new Vec(['backend'], maxLabelSets)
    this.#cache = new Vec(['route', 'result'], maxLabelSets)
    this.#healthTransitions = new Vec(['backend', 'shard', 'server', 'to'], maxLabelSets)
    this.#activeConnections = new Vec(['listener', 'protocol'], maxLabelSets)
    this.#connections = new Vec(['listener', 'protocol'], maxLabelSets)
    this.#activeStreams = new Vec(['listener'], maxLabelSets)
    this.#streams = new Vec(['listener'], maxLabelSets)

    const h = this.#historySize
    this.#ringSec = new Float64Array(h).fill(-1)
    this.#ringRequests = new Float64Array(h)
    this.#ringErrors = new Float64Array(h)
    this.#ringLookups = new Float64Array(h)
    this.#ringServed = new Float64Array(h)
  }

  /** Something threw while handling a request and was contained (see PipelineHooks.onInternalError). */
  internalError (): void {
    this.#internalErrors++
  }

  /** Once per finished request. */
  record (r: RequestRecord): void {
    const end = r.time + (r.totalMs > 0 ? r.totalMs : 0)
    const sec = this.#advance(Math.floor(end / 1000))
    this.#firstSec ??= sec
    const epoch = Math.floor(end / this.#halfWindowMs)
    const route = r.route ?? ''
    const backend = r.backend ?? ''
    const ci = classIndex(r.status)

    this.#total++
    this.#classTotals[ci]!++
    this.#requests.cell(route, backend, r.server ?? '', CLASSES[ci]!).value++

    let isError = ci === 5
    const code = r.errorCode
    if (code !== undefined) {
      if (UPSTREAM_CODES.has(code)) {
        this.#upstreamErrors.cell(backend, code).value++
        this.#upstreamErrorTotal++
        isError = true
      } else {
        this.#requestErrors.cell(code).value++
      }
    }
    if (isError) this.#errors++
    if (r.retries > 0) {
      this.#retries.cell(backend).value += r.retries
      this.#retryTotal += r.retries
    }

    const slot = sec % this.#historySize
    if (this.#ringSec[slot] !== sec) {
      this.#ringSec[slot] = sec
      this.#ringRequests[slot] = 0
      this.#ringErrors[slot] = 0
      this.#ringLookups[slot] = 0
      this.#ringServed[slot] = 0
    }
    this.#ringRequests[slot]!++
    if (isError) this.#ringErrors[slot]!++

    const cache = r.cacheStatus
    if (cache !== undefined) {
      this.#cache.cell(route, cache).value++
      if (!CACHE_BYPASS.has(cache)) {
        this.#cacheLookups++
        this.#ringLookups[slot]!++
        if (CACHE_SERVED.has(cache)) {
          this.#cacheServed++
          this.#ringServed[slot]!++
        }
      }
    }

    const totalUs = toMicros(r.totalMs)
    const upstreamMs = r.upstreamMs
    const upstreamUs = upstreamMs === undefined ? -1 : toMicros(upstreamMs)
    if (r.route !== undefined) this.#add(this.#series(this.#routes, r.route, 0), r, totalUs, upstreamUs, epoch, isError)
    if (r.backend !== undefined) this.#add(this.#series(this.#backends, r.backend, this.#historySize), r, totalUs, upstreamUs, epoch, isError)
  }

  #series (map: Map<string, SeriesStats>, name: string, historySize: number): SeriesStats {
    let s = map.get(name)
    if (s !== undefined) return s
    if (map.size >= this.#maxLatencySeries) {
      name = OTHER
      s = map.get(name)
      if (s !== undefined) return s
    }
    s = new SeriesStats(historySize)
    map.set(name, s)
    return s
  }

  #add (s: SeriesStats, r: RequestRecord, totalUs: number, upstreamUs: number, epoch: number, isError: boolean): void {
    s.requests++
    if (isError) s.errors++
    s.total.record(totalUs, r.totalMs, epoch)
    if (upstreamUs >= 0) s.upstream.record(upstreamUs, r.upstreamMs!, epoch)
    if (s.second.count === 0) this.#dirty.push(s.second)
    s.second.record(totalUs, isError)
  }

  /** Move the per-second history to `sec` (never back); returns the second now being recorded. */
  #advance (sec: number): number {
    const cur = this.#sec
    if (sec <= cur) return cur
    if (cur >= 0) {
      const dirty = this.#dirty
      for (let i = 0; i < dirty.length; i++) dirty[i]!.finish(cur)
      dirty.length = 0
    }
    this.#sec = sec
    return sec
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
    const x = new Exposition()
    const counter = (v: Vec, name: string, help: string): void => {
      const f = x.counter(name, help, v.labelNames)
      v.forEach((labels, cell) => { f.sample(labels, cell.value) })
    }
    const gauge = (v: Vec, name: string, help: string): void => {
      const f = x.gauge(name, help, v.labelNames)
      v.forEach((labels, cell) => { f.sample(labels, cell.value) })
    }

    counter(this.#requests, 'switchyard_requests_total',
      'Finished requests by route, backend, server and status class (code_class="none": no response was sent).')
    counter(this.#upstreamErrors, 'switchyard_upstream_errors_total', 'Requests that failed on the upstream side, by backend and error code.')
    counter(this.#requestErrors, 'switchyard_request_errors_total',
      'Requests that failed for a reason other than the upstream (no route, bad request, client gone, internal), by error code.')
    counter(this.#retries, 'switchyard_retries_total', 'Retries to another server after an upstream failure, by backend.')
    counter(this.#cache, 'switchyard_cache_requests_total', 'Requests by route and cache status (hit, miss, stale, collapsed, bypass...).')
    gauge(this.#activeConnections, 'switchyard_active_connections', 'Open client connections by listener and protocol.')
    counter(this.#connections, 'switchyard_connections_total', 'Client connections accepted by listener and protocol.')
    gauge(this.#activeStreams, 'switchyard_active_streams', 'Open HTTP/2 streams by listener.')
    counter(this.#streams, 'switchyard_streams_total', 'HTTP/2 streams opened by listener.')
    counter(this.#healthTransitions, 'switchyard_health_transitions_total', 'Server health changes by backend, shard, server and new state (to="up"|"down").')
    x.counter('switchyard_internal_errors_total',
      'Exceptions contained while handling a request (a bug: that request\'s stream or connection was reset, the process kept serving).')
      .sample([], this.#internalErrors)

    const servers = extra.servers
    if (servers !== undefined) {
      const up = x.gauge('switchyard_server_up', '1 when the server is healthy, 0 when not.', ['backend', 'shard', 'server'])
      const active = x.gauge('switchyard_server_active_requests', 'Requests in flight to the server.', ['backend', 'shard', 'server'])
      const seen = new Set<string>()
      for (const s of servers) {
        const key = JSON.stringify([s.backend, s.shard, s.server])
        if (seen.has(key)) continue
        seen.add(key)
        const labels = [s.backend, s.shard, s.server]
        up.sample(labels, s.healthy ? 1 : 0)
        active.sample(labels, s.active)
      }
    }

    const cache = extra.cache
    if (cache !== undefined) {
      const c = (name: string, help: string, value: number): void => { x.counter(name, help).sample([], value) }
      const g = (name: string, help: string, value: number): void => { x.gauge(name, help).sample([], value) }
      c('switchyard_cache_hits_total', 'Requests answered from a fresh cache entry.', cache.hits)
      c('switchyard_cache_misses_total', 'Cache lookups that found nothing usable.', cache.misses)
      c('switchyard_cache_stale_served_total', 'Requests answered from a stale entry (stale-while-revalidate, stale-if-error, max-stale).', cache.staleServed)
      x.counter('switchyard_cache_revalidations_total', 'Revalidations of stored entries by upstream status (304: refreshed, 200: replaced).', ['status'])
        .sample(['304'], cache.revalidated304)
        .sample(['200'], cache.revalidated200)
      c('switchyard_cache_collapsed_total', 'Requests that waited for another request\'s fetch instead of going upstream.', cache.collapsed)
      c('switchyard_cache_stored_total', 'Responses stored.', cache.stored)
      c('switchyard_cache_not_stored_total', 'Responses that could have been stored but were not.', cache.notStored)
      c('switchyard_cache_invalidations_total', 'Entries invalidated by unsafe requests.', cache.invalidations)
      c('switchyard_cache_purges_total', 'Purge operations.', cache.purges)
      c('switchyard_cache_evictions_total', 'Entries evicted to stay within the size limits.', cache.evictions)
      g('switchyard_cache_entries', 'Stored variants.', cache.entries)
      if (cache.keys !== undefined) g('switchyard_cache_keys', 'Cache keys with at least one stored variant.', cache.keys)
      g('switchyard_cache_bytes', 'Bytes stored.', cache.bytes)
      g('switchyard_cache_max_bytes', 'Configured byte limit of the cache.', cache.maxBytes)
    }

    const epoch = Math.floor(now / this.#halfWindowMs)
    const scratch = this.#scratch ??= newHistogram()
    const windowNote = `quantiles and _max over the last ${this.#halfWindowMs / 1000}-${(2 * this.#halfWindowMs) / 1000} s`
    const summary = (map: Map<string, SeriesStats>, label: string, name: string, pick: (s: SeriesStats) => Latency, help: string): void => {
      const f = x.summary(name, `${help}; ${windowNote}; _sum and _count since start.`, [label])
      const max = x.gauge(name + '_max', `Largest value of ${name} in the summary window (0 when empty).`, [label])
      for (const [key, s] of map) {
        const l = pick(s)
        if (l.count === 0) continue
        const w = l.window(epoch, scratch)
        f.sample([key], { quantiles: w.quantiles, sum: l.sumMs / 1000, count: l.count })
        max.sample([key], w.max)
      }
    }
    summary(this.#routes, 'route', 'switchyard_request_duration_seconds', (s) => s.total, 'Request duration, start to end, by route')
    summary(this.#routes, 'route', 'switchyard_upstream_duration_seconds', (s) => s.upstream, 'Upstream dispatch to response headers, by route')
    summary(this.#backends, 'backend', 'switchyard_backend_request_duration_seconds', (s) => s.total, 'Request duration, start to end, by backend')
    summary(this.#backends, 'backend', 'switchyard_backend_upstream_duration_seconds', (s) => s.upstream, 'Upstream dispatch to response headers, by backend')
    return x.text()
  }

  /** JSON for the live dashboard at `now` (epoch ms). */
  snapshot (now: number = Date.now()): MetricsSnapshot {
    const nowSec = this.#advance(Math.max(Math.floor(now / 1000), 0))
    this.#firstSec ??= nowSec
    const size = this.#historySize
    const backends = [...this.#backends]

    const history: HistoryPoint[] = []
    for (let sec = Math.max(nowSec - size, this.#firstSec); sec < nowSec; sec++) {
      const i = sec % size
      const valid = this.#ringSec[i] === sec
      const lookups = valid ? this.#ringLookups[i]! : 0
      const points: [string, BackendPoint][] = []
      for (const [name, s] of backends) {
        const ring = s.second.ring!
        const ok = ring.sec[i] === sec
        points.push([name, {
          rps: ok ? ring.count[i]! : 0,
          errors: ok ? ring.errors[i]! : 0,
          p50: ok ? nullIfNaN(ring.p50[i]!) : null,
          p99: ok ? nullIfNaN(ring.p99[i]!) : null
        }])
      }
      history.push({
        t: (sec + 1) * 1000,
        rps: valid ? this.#ringRequests[i]! : 0,
        errors: valid ? this.#ringErrors[i]! : 0,
        hitRatio: lookups > 0 ? this.#ringServed[i]! / lookups : null,
        backends: Object.fromEntries(points)
      })
    }

    const table = (map: Map<string, SeriesStats>): Record<string, SeriesSnapshot> => {
      const rows: [string, SeriesSnapshot][] = []
      for (const [name, s] of map) {
        const last = s.second.lastSec === nowSec - 1
        rows.push([name, {
          rps: last ? s.second.lastCount : 0,
          errors: last ? s.second.lastErrors : 0,
          p50: last ? nullIfNaN(s.second.lastP50) : null,
          p99: last ? nullIfNaN(s.second.lastP99) : null,
          requestsTotal: s.requests,
          errorsTotal: s.errors
        }])
      }
      return Object.fromEntries(rows)
    }

    const outcomes = new Map<string, number>()
    this.#cache.forEach((labels, cell) => {
      const result = labels[1]!
      outcomes.set(result, (outcomes.get(result) ?? 0) + cell.value)
    })
    const statusClasses = Object.fromEntries(CLASSES.map((c, i) => [c, this.#classTotals[i]!])) as Record<StatusClass, number>

    return {
      now,
      intervalMs: 1000,
      totals: {
        requests: this.#total,
        statusClasses,
        errors: this.#errors,
        upstreamErrors: this.#upstreamErrorTotal,
        retries: this.#retryTotal,
        cache: {
          lookups: this.#cacheLookups,
          served: this.#cacheServed,
          hitRatio: this.#cacheLookups > 0 ? this.#cacheServed / this.#cacheLookups : null,
          outcomes: Object.fromEntries(outcomes)
        },
        activeConnections: this.#activeConnections.sum(),
        activeStreams: this.#activeStreams.sum()
      },
      history,
      routes: table(this.#routes),
      backends: table(this.#backends)
    }
  }
}
