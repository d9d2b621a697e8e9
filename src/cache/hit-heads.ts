// The response heads of recently hit entries (issue 12: a hit does no
// per-request work that could be done once). A head is the entry's fields
// plus Age and Cache-Status, which change once a second at most, so a hot
// entry's head is built about once a second, and its HTTP/2 form once with it.
// Kept here, not on the entry: entries stay frozen, and the memory is bounded
// by the number of hot entries (two generations of `max`), not by the cache
// size. An entry leaving the store takes its head with it (the store calls
// `delete`), so a head never keeps an evicted body alive.
import type { OutgoingHttpHeaders } from 'node:http'
import type { CacheEntry } from './entry.js'

/** A hit's response head (see serve.ts serveHit). */
export interface HitHead {
  readonly age: number
  /** Cache-Status ttl. */
  readonly ttl: number
  /** Cache-Status name, and whether the hit was collapsed onto another request's fetch. */
  readonly name: string
  readonly collapsed: boolean
  /** Flat [name, value…]: the entry's fields, Age and Cache-Status. */
  readonly fields: readonly string[]
  /** The HTTP/2 form of `fields`, made by the first h2 client to get it. */
  h2: OutgoingHttpHeaders | undefined
  /** The HTTP/1.1 status and field lines, made by the first h1 client to get it; null: writeHead writes it (proxy/h1-head.ts). */
  h1: string | null | undefined
  /** `h1` as latin1 bytes, made with it: a one-write hit copies them rather than encoding the text again. */
  h1Bytes: Buffer | undefined
}

/** How many entries' heads one generation keeps: about 1 MiB with typical heads. */
export const HIT_HEADS = 1024

export class HitHeads {
  readonly max: number
  #current = new Map<CacheEntry, HitHead>()
  #previous = new Map<CacheEntry, HitHead>()

  constructor (max = HIT_HEADS) {
    if (!Number.isSafeInteger(max) || max < 1) throw new RangeError(`max must be an integer >= 1, got ${max}`)
    this.max = max
  }

  get (e: CacheEntry): HitHead | undefined {
    const h = this.#current.get(e)
    if (h !== undefined) return h
    const old = this.#previous.get(e)
    // Still hot: into the current generation, so it outlives the next turn.
    if (old !== undefined) this.set(e, old)
    return old
  }

  set (e: CacheEntry, h: HitHead): void {
    if (this.#current.size >= this.max && !this.#current.has(e)) {
      this.#previous = this.#current
      this.#current = new Map()
    }
    this.#current.set(e, h)
  }

  /** `e` left the store. */
  delete (e: CacheEntry): void {
    this.#current.delete(e)
    this.#previous.delete(e)
  }

  /** Heads kept (both generations; an entry may be in both for a while). */
  get size (): number {
    return this.#current.size + this.#previous.size
  }
}
