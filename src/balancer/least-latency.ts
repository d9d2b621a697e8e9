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
import { peakEwmaCurrent } from './ewma.js'
import { LowestScore } from './lowest-score.js'
import { num } from './pick.js'

/** Score (ms) of an unmeasured server per request in flight: above any real latency. */
const UNMEASURED_BUSY_PENALTY = 1e9

export class LeastLatency extends LowestScore {
  protected readonly metric = 'cost (latency × (active + 1) / weight)'
  readonly #decay: number

  /** `decay`: the peak-EWMA time constant (ms). */
  constructor (servers: readonly Server[], decay: number) {
    super(servers, 2)
    this.#decay = decay
  }

  /** Lower is better. */
  score (s: Server, now: number): number {
    if (s.latencyCost === 0) return s.active === 0 ? 0 : UNMEASURED_BUSY_PENALTY * s.active
    return this.latency(s, now) * (s.active + 1) / s.effectiveWeight(now)
  }

  /** The server's peak-EWMA latency (ms) as decayed at `now`; 0 = never measured. */
  latency (s: Server, now: number): number {
    return peakEwmaCurrent(s.latencyCost, s.latencyStamp, now, this.#decay)
  }

  protected describe (s: Server, now: number): string {
    if (s.latencyCost === 0) {
      return s.active === 0 ? 'unmeasured and idle: tried first (0)' : `unmeasured with ${s.active} in flight: ranked last`
    }
    return `latency ${num(this.latency(s, now))} ms × (${s.active}+1)/${num(s.effectiveWeight(now))} = ${num(this.score(s, now))}`
  }
}
