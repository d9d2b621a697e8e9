// Path normalisation before routing (Envoy's normalize_path, merge_slashes and
// path_with_escaped_slashes_action; HAProxy's normalize-uri). The router, the
// cache key and the upstream all see the one normalised path, so
// `/public/../internal/x` can never be routed by `/public/` and then be read
// as `/internal/x` by the origin. Pure.
import type { PathNormalizationConfig } from '../config/schema.js'

/**
 * Normalise an origin-form path (no query). Returns undefined when the path
 * must be refused (an escaped slash under `escapedSlashes: reject`).
 *
 * In order:
 * 1. percent-encoded unreserved characters are decoded (RFC 3986 §6.2.2.2:
 *    `%61` is `a`, `%2e` is `.`), and escaped slashes (`%2F`, `%5C`) are kept,
 *    refused or decoded as configured; with `reject` or `decode`, a raw
 *    backslash counts as an escaped slash too, and both `%5C` and `\` decode
 *    to `/` (WHATWG URL parsers, and so many origins, read `\` as `/`: kept as
 *    a backslash, `/public/..\internal` would be routed by `/public/` and
 *    served as `/internal`);
 * 2. dot-segments are removed (RFC 3986 §5.2.4);
 * 3. runs of `/` become one, when `mergeSlashes` is on.
 * A path with none of `%`, `/.` (or `//` when merging, `\` unless keeping
 * escaped slashes) is returned as it is.
 */
export function normalizePath (path: string, cfg: PathNormalizationConfig): string | undefined {
  const pct = path.indexOf('%') !== -1
  const backslash = cfg.escapedSlashes !== 'keep' && path.indexOf('\\') !== -1
  if (!pct && !backslash && path.indexOf('/.') === -1 && !(cfg.mergeSlashes && path.indexOf('//') !== -1)) return path
  let p = path
  if (backslash) {
    if (cfg.escapedSlashes === 'reject') return undefined
    p = p.replace(/\\/g, '/')
  }
  if (pct) {
    const decoded = decodeUnreserved(p, cfg.escapedSlashes)
    if (decoded === undefined) return undefined
    p = decoded
  }
  if (p.indexOf('/.') !== -1) p = removeDotSegments(p)
  if (cfg.mergeSlashes && p.indexOf('//') !== -1) p = p.replace(/\/{2,}/g, '/')
  return p
}

/** 1 for the unreserved characters (RFC 3986 §2.3). */
const UNRESERVED = new Uint8Array(128)
for (const c of 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~') UNRESERVED[c.charCodeAt(0)] = 1

function hexValue (c: number): number {
  if (c >= 48 && c <= 57) return c - 48
  if (c >= 65 && c <= 70) return c - 55
  if (c >= 97 && c <= 102) return c - 87
  return -1
}

function decodeUnreserved (p: string, slashes: PathNormalizationConfig['escapedSlashes']): string | undefined {
  let out = ''
  let from = 0
  for (let i = p.indexOf('%'); i !== -1 && i + 2 < p.length; i = p.indexOf('%', i + 1)) {
    const hi = hexValue(p.charCodeAt(i + 1))
    const lo = hexValue(p.charCodeAt(i + 2))
    if (hi < 0 || lo < 0) continue
    const c = hi * 16 + lo
    let replacement: string | undefined
    if (c < 128 && UNRESERVED[c] === 1) {
      replacement = String.fromCharCode(c)
    } else if (c === 0x2f || c === 0x5c) { // '/' '\'
      if (slashes === 'reject') return undefined
      if (slashes === 'decode') replacement = '/'
    }
    if (replacement === undefined) continue
    out += p.slice(from, i) + replacement
    from = i + 3
    i += 2
  }
  return from === 0 ? p : out + p.slice(from)
}

/** RFC 3986 §5.2.4 on an absolute path (starts with `/`). */
export function removeDotSegments (path: string): string {
  const segs = path.split('/')
  const out: string[] = []
  const last = segs.length - 1
  for (let i = 1; i <= last; i++) {
    const s = segs[i]!
    if (s === '.' || s === '..') {
      if (s === '..') out.pop()
      if (i === last) out.push('') // `/a/b/..` → `/a/`
      continue
    }
    out.push(s)
  }
  return '/' + out.join('/')
}

/**
 * The path of `target` (path and query) has a `.` or `..` segment. A
 * normalised path has none; a rewrite can make one by joining what it keeps
 * to what it strips or adds (`/static../secret` with `stripPrefix: /static`
 * and `addPrefix: /public` is `/public/../secret`), which the origin would
 * resolve past the prefix.
 */
export function hasDotSegment (target: string): boolean {
  const q = target.indexOf('?')
  const path = q === -1 ? target : target.slice(0, q)
  if (path.indexOf('/.') === -1) return false
  for (const segment of path.split('/')) if (segment === '.' || segment === '..') return true
  return false
}

/** What some origin reads differently: `;`, an escaped or raw backslash/slash, an empty segment. */
const READ_APART = /;|\/\/|%2f|%5c|\\/i

/**
 * How the most lenient origins read a normalised path, or undefined when
 * they read it as it is: servlet containers (Tomcat, Jetty, Undertow) drop
 * each segment's `;parameters`; nginx and WHATWG URL parsers decode `%2F`
 * and `%5C` (and read `\` as `/`), then resolve dot-segments; nginx merges
 * `//`. plan() refuses a path that this reading would route elsewhere:
 * `/admin;x/panel`, `//admin/` or `/x/..%2fadmin/` would otherwise pass a
 * route for `/admin/` by and be served from it.
 */
export function lenientReading (path: string): string | undefined {
  if (!READ_APART.test(path)) return undefined
  let p = path.replace(/%2f|%5c|\\/gi, '/').replace(/;[^/]*/g, '')
  if (p.indexOf('/.') !== -1) p = removeDotSegments(p)
  p = p.replace(/\/{2,}/g, '/')
  return p === path ? undefined : p
}
