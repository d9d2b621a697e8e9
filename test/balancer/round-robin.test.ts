import t from 'tap'
import { RoundRobin } from '../../src/balancer/round-robin.js'
import type { Server } from '../../src/upstream/server.js'

const ctx = { clientAddress: '127.0.0.1' }
function servers (weights: number[]): Server[] {
  return weights.map((weight, i) => ({ name: `s${i}`, weight, healthy: true }) as unknown as Server)
}

t.test('equal weights rotate in order', async (t) => {
  const s = servers([1, 1, 1])
  const rr = new RoundRobin(s)
  t.same(Array.from({ length: 6 }, () => rr.pick(ctx)?.name), ['s0', 's1', 's2', 's0', 's1', 's2'])
})

t.test('weights are honoured exactly over a cycle and interleaved (smooth)', async (t) => {
  const s = servers([5, 1, 1])
  const rr = new RoundRobin(s)
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

t.test('unhealthy servers are skipped; none healthy gives undefined', async (t) => {
  const s = servers([1, 1, 1])
  const rr = new RoundRobin(s)
  s[1]!.healthy = false
  t.same(Array.from({ length: 4 }, () => rr.pick(ctx)?.name), ['s0', 's2', 's0', 's2'])
  const w = servers([3, 1])
  const wrr = new RoundRobin(w)
  w[0]!.healthy = false
  t.same(Array.from({ length: 3 }, () => wrr.pick(ctx)?.name), ['s1', 's1', 's1'])
  for (const x of [...s, ...w]) x.healthy = false
  t.equal(rr.pick(ctx), undefined)
  t.equal(wrr.pick(ctx), undefined)
})
