// Purges and invalidations that fetches already under way must respect. A
// response whose fetch began before a purge of its URL (or prefix, path, tag)
// must not be stored after it: the purge would be undone by a request that
// was already on its way, and the old content served for its whole lifetime.
// Every removal takes a sequence number; a fetch notes the number when it
// begins, and what it brings back is stored only if no removal since then
// matches it. Checking costs nothing while no removal happens.
import { LRUCache } from 'lru-cache'
import type { CacheEntry } from './entry.js'

/** How many URLs removed one by one are remembered (least recently removed go first). */
export const REMEMBERED_URLS = 10_000
/** How many prefix, path and tag purges are remembered (oldest go first). */
export const REMEMBERED_PATTERNS = 256

type Matcher = (entry: Pick<CacheEntry, 'key' | 'tags'>) => boolean

interface PatternRemoval {
  readonly seq: number
  readonly matches: Matcher
}

export class Removals {
  /** With a clock, sequence numbers are its times (ms), still strictly increasing: see SharedCache's tombstones. */
  readonly #clock: (() => number) | undefined
  #seq = 0
  /**
   * Removals up to this one were forgotten (pushed out of the bounds above):
   * a fetch that began before it cannot be told apart, so it is not stored.
   */
  #floor = 0
  /** URL key → the sequence number of its latest removal (invalidations, PURGE). */
  readonly #urls = new LRUCache<string, number>({
    max: REMEMBERED_URLS,
    dispose: (seq, _key, reason) => {
      if (reason === 'evict' && seq > this.#floor) this.#floor = seq
    }
  })

  readonly #patterns: PatternRemoval[] = []

  constructor (clock?: () => number) {
    this.#clock = clock
  }

  /** The current sequence number: what a fetch notes when it begins. */
  get seq (): number {
    return this.#seq
  }

  /** Every response stored under URL key `key` was removed. */
  url (key: string): void {
    this.#urls.set(key, this.#next())
  }

  /** Every response `matches` accepts was removed (a prefix, path or tag purge). */
  pattern (matches: Matcher): void {
    this.#patterns.push({ seq: this.#next(), matches })
    if (this.#patterns.length > REMEMBERED_PATTERNS) {
      const old = this.#patterns.shift()!
      if (old.seq > this.#floor) this.#floor = old.seq
    }
  }

  /** May `entry`, whose fetch began at sequence number `since`, be stored now? */
  allows (entry: Pick<CacheEntry, 'key' | 'tags'>, since: number): boolean {
    if (since >= this.#seq) return true
    if (since < this.#floor) return false
    const u = this.#urls.peek(entry.key)
    if (u !== undefined && u > since) return false
    const p = this.#patterns
    for (let i = p.length - 1; i >= 0 && p[i]!.seq > since; i--) {
      if (p[i]!.matches(entry)) return false
    }
    return true
  }

  #next (): number {
    this.#seq = this.#clock === undefined ? this.#seq + 1 : Math.max(this.#seq + 1, this.#clock())
    return this.#seq
  }
}
