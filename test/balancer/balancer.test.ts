import t from 'tap'
import { createBalancer, eligible, NONE_TRIED } from '../../src/balancer/balancer.js'
import { IpHash } from '../../src/balancer/ip-hash.js'
import { LeastConn } from '../../src/balancer/least-conn.js'
import { LeastLatency } from '../../src/balancer/least-latency.js'
import { RoundRobin } from '../../src/balancer/round-robin.js'
import type { BalanceConfig } from '../../src/config/schema.js'
import { makeServers, pickContext, runConformance } from './conformance.js'

const cases: Array<[BalanceConfig, abstract new (...args: never[]) => unknown]> = [
  [{ algorithm: 'roundRobin' }, RoundRobin],
  [{ algorithm: 'leastConn', choiceThreshold: 10 }, LeastConn],
  [{ algorithm: 'ipHash', virtualNodes: 100, boundedLoad: 0 }, IpHash],
  [{ algorithm: 'leastLatency', decay: 10_000 }, LeastLatency]
]

t.test('createBalancer builds the configured algorithm', async (t) => {
  for (const [cfg, cls] of cases) t.ok(createBalancer(cfg, makeServers([1, 1])) instanceof cls, cfg.algorithm)
  t.throws(() => createBalancer({ algorithm: 'random' } as unknown as BalanceConfig, []), /unknown balance algorithm/)
})

for (const [cfg] of cases) runConformance(t, `createBalancer(${cfg.algorithm})`, (s) => createBalancer(cfg, s))

t.test('eligible: healthy (or panic), below maxConn, not tried', async (t) => {
  const s = makeServers([1, 1], { maxConn: 2 })
  const a = s[0]!
  const b = s[1]!
  t.ok(eligible(a, pickContext()))
  t.equal(NONE_TRIED.length, 0)
  t.notOk(eligible(a, pickContext({ tried: [b, a] })))
  t.ok(eligible(a, pickContext({ tried: [b] })))
  a.active = 2
  t.notOk(eligible(a, pickContext()))
  t.notOk(eligible(a, pickContext({ panic: true })), 'panic ignores health, not capacity')
  a.active = 1
  a.setCheckStatus(false, 'test')
  t.notOk(eligible(a, pickContext()))
  t.ok(eligible(a, pickContext({ panic: true })))
})
