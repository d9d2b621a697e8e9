/**
 * When the primary replaces a worker that exited unexpectedly. Pure policy:
 * the primary asks it with the clock and acts on the answer.
 *
 * A worker that ran for a while (`stableMs`) is replaced at once; one that
 * keeps dying young is replaced after a doubling delay capped at `maxDelayMs`,
 * so a crash loop (bad certificate, port taken) costs a log line per second,
 * not a CPU core. Same shape as systemd's RestartSec + StartLimit and
 * HAProxy master-worker's reload back-off.
 */
export interface RestartPolicy {
  readonly baseDelayMs: number
  readonly maxDelayMs: number
  /** A worker alive at least this long resets the back-off. */
  readonly stableMs: number
}

export const RESTART_POLICY: RestartPolicy = Object.freeze({
  baseDelayMs: 100,
  maxDelayMs: 10_000,
  stableMs: 10_000,
})

/** What the primary remembers about one worker slot between restarts. */
export interface SlotHistory {
  /** Consecutive exits of workers that had not become stable. */
  readonly quickExits: number
}

export const FRESH_SLOT: SlotHistory = Object.freeze({ quickExits: 0 })

export interface RestartDecision {
  readonly delayMs: number
  readonly history: SlotHistory
}

/** `livedMs`: how long the exited worker ran, from fork to exit. */
export function nextRestart (
  policy: RestartPolicy,
  history: SlotHistory,
  livedMs: number,
): RestartDecision {
  if (livedMs >= policy.stableMs) {
    return { delayMs: 0, history: FRESH_SLOT }
  }
  const quickExits = history.quickExits + 1
  // The first quick exit is replaced at once: one crash is not a loop.
  const delayMs =
    quickExits === 1
      ? 0
      : Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.min(quickExits - 2, 30))
  return { delayMs, history: { quickExits } }
}
