// The local store: GCRA per key on a clock we drive, bounded in keys.
import t from 'tap'
import { rateOf } from '../../src/ratelimit/gcra.js'
import { LocalStore } from '../../src/ratelimit/local.js'

t.test('keys have their own buckets, on the store\'s clock', async (t) => {
  let now = 0
  const store = new LocalStore({ now: () => now })
  const rate = rateOf({ average: 2, period: 1000, burst: 2 })
  t.same([1, 2, 3].map(() => store.take('a', rate).allowed), [true, true, false])
  t.ok(store.take('b', rate).allowed, 'another key')
  now = 499
  t.notOk(store.take('a', rate).allowed)
  now = 500
  t.same(store.take('a', rate), { allowed: true, remaining: 0, reset: 500 })
})

t.test('at most maxKeys buckets: the least recently used go, and start full again', async (t) => {
  const store = new LocalStore({ maxKeys: 3, now: () => 0 })
  const rate = rateOf({ average: 1, period: 60_000, burst: 1 })
  for (const k of ['a', 'b', 'c', 'd']) t.ok(store.take(k, rate).allowed)
  t.equal(store.size, 3)
  t.ok(store.take('a', rate).allowed, '`a` was dropped for `d`: full again')
  t.notOk(store.take('d', rate).allowed)
})
