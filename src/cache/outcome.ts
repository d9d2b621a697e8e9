// How the cache handled one request, for logs and metrics: one closed set of
// words, decided by the cache phase, read by the access log and the metrics.
export type CacheOutcome =
  /** Answered from a fresh stored response. */
  | 'hit'
  /** Answered from a stale one (max-stale, stale-while-revalidate, stale-if-error). */
  | 'stale'
  /** Answered from the response another request was fetching (collapsed forwarding). */
  | 'collapsed'
  /** Nothing usable stored: forwarded. */
  | 'miss'
  /** A stale response revalidated upstream (304 or a new 200). */
  | 'revalidate'
  /** The method is never served from the cache (unsafe methods, PURGE proxied). */
  | 'bypass'
  /**
   * Not a client's request: the cache's own background fetch (stale-while-revalidate).
   * Logged and counted as the server's upstream exchange, never as a request.
   */
  | 'refresh'

/** The outcomes that were answered from the cache without an upstream exchange of their own. */
export function servedFromCache (o: CacheOutcome | undefined): boolean {
  return o === 'hit' || o === 'stale' || o === 'collapsed'
}
