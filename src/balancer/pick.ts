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
}

export interface Balancer {
  pick (ctx: PickContext): Server | undefined
}

/** May `s` take this request: healthy (or panic), below maxConn, not already tried. */
export function eligible (s: Server, ctx: PickContext): boolean {
  return (s.healthy || ctx.panic) &&
    (s.maxConn === 0 || s.active < s.maxConn) &&
    (ctx.tried.length === 0 || !ctx.tried.includes(s))
}

export const NONE_TRIED: readonly Server[] = Object.freeze([])
