import t from 'tap'
import { createBalancer, eligible, ineligible, NONE_TRIED } from '../../src/balancer/balancer.js'
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

t.test('ineligible spells out the eligible rule: undefined exactly when eligible', async (t) => {
  const s = makeServers([1, 1], { maxConn: 2 })
  const a = s[0]!
  const cases: Array<[string, () => void]> = [
    ['idle', () => {}],
    ['full', () => { a.active = 2 }],
    ['down', () => { a.setCheckStatus(false, 'test') }],
    ['ejected', () => { a.setEjected(true, 'test') }],
    ['down and full', () => { a.setCheckStatus(false, 'test'); a.active = 2 }]
  ]
  for (const [name, setUp] of cases) {
    a.active = 0
    a.setCheckStatus(true, 'test')
    a.setEjected(false, 'test')
    setUp()
    for (const ctx of [pickContext(), pickContext({ panic: true }), pickContext({ tried: [a] }), pickContext({ tried: [s[1]!] })]) {
      t.equal(ineligible(a, ctx) === undefined, eligible(a, ctx), `${name}, panic ${ctx.panic}, tried ${ctx.tried.length}: ${ineligible(a, ctx) ?? 'eligible'}`)
    }
  }
  a.active = 0
  a.setCheckStatus(true, 'test')
  a.setEjected(false, 'test')
  t.equal(ineligible(a, pickContext({ tried: [a] })), 'already tried for this request')
  a.active = 2
  t.equal(ineligible(a, pickContext()), 'full: 2 of maxConn 2 in flight')
  a.setEjected(true, 'test')
  t.equal(ineligible(a, pickContext()), 'ejected by outlier detection')
})
