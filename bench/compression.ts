// What compression costs (issue 15), in two parts. Not a test and not part of
// `npm test`:
//
//   npm run bench:compression [-- --duration 5 --rounds 3 --connections 16 --baseline DIR --skip-load]
//
// 1. CPU per KiB: a text corpus (1 MiB of this repository's README,
//    example config and TypeScript sources, nothing repeated: a repeat
//    within brotli's window would flatter it) streamed through each
//    algorithm and level exactly as the proxy does (node:zlib, 16 KiB
//    chunks), timed in this process's CPU time: µs per KiB of input, MiB/s,
//    and the compressed size.
// 2. Requests/s: a Switchyard (`dist/src/main.js start`, one process) in
//    front of an in-process origin answering a 14 KiB HTML page, loaded by
//    autocannon with `Accept-Encoding: gzip, br`: a route without
//    compression, one with gzip, one with br (none cached), and br on a
//    cached route (the stored variant, no compression per hit). The routes
//    are measured in interleaved rounds (medians reported).
//    With --baseline DIR (another build's root, e.g. main's, built with
//    `npm run build`), the route without compression is also measured on
//    that build, interleaved with this one: the hot path with compression
//    unconfigured, before and after. --ab-only measures just that pair.
// Results also go to bench/results/compression-<timestamp>.json (git-ignored).

import { execFileSync, type ChildProcess } from 'node:child_process'
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import type { Transform } from 'node:stream'
import autocannon from 'autocannon'
import { Children, waitForPorts } from './children.js'
import { compressor } from '../src/proxy/compression/sink.js'
import { DEFAULTS, type CompressionAlgorithm } from '../src/config/schema.js'
import { zstdAvailable } from '../src/config/validate/compression.js'

const here = dirname(fileURLToPath(import.meta.url))
// dist/bench/compression.js or bench/compression.ts: the repository root is the first with a package.json
const ROOT = [resolve(here, '..', '..'), resolve(here, '..')].find((d) => { try { readFileSync(join(d, 'package.json')); return true } catch { return false } })!

const args = parseArgs({
  options: {
    duration: { type: 'string', default: '5' },
    rounds: { type: 'string', default: '3' },
    connections: { type: 'string', default: '16' },
    baseline: { type: 'string' },
    'ab-only': { type: 'boolean', default: false },
    'skip-load': { type: 'boolean', default: false }
  }
}).values
const DURATION = Number(args.duration)
const ROUNDS = Number(args.rounds)
const CONNECTIONS = Number(args.connections)
if (!(DURATION > 0) || !(ROUNDS > 0) || !(CONNECTIONS > 0)) throw new RangeError('--duration, --rounds and --connections must be positive')

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

// ---------------------------------------------------------------- 1. CPU per KiB

function corpus (): Buffer {
  const parts = [readFileSync(join(ROOT, 'README.md')), readFileSync(join(ROOT, 'config', 'example.yaml'))]
  let size = parts[0]!.length + parts[1]!.length
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name < b.name ? -1 : 1)) {
      if (size >= 1 << 20) return
      if (e.isDirectory()) walk(join(dir, e.name))
      else if (e.name.endsWith('.ts')) {
        const b = readFileSync(join(dir, e.name))
        parts.push(b)
        size += b.length
      }
    }
  }
  walk(join(ROOT, 'src'))
  return Buffer.concat(parts).subarray(0, 1 << 20)
}
const CORPUS = corpus()
const CHUNK = 16 * 1024

/** CPU µs to stream `input` through a fresh compressor, and the output size. */
function compressOnce (make: () => Transform, input: Buffer): Promise<{ cpuUs: number, out: number }> {
  return new Promise((resolve, reject) => {
    const z = make()
    let out = 0
    z.on('data', (c: Buffer) => { out += c.length })
    z.on('error', reject)
    const start = process.cpuUsage()
    z.on('end', () => {
      const u = process.cpuUsage(start)
      resolve({ cpuUs: u.user + u.system, out })
    })
    for (let i = 0; i < input.length; i += CHUNK) z.write(input.subarray(i, i + CHUNK))
    z.end()
  })
}

interface CpuRow { algorithm: string, level: number, usPerKiB: number, mibPerSec: number, ratio: number }

async function cpuPart (): Promise<CpuRow[]> {
  const plan: Array<[CompressionAlgorithm, number[]]> = [['gzip', [1, 6, 9]], ['br', [1, 4, 6, 11]]]
  if (zstdAvailable()) plan.push(['zstd', [1, 3, 9]])
  const rows: CpuRow[] = []
  for (const [alg, levels] of plan) {
    for (const level of levels) {
      // br 11 is slow: a quarter of the corpus is enough to time it.
      const input = alg === 'br' && level >= 10 ? CORPUS.subarray(0, CORPUS.length / 4) : CORPUS
      const lv = { ...DEFAULTS.route.compression.level, [alg]: level }
      const make = (): Transform => compressor(alg, lv, input.length)
      await compressOnce(make, input) // warm-up
      const times: number[] = []
      let out = 0
      for (let r = 0; r < ROUNDS; r++) {
        const x = await compressOnce(make, input)
        times.push(x.cpuUs)
        out = x.out
      }
      const us = median(times)
      const kib = input.length / 1024
      rows.push({ algorithm: alg, level, usPerKiB: us / kib, mibPerSec: (input.length / (1 << 20)) / (us / 1e6), ratio: out / input.length })
    }
  }
  return rows
}

// ---------------------------------------------------------------- 2. requests/s

const PAGE = Buffer.from('<!doctype html><html><head><title>bench</title></head><body>' +
  CORPUS.subarray(0, 14 * 1024 - 80).toString().replace(/[<>&]/g, ' ') + '</body></html>')

function startOrigin (): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    const cached = (req.url ?? '').startsWith('/cached')
    res.writeHead(200, {
      'content-type': 'text/html; charset=utf-8',
      'content-length': String(PAGE.length),
      ...(cached ? { 'cache-control': 'max-age=3600' } : {})
    })
    res.end(PAGE)
  })
  server.keepAliveTimeout = 60_000
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)))
}

function freePort (): Promise<number> {
  return new Promise((resolve) => {
    const s = http.createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as AddressInfo).port
      s.close(() => resolve(port))
    })
  })
}

function proxyConfig (port: number, origin: number, compression: boolean): string {
  const c = (what: string): string => compression ? `\n    compression: ${what}` : ''
  return `listeners: [{ bind: "127.0.0.1:${port}" }]
admin: false
accessLog: false
cache: {}
routes:
  - { name: gzip, match: { pathPrefix: /gzip }, backend: o, cache: false${compression ? ', compression: { algorithms: [gzip] }' : ''} }
  - { name: br, match: { pathPrefix: /br }, backend: o, cache: false${compression ? ', compression: { algorithms: [br] }' : ''} }
  - name: cached
    match: { pathPrefix: /cached }
    backend: o${c('{ algorithms: [br] }')}
  - { name: plain, backend: o, cache: false }
backends:
  o: { servers: [{ url: "http://127.0.0.1:${origin}" }] }
`
}

/** The parts of autocannon's options and result used here (bench/autocannon.d.ts types fewer). */
interface CannonResult { requests: { total: number }, throughput: { total: number }, errors: number, timeouts: number, non2xx: number }
const cannon = autocannon as unknown as (opts: object, cb: (err: Error | null, r: CannonResult) => void) => unknown

function load (url: string): Promise<{ reqPerSec: number, kibPerReq: number, errors: number, non2xx: number }> {
  return new Promise((resolve, reject) => {
    cannon({
      url, connections: CONNECTIONS, duration: DURATION, pipelining: 1, timeout: 10,
      headers: { 'accept-encoding': 'gzip, br' }
    }, (err, r) => {
      if (err !== null && err !== undefined) return reject(err)
      resolve({
        reqPerSec: r.requests.total / DURATION,
        kibPerReq: r.requests.total === 0 ? 0 : r.throughput.total / r.requests.total / 1024,
        errors: r.errors + r.timeouts,
        non2xx: r.non2xx
      })
    })
  })
}

interface LoadRow { scenario: string, reqPerSec: number, kibPerReq: number, runs: number[] }

async function loadPart (children: Children): Promise<LoadRow[]> {
  const origin = await startOrigin()
  const originPort = (origin.address() as AddressInfo).port
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-compression-bench-'))
  const proxies: Array<{ name: string, port: number, child: ChildProcess }> = []
  try {
    const start = async (name: string, root: string, compression: boolean): Promise<void> => {
      const port = await freePort()
      const file = join(dir, `${name}.yaml`)
      writeFileSync(file, proxyConfig(port, originPort, compression))
      const child = children.spawnNode(join(root, 'dist', 'src', 'main.js'), ['start', '-c', file], { cpu: null, stdio: ['ignore', 'ignore', 'inherit'] })
      const err = await waitForPorts(child, [port], 20_000)
      if (err !== null) throw new Error(`${name}: ${err}`)
      proxies.push({ name, port, child })
    }
    await start('this', ROOT, true)
    if (args.baseline !== undefined) await start('baseline', resolve(args.baseline), false)
    const url = (name: string, path: string): string => `http://127.0.0.1:${proxies.find((p) => p.name === name)!.port}${path}`
    const scenarios: Array<[string, string]> = [
      ['no compression (this build)', url('this', '/plain')],
      ['gzip 6', url('this', '/gzip')],
      ['br 4', url('this', '/br')],
      ['br 4, cached (stored variant)', url('this', '/cached')]
    ]
    if (args.baseline !== undefined) scenarios.splice(1, 0, ['no compression (baseline build)', url('baseline', '/plain')])
    if (args['ab-only'] === true) scenarios.splice(args.baseline === undefined ? 1 : 2)
    // Warm every path (JIT, connections, the cache entry).
    for (const [, u] of scenarios) await load(u)
    const runs = new Map<string, Array<{ reqPerSec: number, kibPerReq: number }>>()
    for (let r = 0; r < ROUNDS; r++) {
      // Interleaved, and the order turned each round, so drift on a shared machine hits every scenario alike.
      const order = r % 2 === 0 ? scenarios : [...scenarios].reverse()
      for (const [name, u] of order) {
        const x = await load(u)
        if (x.errors > 0 || x.non2xx > 0) console.error(`${name}: ${x.errors} errors, ${x.non2xx} non-2xx`)
        runs.set(name, [...(runs.get(name) ?? []), x])
        console.error(`  round ${r + 1} ${name}: ${Math.round(x.reqPerSec)} req/s, ${x.kibPerReq.toFixed(1)} KiB/response`)
      }
    }
    return scenarios.map(([name]) => {
      const xs = runs.get(name)!
      return { scenario: name, reqPerSec: median(xs.map((x) => x.reqPerSec)), kibPerReq: median(xs.map((x) => x.kibPerReq)), runs: xs.map((x) => Math.round(x.reqPerSec)) }
    })
  } finally {
    for (const p of proxies) await children.stop(p.child)
    origin.closeAllConnections()
    origin.close()
    rmSync(dir, { recursive: true, force: true })
  }
}

// ---------------------------------------------------------------- run

const children = new Children()
process.on('exit', () => children.killAllSync())
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => process.exit(130))

console.log(`Compression benchmark, node ${process.version}, ${ROUNDS} rounds${args['skip-load'] === true ? '' : `, ${DURATION} s × ${CONNECTIONS} connections per load run`}`)
console.log(`\nCPU per KiB of input (${(CORPUS.length / 1024).toFixed(0)} KiB of README, example.yaml and src/*.ts, 16 KiB chunks; this process's CPU time, median)`)
const cpu = args['ab-only'] === true ? [] : await cpuPart()
console.log('  algorithm  level   µs/KiB    MiB/s   size')
for (const r of cpu) {
  console.log(`  ${r.algorithm.padEnd(9)}  ${String(r.level).padStart(5)}  ${r.usPerKiB.toFixed(1).padStart(7)}  ${r.mibPerSec.toFixed(1).padStart(7)}  ${(r.ratio * 100).toFixed(1).padStart(5)}%`)
}
let rows: LoadRow[] = []
if (args['skip-load'] !== true) {
  console.log(`\nRequests/s through one Switchyard process, a ${(PAGE.length / 1024).toFixed(0)} KiB HTML page, Accept-Encoding: gzip, br (median of ${ROUNDS} interleaved rounds)`)
  rows = await loadPart(children)
  const base = rows[0]!.reqPerSec
  for (const r of rows) {
    console.log(`  ${r.scenario.padEnd(34)} ${Math.round(r.reqPerSec).toString().padStart(7)} req/s  ${(r.reqPerSec / base).toFixed(2)}×  ${r.kibPerReq.toFixed(1).padStart(5)} KiB/response  runs ${r.runs.join(' ')}`)
  }
}
const out = join(ROOT, 'bench', 'results')
mkdirSync(out, { recursive: true })
const file = join(out, `compression-${new Date().toISOString().replace(/[:.]/g, '-')}.json`)
let commit: string | null = null
try { commit = execFileSync('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD']).toString().trim() } catch {}
writeFileSync(file, JSON.stringify({ node: process.version, commit, rounds: ROUNDS, duration: DURATION, connections: CONNECTIONS, cpu, load: rows }, null, 2) + '\n')
console.log(`\n→ ${file}`)
