// Cookie session affinity as a wrapper around any algorithm (Traefik's
// loadbalancer/sticky.go): a request whose cookie names a server that may take
// it goes there; otherwise, including when that server is down, full, already
// tried or no longer configured, the wrapped algorithm chooses. Reading the
// cookie and setting it on the response are the pipeline's job; this only
// sees `ctx.stickyId`.
import type { Server } from '../upstream/server.js'
import { eligible, type Balancer, type PickContext } from './pick.js'

class Sticky implements Balancer {
  readonly #inner: Balancer
  readonly #byId: ReadonlyMap<string, Server>

  constructor (inner: Balancer, servers: readonly Server[]) {
    this.#inner = inner
    this.#byId = new Map(servers.map((s) => [s.id, s]))
  }

  pick (ctx: PickContext): Server | undefined {
    const id = ctx.stickyId
    if (id !== undefined) {
      const s = this.#byId.get(id)
      if (s !== undefined && eligible(s, ctx)) return s
    }
    return this.#inner.pick(ctx)
  }
}

/** `inner` with cookie affinity over `servers` (the same list `inner` balances). */
export function withSticky (inner: Balancer, servers: readonly Server[]): Balancer {
  return new Sticky(inner, servers)
}
