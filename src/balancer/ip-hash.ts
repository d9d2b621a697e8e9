// Consistent hashing of the client address (HAProxy `balance source` with
// `hash-type consistent`, lb_chash.c; Envoy ring_hash). The ring is built once
// per config: `virtualNodes × weight` points per server, hashed from the
// server's stable id so a server keeps its points whatever else is in the
// shard. A pick hashes the address, binary-searches the ring and walks
// clockwise to the first eligible server. A server that goes down, fills up
// or was already tried is walked past, so only its own clients move, and they
// come back when it does: nothing is rebuilt.
//
// With `boundedLoad` ε > 0 this is Google's "consistent hashing with bounded
// loads" (Mirrokni, Thorup, Zadimoghaddam 2016): the walk also passes over a
// server that would go above ceil((1+ε) × (total active + 1) × its share of
// the eligible weight), so a hot client range spills to its ring neighbours
// instead of piling onto one server. With equal weights the cap is the
// paper's ceil((1+ε) × (total + 1) / eligible servers).
import type { Server } from '../upstream/server.js'
import { eligible, ineligible, standing, type Balancer, type Candidate, type PickAccount, type PickContext } from './pick.js'
import { hashString } from './hash.js'

export class IpHash implements Balancer {
  readonly #servers: readonly Server[]
  /** Ring points, ascending. */
  readonly #points: Uint32Array
  /** Server index owning each point. */
  readonly #owners: Uint32Array
  readonly #boundedLoad: number
  /** Per server, the pick that last visited it, so a walk checks each server once. */
  readonly #visited: Uint32Array
  #epoch = 0

  constructor (servers: readonly Server[], virtualNodes: number, boundedLoad: number) {
    this.#servers = servers
    this.#boundedLoad = boundedLoad
    this.#visited = new Uint32Array(servers.length)
    const ring: Array<{ point: number, server: number }> = []
    for (let i = 0; i < servers.length; i++) {
      const s = servers[i]!
      const count = Math.max(1, Math.round(virtualNodes * s.weight))
      for (let v = 0; v < count; v++) ring.push({ point: hashString(`${s.id}#${v}`), server: i })
    }
    // Equal points (rare) are ordered by server id, not by position in the
    // list, so removing a server never reorders the others' collisions.
    ring.sort((x, y) => x.point - y.point || compareIds(servers[x.server]!.id, servers[y.server]!.id))
    this.#points = Uint32Array.from(ring, (r) => r.point)
    this.#owners = Uint32Array.from(ring, (r) => r.server)
  }

  pick (ctx: PickContext): Server | undefined {
    return this.#walk(ctx, undefined)
  }

  /** The walk pick() takes, recording every server it visits, in order; and why each one was passed. */
  explain (ctx: PickContext): PickAccount {
    const visited: Server[] = []
    const server = this.#walk(ctx, visited)
    const bounded = this.#boundedLoad > 0
    const eligibleAny = this.#servers.some((s) => eligible(s, ctx))
    const capPerWeight = bounded && eligibleAny ? this.#capPerWeight(ctx) : NaN
    const capOf = (s: Server): string => `cap ${Math.ceil(capPerWeight * s.effectiveWeight(ctx.now))}`
    const candidates = visited.map((s, i): Candidate => {
      const why = ineligible(s, ctx)
      const at = { server: s, score: i + 1 }
      if (why !== undefined) return { ...at, eligible: false, why: `walk ${i + 1}: passed, ${why}` }
      const load = bounded ? `; ${s.active} in flight, ${capOf(s)}` : ''
      if (s === server) {
        const fallback = bounded && s.active > 0 && !this.#underCap(s, capPerWeight, ctx.now)
        return { ...at, eligible: true, why: `${standing(s, ctx)}walk ${i + 1}: ` +
          (fallback ? 'every eligible server is at its cap: the first one of the walk' : 'the first eligible server') + load }
      }
      return { ...at, eligible: true, why: `${standing(s, ctx)}walk ${i + 1}: passed, one more would go over its bounded load${load}` }
    })
    for (const s of this.#servers) {
      if (visited.includes(s)) continue
      const why = ineligible(s, ctx)
      candidates.push({ server: s, eligible: why === undefined, why: `not reached: later on the ring${why === undefined ? '' : `; ${why}`}` })
    }
    const hash = hashString(ctx.clientAddress).toString(16).padStart(8, '0')
    return {
      server,
      reason: `client ${ctx.clientAddress} hashes to 0x${hash}; the first eligible server clockwise on the ring` +
        (bounded ? ` whose in-flight requests stay within ${1 + this.#boundedLoad} × its share (bounded load)` : ''),
      candidates
    }
  }

  /** The ring walk from the client's hash; `visited` (explain only) records each server it checks. */
  #walk (ctx: PickContext, visited: Server[] | undefined): Server | undefined {
    const points = this.#points
    const size = points.length
    if (size === 0) return undefined
    const servers = this.#servers
    const n = servers.length
    const bounded = this.#boundedLoad > 0
    /** Bounded load: allowed in flight per unit of weight; NaN until first needed. */
    let capPerWeight = NaN
    const epoch = this.#nextEpoch()
    const marks = this.#visited
    const owners = this.#owners
    let seen = 0
    let fallback: Server | undefined
    for (let k = 0, p = lowerBound(points, hashString(ctx.clientAddress)); k < size; k++, p = p + 1 === size ? 0 : p + 1) {
      const i = owners[p]!
      if (marks[i] === epoch) continue
      marks[i] = epoch
      const s = servers[i]!
      if (visited !== undefined) visited.push(s)
      if (eligible(s, ctx)) {
        // An idle server is always under its cap (the cap is at least 1), so
        // the shard-wide pass is only paid when the walk meets a busy one.
        if (!bounded || s.active === 0) return s
        if (Number.isNaN(capPerWeight)) capPerWeight = this.#capPerWeight(ctx)
        if (this.#underCap(s, capPerWeight, ctx.now)) return s
        fallback ??= s
      }
      if (++seen === n) break // every server checked once
    }
    // Only reached under bounded load if rounding left every server at its
    // cap (the caps sum above the total, so not in exact arithmetic): take
    // the key's own server rather than fail.
    return fallback
  }

  /** One more request keeps `s` within its bounded-load cap. */
  #underCap (s: Server, capPerWeight: number, now: number): boolean {
    return s.active + 1 <= Math.ceil(capPerWeight * s.effectiveWeight(now))
  }

  /** (1+ε) × (eligible in flight + 1) / eligible weight: one pass over the shard. */
  #capPerWeight (ctx: PickContext): number {
    const servers = this.#servers
    let total = 0
    let weight = 0
    for (let i = 0; i < servers.length; i++) {
      const s = servers[i]!
      if (!eligible(s, ctx)) continue
      total += s.active
      weight += s.effectiveWeight(ctx.now)
    }
    // weight > 0: the caller has just found an eligible server.
    return (1 + this.#boundedLoad) * (total + 1) / weight
  }

  /** A fresh marker for `#visited`, without clearing it on every pick. */
  #nextEpoch (): number {
    if (this.#epoch === 0xffffffff) {
      this.#visited.fill(0)
      this.#epoch = 0
    }
    return ++this.#epoch
  }
}

/** First index whose point is >= key, wrapping to 0 past the end. */
function lowerBound (points: Uint32Array, key: number): number {
  let lo = 0
  let hi = points.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (points[mid]! < key) lo = mid + 1
    else hi = mid
  }
  return lo === points.length ? 0 : lo
}

function compareIds (a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}
