// A cluster worker: the request path of one process. Its config comes from
// the primary (the text the primary validated, parsed again here), and so do
// the active health checks' verdicts; it answers the primary's calls for
// status, metrics, reload and purge. What it does with process signals and
// the IPC channel's end is main.ts's business.
import cluster from 'node:cluster'
import type { RedisReport } from '../redis/report.js'
import type { Logger } from 'pino'
import { createApp, StartupError, type App } from '../app.js'
import type { PurgeRequest, PurgeResult } from '../admin/admin.js'
import type { ListenerStatus } from '../admin/api.js'
import { runtimeSample } from '../admin/metrics/runtime.js'
import { applyOverrides, changeServer, type ServerChange, type ServerChangeResult, type ServerOverride } from '../admin/servers.js'
import type { MetricsExport } from '../admin/metrics.js'
import type { CachePeers, CacheStats } from '../cache/cache.js'
import type { EjectionListener } from '../health/outlier.js'
import { parseConfig } from '../config/load.js'
import type { Config } from '../config/schema.js'
import { ConfigError, formatIssue } from '../errors.js'
import { serversByIdentity, type RuntimeState } from '../proxy/state.js'
import { ejectionRank, RemoteEjections, type EjectionNotice } from './ejections.js'
import { serverIdentity } from '../upstream/server.js'
import type { BackendStatus } from '../upstream/backend.js'
import { Channel, type Port } from './ipc.js'

export type { EjectionNotice } from './ejections.js'

/** The file the primary loaded, as it read it: every worker parses the same bytes. */
export interface ConfigSource {
  readonly file: string
  readonly text: string
}

/** An active health check verdict, decided in the primary. */
export interface HealthVerdict {
  readonly backend: string
  readonly shard: string
  readonly server: string
  readonly up: boolean
  readonly reason: string
}

/** What a worker gets before it starts. */
export interface WorkerBoot {
  readonly source: ConfigSource
  /** How many workers split cache.maxBytes. */
  readonly workers: number
  /** Every checked server's verdict so far. */
  readonly health: readonly HealthVerdict[]
  /** Servers the admin API set to drain / maint or gave a weight (absent: none). */
  readonly overrides?: readonly ServerOverride[]
  /** The outlier ejections other workers decided that are still in force, each with the time it has left. */
  readonly ejections?: readonly EjectionNotice[]
}

/** A worker's part of `GET /status`. */
export interface WorkerStatus {
  readonly backends: readonly BackendStatus[]
  readonly listeners: readonly ListenerStatus[]
  readonly cache?: CacheStats
  readonly redis?: RedisReport
  readonly requests: number
  readonly connections: number
}

export interface WorkerReload {
  readonly source: ConfigSource
  readonly health: readonly HealthVerdict[]
  /** The admin API's server settings, applied to the new state (servers built anew do not carry them). */
  readonly overrides?: readonly ServerOverride[]
}

/** primary → worker: POST /servers/… applied here too. */
export interface WorkerServerChange {
  readonly backend: string
  readonly server: string
  readonly shard?: string
  readonly change: ServerChange
}

/** The calls between primary and workers, by name (one place for both ends). */
export const Ops = {
  /** worker → primary: the boot parameters. */
  boot: 'boot',
  /** worker → primary (notice): listening, serving. */
  ready: 'ready',
  /** worker → primary: its listeners could not start (the lines of its StartupError). */
  failed: 'failed',
  /** primary → worker (notice): drain within `drainMs`, then exit. */
  drain: 'drain',
  /** primary → worker (notice): health verdicts. */
  health: 'health',
  status: 'status',
  metrics: 'metrics',
  reload: 'reload',
  purge: 'purge',
  cacheLookup: 'cacheLookup',
  /** worker → primary: remove these keys from every other worker's cache (a PURGE, an invalidation). */
  peerRemove: 'peerRemove',
  /** primary → worker: remove these keys from this cache; answers how many entries it held. */
  cacheRemove: 'cacheRemove',
  /** worker → primary → the other workers (notices): an outlier ejection decided, or ended (see ejections.ts). */
  ejection: 'ejection',
  /** primary → worker: the admin API changed a server's state or weight. */
  setServer: 'setServer',
  /** primary → worker (notice): reopen the access log file (SIGUSR1). */
  reopen: 'reopen'
} as const

/** Cache keys to remove in the other workers, and what to count them as. */
export interface CacheRemoval {
  readonly keys: readonly string[]
  readonly as: 'purge' | 'invalidation'
}

/** How long a worker waits for the other workers' caches to confirm a removal. */
const REMOVE_MS = 5000

/** Parses the primary's config text; the primary validated the same bytes, so an error here is a bug or a changed certificate file. */
export function parseSource (source: ConfigSource): Config {
  try {
    return parseConfig(source.text, source.file, { checkFiles: true })
  } catch (err) {
    if (err instanceof ConfigError) throw new Error(err.issues.map((i) => formatIssue(err.file, i)).join('\n'))
    throw err
  }
}

/** Applies the primary's verdicts to this state's servers (unknown ones, from another config generation, are skipped). */
export function applyHealth (state: RuntimeState, verdicts: readonly HealthVerdict[]): void {
  if (verdicts.length === 0) return
  const byId = serversByIdentity(state)
  for (const v of verdicts) {
    const s = byId.get(serverIdentity(v.backend, v.shard, v.server))
    // The primary counted and logged it.
    if (s !== undefined && s.checkUp !== v.up) s.setCheckStatus(v.up, v.reason, false)
  }
}

export interface RunningWorker {
  readonly app: App
  /** Resolves once the worker has drained (asked by the primary, or `stop`). */
  readonly drained: Promise<void>
  stop (drainMs: number): Promise<void>
}

/**
 * Boots a worker on `port` (the process's IPC channel): asks the primary for
 * the config, starts the listeners, says ready. Rejects when it cannot start.
 */
export async function runWorker (port: Port, log: Logger): Promise<RunningWorker> {
  const channel = new Channel(port)
  // Messages arrive in order: a verdict before the app exists is older than
  // the boot's snapshot; one after it is applied at once.
  let running: App | undefined
  channel.listen(Ops.health, (arg) => { if (running !== undefined) applyHealth(running.state, arg as HealthVerdict[]) })
  // A server change made while this worker starts (the primary's `setServer` goes only to ready workers):
  // one made before the boot's snapshot is in it already; later ones are applied in order once the state exists.
  const earlyChanges: WorkerServerChange[] = []
  channel.listen(Ops.setServer, (arg) => {
    const c = arg as WorkerServerChange
    if (running === undefined) earlyChanges.push(c)
    else changeServer(running.state, c.backend, c.server, c.change, c.shard)
  })
  // Other workers' ejections: those sent while this one starts are applied after the boot's snapshot, in order.
  const remote = new RemoteEjections()
  const earlyEjections: EjectionNotice[] = []
  // Another worker's ejection that, with this one's own made in the same instant, takes its shard past
  // maxEjectionPercent: the later of them (by rank) is undone by the worker that made it (outlier.ts contest).
  const applyRemote = (state: RuntimeState, n: EjectionNotice): void => {
    const server = remote.apply(state, n)
    if (server !== undefined && n.rank !== undefined) state.backends.get(n.backend)?.contest(server, n.rank)
  }
  channel.listen(Ops.ejection, (arg) => {
    if (running === undefined) earlyEjections.push(arg as EjectionNotice)
    else applyRemote(running.state, arg as EjectionNotice)
  })
  const boot = await channel.call(Ops.boot, null, 30_000) as WorkerBoot
  const cachePeers: CachePeers = {
    remove: async (keys, as) => await channel.call(Ops.peerRemove, { keys, as } satisfies CacheRemoval, REMOVE_MS) as number
  }
  // Ejections this worker decides go to the others; the ones they decide are applied here.
  const workerId = cluster.worker?.id ?? process.pid
  const onEjection: EjectionListener = (server, ejected, reason, ms) => {
    remote.forget(server)
    const rank = ejected ? ejectionRank(workerId) : undefined
    channel.notify(Ops.ejection, {
      backend: server.backend, shard: server.shard, server: server.name, ejected, reason, ms, ...(rank === undefined ? {} : { rank })
    } satisfies EjectionNotice)
    return rank
  }
  const app = createApp(parseSource(boot.source), { log, worker: { cacheShare: boot.workers, cachePeers, onEjection } })
  running = app
  applyHealth(app.state, boot.health)
  applyOverrides(app.state, boot.overrides ?? [])
  for (const c of earlyChanges) changeServer(app.state, c.backend, c.server, c.change, c.shard)
  for (const n of [...boot.ejections ?? [], ...earlyEjections]) applyRemote(app.state, n)
  let stopping: Promise<void> | undefined
  let drainedNow!: () => void
  const drained = new Promise<void>((resolve) => { drainedNow = resolve })
  const stop = (drainMs: number): Promise<void> => {
    stopping ??= app.stop(drainMs).finally(() => {
      channel.close('the worker stopped')
      drainedNow()
    })
    return stopping
  }

  channel.listen(Ops.drain, (arg) => { void stop((arg as { drainMs: number }).drainMs) })
  channel.listen(Ops.reopen, () => { app.reopenLogs() })
  channel.handle(Ops.status, (): WorkerStatus => {
    const totals = app.metrics.snapshot().totals
    const cache = app.cacheStats()
    const redis = app.redisReport()
    return {
      backends: app.status(),
      listeners: app.listeners.map((l) => ({ name: l.name, address: l.address().address, port: l.address().port, tls: l.tls !== undefined })),
      ...(cache === undefined ? {} : { cache }),
      ...(redis === undefined ? {} : { redis }),
      requests: totals.requests,
      connections: totals.activeConnections
    }
  })
  channel.handle(Ops.metrics, (arg): MetricsExport => ({
    ...app.metrics.export(Date.now(), { windows: (arg as { windows: boolean }).windows }),
    // For the primary's process_* and nodejs_* families (not merged: each process has its own).
    runtime: runtimeSample()
  }))
  channel.handle(Ops.reload, async (arg) => {
    const r = arg as WorkerReload
    const result = await app.reload(parseSource(r.source))
    if (result.ok) {
      // The reload lifted every ejection, these too (reload.ts).
      remote.clear()
      applyHealth(app.state, r.health)
      applyOverrides(app.state, r.overrides ?? [])
    }
    return result
  })
  channel.handle(Ops.setServer, (arg): ServerChangeResult => {
    const c = arg as WorkerServerChange
    return changeServer(app.state, c.backend, c.server, c.change, c.shard)
  })
  channel.handle(Ops.purge, async (arg): Promise<PurgeResult> => await app.api.purge(arg as PurgeRequest))
  channel.handle(Ops.cacheLookup, async (arg) => (await app.api.cacheLookup?.(arg as string)) ?? null)
  channel.handle(Ops.cacheRemove, (arg): number => {
    const cache = app.state.cache
    if (cache === undefined) return 0
    const r = arg as CacheRemoval
    let n = 0
    for (const k of r.keys) n += r.as === 'purge' ? cache.purgeUrl(k) : cache.invalidate(k)
    return n
  })

  try {
    await app.start()
  } catch (err) {
    await app.stop()
    // The primary reports these lines as a single process would (which listener, where, why).
    if (err instanceof StartupError) await channel.call(Ops.failed, err.failures, 2000).catch(() => {})
    channel.close('the worker could not start')
    throw err
  }
  channel.notify(Ops.ready, null)
  return { app, drained, stop }
}
