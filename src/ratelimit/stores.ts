// The rate-limit stores of one process, owned by the app: the local store is
// made when a config first needs it and kept across reloads, so that a
// reload resets nobody's bucket; the Redis store is made once per Redis link
// (the app's; a reload that changes `redis` brings a new one). Nothing is
// made for a config without rate limits.
import type { Logger } from 'pino'
import type { Config } from '../config/schema.js'
import type { RedisLink } from '../redis/link.js'
import { LocalStore } from './local.js'
import { RedisStore, gcraOn, type StoreInUse } from './redis.js'
import type { RateLimitStores } from './store.js'

export interface ProcessStoresDeps {
  readonly log?: Logger
  /** A Redis store switched to local, or back (count it). */
  readonly onTransition?: (to: StoreInUse) => void
}

export class ProcessStores {
  readonly #deps: ProcessStoresDeps
  #local: LocalStore | undefined
  readonly #redis = new WeakMap<RedisLink, RedisStore>()

  constructor (deps: ProcessStoresDeps = {}) {
    this.#deps = deps
  }

  /** The stores `config`'s routes need, with `link` the app's Redis connection; undefined when no route has a rate limit. */
  for (config: Config, link: RedisLink | undefined): RateLimitStores | undefined {
    if (!config.routes.some((r) => r.rateLimit !== undefined)) return undefined
    const local = this.#local ??= new LocalStore()
    if (link === undefined || !config.routes.some((r) => r.rateLimit?.store === 'redis')) return { local }
    let redis = this.#redis.get(link)
    if (redis === undefined) {
      const { log, onTransition } = this.#deps
      redis = new RedisStore(gcraOn(link), local, { ...(log === undefined ? {} : { log }), ...(onTransition === undefined ? {} : { onTransition }) })
      this.#redis.set(link, redis)
    }
    return { local, redis }
  }
}
