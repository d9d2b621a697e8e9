// The fleet's counters over worker restarts. What a cluster's primary shows
// is the sum of what its live workers report; when one exits, its counts must
// stay in that sum, or every counter drops (Prometheus reads a drop as a
// reset, and rate() and increase() lie). So each exited worker's last answers
// are added, as it exits, into one running sum per kind: one metrics export,
// one set of cache counters, Redis counters and per-server counts. Memory
// does not grow with the number of exits, and no exit's counts are dropped.
// Gauges (in flight, connections, cache sizes, Redis state) are not kept.
import { ExitedCounts } from '../admin/backend-status.js'
import { foldExited, type MergedMetrics, type MetricsExport } from '../admin/metrics.js'
import { exitedCacheStats, type CacheStats } from '../cache/cache.js'
import { addRedisCounters, type RedisCounters } from '../redis/report.js'
import type { WorkerStatus } from './worker.js'

/** The running sum of the workers that exited. */
export class Exited {
  #metrics: MetricsExport | undefined
  #cache: CacheStats | undefined
  #redis: RedisCounters | undefined
  readonly backends = new ExitedCounts()

  get metrics (): MetricsExport | undefined { return this.#metrics }
  get cache (): CacheStats | undefined { return this.#cache }
  get redis (): RedisCounters | undefined { return this.#redis }

  /**
   * One more worker exited: its last metrics export and its last status
   * answer (either may be missing: it exited before it gave one). `previous`:
   * the primary's last merge, so the label sets it named keep their names.
   */
  add (metrics: MetricsExport | undefined, status: WorkerStatus | undefined, previous?: MergedMetrics): void {
    if (metrics !== undefined) this.#metrics = foldExited(this.#metrics, metrics, previous)
    if (status === undefined) return
    if (status.cache !== undefined) this.#cache = sumCache([...(this.#cache === undefined ? [] : [this.#cache]), exitedCacheStats(status.cache)])
    if (status.redis !== undefined) this.#redis = addRedisCounters(this.#redis, status.redis)
    this.backends.add(status.backends)
  }
}

/** The workers' caches as one: every counter and size summed (each holds its share of maxBytes). */
export function sumCache (list: readonly CacheStats[]): CacheStats | undefined {
  if (list.length === 0) return undefined
  const out: Record<string, number> = {}
  for (const s of list) for (const [k, v] of Object.entries(s)) if (typeof v === 'number') out[k] = (out[k] ?? 0) + v
  return out as unknown as CacheStats
}
