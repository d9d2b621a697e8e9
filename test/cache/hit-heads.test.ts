import t from 'tap'
import type { CacheEntry } from '../../src/cache/entry.js'
import { HitHeads, type HitHead } from '../../src/cache/hit-heads.js'

const entry = (i: number): CacheEntry => ({ key: `k${i}` }) as unknown as CacheEntry
const head = (age: number): HitHead => ({ age, ttl: 0, name: 'c', collapsed: false, fields: [], h2: undefined, h1: undefined, h1Bytes: undefined })

t.test('HitHeads: two generations of max, the hot ones survive a turn, delete forgets', async (t) => {
  t.throws(() => new HitHeads(0), RangeError)
  const heads = new HitHeads(2)
  const [a, b, c, d] = [entry(1), entry(2), entry(3), entry(4)]
  heads.set(a, head(1))
  heads.set(b, head(2))
  t.equal(heads.get(a)?.age, 1)
  heads.set(c, head(3)) // turn: a, b become the previous generation
  t.equal(heads.size, 3)
  t.equal(heads.get(a)?.age, 1, 'a hit in the previous generation is found, and moves to the current one')
  heads.set(d, head(4)) // turn again: c and a (current) become previous, b is dropped
  t.equal(heads.get(b), undefined, 'not hit for a whole generation: gone')
  t.equal(heads.get(a)?.age, 1, 'hit: kept')
  t.ok(heads.size <= 2 * heads.max, 'never more than two generations')
  heads.set(a, head(5))
  t.equal(heads.get(a)?.age, 5, 'set replaces')
  heads.delete(a)
  t.equal(heads.get(a), undefined, 'deleted from both generations')
  const many = new HitHeads(8)
  for (let i = 0; i < 1000; i++) many.set(entry(i), head(i))
  t.ok(many.size <= 16, `bounded: ${many.size} heads after 1000 entries`)
})
