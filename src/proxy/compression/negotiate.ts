// Accept-Encoding (RFC 9110 §12.5.3) against the codings a route offers:
// which one the client gets, and why. Pure.
import type { CompressionAlgorithm } from '../../config/schema.js'

export type Coding = CompressionAlgorithm | 'identity'

/** A coding and its weight as the client wrote it (lower-cased, `x-gzip` read as gzip). */
export interface Weighted {
  readonly coding: string
  readonly q: number
}

export interface Negotiated {
  readonly coding: Coding
  /** The client's weight for `coding` (1 for identity when it said nothing about it). */
  readonly q: number
  /** In words, for explain: `client accepts br q=1`, `no Accept-Encoding`… */
  readonly why: string
}

const QVALUE = /^(?:0(?:\.\d{0,3})?|1(?:\.0{0,3})?)$/

/** Members of Accept-Encoding compared one by one for repeats; past this many, a Set. */
const SCAN_LIMIT = 16

/**
 * The members of an Accept-Encoding value. A member with a malformed weight
 * (`q=2`, `q=abc`, `q=0.1234`) is dropped, as if not written; a coding
 * written twice keeps its first weight.
 */
export function parseAcceptEncoding (value: string): Weighted[] {
  const out: Weighted[] = []
  // Repeats are found in `out` while it is short (the usual two or three
  // codings), in a Set past that: a 16 KB field naming 4,000 codings took
  // 60 ms of the one event loop compared member by member.
  let seen: Set<string> | undefined
  const parts = value.split(',')
  for (let i = 0; i < parts.length; i++) {
    const params = parts[i]!.split(';')
    let coding = params[0]!.trim().toLowerCase()
    if (coding === '') continue
    if (coding === 'x-gzip') coding = 'gzip'
    let q = 1
    let bad = false
    for (let j = 1; j < params.length; j++) {
      const p = params[j]!
      const eq = p.indexOf('=')
      const name = (eq < 0 ? p : p.slice(0, eq)).trim().toLowerCase()
      if (name !== 'q') continue // no other parameter means anything here
      const v = eq < 0 ? '' : p.slice(eq + 1).trim()
      if (!QVALUE.test(v)) bad = true
      else q = Number(v)
    }
    if (bad) continue
    if (seen !== undefined) {
      if (seen.has(coding)) continue
      seen.add(coding)
    } else {
      if (out.some((w) => w.coding === coding)) continue
      if (out.length === SCAN_LIMIT) seen = new Set(out.map((w) => w.coding)).add(coding)
    }
    out.push({ coding, q })
  }
  return out
}

/**
 * The coding for a response to a request with Accept-Encoding `value`
 * (undefined: the field is absent), among `offered` (best first). The
 * client's weight decides; `offered`'s order breaks ties. A coding the
 * client does not name takes `*`'s weight; q=0 refuses it. identity, when
 * not named, weighs as the least of what the client named, so it never beats
 * a coding the client asked for; a client that prefers identity gets it.
 * No field, or nothing acceptable: identity (even when the client refused
 * it: an uncompressed answer beats a 406 that nobody handles).
 */
export function negotiate (value: string | undefined, offered: readonly CompressionAlgorithm[]): Negotiated {
  if (value === undefined) return { coding: 'identity', q: 1, why: 'no Accept-Encoding' }
  const members = parseAcceptEncoding(value)
  if (members.length === 0) return { coding: 'identity', q: 1, why: 'Accept-Encoding names no coding' }
  let star: number | undefined
  let identity: number | undefined
  let least = 1
  for (const m of members) {
    if (m.coding === '*') star = m.q
    else if (m.coding === 'identity') identity = m.q
    if (m.q < least) least = m.q
  }
  let best: CompressionAlgorithm | undefined
  let bestQ = 0
  let how = ''
  for (const alg of offered) {
    const named = members.find((m) => m.coding === alg)
    const q = named?.q ?? star ?? 0
    if (q > bestQ) {
      best = alg
      bestQ = q
      how = named === undefined ? `* q=${q}` : `${alg} q=${q}`
    }
  }
  if (best === undefined) {
    return { coding: 'identity', q: identity ?? star ?? 1, why: `client accepts none of ${offered.join(', ')}` }
  }
  const identityQ = identity ?? star ?? least
  if (identityQ > bestQ) return { coding: 'identity', q: identityQ, why: `client prefers identity (q=${identityQ}) to ${best} (q=${bestQ})` }
  return { coding: best, q: bestQ, why: `client accepts ${how === `${best} q=${bestQ}` ? how : `${best} by ${how}`}` }
}
