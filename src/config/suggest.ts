// "did you mean …?" for unknown keys, enum values and references.

/**
 * The candidate closest to `word`: a case-insensitive match, or one within 2
 * edits (a swap of two neighbours counts as one). Short words need a closer
 * match (at most half their length) so `url` does not suggest `tls`.
 */
export function closest (word: string, candidates: Iterable<string>): string | undefined {
  const lower = word.toLowerCase()
  let best: string | undefined
  let bestDistance = Infinity
  for (const candidate of candidates) {
    if (candidate === word) continue
    if (candidate.toLowerCase() === lower) return candidate
    const d = editDistance(lower, candidate.toLowerCase())
    const limit = Math.min(2, Math.floor(Math.max(word.length, candidate.length) / 2))
    if (d <= limit && d < bestDistance) {
      best = candidate
      bestDistance = d
    }
  }
  return best
}

/** Optimal string alignment distance: Levenshtein plus adjacent transpositions. */
export function editDistance (a: string, b: string): number {
  // Three rolling rows: the transposition step looks two rows back.
  let prev2: number[] = []
  let prev: number[] = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const row: number[] = [i]
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      let d = Math.min((prev[j] as number) + 1, (row[j - 1] as number) + 1, (prev[j - 1] as number) + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d = Math.min(d, (prev2[j - 2] as number) + 1)
      }
      row.push(d)
    }
    prev2 = prev
    prev = row
  }
  return prev[b.length] as number
}

/** `; did you mean \`x\`?` or '' when nothing is close. */
export function didYouMean (word: string, candidates: Iterable<string>): string {
  const hit = closest(word, candidates)
  return hit === undefined ? '' : `; did you mean \`${hit}\`?`
}
