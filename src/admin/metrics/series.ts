// Per route and per backend: requests and errors since start, the two latency
// summaries (start to end, upstream dispatch to response headers) and the
// current second for the dashboard. Each keeps ~5 HDR histograms (about 70 KB
// each), so their number is bounded: past `limit` names, later ones share
// `other`. A merge of processes' exports keeps its own per-name sums in a
// SeriesMap too, under the same bound.
import { Second } from './history.js'
import { Latency } from './latency.js'
import { OTHER } from './registry.js'
import type { SeriesExport } from './types.js'

/** Everything kept per route or per backend. */
export class SeriesStats {
  requests = 0
  errors = 0
  readonly total = new Latency()
  readonly upstream = new Latency()
  readonly second: Second

  constructor (historySize: number) {
    this.second = new Second(historySize)
  }

  /**
   * As plain JSON: the summaries at half-window `epoch` (with their window
   * histograms when `histograms`), the seconds from `from` to `sec` (the one
   * being recorded).
   */
  export (name: string, epoch: number, histograms: boolean, sec: number, from: number): SeriesExport {
    return {
      name,
      requests: this.requests,
      errors: this.errors,
      total: this.total.export(epoch, histograms),
      upstream: this.upstream.export(epoch, histograms),
      seconds: this.second.export(sec, from)
    }
  }
}

/** The series of one kind (routes or backends), in the order first seen. */
export class SeriesMap<S> {
  readonly #map = new Map<string, S>()
  readonly #limit: number
  readonly #create: () => S

  /** `create` makes the series of a name not seen yet. */
  constructor (limit: number, create: () => S) {
    this.#limit = limit
    this.#create = create
  }

  /** The series of `name`, created on first use (or `other`'s, past the limit). */
  get (name: string): S {
    const map = this.#map
    let s = map.get(name)
    if (s !== undefined) return s
    if (map.size >= this.#limit) {
      name = OTHER
      s = map.get(name)
      if (s !== undefined) return s
    }
    s = this.#create()
    map.set(name, s)
    return s
  }

  [Symbol.iterator] (): MapIterator<[string, S]> {
    return this.#map[Symbol.iterator]()
  }
}
