// What the dashboard reads (render.ts turns it into MetricsSnapshot): totals
// since start, and a per-second history kept in rings indexed by
// second % size, where a slot is valid when its `sec` holds that second. Time
// comes from the records (and from the snapshot's `now`); the history moves to
// a later second when one is seen and never goes back, closing the seconds of
// the routes and backends that saw requests. Each part exports as plain JSON,
// and the History and Totals of several processes add up (merge.ts).
import { newHistogram, recordUs, type Histogram } from './latency.js'
import { CLASSES } from './registry.js'
import type { HistoryExport, SecondExport, TotalsExport } from './types.js'

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

  export (): TotalsExport {
    return {
      requests: this.requests,
      classes: [...this.classes],
      errors: this.errors,
      upstreamErrors: this.upstreamErrors,
      retries: this.retries,
      cacheLookups: this.cacheLookups,
      cacheServed: this.cacheServed
    }
  }

  /** Adds another process's totals. */
  add (x: TotalsExport): void {
    this.requests += x.requests
    for (let i = 0; i < this.classes.length; i++) this.classes[i]! += x.classes[i] ?? 0
    this.errors += x.errors
    this.upstreamErrors += x.upstreamErrors
    this.retries += x.retries
    this.cacheLookups += x.cacheLookups
    this.cacheServed += x.cacheServed
  }
}

const orNull = (n: number): number | null => (Number.isNaN(n) ? null : n)

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
    recordUs(this.#hist ??= newHistogram(), us)
  }

  /** Close second `sec`: keep its rate and quantiles, reset for the next. */
  finish (sec: number): void {
    const h = this.#hist
    this.put(sec, this.count, this.errors, quantile(h, 50), quantile(h, 99))
    h?.reset()
    this.count = 0
    this.errors = 0
  }

  /** Record completed second `sec` as the last one (and in the ring): finish(), or a merge of processes' seconds. */
  put (sec: number, count: number, errors: number, p50: number, p99: number): void {
    this.lastSec = sec
    this.lastCount = count
    this.lastErrors = errors
    this.lastP50 = p50
    this.lastP99 = p99
    const ring = this.ring
    if (ring !== undefined) {
      const i = sec % ring.sec.length
      ring.sec[i] = sec
      ring.count[i] = count
      ring.errors[i] = errors
      ring.p50[i] = p50
      ring.p99[i] = p99
    }
  }

  /**
   * For an export: the completed seconds since `from` it keeps (the ring, or
   * only the last one), then second `sec` being recorded, as counted so far.
   */
  export (sec: number, from: number): SecondExport[] {
    const out: SecondExport[] = []
    const ring = this.ring
    if (ring !== undefined) {
      for (let s = from; s < sec; s++) {
        const i = s % ring.sec.length
        if (ring.sec[i] === s) out.push([s, ring.count[i]!, ring.errors[i]!, orNull(ring.p50[i]!), orNull(ring.p99[i]!)])
      }
    } else if (this.lastSec >= from && this.lastSec < sec) {
      out.push([this.lastSec, this.lastCount, this.lastErrors, orNull(this.lastP50), orNull(this.lastP99)])
    }
    if (this.count > 0) out.push([sec, this.count, this.errors, orNull(quantile(this.#hist, 50)), orNull(quantile(this.#hist, 99))])
    return out
  }
}

/** The `p`th percentile of `h` in ms; NaN when it is empty. */
function quantile (h: Histogram | undefined, p: number): number {
  return h !== undefined && h.totalCount > 0 ? h.getValueAtPercentile(p) / 1000 : NaN
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

  /** For an export: every second since `from` the ring holds, with the one being recorded. */
  export (from: number): HistoryExport {
    const seconds: [number, number, number, number, number][] = []
    for (let sec = Math.max(from, 0); sec <= this.sec; sec++) {
      const i = sec % this.size
      if (this.ringSec[i] === sec) seconds.push([sec, this.requests[i]!, this.errors[i]!, this.lookups[i]!, this.served[i]!])
    }
    return { sec: this.sec, firstSec: this.firstSec ?? this.sec, seconds }
  }

  /**
   * Adds another process's history. A ring slot keeps the latest second any
   * of them wrote there, and the sum of what each wrote for it: what one
   * process fed every request would hold.
   */
  add (x: HistoryExport): void {
    if (x.sec > this.sec) this.sec = x.sec
    if (this.firstSec === undefined || x.firstSec < this.firstSec) this.firstSec = x.firstSec
    for (const [sec, requests, errors, lookups, served] of x.seconds) {
      if (this.ringSec[sec % this.size]! > sec) continue
      const i = this.slot(sec)
      this.requests[i]! += requests
      this.errors[i]! += errors
      this.lookups[i]! += lookups
      this.served[i]! += served
    }
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
