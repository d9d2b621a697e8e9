// Where cached responses live: a byte-bounded LRU over response variants
// (Pingora's storage.rs + eviction/lru.rs, undici's memory-cache-store.js).
// Knows nothing about HTTP beyond keys, variants and tags: whether a response
// may be stored or served is policy.ts's business, not this file's.
//
// Each variant (one response under a primary key, told apart by its
// varyValues) is one LRU item and counts toward maxBytes on its own. Two
// indexes sit beside the LRU, primary key → variant ids and tag → variant
// ids, and lru-cache's `dispose` keeps both right whatever removes an item
// (eviction, delete, purge), so a purge by tag never scans the cache.

import { LRUCache } from 'lru-cache'
import type { CacheEntry } from './entry.js'

export interface CacheStoreOptions {
  /** Total `size` of stored entries; the store never holds more. Integer >= 1. */
  readonly maxBytes: number
  /** Entries with a bigger `size` are refused. Integer from 1 to maxBytes. */
  readonly maxEntryBytes: number
}

export interface CacheStoreStats {
  /** Stored variants. */
  readonly entries: number
  /** Primary keys with at least one stored variant. */
  readonly keys: number
  /** Sum of `size` over stored variants; never above maxBytes. */
  readonly bytes: number
  /** Variants dropped to make room (not counting deletes, purges, replacements). */
  readonly evictions: number
  readonly maxBytes: number
}

/** Fixed per-entry cost on top of the body and headers: the entry object, its indexes and the LRU slot. */
export const ENTRY_OVERHEAD = 256

/**
 * Bytes an entry counts against maxBytes: body + header names and values
 * (flat `[name, value, …]`) + ENTRY_OVERHEAD. Callers fill `CacheEntry.size` with it.
 */
export function entrySize (headers: readonly string[], body: Buffer): number {
  let n = body.length + ENTRY_OVERHEAD
  for (let i = 0; i < headers.length; i++) n += (headers[i] as string).length
  return n
}

/** The variants stored under one primary key; those of one variant key share one Vary. */
interface KeyRecord {
  /** Variant ids in the order they were stored, oldest first. */
  readonly ids: Set<string>
}

export class CacheStore {
  readonly maxBytes: number
  readonly maxEntryBytes: number
  readonly #lru: LRUCache<string, CacheEntry>
  readonly #keys = new Map<string, KeyRecord>()
  readonly #tags = new Map<string, Set<string>>()
  #bytes = 0
  #evictions = 0

  constructor (opts: CacheStoreOptions) {
    const { maxBytes, maxEntryBytes } = opts
    if (!Number.isSafeInteger(maxBytes) || maxBytes < 1) {
      throw new RangeError(`maxBytes must be an integer >= 1, got ${maxBytes}`)
    }
    if (!Number.isSafeInteger(maxEntryBytes) || maxEntryBytes < 1 || maxEntryBytes > maxBytes) {
      throw new RangeError(`maxEntryBytes must be an integer from 1 to maxBytes (${maxBytes}), got ${maxEntryBytes}`)
    }
    this.maxBytes = maxBytes
    this.maxEntryBytes = maxEntryBytes
    this.#lru = new LRUCache<string, CacheEntry>({
      maxSize: maxBytes,
      maxEntrySize: maxEntryBytes,
      // lru-cache wants sizes >= 1; a 0-byte entry (never made by entrySize)
      // counts as 1 there, so the LRU's total is never below ours.
      sizeCalculation: (e) => Math.max(1, e.size),
      dispose: (e, id, reason) => { this.#forget(e, id, reason) }
    })
  }

  /**
   * The variants stored under `key`, most recently stored first (empty when
   * none), each marked recently used.
   */
  get (key: string): readonly CacheEntry[] {
    const rec = this.#keys.get(key)
    if (rec === undefined) return []
    const out: CacheEntry[] = []
    // Oldest stored first, so the newest ends up the most recently used and
    // is the last of them to be evicted.
    for (const id of rec.ids) {
      const e = this.#lru.get(id)
      if (e !== undefined) out.push(e)
    }
    return out.reverse()
  }

  /**
   * Stores `entry`, replacing the one with the same variant key and
   * varyValues. Stored responses of its variant key made under another Vary
   * (other varyNames) are dropped first. Least recently used variants are
   * evicted until the total fits. False, storing nothing, when
   * `entry.size > maxEntryBytes`.
   */
  put (entry: CacheEntry): boolean {
    const size = entry.size
    if (!Number.isSafeInteger(size) || size < 0) throw new RangeError(`entry size must be an integer >= 0, got ${size}`)
    if (size > this.maxEntryBytes) return false
    const rec = this.#keys.get(entry.key)
    if (rec !== undefined) {
      for (const old of [...rec.ids]) {
        const e = this.#lru.peek(old)
        if (e !== undefined && e.variant === entry.variant && !sameList(e.varyNames, entry.varyNames)) this.#lru.delete(old)
      }
    }
    const id = variantId(entry)
    // Removed first, so dispose only ever sees entries that are leaving for good.
    this.#lru.delete(id)
    this.#lru.set(id, entry)
    // Indexed after set: the evictions it caused may have emptied this very key.
    let now = this.#keys.get(entry.key)
    if (now === undefined) {
      now = { ids: new Set() }
      this.#keys.set(entry.key, now)
    }
    now.ids.add(id)
    for (const tag of entry.tags) {
      let ids = this.#tags.get(tag)
      if (ids === undefined) {
        ids = new Set()
        this.#tags.set(tag, ids)
      }
      ids.add(id)
    }
    this.#bytes += size
    return true
  }

  /** Removes every variant under `key`; returns how many. */
  delete (key: string): number {
    const rec = this.#keys.get(key)
    return rec === undefined ? 0 : this.#deleteIds(rec.ids)
  }

  /** Removes every variant whose primary key starts with `prefix` (case-sensitive; '' = all); returns how many. */
  purgePrefix (prefix: string): number {
    let n = 0
    // Deleting the current key while iterating a Map is safe; keys added later are not visited.
    for (const key of this.#keys.keys()) {
      if (key.startsWith(prefix)) n += this.delete(key)
    }
    return n
  }

  /** Removes every variant carrying `tag`; returns how many. */
  purgeTag (tag: string): number {
    const ids = this.#tags.get(tag)
    return ids === undefined ? 0 : this.#deleteIds(ids)
  }

  stats (): CacheStoreStats {
    return {
      entries: this.#lru.size,
      keys: this.#keys.size,
      bytes: this.#bytes,
      evictions: this.#evictions,
      maxBytes: this.maxBytes
    }
  }

  #deleteIds (ids: Set<string>): number {
    let n = 0
    // A copy: each delete shrinks the live set through dispose.
    for (const id of [...ids]) {
      if (this.#lru.delete(id)) n++
    }
    return n
  }

  /** lru-cache's dispose: `e` is leaving the store (evicted or deleted); unindex it. */
  #forget (e: CacheEntry, id: string, reason: LRUCache.DisposeReason): void {
    if (reason === 'evict') this.#evictions++
    this.#bytes -= e.size
    const rec = this.#keys.get(e.key)
    if (rec !== undefined) {
      rec.ids.delete(id)
      if (rec.ids.size === 0) this.#keys.delete(e.key)
    }
    for (const tag of e.tags) {
      const ids = this.#tags.get(tag)
      if (ids === undefined) continue
      ids.delete(id)
      if (ids.size === 0) this.#tags.delete(tag)
    }
  }
}

/**
 * One id per (key, variant, varyValues). Keys and variant keys hold no NUL
 * (they are built from parsed request parts and header values, which cannot
 * carry one), and JSON never contains a raw NUL: no two variants share an id.
 */
function variantId (e: CacheEntry): string {
  return e.varyValues.length === 0 ? `${e.key}\0${e.variant}\0` : `${e.key}\0${e.variant}\0${JSON.stringify(e.varyValues)}`
}

function sameList (a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}
