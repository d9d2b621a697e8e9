// The request line and Host, parsed once into what every later step uses:
// the authority (routing, cache key, Host, X-Forwarded-Host) and the
// normalised path (routing, cache key, upstream). Shared by ordinary requests
// and upgrades. Pure.
import { Errors, type ErrorKind } from '../errors.js'
import type { PathNormalizationConfig } from '../config/schema.js'
import { parseAuthority, type Authority } from '../authority.js'
import { countFields, firstValue, requestField } from '../fields.js'
import { normalizePath } from './path.js'

export interface RequestTarget {
  readonly authority: Authority
  /** Normalised path, no query (`*` for `OPTIONS *`). */
  readonly path: string
  /** Normalised path + the query as sent. */
  readonly target: string
}

export interface TargetError {
  readonly error: ErrorKind
  /** Why, for the log; never sent. */
  readonly detail: string
}

/**
 * Bytes a request target may hold: visible ASCII (RFC 3986; non-ASCII is
 * percent-encoded), never controls, spaces or raw 8-bit bytes, which
 * node:http's parser refuses on HTTP/1.1 (HPE_INVALID_URL): the same request
 * gets the same 400 over either protocol, and origins never see raw UTF-8
 * they might read apart.
 */
const BAD_TARGET = /[^\x21-\x7e]/

/**
 * Do two authorities name the same origin? The scheme's default port
 * written on one side only is the same (`good.test` and `good.test:443` over
 * https, not `good.test:80`, which the origin would be told instead), and
 * the port on both sides is checked when both have one.
 */
function sameAuthority (x: string, y: string, defaultPort: number): boolean {
  const a = parseAuthority(x)
  const b = parseAuthority(y)
  if (a === undefined || b === undefined || a.host !== b.host) return false
  if (a.port === b.port) return true
  return (a.port === undefined || b.port === undefined) && (a.port ?? b.port) === defaultPort
}

/**
 * `url` is the request target as received (h1: origin-, absolute- or
 * asterisk-form; h2: `:path`); `h2Authority` the h2 `:authority` (undefined
 * on HTTP/1.1). RFC 9112 §3.2 (one Host), §3.2.2 (absolute-form wins over
 * Host), RFC 9113 §8.3.1 (Host agrees with :authority).
 */
export function parseRequestTarget (method: string, url: string, raw: readonly string[], h2Authority: string | undefined,
  paths: PathNormalizationConfig): RequestTarget | TargetError {
  if (method === 'CONNECT') return { error: Errors.METHOD_NOT_ALLOWED, detail: 'CONNECT' }
  const hosts = countFields(raw, 'host')
  if (hosts > 1) return bad('more than one Host field')
  let target = url
  let authority: string | undefined
  if (h2Authority !== undefined) {
    // node:http2 checks the pseudo-headers' form, not their bytes.
    if (BAD_TARGET.test(target)) return bad('control character, space or non-ASCII byte in :path')
    const host = hosts === 1 ? requestField(raw, 'host') : undefined
    authority = h2Authority === '' ? host : h2Authority
    const defaultPort = firstValue(raw, ':scheme') === 'http' ? 80 : 443
    if (host !== undefined && h2Authority !== '' && host !== h2Authority && !sameAuthority(host, h2Authority, defaultPort)) {
      return bad('Host and :authority disagree')
    }
  } else if (target.charCodeAt(0) !== 47 && target !== '*') {
    const m = /^https?:\/\//i.exec(target)
    if (m === null) return bad('request target is neither a path nor an absolute http(s) URI')
    const start = m[0].length
    let end = target.length
    for (let i = start; i < target.length; i++) {
      const c = target.charCodeAt(i)
      if (c === 47 || c === 63 || c === 35) { end = i; break } // '/' '?' '#'
    }
    authority = target.slice(start, end)
    // RFC 9112 §3.2.4: OPTIONS of a URI with an empty path and no query is the server-wide one, `*`.
    target = end === target.length ? (method === 'OPTIONS' ? '*' : '/') : target.slice(end)
    if (target.charCodeAt(0) !== 47 && target !== '*') target = `/${target}` // `?q` → `/?q`
  } else {
    authority = requestField(raw, 'host')
  }
  if (authority === undefined || authority === '') return bad('no Host')
  const parsed = parseAuthority(authority)
  if (parsed === undefined) return bad('Host is not host[:port]')
  if (target.charCodeAt(0) !== 47) {
    if (target === '*' && method === 'OPTIONS') return { authority: parsed, path: '*', target: '*' }
    // RFC 9112 §3.2.4: the asterisk-form is OPTIONS's alone.
    return bad(target === '*' ? `asterisk-form target with ${method} (only OPTIONS may use *)` : 'request target is not a path')
  }
  // RFC 9112 §3.2, RFC 9113 §8.3.1: a request target has no fragment. Kept,
  // `/admin#x` would miss a route for /admin and reach an origin that reads
  // /admin (HAProxy refuses it too, since CVE-2023-45539).
  if (target.indexOf('#') !== -1) return bad('fragment (#) in the request target')
  const q = target.indexOf('?')
  const path = q === -1 ? target : target.slice(0, q)
  // Not a path character (RFC 3986 §3.3), and one WHATWG URL parsers (Node's
  // URL, browsers, Express) read as '/': kept, `/admin\users` would miss the
  // routes of /admin/users and reach them anyway. `reject` and `decode` treat
  // it as an escaped slash (path.ts); `keep` keeps only what is escaped.
  if (paths.escapedSlashes === 'keep' && path.indexOf('\\') !== -1) return bad('backslash in the path')
  const normalized = normalizePath(path, paths)
  if (normalized === undefined) return bad('escaped slash in the path')
  // Tomcat, Jetty and Spring strip `;parameters` from each segment before
  // resolving dot-segments: `/x/..;/admin` would miss the routes of /admin and
  // be served as /admin there. A dot-segment with a parameter has no other use.
  if (normalized.indexOf(';') !== -1 && DOT_PARAMETER.test(normalized)) return bad('a dot-segment with a ;parameter in the path')
  return {
    authority: parsed,
    path: normalized,
    target: normalized === path ? target : q === -1 ? normalized : normalized + target.slice(q)
  }
}

/** An absolute http(s) URL as a live request target would be parsed. */
export interface ParsedUrl {
  readonly scheme: 'http' | 'https'
  readonly authority: Authority
  /** The normalised path, no query. */
  readonly path: string
  /** `?query` or ''. */
  readonly search: string
}

const NO_FIELDS: readonly string[] = []

/**
 * An absolute http(s) URL (an admin purge, a Location to invalidate), parsed
 * by the very code that parses a live absolute-form request target, so it
 * names the cache key live traffic uses. WHATWG's URL parser would not: it
 * percent-encodes `{`, `|`, `^`, `'` and `"`, and turns backslashes into
 * slashes, which live requests carry as they are. Spaces and non-ASCII
 * characters are percent-encoded (UTF-8), as a client sends them.
 */
export function parseAbsoluteUrl (url: string, paths: PathNormalizationConfig): ParsedUrl | undefined {
  const scheme = /^https:\/\//i.test(url) ? 'https' : /^http:\/\//i.test(url) ? 'http' : undefined
  if (scheme === undefined) return undefined
  let target: string
  try { target = url.replace(/[^\x21-\x7e]+/g, encodeURI) } catch { return undefined } // a lone surrogate
  // A URL's fragment is not part of the resource (a Location may carry one); a live request never does.
  const hash = target.indexOf('#')
  if (hash !== -1) target = target.slice(0, hash)
  const t = parseRequestTarget('GET', target, NO_FIELDS, undefined, paths)
  if ('error' in t) return undefined
  const q = t.target.indexOf('?')
  return { scheme, authority: t.authority, path: t.path, search: q === -1 ? '' : t.target.slice(q) }
}

/** `/..;` or `/.;`: a dot-segment once a server strips its parameter. */
const DOT_PARAMETER = /\/\.\.?;/

function bad (detail: string): TargetError {
  return { error: Errors.BAD_REQUEST, detail }
}
