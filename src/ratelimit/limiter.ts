// One route's rate limit, compiled at load: its rate, its response fields,
// the store that keeps its buckets, and which bucket a request counts
// against. The pipeline asks check() once per request of the route (after
// routing, before the cache and any upstream); `explain` asks bucketOf()
// without taking anything.
import { createHash } from 'node:crypto'
import type { RateLimitConfig } from '../config/schema.js'
import { formatDuration } from '../config/units.js'
import { requestField } from '../fields.js'
import { cookieValue } from '../upstream/shard.js'
import { policyFields, rateOf, verdictFields, type PolicyFields, type Rate, type Verdict } from './gcra.js'
import type { RateLimitStore, RateLimitStores } from './store.js'

/** What a limit reads of a request: the trusted client address and the header fields. */
export interface LimitSubject {
  readonly clientAddress: string
  readonly rawHeaders: readonly string[]
}

/** The bucket a request counts against, as `explain` shows it. */
export interface Bucket {
  /** `clientIp` also when the header or cookie the limit is keyed by is missing. */
  readonly by: 'clientIp' | 'header' | 'cookie'
  readonly value: string
}

/** Longer key values (a header can be kilobytes) are kept as a digest. */
const MAX_KEY_LENGTH = 128

export class RouteLimit {
  readonly route: string
  readonly config: RateLimitConfig
  readonly rate: Rate
  readonly fields: PolicyFields
  readonly #store: RateLimitStore

  constructor (route: string, config: RateLimitConfig, stores: RateLimitStores) {
    this.route = route
    this.config = config
    this.rate = rateOf(config)
    this.fields = policyFields(route, config)
    this.#store = config.store === 'redis' ? stores.redis ?? stores.local : stores.local
  }

  /** Takes one request from the request's bucket. */
  check (s: LimitSubject): Verdict | Promise<Verdict> {
    const b = this.bucketOf(s)
    const value = b.value.length > MAX_KEY_LENGTH ? createHash('sha256').update(b.value).digest('base64url') : b.value
    // Kinds apart, so that a header value spelling an address is not that address's bucket.
    return this.#store.take(`${this.route}\n${b.by}\n${value}`, this.rate)
  }

  bucketOf (s: LimitSubject): Bucket {
    const by = this.config.by
    if (by === 'clientIp') return { by, value: s.clientAddress }
    const value = 'header' in by
      ? requestField(s.rawHeaders, by.header)
      : cookieValue(requestField(s.rawHeaders, 'cookie'), by.cookie)
    // No key: limited by address, so that leaving it out neither escapes the
    // limit nor shares one bucket with every other client that does.
    if (value === undefined || value === '') return { by: 'clientIp', value: s.clientAddress }
    return { by: 'header' in by ? 'header' : 'cookie', value }
  }

  /** The response fields for a verdict (RateLimit-Policy, RateLimit, and Retry-After when refused). */
  responseFields (v: Verdict): string[] {
    return verdictFields(this.fields, v)
  }
}

/** `by` in words (explain). */
export function describeBy (by: RateLimitConfig['by']): string {
  return by === 'clientIp' ? 'client address' : 'header' in by ? `header ${by.header}` : `cookie ${by.cookie}`
}

/** `100 per 1m, burst 20, by header x-api-key, store redis` (check, explain). */
export function describeLimit (l: RateLimitConfig): string {
  return `${l.average} per ${formatDuration(l.period)}, burst ${l.burst}, by ${describeBy(l.by)}, store ${l.store}`
}
