import t from 'tap'
import { createBalancer } from '../../src/balancer/balancer.js'
import { IpHash } from '../../src/balancer/ip-hash.js'
import { LeastConn } from '../../src/balancer/least-conn.js'
import { LeastLatency } from '../../src/balancer/least-latency.js'
import { RoundRobin } from '../../src/balancer/round-robin.js'
import { withSticky } from '../../src/balancer/sticky.js'
import type { BalanceConfig } from '../../src/config/schema.js'
import { address, makeServers, pickContext, runConformance } from './conformance.js'

// The conformance contexts carry a cookie naming each server in turn, eligible
// or not, so these also check that a cookie never beats the eligibility rule.
runConformance(t, 'sticky(roundRobin)', (s) => withSticky(new RoundRobin(s), s))
runConformance(t, 'sticky(leastConn)', (s) => withSticky(new LeastConn(s, 2), s))
runConformance(t, 'sticky(ipHash)', (s) => withSticky(new IpHash(s, 100, 0), s))
runConformance(t, 'sticky(leastLatency)', (s) => withSticky(new LeastLatency(s, 10_000), s))

const configs: BalanceConfig[] = [
  { algorithm: 'roundRobin' },
  { algorithm: 'leastConn', choiceThreshold: 2 },
  { algorithm: 'ipHash', virtualNodes: 100, boundedLoad: 0.25 },
  { algorithm: 'leastLatency', decay: 10_000 }
]

t.test('pins to the cookie\'s server, whatever the algorithm would choose', async (t) => {
  for (const cfg of configs) {
    const s = makeServers([1, 1, 1, 1])
    const b = withSticky(createBalancer(cfg, s), s)
    s[2]!.active = 7 // least-conn would avoid it
    s[2]!.recordLatency(500, 0) // and so would least-latency
    const pinned = Array.from({ length: 200 }, (_, i) => b.pick(pickContext({ clientAddress: address(i), stickyId: s[2]!.id })))
    t.ok(pinned.every((x) => x === s[2]), `${cfg.algorithm}: all 200 on the cookie's server`)
  }
})

t.test('falls back to the algorithm when the cookie\'s server may not take the request', async (t) => {
  const s = makeServers([1, 1, 1], { maxConn: 3 })
  const inner = new RoundRobin(s)
  const b = withSticky(inner, s)
  const id = s[0]!.id
  const fallback = (over: Parameters<typeof pickContext>[0], why: string): void => {
    const got = Array.from({ length: 6 }, () => b.pick(pickContext({ stickyId: id, ...over }))?.name)
    t.same(new Set(got), new Set(['s1', 's2']), `${why}: spread by the algorithm over the others`)
  }
  s[0]!.setCheckStatus(false, 'test')
  fallback({}, 'unhealthy')
  t.equal(b.pick(pickContext({ stickyId: id, panic: true })), s[0], 'unless in panic mode')
  s[0]!.setCheckStatus(true, 'test')
  s[0]!.active = 3
  fallback({}, 'at maxConn')
  s[0]!.active = 0
  fallback({ tried: [s[0]!] }, 'already tried (a retry)')
  t.equal(b.pick(pickContext({ stickyId: id })), s[0], 'and pinned again once it can take it')
})

t.test('a cookie for a server that is not (or no longer) in the list is ignored', async (t) => {
  const s = makeServers([1, 1, 1])
  const gone = makeServers([1], { prefix: 'old' })[0]!
  const b = withSticky(new RoundRobin(s), s)
  const got = Array.from({ length: 6 }, (_, i) => b.pick(pickContext({ stickyId: i % 2 === 0 ? gone.id : 'garbage' }))?.name)
  t.same(got, ['s0', 's1', 's2', 's0', 's1', 's2'])
  // A config without that server: same names elsewhere do not match either.
  const other = makeServers([1, 1], { prefix: 'x' })
  const b2 = withSticky(new RoundRobin(other), other)
  t.not(b2.pick(pickContext({ stickyId: s[0]!.id })), s[0])
})

t.test('no cookie: exactly the inner algorithm', async (t) => {
  const s = makeServers([5, 1, 1])
  const plain = new RoundRobin(makeServers([5, 1, 1]))
  const b = withSticky(new RoundRobin(s), s)
  const seq = (x: { pick: typeof b.pick }): Array<string | undefined> => Array.from({ length: 14 }, () => x.pick(pickContext())?.name)
  t.same(seq(b), seq(plain))
})

t.test('explain: pinned by the cookie, or why the algorithm chose instead', async (t) => {
  const s = makeServers([1, 1, 1])
  const b = withSticky(new LeastConn(s, 10), s)
  const pinned = b.explain(pickContext({ stickyId: s[2]!.id }))
  t.equal(pinned.server, s[2])
  t.match(pinned.reason, /names s2, which may take it: pinned/)
  t.match(pinned.inner!.reason, /lowest load/, 'what the algorithm would have done')
  t.equal(pinned.candidates.length, 3)
  s[2]!.setCheckStatus(false, 'test')
  const down = b.explain(pickContext({ stickyId: s[2]!.id }))
  t.match(down.reason, /names s2, which is down \(health check\): the algorithm chooses/)
  t.equal(down.server, down.inner!.server)
  t.not(down.server, s[2])
  t.match(b.explain(pickContext({ stickyId: 'nope' })).reason, /names no server of this shard/)
  t.match(b.explain(pickContext()).reason, /^no affinity cookie: the algorithm chooses/)
})
