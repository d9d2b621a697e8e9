// Shared pieces for the end-to-end streaming / abort / WebSocket tests (their
// origins are origin.ts's): a record of finished proxy sessions, byte
// generators and checkers that never hold a whole body, and a memory watcher.
import { randomBytes } from 'node:crypto'
import type { Readable, Writable } from 'node:stream'
import type { PipelineHooks } from '../../src/proxy/pipeline.js'
import type { Session } from '../../src/proxy/session.js'

export const KiB = 1024
export const MiB = 1024 * KiB

/** One 64 KiB block of random bytes; every generated body repeats it. */
export const BLOCK: Buffer = randomBytes(64 * KiB)

/** Proxy YAML: a plain listener `http`, optionally a TLS listener `https`, every path to one server. */
export function proxyYaml (serverUrl: string, cert?: { certPath: string, keyPath: string }): string {
  const tls = cert === undefined
    ? ''
    : `  - name: https\n    bind: 127.0.0.1:0\n    tls: { cert: ${JSON.stringify(cert.certPath)}, key: ${JSON.stringify(cert.keyPath)} }\n`
  return `listeners:
  - name: http
    bind: 127.0.0.1:0
${tls}routes:
  - name: all
    backend: origin
backends:
  origin:
    servers:
      - url: ${serverUrl}
        name: origin-0
`
}

/** Every session the proxy finished, in order, with a way to wait for the next ones. */
export class SessionLog {
  readonly sessions: Session[] = []
  readonly #waiters: Array<{ pred: (s: Session) => boolean, resolve: (s: Session) => void }> = []
  readonly hooks: PipelineHooks = {
    onSessionEnd: (s) => {
      this.sessions.push(s)
      for (let i = 0; i < this.#waiters.length; i++) {
        const w = this.#waiters[i]!
        if (w.pred(s)) {
          this.#waiters.splice(i, 1)
          w.resolve(s)
          return
        }
      }
    }
  }

  /** The first ended session (past or future) whose target matches. */
  ended (target: string): Promise<Session> {
    const pred = (s: Session): boolean => s.plan?.target === target || s.url === target
    const found = this.sessions.find(pred)
    if (found !== undefined) return Promise.resolve(found)
    return new Promise((resolve) => this.#waiters.push({ pred, resolve }))
  }
}

/** Rejects with a clear message when `p` has not settled after `ms` (a hang guard, not a timing assertion). */
export async function within<T> (p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const guard = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`gave up waiting for: ${what}`)), ms)
  })
  try {
    return await Promise.race([p, guard])
  } finally {
    clearTimeout(timer)
  }
}

/** Resolves on 'drain'; rejects if the stream closes or fails first. */
function drained (w: Writable): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (err?: Error): void => {
      w.off('drain', onDrain)
      w.off('close', onClose)
      w.off('error', onError)
      if (err === undefined) resolve()
      else reject(err)
    }
    const onDrain = (): void => done()
    const onClose = (): void => done(new Error('stream closed while waiting for drain'))
    const onError = (err: Error): void => done(err)
    w.on('drain', onDrain)
    w.on('close', onClose)
    w.on('error', onError)
  })
}

/**
 * Writes `total` bytes of the repeated BLOCK with backpressure (never more
 * than one block queued past the high-water mark). `progress` sees the count
 * written so far and whether the last write was refused.
 */
export async function writeBytes (w: Writable, total: number,
  progress?: (written: number, blocked: boolean) => void): Promise<void> {
  let written = 0
  while (written < total) {
    const n = Math.min(total - written, BLOCK.length)
    const ok = w.write(n === BLOCK.length ? BLOCK : BLOCK.subarray(0, n))
    written += n
    progress?.(written, !ok)
    if (!ok) await drained(w)
    progress?.(written, false)
  }
}

/** Counts bytes and checks each one against the repeated BLOCK, without keeping any. */
export class BodyCheck {
  bytes = 0
  /** Offset of the first byte that was not the expected one, or -1. */
  firstMismatch = -1

  push (chunk: Buffer): void {
    let at = 0
    while (at < chunk.length && this.firstMismatch === -1) {
      const off = (this.bytes + at) % BLOCK.length
      const n = Math.min(chunk.length - at, BLOCK.length - off)
      if (!chunk.subarray(at, at + n).equals(BLOCK.subarray(off, off + n))) this.firstMismatch = this.bytes + at
      at += n
    }
    this.bytes += chunk.length
  }

  /** Feeds every chunk of `r` into this check; resolves at 'end', rejects on error or close without end. */
  consume (r: Readable): Promise<void> {
    return new Promise((resolve, reject) => {
      let ended = false
      r.on('data', (c: Buffer) => this.push(c))
      r.once('end', () => { ended = true; resolve() })
      r.once('error', reject)
      r.once('close', () => { if (!ended) reject(new Error('closed before end')) })
      r.resume() // a 'data' listener alone does not restart a stream paused by pause()
    })
  }
}

export interface MemoryGrowth {
  /** Largest RSS seen minus the RSS at start. */
  readonly rss: number
  /** Largest (V8 heap used + Buffer/ArrayBuffer memory) seen minus the same at start. */
  readonly heap: number
  readonly samples: number
}

/** Samples this process's memory every `everyMs` until stopped; reports the peak growth. */
export function watchMemory (everyMs = 50): { stop (): MemoryGrowth } {
  const base = process.memoryUsage()
  const baseHeap = base.heapUsed + base.arrayBuffers
  let rss = 0
  let heap = 0
  let samples = 0
  const sample = (): void => {
    const m = process.memoryUsage()
    samples++
    rss = Math.max(rss, m.rss - base.rss)
    heap = Math.max(heap, m.heapUsed + m.arrayBuffers - baseHeap)
  }
  const timer = setInterval(sample, everyMs)
  return {
    stop () {
      clearInterval(timer)
      sample()
      return { rss, heap, samples }
    }
  }
}

/** Polls `read()` every `everyMs` until it returns the same value `stableFor` times in a row (bounded). */
export async function settle (read: () => number, everyMs = 100, stableFor = 5, maxPolls = 200): Promise<number> {
  let last = read()
  let same = 0
  for (let i = 0; i < maxPolls && same < stableFor; i++) {
    await new Promise((resolve) => setTimeout(resolve, everyMs))
    const now = read()
    if (now === last) same++
    else { same = 0; last = now }
  }
  return last
}
