// Outlier ejections across a cluster's processes. The worker that saw the
// failures decides (health/outlier.ts) and tells the others through the
// primary; each notice carries how long the ejection lasts, so a worker lifts
// it on time by itself even when the worker that decided dies before it can
// say "back". The primary keeps the ejections in force for the snapshot a
// worker (re)starting gets at boot.
import type { ClearTimer, SetTimer, TimerHandle } from '../health/checker.js'
import { serversByIdentity, type RuntimeState } from '../proxy/state.js'
import { serverIdentity, type Server } from '../upstream/server.js'

/** An outlier ejection one worker decided (or ended), for the others to apply. */
export interface EjectionNotice {
  readonly backend: string
  readonly shard: string
  readonly server: string
  readonly ejected: boolean
  readonly reason: string
  /** An ejection: ms it lasts from now (the deciding detector's ejection time); 0 for "back". */
  readonly ms: number
  /** An ejection's rank (health/outlier.ts contest): wall-clock ms × 1024 + the deciding worker's id. */
  readonly rank?: number
}

/** The rank of an ejection worker `id` decides now: ordered alike in every worker (same clock), ties by worker id. */
export function ejectionRank (id: number): number {
  return Date.now() * 1024 + (id % 1024)
}

export interface EjectionTimers {
  readonly setTimeout?: SetTimer
  readonly clearTimeout?: ClearTimer
}

/**
 * Another worker's ejections, applied here. Only those does the other's
 * "back", or their own expiry, bring back: a server this worker's detector
 * ejected stays its business. Counted and logged by the worker that decided.
 */
export class RemoteEjections {
  readonly #held = new Map<string, { readonly server: Server, readonly timer: TimerHandle }>()
  readonly #set: SetTimer
  readonly #clear: ClearTimer

  constructor (timers: EjectionTimers = {}) {
    // unref: an ejection to lift later keeps no worker from exiting.
    this.#set = timers.setTimeout ?? ((fn, ms) => setTimeout(fn, ms).unref())
    this.#clear = timers.clearTimeout ?? ((h) => { clearTimeout(h as ReturnType<typeof setTimeout>) })
  }

  /** How many servers are out on another worker's word. */
  get size (): number { return this.#held.size }

  /** Applies `n`; returns the server an ejection put out here (undefined for a "back", or when it did not apply). */
  apply (state: RuntimeState, n: EjectionNotice): Server | undefined {
    const id = serverIdentity(n.backend, n.shard, n.server)
    const held = this.#held.get(id)
    if (!n.ejected) {
      if (held !== undefined) this.#lift(id, held.server, `${n.reason} (another worker)`)
      return undefined
    }
    const s = held?.server ?? serversByIdentity(state).get(id)
    // Unknown here (another config generation), or ejected by this worker's own detector.
    if (s === undefined || (held === undefined && s.ejected)) return undefined
    if (held !== undefined) this.#clear(held.timer)
    const timer = this.#set(() => { this.#lift(id, s, 'ejection time over (another worker\'s ejection)') }, Math.max(0, n.ms))
    this.#held.set(id, { server: s, timer })
    if (!s.ejected) s.setEjected(true, `${n.reason} (another worker)`, false)
    return s
  }

  /** This worker's detector decided about `server` (ejected or back): another's word no longer holds it. */
  forget (server: Server): void {
    const held = this.#held.get(server.identity)
    if (held === undefined) return
    this.#clear(held.timer)
    this.#held.delete(server.identity)
  }

  /** A reload lifted every ejection (reload.ts): none is held on another's word any more. */
  clear (): void {
    for (const h of this.#held.values()) this.#clear(h.timer)
    this.#held.clear()
  }

  #lift (id: string, s: Server, reason: string): void {
    const held = this.#held.get(id)
    if (held !== undefined) this.#clear(held.timer)
    this.#held.delete(id)
    if (s.ejected) s.setEjected(false, reason, false)
  }
}

/**
 * The primary's record of the ejections in force, from the notices it passes
 * on: what a worker that boots (a new one, or one restarted after a crash)
 * applies before it serves, each for the time it has left.
 */
export class EjectionTable {
  readonly #now: () => number
  readonly #inForce = new Map<string, { readonly notice: EjectionNotice, readonly until: number }>()

  /** `now`: ms, monotonic (default performance.now). */
  constructor (now: () => number = () => performance.now()) {
    this.#now = now
  }

  record (n: EjectionNotice): void {
    const id = serverIdentity(n.backend, n.shard, n.server)
    if (n.ejected) this.#inForce.set(id, { notice: n, until: this.#now() + n.ms })
    else this.#inForce.delete(id)
  }

  /** A reload lifted every ejection in every worker. */
  clear (): void {
    this.#inForce.clear()
  }

  /** The ejections still in force, each with the time it has left. */
  snapshot (): EjectionNotice[] {
    const now = this.#now()
    const out: EjectionNotice[] = []
    for (const [id, e] of this.#inForce) {
      if (e.until <= now) this.#inForce.delete(id)
      else out.push({ ...e.notice, ms: e.until - now })
    }
    return out
  }
}
