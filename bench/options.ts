// What the benchmark commands share in reading their flags.

/** A flag's value is out of range or unknown. */
export class UsageError extends Error {}

/** `raw` as an integer of at least `min`, or a UsageError naming `--name`. */
export function intOption (name: string, raw: string, min: number): number {
  const n = Number(raw)
  if (!Number.isInteger(n) || n < min) throw new UsageError(`--${name} must be an integer >= ${min}, got ${JSON.stringify(raw)}`)
  return n
}

/**
 * A comma-separated list of names (`--only a,b`) as the `known` names it asks
 * for, in `known` order whatever order was typed, each once. An item may also
 * be a group: a name for several known names (`workers` for every workers
 * scenario). A UsageError lists what is unknown, and what is known.
 */
export function selectNames<T extends string> (flag: string, raw: string, known: readonly T[], groups: Readonly<Record<string, readonly T[]>> = {}): T[] {
  const items = raw.split(',').map((s) => s.trim()).filter((s) => s !== '')
  const wanted = new Set<string>()
  const unknown: string[] = []
  for (const item of items) {
    const group = Object.hasOwn(groups, item) ? groups[item] : undefined
    if (group !== undefined) for (const n of group) wanted.add(n)
    else if ((known as readonly string[]).includes(item)) wanted.add(item)
    else unknown.push(item)
  }
  if (unknown.length > 0 || items.length === 0) {
    const groupNames = Object.keys(groups)
    throw new UsageError(`--${flag}: unknown name(s) ${JSON.stringify(unknown)}; known: ${known.join(', ')}` +
      (groupNames.length > 0 ? `; groups: ${groupNames.join(', ')}` : ''))
  }
  return known.filter((n) => wanted.has(n))
}
