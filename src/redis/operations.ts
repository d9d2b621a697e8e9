// The results a Redis operation is counted under (link.ts), in the one
// order /metrics, /status and the dashboard list them. Imports nothing, so
// the metrics types can name them without depending on the link.

/** `shed`: not sent, Redis timed out just before (see link.ts SLOW_COOLDOWN_MS). */
export type OperationResult = 'ok' | 'error' | 'timeout' | 'down' | 'shed'

/** Every result, in the order /metrics and the dashboard list them. */
export const OPERATION_RESULTS: readonly OperationResult[] = Object.freeze(['ok', 'error', 'timeout', 'down', 'shed'])

/** Zero of each result. */
export function noOperations (): Record<OperationResult, number> {
  return { ok: 0, error: 0, timeout: 0, down: 0, shed: 0 }
}
