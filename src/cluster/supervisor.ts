/**
 * The primary's worker table: starts `count` workers, replaces one that
 * exits unexpectedly (at once, or after the restart policy's back-off in a
 * crash loop), and stops them all with a drain deadline. It knows processes
 * only through `spawn`, so the primary passes `cluster.fork` and tests pass
 * `child_process.fork`: both are real processes.
 *
 * A worker is `starting` until it calls `ready` over IPC, `draining` once
 * asked to stop, `exited` between an exit and its replacement.
 */
import { Channel, type Port } from './ipc.js'
import { FRESH_SLOT, RESTART_POLICY, nextRestart, type RestartPolicy, type SlotHistory } from './restart.js'

export type WorkerState = 'starting' | 'ready' | 'draining' | 'exited'

/** One started process, as the supervisor needs it. */
export interface WorkerProcess {
  readonly pid: number
  readonly port: Port
  kill (signal: NodeJS.Signals): void
  onExit (fn: (code: number | null, signal: NodeJS.Signals | null) => void): void
}

/** What `/status` shows of a worker. */
export interface WorkerInfo {
  readonly id: number
  readonly pid: number
  readonly state: WorkerState
  readonly startedAt: string
  readonly restarts: number
}

export interface SupervisorEvents {
  /** A worker exited while it should have been serving; `delayMs` until its replacement. */
  crashed?: (info: WorkerInfo, how: { code: number | null, signal: NodeJS.Signals | null, delayMs: number }) => void
  ready?: (info: WorkerInfo) => void
  /** Any exit, expected or not (before a replacement is scheduled). */
  exited?: (info: WorkerInfo) => void
}

export interface SupervisorOptions {
  readonly count: number
  /** `id` is the slot (1..count): stable across restarts, like nginx's worker slot. */
  readonly spawn: (id: number) => WorkerProcess
  readonly policy?: RestartPolicy
  readonly events?: SupervisorEvents
  readonly now?: () => number
}

class Slot {
  readonly id: number
  proc: WorkerProcess | undefined
  channel: Channel | undefined
  state: WorkerState = 'exited'
  startedAtMs = 0
  restarts = 0
  history: SlotHistory = FRESH_SLOT
  timer: NodeJS.Timeout | undefined
  exited: Promise<void> = Promise.resolve()

  constructor (id: number) {
    this.id = id
  }

  info (): WorkerInfo {
    return { id: this.id, pid: this.proc?.pid ?? 0, state: this.state, startedAt: new Date(this.startedAtMs).toISOString(), restarts: this.restarts }
  }
}

export class Supervisor {
  private readonly opts: SupervisorOptions
  private readonly policy: RestartPolicy
  private readonly now: () => number
  private readonly slots: Slot[]
  private stopping = false
  /** Until the first start settles, an exit fails the start instead of being replaced. */
  private booting: ((err: Error) => void) | undefined
  /** Called on each new worker's channel, to install the primary's handlers. */
  private onChannel: (channel: Channel, id: number) => void = () => {}

  constructor (opts: SupervisorOptions) {
    this.opts = opts
    this.policy = opts.policy ?? RESTART_POLICY
    this.now = opts.now ?? Date.now
    this.slots = Array.from({ length: opts.count }, (_, i) => new Slot(i + 1))
  }

  /** Starts every worker and resolves when all have called `ready`, or rejects on the first that exits first. */
  async start (onChannel: (channel: Channel, id: number) => void = () => {}): Promise<void> {
    this.onChannel = onChannel
    const failed = new Promise<never>((_resolve, reject) => { this.booting = reject })
    try {
      await Promise.race([Promise.all(this.slots.map((s) => this.launch(s))), failed])
    } finally {
      this.booting = undefined
    }
  }

  workers (): WorkerInfo[] {
    return this.slots.map((s) => s.info())
  }

  /** The channels of every worker starting or ready: where broadcasts go (health verdicts). */
  channels (): Channel[] {
    return this.#channelsOf((state) => state === 'starting' || state === 'ready')
  }

  /** The channels of the workers still starting (spawned, not ready yet). */
  startingChannels (): Channel[] {
    return this.#channelsOf((state) => state === 'starting')
  }

  #channelsOf (wanted: (state: WorkerState) => boolean): Channel[] {
    const out: Channel[] = []
    for (const s of this.slots) if (wanted(s.state) && s.channel !== undefined) out.push(s.channel)
    return out
  }

  /** The channels of the workers that are ready, for fan-out (reload, purge, status), with the process each one reaches. */
  readyChannels (): Array<{ id: number, pid: number, channel: Channel }> {
    const out: Array<{ id: number, pid: number, channel: Channel }> = []
    for (const s of this.slots) if (s.state === 'ready' && s.channel !== undefined) out.push({ id: s.id, pid: s.proc?.pid ?? 0, channel: s.channel })
    return out
  }

  /**
   * Asks every worker to drain within `drainMs` (the worker closes its
   * listeners and exits when its requests are done), then SIGKILLs what is
   * left after the deadline plus a grace second. Resolves when all exited.
   */
  async stop (drainMs: number): Promise<void> {
    this.stopping = true
    await Promise.all(this.slots.map(async (s) => {
      clearTimeout(s.timer)
      if (s.proc === undefined || s.state === 'exited') return
      s.state = 'draining'
      s.channel?.notify('drain', { drainMs })
      const kill = setTimeout(() => s.proc?.kill('SIGKILL'), drainMs + 1000)
      await s.exited
      clearTimeout(kill)
    }))
  }

  private launch (s: Slot): Promise<void> {
    const proc = this.opts.spawn(s.id)
    const channel = new Channel(proc.port)
    s.proc = proc
    s.channel = channel
    s.state = 'starting'
    s.startedAtMs = this.now()
    let markExited!: () => void
    s.exited = new Promise((resolve) => { markExited = resolve })
    return new Promise((resolve, reject) => {
      channel.listen('ready', () => {
        if (s.proc !== proc || s.state !== 'starting') return
        s.state = 'ready'
        this.opts.events?.ready?.(s.info())
        resolve()
      })
      this.onChannel(channel, s.id)
      proc.onExit((code, signal) => {
        channel.close('the worker exited')
        if (s.proc !== proc) return
        const wasServing = s.state === 'starting' || s.state === 'ready'
        s.state = 'exited'
        markExited()
        this.opts.events?.exited?.(s.info())
        const err = new Error(`worker ${s.id} (pid ${proc.pid}) exited before it was ready (${signal ?? `code ${String(code)}`})`)
        reject(err)
        if (!wasServing || this.stopping) return
        if (this.booting !== undefined) {
          // The first start fails as a whole (a worker ready a moment ago included): nothing to replace yet.
          this.booting(new Error(`worker ${s.id} (pid ${proc.pid}) exited while the workers were starting (${signal ?? `code ${String(code)}`})`))
          return
        }
        const d = nextRestart(this.policy, s.history, this.now() - s.startedAtMs)
        s.history = d.history
        this.opts.events?.crashed?.(s.info(), { code, signal, delayMs: d.delayMs })
        s.timer = setTimeout(() => {
          if (this.stopping) return
          s.restarts++
          this.launch(s).catch(() => {}) // its exit is handled like any other
        }, d.delayMs)
      })
    })
  }
}
