// Pure checks for the string forms the config accepts: names, HTTP tokens,
// host names, bind addresses, upstream URLs, IPs/CIDRs. Each returns the
// normalized value, or undefined when the form is wrong.

import { parseAuthority } from '../authority.js'
import { BlockList, isIP, isIPv4, isIPv6 } from 'node:net'

/** RFC 9110 `token`: header field names and methods. */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/
/** Listener, route, backend, shard and server names: safe in logs and metric labels. */
const NAME = /^[A-Za-z0-9_.:-]+$/
const LABEL = /^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$/
const PORT = /^\d{1,5}$/

/**
 * A Structured Fields token (RFC 8941 §3.3.4) as Switchyard accepts it for
 * `Cache-Status` names: a letter or `*`, then letters, digits, `_ - . : % *`
 * and `/`. (A subset of sf-token: the rarer tchar punctuation is left out.)
 */
const SF_TOKEN = /^[A-Za-z*][A-Za-z0-9_\-.:%*/]*$/

export const NAME_FORM = 'a name of letters, digits, `_`, `-`, `.` and `:`'
export const BIND_FORMS = 'host:port like 127.0.0.1:8443, [::1]:8443, :8080 or localhost:8080 (port 0-65535)'
/** Shown (without the value: it is a secret) when an admin token is refused. */
export const ADMIN_TOKEN_FORM = 'a token of at least 16 visible ASCII characters, no spaces'
export const ADMIN_TOKEN_MIN = 16
export const SF_TOKEN_FORM = 'a structured-field token: a letter or `*`, then letters, digits, `_`, `-`, `.`, `:`, `%`, `*` or `/`'

/**
 * The methods a route may match: RFC 9110 §9 (GET, HEAD, POST, PUT, DELETE,
 * CONNECT, OPTIONS, TRACE), PATCH (RFC 5789) and PURGE (cache invalidation,
 * as Varnish and Switchyard's cache take it).
 */
export const HTTP_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH', 'PURGE'] as const

export function isHttpMethod (s: string): boolean {
  return (HTTP_METHODS as readonly string[]).includes(s)
}

export function isName (s: string): boolean {
  return NAME.test(s)
}

export function isToken (s: string): boolean {
  return TOKEN.test(s)
}

/** A cache's name in `Cache-Status` (RFC 9211), which must be an sf-token. */
export function isSfToken (s: string): boolean {
  return SF_TOKEN.test(s)
}

/** An admin bearer token: visible ASCII (no spaces), long enough not to be guessed. */
export function isAdminToken (s: string): boolean {
  return s.length >= ADMIN_TOKEN_MIN && /^[!-~]+$/.test(s)
}

/** A header value Node and our HTTP/1.1 client will send (their ERR_INVALID_CHAR rule): no control character but tab. */
export function isSafeHeaderValue (s: string): boolean {
  return !/[^\t\x20-\x7e\x80-\xff]/.test(s)
}

/** Why isSafeHeaderValue refused a value, for a config error. */
export const HEADER_VALUE_RULE = 'a header value may hold tabs, visible ASCII and characters U+0080 to U+00FF only (RFC 9110 field-value: no control characters such as CR, LF, NUL or ESC)'

/** A DNS name (lower-cased by the caller); the last label may not be all digits (that is an IPv4 typo). */
export function isHostname (s: string): boolean {
  if (s.length === 0 || s.length > 253) return false
  const labels = s.split('.')
  return labels.every((l) => LABEL.test(l)) && !/^\d+$/.test(labels[labels.length - 1] as string)
}

/**
 * A route or SNI host: exact `api.example.com`, an IP literal, or a
 * leading wildcard `*.example.com`. Lower-cased. Undefined if invalid.
 */
export function normalizeHostPattern (s: string): string | undefined {
  const host = s.toLowerCase()
  const exact = host.startsWith('*.') ? host.slice(2) : host
  if (isHostname(exact) || (exact === host && isIPv4(host))) return host
  if (exact === host && host.startsWith('[') && host.endsWith(']') && isIPv6(host.slice(1, -1))) return host
  return undefined
}

/**
 * A Host header value for probes: a DNS name, IPv4 or [IPv6] literal, with an
 * optional port 1-65535. Lower-cased. Undefined if invalid.
 */
export function normalizeHostHeader (s: string): string | undefined {
  // The request parser's own host[:port] rules, stricter here: a DNS name or
  // an IP literal (no other reg-name characters), and a port that exists.
  if (s.endsWith(':') || s.endsWith('.')) return undefined
  const a = parseAuthority(s)
  if (a === undefined || a.port === 0) return undefined
  if (!a.host.startsWith('[') && !isIPv4(a.host) && !isHostname(a.host)) return undefined
  return a.value
}

/** An origin-form request target: starts with `/`, visible ASCII only (percent-encode the rest), no fragment; a query is fine. */
export function isRequestPath (s: string): boolean {
  return /^\/[!-~]*$/.test(s) && !s.includes('#')
}

/** A cookie `Path` attribute: starts with `/`, visible ASCII, no `;` (RFC 6265 path-value). */
export function isCookiePath (s: string): boolean {
  return /^\/[!-~]*$/.test(s) && !s.includes(';')
}

/** `127.0.0.1:8443`, `[::1]:8443`, `:8080` (all IPv4 interfaces), `localhost:8080`. */
export function parseBind (s: string): { host: string, port: number } | undefined {
  let host: string
  let portText: string
  if (s.startsWith('[')) {
    const end = s.indexOf(']')
    if (end < 0 || s[end + 1] !== ':') return undefined
    host = s.slice(1, end)
    if (!isIPv6(host)) return undefined
    portText = s.slice(end + 2)
  } else {
    const colon = s.lastIndexOf(':')
    if (colon < 0) return undefined
    host = s.slice(0, colon)
    portText = s.slice(colon + 1)
    if (host === '') host = '0.0.0.0'
    else if (!isIPv4(host) && !isHostname(host.toLowerCase())) return undefined
  }
  if (!PORT.test(portText)) return undefined
  const port = Number(portText)
  return port <= 65535 ? { host, port } : undefined
}

/** Why an upstream URL is rejected, or its normalized `scheme://host:port`. */
export type UrlCheck = { ok: true, url: string } | { ok: false, reason: string }

export function normalizeServerUrl (s: string): UrlCheck {
  let u: URL
  try {
    u = new URL(s)
  } catch {
    return { ok: false, reason: 'expected an http(s) URL' }
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return { ok: false, reason: 'expected an http(s) URL' }
  if (u.hostname === '') return { ok: false, reason: 'expected an http(s) URL with a host' }
  if (u.username !== '' || u.password !== '') return { ok: false, reason: 'credentials are not allowed in a server URL' }
  if (u.pathname !== '/' || u.search !== '' || u.hash !== '') {
    return { ok: false, reason: 'a server URL has no path, query or fragment (use a route `rewrite` for paths)' }
  }
  const port = u.port === '' ? (u.protocol === 'https:' ? 443 : 80) : Number(u.port)
  // WHATWG `hostname` already keeps IPv6 in brackets and lower-cases names.
  return { ok: true, url: `${u.protocol}//${u.hostname}:${port}` }
}

/** An IP or CIDR (v4 or v6), checked by loading it into a BlockList. */
export function isIpOrCidr (s: string): boolean {
  const parts = s.split('/')
  const addr = parts[0] as string
  const family = isIP(addr)
  if (family === 0 || parts.length > 2) return false
  const type = family === 4 ? 'ipv4' : 'ipv6'
  const list = new BlockList()
  try {
    const prefix = parts[1]
    if (prefix === undefined) {
      list.addAddress(addr, type)
      return true
    }
    if (!/^\d{1,3}$/.test(prefix) || Number(prefix) > (family === 4 ? 32 : 128)) return false
    list.addSubnet(addr, Number(prefix), type)
    return true
  } catch {
    return false
  }
}

const LOOPBACK = new BlockList()
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4')
LOOPBACK.addAddress('::1', 'ipv6')

/**
 * A host reachable only from this machine: 127.0.0.0/8, ::1 (written long,
 * bracketed or IPv4-mapped), `localhost` and its subdomains (RFC 6761). The
 * one loopback test: the admin bind rule and the admin's Host check use it.
 * Anything else, including the wildcards 0.0.0.0 and ::, is not.
 */
export function isLoopback (host: string): boolean {
  let h = host.trim().toLowerCase()
  if (h.startsWith('[') && h.endsWith(']')) h = h.slice(1, -1)
  if (h === 'localhost' || h.endsWith('.localhost')) return true
  if (h.startsWith('::ffff:') && isIP(h.slice(7)) === 4) h = h.slice(7)
  const family = isIP(h)
  return family !== 0 && LOOPBACK.check(h, family === 4 ? 'ipv4' : 'ipv6')
}
