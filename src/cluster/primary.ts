// The primary of a cluster (`workers` > 1). It handles no requests. It owns
// the config (validated once per load; the workers parse the same bytes), the
// active health checks (run once here, every verdict broadcast to every
// worker), the admin listener (the fleet's status and metrics merged from the
// workers, reload and purge fanned out to all of them) and the workers
// (Supervisor: one that dies is replaced).
import { redisMetrics, redisStatus, type RedisReport } from '../redis/report.js'
import type { AddressInfo } from 'node:net'
import type { Logger } from 'pino'
import { startAdmin, type AdminApi, type AdminHandle, type PurgeRequest, type PurgeResult } from '../admin/admin.js'
import { adminApi, serverGauges, type AdminStatus, type WorkerStatusEntry } from '../admin/api.js'
import { mergeBackendStatus } from '../admin/backend-status.js'
import { Metrics, mergeMetrics, type MergedMetrics, type MetricsExport } from '../admin/metrics.js'
import { StartupError, startFailure, type ReloadResult } from '../app.js'
import { needsRestart } from '../reload.js'
import { ConfigReport } from '../admin/config-report.js'
import { runtimeSample, watchEventLoop } from '../admin/metrics/runtime.js'
import type { CacheStats } from '../cache/cache.js'
import type { BackendStatus } from '../upstream/backend.js'
import type { Config } from '../config/schema.js'
import { startHealthChecks, type HealthChecks } from '../health/checker.js'
import { allServers, buildState, carryHealth, healthTargets, reuseFrom, type RuntimeState } from '../proxy/state.js'
import { sendNothing } from '../upstream/pool.js'
import { Exited, sumCache } from './fleet.js'
import type { Channel } from './ipc.js'
import { Supervisor, type WorkerInfo, type WorkerProcess } from './supervisor.js'
import { changeServer, serverOverrides, type ServerChangeResult } from '../admin/servers.js'
import { Ops, type WorkerServerChange, type CacheRemoval, type ConfigSource, type HealthVerdict, type WorkerBoot, type WorkerReload, type WorkerStatus } from './worker.js'
import { EjectionTable, type EjectionNotice } from './ejections.js'

/** A config the primary loaded and validated, with the bytes it read. */
export interface LoadedConfig {
  readonly config: Config
  readonly source: ConfigSource
}

export interface PrimaryOptions {
  readonly log: Logger
  readonly count: number
  /** Starts worker `id` (main.ts: cluster.fork). */
  readonly spawn: (id: number) => WorkerProcess
  /** Reads and validates the config file again (reload): the result, or its errors. */
  readonly load: () => Promise<LoadedConfig | { readonly errors: readonly string[] }>
}

/** `GET /status` of a cluster: the single-process fields for the whole fleet, and its workers (always there). */
export interface ClusterStatus extends AdminStatus {
  readonly workers: readonly WorkerStatusEntry[]
}

export interface Primary {
  readonly config: Config
  /** SIGUSR1: every worker reopens its access log file. */
  reopenLogs (): void
  reload (reason: string): Promise<ReloadResult>
  stop (drainMs: number): Promise<void>
  adminAddress (): AddressInfo | undefined
  workers (): WorkerInfo[]
}

/** How long the primary waits for a worker's answer to status or metrics calls. */
const CALL_MS = 2000
/** Reload and purge: a worker may be busy; still bounded. */
const APPLY_MS = 30_000
/** How long the first workers may take to start. */
const READY_MS = 60_000
/** Each worker's export and status are refreshed at least this often, so a worker that dies takes at most this much of its counts with it. */
const EXPORT_EVERY_MS = 5000

/** Starts the workers and the admin listener; resolves when every worker is ready. */
export async function startPrimary (initial: LoadedConfig, opts: PrimaryOptions): Promise<Primary> {
  const log = opts.log
  let current = initial
  const metrics = new Metrics()
  const configReport = new ConfigReport(initial.source.text)
  watchEventLoop()
  let control = buildState(initial.config, { dispatcher: sendNothing, log })
  let health: HealthChecks | undefined
  let stopping = false
  let admin: AdminHandle | undefined
  // The latest answers of each live worker, by `id:pid`: one late to answer
  // counts with its last (its counters never drop out of a scrape); at its
  // exit they go into `exited`, the running sum of the workers that exited.
  const lastExport = new Map<string, MetricsExport>()
  const lastStatus = new Map<string, { readonly id: number, readonly status: WorkerStatus }>()
  const exited = new Exited()
  let previousMerge: MergedMetrics | undefined

  // The outlier ejections in force, for the boot of a worker that starts later (a crashed one's replacement).
  const ejections = new EjectionTable()

  const verdicts = (state: RuntimeState): HealthVerdict[] =>
    healthTargets(state).map(({ server: s }) => ({ backend: s.backend, shard: s.shard, server: s.name, up: s.checkUp, reason: 'health check (primary)' }))

  const supervisor: Supervisor = new Supervisor({
    count: opts.count,
    spawn: opts.spawn,
    events: {
      ready: (w) => {
        log.info({ worker: w.id, pid: w.pid, restarts: w.restarts }, 'worker ready')
        // It booted from a config a reload has replaced since (the reload went to the workers ready then): it catches up.
        if (booted.get(w.id) !== current) catchUp(w.id)
      },
      crashed: (w, how) => {
        log.error({ worker: w.id, pid: w.pid, code: how.code, signal: how.signal, restartInMs: how.delayMs }, 'worker exited unexpectedly; replacing it')
      },
      exited: (w) => {
        const key = `${w.id}:${w.pid}`
        exited.add(lastExport.get(key), lastStatus.get(key)?.status, previousMerge)
        lastExport.delete(key)
        lastStatus.delete(key)
      }
    }
  })

  /** An answer of worker `id:pid` is kept only while that process lives: a late one must not come back after its exit was summed. */
  const live = (id: number, pid: number): boolean => supervisor.workers().some((w) => w.id === id && w.pid === pid && w.state !== 'exited')

  const watchHealth = (state: RuntimeState): void => {
    for (const s of allServers(state)) {
      s.onHealthChange = (server, healthy, reason) => {
        metrics.healthTransition(server.backend, server.shard, server.name, healthy)
        const verdict: HealthVerdict = { backend: server.backend, shard: server.shard, server: server.name, up: server.checkUp, reason }
        for (const c of supervisor.channels()) c.notify(Ops.health, [verdict])
      }
    }
  }
  const startHealth = (state: RuntimeState): void => {
    // Stopped for good: checks started now would keep the process from exiting.
    if (stopping) return
    const targets = healthTargets(state)
    health = targets.length > 0 ? startHealthChecks(targets, { log }) : undefined
  }

  /** Calls `op` on every ready worker (but `except`); each answer or failure, with the worker's id. */
  /** `arg` to every ready worker but `except`; a function gives each worker its own (by position among them). */
  const fanOut = async <T>(op: string, arg: unknown, timeoutMs: number, except?: number): Promise<Array<{ id: number, pid: number, value?: T, error?: string }>> => {
    const ready = supervisor.readyChannels().filter((c) => c.id !== except)
    return await Promise.all(ready.map(async ({ id, pid, channel }: { id: number, pid: number, channel: Channel }, i) => {
      try {
        return { id, pid, value: await channel.call(op, typeof arg === 'function' ? (arg as (i: number) => unknown)(i) : arg, timeoutMs) as T }
      } catch (err) {
        return { id, pid, error: (err as Error).message }
      }
    }))
  }

  /** Fresh exports of every ready worker (those that do not answer: their last one). */
  const gatherExports = async (): Promise<MetricsExport[]> => {
    const answers = await fanOut<MetricsExport>(Ops.metrics, { windows: true }, CALL_MS)
    for (const a of answers) if (a.value !== undefined && live(a.id, a.pid)) lastExport.set(`${a.id}:${a.pid}`, a.value)
    return [...lastExport.values()]
  }
  /** Fresh status answers of every ready worker (those that do not answer: their last one), by worker id. */
  const gatherStatus = async (): Promise<Map<number, WorkerStatus>> => {
    const answers = await fanOut<WorkerStatus>(Ops.status, null, CALL_MS)
    for (const a of answers) if (a.value !== undefined && live(a.id, a.pid)) lastStatus.set(`${a.id}:${a.pid}`, { id: a.id, status: a.value })
    return new Map([...lastStatus.values()].map((x) => [x.id, x.status]))
  }
  const merged = async (): Promise<MergedMetrics> => {
    const own = metrics.export(Date.now())
    const gone = exited.metrics
    const workers = await gatherExports()
    previousMerge = mergeMetrics([own, ...(gone === undefined ? [] : [gone]), ...workers], previousMerge)
    return previousMerge
  }
  const exportTimer = setInterval(() => { void gatherExports(); void gatherStatus() }, EXPORT_EVERY_MS)
  exportTimer.unref()

  const ready = (): boolean => !stopping && supervisor.readyChannels().length > 0

  /**
   * What the ready workers report now (one late to answer: its last answer), by worker id, and the
   * instance they add up to: health from the control state, counters with what exited workers left.
   */
  const fleet = async (): Promise<{ byId: Map<number, WorkerStatus>, backends: BackendStatus[], cache: CacheStats | undefined, redis: RedisReport[] }> => {
    const byId = await gatherStatus()
    const statuses = [...byId.values()]
    const own = [...control.backends.values()].map((b) => b.snapshot())
    const gone = exited.cache
    return {
      byId,
      backends: mergeBackendStatus(statuses.map((st) => st.backends), own, exited.backends),
      cache: sumCache([...statuses.flatMap((st) => st.cache === undefined ? [] : [st.cache]), ...(gone === undefined ? [] : [gone])]),
      redis: statuses.flatMap((st) => st.redis === undefined ? [] : [st.redis])
    }
  }

  // The single-process API over the control state gives what does not depend on traffic (the routes).
  const base = adminApi({
    state: () => control,
    backends: () => [],
    metrics,
    listeners: () => [],
    reload: () => reload('admin API'),
    ready
  })

  const api: AdminApi = {
    async status (): Promise<ClusterStatus> {
      const f = await fleet()
      return {
        listeners: [...f.byId.values()][0]?.listeners ?? [],
        routes: (base.status() as AdminStatus).routes,
        backends: f.backends,
        ...(f.cache === undefined ? {} : { cache: f.cache }),
        ...(f.redis.length === 0 ? {} : { redis: redisStatus(f.redis, exited.redis)! }),
        workers: supervisor.workers().map((w) => ({ ...w, requests: f.byId.get(w.id)?.requests ?? 0, connections: f.byId.get(w.id)?.connections ?? 0 }))
      }
    },
    async metrics () {
      const [m, f] = await Promise.all([merged(), fleet()])
      const workers = supervisor.workers()
      return m.prometheus({
        // This process's runtime, then each live worker's from its latest export.
        runtime: [runtimeSample(), ...[...lastExport.values()].flatMap((x) => x.runtime === undefined ? [] : [x.runtime])],
        config: configReport.metrics(),
        cache: f.cache,
        servers: serverGauges(f.backends),
        workers: { live: workers.filter((w) => w.state !== 'exited').length, restarts: workers.reduce((n, w) => n + w.restarts, 0) },
        ...(f.redis.length === 0 ? {} : { redis: redisMetrics(f.redis, exited.redis) })
      })
    },
    async snapshot () {
      return (await merged()).snapshot()
    },
    reload: async () => {
      const r = await reload('admin API')
      return r.ok ? { ok: true, needsRestart: [...r.needsRestart] } : { ok: false, errors: [...r.errors] }
    },
    async purge (what: PurgeRequest): Promise<PurgeResult> {
      // Every worker purges its memory; one of them purges Redis too (the others hear it there as well).
      const answers = await fanOut<PurgeResult>(Ops.purge, (i: number) => i === 0 ? what : { ...what, localOnly: true }, APPLY_MS)
      let purged = 0
      let shared: 'purged' | 'unreachable' | undefined
      for (const a of answers) {
        if (a.value === undefined) return { error: `worker ${a.id} did not purge: ${a.error ?? 'no answer'}` }
        if ('error' in a.value) return a.value
        purged += a.value.purged
        if (a.value.shared !== undefined && shared !== 'unreachable') shared = a.value.shared
      }
      return shared === undefined ? { purged } : { purged, shared }
    },
    async setServer (backend, server, change, shard) {
      // The primary's record first (it is what /status shows and what workers that start later are told), then every worker's.
      const result = changeServer(control, backend, server, change, shard)
      if ('error' in result) return result
      const arg: WorkerServerChange = { backend, server, change, ...(shard === undefined ? {} : { shard }) }
      // A worker still starting has had its config (and the overrides of then), or will ask for it
      // after this: told now, it applies the change as soon as it has a state, before it listens.
      for (const c of supervisor.startingChannels()) c.notify(Ops.setServer, arg)
      const answers = await fanOut<ServerChangeResult>(Ops.setServer, arg, APPLY_MS)
      const failed = answers.find((a) => a.value === undefined || 'error' in a.value)
      if (failed !== undefined) log.warn({ worker: failed.id, error: failed.error ?? failed.value }, 'admin: a worker did not apply the server change (it gets it again at its next reload or restart)')
      return result
    },
    async cacheLookup (url: string) {
      const answers = await fanOut<unknown>(Ops.cacheLookup, url, CALL_MS)
      const found = answers.find((a) => a.value !== undefined && a.value !== null)
      return found === undefined ? undefined : { worker: found.id, ...(found.value as object) }
    },
    ready
  }

  /** A worker's PURGE or invalidation, applied by every other worker: how many entries they held. */
  const removeElsewhere = async (removal: CacheRemoval, from: number): Promise<number> => {
    const answers = await fanOut<number>(Ops.cacheRemove, removal, APPLY_MS, from)
    let n = 0
    for (const a of answers) {
      if (a.value === undefined) throw new Error(`worker ${a.id} did not remove the keys: ${a.error ?? 'no answer'}`)
      n += a.value
    }
    return n
  }

  // One reload at a time: a second waits for the first.
  let reloading: Promise<unknown> = Promise.resolve()
  /** The config each worker runs (given at boot, then by each reload it applied). */
  const booted = new Map<number, LoadedConfig>()
  /** Worker `id` runs an older config than the current one: the current one is applied there, in turn with reloads. */
  function catchUp (id: number): void {
    const run = reloading.then(async () => {
      const c = supervisor.readyChannels().find((x) => x.id === id)
      if (c === undefined || booted.get(id) === current) return
      const target = current
      const arg: WorkerReload = { source: target.source, health: verdicts(control), overrides: serverOverrides(control) }
      try {
        const r = await c.channel.call(Ops.reload, arg, APPLY_MS) as ReloadResult
        if (!r.ok) throw new Error(r.errors.join('; '))
        booted.set(id, target)
        log.info({ worker: id }, 'worker started during a reload: it now runs the reloaded configuration')
      } catch (err) {
        log.error({ worker: id, error: (err as Error).message }, 'a worker started during a reload could not apply the reloaded configuration')
      }
    })
    reloading = run.catch(() => undefined)
  }
  async function reloadNow (reason: string): Promise<ReloadResult> {
    if (stopping) return refusedWhileStopping(reason)
    log.info({ reason }, 'reloading configuration')
    const loaded = await opts.load()
    if (stopping) return refusedWhileStopping(reason)
    if ('errors' in loaded) {
      configReport.reloaded(false)
      return { ok: false, errors: loaded.errors } // opts.load logged them
    }
    // The control state keeps the servers that stay (and their health verdicts).
    const old = control
    const next = buildState(loaded.config, { dispatcher: sendNothing, log, reuse: reuseFrom(old) })
    carryHealth(old, next)
    const arg: WorkerReload = { source: loaded.source, health: verdicts(next), overrides: serverOverrides(next) }
    // Each worker's reload lifts every ejection (reload.ts).
    ejections.clear()
    const answers = await fanOut<ReloadResult>(Ops.reload, arg, APPLY_MS)
    const errors = answers.flatMap((a) => a.value === undefined
      ? [`worker ${a.id}: ${a.error ?? 'no answer'}`]
      : a.value.ok ? [] : a.value.errors.map((e) => `worker ${a.id}: ${e}`))
    if (errors.length > 0) {
      log.error({ errors }, 'configuration reload failed in a worker')
      configReport.reloaded(false)
      // Refused means refused everywhere: a worker that starts later boots the
      // running config (not one it could not start with), and those that took
      // the new one go back to it.
      buildState(current.config, { dispatcher: sendNothing, log, reuse: reuseFrom(old) }) // the kept servers' weights and limits, as they were
      await undoIn(answers.filter((a) => a.value?.ok !== false))
      return { ok: false, errors }
    }
    current = loaded
    control = next
    await health?.stop()
    watchHealth(next)
    startHealth(next)
    for (const a of answers) booted.set(a.id, loaded)
    // One that said ready while the others applied it runs the config before: it catches up.
    for (const c of supervisor.readyChannels()) if (booted.get(c.id) !== current) catchUp(c.id)
    configReport.reloaded(true, loaded.source.text)
    const first = answers[0]?.value
    // The primary's own settings (admin, workers), then what the workers' listeners could not take.
    const notApplied = new Set(needsRestart(old.config, loaded.config))
    for (const a of answers) if (a.value?.ok === true) for (const n of a.value.needsRestart) notApplied.add(n)
    const counts = first !== undefined && first.ok ? first : { kept: 0, added: 0, removed: 0 }
    const result: ReloadResult = { ok: true, kept: counts.kept, added: counts.added, removed: counts.removed, needsRestart: [...notApplied] }
    log.info({ kept: result.kept, added: result.added, removed: result.removed, workers: answers.length }, 'configuration reloaded')
    if (notApplied.size > 0) log.warn({ needsRestart: result.needsRestart }, `configuration reloaded, but not all of it: ${result.needsRestart.join('; ')}`)
    return result
  }
  /**
   * Workers that applied a reload the others refused go back to the running
   * config. One that did not answer (stopped, or too busy) may still apply it
   * when it gets to it: the running config is sent after it, and applied in
   * that order; that answer is not waited for.
   */
  async function undoIn (workers: ReadonlyArray<{ id: number, pid: number, value?: ReloadResult }>): Promise<void> {
    if (workers.length === 0) return
    const arg: WorkerReload = { source: current.source, health: verdicts(control), overrides: serverOverrides(control) }
    await Promise.all(workers.map(async ({ id, pid, value }) => {
      const channel = supervisor.readyChannels().find((c) => c.id === id && c.pid === pid)?.channel
      if (channel === undefined) return // gone: its replacement boots the running config
      const back = (async () => {
        const r = await channel.call(Ops.reload, arg, APPLY_MS) as ReloadResult
        if (!r.ok) throw new Error(r.errors.join('; '))
        log.warn({ worker: id }, 'a worker that applied the refused configuration is back on the running one')
      })().catch((err: unknown) => {
        log.error({ worker: id, error: (err as Error).message }, 'a worker could not go back to the running configuration')
      })
      if (value !== undefined) await back
    }))
  }
  /** The draining workers are not asked (they are not ready): it would be "reloaded" in none, and health checks started again. */
  function refusedWhileStopping (reason: string): ReloadResult {
    const errors = ['shutting down: reloads are refused while the process drains']
    log.error({ reason, errors }, 'configuration rejected; the running one keeps serving')
    return { ok: false, errors }
  }
  function reload (reason: string): Promise<ReloadResult> {
    const run = reloading.then(() => reloadNow(reason))
    reloading = run.catch(() => undefined)
    return run
  }

  watchHealth(control)
  // The admin listener first: a start that fails reports every address that
  // cannot be taken (the workers' listeners, then admin), as one process does.
  let adminFailure: unknown
  const a = current.config.admin
  if (a.enabled) {
    try {
      admin = await startAdmin({ host: a.host, port: a.port, ...(a.token === undefined ? {} : { token: a.token }) }, api, log)
    } catch (err) {
      adminFailure = err
    }
  }
  /** A worker's listeners could not start: its StartupError's lines. */
  let failures: readonly string[] = []
  let readyTimer: NodeJS.Timeout | undefined
  let workersFailure: unknown
  try {
    await Promise.race([
      supervisor.start((channel: Channel, id: number) => {
        channel.handle(Ops.boot, (): WorkerBoot => {
          booted.set(id, current)
          return { source: current.source, workers: opts.count, health: verdicts(control), overrides: serverOverrides(control), ejections: ejections.snapshot() }
        })
        channel.handle(Ops.failed, (arg) => { failures = arg as string[]; return null })
        channel.handle(Ops.peerRemove, async (arg) => await removeElsewhere(arg as CacheRemoval, id))
        // One worker's outlier ejection: every other worker, starting ones too, stops sending to that server.
        channel.listen(Ops.ejection, (arg) => {
          ejections.record(arg as EjectionNotice)
          for (const other of supervisor.channels()) if (other !== channel) other.notify(Ops.ejection, arg)
        })
      }),
      new Promise((_resolve, reject) => {
        readyTimer = setTimeout(() => reject(new Error(`the workers were not ready within ${READY_MS / 1000} s`)), READY_MS)
      })
    ])
  } catch (err) {
    workersFailure = err
  } finally {
    clearTimeout(readyTimer)
  }
  if (workersFailure !== undefined || adminFailure !== undefined) {
    clearInterval(exportTimer)
    await supervisor.stop(0)
    await admin?.close()
    const adminLine = adminFailure === undefined ? undefined : startFailure(current.config, 'admin', adminFailure)
    if (adminFailure !== undefined && adminLine === undefined) throw adminFailure
    if (workersFailure !== undefined && failures.length === 0) throw workersFailure
    throw new StartupError([...failures, ...(adminLine === undefined ? [] : [adminLine])])
  }
  startHealth(control)

  return {
    get config () { return current.config },
    reload,
    async stop (drainMs: number) {
      stopping = true
      clearInterval(exportTimer)
      await health?.stop()
      await supervisor.stop(drainMs)
      await admin?.close()
    },
    adminAddress: () => admin?.address(),
    workers: () => supervisor.workers(),
    reopenLogs () {
      for (const c of supervisor.readyChannels()) c.channel.notify(Ops.reopen, null)
    }
  }
}
