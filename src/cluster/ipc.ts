/**
 * Calls between the primary and its workers over the cluster IPC channel:
 * `call(op, arg)` on one side, `handle(op, fn)` on the other, answers matched
 * by id. One-way notices (a health transition, an ejection) are `notify`.
 *
 * The channel is a Port (`process` in a worker, `cluster.Worker` in the
 * primary) so the same code runs on both ends. A call fails, never hangs: on
 * its timeout, or at once when the channel closes (a worker that died
 * answers nothing).
 */

/** The one part of `process` / `cluster.Worker` this needs. */
export interface Port {
  /** With a callback, a failed write (EPIPE as the peer dies) is passed to it instead of an 'error' event nobody handles. */
  send (message: unknown, sendHandle: undefined, options: undefined, callback: (err: Error | null) => void): boolean
  on (event: 'message', listener: (message: unknown) => void): unknown
  on (event: 'disconnect', listener: () => void): unknown
  off (event: 'message', listener: (message: unknown) => void): unknown
  off (event: 'disconnect', listener: () => void): unknown
}

/** Every message carries this tag, so other users of the channel pass through. */
const TAG = 'switchyard'

type Message =
  | { readonly tag: typeof TAG, readonly kind: 'call', readonly id: number, readonly op: string, readonly arg: unknown }
  | { readonly tag: typeof TAG, readonly kind: 'reply', readonly id: number, readonly ok: true, readonly value: unknown }
  | { readonly tag: typeof TAG, readonly kind: 'reply', readonly id: number, readonly ok: false, readonly error: string }
  | { readonly tag: typeof TAG, readonly kind: 'notice', readonly op: string, readonly arg: unknown }

function isMessage (m: unknown): m is Message {
  return typeof m === 'object' && m !== null && (m as { tag?: unknown }).tag === TAG
}

/** A call that the other side did not answer, or answered with an error. */
export class IpcError extends Error {
  readonly op: string
  constructor (op: string, message: string) {
    super(`${op}: ${message}`)
    this.op = op
  }
}

type Handler = (arg: unknown) => unknown
type Pending = { readonly op: string, readonly resolve: (v: unknown) => void, readonly reject: (e: Error) => void, readonly timer: NodeJS.Timeout }

export class Channel {
  private readonly port: Port
  private readonly handlers = new Map<string, Handler>()
  private readonly listeners = new Map<string, Handler>()
  private readonly pending = new Map<number, Pending>()
  private nextId = 1
  private closed = false
  private readonly onMessage = (m: unknown): void => { this.receive(m) }
  private readonly onDisconnect = (): void => { this.close('the channel closed') }

  constructor (port: Port) {
    this.port = port
    port.on('message', this.onMessage)
    port.on('disconnect', this.onDisconnect)
  }

  /** Answers `op` calls from the other side; a throw or rejection is sent back as the error. */
  handle (op: string, fn: Handler): void {
    this.handlers.set(op, fn)
  }

  /** Receives `op` notices from the other side. */
  listen (op: string, fn: Handler): void {
    this.listeners.set(op, fn)
  }

  call (op: string, arg: unknown, timeoutMs: number): Promise<unknown> {
    if (this.closed) return Promise.reject(new IpcError(op, 'the channel is closed'))
    const id = this.nextId++
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id)
        reject(new IpcError(op, `no answer within ${timeoutMs} ms`))
      }, timeoutMs)
      this.pending.set(id, { op, resolve, reject, timer })
      this.trySend({ tag: TAG, kind: 'call', id, op, arg }, () => {
        const p = this.pending.get(id)
        if (p === undefined) return
        clearTimeout(p.timer)
        this.pending.delete(id)
        reject(new IpcError(op, 'could not be sent'))
      })
    })
  }

  /** Fire and forget: false when it could not be sent (the other side is gone). */
  notify (op: string, arg: unknown): boolean {
    return !this.closed && this.trySend({ tag: TAG, kind: 'notice', op, arg })
  }

  /** Fails every pending call and stops listening. */
  close (reason = 'the channel was closed'): void {
    if (this.closed) return
    this.closed = true
    this.port.off('message', this.onMessage)
    this.port.off('disconnect', this.onDisconnect)
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer)
      this.pending.delete(id)
      p.reject(new IpcError(p.op, reason))
    }
  }

  /**
   * False when the channel is already closed. A write that fails later (the
   * peer died with the message queued) calls `failed` once; either way the
   * caller's 'disconnect'/'exit' handling deals with the peer.
   */
  private trySend (m: Message, failed?: () => void): boolean {
    let done = false
    const fail = (): void => { if (!done) { done = true; failed?.() } }
    try {
      this.port.send(m, undefined, undefined, (err) => { if (err !== null) fail() })
      return true
    } catch {
      // ERR_IPC_CHANNEL_CLOSED: the other side is gone.
      fail()
      return false
    }
  }

  private receive (m: unknown): void {
    if (!isMessage(m)) return
    switch (m.kind) {
      case 'call': void this.answer(m.id, m.op, m.arg); return
      case 'notice': this.listeners.get(m.op)?.(m.arg); return
      case 'reply': {
        const p = this.pending.get(m.id)
        if (p === undefined) return // answered after its timeout
        this.pending.delete(m.id)
        clearTimeout(p.timer)
        if (m.ok) p.resolve(m.value)
        else p.reject(new IpcError(p.op, m.error))
      }
    }
  }

  private async answer (id: number, op: string, arg: unknown): Promise<void> {
    const fn = this.handlers.get(op)
    try {
      if (fn === undefined) throw new Error('no handler on this side')
      const value = await fn(arg)
      this.trySend({ tag: TAG, kind: 'reply', id, ok: true, value })
    } catch (err) {
      this.trySend({ tag: TAG, kind: 'reply', id, ok: false, error: err instanceof Error ? err.message : String(err) })
    }
  }
}
