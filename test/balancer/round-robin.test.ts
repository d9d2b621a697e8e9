import t from 'tap'
import { RoundRobin } from '../../src/balancer/round-robin.js'
import { makeServers, pickContext, runConformance } from './conformance.js'

runConformance(t, 'roundRobin', (servers) => new RoundRobin(servers))

const ctx = pickContext()

t.test('equal weights rotate in order', async (t) => {
  const rr = new RoundRobin(makeServers([1, 1, 1]))
  t.same(Array.from({ length: 6 }, () => rr.pick(ctx)?.name), ['s0', 's1', 's2', 's0', 's1', 's2'])
})

t.test('weights are honoured exactly over a cycle and interleaved (smooth)', async (t) => {
  const rr = new RoundRobin(makeServers([5, 1, 1]))
  const cycle = Array.from({ length: 7 }, () => rr.pick(ctx)?.name)
  t.equal(cycle.filter((n) => n === 's0').length, 5)
  t.equal(cycle.filter((n) => n === 's1').length, 1)
  t.equal(cycle.filter((n) => n === 's2').length, 1)
  // nginx's smooth WRR for 5/1/1: a a b a c a a — never 5 in a row.
  t.same(cycle, ['s0', 's0', 's1', 's0', 's2', 's0', 's0'])
  const counts = new Map<string, number>()
  for (let i = 0; i < 10_000 * 7; i++) { const n = rr.pick(ctx)!.name; counts.set(n, (counts.get(n) ?? 0) + 1) }
  t.same(Object.fromEntries(counts), { s0: 50_000, s1: 10_000, s2: 10_000 })
})

t.test('uneven weights: within 1% of the weight share over 10 000 picks', async (t) => {
  const weights = [3, 1, 2.5, 0.5, 3]
  const s = makeServers(weights)
  const rr = new RoundRobin(s)
  const counts = new Map(s.map((x) => [x, 0]))
  for (let i = 0; i < 10_000; i++) { const x = rr.pick(ctx)!; counts.set(x, counts.get(x)! + 1) }
  for (const [x, c] of counts) {
    const want = 10_000 * x.weight / 10
    t.ok(Math.abs(c - want) <= 100, `${x.name}: ${c} picks, weight share ${want}`)
  }
})

t.test('unhealthy servers are skipped; none healthy gives undefined', async (t) => {
  const s = makeServers([1, 1, 1])
  const rr = new RoundRobin(s)
  s[1]!.healthy = false
  t.same(Array.from({ length: 4 }, () => rr.pick(ctx)?.name), ['s0', 's2', 's0', 's2'])
  const w = makeServers([3, 1])
  const wrr = new RoundRobin(w)
  w[0]!.healthy = false
  t.same(Array.from({ length: 3 }, () => wrr.pick(ctx)?.name), ['s1', 's1', 's1'])
  for (const x of [...s, ...w]) x.healthy = false
  t.equal(rr.pick(ctx), undefined)
  t.equal(wrr.pick(ctx), undefined)
})

t.test('slow start: a server that just came back gets a ramped share', async (t) => {
  const s = makeServers([1, 1], { slowStart: 10_000 })
  s[1]!.setCheckStatus(false, 'test')
  s[1]!.setCheckStatus(true, 'test') // upSince = performance.now()
  const rr = new RoundRobin(s)
  const share = (now: number): number => {
    let n = 0
    for (let i = 0; i < 1000; i++) if (rr.pick(pickContext({ now }))! === s[1]) n++
    return n
  }
  const up = s[1]!.upSince
  const early = share(up + 1000) // weight 0.1
  const late = share(up + 20_000) // full weight
  t.ok(early > 60 && early < 120, `10% into slow start: ${early}/1000 picks`)
  t.equal(late, 500, 'after slow start: an even split')
})

t.test('explain: the next picks of the cycle, as turns, and the rotation is left where it was', async (t) => {
  const s = makeServers([5, 1, 1])
  const rr = new RoundRobin(s)
  rr.pick(ctx) // s0
  const a = rr.explain(ctx)
  t.same([a.server!, ...a.next!].map((x) => x.name), ['s0', 's1', 's0', 's2', 's0', 's0', 's0'], 'one cycle, from where the rotation is')
  t.same(a.candidates.map((c) => [c.server.name, c.score, c.why]), [
    ['s0', 1, 'turn 1, weight 5'], ['s1', 2, 'turn 2, weight 1'], ['s2', 4, 'turn 4, weight 1']])
  t.match(a.varies, /elsewhere in its cycle/)
  t.equal(rr.pick(ctx)?.name, 's0', 'the pick explain announced')
  t.equal(rr.pick(ctx)?.name, 's1')

  const even = makeServers([1, 1, 1])
  even[1]!.setCheckStatus(false, 'test')
  const e = new RoundRobin(even).explain(ctx)
  t.same([e.server!, ...e.next!].map((x) => x.name), ['s0', 's2'])
  t.same(e.candidates.map((c) => c.why), ['turn 1', 'skipped: down (health check)', 'turn 2'])
  t.match(e.reason, /^round-robin/)
})
