// What the benchmark commands share in reading their flags.

/** A flag's value is out of range or unknown. */
export class UsageError extends Error {}

/** `raw` as an integer of at least `min`, or a UsageError naming `--name`. */
export function intOption (name: string, raw: string, min: number): number {
  const n = Number(raw)
  if (!Number.isInteger(n) || n < min) throw new UsageError(`--${name} must be an integer >= ${min}, got ${JSON.stringify(raw)}`)
  return n
}
