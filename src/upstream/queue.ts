// A bounded FIFO of waiting requests (HAProxy's per-backend queue). Waiters
// can leave from the middle (timeout, client gone); they are only marked and
// skipped when they reach the head, so every operation is O(1) amortized
// and nothing is spliced. No Array.shift: a head index walks the array.

export interface Queued {
  /** True while waiting in a queue; cleared when it leaves by any way. */
  queued: boolean
}

export class WaitQueue<T extends Queued> {
  readonly max: number
  #items: (T | undefined)[] = []
  #head = 0
  #size = 0

  constructor (max: number) {
    this.max = max
  }

  /** Live waiters. */
  get size (): number { return this.#size }

  /** Enqueue; false when full. */
  push (item: T): boolean {
    if (this.#size >= this.max) return false
    item.queued = true
    this.#items.push(item)
    this.#size++
    return true
  }

  /** Oldest live waiter, removed; undefined when empty. */
  shift (): T | undefined {
    const items = this.#items
    while (this.#head < items.length) {
      const item = items[this.#head]
      items[this.#head++] = undefined
      if (item !== undefined && item.queued) {
        item.queued = false
        this.#size--
        this.#compact()
        return item
      }
    }
    this.#compact()
    return undefined
  }

  /** Take a waiter out wherever it is (it is skipped later). */
  remove (item: T): void {
    if (!item.queued) return
    item.queued = false
    this.#size--
  }

  #compact (): void {
    if (this.#head === this.#items.length) {
      this.#items = []
      this.#head = 0
    } else if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head)
      this.#head = 0
    }
  }
}
