// Micro-benchmark of the per-request hot path: Metrics.record and the access
// log line (accessLogJson), over about a million synthetic records. Not a test
// and not part of `npm test`; it compares builds of the same code on the same
// machine (see "Hot path" in bench/README.md):
//
//   npm run build && node --expose-gc dist/bench/hot-path.js [--records 1000000] [--rounds 5]
//
// Each round runs three phases on a fresh Metrics: record() alone,
// accessLogJson() alone, then both per record, as app.ts does. The table gives
// ns per record, the least and the median over the rounds, in CPU time of
// this process (steadier than wall time on a shared machine) and in wall
// time, and the garbage collections seen during each phase (record()
// allocates nothing once its label sets and histograms exist, so its phase
// sees at most one or two, at the start). The numbers also go to
// bench/results/hot-path-<timestamp>.json (git-ignored).

import { mkdirSync, writeFileSync } from 'node:fs'
import { cpus } from 'node:os'
import { basename, dirname, join, resolve } from 'node:path'
import { PerformanceObserver } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { Metrics, type RequestRecord } from '../src/admin/metrics.js'
import { accessLogJson, isoClock } from '../src/proxy/access-log.js'

const args = parseArgs({ options: { records: { type: 'string', default: '1000000' }, rounds: { type: 'string', default: '5' } } }).values
const RECORDS = Number(args.records)
const ROUNDS = Number(args.rounds)
if (!(RECORDS > 0) || !(ROUNDS > 0)) throw new RangeError('--records and --rounds must be positive')

type Mutable<T> = { -readonly [K in keyof T]: T[K] }

/** 2023-11-14T22:13:20Z; records end 16 per ms from there (~16k requests/s), so 1M records cover ~62 s. */
const T0 = 1_700_000_000_000
const PER_MS = 16
const POOL = 4096

/** A deterministic mix: 4 routes, 3 servers each, a few errors, cache outcomes on two routes. */
function pool (): Mutable<RequestRecord>[] {
  let seed = 42
  const rand = (): number => {
    seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31
    return seed / 2 ** 31
  }
  const routes = ['api', 'web', 'static', 'admin'] as const
  const out: Mutable<RequestRecord>[] = []
  for (let i = 0; i < POOL; i++) {
    const route = routes[i % routes.length]!
    const p = rand()
    const noRoute = p < 0.01
    const upstreamError = !noRoute && p < 0.02
    const cached = route === 'static' || route === 'web'
    const cacheStatus = cached ? (rand() < 0.7 ? 'hit' : 'miss') : undefined
    const totalMs = 0.2 + -Math.log(1 - rand()) * 8
    // The same keys, in the same order, as requestRecord() in admin/api.ts builds.
    out.push({
      time: T0,
      listener: 'https',
      protocol: i % 3 === 0 ? 'h1' : 'h2',
      clientAddress: `203.0.113.${i % 250}`,
      method: i % 10 === 0 ? 'POST' : 'GET',
      host: `${route}.example.com`,
      path: `/v1/${route}/items/${i}?page=${i % 7}`,
      status: noRoute ? 404 : upstreamError ? 502 : cacheStatus === 'hit' ? 200 : i % 9 === 0 ? 304 : 200,
      bytes: Math.floor(rand() * 20_000),
      route: noRoute ? undefined : route,
      backend: noRoute ? undefined : route,
      shard: noRoute ? undefined : 'default',
      server: noRoute || cacheStatus === 'hit' ? undefined : `${route}-${i % 3}`,
      cacheStatus: noRoute ? undefined : cacheStatus,
      errorCode: noRoute ? 'LB_ERR_NO_ROUTE' : upstreamError ? 'LB_ERR_UPSTREAM_CONNECT' : undefined,
      errorFlag: noRoute ? 'NR' : upstreamError ? 'UF' : undefined,
      errorDetail: undefined,
      upstreamMs: noRoute || cacheStatus === 'hit' ? undefined : totalMs * 0.9,
      totalMs,
      retries: upstreamError ? 1 : 0
    })
  }
  return out
}

type Phase = 'record' | 'accessLogJson' | 'both'
const PHASES: readonly Phase[] = ['record', 'accessLogJson', 'both']

let gcs = 0
new PerformanceObserver((list) => { gcs += list.getEntries().length }).observe({ entryTypes: ['gc'] })
const collect = (globalThis as { gc?: () => void }).gc

/** Lets the gc observer report what has happened so far (its entries arrive asynchronously). */
const settle = async (): Promise<void> => { for (let i = 0; i < 3; i++) await new Promise((resolve) => setImmediate(resolve)) }

/** One phase over RECORDS records: ns per record and GCs seen; `sink` keeps the results from being optimised away. */
async function run (phase: Phase, records: Mutable<RequestRecord>[]): Promise<{ cpuNs: number, wallNs: number, gcs: number, sink: number }> {
  const m = new Metrics()
  const iso = isoClock()
  let sink = 0
  collect?.()
  await settle()
  const gcBefore = gcs
  const cpu = process.cpuUsage()
  const start = process.hrtime.bigint()
  for (let i = 0; i < RECORDS; i++) {
    const r = records[i & (POOL - 1)]!
    r.time = T0 + Math.floor(i / PER_MS) - Math.floor(r.totalMs)
    if (phase !== 'accessLogJson') m.record(r)
    if (phase !== 'record') sink += accessLogJson(r, iso).length
  }
  const wall = Number(process.hrtime.bigint() - start)
  const used = process.cpuUsage(cpu)
  await settle()
  return { cpuNs: (used.user + used.system) * 1000 / RECORDS, wallNs: wall / RECORDS, gcs: gcs - gcBefore, sink: sink + m.snapshot(T0).totals.requests }
}

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  const mid = s.length >> 1
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}
const round1 = (x: number): number => Math.round(x * 10) / 10

const records = pool()
await run('both', records) // warm-up: JIT, label sets, histograms
const cpuNs: Record<Phase, number[]> = { record: [], accessLogJson: [], both: [] }
const wallNs: Record<Phase, number[]> = { record: [], accessLogJson: [], both: [] }
const gcCounts: Record<Phase, number[]> = { record: [], accessLogJson: [], both: [] }
for (let round = 0; round < ROUNDS; round++) {
  for (const phase of PHASES) {
    const r = await run(phase, records)
    cpuNs[phase].push(r.cpuNs)
    wallNs[phase].push(r.wallNs)
    gcCounts[phase].push(r.gcs)
    if (r.sink < 0) console.log(r.sink)
  }
}

const rows = PHASES.map((phase) => ({
  phase,
  cpuNsPerRecord: { min: round1(Math.min(...cpuNs[phase])), median: round1(median(cpuNs[phase])), rounds: cpuNs[phase].map(round1) },
  wallNsPerRecord: { min: round1(Math.min(...wallNs[phase])), median: round1(median(wallNs[phase])), rounds: wallNs[phase].map(round1) },
  gcs: gcCounts[phase]
}))
process.stdout.write(`hot path: ${RECORDS} records x ${ROUNDS} rounds, node ${process.version}, ${cpus()[0]?.model ?? 'cpu?'}` +
  `${collect === undefined ? ' (run with --expose-gc for steadier numbers)' : ''}\n` +
  'phase          CPU ns/record min / median   wall ns/record min / median   GCs per round\n')
for (const r of rows) {
  const pair = (x: { min: number, median: number }): string => `${String(x.min).padStart(8)} / ${String(x.median).padEnd(8)}`
  process.stdout.write(`${r.phase.padEnd(14)} ${pair(r.cpuNsPerRecord)}           ${pair(r.wallNsPerRecord)}          ${r.gcs.join(' ')}\n`)
}

const here = dirname(fileURLToPath(import.meta.url))
const root = basename(dirname(here)) === 'dist' ? resolve(here, '../..') : resolve(here, '..')
const dir = join(root, 'bench/results')
mkdirSync(dir, { recursive: true })
const file = join(dir, `hot-path-${new Date().toISOString().replaceAll(':', '-')}.json`)
writeFileSync(file, JSON.stringify({ records: RECORDS, rounds: ROUNDS, node: process.version, cpu: cpus()[0]?.model, rows }, null, 2) + '\n')
process.stdout.write(`wrote ${file}\n`)
