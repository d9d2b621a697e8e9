// How many workers `workers: auto` runs: the CPUs this process may use, and
// no more than its cgroup's CPU quota (a container's CPU limit). On Node 20,
// os.availableParallelism() counts the CPUs it may be scheduled on (the
// host's, in a container) but not the quota: a pod limited to 2 CPUs on a
// 32-core node would fork 32 workers that the kernel throttles in turn. Node
// 22's libuv (1.49+) counts the quota itself, rounded down; so does this, so
// both give the same count.
import { readFileSync } from 'node:fs'
import { availableParallelism } from 'node:os'

/**
 * The CPU quota in whole CPUs (rounded down, at least 1, as libuv and Rust's
 * available_parallelism round it), from cgroup v2's `cpu.max`
 * (`<quota> <period>` or `max <period>`) or cgroup v1's `cpu.cfs_quota_us`
 * and `cpu.cfs_period_us` (quota -1: none); undefined when there is none or
 * the text is not one of those.
 */
export function cgroupCpuQuota (v2?: string, v1Quota?: string, v1Period?: string): number | undefined {
  if (v2 !== undefined) {
    const m = /^\s*(max|\d+)\s+(\d+)\s*$/.exec(v2)
    if (m !== null) return m[1] === 'max' ? undefined : quota(Number(m[1]), Number(m[2]))
  }
  if (v1Quota !== undefined && v1Period !== undefined) {
    const q = Number(v1Quota.trim())
    const p = Number(v1Period.trim())
    if (Number.isInteger(q) && q > 0 && Number.isInteger(p)) return quota(q, p)
  }
  return undefined
}

function quota (q: number, period: number): number | undefined {
  if (!(q > 0) || !(period > 0)) return undefined
  return Math.max(1, Math.floor(q / period))
}

function readOr (path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8')
  } catch {
    return undefined
  }
}

/** The worker count of `workers: auto` here: the CPUs available, capped by the cgroup's quota. */
export function autoWorkers (root = '/sys/fs/cgroup'): number {
  const limit = cgroupCpuQuota(readOr(`${root}/cpu.max`), readOr(`${root}/cpu/cpu.cfs_quota_us`), readOr(`${root}/cpu/cpu.cfs_period_us`))
  const cpus = availableParallelism()
  return limit === undefined ? cpus : Math.min(cpus, limit)
}
