// Switchyard benchmark harness. Not part of `npm test`; run it with
//
//   npm run bench -- [--duration 10] [--connections 50] [--warmup 2] [--only direct,http-proxy] [--no-pin]
//
// It starts a minimal origin, the `http-proxy` peer and Switchyard as child
// processes (the proxy under test pinned to CPU 0, the origin and this process,
// which runs autocannon, pinned to CPU 1), loads each scenario in turn with the
// same settings, measures the proxy's CPU over the measured window, prints a
// table and writes everything to bench/results/<timestamp>.json.
// See bench/README.md for how to read the numbers.

import type { ChildProcess } from 'node:child_process'
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs'
import { request as httpRequest } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { createServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import { cpus, loadavg, release } from 'node:os'
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { writeSelfSignedCert } from './certs.js'
import { benchRun, cpusAllowed, gitCommit, readJsonLine, setupPinning, waitForPorts } from './children.js'
import type { Pinning } from './children.js'
import { meterPid, meterSelf, meterSystem } from './cpu.js'
import { runLoad } from './load.js'
import type { LoadResult, LoadSettings } from './load.js'

const SCENARIOS = ['direct', 'switchyard-h1', 'switchyard-tls', 'switchyard-cache-hit', 'http-proxy'] as const
type ScenarioName = typeof SCENARIOS[number]

const DESCRIPTIONS: Readonly<Record<ScenarioName, string>> = {
  direct: 'autocannon -> origin (no proxy): the ceiling',
  'switchyard-h1': 'autocannon -> Switchyard plaintext HTTP/1.1 -> origin',
  'switchyard-tls': 'autocannon -> Switchyard HTTP/1.1 over TLS -> origin',
  'switchyard-cache-hit': 'autocannon -> Switchyard plaintext HTTP/1.1, answered from its cache (origin asked once)',
  'http-proxy': 'autocannon -> http-proxy (npm, keep-alive agent) -> origin'
}

/** Switchyard must accept connections on both listeners within this time. */
const SWITCHYARD_READY_MS = 10_000
const CHILD_READY_MS = 10_000
const TARGET_RATIO = 1.5

// ---- command line ------------------------------------------------------------

interface Options {
  readonly durationSec: number
  readonly connections: number
  readonly warmupSec: number
  readonly only: readonly ScenarioName[]
  readonly pin: boolean
  /** Switchyard entry point; default dist/src/main.js. */
  readonly main: string
  /** Run Switchyard under `node --cpu-prof`, profile written to bench/results/. */
  readonly cpuProf: boolean
  /** Switchyard writes its JSON access log (off by default: the peer writes none). */
  readonly accessLog: boolean
}

const USAGE = `usage: npm run bench -- [options]
  --duration <s>       measured seconds per scenario (default 10)
  --connections <n>    concurrent connections (default 50)
  --warmup <s>         unmeasured warm-up seconds per scenario (default 2, 0 = none)
  --only <a,b>         scenarios to run, of: ${SCENARIOS.join(', ')}
  --no-pin             do not pin processes to CPUs with taskset
  --cpu-prof           run Switchyard under node --cpu-prof; the .cpuprofile lands in bench/results/
  --access-log         Switchyard writes its JSON access log (default off: http-proxy writes none)
  --main <file>        Switchyard entry point to run as \`<file> start -c <config>\` (default dist/src/main.js)
  --help`

function parseOptions (argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      duration: { type: 'string', default: '10' },
      connections: { type: 'string', default: '50' },
      warmup: { type: 'string', default: '2' },
      only: { type: 'string' },
      'no-pin': { type: 'boolean', default: false },
      main: { type: 'string' },
      'cpu-prof': { type: 'boolean', default: false },
      'access-log': { type: 'boolean', default: false },
      help: { type: 'boolean', default: false }
    },
    strict: true,
    allowPositionals: false
  })
  if (values.help === true) {
    process.stdout.write(USAGE + '\n')
    process.exit(0)
  }
  const int = (name: string, raw: string, min: number): number => {
    const n = Number(raw)
    if (!Number.isInteger(n) || n < min) throw new UsageError(`--${name} must be an integer >= ${min}, got ${JSON.stringify(raw)}`)
    return n
  }
  let only: ScenarioName[] = [...SCENARIOS]
  if (values.only !== undefined) {
    const names = values.only.split(',').map((s) => s.trim()).filter((s) => s !== '')
    const unknown = names.filter((n) => !(SCENARIOS as readonly string[]).includes(n))
    if (unknown.length > 0 || names.length === 0) throw new UsageError(`--only: unknown scenario(s) ${JSON.stringify(unknown)}; known: ${SCENARIOS.join(', ')}`)
    // Keep the canonical order, so `direct` is measured first whatever was typed.
    only = SCENARIOS.filter((s) => names.includes(s))
  }
  return {
    durationSec: int('duration', values.duration, 1),
    connections: int('connections', values.connections, 1),
    warmupSec: int('warmup', values.warmup, 0),
    only,
    pin: values['no-pin'] !== true,
    main: values.main === undefined ? join(dist, 'src/main.js') : resolve(values.main),
    cpuProf: values['cpu-prof'] === true,
    accessLog: values['access-log'] === true
  }
}

class UsageError extends Error {}

// ---- paths, children, cleanup ------------------------------------------------

const run = benchRun('bench', import.meta.url)
const { root, dist, children, shutdown, log } = run

async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', resolve)
  })
  const { port } = server.address() as AddressInfo
  await new Promise<void>((resolve) => server.close(() => { resolve() }))
  return port
}

interface Started {
  readonly child: ChildProcess
  readonly port: number
}

async function startOrigin (pinning: Pinning): Promise<Started & { readonly bodyBytes: number }> {
  const child = children.spawnNode(join(dist, 'bench/origin.js'), [], { cpu: pinning.originCpu, stdio: ['ignore', 'pipe', 'inherit', 'ipc'] })
  const { port, bodyBytes } = await readJsonLine<{ port: number, bodyBytes: number }>(child, 'bench origin', CHILD_READY_MS)
  return { child, port, bodyBytes }
}

async function startPeer (pinning: Pinning, originPort: number): Promise<Started> {
  const child = children.spawnNode(join(dist, 'bench/peer-http-proxy.js'), [`http://127.0.0.1:${originPort}`], { cpu: pinning.proxyCpu, stdio: ['ignore', 'pipe', 'inherit', 'ipc'] })
  const { port } = await readJsonLine<{ port: number }>(child, 'http-proxy peer', CHILD_READY_MS)
  return { child, port }
}

type SwitchyardStart =
  | { readonly ok: true, readonly child: ChildProcess, readonly h1Port: number, readonly tlsPort: number, readonly configFile: string }
  | { readonly ok: false, readonly reason: string }

function switchyardConfig (h1Port: number, tlsPort: number, cert: string, key: string, originPort: number, accessLog: boolean): string {
  const q = (s: string): string => JSON.stringify(s)
  return `# Written by bench/run.ts for one benchmark run; deleted afterwards.
listeners:
  - name: h1
    bind: ${q(`127.0.0.1:${h1Port}`)}
  - name: tls
    bind: ${q(`127.0.0.1:${tlsPort}`)}
    tls: { cert: ${q(cert)}, key: ${q(key)} }
cache: { maxBytes: 64MiB }
# One process, no primary: the default is one worker per CPU, and forked
# workers would inherit the harness's pin to a single CPU.
workers: 1
# The peer (http-proxy) writes no access log; compare like with like. Metrics stay on.
# Run with --access-log to measure Switchyard with its default JSON access log.
accessLog: ${accessLog ? 'true' : 'false'}
admin: { bind: "127.0.0.1:0" }
routes:
  # Pass-through scenarios: no cache phase at all.
  - match: { pathPrefix: / }
    backend: origin
    cache: false
  # The cache-hit scenario: the origin says public, max-age=3600 here.
  - match: { pathPrefix: /cached }
    backend: origin
backends:
  origin:
    servers:
      - url: ${q(`http://127.0.0.1:${originPort}`)}
`
}

function tail (file: string, lines: number): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).map((l) => `    | ${l}`).join('\n')
  } catch {
    return '    | (no log)'
  }
}

async function startSwitchyard (main: string, cpuProfDir: string | null, pinning: Pinning, dir: string, originPort: number, accessLog: boolean): Promise<SwitchyardStart> {
  if (!existsSync(main)) return { ok: false, reason: `${main} not found (the \`start\` CLI is not built yet)` }

  const [h1Port, tlsPort] = [await freePort(), await freePort()]
  const { cert, key } = writeSelfSignedCert(dir)
  const configFile = join(dir, 'switchyard-bench.yaml')
  writeFileSync(configFile, switchyardConfig(h1Port, tlsPort, cert, key, originPort, accessLog))

  // Logs go straight to a file: no pipe for the harness to drain on the load CPU.
  const logFile = join(dir, 'switchyard.log')
  const fd = openSync(logFile, 'w')
  let child: ChildProcess
  try {
    child = children.spawnNode(main, ['start', '-c', configFile], {
      cpu: pinning.proxyCpu,
      // fd 3 = IPC, only so that bench/parent-watch.ts notices if we die without stopping it.
      stdio: ['ignore', fd, fd, 'ipc'],
      cwd: root,
      nodeFlags: [
        '--import', pathToFileURL(join(dist, 'bench/parent-watch.js')).href,
        ...(cpuProfDir === null ? [] : ['--cpu-prof', '--cpu-prof-dir', cpuProfDir])
      ]
    })
  } finally {
    closeSync(fd)
  }
  const problem = await waitForPorts(child, [h1Port, tlsPort], SWITCHYARD_READY_MS)
  if (problem === null) return { ok: true, child, h1Port, tlsPort, configFile }

  child.kill('SIGKILL')
  return { ok: false, reason: `\`switchyard start\` not ready: ${problem}; its log:\n${tail(logFile, 15)}` }
}

// ---- one scenario ------------------------------------------------------------

/** One GET through the scenario's path before loading it: the scenario must answer 200 with the origin's body. */
function preflight (url: string, bodyBytes: number): Promise<string | null> {
  return new Promise((resolve) => {
    const u = new URL(url)
    const request = u.protocol === 'https:' ? httpsRequest : httpRequest
    const req = request(u, { agent: false, rejectUnauthorized: false, timeout: 5000 }, (res) => {
      let n = 0
      res.on('data', (c: Buffer) => { n += c.length })
      res.on('end', () => {
        if (res.statusCode !== 200) resolve(`preflight GET ${url} answered ${res.statusCode}`)
        else if (n !== bodyBytes) resolve(`preflight GET ${url} returned ${n} body bytes, origin sends ${bodyBytes}`)
        else resolve(null)
      })
      res.on('error', (err) => { resolve(`preflight GET ${url}: ${err.message}`) })
    })
    req.on('timeout', () => { req.destroy(new Error('timed out')) })
    req.on('error', (err) => { resolve(`preflight GET ${url}: ${err.message}`) })
    req.end()
  })
}

interface CpuShare { readonly cpuSeconds: number, readonly wallSeconds: number, readonly share: number }

interface ScenarioResult {
  readonly name: ScenarioName
  readonly description: string
  readonly url: string | null
  readonly skipped: string | null
  readonly load: LoadResult | null
  readonly cpu: {
    readonly proxy: CpuShare | null
    readonly origin: CpuShare | null
    readonly loadgen: CpuShare | null
    /** Busy CPU of the whole machine, ours included; `other` = what is not ours (noise). */
    readonly machine: CpuShare | null
    readonly other: number | null
  }
  readonly reqPerCore: number | null
  vsDirect: number | null
  perCoreVsHttpProxy: number | null
}

function skipped (name: ScenarioName, reason: string): ScenarioResult {
  return { name, description: DESCRIPTIONS[name], url: null, skipped: reason, load: null, cpu: { proxy: null, origin: null, loadgen: null, machine: null, other: null }, reqPerCore: null, vsDirect: null, perCoreVsHttpProxy: null }
}

async function runScenario (name: ScenarioName, url: string, proxyPid: number | undefined, originPid: number | undefined, settings: LoadSettings, warmupSec: number, bodyBytes: number): Promise<ScenarioResult> {
  const problem = await preflight(url, bodyBytes)
  if (problem !== null) {
    log(`[${name}] skipped: ${problem}`)
    return skipped(name, problem)
  }
  if (warmupSec > 0) {
    log(`[${name}] warm-up ${warmupSec} s (not counted)`)
    await runLoad(url, { ...settings, durationSec: warmupSec })
  }
  log(`[${name}] measuring ${settings.durationSec} s, ${settings.connections} connections: ${url}`)
  const proxyMeter = meterPid(proxyPid)
  const originMeter = meterPid(originPid)
  const selfMeter = meterSelf()
  const machineMeter = meterSystem()
  const load = await runLoad(url, settings)
  const proxyCpu = proxyMeter.stop()
  const originCpu = originMeter.stop()
  const loadgenCpu = selfMeter.stop()
  const machine = machineMeter.stop()
  const other = machine === null ? null : Math.max(0, machine.share - (proxyCpu?.share ?? 0) - (originCpu?.share ?? 0) - (loadgenCpu?.share ?? 0))
  const cpu = { proxy: proxyCpu, origin: originCpu, loadgen: loadgenCpu, machine, other }
  const reqPerCore = cpu.proxy !== null && cpu.proxy.share > 0 ? load.reqPerSec / cpu.proxy.share : null
  return { name, description: DESCRIPTIONS[name], url, skipped: null, load, cpu, reqPerCore, vsDirect: null, perCoreVsHttpProxy: null }
}

// ---- report ------------------------------------------------------------------

function fmt (n: number | null | undefined, digits: number): string {
  return n === null || n === undefined || !Number.isFinite(n) ? '-' : n.toFixed(digits)
}

function table (results: readonly ScenarioResult[]): string {
  const head = ['scenario', 'req/s', 'p50 ms', 'p99 ms', 'p99.9 ms', 'err/non2xx', 'proxy CPU', 'req/s/core', 'x direct', 'core x http-proxy', 'origin+gen', 'other']
  const rows = results.map((r) => {
    if (r.load === null) return [r.name, `skipped: ${((r.skipped ?? '').split('\n')[0] ?? '').replace(/; its log:$/, '')}`]
    const l = r.load
    const cpu1 = r.cpu.origin !== null && r.cpu.loadgen !== null ? r.cpu.origin.share + r.cpu.loadgen.share : null
    return [
      r.name,
      fmt(l.reqPerSec, 0),
      fmt(l.latencyMs.p50, 2),
      fmt(l.latencyMs.p99, 2),
      fmt(l.latencyMs.p99_9, 2),
      `${l.errors + l.timeouts}/${l.non2xx}`,
      fmt(r.cpu.proxy?.share, 2),
      fmt(r.reqPerCore, 0),
      fmt(r.vsDirect, 2),
      fmt(r.perCoreVsHttpProxy, 2),
      fmt(cpu1, 2),
      fmt(r.cpu.other, 2)
    ]
  })
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row.length === head.length ? (row[i] ?? '').length : 0)))
  const line = (cells: readonly string[]): string => cells.length === head.length
    ? cells.map((c, i) => i === 0 ? c.padEnd(widths[0] ?? 0) : c.padStart(widths[i] ?? 0)).join('  ')
    : `${(cells[0] ?? '').padEnd(widths[0] ?? 0)}  ${cells[1] ?? ''}`
  return [line(head), ...rows.map(line)].join('\n')
}


// ---- main --------------------------------------------------------------------

async function main (): Promise<void> {
  let opts: Options
  try {
    opts = parseOptions(process.argv.slice(2))
  } catch (err) {
    log(`${err instanceof Error ? err.message : String(err)}\n${USAGE}`)
    process.exitCode = 2
    return
  }
  for (const script of ['bench/origin.js', 'bench/peer-http-proxy.js']) {
    if (!existsSync(join(dist, script))) throw new Error(`${join(dist, script)} not found: build first (npm run bench does)`)
  }

  const pinning = setupPinning(opts.pin)
  if (!pinning.enabled) log(`warning: not pinned: ${pinning.note}. Proxy, origin and load generator compete for the same CPUs; numbers are noisier.`)
  else log(`pinning: ${pinning.note}`)

  const startedAt = new Date()
  const resultsDir = join(root, 'bench/results')
  mkdirSync(resultsDir, { recursive: true })
  const tmp = run.tempDir('switchyard-bench-')
  const settings: LoadSettings = { connections: opts.connections, durationSec: opts.durationSec, pipelining: 1 }
  const wants = (n: ScenarioName): boolean => opts.only.includes(n)

  const origin = await startOrigin(pinning)
  log(`origin: pid ${origin.child.pid}, port ${origin.port}, ${origin.bodyBytes}-byte body`)

  const peer = wants('http-proxy') ? await startPeer(pinning, origin.port) : null
  if (peer !== null) log(`http-proxy peer: pid ${peer.child.pid}, port ${peer.port}`)

  let switchyard: SwitchyardStart = { ok: false, reason: 'not requested' }
  if (wants('switchyard-h1') || wants('switchyard-tls') || wants('switchyard-cache-hit')) {
    try {
      switchyard = await startSwitchyard(opts.main, opts.cpuProf ? resultsDir : null, pinning, tmp, origin.port, opts.accessLog)
    } catch (err) {
      switchyard = { ok: false, reason: `could not start: ${err instanceof Error ? err.message : String(err)}` }
    }
    if (switchyard.ok) log(`switchyard: pid ${switchyard.child.pid}, h1 port ${switchyard.h1Port}, tls port ${switchyard.tlsPort}`)
    else log(`switchyard scenarios skipped: ${switchyard.reason}`)
  }

  const results: ScenarioResult[] = []
  for (const name of opts.only) {
    let url: string | null = null
    let proxy: ChildProcess | undefined
    switch (name) {
      case 'direct':
        url = `http://127.0.0.1:${origin.port}/bench`
        break
      case 'switchyard-h1':
        if (switchyard.ok) { url = `http://127.0.0.1:${switchyard.h1Port}/bench`; proxy = switchyard.child }
        break
      case 'switchyard-tls':
        if (switchyard.ok) { url = `https://127.0.0.1:${switchyard.tlsPort}/bench`; proxy = switchyard.child }
        break
      case 'switchyard-cache-hit':
        if (switchyard.ok) { url = `http://127.0.0.1:${switchyard.h1Port}/cached/bench`; proxy = switchyard.child }
        break
      case 'http-proxy':
        if (peer !== null) { url = `http://127.0.0.1:${peer.port}/bench`; proxy = peer.child }
        break
      default: {
        const never: never = name
        throw new Error(`unknown scenario ${String(never)}`)
      }
    }
    if (url === null) {
      results.push(skipped(name, switchyard.ok ? 'not started' : switchyard.reason))
      continue
    }
    results.push(await runScenario(name, url, proxy?.pid, origin.child.pid, settings, opts.warmupSec, origin.bodyBytes))
  }

  // Ratios.
  const direct = results.find((r) => r.name === 'direct')?.load?.reqPerSec ?? null
  const peerPerCore = results.find((r) => r.name === 'http-proxy')?.reqPerCore ?? null
  for (const r of results) {
    if (r.load === null) continue
    r.vsDirect = direct !== null && direct > 0 ? r.load.reqPerSec / direct : null
    r.perCoreVsHttpProxy = r.reqPerCore !== null && peerPerCore !== null && peerPerCore > 0 ? r.reqPerCore / peerPerCore : null
  }
  const h1 = results.find((r) => r.name === 'switchyard-h1')
  const target = h1?.perCoreVsHttpProxy ?? null

  const affinity = {
    harness: cpusAllowed('self'),
    origin: origin.child.pid === undefined ? null : cpusAllowed(origin.child.pid),
    httpProxy: peer?.child.pid === undefined ? null : cpusAllowed(peer.child.pid),
    switchyard: switchyard.ok && switchyard.child.pid !== undefined ? cpusAllowed(switchyard.child.pid) : null
  }

  const out = process.stdout
  out.write('\n' + table(results) + '\n\n')
  out.write('req/s/core = req/s / proxy CPU share (1.00 = one full core). origin+gen = origin + load generator CPU share (both on CPU 1 when pinned).\n')
  out.write('other = CPU used by processes that are not ours during the window (noise on a shared machine).\n')
  if (target !== null) {
    out.write(`target: switchyard-h1 req/s per core / http-proxy req/s per core = ${target.toFixed(2)} (target >= ${TARGET_RATIO}: ${target >= TARGET_RATIO ? 'MET' : 'NOT MET'})\n`)
  } else {
    out.write(`target: switchyard-h1 req/s per core / http-proxy req/s per core = n/a (needs both scenarios measured; target >= ${TARGET_RATIO})\n`)
  }
  const hit = results.find((r) => r.name === 'switchyard-cache-hit')
  const directRun = results.find((r) => r.name === 'direct')
  if (hit?.load != null && h1?.load != null) {
    out.write(`cache hit: ${(hit.load.reqPerSec / h1.load.reqPerSec).toFixed(2)}x the pass-through req/s` +
      (directRun?.load != null ? `, ${(hit.load.reqPerSec / directRun.load.reqPerSec).toFixed(2)}x the origin served directly` : '') + '\n')
  }
  const noisy = results.filter((r) => r.cpu.other !== null && r.cpu.other > 0.2)
  if (noisy.length > 0) {
    out.write(`note: other processes used > 0.2 of a core in ${noisy.map((r) => r.name).join(', ')}: treat those rows as noisy and re-run.\n`)
  }
  const saturated = results.filter((r) => r.cpu.origin !== null && r.cpu.loadgen !== null && r.cpu.origin.share + r.cpu.loadgen.share > 0.9)
  if (saturated.length > 0 && pinning.enabled) {
    out.write(`note: CPU 1 (origin + load generator) was near saturation in ${saturated.map((r) => r.name).join(', ')}: req/s there is bounded by the load side; compare req/s/core.\n`)
  }

  const report = {
    startedAt: startedAt.toISOString(),
    node: process.version,
    v8: process.versions.v8,
    os: `${process.platform} ${release()}`,
    cpuModel: cpus()[0]?.model ?? null,
    cpuCount: cpus().length,
    loadavgAtEnd: loadavg(),
    gitCommit: gitCommit(root),
    settings: { ...settings, warmupSec: opts.warmupSec, only: opts.only, switchyardMain: opts.main, cpuProf: opts.cpuProf, accessLog: opts.accessLog },
    pinning: { ...pinning, affinity },
    target: { metric: 'switchyard-h1 reqPerCore / http-proxy reqPerCore', value: target, goal: TARGET_RATIO },
    scenarios: results
  }
  const file = join(resultsDir, `${startedAt.toISOString().replace(/:/g, '-')}.json`)
  writeFileSync(file, JSON.stringify(report, null, 2) + '\n')
  out.write(`results: ${file}\n`)
  if (opts.cpuProf && switchyard.ok) {
    out.write(`cpu profile: written to ${resultsDir}/ when Switchyard exits (open it in Chrome DevTools > Performance, or VS Code)\n`)
  }
}

main().then(
  async () => { await shutdown(process.exitCode === undefined ? 0 : Number(process.exitCode)) },
  async (err: unknown) => {
    log(`bench failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}`)
    await shutdown(1)
  }
)
