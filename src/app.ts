// Composition root: builds every runtime object from a Config and wires them
// together explicitly (no globals). Nothing imports this file but main.ts and
// tests.
import type { Logger } from 'pino'
import { HttpCache, type CacheStats } from './cache/cache.js'
import type { Config } from './config/schema.js'
import { startHealthChecks, type HealthChecks, type HealthTarget } from './health/checker.js'
import { startListener, type ListenerHandle } from './listener/listener.js'
import { Pipeline, type PipelineHooks, type RuntimeState } from './proxy/pipeline.js'
import { compileRoutes } from './proxy/routes.js'
import { buildTrustList } from './proxy/trust.js'
import { Backend, type BackendStatus } from './upstream/backend.js'

export interface AppDeps {
  readonly log?: Logger
  readonly hooks?: PipelineHooks
}

export interface App {
  readonly pipeline: Pipeline
  readonly listeners: readonly ListenerHandle[]
  readonly state: RuntimeState
  start (): Promise<void>
  stop (graceMs?: number): Promise<void>
  /** Per backend → shard → server state, for status pages and tests. */
  status (): readonly BackendStatus[]
  /** Cache counters and size, when a cache is configured. */
  cacheStats (): CacheStats | undefined
}

/**
 * Everything derived from one config. `cache` is passed in so a reload can
 * keep the stored responses (issue 5); a new one is made when absent.
 */
export function buildState (config: Config, log?: Logger, cache?: HttpCache): RuntimeState {
  const backends = new Map<string, Backend>()
  for (const [name, cfg] of Object.entries(config.backends)) {
    // The health checker and outlier detection log their own transitions, once each, with the reason.
    backends.set(name, new Backend(cfg, log === undefined ? {} : { log }))
  }
  return Object.freeze({
    config,
    backends,
    router: compileRoutes(config, backends),
    trustedProxies: buildTrustList(config.trustedProxies),
    cache: config.cache === undefined ? undefined : cache ?? new HttpCache(config.cache),
    purgeFrom: config.cache === undefined || config.cache.purgeFrom.length === 0 ? undefined : buildTrustList(config.cache.purgeFrom),
    viaH1: `1.1 ${config.proxyName}`,
    viaH2: `2 ${config.proxyName}`
  })
}

export function createApp (config: Config, deps: AppDeps = {}): App {
  const pipeline = new Pipeline(buildState(config, deps.log), deps.hooks)
  const listeners: ListenerHandle[] = []
  let health: HealthChecks | undefined
  return {
    pipeline,
    listeners,
    get state () { return pipeline.state },
    async start () {
      const opts = { limits: config.limits, timeouts: config.timeouts }
      try {
        for (const l of config.listeners) listeners.push(await startListener(l, pipeline, opts))
      } catch (err) {
        await Promise.all(listeners.map((l) => l.close()))
        listeners.length = 0
        throw err
      }
      const targets: HealthTarget[] = []
      for (const b of pipeline.state.backends.values()) {
        const hc = b.config.healthCheck
        if (hc !== undefined) for (const server of b.servers) targets.push({ server, config: hc })
      }
      if (targets.length > 0) health = startHealthChecks(targets, deps.log === undefined ? {} : { log: deps.log })
      for (const l of listeners) {
        const a = l.address()
        deps.log?.info({ listener: l.name, address: a.address, port: a.port, tls: l.tls !== undefined }, 'listening')
      }
    },
    async stop (graceMs = 0) {
      await health?.stop()
      await Promise.all(listeners.map((l) => l.close(graceMs)))
      await Promise.all([...pipeline.state.backends.values()].map((b) => b.close()))
    },
    status () {
      return [...pipeline.state.backends.values()].map((b) => b.snapshot())
    },
    cacheStats () {
      return pipeline.state.cache?.stats()
    }
  }
}
