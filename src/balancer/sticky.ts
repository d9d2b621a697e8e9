// Cookie session affinity as a wrapper around any algorithm (Traefik's
// loadbalancer/sticky.go): a request whose cookie names a server that may take
// it goes there; otherwise, including when that server is down, full, already
// tried or no longer configured, the wrapped algorithm chooses. Reading the
// cookie and setting it on the response are the pipeline's job; this only
// sees `ctx.stickyId`.
import type { Server } from '../upstream/server.js'
import { eligible, ineligible, type Balancer, type PickAccount, type PickContext } from './pick.js'

class Sticky implements Balancer {
  readonly #inner: Balancer
  readonly #byId: ReadonlyMap<string, Server>

  constructor (inner: Balancer, servers: readonly Server[]) {
    this.#inner = inner
    this.#byId = new Map(servers.map((s) => [s.id, s]))
  }

  pick (ctx: PickContext): Server | undefined {
    return this.#pinned(ctx) ?? this.#inner.pick(ctx)
  }

  /** The algorithm's account, and whether the cookie overrode it. */
  explain (ctx: PickContext): PickAccount {
    const inner = this.#inner.explain(ctx)
    const pinned = this.#pinned(ctx)
    const id = ctx.stickyId
    if (pinned !== undefined) {
      return { server: pinned, reason: `the affinity cookie names ${pinned.name}, which may take it: pinned`, candidates: inner.candidates, inner }
    }
    const named = id === undefined ? undefined : this.#byId.get(id)
    const why = id === undefined
      ? 'no affinity cookie'
      : named === undefined
        ? 'the affinity cookie names no server of this shard'
        : `the affinity cookie names ${named.name}, which is ${ineligible(named, ctx, true) ?? 'not eligible'}`
    return { ...inner, reason: `${why}: the algorithm chooses`, inner }
  }

  /** The cookie's server, when it may take this request. */
  #pinned (ctx: PickContext): Server | undefined {
    const id = ctx.stickyId
    if (id === undefined) return undefined
    const s = this.#byId.get(id)
    // A draining server keeps its sticky clients.
    return s !== undefined && eligible(s, ctx, true) ? s : undefined
  }
}

/** `inner` with cookie affinity over `servers` (the same list `inner` balances). */
export function withSticky (inner: Balancer, servers: readonly Server[]): Balancer {
  return new Sticky(inner, servers)
}
