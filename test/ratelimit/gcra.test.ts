// GCRA with plain numbers for time: `burst` at once, then one per interval;
// the verdict's remaining and reset; the response fields of the draft.
import t from 'tap'
import { policyFields, rateOf, seconds, take, verdictFields, verdictOf, type Rate } from '../../src/ratelimit/gcra.js'

/** Requests at the times given (ms), against one bucket: which passed. */
function run (rate: Rate, times: readonly number[]): boolean[] {
  let tat: number | undefined
  return times.map((now) => {
    const r = take(rate, tat, now)
    tat = r.tat
    return r.verdict.allowed
  })
}

t.test('a full bucket lets `burst` through at once, then one per interval', async (t) => {
  const rate = rateOf({ average: 10, period: 1000, burst: 10 })
  t.same(rate, { interval: 100, burst: 10, tolerance: 1000 })
  const atOnce = run(rate, Array(12).fill(0))
  t.same(atOnce, [...Array(10).fill(true), false, false])
  // After the burst at 0: one more at 100, none again before 200.
  t.same(run(rate, [...Array(10).fill(0), 99, 100, 150, 200, 200]), [...Array(10).fill(true), false, true, false, true, false])
})

t.test('a steady client at the average rate is never refused; one faster is held to it', async (t) => {
  const rate = rateOf({ average: 10, period: 1000, burst: 1 })
  t.same(run(rate, Array.from({ length: 50 }, (_, i) => i * 100)), Array(50).fill(true))
  // Every 50 ms for 10 s: 201 requests, of which one per 100 ms passes (+1 for the first).
  const passed = run(rate, Array.from({ length: 201 }, (_, i) => i * 50)).filter(Boolean).length
  t.equal(passed, 101)
})

t.test('over any stretch, no more than burst + elapsed / interval pass', async (t) => {
  const rate = rateOf({ average: 7, period: 3000, burst: 4 })
  let tat: number | undefined
  let now = 0
  let passed = 0
  let seed = 42
  for (let i = 0; i < 5000; i++) {
    seed = (seed * 1103515245 + 12345) % 2147483648 // a fixed pseudo-random walk of gaps, 0-299 ms
    now += seed % 300
    const r = take(rate, tat, now)
    tat = r.tat
    if (r.verdict.allowed) passed++
  }
  t.ok(passed <= rate.burst + now / rate.interval, `${passed} passed in ${now} ms`)
  t.ok(passed >= now / rate.interval - 1, 'and the client gets the average rate when it asks for more')
})

t.test('an idle bucket fills up to burst, not beyond', async (t) => {
  const rate = rateOf({ average: 5, period: 1000, burst: 3 })
  t.same(run(rate, [0, 0, 0, 0, 60_000, 60_000, 60_000, 60_000]), [true, true, true, false, true, true, true, false])
})

t.test('a refused request leaves the bucket as it was', async (t) => {
  const rate = rateOf({ average: 1, period: 1000, burst: 1 })
  const first = take(rate, undefined, 0)
  const refused = take(rate, first.tat, 500)
  t.notOk(refused.verdict.allowed)
  t.equal(refused.tat, first.tat)
  t.ok(take(rate, refused.tat, 1000).verdict.allowed, 'hammering does not push the next chance back')
})

t.test('remaining counts down; reset is the time until the next request comes back', async (t) => {
  const rate = rateOf({ average: 10, period: 1000, burst: 5 })
  let tat: number | undefined
  const seen = []
  for (let i = 0; i < 6; i++) {
    const r = take(rate, tat, 0)
    tat = r.tat
    seen.push([r.verdict.allowed, r.verdict.remaining, r.verdict.reset])
  }
  t.same(seen, [[true, 4, 100], [true, 3, 100], [true, 2, 100], [true, 1, 100], [true, 0, 100], [false, 0, 100]])
  // Half an interval later the refusal says: 50 ms more.
  t.same(take(rate, tat, 50).verdict, { allowed: false, remaining: 0, reset: 50 })
  t.same(verdictOf(rate, true, 0), { allowed: true, remaining: 5, reset: 0 }, 'a full bucket has nothing to wait for')
  t.same(verdictOf(rate, true, 150), { allowed: true, remaining: 3, reset: 50 }, 'part of an interval already came back')
})

t.test('intervals that are not whole milliseconds lose nothing to rounding', async (t) => {
  const rate = rateOf({ average: 3, period: 1000, burst: 3 })
  t.same(run(rate, [0, 0, 0, 0, 1000, 1000, 1000, 1000]), [true, true, true, false, true, true, true, false])
  t.equal(verdictOf(rate, true, 1000 / 3).remaining, 2)
})

t.test('seconds rounds up, and a float a hair above a whole second does not', async (t) => {
  t.equal(seconds(0), 0)
  t.equal(seconds(1), 1)
  t.equal(seconds(1000), 1)
  t.equal(seconds(1000.0000000001), 1)
  t.equal(seconds(1001), 2)
})

t.test('response fields: RateLimit-Policy and RateLimit of the draft, Retry-After when refused', async (t) => {
  const f = policyFields('api-v1', { average: 100, period: 60_000 })
  t.same(f, { item: '"api-v1"', policy: '"api-v1";q=100;w=60' })
  t.same(verdictFields(f, { allowed: true, remaining: 41, reset: 250 }),
    ['ratelimit-policy', '"api-v1";q=100;w=60', 'ratelimit', '"api-v1";r=41;t=1'])
  t.same(verdictFields(f, { allowed: true, remaining: 100, reset: 0 }),
    ['ratelimit-policy', '"api-v1";q=100;w=60', 'ratelimit', '"api-v1";r=100;t=0'])
  t.same(verdictFields(f, { allowed: false, remaining: 0, reset: 1200 }),
    ['ratelimit-policy', '"api-v1";q=100;w=60', 'ratelimit', '"api-v1";r=0;t=2', 'retry-after', '2'])
  t.same(verdictFields(f, { allowed: false, remaining: 0, reset: 1e-12 }).slice(-3), ['"api-v1";r=0;t=1', 'retry-after', '1'],
    'a refusal never says 0 seconds')
  t.equal(policyFields('a"b\\c', { average: 1, period: 1000 }).item, '"a\\"b\\\\c"', 'a name is an sf-string')
})

t.test('a full bucket\'s last request is never refused by the rounding of a large clock', async (t) => {
  // (now + 1000) - now is 1000.0000000001 for this now: found by the full suite, whose clock had run long.
  const rate = rateOf({ average: 1, period: 1000, burst: 1 })
  t.ok(take(rate, undefined, 130153.42134868212).verdict.allowed)
  let refused = 0
  for (let i = 0; i < 20000; i++) if (!take(rate, undefined, 1e5 + i * 123.456789).verdict.allowed) refused++
  t.equal(refused, 0)
})
