import t from 'tap'
import { LeastLatency } from '../../src/balancer/least-latency.js'
import type { Server } from '../../src/upstream/server.js'
import { makeServers, pickContext, runConformance } from './conformance.js'

const DECAY = 10_000

runConformance(t, 'leastLatency', (servers) => new LeastLatency(servers, DECAY))

/** Servers with these measured latencies (ms) at time `at`; 0 = never measured. */
function measured (latencies: number[], at = 0, weights = latencies.map(() => 1)): Server[] {
  const s = makeServers(weights, { latencyDecay: DECAY })
  latencies.forEach((ms, i) => { if (ms > 0) s[i]!.recordLatency(ms, at) })
  return s
}

function counts (b: LeastLatency, now: number, picks = 10_000): Map<string, number> {
  const c = new Map<string, number>()
  for (let i = 0; i < picks; i++) { const n = b.pick(pickContext({ now }))!.name; c.set(n, (c.get(n) ?? 0) + 1) }
  return c
}

t.test('prefers the lower-latency server', async (t) => {
  const two = measured([100, 10])
  const b2 = new LeastLatency(two, DECAY)
  t.same(Object.fromEntries(counts(b2, 0, 100)), { s1: 100 }, 'of two, always the faster')
  // Five servers, power of two choices: the slowest is never the better of
  // two, and the fastest gets the largest share.
  const five = measured([50, 10, 200, 20, 100])
  const c = counts(new LeastLatency(five, DECAY), 0)
  t.equal(c.get('s2'), undefined, 'slowest never picked')
  const share = (n: string): number => c.get(n) ?? 0
  t.ok(share('s1') > share('s3') && share('s3') > share('s0') && share('s0') > share('s4'),
    `shares follow latency: ${['s1', 's3', 's0', 's4', 's2'].map((n) => `${n}=${share(n)}`).join(' ')}`)
  // Distinct uniform pair out of 5: the fastest wins 4/10 of the time.
  t.ok(Math.abs(share('s1') - 4000) < 300, `fastest: ${share('s1')} of 10 000, expected ~4000`)
})

t.test('latency is multiplied by requests in flight, and divided by weight', async (t) => {
  const s = measured([10, 100])
  const b = new LeastLatency(s, DECAY)
  s[0]!.active = 5 // 10 × 6 = 60 < 100
  t.equal(b.pick(pickContext()), s[0])
  s[0]!.active = 19 // 10 × 20 = 200 > 100
  t.equal(b.pick(pickContext()), s[1])
  s[1]!.active = 1 // 100 × 2 = 200: tie, both take turns
  t.same(new Set(Array.from({ length: 4 }, () => b.pick(pickContext())!.name)), new Set(['s0', 's1']))
  const w = measured([30, 20], 0, [2, 1]) // 30 / 2 = 15 < 20
  t.equal(new LeastLatency(w, DECAY).pick(pickContext()), w[0])
})

t.test('an unmeasured server is tried first, but not piled onto before it answers', async (t) => {
  const two = measured([10, 0])
  t.equal(new LeastLatency(two, DECAY).pick(pickContext()), two[1], 'unmeasured and idle: score 0')
  // Three servers, two choices: it wins every pair it is drawn in (2/3).
  const s = measured([10, 0, 20])
  const b = new LeastLatency(s, DECAY)
  const first = counts(b, 0, 3000)
  t.ok(Math.abs(first.get('s1')! - 2000) < 150, `unmeasured: ${first.get('s1')} of 3000, expected ~2000`)
  s[1]!.active = 1
  t.equal(counts(b, 0, 1000).get('s1'), undefined, 'unmeasured with a request in flight: measured servers first')
  s[1]!.active = 0
  s[1]!.recordLatency(5, 0)
  const after = counts(b, 0, 3000)
  t.ok(Math.abs(after.get('s1')! - 2000) < 150, `measured fastest: ${after.get('s1')} of 3000, on its latency again`)
})

t.test('decay: a server that was slow once is probed again later', async (t) => {
  const s = measured([1000, 10], 0)
  const b = new LeastLatency(s, DECAY)
  // The fast server keeps answering in 10 ms; the slow one is never picked,
  // so nothing refreshes its cost, which decays toward zero.
  const pickAt = (now: number): Server => {
    s[1]!.recordLatency(10, now)
    return b.pick(pickContext({ now }))!
  }
  t.equal(pickAt(1000), s[1])
  t.equal(pickAt(30_000), s[1], '30 s on: 1000 ms × e^-3 = 50 ms, still slower')
  // 1000 × e^(-t/10 s) < 10 once t > 10 s × ln 100 ≈ 46 s.
  t.equal(pickAt(50_000), s[0], '50 s on: 1000 ms × e^-5 = 6.7 ms, worth another try')
  // Its probe answers slowly again: back to the fast server at once (peak).
  s[0]!.recordLatency(1000, 50_000)
  t.equal(pickAt(50_001), s[1])
})

t.test('explain: each server\'s decayed latency and cost, the cheapest picked', async (t) => {
  const s = measured([40, 10, 0])
  s[1]!.active = 4 // 10 × 5 = 50 > 40
  s[2]!.active = 1 // unmeasured, busy
  const b = new LeastLatency(s, DECAY)
  const a = b.explain(pickContext({ now: 0 }))
  t.not(a.server, s[2], 'the costliest is never the better of two')
  t.same(a.candidates.map((c) => [c.server.name, c.score, c.why]), [
    ['s0', 40, 'latency 40 ms × (0+1)/1 = 40'],
    ['s1', 50, 'latency 10 ms × (4+1)/1 = 50'],
    ['s2', 1e9, 'unmeasured with 1 in flight: ranked last']
  ])
  t.match(a.reason, /power of two choices among 3 servers/)
  const later = b.explain(pickContext({ now: DECAY }))
  t.match(later.candidates[0]!.why, /^latency 14\.72 ms/, 'decayed by e^-1 after one time constant')
  const two = measured([30, 20])
  two[1]!.active = 1 // 20 × 2 = 40 > 30
  const full = new LeastLatency(two, DECAY).explain(pickContext())
  t.equal(full.server, two[0], 'two servers: compared in full, the cheaper wins')
  t.match(full.reason, /^the lowest cost/)
  t.match(new LeastLatency(measured([0, 0]), DECAY).explain(pickContext()).candidates[0]!.why, /unmeasured and idle: tried first/)
})
