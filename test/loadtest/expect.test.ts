import t from 'tap'
import { ExpectError, evaluate, parseExpectations, type Measured } from '../../src/loadtest/expect.js'

function parseError (s: string): string {
  try {
    parseExpectations(s)
  } catch (err) {
    if (err instanceof ExpectError) return err.message
    throw err
  }
  throw new Error(`no ExpectError for ${s}`)
}

const run: Measured = {
  requests: 1000, rps: 12_000, errors: 10, non2xx: 50,
  latencyMs: { p50: 1.2, p90: 2.5, p99: 7.32, p99_9: 12, mean: 1.5, max: 40 }
}

t.test('latency items: every metric, operator and unit, converted to ms', async (t) => {
  const e = parseExpectations('p50<1ms, p90 <= 2500us,p99>0.005s,p99.9>=3, mean<2µs, max<1s, p999<4ms')
  t.same(e.map((x) => [x.metric, x.op, x.value]), [
    ['p50', '<', 1], ['p90', '<=', 2.5], ['p99', '>', 5], ['p99.9', '>=', 3], ['mean', '<', 0.002], ['max', '<', 1000], ['p99.9', '<', 4]
  ])
  t.equal(e[0]!.text, 'p50<1ms')
})

t.test('rps, errors and non2xx: plain numbers, errors and non2xx also as a percentage', async (t) => {
  const e = parseExpectations('rps>10000,errors<=0,non2xx<1.5%')
  t.same(e.map((x) => [x.metric, x.op, x.value, x.percent]), [['rps', '>', 10000, false], ['errors', '<=', 0, false], ['non2xx', '<', 1.5, true]])
})

t.test('a malformed expression names the item and the accepted form', async (t) => {
  t.match(parseError(''), /empty expression/)
  t.match(parseError('p99<5ms,'), /empty item/)
  t.match(parseError('p99=5ms'), /cannot read "p99=5ms"; expected METRIC OP NUMBER/)
  t.match(parseError('p95<5ms'), /unknown metric "p95"/)
  t.match(parseError('p99<5min'), /unknown unit "min"/)
  t.match(parseError('rps>10k'), /rps takes a plain number/)
  t.match(parseError('errors<1ms'), /errors takes a count or a percentage/)
  t.match(parseError('p99<'), /cannot read/)
  t.match(parseError('p99<-1ms'), /cannot read/)
})

t.test('evaluation: each verdict with the measured value in the expectation unit', async (t) => {
  const v = evaluate(parseExpectations('p99<5ms,rps>10000,errors<1%,non2xx<=50,p50>=1.2ms,max>1s'), run)
  t.same(v.map((x) => x.ok), [false, true, true, true, true, false])
  t.equal(v[0]!.message, 'p99<5ms: measured 7.32ms')
  t.equal(v[1]!.message, 'rps>10000: measured 12000 rps')
  t.equal(v[2]!.measured, 100 * 10 / 1010, 'errors% of attempts (responses + errors)')
  t.equal(v[2]!.message, 'errors<1%: measured 0.99%')
  t.equal(v[3]!.message, 'non2xx<=50: measured 50')
})

t.test('a run with no response fails latency and rps expectations instead of passing with zeros', async (t) => {
  const none: Measured = { requests: 0, rps: 0, errors: 5, non2xx: 0, latencyMs: { p50: 0, p90: 0, p99: 0, p99_9: 0, mean: 0, max: 0 } }
  const v = evaluate(parseExpectations('p99<5ms,rps<1,errors<10,errors<=100%'), none)
  t.same(v.map((x) => x.ok), [false, false, true, true])
  t.equal(v[0]!.message, 'p99<5ms: no response measured')
  t.equal(v[3]!.measured, 100)
})
