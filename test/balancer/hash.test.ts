import t from 'tap'
import { hashString, mix32, rendezvous } from '../../src/balancer/hash.js'

t.test('hashString is stable, 32-bit unsigned and spreads nearby keys', async (t) => {
  t.equal(hashString('user-1'), hashString('user-1'))
  t.not(hashString('user-1'), hashString('user-2'))
  const h = hashString('anything')
  t.ok(Number.isInteger(h) && h >= 0 && h <= 0xffffffff)
  // Low bits of sequential keys should be balanced (fmix32 finish).
  const buckets = new Array<number>(16).fill(0)
  for (let i = 0; i < 16000; i++) buckets[hashString(`user-${i}`) & 15]!++
  for (const b of buckets) t.ok(b > 800 && b < 1200, `bucket ${b} near 1000`)
})

t.test('mix32 is a bijection on a sample (no collisions)', async (t) => {
  const seen = new Set<number>()
  for (let i = 0; i < 10000; i++) seen.add(mix32(i))
  t.equal(seen.size, 10000)
})

t.test('rendezvous: balanced, and adding a node moves only ~1/(N+1) of keys, all to the new node', async (t) => {
  const seeds = (names: string[]) => Uint32Array.from(names, hashString)
  const four = ['a', 'b', 'c', 'd']
  const five = [...four, 'e']
  const keys = 100_000
  const counts = [0, 0, 0, 0]
  let moved = 0
  let movedElsewhere = 0
  for (let i = 0; i < keys; i++) {
    const k = hashString(`key-${i}`)
    const before = rendezvous(k, seeds(four))
    const after = rendezvous(k, seeds(five))
    counts[before]!++
    if (before !== after) {
      moved++
      if (after !== 4) movedElsewhere++
    }
  }
  for (const c of counts) t.ok(Math.abs(c - keys / 4) < keys * 0.02, `share ${c} within 2% of ${keys / 4}`)
  t.equal(movedElsewhere, 0, 'keys only ever move to the new node')
  t.ok(moved / keys < 1 / 5 + 0.01, `moved ${(moved / keys * 100).toFixed(2)}% <= ~20%`)
  t.ok(moved / keys > 1 / 5 - 0.01, 'the new node takes its share')
})

t.test('rendezvous: removing a node moves only its keys', async (t) => {
  const all = Uint32Array.from(['a', 'b', 'c', 'd', 'e'], hashString)
  const without = Uint32Array.from(['a', 'b', 'c', 'e'], hashString) // 'd' removed
  const mapBack = [0, 1, 2, 4]
  for (let i = 0; i < 20000; i++) {
    const k = hashString(`k${i}`)
    const before = rendezvous(k, all)
    const after = mapBack[rendezvous(k, without)]!
    if (before !== 3 && before !== after) t.fail(`key ${i} moved from ${before} to ${after}`)
  }
  t.pass('no key of a surviving node moved')
})
