// The backends of `GET /status` for a cluster: every worker keeps its own
// Backend and Server records (its own in-flight, request and failure counts,
// retries, queues and outlier detection), while the health checks run in one
// place (the primary). Pure: the primary gathers the lists, this adds them up.
import { serverState, type BackendStatus, type ServerStatus } from '../upstream/backend.js'

type ShardStatus = BackendStatus['shards'][number]

/** name → item, for finding the same backend, shard or server in another process's list. */
const byName = <T extends { readonly name: string }>(items: readonly T[]): Map<string, T> => new Map(items.map((i) => [i.name, i]))

const sum = <T>(items: readonly T[], pick: (item: T) => number): number => items.reduce((n, item) => n + pick(item), 0)

/**
 * One BackendStatus list for the instance. The backends, shards and servers,
 * their configuration (url, weight, maxConn, algorithm) and the health-check
 * state (checkUp, lastCheck, effectiveWeight, upForMs) come from `health`
 * (the process running the checks; default: the first worker). Summed over
 * the workers, matched by name: backend active and retries, shard queued,
 * server active, requests and failures (with what `exited` workers left of
 * the counters among them). Outlier detection runs in each
 * worker, so a server is `ejected` when any of them ejected it, and
 * `healthy` when its check is up and no worker ejected it (as
 * Server.healthy). latencyCost (each worker measures its own) is the mean of
 * the workers that have measured it. Servers only the workers list (a reload
 * half done) are left out.
 */
export function mergeBackendStatus (perWorker: readonly (readonly BackendStatus[])[], health?: readonly BackendStatus[],
  exited?: ExitedCounts): BackendStatus[] {
  const source = health ?? perWorker[0] ?? []
  const workers = perWorker.map(byName)
  return source.map((b) => {
    const backends = workers.flatMap((w) => w.get(b.name) ?? [])
    const shardsOf = backends.map((wb) => byName(wb.shards))
    return {
      name: b.name,
      algorithm: b.algorithm,
      active: sum(backends, (wb) => wb.active),
      retries: sum(backends, (wb) => wb.retries) + (exited?.retries(b.name) ?? 0),
      shards: b.shards.map((sh): ShardStatus => {
        const shards = shardsOf.flatMap((w) => w.get(sh.name) ?? [])
        const serversOf = shards.map((ws) => byName(ws.servers))
        return {
          name: sh.name,
          queued: sum(shards, (ws) => ws.queued),
          servers: sh.servers.map((s) => mergeServer(s, serversOf.flatMap((w) => w.get(s.name) ?? []), exited?.server(b.name, sh.name, s.name)))
        }
      })
    }
  })
}

interface ServerCounts { requests: number, failures: number }

/**
 * The counters of workers that exited (backend retries; server requests and
 * failures), summed by name as each one exits: mergeBackendStatus adds them,
 * so the fleet's counts never go down when a worker is replaced. Their
 * gauges (in flight, queued, failures in a row) are gone with them.
 */
export class ExitedCounts {
  readonly #retries = new Map<string, number>()
  readonly #servers = new Map<string, ServerCounts>()

  /** One more worker's last BackendStatus list. */
  add (backends: readonly BackendStatus[]): void {
    for (const b of backends) {
      this.#retries.set(b.name, this.retries(b.name) + b.retries)
      for (const sh of b.shards) {
        for (const s of sh.servers) {
          const key = serverKey(b.name, sh.name, s.name)
          const c = this.#servers.get(key)
          if (c === undefined) this.#servers.set(key, { requests: s.requests, failures: s.failures })
          else {
            c.requests += s.requests
            c.failures += s.failures
          }
        }
      }
    }
  }

  retries (backend: string): number {
    return this.#retries.get(backend) ?? 0
  }

  server (backend: string, shard: string, server: string): ServerCounts | undefined {
    return this.#servers.get(serverKey(backend, shard, server))
  }
}

const serverKey = (backend: string, shard: string, server: string): string => `${backend}\0${shard}\0${server}`

function sinceChange (records: readonly ServerStatus[]): { sinceChangeMs?: number } {
  const known = records.flatMap((r) => r.sinceChangeMs === undefined ? [] : [r.sinceChangeMs])
  return known.length === 0 ? {} : { sinceChangeMs: Math.min(...known) }
}

/** `s` (the health source's record) with the workers' counts (and those exited workers left). */
function mergeServer (s: ServerStatus, workers: readonly ServerStatus[], exited: ServerCounts | undefined): ServerStatus {
  const ejected = s.ejected || workers.some((w) => w.ejected)
  const healthy = s.checkUp && !ejected
  const costs = workers.flatMap((w) => (w.latencyCost !== undefined && w.latencyCost > 0 ? [w.latencyCost] : []))
  const measured = workers.some((w) => w.latencyCost !== undefined)
  return {
    name: s.name,
    url: s.url,
    role: s.role,
    weight: s.weight,
    state: serverState(s.checked, s.checkUp, ejected, s.adminState),
    checked: s.checked,
    adminState: s.adminState,
    // Each worker counts the failures since its own last success: together, those since the instance's.
    consecutiveFailures: sum(workers, (w) => w.consecutiveFailures),
    // The most recent change anywhere: the health source's, or a worker's (an ejection).
    ...sinceChange([s, ...workers]),
    healthy,
    checkUp: s.checkUp,
    ejected,
    active: sum(workers, (w) => w.active),
    requests: sum(workers, (w) => w.requests) + (exited?.requests ?? 0),
    failures: sum(workers, (w) => w.failures) + (exited?.failures ?? 0),
    ...(s.lastCheck === undefined ? {} : { lastCheck: s.lastCheck }),
    maxConn: s.maxConn,
    effectiveWeight: s.effectiveWeight,
    ...(healthy && s.upForMs !== undefined ? { upForMs: s.upForMs } : {}),
    ...(measured ? { latencyCost: costs.length === 0 ? 0 : sum(costs, (c) => c) / costs.length } : {})
  }
}
