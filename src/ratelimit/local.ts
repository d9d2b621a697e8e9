// The local store: buckets in this process's memory, in a count-bounded LRU.
// A bucket is one number (its TAT); one whose TAT has passed is full, the same
// as none, so nothing needs a timer to expire it: past `maxKeys` the least
// recently used go first, and a client whose bucket was dropped simply starts
// full again. In a cluster each worker has its own (see README).
import { LRUCache } from 'lru-cache'
import { take, type Rate, type Verdict } from './gcra.js'
import type { RateLimitStore } from './store.js'

/** About 100 B a bucket with its key, and lru-cache's ~27 B a slot: ~13 MB at most per process. */
export const LOCAL_MAX_KEYS = 100_000

export interface LocalStoreOptions {
  readonly maxKeys?: number
  /** ms from a clock that only goes forward. Default: performance.now. */
  readonly now?: () => number
}

export class LocalStore implements RateLimitStore {
  readonly #maxKeys: number
  readonly #now: () => number
  /** Made on first use: lru-cache allocates for `max` up front (~2.6 MB), which a state built for explain or a primary never needs. */
  #buckets: LRUCache<string, number> | undefined

  constructor (opts: LocalStoreOptions = {}) {
    this.#maxKeys = opts.maxKeys ?? LOCAL_MAX_KEYS
    this.#now = opts.now ?? (() => performance.now())
  }

  take (key: string, rate: Rate): Verdict {
    const buckets = this.#buckets ??= new LRUCache({ max: this.#maxKeys })
    const r = take(rate, buckets.get(key), this.#now())
    if (r.verdict.allowed) buckets.set(key, r.tat)
    return r.verdict
  }

  /** Buckets held (full ones included until they are dropped). */
  get size (): number { return this.#buckets?.size ?? 0 }
}
