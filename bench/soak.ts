// Soak benchmark (not part of `npm test`): drives a long, bounded, mixed load
// through one Switchyard process and watches its memory, to show that RSS and
// heap stay flat once it is warm. Run it with
//
//   npm run bench:soak -- [--requests 1000000] [--max-seconds 900] [--workers 64] [--every 100000]
//
// Processes: Switchyard (bench/soak-proxy.ts: createApp + memory queries over
// IPC, run with --expose-gc) pinned to CPU 0; the bench origin and this harness
// (the load) pinned to CPU 1. The load mixes plain keep-alive GETs (HTTP/1.1
// and h2), cacheable GETs (hits), POSTs with bodies, HTTP/1.1 over TLS, client
// aborts mid-response, TCP resets right after the request, and slow readers
// (paused sockets / h2 streams reading 256 KiB slowly). Every --every requests
// it prints what was done, the errors by kind and the proxy's memory (after a
// full GC); at the end a verdict on whether RSS and heap stayed flat after
// warm-up, and a JSON result in bench/results/soak-<timestamp>.json.
// See bench/README.md ("Soak").

import type { ChildProcess } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import http2 from 'node:http2'
import type { ClientHttp2Session, ClientHttp2Stream } from 'node:http2'
import net from 'node:net'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { Pool } from 'undici'
import { writeSelfSignedCert } from './certs.js'
import { benchRun, cpusAllowed, gitCommit, machineFacts, readJsonLine, setupPinning } from './children.js'
import type { Pinning } from './children.js'
import { meterPid } from './cpu.js'
import { UsageError, intOption } from './options.js'

const MiB = 1024 * 1024
/** Body of /large on the bench origin. */
const LARGE_BYTES = 256 * 1024
/** Per-request bound: a request not answered by then counts as a `timeout` error. */
const REQUEST_TIMEOUT_MS = 15_000
/** Flat = the largest sample in the last third of the run exceeds the post-warm-up baseline by at most this. */
const TOLERANCE = { rssPct: 15, rssMiB: 24, heapPct: 15, heapMiB: 8 } as const

// ---- command line ------------------------------------------------------------

interface Options {
  readonly requests: number
  readonly maxSeconds: number
  readonly workers: number
  readonly slow: number
  readonly connections: number
  readonly h2Sessions: number
  readonly every: number
  readonly warmup: number
  readonly pin: boolean
  readonly seed: number
}

const USAGE = `usage: npm run bench:soak -- [options]
  --requests <n>      requests to complete (default 1000000)
  --max-seconds <s>   stop after this long even if fewer were done (default 900)
  --workers <n>       concurrent request loops for the mix (default 64)
  --slow <n>          concurrent slow readers besides them (default 4)
  --connections <n>   HTTP/1.1 keep-alive connections per listener (default 32)
  --h2-sessions <n>   h2 sessions the h2 requests share (default 4)
  --every <n>         print and sample memory every n requests (default 100000)
  --warmup <n>        requests before the baseline sample (default 100000)
  --seed <n>          seed of the request mix (default 1)
  --no-pin            do not pin processes to CPUs with taskset
  --help`


function parseOptions (argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      requests: { type: 'string', default: '1000000' },
      'max-seconds': { type: 'string', default: '900' },
      workers: { type: 'string', default: '64' },
      slow: { type: 'string', default: '4' },
      connections: { type: 'string', default: '32' },
      'h2-sessions': { type: 'string', default: '4' },
      every: { type: 'string', default: '100000' },
      warmup: { type: 'string', default: '100000' },
      seed: { type: 'string', default: '1' },
      'no-pin': { type: 'boolean', default: false },
      help: { type: 'boolean', default: false }
    },
    strict: true,
    allowPositionals: false
  })
  if (values.help === true) {
    process.stdout.write(USAGE + '\n')
    process.exit(0)
  }
  const o: Options = {
    requests: intOption('requests', values.requests, 1),
    maxSeconds: intOption('max-seconds', values['max-seconds'], 1),
    workers: intOption('workers', values.workers, 1),
    slow: intOption('slow', values.slow, 0),
    connections: intOption('connections', values.connections, 1),
    h2Sessions: intOption('h2-sessions', values['h2-sessions'], 1),
    every: intOption('every', values.every, 1),
    warmup: intOption('warmup', values.warmup, 0),
    seed: intOption('seed', values.seed, 0),
    pin: values['no-pin'] !== true
  }
  if (o.warmup >= o.requests) throw new UsageError('--warmup must be below --requests')
  return o
}

// ---- paths, children, cleanup ------------------------------------------------

const run = benchRun('soak', import.meta.url)
const { root, dist, children, shutdown, log } = run

// ---- the proxy under test ------------------------------------------------------

interface Memory {
  readonly rss: number
  readonly heapUsed: number
  readonly heapTotal: number
  readonly external: number
  readonly arrayBuffers: number
}

interface CacheSnapshot { readonly entries: number; readonly bytes: number }

interface ProxyHandle {
  readonly child: ChildProcess
  readonly plainPort: number
  readonly tlsPort: number
  memory (gc: boolean): Promise<{ usage: Memory; gcRan: boolean; cache: CacheSnapshot | null }>
}

function soakConfig (cert: string, key: string, originPort: number): string {
  const q = (s: string): string => JSON.stringify(s)
  return `# Written by bench/soak.ts for one run; deleted afterwards.
listeners:
  - { name: plain, bind: "127.0.0.1:0" }
  - name: tls
    bind: "127.0.0.1:0"
    tls: { cert: ${q(cert)}, key: ${q(key)} }
cache: { maxBytes: 64MiB }
accessLog: false
admin: false
routes:
  - match: { pathPrefix: / }
    backend: origin
    cache: false
  # The origin says public, max-age=3600 here: hits after the first request per path.
  - match: { pathPrefix: /cached }
    backend: origin
backends:
  origin:
    servers:
      - url: ${q(`http://127.0.0.1:${originPort}`)}
`
}

async function startProxy (pinning: Pinning, dir: string, originPort: number): Promise<ProxyHandle> {
  const { cert, key } = writeSelfSignedCert(dir)
  const configFile = join(dir, 'switchyard-soak.yaml')
  writeFileSync(configFile, soakConfig(cert, key, originPort))
  const child = children.spawnNode(join(dist, 'bench/soak-proxy.js'), [configFile], {
    cpu: pinning.proxyCpu,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    cwd: root,
    nodeFlags: ['--expose-gc']
  })
  const pending = new Map<number, (m: { usage: Memory; gcRan: boolean; cache: CacheSnapshot | null }) => void>()
  let ids = 0
  const ready = new Promise<{ listeners: { name: string; port: number }[] }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('soak proxy not ready within 15 s')), 15_000)
    child.on('message', (m: { type: string; id?: number } & Record<string, unknown>) => {
      if (m.type === 'ready') {
        clearTimeout(timer)
        resolve(m as unknown as { listeners: { name: string; port: number }[] })
      } else if (m.type === 'memory' && m.id !== undefined) {
        pending.get(m.id)?.(m as unknown as { usage: Memory; gcRan: boolean; cache: CacheSnapshot | null })
        pending.delete(m.id)
      }
    })
    child.once('exit', (code, signal) => {
      clearTimeout(timer)
      reject(new Error(`soak proxy exited (code ${code}, signal ${signal})`))
    })
  })
  const { listeners } = await ready
  const port = (name: string): number => {
    const l = listeners.find((x) => x.name === name)
    if (l === undefined) throw new Error(`soak proxy has no listener ${name}`)
    return l.port
  }
  return {
    child,
    plainPort: port('plain'),
    tlsPort: port('tls'),
    memory (gc) {
      return new Promise((resolve, reject) => {
        const id = ++ids
        const timer = setTimeout(() => { pending.delete(id); reject(new Error('no memory answer within 10 s')) }, 10_000)
        pending.set(id, (m) => { clearTimeout(timer); resolve(m) })
        child.send({ type: 'memory', id, gc })
      })
    }
  }
}

// ---- the load ---------------------------------------------------------------------

const KINDS = {
  'h1-get': 36,
  'h1-cached': 14,
  'h1-post': 8,
  'h1-tls-get': 6,
  'h2-get': 17,
  'h2-cached': 7,
  'h2-post': 4,
  'h1-abort': 2.5,
  'h1-reset': 2,
  'h2-abort': 2,
  'h2-reset': 1.5
} as const
type Kind = keyof typeof KINDS | 'h1-slow' | 'h2-slow'
const MIX = Object.entries(KINDS) as [keyof typeof KINDS, number][]
const MIX_TOTAL = MIX.reduce((n, [, w]) => n + w, 0)

/** mulberry32: a small seeded PRNG, so a run's mix can be repeated. */
function prng (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6D2B79F5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

class Tally {
  readonly ok = new Map<Kind, number>()
  readonly errors = new Map<Kind, Map<string, number>>()
  done = 0

  success (kind: Kind): void {
    this.ok.set(kind, (this.ok.get(kind) ?? 0) + 1)
    this.done++
  }

  failure (kind: Kind, why: string): void {
    let m = this.errors.get(kind)
    if (m === undefined) this.errors.set(kind, m = new Map())
    m.set(why, (m.get(why) ?? 0) + 1)
    this.done++
  }

  errorCount (): number {
    let n = 0
    for (const m of this.errors.values()) for (const c of m.values()) n += c
    return n
  }

  /** `{ kind: { why: n } }`, for printing and JSON. */
  errorsObject (): Record<string, Record<string, number>> {
    return Object.fromEntries([...this.errors].map(([k, m]) => [k, Object.fromEntries(m)]))
  }

  okObject (): Record<string, number> {
    return Object.fromEntries(this.ok)
  }
}

function why (err: unknown): string {
  const e = err as { code?: string; name?: string; message?: string }
  // h2 errors name their cause in the message: "Stream closed with error code NGHTTP2_…".
  const nghttp2 = /NGHTTP2_[A-Z_]+/.exec(e.message ?? '')?.[0]
  return nghttp2 === undefined ? e.code ?? e.name ?? String(e.message ?? err) : `${e.code ?? 'h2'} ${nghttp2}`
}

/** Bounded wait for `p`; rejects with code `timeout`. */
function bounded<T> (p: Promise<T>, ms: number, onTimeout: () => void): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  return Promise.race([
    p,
    new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => { onTimeout(); reject(Object.assign(new Error('timeout'), { code: 'timeout' })) }, ms)
    })
  ]).finally(() => clearTimeout(timer))
}

/**
 * h2 sessions shared round-robin; a session that goes away is replaced on next
 * use, and so is one used `maxUses` times (closed gracefully): a session that
 * cancels many streams must stay under Node's rapid-reset limit (nghttp2
 * answers a sustained burst of RST_STREAMs with GOAWAY ENHANCE_YOUR_CALM).
 */
class H2Sessions {
  readonly #url: string
  readonly #slots: (Promise<ClientHttp2Session> | undefined)[]
  readonly #uses: number[]
  readonly #maxUses: number
  #next = 0

  constructor (url: string, n: number, maxUses = Infinity) {
    this.#url = url
    this.#slots = new Array<Promise<ClientHttp2Session> | undefined>(n).fill(undefined)
    this.#uses = new Array<number>(n).fill(0)
    this.#maxUses = maxUses
  }

  get (): Promise<ClientHttp2Session> {
    const i = this.#next++ % this.#slots.length
    let s = this.#slots[i]
    if (s !== undefined && ++this.#uses[i]! > this.#maxUses) {
      // Closed a moment later: a caller may hold it between get() and request().
      void s.then((old) => { setTimeout(() => old.close(), 1000).unref() }, () => {})
      this.#slots[i] = s = undefined
    }
    if (s === undefined) {
      this.#uses[i] = 1
      s = new Promise<ClientHttp2Session>((resolve, reject) => {
        const session = http2.connect(this.#url, { rejectUnauthorized: false })
        const drop = (): void => { if (this.#slots[i] === s) this.#slots[i] = undefined }
        session.on('error', drop)
        session.on('goaway', drop)
        session.on('close', drop)
        session.once('connect', () => resolve(session))
        session.once('error', reject)
      })
      this.#slots[i] = s
      s.catch(() => { if (this.#slots[i] === s) this.#slots[i] = undefined })
    }
    return s
  }

  async close (): Promise<void> {
    await Promise.all(this.#slots.map(async (s) => {
      const session = await s?.catch(() => undefined)
      session?.destroy()
    }))
  }
}

const POST_BODIES = [1024, 4096, 16 * 1024].map((n) => Buffer.alloc(n, 'p'))
const SMALL_BODY = 100 // the bench origin's body

interface Load {
  readonly h1: Pool
  readonly h1tls: Pool
  readonly h2: H2Sessions
  /** Sessions for the h2 aborts and resets, renewed every 300 streams. */
  readonly h2cancel: H2Sessions
  readonly plainPort: number
}

async function h1 (pool: Pool, path: string, method: 'GET' | 'POST', body?: Buffer): Promise<{ status: number; bytes: number }> {
  const r = await pool.request({ path, method, ...(body === undefined ? {} : { body, headers: { 'content-type': 'application/octet-stream' } }) })
  let bytes = 0
  for await (const c of r.body) bytes += (c as Buffer).length
  return { status: r.statusCode, bytes }
}

function h2 (session: ClientHttp2Session, path: string, method: 'GET' | 'POST', body?: Buffer,
  on?: (stream: ClientHttp2Stream, bytes: number) => boolean): Promise<{ status: number; bytes: number }> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':path': path, ':method': method }, { endStream: body === undefined })
    let status = 0
    let bytes = 0
    let settled = false
    const timer = setTimeout(() => { fail(Object.assign(new Error('timeout'), { code: 'timeout' })); stream.close(http2.constants.NGHTTP2_CANCEL) }, REQUEST_TIMEOUT_MS)
    const fail = (err: Error): void => { if (!settled) { settled = true; clearTimeout(timer); reject(err) } }
    const done = (): void => { if (!settled) { settled = true; clearTimeout(timer); resolve({ status, bytes }) } }
    stream.on('response', (h) => { status = Number(h[':status']) })
    stream.on('data', (c: Buffer) => {
      bytes += c.length
      // `on` decides to stop early (an abort): that is the expected outcome.
      if (on !== undefined && on(stream, bytes)) done()
    })
    stream.on('end', done)
    stream.on('error', (err) => fail(err))
    stream.on('close', () => fail(Object.assign(new Error(`stream closed (RST ${stream.rstCode ?? '?'})`), { code: `rst-${stream.rstCode ?? '?'}` })))
    if (body !== undefined) stream.end(body)
  })
}

/** A fresh connection: send `request`, then (once it is written) `act` on the socket; resolves when it closes. */
function raw (port: number, request: string, act: (socket: net.Socket) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port })
    const timer = setTimeout(() => { socket.destroy(); reject(Object.assign(new Error('timeout'), { code: 'timeout' })) }, REQUEST_TIMEOUT_MS)
    socket.once('connect', () => { socket.write(request, () => act(socket)) })
    socket.on('error', () => {}) // ours: we reset or destroy it on purpose
    socket.once('close', () => { clearTimeout(timer); resolve() })
  })
}

/** One request of `kind`; throws (with a code) when it did not go as it should. */
async function once (kind: keyof typeof KINDS, load: Load, rand: () => number): Promise<void> {
  const expect = (r: { status: number; bytes: number }, bytes: number): void => {
    if (r.status !== 200) throw Object.assign(new Error(`status ${r.status}`), { code: `status-${r.status}` })
    if (r.bytes !== bytes) throw Object.assign(new Error(`${r.bytes} body bytes, expected ${bytes}`), { code: 'short-body' })
  }
  const cachedPath = (): string => `/cached/${Math.floor(rand() * 200)}`
  switch (kind) {
    case 'h1-get': return expect(await h1(load.h1, '/soak', 'GET'), SMALL_BODY)
    case 'h1-cached': return expect(await h1(load.h1, cachedPath(), 'GET'), SMALL_BODY)
    case 'h1-post': return expect(await h1(load.h1, '/soak', 'POST', POST_BODIES[Math.floor(rand() * POST_BODIES.length)]), SMALL_BODY)
    case 'h1-tls-get': return expect(await h1(load.h1tls, '/soak', 'GET'), SMALL_BODY)
    case 'h2-get': return expect(await h2(await load.h2.get(), '/soak', 'GET'), SMALL_BODY)
    case 'h2-cached': return expect(await h2(await load.h2.get(), cachedPath(), 'GET'), SMALL_BODY)
    case 'h2-post': return expect(await h2(await load.h2.get(), '/soak', 'POST', POST_BODIES[Math.floor(rand() * POST_BODIES.length)]), SMALL_BODY)
    case 'h1-abort': {
      // Read the first bytes of a 256 KiB answer, then drop the connection.
      let got = 0
      await raw(load.plainPort, 'GET /large/abort HTTP/1.1\r\nHost: soak\r\n\r\n', (socket) => {
        socket.on('data', (c: Buffer) => { got += c.length; socket.destroy() })
      })
      if (got === 0) throw Object.assign(new Error('closed before any byte'), { code: 'closed-before-data' })
      return
    }
    case 'h1-reset':
      // RST right after the request is written: the proxy may or may not have read it.
      return raw(load.plainPort, 'GET /soak HTTP/1.1\r\nHost: soak\r\n\r\n', (socket) => { socket.resetAndDestroy() })
    case 'h2-abort': {
      const r = await h2(await load.h2cancel.get(), '/large/abort', 'GET', undefined, (stream) => {
        stream.close(http2.constants.NGHTTP2_CANCEL)
        return true
      })
      if (r.bytes === 0) throw Object.assign(new Error('no byte before the abort'), { code: 'no-data' })
      return
    }
    case 'h2-reset': {
      const session = await load.h2cancel.get()
      const stream = session.request({ ':path': '/soak', ':method': 'GET' })
      stream.on('error', () => {})
      await new Promise<void>((resolve) => {
        setImmediate(() => stream.close(http2.constants.NGHTTP2_CANCEL))
        stream.once('close', () => resolve())
      })
      return
    }
  }
}

/** A slow reader: 256 KiB read 4 KiB every 10 ms (about 400 KiB/s), the proxy holding the rest. */
async function slowRead (h2Turn: boolean, load: Load): Promise<void> {
  const chunk = 4096
  const everyMs = 10
  if (!h2Turn) {
    let got = 0
    await raw(load.plainPort, 'GET /large/slow HTTP/1.1\r\nHost: soak\r\nConnection: close\r\n\r\n', (socket) => {
      socket.pause()
      const tick = setInterval(() => {
        const n = Math.min(chunk, socket.readableLength)
        got += n > 0 ? (socket.read(n) as Buffer | null)?.length ?? 0 : 0
        if (n === 0) socket.read(0) // lets 'end' through once the server closed
      }, everyMs)
      socket.once('close', () => clearInterval(tick))
      socket.once('end', () => socket.destroy())
    })
    if (got < LARGE_BYTES) throw Object.assign(new Error(`${got} bytes`), { code: 'short-body' })
    return
  }
  const session = await load.h2.get()
  await new Promise<void>((resolve, reject) => {
    const stream = session.request({ ':path': '/large/slow', ':method': 'GET' })
    let got = 0
    stream.pause()
    const tick = setInterval(() => {
      const n = Math.min(chunk, stream.readableLength)
      got += n > 0 ? (stream.read(n) as Buffer | null)?.length ?? 0 : 0
      if (n === 0) stream.read(0)
    }, everyMs)
    const timer = setTimeout(() => { stream.close(http2.constants.NGHTTP2_CANCEL) }, REQUEST_TIMEOUT_MS * 2)
    const end = (err?: Error): void => {
      clearInterval(tick)
      clearTimeout(timer)
      if (err !== undefined) reject(err)
      else if (got < LARGE_BYTES) reject(Object.assign(new Error(`${got} bytes`), { code: 'short-body' }))
      else resolve()
    }
    stream.on('error', (err) => end(err))
    stream.once('end', () => end())
    stream.once('close', () => end(Object.assign(new Error('closed before end'), { code: `rst-${stream.rstCode ?? '?'}` })))
  })
}

// ---- memory samples and the verdict -------------------------------------------------

interface Sample {
  readonly requests: number
  readonly seconds: number
  /** Requests per second since the previous sample. */
  readonly reqPerSec: number
  readonly errors: number
  readonly memory: Memory
  readonly gcRan: boolean
  readonly cache: CacheSnapshot | null
}

const mib = (n: number): string => (n / MiB).toFixed(1)

function sampleLine (s: Sample): string {
  const m = s.memory
  return `[soak] ${String(s.requests).padStart(8)} req  ${s.seconds.toFixed(0).padStart(4)} s  ${s.reqPerSec.toFixed(0).padStart(6)} req/s  ` +
    `errors ${String(s.errors).padStart(5)}  rss ${mib(m.rss).padStart(6)}  heapUsed ${mib(m.heapUsed).padStart(6)}  heapTotal ${mib(m.heapTotal).padStart(6)}  ` +
    `external ${mib(m.external).padStart(5)}  arrayBuffers ${mib(m.arrayBuffers).padStart(5)} MiB` +
    (s.cache === null ? '' : `  cache ${s.cache.entries} entries ${mib(s.cache.bytes)} MiB`)
}

interface Flatness {
  readonly metric: 'rss' | 'heapUsed'
  readonly baseline: number
  readonly lastThirdMax: number
  readonly growth: number
  readonly allowed: number
  readonly flat: boolean
  /** Least-squares slope over the post-warm-up samples, in bytes per 100k requests. */
  readonly slopePer100k: number
}

function flatness (metric: 'rss' | 'heapUsed', samples: readonly Sample[], warmup: number): Flatness | null {
  const post = samples.filter((s) => s.requests >= warmup)
  if (post.length < 3) return null
  const base = post[0]!
  const span = post[post.length - 1]!.requests - base.requests
  const lastThird = post.filter((s) => s.requests >= base.requests + (2 * span) / 3)
  const value = (s: Sample): number => s.memory[metric]
  const baseline = value(base)
  const lastThirdMax = Math.max(...lastThird.map(value))
  const growth = lastThirdMax - baseline
  const allowed = metric === 'rss'
    ? Math.max(baseline * TOLERANCE.rssPct / 100, TOLERANCE.rssMiB * MiB)
    : Math.max(baseline * TOLERANCE.heapPct / 100, TOLERANCE.heapMiB * MiB)
  const xs = post.map((s) => s.requests / 100_000)
  const ys = post.map(value)
  const mx = xs.reduce((a, b) => a + b, 0) / xs.length
  const my = ys.reduce((a, b) => a + b, 0) / ys.length
  let num = 0
  let den = 0
  for (let i = 0; i < xs.length; i++) {
    num += (xs[i]! - mx) * (ys[i]! - my)
    den += (xs[i]! - mx) ** 2
  }
  return { metric, baseline, lastThirdMax, growth, allowed, flat: growth <= allowed, slopePer100k: den === 0 ? 0 : num / den }
}


// ---- main ----------------------------------------------------------------------------

async function main (): Promise<void> {
  let opts: Options
  try {
    opts = parseOptions(process.argv.slice(2))
  } catch (err) {
    log(`${err instanceof Error ? err.message : String(err)}\n${USAGE}`)
    process.exitCode = 2
    return
  }
  const pinning = setupPinning(opts.pin)
  if (!pinning.enabled) log(`warning: not pinned: ${pinning.note}. Proxy, origin and load compete for the same CPUs.`)
  else log(`pinning: ${pinning.note}`)

  const startedAt = new Date()
  const resultsDir = join(root, 'bench/results')
  mkdirSync(resultsDir, { recursive: true })
  const tmp = run.tempDir('switchyard-soak-')

  const originChild = children.spawnNode(join(dist, 'bench/origin.js'), [], { cpu: pinning.originCpu, stdio: ['ignore', 'pipe', 'inherit', 'ipc'] })
  const origin = await readJsonLine<{ port: number }>(originChild, 'bench origin', 10_000)
  const proxy = await startProxy(pinning, tmp, origin.port)
  log(`origin: pid ${originChild.pid}, port ${origin.port}; switchyard: pid ${proxy.child.pid}, plain ${proxy.plainPort}, tls ${proxy.tlsPort}`)
  log(`load: ${opts.requests} requests (at most ${opts.maxSeconds} s), ${opts.workers} workers + ${opts.slow} slow readers, mix ` +
    MIX.map(([k, w]) => `${k} ${(100 * w / MIX_TOTAL).toFixed(1)}%`).join(', '))
  log(`memory: sampled every ${opts.every} requests after a full GC in the proxy; baseline = first sample at >= ${opts.warmup} requests; ` +
    `flat = last third's max <= baseline + max(${TOLERANCE.rssPct}%, ${TOLERANCE.rssMiB} MiB) for RSS, + max(${TOLERANCE.heapPct}%, ${TOLERANCE.heapMiB} MiB) for heapUsed`)

  const load: Load = {
    h1: new Pool(`http://127.0.0.1:${proxy.plainPort}`, { connections: opts.connections, pipelining: 1, headersTimeout: REQUEST_TIMEOUT_MS, bodyTimeout: REQUEST_TIMEOUT_MS }),
    h1tls: new Pool(`https://127.0.0.1:${proxy.tlsPort}`, {
      connections: Math.max(1, Math.floor(opts.connections / 4)), pipelining: 1, headersTimeout: REQUEST_TIMEOUT_MS, bodyTimeout: REQUEST_TIMEOUT_MS,
      connect: { rejectUnauthorized: false }
    }),
    h2: new H2Sessions(`https://127.0.0.1:${proxy.tlsPort}`, opts.h2Sessions),
    h2cancel: new H2Sessions(`https://127.0.0.1:${proxy.tlsPort}`, 2, 300),
    plainPort: proxy.plainPort
  }

  const tally = new Tally()
  const samples: Sample[] = []
  const t0 = performance.now()
  const deadline = t0 + opts.maxSeconds * 1000
  const cpu = meterPid(proxy.child.pid)
  let stopReason: 'requests' | 'time' | 'proxy exited' | null = null
  const onProxyExit = (code: number | null, signal: string | null): void => {
    stopReason = 'proxy exited'
    log(`[soak] SWITCHYARD EXITED during the load (code ${code}, signal ${signal}) after ${tally.done} requests: stopping`)
  }
  proxy.child.once('exit', onProxyExit)
  let nextSample = opts.every
  let last = { requests: 0, at: t0 }
  let sampling: Promise<void> = Promise.resolve()
  const sample = (): Promise<void> => {
    const requests = tally.done
    const errors = tally.errorCount()
    sampling = sampling.then(async () => {
      if (stopReason === 'proxy exited') return
      const m = await proxy.memory(true).catch((err: Error) => {
        log(`[soak] memory sample failed: ${err.message}`)
        return undefined
      })
      if (m === undefined) return
      const now = performance.now()
      const s: Sample = {
        requests,
        seconds: (now - t0) / 1000,
        reqPerSec: (requests - last.requests) / ((now - last.at) / 1000),
        errors,
        memory: m.usage,
        gcRan: m.gcRan,
        cache: m.cache
      }
      last = { requests, at: now }
      samples.push(s)
      log(sampleLine(s))
    })
    return sampling
  }
  const finished = (): boolean => {
    if (stopReason !== null) return true
    if (tally.done >= opts.requests) stopReason = 'requests'
    else if (performance.now() >= deadline) stopReason = 'time'
    return stopReason !== null
  }
  const after = (): void => {
    if (tally.done >= nextSample) {
      nextSample += opts.every
      void sample()
    }
  }

  const rand = prng(opts.seed)
  const worker = async (): Promise<void> => {
    while (!finished()) {
      let r = rand() * MIX_TOTAL
      let kind = MIX[MIX.length - 1]![0]
      for (const [k, w] of MIX) {
        if ((r -= w) < 0) { kind = k; break }
      }
      try {
        await bounded(once(kind, load, rand), REQUEST_TIMEOUT_MS * 2, () => {})
        tally.success(kind)
      } catch (err) {
        tally.failure(kind, why(err))
      }
      after()
    }
  }
  const slowWorker = async (i: number): Promise<void> => {
    let turn = i % 2 === 1
    while (!finished()) {
      const kind: Kind = turn ? 'h2-slow' : 'h1-slow'
      try {
        await bounded(slowRead(turn, load), REQUEST_TIMEOUT_MS * 3, () => {})
        tally.success(kind)
      } catch (err) {
        tally.failure(kind, why(err))
      }
      after()
      turn = !turn
    }
  }

  await sample() // before any load: the idle process
  await Promise.all([
    ...Array.from({ length: opts.workers }, () => worker()),
    ...Array.from({ length: opts.slow }, (_v, i) => slowWorker(i))
  ])
  const loadSeconds = (performance.now() - t0) / 1000
  const proxyCpu = cpu.stop()
  await sample() // the end of the load
  await load.h1.close()
  await load.h1tls.close()
  await load.h2.close()
  await load.h2cancel.close()
  await new Promise((resolve) => setTimeout(resolve, 2000))
  if (stopReason === 'proxy exited') throw new Error('Switchyard exited during the soak (see its stderr above)')
  const idle = await proxy.memory(true)
  log(`[soak] after the load, connections closed, 2 s idle: rss ${mib(idle.usage.rss)}  heapUsed ${mib(idle.usage.heapUsed)}  heapTotal ${mib(idle.usage.heapTotal)}  ` +
    `external ${mib(idle.usage.external)}  arrayBuffers ${mib(idle.usage.arrayBuffers)} MiB`)

  // In-load samples only (the first is the idle start, the last-but-none is the end of load).
  const inLoad = samples.slice(1)
  const verdicts = [flatness('rss', inLoad, opts.warmup), flatness('heapUsed', inLoad, opts.warmup)]
  const reqPerSec = tally.done / loadSeconds
  const out = process.stdout
  out.write(`\nsoak: ${tally.done} requests in ${loadSeconds.toFixed(1)} s = ${reqPerSec.toFixed(0)} req/s ` +
    `(stopped by ${stopReason === 'time' ? `the ${opts.maxSeconds} s bound` : 'the request count'}); ` +
    `proxy CPU ${proxyCpu === null ? '-' : proxyCpu.share.toFixed(2)} core${proxyCpu === null ? '' : `, ${(reqPerSec / proxyCpu.share).toFixed(0)} req/s per core`}\n`)
  out.write(`ok by kind: ${JSON.stringify(tally.okObject())}\n`)
  out.write(`errors by kind: ${tally.errorCount() === 0 ? 'none' : JSON.stringify(tally.errorsObject())}\n`)
  for (const v of verdicts) {
    if (v === null) {
      out.write('verdict: not enough samples after warm-up for a verdict (raise --requests or lower --every)\n')
      continue
    }
    out.write(`verdict ${v.metric}: baseline ${mib(v.baseline)} MiB, last third max ${mib(v.lastThirdMax)} MiB, growth ${mib(v.growth)} MiB ` +
      `(allowed ${mib(v.allowed)}), slope ${mib(v.slopePer100k)} MiB per 100k requests: ${v.flat ? 'FLAT' : 'GROWING'}\n`)
  }
  const flat = verdicts.every((v) => v !== null && v.flat)

  proxy.child.off('exit', onProxyExit)
  const report = {
    startedAt: startedAt.toISOString(),
    ...machineFacts(),
    gitCommit: gitCommit(root),
    settings: { ...opts, mix: KINDS, largeBytes: LARGE_BYTES, tolerance: TOLERANCE },
    pinning: { ...pinning, affinity: { harness: cpusAllowed('self'), origin: originChild.pid === undefined ? null : cpusAllowed(originChild.pid), switchyard: proxy.child.pid === undefined ? null : cpusAllowed(proxy.child.pid) } },
    requests: tally.done,
    loadSeconds,
    reqPerSec,
    stopReason,
    proxyCpu,
    ok: tally.okObject(),
    errors: tally.errorsObject(),
    samples,
    idleAfterLoad: idle,
    verdict: { flat, rss: verdicts[0], heapUsed: verdicts[1] }
  }
  const file = join(resultsDir, `soak-${startedAt.toISOString().replace(/:/g, '-')}.json`)
  writeFileSync(file, JSON.stringify(report, null, 2) + '\n')
  out.write(`memory ${flat ? 'FLAT' : 'NOT FLAT'} after warm-up; results: ${file}\n`)
  if (!flat) process.exitCode = 1
}

main().then(
  async () => { await shutdown(process.exitCode === undefined ? 0 : Number(process.exitCode)) },
  async (err: unknown) => {
    log(`soak failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}`)
    await shutdown(1)
  }
)
