// Targeted cache control (RFC 9213): CDN-Cache-Control and fields like it
// carry Cache-Control directives for one class of caches. They are RFC 8941
// Dictionaries, parsed with a Structured Fields parser (not the lenient
// Cache-Control one: §2.2 says error handling differs on purpose), and the
// first valid, non-empty one on the target list replaces Cache-Control and
// Expires for this cache (§2.1). Pure.
import { combinedValue } from '../fields.js'
import { EMPTY_DIRECTIVES, parseCacheControl, type CacheDirectives } from './cache-control.js'

type Mutable<T> = { -readonly [K in keyof T]: T[K] }

/** An RFC 8941 bare item, as far as the cache directives need to tell types apart. */
export type Bare =
  | { readonly t: 'integer' | 'decimal', readonly v: number }
  | { readonly t: 'string' | 'token' | 'bytes', readonly v: string }
  | { readonly t: 'boolean', readonly v: boolean }
  | { readonly t: 'inner' }

const DELTA = {
  'max-age': 'maxAge',
  's-maxage': 'sMaxAge',
  'stale-while-revalidate': 'staleWhileRevalidate',
  'stale-if-error': 'staleIfError'
} as const

const FLAGS = {
  'no-store': 'noStore',
  public: 'public',
  'must-revalidate': 'mustRevalidate',
  'proxy-revalidate': 'proxyRevalidate',
  'no-transform': 'noTransform',
  immutable: 'immutable',
  'must-understand': 'mustUnderstand'
} as const

/** RFC 9111 §1.2.2: delta-seconds beyond 2^31 are taken as 2^31. */
const MAX_DELTA_SECONDS = 2 ** 31

const NONE: readonly string[] = Object.freeze([])

/**
 * One targeted field's value (its lines joined with ', ') → directives, or
 * undefined when the field is to be ignored (§2.2): empty, not a Dictionary,
 * or a known directive whose value has the wrong type (an Integer max-age, a
 * Boolean no-store, a Boolean or String no-cache / private; §2.2 says not to
 * consume such values, and the public cache-tests suite expects the whole
 * field to be ignored then). Parameters and unknown directives are ignored.
 * Keys are case-sensitive (RFC 8941 keys are lower case): `Max-Age=60` makes
 * the field invalid.
 */
export function parseTargeted (value: string): CacheDirectives | undefined {
  const dict = parseDictionary(value)
  if (dict === undefined || dict.size === 0) return undefined
  const d: Mutable<CacheDirectives> = { ...EMPTY_DIRECTIVES, targeted: true }
  for (const [key, item] of dict) {
    switch (key) {
      case 'max-age':
      case 's-maxage':
      case 'stale-while-revalidate':
      case 'stale-if-error':
        if (item.t !== 'integer' || item.v < 0) return undefined
        d[DELTA[key]] = Math.min(item.v, MAX_DELTA_SECONDS) * 1000
        break
      case 'no-store':
      case 'public':
      case 'must-revalidate':
      case 'proxy-revalidate':
      case 'no-transform':
      case 'immutable':
      case 'must-understand':
        if (item.t !== 'boolean' || !item.v) return undefined
        d[FLAGS[key]] = true
        break
      case 'no-cache':
      case 'private': {
        let names: readonly string[]
        if (item.t === 'boolean' && item.v) names = NONE
        else if (item.t === 'string') names = fieldNames(item.v)
        else return undefined
        // As in Cache-Control: an empty list is the unqualified form.
        if (key === 'no-cache') {
          if (names.length === 0) d.noCache = true
          else d.noCacheFields = names
        } else if (names.length === 0) d.private = true
        else d.privateFields = names
        break
      }
    }
  }
  return Object.freeze(d)
}

/** What parses directive values; the cache's Interner keeps each parsed value once. */
export interface DirectiveParser {
  directives (value: string | undefined): CacheDirectives
  targeted (value: string): CacheDirectives | undefined
}

const PLAIN: DirectiveParser = { directives: parseCacheControl, targeted: parseTargeted }

/**
 * The directives this cache follows for a response (§2.1): those of the first
 * field on `targets` (lower-case names, most specific first) that is present
 * and valid, else Cache-Control's. Decided per response.
 */
export function responseDirectives (headers: readonly string[], targets: readonly string[], parser: DirectiveParser = PLAIN): CacheDirectives {
  for (let i = 0; i < targets.length; i++) {
    const value = combinedValue(headers, targets[i]!)
    if (value === undefined) continue
    const cc = parser.targeted(value)
    if (cc !== undefined) return cc
  }
  return parser.directives(combinedValue(headers, 'cache-control'))
}

/** `"set-cookie, X-Foo"` → ['set-cookie', 'x-foo'] (deduplicated, empties dropped), frozen. */
function fieldNames (s: string): readonly string[] {
  const out: string[] = []
  const parts = s.split(',')
  for (let i = 0; i < parts.length; i++) {
    const name = parts[i]!.trim().toLowerCase()
    if (name.length > 0 && !out.includes(name)) out.push(name)
  }
  return out.length === 0 ? NONE : Object.freeze(out)
}

// ---------------------------------------------------------------- RFC 8941 §4.2

/** A cursor over one field value. */
interface Input { readonly s: string, i: number }

const isDigit = (c: number): boolean => c >= 48 && c <= 57
const isLcAlpha = (c: number): boolean => c >= 97 && c <= 122
const isAlpha = (c: number): boolean => isLcAlpha(c) || (c >= 65 && c <= 90)
/** tchar (RFC 9110 §5.6.2) plus `:` and `/`, as sf-token allows after its first character. */
const TOKEN_CHARS = /^[!#$%&'*+\-.^_`|~0-9A-Za-z:/]$/
const BASE64 = /^[A-Za-z0-9+/=]$/

/** §4.2 + §4.2.2: a Dictionary, later duplicates winning; undefined when parsing fails. */
export function parseDictionary (value: string): Map<string, Bare> | undefined {
  const inp: Input = { s: value, i: 0 }
  const out = new Map<string, Bare>()
  skipSp(inp)
  const n = value.length
  while (inp.i < n) {
    const key = parseKey(inp)
    if (key === undefined) return undefined
    let item: Bare | undefined
    if (value.charCodeAt(inp.i) === 61) { // '='
      inp.i++
      item = value.charCodeAt(inp.i) === 40 ? parseInnerList(inp) : parseBareItem(inp)
    } else {
      item = TRUE
    }
    if (item === undefined || !parseParameters(inp)) return undefined
    out.set(key, item)
    skipOws(inp)
    if (inp.i >= n) return out
    if (value.charCodeAt(inp.i) !== 44) return undefined // ','
    inp.i++
    skipOws(inp)
    if (inp.i >= n) return undefined // trailing comma
  }
  return out
}

const TRUE: Bare = Object.freeze({ t: 'boolean', v: true })
const INNER: Bare = Object.freeze({ t: 'inner' })

function skipSp (inp: Input): void {
  while (inp.s.charCodeAt(inp.i) === 32) inp.i++
}

function skipOws (inp: Input): void {
  let c: number
  while ((c = inp.s.charCodeAt(inp.i)) === 32 || c === 9) inp.i++
}

/** §4.2.3.3: lcalpha or `*`, then lcalpha, DIGIT, `_`, `-`, `.`, `*`. */
function parseKey (inp: Input): string | undefined {
  const s = inp.s
  const start = inp.i
  let c = s.charCodeAt(start)
  if (!isLcAlpha(c) && c !== 42) return undefined
  inp.i++
  while (inp.i < s.length) {
    c = s.charCodeAt(inp.i)
    if (!isLcAlpha(c) && !isDigit(c) && c !== 95 && c !== 45 && c !== 46 && c !== 42) break
    inp.i++
  }
  return s.slice(start, inp.i)
}

/** §4.2.3.2: `;key[=bare-item]`…; values are read for their syntax only (the cache ignores parameters). */
function parseParameters (inp: Input): boolean {
  while (inp.s.charCodeAt(inp.i) === 59) { // ';'
    inp.i++
    skipSp(inp)
    if (parseKey(inp) === undefined) return false
    if (inp.s.charCodeAt(inp.i) === 61) {
      inp.i++
      if (parseBareItem(inp) === undefined) return false
    }
  }
  return true
}

/** §4.2.1.2: `( item *( SP item ) )` with parameters; only its syntax matters here. */
function parseInnerList (inp: Input): Bare | undefined {
  const s = inp.s
  inp.i++ // '('
  while (inp.i < s.length) {
    skipSp(inp)
    if (s.charCodeAt(inp.i) === 41) { // ')'
      inp.i++
      return parseParameters(inp) ? INNER : undefined
    }
    if (parseBareItem(inp) === undefined || !parseParameters(inp)) return undefined
    const c = s.charCodeAt(inp.i)
    if (c !== 32 && c !== 41) return undefined
  }
  return undefined
}

/** §4.2.3.1 */
function parseBareItem (inp: Input): Bare | undefined {
  const c = inp.s.charCodeAt(inp.i)
  if (c === 45 || isDigit(c)) return parseNumber(inp)
  if (c === 34) return parseString(inp)
  if (c === 42 || isAlpha(c)) return parseToken(inp)
  if (c === 58) return parseBytes(inp)
  if (c === 63) return parseBoolean(inp)
  return undefined
}

/** §4.2.4: up to 15 integer digits; a Decimal has at most 12 before the point and 1 to 3 after. */
function parseNumber (inp: Input): Bare | undefined {
  const s = inp.s
  const start = inp.i
  if (s.charCodeAt(inp.i) === 45) inp.i++
  if (!isDigit(s.charCodeAt(inp.i))) return undefined
  let point = -1
  while (inp.i < s.length) {
    const c = s.charCodeAt(inp.i)
    if (isDigit(c)) inp.i++
    else if (c === 46 && point < 0) {
      point = inp.i
      if (point - start > 12 + (s.charCodeAt(start) === 45 ? 1 : 0)) return undefined
      inp.i++
    } else break
    const len = inp.i - start - (s.charCodeAt(start) === 45 ? 1 : 0)
    if (point < 0 ? len > 15 : len > 16) return undefined
  }
  const text = s.slice(start, inp.i)
  if (point < 0) return { t: 'integer', v: Number(text) }
  const frac = inp.i - point - 1
  if (frac < 1 || frac > 3) return undefined
  return { t: 'decimal', v: Number(text) }
}

/** §4.2.5: printable ASCII; `\` escapes only `"` and `\`. */
function parseString (inp: Input): Bare | undefined {
  const s = inp.s
  inp.i++ // '"'
  let out = ''
  let seg = inp.i
  while (inp.i < s.length) {
    const c = s.charCodeAt(inp.i)
    if (c === 92) {
      const next = s.charCodeAt(inp.i + 1)
      if (next !== 34 && next !== 92) return undefined
      out += s.slice(seg, inp.i)
      seg = inp.i + 1
      inp.i += 2
    } else if (c === 34) {
      out += s.slice(seg, inp.i)
      inp.i++
      return { t: 'string', v: out }
    } else if (c < 0x20 || c > 0x7e) {
      return undefined
    } else {
      inp.i++
    }
  }
  return undefined // no closing quote
}

/** §4.2.6 */
function parseToken (inp: Input): Bare {
  const s = inp.s
  const start = inp.i
  inp.i++
  while (inp.i < s.length && TOKEN_CHARS.test(s[inp.i]!)) inp.i++
  return { t: 'token', v: s.slice(start, inp.i) }
}

/** §4.2.7: `:base64:`. */
function parseBytes (inp: Input): Bare | undefined {
  const s = inp.s
  const start = ++inp.i
  while (inp.i < s.length && s.charCodeAt(inp.i) !== 58) {
    if (!BASE64.test(s[inp.i]!)) return undefined
    inp.i++
  }
  if (inp.i >= s.length) return undefined
  inp.i++
  return { t: 'bytes', v: s.slice(start, inp.i - 1) }
}

/** §4.2.8: `?1` or `?0`. */
function parseBoolean (inp: Input): Bare | undefined {
  const c = inp.s.charCodeAt(inp.i + 1)
  if (c !== 48 && c !== 49) return undefined
  inp.i += 2
  return c === 49 ? TRUE : { t: 'boolean', v: false }
}
