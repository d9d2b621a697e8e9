// The HTTP/1.1 idle timeout (timeouts.clientIdle), swept. Node's own
// (server.keepAliveTimeout) re-arms a socket timer twice per request, at the
// response's end and again when the next request starts: a few per cent of a
// cache hit's CPU. One timer per listener instead looks at its HTTP/1.1
// connections every quarter of the timeout (at most every second) and closes
// those with no request in flight that read nothing for the whole timeout, as
// Node's timer would have (it is also reset by reads), up to a quarter later.
import type { Socket } from 'node:net'

/** The longest wait between two sweeps, ms. */
const MAX_PERIOD_MS = 1000

interface Watched {
  /** performance.now() when the connection last read something or had a request in flight. */
  since: number
  /** Its bytesRead then. */
  bytes: number
}

/** What the sweep reads of a Node HTTP/1.1 socket: the response in flight, if any (null between requests). */
type HttpSocket = Socket & { _httpMessage?: unknown }

export class KeepAliveSweep {
  readonly #sockets = new Map<Socket, Watched>()
  #ms: number
  #timer: NodeJS.Timeout | undefined

  /** `ms`: the idle timeout; 0 = none (connections stay open until the client closes them). */
  constructor (ms: number) {
    this.#ms = ms
  }

  get ms (): number { return this.#ms }

  /** A reload changed the timeout: connections already open follow the new one. */
  set ms (ms: number) {
    if (ms === this.#ms) return
    this.#ms = ms
    this.#stop()
    if (this.#sockets.size > 0) this.#start()
  }

  get size (): number { return this.#sockets.size }

  /** A connection now speaking HTTP/1.1 (after the TLS handshake on a TLS listener). */
  add (socket: Socket): void {
    this.#sockets.set(socket, { since: performance.now(), bytes: socket.bytesRead })
    socket.once('close', () => this.forget(socket))
    if (this.#timer === undefined) this.#start()
  }

  /** Handed over (an upgrade, a tunnel): its own timeouts apply from now on. */
  forget (socket: Socket): void {
    this.#sockets.delete(socket)
  }

  /** Close what has been idle for the timeout at `now` (performance.now()). */
  sweep (now: number): void {
    const ms = this.#ms
    for (const [socket, w] of this.#sockets) {
      const bytes = socket.bytesRead
      if (bytes !== w.bytes || (socket as HttpSocket)._httpMessage != null) {
        w.bytes = bytes
        w.since = now
      } else if (now - w.since >= ms) {
        this.#sockets.delete(socket)
        socket.destroy()
      }
    }
    if (this.#sockets.size === 0) this.#stop()
  }

  /** The listener closed. */
  stop (): void {
    this.#stop()
  }

  #start (): void {
    if (this.#ms <= 0) return
    this.#timer = setInterval(onSweep, Math.min(MAX_PERIOD_MS, Math.max(1, this.#ms / 4)), this)
    this.#timer.unref() // as Node's own socket timers: never what keeps the process up
  }

  #stop (): void {
    if (this.#timer !== undefined) clearInterval(this.#timer)
    this.#timer = undefined
  }
}

function onSweep (sweep: KeepAliveSweep): void { sweep.sweep(performance.now()) }
