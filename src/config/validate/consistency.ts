// The top-level `readYourWrites`: how the read-your-writes cookie of routes
// with `consistency: { readYourWrites }` is signed and named.
import { randomBytes } from 'node:crypto'
import { DEFAULTS } from '../schema.js'
import type { ReadYourWritesConfig, RouteConfig } from '../schema.js'
import type { MapView } from '../reader.js'
import { type Context, cookieName, opt } from './common.js'

const KEYS = ['key', 'cookie'] as const

/**
 * The key when none is written: made once per process (never changed), so a
 * reload keeps accepting the cookies already issued, and the same text loads
 * to the same config. A cluster's workers get their primary's in the config.
 */
const PROCESS_KEY = randomBytes(32).toString('hex')

/** Present when a route uses readYourWrites (or the block is written, to be checked). */
export function readReadYourWrites (ctx: Context, m: MapView, routes: readonly RouteConfig[]): ReadYourWritesConfig | undefined {
  const r = ctx.r
  const used = routes.some((x) => typeof x.consistency === 'object')
  const f = m.get('readYourWrites')
  const v = f === undefined ? undefined : r.map(f, KEYS)
  const cookie = v === undefined ? DEFAULTS.readYourWrites.cookie : opt(v, 'cookie', (c) => cookieName(r, c), DEFAULTS.readYourWrites.cookie)
  const keyField = v?.get('key')
  let key = keyField === undefined ? undefined : r.string(keyField)
  if (keyField !== undefined && key !== undefined && Buffer.byteLength(key) < 16) {
    r.report(keyField.path, keyField.at, 'a key of at least 16 bytes (e.g. `openssl rand -hex 32`, given as ${ENV} or ${file:…})')
    key = undefined
  }
  if (!used && f === undefined) return undefined
  if (key !== undefined) return { key, keyGenerated: false, cookie }
  if (used && keyField === undefined) {
    r.warn(f?.path ?? 'readYourWrites', f?.at ?? null, 'readYourWrites cookies are signed with a key made at start: only this process ' +
      'and its workers accept them; set readYourWrites.key (the same in every instance) for a fleet')
  }
  return { key: PROCESS_KEY, keyGenerated: true, cookie }
}
