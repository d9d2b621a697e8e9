// A route's access control: `allow` / `deny` address lists and `basicAuth`
// (users with scrypt hashes, never passwords). Kept apart from routes.ts,
// which only lists the keys and spreads what this returns.
import { parseScryptHash } from '../../auth/password.js'
import { DEFAULTS, type BasicAuthConfig, type RouteConfig } from '../schema.js'
import type { Field, MapView, Reader } from '../reader.js'
import { Unique, ipList, opt } from './common.js'

export const ACCESS_KEYS = ['allow', 'deny', 'basicAuth'] as const

const BASIC_AUTH_KEYS = ['realm', 'users', 'forward'] as const
const USER_KEYS = ['name', 'passwordHash'] as const

/** The route's `allow`, `deny` and `basicAuth`, defaults filled. */
export function routeAccess (r: Reader, m: MapView): Pick<RouteConfig, 'allow' | 'deny' | 'basicAuth'> {
  const d = DEFAULTS.route
  const allow = opt(m, 'allow', (v) => ipList(r, v), d.allow)
  const deny = opt(m, 'deny', (v) => ipList(r, v), d.deny)
  const f = m.get('basicAuth')
  const basicAuth = f === undefined ? undefined : readBasicAuth(r, f)
  return { allow, deny, ...(basicAuth === undefined ? {} : { basicAuth }) }
}

function readBasicAuth (r: Reader, f: Field): BasicAuthConfig | undefined {
  const m = r.map(f, BASIC_AUTH_KEYS)
  if (m === undefined) return undefined
  const d = DEFAULTS.route.basicAuth
  const realm = opt(m, 'realm', (v) => realmOf(r, v), d.realm)
  const forward = opt(m, 'forward', (v) => r.boolean(v), d.forward)
  const usersField = m.require('users')
  if (usersField === undefined) return undefined
  const items = r.seq(usersField)
  if (items === undefined) return undefined
  if (items.length === 0) return r.expected(usersField, 'at least one user (`- { name: alice, passwordHash: … }`)')
  const users: Array<{ name: string, passwordHash: string }> = []
  const names = new Unique(r, 'user name')
  for (const item of items) {
    const u = r.map(item, USER_KEYS)
    if (u === undefined) continue
    const nameField = u.require('name')
    const hashField = u.require('passwordHash')
    const name = nameField === undefined ? undefined : r.text(nameField)
    // RFC 7617 §2: the user-id may not contain a colon.
    if (name !== undefined && name.includes(':')) r.expected(nameField!, 'a user name without `:`')
    const passwordHash = hashField === undefined ? undefined : hashOf(r, hashField)
    if (name === undefined || name.includes(':') || passwordHash === undefined) continue
    if (names.add(name, nameField!, item.path)) users.push({ name, passwordHash })
  }
  if (users.length !== items.length) return undefined
  return { realm, users, forward }
}

/** Written inside a quoted-string: no quotes, backslashes or control characters. */
function realmOf (r: Reader, f: Field): string | undefined {
  const s = r.text(f)
  if (s === undefined) return undefined
  if (/["\\\x00-\x1f\x7f]/.test(s)) return r.expected(f, 'a realm without quotes, backslashes or control characters')
  return s
}

function hashOf (r: Reader, f: Field): string | undefined {
  const s = r.text(f)
  if (s === undefined) return undefined
  const h = parseScryptHash(s)
  if (typeof h === 'string') {
    // Never echo the value: a password written by mistake would land in the log.
    r.report(f.path, f.at, `not a password hash: ${h}`)
    return undefined
  }
  return s
}
