// Latency summaries on HDR histograms (hdr-histogram-js): `_count` and `_sum`
// since start, quantiles and `_max` over a sliding window. Values are recorded
// in microseconds; the window is two half-window histograms that rotate
// lazily when a later half-window is seen, so there is no timer and a
// recording allocates nothing once its histograms exist. A summary exports as
// compressed histograms, and summaries from several processes merge exactly
// (MergedLatency): HDR counts add.
import * as hdr from 'hdr-histogram-js'
import type { LatencyExport } from './types.js'

const QUANTILES = [0.5, 0.9, 0.99, 0.999] as const

/**
 * Upper bounds (seconds) of the Prometheus histogram buckets every latency is
 * also counted in, since start: fixed, so that instances' buckets add up
 * (histogram_quantile over a sum), which windowed summaries cannot.
 */
export const BUCKETS_S: readonly number[] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]
const BUCKETS_MS = BUCKETS_S.map((s) => s * 1000)

/** Per-bucket (not cumulative) counts: one per bound, then the values above the last. */
export const emptyBuckets = (): number[] => new Array<number>(BUCKETS_S.length + 1).fill(0)

/** Index of the bucket `ms` falls in (le is inclusive). */
function bucketOf (ms: number): number {
  let i = 0
  while (i < BUCKETS_MS.length && ms > BUCKETS_MS[i]!) i++
  return i
}
/** Histograms record microseconds, 1 µs … 60 s, 3 significant digits; longer values count as 60 s. */
const HIST_MAX_US = 60_000_000

export type Histogram = hdr.Histogram

export function newHistogram (): Histogram {
  return hdr.build({
    bitBucketSize: 32, // ~70 KB each; quantiles from the packed layout are ~75× slower (a scrape would block for seconds)
    useWebAssembly: false,
    autoResize: false,
    lowestDiscernibleValue: 1,
    highestTrackableValue: HIST_MAX_US,
    numberOfSignificantValueDigits: 3
  })
}

/** The parts of hdr-histogram-js's histograms recordUs reads and calls (public on the object, not in its typings). */
interface HdrInternals {
  readonly unitMagnitude: number
  readonly subBucketHalfCountMagnitude: number
  readonly countsArrayLength: number
  incrementCountAtIndex (index: number): void
  updateMinAndMax (value: number): void
  incrementTotalCount (): void
}

/** newHistogram's layout, read off one at load: 2^10 half sub-buckets of unit 1. Anything else, and recordUs is recordValue. */
const FAST_RECORD = ((): boolean => {
  const h = newHistogram() as unknown as HdrInternals
  return h.unitMagnitude === 0 && h.subBucketHalfCountMagnitude === 10 && typeof h.incrementCountAtIndex === 'function' &&
    typeof h.updateMinAndMax === 'function' && typeof h.incrementTotalCount === 'function'
})()

/**
 * `h.recordValue(us)` for a histogram of newHistogram's, `us` a whole number
 * (toMicros): the same count in the same slot, found with integer
 * arithmetic where hdr-histogram-js uses log2, pow and a division per value
 * (1.7% of a cache hit's CPU, for the four values each request records).
 */
export function recordUs (h: Histogram, us: number): void {
  if (!FAST_RECORD) return h.recordValue(us)
  const x = h as unknown as HdrInternals
  // The bucket: powers of two above the 2^11 values of bucket 0; the slot: the value at that bucket's resolution.
  const bucket = Math.max(21 - Math.clz32(us), 0)
  const index = (bucket << 10) + (us >>> bucket)
  if (index >= x.countsArrayLength) return h.recordValue(us) // out of range: its own error
  x.incrementCountAtIndex(index)
  x.updateMinAndMax(us)
  x.incrementTotalCount()
}

/** ms → whole µs for the histograms: 0 when not positive, capped at 60 s. */
export function toMicros (ms: number): number {
  if (!(ms > 0)) return 0
  const us = Math.round(ms * 1000)
  return us < HIST_MAX_US ? us : HIST_MAX_US
}

/** Windowed quantiles and max of one summary, ready to write. */
export interface WindowValue { readonly quantiles: (readonly [number, number])[], readonly max: number }

/** Quantiles of `h` (seconds; NaN without `h`) and `maxMs` in seconds. */
function windowValue (h: Histogram | undefined, maxMs: number): WindowValue {
  const quantiles = QUANTILES.map((q) => [q, h === undefined ? NaN : h.getValueAtPercentile(q * 100) / 1e6] as const)
  return { quantiles, max: maxMs / 1000 }
}

const encode = (h: Histogram | undefined): string | null => (h !== undefined && h.totalCount > 0 ? hdr.encodeIntoCompressedBase64(h) : null)

/**
 * One latency summary: count and sum since start; quantiles and max over a
 * sliding window kept as two histograms (this half-window and the last one)
 * that rotate lazily when a later half-window is seen.
 */
export class Latency {
  count = 0
  sumMs = 0
  /** Counts by BUCKETS_S bucket since start (not cumulative). */
  readonly buckets = emptyBuckets()
  #cur: Histogram | undefined
  #prev: Histogram | undefined
  /** Exact maxima of the two half-windows, ms (not capped at the histogram's 60 s). */
  #curMax = 0
  #prevMax = 0
  #epoch = -1

  record (us: number, ms: number, epoch: number): void {
    this.count++
    if (ms > 0) this.sumMs += ms
    this.buckets[bucketOf(ms)]!++
    if (epoch > this.#epoch) this.#rotate(epoch)
    recordUs(this.#cur ??= newHistogram(), us)
    if (ms > this.#curMax) this.#curMax = ms
  }

  #rotate (epoch: number): void {
    const cur = this.#cur
    if (epoch === this.#epoch + 1 && cur !== undefined && cur.totalCount > 0) {
      this.#cur = this.#prev
      this.#prev = cur
      this.#prevMax = this.#curMax
    } else {
      this.#prev?.reset()
      this.#prevMax = 0
    }
    this.#cur?.reset()
    this.#curMax = 0
    this.#epoch = epoch
  }

  /** Quantiles (seconds; NaN with no values in the window) and max (seconds; 0 when empty) at `epoch`. */
  window (epoch: number, scratch: Histogram): WindowValue {
    if (epoch > this.#epoch) this.#rotate(epoch)
    const cur = this.#cur !== undefined && this.#cur.totalCount > 0 ? this.#cur : undefined
    const prev = this.#prev !== undefined && this.#prev.totalCount > 0 ? this.#prev : undefined
    let h: Histogram | undefined = cur ?? prev
    if (cur !== undefined && prev !== undefined) {
      scratch.reset()
      scratch.add(prev)
      scratch.add(cur)
      h = scratch
    }
    return windowValue(h, Math.max(this.#curMax, this.#prevMax))
  }

  /** Count, sum and the window at `epoch`, as plain JSON (histograms compressed; left out without `histograms`). */
  export (epoch: number, histograms: boolean): LatencyExport {
    if (epoch > this.#epoch) this.#rotate(epoch)
    return {
      count: this.count,
      sumMs: this.sumMs,
      buckets: [...this.buckets],
      epoch: this.#epoch,
      cur: histograms ? encode(this.#cur) : null,
      prev: histograms ? encode(this.#prev) : null,
      curMax: this.#curMax,
      prevMax: this.#prevMax
    }
  }
}

/**
 * The sum of several processes' summaries of one series (their exports):
 * counts and sums add; each half-window's histograms add, aligned on the
 * latest half-window any of them has seen, exactly as one Latency fed every
 * value would have rotated; maxima take the max. Histograms are decoded only
 * when a window is read (the dashboard never reads one).
 */
export class MergedLatency {
  count = 0
  sumMs = 0
  readonly buckets = emptyBuckets()
  #epoch = -1
  /** Encoded histograms of half-window #epoch, and of the one before. */
  #cur: string[] = []
  #prev: string[] = []
  #curMax = 0
  #prevMax = 0

  absorb (x: LatencyExport): void {
    this.count += x.count
    this.sumMs += x.sumMs
    // An export from before buckets existed adds nothing to them.
    const b = x.buckets ?? []
    for (let i = 0; i < b.length && i < this.buckets.length; i++) this.buckets[i]! += b[i]!
    if (x.epoch > this.#epoch) this.#rotate(x.epoch)
    if (x.epoch === this.#epoch) {
      if (x.cur !== null) this.#cur.push(x.cur)
      if (x.prev !== null) this.#prev.push(x.prev)
      if (x.curMax > this.#curMax) this.#curMax = x.curMax
      if (x.prevMax > this.#prevMax) this.#prevMax = x.prevMax
    } else if (x.epoch === this.#epoch - 1) {
      if (x.cur !== null) this.#prev.push(x.cur)
      if (x.curMax > this.#prevMax) this.#prevMax = x.curMax
    }
  }

  /** As Latency's: half-window `epoch` follows #epoch only when this one has values. */
  #rotate (epoch: number): void {
    const cur = this.#cur
    if (epoch === this.#epoch + 1 && cur.length > 0) {
      this.#prev = cur
      this.#prevMax = this.#curMax
    } else {
      this.#prev = []
      this.#prevMax = 0
    }
    this.#cur = []
    this.#curMax = 0
    this.#epoch = epoch
  }

  /** As Latency.window: quantiles and max at `epoch`; `scratch` receives the sum. */
  window (epoch: number, scratch: Histogram): WindowValue {
    if (epoch > this.#epoch) this.#rotate(epoch)
    scratch.reset()
    for (const s of this.#prev) scratch.add(hdr.decodeFromCompressedBase64(s))
    for (const s of this.#cur) scratch.add(hdr.decodeFromCompressedBase64(s))
    return windowValue(scratch.totalCount > 0 ? scratch : undefined, Math.max(this.#curMax, this.#prevMax))
  }

  /** As Latency.export at `epoch` (default: the latest seen): the sum as one summary, each half-window's histograms added into one. */
  export (epoch: number = this.#epoch): LatencyExport {
    if (epoch > this.#epoch) this.#rotate(epoch)
    return {
      count: this.count,
      sumMs: this.sumMs,
      buckets: [...this.buckets],
      epoch: this.#epoch,
      cur: addEncoded(this.#cur),
      prev: addEncoded(this.#prev),
      curMax: this.#curMax,
      prevMax: this.#prevMax
    }
  }
}

/** Encoded histograms as one (null when there are none). */
function addEncoded (list: readonly string[]): string | null {
  if (list.length <= 1) return list[0] ?? null
  const sum = newHistogram()
  for (const s of list) sum.add(hdr.decodeFromCompressedBase64(s))
  return encode(sum)
}
