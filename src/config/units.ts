// Durations and sizes as written in the YAML, turned into milliseconds and
// bytes once at load. Pure: returns undefined for anything it does not accept,
// and the caller reports the problem with the accepted forms below.

/** Shown in error messages for a bad duration. */
export const DURATION_FORMS = 'a duration like 500ms, 2s, 1m, 1h or 1m30s (or 0)'

/** Shown in error messages for a bad size. */
export const SIZE_FORMS = 'a size like 512B, 16KiB, 64MiB, 1GiB, 10KB, 10MB or a plain number of bytes'

/** Node.js timers overflow above 2^31-1 ms (about 24.8 days) and fire at once. */
export const MAX_DURATION_MS = 2 ** 31 - 1

const DURATION_UNITS: Readonly<Record<string, number>> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1 }
const DURATION_ORDER = ['h', 'm', 's', 'ms']
// One `<number><unit>` part; units must appear largest first, each at most once (Go's style).
const DURATION_PART = /(\d+(?:\.\d+)?)(ms|h|m|s)/y

/**
 * `500ms`, `2s`, `1m`, `1h`, `1m30s`, `1.5s`, and `0` (number or string) → milliseconds.
 * Undefined when the form is wrong or the result is not a whole number of ms.
 */
export function parseDuration (value: unknown): number | undefined {
  if (value === 0 || value === '0') return 0
  if (typeof value !== 'string' || value === '') return undefined
  let total = 0
  let lastUnit = -1
  DURATION_PART.lastIndex = 0
  while (DURATION_PART.lastIndex < value.length) {
    const m = DURATION_PART.exec(value)
    if (m === null) return undefined
    const unit = m[2] as string
    const rank = DURATION_ORDER.indexOf(unit)
    if (rank <= lastUnit) return undefined
    lastUnit = rank
    total += Number(m[1]) * (DURATION_UNITS[unit] as number)
  }
  // Decimals are fine as long as they land on a whole millisecond (`1.5s`, not `0.5ms`).
  const ms = Math.round(total * 1000) / 1000
  return Number.isSafeInteger(ms) ? ms : undefined
}

const SIZE_UNITS: Readonly<Record<string, number>> = {
  B: 1,
  KB: 1000,
  MB: 1000 ** 2,
  GB: 1000 ** 3,
  KiB: 1024,
  MiB: 1024 ** 2,
  GiB: 1024 ** 3
}
const SIZE_FORM = /^(\d+(?:\.\d+)?)(B|KB|MB|GB|KiB|MiB|GiB)?$/

/**
 * `512B`, `16KiB`, `64MiB`, `1GiB` (binary), `10KB`, `10MB`, `1GB` (decimal), or a
 * plain non-negative integer (number or digit string) meaning bytes → bytes.
 * Units are case-sensitive: `kb` could as well mean kilobits.
 */
export function parseSize (value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value >= 0 ? value : undefined
  if (typeof value !== 'string') return undefined
  const m = SIZE_FORM.exec(value)
  if (m === null) return undefined
  const unit = m[2]
  // A bare number must be an integer; `1.5MiB` is fine since it is a whole number of bytes.
  if (unit === undefined && m[1]?.includes('.') === true) return undefined
  const bytes = Number(m[1]) * (unit === undefined ? 1 : SIZE_UNITS[unit] as number)
  return Number.isSafeInteger(bytes) ? bytes : undefined
}

const PERCENT_FORM = /^(\d+(?:\.\d+)?)%$/

/** `20%`, `0.5%` → the number before the sign (20, 0.5). Undefined for any other form. */
export function parsePercent (value: unknown): number | undefined {
  if (typeof value !== 'string') return undefined
  const m = PERCENT_FORM.exec(value)
  return m === null ? undefined : Number(m[1])
}

/** Milliseconds back to text parseDuration reads the same, largest unit first: 90000 → `1m30s`, 1500 → `1s500ms`. */
export function formatDuration (ms: number): string {
  if (ms === 0) return '0s'
  let rest = ms
  let out = ''
  for (const unit of DURATION_ORDER) {
    const n = Math.floor(rest / (DURATION_UNITS[unit] as number))
    if (n === 0) continue
    out += `${n}${unit}`
    rest -= n * (DURATION_UNITS[unit] as number)
  }
  return out
}

const SIZE_SHOW: ReadonlyArray<[string, number]> = [
  ['GiB', 1024 ** 3], ['MiB', 1024 ** 2], ['KiB', 1024], ['GB', 1000 ** 3], ['MB', 1000 ** 2], ['KB', 1000]
]

/** Bytes back to text parseSize reads the same: the largest unit that divides it, else bytes: 1048576 → `1MiB`, 10000 → `10KB`, 1500 → `1500B`. */
export function formatSize (bytes: number): string {
  if (bytes === 0) return '0B'
  for (const [unit, n] of SIZE_SHOW) {
    if (bytes % n === 0) return `${bytes / n}${unit}`
  }
  return `${bytes}B`
}
