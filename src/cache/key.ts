// Cache keys (Pingora's key.rs, undici's makeCacheKey): the primary key is
// the URL as the proxy forwards it, scheme://host[:port]/path?query, per the
// route's CacheKeyConfig; the variant key (route, shard, configured headers)
// tells apart responses stored under one URL. Pure.
import type { CacheKeyConfig } from '../config/schema.js'
import { requestField } from '../fields.js'

interface Param { readonly name: string; readonly value: string; readonly raw: string }

function ignored (name: string, ignore: readonly string[]): boolean {
  if (ignore.includes(name)) return true
  if (name.includes('%') || name.includes('+')) {
    try {
      return ignore.includes(decodeURIComponent(name.replace(/\+/g, ' ')))
    } catch {
      return false
    }
  }
  return false
}

/** `a=1&utm_source=x&&b=2` → `?a=1&b=2` (ignored and empty parameters dropped; sorted by name then value for `sort`). */
function filterQuery (query: string, cfg: CacheKeyConfig): string {
  const segments = query.split('&')
  const kept: Param[] = []
  for (let i = 0; i < segments.length; i++) {
    const raw = segments[i]!
    if (raw.length === 0) continue
    const eq = raw.indexOf('=')
    const name = eq < 0 ? raw : raw.slice(0, eq)
    if (cfg.ignoreParams.length > 0 && ignored(name, cfg.ignoreParams)) continue
    kept.push({ name, value: eq < 0 ? '' : raw.slice(eq + 1), raw })
  }
  if (kept.length === 0) return ''
  if (cfg.query === 'sort') {
    kept.sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : a.value < b.value ? -1 : a.value > b.value ? 1 : 0)
  }
  let out = '?' + kept[0]!.raw
  for (let i = 1; i < kept.length; i++) out += '&' + kept[i]!.raw
  return out
}

/**
 * The request target as the cache keys it and the upstream receives it
 * ("forward what you key"): the normalised path, then the query as the
 * route's key rules have it (as sent, sorted, filtered or gone). With
 * `query: keep` and no ignoreParams it is the target itself (no parsing).
 */
export function keyedTarget (target: string, cfg: CacheKeyConfig): string {
  if (cfg.query === 'keep' && cfg.ignoreParams.length === 0) return target
  const q = target.indexOf('?')
  if (q < 0) return target
  if (cfg.query === 'ignore') return target.slice(0, q)
  return target.slice(0, q) + filterQuery(target.slice(q + 1), cfg)
}

/**
 * The primary cache key: `scheme://origin` + the keyed target. Built from
 * parts that were each parsed and validated (a host holds no `/`, `?`, `@` or
 * space; see proxy/authority.ts), so no two different requests share a key.
 * `origin` is `host[:port]` without the scheme's default port.
 */
export function cacheKey (scheme: 'http' | 'https', origin: string, target: string): string {
  return scheme + '://' + origin + target
}

/**
 * What else picks the response besides the URL, so that one user's answer is
 * never served to another whose request went elsewhere: the route (a route's
 * `match.headers` can send the same URL to another backend), the shard (when
 * the backend has several) and the route's configured key headers, as
 * `route\nshard\nname:value…`. A key header sent on several field lines is
 * keyed by all of them, joined as RFC 9110 §5.3 combines them (what the
 * origin reads), never by the first line alone. Header values cannot hold
 * `\n` (RFC 9110 §5.5). Every variant of a URL lives under its primary key,
 * so a purge or an invalidation of the URL removes them all.
 */
export function variantKey (base: string, names: readonly string[], rawHeaders: readonly string[]): string {
  let v = base
  // Each field as it goes upstream (requestField: h2 Cookie crumbs joined with '; ').
  for (let i = 0; i < names.length; i++) v += '\n' + names[i]! + ':' + (requestField(rawHeaders, names[i]!) ?? '')
  return v
}

/**
 * `variant` with what a trusted proxy's request says besides its URL: the
 * `overrides` fields it carries (those frameworks read as the URL, host,
 * scheme, port or method: proxy/headers.ts TRUSTED_OVERRIDES), and the
 * `host=` and `proto=` of a Forwarded field (its `for=` would key every
 * client apart). X-Forwarded-Host and -Proto key it through the origin.
 * Unchanged when it says nothing more.
 */
export function trustedVariant (variant: string, rawHeaders: readonly string[], overrides: ReadonlySet<string>): string {
  let extra = ''
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!.toLowerCase()
    if (overrides.has(name)) extra += '\n' + name + ':' + rawHeaders[i + 1]!
    else if (name === 'forwarded') {
      for (const pair of rawHeaders[i + 1]!.split(/[;,]/)) {
        const eq = pair.indexOf('=')
        const key = pair.slice(0, eq).trim().toLowerCase()
        if (eq > 0 && (key === 'host' || key === 'proto')) extra += '\nforwarded-' + key + ':' + pair.slice(eq + 1).trim()
      }
    }
  }
  return extra === '' ? variant : variant + extra
}

/** The start of every variant key of a route and shard (`route\nshard`), built once when routes compile. */
export function variantBase (route: string, shard: string): string {
  return route + '\n' + shard
}

/** What concurrent misses collapse on: the key and the variant together. */
export function lockKey (at: CacheTarget): string {
  return variantLock(at.key, at.variant)
}

/** The lock key of a stored entry's variant key: what lockKey gives for the request that stored it. */
export function variantLock (key: string, variant: string): string {
  return key + '\0' + variant
}

/** The common start of every key under `pathPrefix` on that origin, for purge by prefix. */
export function keyPrefix (scheme: 'http' | 'https', origin: string, pathPrefix: string): string {
  return scheme + '://' + origin + pathPrefix
}

/**
 * Which primary keys a purge by path removes, whatever their scheme, host and
 * port: `prefix` = every target starting with `path`; else the path itself,
 * with any query (a `path` holding `?` names one query exactly).
 */
export function pathMatcher (path: string, prefix: boolean): (key: string) => boolean {
  const exactQuery = path.includes('?')
  return (key) => {
    // Hosts hold no `/` (see cacheKey): the target starts at the first `/` after `://`.
    const at = key.indexOf('/', key.indexOf('://') + 3)
    if (at < 0) return false
    if (prefix) return key.startsWith(path, at)
    const rest = key.length - at
    if (rest === path.length) return key.endsWith(path)
    return !exactQuery && rest > path.length && key.startsWith(path, at) && key.charCodeAt(at + path.length) === 63 // '?'
  }
}

/** Where a request's response is looked up and stored, decided by the plan. */
export interface CacheTarget {
  /** The primary key: the URL as forwarded. */
  readonly key: string
  /** The variant key: route, shard, key headers. */
  readonly variant: string
  /** Scheme and origin of the key, to key other URLs of the same origin (Location). */
  readonly scheme: 'http' | 'https'
  readonly origin: string
  /**
   * On a compressing route, the coding the request negotiated (br, gzip,
   * identity…): in the variant key, and what Vary: Accept-Encoding is matched
   * on, so the cache holds one entry per coding, not one per browser's
   * Accept-Encoding string. Undefined elsewhere.
   */
  readonly coding?: string | undefined
}
