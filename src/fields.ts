// Header fields as Node and undici carry them: flat [name, value, name,
// value…] lists, names in any case. The one set of lookups every module uses
// (routing, forwarding, the cache), so that a field is read the same way
// wherever a decision depends on it. Imports nothing.

/** `name` equals `lowerName` ignoring ASCII case, without allocating. */
export function isName (name: string, lowerName: string): boolean {
  if (name === lowerName) return true
  const n = name.length
  if (n !== lowerName.length) return false
  for (let i = 0; i < n; i++) {
    let c = name.charCodeAt(i)
    if (c >= 65 && c <= 90) c |= 0x20
    if (c !== lowerName.charCodeAt(i)) return false
  }
  return true
}

/** The first value of a field, or undefined. */
export function firstValue (flat: readonly string[], lowerName: string): string | undefined {
  for (let i = 0; i + 1 < flat.length; i += 2) if (isName(flat[i]!, lowerName)) return flat[i + 1]
  return undefined
}

/**
 * Every value of a field joined into one, as RFC 9110 §5.3 combines a list
 * field sent on several lines (`sep` `, `; Cookie uses `; `, RFC 9113 §8.2.3).
 */
export function combinedValue (flat: readonly string[], lowerName: string, sep = ', '): string | undefined {
  let out: string | undefined
  for (let i = 0; i + 1 < flat.length; i += 2) {
    if (isName(flat[i]!, lowerName)) out = out === undefined ? flat[i + 1]! : out + sep + flat[i + 1]!
  }
  return out
}

/** How many lines of a field there are. */
export function countFields (flat: readonly string[], lowerName: string): number {
  let n = 0
  for (let i = 0; i < flat.length; i += 2) if (isName(flat[i]!, lowerName)) n++
  return n
}

/**
 * A request field as routing, shard keys and trust read it: the first value,
 * except the list fields whose lines are one value: Cookie (joined with `; `)
 * and X-Forwarded-For (joined with `, `).
 */
export function requestField (flat: readonly string[], lowerName: string): string | undefined {
  if (lowerName === 'cookie') return combinedValue(flat, lowerName, '; ')
  if (lowerName === 'x-forwarded-for') return combinedValue(flat, lowerName)
  return firstValue(flat, lowerName)
}
