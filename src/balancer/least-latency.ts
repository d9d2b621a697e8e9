// Least latency: peak-EWMA cost × (in flight + 1) / weight, the load metric
// of Finagle's and linkerd's P2C balancers. A server's cost jumps at once on a
// slow response and decays toward zero while it is not picked, so a server
// that was slow once is probed again after a while rather than starved.
// Power of two choices among eligible servers; with two servers or fewer the
// pick compares them all, ties rotating.
//
// A server with no measurement yet scores 0 and is tried first, but only
// while nothing is in flight to it: an unmeasured server with requests
// outstanding scores a penalty (Finagle's PeakEwma does the same), or a new
// server that never answers would draw every request until its first reply.
import type { Server } from '../upstream/server.js'
import { eligible, type Balancer, type PickContext } from './balancer.js'
import { peakEwmaCurrent } from './ewma.js'
import { randomEligible } from './least-conn.js'

/** Score (ms) of an unmeasured server per request in flight: above any real latency. */
const UNMEASURED_BUSY_PENALTY = 1e9

export class LeastLatency implements Balancer {
  readonly #servers: readonly Server[]
  readonly #decay: number
  readonly #p2c: boolean
  /** Where the next full scan starts, so ties rotate. */
  #start = 0

  /** `decay`: the peak-EWMA time constant (ms). */
  constructor (servers: readonly Server[], decay: number) {
    this.#servers = servers
    this.#decay = decay
    this.#p2c = servers.length > 2
  }

  /** Lower is better. */
  score (s: Server, now: number): number {
    if (s.latencyCost === 0) return s.active === 0 ? 0 : UNMEASURED_BUSY_PENALTY * s.active
    return peakEwmaCurrent(s.latencyCost, s.latencyStamp, now, this.#decay) * (s.active + 1) / s.effectiveWeight(now)
  }

  pick (ctx: PickContext): Server | undefined {
    if (this.#p2c) {
      const servers = this.#servers
      const a = randomEligible(servers, ctx, -1)
      if (a !== -1) {
        const b = randomEligible(servers, ctx, a)
        if (b !== -1) {
          const sa = servers[a]!
          const sb = servers[b]!
          return this.score(sb, ctx.now) < this.score(sa, ctx.now) ? sb : sa
        }
      }
      // Too few eligible servers to find two by chance: scan them all.
    }
    return this.#scan(ctx)
  }

  #scan (ctx: PickContext): Server | undefined {
    const servers = this.#servers
    const n = servers.length
    if (n === 0) return undefined
    const start = this.#start
    this.#start = start + 1 === n ? 0 : start + 1
    let best: Server | undefined
    let bestScore = Infinity
    for (let k = 0, i = start; k < n; k++, i = i + 1 === n ? 0 : i + 1) {
      const s = servers[i]!
      if (!eligible(s, ctx)) continue
      const score = this.score(s, ctx.now)
      if (score === 0) return s // unmeasured and idle: nothing scores lower
      if (score < bestScore) {
        best = s
        bestScore = score
      }
    }
    return best
  }
}
