// What the admin listener serves, built from the running app: status JSON,
// metrics text, the dashboard snapshot, reload, and cache purge / lookup by
// URL (resolved through the same router and key rules as live traffic).
// Read-only except for reload and purge, which go through the app.
import { redisMetrics, redisStatus, type RedisReport, type RedisStatus } from '../redis/report.js'
import type { SharedCache } from '../cache/shared/shared-cache.js'
import type { CacheStats } from '../cache/cache.js'
import type { WorkerInfo } from '../cluster/supervisor.js'
import { cacheKey, keyedTarget, keyPrefix } from '../cache/key.js'
import { VARY_ABSENT } from '../cache/policy.js'
import { originOf } from '../authority.js'
import { normalizePath } from '../proxy/path.js'
import { parseAbsoluteUrl, type ParsedUrl } from '../proxy/request-target.js'
import { describeLimit } from '../ratelimit/limiter.js'
import type { RuntimeState } from '../proxy/pipeline.js'
import type { RefreshExchange } from '../proxy/refresh.js'
import type { Exchange, Session } from '../proxy/session.js'
import type { BackendStatus } from '../upstream/backend.js'
import type { AdminApi, PurgeRequest, PurgeResult } from './admin.js'
import type { ConfigMetricsInput, Metrics, RequestDetail, RequestRecord, ServerMetricsInput } from './metrics.js'
import { randomUUID } from 'node:crypto'
import { standaloneRequestId } from '../tracing/context.js'
import { Errors } from '../errors.js'
import { runtimeSample } from './metrics/runtime.js'
import { changeServer } from './servers.js'

/** The access log's extra fields of a finished exchange (only built when the log is on). */
function requestDetail (s: Exchange): RequestDetail {
  const q = s.url.indexOf('?')
  return {
    query: q < 0 ? '' : s.url.slice(q + 1),
    httpVersion: s.httpVersion,
    userAgent: s.header('user-agent'),
    referer: s.header('referer'),
    // The id the request carries (config requestId); with requestId: false, the client's or one made for this line.
    requestId: s.trace === undefined ? randomUUID() : s.trace.requestId ?? s.header('x-request-id') ?? randomUUID(),
    requestBytes: s.requestBytes,
    tlsVersion: s.conn.tlsVersion,
    sni: s.conn.servername,
    upstream: s.server?.hostHeader,
    compression: s.compressedWith
  }
}

/** A record's `role`: the server's, when one was picked. */
function roleOf (server: { readonly primary: boolean } | undefined): 'primary' | 'replica' | undefined {
  return server === undefined ? undefined : server.primary ? 'primary' : 'replica'
}

/**
 * The per-request record metrics and the access log take, from a finished
 * session or tunnel; `detailed`: with the log's extra fields. One literal of one shape
 * (`detail` always present): a spread here made V8 build every record with
 * slow property stores, a fifth of a cache hit's time with the log on.
 */
export function requestRecord (s: Exchange, detailed = false): RequestRecord {
  return {
    detail: detailed ? requestDetail(s) : undefined,
    time: s.startWall,
    listener: s.listener.name,
    protocol: s.h2 ? 'h2' : 'h1',
    clientAddress: s.conn.clientAddress,
    method: s.method,
    host: s.host,
    path: s.path,
    status: s.status,
    bytes: s.bytesOut,
    route: s.route?.name,
    backend: s.backend?.name,
    shard: s.shard?.name,
    server: s.server?.name,
    role: roleOf(s.server),
    cacheStatus: s.cacheOutcome,
    cacheStored: s.cacheStored,
    errorCode: s.error?.code,
    errorFlag: s.error?.flag,
    errorDetail: s.errorDetail,
    upstreamMs: s.upstreamMs,
    totalMs: performance.now() - s.startTime,
    tunnelMs: s.openedAt === undefined ? undefined : performance.now() - s.openedAt,
    retries: s.attempts > 1 ? s.attempts - 1 : 0,
    traceId: s.trace?.traceId
  }
}

/**
 * The record of a stale-while-revalidate refresh `s` started (proxy/refresh.ts):
 * the request's identity, the refresh's exchange, cache outcome `refresh`
 * (Metrics counts it as the server's upstream exchange only).
 */
export function refreshRecord (s: Session, x: RefreshExchange, detailed = false): RequestRecord {
  return {
    // The refresh sends the request's head (with our validators) and no body.
    detail: detailed ? { ...requestDetail(s), requestBytes: 0, upstream: x.server?.hostHeader, compression: undefined } : undefined,
    time: x.startWall,
    listener: s.listener.name,
    protocol: s.h2 ? 'h2' : 'h1',
    clientAddress: s.conn.clientAddress,
    method: 'GET',
    host: s.host,
    path: s.path,
    status: x.status,
    bytes: x.bytes,
    route: s.route?.name,
    backend: s.backend?.name,
    shard: s.shard?.name,
    server: x.server?.name,
    role: roleOf(x.server),
    cacheStatus: 'refresh',
    errorCode: x.error?.code,
    errorFlag: x.error?.flag,
    errorDetail: undefined,
    upstreamMs: x.upstreamMs,
    totalMs: performance.now() - x.start,
    retries: 0,
    traceId: s.trace?.traceId
  }
}

/**
 * The record of an HTTP/1.1 request node:http's parser refused before any of
 * ours saw it (ConnectionObserver.badRequest): `status` as answered, the
 * parser's `code` as its detail, `requestId` as answered (with `requestId:
 * false`, one made for the line); method, host and path unknown (''), as
 * HAProxy logs a <BADREQ>. The same shape as requestRecord's.
 */
export function badRequestRecord (listener: string, clientAddress: string, tlsVersion: string | undefined, status: number, code: string,
  requestId: string | undefined, detailed: boolean): RequestRecord {
  const kind = status === 431 ? Errors.HEADERS_TOO_LARGE : status === 408 ? Errors.REQUEST_TIMEOUT : Errors.BAD_REQUEST
  return {
    detail: detailed ? { query: '', httpVersion: 'HTTP/1.1', userAgent: undefined, referer: undefined, requestId: requestId ?? standaloneRequestId(),
      requestBytes: undefined, tlsVersion, sni: undefined, upstream: undefined, compression: undefined } : undefined,
    time: Date.now(),
    listener,
    protocol: 'h1',
    clientAddress,
    method: '',
    host: '',
    path: '',
    status,
    bytes: 0,
    route: undefined,
    backend: undefined,
    shard: undefined,
    server: undefined,
    role: undefined,
    cacheStatus: undefined,
    cacheStored: undefined,
    errorCode: kind.code,
    errorFlag: kind.flag,
    errorDetail: code,
    upstreamMs: undefined,
    totalMs: 0,
    tunnelMs: undefined,
    retries: 0,
    traceId: undefined
  }
}

/** One bound listener in `GET /status`. */
export interface ListenerStatus {
  readonly name: string
  /** The bound IP address, without the port. */
  readonly address: string
  readonly port: number
  readonly tls: boolean
}

/** One route in `GET /status`, in the order routes are matched. */
export interface RouteStatus {
  readonly name: string
  /** `*` when the route matches any host. */
  readonly host: string
  readonly pathPrefix: string
  /** Empty: any method. */
  readonly methods: readonly string[]
  /** The listeners whose requests it takes; empty: every listener. */
  readonly listeners: readonly string[]
  readonly backend: string
  /** Whether the route goes through the cache. */
  readonly cache: boolean
  /** The route's rate limit in words (`100 per 1m, burst 20, by header x-api-key, store redis`); absent = none. */
  readonly rateLimit?: string
}

/** One worker in a cluster's `GET /status` (cluster/primary.ts): the supervisor's view and its traffic. */
export interface WorkerStatusEntry extends WorkerInfo {
  /** Requests it finished (since it started). */
  readonly requests: number
  /** Client connections open on it now. */
  readonly connections: number
}

/** The JSON of `GET /status`; the dashboard (admin/dashboard/dashboard.ts) is type-checked against it. */
export interface AdminStatus {
  readonly listeners: readonly ListenerStatus[]
  readonly routes: readonly RouteStatus[]
  readonly backends: readonly BackendStatus[]
  /** Absent when no cache is configured. */
  readonly cache?: CacheStats
  /** Only from a cluster's primary (`workers` > 1), one entry per worker slot; a single process has none. */
  readonly workers?: readonly WorkerStatusEntry[]
  /** With a `redis` block: the connection and the shared cache. */
  readonly redis?: RedisStatus
}

export interface AdminSources {
  state (): RuntimeState
  backends (): readonly BackendStatus[]
  metrics: Metrics
  listeners (): readonly ListenerStatus[]
  reload (): Promise<{ ok: true; needsRestart: readonly string[] } | { ok: false; errors: readonly string[] }>
  ready (): boolean
  /** The Redis link's report, with a `redis` block. */
  redis? (): RedisReport | undefined
  /** The config in use and its reloads (absent: not from a file, e.g. tests). */
  config? (): ConfigMetricsInput | undefined
}

/** The per-server gauges of /metrics (server_up, server_active_requests), from the backends' status. */
export function serverGauges (backends: readonly BackendStatus[]): ServerMetricsInput[] {
  return backends.flatMap((b) => b.shards.flatMap((sh) => sh.servers.map((s) => ({
    backend: b.name, shard: sh.name, server: s.name, healthy: s.healthy, active: s.active,
    state: s.state, checked: s.checked, consecutiveFailures: s.consecutiveFailures, weight: s.weight, role: s.role
  }))))
}

export function adminApi (src: AdminSources): AdminApi {
  return {
    status (): AdminStatus {
      const state = src.state()
      const report = src.redis?.()
      const redis = report === undefined ? undefined : redisStatus([report])
      return {
        listeners: src.listeners(),
        routes: state.router.table.map((r) => ({
          name: r.name,
          host: r.config.match.host ?? '*',
          pathPrefix: r.config.match.pathPrefix,
          methods: r.config.match.methods,
          listeners: r.config.match.listeners,
          backend: r.config.backend,
          cache: r.cache !== undefined,
          ...(r.config.rateLimit === undefined ? {} : { rateLimit: describeLimit(r.config.rateLimit) })
        })),
        backends: src.backends(),
        ...(state.cache === undefined ? {} : { cache: state.cache.stats() }),
        ...(redis === undefined ? {} : { redis })
      }
    },
    metrics () {
      const state = src.state()
      const report = src.redis?.()
      return src.metrics.prometheus({
        runtime: [runtimeSample()],
        config: src.config?.(),
        ...(state.cache === undefined ? {} : { cache: state.cache.stats() }),
        servers: serverGauges(src.backends()),
        ...(report === undefined ? {} : { redis: redisMetrics([report]) })
      })
    },
    snapshot () {
      return src.metrics.snapshot()
    },
    async reload () {
      const r = await src.reload()
      return r.ok ? { ok: true, needsRestart: [...r.needsRestart] } : { ok: false, errors: [...r.errors] }
    },
    async purge (what: PurgeRequest): Promise<PurgeResult> {
      const state = src.state()
      const cache = state.cache
      if (cache === undefined) return { error: 'no cache is configured' }
      const shared = what.localOnly === true ? undefined : cache.shared
      // This instance's memory first, then Redis and (through it) every other instance.
      const withShared = async (purged: number, reach: ((s: SharedCache) => Promise<boolean>)): Promise<PurgeResult> =>
        shared === undefined ? { purged } : { purged, shared: await reach(shared) ? 'purged' : 'unreachable' }
      if (what.path !== undefined) {
        // The path as live traffic has it after normalisation (a prefix keeps its trailing slash).
        const q = what.path.indexOf('?')
        const normal = normalizePath(q < 0 ? what.path : what.path.slice(0, q), state.config.pathNormalization)
        if (normal === undefined) return { error: `not a path requests can have: ${what.path}` }
        const path = q < 0 ? normal : normal + what.path.slice(q)
        const prefix = what.pathPrefix === true
        return withShared(cache.purgePath(path, prefix), async (s) => await s.purgeMatching('path', path, prefix) !== undefined)
      }
      if (what.tag !== undefined) {
        const tag = what.tag
        return withShared(cache.purgeTag(tag), async (s) => await s.purgeMatching('tag', tag) !== undefined)
      }
      const target = what.url ?? what.prefix!
      const u = parseAbsoluteUrl(target, state.config.pathNormalization)
      if (u === undefined) return { error: `not an absolute http(s) URL: ${target}` }
      if (what.prefix !== undefined) {
        const prefix = keyPrefix(u.scheme, originOf(u.scheme, u.authority), u.path + u.search)
        return withShared(cache.purgePrefix(prefix), async (s) => await s.purgeMatching('prefix', prefix) !== undefined)
      }
      const key = urlKey(state, u)
      return withShared(cache.purgeUrl(key), async (s) => await s.remove([key], 'purge') !== undefined)
    },
    setServer (backend, server, change, shard) {
      return changeServer(src.state(), backend, server, change, shard)
    },
    cacheLookup (url: string) {
      const state = src.state()
      const cache = state.cache
      if (cache === undefined) return undefined
      const u = parseAbsoluteUrl(url, state.config.pathNormalization)
      if (u === undefined) return undefined
      const key = urlKey(state, u)
      const variants = cache.store.get(key)
      if (variants.length === 0) return undefined
      const now = Date.now()
      return {
        stored: true,
        key,
        variants: variants.map((e) => ({
          status: e.status,
          // null: the request that filled it did not send the field.
          vary: Object.fromEntries(e.varyNames.map((n, i) => [n, e.varyValues[i] === VARY_ABSENT ? null : e.varyValues[i]])),
          bytes: e.size,
          ageSeconds: Math.floor((now - e.responseTime) / 1000),
          freshnessSeconds: Math.floor(e.freshness / 1000),
          tags: e.tags
        }))
      }
    },
    ready: src.ready
  }
}

/** The primary cache key live traffic would use for a GET of `u` (the matching route's key rules); it holds every variant. */
function urlKey (state: RuntimeState, u: ParsedUrl): string {
  // A URL names no listener: a route bound to one is taken as it would be on its own listener.
  const route = state.router.match({ host: u.authority.host, path: u.path, method: 'GET', listener: undefined, header: () => undefined })
  const keyCfg = route?.cache?.key ?? { query: 'keep' as const, ignoreParams: [], headers: [] }
  return cacheKey(u.scheme, originOf(u.scheme, u.authority), keyedTarget(u.path + u.search, keyCfg))
}
