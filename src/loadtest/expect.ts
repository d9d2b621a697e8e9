// `--expect 'p99<5ms,rps>10000'`: parse once (a mistake is a usage error
// before any load is sent), evaluate against a run's summary. Pure.

/** What an expectation can name. Latencies are compared in ms. */
export type Metric = 'p50' | 'p90' | 'p99' | 'p99.9' | 'mean' | 'max' | 'rps' | 'errors' | 'non2xx'
export type Operator = '<' | '<=' | '>' | '>='

export interface Expectation {
  /** As written (trimmed), for messages. */
  readonly text: string
  readonly metric: Metric
  readonly op: Operator
  /** Latency: ms. rps: requests/s. errors/non2xx: a count, or a fraction of requests when `percent`. */
  readonly value: number
  /** `errors<1%`: compared with errors / (requests + errors). */
  readonly percent: boolean
}

/** The numbers an expectation is checked against (a run's summary). */
export interface Measured {
  readonly requests: number
  readonly rps: number
  readonly errors: number
  readonly non2xx: number
  readonly latencyMs: { readonly p50: number, readonly p90: number, readonly p99: number, readonly p99_9: number, readonly mean: number, readonly max: number }
}

export interface Verdict {
  readonly expectation: Expectation
  /** In the expectation's own unit (ms for latency, % when percent). */
  readonly measured: number
  readonly ok: boolean
  /** `p99<5ms: measured 7.32ms` */
  readonly message: string
}

export class ExpectError extends Error {}

const LATENCY = new Set(['p50', 'p90', 'p99', 'p99.9', 'mean', 'max'])
const COUNTS = new Set(['errors', 'non2xx'])
const UNIT_MS: Readonly<Record<string, number>> = { us: 0.001, µs: 0.001, ms: 1, s: 1000 }
const FORM = 'METRIC OP NUMBER[UNIT], METRIC one of p50 p90 p99 p99.9 mean max (units us ms s, default ms), rps, errors, non2xx (a count, or N%); OP one of < <= > >='

/** Parses a comma-separated list; throws ExpectError naming the bad item and the accepted form. */
export function parseExpectations (input: string): Expectation[] {
  const items = input.split(',').map((s) => s.trim())
  if (items.every((s) => s === '')) throw new ExpectError(`--expect: empty expression; expected ${FORM}`)
  return items.map((item) => {
    if (item === '') throw new ExpectError(`--expect: empty item in ${JSON.stringify(input)}`)
    return parseOne(item)
  })
}

function parseOne (item: string): Expectation {
  const m = /^([a-z0-9.]+)\s*(<=|>=|<|>)\s*([0-9]*\.?[0-9]+)\s*([a-zµ%]*)$/i.exec(item)
  if (m === null) throw new ExpectError(`--expect: cannot read ${JSON.stringify(item)}; expected ${FORM}`)
  const name = m[1]!.toLowerCase()
  const metric = (name === 'p999' ? 'p99.9' : name) as Metric
  const op = m[2] as Operator
  const number = Number(m[3])
  const unit = m[4]!.toLowerCase()
  const bad = (why: string): ExpectError => new ExpectError(`--expect: ${JSON.stringify(item)}: ${why}`)
  if (LATENCY.has(metric)) {
    const scale = unit === '' ? 1 : UNIT_MS[unit]
    if (scale === undefined) throw bad(`unknown unit ${JSON.stringify(m[4])} for a latency (us, ms or s)`)
    return { text: item, metric, op, value: number * scale, percent: false }
  }
  if (metric === 'rps') {
    if (unit !== '') throw bad('rps takes a plain number (requests per second)')
    return { text: item, metric, op, value: number, percent: false }
  }
  if (COUNTS.has(metric)) {
    if (unit !== '' && unit !== '%') throw bad(`${metric} takes a count or a percentage (N%)`)
    return { text: item, metric, op, value: number, percent: unit === '%' }
  }
  throw bad(`unknown metric ${JSON.stringify(m[1])} (p50, p90, p99, p99.9, mean, max, rps, errors, non2xx)`)
}

/** The measured value in the expectation's unit. */
export function measuredValue (e: Expectation, m: Measured): number {
  switch (e.metric) {
    case 'p50': return m.latencyMs.p50
    case 'p90': return m.latencyMs.p90
    case 'p99': return m.latencyMs.p99
    case 'p99.9': return m.latencyMs.p99_9
    case 'mean': return m.latencyMs.mean
    case 'max': return m.latencyMs.max
    case 'rps': return m.rps
    case 'errors':
    case 'non2xx': {
      const n = e.metric === 'errors' ? m.errors : m.non2xx
      if (!e.percent) return n
      const attempts = m.requests + m.errors
      return attempts === 0 ? 0 : 100 * n / attempts
    }
    default: {
      const never: never = e.metric
      throw new Error(`unknown metric ${String(never)}`)
    }
  }
}

function compare (a: number, op: Operator, b: number): boolean {
  switch (op) {
    case '<': return a < b
    case '<=': return a <= b
    case '>': return a > b
    case '>=': return a >= b
  }
}

/** Formats a value in the expectation's unit, e.g. `7.32ms`, `9876 rps`, `1.5%`. */
export function formatMeasured (e: Expectation, v: number): string {
  if (LATENCY.has(e.metric)) return `${round(v)}ms`
  if (e.metric === 'rps') return `${round(v)} rps`
  return e.percent ? `${round(v)}%` : String(v)
}

function round (v: number): string {
  if (!Number.isFinite(v)) return String(v)
  return String(Math.abs(v) >= 100 ? Math.round(v) : Number(v.toPrecision(3)))
}

/**
 * Checks each expectation; a run that measured nothing (no response) fails
 * every latency and rps expectation instead of passing `p99<5ms` with 0.
 */
export function evaluate (expectations: readonly Expectation[], m: Measured): Verdict[] {
  return expectations.map((e) => {
    const measured = measuredValue(e, m)
    const nothing = m.requests === 0 && (LATENCY.has(e.metric) || e.metric === 'rps')
    const ok = !nothing && compare(measured, e.op, e.value)
    const shown = nothing ? 'no response measured' : `measured ${formatMeasured(e, measured)}`
    return { expectation: e, measured, ok, message: `${e.text}: ${shown}` }
  })
}
