// Everything derived from one config, swapped as a whole on reload: the
// router, the backends with their shards, servers and pools, the trust
// lists, the cache. The proxy, the upgrade path and `explain` all read the
// same RuntimeState built by the same buildState(), so they cannot disagree.
import type { BlockList } from 'node:net'
import type { Logger } from 'pino'
import { HttpCache, type CachePeers } from '../cache/cache.js'
import { sharedCacheFor } from '../cache/shared/shared-cache.js'
import type { RedisLink } from '../redis/link.js'
import type { Config } from '../config/schema.js'
import type { HealthTarget } from '../health/checker.js'
import type { EjectionListener } from '../health/outlier.js'
import type { Router } from '../router/router.js'
import { LocalStore } from '../ratelimit/local.js'
import type { RateLimitStores } from '../ratelimit/store.js'
import { Backend } from '../upstream/backend.js'
import type { DispatcherFactory } from '../upstream/pool.js'
import type { Server } from '../upstream/server.js'
import { compileRoutes, type CompiledRoute } from './routes.js'
import { h1FieldStart } from './h1-head.js'
import { buildTrustList } from './trust.js'
import type { TraceSettings } from '../tracing/context.js'
import { ReadYourWrites } from './read-your-writes.js'

export interface RuntimeState {
  readonly config: Config
  readonly router: Router<CompiledRoute>
  readonly backends: ReadonlyMap<string, Backend>
  readonly trustedProxies: BlockList
  /** The shared response cache, when configured. */
  readonly cache: HttpCache | undefined
  /** Who may send PURGE; undefined = PURGE is proxied like any method. */
  readonly purgeFrom: BlockList | undefined
  /** `1.1 <proxyName>` and `2 <proxyName>`, for Via. */
  readonly viaH1: string
  readonly viaH2: string
  /** Request ids and trace context (tracing/context.ts). */
  readonly trace: TraceSettings
  /** `<request id field>: `, the start of its HTTP/1.1 field line, when the raw head may carry it as is (h1-head.ts); undefined: checked per request. */
  readonly requestIdLine: string | undefined
  /** Signs and reads read-your-writes cookies, when a route uses them. */
  readonly readYourWrites: ReadYourWrites | undefined
}

export interface StateDeps {
  readonly log?: Logger
  /** On reload: the cache whose entries carry over. */
  readonly cache?: HttpCache
  /** On reload: the server kept from the previous state under this identity and pool key. */
  readonly reuse?: (identity: string, poolKey: string) => Server | undefined
  /** How servers' pools are built (default: real undici pools). */
  readonly dispatcher?: DispatcherFactory
  /** How many processes split cache.maxBytes (a cluster's workers); default 1. */
  readonly cacheShare?: number
  /** The other workers' caches, which purges and invalidations reach too. */
  readonly cachePeers?: CachePeers
  /** Told of outlier detection's ejections (a cluster's worker tells the others). */
  readonly onEjection?: EjectionListener
  /** Where rate-limited routes keep their buckets (the app's, kept across reloads); default: a local store of this state's own. */
  readonly rateLimits?: RateLimitStores
  /** The Redis connection (config.redis), for the shared cache. */
  readonly redis?: RedisLink
}

export function buildState (config: Config, deps: StateDeps = {}): RuntimeState {
  const backends = new Map<string, Backend>()
  const backendDeps = {
    ...(deps.log === undefined ? {} : { log: deps.log }),
    ...(deps.reuse === undefined ? {} : { reuse: deps.reuse }),
    ...(deps.dispatcher === undefined ? {} : { dispatcher: deps.dispatcher }),
    ...(deps.onEjection === undefined ? {} : { onEjection: deps.onEjection })
  }
  // The health checker and outlier detection log their own transitions, once each, with the reason.
  for (const [name, cfg] of Object.entries(config.backends)) backends.set(name, new Backend(cfg, backendDeps))
  let cache = deps.cache
  if (cache === undefined && config.cache !== undefined) {
    cache = new HttpCache(config.cache, deps.cacheShare, deps.cachePeers)
    // A carried cache gets its shared level when the reload commits (reload.ts), not while it is planned.
    cache.shared = sharedCacheFor(config.cache, deps.redis, cache, deps.log, undefined)
  }
  return Object.freeze({
    config,
    backends,
    router: compileRoutes(config, backends, rateLimitStores(config, deps.rateLimits)),
    trustedProxies: buildTrustList(config.trustedProxies),
    cache: config.cache === undefined ? undefined : cache,
    purgeFrom: config.cache === undefined || config.cache.purgeFrom.length === 0 ? undefined : buildTrustList(config.cache.purgeFrom),
    viaH1: `1.1 ${config.proxyName}`,
    viaH2: `2 ${config.proxyName}`,
    readYourWrites: config.readYourWrites === undefined
      ? undefined
      : new ReadYourWrites(config.readYourWrites.key, config.readYourWrites.cookie),
    requestIdLine: config.requestId === undefined ? undefined : h1FieldStart(config.requestId.header),
    trace: Object.freeze({
      requestIdHeader: config.requestId?.header,
      propagate: config.tracing.propagate,
      sampleNew: config.tracing.otlp !== undefined
    })
  })
}

/** The stores rate-limited routes use: the given ones, or (explain, tests) a local store made for this state; none without rate limits. */
function rateLimitStores (config: Config, given: RateLimitStores | undefined): RateLimitStores | undefined {
  if (given !== undefined || !config.routes.some((r) => r.rateLimit !== undefined)) return given
  return { local: new LocalStore() }
}

/**
 * A reload rebuilds a server whose pool options changed (a new object, a new
 * pool); it is still the same server at the same URL, so it keeps the health
 * check's verdict instead of starting up again. Called before anyone listens
 * to the new servers' health.
 */
export function carryHealth (old: RuntimeState, next: RuntimeState): void {
  const before = serversByIdentity(old)
  for (const s of allServers(next)) {
    const o = before.get(s.identity)
    if (o === undefined || o === s || o.url !== s.url) continue
    s.lastCheck = o.lastCheck
    if (o.checkUp !== s.checkUp) s.setCheckStatus(o.checkUp, 'kept across a reload')
  }
}

/** Every server that has a health check, with its backend's check and TLS settings. */
export function healthTargets (state: RuntimeState): HealthTarget[] {
  const targets: HealthTarget[] = []
  for (const b of state.backends.values()) {
    const hc = b.config.healthCheck
    if (hc === undefined) continue
    for (const server of b.servers) targets.push({ server, config: hc, protocol: b.config.protocol, ...(b.tls === undefined ? {} : { tls: b.tls }) })
  }
  return targets
}

/** Every server, by Server.identity. */
export function serversByIdentity (state: RuntimeState): Map<string, Server> {
  return new Map(allServers(state).map((s) => [s.identity, s]))
}

/** For a reload (StateDeps.reuse): `old`'s server of that identity, when its pool options are the same. */
export function reuseFrom (old: RuntimeState): (identity: string, poolKey: string) => Server | undefined {
  const before = serversByIdentity(old)
  return (identity, poolKey) => {
    const s = before.get(identity)
    return s !== undefined && s.poolKey === poolKey ? s : undefined
  }
}

/** Every server of every backend. */
export function allServers (state: RuntimeState): Server[] {
  return [...state.backends.values()].flatMap((b) => [...b.servers])
}
