// Which configuration is running and how its reloads went, for /metrics:
// the hash of the file's bytes (the same file gives the same hash on every
// instance, so a fleet that disagrees shows it) and the reload counters.
// Kept by whoever reloads (main.ts for one process, a cluster's primary).
import { createHash } from 'node:crypto'
import type { ConfigMetricsInput } from './metrics.js'

/** The first 16 hex digits of the SHA-256 of a config file's text. */
export function configHash (text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex').slice(0, 16)
}

export class ConfigReport {
  #hash: string
  #ok = 0
  #failed = 0
  #lastOk = true
  #lastSuccessMs: number

  constructor (text: string, now: number = Date.now()) {
    this.#hash = configHash(text)
    this.#lastSuccessMs = now
  }

  /** A reload was applied (from `text`), or refused: the running config stays. */
  reloaded (ok: boolean, text?: string, now: number = Date.now()): void {
    this.#lastOk = ok
    if (!ok) {
      this.#failed++
      return
    }
    this.#ok++
    this.#lastSuccessMs = now
    if (text !== undefined) this.#hash = configHash(text)
  }

  get hash (): string {
    return this.#hash
  }

  metrics (): ConfigMetricsInput {
    return { hash: this.#hash, reloadsOk: this.#ok, reloadsFailed: this.#failed, lastReloadOk: this.#lastOk, lastSuccessMs: this.#lastSuccessMs }
  }
}
