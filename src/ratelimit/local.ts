// The local store: buckets in this process's memory, in a count-bounded LRU.
// A bucket is one number (its TAT); one whose TAT has passed is full, the same
// as none, so nothing needs a timer to expire it: past `maxKeys` the least
// recently used go first, and a client whose bucket was dropped simply starts
// full again. In a cluster each worker has its own (see README).
import { LRUCache } from 'lru-cache'
import { take, type Rate, type Verdict } from './gcra.js'
import type { RateLimitStore } from './store.js'

/** About 100 B a bucket with its key: ~10 MB at most per process. */
export const LOCAL_MAX_KEYS = 100_000

export interface LocalStoreOptions {
  readonly maxKeys?: number
  /** ms from a clock that only goes forward. Default: performance.now. */
  readonly now?: () => number
}

export class LocalStore implements RateLimitStore {
  readonly #buckets: LRUCache<string, number>
  readonly #now: () => number

  constructor (opts: LocalStoreOptions = {}) {
    this.#buckets = new LRUCache({ max: opts.maxKeys ?? LOCAL_MAX_KEYS })
    this.#now = opts.now ?? (() => performance.now())
  }

  take (key: string, rate: Rate): Verdict {
    const r = take(rate, this.#buckets.get(key), this.#now())
    if (r.verdict.allowed) this.#buckets.set(key, r.tat)
    return r.verdict
  }

  /** Buckets held (full ones included until they are dropped). */
  get size (): number { return this.#buckets.size }
}
