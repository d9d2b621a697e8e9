// Where rate-limit buckets live: one interface, a file per store (local.ts:
// this process's memory; redis.ts: one Redis every process and instance
// shares). A store only keeps TATs; what they mean is gcra.ts's.
import type { Rate, Verdict } from './gcra.js'

export interface RateLimitStore {
  /**
   * One request against bucket `key` (route and client, as limiter.ts names
   * it) at `rate`. Never rejects: a store that cannot decide (Redis down)
   * decides locally instead.
   */
  take (key: string, rate: Rate): Verdict | Promise<Verdict>
}

/** The stores of one process, shared by every route and kept across reloads. */
export interface RateLimitStores {
  readonly local: RateLimitStore
  /** Absent: routes with `store: redis` use the local limit (no Redis here, or a state built for `explain`). */
  readonly redis?: RateLimitStore
}
