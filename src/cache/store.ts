// Where cached responses live: a byte-bounded LRU over response variants
// (Pingora's storage.rs + eviction/lru.rs, undici's memory-cache-store.js).
// Knows nothing about HTTP beyond keys, variants and tags: whether a response
// may be stored or served is policy.ts's business, not this file's.
//
// Each variant (one response under a primary key, told apart by its
// varyValues) is one LRU item and counts toward maxBytes on its own. Two
// indexes sit beside the LRU, primary key → variant ids and tag → variant
// ids, and lru-cache's `dispose` keeps both right whatever removes an item
// (eviction, delete, purge), so a purge by tag never scans the cache. A
// third, (key, variant key) → the Vary'd field names its responses were
// stored under, lets a lookup build the one id a request selects instead of
// trying every variant: a URL with Vary: User-Agent and ten thousand agents
// costs a lookup what a URL with one costs.

import { LRUCache } from 'lru-cache'
import type { CacheEntry } from './entry.js'
import type { Interner } from './intern.js'

export interface CacheStoreOptions {
  /** Total `size` of stored entries; the store never holds more. Integer >= 1. */
  readonly maxBytes: number
  /** Entries with a bigger `size` are refused. Integer from 1 to maxBytes. */
  readonly maxEntryBytes: number
  /** Called as an entry leaves the store (evicted, replaced, purged): what is kept about it elsewhere goes too. */
  readonly onRemove?: ((e: CacheEntry) => void) | undefined
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

/**
 * Fixed per-entry cost besides its strings, arrays and body bytes. Measured
 * with bench/entry-cost.ts (heap deltas after full GCs, Node 20 x64), about
 * 770 bytes on the heap: the frozen entry object, its Buffer and ArrayBuffer
 * objects, the LRU's and the indexes' slots for it (the parsed Cache-Control
 * is shared when its value repeats). Plus about 250 bytes malloc'd for the
 * body's backing store, which neither heapUsed nor arrayBuffers shows.
 */
export const ENTRY_OVERHEAD = 1024

/** A V8 string's header (map, hash, length), before its characters; the whole is rounded up to 8 bytes. */
const STRING_HEADER = 16
/** A JS array: its object, its elements store's header, then 8 bytes a slot (no pointer compression in Node). */
const ARRAY_HEADER = 48
const SLOT = 8
/** The tag index's cost for one tag of an entry: its slot in the Map, and a Set of ids of its own when no other entry has the tag. */
const TAG_INDEX = 192
const NOT_LATIN1 = /[^\u0000-\u00ff]/

/** Heap bytes of `s` held on its own: one byte a character (two when it has any beyond Latin-1), plus the header. */
export function stringBytes (s: string): number {
  const chars = NOT_LATIN1.test(s) ? 2 * s.length : s.length
  return (STRING_HEADER + chars + 7) & ~7
}

/** Heap bytes of a string array and its strings; `free(i)` marks a string shared with every entry (interned). */
function arrayBytes (a: readonly string[], free?: (i: number) => boolean): number {
  if (a.length === 0) return 0 // the shared empty arrays
  let n = ARRAY_HEADER + a.length * SLOT
  for (let i = 0; i < a.length; i++) if (free === undefined || !free(i)) n += stringBytes(a[i]!)
  return n
}

/** The parts of an entry that take memory of their own. */
export type EntryParts = Pick<CacheEntry, 'key' | 'variant' | 'statusText' | 'headers' | 'body' | 'etag' | 'varyNames' | 'varyValues' | 'tags'>

/**
 * Bytes an entry counts against maxBytes: what it really holds (measured:
 * test/cache/entry-cost.test.ts). The body counts with the whole ArrayBuffer
 * it keeps alive (buildEntry copies a body that shares a bigger one); each
 * string with V8's header, except header names and values held by
 * `interner` (shared by every entry of its cache: the one that interned
 * `e.headers`); the store's id for it, the tag index's slots;
 * ENTRY_OVERHEAD for the rest.
 * Callers fill `CacheEntry.size` with it.
 */
export function entrySize (e: EntryParts, interner: Interner): number {
  const h = e.headers
  let n = ENTRY_OVERHEAD + e.body.buffer.byteLength + stringBytes(e.key) + stringBytes(e.statusText)
  n += arrayBytes(h, (i) => i % 2 === 0 ? interner.hasName(h[i]!) : interner.hasValue(h[i - 1]!, h[i]!))
  // The store's id: key, variant and Vary values in one string.
  n += stringBytes(e.key) + e.variant.length + 8 + (e.varyValues.length === 0 ? 0 : JSON.stringify(e.varyValues).length)
  // Variant keys are shared per route and shard unless key headers make them longer.
  n += stringBytes(e.variant)
  if (e.etag !== undefined) n += stringBytes(e.etag)
  n += arrayBytes(e.varyNames) + arrayBytes(e.varyValues) + arrayBytes(e.tags) + e.tags.length * TAG_INDEX
  return n
}

/**
 * A response body's chunks as one Buffer in memory of its own, exactly
 * `size` bytes: what compactBody would make of Buffer.concat's result,
 * without the copy in between (concat takes a small result from the pool).
 */
export function joinBody (chunks: readonly Buffer[], size: number): Buffer {
  if (chunks.length === 1 && chunks[0]!.length === size) return compactBody(chunks[0]!)
  const own = Buffer.allocUnsafeSlow(size)
  let at = 0
  for (let i = 0; i < chunks.length && at < size; i++) at += chunks[i]!.copy(own, at)
  // Never uninitialised memory, should the chunks come up short.
  if (at < size) own.fill(0, at)
  return own
}

/**
 * `body` in memory of its own, exactly its size: a Buffer cut from a bigger
 * one (Node's 8 KiB pool for small Buffer.concat results, a socket read, a
 * decoded shared-cache record) would keep all of it alive for as long as
 * the entry lives.
 */
export function compactBody (body: Buffer): Buffer {
  if (body.byteOffset === 0 && body.buffer.byteLength === body.length) return body
  // allocUnsafeSlow: never from the pool; every byte is written next.
  const own = Buffer.allocUnsafeSlow(body.length)
  body.copy(own)
  return own
}

/**
 * The variant ids stored under one primary key, oldest stored first: most
 * keys hold one, kept as the id itself (a Set each would cost more than a
 * small entry's headers).
 */
type KeyIds = string | Set<string>

const idsOf = (k: KeyIds): Iterable<string> => typeof k === 'string' ? [k] : k

/** The Vary'd field names the stored responses of one (key, variant key) share, and how many there are. */
interface VaryRecord { readonly names: readonly string[], count: number }

/** What a request selects under a key: the entry (marked recently used), and whether any response of its variant key is stored. */
export interface Selection { readonly entry: CacheEntry | undefined, readonly found: boolean }

const NOTHING: Selection = Object.freeze({ entry: undefined, found: false })

export class CacheStore {
  readonly maxBytes: number
  readonly maxEntryBytes: number
  readonly #lru: LRUCache<string, CacheEntry>
  readonly #onRemove: ((e: CacheEntry) => void) | undefined
  readonly #keys = new Map<string, KeyIds>()
  readonly #tags = new Map<string, Set<string>>()
  /** By varyKey(key, variant), for responses stored with a Vary. */
  readonly #vary = new Map<string, VaryRecord>()
  #bytes = 0
  #evictions = 0

  constructor (opts: CacheStoreOptions) {
    const { maxBytes, maxEntryBytes } = opts
    this.#onRemove = opts.onRemove
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
   * The largest body a stored entry can have: maxEntryBytes less the fixed
   * cost every entry has besides (its fields cost more still), so a body
   * within maxEntryBytes but not this is never stored.
   */
  get maxBodyBytes (): number {
    return this.maxEntryBytes - ENTRY_OVERHEAD
  }

  /**
   * The variants stored under `key`, most recently stored first (empty when
   * none), each marked recently used.
   */
  get (key: string): readonly CacheEntry[] {
    const rec = this.#keys.get(key)
    if (rec === undefined) return []
    if (typeof rec === 'string') {
      const e = this.#lru.get(rec)
      return e === undefined ? [] : [e]
    }
    const out: CacheEntry[] = []
    // Oldest stored first, so the newest ends up the most recently used and
    // is the last of them to be evicted.
    for (const id of rec) {
      const e = this.#lru.get(id)
      if (e !== undefined) out.push(e)
    }
    return out.reverse()
  }

  /**
   * The response stored under `key` and `variant` that a request whose
   * values for Vary'd fields are `values(names)` selects (§4.1), marked
   * recently used, without looking at the other variants; `found`: a
   * response of that variant key is stored, whichever it selects.
   */
  select (key: string, variant: string, values: (names: readonly string[]) => readonly string[]): Selection {
    const rec = this.#keys.get(key)
    if (rec === undefined) return NOTHING
    if (typeof rec === 'string') {
      // One response under the key (most keys): it, if it is the variant asked for and the request selects it.
      const e = this.#lru.get(rec)
      if (e === undefined || e.variant !== variant) return NOTHING
      return { entry: sameList(e.varyValues, values(e.varyNames)) ? e : undefined, found: true }
    }
    const vary = this.#vary.get(varyKey(key, variant))
    if (vary === undefined) {
      const e = this.#lru.get(idOf(key, variant, NO_VALUES))
      return e === undefined ? NOTHING : { entry: e, found: true }
    }
    return { entry: this.#lru.get(idOf(key, variant, values(vary.names))), found: true }
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
    if (rec !== undefined && this.#otherVary(entry)) {
      // The variant key's responses were stored under another Vary: they go (rare, so a scan is fine).
      for (const old of [...idsOf(rec)]) {
        const e = this.#lru.peek(old)
        if (e !== undefined && e.variant === entry.variant && !sameList(e.varyNames, entry.varyNames)) this.#lru.delete(old)
      }
    }
    const id = variantId(entry)
    // Removed first, so dispose only ever sees entries that are leaving for good.
    this.#lru.delete(id)
    this.#lru.set(id, entry)
    // Indexed after set: the evictions it caused may have emptied this very key.
    const now = this.#keys.get(entry.key)
    if (now === undefined) this.#keys.set(entry.key, id)
    else if (typeof now !== 'string') now.add(id)
    else if (now !== id) this.#keys.set(entry.key, new Set([now, id]))
    for (const tag of entry.tags) {
      let ids = this.#tags.get(tag)
      if (ids === undefined) {
        ids = new Set()
        this.#tags.set(tag, ids)
      }
      ids.add(id)
    }
    if (entry.varyNames.length > 0) {
      const k = varyKey(entry.key, entry.variant)
      const vary = this.#vary.get(k)
      if (vary === undefined) this.#vary.set(k, { names: entry.varyNames, count: 1 })
      else vary.count++
    }
    this.#bytes += size
    return true
  }

  /** Responses of `entry`'s variant key may be stored under other Vary'd names than its own. */
  #otherVary (entry: CacheEntry): boolean {
    const vary = this.#vary.get(varyKey(entry.key, entry.variant))
    if (vary !== undefined) return !sameList(vary.names, entry.varyNames)
    // None stored with a Vary: only one without can differ, and only when this one has a Vary.
    return entry.varyNames.length > 0 && this.#lru.has(idOf(entry.key, entry.variant, NO_VALUES))
  }

  /** Removes every variant under `key`; returns how many. */
  delete (key: string): number {
    const rec = this.#keys.get(key)
    return rec === undefined ? 0 : this.#deleteIds(idsOf(rec))
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

  /** Removes every variant of every key `test` accepts; returns how many. */
  purgeWhere (test: (key: string) => boolean): number {
    let n = 0
    for (const key of this.#keys.keys()) {
      if (test(key)) n += this.delete(key)
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

  #deleteIds (ids: Iterable<string>): number {
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
    this.#onRemove?.(e)
    const rec = this.#keys.get(e.key)
    if (rec === id) {
      this.#keys.delete(e.key)
    } else if (rec !== undefined && typeof rec !== 'string') {
      rec.delete(id)
      // Back to the plain id: a key that once had two variants costs no more than one that never had.
      if (rec.size === 1) this.#keys.set(e.key, rec.values().next().value!)
      else if (rec.size === 0) this.#keys.delete(e.key)
    }
    for (const tag of e.tags) {
      const ids = this.#tags.get(tag)
      if (ids === undefined) continue
      ids.delete(id)
      if (ids.size === 0) this.#tags.delete(tag)
    }
    if (e.varyNames.length > 0) {
      const k = varyKey(e.key, e.variant)
      const vary = this.#vary.get(k)
      if (vary !== undefined && --vary.count === 0) this.#vary.delete(k)
    }
  }
}

/**
 * One id per (key, variant, varyValues). Keys and variant keys hold no NUL
 * (they are built from parsed request parts and header values, which cannot
 * carry one), and JSON never contains a raw NUL: no two variants share an id.
 */
function variantId (e: CacheEntry): string {
  return idOf(e.key, e.variant, e.varyValues)
}

function idOf (key: string, variant: string, varyValues: readonly string[]): string {
  return varyValues.length === 0 ? `${key}\0${variant}\0` : `${key}\0${variant}\0${JSON.stringify(varyValues)}`
}

const NO_VALUES: readonly string[] = Object.freeze([])

function varyKey (key: string, variant: string): string {
  return `${key}\0${variant}`
}

function sameList (a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}
