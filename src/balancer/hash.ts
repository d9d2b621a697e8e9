// Hash functions shared by shard selection (and, later, ip-hash). Pure and
// allocation-free: 32-bit FNV-1a over UTF-16 code units, finished with
// murmur3's fmix32 so nearby keys ("user-1", "user-2") spread evenly.

export function hashString (s: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return mix32(h)
}

/** murmur3 fmix32: full avalanche of a 32-bit value. */
export function mix32 (x: number): number {
  x ^= x >>> 16
  x = Math.imul(x, 0x85ebca6b)
  x ^= x >>> 13
  x = Math.imul(x, 0xc2b2ae35)
  x ^= x >>> 16
  return x >>> 0
}

/** The weight of one node for one key in rendezvous hashing (the highest wins). */
export function rendezvousScore (keyHash: number, seed: number): number {
  return mix32((keyHash ^ seed) + 0x9e3779b9)
}

/**
 * Rendezvous (highest-random-weight) choice among nodes identified by
 * pre-hashed seeds. Adding a node to N moves only ~1/(N+1) of keys and
 * removing one moves only its own keys, with no ring to rebuild. O(N), which
 * is right for the handful of shards a backend has.
 */
export function rendezvous (keyHash: number, seeds: Uint32Array): number {
  let best = -1
  let bestScore = -1
  for (let i = 0; i < seeds.length; i++) {
    const score = rendezvousScore(keyHash, seeds[i]!)
    if (score > bestScore) {
      bestScore = score
      best = i
    }
  }
  return best
}
