// The balancing seam: one tiny interface, one file per algorithm (HAProxy's
// lb_*.c, Envoy's load_balancing_policies/*). A balancer is built once per
// shard when config loads; `pick` reads server health at pick time and never
// allocates.
import type { BalanceConfig } from '../config/schema.js'
import type { Server } from '../upstream/server.js'
import { RoundRobin } from './round-robin.js'

/** What an algorithm may use to choose; filled by the pipeline. */
export interface PickContext {
  /** Client address as the proxy trusts it (socket peer, or trusted XFF hop). */
  readonly clientAddress: string
}

export interface Balancer {
  pick (ctx: PickContext): Server | undefined
}

export function createBalancer (cfg: BalanceConfig, servers: readonly Server[]): Balancer {
  switch (cfg.algorithm) {
    case 'roundRobin': return new RoundRobin(servers)
    default: {
      const never: never = cfg.algorithm
      throw new Error(`unknown balance algorithm ${String(never)}`)
    }
  }
}
