// The request's authority (Host / :authority / absolute-form target), parsed
// once into its parts. RFC 9110 §7.2 says Host is `uri-host [ ":" port ]` as
// RFC 3986 §3.2.2 defines it: a reg-name, an IPv4 address or a bracketed IPv6
// address, and a decimal port. Anything else (a `/`, `?`, `@`, space, a second
// colon, a port above 65535, an empty label) is a malformed request, never
// something to route or key the cache on. Pure.
import { isIPv6 } from 'node:net'

export interface Authority {
  /** Lower-cased host without port or trailing dot; IPv6 keeps its brackets. */
  readonly host: string
  /** The port as sent (leading zeros dropped), or undefined when none was given. */
  readonly port: number | undefined
  /** `host[:port]`: what is forwarded as Host and X-Forwarded-Host. */
  readonly value: string
}

// unreserved / sub-delims, plus '%' for pct-encoded (RFC 3986 §3.2.2 reg-name).
const REG_NAME = new Uint8Array(128)
for (const c of "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=%") REG_NAME[c.charCodeAt(0)] = 1

/** Parse a Host value; undefined when it is not `host[:port]`. */
export function parseAuthority (raw: string): Authority | undefined {
  const len = raw.length
  if (len === 0 || len > 255 + 6) return undefined
  let hostEnd: number
  let host: string
  if (raw.charCodeAt(0) === 91) { // '['
    const close = raw.indexOf(']')
    if (close === -1) return undefined
    const addr = raw.slice(1, close)
    // No zone ids or IPvFuture: neither names an origin server.
    if (!isIPv6(addr) || addr.includes('%')) return undefined
    host = `[${addr.toLowerCase()}]`
    hostEnd = close + 1
  } else {
    hostEnd = raw.indexOf(':')
    if (hostEnd === -1) hostEnd = len
    if (hostEnd === 0) return undefined
    let lower = false
    for (let i = 0; i < hostEnd; i++) {
      const c = raw.charCodeAt(i)
      if (c >= 128 || REG_NAME[c] === 0) return undefined
      // An empty label (`.a`, `a..b`, `a..`): no name a DNS or TLS peer has, and
      // origins that drop a trailing dot would read `admin.test..` as a host
      // route for admin.test never saw (NGINX answers 400 too).
      if (c === 46 && (i === 0 || raw.charCodeAt(i - 1) === 46)) return undefined
      if (c >= 65 && c <= 90) lower = true
      if (c === 37 && !(isHex(raw.charCodeAt(i + 1)) && isHex(raw.charCodeAt(i + 2)) && i + 2 < hostEnd)) return undefined
    }
    host = raw.slice(0, hostEnd)
    if (lower) host = host.toLowerCase()
    if (host.charCodeAt(host.length - 1) === 46 && host.length > 1) host = host.slice(0, -1) // trailing dot
  }
  let port: number | undefined
  if (hostEnd < len) {
    if (raw.charCodeAt(hostEnd) !== 58) return undefined // ':'
    const digits = len - hostEnd - 1
    if (digits > 5) return undefined
    if (digits > 0) {
      let n = 0
      for (let i = hostEnd + 1; i < len; i++) {
        const c = raw.charCodeAt(i)
        if (c < 48 || c > 57) return undefined
        n = n * 10 + (c - 48)
      }
      if (n > 65535) return undefined
      port = n
    }
  }
  const value = port === undefined ? host : `${host}:${port}`
  return { host, port, value }
}

function isHex (c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102)
}

/** `host[:port]` for a cache key: the scheme's default port is the same origin as no port (RFC 9110 §4.2.3). */
export function originOf (scheme: 'http' | 'https', a: Authority): string {
  if (a.port === undefined || a.port === (scheme === 'https' ? 443 : 80)) return a.host
  return `${a.host}:${a.port}`
}
