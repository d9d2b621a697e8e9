// A backend (HAProxy backend = Envoy cluster = Traefik service): its shards,
// each a set of replica servers with their own balancer and wait queue, the
// pools behind them, and backend-wide accounting (in-flight requests and
// retries, for the retry budget). Built once per config.
import type { Logger } from 'pino'
import type { BackendConfig, StickyCookieConfig } from '../config/schema.js'
import { createBalancer, type Balancer } from '../balancer/balancer.js'
import { peakEwmaCurrent } from '../balancer/ewma.js'
import { withSticky } from '../balancer/sticky.js'
import { createOutlierDetector, type EjectionListener, type OutlierDetector } from '../health/outlier.js'
import { Server, serverIdentity, type AdminState, type ExchangeOutcome } from './server.js'
import { Shard, ShardSelector } from './shard.js'
import { createPool, pausesAnyBody, type DispatcherFactory, type ExchangeAccounting } from './pool.js'
import { upstreamTls, type UpstreamTls } from './tls.js'

/**
 * A server's state in one word, as /status, /metrics and the dashboard show
 * it: `up` / `down` by its active health check, `no check` when its backend
 * has none (HAProxy's wording: nothing vouches for it), `ejected` by outlier
 * detection; `drain` / `maint` when the admin API set them (they say more).
 */
export type ServerState = 'up' | 'down' | 'no check' | 'ejected' | 'drain' | 'maint'

export interface ServerStatus {
  readonly name: string
  readonly url: string
  /** `role` in the config: the shard's primary or a replica. */
  readonly role: 'primary' | 'replica'
  readonly weight: number
  readonly state: ServerState
  /** Its backend runs active health checks. */
  readonly checked: boolean
  /** What the admin API set (POST /servers/{backend}/{server}); `ready` unless changed. */
  readonly adminState: AdminState
  /** Exchanges in a row that failed (5xx or no answer); 0 after a success. */
  readonly consecutiveFailures: number
  /** ms since its state last changed (health, ejection, admin state); absent: not since this process started. */
  readonly sinceChangeMs?: number
  readonly healthy: boolean
  readonly checkUp: boolean
  readonly ejected: boolean
  readonly active: number
  readonly requests: number
  readonly failures: number
  readonly lastCheck?: { readonly ok: boolean; readonly reason: string; readonly status?: number }
  /** Concurrency limit; 0 = none. */
  readonly maxConn: number
  /** The weight balancers use right now: below `weight` during slow start. */
  readonly effectiveWeight: number
  /** ms since it last came back up, when that happened while this proxy ran (slow start counts from it). */
  readonly upForMs?: number
  /** Peak-EWMA latency (ms) as leastLatency weighs it now, decayed; 0 = not measured yet. Only when the balancer reads latency. */
  readonly latencyCost?: number
}

export interface BackendStatus {
  readonly name: string
  readonly algorithm: string
  readonly active: number
  readonly retries: number
  readonly shards: readonly { readonly name: string; readonly queued: number; readonly servers: readonly ServerStatus[] }[]
}

/** The one word for a server's state (see ServerState). */
export function serverState (checked: boolean, checkUp: boolean, ejected: boolean, admin: AdminState = 'ready'): ServerState {
  if (admin !== 'ready') return admin
  if (ejected) return 'ejected'
  if (!checked) return 'no check'
  return checkUp ? 'up' : 'down'
}

/** Most retries the budget can save up (a burst from one dead replica fits; an outage does not multiply). */
export const RETRY_BUCKET_CAP = 100


export interface BackendDeps {
  readonly log?: Logger
  /**
   * On reload: the server kept from the previous config under this identity
   * (`backend/shard/server`) if its poolKey is unchanged; it keeps its health,
   * counters and connection pool.
   */
  readonly reuse?: (identity: string, poolKey: string) => Server | undefined
  /**
   * Builds each new server's connection pool. Default: a real undici pool
   * (createPool); `explain` passes one that sends nothing.
   */
  readonly dispatcher?: DispatcherFactory
  /** Told of outlier detection's ejections (a cluster's worker tells the others). */
  readonly onEjection?: EjectionListener
}

export class Backend implements ExchangeAccounting {
  readonly name: string
  readonly config: BackendConfig
  readonly shards: readonly Shard[]
  /** A reload replaced it (retire()): requests still running on it move to the live backend of the same name. */
  retired = false
  readonly selector: ShardSelector
  readonly servers: readonly Server[]
  /** The servers' TLS settings (trust, client certificate), when they are https://; the health checker uses them too. */
  readonly tls: UpstreamTls | undefined
  /** For upstream failures worth an operator's attention (TLS handshakes). */
  readonly log: Logger | undefined
  /** ExchangeAccounting: every response body from these servers can be paused (see ExchangeAccounting.pausable). */
  readonly pausable: boolean
  /** Requests in flight to any server of this backend. */
  active = 0
  /** Retry attempts in flight, and in total. */
  retrying = 0
  retries = 0
  /** Retry budget balance in thousandths of a retry: integers, so 50 × 0.2 is exactly 10 (see RetriesConfig.budgetPercent). */
  #retryMillis = RETRY_BUCKET_CAP * 500
  readonly #depositMillis: number
  readonly #outlier: OutlierDetector | undefined
  /** Set-Cookie values per server, plain and with Secure (built once). */
  readonly #cookies: ReadonlyMap<Server, readonly [string, string]>

  constructor (config: BackendConfig, deps: BackendDeps = {}) {
    this.name = config.name
    this.config = config
    this.log = deps.log
    this.#depositMillis = Math.round(config.retries.budgetPercent * 1000)
    const all: Server[] = []
    const decay = config.balance.algorithm === 'leastLatency' ? config.balance.decay : undefined
    // Built once for every server; throws when a TLS file the config names cannot be read (reload: rejected).
    const tls = config.tls === undefined ? undefined : upstreamTls(config.tls)
    this.tls = tls
    // TLS settings and a hash of the TLS files' contents: a changed CA or client certificate rebuilds the pools (so does a new protocol).
    const poolOptions = JSON.stringify([config.connections, config.timeouts, tls?.poolKey ?? null, config.protocol])
    const limits = { maxQueue: config.maxQueue, queueTimeout: config.timeouts.queue, panicThreshold: config.panicThreshold }
    this.shards = config.shards.map((shard) => {
      const servers = shard.servers.map((s) => {
        const tunables = {
          weight: s.weight,
          maxConn: s.maxConn ?? config.maxConn,
          slowStart: config.slowStart,
          primary: s.role === 'primary',
          ...(decay === undefined ? {} : { latencyDecay: decay })
        }
        const sendProxyProtocol = s.sendProxyProtocol ?? config.sendProxyProtocol
        // A PROXY header changes what each connection is: a new one rebuilds the pool.
        const poolKey = sendProxyProtocol === undefined ? `${s.url} ${poolOptions}` : `${s.url} ${poolOptions} proxy-${sendProxyProtocol}`
        const kept = deps.reuse?.(serverIdentity(config.name, shard.name, s.name), poolKey)
        if (kept !== undefined) {
          kept.retune(tunables)
          return kept
        }
        const dispatcher = (deps.dispatcher ?? createPool)(s, config, tls)
        return new Server({
          name: s.name, url: s.url, backend: config.name, shard: shard.name, dispatcher, poolKey, ...tunables,
          // One request per http1 connection: a request past `connections` queues where it is seen and bounded (maxQueue, timeouts.queue).
          ...(config.protocol === 'http1' && sendProxyProtocol === undefined ? { slots: config.connections } : {}),
          ...(sendProxyProtocol === undefined ? {} : { sendProxyProtocol })
        })
      })
      all.push(...servers)
      return new Shard(shard.name, servers, this.#balancer(servers), limits)
    })
    this.servers = all
    // HTTP/2 flow control holds any origin back; over HTTP/1.1 it depends on the client the pools use.
    this.pausable = config.protocol !== 'http1' || all.every((s) => pausesAnyBody(s.dispatcher))
    this.selector = new ShardSelector(this.shards, config.shardBy)
    this.#outlier = config.outlierDetection === undefined
      ? undefined
      : createOutlierDetector(this.shards.map((s) => s.servers), config.outlierDetection, {
        ...(deps.log === undefined ? {} : { log: deps.log }),
        ...(deps.onEjection === undefined ? {} : { onEjection: deps.onEjection })
      })
    const cookie = config.sticky?.cookie
    this.#cookies = new Map(cookie === undefined ? [] : all.map((s) => [s, stickyCookies(cookie, s.id)] as const))
  }

  /** Set-Cookie value pinning a client to `server`, or undefined when sticky is off. */
  stickyCookie (server: Server, secure: boolean): string | undefined {
    const pair = this.#cookies.get(server)
    return pair === undefined ? undefined : pair[secure ? 1 : 0]
  }

  /** ExchangeAccounting: the servers' response-head timeout (ms). */
  get headersTimeout (): number { return this.config.timeouts.headers }

  /** Another worker ejected `server` of this backend (rank `rank`): see OutlierDetector.contest. */
  contest (server: Server, rank: number): void {
    this.#outlier?.contest(server, rank)
  }

  /** Feed outlier detection with how an exchange ended. */
  observe (server: Server, outcome: ExchangeOutcome): void {
    server.consecutiveFailures = outcome === 'success' ? 0 : server.consecutiveFailures + 1
    this.#outlier?.observe(server, outcome)
  }

  /** A first attempt was sent: it earns its share of a retry. */
  deposit (): void {
    const t = this.#retryMillis + this.#depositMillis
    this.#retryMillis = t > RETRY_BUCKET_CAP * 1000 ? RETRY_BUCKET_CAP * 1000 : t
  }

  /** Take one retry from the budget; the first minRetryConcurrency concurrent retries are free. */
  retryAllowed (): boolean {
    if (this.retrying < this.config.retries.minRetryConcurrency) return true
    if (this.#retryMillis < 1000) return false
    this.#retryMillis -= 1000
    return true
  }

  /** A read-only snapshot for status pages, logs and `explain --admin`. */
  snapshot (): BackendStatus {
    const now = performance.now()
    const checked = this.config.healthCheck !== undefined
    return {
      name: this.name,
      algorithm: this.config.balance.algorithm,
      active: this.active,
      retries: this.retries,
      shards: this.shards.map((shard) => ({
        name: shard.name,
        queued: shard.queue.size,
        servers: shard.servers.map((s) => ({
          name: s.name,
          url: s.url,
          role: s.primary ? 'primary' as const : 'replica' as const,
          weight: s.weight,
          state: serverState(checked, s.checkUp, s.ejected, s.adminState),
          adminState: s.adminState,
          checked,
          consecutiveFailures: s.consecutiveFailures,
          ...(s.changedAt === 0 ? {} : { sinceChangeMs: Math.round(now - s.changedAt) }),
          healthy: s.healthy,
          checkUp: s.checkUp,
          ejected: s.ejected,
          active: s.active,
          requests: s.requests,
          failures: s.failures,
          ...(s.lastCheck === undefined ? {} : { lastCheck: { ok: s.lastCheck.ok, reason: s.lastCheck.reason, ...(s.lastCheck.status === undefined ? {} : { status: s.lastCheck.status }) } }),
          maxConn: s.maxConn,
          effectiveWeight: s.effectiveWeight(now),
          ...(s.healthy && s.upSince !== 0 ? { upForMs: Math.round(now - s.upSince) } : {}),
          ...(s.tracksLatency ? { latencyCost: peakEwmaCurrent(s.latencyCost, s.latencyStamp, now, s.latencyDecay) } : {})
        }))
      }))
    }
  }

  #balancer (servers: readonly Server[]): Balancer {
    const balancer = createBalancer(this.config.balance, servers)
    return this.config.sticky === undefined ? balancer : withSticky(balancer, servers)
  }

  /** The admin API set `server`'s weight: its shard's balancer is built again (rings and weight tables are made at build). */
  reweigh (server: Server, weight: number): void {
    server.weightOverride = weight
    server.weight = weight
    for (const shard of this.shards) if (shard.servers.includes(server)) shard.balancer = this.#balancer(shard.servers)
  }

  /** Stop background work (outlier timers); servers and pools are left to the caller. */
  retire (): void {
    this.retired = true
    this.#outlier?.stop()
  }

  async close (): Promise<void> {
    this.retire()
    await Promise.all(this.servers.map((s) => s.dispatcher.close()))
  }
}

/** The Set-Cookie values pinning a client to server `id`: [plain listener, TLS listener]. */
export function stickyCookies (c: StickyCookieConfig, id: string): readonly [string, string] {
  let v = `${c.name}=${id}; Path=${c.path}; SameSite=${c.sameSite}`
  if (c.httpOnly) v += '; HttpOnly'
  if (c.maxAge !== undefined) v += `; Max-Age=${Math.round(c.maxAge / 1000)}`
  // SameSite=None is only honoured with Secure, so it always gets it.
  return [c.sameSite === 'None' ? `${v}; Secure` : v, `${v}; Secure`]
}
