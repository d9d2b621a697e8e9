// The top-level `redis` section: the Redis server the instances share (rate
// limits with `store: redis`). Only its address and manners are read here;
// nothing connects to it at load.

import { DEFAULTS } from '../schema.js'
import type { RedisConfig } from '../schema.js'
import type { Field, MapView } from '../reader.js'
import { type Context, duration, opt } from './common.js'

const KEYS = ['url', 'keyPrefix', 'timeout'] as const

/** Absent: no Redis; a mapping with at least `url`. */
export function readRedis (ctx: Context, root: MapView): RedisConfig | undefined {
  const f = root.get('redis')
  return f === undefined ? undefined : redis(ctx, f)
}

function redis (ctx: Context, f: Field): RedisConfig | undefined {
  const r = ctx.r
  const m = r.map(f, KEYS)
  if (m === undefined) return undefined
  const urlField = m.require('url')
  const url = urlField === undefined ? undefined : redisUrl(ctx, urlField)
  const d = DEFAULTS.redis
  const keyPrefix = opt(m, 'keyPrefix', (v) => r.string(v), d.keyPrefix)
  const timeout = opt(m, 'timeout', (v) => duration(r, v, 1), d.timeout)
  return url === undefined ? undefined : { url, keyPrefix, timeout }
}

function redisUrl (ctx: Context, f: Field): string | undefined {
  const s = ctx.r.text(f)
  if (s === undefined) return undefined
  let u: URL | undefined
  try {
    u = new URL(s)
  } catch {}
  if (u === undefined || (u.protocol !== 'redis:' && u.protocol !== 'rediss:') || u.hostname === '') {
    // The URL may carry a password: say what is wrong without echoing it.
    ctx.r.report(f.path, f.at, 'expected a URL like redis://host:6379 or rediss://user:password@host:6380/0')
    return undefined
  }
  return s
}
