// The runtime record of one upstream server (a replica inside a shard).
// Mutated in few, named places: the upstream pool (`active`, counters,
// latency), the health checker (`setCheckStatus`) and outlier detection
// (`setEjected`). Balancers only read it.
import type { Dispatcher } from 'undici'
import type { SendProxyProtocol } from '../config/schema.js'
import { hashString } from '../balancer/hash.js'
import { peakEwmaObserve } from '../balancer/ewma.js'

/** Last active health check, for status pages and logs. */
export interface CheckResult {
  readonly ok: boolean
  /** performance.now() ms. */
  readonly at: number
  /** HTTP status, when one was received. */
  readonly status?: number
  /** Why it failed, or 'ok'. */
  readonly reason: string
}

/** How one upstream exchange ended, for outlier detection. */
export type ExchangeOutcome = 'success' | '5xx' | 'gateway'

/**
 * Set by the admin API (HAProxy `set server state`): `ready` takes traffic;
 * `drain` keeps its sticky clients and what is in flight but takes no new
 * client; `maint` takes nothing.
 */
export type AdminState = 'ready' | 'drain' | 'maint'

export type HealthListener = (server: Server, healthy: boolean, reason: string) => void

export interface ServerInit {
  readonly name: string
  readonly url: string
  /** Tunables: updated in place by `retune` when a reload keeps this server. */
  weight: number
  readonly backend: string
  readonly shard: string
  readonly dispatcher: Dispatcher
  /** 0 = unlimited. */
  readonly maxConn?: number
  /** Requests its pool can carry at once (an http1 pool's `connections`); default: no limit. */
  readonly slots?: number
  /** ms; 0 = off. */
  readonly slowStart?: number
  /** Peak-EWMA time constant, ms; given only when the balancer reads latency. */
  readonly latencyDecay?: number
  /** See Server.poolKey; defaults to the URL. */
  readonly poolKey?: string
  /** The shard's primary (takes writes); default: a replica. Updated by `retune`. */
  readonly primary?: boolean
  /** Its connections start with a PROXY header of this version (its dispatcher is made for it). */
  readonly sendProxyProtocol?: SendProxyProtocol
}

/** A server's identity (Server.identity), from its backend, shard and name. */
export function serverIdentity (backend: string, shard: string, name: string): string {
  return `${backend}/${shard}/${name}`
}

export class Server {
  readonly name: string
  /** Opaque, stable id (for sticky cookies): never reveals the address. */
  readonly id: string
  /** `backend/shard/name`: the same server across reloads and across a cluster's processes. */
  readonly identity: string
  readonly url: string
  /** Tunables: updated in place by `retune` when a reload keeps this server. */
  weight: number
  readonly backend: string
  readonly shard: string
  /** `host:port` to send as Host when the backend does not pass the client's. */
  readonly hostHeader: string
  /** `role: primary`: the shard's server that takes writes (routes' `consistency`). */
  primary: boolean
  readonly dispatcher: Dispatcher
  /** Concurrency limit (HAProxy maxconn); 0 = unlimited. */
  maxConn: number
  /**
   * Requests its pool can carry at once: an http1 pool's `connections` (one
   * request per connection); Infinity for pools that multiplex or are made
   * per client connection. Past it a request would wait inside the pool,
   * where no queue limit or timeout sees it: the server counts as full instead.
   */
  readonly slots: number
  slowStart: number
  latencyDecay: number
  /** The balancer reads latency (leastLatency): only then is it measured per exchange. */
  tracksLatency: boolean
  /** What its pool was built from (URL, connections, timeouts): a reload may keep the server only if this is unchanged. */
  readonly poolKey: string
  /** Its connections start with a PROXY header of this version: each request carries its client (proxy/plan.ts). */
  readonly sendProxyProtocol: SendProxyProtocol | undefined

  /** What balancers read: the active check says up and outlier detection has not ejected it. */
  healthy = true
  /** Verdict of the active health check (up until a checker says otherwise). */
  checkUp = true
  /** Ejected by outlier detection. */
  ejected = false
  /** performance.now() when it last became healthy; 0 = since start (full weight at once). */
  upSince = 0
  /** performance.now() of its last change of state (health, ejection, admin state); 0 = none since start. */
  changedAt = 0
  /** Requests in flight right now (open tunnels included). */
  active = 0
  /** Of those, upgraded tunnels: they hold a slot of maxConn but no pooled connection. */
  tunnels = 0
  /** Requests sent, and of those the ones that failed at transport level. */
  requests = 0
  failures = 0
  /** Exchanges in a row that failed (5xx or no answer), 0 after a success: the passive view of its health. */
  consecutiveFailures = 0
  /** The admin API's state and weight; both outlive reloads that keep this server. */
  adminState: AdminState = 'ready'
  weightOverride: number | undefined
  /** Peak-EWMA latency cost (ms) and when it was last updated (performance.now()). */
  latencyCost = 0
  latencyStamp = 0
  lastCheck: CheckResult | undefined
  /** A reload removed it: its pool is closing and takes no new request. */
  retired = false
  /** Told once per change of `healthy` (logs, metrics). Set by the composition root. */
  onHealthChange: HealthListener | undefined
  /**
   * It may take requests again (it came up, or the admin API made it ready):
   * the pipeline hands it its shard's waiters then, as HAProxy does when a
   * server comes UP, not only when a busy server frees a slot.
   */
  onAvailable: (() => void) | undefined

  constructor (init: ServerInit) {
    this.name = init.name
    this.url = init.url
    this.weight = init.weight
    this.backend = init.backend
    this.shard = init.shard
    this.dispatcher = init.dispatcher
    this.maxConn = init.maxConn ?? 0
    this.slots = init.slots ?? Infinity
    this.slowStart = init.slowStart ?? 0
    this.latencyDecay = init.latencyDecay ?? 10_000
    this.tracksLatency = init.latencyDecay !== undefined
    this.poolKey = init.poolKey ?? init.url
    this.sendProxyProtocol = init.sendProxyProtocol
    this.id = hashString(`${init.backend}/${init.name}`).toString(36)
    this.identity = serverIdentity(init.backend, init.shard, init.name)
    this.hostHeader = new URL(init.url).host
    this.primary = init.primary === true
  }

  /** A reload kept this server: take the new tunables, keep health, counters and pool. */
  retune (init: Pick<ServerInit, 'weight' | 'maxConn' | 'slowStart' | 'latencyDecay' | 'primary'>): void {
    this.weight = this.weightOverride ?? init.weight
    this.primary = init.primary === true
    this.maxConn = init.maxConn ?? 0
    this.slowStart = init.slowStart ?? 0
    this.latencyDecay = init.latencyDecay ?? 10_000
    this.tracksLatency = init.latencyDecay !== undefined
  }

  /** Below maxConn, with a pooled connection free or to be made: a request sent now starts at once. */
  hasRoom (): boolean {
    return (this.maxConn === 0 || this.active < this.maxConn) && this.active - this.tunnels < this.slots
  }

  /**
   * Active health check verdict. `tell` false: another process decided,
   * counted and logged it (a cluster's worker applying the primary's).
   */
  setCheckStatus (up: boolean, reason: string, tell = true): void {
    this.checkUp = up
    this.#update(reason, tell)
  }

  /** Outlier detection verdict (`tell`: see setCheckStatus). */
  setEjected (ejected: boolean, reason: string, tell = true): void {
    this.ejected = ejected
    this.#update(reason, tell)
  }

  #update (reason: string, tell: boolean): void {
    const healthy = this.checkUp && !this.ejected
    if (healthy === this.healthy) return
    this.healthy = healthy
    this.changedAt = performance.now()
    if (healthy) this.upSince = this.changedAt
    if (tell) this.onHealthChange?.(this, healthy, reason)
    if (healthy) this.onAvailable?.()
  }

  /** Weight as balancers should use it at `now`: ramped during slow start. */
  effectiveWeight (now: number): number {
    if (this.slowStart === 0 || this.upSince === 0) return this.weight
    const elapsed = now - this.upSince
    if (elapsed >= this.slowStart) return this.weight
    // Never quite zero, so the server gets the traffic that warms it up.
    return this.weight * Math.max(0.05, elapsed / this.slowStart)
  }

  /** Time to response headers of a completed exchange (ms), at `now`. */
  recordLatency (ms: number, now: number): void {
    this.latencyCost = peakEwmaObserve(this.latencyCost, this.latencyStamp, ms, now, this.latencyDecay)
    this.latencyStamp = now
  }
}
