// The HTTP/1.1 idle timeout (timeouts.clientIdle), swept. Node's own
// (server.keepAliveTimeout) re-arms a socket timer twice per request, at the
// response's end and again when the next request starts: a few per cent of a
// cache hit's CPU. One timer per listener instead looks at its HTTP/1.1
// connections every quarter of the timeout (at most every second) and closes
// those with no request in flight that read nothing for the whole timeout, as
// Node's timer would have (it is also reset by reads), up to a quarter later.
//
// Reads alone do not keep a connection forever: bytes that no answer follows
// (a client that sends only CRLF, which llhttp skips before a request line,
// so no headersTimeout ever starts) are closed clientHeaders after they began,
// plus a sweep. A real head in progress gets node:http's 408 before that.
//
// The same sweep finds answers stalled on a client that takes nothing
// (timeouts.clientSend) whose own write never backed up, so no timer of the
// session's watches them (proxy/session.ts): a small answer waiting behind
// an earlier one that filled the kernel's buffers. A connection whose answer
// has bytes waiting while the socket finishes writing none for clientSend is
// handed to `onStalled`. Nothing per request.
import type { Socket } from 'node:net'

/** The longest wait between two sweeps, ms. */
const MAX_PERIOD_MS = 1000

interface Watched {
  /** performance.now() when the connection last read something or had a request in flight. */
  since: number
  /** Its bytesRead and bytesWritten then. */
  bytes: number
  out: number
  /** performance.now() when bytes came that no answer has followed yet; NaN when none. */
  unanswered: number
  /** Bytes the socket has finished writing (bytesWritten less writableLength), and performance.now() since when that has not moved while some waited. */
  written: number
  writtenSince: number
}

/** What the sweep reads of a Node HTTP/1.1 socket: the response in flight, if any (null between requests). */
type HttpSocket = Socket & { _httpMessage?: unknown }

/** Told of a connection whose answer in flight has waited for the client for clientSend. */
export type SendStalled = (socket: Socket, response: unknown) => void

export class KeepAliveSweep {
  readonly #sockets = new Map<Socket, Watched>()
  #ms: number
  #sendMs: number
  #headMs: number
  readonly #onStalled: SendStalled | undefined
  #timer: NodeJS.Timeout | undefined

  /**
   * `ms`: the idle timeout; 0 = none (connections stay open until the client
   * closes them). `sendMs`: how long an answer's waiting bytes may stay
   * untaken before `onStalled` is told (0 = never). `headMs`: how long bytes
   * may keep coming with no answer (clientHeaders; 0 = as long as they come).
   */
  constructor (ms: number, sendMs = 0, onStalled?: SendStalled, headMs = 0) {
    this.#ms = ms
    this.#sendMs = onStalled === undefined ? 0 : sendMs
    this.#onStalled = onStalled
    this.#headMs = headMs
  }

  /** A reload changed clientHeaders. */
  set headMs (ms: number) {
    if (ms === this.#headMs) return
    this.#headMs = ms
    this.#restart()
  }

  get ms (): number { return this.#ms }

  /** A reload changed the timeout: connections already open follow the new one. */
  set ms (ms: number) {
    if (ms === this.#ms) return
    this.#ms = ms
    this.#restart()
  }

  get sendMs (): number {
    return this.#sendMs
  }

  /** A reload changed clientSend. */
  set sendMs (ms: number) {
    if (this.#onStalled === undefined || ms === this.#sendMs) return
    this.#sendMs = ms
    this.#restart()
  }

  #restart (): void {
    this.#stop()
    if (this.#sockets.size > 0) this.#start()
  }

  get size (): number { return this.#sockets.size }

  /** A connection now speaking HTTP/1.1 (after the TLS handshake on a TLS listener). */
  add (socket: Socket): void {
    const now = performance.now()
    this.#sockets.set(socket, { since: now, bytes: socket.bytesRead, out: socket.bytesWritten, unanswered: NaN, written: 0, writtenSince: now })
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
    const sendMs = this.#sendMs
    for (const [socket, w] of this.#sockets) {
      const bytes = socket.bytesRead
      const response = (socket as HttpSocket)._httpMessage
      if (response != null && sendMs > 0) {
        // Progress is what the socket finished writing: a new slice of the same size waiting is not the same wait.
        const pending = socket.writableLength
        const written = socket.bytesWritten - pending
        if (pending === 0 || written !== w.written) {
          w.written = written
          w.writtenSince = now
        } else if (now - w.writtenSince >= sendMs) {
          this.#sockets.delete(socket)
          this.#onStalled!(socket, response)
          continue
        }
      }
      const out = socket.bytesWritten
      if (response != null || out !== w.out) {
        // A request in flight, or an answer went out since the last look.
        w.bytes = bytes
        w.out = out
        w.since = now
        w.unanswered = NaN
      } else if (bytes !== w.bytes) {
        w.bytes = bytes
        w.since = now
        if (Number.isNaN(w.unanswered)) w.unanswered = now
      }
      const headMs = this.#headMs
      if ((ms > 0 && now - w.since >= ms) ||
        (headMs > 0 && now - w.unanswered >= headMs + MAX_PERIOD_MS)) { // NaN compares false
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
    const set = [this.#ms, this.#sendMs, this.#headMs].filter((v) => v > 0)
    if (set.length === 0) return
    this.#timer = setInterval(onSweep, Math.min(MAX_PERIOD_MS, Math.max(1, Math.min(...set) / 4)), this)
    this.#timer.unref() // as Node's own socket timers: never what keeps the process up
  }

  #stop (): void {
    if (this.#timer !== undefined) clearInterval(this.#timer)
    this.#timer = undefined
  }
}

function onSweep (sweep: KeepAliveSweep): void { sweep.sweep(performance.now()) }
