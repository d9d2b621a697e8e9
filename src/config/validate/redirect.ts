// `redirect` on a listener or a route: scheme, status, host, port, path, each
// checked so the Location built from them is always a valid URI reference;
// and on a listener, a redirect that sends every request back to where it
// came from (a loop) is a mistake.

import { isIPv6 } from 'node:net'
import { DEFAULTS } from '../schema.js'
import type { RedirectConfig, RedirectStatus } from '../schema.js'
import type { Field, Reader } from '../reader.js'
import { parseAuthority } from '../../authority.js'

const KEYS = ['scheme', 'status', 'host', 'port', 'path'] as const
const SCHEMES = ['http', 'https'] as const
const STATUSES: readonly number[] = [301, 302, 307, 308]

/** The `redirect` mapping at `f`; undefined (and reported) when it is not one. */
export function readRedirect (r: Reader, f: Field): RedirectConfig | undefined {
  const m = r.map(f, KEYS)
  if (m === undefined) return undefined
  const fields = { scheme: m.get('scheme'), host: m.get('host'), port: m.get('port'), path: m.get('path') }
  const scheme = fields.scheme === undefined ? undefined : r.oneOf(fields.scheme, SCHEMES)
  const statusField = m.get('status')
  let status: RedirectStatus = DEFAULTS.route.redirect.status
  if (statusField !== undefined) {
    const n = r.scalar(statusField)
    if (typeof n === 'number' && STATUSES.includes(n)) status = n as RedirectStatus
    else r.expected(statusField, '301, 302, 307 or 308 (307 and 308 keep the method and body)')
  }
  const host = fields.host === undefined ? undefined : redirectHost(r, fields.host)
  const port = fields.port === undefined ? undefined : r.integer(fields.port, 1, 65535)
  const path = fields.path === undefined ? undefined : redirectPath(r, fields.path)
  // Only `status` written (an unknown key is reported as such).
  if (m.entries().every((e) => e.key === 'status')) {
    r.report(f.path, f.at, 'a redirect needs at least one of `scheme`, `host`, `port` or `path` (else it sends the client back where it was)')
  }
  return {
    status,
    ...(scheme === undefined ? {} : { scheme }),
    ...(host === undefined ? {} : { host }),
    ...(port === undefined ? {} : { port }),
    ...(path === undefined ? {} : { path })
  }
}

/**
 * A listener's redirect whose Location is always the request's own URL:
 * same scheme as the listener, no host or path change, and the port
 * unchanged (absent, or the listener's own). Reported at the redirect.
 */
export function checkListenerLoop (r: Reader, f: Field, c: RedirectConfig, proto: 'http' | 'https', port: number): void {
  if ((c.scheme ?? proto) !== proto || c.host !== undefined || c.path !== undefined) return
  if (c.port !== undefined && c.port !== port) return
  r.report(f.path, f.at, `this redirect sends every request back to this ${proto} listener unchanged (a redirect loop): ` +
    `change \`scheme\`${proto === 'http' ? ' (to https)' : ''}, \`host\`, \`port\` or \`path\``)
}

function redirectHost (r: Reader, f: Field): string | undefined {
  const s = r.text(f)
  if (s === undefined) return undefined
  const a = parseAuthority(isIPv6(s) ? `[${s}]` : s)
  if (a === undefined || a.port !== undefined) return r.expected(f, 'a host name or IP address without a port (use `port`), like example.com, 192.0.2.1 or ::1')
  return a.host
}

function redirectPath (r: Reader, f: Field): string | undefined {
  const s = r.string(f)
  if (s === undefined) return undefined
  // Visible ASCII only: it goes into the Location field as written.
  if (!s.startsWith('/') || s.startsWith('//') || !/^[\x21-\x7e]*$/.test(s) || /[?#]/.test(s)) {
    return r.expected(f, 'a path starting with one `/` (visible ASCII, no spaces, `?` or `#`; the query is kept from the request)')
  }
  return s
}
