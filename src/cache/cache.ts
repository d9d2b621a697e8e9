// The shared HTTP cache: the store, the registry of fetches in flight that
// concurrent misses collapse onto (Pingora's lock.rs, Envoy's thundering-herd
// handler), purge operations, and counters. HTTP policy lives in policy.ts;
// this file decides nothing about freshness, it only keeps things.
import { LRUCache } from 'lru-cache'
import type { CacheConfig } from '../config/schema.js'
import type { CacheEntry } from './entry.js'
import { HitHeads } from './hit-heads.js'
import { Interner } from './intern.js'
import { pathMatcher, variantLock } from './key.js'
import { Removals } from './removals.js'
import type { SharedCache, SharedLock } from './shared/shared-cache.js'
import { CacheStore } from './store.js'

export interface CacheCounters {
  hits: number
  misses: number
  /** Served stale: stale-while-revalidate, stale-if-error, or max-stale. */
  staleServed: number
  /** Revalidations answered 304 (entry refreshed) or 200 (entry replaced). */
  revalidated304: number
  revalidated200: number
  /** Requests that waited for another request's fetch instead of going upstream. */
  collapsed: number
  stored: number
  /** Responses that could have been stored but were not (policy said no, too big, or broken). */
  notStored: number
  invalidations: number
  purges: number
}

export interface CacheStats extends CacheCounters {
  readonly entries: number
  readonly keys: number
  readonly bytes: number
  readonly maxBytes: number
  readonly evictions: number
}

/** What a cache that is gone (a cluster's exited worker) leaves to the fleet's sums: its counters; its sizes went with it. */
export function exitedCacheStats (s: CacheStats): CacheStats {
  return { ...s, entries: 0, keys: 0, bytes: 0, maxBytes: 0 }
}

/**
 * The caches of a cluster's other workers, reached through the primary:
 * removes `keys` there (counted as purges or invalidations) and resolves with
 * how many entries they held; rejects when a worker could not be reached.
 */
export interface CachePeers {
  remove (keys: readonly string[], as: 'purge' | 'invalidation'): Promise<number>
}

/** A fetch in flight for a key: later misses wait on it instead of going upstream. */
export class Inflight {
  readonly key: string
  /** Resolved with the entry the fetch stored, or undefined when it stored nothing. */
  readonly done: Promise<CacheEntry | undefined>
  #resolve!: (e: CacheEntry | undefined) => void
  settled = false
  /**
   * When it ends with nothing stored, a plain GET waiting on it may fetch in
   * its place: it ended for its client's reasons, not the URL's.
   */
  handover = false
  /** The shared cache's fetch lock, when this fetch holds it: let go when the fetch ends. */
  sharedLock: SharedLock | undefined

  constructor (key: string) {
    this.key = key
    this.done = new Promise((resolve) => { this.#resolve = resolve })
  }

  settle (entry: CacheEntry | undefined): void {
    if (this.settled) return
    this.settled = true
    this.#resolve(entry)
  }
}

/** How many uncacheable keys hit-for-miss remembers at most (least recently used go first). */
export const HIT_FOR_MISS_KEYS = 10_000

export class HttpCache {
  /** Replaced on reload when the sizes stay the same (entries are kept). */
  config: CacheConfig
  readonly store: CacheStore
  /**
   * Header strings and parsed Cache-Control values its entries share: this
   * cache's own, so they live and go with the entries that hold them (a
   * reload that keeps the cache keeps them; a new cache starts empty).
   */
  readonly interner = new Interner()
  readonly counters: CacheCounters = {
    hits: 0, misses: 0, staleServed: 0, revalidated304: 0, revalidated200: 0, collapsed: 0,
    stored: 0, notStored: 0, invalidations: 0, purges: 0
  }

  readonly #inflight = new Map<string, Inflight>()
  /** Variant keys whose last answer could not be stored, until when (hit-for-miss); bounded, made on first use. */
  #uncacheable: LRUCache<string, true> | undefined
  /** Locks whose release went with a shared write (put), so finish does not release them again. */
  readonly #lockedWrites = new Set<SharedLock>()

  /** The prepared heads of hot entries (see serve.ts serveHit). */
  readonly hitHeads = new HitHeads()

  /** Purges and invalidations, so a fetch that began before one does not store what it removed. */
  readonly removals = new Removals()

  /** The other processes' caches (a cluster's other workers), which purges and invalidations must reach too. */
  readonly peers: CachePeers | undefined

  /**
   * The second level in Redis (cache.shared), shared by every instance; set
   * by buildState, replaced on reload with the config it belongs to.
   */
  shared: SharedCache | undefined

  /** `share`: how many processes split `maxBytes` (a cluster's workers each hold their part). */
  constructor (config: CacheConfig, share = 1, peers?: CachePeers) {
    this.config = config
    this.peers = peers
    const maxBytes = Math.floor(config.maxBytes / share)
    const hitHeads = this.hitHeads
    this.store = new CacheStore({ maxBytes, maxEntryBytes: Math.min(config.maxEntryBytes, maxBytes), onRemove: (e) => { hitHeads.delete(e) } })
  }

  /** The fetch in flight for `key`, if any. */
  inflight (key: string): Inflight | undefined {
    return this.#inflight.get(key)
  }

  /**
   * The last answer for `lock` (a variant key, cache/key.ts lockKey) could
   * not be stored: for `config.hitForMiss` its requests skip the collapse.
   */
  markUncacheable (lock: string): void {
    const ttl = this.config.hitForMiss
    if (ttl <= 0) return
    this.#uncacheable ??= new LRUCache<string, true>({ max: HIT_FOR_MISS_KEYS, ttl, ttlAutopurge: false })
    this.#uncacheable.set(lock, true, { ttl })
  }

  /** Whether `lock`'s requests go upstream side by side (see markUncacheable). */
  uncacheable (lock: string): boolean {
    return this.#uncacheable?.get(lock) === true
  }

  /** Register this request as the one fetching `key` (the collapse leader). */
  lead (key: string): Inflight {
    const f = new Inflight(key)
    this.#inflight.set(key, f)
    return f
  }

  /** The leader is done: wake waiters with what it stored (or nothing). */
  finish (f: Inflight, entry: CacheEntry | undefined): void {
    if (this.#inflight.get(f.key) === f) this.#inflight.delete(f.key)
    const lock = f.sharedLock
    if (lock !== undefined) {
      f.sharedLock = undefined
      // A stored entry let the lock go with its write (see put); otherwise let it go now.
      if (entry === undefined || !this.#lockedWrites.delete(lock)) this.shared?.release(lock)
    }
    f.settle(entry)
  }

  /**
   * Stores a response fetched here: locally and, with a shared cache, in
   * Redis (not awaited). `since`: removals.seq when its fetch began; a purge
   * or invalidation since then that matches it keeps it out. `epoch`: the
   * shared cache's purge state when it began (see SharedCache.store).
   */
  put (entry: CacheEntry, leader: Inflight | undefined, since: number, epoch: string | undefined): boolean {
    const ok = this.removals.allows(entry, since) && this.store.put(entry)
    // Storable again: its requests collapse again.
    if (ok) this.#uncacheable?.delete(variantLock(entry.key, entry.variant))
    if (ok) this.counters.stored++
    else this.counters.notStored++
    const shared = this.shared
    if (ok && shared !== undefined) {
      const lock = leader?.sharedLock
      if (lock !== undefined) this.#lockedWrites.add(lock)
      shared.store(entry, lock, epoch)
    }
    return ok
  }

  /** Stores an entry that came from the shared cache, locally only (`since` as for put). */
  fill (entry: CacheEntry, since: number): boolean {
    return this.removals.allows(entry, since) && this.store.put(entry)
  }

  /** Drop a URI: every response stored under it (all variant keys, all Vary variants). */
  invalidate (key: string): number {
    this.removals.url(key)
    const n = this.store.delete(key)
    this.counters.invalidations += n
    return n
  }

  /** Every entry, as if purged (the shared cache may have missed purges); not counted as purges. */
  purgeAll (): number {
    this.removals.pattern(() => true)
    return this.store.purgeWhere(() => true)
  }

  /** Like invalidate, counted as a purge. */
  purgeUrl (key: string): number {
    this.removals.url(key)
    const n = this.store.delete(key)
    this.counters.purges += n
    return n
  }

  purgePrefix (prefix: string): number {
    this.removals.pattern((e) => e.key.startsWith(prefix))
    const n = this.store.purgePrefix(prefix)
    this.counters.purges += n
    return n
  }

  /** A path (or path prefix) on every host and port: see cache/key.ts pathMatcher. */
  purgePath (path: string, prefix: boolean): number {
    const matches = pathMatcher(path, prefix)
    this.removals.pattern((e) => matches(e.key))
    const n = this.store.purgeWhere(matches)
    this.counters.purges += n
    return n
  }

  purgeTag (tag: string): number {
    this.removals.pattern((e) => e.tags.includes(tag))
    const n = this.store.purgeTag(tag)
    this.counters.purges += n
    return n
  }

  stats (): CacheStats {
    const s = this.store.stats()
    return { ...this.counters, entries: s.entries, keys: s.keys, bytes: s.bytes, maxBytes: s.maxBytes, evictions: s.evictions }
  }
}
