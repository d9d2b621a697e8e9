// The external load generators, run as children pinned to the load CPU: wrk
// for HTTP/1.1 (plaintext or TLS), h2load for HTTP/2. Each returns the same
// LoadResult as autocannon's runner (bench/load.ts), latencies in ms.

import type { ChildProcess } from 'node:child_process'
import { readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Children } from './children.js'
import type { LoadResult } from './load.js'
import { h2loadLogDurations, parseH2load, parseWrk, percentile, wrkScript } from './peers.js'

export interface ExternalLoad {
  readonly children: Children
  /** CPU list for taskset (the load CPU), or null unpinned. */
  readonly cpu: string | null
  /** Scratch dir for the wrk script and h2load's log. */
  readonly dir: string
  readonly connections: number
  readonly durationSec: number
  /** wrk only: each connection's mean think time between an answer and its next request (ms); absent = none (saturating). */
  readonly paceMs?: number | null
}

/** Runs the child to its end; its stdout, or an Error with its stderr. */
function collect (child: ChildProcess, what: string, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = ''
    let err = ''
    child.stdout?.setEncoding('utf8')
    child.stderr?.setEncoding('utf8')
    child.stdout?.on('data', (c: string) => { out += c })
    child.stderr?.on('data', (c: string) => { err += c })
    const timer = setTimeout(() => { child.kill('SIGKILL') }, timeoutMs)
    child.once('error', (e) => { clearTimeout(timer); reject(new Error(`${what}: ${e.message}`)) })
    child.once('close', (code, signal) => {
      clearTimeout(timer)
      if (code === 0) resolve(out)
      else reject(new Error(`${what} exited with ${code ?? signal}: ${(err.trim() || out.trim()).split('\n').slice(-3).join(' | ')}`))
    })
  })
}

const bounded = (durationSec: number): number => (durationSec + 30) * 1000

/** `wrk -t 1 -c <connections> -d <s>` with the script that prints p50-p99.9 (µs), paced when asked (peers.ts wrkScript). */
export async function runWrk (url: string, o: ExternalLoad): Promise<LoadResult> {
  const script = join(o.dir, 'wrk-report.lua')
  writeFileSync(script, wrkScript(o.paceMs ?? null))
  const args = ['-t', '1', '-c', String(o.connections), '-d', `${o.durationSec}s`, '--timeout', '10s', '-s', script, url]
  const stdout = await collect(o.children.spawnCommand('wrk', args, { cpu: o.cpu, stdio: ['ignore', 'pipe', 'pipe'] }), 'wrk', bounded(o.durationSec))
  const w = parseWrk(stdout)
  if (w === null) throw new Error(`wrk printed no report line: ${stdout.trim().split('\n').slice(-3).join(' | ')}`)
  const seconds = w.durationUs / 1e6
  const ms = (us: number): number => us / 1000
  return {
    durationSec: seconds,
    requests: w.requests,
    reqPerSec: seconds > 0 ? w.requests / seconds : 0,
    errors: w.connect + w.read + w.write,
    timeouts: w.timeout,
    non2xx: w.status,
    statusCodes: {},
    latencyMs: { p50: ms(w.p50), p90: ms(w.p90), p99: ms(w.p99), p99_9: ms(w.p999), mean: ms(w.mean), max: ms(w.max) },
    autocannonLatencyMs: null
  }
}

/**
 * `h2load -c <connections> -m <streams> -t 1 -D <s> --warm-up-time 1`: HTTP/2
 * over TLS (ALPN h2). Latencies from its per-request log, the time to the end
 * of each answer.
 */
export async function runH2load (url: string, o: ExternalLoad & { readonly streams: number }): Promise<LoadResult> {
  const logFile = join(o.dir, 'h2load.log')
  const args = ['-c', String(o.connections), '-m', String(o.streams), '-t', '1', '-D', String(o.durationSec), '--warm-up-time', '1', '--log-file', logFile, url]
  try {
    const stdout = await collect(o.children.spawnCommand('h2load', args, { cpu: o.cpu, stdio: ['ignore', 'pipe', 'pipe'] }), 'h2load', bounded(o.durationSec + 1))
    const h = parseH2load(stdout)
    if (h === null) throw new Error(`h2load printed no summary: ${stdout.trim().split('\n').slice(-3).join(' | ')}`)
    if (h.protocol !== null && h.protocol !== 'h2') throw new Error(`h2load negotiated ${h.protocol}, not h2`)
    const durations = h2loadLogDurations(readFileSync(logFile, 'utf8')).sort((a, b) => a - b)
    const ms = (us: number): number => us / 1000
    const mean = durations.length === 0 ? NaN : durations.reduce((a, b) => a + b, 0) / durations.length
    return {
      durationSec: h.reqPerSec > 0 ? h.done / h.reqPerSec : 0,
      requests: h.succeeded,
      reqPerSec: h.reqPerSec,
      errors: h.failed - h.timeout,
      timeouts: h.timeout,
      non2xx: h.status3xx + h.status4xx + h.status5xx,
      statusCodes: { '2xx': h.status2xx, '3xx': h.status3xx, '4xx': h.status4xx, '5xx': h.status5xx },
      latencyMs: {
        p50: ms(percentile(durations, 50)),
        p90: ms(percentile(durations, 90)),
        p99: ms(percentile(durations, 99)),
        p99_9: ms(percentile(durations, 99.9)),
        mean: ms(mean),
        max: ms(durations[durations.length - 1] ?? NaN)
      },
      autocannonLatencyMs: null
    }
  } finally {
    rmSync(logFile, { force: true })
  }
}
