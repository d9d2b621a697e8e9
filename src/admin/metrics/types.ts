// What metrics take in and give out: the per-request record, the options, the
// scrape-time inputs other modules own, the dashboard JSON and the export a
// cluster primary merges. Types only, no
// runtime code; src/admin/metrics.ts re-exports every one of them, and other
// modules import them from there.
import type { OperationResult } from '../../redis/operations.js'
import type { CacheOutcome } from '../../cache/outcome.js'
import type { RuntimeSample } from './runtime.js'

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
  /** How the cache handled it (cache/outcome.ts); absent when the route does not cache. */
  readonly cacheStatus?: CacheOutcome | undefined
  /** Whether its upstream answer ended up stored (known at its end, unlike Cache-Status's `stored`); absent when none was to be. */
  readonly cacheStored?: boolean | undefined
  readonly errorCode?: string | undefined
  readonly errorFlag?: string | undefined
  /** Why it failed, for the log (e.g. the field an upstream repeated); never sent to the client. */
  readonly errorDetail?: string | undefined
  /** Dispatch → response headers, ms. */
  readonly upstreamMs?: number | undefined
  readonly totalMs: number
  /** An open tunnel's life after its 101 (h2: 200), ms, within totalMs; absent for anything else. */
  readonly tunnelMs?: number | undefined
  readonly retries: number
  /** The role of `server` in its shard. */
  readonly role?: 'primary' | 'replica' | undefined
  /** The W3C trace it belongs to (tracing/context.ts); absent when it was refused before planning. */
  readonly traceId?: string | undefined
  /** For the access log only, filled when it is on (requestRecord's `detailed`). */
  readonly detail?: RequestDetail | undefined
}

/** What only the access log reads: taken from the session only when the log is on. */
export interface RequestDetail {
  /** The query string as sent, without `?` ('' when none). */
  readonly query: string
  /** `HTTP/1.1`, `HTTP/1.0` or `HTTP/2.0`. */
  readonly httpVersion: string
  readonly userAgent?: string | undefined
  readonly referer?: string | undefined
  /** The id the request carries (config requestId); with requestId off, its X-Request-Id or one made for this line. */
  readonly requestId: string
  /** Request body bytes: its Content-Length, or the buffered body's size; absent when neither is known. */
  readonly requestBytes?: number | undefined
  readonly tlsVersion?: string | undefined
  readonly sni?: string | undefined
  /** The upstream server's host:port. */
  readonly upstream?: string | undefined
  /** The coding Switchyard compressed this answer with (a route's `compression`); absent when it compressed nothing. */
  readonly compression?: string | undefined
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
  readonly role?: 'primary' | 'replica' | undefined
  /** up, down, no check, ejected… (ServerStatus.state); absent = as `healthy` says. */
  readonly state?: string
  /** Its backend runs active checks (false: no switchyard_server_up, nothing checks it). Default: true. */
  readonly checked?: boolean
  readonly consecutiveFailures?: number
  /** The weight balancers use (the config's, or the admin API's). */
  readonly weight?: number
}

/** What a cluster primary knows of its workers. */
export interface WorkerMetricsInput {
  /** Worker processes alive now. */
  readonly live: number
  /** Workers started again after one exited, since the primary started. */
  readonly restarts: number
}

/** The running configuration and its reloads (admin/config-report.ts). */
export interface ConfigMetricsInput {
  /** SHA-256 of the config file's text, 16 hex digits. */
  readonly hash: string
  readonly reloadsOk: number
  readonly reloadsFailed: number
  readonly lastReloadOk: boolean
  /** When the running config was loaded (start or the last applied reload), epoch ms. */
  readonly lastSuccessMs: number
}

/** State owned by other modules, read at scrape time. */
export interface PrometheusExtra {
  /** Process and Node.js runtime samples, this process's first (a cluster's primary adds its workers'). */
  readonly runtime?: readonly RuntimeSample[] | undefined
  readonly config?: ConfigMetricsInput | undefined
  readonly cache?: CacheMetricsInput | undefined
  readonly servers?: readonly ServerMetricsInput[] | undefined
  /** Only in cluster mode (the primary): `switchyard_workers` and `switchyard_worker_restarts_total`. */
  readonly workers?: WorkerMetricsInput | undefined
  /** With a `redis` block: the connection, its operations and the shared cache. */
  readonly redis?: RedisMetricsInput | undefined
}

/** Redis (src/redis/report.ts makes it from one process's link or a cluster's workers). */
export interface RedisMetricsInput {
  /** 1 when every process is connected. */
  readonly up: number
  readonly transitions: number
  /** By operation, by result (ok, error, timeout, down). */
  readonly operations: Readonly<Record<string, Readonly<Record<OperationResult, number>>>>
  readonly latency: readonly LatencyExport[]
  readonly shared?: SharedCacheMetricsInput
}

/** The shared cache's counters (cache/shared/shared-cache.ts SharedCacheStats). */
export interface SharedCacheMetricsInput {
  /** Local misses answered from Redis. */
  readonly hits: number
  /** Local misses Redis had nothing for. */
  readonly misses: number
  readonly stored: number
  /** Writes refused because a purge came while their fetch ran (it could have named them). */
  readonly superseded: number
  /** Values that did not open (wrong key, tampered): treated as misses and deleted. */
  readonly rejected: number
  /** Lookups that waited for another instance's fetch. */
  readonly collapsed: number
  /** Purge notices from other instances applied here. */
  readonly remotePurges: number
  /** Operations given up because Redis was down or slow. */
  readonly unavailable: number
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
  /** Per server (`backend/shard/server`): responses by status class since start (the dashboard derives rates from two polls). */
  readonly servers: Readonly<Record<string, ServerSnapshot>>
  /** Per route: cache lookups and those served from the cache, since start (absent: no cached request yet). */
  readonly routeCache: Readonly<Record<string, { readonly lookups: number, readonly served: number }>>
  /** Open client connections per listener. */
  readonly listenerConnections: Readonly<Record<string, number>>
}

/** One server's responses since start, by status class (`none`: no response was sent). */
export interface ServerSnapshot {
  readonly requests: number
  readonly classes: Readonly<Record<StatusClass, number>>
  /** Dispatch to response headers, summed, and how many response heads: a mean latency between two snapshots. */
  readonly upstreamSeconds: number
  readonly upstreamResponses: number
}

// Export: one Metrics instance as plain JSON, for a cluster primary to merge
// (Metrics.export → process.send → mergeMetrics). Arrays, strings, numbers
// and null only: no Map, Buffer, class instance, NaN or undefined, so that
// JSON.stringify/parse gives the same value back.

/** A counter or gauge family: each label set (values in label-name order) with its value. */
export interface FamilyExport {
  readonly name: string
  readonly rows: readonly (readonly [labels: readonly string[], value: number])[]
}

/** One latency summary: count and sum since start, and its window (see latency.ts). */
export interface LatencyExport {
  readonly count: number
  readonly sumMs: number
  /** Counts by histogram bucket since start (latency.ts BUCKETS_S, then +Inf), not cumulative. */
  readonly buckets?: readonly number[]
  /** The half-window (floor(ms / halfWindowMs)) `cur` covers; `prev` is the one before. */
  readonly epoch: number
  /** hdr-histogram-js compressed base64 (encodeIntoCompressedBase64) of µs values; null when empty (or left out). */
  readonly cur: string | null
  readonly prev: string | null
  /** Exact maxima of the two half-windows, ms (0 when empty). */
  readonly curMax: number
  readonly prevMax: number
}

/**
 * One second of a route or backend: [second, requests, errors, p50, p99]
 * (latency in ms, as the dashboard shows it; null without requests).
 */
export type SecondExport = readonly [sec: number, count: number, errors: number, p50: number | null, p99: number | null]

/** A route or backend. */
export interface SeriesExport {
  readonly name: string
  readonly requests: number
  readonly errors: number
  readonly total: LatencyExport
  readonly upstream: LatencyExport
  /**
   * Its seconds with requests, oldest first: the completed ones it keeps
   * (backends: the history; routes: the last one) and the second being
   * recorded, counted so far.
   */
  readonly seconds: readonly SecondExport[]
}

/** Since-start totals (history.ts Totals). */
export interface TotalsExport {
  readonly requests: number
  /** Indexed like the code classes (none, 1xx … 5xx, other). */
  readonly classes: readonly number[]
  readonly errors: number
  readonly upstreamErrors: number
  readonly retries: number
  readonly cacheLookups: number
  readonly cacheServed: number
}

/** The whole proxy's per-second history: [second, requests, errors, cache lookups, served from cache]. */
export interface HistoryExport {
  /** The second being recorded (its row holds the requests so far). */
  readonly sec: number
  /** The first second seen. */
  readonly firstSec: number
  readonly seconds: readonly (readonly [sec: number, requests: number, errors: number, lookups: number, served: number])[]
}

/** Everything prometheus() and snapshot() read, at `now`. */
export interface MetricsExport {
  /** Format version; a merge refuses any other. */
  readonly version: 1
  /** When it was taken (epoch ms): the history had advanced to this second, the summary windows to this half-window. */
  readonly now: number
  /** false: taken without the summary-window histograms (a merge can give the dashboard snapshot only). */
  readonly windows: boolean
  readonly options: Required<MetricsOptions>
  /** Counter and gauge families, in exposition order. */
  readonly families: readonly FamilyExport[]
  readonly totals: TotalsExport
  readonly history: HistoryExport
  /** In the order first seen. */
  readonly routes: readonly SeriesExport[]
  readonly backends: readonly SeriesExport[]
  /** A cluster worker's process facts at export time (never merged: the primary renders each process's). */
  readonly runtime?: RuntimeSample
}
