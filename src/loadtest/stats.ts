// The numbers of one run, from individual responses: an HDR histogram in
// microseconds (autocannon's own is whole milliseconds, too coarse on
// loopback), per-second counts, status classes and errors by kind. No I/O:
// the load tools feed it, tests feed it by hand.
import * as hdr from 'hdr-histogram-js'

export interface LatencySummary {
  readonly min: number
  readonly p50: number
  readonly p90: number
  readonly p99: number
  readonly p99_9: number
  readonly mean: number
  readonly max: number
}

/** One point of the percentile curve, as HDR plots draw it. */
export interface CurvePoint {
  readonly percentile: number
  readonly ms: number
}

/** One run against one URL: the `target` or `baseline` of the JSON (schema in README). */
export interface RunSummary {
  readonly url: string
  readonly tool: 'autocannon' | 'h2load'
  readonly protocol: 'http/1.1' | 'h2'
  readonly durationSec: number
  /** Responses received, whatever their status. */
  readonly requests: number
  /** requests / durationSec */
  readonly rps: number
  /** Responses per whole second of the run, from its start. */
  readonly rpsPerSecond: readonly number[]
  readonly latencyMs: LatencySummary
  readonly percentileCurve: readonly CurvePoint[]
  readonly statusClasses: Readonly<Record<'1xx' | '2xx' | '3xx' | '4xx' | '5xx', number>>
  readonly statusCodes: Readonly<Record<string, number>>
  readonly non2xx: number
  readonly non2xxPerSecond: readonly number[]
  /** Requests that got no response (refused, reset, timed out). */
  readonly errors: number
  readonly errorsByKind: Readonly<Record<string, number>>
  readonly errorsPerSecond: readonly number[]
}

/** target vs baseline: how much the thing under test costs. */
export interface Comparison {
  /** target rps / baseline rps */
  readonly rpsRatio: number
  /** target p50 - baseline p50, ms */
  readonly addedP50Ms: number
  readonly addedP99Ms: number
}

const US_MAX = 3_600_000_000

/** Collects one run. `at` is ms since the run started. */
export class Recorder {
  readonly #hist = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: US_MAX, numberOfSignificantValueDigits: 3 })
  readonly #perSecond: number[] = []
  readonly #non2xxPerSecond: number[] = []
  readonly #errorsPerSecond: number[] = []
  readonly #codes: Record<string, number> = {}
  readonly #kinds: Record<string, number> = {}
  #requests = 0
  #errors = 0
  #non2xx = 0

  response (at: number, status: number, latencyMs: number): void {
    this.#hist.recordValue(Math.min(US_MAX, Math.max(1, Math.round(latencyMs * 1000))))
    const s = second(at)
    bump(this.#perSecond, s)
    this.#requests++
    this.#codes[status] = (this.#codes[status] ?? 0) + 1
    if (status < 200 || status > 299) {
      this.#non2xx++
      bump(this.#non2xxPerSecond, s)
    }
  }

  error (at: number, kind: string): void {
    this.#errors++
    this.#kinds[kind] = (this.#kinds[kind] ?? 0) + 1
    bump(this.#errorsPerSecond, second(at))
  }

  /** For the live progress line. */
  get requests (): number { return this.#requests }
  get errors (): number { return this.#errors }
  /** Responses in second `s` so far. */
  countIn (s: number): number { return this.#perSecond[s] ?? 0 }
  p99Ms (): number { return this.#requests === 0 ? 0 : this.#hist.getValueAtPercentile(99) / 1000 }

  summary (run: { url: string, tool: RunSummary['tool'], protocol: RunSummary['protocol'], durationSec: number }): RunSummary {
    // Whole seconds of the run; what came in after (the last responses, a few ms late) counts in the last one.
    const seconds = Math.max(1, Math.round(run.durationSec))
    // At 100% the histogram answers the top of the max's bucket; the max itself is exact.
    const ms = (p: number): number => this.#requests === 0 ? 0 : (p >= 100 ? this.#hist.maxValue : this.#hist.getValueAtPercentile(p)) / 1000
    const classes = { '1xx': 0, '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0 }
    for (const [code, n] of Object.entries(this.#codes)) {
      const k = `${code[0]}xx`
      if (k in classes) classes[k as keyof typeof classes] += n
    }
    return {
      ...run,
      requests: this.#requests,
      rps: run.durationSec > 0 ? this.#requests / run.durationSec : 0,
      rpsPerSecond: dense(this.#perSecond, seconds),
      latencyMs: {
        min: this.#requests === 0 ? 0 : this.#hist.minNonZeroValue / 1000,
        p50: ms(50),
        p90: ms(90),
        p99: ms(99),
        p99_9: ms(99.9),
        mean: this.#requests === 0 ? 0 : this.#hist.mean / 1000,
        max: this.#requests === 0 ? 0 : this.#hist.maxValue / 1000
      },
      percentileCurve: this.#requests === 0 ? [] : curvePercentiles(this.#requests).map((p) => ({ percentile: p, ms: ms(p) })),
      statusClasses: classes,
      statusCodes: { ...this.#codes },
      non2xx: this.#non2xx,
      non2xxPerSecond: dense(this.#non2xxPerSecond, seconds),
      errors: this.#errors,
      errorsByKind: { ...this.#kinds },
      errorsPerSecond: dense(this.#errorsPerSecond, seconds)
    }
  }

  destroy (): void { this.#hist.destroy() }
}

function second (atMs: number): number {
  return Math.max(0, Math.floor(atMs / 1000))
}

function bump (a: number[], i: number): void {
  while (a.length <= i) a.push(0)
  a[i]!++
}

/** `a` as `n` numbers: holes as 0, anything past n - 1 added to the last. */
export function dense (a: readonly number[], n: number): number[] {
  const out = Array.from({ length: n }, (_, i) => a[i] ?? 0)
  for (let i = n; i < a.length; i++) out[n - 1]! += a[i] ?? 0
  return out
}

/**
 * The percentiles of the curve: evenly spaced on HDR's axis, log10(1/(1-p)),
 * ten a decade, as far as `count` samples can tell apart (99.99% of 100
 * samples is just the max), then 100.
 */
export function curvePercentiles (count: number): number[] {
  const decades = Math.max(1, Math.log10(Math.max(1, count)))
  const out: number[] = []
  for (let i = 0; i / 10 <= decades && i <= 60; i++) {
    out.push(Number((100 * (1 - Math.pow(10, -i / 10))).toPrecision(12)))
  }
  if (out[out.length - 1] !== 100) out.push(100)
  return out
}

/** How far along HDR's percentile axis p is: log10(1/(1-p)), 100% drawn one decade past `lastDecade`. */
export function percentileAxis (p: number, lastDecade: number): number {
  return p >= 100 ? lastDecade : Math.min(lastDecade, Math.log10(100 / (100 - p)))
}

export function compare (target: RunSummary, baseline: RunSummary): Comparison {
  return {
    rpsRatio: baseline.rps > 0 ? target.rps / baseline.rps : 0,
    addedP50Ms: target.latencyMs.p50 - baseline.latencyMs.p50,
    addedP99Ms: target.latencyMs.p99 - baseline.latencyMs.p99
  }
}

/** A transport error's kind: its code (ECONNREFUSED…), else its message's first words. */
export function errorKind (err: { code?: unknown, message?: unknown }): string {
  if (typeof err.code === 'string' && err.code !== '') return err.code
  const m = typeof err.message === 'string' ? err.message : ''
  if (/timed out/i.test(m)) return 'timeout'
  return m === '' ? 'error' : m.split(/[\n:]/)[0]!.slice(0, 60)
}
