// RFC 9211 Cache-Status: one list member for this cache, serialized as an
// RFC 8941 structured field: `<name>; hit; ttl=42` or
// `<name>; fwd=uri-miss; fwd-status=200; stored; ttl=60`. Pure.

export interface CacheStatusOutcome {
  /** Answered from the cache without forwarding (§2.1). */
  readonly hit?: boolean | undefined
  /** Why the request went forward (§2.2). */
  readonly fwd?: 'uri-miss' | 'vary-miss' | 'miss' | 'request' | 'stale' | 'bypass' | undefined
  /** Status the next hop answered (§2.3). */
  readonly fwdStatus?: number | undefined
  /** The response was stored (§2.5). */
  readonly stored?: boolean | undefined
  /** Collapsed with another forward request (§2.6). */
  readonly collapsed?: boolean | undefined
  /** Remaining freshness in seconds, negative when stale (§2.4); rounded down. */
  readonly ttl?: number | undefined
  /** Free text (§2.8), sent as an sf-string. */
  readonly detail?: string | undefined
}

/** RFC 8941 §3.3.4 sf-token. */
const SF_TOKEN = /^[A-Za-z*][!#$%&'*+\-.^_`|~0-9A-Za-z:/]*$/
/** sf-string allows printable ASCII only; anything else is replaced. */
const NOT_SF_CHAR = /[^\x20-\x7e]/g
const SF_ESCAPE = /["\\]/g
/** RFC 8941 §3.3.1: at most 15 digits. */
const SF_INT_MAX = 999_999_999_999_999

function sfString (s: string): string {
  return '"' + s.replace(NOT_SF_CHAR, '?').replace(SF_ESCAPE, '\\$&') + '"'
}

function sfInteger (n: number): string {
  const v = Math.max(-SF_INT_MAX, Math.min(SF_INT_MAX, Math.floor(n)))
  return v === 0 ? '0' : String(v) // no "-0"
}

/**
 * One Cache-Status member. Parameters come in a fixed order: hit, fwd,
 * fwd-status, stored, collapsed, ttl, detail; false booleans and absent
 * values are left out. `name` is sent as an sf-token when it is one,
 * otherwise as an sf-string.
 */
export function cacheStatus (name: string, outcome: CacheStatusOutcome): string {
  let s = SF_TOKEN.test(name) ? name : sfString(name)
  if (outcome.hit === true) s += '; hit'
  if (outcome.fwd !== undefined) s += '; fwd=' + outcome.fwd
  if (outcome.fwdStatus !== undefined && Number.isFinite(outcome.fwdStatus)) s += '; fwd-status=' + sfInteger(outcome.fwdStatus)
  if (outcome.stored === true) s += '; stored'
  if (outcome.collapsed === true) s += '; collapsed'
  if (outcome.ttl !== undefined && Number.isFinite(outcome.ttl)) s += '; ttl=' + sfInteger(outcome.ttl)
  if (outcome.detail !== undefined) s += '; detail=' + sfString(outcome.detail)
  return s
}
