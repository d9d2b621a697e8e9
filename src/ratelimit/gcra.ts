// The rate-limit policy, pure: GCRA (the generic cell rate algorithm, a token
// bucket kept as one number and no timer) and the response fields that
// describe its verdict. Every store takes its decisions here, or (Redis) in a
// Lua copy of take() whose answer verdictOf() reads, so the local limit, the
// shared one and `explain` cannot disagree. Times are ms, from any clock that
// only goes forward.
//
// A bucket is its theoretical arrival time (TAT): when it would be full again
// if nothing more came. A request moves the TAT one `interval` (period /
// average) on, and is refused when that would put it more than `tolerance`
// (burst × interval) ahead of now: so `burst` requests pass at once on a full
// bucket, then one per interval.
import type { RateLimitConfig } from '../config/schema.js'

export interface Rate {
  /** ms between two requests at the average rate: period / average. */
  readonly interval: number
  /** Requests that may pass at once on a full bucket. */
  readonly burst: number
  /** burst × interval: how far ahead of now the TAT may run. */
  readonly tolerance: number
}

export function rateOf (cfg: Pick<RateLimitConfig, 'average' | 'period' | 'burst'>): Rate {
  const interval = cfg.period / cfg.average
  return Object.freeze({ interval, burst: cfg.burst, tolerance: cfg.burst * interval })
}

export interface Verdict {
  readonly allowed: boolean
  /** Requests that may be sent right now (after this one, when allowed). */
  readonly remaining: number
  /** ms until the next request's worth comes back: the wait when refused; 0 when the bucket is full. */
  readonly reset: number
}

/** A microsecond, in ms: far below any real interval, far above the rounding of ms clocks in the millions. */
const CLOCK_EPSILON = 1e-3

/**
 * One request against the bucket whose TAT is `tat` (undefined: never used,
 * or expired: full) at `now`: the verdict, and the TAT to keep (unchanged
 * when refused).
 */
export function take (rate: Rate, tat: number | undefined, now: number): { readonly verdict: Verdict, readonly tat: number } {
  const from = tat === undefined || tat < now ? now : tat
  const next = from + rate.interval
  // `(now + interval) - now` can exceed `interval` by a rounding error when now is large
  // (a long-running process's clock): that must not refuse a full bucket's last request.
  if (next - now > rate.tolerance + CLOCK_EPSILON) return { verdict: verdictOf(rate, false, from - now), tat: from }
  return { verdict: verdictOf(rate, true, next - now), tat: next }
}

/** Rounding noise of intervals like 1000/3 must not cost a request. */
const EPSILON = 1e-9

/**
 * The verdict of a decision from the bucket's backlog after it (TAT − now,
 * ms): what take() computes, and what the Redis script answers with.
 */
export function verdictOf (rate: Rate, allowed: boolean, backlog: number): Verdict {
  // Free room in the bucket, in requests (fractional: the next one is on its way).
  const room = (rate.tolerance - Math.max(0, backlog)) / rate.interval
  const remaining = Math.min(rate.burst, Math.max(0, Math.floor(room + EPSILON)))
  const reset = remaining >= rate.burst ? 0 : Math.max(0, (remaining + 1 - room) * rate.interval)
  return { allowed, remaining, reset }
}

/** Whole seconds, rounded up: Retry-After and `t` are delay-seconds. */
export function seconds (ms: number): number {
  return Math.ceil(ms / 1000 - EPSILON)
}

/** What the response fields say of one route's limit, built once per route. */
export interface PolicyFields {
  /** The policy's name as a Structured Fields string: the route's name. */
  readonly item: string
  /**
   * `RateLimit-Policy` (draft-ietf-httpapi-ratelimit-headers-11 §3): quota
   * `average` per window `period` (whole seconds by the config's rule).
   */
  readonly policy: string
}

export function policyFields (name: string, cfg: Pick<RateLimitConfig, 'average' | 'period'>): PolicyFields {
  const item = sfString(name)
  return Object.freeze({ item, policy: `${item};q=${cfg.average};w=${cfg.period / 1000}` })
}

/**
 * The response fields of a verdict, flat as writeHead takes them:
 * `RateLimit-Policy`, `RateLimit` (§4: `r` = remaining, `t` = seconds until
 * the next request's worth comes back) and, when refused, `Retry-After` (the
 * same seconds: §6 wants it no earlier than the end of `t`).
 */
export function verdictFields (p: PolicyFields, v: Verdict): string[] {
  if (v.allowed) return ['ratelimit-policy', p.policy, 'ratelimit', `${p.item};r=${v.remaining};t=${seconds(v.reset)}`]
  const wait = String(Math.max(1, seconds(v.reset)))
  return ['ratelimit-policy', p.policy, 'ratelimit', `${p.item};r=0;t=${wait}`, 'retry-after', wait]
}

/** A Structured Fields string (RFC 9651 §3.3.3); route names never need escapes, but a name is only text. */
function sfString (s: string): string {
  return `"${s.replace(/[\\"]/g, '\\$&')}"`
}
