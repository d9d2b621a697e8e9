// The two read sides of the metrics, run per scrape or per dashboard poll and
// never per request: the Prometheus exposition (the registry's families, the
// server and cache state passed in, the latency summaries) and the dashboard
// JSON (totals, per-second history, each route and backend now). They read
// one Metrics, or the merge of several processes' exports (merge.ts): the
// series they take are the few fields both provide.
import { Exposition } from '../prometheus.js'
import { OPERATION_RESULTS } from '../../redis/operations.js'
import type { History, Second, Totals } from './history.js'
import { writeRuntime } from './runtime.js'
import { BUCKETS_S, MergedLatency, type Histogram, type WindowValue } from './latency.js'
import { CLASSES, NONE, type Registry, type Vec } from './registry.js'
import { servedFromCache, type CacheOutcome } from '../../cache/outcome.js'
import type { BackendPoint, HistoryPoint, MetricsSnapshot, PrometheusExtra, SeriesSnapshot, StatusClass } from './types.js'

/** A latency summary as the exposition reads it (Latency, MergedLatency). */
export interface SummarySource {
  readonly count: number
  readonly sumMs: number
  /** Counts by BUCKETS_S bucket since start, not cumulative (absent: no buckets known). */
  readonly buckets?: readonly number[]
  window (epoch: number, scratch: Histogram): WindowValue
}

/** A route or backend as the exposition reads it. */
export interface ExpositionSeries {
  readonly total: SummarySource
  readonly upstream: SummarySource
}

export interface ExpositionSource {
  readonly registry: Registry
  readonly routes: Iterable<readonly [string, ExpositionSeries]>
  readonly backends: Iterable<readonly [string, ExpositionSeries]>
  /** Summary quantiles and `_max` cover the last one to two half-windows. */
  readonly halfWindowMs: number
  /** Reused to merge a summary's two half-window histograms. */
  readonly scratch: Histogram
}

/** The whole exposition, Prometheus text format 0.0.4. `now` (ms) places the summary window. */
export function prometheusText (src: ExpositionSource, extra: PrometheusExtra, now: number): string {
  const x = new Exposition()
  for (const c of src.registry.families) {
    const f = c.type === 'counter' ? x.counter(c.name, c.help, c.labelNames) : x.gauge(c.name, c.help, c.labelNames)
    c.collect((labels, value) => { f.sample(labels, value) })
  }

  writeRuntime(x, extra.runtime ?? [])
  const config = extra.config
  if (config !== undefined) {
    x.gauge('switchyard_config_info', 'Always 1: the hash (SHA-256, 16 hex digits) of the config file in use.', ['hash']).sample([config.hash], 1)
    x.counter('switchyard_config_reloads_total', 'Reloads by result: success (applied) or failure (refused; the running config stays).', ['result'])
      .sample(['success'], config.reloadsOk)
      .sample(['failure'], config.reloadsFailed)
    x.gauge('switchyard_config_last_reload_successful', '1 when the last reload was applied (or none was tried), 0 when it was refused.').sample([], config.lastReloadOk ? 1 : 0)
    x.gauge('switchyard_config_last_reload_success_timestamp_seconds', 'When the running config was loaded (start or the last applied reload).')
      .sample([], config.lastSuccessMs / 1000)
  }

  const workers = extra.workers
  if (workers !== undefined) {
    x.gauge('switchyard_workers', 'Worker processes alive (cluster mode).').sample([], workers.live)
    x.counter('switchyard_worker_restarts_total', 'Worker processes started again after one exited (cluster mode).').sample([], workers.restarts)
  }

  const servers = extra.servers
  if (servers !== undefined) {
    const up = x.gauge('switchyard_server_up',
      '1 when the server is healthy, 0 when not; only for servers with active health checks (see switchyard_server_state).', ['backend', 'shard', 'server'])
    const state = x.gauge('switchyard_server_state',
      'Always 1, labelled with the server\'s state: up, down (active check), no check (nothing checks it), ejected (outlier detection), drain or maint (admin API).',
      ['backend', 'shard', 'server', 'state'])
    const failing = x.gauge('switchyard_server_consecutive_failures', 'Exchanges in a row that failed (5xx or no answer); 0 after a success.', ['backend', 'shard', 'server'])
    const active = x.gauge('switchyard_server_active_requests', 'Requests in flight to the server.', ['backend', 'shard', 'server'])
    const weight = x.gauge('switchyard_server_weight', 'The server\'s weight (the config\'s, or the one the admin API set).', ['backend', 'shard', 'server'])
    const seen = new Set<string>()
    for (const s of servers) {
      const key = JSON.stringify([s.backend, s.shard, s.server])
      if (seen.has(key)) continue
      seen.add(key)
      const labels = [s.backend, s.shard, s.server]
      // A server nothing checks is not "up": it has no verdict to report.
      if (s.checked !== false) up.sample(labels, s.healthy ? 1 : 0)
      state.sample([...labels, s.state ?? (s.healthy ? 'up' : 'down')], 1)
      failing.sample(labels, s.consecutiveFailures ?? 0)
      active.sample(labels, s.active)
      if (s.weight !== undefined) weight.sample(labels, s.weight)
    }
    // Each server's role (consistency routing), as an info metric to join on.
    const info = x.gauge('switchyard_server_info', 'Always 1: the server\'s role in its shard (primary or replica).', ['backend', 'shard', 'server', 'role'])
    seen.clear()
    for (const s of servers) {
      const key = JSON.stringify([s.backend, s.shard, s.server])
      if (seen.has(key) || s.role === undefined) continue
      seen.add(key)
      info.sample([s.backend, s.shard, s.server, s.role], 1)
    }
  }

  // One unlabelled sample per family (the cache's and the shared cache's counters).
  const c = (name: string, help: string, value: number): void => { x.counter(name, help).sample([], value) }
  const g = (name: string, help: string, value: number): void => { x.gauge(name, help).sample([], value) }

  const cache = extra.cache
  if (cache !== undefined) {
    c('switchyard_cache_hits_total', 'Requests answered from a fresh cache entry.', cache.hits)
    c('switchyard_cache_misses_total', 'Cache lookups that found nothing usable.', cache.misses)
    c('switchyard_cache_stale_served_total', 'Requests answered from a stale entry (stale-while-revalidate, stale-if-error, max-stale).', cache.staleServed)
    x.counter('switchyard_cache_revalidations_total', 'Revalidations of stored entries by upstream status (304: refreshed, 200: replaced).', ['status'])
      .sample(['304'], cache.revalidated304)
      .sample(['200'], cache.revalidated200)
    c('switchyard_cache_collapsed_total', 'Requests answered from the response another request was fetching (a wait that ends upstream counts as a miss).', cache.collapsed)
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

  const redis = extra.redis
  if (redis !== undefined) {
    g('switchyard_redis_up', '1 when connected to Redis (every worker, in cluster mode), 0 when not.', redis.up)
    c('switchyard_redis_transitions_total', 'Changes of the Redis connection\'s state (connecting, up, down).', redis.transitions)
    const ops = x.counter('switchyard_redis_operations_total',
      'Redis operations by result: ok, error, timeout (slower than redis.timeout), down (refused at once while disconnected), shed (not sent: Redis timed out less than a second before).', ['operation', 'result'])
    for (const [op, counts] of Object.entries(redis.operations)) {
      for (const result of OPERATION_RESULTS) ops.sample([op, result], counts[result] ?? 0)
    }
    const latency = new MergedLatency()
    for (const l of redis.latency) latency.absorb(l)
    x.histogram('switchyard_redis_operation_duration_seconds', 'Redis operation time, sent to answered, since start.')
      .sample([], histogramValue(latency))
    const shared = redis.shared
    if (shared !== undefined) {
      c('switchyard_cache_shared_hits_total', 'Local misses answered from the shared cache in Redis.', shared.hits)
      c('switchyard_cache_shared_misses_total', 'Local misses the shared cache had nothing for.', shared.misses)
      c('switchyard_cache_shared_stored_total', 'Responses written to the shared cache.', shared.stored)
      c('switchyard_cache_shared_superseded_total', 'Responses not written to the shared cache because a purge came while they were fetched.', shared.superseded)
      c('switchyard_cache_shared_rejected_total', 'Values in Redis that did not open with the configured keys (deleted, never served).', shared.rejected)
      c('switchyard_cache_shared_collapsed_total', 'Misses that waited for another instance\'s fetch of the same response.', shared.collapsed)
      c('switchyard_cache_shared_remote_purges_total', 'Purges and invalidations from other instances applied here.', shared.remotePurges)
      c('switchyard_cache_shared_unavailable_total', 'Shared-cache operations skipped because Redis was down or slow.', shared.unavailable)
    }
  }

  // Histograms (cumulative since start, fixed buckets: they add up across
  // instances); the HDR quantiles stay on /status and the dashboard, and the
  // window's largest value is a gauge beside each.
  const epoch = Math.floor(now / src.halfWindowMs)
  const windowNote = `over the last ${src.halfWindowMs / 1000}-${(2 * src.halfWindowMs) / 1000} s`
  const histogram = (series: Iterable<readonly [string, ExpositionSeries]>, label: string, name: string,
    pick: (s: ExpositionSeries) => SummarySource, help: string): void => {
    const f = x.histogram(name, `${help}, since start.`, [label])
    const base = name.slice(0, -'_seconds'.length)
    const recent = x.gauge(base + '_recent_seconds', `Quantiles of ${name} ${windowNote}, exact to 3 digits (HDR; NaN when empty). Per instance: for a fleet, use histogram_quantile on ${name}_bucket.`, [label, 'quantile'])
    const max = x.gauge(name + '_max', `Largest value of ${name} ${windowNote} (0 when empty).`, [label])
    for (const [key, s] of series) {
      const l = pick(s)
      if (l.count === 0) continue
      f.sample([key], histogramValue(l))
      const w = l.window(epoch, src.scratch)
      for (const [q, v] of w.quantiles) recent.sample([key, String(q)], v)
      max.sample([key], w.max)
    }
  }
  histogram(src.routes, 'route', 'switchyard_request_duration_seconds', (s) => s.total, 'Request duration, start to end, by route')
  histogram(src.routes, 'route', 'switchyard_upstream_duration_seconds', (s) => s.upstream, 'Upstream dispatch to response headers, by route')
  histogram(src.backends, 'backend', 'switchyard_backend_request_duration_seconds', (s) => s.total, 'Request duration, start to end, by backend')
  histogram(src.backends, 'backend', 'switchyard_backend_upstream_duration_seconds', (s) => s.upstream, 'Upstream dispatch to response headers, by backend')
  return x.text()
}

/** Cumulative `le` buckets in seconds, `_sum` in seconds and `_count` of a latency. */
function histogramValue (l: SummarySource): { buckets: [number, number][], sum: number, count: number } {
  const counts = l.buckets ?? []
  let acc = 0
  const buckets = BUCKETS_S.map((le, i): [number, number] => [le, acc += counts[i] ?? 0])
  return { buckets, sum: l.sumMs / 1000, count: l.count }
}

/** A route or backend as the dashboard reads it: totals and its completed seconds. */
export interface DashboardSeries {
  readonly requests: number
  readonly errors: number
  readonly second: Pick<Second, 'ring' | 'lastSec' | 'lastCount' | 'lastErrors' | 'lastP50' | 'lastP99'>
}

export interface DashboardSource {
  readonly totals: Totals
  readonly history: Pick<History, 'size' | 'firstSec' | 'ringSec' | 'requests' | 'errors' | 'lookups' | 'served'>
  readonly routes: Iterable<readonly [string, DashboardSeries]>
  /** Each keeps a ring of `history.size` seconds. */
  readonly backends: Iterable<readonly [string, DashboardSeries]>
  /** Requests by route and cache result. */
  readonly cache: Pick<Vec, 'forEach'>
  /** Requests by route, backend, shard, server and status class. */
  readonly requests: Pick<Vec, 'forEach'>
  /** Per backend, shard, server: upstream seconds and response heads, since start. */
  readonly serverUpstreamSeconds: Pick<Vec, 'forEach'>
  readonly serverUpstreamResponses: Pick<Vec, 'forEach'>
  readonly activeConnections: Pick<Vec, 'sum' | 'forEach'>
  readonly activeStreams: Pick<Vec, 'sum'>
}

const nullIfNaN = (n: number): number | null => (Number.isNaN(n) ? null : n)

/** JSON for the live dashboard at `now` (epoch ms); the history must already have advanced to `nowSec`, the second of `now`. */
export function dashboardSnapshot (src: DashboardSource, now: number, nowSec: number): MetricsSnapshot {
  const h = src.history
  const totals = src.totals
  const size = h.size
  const backends = [...src.backends]

  const history: HistoryPoint[] = []
  for (let sec = Math.max(nowSec - size, h.firstSec ?? nowSec); sec < nowSec; sec++) {
    const i = sec % size
    const valid = h.ringSec[i] === sec
    const lookups = valid ? h.lookups[i]! : 0
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
      rps: valid ? h.requests[i]! : 0,
      errors: valid ? h.errors[i]! : 0,
      hitRatio: lookups > 0 ? h.served[i]! / lookups : null,
      backends: Object.fromEntries(points)
    })
  }

  const table = (series: Iterable<readonly [string, DashboardSeries]>): Record<string, SeriesSnapshot> => {
    const rows: [string, SeriesSnapshot][] = []
    for (const [name, s] of series) {
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
  const routeCache: Record<string, { lookups: number, served: number }> = {}
  src.cache.forEach((labels, cell) => {
    const result = labels[1]!
    outcomes.set(result, (outcomes.get(result) ?? 0) + cell.value)
    if (result === 'bypass') return
    const r = routeCache[labels[0]!] ??= { lookups: 0, served: 0 }
    r.lookups += cell.value
    if (servedFromCache(result as CacheOutcome)) r.served += cell.value
  })
  // Per server, summed over routes: the requests family holds them already (no per-request work for this).
  type Row = { requests: number, classes: Record<StatusClass, number>, upstreamSeconds: number, upstreamResponses: number }
  const servers: Record<string, Row> = {}
  const row = (key: string): Row =>
    servers[key] ??= { requests: 0, classes: Object.fromEntries(CLASSES.map((c) => [c, 0])) as Record<StatusClass, number>, upstreamSeconds: 0, upstreamResponses: 0 }
  src.requests.forEach((labels, cell) => {
    const [, backend, shard, server, codeClass] = labels
    if (server === NONE || server === undefined) return
    const s = row(`${backend!}/${shard!}/${server}`)
    s.requests += cell.value
    s.classes[codeClass as StatusClass] += cell.value
  })
  src.serverUpstreamSeconds.forEach((labels, cell) => { row(labels.join('/')).upstreamSeconds += cell.value })
  src.serverUpstreamResponses.forEach((labels, cell) => { row(labels.join('/')).upstreamResponses += cell.value })
  const listenerConnections: Record<string, number> = {}
  src.activeConnections.forEach((labels, cell) => {
    listenerConnections[labels[0]!] = (listenerConnections[labels[0]!] ?? 0) + cell.value
  })
  const statusClasses = Object.fromEntries(CLASSES.map((c, i) => [c, totals.classes[i]!])) as Record<StatusClass, number>

  return {
    now,
    intervalMs: 1000,
    totals: {
      requests: totals.requests,
      statusClasses,
      errors: totals.errors,
      upstreamErrors: totals.upstreamErrors,
      retries: totals.retries,
      cache: {
        lookups: totals.cacheLookups,
        served: totals.cacheServed,
        hitRatio: totals.cacheLookups > 0 ? totals.cacheServed / totals.cacheLookups : null,
        outcomes: Object.fromEntries(outcomes)
      },
      activeConnections: src.activeConnections.sum(),
      activeStreams: src.activeStreams.sum()
    },
    history,
    routes: table(src.routes),
    backends: table(src.backends),
    servers,
    routeCache,
    listenerConnections
  }
}
