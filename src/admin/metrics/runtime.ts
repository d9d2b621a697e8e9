// Process and Node.js runtime metrics under prom-client's default names
// (process_cpu_seconds_total, process_resident_memory_bytes,
// nodejs_heap_size_used_bytes, nodejs_eventloop_lag_*…), so dashboards built
// for any Node service read them, plus switchyard_build_info. Sampled at
// scrape time from process.* and one event-loop delay monitor per process;
// nothing runs per request. A cluster's primary renders its own sample with
// its workers' (sent with their metrics exports): amounts add up (CPU,
// memory, descriptors), the event-loop lag is the worst process's, the start
// time the primary's.
import { readdirSync, readFileSync } from 'node:fs'
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import type { Exposition } from '../prometheus.js'

/** One process's runtime facts at one moment (plain JSON: it crosses IPC). */
export interface RuntimeSample {
  readonly cpuUserSeconds: number
  readonly cpuSystemSeconds: number
  readonly startTimeSeconds: number
  readonly residentBytes: number
  readonly heapTotalBytes: number
  readonly heapUsedBytes: number
  readonly externalBytes: number
  /** -1 where /proc is not there. */
  readonly openFds: number
  readonly maxFds: number
  readonly activeResources: number
  /** Event-loop delay since the last sample, seconds (0 before any). */
  readonly lagMeanSeconds: number
  readonly lagP99Seconds: number
  readonly lagMaxSeconds: number
}

// Process-wide by nature: one loop, one monitor (its timer is libuv's, unref'd).
let monitor: IntervalHistogram | undefined
const START_S = Math.round(performance.timeOrigin) / 1000

/** Starts the event-loop delay monitor of this process (idempotent); a sample without it reports no lag. */
export function watchEventLoop (): void {
  if (monitor !== undefined) return
  monitor = monitorEventLoopDelay({ resolution: 20 })
  monitor.enable()
}

function openFds (): number {
  try { return readdirSync('/proc/self/fd').length - 1 } catch { return -1 } // less the one readdir holds
}

function maxFds (): number {
  try {
    const m = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'))
    return m === null ? -1 : Number(m[1])
  } catch { return -1 }
}

const ns = (n: number): number => (Number.isFinite(n) ? n / 1e9 : 0)

/** This process now; the lag figures cover the time since the previous sample. */
export function runtimeSample (): RuntimeSample {
  const cpu = process.cpuUsage()
  const mem = process.memoryUsage()
  const h = monitor
  const sample: RuntimeSample = {
    cpuUserSeconds: cpu.user / 1e6,
    cpuSystemSeconds: cpu.system / 1e6,
    startTimeSeconds: START_S,
    residentBytes: mem.rss,
    heapTotalBytes: mem.heapTotal,
    heapUsedBytes: mem.heapUsed,
    externalBytes: mem.external,
    openFds: openFds(),
    maxFds: maxFds(),
    activeResources: process.getActiveResourcesInfo().length,
    lagMeanSeconds: h === undefined || h.count === 0 ? 0 : ns(h.mean),
    lagP99Seconds: h === undefined || h.count === 0 ? 0 : ns(h.percentile(99)),
    lagMaxSeconds: h === undefined || h.count === 0 ? 0 : ns(h.max)
  }
  h?.reset()
  return sample
}

/** package.json's version, read once. */
let version: string | undefined
function packageVersion (): string {
  if (version !== undefined) return version
  for (const rel of ['../../../package.json', '../../../../package.json']) {
    try {
      const v = (JSON.parse(readFileSync(fileURLToPath(new URL(rel, import.meta.url)), 'utf8')) as { name?: string, version?: string })
      if (v.name === 'switchyard' && typeof v.version === 'string') return (version = v.version)
    } catch { /* try the next level (dist/ is one deeper) */ }
  }
  return (version = 'unknown')
}

const sum = (xs: readonly RuntimeSample[], f: (s: RuntimeSample) => number): number => xs.reduce((a, s) => a + f(s), 0)
const max = (xs: readonly RuntimeSample[], f: (s: RuntimeSample) => number): number => xs.reduce((a, s) => Math.max(a, f(s)), 0)

/** switchyard_build_info, then the runtime families of `samples` (the first one is this process's). */
export function writeRuntime (x: Exposition, samples: readonly RuntimeSample[]): void {
  const [major, minor, patch] = process.versions.node.split('.')
  x.gauge('switchyard_build_info', 'Always 1: the Switchyard version and the Node.js it runs on.', ['version', 'node_version'])
    .sample([packageVersion(), process.version], 1)
  x.gauge('nodejs_version_info', 'Node.js version info.', ['version', 'major', 'minor', 'patch'])
    .sample([process.version, major ?? '', minor ?? '', patch ?? ''], 1)
  if (samples.length === 0) return
  const first = samples[0]!
  const many = samples.length > 1 ? ` (the ${samples.length} processes of this instance added up)` : ''
  const c = (name: string, help: string, v: number): void => { x.counter(name, help).sample([], v) }
  const g = (name: string, help: string, v: number): void => { x.gauge(name, help).sample([], v) }
  c('process_cpu_user_seconds_total', `Total user CPU time spent in seconds${many}.`, sum(samples, (s) => s.cpuUserSeconds))
  c('process_cpu_system_seconds_total', `Total system CPU time spent in seconds${many}.`, sum(samples, (s) => s.cpuSystemSeconds))
  c('process_cpu_seconds_total', `Total user and system CPU time spent in seconds${many}.`, sum(samples, (s) => s.cpuUserSeconds + s.cpuSystemSeconds))
  g('process_start_time_seconds', 'Start time of the process since unix epoch in seconds.', first.startTimeSeconds)
  g('process_resident_memory_bytes', `Resident memory size in bytes${many}.`, sum(samples, (s) => s.residentBytes))
  if (samples.every((s) => s.openFds >= 0)) g('process_open_fds', `Number of open file descriptors${many}.`, sum(samples, (s) => s.openFds))
  if (first.maxFds >= 0) g('process_max_fds', 'Maximum number of open file descriptors (per process).', first.maxFds)
  g('nodejs_heap_size_total_bytes', `Process heap size from Node.js in bytes${many}.`, sum(samples, (s) => s.heapTotalBytes))
  g('nodejs_heap_size_used_bytes', `Process heap size used from Node.js in bytes${many}.`, sum(samples, (s) => s.heapUsedBytes))
  g('nodejs_external_memory_bytes', `Node.js external memory size in bytes${many}.`, sum(samples, (s) => s.externalBytes))
  g('nodejs_active_resources_total', `Number of active resources keeping the event loop alive${many}.`, sum(samples, (s) => s.activeResources))
  g('nodejs_eventloop_lag_mean_seconds', 'The mean of the recorded event loop delays since the last scrape (the worst process).', max(samples, (s) => s.lagMeanSeconds))
  g('nodejs_eventloop_lag_p99_seconds', 'The 99th percentile of the recorded event loop delays since the last scrape (the worst process).', max(samples, (s) => s.lagP99Seconds))
  g('nodejs_eventloop_lag_max_seconds', 'The maximum recorded event loop delay since the last scrape.', max(samples, (s) => s.lagMaxSeconds))
}
