// read-your-writes (a route's `consistency: { readYourWrites: { window } }`):
// after a client's successful write on a shard, its reads on that shard go
// to the shard's primary, past the cache, until the window ends. The proxy
// keeps nothing: the client carries the deadlines in one cookie, signed
// (HMAC-SHA256) with a key every instance and worker shares, so any of them
// can honour it. The cookie names no backend or shard: each is a short hash.
//
//   switchyard_ryw=<tag>-<deadline ms>_<tag>-<deadline ms>.<signature>
import { createHash, createHmac, timingSafeEqual } from 'node:crypto'

/** Shards one cookie remembers at most (the latest deadlines win). */
const MAX_ENTRIES = 8
const ENTRY = /^([0-9a-f]{12})-(\d{13,15})$/

export class ReadYourWrites {
  readonly cookieName: string
  readonly #key: Buffer
  readonly #tags = new Map<string, string>()

  constructor (key: string | Buffer, cookieName: string) {
    this.#key = typeof key === 'string' ? Buffer.from(key, 'utf8') : key
    this.cookieName = cookieName
  }

  /** The opaque tag of a shard (`backend/shard`), the same in every instance. */
  tag (identity: string): string {
    let t = this.#tags.get(identity)
    if (t === undefined) {
      t = createHash('sha256').update(identity).digest('hex').slice(0, 12)
      this.#tags.set(identity, t)
    }
    return t
  }

  /** The verified, unexpired deadlines a cookie value carries, by tag; empty when it is missing, forged or expired. */
  read (value: string | undefined, now: number): Map<string, number> {
    const out = new Map<string, number>()
    if (value === undefined) return out
    const dot = value.lastIndexOf('.')
    if (dot <= 0) return out
    const payload = value.slice(0, dot)
    if (!this.#verify(payload, value.slice(dot + 1))) return out
    for (const part of payload.split('_')) {
      const m = ENTRY.exec(part)
      if (m === null) continue
      const deadline = Number(m[2])
      if (deadline > now) out.set(m[1]!, deadline)
    }
    return out
  }

  /** The cookie value after a successful write on `tag`: its deadline moved to `deadline`, expired ones dropped. */
  write (entries: ReadonlyMap<string, number>, tag: string, deadline: number): string {
    const all = new Map(entries)
    all.delete(tag)
    all.set(tag, deadline)
    const kept = [...all].sort((a, b) => b[1] - a[1]).slice(0, MAX_ENTRIES)
    const payload = kept.map(([t, d]) => `${t}-${d}`).join('_')
    return `${payload}.${this.#sign(payload)}`
  }

  /** The Set-Cookie field for `value`, living as long as the window. */
  setCookie (value: string, windowMs: number, secure: boolean): string {
    return `${this.cookieName}=${value}; Path=/; Max-Age=${Math.ceil(windowMs / 1000)}; HttpOnly; SameSite=Lax${secure ? '; Secure' : ''}`
  }

  #sign (payload: string): string {
    return createHmac('sha256', this.#key).update(payload).digest('base64url').slice(0, 22)
  }

  #verify (payload: string, sig: string): boolean {
    const want = Buffer.from(this.#sign(payload))
    const got = Buffer.from(sig)
    return got.length === want.length && timingSafeEqual(got, want)
  }
}
