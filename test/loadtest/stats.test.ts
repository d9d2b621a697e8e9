import t from 'tap'
import { Recorder, compare, curvePercentiles, dense, errorKind, percentileAxis } from '../../src/loadtest/stats.js'

const run = { url: 'http://127.0.0.1:1/', tool: 'autocannon', protocol: 'http/1.1', durationSec: 3 } as const

t.test('percentiles, mean, min and max from responses, in ms at microsecond resolution', async (t) => {
  const r = new Recorder()
  t.teardown(() => r.destroy())
  for (let i = 1; i <= 1000; i++) r.response(0, 200, i / 100) // 0.01 ms … 10 ms
  const s = r.summary(run)
  t.equal(s.requests, 1000)
  t.equal(s.latencyMs.min, 0.01)
  t.equal(s.latencyMs.max, 10)
  t.ok(Math.abs(s.latencyMs.p50 - 5) < 0.01, `p50 ${s.latencyMs.p50}`)
  t.ok(Math.abs(s.latencyMs.p90 - 9) < 0.01, `p90 ${s.latencyMs.p90}`)
  t.ok(Math.abs(s.latencyMs.p99 - 9.9) < 0.01, `p99 ${s.latencyMs.p99}`)
  t.ok(Math.abs(s.latencyMs.p99_9 - 9.99) < 0.01, `p99.9 ${s.latencyMs.p99_9}`)
  t.ok(Math.abs(s.latencyMs.mean - 5.005) < 0.01, `mean ${s.latencyMs.mean}`)
  const curve = s.percentileCurve
  t.equal(curve[0]!.percentile, 0)
  t.equal(curve[curve.length - 1]!.percentile, 100)
  t.equal(curve[curve.length - 1]!.ms, 10)
  t.ok(curve.every((p, i) => i === 0 || p.ms >= curve[i - 1]!.ms), 'the curve never goes down')
})

t.test('per-second counts, status classes, non-2xx and errors by kind', async (t) => {
  const r = new Recorder()
  t.teardown(() => r.destroy())
  r.response(10, 200, 1)
  r.response(999, 204, 1)
  r.response(1000, 503, 1)
  r.response(2500, 404, 1)
  r.response(3004, 200, 1) // a few ms past the 3 s run: counted in its last second
  r.response(2600, 101, 1)
  r.error(1500, 'ECONNRESET')
  r.error(1600, 'ECONNRESET')
  r.error(2100, 'timeout')
  const s = r.summary(run)
  t.same(s.rpsPerSecond, [2, 1, 3])
  t.equal(s.rps, 6 / 3)
  t.same(s.statusClasses, { '1xx': 1, '2xx': 3, '3xx': 0, '4xx': 1, '5xx': 1 })
  t.same(s.statusCodes, { 101: 1, 200: 2, 204: 1, 404: 1, 503: 1 })
  t.equal(s.non2xx, 3)
  t.same(s.non2xxPerSecond, [0, 1, 2])
  t.equal(s.errors, 3)
  t.same(s.errorsByKind, { ECONNRESET: 2, timeout: 1 })
  t.same(s.errorsPerSecond, [0, 2, 1])
})

t.test('a run without a response: zeros and an empty curve, not NaN', async (t) => {
  const r = new Recorder()
  t.teardown(() => r.destroy())
  r.error(0, 'ECONNREFUSED')
  const s = r.summary({ ...run, durationSec: 1 })
  t.same(s.latencyMs, { min: 0, p50: 0, p90: 0, p99: 0, p99_9: 0, mean: 0, max: 0 })
  t.same(s.percentileCurve, [])
  t.same(s.rpsPerSecond, [0])
  t.same(s.errorsPerSecond, [1])
})

t.test('dense: holes are 0, a late tail folds into the last second', async (t) => {
  const holes: number[] = [1]
  holes[2] = 3
  t.same(dense(holes, 4), [1, 0, 3, 0])
  t.same(dense([1, 2, 3, 4], 2), [1, 9])
})

t.test('the percentile curve: ten points a decade on HDR\'s axis, as far as the count resolves, then 100', async (t) => {
  const p = curvePercentiles(100)
  t.equal(p.length, 22)
  t.same(p.slice(0, 2), [0, 20.5671765276])
  t.equal(p[10], 90)
  t.equal(p[20], 99)
  t.equal(p[21], 100)
  t.equal(curvePercentiles(1_000_000)[60], 99.9999)
  t.equal(percentileAxis(0, 3), 0)
  t.equal(percentileAxis(99, 3), 2)
  t.equal(percentileAxis(99.9999, 3), 3, 'clamped to the axis')
  t.equal(percentileAxis(100, 3), 3)
})

t.test('comparison of target and baseline', async (t) => {
  const r = new Recorder()
  t.teardown(() => r.destroy())
  const base = r.summary(run)
  const target = { ...base, rps: 800, latencyMs: { ...base.latencyMs, p50: 1.5, p99: 4 } }
  const baseline = { ...base, rps: 1000, latencyMs: { ...base.latencyMs, p50: 1, p99: 3 } }
  t.same(compare(target, baseline), { rpsRatio: 0.8, addedP50Ms: 0.5, addedP99Ms: 1 })
  t.equal(compare(target, { ...baseline, rps: 0 }).rpsRatio, 0)
})

t.test('errorKind: the code, else the message', async (t) => {
  t.equal(errorKind(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' })), 'ECONNREFUSED')
  t.equal(errorKind(new Error('request timed out')), 'timeout')
  t.equal(errorKind(new Error('socket hang up: more')), 'socket hang up')
  t.equal(errorKind({}), 'error')
})
