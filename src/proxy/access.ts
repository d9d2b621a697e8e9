// A route's access control, compiled once at load: allow/deny address lists
// (node:net BlockLists over the trusted client address) and HTTP Basic
// authentication (RFC 7617) against scrypt hashes. One check, right after
// the plan and before the rate limit, cache and upstream, so a cache hit
// never skips it. Routes without any of it have no RouteAccess at all.
import { createHash } from 'node:crypto'
import { BlockList, isIP } from 'node:net'
import { parseScryptHash, verifyPassword, verifyPasswordSync, type ScryptHash } from '../auth/password.js'
import type { BasicAuthConfig, RouteConfig } from '../config/schema.js'
import { Errors, type ErrorKind } from '../errors.js'
import { buildTrustList } from './trust.js'

/** Why the request is refused, and the fields its answer carries. */
export interface AccessDenial {
  readonly error: ErrorKind
  /** For the log; never sent. */
  readonly detail: string
  readonly fields: readonly string[]
}

export type AccessVerdict = AccessDenial | undefined

/** How many verified (user, password) pairs a route remembers. */
const VERIFIED_MAX = 1024

/** The route's access control, or undefined when it has none (no per-request work then). */
export function compileAccess (r: Pick<RouteConfig, 'allow' | 'deny' | 'basicAuth'>): RouteAccess | undefined {
  if (r.allow.length === 0 && r.deny.length === 0 && r.basicAuth === undefined) return undefined
  return new RouteAccess(r.allow, r.deny, r.basicAuth)
}

export class RouteAccess {
  readonly allow: BlockList | undefined
  readonly deny: BlockList | undefined
  readonly basicAuth: BasicAuth | undefined

  constructor (allow: readonly string[], deny: readonly string[], basicAuth: BasicAuthConfig | undefined) {
    this.allow = allow.length === 0 ? undefined : buildTrustList(allow)
    this.deny = deny.length === 0 ? undefined : buildTrustList(deny)
    this.basicAuth = basicAuth === undefined ? undefined : new BasicAuth(basicAuth)
  }

  /** The address lists' verdict for `client` (the trusted client address). */
  addressDenial (client: string): AccessVerdict {
    const family = isIP(client)
    // Not an address (a Unix socket peer): no list can vouch for it.
    if (family === 0) return this.allow === undefined && this.deny === undefined ? undefined : forbidden(`client ${JSON.stringify(client)} is not an IP address`)
    const f = family === 6 ? 'ipv6' : 'ipv4'
    if (this.deny?.check(client, f) === true) return forbidden(`client ${client} is in deny`)
    if (this.allow !== undefined && !this.allow.check(client, f)) return forbidden(`client ${client} is not in allow`)
    return undefined
  }

  /** Addresses first (a denied client's credentials are not even checked), then credentials. */
  check (client: string, authorization: string | undefined): AccessVerdict | Promise<AccessVerdict> {
    const denied = this.addressDenial(client)
    if (denied !== undefined || this.basicAuth === undefined) return denied
    return this.basicAuth.check(authorization)
  }
}

function forbidden (detail: string): AccessDenial {
  return { error: Errors.FORBIDDEN, detail, fields: [] }
}

/** What an Authorization field carries, as Basic credentials; a string says why it is not usable. */
export function basicCredentials (authorization: string | undefined): { user: string, password: string } | string {
  if (authorization === undefined) return 'no credentials'
  const m = /^basic +([A-Za-z0-9+/]+={0,2}) *$/i.exec(authorization)
  if (m === null) return 'not Basic credentials'
  const raw = Buffer.from(m[1]!, 'base64')
  // Round-trip check: Buffer.from ignores what is not base64 instead of refusing it.
  if (raw.toString('base64').replace(/=+$/, '') !== m[1]!.replace(/=+$/, '')) return 'malformed Basic credentials'
  const text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })
  let decoded: string
  try { decoded = text.decode(raw) } catch { return 'Basic credentials are not UTF-8' }
  const colon = decoded.indexOf(':')
  if (colon === -1) return 'malformed Basic credentials (no colon)'
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) }
}

/**
 * scrypt verifications one route runs at once. Each costs ~40 ms of CPU on
 * the thread pool and comes before the rate limit, so without a bound a flood
 * of wrong passwords would take every thread (and with them file and DNS
 * work) and queue without end; past it the answer is 503 with Retry-After.
 * Remembered credentials never wait for it.
 */
export const MAX_VERIFYING = 4

const BUSY: AccessDenial = Object.freeze({
  error: Errors.AUTH_BUSY, detail: `more than ${MAX_VERIFYING} password checks under way`, fields: Object.freeze([]) as readonly string[]
})

export class BasicAuth {
  readonly realm: string
  readonly forward: boolean
  readonly users: ReadonlyMap<string, { readonly text: string, readonly hash: ScryptHash }>
  /** The 401's challenge (RFC 7617 §2: realm, and the charset we decode with). */
  readonly challenge: readonly string[]
  /** Verified credentials, keyed by a digest of (user, password, hash): an LRU in Map order. */
  readonly #verified = new Map<string, true>()
  /** Verifications under way, by the same key (at most one per request in flight). */
  readonly #pending = new Map<string, Promise<boolean>>()
  /** An unknown user still costs one scrypt, so a miss does not tell names apart by time. */
  readonly #decoy: ScryptHash
  /** scrypt verifications running now (see MAX_VERIFYING). */
  #verifying = 0

  constructor (c: BasicAuthConfig) {
    this.realm = c.realm
    this.forward = c.forward
    const users = new Map<string, { text: string, hash: ScryptHash }>()
    for (const u of c.users) {
      const hash = parseScryptHash(u.passwordHash)
      if (typeof hash === 'string') throw new Error(`basicAuth user ${u.name}: ${hash}`) // the loader checks this
      users.set(u.name, { text: u.passwordHash, hash })
    }
    this.users = users
    const first = users.values().next().value!.hash
    this.#decoy = { ...first, salt: Buffer.alloc(first.salt.length, 1) }
    this.challenge = Object.freeze(['www-authenticate', `Basic realm="${c.realm}", charset="UTF-8"`])
  }

  unauthorized (detail: string): AccessDenial {
    return { error: Errors.UNAUTHORIZED, detail, fields: this.challenge }
  }

  /** Sync when it can be (no, malformed, remembered credentials); scrypt otherwise. */
  check (authorization: string | undefined): AccessVerdict | Promise<AccessVerdict> {
    const c = basicCredentials(authorization)
    if (typeof c === 'string') return this.unauthorized(c)
    const user = this.users.get(c.user)
    if (user === undefined) {
      if (this.#verifying >= MAX_VERIFYING) return BUSY
      return this.#scrypt(c.password, this.#decoy).then(() => this.unauthorized(`unknown user ${JSON.stringify(c.user)}`))
    }
    const key = credentialsKey(c.user, c.password, user.text)
    if (this.#verified.delete(key)) {
      this.#verified.set(key, true)
      return undefined
    }
    // Concurrent requests with the same new credentials (a browser opening several) share one scrypt.
    let pending = this.#pending.get(key)
    if (pending === undefined) {
      if (this.#verifying >= MAX_VERIFYING) return BUSY
      pending = this.#scrypt(c.password, user.hash).then((ok) => {
        this.#pending.delete(key)
        if (ok) {
          this.#verified.set(key, true)
          if (this.#verified.size > VERIFIED_MAX) this.#verified.delete(this.#verified.keys().next().value!)
        }
        return ok
      }, (err: unknown) => {
        this.#pending.delete(key)
        throw err
      })
      this.#pending.set(key, pending)
    }
    return pending.then((ok) => ok ? undefined : this.unauthorized(`wrong password for user ${JSON.stringify(c.user)}`))
  }

  /** One scrypt, counted against MAX_VERIFYING while it runs. */
  async #scrypt (password: string, hash: ScryptHash): Promise<boolean> {
    this.#verifying++
    try {
      return await verifyPassword(password, hash)
    } finally {
      this.#verifying--
    }
  }

  /** The verdict on `authorization` without the memory, blocking on scrypt: `explain` only. */
  explainCheck (authorization: string | undefined): AccessVerdict {
    const c = basicCredentials(authorization)
    if (typeof c === 'string') return this.unauthorized(c)
    const user = this.users.get(c.user)
    if (user === undefined) return this.unauthorized(`unknown user ${JSON.stringify(c.user)}`)
    return verifyPasswordSync(c.password, user.hash) ? undefined : this.unauthorized(`wrong password for user ${JSON.stringify(c.user)}`)
  }

  /** Whether these credentials were verified recently (tests). */
  remembered (authorization: string | undefined): boolean {
    const c = basicCredentials(authorization)
    if (typeof c === 'string') return false
    const user = this.users.get(c.user)
    if (user === undefined) return false
    return this.#verified.has(credentialsKey(c.user, c.password, user.text))
  }
}

/** A digest, so the LRU holds no password; the hash is in it so a changed hash forgets the old password. */
function credentialsKey (user: string, password: string, hash: string): string {
  return createHash('sha256').update(user).update('\0').update(password).update('\0').update(hash).digest('base64')
}

/** One line for `check` and `explain` (user names, never hashes); undefined when the route has no access control. */
export function describeAccess (r: Pick<RouteConfig, 'allow' | 'deny' | 'basicAuth'>): string | undefined {
  const parts: string[] = []
  if (r.deny.length > 0) parts.push(`deny ${r.deny.join(',')}`)
  if (r.allow.length > 0) parts.push(`allow ${r.allow.join(',')}`)
  const b = r.basicAuth
  if (b !== undefined) {
    parts.push(`basicAuth realm="${b.realm}" users=${b.users.map((u) => u.name).join(',')}` +
      (b.forward ? ' (Authorization forwarded)' : ' (Authorization not forwarded)'))
  }
  return parts.length === 0 ? undefined : parts.join('; ')
}
