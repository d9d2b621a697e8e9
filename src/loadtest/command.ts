// `switchyard bench`: parse, start the proxy of a config when asked (a child
// process, so the load generator does not share its event loop), load the
// target then the baseline, check the expectations, write the reports.
import { spawn, type ChildProcess } from 'node:child_process'
import { readFile, writeFile } from 'node:fs/promises'
import { loadConfig } from '../config/load.js'
import type { Config } from '../config/schema.js'
import { ConfigError, formatIssue } from '../errors.js'
import { BENCH_HELP, BENCH_USAGE, BenchUsageError, parseBenchArgs, type BenchOptions } from './args.js'
import { evaluate } from './expect.js'
import { h2loadAvailable, runAutocannon, runH2load, type LoadSpec } from './load.js'
import { buildReport, htmlReport, progressLine, textSummary } from './report.js'
import { Recorder, compare, type RunSummary } from './stats.js'
import { autoWorkers } from '../cluster/cpus.js'

/** What the command needs from its process (main.ts owns `process`). */
export interface BenchIo {
  readonly stdout: (s: string) => void
  readonly stderr: (s: string) => void
  /** stderr is a terminal: draw the live progress line. */
  readonly isTTY: boolean
  /** How to run `switchyard start` as a child: node, its flags (e.g. --import tsx) and main's path. */
  readonly execPath: string
  readonly execArgv: readonly string[]
  readonly mainScript: string
  /** Register clean-up for Ctrl-C / SIGTERM (the proxy child must not outlive us). */
  readonly onInterrupt: (fn: () => void) => void
}

/** Could not run as asked: exit 2, like a usage error, so CI never reads it as a slow proxy. */
class CannotRun extends Error {}

export async function benchCommand (argv: readonly string[], io: BenchIo): Promise<number> {
  let opts: BenchOptions
  try {
    opts = parseBenchArgs(argv)
  } catch (err) {
    if (!(err instanceof BenchUsageError)) throw err
    io.stderr(`switchyard: bench: ${err.message}\nUsage: ${BENCH_USAGE}\n`)
    return 2
  }
  if (opts.help) {
    io.stdout(BENCH_HELP)
    return 0
  }
  try {
    return await bench(opts, io)
  } catch (err) {
    if (!(err instanceof CannotRun)) throw err
    io.stderr(`switchyard: bench: ${err.message}\n`)
    return 2
  }
}

async function bench (opts: BenchOptions, io: BenchIo): Promise<number> {
  const body = await readBody(opts.body)
  if (opts.http2 && !await h2loadAvailable()) {
    throw new CannotRun('--http2 needs h2load (from nghttp2) on PATH; install it (Debian/Ubuntu: apt-get install nghttp2-client) or leave out --http2 for HTTP/1.1')
  }
  const started = new Date().toISOString()
  let proxy: StartedProxy | undefined
  io.onInterrupt(() => { proxy?.kill() })
  try {
    let url = opts.target.url
    let listenerUsed = ''
    if (opts.target.config !== undefined) {
      proxy = await startProxy(opts.target.config, opts.target.listener, io)
      listenerUsed = proxy.listener
      url = new URL(opts.target.path, proxy.origin).href
      if (!opts.quiet) io.stderr(`started ${opts.target.config} (pid ${proxy.pid}); listener ${proxy.listener} at ${proxy.origin}\n`)
    }
    const spec = (u: string): LoadSpec => ({
      url: u,
      durationSec: opts.durationSec,
      connections: opts.connections,
      pipelining: opts.pipelining,
      method: opts.method,
      headers: opts.headers,
      ...(body === undefined ? {} : { body }),
      timeoutSec: opts.timeoutSec
    })
    const target = await runOne(spec(url!), 'target', opts, io)
    await proxy?.stop()
    proxy = undefined
    const baseline = opts.baseline === undefined ? undefined : await runOne(spec(opts.baseline), 'baseline', opts, io)
    const verdicts = evaluate(opts.expect, target)
    const report = buildReport({
      startedAt: started,
      settings: {
        durationSec: opts.durationSec,
        warmupSec: opts.warmupSec,
        connections: opts.connections,
        pipelining: opts.pipelining,
        method: opts.method,
        headers: opts.headers,
        bodyBytes: body?.length ?? 0,
        timeoutSec: opts.timeoutSec,
        http2: opts.http2,
        ...(opts.target.config === undefined ? {} : { config: { file: opts.target.config, listener: listenerUsed, path: opts.target.path } })
      },
      target,
      // A ratio to a baseline that answered nothing would read as 0x or infinity: none at all.
      ...(baseline === undefined ? {} : { baseline, ...(baseline.requests === 0 ? {} : { comparison: compare(target, baseline) }) })
    }, verdicts)
    // The summary first: a report that cannot be written still leaves the numbers on screen.
    if (!opts.quiet) io.stdout(textSummary(report))
    if (opts.json !== undefined) await writeReport('--json', opts.json, JSON.stringify(report, null, 2) + '\n')
    if (opts.html !== undefined) await writeReport('--html', opts.html, htmlReport(report))
    for (const r of baseline === undefined ? [target] : [target, baseline]) {
      if (r.requests === 0) io.stderr(`switchyard: bench: no response from ${r.url}${describeErrors(r)}\n`)
    }
    for (const v of verdicts) {
      if (!v.ok) io.stderr(`switchyard: bench: expectation failed: ${v.message}\n`)
      else if (!opts.quiet) io.stdout(`expectation met: ${v.message}\n`)
    }
    return report.passed ? 0 : 1
  } finally {
    await proxy?.stop()
  }
}

async function writeReport (option: string, file: string, text: string): Promise<void> {
  try {
    await writeFile(file, text)
  } catch (err) {
    throw new CannotRun(`${option} ${file}: cannot write it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`)
  }
}

async function readBody (body: BenchOptions['body']): Promise<Buffer | undefined> {
  if (body === undefined || typeof body === 'string') return body === undefined ? undefined : Buffer.from(body)
  try {
    return await readFile(body.file)
  } catch (err) {
    throw new CannotRun(`--body @${body.file}: cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`)
  }
}

function describeErrors (r: RunSummary): string {
  const kinds = Object.entries(r.errorsByKind).map(([k, n]) => `${k} x${n}`).join(', ')
  const h2c = r.tool === 'h2load' && r.url.startsWith('http:') ? '; h2load speaks HTTP/2 with prior knowledge to http:// URLs, which an HTTP/1.1-only server never answers' : ''
  return kinds === '' ? h2c : ` (${kinds}${h2c})`
}

/** One run, with the live progress line on a terminal. */
async function runOne (spec: LoadSpec, name: string, opts: BenchOptions, io: BenchIo): Promise<RunSummary> {
  const rec = new Recorder()
  const live = io.isTTY && !opts.quiet
  let t0 = Date.now()
  const timer = live
    ? setInterval(() => {
      const s = Math.floor((Date.now() - t0) / 1000)
      const line = opts.http2
        ? `${name} ${s}s / ${opts.durationSec}s  h2load running (numbers at the end)`
        : progressLine(name, s, opts.durationSec, rec.countIn(s - 1), rec.p99Ms(), rec.errors)
      io.stderr(`\r\x1b[K${line}`)
    }, 1000)
    : undefined
  try {
    if (opts.warmupSec > 0) {
      if (live) io.stderr(`\r\x1b[K${name} warming up for ${opts.warmupSec}s`)
      const scratch = new Recorder()
      try {
        const warm = { ...spec, durationSec: opts.warmupSec }
        await (opts.http2 ? runH2load(warm, scratch) : runAutocannon(warm, scratch))
      } finally {
        scratch.destroy()
      }
    }
    t0 = Date.now()
    return opts.http2 ? await runH2load(spec, rec) : await runAutocannon(spec, rec)
  } finally {
    if (timer !== undefined) {
      clearInterval(timer)
      io.stderr('\r\x1b[K')
    }
    rec.destroy()
  }
}

interface StartedProxy {
  readonly pid: number
  readonly listener: string
  /** `http://127.0.0.1:PORT` */
  readonly origin: string
  stop (): Promise<void>
  kill (): void
}

/** The address to connect to for a listener bound to `host` (a wildcard means this machine). */
export function connectHost (host: string): string {
  if (host === '' || host === '0.0.0.0') return '127.0.0.1'
  if (host === '::') return '[::1]'
  return host.includes(':') ? `[${host}]` : host
}

/** Loads the config as `start` will (a broken one is reported here), picks the listener. */
async function readBenchConfig (file: string, wanted: string | undefined): Promise<{ config: Config, listener: Config['listeners'][number] }> {
  let config: Config
  try {
    config = await loadConfig(file)
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    throw new CannotRun(`${file} is not a valid config:\n${err.issues.map((i) => formatIssue(err.file, i)).join('\n')}`)
  }
  const listener = wanted === undefined ? config.listeners[0] : config.listeners.find((l) => l.name === wanted)
  if (listener === undefined) throw new CannotRun(`--listener: no listener ${JSON.stringify(wanted)} in ${file} (listeners: ${config.listeners.map((l) => l.name).join(', ')})`)
  return { config, listener }
}

/**
 * `switchyard start CONFIG` as a child; resolves once the listener is up (its
 * `listening` log line, and with several workers, every worker ready).
 */
async function startProxy (file: string, wanted: string | undefined, io: BenchIo): Promise<StartedProxy> {
  const { config, listener } = await readBenchConfig(file, wanted)
  const workers = config.workers === 'auto' ? autoWorkers() : config.workers
  const child: ChildProcess = spawn(io.execPath, [...io.execArgv, io.mainScript, 'start', file], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stderr = ''
  let buf = ''
  let port: number | undefined
  let clusterReady = workers === 1
  let wake: () => void = () => {}
  child.stderr!.on('data', (c: Buffer) => { stderr = (stderr + c.toString()).slice(-4000) })
  // Keep reading stdout for the whole run: a full pipe would stall the proxy.
  child.stdout!.on('data', (c: Buffer) => {
    if (port !== undefined && clusterReady) return
    buf += c.toString()
    let nl
    while ((nl = buf.indexOf('\n')) !== -1) {
      const line = buf.slice(0, nl)
      buf = buf.slice(nl + 1)
      let log: { msg?: unknown, listener?: unknown, port?: unknown }
      try { log = JSON.parse(line) as typeof log } catch { continue }
      if (log.msg === 'listening' && log.listener === listener.name && typeof log.port === 'number') port = log.port
      if (log.msg === 'cluster: every worker is ready') clusterReady = true
    }
    if (port !== undefined && clusterReady) wake()
  })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => { resolve(code); wake() }))
  const kill = (): void => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') }
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return
    child.kill('SIGTERM')
    const t = setTimeout(kill, 5000)
    await exited
    clearTimeout(t)
  }
  await new Promise<void>((resolve) => {
    wake = resolve
    setTimeout(resolve, 30_000).unref()
  })
  if (port === undefined || !clusterReady) {
    const why = child.exitCode !== null ? `it exited with code ${child.exitCode}` : 'it was not listening after 30 s'
    await stop()
    throw new CannotRun(`could not start ${file}: ${why}${stderr === '' ? '' : `\n${stderr.trimEnd()}`}`)
  }
  const scheme = listener.tls === undefined ? 'http' : 'https'
  return { pid: child.pid ?? 0, listener: listener.name, origin: `${scheme}://${connectHost(listener.host)}:${port}`, stop, kill }
}
