// Smooth weighted round-robin (the nginx algorithm): over one cycle each
// server is picked exactly `weight` times, interleaved rather than in bursts.
// Ineligible servers (down, full, already tried) are skipped at pick time;
// their turn is not saved up. Weights ramp during slow start.
import type { Server } from '../upstream/server.js'
import { eligible, type Balancer, type PickContext } from './pick.js'

export class RoundRobin implements Balancer {
  readonly #servers: readonly Server[]
  readonly #current: Float64Array
  /** Equal weights and no slow start: a rotating index is enough, O(1) on the happy path. */
  readonly #uniform: boolean
  #next = 0

  constructor (servers: readonly Server[]) {
    this.#servers = servers
    this.#current = new Float64Array(servers.length)
    this.#uniform = servers.every((s) => s.weight === servers[0]?.weight && s.slowStart === 0)
  }

  pick (ctx: PickContext): Server | undefined {
    const servers = this.#servers
    const n = servers.length
    if (this.#uniform) {
      for (let tried = 0; tried < n; tried++) {
        const s = servers[this.#next]!
        this.#next = this.#next + 1 === n ? 0 : this.#next + 1
        if (eligible(s, ctx)) return s
      }
      return undefined
    }
    const current = this.#current
    let total = 0
    let best = -1
    for (let i = 0; i < n; i++) {
      const s = servers[i]!
      if (!eligible(s, ctx)) continue
      const w = s.effectiveWeight(ctx.now)
      current[i]! += w
      total += w
      if (best === -1 || current[i]! > current[best]!) best = i
    }
    if (best === -1) return undefined
    current[best]! -= total
    return servers[best]
  }
}
