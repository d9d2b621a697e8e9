// Switchyard benchmark harness. Not part of `npm test`; run it with
//
//   npm run bench -- [--duration 10] [--connections 50] [--warmup 2] [--only direct,http-proxy|workers|peers] [--rounds 3] [--no-pin]
//
// It starts a minimal origin, the peers (the `http-proxy` package, fastify with
// @fastify/http-proxy over HTTP/1.1 and h2, nginx, and bare
// node:http/https/http2 servers as the ceiling) and Switchyard as child
// processes (the proxy under test pinned to CPU 0, the origin and the load
// generator, wrk or h2load or autocannon in this process, pinned to CPU 1),
// loads each scenario in turn with the same settings, `--rounds` times over,
// measures the proxy's CPU over the measured window, prints a table per run
// and one of medians against nginx, the best Node peer and the ceiling, and
// writes everything to bench/results/<timestamp>.json. nginx, wrk and h2load
// are installed (apt-get, as root) when missing; see bench/tools.ts.
// The workers pairs (1 worker against 2) start a Switchyard of their own per
// scenario and sum the CPU of its primary and every worker: one pair not
// pinned to one CPU (throughput), one with the whole proxy pinned to CPU 0
// (what the cluster itself costs per request).
// See bench/README.md for how to read the numbers.

import { spawnSync } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { request as httpRequest } from 'node:http'
import { cpus, loadavg } from 'node:os'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { writeSelfSignedCert } from './certs.js'
import { benchRun, cpusAllowed, freePorts, gitCommit, isRunning, logTail, machineFacts, readJsonLine, setupPinning, waitForPorts } from './children.js'
import type { Pinning } from './children.js'
import { meterPid, meterPids, meterSelfAndReaped, meterSystem } from './cpu.js'
import { runH2load, runWrk } from './generators.js'
import { runLoad } from './load.js'
import type { LoadResult, LoadSettings } from './load.js'
import { intOption, selectNames } from './options.js'
import { comparePeers, haproxyConfig, nginxConfig, paceRange, spread, varnishVcl } from './peers.js'
import type { PeerComparison, PeerRow, Spread } from './peers.js'
import { checkGet, switchyardConfig } from './switchyard.js'
import { ensureTools } from './tools.js'
import type { ToolName } from './tools.js'

const SCENARIOS = [
  'direct', 'ceiling-h1', 'ceiling-tls', 'ceiling-h2',
  'switchyard-h1', 'nginx', 'haproxy', 'http-proxy', 'fastify-proxy',
  'switchyard-tls', 'nginx-tls', 'haproxy-tls',
  'switchyard-h2', 'nginx-h2', 'haproxy-h2', 'fastify-proxy-h2',
  'switchyard-cache-hit', 'nginx-cache-hit', 'varnish-cache-hit',
  'direct-dynamic', 'switchyard-dynamic-cached', 'switchyard-dynamic-uncached',
  'switchyard-1-worker', 'switchyard-2-workers', 'switchyard-1-worker-pinned', 'switchyard-2-workers-pinned'
] as const
type ScenarioName = typeof SCENARIOS[number]

/**
 * A workers scenario runs a Switchyard of its own with this many workers,
 * plaintext HTTP/1.1: `pinned` puts the whole proxy (primary and workers, which
 * inherit its affinity) on the proxy CPU; otherwise it may use every CPU.
 */
interface Fleet { readonly workers: number, readonly pinned: boolean }
const FLEETS: ReadonlyMap<ScenarioName, Fleet> = new Map([
  ['switchyard-1-worker', { workers: 1, pinned: false }],
  ['switchyard-2-workers', { workers: 2, pinned: false }],
  ['switchyard-1-worker-pinned', { workers: 1, pinned: true }],
  ['switchyard-2-workers-pinned', { workers: 2, pinned: true }]
])

/** 1 worker against 2, compared in the summary. */
interface WorkersPair { readonly one: ScenarioName, readonly two: ScenarioName, readonly pinned: boolean }
const PAIRS: readonly WorkersPair[] = [
  { one: 'switchyard-1-worker', two: 'switchyard-2-workers', pinned: false },
  { one: 'switchyard-1-worker-pinned', two: 'switchyard-2-workers-pinned', pinned: true }
]

/** How a scenario is loaded: plaintext HTTP/1.1, HTTP/1.1 over TLS, or h2 over TLS (always h2load). */
type Protocol = 'h1' | 'tls' | 'h2'

/**
 * A row of the peers table: its protocol, and the rows it is compared with
 * (see bench/peers.ts comparePeers). `connections` overrides --connections
 * (the dynamic pair: the issue's 20 clients).
 */
interface PeerSpec {
  readonly protocol: Protocol
  readonly nginx: ScenarioName | null
  /** The other native proxy of the kind: HAProxy, or Varnish for cache hits. */
  readonly native: ScenarioName | null
  readonly nodePeers: readonly ScenarioName[]
  readonly ceiling: ScenarioName | null
  readonly latencyRef: ScenarioName | null
  readonly connections?: number
}

/** The issue's measurement of a cached route in front of a dynamic endpoint: 20 concurrent clients. */
const DYNAMIC_CONNECTIONS = 20

// The Node peers of a protocol: the best of them per core is the reference (issue bars: @fastify/http-proxy).
const h1Peers = { nginx: 'nginx', native: 'haproxy', nodePeers: ['http-proxy', 'fastify-proxy'], ceiling: 'ceiling-h1', latencyRef: 'direct' } as const
const tlsPeers = { nginx: 'nginx-tls', native: 'haproxy-tls', nodePeers: [], ceiling: 'ceiling-tls', latencyRef: 'direct' } as const
const h2Peers = { nginx: 'nginx-h2', native: 'haproxy-h2', nodePeers: ['fastify-proxy-h2'], ceiling: 'ceiling-h2', latencyRef: 'ceiling-h2' } as const
const hitPeers = { nginx: 'nginx-cache-hit', native: 'varnish-cache-hit', nodePeers: [], ceiling: 'ceiling-h1', latencyRef: 'direct' } as const
const alone = { nginx: null, native: null, nodePeers: [] } as const
const dynamic = { protocol: 'h1', ...alone, ceiling: null, latencyRef: 'direct-dynamic', connections: DYNAMIC_CONNECTIONS } as const
const PEER_SPECS: ReadonlyMap<ScenarioName, PeerSpec> = new Map<ScenarioName, PeerSpec>([
  ['direct', { protocol: 'h1', ...alone, ceiling: null, latencyRef: null }],
  ['ceiling-h1', { protocol: 'h1', ...h1Peers }],
  ['ceiling-tls', { protocol: 'tls', ...alone, ceiling: 'ceiling-tls', latencyRef: 'direct' }],
  // No h2 origin to load directly: the h2 rows' latency is added over the bare h2 server's.
  ['ceiling-h2', { protocol: 'h2', ...alone, ceiling: 'ceiling-h2', latencyRef: null }],
  ['switchyard-h1', { protocol: 'h1', ...h1Peers }],
  ['nginx', { protocol: 'h1', ...h1Peers }],
  ['haproxy', { protocol: 'h1', ...h1Peers }],
  ['http-proxy', { protocol: 'h1', ...h1Peers }],
  ['fastify-proxy', { protocol: 'h1', ...h1Peers }],
  ['switchyard-tls', { protocol: 'tls', ...tlsPeers }],
  ['nginx-tls', { protocol: 'tls', ...tlsPeers }],
  ['haproxy-tls', { protocol: 'tls', ...tlsPeers }],
  ['switchyard-h2', { protocol: 'h2', ...h2Peers }],
  ['nginx-h2', { protocol: 'h2', ...h2Peers }],
  ['haproxy-h2', { protocol: 'h2', ...h2Peers }],
  ['fastify-proxy-h2', { protocol: 'h2', ...h2Peers }],
  ['switchyard-cache-hit', { protocol: 'h1', ...hitPeers }],
  ['nginx-cache-hit', { protocol: 'h1', ...hitPeers }],
  ['varnish-cache-hit', { protocol: 'h1', ...hitPeers }],
  ['direct-dynamic', { ...dynamic, latencyRef: null }],
  ['switchyard-dynamic-cached', dynamic],
  ['switchyard-dynamic-uncached', dynamic]
])

/** A row's Node peers: its spec's; the workers rows are plaintext HTTP/1.1 Switchyard, so h1's. */
function nodePeersOf (name: ScenarioName): readonly ScenarioName[] {
  return PEER_SPECS.get(name)?.nodePeers ?? (FLEETS.has(name) ? h1Peers.nodePeers : [])
}

/** `--only` shorthands: the workers pairs alone, without the rest (they take the longest). */
const GROUPS: Readonly<Record<string, readonly ScenarioName[]>> = {
  peers: SCENARIOS.filter((n) => PEER_SPECS.has(n)),
  dynamic: ['direct-dynamic', 'switchyard-dynamic-cached', 'switchyard-dynamic-uncached'],
  h2: ['ceiling-h2', 'switchyard-h2', 'nginx-h2', 'haproxy-h2', 'fastify-proxy-h2'],
  // Switchyard against the Node peers alone, h1 and h2: the issue's bars.
  node: ['switchyard-h1', 'http-proxy', 'fastify-proxy', 'switchyard-h2', 'fastify-proxy-h2'],
  nginx: ['direct', 'ceiling-h1', 'ceiling-tls', 'ceiling-h2', 'nginx', 'nginx-tls', 'nginx-h2', 'nginx-cache-hit'],
  // The native peers together: nginx, HAProxy, Varnish.
  native: ['direct', 'ceiling-h1', 'ceiling-tls', 'ceiling-h2', 'nginx', 'haproxy', 'nginx-tls', 'haproxy-tls', 'nginx-h2', 'haproxy-h2', 'nginx-cache-hit', 'varnish-cache-hit'],
  workers: PAIRS.flatMap((p) => [p.one, p.two]),
  'workers-unpinned': PAIRS.filter((p) => !p.pinned).flatMap((p) => [p.one, p.two]),
  'workers-pinned': PAIRS.filter((p) => p.pinned).flatMap((p) => [p.one, p.two])
}

const DESCRIPTIONS: Readonly<Record<ScenarioName, string>> = {
  direct: 'load -> origin (no proxy): the reference for latency added',
  'ceiling-h1': 'load -> bare node:http answering the cache-hit bytes from memory: the ceiling of plaintext HTTP/1.1 on one core',
  'ceiling-tls': 'load -> bare node:https answering the cache-hit bytes: the ceiling of HTTP/1.1 over TLS on one core',
  'ceiling-h2': 'h2load -> bare node:http2 (TLS) answering the cache-hit bytes: the ceiling of h2 on one core',
  'switchyard-h1': 'load -> Switchyard plaintext HTTP/1.1 -> origin',
  nginx: 'load -> nginx (1 worker, keep-alive upstream) plaintext HTTP/1.1 -> origin',
  haproxy: 'load -> HAProxy (1 thread, http-reuse always) plaintext HTTP/1.1 -> origin',
  'http-proxy': 'load -> http-proxy (npm, keep-alive agent) -> origin',
  'fastify-proxy': 'load -> fastify + @fastify/http-proxy (undici keep-alive pool) plaintext HTTP/1.1 -> origin',
  'switchyard-tls': 'load -> Switchyard HTTP/1.1 over TLS -> origin',
  'nginx-tls': 'load -> nginx HTTP/1.1 over TLS -> origin',
  'haproxy-tls': 'load -> HAProxy HTTP/1.1 over TLS -> origin',
  'switchyard-h2': 'h2load -> Switchyard h2 over TLS -> origin (HTTP/1.1)',
  'nginx-h2': 'h2load -> nginx h2 over TLS -> origin (HTTP/1.1)',
  'haproxy-h2': 'h2load -> HAProxy h2 over TLS -> origin (HTTP/1.1)',
  'fastify-proxy-h2': 'h2load -> fastify + @fastify/http-proxy h2 over TLS -> origin (HTTP/1.1, undici keep-alive pool)',
  'switchyard-cache-hit': 'load -> Switchyard plaintext HTTP/1.1, answered from its cache (origin asked once)',
  'nginx-cache-hit': 'load -> nginx plaintext HTTP/1.1, answered from proxy_cache (origin asked once)',
  'varnish-cache-hit': 'load -> Varnish (malloc storage) plaintext HTTP/1.1, answered from its cache (origin asked once)',
  'direct-dynamic': `load (${DYNAMIC_CONNECTIONS} connections) -> origin answering after 100 ms, no freshness information`,
  'switchyard-dynamic-cached': `load (${DYNAMIC_CONNECTIONS} connections) -> Switchyard, a cached route -> the 100 ms origin that sends no freshness`,
  'switchyard-dynamic-uncached': `load (${DYNAMIC_CONNECTIONS} connections) -> Switchyard, cache: false -> the 100 ms origin`,
  'switchyard-1-worker': 'load -> Switchyard plaintext HTTP/1.1 -> origin; workers: 1, proxy not pinned to one CPU',
  'switchyard-2-workers': 'load -> Switchyard plaintext HTTP/1.1 -> origin; workers: 2 (a primary + 2 workers), proxy not pinned to one CPU',
  'switchyard-1-worker-pinned': 'load -> Switchyard plaintext HTTP/1.1 -> origin; workers: 1, proxy pinned to the proxy CPU',
  'switchyard-2-workers-pinned': 'load -> Switchyard plaintext HTTP/1.1 -> origin; workers: 2 (a primary + 2 workers), the whole proxy pinned to the proxy CPU'
}

/** Switchyard must accept connections on both listeners within this time. */
const SWITCHYARD_READY_MS = 10_000
const CHILD_READY_MS = 10_000
const TARGET_RATIO = 1.5
/**
 * Switchyard against the best Node peer of its protocol (see h1Peers, h2Peers);
 * goal = the issue's bar where one is stated here: HTTP/2 >= 2.5x @fastify/http-proxy per core.
 */
const NODE_TARGETS: ReadonlyArray<{ readonly scenario: ScenarioName, readonly goal: number | null }> = [
  { scenario: 'switchyard-h1', goal: null },
  { scenario: 'switchyard-h2', goal: 2.5 }
]
/** Issue 12: p99 latency added over direct, at 50 connections, for these rows. */
const LATENCY_BAR = { maxAddedP99Ms: 1, scenarios: ['switchyard-h1', 'switchyard-tls', 'switchyard-cache-hit'] as readonly ScenarioName[] } as const
/** Issue 10: two workers keep at least this share of one worker's requests per CPU-second. */
const WORKERS_TARGET = 0.9

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
  /** The HTTP/1.1 load generator; null = wrk when installed (or installable), else autocannon. */
  readonly generator: H1Generator | null
  /** Times the whole list of scenarios runs, interleaved; the peers table gives medians. */
  readonly rounds: number
  readonly h2Connections: number
  readonly h2Streams: number
  /** Never run apt-get, even as root. */
  readonly install: boolean
  /**
   * Paced HTTP/1.1 load: each connection's mean think time (ms) between an
   * answer and its next request, or null to saturate. Latency at a load the
   * proxy core carries without a queue: what each hop adds, not queueing.
   */
  readonly paceMs: number | null
}

type H1Generator = 'wrk' | 'autocannon'

const USAGE = `usage: npm run bench -- [options]
  --duration <s>       measured seconds per scenario (default 10)
  --connections <n>    concurrent connections (default 50)
  --warmup <s>         unmeasured warm-up seconds per scenario (default 2, 0 = none)
  --only <a,b>         scenarios to run, of: ${SCENARIOS.join(', ')};
                       or a group: ${Object.keys(GROUPS).join(', ')}
  --no-pin             do not pin processes to CPUs with taskset
  --cpu-prof           run Switchyard under node --cpu-prof; the .cpuprofile lands in bench/results/
  --access-log         Switchyard writes its JSON access log (default off: the peers write none)
  --main <file>        Switchyard entry point to run as \`<file> start -c <config>\` (default dist/src/main.js)
  --generator <g>      HTTP/1.1 load: wrk or autocannon (default wrk when installed or installable, else autocannon)
  --rounds <n>         run the scenarios n times, interleaved; the peers table shows medians (default 1)
  --h2-connections <n> h2load connections for the h2 scenarios (default 10)
  --h2-streams <n>     h2load concurrent streams per connection (default 10)
  --no-install         never apt-get install nginx-light, wrk, nghttp2-client (default: as root, when missing)
  --paced <ms>         latency at a moderate load instead of saturation: each wrk connection waits a random
                       0.5-1.5 x <ms> after an answer before its next request (50 connections, 10 ms: ~5k req/s).
                       HTTP/1.1 rows only (wrk); h2 rows are skipped (h2load --rps fires every connection at once)
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
      generator: { type: 'string' },
      rounds: { type: 'string', default: '1' },
      'h2-connections': { type: 'string', default: '10' },
      'h2-streams': { type: 'string', default: '10' },
      'no-install': { type: 'boolean', default: false },
      paced: { type: 'string' },
      help: { type: 'boolean', default: false }
    },
    strict: true,
    allowPositionals: false
  })
  if (values.help === true) {
    process.stdout.write(USAGE + '\n')
    process.exit(0)
  }
  // In the canonical order, so `direct` is measured first whatever was typed.
  const only = values.only === undefined ? [...SCENARIOS] : selectNames('only', values.only, SCENARIOS, GROUPS)
  return {
    durationSec: intOption('duration', values.duration, 1),
    connections: intOption('connections', values.connections, 1),
    warmupSec: intOption('warmup', values.warmup, 0),
    only,
    pin: values['no-pin'] !== true,
    main: values.main === undefined ? join(dist, 'src/main.js') : resolve(values.main),
    cpuProf: values['cpu-prof'] === true,
    accessLog: values['access-log'] === true,
    generator: values.generator === undefined ? null : selectNames('generator', values.generator, ['wrk', 'autocannon'] as const)[0] ?? null,
    rounds: intOption('rounds', values.rounds, 1),
    h2Connections: intOption('h2-connections', values['h2-connections'], 1),
    h2Streams: intOption('h2-streams', values['h2-streams'], 1),
    install: values['no-install'] !== true,
    paceMs: values.paced === undefined ? null : intOption('paced', values.paced, 1)
  }
}


// ---- paths, children, cleanup ------------------------------------------------

const run = benchRun('bench', import.meta.url)
const { root, dist, children, shutdown, log } = run

interface Started {
  readonly child: ChildProcess
  readonly port: number
}

async function startOrigin (pinning: Pinning): Promise<Started & { readonly bodyBytes: number }> {
  const child = children.spawnNode(join(dist, 'bench/origin.js'), [], { cpu: pinning.originCpu, stdio: ['ignore', 'pipe', 'inherit', 'ipc'] })
  const { port, bodyBytes } = await readJsonLine<{ port: number, bodyBytes: number }>(child, 'bench origin', CHILD_READY_MS)
  return { child, port, bodyBytes }
}

/** A Node peer proxy (`bench/<script>`), pinned like the proxy under test: `<origin-url> ...extra`, then `{"port":N}`. */
async function startPeer (script: string, what: string, pinning: Pinning, originPort: number, extra: readonly string[] = []): Promise<Started> {
  const child = children.spawnNode(join(dist, script), [`http://127.0.0.1:${originPort}`, ...extra], { cpu: pinning.proxyCpu, stdio: ['ignore', 'pipe', 'inherit', 'ipc'] })
  const { port } = await readJsonLine<{ port: number }>(child, what, CHILD_READY_MS)
  return { child, port }
}

/** The fastify peer, or why it is not running (its rows are then skipped, the rest runs). */
async function startFastifyPeer (pinning: Pinning, originPort: number, extra: readonly string[]): Promise<Started | string> {
  try {
    return await startPeer('bench/peer-fastify-proxy.js', `fastify peer${extra.length > 0 ? ' (h2)' : ''}`, pinning, originPort, extra)
  } catch (err) {
    return `could not start: ${err instanceof Error ? err.message : String(err)}`
  }
}

type SwitchyardStart =
  | {
    readonly ok: true
    readonly child: ChildProcess
    readonly h1Port: number
    readonly tlsPort: number
    readonly adminPort: number
    readonly configFile: string
    readonly workers: number
  }
  | { readonly ok: false, readonly reason: string }

interface SwitchyardOptions {
  readonly main: string
  /** Where `--cpu-prof` writes, or null for no profile. */
  readonly cpuProfDir: string | null
  /** CPU list for taskset, or null to inherit the harness's. */
  readonly cpu: string | null
  /** Its own temp dir: config, certificate, log. */
  readonly dir: string
  readonly originPort: number
  readonly accessLog: boolean
  readonly workers: number
}

async function startSwitchyard (o: SwitchyardOptions): Promise<SwitchyardStart> {
  if (!existsSync(o.main)) return { ok: false, reason: `${o.main} not found (the \`start\` CLI is not built yet)` }

  const [h1 = 0, tls = 0, admin = 0] = await freePorts(3)
  const ports = { h1, tls, admin }
  const { cert, key } = writeSelfSignedCert(o.dir)
  const configFile = join(o.dir, 'switchyard-bench.yaml')
  writeFileSync(configFile, switchyardConfig(ports, cert, key, o.originPort, o.accessLog, o.workers))

  const logFile = join(o.dir, 'switchyard.log')
  // Workers are forked with the primary's execArgv: they get the same preload and profiler flags.
  const child = run.spawnLogged(o.main, ['start', '-c', configFile], {
    cpu: o.cpu,
    logFile,
    nodeFlags: o.cpuProfDir === null ? [] : ['--cpu-prof', '--cpu-prof-dir', o.cpuProfDir]
  })
  let problem = await waitForPorts(child, [ports.h1, ports.tls], SWITCHYARD_READY_MS)
  // A primary's listeners accept before its workers serve: wait until /status says every one is ready.
  if (problem === null && o.workers > 1) {
    const pids = await waitForWorkers(child, ports.admin, o.workers, SWITCHYARD_READY_MS)
    if (typeof pids === 'string') problem = pids
  }
  if (problem === null) return { ok: true, child, h1Port: ports.h1, tlsPort: ports.tls, adminPort: ports.admin, configFile, workers: o.workers }

  child.kill('SIGKILL')
  return { ok: false, reason: `\`switchyard start\` not ready: ${problem}; its log:\n${logTail(logFile, 15)}` }
}

interface WorkerEntry { readonly pid: number, readonly requests: number | null }

/** GET /status on a primary's admin API: its `count` workers (pid, requests served) once all are ready, else why not. */
function workerPids (adminPort: number, count: number): Promise<WorkerEntry[] | string> {
  return new Promise((resolve) => {
    const req = httpRequest({ host: '127.0.0.1', port: adminPort, path: '/status', agent: false, timeout: 3000 }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => { body += c })
      res.on('end', () => {
        if (res.statusCode !== 200) return resolve(`GET /status answered ${res.statusCode}`)
        let workers: unknown
        try {
          workers = (JSON.parse(body) as { workers?: unknown }).workers
        } catch {
          return resolve('GET /status: not JSON')
        }
        if (!Array.isArray(workers)) return resolve('GET /status lists no workers (not a primary?)')
        const list = workers as Array<{ pid?: unknown, state?: unknown, requests?: unknown }>
        const ready = list.filter((w) => w.state === 'ready' && typeof w.pid === 'number' && w.pid > 0)
        if (list.length !== count || ready.length !== count) {
          return resolve(`GET /status: ${ready.length} of ${count} workers ready (${list.map((w) => String(w.state)).join(', ')})`)
        }
        resolve(ready.map((w) => ({ pid: w.pid as number, requests: typeof w.requests === 'number' ? w.requests : null })))
      })
      res.on('error', (err) => { resolve(`GET /status: ${err.message}`) })
    })
    req.on('timeout', () => { req.destroy(new Error('timed out')) })
    req.on('error', (err) => { resolve(`GET /status: ${err.message}`) })
    req.end()
  })
}

/** Polls workerPids until every worker is ready, the primary exits, or `timeoutMs` passes (bounded like waitForPorts). */
async function waitForWorkers (child: ChildProcess, adminPort: number, count: number, timeoutMs: number): Promise<WorkerEntry[] | string> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (!isRunning(child)) return `exited (code ${child.exitCode}, signal ${child.signalCode})`
    const pids = await workerPids(adminPort, count)
    if (typeof pids !== 'string' || Date.now() >= deadline) return pids
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

/** Every process of the proxy under test, primary first, for the CPU meter; a string says why they cannot be listed. */
type ProxyProcesses = () => Promise<readonly ProxyProcessId[] | string>

interface ProxyProcessId {
  readonly pid: number
  readonly role: 'process' | 'primary' | 'worker'
  /** A worker's requests served since it started, from /status. */
  readonly requests?: number | null
}

function singleProcess (child: ChildProcess): ProxyProcesses {
  const pid = child.pid
  return async () => pid === undefined ? 'no pid' : [{ pid, role: 'process' }]
}

function fleetProcesses (s: SwitchyardStart & { ok: true }): ProxyProcesses {
  const single = singleProcess(s.child)
  if (s.workers === 1) return single
  return async () => {
    const primary = await single()
    if (typeof primary === 'string') return primary
    const list = await workerPids(s.adminPort, s.workers)
    if (typeof list === 'string') return list
    return [{ pid: primary[0]?.pid ?? 0, role: 'primary' }, ...list.map((w) => ({ pid: w.pid, role: 'worker' as const, requests: w.requests }))]
  }
}

/** Stops a Switchyard this run started, then makes sure its workers went with the primary. */
async function stopSwitchyard (s: SwitchyardStart & { ok: true }, workerPidList: readonly number[]): Promise<void> {
  // Also its children as /proc lists them: a worker that was starting is not in /status yet.
  const pids = new Set([...workerPidList, ...(s.child.pid === undefined ? [] : procChildren(s.child.pid))])
  await children.stop(s.child, 10_000)
  // The workers exit when the primary drains them, or when its IPC channel closes; wait a bounded while.
  const deadline = Date.now() + 5000
  let left = [...pids].filter(alive)
  while (left.length > 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100))
    left = left.filter(alive)
  }
  for (const pid of left) {
    log(`warning: worker pid ${pid} outlived its primary; SIGKILL`)
    try { process.kill(pid, 'SIGKILL') } catch { /* gone meanwhile */ }
  }
}

/** The pids of a process's children (Linux /proc; empty elsewhere). */
function procChildren (pid: number): number[] {
  try {
    return readdirSync(`/proc/${pid}/task`).flatMap((tid) =>
      readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim().split(/\s+/).filter((x) => x !== '').map(Number))
  } catch {
    return []
  }
}

function alive (pid: number): boolean {
  try {
    // Signal 0 only checks; a zombie is still "alive" until reaped, so look at /proc too.
    process.kill(pid, 0)
    return !/^\S+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'))
  } catch {
    return false
  }
}

// ---- one scenario ------------------------------------------------------------

/** One GET through the scenario's path before loading it: the scenario must answer 200 with the origin's body. */
async function preflight (url: string, bodyBytes: number): Promise<string | null> {
  const { problem } = await checkGet(url, bodyBytes)
  return problem === null ? null : `preflight ${problem}`
}

interface CpuShare { readonly cpuSeconds: number, readonly wallSeconds: number, readonly share: number }

/** One process of the proxy under test over the measured window. */
interface ProxyProcess {
  readonly pid: number
  readonly role: ProxyProcessId['role']
  /** A worker's requests in the window (how round-robin and the scheduler split the load); null otherwise. */
  readonly requests: number | null
  readonly cpuSeconds: number
  readonly share: number
  /** Its CPU affinity (`0`, `0-1`). */
  readonly cpus: string | null
}

interface ScenarioResult {
  readonly name: ScenarioName
  /** 1, 2…: the pass over the scenario list (--rounds). */
  readonly round: number
  /** What loaded it: autocannon (in this process), wrk or h2load (children on the load CPU). */
  readonly generator: string
  readonly connections: number
  readonly description: string
  readonly url: string | null
  readonly skipped: string | null
  readonly load: LoadResult | null
  readonly cpu: {
    /** The whole proxy: a primary and its workers summed. */
    readonly proxy: CpuShare | null
    readonly origin: CpuShare | null
    readonly loadgen: CpuShare | null
    /** Busy CPU of the whole machine, ours included; `other` = what is not ours (noise). */
    readonly machine: CpuShare | null
    readonly other: number | null
  }
  /** Each process in cpu.proxy; null without a proxy. */
  readonly proxyProcesses: readonly ProxyProcess[] | null
  /** Why the proxy's CPU is missing, when it is. */
  readonly cpuNote: string | null
  readonly reqPerCore: number | null
  /** Completed requests / proxy CPU-seconds over the window. */
  readonly reqPerCpuSecond: number | null
  vsDirect: number | null
  /** req/s per core ÷ http-proxy's, in the same round; plaintext HTTP/1.1 rows only (the only protocol http-proxy is loaded with). */
  perCoreVsHttpProxy: number | null
  /** The Node peer of the same protocol with the most req/s per core in the same round (PEER_SPECS nodePeers), and req/s per core ÷ its. */
  bestNode: ScenarioName | null
  perCoreVsBestNode: number | null
}

/** Which round and how it is loaded: the fields every result carries. */
interface RunInfo { readonly round: number, readonly generator: string, readonly connections: number }

function skipped (name: ScenarioName, reason: string, info: RunInfo): ScenarioResult {
  return {
    name, ...info, description: DESCRIPTIONS[name], url: null, skipped: reason, load: null,
    cpu: { proxy: null, origin: null, loadgen: null, machine: null, other: null },
    proxyProcesses: null, cpuNote: null, reqPerCore: null, reqPerCpuSecond: null, vsDirect: null, perCoreVsHttpProxy: null, bestNode: null, perCoreVsBestNode: null
  }
}

const samePids = (a: readonly ProxyProcessId[], b: readonly ProxyProcessId[]): boolean =>
  a.length === b.length && a.every((p, i) => p.pid === b[i]?.pid)

/** Loads `url` for `durationSec` with the scenario's generator and connections. */
type Load = (url: string, durationSec: number) => Promise<LoadResult>

async function runScenario (name: ScenarioName, url: string, proxy: ProxyProcesses | undefined, originPid: number | undefined, load: Load, info: RunInfo, durationSec: number, warmupSec: number, bodyBytes: number): Promise<ScenarioResult> {
  const problem = await preflight(url, bodyBytes)
  if (problem !== null) {
    log(`[${name}] skipped: ${problem}`)
    return skipped(name, problem, info)
  }
  if (warmupSec > 0) {
    log(`[${name}] warm-up ${warmupSec} s (not counted)`)
    await load(url, warmupSec)
  }
  // Listed after the warm-up: a worker replaced during it is measured as the one that serves.
  const before = proxy === undefined ? [] : await proxy()
  if (typeof before === 'string') {
    log(`[${name}] skipped: ${before}`)
    return skipped(name, before, info)
  }
  log(`[${name}] round ${info.round}: measuring ${durationSec} s, ${info.connections} connections, ${info.generator}: ${url}` +
    (before.length > 1 ? ` (CPU of pids ${before.map((p) => `${p.pid} ${p.role}`).join(', ')})` : ''))
  const proxyMeter = meterPids(before.map((p) => p.pid))
  const originMeter = meterPid(originPid)
  // The harness plus a wrk or h2load child, reaped before the meter stops.
  const selfMeter = meterSelfAndReaped()
  const machineMeter = meterSystem()
  const result = await load(url, durationSec)
  const proxyWindow = proxyMeter.stop()
  const originCpu = originMeter.stop()
  const loadgenCpu = selfMeter.stop()
  const machine = machineMeter.stop()
  // A worker that exited (and was replaced) during the window took its CPU time with it: no sum then.
  const after = proxy === undefined ? [] : await proxy()
  let cpuNote: string | null = null
  if (typeof after === 'string') cpuNote = `after the window: ${after}`
  else if (!samePids(before, after)) cpuNote = `the proxy's processes changed during the window (${before.map((p) => p.pid).join(',')} -> ${after.map((p) => p.pid).join(',')})`
  else if (proxy !== undefined && proxyWindow === null) cpuNote = 'a proxy process could not be read from /proc'
  if (cpuNote !== null) log(`[${name}] proxy CPU not measured: ${cpuNote}`)
  const proxyCpu = cpuNote !== null || proxyWindow === null
    ? null
    : { cpuSeconds: proxyWindow.cpuSeconds, wallSeconds: proxyWindow.wallSeconds, share: proxyWindow.share }
  const proxyProcesses = proxyCpu === null || proxyWindow === null
    ? null
    : before.map((p, i) => {
      const r0 = p.requests
      const r1 = typeof after === 'string' ? undefined : after[i]?.requests
      return {
        pid: p.pid,
        role: p.role,
        requests: typeof r0 === 'number' && typeof r1 === 'number' ? r1 - r0 : null,
        cpuSeconds: proxyWindow.each[i]?.cpuSeconds ?? 0,
        share: proxyWindow.each[i]?.share ?? 0,
        cpus: cpusAllowed(p.pid)
      }
    })
  const other = machine === null ? null : Math.max(0, machine.share - (proxyCpu?.share ?? 0) - (originCpu?.share ?? 0) - (loadgenCpu?.share ?? 0))
  const cpu = { proxy: proxyCpu, origin: originCpu, loadgen: loadgenCpu, machine, other }
  const reqPerCore = cpu.proxy !== null && cpu.proxy.share > 0 ? result.reqPerSec / cpu.proxy.share : null
  const reqPerCpuSecond = cpu.proxy !== null && cpu.proxy.cpuSeconds > 0 ? result.requests / cpu.proxy.cpuSeconds : null
  return { name, ...info, description: DESCRIPTIONS[name], url, skipped: null, load: result, cpu, proxyProcesses, cpuNote, reqPerCore, reqPerCpuSecond, vsDirect: null, perCoreVsHttpProxy: null, bestNode: null, perCoreVsBestNode: null }
}

// ---- report ------------------------------------------------------------------

function fmt (n: number | null | undefined, digits: number): string {
  return n === null || n === undefined || !Number.isFinite(n) ? '-' : n.toFixed(digits)
}

function table (results: readonly ScenarioResult[]): string {
  const head = ['scenario', 'load', 'req/s', 'p50 ms', 'p99 ms', 'p99.9 ms', 'err/non2xx', 'proxy CPU', 'req/s/core', 'x direct', 'core x best Node', 'origin+gen', 'other']
  const rounds = new Set(results.map((r) => r.round)).size
  const rows = results.map((r) => {
    const name = rounds > 1 ? `${r.name} #${r.round}` : r.name
    if (r.load === null) return [name, `skipped: ${((r.skipped ?? '').split('\n')[0] ?? '').replace(/; its log:$/, '')}`]
    const l = r.load
    const cpu1 = r.cpu.origin !== null && r.cpu.loadgen !== null ? r.cpu.origin.share + r.cpu.loadgen.share : null
    return [
      name,
      r.generator,
      fmt(l.reqPerSec, 0),
      fmt(l.latencyMs.p50, 2),
      fmt(l.latencyMs.p99, 2),
      fmt(l.latencyMs.p99_9, 2),
      `${l.errors + l.timeouts}/${l.non2xx}`,
      fmt(r.cpu.proxy?.share, 2),
      fmt(r.reqPerCore, 0),
      fmt(r.vsDirect, 2),
      r.perCoreVsBestNode === null ? '-' : `${r.perCoreVsBestNode.toFixed(2)} ${r.bestNode ?? ''}`,
      fmt(cpu1, 2),
      fmt(r.cpu.other, 2)
    ]
  })
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row.length === head.length ? (row[i] ?? '').length : 0)))
  const line = (cells: readonly string[]): string => cells.length === head.length
    ? cells.map((c, i) => i <= 1 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0)).join('  ')
    : `${(cells[0] ?? '').padEnd(widths[0] ?? 0)}  ${cells[1] ?? ''}`
  return [line(head), ...rows.map(line)].join('\n')
}

interface WorkersComparison {
  /** 2 workers / 1 worker req/s. */
  readonly throughput: number | null
  /** 2 workers / 1 worker requests per CPU-second of the whole proxy. */
  readonly perCpu: number | null
}

function compareWorkers (results: readonly ScenarioResult[], pair: WorkersPair): WorkersComparison {
  const one = results.find((r) => r.name === pair.one)
  const two = results.find((r) => r.name === pair.two)
  const ratio = (a: number | null | undefined, b: number | null | undefined): number | null =>
    a === null || a === undefined || b === null || b === undefined || b <= 0 ? null : a / b
  return { throughput: ratio(two?.load?.reqPerSec, one?.load?.reqPerSec), perCpu: ratio(two?.reqPerCpuSecond, one?.reqPerCpuSecond) }
}

/** The workers pair on its own: the whole proxy's CPU, split per process. */
function workersTable (rows: readonly ScenarioResult[]): string {
  const head = ['scenario', 'workers', 'CPUs', 'req/s', 'p50 ms', 'p99 ms', 'p99.9 ms', 'err/non2xx', 'proxy CPU-s', 'CPU share', 'req/CPU-s', 'CPU-s per process']
  const cells = rows.map((r) => {
    if (r.load === null) return [r.name, `skipped: ${((r.skipped ?? '').split('\n')[0] ?? '').replace(/; its log:$/, '')}`]
    const each = r.proxyProcesses?.map((p) => `${p.role === 'primary' ? 'primary ' : ''}${p.cpuSeconds.toFixed(2)}` +
      (p.requests === null || r.load === null || r.load.requests === 0 ? '' : ` (${Math.round(100 * p.requests / r.load.requests)}% req)`)).join(' + ') ?? (r.cpuNote ?? '-')
    return [
      r.name,
      String(FLEETS.get(r.name)?.workers ?? '-'),
      r.proxyProcesses?.[0]?.cpus ?? '-',
      fmt(r.load.reqPerSec, 0),
      fmt(r.load.latencyMs.p50, 2),
      fmt(r.load.latencyMs.p99, 2),
      fmt(r.load.latencyMs.p99_9, 2),
      `${r.load.errors + r.load.timeouts}/${r.load.non2xx}`,
      fmt(r.cpu.proxy?.cpuSeconds, 2),
      fmt(r.cpu.proxy?.share, 2),
      fmt(r.reqPerCpuSecond, 0),
      each
    ]
  })
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((row) => row.length === head.length ? (row[i] ?? '').length : 0)))
  const line = (c: readonly string[]): string => c.length === head.length
    ? c.map((x, i) => i === 0 || i === head.length - 1 ? x.padEnd(widths[i] ?? 0) : x.padStart(widths[i] ?? 0)).join('  ').trimEnd()
    : `${(c[0] ?? '').padEnd(widths[0] ?? 0)}  ${c[1] ?? ''}`
  return [line(head), ...cells.map(line)].join('\n')
}

// ---- the native peers (nginx, HAProxy, Varnish) and the ceiling -------------------

/** A native peer started: its process and the ports it listens on (tls 0: none). */
type NativeStart =
  | { readonly ok: true, readonly child: ChildProcess, readonly h1Port: number, readonly tlsPort: number, readonly version: string | null }
  | { readonly ok: false, readonly reason: string }

/** The first line a program prints for `args` (its version), or null. */
function versionLine (path: string, args: readonly string[], pattern: RegExp): string | null {
  const r = spawnSync(path, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 5000 })
  return pattern.exec(`${r.stdout ?? ''}${r.stderr ?? ''}`)?.[0] ?? null
}

/** A native peer in the foreground, pinned like a proxy, its output to `name`.log in `dir`; or why it did not listen. */
async function startNative (name: string, path: string, args: readonly string[], cpu: string | null, dir: string, ports: readonly number[]): Promise<{ child: ChildProcess } | { reason: string }> {
  const logFile = join(dir, `${name}.log`)
  const fd = openSync(logFile, 'w')
  let child: ChildProcess
  try {
    // SIGTERM even on the exit path: a SIGKILLed master would leave its workers listening.
    child = children.spawnCommand(path, args, { cpu, stdio: ['ignore', fd, fd], exitSignal: 'SIGTERM' })
  } finally {
    closeSync(fd)
  }
  const problem = await waitForPorts(child, ports, CHILD_READY_MS)
  if (problem === null) return { child }
  await children.stop(child, 2000)
  return { reason: `${name} not ready: ${problem}; ${logTail(logFile, 5).trim()}` }
}

/**
 * nginx in the foreground (`-g 'daemon off;'`, so the harness owns its pid),
 * pinned like a proxy (its one worker inherits the master's affinity), with a
 * config generated into `dir` (pid file, logs, cache all there).
 */
async function startNginx (path: string, cpu: string | null, dir: string, originPort: number): Promise<NativeStart> {
  mkdirSync(dir, { recursive: true })
  const [h1 = 0, tls = 0] = await freePorts(2)
  const ports = { h1, tls }
  const { cert, key } = writeSelfSignedCert(dir)
  const conf = join(dir, 'nginx.conf')
  // As root nginx would run its worker as nobody, who cannot enter the 0700 temp dir.
  writeFileSync(conf, nginxConfig({ ports, originPort, dir, cert, key, ...(process.getuid?.() === 0 ? { user: 'root' } : {}) }))
  const r = await startNative('nginx', path, ['-c', conf, '-p', dir, '-g', 'daemon off;'], cpu, dir, [ports.h1, ports.tls])
  if ('reason' in r) return { ok: false, reason: `${r.reason} ${logTail(join(dir, 'nginx-error.log'), 5).trim()}` }
  return { ok: true, child: r.child, h1Port: ports.h1, tlsPort: ports.tls, version: versionLine(path, ['-v'], /nginx\/\S+/) }
}

/** nginx's master and its worker processes (not the cache manager and loader: the loader exits a minute in). */
function nginxProcesses (child: ChildProcess): ProxyProcesses {
  return async () => {
    const master = child.pid
    if (master === undefined || !isRunning(child)) return 'nginx is not running'
    const workers = procChildren(master).filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('worker process')
      } catch {
        return false
      }
    })
    if (workers.length === 0) return 'nginx has no worker process'
    return [{ pid: master, role: 'primary' }, ...workers.map((pid) => ({ pid, role: 'worker' as const }))]
  }
}

/** HAProxy (`-db`: foreground, one process), with its config and certificate generated into `dir`. */
async function startHaproxy (path: string, cpu: string | null, dir: string, originPort: number): Promise<NativeStart> {
  mkdirSync(dir, { recursive: true })
  const [h1 = 0, tls = 0] = await freePorts(2)
  const { cert, key } = writeSelfSignedCert(dir)
  const pem = join(dir, 'bench.pem')
  writeFileSync(pem, readFileSync(cert, 'utf8') + readFileSync(key, 'utf8'), { mode: 0o600 })
  const conf = join(dir, 'haproxy.cfg')
  writeFileSync(conf, haproxyConfig({ ports: { h1, tls }, originPort, pem }))
  const r = await startNative('haproxy', path, ['-f', conf, '-db'], cpu, dir, [h1, tls])
  if ('reason' in r) return { ok: false, reason: r.reason }
  return { ok: true, child: r.child, h1Port: h1, tlsPort: tls, version: versionLine(path, ['-v'], /HAProxy version \S+/) }
}

/**
 * Varnish (`-F`: foreground; `-j none`: no jail, so it needs no varnish user
 * and may write its working dir under `dir`), malloc storage.
 */
async function startVarnish (path: string, cpu: string | null, dir: string, originPort: number): Promise<NativeStart> {
  mkdirSync(dir, { recursive: true })
  const [h1 = 0] = await freePorts(1)
  const vcl = join(dir, 'bench.vcl')
  writeFileSync(vcl, varnishVcl(originPort))
  const args = ['-F', '-j', 'none', '-a', `127.0.0.1:${h1}`, '-f', vcl, '-s', 'malloc,64m', '-n', join(dir, 'work')]
  const r = await startNative('varnish', path, args, cpu, dir, [h1])
  if ('reason' in r) return { ok: false, reason: r.reason }
  return { ok: true, child: r.child, h1Port: h1, tlsPort: 0, version: versionLine(path, ['-V'], /varnish-\S+/) }
}

/** Varnish's manager and its child (the cache process, which answers). */
function varnishProcesses (child: ChildProcess): ProxyProcesses {
  return async () => {
    const manager = child.pid
    if (manager === undefined || !isRunning(child)) return 'varnish is not running'
    const kids = procChildren(manager)
    if (kids.length === 0) return 'varnish has no child process'
    return [{ pid: manager, role: 'primary' }, ...kids.map((pid) => ({ pid, role: 'worker' as const }))]
  }
}

interface CeilingStart { readonly child: ChildProcess, readonly h1: number, readonly tls: number, readonly h2: number }

async function startCeiling (cpu: string | null, dir: string): Promise<CeilingStart> {
  mkdirSync(dir, { recursive: true })
  const { cert, key } = writeSelfSignedCert(dir)
  const child = children.spawnNode(join(dist, 'bench/ceiling.js'), [cert, key], { cpu, stdio: ['ignore', 'pipe', 'inherit', 'ipc'] })
  const ports = await readJsonLine<{ h1: number, tls: number, h2: number }>(child, 'ceiling server', CHILD_READY_MS)
  return { child, ...ports }
}

// ---- the peers table ---------------------------------------------------------------

interface PeerAggregate {
  readonly name: ScenarioName
  readonly generator: string
  readonly connections: string
  readonly rounds: number
  readonly reqPerSec: Spread | null
  readonly reqPerCore: Spread | null
  readonly latencyMs: { readonly p50: Spread | null, readonly p99: Spread | null, readonly p99_9: Spread | null }
  readonly errors: number
  readonly comparison: PeerComparison | null
  readonly skipped: string | null
}

/** Medians over the rounds of every peers scenario that ran, and their ratios (comparePeers on the medians). */
function aggregatePeers (results: readonly ScenarioResult[]): PeerAggregate[] {
  const names = SCENARIOS.filter((n) => PEER_SPECS.has(n) && results.some((r) => r.name === n))
  const runs = (n: ScenarioName): ScenarioResult[] => results.filter((r) => r.name === n && r.load !== null)
  const rows: PeerRow[] = names.map((n) => {
    const spec = PEER_SPECS.get(n)
    const rs = runs(n)
    const med = (f: (r: ScenarioResult) => number | null | undefined): number | null => spread(rs.map(f))?.median ?? null
    const p50 = med((r) => r.load?.latencyMs.p50)
    const p99 = med((r) => r.load?.latencyMs.p99)
    const p999 = med((r) => r.load?.latencyMs.p99_9)
    return {
      name: n,
      reqPerSec: med((r) => r.load?.reqPerSec),
      reqPerCore: med((r) => r.reqPerCore),
      latencyMs: p50 === null || p99 === null || p999 === null ? null : { p50, p99, p99_9: p999 },
      nginx: spec?.nginx ?? null,
      native: spec?.native ?? null,
      nodePeers: spec?.nodePeers ?? [],
      ceiling: spec?.ceiling ?? null,
      latencyRef: spec?.latencyRef ?? null
    }
  })
  const comparisons = comparePeers(rows)
  return names.map((n, i) => {
    const rs = runs(n)
    const all = results.filter((r) => r.name === n)
    const distinct = (xs: ReadonlyArray<string | number>): string => [...new Set(xs.map(String))].join(',')
    return {
      name: n,
      generator: distinct(all.map((r) => r.generator)),
      connections: distinct(all.map((r) => r.connections)),
      rounds: rs.length,
      reqPerSec: spread(rs.map((r) => r.load?.reqPerSec)),
      reqPerCore: spread(rs.map((r) => r.reqPerCore)),
      latencyMs: {
        p50: spread(rs.map((r) => r.load?.latencyMs.p50)),
        p99: spread(rs.map((r) => r.load?.latencyMs.p99)),
        p99_9: spread(rs.map((r) => r.load?.latencyMs.p99_9))
      },
      errors: rs.reduce((a, r) => a + (r.load === null ? 0 : r.load.errors + r.load.timeouts + r.load.non2xx), 0),
      comparison: rs.length === 0 ? null : comparisons[i] ?? null,
      skipped: rs.length === 0 ? [...new Set(all.map((r) => r.skipped ?? ''))].join('; ') : null
    }
  })
}

/** A difference in ms, signed, or '-'. */
const signed = (n: number | null | undefined): string => n === null || n === undefined || !Number.isFinite(n) ? '-' : `${n >= 0 ? '+' : ''}${n.toFixed(2)}`

function peersTable (rows: readonly PeerAggregate[]): string {
  const head = ['scenario', 'load', 'conns', 'req/s', '(range)', 'req/s/core', '(range)', 'x nginx', 'x HAProxy/Varnish', 'x best Node', 'x ceiling', 'p50 ms', '+p50', '+p99', '+p99.9', 'over', 'err']
  const range = (s: Spread | null, digits: number): string => s === null || s.n < 2 ? '' : `${fmt(s.min, digits)}-${fmt(s.max, digits)}`
  const cells = rows.map((r) => {
    if (r.skipped !== null) return [r.name, `skipped: ${(r.skipped.split('\n')[0] ?? '').replace(/; its log:$/, '')}`]
    const c = r.comparison
    const spec = PEER_SPECS.get(r.name)
    return [
      r.name,
      r.generator,
      r.connections,
      fmt(r.reqPerSec?.median, 0),
      range(r.reqPerSec, 0),
      fmt(r.reqPerCore?.median, 0),
      range(r.reqPerCore, 0),
      fmt(c?.vsNginx, 2),
      c?.vsNative === null || c?.vsNative === undefined ? '-' : `${c.vsNative.toFixed(2)} ${c.native ?? ''}`,
      c?.vsBestNode === null || c?.vsBestNode === undefined ? '-' : `${c.vsBestNode.toFixed(2)} ${c.bestNode ?? ''}`,
      fmt(c?.vsCeiling, 2),
      fmt(r.latencyMs.p50?.median, 2),
      signed(c?.addedMs?.p50),
      signed(c?.addedMs?.p99),
      signed(c?.addedMs?.p99_9),
      c?.addedMs === null || c?.addedMs === undefined ? '' : spec?.latencyRef ?? '',
      String(r.errors)
    ]
  })
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((row) => row.length === head.length ? (row[i] ?? '').length : 0)))
  const line = (c: readonly string[]): string => c.length === head.length
    ? c.map((x, i) => i <= 2 || i === 15 ? x.padEnd(widths[i] ?? 0) : x.padStart(widths[i] ?? 0)).join('  ').trimEnd()
    : `${(c[0] ?? '').padEnd(widths[0] ?? 0)}  ${c[1] ?? ''}`
  return [line(head), ...cells.map(line)].join('\n')
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
  for (const script of ['bench/origin.js', 'bench/peer-http-proxy.js', 'bench/peer-fastify-proxy.js', 'bench/ceiling.js']) {
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
  const protocolOf = (n: ScenarioName): Protocol => PEER_SPECS.get(n)?.protocol ?? 'h1'

  // The external programs: looked up first, installed only when missing (and root).
  const wantedTools: ToolName[] = []
  if (opts.only.some((n) => n.startsWith('nginx'))) wantedTools.push('nginx')
  if (opts.only.some((n) => n.startsWith('haproxy'))) wantedTools.push('haproxy')
  if (opts.only.some((n) => n.startsWith('varnish'))) wantedTools.push('varnishd')
  if (opts.generator !== 'autocannon' && opts.only.some((n) => protocolOf(n) !== 'h2')) wantedTools.push('wrk')
  if (opts.only.some((n) => protocolOf(n) === 'h2')) wantedTools.push('h2load')
  const tools = ensureTools(wantedTools, opts.install, log)
  const toolPath = (t: ToolName): string | null => 'path' in tools[t] ? (tools[t] as { path: string }).path : null
  const toolMissing = (t: ToolName): string => 'missing' in tools[t] ? (tools[t] as { missing: string }).missing : ''
  for (const t of wantedTools) log(toolPath(t) !== null ? `${t}: ${toolPath(t) ?? ''}` : `${t} missing: ${toolMissing(t)}`)
  // HTTP/1.1 load: wrk unless asked otherwise (autocannon saturates before the proxy on cache hits),
  // autocannon when wrk is missing and was not asked for by name.
  const h1Generator: H1Generator = opts.generator ?? (toolPath('wrk') !== null ? 'wrk' : 'autocannon')
  if (opts.generator === null && h1Generator === 'autocannon' && wantedTools.includes('wrk')) {
    log(`HTTP/1.1 load: autocannon, because wrk is missing (${toolMissing('wrk')}); on cache hits it saturates before the proxy`)
  }
  /** How a scenario is loaded, or why it cannot be. */
  // A paced run's think time, said the same way in the rows and the summary.
  const pace = opts.paceMs === null ? null : paceRange(opts.paceMs)
  const paceText = pace === null ? null : `${pace.lo}-${pace.hi} ms`
  const loaderFor = (n: ScenarioName): { load: Load, info: Omit<RunInfo, 'round'> } | string => {
    const connections = PEER_SPECS.get(n)?.connections ?? opts.connections
    if (protocolOf(n) === 'h2') {
      if (opts.paceMs !== null) return 'not paced: h2load has no think time (its --rps sends every connection\'s request at the same instant)'
      if (toolPath('h2load') === null) return `needs h2load: ${toolMissing('h2load')}`
      const info = { generator: `h2load -m ${opts.h2Streams}`, connections: opts.h2Connections }
      return { info, load: async (url, durationSec) => await runH2load(url, { children, cpu: pinning.loadgenCpu, dir: tmp, connections: opts.h2Connections, streams: opts.h2Streams, durationSec }) }
    }
    if (h1Generator === 'wrk') {
      if (toolPath('wrk') === null) return `needs wrk: ${toolMissing('wrk')}`
      const generator = paceText === null ? 'wrk' : `wrk paced ${paceText}`
      return { info: { generator, connections }, load: async (url, durationSec) => await runWrk(url, { children, cpu: pinning.loadgenCpu, dir: tmp, connections, durationSec, paceMs: opts.paceMs }) }
    }
    if (opts.paceMs !== null) return 'not paced: --paced needs wrk'
    return { info: { generator: 'autocannon', connections }, load: async (url, durationSec) => await runLoad(url, { ...settings, connections, durationSec }) }
  }

  const origin = await startOrigin(pinning)
  log(`origin: pid ${origin.child.pid}, port ${origin.port}, ${origin.bodyBytes}-byte body`)

  const peer = wants('http-proxy') ? await startPeer('bench/peer-http-proxy.js', 'http-proxy peer', pinning, origin.port) : null
  if (peer !== null) log(`http-proxy peer: pid ${peer.child.pid}, port ${peer.port}`)

  const fastify = wants('fastify-proxy') ? await startFastifyPeer(pinning, origin.port, []) : 'not requested'
  if (typeof fastify !== 'string') log(`fastify peer: pid ${fastify.child.pid}, port ${fastify.port}`)
  else if (wants('fastify-proxy')) log(`fastify-proxy skipped: ${fastify}`)
  let fastifyH2: Started | string = 'not requested'
  if (wants('fastify-proxy-h2')) {
    // Its own throwaway certificate, as nginx and the ceiling have (bench/certs.ts).
    const dir = join(tmp, 'fastify-proxy-h2')
    mkdirSync(dir)
    const { cert, key } = writeSelfSignedCert(dir)
    fastifyH2 = await startFastifyPeer(pinning, origin.port, ['--h2', cert, key])
    if (typeof fastifyH2 === 'string') log(`fastify-proxy-h2 skipped: ${fastifyH2}`)
    else log(`fastify peer (h2): pid ${fastifyH2.child.pid}, port ${fastifyH2.port}`)
  }

  /** A native peer's scenarios (those named `prefix…`), started when asked for and its tool is there. */
  const startNativePeer = async (label: string, prefix: string, tool: ToolName,
    start: (path: string, cpu: string | null, dir: string, originPort: number) => Promise<NativeStart>): Promise<NativeStart> => {
    if (!opts.only.some((n) => n.startsWith(prefix))) return { ok: false, reason: 'not requested' }
    const path = toolPath(tool)
    const s = path === null ? { ok: false as const, reason: `needs ${tool}: ${toolMissing(tool)}` } : await start(path, pinning.proxyCpu, join(tmp, prefix), origin.port)
    if (s.ok) log(`${label} (${s.version ?? '?'}): pid ${s.child.pid}, h1 port ${s.h1Port}${s.tlsPort === 0 ? '' : `, tls port ${s.tlsPort}`}`)
    else log(`${label} scenarios skipped: ${s.reason}`)
    return s
  }
  const nginx = await startNativePeer('nginx', 'nginx', 'nginx', startNginx)
  let nginxCpus: string | null = null
  if (nginx.ok) {
    const workers = await nginxProcesses(nginx.child)()
    nginxCpus = typeof workers === 'string' ? null : cpusAllowed(workers[workers.length - 1]?.pid ?? 0)
    log(`nginx worker CPUs: ${nginxCpus ?? '?'}`)
  }
  const haproxy = await startNativePeer('HAProxy', 'haproxy', 'haproxy', startHaproxy)
  const varnish = await startNativePeer('Varnish', 'varnish', 'varnishd', startVarnish)

  let ceiling: CeilingStart | string = 'not requested'
  if (opts.only.some((n) => n.startsWith('ceiling'))) {
    try {
      ceiling = await startCeiling(pinning.proxyCpu, join(tmp, 'ceiling'))
      log(`ceiling server: pid ${ceiling.child.pid}, h1 port ${ceiling.h1}, tls port ${ceiling.tls}, h2 port ${ceiling.h2}`)
    } catch (err) {
      ceiling = `could not start: ${err instanceof Error ? err.message : String(err)}`
      log(`ceiling scenarios skipped: ${ceiling}`)
    }
  }

  let switchyard: SwitchyardStart = { ok: false, reason: 'not requested' }
  if (opts.only.some((n) => n.startsWith('switchyard-') && !FLEETS.has(n))) {
    try {
      switchyard = await startSwitchyard({
        main: opts.main, cpuProfDir: opts.cpuProf ? resultsDir : null, cpu: pinning.proxyCpu,
        dir: tmp, originPort: origin.port, accessLog: opts.accessLog, workers: 1
      })
    } catch (err) {
      switchyard = { ok: false, reason: `could not start: ${err instanceof Error ? err.message : String(err)}` }
    }
    if (switchyard.ok) log(`switchyard: pid ${switchyard.child.pid}, h1 port ${switchyard.h1Port}, tls port ${switchyard.tlsPort}`)
    else log(`switchyard scenarios skipped: ${switchyard.reason}`)
  }

  // The unpinned pair may use every CPU (it shows what a second worker buys in
  // throughput); the pinned pair has the proxy CPU alone, where two workers take
  // turns, so its requests per CPU-second show what the cluster itself costs.
  const fleetCpus = (fleet: Fleet): string | null => !pinning.enabled ? null : fleet.pinned ? pinning.proxyCpu : pinning.allCpus
  let fleetSeq = 0
  /** Starts the Switchyard of a workers scenario; the caller stops it after the scenario. */
  const startFleet = async (fleet: Fleet): Promise<SwitchyardStart> => {
    // Unpinned, the pinned pair would only repeat the other one.
    if (fleet.pinned && !pinning.enabled) return { ok: false, reason: `needs pinning (${pinning.note})` }
    const dir = join(tmp, `fleet-${++fleetSeq}`)
    mkdirSync(dir)
    try {
      const s = await startSwitchyard({
        main: opts.main, cpuProfDir: opts.cpuProf ? resultsDir : null, cpu: fleetCpus(fleet),
        dir, originPort: origin.port, accessLog: opts.accessLog, workers: fleet.workers
      })
      if (s.ok) log(`switchyard (workers: ${fleet.workers}): pid ${s.child.pid}, CPUs ${s.child.pid === undefined ? '?' : cpusAllowed(s.child.pid) ?? '?'}, h1 port ${s.h1Port}, admin port ${s.adminPort}`)
      return s
    } catch (err) {
      return { ok: false, reason: `could not start: ${err instanceof Error ? err.message : String(err)}` }
    }
  }

  const results: ScenarioResult[] = []
  for (let round = 1; round <= opts.rounds; round++) {
  for (const name of opts.only) {
    let url: string | null = null
    let proxy: ProxyProcesses | undefined
    let notStarted = name.startsWith('nginx') ? (nginx.ok ? 'not started' : nginx.reason)
      : name.startsWith('haproxy') ? (haproxy.ok ? 'not started' : haproxy.reason)
      : name.startsWith('varnish') ? (varnish.ok ? 'not started' : varnish.reason)
      : name.startsWith('ceiling') ? (typeof ceiling === 'string' ? ceiling : 'not started')
        : name === 'fastify-proxy' ? (typeof fastify === 'string' ? fastify : 'not started')
          : name === 'fastify-proxy-h2' ? (typeof fastifyH2 === 'string' ? fastifyH2 : 'not started')
            : switchyard.ok ? 'not started' : switchyard.reason
    let fleet: SwitchyardStart | undefined
    const loader = loaderFor(name)
    if (typeof loader === 'string') {
      if (round === 1) log(`[${name}] skipped: ${loader}`)
      results.push(skipped(name, loader, { round, generator: '-', connections: 0 }))
      continue
    }
    const info = { ...loader.info, round }
    switch (name) {
      case 'direct':
        url = `http://127.0.0.1:${origin.port}/bench`
        break
      case 'direct-dynamic':
        url = `http://127.0.0.1:${origin.port}/dynamic`
        break
      case 'ceiling-h1':
        if (typeof ceiling !== 'string') { url = `http://127.0.0.1:${ceiling.h1}/cached/bench`; proxy = singleProcess(ceiling.child) }
        break
      case 'ceiling-tls':
        if (typeof ceiling !== 'string') { url = `https://127.0.0.1:${ceiling.tls}/cached/bench`; proxy = singleProcess(ceiling.child) }
        break
      case 'ceiling-h2':
        if (typeof ceiling !== 'string') { url = `https://127.0.0.1:${ceiling.h2}/cached/bench`; proxy = singleProcess(ceiling.child) }
        break
      case 'nginx':
        if (nginx.ok) { url = `http://127.0.0.1:${nginx.h1Port}/bench`; proxy = nginxProcesses(nginx.child) }
        break
      case 'nginx-tls':
      case 'nginx-h2':
        if (nginx.ok) { url = `https://127.0.0.1:${nginx.tlsPort}/bench`; proxy = nginxProcesses(nginx.child) }
        break
      case 'nginx-cache-hit':
        if (nginx.ok) { url = `http://127.0.0.1:${nginx.h1Port}/cached/bench`; proxy = nginxProcesses(nginx.child) }
        break
      case 'haproxy':
        if (haproxy.ok) { url = `http://127.0.0.1:${haproxy.h1Port}/bench`; proxy = singleProcess(haproxy.child) }
        break
      case 'haproxy-tls':
      case 'haproxy-h2':
        if (haproxy.ok) { url = `https://127.0.0.1:${haproxy.tlsPort}/bench`; proxy = singleProcess(haproxy.child) }
        break
      case 'varnish-cache-hit':
        if (varnish.ok) { url = `http://127.0.0.1:${varnish.h1Port}/cached/bench`; proxy = varnishProcesses(varnish.child) }
        break
      case 'switchyard-h2':
        if (switchyard.ok) { url = `https://127.0.0.1:${switchyard.tlsPort}/bench`; proxy = singleProcess(switchyard.child) }
        break
      case 'switchyard-dynamic-cached':
        if (switchyard.ok) { url = `http://127.0.0.1:${switchyard.h1Port}/dynamic-cached`; proxy = singleProcess(switchyard.child) }
        break
      case 'switchyard-dynamic-uncached':
        if (switchyard.ok) { url = `http://127.0.0.1:${switchyard.h1Port}/dynamic`; proxy = singleProcess(switchyard.child) }
        break
      case 'switchyard-h1':
        if (switchyard.ok) { url = `http://127.0.0.1:${switchyard.h1Port}/bench`; proxy = singleProcess(switchyard.child) }
        break
      case 'switchyard-tls':
        if (switchyard.ok) { url = `https://127.0.0.1:${switchyard.tlsPort}/bench`; proxy = singleProcess(switchyard.child) }
        break
      case 'switchyard-cache-hit':
        if (switchyard.ok) { url = `http://127.0.0.1:${switchyard.h1Port}/cached/bench`; proxy = singleProcess(switchyard.child) }
        break
      case 'http-proxy':
        if (peer !== null) { url = `http://127.0.0.1:${peer.port}/bench`; proxy = singleProcess(peer.child) }
        break
      case 'fastify-proxy':
        if (typeof fastify !== 'string') { url = `http://127.0.0.1:${fastify.port}/bench`; proxy = singleProcess(fastify.child) }
        break
      case 'fastify-proxy-h2':
        if (typeof fastifyH2 !== 'string') { url = `https://127.0.0.1:${fastifyH2.port}/bench`; proxy = singleProcess(fastifyH2.child) }
        break
      case 'switchyard-1-worker':
      case 'switchyard-2-workers':
      case 'switchyard-1-worker-pinned':
      case 'switchyard-2-workers-pinned':
        fleet = await startFleet(FLEETS.get(name) ?? { workers: 1, pinned: false })
        if (fleet.ok) { url = `http://127.0.0.1:${fleet.h1Port}/bench`; proxy = fleetProcesses(fleet) } else notStarted = fleet.reason
        break
      default: {
        const never: never = name
        throw new Error(`unknown scenario ${String(never)}`)
      }
    }
    if (url === null) {
      if (fleet !== undefined) log(`[${name}] skipped: ${notStarted}`)
      results.push(skipped(name, notStarted, info))
      continue
    }
    try {
      results.push(await runScenario(name, url, proxy, origin.child.pid, loader.load, info, opts.durationSec, opts.warmupSec, origin.bodyBytes))
    } catch (err) {
      // A load generator that failed (wrk, h2load): the row says why, the run goes on.
      const why = `load failed: ${err instanceof Error ? err.message : String(err)}`
      log(`[${name}] ${why}`)
      results.push(skipped(name, why, info))
    } finally {
      // Stopped at once: an idle fleet would still be ours on the cores the next scenario measures.
      if (fleet?.ok === true) {
        const listed = proxy === undefined ? [] : await proxy()
        await stopSwitchyard(fleet, typeof listed === 'string' ? [] : listed.filter((p) => p.role === 'worker').map((p) => p.pid))
      }
    }
  }
  }
  // Stopped here, not only by the exit path: SIGTERM lets the master take its worker with it.
  if (nginx.ok) await children.stop(nginx.child, 5000)
  if (haproxy.ok) await children.stop(haproxy.child, 5000)
  if (varnish.ok) await children.stop(varnish.child, 5000)

  // Ratios, within each round.
  for (let round = 1; round <= opts.rounds; round++) {
    const inRound = results.filter((r) => r.round === round)
    const direct = inRound.find((r) => r.name === 'direct')?.load?.reqPerSec ?? null
    const peerPerCore = inRound.find((r) => r.name === 'http-proxy')?.reqPerCore ?? null
    // The best Node peer of each row's protocol, chosen as the peers table chooses it (comparePeers), on this round's numbers.
    const measured = inRound.filter((r): r is ScenarioResult & { readonly load: LoadResult } => r.load !== null)
    const best = comparePeers(measured.map((r) => ({
      name: r.name, reqPerSec: r.load.reqPerSec, reqPerCore: r.reqPerCore, latencyMs: null,
      nginx: null, native: null, nodePeers: nodePeersOf(r.name), ceiling: null, latencyRef: null
    })))
    measured.forEach((r, i) => {
      r.vsDirect = direct !== null && direct > 0 ? r.load.reqPerSec / direct : null
      // http-proxy is loaded over plaintext HTTP/1.1 only: a TLS or h2 row has nothing to compare with there.
      r.perCoreVsHttpProxy = protocolOf(r.name) === 'h1' && r.reqPerCore !== null && peerPerCore !== null && peerPerCore > 0 ? r.reqPerCore / peerPerCore : null
      const c = best[i]
      r.perCoreVsBestNode = c?.vsBestNode ?? null
      r.bestNode = r.perCoreVsBestNode === null ? null : nodePeersOf(r.name).find((n) => n === c?.bestNode) ?? null
    })
  }
  const target = spread(results.filter((r) => r.name === 'switchyard-h1').map((r) => r.perCoreVsHttpProxy))?.median ?? null
  // Against the best Node peer of each protocol: medians of the per-round ratios, like the target above.
  const nodeTargets = NODE_TARGETS.map((t) => {
    const rows = results.filter((r) => r.name === t.scenario && r.perCoreVsBestNode !== null)
    return {
      ...t,
      peers: nodePeersOf(t.scenario),
      bestNode: [...new Set(rows.map((r) => r.bestNode))].join(',') || null,
      value: spread(rows.map((r) => r.perCoreVsBestNode))?.median ?? null
    }
  })
  const peers = aggregatePeers(results)

  const fleetRows = results.filter((r) => FLEETS.has(r.name))
  // Said with every result of the pairs: what the machine allows them to show.
  const cpuCount = cpus().length
  const machineLimit = cpuCount <= 2
    ? `this machine has ${cpuCount} CPUs and the load generator and the origin need one of them: in neither pair does the second worker get a core of its own,` +
      ' so neither shows the speed-up a machine with spare cores would give. req/s cannot double; compare requests per CPU-second of the proxy.'
    : `the load side takes about one of the ${cpuCount} CPUs: req/s is bounded by what is left.`
  const pairLimit = (pair: WorkersPair): string => {
    if (!pinning.enabled) {
      return pair.pinned
        ? `not measured: it needs pinning (${pinning.note}); unpinned it would only repeat the other pair.`
        : 'nothing is pinned: the proxy, the origin and the load generator share every CPU.'
    }
    const load = `the origin and the load generator on CPU ${pinning.originCpu ?? '?'}`
    return pair.pinned
      ? `the whole proxy (primary + workers) pinned to CPU ${pinning.proxyCpu ?? '?'}, ${load}: the workers take turns on one core,` +
        ' so req/s cannot rise with the second one; requests per CPU-second, 2 against 1, is the cost of the cluster itself' +
        ' (IPC, the primary, metrics export, two event loops on one core) without contention for cores.'
      : `the proxy may use CPUs ${pinning.allCpus ?? '?'}, ${load}: the second worker shares CPU ${pinning.originCpu ?? '?'} with the load side,` +
        ' so its requests per CPU-second mix the cluster\'s own cost with contention for cores (cache misses, migrations, preemption).'
  }
  const pairs = PAIRS.filter((p) => fleetRows.some((r) => r.name === p.one || r.name === p.two)).map((p) => ({
    ...p,
    proxyCpus: !pinning.enabled ? null : p.pinned ? pinning.proxyCpu : pinning.allCpus,
    ...compareWorkers(results, p),
    limit: pairLimit(p)
  }))

  const affinity = {
    harness: cpusAllowed('self'),
    origin: origin.child.pid === undefined ? null : cpusAllowed(origin.child.pid),
    httpProxy: peer?.child.pid === undefined ? null : cpusAllowed(peer.child.pid),
    fastifyProxy: typeof fastify === 'string' || fastify.child.pid === undefined ? null : cpusAllowed(fastify.child.pid),
    fastifyProxyH2: typeof fastifyH2 === 'string' || fastifyH2.child.pid === undefined ? null : cpusAllowed(fastifyH2.child.pid),
    nginxWorker: nginxCpus,
    ceiling: typeof ceiling === 'string' || ceiling.child.pid === undefined ? null : cpusAllowed(ceiling.child.pid),
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
  for (const t of nodeTargets) {
    if (!opts.only.includes(t.scenario)) continue
    const goal = t.goal === null ? '' : ` (issue bar >= ${t.goal}: ${t.value === null ? 'n/a' : t.value >= t.goal ? 'MET' : 'NOT MET'})`
    out.write(`${t.scenario} req/s per core / best Node peer (${t.bestNode ?? t.peers.join(' or ')}) req/s per core = ` +
      (t.value === null ? `n/a (needs ${t.scenario} and one of ${t.peers.join(', ')} measured)` : t.value.toFixed(2)) + goal + '\n')
  }
  const medianReqPerSec = (n: ScenarioName): number | null => spread(results.filter((r) => r.name === n).map((r) => r.load?.reqPerSec))?.median ?? null
  const hitRps = medianReqPerSec('switchyard-cache-hit')
  const h1Rps = medianReqPerSec('switchyard-h1')
  const directRps = medianReqPerSec('direct')
  if (hitRps !== null && h1Rps !== null) {
    out.write(`cache hit: ${(hitRps / h1Rps).toFixed(2)}x the pass-through req/s` +
      (directRps !== null ? `, ${(hitRps / directRps).toFixed(2)}x the origin served directly` : '') + (opts.rounds > 1 ? ' (medians)' : '') + '\n')
  }
  const noisy = results.filter((r) => r.cpu.other !== null && r.cpu.other > 0.2)
  if (noisy.length > 0) {
    out.write(`note: other processes used > 0.2 of a core in ${noisy.map((r) => opts.rounds > 1 ? `${r.name} #${r.round}` : r.name).join(', ')}: treat those rows as noisy and re-run.\n`)
  }
  let dynamicSummary: { reqPerSecRatio: number | null, p50Ms: { cached: number | null, uncached: number | null, direct: number | null } } | null = null
  if (peers.length > 0) {
    out.write(`\npeers (${opts.rounds} round${opts.rounds === 1 ? '' : 's'}, interleaved; medians${opts.rounds > 1 ? ', range = least-most' : ''}).` +
      ' req/s/core = req/s / proxy CPU share; x nginx, x HAProxy/Varnish, x best Node, x ceiling = req/s/core / theirs (same protocol and path);' +
      ' +p50/+p99/+p99.9 = latency percentile minus that of the row in "over" (ms):\n')
    out.write(peersTable(peers) + '\n')
    out.write('ceiling-* = a bare Node server answering the cache-hit bytes from memory on the proxy CPU: no proxy on that core can do better per core.' +
      ' The h2 rows have no direct h2 origin: their latency is added over ceiling-h2.\n')
    // Issue 12's latency bar, for the rows it concerns, at the load this run used.
    const load = paceText === null ? 'saturated' : `paced, ${paceText} between requests per connection`
    for (const name of LATENCY_BAR.scenarios) {
      const row = peers.find((p) => p.name === name && p.skipped === null)
      if (row === undefined) continue
      const added = row.comparison?.addedMs?.p99 ?? null
      out.write(`${name}: p99 added over ${PEER_SPECS.get(name)?.latencyRef ?? '-'} = ${added === null ? 'n/a' : `${signed(added)} ms`} (${load}, ${row.connections} connections;` +
        ` issue bar <= ${LATENCY_BAR.maxAddedP99Ms} ms: ${added === null ? 'n/a' : added <= LATENCY_BAR.maxAddedP99Ms ? 'MET' : 'NOT MET'})\n`)
    }
    const dyn = (n: ScenarioName): PeerAggregate | undefined => peers.find((p) => p.name === n && p.skipped === null)
    const cached = dyn('switchyard-dynamic-cached')
    const uncached = dyn('switchyard-dynamic-uncached')
    if (cached !== undefined && uncached !== undefined) {
      const r = cached.reqPerSec !== null && uncached.reqPerSec !== null && uncached.reqPerSec.median > 0 ? cached.reqPerSec.median / uncached.reqPerSec.median : null
      dynamicSummary = { reqPerSecRatio: r, p50Ms: { cached: cached.latencyMs.p50?.median ?? null, uncached: uncached.latencyMs.p50?.median ?? null, direct: dyn('direct-dynamic')?.latencyMs.p50?.median ?? null } }
      out.write(`dynamic endpoint (${DYNAMIC_CONNECTIONS} connections, origin answers after 100 ms with no freshness): cached route / cache: false = ${fmt(r, 2)}x req/s;` +
        ` p50 ${fmt(dynamicSummary.p50Ms.cached, 1)} ms cached, ${fmt(dynamicSummary.p50Ms.uncached, 1)} ms cache: false, ${fmt(dynamicSummary.p50Ms.direct, 1)} ms direct` +
        ' (issue 12: a cached route must cost nothing measurable against cache: false)\n')
    }
  }
  // The unpinned workers pair shares CPU 1 with the proxy by design; its limit is said below.
  const saturated = results.filter((r) => FLEETS.get(r.name)?.pinned !== false && r.cpu.origin !== null && r.cpu.loadgen !== null && r.cpu.origin.share + r.cpu.loadgen.share > 0.9)
  if (saturated.length > 0 && pinning.enabled) {
    out.write(`note: CPU 1 (origin + load generator) was near saturation in ${saturated.map((r) => r.name).join(', ')}: req/s there is bounded by the load side; compare req/s/core.\n`)
  }
  if (fleetRows.length > 0) {
    out.write('\nworkers (plaintext HTTP/1.1; proxy CPU = the primary + every worker, from /proc/<pid>/stat; req/CPU-s = requests / proxy CPU-seconds):\n')
    out.write(workersTable(fleetRows) + '\n')
    out.write(`limit: ${machineLimit}\n`)
    const x = (n: number | null): string => n === null ? 'n/a' : `${n.toFixed(2)}x`
    for (const p of pairs) {
      out.write(`${p.pinned ? 'pinned' : 'unpinned'}: ${p.limit}\n`)
      out.write(`  ${p.pinned ? 'pinned  ' : 'unpinned'} 2 workers / 1 worker: req/s ${x(p.throughput)}, requests per CPU-second ${x(p.perCpu)}` +
        ` (target >= ${WORKERS_TARGET}: ${p.perCpu === null ? 'n/a, needs both measured' : p.perCpu >= WORKERS_TARGET ? 'MET' : 'NOT MET'})\n`)
    }
  }

  const report = {
    startedAt: startedAt.toISOString(),
    ...machineFacts(),
    v8: process.versions.v8,
    loadavgAtEnd: loadavg(),
    gitCommit: gitCommit(root),
    settings: {
      ...settings, warmupSec: opts.warmupSec, only: opts.only, switchyardMain: opts.main, cpuProf: opts.cpuProf, accessLog: opts.accessLog,
      rounds: opts.rounds, h1Generator, h2Connections: opts.h2Connections, h2Streams: opts.h2Streams, dynamicConnections: DYNAMIC_CONNECTIONS,
      paceMs: opts.paceMs, paceRangeMs: pace
    },
    tools: { ...tools, nginxVersion: nginx.ok ? nginx.version : null, haproxyVersion: haproxy.ok ? haproxy.version : null, varnishVersion: varnish.ok ? varnish.version : null },
    peers: { rows: peers, dynamic: dynamicSummary },
    pinning: { ...pinning, affinity },
    target: { metric: 'switchyard-h1 reqPerCore / http-proxy reqPerCore', value: target, goal: TARGET_RATIO },
    // Per protocol, against the best Node peer of each round (goal null: no bar stated for it here).
    nodeTargets: nodeTargets.map((t) => ({
      metric: `${t.scenario} reqPerCore / best Node peer reqPerCore (median of rounds)`, scenario: t.scenario, peers: t.peers, bestNode: t.bestNode, value: t.value, goal: t.goal
    })),
    workers: {
      metric: '2 workers / 1 worker, requests per proxy CPU-second (primary + workers), per pair',
      goal: WORKERS_TARGET,
      limit: fleetRows.length > 0 ? machineLimit : null,
      pairs: pairs.map((p) => ({
        pinned: p.pinned,
        scenarios: [p.one, p.two],
        proxyCpus: p.proxyCpus,
        throughputRatio: p.throughput,
        perCpuRatio: p.perCpu,
        met: p.perCpu === null ? null : p.perCpu >= WORKERS_TARGET,
        limit: p.limit
      }))
    },
    scenarios: results
  }
  const file = join(resultsDir, `${startedAt.toISOString().replace(/:/g, '-')}.json`)
  writeFileSync(file, JSON.stringify(report, null, 2) + '\n')
  out.write(`results: ${file}\n`)
  if (opts.cpuProf && (switchyard.ok || fleetRows.length > 0)) {
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
