// What leastConn and leastLatency share (undici's pool-base idea: one base,
// one override): pick the eligible server with the lowest score, either by
// power of two choices (two random eligible servers, keep the better; O(1),
// Mitzenmacher) on large shards, or by a full scan that starts from an offset
// rotating on every pick, so equal scores take turns. A score of 0 (idle)
// ends the scan at once. Subclasses define `score`, and for `explain` how
// to read it.
import type { Server } from '../upstream/server.js'
import { eligible, ineligible, standing, type Balancer, type Candidate, type PickAccount, type PickContext } from './pick.js'

/** Random draws spent finding an eligible candidate before falling back to a full scan. */
const P2C_ATTEMPTS = 4

/**
 * Index of a random eligible server other than `not` (-1 for none), within
 * P2C_ATTEMPTS draws; -1 means "too many are ineligible, scan instead".
 */
export function randomEligible (servers: readonly Server[], ctx: PickContext, not: number): number {
  const n = servers.length
  const range = not === -1 ? n : n - 1
  if (range <= 0) return -1
  for (let attempt = 0; attempt < P2C_ATTEMPTS; attempt++) {
    let i = (Math.random() * range) | 0
    if (not !== -1 && i >= not) i++ // uniform over the others, never `not` itself
    if (eligible(servers[i]!, ctx)) return i
  }
  return -1
}

export abstract class LowestScore implements Balancer {
  protected readonly servers: readonly Server[]
  /** Two random choices instead of a full scan. */
  readonly #p2c: boolean
  /** Where the next full scan starts, so ties rotate. */
  #start = 0

  constructor (servers: readonly Server[], p2cAbove: number) {
    this.servers = servers
    this.#p2c = servers.length > p2cAbove
  }

  /** Lower is better; 0 means idle (nothing can beat it). */
  abstract score (s: Server, now: number): number

  /** What is scored, for `explain`: `load ((active + 1) / weight)`. */
  protected abstract readonly metric: string

  /** How `score(s, now)` came about, for `explain`. */
  protected abstract describe (s: Server, now: number): string

  pick (ctx: PickContext): Server | undefined {
    if (this.#p2c) {
      const servers = this.servers
      const a = randomEligible(servers, ctx, -1)
      if (a !== -1) {
        const b = randomEligible(servers, ctx, a)
        if (b !== -1) {
          const sa = servers[a]!
          const sb = servers[b]!
          return this.score(sb, ctx.now) < this.score(sa, ctx.now) ? sb : sa
        }
      }
      // Too few eligible servers to find two by chance: the full scan is exact.
    }
    return this.#scan(ctx)
  }

  /** pick() itself (the scan's rotation put back), and every server's score. */
  explain (ctx: PickContext): PickAccount {
    const start = this.#start
    const server = this.pick(ctx)
    this.#start = start
    let best = Infinity
    let tied = 0
    const candidates = this.servers.map((s): Candidate => {
      const score = this.score(s, ctx.now)
      const why = ineligible(s, ctx)
      if (why !== undefined) return { server: s, score, eligible: false, why }
      if (score < best) {
        best = score
        tied = 1
      } else if (score === best) tied++
      return { server: s, score, eligible: true, why: standing(s, ctx) + this.describe(s, ctx.now) }
    })
    if (this.#p2c) {
      return {
        server,
        reason: `power of two choices among ${this.servers.length} servers: of two random eligible ones, the lower ${this.metric}`,
        candidates,
        varies: 'random: a live pick draws its own two servers'
      }
    }
    return {
      server,
      reason: `the lowest ${this.metric} of the eligible servers`,
      candidates,
      ...(tied > 1 ? { varies: `${tied} servers tie at the lowest score: ties take turns, one pick after another` } : {})
    }
  }

  #scan (ctx: PickContext): Server | undefined {
    const servers = this.servers
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
      if (score === 0) return s
      if (score < bestScore) {
        best = s
        bestScore = score
      }
    }
    return best
  }
}
