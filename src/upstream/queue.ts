// A bounded FIFO of waiting requests (HAProxy's per-backend queue). Waiters
// can leave from the middle (timeout, client gone) and are released at once:
// an insertion-ordered Set gives O(1) push, removal and oldest-first shift,
// and holds nothing of a waiter that left.
import type { PickContext } from '../balancer/pick.js'
import type { ErrorKind } from '../errors.js'
import type { Server } from './server.js'

export interface Queued {
  /** True while waiting in a queue; cleared when it leaves by any way. */
  queued: boolean
}

/**
 * A request that needs a server of a shard, first try or after waiting:
 * an ordinary request (the session) or a WebSocket upgrade alike. The
 * pipeline picks, queues at maxConn and times out the wait the same way for
 * both; only sending differs.
 */
export interface Waiter extends Queued, PickContext {
  /** Set before each pick: too few healthy servers, so health is ignored. */
  panic: boolean
  /** performance.now() at the request's start: the queue deadline counts from it. */
  readonly startTime: number
  /** Gone: nothing left to send or answer. */
  readonly closed: boolean
  queueTimer: NodeJS.Timeout | undefined
  /** Send the request to `server`, which the balancer picked. */
  send (server: Server): void
  /** Answer with one of our errors (no server, queue full, queue timeout). */
  fail (kind: ErrorKind): void
}

export class WaitQueue<T extends Queued> {
  readonly max: number
  readonly #items = new Set<T>()

  constructor (max: number) {
    this.max = max
  }

  /** Live waiters. */
  get size (): number { return this.#items.size }

  /** Enqueue; false when full. */
  push (item: T): boolean {
    if (this.#items.size >= this.max) return false
    item.queued = true
    this.#items.add(item)
    return true
  }

  /** Oldest waiter, removed; undefined when empty. */
  shift (): T | undefined {
    const first = this.#items.values().next()
    if (first.done === true) return undefined
    this.#items.delete(first.value)
    first.value.queued = false
    return first.value
  }

  /** Oldest first; a waiter may be removed (any of them) while this runs. */
  [Symbol.iterator] (): IterableIterator<T> {
    return this.#items.values()
  }

  /** Take a waiter out wherever it is. */
  remove (item: T): void {
    if (!this.#items.delete(item)) return
    item.queued = false
  }
}
