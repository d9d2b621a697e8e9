// The rate-limit stores of one process, owned by the app: made when a config
// first needs them and kept across reloads, so that a reload neither resets
// anyone's bucket nor reconnects to an unchanged Redis. Nothing is made for a
// config without rate limits.
import { pino, type Logger } from 'pino'
import type { Config, RedisConfig } from '../config/schema.js'
import { RedisLink } from '../redis/link.js'
import { LocalStore } from './local.js'
import { RedisStore, gcraOn, type StoreInUse } from './redis.js'
import type { RateLimitStores } from './store.js'

export interface ProcessStoresDeps {
  readonly log?: Logger
  /** The Redis store switched to local, or back (count it). */
  readonly onTransition?: (to: StoreInUse) => void
  /** How to reach Redis (default: a RedisLink of its own). */
  readonly connect?: (cfg: RedisConfig, log: Logger) => RedisLink
}

export class ProcessStores {
  readonly #deps: ProcessStoresDeps
  #local: LocalStore | undefined
  /** One link per distinct redis block seen; replaced ones are closed with the app (a rolled-back reload may still use them). */
  readonly #redis = new Map<string, { readonly link: RedisLink, readonly store: RedisStore }>()

  constructor (deps: ProcessStoresDeps = {}) {
    this.#deps = deps
  }

  /** The stores `config`'s routes need; undefined when none has a rate limit. */
  for (config: Config): RateLimitStores | undefined {
    if (!config.routes.some((r) => r.rateLimit !== undefined)) return undefined
    const local = this.#local ??= new LocalStore()
    const shared = config.redis !== undefined && config.routes.some((r) => r.rateLimit?.store === 'redis')
    return shared ? { local, redis: this.#redisStore(config.redis!, local) } : { local }
  }

  #redisStore (cfg: RedisConfig, local: LocalStore): RedisStore {
    const id = JSON.stringify(cfg)
    let r = this.#redis.get(id)
    if (r === undefined) {
      const { log, onTransition } = this.#deps
      const link = (this.#deps.connect ?? ((c, l) => new RedisLink(c, l)))(cfg, log ?? pino({ level: 'silent' }))
      const store = new RedisStore(gcraOn(link), local, {
        ...(log === undefined ? {} : { log }), ...(onTransition === undefined ? {} : { onTransition })
      })
      this.#redis.set(id, r = { link, store })
    }
    return r.store
  }

  async close (): Promise<void> {
    await Promise.all([...this.#redis.values()].map((r) => r.link.close()))
    this.#redis.clear()
  }
}
