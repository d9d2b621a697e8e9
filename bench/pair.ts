// Paired A/B of two Switchyard builds, for a before/after of one change on a
// noisy shared machine. Not part of `npm test`:
//
//   npm run bench:pair -- <mainA.js> <mainB.js> [--scenario pass|tls|h2|hit] [--rounds 6] [--duration 3]
//                         [--warmup 2] [--connections 25] [--args-a '<node args>'] [--args-b '<node args>']
//
// Both builds run at the same time, both pinned to the proxy CPU (0), each
// loaded by its own wrk or h2load on CPU 1 against one shared origin (also on
// CPU 1). Noise from the rest of the machine then falls on both alike, and
// each round's B/A of the proxies' CPU per request (utime + stime from
// /proc/<pid>/stat over the measured window) cancels it; run one after the
// other they vary ±30%. Every round starts fresh processes (the first to
// start alternates), warms both up together, then measures both together.
// Prints a line per round and a summary; the JSON goes to
// bench/results/pair-<timestamp>.json (git-ignored). See bench/README.md.

import type { ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { loadavg } from 'node:os'
import { dirname, join, relative } from 'node:path'
import { writeSelfSignedCert } from './certs.js'
import { benchRun, cpusAllowed, freePorts, gitCommit, isRunning, logTail, machineFacts, readJsonLine, setupPinning, waitForPorts } from './children.js'
import type { Pinning } from './children.js'
import { meterPid } from './cpu.js'
import { runH2load, runWrk } from './generators.js'
import type { LoadResult } from './load.js'
import { UsageError } from './options.js'
import { PAIR_USAGE, parsePairOptions, roundRatio, summarizePair, usPerRequest } from './paired.js'
import type { PairOptions, PairScenario } from './paired.js'
import { checkGet, switchyardConfig } from './switchyard.js'
import { TOOLS, which } from './tools.js'
import type { ToolName } from './tools.js'

const run = benchRun('bench:pair', import.meta.url)
const { root, dist, children, shutdown, log } = run

const READY_MS = 10_000
/** The h2 shape: few connections, many streams each, as browsers and h2 clients do. */
const H2_CONNECTIONS = 5
const H2_STREAMS = 10
/** runH2load passes `--warm-up-time 1`: h2load counts nothing in its first second, so neither does the CPU meter. */
const H2LOAD_WARMUP_MS = 1000
/** What A against A reads here; said with every summary so a B/A is read against it. */
const SAME_BUILD_BAND = '0.95-1.05'

type Side = 'A' | 'B'

interface SideSpec {
  readonly side: Side
  readonly main: string
  readonly nodeArgs: readonly string[]
  /** Its own dir: certificate, config, logs, the generator's scratch files (h2load's log must not be shared). */
  readonly dir: string
  readonly cert: string
  readonly key: string
}

interface Running {
  readonly spec: SideSpec
  readonly child: ChildProcess
  readonly pid: number
  readonly url: string
  readonly logFile: string
}

interface SideResult {
  readonly pid: number
  /** CPU affinity of the proxy as the kernel reports it: `0` when pinned. */
  readonly cpus: string | null
  readonly cpuSeconds: number | null
  readonly wallSeconds: number | null
  readonly usPerRequest: number | null
  readonly load: LoadResult
}

interface RoundResult {
  readonly round: number
  readonly first: Side
  readonly a: SideResult | null
  readonly b: SideResult | null
  readonly ratio: number | null
  /** Why the round has no numbers, when it failed. */
  readonly failed: string | null
}

/** A build that did not start: it will not start next round either, so the run stops. */
class NotReady extends Error {}

function urlFor (scenario: PairScenario, ports: { h1: number, tls: number }): string {
  switch (scenario) {
    case 'pass': return `http://127.0.0.1:${ports.h1}/bench`
    case 'tls':
    case 'h2': return `https://127.0.0.1:${ports.tls}/bench`
    case 'hit': return `http://127.0.0.1:${ports.h1}/cached/bench`
    default: {
      const never: never = scenario
      throw new Error(`unknown scenario ${String(never)}`)
    }
  }
}

async function startSide (spec: SideSpec, round: number, o: PairOptions, originPort: number, pinning: Pinning): Promise<Running> {
  const [h1 = 0, tls = 0] = await freePorts(2)
  const ports = { h1, tls }
  const configFile = join(spec.dir, `switchyard-${round}.yaml`)
  writeFileSync(configFile, switchyardConfig({ ...ports, admin: 0 }, spec.cert, spec.key, originPort, o.accessLog, 1))
  const logFile = join(spec.dir, `switchyard-${round}.log`)
  const child = run.spawnLogged(spec.main, ['start', '-c', configFile], { cpu: pinning.proxyCpu, logFile, nodeFlags: spec.nodeArgs })
  const problem = await waitForPorts(child, [ports.h1, ports.tls], READY_MS)
  if (problem !== null || child.pid === undefined) {
    await children.stop(child, 2000)
    throw new NotReady(`${spec.side} (${spec.main}) not ready: ${problem ?? 'no pid'}; its log:\n${logTail(logFile, 15)}`)
  }
  return { spec, child, pid: child.pid, url: urlFor(o.scenario, ports), logFile }
}

/** The path must answer before it is loaded; for hit, a second GET must come from the cache. */
async function preflight (r: Running, scenario: PairScenario, bodyBytes: number): Promise<void> {
  const first = await checkGet(r.url, bodyBytes)
  if (first.problem !== null) throw new Error(`${r.spec.side}: preflight: ${first.problem}`)
  if (scenario !== 'hit') return
  const second = await checkGet(r.url, bodyBytes)
  if (second.problem !== null) throw new Error(`${r.spec.side}: preflight: ${second.problem}`)
  // A warning, not an error: an older build may not send Cache-Status at all.
  if (!/;\s*hit\b/.test(second.cacheStatus)) log(`warning: ${r.spec.side}: the second GET of ${r.url} was not a cache hit (Cache-Status: ${second.cacheStatus || 'none'})`)
}

type Load = (url: string, dir: string, durationSec: number) => Promise<LoadResult>

function loaderFor (scenario: PairScenario, o: PairOptions, pinning: Pinning): Load {
  if (scenario === 'h2') {
    return async (url, dir, durationSec) => await runH2load(url, { children, cpu: pinning.loadgenCpu, dir, connections: H2_CONNECTIONS, streams: H2_STREAMS, durationSec })
  }
  return async (url, dir, durationSec) => await runWrk(url, { children, cpu: pinning.loadgenCpu, dir, connections: o.connections, durationSec })
}

/** Loads one side for the window and meters its proxy's CPU over the part the generator counts. */
async function measure (r: Running, load: Load, durationSec: number, meterDelayMs: number): Promise<SideResult> {
  const running = load(r.url, r.spec.dir, durationSec)
  // Handled below: this only keeps a failure during the delay from counting as unhandled.
  running.catch(() => {})
  if (meterDelayMs > 0) await new Promise((resolve) => setTimeout(resolve, meterDelayMs))
  const meter = meterPid(r.pid)
  const result = await running
  const cpu = meter.stop()
  if (!isRunning(r.child)) throw new Error(`${r.spec.side} exited during the window; its log:\n${logTail(r.logFile, 15)}`)
  return {
    pid: r.pid,
    cpus: cpusAllowed(r.pid),
    cpuSeconds: cpu?.cpuSeconds ?? null,
    wallSeconds: cpu?.wallSeconds ?? null,
    usPerRequest: usPerRequest(cpu?.cpuSeconds ?? null, result.requests),
    load: result
  }
}

/** Both settled, then the first failure thrown: a rejection must not leave the other generator running unwatched. */
async function both<T> (a: Promise<T>, b: Promise<T>): Promise<[T, T]> {
  const [x, y] = await Promise.allSettled([a, b])
  if (x.status === 'rejected') throw x.reason
  if (y.status === 'rejected') throw y.reason
  return [x.value, y.value]
}

async function runRound (round: number, specs: { A: SideSpec, B: SideSpec }, o: PairOptions, origin: { port: number, bodyBytes: number }, pinning: Pinning, load: Load): Promise<RoundResult> {
  const first: Side = round % 2 === 1 ? 'A' : 'B'
  const started: Running[] = []
  try {
    // One after the other, the first alternating: neither always gets the quieter start.
    for (const side of first === 'A' ? ['A', 'B'] as const : ['B', 'A'] as const) {
      started.push(await startSide(specs[side], round, o, origin.port, pinning))
    }
    const a = started.find((s) => s.spec.side === 'A')
    const b = started.find((s) => s.spec.side === 'B')
    if (a === undefined || b === undefined) throw new Error('a side did not start')
    await both(preflight(a, o.scenario, origin.bodyBytes), preflight(b, o.scenario, origin.bodyBytes))
    if (o.warmupSec > 0) await both(load(a.url, a.spec.dir, o.warmupSec), load(b.url, b.spec.dir, o.warmupSec))
    const delay = o.scenario === 'h2' ? H2LOAD_WARMUP_MS : 0
    const [ra, rb] = await both(measure(a, load, o.durationSec, delay), measure(b, load, o.durationSec, delay))
    return { round, first, a: ra, b: rb, ratio: roundRatio({ aUs: ra.usPerRequest, bUs: rb.usPerRequest }), failed: null }
  } finally {
    await Promise.all(started.map(async (s) => { await children.stop(s.child, 10_000) }))
  }
}

const fmt = (n: number | null | undefined, digits: number): string =>
  n === null || n === undefined || !Number.isFinite(n) ? '-' : n.toFixed(digits)

function roundLine (r: RoundResult): string {
  const head = `round ${r.round} (${r.first} first):`
  if (r.failed !== null || r.a === null || r.b === null) return `${head} failed: ${(r.failed ?? '').split('\n')[0] ?? ''}`
  const bad = (s: SideResult): number => s.load.errors + s.load.timeouts + s.load.non2xx
  const errors = bad(r.a) + bad(r.b) > 0 ? `  errors/non-2xx A ${bad(r.a)} B ${bad(r.b)}` : ''
  return `${head} A ${fmt(r.a.usPerRequest, 1)} µs/req  B ${fmt(r.b.usPerRequest, 1)} µs/req  B/A ${fmt(r.ratio, 3)}` +
    `  p99 A ${fmt(r.a.load.latencyMs.p99, 2)} ms  B ${fmt(r.b.load.latencyMs.p99, 2)} ms` +
    `  (req/s A ${fmt(r.a.load.reqPerSec, 0)}  B ${fmt(r.b.load.reqPerSec, 0)})${errors}`
}

/** The tools the scenario needs; exits 2 naming what is missing (this bench installs nothing). */
function missingTools (scenario: PairScenario): string[] {
  const wanted: ToolName[] = [scenario === 'h2' ? 'h2load' : 'wrk']
  return wanted.filter((t) => which(TOOLS[t].command) === null)
    .map((t) => `${TOOLS[t].command} not found (Debian package ${TOOLS[t].pkg}: sudo apt-get install -y ${TOOLS[t].pkg})`)
}

/** A path for the report: relative to the repository when inside it. */
function shown (file: string): string {
  const rel = relative(root, file)
  return rel.startsWith('..') ? file : rel
}

async function main (): Promise<void> {
  let o: PairOptions
  try {
    o = parsePairOptions(process.argv.slice(2), process.cwd())
  } catch (err) {
    if (!(err instanceof UsageError)) throw err
    log(`${err.message}\n${PAIR_USAGE}`)
    process.exitCode = 2
    return
  }
  if (o.help) {
    process.stdout.write(PAIR_USAGE + '\n')
    return
  }
  for (const file of [o.mainA, o.mainB]) {
    if (!existsSync(file)) {
      log(`${file} not found: build that checkout first (npm run build)`)
      process.exitCode = 2
      return
    }
  }
  for (const script of ['bench/origin.js', 'bench/parent-watch.js']) {
    if (!existsSync(join(dist, script))) throw new Error(`${join(dist, script)} not found: build first (npm run bench:pair does)`)
  }
  const missing = missingTools(o.scenario)
  if (missing.length > 0) {
    for (const m of missing) log(m)
    process.exitCode = 2
    return
  }

  const pinning = setupPinning(true)
  if (!pinning.enabled) log(`warning: not pinned: ${pinning.note}. The two proxies and the load share every CPU; the ${SAME_BUILD_BAND} band of A against A was measured pinned.`)
  else log(`pinning: both proxies on CPU ${pinning.proxyCpu ?? '?'}; origin, both generators and this harness on CPU ${pinning.loadgenCpu ?? '?'}`)

  const startedAt = new Date()
  const resultsDir = join(root, 'bench/results')
  mkdirSync(resultsDir, { recursive: true })
  const tmp = run.tempDir('switchyard-pair-')
  const spec = (side: Side, main: string, nodeArgs: readonly string[]): SideSpec => {
    const dir = join(tmp, side)
    mkdirSync(dir)
    return { side, main, nodeArgs, dir, ...writeSelfSignedCert(dir) }
  }
  const specs = { A: spec('A', o.mainA, o.argsA), B: spec('B', o.mainB, o.argsB) }

  const originChild = children.spawnNode(join(dist, 'bench/origin.js'), [], { cpu: pinning.originCpu, stdio: ['ignore', 'pipe', 'inherit', 'ipc'] })
  const origin = await readJsonLine<{ port: number, bodyBytes: number }>(originChild, 'bench origin', READY_MS)
  const generator = o.scenario === 'h2' ? `h2load -c ${H2_CONNECTIONS} -m ${H2_STREAMS}` : `wrk -c ${o.connections}`
  log(`A: ${o.mainA}${o.argsA.length > 0 ? ` (node ${o.argsA.join(' ')})` : ''}`)
  log(`B: ${o.mainB}${o.argsB.length > 0 ? ` (node ${o.argsB.join(' ')})` : ''}`)
  log(`scenario ${o.scenario}: ${o.rounds} rounds, ${o.warmupSec} s warm-up + ${o.durationSec} s measured, ${generator} per side; origin port ${origin.port}`)

  const load = loaderFor(o.scenario, o, pinning)
  const out = process.stdout
  const rounds: RoundResult[] = []
  for (let round = 1; round <= o.rounds; round++) {
    let r: RoundResult
    try {
      r = await runRound(round, specs, o, origin, pinning, load)
    } catch (err) {
      if (err instanceof NotReady) throw err
      const why = err instanceof Error ? err.message : String(err)
      log(`round ${round}: ${why}`)
      r = { round, first: round % 2 === 1 ? 'A' : 'B', a: null, b: null, ratio: null, failed: why }
    }
    rounds.push(r)
    out.write(roundLine(r) + '\n')
  }

  const summary = summarizePair(rounds.map((r) => ({ aUs: r.a?.usPerRequest ?? null, bUs: r.b?.usPerRequest ?? null })))
  const measured = summary.ratio?.n ?? 0
  out.write(`\n${o.scenario}, ${measured} of ${o.rounds} rounds measured, CPU-µs per request of each proxy (utime + stime over the window):\n`)
  out.write(`  A median ${fmt(summary.a?.median, 1)} µs/req (${fmt(summary.a?.min, 1)}-${fmt(summary.a?.max, 1)})` +
    `  B median ${fmt(summary.b?.median, 1)} µs/req (${fmt(summary.b?.min, 1)}-${fmt(summary.b?.max, 1)})\n`)
  out.write(`  B/A median of the per-round ratios ${fmt(summary.ratio?.median, 3)} (range ${fmt(summary.ratio?.min, 3)}-${fmt(summary.ratio?.max, 3)})\n`)
  out.write(`  reminder: A against A reads ${SAME_BUILD_BAND} on these machines; a B/A inside that band is no difference this can show.\n`)
  if (!pinning.enabled) out.write(`  note: unpinned (${pinning.note}): that band does not apply.\n`)
  const withErrors = rounds.filter((r) => [r.a, r.b].some((s) => s !== null && s.load.errors + s.load.timeouts + s.load.non2xx > 0))
  if (withErrors.length > 0) out.write(`  note: errors or non-2xx answers in round ${withErrors.map((r) => r.round).join(', ')}: see those lines.\n`)

  const side = (s: SideSpec): object => ({ main: s.main, nodeArgs: s.nodeArgs, gitCommit: gitCommit(dirname(s.main)) })
  const report = {
    startedAt: startedAt.toISOString(),
    ...machineFacts(),
    loadavgAtEnd: loadavg(),
    gitCommit: gitCommit(root),
    settings: {
      scenario: o.scenario, rounds: o.rounds, durationSec: o.durationSec, warmupSec: o.warmupSec, generator,
      connections: o.scenario === 'h2' ? H2_CONNECTIONS : o.connections, streams: o.scenario === 'h2' ? H2_STREAMS : 1, accessLog: o.accessLog
    },
    a: side(specs.A),
    b: side(specs.B),
    pinning,
    metric: 'proxy CPU-µs per request (utime + stime of /proc/<pid>/stat over the measured window / requests completed); ratio = B/A within a round',
    sameBuildBand: SAME_BUILD_BAND,
    summary,
    rounds
  }
  const file = join(resultsDir, `pair-${startedAt.toISOString().replace(/:/g, '-')}.json`)
  writeFileSync(file, JSON.stringify(report, null, 2) + '\n')
  out.write(`results: ${shown(file)}\n`)
}

main().then(
  async () => { await shutdown(process.exitCode === undefined ? 0 : Number(process.exitCode)) },
  async (err: unknown) => {
    log(`bench:pair failed: ${err instanceof Error ? err.message : String(err)}`)
    await shutdown(1)
  }
)
