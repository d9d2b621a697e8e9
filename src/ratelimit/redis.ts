// The Redis store: one limit across every process and instance on the same
// Redis. Each request is one round trip: a Lua script (GCRA, the same rule as
// gcra.ts's take(), on Redis's own clock so that the instances' clocks need
// not agree) reads and moves the bucket's TAT atomically and answers with
// the backlog, which verdictOf() reads. A bucket's key expires when it is
// full again.
//
// The connection is the shared RedisLink (src/redis/link.ts), which bounds
// every operation by redis.timeout and refuses at once while it is down.
// Redis down, slow (past that timeout) or answering nonsense never
// fails a request: that request is decided by the local store instead, and so
// is every request for the next RETRY_MS, so that a slow Redis does not add
// its timeout to each of them; then one more try. The switch to local and the
// return to Redis are logged once each and counted (onTransition), not once
// per request; the first answer after a start counts as a switch to Redis.
import { createHash } from 'node:crypto'
import type { RedisLink } from '../redis/link.js'
import { verdictOf, type Rate, type Verdict } from './gcra.js'
import type { RateLimitStore } from './store.js'

/** What the store needs of the Redis connection: GCRA_SCRIPT, run; and whether trying is worth it. */
export interface RedisEval {
  /** Runs the script on `keys` (under the link's key prefix) with `args`; rejects on any error, and past the timeout. */
  eval (keys: readonly string[], args: readonly (string | number)[]): Promise<unknown>
  /** Connected and ready; while false the store does not try. */
  readonly up: boolean
}

/** GCRA_SCRIPT as a command of the shared link's client (sent by SHA, loaded on first use), under its timeout. */
export function gcraOn (link: RedisLink): RedisEval {
  const gcra = link.script('switchyardRateLimit', GCRA_SCRIPT, 1)
  return {
    get up () { return link.up },
    eval: (keys, args) => link.run('ratelimit', (client) => gcra(client, keys, args))
  }
}

/**
 * GCRA on KEYS[1], which holds the TAT in µs of Redis's clock (TIME).
 * ARGV: interval and tolerance in µs. Answers {allowed 0|1, backlog µs}. The
 * TAT is written with %.0f: a bare number would be stored as `1.7e+15`.
 */
export const GCRA_SCRIPT = `
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat == nil or tat < now then tat = now end
local nextTat = tat + interval
if nextTat - now > tolerance then
  return {0, math.floor(tat - now)}
end
redis.call('SET', KEYS[1], string.format('%.0f', nextTat), 'PX', math.ceil((nextTat - now) / 1000))
return {1, math.floor(nextTat - now)}
`

export type StoreInUse = 'redis' | 'local'

/** After a failure, how long requests are decided locally before Redis is tried again. */
export const RETRY_MS = 1000

/** What the store logs with (a pino Logger is one). */
export interface StoreLog {
  warn (obj: object, msg: string): void
  info (obj: object, msg: string): void
}

export interface RedisStoreHooks {
  readonly log?: StoreLog
  /** The store in use changed: `local` after Redis failed, `redis` once it answers again. */
  readonly onTransition?: (to: StoreInUse) => void
  /** ms from a clock that only goes forward. Default: performance.now. */
  readonly now?: () => number
}

export class RedisStore implements RateLimitStore {
  readonly #link: RedisEval
  readonly #local: RateLimitStore
  readonly #hooks: RedisStoreHooks
  /** Nothing is shared until Redis first answers (a start before Redis is up is not a failure to log). */
  #inUse: StoreInUse = 'local'
  /** Until when (now()) requests skip Redis after a failure. */
  #retryAt = 0

  constructor (link: RedisEval, local: RateLimitStore, hooks: RedisStoreHooks = {}) {
    this.#link = link
    this.#local = local
    this.#hooks = hooks
  }

  /** Which store decides now. */
  get inUse (): StoreInUse { return this.#inUse }

  take (key: string, rate: Rate): Verdict | Promise<Verdict> {
    if (!this.#link.up) return this.#fallBack(key, rate, 'not connected')
    if (this.#inUse === 'local' && this.#now() < this.#retryAt) return this.#local.take(key, rate)
    return this.#link.eval([redisKey(key)], [rate.interval * 1000, rate.tolerance * 1000]).then(
      (reply) => {
        const v = verdictFrom(reply, rate)
        if (v === undefined) return this.#fallBack(key, rate, `unexpected script answer ${JSON.stringify(reply)}`)
        this.#use('redis')
        return v
      },
      (err: unknown) => this.#fallBack(key, rate, err instanceof Error ? err.message : String(err)))
  }

  #fallBack (key: string, rate: Rate, why: string): Verdict | Promise<Verdict> {
    this.#retryAt = this.#now() + RETRY_MS
    this.#use('local', why)
    return this.#local.take(key, rate)
  }

  #now (): number {
    return this.#hooks.now?.() ?? performance.now()
  }

  #use (to: StoreInUse, why?: string): void {
    if (this.#inUse === to) return
    this.#inUse = to
    if (to === 'local') this.#hooks.log?.warn({ reason: why }, 'rate limits fall back to the local limit: Redis is not answering')
    else this.#hooks.log?.info({}, 'rate limits are shared on Redis')
    this.#hooks.onTransition?.(to)
  }
}

/** The script's {allowed, backlog µs}, or undefined when it is not that. */
function verdictFrom (reply: unknown, rate: Rate): Verdict | undefined {
  if (!Array.isArray(reply) || reply.length !== 2) return undefined
  const [allowed, backlog] = reply as unknown[]
  if ((allowed !== 0 && allowed !== 1) || typeof backlog !== 'number' || !Number.isFinite(backlog)) return undefined
  return verdictOf(rate, allowed === 1, backlog / 1000)
}

/**
 * The bucket's key in Redis: `rl:` and a digest of the route and client, so
 * that client addresses, API keys and session cookies are not written into
 * key names (128 bits: collisions are not a concern).
 */
export function redisKey (key: string): string {
  return 'rl:' + createHash('sha256').update(key).digest('base64url').slice(0, 22)
}
