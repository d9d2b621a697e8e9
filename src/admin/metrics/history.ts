// What the dashboard reads (render.ts turns it into MetricsSnapshot): totals
// since start, and a per-second history kept in rings indexed by
// second % size, where a slot is valid when its `sec` holds that second. Time
// comes from the records (and from the snapshot's `now`); the history moves to
// a later second when one is seen and never goes back, closing the seconds of
// the routes and backends that saw requests.
import { newHistogram, type Histogram } from './latency.js'
import { CLASSES } from './registry.js'

/** Since-start totals for the dashboard (Prometheus reads the labelled counters instead). */
export class Totals {
  requests = 0
  /** Requests by status class, indexed like CLASSES. */
  readonly classes = new Float64Array(CLASSES.length)
  /** Requests answered 5xx or failed by an upstream error. */
  errors = 0
  upstreamErrors = 0
  retries = 0
  cacheLookups = 0
  cacheServed = 0
}

/** Counts and latency of the second being recorded, and what the last completed one left. */
export class Second {
  count = 0
  errors = 0
  #hist: Histogram | undefined
  lastSec = -1
  lastCount = 0
  lastErrors = 0
  lastP50 = NaN
  lastP99 = NaN
  /** Per-second history (backends only), a ring indexed by second % size; a slot is valid when `sec` holds its second. */
  readonly ring: { readonly sec: Float64Array, readonly count: Float64Array, readonly errors: Float64Array, readonly p50: Float64Array, readonly p99: Float64Array } | undefined

  constructor (historySize: number) {
    this.ring = historySize > 0
      ? {
          sec: new Float64Array(historySize).fill(-1),
          count: new Float64Array(historySize),
          errors: new Float64Array(historySize),
          p50: new Float64Array(historySize),
          p99: new Float64Array(historySize)
        }
      : undefined
  }

  record (us: number, isError: boolean): void {
    this.count++
    if (isError) this.errors++
    const h = this.#hist ??= newHistogram()
    h.recordValue(us)
  }

  /** Close second `sec`: keep its rate and quantiles, reset for the next. */
  finish (sec: number): void {
    const h = this.#hist
    this.lastSec = sec
    this.lastCount = this.count
    this.lastErrors = this.errors
    this.lastP50 = h !== undefined && h.totalCount > 0 ? h.getValueAtPercentile(50) / 1000 : NaN
    this.lastP99 = h !== undefined && h.totalCount > 0 ? h.getValueAtPercentile(99) / 1000 : NaN
    h?.reset()
    const ring = this.ring
    if (ring !== undefined) {
      const i = sec % ring.sec.length
      ring.sec[i] = sec
      ring.count[i] = this.lastCount
      ring.errors[i] = this.lastErrors
      ring.p50[i] = this.lastP50
      ring.p99[i] = this.lastP99
    }
    this.count = 0
    this.errors = 0
  }
}

/** The whole proxy's per-second history, and the second being recorded. */
export class History {
  readonly size: number
  /** The second being recorded; -1 before the first record or snapshot. */
  sec = -1
  /** The first second seen: history starts there. */
  firstSec: number | undefined
  readonly ringSec: Float64Array
  readonly requests: Float64Array
  readonly errors: Float64Array
  readonly lookups: Float64Array
  readonly served: Float64Array
  /** Per-route/backend seconds that saw requests in the current second. */
  readonly dirty: Second[] = []

  constructor (size: number) {
    this.size = size
    this.ringSec = new Float64Array(size).fill(-1)
    this.requests = new Float64Array(size)
    this.errors = new Float64Array(size)
    this.lookups = new Float64Array(size)
    this.served = new Float64Array(size)
  }

  /** Move to `sec` (never back), closing the dirty seconds; returns the second now being recorded. */
  advance (sec: number): number {
    const cur = this.sec
    if (sec > cur) {
      if (cur >= 0) {
        const dirty = this.dirty
        for (let i = 0; i < dirty.length; i++) dirty[i]!.finish(cur)
        dirty.length = 0
      }
      this.sec = sec
    }
    this.firstSec ??= this.sec
    return this.sec
  }

  /** The ring slot of `sec`, cleared first when it still holds an older second. */
  slot (sec: number): number {
    const slot = sec % this.size
    if (this.ringSec[slot] !== sec) {
      this.ringSec[slot] = sec
      this.requests[slot] = 0
      this.errors[slot] = 0
      this.lookups[slot] = 0
      this.served[slot] = 0
    }
    return slot
  }
}
