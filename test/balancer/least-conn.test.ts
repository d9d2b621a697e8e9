import t from 'tap'
import { LeastConn } from '../../src/balancer/least-conn.js'
import type { Server } from '../../src/upstream/server.js'
import { makeServers, pickContext, runConformance } from './conformance.js'

runConformance(t, 'leastConn (full scan)', (servers) => new LeastConn(servers, 100))
runConformance(t, 'leastConn (power of two choices)', (servers) => new LeastConn(servers, 0))

const ctx = pickContext()

function withActive (weights: number[], active: number[]): Server[] {
  const s = makeServers(weights)
  active.forEach((a, i) => { s[i]!.active = a })
  return s
}

t.test('picks the least loaded server', async (t) => {
  const s = withActive([1, 1, 1, 1], [3, 1, 2, 4])
  const lc = new LeastConn(s, 100)
  for (let i = 0; i < 10; i++) t.equal(lc.pick(ctx), s[1])
  s[1]!.active = 5
  t.equal(lc.pick(ctx), s[2])
})

t.test('load is per unit of weight', async (t) => {
  // Loads (active + 1) / weight: 3, 5/3, 4.
  const s = withActive([1, 3, 1], [2, 4, 3])
  t.equal(new LeastConn(s, 100).pick(ctx), s[1])
  // Without releases, in-flight requests end up in proportion to weight.
  const w = makeServers([1, 2, 3])
  const lc = new LeastConn(w, 100)
  for (let i = 0; i < 60; i++) lc.pick(ctx)!.active++
  t.same(w.map((x) => x.active), [10, 20, 30])
})

t.test('distribution over 10 000 picks under load matches the weights within 1%', async (t) => {
  // A steady 100 requests in flight, the oldest finishing as each new one starts.
  const w = makeServers([1, 2, 3, 4])
  const lc = new LeastConn(w, 100)
  const inFlight: Server[] = []
  const picks = new Map<Server, number>()
  for (let i = 0; i < 10_000; i++) {
    const s = lc.pick(ctx)!
    s.active++
    inFlight.push(s)
    picks.set(s, (picks.get(s) ?? 0) + 1)
    if (inFlight.length > 100) inFlight.shift()!.active--
  }
  const total = 10_000
  w.forEach((s, i) => {
    const share = (picks.get(s) ?? 0) / total
    const want = (i + 1) / 10
    t.ok(Math.abs(share - want) < 0.01, `weight ${i + 1}: ${(share * 100).toFixed(2)}% vs ${want * 100}%`)
  })
})

t.test('an idle server always comes first', async (t) => {
  const s = withActive([10, 10, 1], [1, 1, 0])
  const lc = new LeastConn(s, 100)
  t.equal(lc.pick(ctx), s[2])
})

t.test('ties rotate instead of always favouring the first server', async (t) => {
  for (const load of [0, 3]) {
    const s = withActive([1, 1, 1], [load, load, load])
    const lc = new LeastConn(s, 100)
    const seen = Array.from({ length: 9 }, () => lc.pick(ctx)!.name)
    t.same(seen.filter((n) => n === 's0').length, 3, `active ${load}: s0 picked 3 times in 9`)
    t.same(new Set(seen).size, 3, `active ${load}: every server picked`)
  }
  // A tie among the least loaded only: the busiest never gets a turn.
  const s = withActive([1, 1, 1, 1], [2, 5, 2, 2])
  const lc = new LeastConn(s, 100)
  const seen = Array.from({ length: 12 }, () => lc.pick(ctx)!.name)
  t.same([...new Set(seen)].sort(), ['s0', 's2', 's3'])
})

t.test('slow start: a server just back up takes little while others are busy', async (t) => {
  const s = makeServers([1, 1], { slowStart: 10_000 })
  s[0]!.setCheckStatus(false, 'test')
  s[0]!.setCheckStatus(true, 'test')
  const now = s[0]!.upSince + 1000 // effective weight 0.1
  s[0]!.active = 1 // load 20
  s[1]!.active = 5 // load 6
  const lc = new LeastConn(s, 100)
  t.equal(lc.pick(pickContext({ now })), s[1])
  t.equal(lc.pick(pickContext({ now: now + 20_000 })), s[0], 'full weight again after slow start')
})

t.test('power of two choices: always the less loaded of the two candidates', async (t) => {
  const n = 20
  const s = makeServers(new Array<number>(n).fill(1))
  s.forEach((x, i) => { x.active = (i * 7) % n }) // distinct loads, shuffled order
  const lc = new LeastConn(s, 10)
  // Steer Math.random through every ordered pair (a, b): the first draw picks
  // a out of n, the second b out of the n - 1 others.
  const real = Math.random
  t.teardown(() => { Math.random = real })
  let pairs = 0
  for (let a = 0; a < n; a++) {
    for (let b = 0; b < n; b++) {
      if (a === b) continue
      const draws = [(a + 0.5) / n, ((b < a ? b : b - 1) + 0.5) / (n - 1)]
      Math.random = () => draws.shift()!
      const got = lc.pick(ctx)
      const want = s[a]!.active <= s[b]!.active ? s[a] : s[b]
      if (got !== want) t.fail(`pair ${a},${b}: picked ${got?.name}`)
      pairs++
    }
  }
  Math.random = real
  t.equal(pairs, 380)
  t.pass('every pair resolved to the less loaded server')
})

t.test('power of two choices with 20 servers: never the busiest, skewed toward the least', async (t) => {
  const n = 20
  const s = makeServers(new Array<number>(n).fill(1))
  s.forEach((x, i) => { x.active = i }) // rank = index
  const lc = new LeastConn(s, 10)
  const picks = 100_000
  const counts = new Array<number>(n).fill(0)
  for (let i = 0; i < picks; i++) counts[Number(lc.pick(ctx)!.name.slice(1))]!++
  t.equal(counts[n - 1], 0, 'the busiest server is never the better of two')
  // Distinct uniform pair: rank r wins with probability 2(n-1-r)/(n(n-1)).
  const expected = (r: number): number => picks * 2 * (n - 1 - r) / (n * (n - 1))
  for (const r of [0, 5, 10, 18]) {
    const want = expected(r)
    t.ok(Math.abs(counts[r]! - want) < want * 0.1 + 50, `rank ${r}: ${counts[r]} picks, expected ~${want.toFixed(0)}`)
  }
})

t.test('power of two choices falls back to a full scan when few are eligible', async (t) => {
  const s = makeServers(new Array<number>(20).fill(1))
  for (const x of s) x.setCheckStatus(false, 'test')
  s[13]!.setCheckStatus(true, 'test')
  const lc = new LeastConn(s, 10)
  const all = (want: Server): boolean => Array.from({ length: 1000 }, () => lc.pick(ctx)).every((x) => x === want)
  t.ok(all(s[13]!), 'the one eligible server, every time')
  s[7]!.setCheckStatus(true, 'test')
  s[13]!.active = 3
  t.ok(all(s[7]!), 'of two eligible, always the less loaded')
})

t.test('explain: every server\'s load as pick computes it, and whether the choice is random', async (t) => {
  const s = withActive([1, 2, 1], [3, 3, 0])
  s[2]!.setCheckStatus(false, 'test')
  const a = new LeastConn(s, 100).explain(ctx)
  t.equal(a.server, s[1])
  t.same(a.candidates.map((c) => [c.server.name, c.score, c.eligible, c.why]), [
    ['s0', 4, true, 'load (3+1)/1 = 4'],
    ['s1', 2, true, 'load (3+1)/2 = 2'],
    ['s2', 0, false, 'down (health check)']
  ])
  t.match(a.reason, /lowest load/)
  t.equal(a.varies, undefined, 'one lowest load: no luck involved')
  const tie = new LeastConn(withActive([1, 1], [0, 0]), 100).explain(ctx)
  t.same(tie.candidates.map((c) => c.why), ['idle: load 0', 'idle: load 0'])
  t.match(tie.varies, /2 servers tie/)
  const p2c = new LeastConn(makeServers(new Array<number>(20).fill(1)), 10).explain(ctx)
  t.match(p2c.reason, /power of two choices among 20 servers/)
  t.match(p2c.varies, /random/)
})
