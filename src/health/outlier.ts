// Passive health: Envoy outlier detection (outlier_detection_impl.h), apart from
// the active checker. The proxy reports how every upstream exchange ended; a
// streak of failures ejects the server for a while, longer each time it is
// ejected again soon after, and never more than maxEjectionPercent of a shard
// (counting every server of it out now: ejected by this detector or, in a
// cluster, by another worker's, or down by its health check), nor the last
// server of a shard still serving. It only ever calls `server.setEjected`.
import type { OutlierDetectionConfig } from '../config/schema.js'
import type { ExchangeOutcome, Server } from '../upstream/server.js'
import type { ClearTimer, HealthLog, SetTimer, TimerHandle } from './checker.js'

/**
 * How one upstream exchange ended. `gateway`: connect failure, reset before a
 * response, timeout (counts toward both streaks, as Envoy maps those to
 * 502/503/504); `5xx`: the server answered 5xx.
 */

/**
 * The outcome of an answer with this status. 501 (method not implemented)
 * and 505 (HTTP version not supported) are the client's doing, on demand:
 * they are no failure of the server, as HAProxy's `observe layer7` counts
 * them (http_ana.c), else one client could eject healthy servers.
 */
export function statusOutcome (status: number): ExchangeOutcome {
  return status >= 500 && status !== 501 && status !== 505 ? '5xx' : 'success'
}


/**
 * Told of each ejection this detector decides and of its end (a cluster's
 * worker tells the others); `ms`: how long an ejection lasts (0 for its end).
 * For an ejection it returns its rank: its place in the order every worker
 * agrees on (see contest).
 */
export type EjectionListener = (server: Server, ejected: boolean, reason: string, ms: number) => number | undefined

export interface OutlierDeps {
  readonly log?: HealthLog
  readonly onEjection?: EjectionListener
  /** ms, monotonic (default performance.now). */
  readonly now?: () => number
  readonly setTimeout?: SetTimer
  readonly clearTimeout?: ClearTimer
}

export interface OutlierDetector {
  /** Per finished exchange: O(1), allocation-free on success. Unknown servers are ignored. */
  observe (server: Server, outcome: ExchangeOutcome): void
  /**
   * Another worker ejected `server` (its rank `rank`), already applied to it.
   * Two workers that each ejected a server of one shard in the same instant,
   * before either heard of the other, may together have taken the shard past
   * maxEjectionPercent (or out of servers): the later ejection, by rank, is
   * undone (its detector's own call here), so both end where one process
   * would have. Envoy decides on one thread; the workers here agree instead.
   */
  contest (server: Server, rank: number): void
  /** Cancel the ejection timers (ejected servers stay ejected: they go away with their backend). */
  stop (): void
}

interface ShardState {
  readonly servers: readonly Server[]
}

interface ServerState {
  readonly server: Server
  readonly shard: ShardState
  consecutive5xx: number
  consecutiveGateway: number
  ejected: boolean
  /** Envoy's eject time backoff: grows per ejection, decays while the server stays in. */
  ejections: number
  /** now() of the last un-ejection; -1 = never ejected. */
  lastUneject: number
  timer: TimerHandle | undefined
  /** The current ejection's rank, as its listener gave it (see contest). */
  rank: number
}

const noLog: HealthLog = { info () {}, warn () {} }

export function createOutlierDetector (
  shards: readonly (readonly Server[])[],
  config: OutlierDetectionConfig,
  deps: OutlierDeps = {}
): OutlierDetector {
  const log = deps.log ?? noLog
  const now = deps.now ?? (() => performance.now())
  const setTimer: SetTimer = deps.setTimeout ?? ((fn, ms) => setTimeout(fn, ms))
  const clearTimer: ClearTimer = deps.clearTimeout ?? ((h) => { clearTimeout(h as ReturnType<typeof setTimeout>) })
  const { consecutive5xx, consecutiveGatewayFailure, baseEjectionTime, maxEjectionTime, maxEjectionPercent } = config

  const states = new Map<Server, ServerState>()
  for (const servers of shards) {
    const shard: ShardState = { servers }
    for (const server of servers) {
      states.set(server, {
        server, shard, consecutive5xx: 0, consecutiveGateway: 0, ejected: false, ejections: 0, lastUneject: -1, timer: undefined, rank: 0
      })
    }
  }
  let stopped = false

  const fields = (s: ServerState, reason: string): Record<string, unknown> =>
    ({ backend: s.server.backend, shard: s.server.shard, server: s.server.name, reason })

  /**
   * Why ejecting `adding` would take its shard past what ejections may take,
   * if it would; with none, whether the shard is past it already (contest).
   * The shard's servers are read, not counted here: in a cluster another
   * worker's ejections are applied to them too (cluster/worker.ts), and the
   * cap is the shard's, not this process's. Servers down by their health
   * check count against it as ejected ones do, and the last server still
   * serving is never ejected, whatever the cap: a 5xx from it beats a 503
   * from us for every request (Envoy's panic threshold would route to it).
   */
  function overLimit (servers: readonly Server[], adding: Server | undefined): string | undefined {
    let out = 0
    let serving = 0
    for (const x of servers) {
      if (x === adding) continue
      if (!x.healthy) out++
      else if (x.adminState === 'ready' && !x.retired) serving++
    }
    // Would this one take the shard over the limit? (Envoy: (active + 1) / total.)
    if ((out + (adding === undefined ? 0 : 1)) * 100 > maxEjectionPercent * servers.length) return 'shard at max ejection percent'
    if (serving === 0) return 'the last server of its shard still serving'
    return undefined
  }

  function eject (s: ServerState, reason: string, count: number, threshold: number): void {
    const refused = overLimit(s.shard.servers, s.server)
    if (refused !== undefined) {
      // Once per streak: it is retried on each further failure, but logged when first reached.
      if (count === threshold) log.warn({ ...fields(s, reason), maxEjectionPercent }, `outlier detection: not ejected, ${refused}`)
      return
    }
    const at = now()
    // Decay: one step for each base ejection time spent back in since the last ejection ended.
    if (s.lastUneject >= 0 && baseEjectionTime > 0) {
      s.ejections = Math.max(0, s.ejections - Math.floor((at - s.lastUneject) / baseEjectionTime))
    }
    // Grow until the cap is reached, so decay starts from the cap, not from far above it.
    if (s.ejections * baseEjectionTime < maxEjectionTime) s.ejections++
    const ms = Math.min(baseEjectionTime * s.ejections, maxEjectionTime)
    s.ejected = true
    s.consecutive5xx = 0
    s.consecutiveGateway = 0
    s.timer = setTimer(() => { uneject(s) }, ms)
    s.server.setEjected(true, reason)
    log.warn({ ...fields(s, reason), ejectionMs: ms, ejections: s.ejections }, 'outlier detection: server ejected')
    s.rank = deps.onEjection?.(s.server, true, reason, ms) ?? 0
  }

  function uneject (s: ServerState, reason = 'ejection ended, on probation'): void {
    if (s.timer !== undefined) clearTimer(s.timer)
    s.timer = undefined
    if (stopped || !s.ejected) return
    s.ejected = false
    // On probation: a fresh streak, and the backoff remembers this ejection.
    s.consecutive5xx = 0
    s.consecutiveGateway = 0
    s.lastUneject = now()
    s.server.setEjected(false, reason)
    log.info({ ...fields(s, reason), ejections: s.ejections }, 'outlier detection: server back')
    deps.onEjection?.(s.server, false, reason, 0)
  }

  return {
    observe (server, outcome) {
      const s = states.get(server)
      // Out already, by this detector or by another worker's word: nothing to decide until it is back.
      if (s === undefined || s.ejected || server.ejected || stopped) return
      if (outcome === 'success') {
        s.consecutive5xx = 0
        s.consecutiveGateway = 0
        return
      }
      s.consecutive5xx++
      if (outcome === 'gateway') {
        s.consecutiveGateway++
        if (consecutiveGatewayFailure > 0 && s.consecutiveGateway >= consecutiveGatewayFailure) {
          eject(s, `consecutive gateway failures: ${s.consecutiveGateway}`, s.consecutiveGateway, consecutiveGatewayFailure)
          return
        }
      }
      if (consecutive5xx > 0 && s.consecutive5xx >= consecutive5xx) {
        eject(s, `consecutive 5xx: ${s.consecutive5xx}`, s.consecutive5xx, consecutive5xx)
      }
    },
    contest (server, remoteRank) {
      const first = states.get(server)
      if (first === undefined || stopped) return
      const servers = first.shard.servers
      for (;;) {
        if (overLimit(servers, undefined) === undefined) return
        // This detector's latest ejection in the shard that came after the other worker's yields.
        let latest: ServerState | undefined
        for (const x of servers) {
          const st = states.get(x)!
          if (st.ejected && st.rank > remoteRank && (latest === undefined || st.rank > latest.rank)) latest = st
        }
        if (latest === undefined) return
        // It never really counted: the backoff forgets it.
        latest.ejections = Math.max(0, latest.ejections - 1)
        uneject(latest, 'another worker ejected a server of its shard first; shard at max ejection percent')
      }
    },
    stop () {
      stopped = true
      for (const s of states.values()) {
        if (s.timer !== undefined) clearTimer(s.timer)
        s.timer = undefined
      }
    }
  }
}
