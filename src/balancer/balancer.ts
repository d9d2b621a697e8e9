// The balancing seam: one tiny interface, one file per algorithm (HAProxy's
// lb_*.c, Envoy's load_balancing_policies/*). A balancer is built once per
// shard when config loads; `pick` reads server state at pick time and never
// allocates. Which servers may be picked at all is one shared rule,
// `eligible`, so every algorithm treats health, panic, capacity and retries
// the same way.
import type { BalanceConfig } from '../config/schema.js'
import type { Server } from '../upstream/server.js'
import { IpHash } from './ip-hash.js'
import { LeastConn } from './least-conn.js'
import { LeastLatency } from './least-latency.js'
import { RoundRobin } from './round-robin.js'

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

export function createBalancer (cfg: BalanceConfig, servers: readonly Server[]): Balancer {
  switch (cfg.algorithm) {
    case 'roundRobin': return new RoundRobin(servers)
    case 'leastConn': return new LeastConn(servers, cfg.choiceThreshold)
    case 'ipHash': return new IpHash(servers, cfg.virtualNodes, cfg.boundedLoad)
    case 'leastLatency': return new LeastLatency(servers, cfg.decay)
    default: {
      const never: never = cfg
      throw new Error(`unknown balance algorithm ${String(never)}`)
    }
  }
}
