// Composition root: builds every runtime object from a Config and wires them
// together explicitly (no globals), starts and stops them, and runs reloads
// (planned, rolled back or committed in reload.ts). Nothing imports this file
// but main.ts, a cluster's worker and primary (cluster/), and tests.
import { requestSpan, SpanExporter } from './tracing/otlp.js'
import type { Logger } from 'pino'
import type { CachePeers, CacheStats } from './cache/cache.js'
import type { Config, ListenerConfig, OtlpConfig, RedisConfig } from './config/schema.js'
import { startHealthChecks, type HealthChecks } from './health/checker.js'
import type { EjectionListener } from './health/outlier.js'
import { startListener, type ConnectionObserver, type ListenerHandle, type ListenerOptions } from './listener/listener.js'
import { clientAddressOf } from './listener/proxy-accept.js'
import { Pipeline, type PipelineHooks } from './proxy/pipeline.js'
import { allServers, buildState, healthTargets, type RuntimeState } from './proxy/state.js'
import type { BackendStatus } from './upstream/backend.js'
import { commitReload, needsRestart, planReload, type LiveListener } from './reload.js'
import type { AddressInfo } from 'node:net'
import { startAdmin, type AdminApi, type AdminHandle } from './admin/admin.js'
import { adminApi, badRequestRecord, refreshRecord, requestRecord } from './admin/api.js'
import { Metrics } from './admin/metrics.js'
import { watchEventLoop } from './admin/metrics/runtime.js'
import type { ConfigReport } from './admin/config-report.js'
import { createAccessLog, type AccessLog } from './proxy/access-log.js'
import type { Exchange, Session } from './proxy/session.js'
import type { RefreshExchange } from './proxy/refresh.js'
import type { RateLimitStores } from './ratelimit/store.js'
import { CertificateError } from './certs.js'
import { DashboardError } from './admin/dashboard.js'
import { bindErrorReason } from './config/binds.js'
import { configOrigin } from './config/load.js'
import { ProcessStores } from './ratelimit/stores.js'
import { RedisLink } from './redis/link.js'
import type { RedisReport } from './redis/report.js'
import { isDeepStrictEqual } from 'node:util'

export interface AppDeps {
  readonly log?: Logger
  /** Where request records, connections and health transitions are counted (default: a new registry). */
  readonly metrics?: Metrics
  readonly hooks?: PipelineHooks
  /** The config file in use and its reloads, for /metrics (whoever reloads from the file keeps it). */
  readonly config?: ConfigReport
  /** Re-read the config source (the file) and reload it; what admin POST /reload calls. */
  readonly reloadSource?: () => Promise<ReloadResult>
  /**
   * A cluster worker's app: no admin listener and no active health checks
   * (the primary runs both and tells the workers), and its share of
   * cache.maxBytes. Default: a whole single process.
   */
  readonly worker?: { readonly cacheShare: number; readonly cachePeers?: CachePeers; readonly onEjection?: EjectionListener }
}

export type ReloadResult =
  | {
    readonly ok: true; readonly kept: number; readonly added: number; readonly removed: number
    /** What this reload left as it was, e.g. `admin.bind needs a restart` (empty: everything applied). */
    readonly needsRestart: readonly string[]
  }
  | { readonly ok: false; readonly errors: readonly string[] }

export interface App {
  readonly pipeline: Pipeline
  readonly listeners: readonly ListenerHandle[]
  readonly state: RuntimeState
  start (): Promise<void>
  /** Graceful: stop accepting, let in-flight requests finish up to `graceMs`, then close everything. */
  stop (graceMs?: number): Promise<void>
  /** Swap in a new (already validated) config without dropping a request. */
  reload (config: Config): Promise<ReloadResult>
  /** Per backend → shard → server state, for status pages and tests. */
  status (): readonly BackendStatus[]
  /** Cache counters and size, when a cache is configured. */
  cacheStats (): CacheStats | undefined
  /** The Redis link and the shared cache, with a `redis` block. */
  redisReport (): RedisReport | undefined
  readonly metrics: Metrics
  /** The admin listener's address, once started (and when enabled). */
  adminAddress (): AddressInfo | undefined
  /** What the admin listener serves (a cluster worker answers its primary with it). */
  readonly api: AdminApi
  /** SIGUSR1: open the access log file again (logrotate moved it). */
  reopenLogs (): void
}


/**
 * Listeners or the admin API could not start. The message has one line per
 * failure, each naming the listener (or admin), where it is in the config and
 * why, e.g. `config.yaml:12:11 listeners[1] (http) 127.0.0.1:8280: address
 * already in use (EADDRINUSE)`: for the command line to print as it is.
 */
export class StartupError extends Error {
  override readonly name = 'StartupError'
  readonly failures: readonly string[]

  constructor (failures: readonly string[]) {
    super(failures.join('\n'))
    this.failures = failures
  }
}

/**
 * The line for a listener (`part` = its index) or the admin API that failed to
 * start with `err`; undefined when `err` is neither a socket error nor a
 * certificate problem (a bug, to be shown with its stack).
 */
export function startFailure (config: Config, part: number | 'admin', err: unknown): string | undefined {
  const bind = part === 'admin' ? config.admin : config.listeners[part]
  if (bind === undefined) return undefined
  let reason: string
  if (err instanceof CertificateError || err instanceof DashboardError) reason = err.message
  else if (isSocketError(err)) reason = bindErrorReason(err, bind.host, bind.port)
  else return undefined
  const origin = configOrigin(config, part)
  const where = origin === undefined ? '' : origin.line > 0 ? `${origin.file}:${origin.line}:${origin.column} ` : `${origin.file} `
  const subject = part === 'admin'
    ? `admin ${bind.bind}${origin !== undefined && origin.line === 0 ? ' (the default admin.bind)' : ''}`
    : `${origin?.path ?? `listeners[${part}]`} (${(bind as ListenerConfig).name}) ${bind.bind}`
  return `${where}${subject}: ${reason}`
}

/** A system error from listen/bind/getaddrinfo (the admin listener wraps it as `cause`). */
function isSocketError (err: unknown): boolean {
  for (let e = err, depth = 0; e instanceof Error && depth < 4; e = e.cause, depth++) {
    if (typeof (e as NodeJS.ErrnoException).code === 'string' && typeof (e as NodeJS.ErrnoException).syscall === 'string') return true
  }
  return false
}


/** A reload keeps the Redis connection when nothing about it changed. */
function sameRedis (a: RedisConfig | undefined, b: RedisConfig | undefined): boolean {
  return a !== undefined && b !== undefined && isDeepStrictEqual(a, b)
}

export function createApp (initial: Config, deps: AppDeps = {}): App {
  const log = deps.log
  const metrics = deps.metrics ?? new Metrics()
  watchEventLoop()
  // Dropped lines are counted; said in the log once a minute while it goes on.
  let lastDropWarning = 0
  const onDrop = (): void => {
    metrics.accessLogDropped()
    const now = Date.now()
    if (log === undefined || now - lastDropWarning < 60_000) return
    lastDropWarning = now
    log.warn('access log lines dropped: its destination takes none (switchyard_access_log_dropped_total)')
  }
  const openAccessLog = (c: Config): AccessLog | undefined => createAccessLog(c.accessLog,
    log === undefined ? { onDrop } : { onError: (err: Error) => log.error({ err }, 'access log write failed'), onDrop })
  // Replaced by a reload that changes the accessLog block.
  let accessLog: AccessLog | undefined = openAccessLog(initial)
  const userEnd = deps.hooks?.onSessionEnd
  let spans = spanExporter(initial.tracing.otlp)
  // One record per finished request or tunnel feeds metrics, the access log and, when sampled, the span export.
  const onExchangeEnd = (x: Exchange): void => {
    const r = requestRecord(x, accessLog !== undefined)
    metrics.record(r)
    accessLog?.write(r)
    if (spans !== undefined && x.trace?.sampled === true) spans.push(requestSpan(r, x.trace))
  }
  const onSessionEnd = (s: Session): void => {
    onExchangeEnd(s)
    userEnd?.(s)
  }
  // A background refresh: the server's exchange, in metrics and the access log (never a span: no client waited).
  const onRefreshEnd = (s: Session, x: RefreshExchange): void => {
    const r = refreshRecord(s, x, accessLog !== undefined)
    metrics.record(r)
    accessLog?.write(r)
  }
  function spanExporter (cfg: OtlpConfig | undefined): SpanExporter | undefined {
    if (cfg === undefined) return undefined
    let lastWarn = 0
    return new SpanExporter(cfg, (err) => {
      // A collector that is down fails every interval: say so once a minute.
      const now = Date.now()
      if (now - lastWarn < 60_000) return
      lastWarn = now
      log?.warn({ err: err.message, endpoint: cfg.endpoint }, 'span export failed; spans are dropped until the collector answers')
    })
  }
  const observeHealth = (state: RuntimeState): void => {
    for (const s of allServers(state)) {
      s.onHealthChange = (server, healthy) => metrics.healthTransition(server.backend, server.shard, server.name, healthy)
    }
  }
  const onInternalError = (err: unknown, s: Session | undefined): void => {
    metrics.internalError()
    log?.error({ err, method: s?.method, host: s?.host, path: s?.path, route: s?.route?.name }, 'internal error handling a request (contained)')
    deps.hooks?.onInternalError?.(err, s)
  }
  const cacheShare = deps.worker?.cacheShare
  const cachePeers = deps.worker?.cachePeers
  const onEjection = deps.worker?.onEjection
  const shared = {
    ...(cacheShare === undefined ? {} : { cacheShare }), ...(cachePeers === undefined ? {} : { cachePeers }), ...(onEjection === undefined ? {} : { onEjection })
  }
  // One connection to Redis for the life of the app; a reload that changes `redis` makes a new one.
  let redis: RedisLink | undefined = initial.redis === undefined ? undefined : new RedisLink(initial.redis, log)
  const withRedis = (r: RedisLink | undefined): { redis?: RedisLink } => r === undefined ? {} : { redis: r }
  // Rate-limit buckets outlive reloads, as the cache does; those kept in Redis go through its link.
  const limits = new ProcessStores({ ...(log === undefined ? {} : { log }), onTransition: (to) => metrics.rateLimitTransition(to) })
  const limitsFor = (c: Config, r: RedisLink | undefined): { rateLimits?: RateLimitStores } => {
    const stores = limits.for(c, r)
    return stores === undefined ? {} : { rateLimits: stores }
  }
  const pipeline = new Pipeline(buildState(initial, {
    ...(log === undefined ? {} : { log }), ...shared, ...withRedis(redis), ...limitsFor(initial, redis)
  }),
    { onSessionEnd, onTunnelEnd: onExchangeEnd, onInternalError, onRefreshEnd })
  observeHealth(pipeline.state)
  let admin: AdminHandle | undefined
  let ready = false
  let stopping: Promise<void> | undefined
  const listeners: ListenerHandle[] = []
  /** The running listeners with the config each was started from (what a reload compares against). */
  let live: LiveListener[] = []
  let health: HealthChecks | undefined
  let reloading: Promise<unknown> = Promise.resolve()

  // Connections and streams to the metrics; requests node:http's parser refused to the metrics and the access log too.
  const observer: ConnectionObserver = {
    connectionOpened: (listener, protocol) => { metrics.connectionOpened(listener, protocol) },
    connectionClosed: (listener, protocol) => { metrics.connectionClosed(listener, protocol) },
    streamOpened: (listener) => { metrics.streamOpened(listener) },
    streamClosed: (listener) => { metrics.streamClosed(listener) },
    proxyRefused: (listener, why) => { metrics.proxyRefused(listener, why) },
    badRequest: (listener, socket, status, code, requestId) => {
      const client = clientAddressOf(socket)
      const tlsVersion = (socket as { getProtocol?: () => string | null }).getProtocol?.() ?? undefined
      const r = badRequestRecord(listener, client, tlsVersion, status, code, requestId, accessLog !== undefined)
      metrics.record(r)
      accessLog?.write(r)
    }
  }
  const listenerOptions = (c: Config): ListenerOptions => ({ limits: c.limits, timeouts: c.timeouts, observer })
  const startHealth = (state: RuntimeState): void => {
    if (deps.worker !== undefined) return
    const targets = healthTargets(state)
    health = targets.length > 0 ? startHealthChecks(targets, log === undefined ? {} : { log }) : undefined
  }

  async function reloadNow (next: Config): Promise<ReloadResult> {
    const old = pipeline.state
    const nextRedis = sameRedis(redis?.config, next.redis) ? redis : next.redis === undefined ? undefined : new RedisLink(next.redis, log)
    // A new destination is opened before anything changes: a path that cannot be opened rejects the reload.
    let nextLog = accessLog
    if (!isDeepStrictEqual(old.config.accessLog, next.accessLog)) {
      try {
        nextLog = openAccessLog(next)
      } catch (err) {
        return { ok: false, errors: [`accessLog.path: cannot open ${next.accessLog.path ?? 'stdout'}: ${(err as Error).message}`] }
      }
    }
    const plan = await planReload(old, live, next, {
      ...(log === undefined ? {} : { log }),
      listenerOptions: listenerOptions(next),
      startListener: (cfg, socket) => startListener(cfg, pipeline, listenerOptions(next), socket),
      failure: (config, i, err) => startFailure(config, i, err) ?? (err as Error).message,
      ...shared,
      ...withRedis(nextRedis),
      ...limitsFor(next, nextRedis)
    })
    if ('errors' in plan) {
      if (nextRedis !== redis) void nextRedis?.close()
      if (nextLog !== accessLog) void nextLog?.close()
      return { ok: false, errors: plan.errors }
    }
    if (nextLog !== accessLog) {
      void accessLog?.close()
      accessLog = nextLog
    }
    if (nextRedis !== redis) {
      void redis?.close()
      redis = nextRedis
    }
    observeHealth(plan.state)
    // A cluster's primary owns the process-level settings and names them itself.
    const notApplied = [...(deps.worker === undefined ? needsRestart(old.config, next) : []), ...commitReload(plan, old, pipeline)]
    live = [...plan.keptListeners, ...plan.startedListeners]
    listeners.length = 0
    listeners.push(...live.map((l) => l.handle))
    await health?.stop()
    startHealth(plan.state)
    // A changed collector gets a new exporter; the old one sends what it holds.
    if (!isDeepStrictEqual(spans?.config, plan.state.config.tracing.otlp)) {
      const old = spans
      spans = spanExporter(plan.state.config.tracing.otlp)
      void old?.close()
    }
    const result = {
      ok: true as const, kept: plan.kept.size, added: allServers(plan.state).length - plan.kept.size, removed: plan.removed.length, needsRestart: notApplied
    }
    // A cluster's primary says it once for every worker.
    const level = deps.worker === undefined ? 'info' : 'debug'
    log?.[level]({ kept: result.kept, added: result.added, removed: result.removed }, 'configuration reloaded')
    if (notApplied.length > 0 && deps.worker === undefined) log?.warn({ needsRestart: notApplied }, `configuration reloaded, but not all of it: ${notApplied.join('; ')}`)
    return result
  }

  async function stopNow (graceMs: number): Promise<void> {
    pipeline.draining = true
    await Promise.all(listeners.map((l) => l.close(graceMs)))
    await health?.stop()
    await admin?.close()
    await Promise.all([...pipeline.state.backends.values()].map((b) => b.close()))
    pipeline.state.cache?.shared?.close()
    await redis?.close()
    await spans?.close()
    await accessLog?.close()
  }

  function redisReport (): RedisReport | undefined {
    if (redis === undefined) return undefined
    const shared = pipeline.state.cache?.shared?.stats()
    return { ...redis.stats(), ...(shared === undefined ? {} : { shared }) }
  }

  const api = adminApi({
    redis: redisReport,
    state: () => pipeline.state,
    backends: () => [...pipeline.state.backends.values()].map((b) => b.snapshot()),
    metrics,
    listeners: () => listeners.map((l) => ({ name: l.name, address: l.address().address, port: l.address().port, tls: l.tls !== undefined })),
    reload: () => deps.reloadSource?.() ?? Promise.resolve({ ok: false, errors: ['this instance has no config file to reload'] }),
    config: () => deps.config?.metrics(),
    ready: () => ready && !pipeline.draining
  })

  return {
    pipeline,
    listeners,
    api,
    get state () { return pipeline.state },
    async start () {
      // Every listener and the admin API are tried, so that one start reports
      // every address that cannot be taken, not just the first.
      const failures: string[] = []
      const closeStarted = async (): Promise<void> => {
        await Promise.all(listeners.map((l) => l.close()))
        listeners.length = 0
        live = []
        await admin?.close()
        admin = undefined
      }
      const failed = async (part: number | 'admin', err: unknown): Promise<void> => {
        const line = startFailure(initial, part, err)
        if (line === undefined) {
          await closeStarted()
          throw err
        }
        failures.push(line)
      }
      for (const [i, l] of initial.listeners.entries()) {
        try {
          const h = await startListener(l, pipeline, listenerOptions(initial))
          live.push({ handle: h, config: l })
          listeners.push(h)
        } catch (err) {
          await failed(i, err)
        }
      }
      if (initial.admin.enabled && deps.worker === undefined) {
        try {
          admin = await startAdmin({ host: initial.admin.host, port: initial.admin.port, ...(initial.admin.token === undefined ? {} : { token: initial.admin.token }) },
            api, log)
        } catch (err) {
          await failed('admin', err)
        }
      }
      if (failures.length > 0) {
        await closeStarted()
        await redis?.close()
        throw new StartupError(failures)
      }
      startHealth(pipeline.state)
      ready = true
      for (const l of listeners) {
        const a = l.address()
        log?.info({ listener: l.name, address: a.address, port: a.port, tls: l.tls !== undefined }, 'listening')
      }
    },
    reload (next) {
      // One reload at a time: a second waits for the first. Stopping (by then): nothing new is
      // bound or started, as a listener it added would never be closed.
      const run = reloading.then(() => stopping !== undefined
        ? { ok: false, errors: ['shutting down: reloads are refused while the process drains'] } as const
        : reloadNow(next))
      reloading = run.catch(() => undefined)
      return run
    },
    stop (graceMs = 0) {
      stopping ??= stopNow(graceMs)
      return stopping
    },
    metrics,
    reopenLogs () {
      const path = pipeline.state.config.accessLog.path ?? 'stdout'
      const failed = accessLog?.reopen()
      // An operator's action that did not happen: said as such, without a stack, and nothing is lost.
      if (failed !== undefined) log?.warn({ path, error: failed }, 'access log not reopened: lines keep going to the file already open')
      else log?.info({ path }, 'access log reopened')
    },
    adminAddress () {
      return admin?.address()
    },
    status () {
      return [...pipeline.state.backends.values()].map((b) => b.snapshot())
    },
    cacheStats () {
      return pipeline.state.cache?.stats()
    },
    redisReport
  }
}
