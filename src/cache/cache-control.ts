// Cache-Control parsing (RFC 9111 §5.2, RFC 5861) into a frozen directives
// object, plus the flat-header helpers the cache policy shares. Pure.
// Lifetimes are milliseconds (delta-seconds × 1000) so callers never convert.

export interface CacheDirectives {
  readonly maxAge?: number
  readonly sMaxAge?: number
  /** Unqualified `no-cache` (an empty field list counts as unqualified). */
  readonly noCache: boolean
  /** `no-cache="a, b"`: lower-cased names; `noCache` stays false for this form. */
  readonly noCacheFields: readonly string[]
  readonly noStore: boolean
  /** Unqualified `private` (an empty field list counts as unqualified). */
  readonly private: boolean
  /** `private="a, b"`: lower-cased names; `private` stays false for this form. */
  readonly privateFields: readonly string[]
  readonly public: boolean
  readonly mustRevalidate: boolean
  readonly proxyRevalidate: boolean
  readonly noTransform: boolean
  readonly immutable: boolean
  readonly mustUnderstand: boolean
  readonly onlyIfCached: boolean
  /** Request `max-stale`; without a value = Infinity. */
  readonly maxStale?: number
  readonly minFresh?: number
  readonly staleWhileRevalidate?: number
  readonly staleIfError?: number
  /**
   * Read from a targeted field (RFC 9213) instead of Cache-Control: the
   * response's Expires is ignored too (§2.1).
   */
  readonly targeted: boolean
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] }

/** Delta-seconds directives whose first valid occurrence counts, and the field each sets. */
const DELTA_FIELDS = {
  'min-fresh': 'minFresh',
  'stale-while-revalidate': 'staleWhileRevalidate',
  'stale-if-error': 'staleIfError'
} as const

const NONE: readonly string[] = Object.freeze([])

/** The directives of a message without Cache-Control. Shared and frozen. */
export const EMPTY_DIRECTIVES: CacheDirectives = Object.freeze({
  noCache: false,
  noCacheFields: NONE,
  noStore: false,
  private: false,
  privateFields: NONE,
  public: false,
  mustRevalidate: false,
  proxyRevalidate: false,
  noTransform: false,
  immutable: false,
  mustUnderstand: false,
  onlyIfCached: false,
  targeted: false
})

/** RFC 9111 §1.2.2: delta-seconds beyond 2^31 are taken as 2^31. */
const MAX_DELTA_SECONDS = 2 ** 31

/**
 * delta-seconds (`1*DIGIT`, quoted form accepted as §5.2 asks) → ms;
 * undefined when missing or invalid (negative, empty, decimals, garbage).
 */
function deltaMs (arg: string | undefined): number | undefined {
  if (arg === undefined) return undefined
  const n = arg.length
  if (n === 0) return undefined
  for (let i = 0; i < n; i++) {
    const c = arg.charCodeAt(i)
    if (c < 48 || c > 57) return undefined
  }
  let lead = 0
  while (lead < n - 1 && arg.charCodeAt(lead) === 48) lead++
  // More than 10 significant digits is always above 2^31 (2147483648 has 10).
  const s = n - lead > 10 ? MAX_DELTA_SECONDS : Math.min(Number(arg), MAX_DELTA_SECONDS)
  return s * 1000
}

/** `"set-cookie, X-Foo"` → ['set-cookie', 'x-foo'] (deduplicated, empties dropped). */
function fieldList (arg: string, into: string[] | undefined): string[] {
  const out = into ?? []
  const parts = arg.split(',')
  for (let i = 0; i < parts.length; i++) {
    const name = parts[i]!.trim().toLowerCase()
    if (name.length > 0 && !out.includes(name)) out.push(name)
  }
  return out
}

/**
 * Parse one Cache-Control value (several fields already joined with ', ').
 * Names are case-insensitive; arguments may be tokens or quoted strings
 * (with `\` escapes and commas inside). Unknown directives are ignored.
 *
 * Duplicates: RFC 9111 §4.2.1 lets a cache "either use the first occurrence,
 * or consider the response stale"; the first occurrence wins here for every
 * numeric directive. An invalid max-age / s-maxage (`abc`, `-1`, empty, no
 * argument) counts as an occurrence with value 0 (stale, §1.2.2 / §4.2.1);
 * other numeric directives with an invalid argument are ignored.
 */
export function parseCacheControl (value: string | undefined): CacheDirectives {
  if (value === undefined || value.length === 0) return EMPTY_DIRECTIVES
  const d: Mutable<CacheDirectives> = { ...EMPTY_DIRECTIVES }
  let noCacheFields: string[] | undefined
  let privateFields: string[] | undefined
  const n = value.length
  let i = 0
  while (i < n) {
    let c = value.charCodeAt(i)
    if (c === 32 || c === 9 || c === 44) { i++; continue } // OWS and empty list members
    const nameStart = i
    while (i < n) {
      c = value.charCodeAt(i)
      if (c === 61 || c === 44) break // '=' or ','
      i++
    }
    const name = value.slice(nameStart, i).trim().toLowerCase()
    let arg: string | undefined
    if (i < n && value.charCodeAt(i) === 61) {
      i++
      while (i < n && ((c = value.charCodeAt(i)) === 32 || c === 9)) i++
      if (i < n && value.charCodeAt(i) === 34) { // quoted-string
        i++
        let s = ''
        let seg = i
        while (i < n) {
          c = value.charCodeAt(i)
          if (c === 92 && i + 1 < n) { s += value.slice(seg, i); seg = i + 1; i += 2; continue }
          if (c === 34) break
          i++
        }
        arg = s + value.slice(seg, i)
        while (i < n && value.charCodeAt(i) !== 44) i++ // anything after the closing quote
      } else {
        const argStart = i
        while (i < n && value.charCodeAt(i) !== 44) i++
        arg = value.slice(argStart, i).trim()
      }
    }
    switch (name) {
      case 'max-age':
        if (d.maxAge === undefined) d.maxAge = deltaMs(arg) ?? 0
        break
      case 's-maxage':
        if (d.sMaxAge === undefined) d.sMaxAge = deltaMs(arg) ?? 0
        break
      case 'no-cache':
        if (arg === undefined) d.noCache = true
        else {
          noCacheFields = fieldList(arg, noCacheFields)
          if (noCacheFields.length === 0) d.noCache = true
        }
        break
      case 'private':
        if (arg === undefined) d.private = true
        else {
          privateFields = fieldList(arg, privateFields)
          if (privateFields.length === 0) d.private = true
        }
        break
      case 'no-store': d.noStore = true; break
      case 'public': d.public = true; break
      case 'must-revalidate': d.mustRevalidate = true; break
      case 'proxy-revalidate': d.proxyRevalidate = true; break
      case 'no-transform': d.noTransform = true; break
      case 'immutable': d.immutable = true; break
      case 'must-understand': d.mustUnderstand = true; break
      case 'only-if-cached': d.onlyIfCached = true; break
      case 'max-stale':
        if (d.maxStale === undefined) {
          const v = arg === undefined ? Infinity : deltaMs(arg)
          if (v !== undefined) d.maxStale = v
        }
        break
      case 'min-fresh':
      case 'stale-while-revalidate':
      case 'stale-if-error': {
        // The first valid occurrence counts, as for max-age.
        const field = DELTA_FIELDS[name]
        if (d[field] === undefined) {
          const v = deltaMs(arg)
          if (v !== undefined) d[field] = v
        }
        break
      }
    }
  }
  if (noCacheFields !== undefined && noCacheFields.length > 0) d.noCacheFields = Object.freeze(noCacheFields)
  if (privateFields !== undefined && privateFields.length > 0) d.privateFields = Object.freeze(privateFields)
  return Object.freeze(d)
}

