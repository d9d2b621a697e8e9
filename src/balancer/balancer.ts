// The balancing seam: one tiny interface, one file per algorithm (HAProxy's
// lb_*.c, Envoy's load_balancing_policies/*). A balancer is built once per
// shard when config loads; `pick` reads server state at pick time and never
// allocates; `explain` accounts for the same choice with the same code,
// without changing it (`switchyard explain`). Which servers may be picked at
// all is one shared rule, `eligible`, so every algorithm treats health,
// panic, capacity and retries the same way.
import type { BalanceConfig } from '../config/schema.js'
import type { Server } from '../upstream/server.js'
import type { Balancer } from './pick.js'
import { IpHash } from './ip-hash.js'
import { LeastConn } from './least-conn.js'
import { LeastLatency } from './least-latency.js'
import { RoundRobin } from './round-robin.js'

export { eligible, ineligible, NONE_TRIED, type Balancer, type Candidate, type PickAccount, type PickContext } from './pick.js'

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
