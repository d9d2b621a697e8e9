// The balancing contract, kept apart from the algorithms so they can share
// code (lowest-score.ts) without an import cycle through createBalancer.
import type { Server } from '../upstream/server.js'

/** What an algorithm may use to choose; the session implements it. */
export interface PickContext {
  /** Client address as the proxy trusts it (socket peer, or the trusted X-Forwarded-For hop). */
  readonly clientAddress: string
  /** performance.now() at request start: slow start and latency decay read it; no clock call per pick. */
  readonly now: number
  /** Servers already tried for this request (retries); an empty shared array on the first attempt. */
  readonly tried: readonly Server[]
  /** Panic mode (Envoy): too few servers are healthy, so health is ignored. */
  readonly panic: boolean
  /** Server id from the client's sticky cookie, if it sent one. */
  readonly stickyId: string | undefined
  /** Only the shard's primary may take it (routes' `consistency`); absent = any server. */
  readonly primaryOnly?: boolean
}

/** One server as an algorithm weighed it for one choice. */
export interface Candidate {
  readonly server: Server
  /** The algorithm's number for it (load, cost, turn, place in the ring walk), when it has one. */
  readonly score?: number
  readonly eligible: boolean
  /** Why it may not take the request, or what its score means and how it fared. */
  readonly why: string
}

/**
 * A balancer's account of the choice `pick` would make now (`switchyard
 * explain`). Built with the same code as `pick`, without changing what later
 * picks do; unlike `pick` it allocates.
 */
export interface PickAccount {
  readonly server: Server | undefined
  /** How the algorithm chooses, and what decided this time. */
  readonly reason: string
  /** Every server of the shard, in the order the algorithm considered them. */
  readonly candidates: readonly Candidate[]
  /** Set when a live pick may differ from this one (random choices, rotation state): why. */
  readonly varies?: string
  /** The picks that follow this one from the same state (rotating algorithms). */
  readonly next?: readonly Server[]
  /** A wrapper's account of the algorithm it wraps (sticky → the algorithm). */
  readonly inner?: PickAccount
}

export interface Balancer {
  pick (ctx: PickContext): Server | undefined
  /** Account for the choice `pick(ctx)` would make now; leaves the balancer as it was. */
  explain (ctx: PickContext): PickAccount
}

/**
 * May `s` take this request: healthy (or panic), below maxConn, not already
 * tried, and `ready` by the admin API (`pinned`: a sticky client's own server,
 * which may also be draining).
 */
export function eligible (s: Server, ctx: PickContext, pinned = false): boolean {
  return usable(s, ctx, pinned) && s.hasRoom() && untried(s, ctx)
}

/**
 * `eligible` but for room and retries: `s` could take this request once it
 * frees a slot. Only for such a server is waiting in the queue worth it
 * (Shard.anyBusy): not for one in maintenance, draining or removed.
 */
export function usable (s: Server, ctx: Pick<PickContext, 'panic' | 'primaryOnly'>, pinned = false): boolean {
  return (s.healthy || ctx.panic) && !s.retired &&
    (s.adminState === 'ready' || (pinned && s.adminState === 'drain')) && (ctx.primaryOnly !== true || s.primary)
}

/** Not tried yet, as this object or (across a reload that rebuilt it) as the same server. */
function untried (s: Server, ctx: PickContext): boolean {
  return ctx.tried.length === 0 || !ctx.tried.some((t) => t === s || t.id === s.id)
}

/** Why `s` may not take this request (the rule of `eligible`, spelled out), or undefined when it may. */
export function ineligible (s: Server, ctx: PickContext, pinned = false): string | undefined {
  if (s.adminState === 'maint') return 'in maintenance (admin API)'
  if (s.adminState === 'drain' && !pinned) return 'draining (admin API): only its sticky clients'
  if (!s.healthy && !ctx.panic) return s.ejected ? 'ejected by outlier detection' : 'down (health check)'
  if (!s.hasRoom()) {
    return s.maxConn !== 0 && s.active >= s.maxConn
      ? `full: ${s.active} of maxConn ${s.maxConn} in flight`
      : `full: all ${s.slots} pooled connections busy (connections)`
  }
  if (!untried(s, ctx)) return 'already tried for this request'
  if (s.retired) return 'removed by a reload'
  if (ctx.primaryOnly === true && !s.primary) return 'a replica: this request goes to the primary (consistency)'
  return undefined
}

/** An eligible server's state worth saying before its score: panic, slow start. */
export function standing (s: Server, ctx: PickContext): string {
  const parts: string[] = []
  if (!s.healthy) parts.push(`${s.ejected ? 'ejected' : 'down'}, eligible in panic mode`)
  const w = s.effectiveWeight(ctx.now)
  if (w !== s.weight) parts.push(`slow start: weight ${num(w)} of ${num(s.weight)}`)
  return parts.length === 0 ? '' : parts.join('; ') + '; '
}

/** A number for people: integers as they are, others to two decimals. */
export function num (n: number): string {
  return Number.isInteger(n) ? String(n) : n.toFixed(2)
}

export const NONE_TRIED: readonly Server[] = Object.freeze([])
