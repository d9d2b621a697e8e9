// The primary cache key: scheme://host[:port]/path?query, per the route's
// CacheKeyConfig, plus `\n<name>:<value>` for each configured request header.
// Header values cannot contain '\n' (RFC 9110 §5.5), so the separator is
// unambiguous. Pure.
import type { CacheKeyConfig } from '../config/schema.js'

/** Lower-cased authority without the scheme's default port (or an empty port). */
function normalizeHost (scheme: 'http' | 'https', authority: string): string {
  let host = authority.toLowerCase()
  const colon = host.lastIndexOf(':')
  if (colon >= 0 && colon > host.lastIndexOf(']')) {
    const port = host.slice(colon + 1)
    if (port === '' || port === (scheme === 'https' ? '443' : '80')) host = host.slice(0, colon)
  }
  return host
}

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
 * The cache key for a request. `target` is the origin-form request target
 * (path as sent, then `?query`). `header` reads a request header by its
 * lower-cased name. With `query: keep`, no ignoreParams and no key headers the
 * key is a plain concatenation (no parsing).
 */
export function cacheKey (
  scheme: 'http' | 'https',
  authority: string,
  target: string,
  cfg: CacheKeyConfig,
  header: (lowerName: string) => string | undefined
): string {
  let key = scheme + '://' + normalizeHost(scheme, authority)
  if (cfg.query === 'keep' && cfg.ignoreParams.length === 0) {
    key += target
  } else {
    const q = target.indexOf('?')
    if (q < 0) key += target
    else if (cfg.query === 'ignore') key += target.slice(0, q)
    else key += target.slice(0, q) + filterQuery(target.slice(q + 1), cfg)
  }
  const names = cfg.headers
  for (let i = 0; i < names.length; i++) {
    const name = names[i]!
    key += '\n' + name + ':' + (header(name) ?? '')
  }
  return key
}

/** The common start of every key under `pathPrefix` on that host, for purge by prefix. */
export function keyPrefix (scheme: 'http' | 'https', authority: string, pathPrefix: string): string {
  return scheme + '://' + normalizeHost(scheme, authority) + pathPrefix
}
