// The load generators: autocannon in this process for HTTP/1.1, h2load as a
// child for HTTP/2. Both feed a Recorder one response at a time, so every
// run is summarized by the same code.
import { spawn } from 'node:child_process'
import type { EventEmitter } from 'node:events'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import os from 'node:os'
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import { Recorder, errorKind, type RunSummary } from './stats.js'

export interface LoadSpec {
  readonly url: string
  readonly durationSec: number
  readonly connections: number
  /** autocannon: pipelined requests per connection; h2load: concurrent streams. */
  readonly pipelining: number
  readonly method: string
  readonly headers: Readonly<Record<string, string>>
  readonly body?: Buffer
  readonly timeoutSec: number
}

interface AutocannonResult { readonly duration: number }
type Autocannon = (opts: Record<string, unknown>) => EventEmitter & PromiseLike<AutocannonResult> & { stop (): void }

const require = createRequire(import.meta.url)

/** Runs autocannon against spec.url, every response and error into `rec`. */
export async function runAutocannon (spec: LoadSpec, rec: Recorder): Promise<RunSummary> {
  const autocannon = require('autocannon') as Autocannon
  const start = performance.now()
  const run = autocannon({
    url: spec.url,
    connections: spec.connections,
    duration: spec.durationSec,
    pipelining: spec.pipelining,
    method: spec.method,
    headers: spec.headers,
    ...(spec.body === undefined ? {} : { body: spec.body }),
    timeout: spec.timeoutSec,
    // autocannon drops what its parser refuses: a server that answers with
    // anything but HTTP would show as a clean run with no responses.
    setupClient: (client: { parser: { execute (chunk: Buffer): unknown } }) => {
      const parser = client.parser
      const execute = parser.execute.bind(parser)
      parser.execute = (chunk: Buffer): unknown => {
        const r = execute(chunk)
        if (r instanceof Error) rec.error(performance.now() - start, 'invalid HTTP response')
        return r
      }
    }
  })
  run.on('response', (_client: unknown, status: number, _bytes: number, responseTimeMs: number) => {
    // An interim answer (103 Early Hints, 102) is no response: the final one follows.
    if (status < 200) return
    rec.response(performance.now() - start, status, responseTimeMs)
  })
  run.on('reqError', (err: Error & { code?: string }) => { rec.error(performance.now() - start, errorKind(err)) })
  const r = await run
  return rec.summary({ url: spec.url, tool: 'autocannon', protocol: 'http/1.1', durationSec: r.duration })
}

/** Is `h2load` on PATH? */
export async function h2loadAvailable (): Promise<boolean> {
  return await new Promise((resolve) => {
    const c = spawn('h2load', ['--version'], { stdio: 'ignore' })
    c.once('error', () => resolve(false))
    c.once('exit', (code) => resolve(code === 0))
  })
}

/** h2load's end-of-run counters: `requests: 10 total, 10 started, 9 done, 8 succeeded, 2 failed, 1 errored, 1 timeout`. */
export function parseH2loadSummary (stdout: string): { total: number, started: number, done: number, succeeded: number, failed: number, errored: number, timeout: number } | undefined {
  const m = /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(stdout)
  if (m === null) return undefined
  const n = (i: number): number => Number(m[i])
  return { total: n(1), started: n(2), done: n(3), succeeded: n(4), failed: n(5), errored: n(6), timeout: n(7) }
}

/** One row of h2load's --log-file: start (µs since epoch), status, µs to the end of the response. */
export function parseH2loadLog (text: string): Array<{ startUs: number, status: number, durationUs: number }> {
  const rows = []
  for (const line of text.split('\n')) {
    const [a, b, c] = line.split('\t')
    if (a === undefined || b === undefined || c === undefined) continue
    const row = { startUs: Number(a), status: Number(b), durationUs: Number(c) }
    if (Number.isFinite(row.startUs) && Number.isFinite(row.durationUs)) rows.push(row)
  }
  return rows
}

/**
 * Runs h2load (HTTP/2: ALPN h2 on https, prior knowledge on http) and reads
 * its per-request log. h2load does not say when an error happened: errors
 * are counted in the run's last second.
 */
export async function runH2load (spec: LoadSpec, rec: Recorder): Promise<RunSummary> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'switchyard-h2load-'))
  try {
    const log = path.join(dir, 'requests.tsv')
    const args = ['-D', `${Math.max(1, Math.round(spec.durationSec * 1000))}ms`, '-c', String(spec.connections), '-m', String(spec.pipelining),
      '-t', '1', '-N', `${Math.max(1, Math.round(spec.timeoutSec))}`, '--log-file', log]
    for (const [k, v] of Object.entries(spec.headers)) args.push('-H', `${k}: ${v}`)
    if (spec.body !== undefined) {
      const data = path.join(dir, 'body')
      await writeFile(data, spec.body)
      args.push('-d', data)
    }
    args.push(spec.url)
    const started = Date.now()
    const { code, stdout, stderr } = await new Promise<{ code: number | null, stdout: string, stderr: string }>((resolve, reject) => {
      const c = spawn('h2load', args, { stdio: ['ignore', 'pipe', 'pipe'] })
      let out = ''
      let err = ''
      c.stdout.on('data', (b: Buffer) => { out += b.toString() })
      c.stderr.on('data', (b: Buffer) => { err += b.toString() })
      c.once('error', reject)
      c.once('exit', (status) => resolve({ code: status, stdout: out, stderr: err }))
    })
    const counts = parseH2loadSummary(stdout)
    if (counts === undefined) throw new Error(`h2load failed (exit ${String(code)}): ${(stderr + stdout).trim().split('\n').slice(-3).join(' / ')}`)
    const rows = parseH2loadLog(await readFile(log, 'utf8').catch(() => ''))
    const t0 = rows.reduce((min, r) => Math.min(min, r.startUs), started * 1000)
    for (const r of rows) rec.response((r.startUs + r.durationUs - t0) / 1000, r.status, r.durationUs / 1000)
    const durationSec = spec.durationSec
    const last = Math.max(0, durationSec * 1000 - 1)
    for (let i = 0; i < counts.errored - counts.timeout; i++) rec.error(last, 'stream or connection error')
    for (let i = 0; i < counts.timeout; i++) rec.error(last, 'timeout')
    // A refused connection, or a server that does not speak HTTP/2, is no
    // error to h2load: say so rather than report an empty, clean run.
    if (rows.length === 0 && counts.errored === 0) {
      if (counts.started === 0) rec.error(last, 'not connected')
      for (let i = 0; i < counts.started; i++) rec.error(last, 'no HTTP/2 response')
    }
    return rec.summary({ url: spec.url, tool: 'h2load', protocol: 'h2', durationSec })
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}
