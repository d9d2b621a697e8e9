// Per route and per backend: requests and errors since start, the two latency
// summaries (start to end, upstream dispatch to response headers) and the
// current second for the dashboard. Each keeps ~5 HDR histograms (about 70 KB
// each), so their number is bounded: past `limit` names, later ones share
// `other`.
import { Second } from './history.js'
import { Latency } from './latency.js'
import { OTHER } from './registry.js'

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
}

/** The series of one kind (routes or backends), in the order first seen. */
export class SeriesMap {
  readonly #map = new Map<string, SeriesStats>()
  readonly #limit: number
  /** Seconds of per-second history each series keeps (0: none). */
  readonly #historySize: number

  constructor (limit: number, historySize: number) {
    this.#limit = limit
    this.#historySize = historySize
  }

  /** The series of `name`, created on first use (or `other`'s, past the limit). */
  get (name: string): SeriesStats {
    const map = this.#map
    let s = map.get(name)
    if (s !== undefined) return s
    if (map.size >= this.#limit) {
      name = OTHER
      s = map.get(name)
      if (s !== undefined) return s
    }
    s = new SeriesStats(this.#historySize)
    map.set(name, s)
    return s
  }

  [Symbol.iterator] (): MapIterator<[string, SeriesStats]> {
    return this.#map[Symbol.iterator]()
  }
}
