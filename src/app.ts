// Composition root: builds every runtime object from a Config and wires them
// together explicitly (no globals). Nothing imports this file but main.ts and
// tests.
import type { Logger } from 'pino'
import type { Config } from './config/schema.js'
import { startListener, type ListenerHandle } from './listener/listener.js'
import { Pipeline, type PipelineHooks, type RuntimeState } from './proxy/pipeline.js'
import { compileRoutes } from './proxy/routes.js'
import { buildTrustList } from './proxy/trust.js'
import { Backend } from './upstream/backend.js'

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
}

/** Everything derived from one config. */
export function buildState (config: Config): RuntimeState {
  const backends = new Map<string, Backend>()
  for (const [name, cfg] of Object.entries(config.backends)) backends.set(name, new Backend(cfg))
  return Object.freeze({
    config,
    backends,
    router: compileRoutes(config, backends),
    trustedProxies: buildTrustList(config.trustedProxies),
    viaH1: `1.1 ${config.proxyName}`,
    viaH2: `2 ${config.proxyName}`
  })
}

export function createApp (config: Config, deps: AppDeps = {}): App {
  const pipeline = new Pipeline(buildState(config), deps.hooks)
  const listeners: ListenerHandle[] = []
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
      for (const l of listeners) {
        const a = l.address()
        deps.log?.info({ listener: l.name, address: a.address, port: a.port, tls: l.tls !== undefined }, 'listening')
      }
    },
    async stop (graceMs = 0) {
      await Promise.all(listeners.map((l) => l.close(graceMs)))
      await Promise.all([...pipeline.state.backends.values()].map((b) => b.close()))
    }
  }
}
