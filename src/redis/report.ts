// What /status and /metrics say about Redis, from one process's report or
// from every worker's (a cluster's primary adds them up): one place, so the
// single process and the cluster can never disagree.
import type { SharedCacheStats } from '../cache/shared/shared-cache.js'
import { MergedLatency } from '../admin/metrics/latency.js'
import type { LatencyExport, RedisMetricsInput } from '../admin/metrics/types.js'
import type { RedisStats } from './link.js'
import { noOperations, OPERATION_RESULTS, type OperationResult } from './operations.js'

/** One process's Redis link, and its shared cache when there is one. */
export interface RedisReport extends RedisStats {
  readonly shared?: SharedCacheStats
}

/** The counters of processes whose link is gone (a cluster's exited workers): what they add to the live ones'. */
export interface RedisCounters {
  readonly transitions: number
  readonly operations: RedisStats['operations']
  readonly latency: LatencyExport
  readonly shared?: SharedCacheStats
}

/** `sum` (the exited processes' counters so far, if any) with those of `last`, one more process's last report. */
export function addRedisCounters (sum: RedisCounters | undefined, last: RedisReport): RedisCounters {
  const parts: RedisCounters[] = sum === undefined ? [last] : [sum, last]
  const latency = new MergedLatency()
  for (const p of parts) latency.absorb(p.latency)
  const shared = sumShared(parts)
  return {
    transitions: parts.reduce((n, r) => n + r.transitions, 0),
    operations: sumOperations(parts),
    latency: latency.export(),
    ...(shared === undefined ? {} : { shared })
  }
}

/** The `redis` part of GET /status. */
export interface RedisStatus {
  /** `degraded`: some of a cluster's workers are connected, some not, or a connection sheds operations after a timeout, or they fail (see FAILING_MS). */
  readonly state: RedisStats['state']
  readonly target: string
  /** Processes connected / processes (1/1 for a single process). */
  readonly connected: string
  readonly transitions: number
  readonly operations: Readonly<Record<string, Readonly<Record<OperationResult, number>>>>
  /** Operations timed, and their mean (ms). */
  readonly latency: { readonly count: number, readonly meanMs: number | null }
  readonly shared?: SharedCacheStats
}

/**
 * The live processes' `reports` (state, target, processes connected) with
 * their counters and those `exited` processes left (a cluster's primary).
 */
export function redisStatus (reports: readonly RedisReport[], exited?: RedisCounters): RedisStatus | undefined {
  const first = reports[0]
  if (first === undefined) return undefined
  const up = reports.filter((r) => r.state === 'up').length
  // Connected, but shedding after timeouts.
  const shedding = reports.filter((r) => r.state === 'degraded').length
  const counters = withExited(reports, exited)
  const count = counters.reduce((n, r) => n + r.latency.count, 0)
  const sumMs = counters.reduce((n, r) => n + r.latency.sumMs, 0)
  const shared = sumShared(counters)
  return {
    state: up === reports.length ? 'up' : up + shedding > 0 ? 'degraded' : reports.every((r) => r.state === 'connecting') ? 'connecting' : 'down',
    target: first.target,
    connected: `${up + shedding}/${reports.length}`,
    transitions: counters.reduce((n, r) => n + r.transitions, 0),
    operations: sumOperations(counters),
    latency: { count, meanMs: count === 0 ? null : Math.round((sumMs / count) * 1000) / 1000 },
    ...(shared === undefined ? {} : { shared })
  }
}

/** As redisStatus, for /metrics. */
export function redisMetrics (reports: readonly RedisReport[], exited?: RedisCounters): RedisMetricsInput | undefined {
  if (reports.length === 0) return undefined
  const counters = withExited(reports, exited)
  const shared = sumShared(counters)
  return {
    up: reports.every((r) => r.state === 'up') ? 1 : 0,
    transitions: counters.reduce((n, r) => n + r.transitions, 0),
    operations: sumOperations(counters),
    latency: counters.map((r) => r.latency),
    ...(shared === undefined ? {} : { shared })
  }
}

const withExited = (reports: readonly RedisCounters[], exited: RedisCounters | undefined): readonly RedisCounters[] =>
  exited === undefined ? reports : [...reports, exited]

function sumOperations (reports: readonly RedisCounters[]): Record<string, Record<OperationResult, number>> {
  const out: Record<string, Record<OperationResult, number>> = {}
  for (const r of reports) {
    for (const [op, counts] of Object.entries(r.operations)) {
      const o = out[op] ??= noOperations()
      for (const k of OPERATION_RESULTS) o[k] += counts[k] ?? 0
    }
  }
  return out
}

function sumShared (reports: readonly RedisCounters[]): SharedCacheStats | undefined {
  const list = reports.flatMap((r) => r.shared === undefined ? [] : [r.shared])
  if (list.length === 0) return undefined
  const out = { hits: 0, misses: 0, stored: 0, superseded: 0, rejected: 0, collapsed: 0, remotePurges: 0, unavailable: 0 }
  for (const s of list) for (const k of Object.keys(out) as Array<keyof typeof out>) out[k] += s[k]
  return out
}
