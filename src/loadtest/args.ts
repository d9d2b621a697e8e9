// `switchyard bench` arguments → BenchOptions. Pure: a mistake is a
// BenchUsageError (exit 2) before anything starts.
import { parseArgs } from 'node:util'
import { ExpectError, parseExpectations, type Expectation } from './expect.js'

export const BENCH_USAGE = 'switchyard bench URL | -c CONFIG [--listener NAME] [PATH] [-d 10s] [--warmup 0s] [-c 10] [-p 1] [-m GET] [-H \'name: value\']... [--body TEXT|@FILE] [--timeout 10s] [--http2] [--baseline URL] [--expect \'p99<5ms,rps>10000\'] [--json FILE] [--html FILE] [--quiet]'

export const BENCH_HELP = `Usage: ${BENCH_USAGE}

Load-test URL, or the proxy a config file describes (started as a child
process, benchmarked on one of its listeners, then stopped).

  URL                     http:// or https:// URL to load
  -c, --config CONFIG     Switchyard config file to start and load
      --listener NAME     with -c: which listener (default: the first)
  PATH                    with -c: request path (default /)
  -d, --duration TIME     how long to load: 10s (default), 500ms, 1m, or seconds
      --warmup TIME       load this long first, not counted (default 0); each
                          run (target, baseline) gets its own
  -c, --connections N     concurrent connections (default 10); a -c whose value
                          is a number is connections, anything else a config
  -p, --pipelining N      requests in flight per connection (default 1);
                          with --http2: concurrent streams per connection
  -m, --method METHOD     request method (default GET)
  -H, --header 'n: v'     request header (repeatable)
      --body TEXT|@FILE   request body
      --timeout TIME      per-request timeout (default 10s)
      --http2             HTTP/2 with h2load (must be on PATH)
      --baseline URL      also load URL (e.g. the origin itself) the same way,
                          right after, and report the ratio
      --expect EXPR       e.g. 'p99<5ms,rps>10000,errors<1%': comma-separated
                          METRIC OP NUMBER[UNIT]; METRIC p50 p90 p99 p99.9
                          mean max (us, ms, s; default ms), rps, errors,
                          non2xx (a count or N%); OP < <= > >=. Exit 1 if one
                          fails (each failure is printed with the measured value)
      --json FILE         write the results as JSON (schema: README)
      --html FILE         write a self-contained HTML report with charts
  -q, --quiet             no summary table and no progress line
  -h, --help              this help

Exit: 0 ok; 1 an expectation failed, or no response at all; 2 usage error, or
could not run (invalid config, proxy did not start, h2load missing, report
not writable).
`

export class BenchUsageError extends Error {
  override readonly name = 'BenchUsageError'
}

export interface Target {
  /** Load this URL directly. */
  readonly url?: string
  /** Or start this config, then load `listener` at `path`. */
  readonly config?: string
  readonly listener?: string
  readonly path: string
}

export interface BenchOptions {
  readonly target: Target
  readonly durationSec: number
  /** Load before each measured run, not counted (JIT, pools, caches). */
  readonly warmupSec: number
  readonly connections: number
  readonly pipelining: number
  readonly method: string
  readonly headers: Readonly<Record<string, string>>
  readonly body?: string | { readonly file: string }
  readonly timeoutSec: number
  readonly http2: boolean
  readonly baseline?: string
  readonly expect: readonly Expectation[]
  readonly expectText?: string
  readonly json?: string
  readonly html?: string
  readonly quiet: boolean
  readonly help: boolean
}

const OPTIONS = {
  config: { type: 'string', short: 'c', multiple: true },
  connections: { type: 'string' },
  listener: { type: 'string' },
  duration: { type: 'string', short: 'd' },
  warmup: { type: 'string' },
  pipelining: { type: 'string', short: 'p' },
  method: { type: 'string', short: 'm' },
  header: { type: 'string', short: 'H', multiple: true },
  body: { type: 'string' },
  timeout: { type: 'string' },
  http2: { type: 'boolean' },
  baseline: { type: 'string' },
  expect: { type: 'string' },
  json: { type: 'string' },
  html: { type: 'string' },
  quiet: { type: 'boolean', short: 'q' },
  help: { type: 'boolean', short: 'h' }
} as const

/** `10s`, `500ms`, `1m`, `2.5` (seconds) → seconds. */
export function parseDuration (s: string, name = '--duration'): number {
  const m = /^(\d*\.?\d+)\s*(ms|s|m)?$/.exec(s.trim())
  const n = m === null ? NaN : Number(m[1]) * (m[2] === 'ms' ? 0.001 : m[2] === 'm' ? 60 : 1)
  if (!(n > 0) || !Number.isFinite(n)) throw new BenchUsageError(`${name}: expected a time like 10s, 500ms or 1m, got ${JSON.stringify(s)}`)
  return n
}

function positiveInt (name: string, s: string | undefined, fallback: number, max: number): number {
  if (s === undefined) return fallback
  const n = /^\d+$/.test(s.trim()) ? Number(s) : NaN
  if (!(n >= 1 && n <= max)) throw new BenchUsageError(`${name}: expected a whole number from 1 to ${max}, got ${JSON.stringify(s)}`)
  return n
}

function httpUrl (what: string, s: string): string {
  let u: URL
  try {
    u = new URL(s)
  } catch {
    throw new BenchUsageError(`${what}: not a URL: ${JSON.stringify(s)} (expected http://host:port/path)`)
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new BenchUsageError(`${what}: expected an http:// or https:// URL, got ${JSON.stringify(s)}`)
  return u.href
}

function parseHeader (h: string): [string, string] {
  const i = h.indexOf(':', h.startsWith(':') ? 1 : 0)
  const name = i === -1 ? '' : h.slice(0, i).trim()
  if (name === '' || /\s/.test(name)) throw new BenchUsageError(`--header: expected 'name: value', got ${JSON.stringify(h)}`)
  return [name.toLowerCase(), h.slice(i + 1).trim()]
}

export function parseBenchArgs (argv: readonly string[]): BenchOptions {
  let parsed
  try {
    parsed = parseArgs({ args: [...argv], allowPositionals: true, options: OPTIONS })
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code?.startsWith('ERR_PARSE_ARGS_') !== true) throw err
    throw new BenchUsageError((err as Error).message)
  }
  const v = parsed.values
  const positionals = parsed.positionals
  const help = v.help === true
  // -c is connections to autocannon and wrk users, the config file to Switchyard's.
  const cs = v.config ?? []
  const numbers = cs.filter((c) => /^\d+$/.test(c))
  const files = cs.filter((c) => !/^\d+$/.test(c))
  if (files.length > 1) throw new BenchUsageError(`one config file at most, got ${files.map((f) => JSON.stringify(f)).join(' and ')}`)
  if (numbers.length > 1 || (numbers.length === 1 && v.connections !== undefined)) throw new BenchUsageError('connections given twice')
  const connections = positiveInt('--connections', v.connections ?? numbers[0], 10, 10_000)
  const config = files[0]
  let target: Target
  if (config !== undefined) {
    if (positionals.length > 1) throw new BenchUsageError(`unexpected argument ${JSON.stringify(positionals[1])} (with -c, only a PATH)`)
    const p = positionals[0] ?? '/'
    if (!p.startsWith('/')) throw new BenchUsageError(`with -c, the argument is a request path starting with /, got ${JSON.stringify(p)}`)
    target = { config, path: p, ...(v.listener === undefined ? {} : { listener: v.listener }) }
  } else {
    if (v.listener !== undefined) throw new BenchUsageError('--listener needs -c CONFIG')
    if (positionals.length === 0 && !help) throw new BenchUsageError('a URL or -c CONFIG is required')
    if (positionals.length > 1) throw new BenchUsageError(`unexpected argument ${JSON.stringify(positionals[1])}`)
    target = positionals[0] === undefined ? { path: '/' } : { url: httpUrl('URL', positionals[0]), path: '/' }
  }
  const method = (v.method ?? 'GET').toUpperCase()
  if (!/^[A-Z][A-Z0-9_-]*$/.test(method)) throw new BenchUsageError(`--method: not a method: ${JSON.stringify(v.method)}`)
  const headers: Record<string, string> = {}
  for (const h of v.header ?? []) {
    const [name, value] = parseHeader(h)
    headers[name] = value
  }
  const http2 = v.http2 === true
  if (http2 && method !== 'GET' && method !== 'POST') {
    throw new BenchUsageError(`--http2 (h2load) sends GET, or POST with --body; not ${method}`)
  }
  if (http2 && method === 'POST' && v.body === undefined) throw new BenchUsageError('--http2 with -m POST needs --body (h2load posts a body)')
  let expect: Expectation[] = []
  if (v.expect !== undefined) {
    try {
      expect = parseExpectations(v.expect)
    } catch (err) {
      if (err instanceof ExpectError) throw new BenchUsageError(err.message)
      throw err
    }
  }
  const body = v.body === undefined ? undefined : v.body.startsWith('@') ? { file: v.body.slice(1) } : v.body
  const timeoutSec = v.timeout === undefined ? 10 : parseDuration(v.timeout, '--timeout')
  return {
    target,
    durationSec: v.duration === undefined ? 10 : parseDuration(v.duration),
    warmupSec: v.warmup === undefined || /^0+(s|ms)?$/.test(v.warmup) ? 0 : parseDuration(v.warmup, '--warmup'),
    connections,
    pipelining: positiveInt('--pipelining', v.pipelining, 1, 1000),
    method,
    headers,
    ...(body === undefined ? {} : { body }),
    timeoutSec,
    http2,
    ...(v.baseline === undefined ? {} : { baseline: httpUrl('--baseline', v.baseline) }),
    expect,
    ...(v.expect === undefined ? {} : { expectText: v.expect }),
    ...(v.json === undefined ? {} : { json: v.json }),
    ...(v.html === undefined ? {} : { html: v.html }),
    quiet: v.quiet === true,
    help
  }
}
