// Cache memory benchmark (not part of `npm test`): does a full cache stay
// within cache.maxBytes + the stated overhead? Starts a real Switchyard
// (`node dist/src/main.js start`, workers: 1 by default) in front of an origin
// in this process that answers every path with a distinct, cacheable body,
// asks for `--fill` × maxBytes of distinct URLs (loopback only, bounded in
// count and time), and samples the proxy's RSS (/proc/PID/status VmRSS) and
// heap (bench/memory-probe.ts, preloaded) as it fills:
//
//   npm run bench:memory -- [--max-bytes 32] [--fill 10] [--body 2048] [--workers 1] [--heap auto|none|<MiB>]
//
// --heap: `auto` runs the proxy as documented for one process (NODE_OPTIONS
// --max-old-space-size from heapLimitMiB), `none` leaves V8's default, a number
// sets that many MiB. Prints the curve (every 10% of the fill), the idle, peak
// and final numbers, and whether the final RSS is within maxBytes + the
// overhead README states; the JSON goes to bench/results/cache-memory-<time>.json.

import { spawn, type ChildProcess } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { Pool } from 'undici'
import { heapLimitMiB, MEMORY_OVERHEAD_BYTES } from '../src/cache/memory.js'

const MiB = 1024 * 1024
const HERE = dirname(fileURLToPath(import.meta.url))
const ROOT = resolve(HERE, '..', '..')
const MAIN = join(ROOT, 'dist', 'src', 'main.js')

const args = parseArgs({
  options: {
    'max-bytes': { type: 'string', default: '32' },
    fill: { type: 'string', default: '10' },
    body: { type: 'string', default: '2048' },
    workers: { type: 'string', default: '1' },
    heap: { type: 'string', default: 'auto' },
    connections: { type: 'string', default: '32' },
    'max-seconds': { type: 'string', default: '300' },
    settle: { type: 'string', default: '3' }
  }
}).values
const MAX_BYTES = Number(args['max-bytes']) * MiB
const FILL = Number(args.fill)
const BODY = Number(args.body)
const WORKERS = Number(args.workers)
const CONNECTIONS = Number(args.connections)
const MAX_MS = Number(args['max-seconds']) * 1000
const SETTLE_MS = Number(args.settle) * 1000
if (!(MAX_BYTES >= MiB) || !(FILL > 0) || !(BODY > 0) || !(WORKERS >= 1) || !(CONNECTIONS >= 1) || !(MAX_MS > 0)) {
  throw new RangeError('--max-bytes (MiB) >= 1, --fill, --body, --workers, --connections, --max-seconds > 0')
}
const REQUESTS = Math.ceil(FILL * MAX_BYTES / BODY)

// ---- origin: a distinct body per path, cacheable for an hour

const origin = http.createServer((req, res) => {
  const body = Buffer.alloc(BODY, `${req.url ?? ''}|`)
  res.writeHead(200, {
    'content-type': 'text/plain; charset=utf-8',
    'cache-control': 'public, max-age=3600',
    etag: `"${(req.url ?? '').length.toString(16)}-${body.length}"`,
    'content-length': String(body.length)
  })
  res.end(body)
})
origin.keepAliveTimeout = 60_000
await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve))
const originPort = (origin.address() as AddressInfo).port

// ---- the proxy

const dir = mkdtempSync(join(tmpdir(), 'switchyard-cache-memory-'))
const probeFile = join(dir, 'memory.jsonl')
const config = join(dir, 'switchyard.yaml')
writeFileSync(config, `workers: ${WORKERS}
listeners: [{ name: web, bind: "127.0.0.1:0" }]
admin: { bind: "127.0.0.1:0" }
accessLog: { enabled: false }
cache: { maxBytes: ${MAX_BYTES}, maxEntryBytes: 1MiB }
routes:
  - match: { pathPrefix: / }
    backend: origin
backends:
  origin:
    servers: [{ url: "http://127.0.0.1:${originPort}" }]
`)
const heapArg = args.heap === 'none' ? undefined : args.heap === 'auto' ? heapLimitMiB(MAX_BYTES) : Number(args.heap)
const env: NodeJS.ProcessEnv = { ...process.env, SWITCHYARD_MEMORY_PROBE: probeFile }
delete env.NODE_OPTIONS
// One process reads its heap size from NODE_OPTIONS, as README says to set it; workers get theirs from the primary.
if (heapArg !== undefined && WORKERS === 1) env.NODE_OPTIONS = `--max-old-space-size=${heapArg}`
const proxy = spawn(process.execPath, [
  '--import', join(ROOT, 'dist', 'bench', 'parent-watch.js'), '--import', join(ROOT, 'dist', 'bench', 'memory-probe.js'),
  MAIN, 'start', '-c', config
], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] })
let stderr = ''
proxy.stderr!.setEncoding('utf8').on('data', (s: string) => { stderr = (stderr + s).slice(-8192) })

function stopAll (): void {
  if (proxy.exitCode === null && proxy.signalCode === null) proxy.kill('SIGTERM')
  origin.closeAllConnections()
  origin.close()
}
process.once('SIGINT', () => { stopAll(); process.exit(130) })

try {
  await run(proxy)
} finally {
  stopAll()
  await new Promise((resolve) => { if (proxy.exitCode !== null || proxy.signalCode !== null) resolve(undefined); else proxy.once('exit', resolve) })
  rmSync(dir, { recursive: true, force: true })
}

async function run (child: ChildProcess): Promise<void> {
  const adminPort = await adminListening(child)
  // A cluster's admin answers before its workers listen.
  let port = 0
  for (let i = 0; i < 200 && !(port > 0); i++) {
    const status = await getJson(adminPort, '/status') as { listeners?: { name: string, port: number }[] }
    port = status.listeners?.find((l) => l.name === 'web')?.port ?? 0
    if (!(port > 0)) await sleep(100)
  }
  if (!(port > 0)) throw new Error(`no listener port from admin /status\n${stderr}`)
  await sleep(1000)
  const pids = proxyPids(child.pid!)
  const idle = sample(pids)
  console.log(`switchyard pid ${child.pid}${pids.length > 1 ? ` (workers ${pids.slice(1).join(', ')})` : ''}; maxBytes ${mib(MAX_BYTES)} MiB; ` +
    `heap limit ${WORKERS > 1 ? 'workers sized by Switchyard' : heapArg === undefined ? 'V8 default' : `${heapArg} MiB (NODE_OPTIONS)`}; ${REQUESTS} distinct URLs of ${BODY} B (${FILL}× maxBytes)`)
  console.log(`idle: RSS ${mib(idle.rss)} MiB, heap ${mib(idle.heapUsed)} / ${mib(idle.heapTotal)} MiB`)
  const limits = new Map<number, number>()
  for (const s of readProbe()) limits.set(s.pid, s.limit)
  console.log(`V8 heap limits: ${[...limits].map(([pid, l]) => `pid ${pid} ${mib(l)} MiB`).join(', ')}`)
  console.log('\n  done     RSS MiB  heapUsed  heapTotal  arrayBuf  cache MiB  entries')
  const curve: Row[] = []
  const pool = new Pool(`http://127.0.0.1:${port}`, { connections: CONNECTIONS, pipelining: 1 })
  const started = Date.now()
  let next = 0
  let done = 0
  let errors = 0
  let mark = 0.1
  const loop = async (): Promise<void> => {
    while (next < REQUESTS && Date.now() - started < MAX_MS) {
      const i = next++
      try {
        const r = await pool.request({ path: `/obj/${i}`, method: 'GET' })
        await r.body.dump()
        if (r.statusCode !== 200) errors++
      } catch {
        errors++
      }
      done++
      if (done >= mark * REQUESTS) {
        mark += 0.1
        curve.push(await row(adminPort, pids, done))
      }
    }
  }
  await Promise.all(Array.from({ length: CONNECTIONS }, loop))
  await pool.close()
  await sleep(SETTLE_MS)
  const last = await row(adminPort, pids, done)
  curve.push(last)
  const seconds = (Date.now() - started) / 1000
  const peak = Math.max(...readProbe().map((s) => s.rss), ...curve.map((r) => r.rss))
  // A cluster's primary holds no cache, but is a process of its own.
  const processes = WORKERS === 1 ? 1 : WORKERS + 1
  const bound = MAX_BYTES + MEMORY_OVERHEAD_BYTES * processes
  console.log(`\n${done} requests in ${seconds.toFixed(1)} s (${errors} errors)`)
  console.log(`RSS: idle ${mib(idle.rss)} MiB, peak ${mib(peak)} MiB, final ${mib(last.rss)} MiB (after ${SETTLE_MS / 1000} s idle)`)
  console.log(`heap: final ${mib(last.heapUsed)} used / ${mib(last.heapTotal)} MiB total; array buffers ${mib(last.arrayBuffers)} MiB`)
  console.log(`cache: ${last.entries} entries, ${mib(last.cacheBytes)} MiB counted of ${mib(MAX_BYTES)} MiB`)
  console.log(`bound: maxBytes + ${mib(MEMORY_OVERHEAD_BYTES)} MiB${processes > 1 ? ` × ${processes} processes` : ''} = ${mib(bound)} MiB: ` +
    `final ${last.rss <= bound ? 'within' : 'ABOVE'}, peak ${peak <= bound ? 'within' : 'ABOVE'}`)
  const results = join(ROOT, 'bench', 'results')
  mkdirSync(results, { recursive: true })
  const out = join(results, `cache-memory-${new Date().toISOString().replace(/:/g, '-')}.json`)
  writeFileSync(out, JSON.stringify({ maxBytes: MAX_BYTES, fill: FILL, body: BODY, workers: WORKERS, heapLimitMiB: heapArg ?? null, requests: done, errors, seconds, idle, peak, bound, curve }, null, 2))
  console.log(`wrote ${out}`)
}

interface Sample { rss: number, heapUsed: number, heapTotal: number, arrayBuffers: number }
interface Row extends Sample { done: number, cacheBytes: number, entries: number }

async function row (adminPort: number, pids: number[], done: number): Promise<Row> {
  const s = sample(pids)
  const st = await getJson(adminPort, '/status').catch(() => ({})) as { cache?: { bytes: number, entries: number } }
  const r = { done, ...s, cacheBytes: st.cache?.bytes ?? 0, entries: st.cache?.entries ?? 0 }
  console.log(`${String(done).padStart(6)}  ${pad(r.rss)}  ${pad(r.heapUsed)}  ${pad(r.heapTotal)}  ${pad(r.arrayBuffers)}  ${pad(r.cacheBytes)}  ${String(r.entries).padStart(7)}`)
  return r
}

/** RSS from /proc of every proxy process, summed; heap from the probe's last line per process. */
function sample (pids: number[]): Sample {
  let rss = 0
  for (const pid of pids) rss += vmRss(pid)
  const last = new Map<number, Sample>()
  for (const s of readProbe()) last.set(s.pid, s)
  let heapUsed = 0
  let heapTotal = 0
  let arrayBuffers = 0
  for (const s of last.values()) {
    heapUsed += s.heapUsed
    heapTotal += s.heapTotal
    arrayBuffers += s.arrayBuffers
  }
  return { rss, heapUsed, heapTotal, arrayBuffers }
}

function readProbe (): (Sample & { pid: number, limit: number })[] {
  try {
    return readFileSync(probeFile, 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Sample & { pid: number, limit: number })
  } catch {
    return []
  }
}

function vmRss (pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m === null ? 0 : Number(m[1]) * 1024
  } catch {
    return 0
  }
}

/** The proxy and its workers (children), by /proc. */
function proxyPids (pid: number): number[] {
  try {
    const children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim()
    return [pid, ...children.split(/\s+/).filter((s) => s !== '').map(Number)]
  } catch {
    return [pid]
  }
}

function adminListening (child: ChildProcess): Promise<number> {
  return new Promise((resolve, reject) => {
    let buffered = ''
    const timer = setTimeout(() => reject(new Error(`switchyard not ready in 20 s\n${stderr}`)), 20_000)
    child.once('exit', (code) => reject(new Error(`switchyard exited (${code})\n${stderr}`)))
    child.stdout!.setEncoding('utf8').on('data', (s: string) => {
      buffered += s
      let nl: number
      while ((nl = buffered.indexOf('\n')) !== -1) {
        const line = buffered.slice(0, nl)
        buffered = buffered.slice(nl + 1)
        try {
          const rec = JSON.parse(line) as { msg?: string, port?: number }
          if (rec.msg === 'admin: listening' && typeof rec.port === 'number') {
            clearTimeout(timer)
            resolve(rec.port)
          }
        } catch {}
      }
    })
  })
}

async function getJson (port: number, path: string): Promise<unknown> {
  for (let i = 0; ; i++) {
    const r = await fetch(`http://127.0.0.1:${port}${path}`).catch((err: Error) => err)
    if (!(r instanceof Error) && r.ok) return await r.json()
    if (i > 100) throw new Error(`admin ${path}: ${r instanceof Error ? r.message : r.status}`)
    await sleep(100)
  }
}

function sleep (ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

function mib (n: number): string {
  return (n / MiB).toFixed(1)
}

function pad (n: number): string {
  return mib(n).padStart(8)
}
