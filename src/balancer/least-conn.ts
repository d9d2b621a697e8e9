// Weighted least connections (HAProxy lb_fwlc.c) with power of two choices
// on large shards (Envoy least_request). The load of a server is HAProxy's
// fwlc key: 0 when idle, else (active + 1) / weight, so idle servers always
// come first and, once busy, a server is ranked by its load *after* it takes
// this request, which keeps weights accurate at low concurrency. Ties go to
// whichever comes first from a start offset that rotates on every pick, so
// equally loaded servers take turns. Above `choiceThreshold` servers a pick
// looks at two random eligible servers instead of all of them (Mitzenmacher's
// power of two choices: O(1), and almost as good as the full scan).
import type { Server } from '../upstream/server.js'
import { eligible, type Balancer, type PickContext } from './balancer.js'

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

/** HAProxy fwlc key: 0 when idle, else (active + 1) / effective weight. */
function load (s: Server, now: number): number {
  return s.active === 0 ? 0 : (s.active + 1) / s.effectiveWeight(now)
}

export class LeastConn implements Balancer {
  readonly #servers: readonly Server[]
  /** More servers than the threshold: two random choices instead of a full scan. */
  readonly #p2c: boolean
  /** Where the next full scan starts, so ties rotate. */
  #start = 0

  constructor (servers: readonly Server[], choiceThreshold: number) {
    this.#servers = servers
    this.#p2c = servers.length > Math.max(2, choiceThreshold)
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
          return load(sb, ctx.now) < load(sa, ctx.now) ? sb : sa
        }
      }
      // Too few eligible servers to find two by chance: the full scan is exact.
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
    let bestLoad = Infinity
    for (let k = 0, i = start; k < n; k++, i = i + 1 === n ? 0 : i + 1) {
      const s = servers[i]!
      if (!eligible(s, ctx)) continue
      const l = load(s, ctx.now)
      if (l === 0) return s // an idle server: nothing can beat it
      if (l < bestLoad) {
        best = s
        bestLoad = l
      }
    }
    return best
  }
}
