// Password hashes for basicAuth: scrypt from node:crypto, in one text form
// `$scrypt$N=16384,r=8,p=1$<salt base64>$<hash base64>` (the PHC string
// layout). Only hashes are ever configured; verifying compares in constant
// time. Pure apart from the CPU scrypt costs (~30-60 ms at N=16384).
import { randomBytes, scrypt, scryptSync, timingSafeEqual } from 'node:crypto'

export interface ScryptHash {
  readonly N: number
  readonly r: number
  readonly p: number
  readonly salt: Buffer
  readonly hash: Buffer
}

/** Parameters of new hashes: OWASP's scrypt minimum (N=2^14 needs 16 MiB). */
export const SCRYPT_DEFAULTS: Readonly<ScryptParams> = Object.freeze({ N: 16384, r: 8, p: 1, saltBytes: 16, hashBytes: 32 })

export interface ScryptParams { N: number, r: number, p: number, saltBytes: number, hashBytes: number }

const FORM = /^\$scrypt\$N=(\d+),r=(\d+),p=(\d+)\$([A-Za-z0-9+/]+={0,2})\$([A-Za-z0-9+/]+={0,2})$/

/** The hash `s` stands for, or why it is not one (for the config error). */
export function parseScryptHash (s: string): ScryptHash | string {
  const m = FORM.exec(s)
  if (m === null) return 'expected `$scrypt$N=16384,r=8,p=1$<salt base64>$<hash base64>` (make one with `switchyard hash-password`)'
  const N = Number(m[1])
  const r = Number(m[2])
  const p = Number(m[3])
  // N a power of two ≥ 2; bounded so a hash cannot make each verify take seconds or exhaust memory.
  if (N < 2 || (N & (N - 1)) !== 0 || N > 1 << 20) return 'N must be a power of two from 2 to 1048576'
  if (r < 1 || r > 32 || p < 1 || p > 16) return 'r must be 1-32 and p 1-16'
  const salt = Buffer.from(m[4]!, 'base64')
  const hash = Buffer.from(m[5]!, 'base64')
  if (salt.length < 8) return 'the salt must be at least 8 bytes'
  if (hash.length < 16 || hash.length > 64) return 'the hash must be 16 to 64 bytes'
  return { N, r, p, salt, hash }
}

export function formatScryptHash (h: ScryptHash): string {
  return `$scrypt$N=${h.N},r=${h.r},p=${h.p}$${h.salt.toString('base64')}$${h.hash.toString('base64')}`
}

function maxmem (h: Pick<ScryptHash, 'N' | 'r' | 'p'>): number {
  return 128 * h.N * h.r * (h.p + 2) + (1 << 20)
}

/** A new hash of `password` with a random salt (the CLI's hash-password). */
export function hashPassword (password: string, params: Partial<ScryptParams> = {}): string {
  const o = { ...SCRYPT_DEFAULTS, ...params }
  const salt = randomBytes(o.saltBytes)
  const hash = scryptSync(password.normalize('NFC'), salt, o.hashBytes, { N: o.N, r: o.r, p: o.p, maxmem: maxmem(o) })
  return formatScryptHash({ N: o.N, r: o.r, p: o.p, salt, hash })
}

/** Whether `password` matches `h`: scrypt on the thread pool, then a constant-time compare. */
export function verifyPassword (password: string, h: ScryptHash): Promise<boolean> {
  return new Promise((resolve, reject) => {
    scrypt(password.normalize('NFC'), h.salt, h.hash.length, { N: h.N, r: h.r, p: h.p, maxmem: maxmem(h) }, (err, derived) => {
      if (err !== null) reject(err)
      else resolve(timingSafeEqual(derived, h.hash))
    })
  })
}

/** verifyPassword, blocking: only for `explain`, never on the request path. */
export function verifyPasswordSync (password: string, h: ScryptHash): boolean {
  return timingSafeEqual(scryptSync(password.normalize('NFC'), h.salt, h.hash.length, { N: h.N, r: h.r, p: h.p, maxmem: maxmem(h) }), h.hash)
}
