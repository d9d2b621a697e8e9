// What the cache keeps per stored response. Immutable: a revalidation
// replaces the entry instead of editing it. Times are ms since the epoch
// (Date.now()), as the RFC 9111 age arithmetic works in wall-clock time.
import type { CacheDirectives } from './cache-control.js'

export interface CacheEntry {
  /** Primary key (see key.ts): scheme + authority + path + query, per route rules. */
  readonly key: string
  /** Variant key (see key.ts): route, shard and key headers; '' when built in code without one. */
  readonly variant: string
  readonly status: number
  readonly statusText: string
  /** Flat [name, value…] as it will be sent: hop-by-hop fields already removed, no Age. */
  readonly headers: readonly string[]
  readonly body: Buffer
  /** When the request that produced it was sent / its response headers arrived. */
  readonly requestTime: number
  readonly responseTime: number
  /** Parsed response Cache-Control. */
  readonly cc: CacheDirectives
  /** Freshness lifetime (ms) decided at store time. */
  readonly freshness: number
  /** Date header (ms), or responseTime when absent or invalid. */
  readonly date: number
  /** Age header from upstream (ms), 0 when absent. */
  readonly ageValue: number
  readonly etag: string | undefined
  /** Last-Modified (ms), undefined when absent or invalid. */
  readonly lastModified: number | undefined
  /** Lower-cased names in Vary ('*' never stored); empty when none. */
  readonly varyNames: readonly string[]
  /** The request's normalized values for varyNames, same order (VARY_ABSENT when absent, policy.ts). */
  readonly varyValues: readonly string[]
  /** Cache-Tag / Surrogate-Key values, for purge by tag. */
  readonly tags: readonly string[]
  /** Bytes counted against cache.maxBytes: what the entry really holds in memory (store.ts entrySize). */
  readonly size: number
}
