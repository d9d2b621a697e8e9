// The paired A/B bench's pure parts (bench/paired.ts): its options, and the
// summary of per-round ratios it reports.
import t from 'tap'
import { parsePairOptions, roundRatio, splitNodeArgs, summarizePair, usPerRequest } from '../../bench/paired.js'
import { usageError } from '../helpers/bench.js'

t.test('two mains resolved against cwd, and the defaults', async (t) => {
  const o = parsePairOptions(['base/main.js', '/abs/main.js'], '/repo')
  t.match(o, { mainA: '/repo/base/main.js', mainB: '/abs/main.js', scenario: 'pass', rounds: 6, durationSec: 3, warmupSec: 2, connections: 25, argsA: [], argsB: [], accessLog: false, help: false })
})

t.test('--args-a takes a value that starts with a dash, split on spaces', async (t) => {
  const o = parsePairOptions(['a.js', 'b.js', '--args-a', '--max-semi-space-size=64  --cpu-prof', '--args-b=--no-opt', '--scenario', 'h2'], '/')
  t.same(o.argsA, ['--max-semi-space-size=64', '--cpu-prof'])
  t.same(o.argsB, ['--no-opt'])
  t.equal(o.scenario, 'h2')
  t.same(splitNodeArgs(undefined), [])
  t.equal(parsePairOptions(['a.js', 'b.js', '--access-log'], '/').accessLog, true)
})

t.test('usage errors', async (t) => {
  t.match(usageError(() => parsePairOptions(['a.js'], '/')), /^expected two Switchyard entry points \(A and B\), got 1: a\.js$/)
  t.match(usageError(() => parsePairOptions(['a.js', 'b.js', 'c.js'], '/')), /got 3/)
  t.match(usageError(() => parsePairOptions(['a.js', 'b.js', '--scenario', 'h3'], '/')), /^--scenario: unknown name\(s\) \["h3"\]/)
  t.match(usageError(() => parsePairOptions(['a.js', 'b.js', '--scenario', 'pass,tls'], '/')), /^--scenario takes one of/)
  t.match(usageError(() => parsePairOptions(['a.js', 'b.js', '--rounds', '0'], '/')), /^--rounds must be an integer >= 1/)
  t.match(usageError(() => parsePairOptions(['a.js', 'b.js', '--bogus'], '/')), /bogus/)
  t.equal(parsePairOptions(['--help'], '/').help, true)
})

t.test('µs per request', async (t) => {
  t.equal(usPerRequest(1.5, 30000), 50)
  t.equal(usPerRequest(null, 100), null)
  t.equal(usPerRequest(1, 0), null)
})

t.test('the summary is the median of the per-round ratios, not the ratio of the medians', async (t) => {
  // Noise moves both sides of a round together; a round with one side missing has no ratio.
  // The medians (A 20, B 16.05) would give 0.80; the rounds say 1.05.
  const s = summarizePair([{ aUs: 10, bUs: 10.5 }, { aUs: 20, bUs: 21.6 }, { aUs: 30, bUs: 30 }, { aUs: null, bUs: 5 }])
  t.same(s.ratios, [1.05, 1.08, 1, null])
  t.match(s.ratio, { median: 1.05, min: 1, max: 1.08, n: 3 })
  t.match(s.a, { median: 20, n: 3 })
  t.match(s.b, { median: 16.05, n: 4 })
  t.equal(roundRatio({ aUs: 0, bUs: 1 }), null)
})
