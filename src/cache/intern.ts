// Strings and parsed Cache-Control values kept once for every entry of one
// cache: a parser makes a new string for each response, and most header
// names, many values and most Cache-Control fields repeat. Owned by the
// HttpCache whose entries share them (cache.ts) and handed to what builds
// entries, so no table outlives its cache or is shared between caches.
//
// Bounded by count and fill-only, as the module tables it replaces were:
// once a table is full, new strings are kept per entry (and entrySize counts
// them so). No eviction: an interned string may be held by any stored entry,
// so dropping it from the table would make entrySize count it as free
// while it is not, and the hit path would pay for LRU bookkeeping.
import { parseCacheControl, type CacheDirectives } from './cache-control.js'
import { parseTargeted } from './targeted.js'

export interface InternerOptions {
  /** Most header names, and most header values, kept (each table on its own). */
  readonly maxStrings?: number
  /** Most parsed Cache-Control values kept. */
  readonly maxDirectives?: number
}

/** Enough for the names and repeating values of many origins; the tables stay under 2 MiB at the length caps below. */
const MAX_STRINGS = 4096
const MAX_DIRECTIVES = 1024
/** Longer names and values are not worth a slot, and keep the tables small whatever origins send. */
const MAX_NAME = 64
const MAX_VALUE = 256
const MAX_CC = 256
/** Fields whose values are few and repeat (lower-case). */
const REPEATING: ReadonlySet<string> = new Set([
  'content-type', 'cache-control', 'content-encoding', 'content-language', 'vary', 'accept-ranges', 'server',
  'x-content-type-options', 'x-frame-options', 'x-xss-protection', 'referrer-policy', 'strict-transport-security',
  'access-control-allow-origin', 'access-control-allow-credentials', 'access-control-expose-headers', 'timing-allow-origin',
  'cross-origin-resource-policy', 'cross-origin-opener-policy', 'content-security-policy', 'permissions-policy', 'x-powered-by', 'via'
])

export class Interner {
  readonly #names = new Map<string, string>()
  readonly #values = new Map<string, string>()
  readonly #parsed = new Map<string, CacheDirectives>()
  /** Targeted field values (RFC 9213); null = invalid, ignored. */
  readonly #targeted = new Map<string, CacheDirectives | null>()
  readonly #maxStrings: number
  readonly #maxDirectives: number

  constructor (opts: InternerOptions = {}) {
    const { maxStrings = MAX_STRINGS, maxDirectives = MAX_DIRECTIVES } = opts
    if (!Number.isSafeInteger(maxStrings) || maxStrings < 0) throw new RangeError(`maxStrings must be an integer >= 0, got ${maxStrings}`)
    if (!Number.isSafeInteger(maxDirectives) || maxDirectives < 0) throw new RangeError(`maxDirectives must be an integer >= 0, got ${maxDirectives}`)
    this.#maxStrings = maxStrings
    this.#maxDirectives = maxDirectives
  }

  /**
   * `headers` (flat) with names, and the values of REPEATING fields, replaced
   * by the one copy every entry shares. A new array, as long as `headers`.
   */
  headers (headers: readonly string[]): string[] {
    const out = new Array<string>(headers.length)
    for (let i = 0; i + 1 < headers.length; i += 2) {
      const name = headers[i]!.length <= MAX_NAME ? this.#intern(this.#names, headers[i]!) : headers[i]!
      const value = headers[i + 1]!
      out[i] = name
      out[i + 1] = value.length <= MAX_VALUE && REPEATING.has(name.toLowerCase()) ? this.#intern(this.#values, value) : value
    }
    return out
  }

  /** Whether `name` is held once for every entry (entrySize does not count it per entry). */
  hasName (name: string): boolean {
    return this.#names.has(name)
  }

  /** Whether `value` of the field `name` is held once for every entry. */
  hasValue (name: string, value: string): boolean {
    return REPEATING.has(name.toLowerCase()) && this.#values.has(value)
  }

  /** The parsed Cache-Control `value`, shared by every entry with the same one (never changed once parsed). */
  directives (value: string | undefined): CacheDirectives {
    if (value === undefined) return parseCacheControl(value)
    let cc = this.#parsed.get(value)
    if (cc === undefined) {
      cc = parseCacheControl(value)
      if (this.#parsed.size < this.#maxDirectives && value.length <= MAX_CC) this.#parsed.set(value, cc)
    }
    return cc
  }

  /** The parsed targeted field `value` (RFC 9213), undefined when it is to be ignored; kept as `directives` are. */
  targeted (value: string): CacheDirectives | undefined {
    let cc = this.#targeted.get(value)
    if (cc === undefined) {
      cc = parseTargeted(value) ?? null
      if (this.#targeted.size < this.#maxDirectives && value.length <= MAX_CC) this.#targeted.set(value, cc)
    }
    return cc ?? undefined
  }

  /** How many names, values and Cache-Control values are held (for tests and stats). */
  sizes (): { readonly names: number, readonly values: number, readonly directives: number } {
    return { names: this.#names.size, values: this.#values.size, directives: this.#parsed.size }
  }

  #intern (table: Map<string, string>, s: string): string {
    const had = table.get(s)
    if (had !== undefined) return had
    if (table.size < this.#maxStrings) table.set(s, s)
    return s
  }
}
