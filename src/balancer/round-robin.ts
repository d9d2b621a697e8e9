// Smooth weighted round-robin (the nginx algorithm): over one cycle each
// server is picked exactly `weight` times, interleaved rather than in bursts.
// Ineligible servers (down, full, already tried) are skipped at pick time;
// their turn is not saved up. Weights ramp during slow start.
import type { Server } from '../upstream/server.js'
import { eligible, ineligible, num, standing, type Balancer, type Candidate, type PickAccount, type PickContext } from './pick.js'

/** How many upcoming picks `explain` shows at most. */
const UPCOMING = 12

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

  /** pick() itself, run for one cycle on this rotation state, which is then put back. */
  explain (ctx: PickContext): PickAccount {
    const servers = this.#servers
    let cycle = 0
    for (const s of servers) if (eligible(s, ctx)) cycle += this.#uniform ? 1 : s.effectiveWeight(ctx.now)
    const next = this.#next
    const current = this.#current.slice()
    const upcoming: Server[] = []
    for (let i = 0; i < Math.min(Math.ceil(cycle), UPCOMING); i++) {
      const s = this.pick(ctx)
      if (s === undefined) break
      upcoming.push(s)
    }
    this.#next = next
    this.#current.set(current)

    const candidates = servers.map((s): Candidate => {
      const why = ineligible(s, ctx)
      if (why !== undefined) return { server: s, eligible: false, why: `skipped: ${why}` }
      const turn = upcoming.indexOf(s)
      const weight = this.#uniform ? '' : `, weight ${num(s.effectiveWeight(ctx.now))}`
      return turn === -1
        ? { server: s, eligible: true, why: `${standing(s, ctx)}later in the cycle${weight}` }
        : { server: s, score: turn + 1, eligible: true, why: `${standing(s, ctx)}turn ${turn + 1}${weight}` }
    })
    return {
      server: upcoming[0],
      reason: this.#uniform
        ? 'round-robin: each eligible server in turn'
        : 'smooth weighted round-robin: each eligible server `weight` times a cycle, interleaved',
      candidates,
      varies: 'the rotation continues from the picks before it: a running proxy is elsewhere in its cycle',
      next: upcoming.slice(1)
    }
  }
}
