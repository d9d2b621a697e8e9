import t from 'tap'
import type { Dispatcher } from 'undici'
import type { OutlierDetectionConfig } from '../../src/config/schema.js'
import type { HealthLog } from '../../src/health/checker.js'
import { createOutlierDetector, statusOutcome, type OutlierDeps, type OutlierDetector } from '../../src/health/outlier.js'
import type { ExchangeOutcome } from '../../src/upstream/server.js'
import { Server } from '../../src/upstream/server.js'

import type { Teardown } from '../helpers/certs.js'

const dataPool = {} as unknown as Dispatcher

function makeServers (n: number, shard = 'a'): Server[] {
  return Array.from({ length: n }, (_, i) =>
    new Server({ name: `${shard}-${i}`, url: `http://127.0.0.1:${9000 + i}`, weight: 1, backend: 'api', shard, dispatcher: dataPool }))
}

function cfg (over: Partial<OutlierDetectionConfig> = {}): OutlierDetectionConfig {
  return { consecutive5xx: 5, consecutiveGatewayFailure: 3, baseEjectionTime: 30_000, maxEjectionTime: 300_000, maxEjectionPercent: 50, ...over }
}

interface LogCall { readonly level: 'info' | 'warn', readonly obj: Record<string, unknown>, readonly msg: string }

/** Hand-driven clock and timers. */
class Clock {
  now = 1_000_000
  readonly pending = new Map<number, { fn: () => void, at: number, ms: number }>()
  readonly log: LogCall[] = []
  #next = 1

  deps (): OutlierDeps & { log: HealthLog } {
    return {
      now: () => this.now,
      setTimeout: (fn, ms) => {
        const id = this.#next++
        this.pending.set(id, { fn, at: this.now + ms, ms })
        return id
      },
      clearTimeout: (h) => { this.pending.delete(h as number) },
      log: {
        info: (obj, msg) => { this.log.push({ level: 'info', obj: obj as Record<string, unknown>, msg }) },
        warn: (obj, msg) => { this.log.push({ level: 'warn', obj: obj as Record<string, unknown>, msg }) }
      }
    }
  }

  /** The delays of the timers pending now. */
  delays (): number[] {
    return [...this.pending.values()].map((p) => p.ms)
  }

  /** Move the clock on, firing the timers that come due, in order. */
  advance (ms: number): void {
    const end = this.now + ms
    for (;;) {
      let due: [number, { fn: () => void, at: number }] | undefined
      for (const e of this.pending) if (e[1].at <= end && (due === undefined || e[1].at < due[1].at)) due = e
      if (due === undefined) break
      this.pending.delete(due[0])
      this.now = due[1].at
      due[1].fn()
    }
    this.now = end
  }
}

function detector (t: Teardown, shards: Server[][], config: OutlierDetectionConfig, clock: Clock, extra: OutlierDeps = {}): OutlierDetector {
  const d = createOutlierDetector(shards, config, { ...clock.deps(), ...extra })
  t.teardown(() => { d.stop() })
  return d
}

function feed (d: OutlierDetector, server: Server, outcome: ExchangeOutcome, n: number): void {
  for (let i = 0; i < n; i++) d.observe(server, outcome)
}

t.test('5 consecutive 5xx eject the server for the base ejection time', async (t) => {
  const [s0, s1] = makeServers(2)
  if (s0 === undefined || s1 === undefined) throw new Error('servers')
  const changes: Array<[boolean, string]> = []
  s0.onHealthChange = (_s, healthy, reason) => { changes.push([healthy, reason]) }
  const clock = new Clock()
  const d = detector(t, [[s0, s1]], cfg(), clock)
  feed(d, s0, '5xx', 4)
  t.equal(s0.ejected, false, 'not after 4')
  d.observe(s0, '5xx')
  t.equal(s0.ejected, true, 'ejected at 5')
  t.equal(s0.healthy, false)
  t.equal(s0.checkUp, true, 'the active verdict is untouched')
  t.same(changes, [[false, 'consecutive 5xx: 5']])
  t.same(clock.delays(), [30_000])
  t.match(clock.log, [{ level: 'warn', msg: 'outlier detection: server ejected', obj: { backend: 'api', shard: 'a', server: 'a-0', reason: 'consecutive 5xx: 5', ejectionMs: 30_000, ejections: 1 } }])
  t.equal(s1.ejected, false, 'the other server is left alone')
})

t.test('a success in between resets both streaks', async (t) => {
  const [s0] = makeServers(2)
  if (s0 === undefined) throw new Error('servers')
  const clock = new Clock()
  const d = detector(t, [makeServers(1).concat(s0)], cfg(), clock)
  feed(d, s0, '5xx', 4)
  d.observe(s0, 'success')
  feed(d, s0, '5xx', 4)
  t.equal(s0.ejected, false)
  d.observe(s0, 'success')
  feed(d, s0, 'gateway', 2)
  d.observe(s0, 'success')
  feed(d, s0, 'gateway', 2)
  t.equal(s0.ejected, false, 'gateway streak reset too')
  d.observe(s0, 'gateway')
  t.equal(s0.ejected, true)
})

t.test('gateway failures eject at 3 and also count as 5xx', async (t) => {
  const servers = makeServers(4)
  const [s0, s1, s2] = servers
  if (s0 === undefined || s1 === undefined || s2 === undefined) throw new Error('servers')
  const changes: string[] = []
  for (const s of servers) s.onHealthChange = (_s, _h, reason) => { changes.push(`${s.name}: ${reason}`) }
  const clock = new Clock()
  const d = detector(t, [servers], cfg({ maxEjectionPercent: 100 }), clock)
  feed(d, s0, 'gateway', 2)
  t.equal(s0.ejected, false)
  d.observe(s0, 'gateway')
  t.equal(s0.ejected, true)
  // 4 × 5xx then one gateway failure: the 5xx streak reaches 5 first.
  feed(d, s1, '5xx', 4)
  d.observe(s1, 'gateway')
  t.equal(s1.ejected, true)
  t.same(changes, ['a-0: consecutive gateway failures: 3', 'a-1: consecutive 5xx: 5'])

  // With the gateway detector off, gateway failures still eject through the 5xx streak.
  const [g0, g1] = makeServers(2, 'g')
  if (g0 === undefined || g1 === undefined) throw new Error('servers')
  const off = detector(t, [[g0, g1]], cfg({ consecutiveGatewayFailure: 0 }), new Clock())
  feed(off, g0, 'gateway', 4)
  t.equal(g0.ejected, false)
  off.observe(g0, 'gateway')
  t.equal(g0.ejected, true)
})

t.test('a threshold of 0 turns that detector off', async (t) => {
  const [s0, s1] = makeServers(2)
  if (s0 === undefined || s1 === undefined) throw new Error('servers')
  const d = detector(t, [[s0, s1]], cfg({ consecutive5xx: 0, consecutiveGatewayFailure: 0 }), new Clock())
  feed(d, s0, '5xx', 100)
  feed(d, s0, 'gateway', 100)
  t.equal(s0.ejected, false)
})

t.test('maxEjectionPercent is respected per shard', async (t) => {
  const [s0, s1] = makeServers(2)
  const [b0, b1, b2] = makeServers(3, 'b')
  if (s0 === undefined || s1 === undefined || b0 === undefined || b1 === undefined || b2 === undefined) throw new Error('servers')
  const clock = new Clock()
  const d = detector(t, [[s0, s1], [b0, b1, b2]], cfg({ maxEjectionPercent: 50 }), clock)
  feed(d, s0, '5xx', 5)
  t.equal(s0.ejected, true, 'with 50% and 2 servers, one may go')
  feed(d, s1, '5xx', 5)
  t.equal(s1.ejected, false, 'but not both')
  feed(d, s1, '5xx', 3)
  t.equal(s1.ejected, false)
  const refusals = clock.log.filter((c) => c.msg.includes('max ejection percent'))
  t.equal(refusals.length, 1, 'the refusal is logged once per streak')
  t.match(refusals[0], { level: 'warn', obj: { server: 'a-1', reason: 'consecutive 5xx: 5', maxEjectionPercent: 50 } })

  // The other shard has its own budget: 1 of 3 is fine, 2 of 3 is not.
  feed(d, b0, 'gateway', 3)
  feed(d, b1, 'gateway', 3)
  t.equal(b0.ejected, true)
  t.equal(b1.ejected, false)

  // Once a-0 is back, a-1's ongoing streak ejects it at the next failure.
  clock.advance(30_000)
  t.equal(s0.ejected, false)
  d.observe(s1, '5xx')
  t.equal(s1.ejected, true)

  // 0% never ejects.
  const [z0, z1] = makeServers(2, 'z')
  if (z0 === undefined || z1 === undefined) throw new Error('servers')
  const none = detector(t, [[z0, z1]], cfg({ maxEjectionPercent: 0 }), new Clock())
  feed(none, z0, '5xx', 10)
  t.equal(z0.ejected, false)
})

t.test('maxEjectionPercent counts the servers another worker ejected (cluster): the shard keeps one serving', async (t) => {
  const [s0, s1, s2, s3] = makeServers(4)
  if (s0 === undefined || s1 === undefined || s2 === undefined || s3 === undefined) throw new Error('servers')
  const clock = new Clock()
  const told: string[] = []
  const d = detector(t, [[s0, s1, s2, s3]], cfg({ maxEjectionPercent: 50 }), clock,
    { onEjection: (s, ejected) => { told.push(`${s.name} ${ejected ? 'out' : 'back'}`); return undefined } })
  // Another worker ejected a-0 and this one applied it (cluster/worker.ts applyEjection).
  s0.setEjected(true, 'consecutive 5xx: 5 (another worker)', false)
  feed(d, s1, '5xx', 5)
  t.equal(s1.ejected, true, '2 of 4 out is within 50%')
  feed(d, s2, '5xx', 5)
  t.equal(s2.ejected, false, 'a third would be 75%: the remote ejection counts')
  t.match(clock.log.at(-1), { level: 'warn', obj: { server: 'a-2', maxEjectionPercent: 50 }, msg: /max ejection percent/ })
  // Its outcomes while it is out on another worker's word decide nothing here.
  feed(d, s0, '5xx', 10)
  t.same(told, ['a-1 out'], 'only a-1 was ejected by this detector')

  // Two servers, the first ejected by the other worker: the second stays in.
  const [b0, b1] = makeServers(2, 'b')
  if (b0 === undefined || b1 === undefined) throw new Error('servers')
  const two = detector(t, [[b0, b1]], cfg({ maxEjectionPercent: 50 }), new Clock())
  b0.setEjected(true, 'remote', false)
  feed(two, b1, '5xx', 20)
  t.equal(b1.ejected, false, 'the last of two is not ejected')
  // Back on the other worker's word: b-1's ongoing streak ejects it at the next failure.
  b0.setEjected(false, 'remote back', false)
  two.observe(b1, '5xx')
  t.equal(b1.ejected, true)
})

t.test('servers down by their health check count against the cap, and the last server serving is never ejected', async (t) => {
  const [s0, s1] = makeServers(2)
  if (s0 === undefined || s1 === undefined) throw new Error('servers')
  const clock = new Clock()
  const d = detector(t, [[s0, s1]], cfg({ maxEjectionPercent: 50 }), clock)
  s0.setCheckStatus(false, 'health check: refused')
  feed(d, s1, '5xx', 5)
  t.equal(s1.ejected, false, 'a-0 is down: ejecting a-1 would leave nothing')
  t.match(clock.log.at(-1), { level: 'warn', obj: { server: 'a-1' }, msg: 'outlier detection: not ejected, shard at max ejection percent' })

  // 4 servers, one down: one more may go (2 of 4 out), not two.
  const four = makeServers(4, 'f')
  const [f0, f1, f2] = four as [Server, Server, Server, Server]
  const d4 = detector(t, [four], cfg({ maxEjectionPercent: 50 }), new Clock())
  f0.setCheckStatus(false, 'down')
  feed(d4, f1, '5xx', 5)
  feed(d4, f2, '5xx', 5)
  t.same([f1.ejected, f2.ejected], [true, false])

  // At 100% the cap allows all, but the last one serving stays: down, ejected, or in maintenance, the others do not serve.
  const three = makeServers(3, 'h')
  const [h0, h1, h2] = three as [Server, Server, Server]
  const hclock = new Clock()
  const d100 = detector(t, [three], cfg({ maxEjectionPercent: 100 }), hclock)
  h0.setCheckStatus(false, 'down')
  feed(d100, h1, '5xx', 5)
  t.equal(h1.ejected, true)
  feed(d100, h2, '5xx', 5)
  t.equal(h2.ejected, false, 'h-2 is the last serving')
  t.match(hclock.log.at(-1), { level: 'warn', obj: { server: 'h-2' }, msg: 'outlier detection: not ejected, the last server of its shard still serving' })
  const [m0, m1] = makeServers(2, 'm')
  if (m0 === undefined || m1 === undefined) throw new Error('servers')
  const dm = detector(t, [[m0, m1]], cfg({ maxEjectionPercent: 100 }), new Clock())
  m0.adminState = 'maint'
  feed(dm, m1, '5xx', 5)
  t.equal(m1.ejected, false, 'the other is in maintenance')
  m0.adminState = 'ready'
  dm.observe(m1, '5xx')
  t.equal(m1.ejected, true, 'once it is ready again, the ongoing streak ejects')
})

t.test('ejection ends on time, and probation re-ejects for longer', async (t) => {
  const [s0, s1] = makeServers(2)
  if (s0 === undefined || s1 === undefined) throw new Error('servers')
  const changes: Array<[boolean, string]> = []
  s0.onHealthChange = (_s, healthy, reason) => { changes.push([healthy, reason]) }
  const clock = new Clock()
  const d = detector(t, [[s0, s1]], cfg({ baseEjectionTime: 1000, maxEjectionTime: 10_000 }), clock)
  feed(d, s0, '5xx', 5)
  // Outcomes of exchanges that were in flight when it was ejected are ignored.
  feed(d, s0, '5xx', 20)
  clock.advance(999)
  t.equal(s0.ejected, true, 'still out before the ejection time')
  clock.advance(1)
  t.equal(s0.ejected, false, 'back after the ejection time')
  t.equal(s0.healthy, true)
  t.same(changes, [[false, 'consecutive 5xx: 5'], [true, 'ejection ended, on probation']])
  t.match(clock.log.at(-1), { level: 'info', msg: 'outlier detection: server back', obj: { server: 'a-0', reason: 'ejection ended, on probation' } })
  feed(d, s0, '5xx', 4)
  t.equal(s0.ejected, false, 'a fresh streak on probation')
  d.observe(s0, '5xx')
  t.equal(s0.ejected, true, 're-ejected')
  t.same(clock.delays(), [2000], 'for twice the base time')
})

t.test('ejection time grows with each ejection, is capped, and decays while the server stays in', async (t) => {
  const [s0, s1] = makeServers(2)
  if (s0 === undefined || s1 === undefined) throw new Error('servers')
  const clock = new Clock()
  const d = detector(t, [[s0, s1]], cfg({ baseEjectionTime: 1000, maxEjectionTime: 3500 }), clock)
  const times: number[] = []
  for (let i = 0; i < 6; i++) {
    feed(d, s0, 'gateway', 3)
    t.equal(s0.ejected, true)
    const [ms] = clock.delays()
    if (ms === undefined) throw new Error('no ejection timer')
    times.push(ms)
    clock.advance(ms)
    t.equal(s0.ejected, false)
  }
  t.same(times, [1000, 2000, 3000, 3500, 3500, 3500], 'base × ejections, capped at maxEjectionTime')

  // 4 ejections on record (the cap); one base time back in takes one off.
  clock.advance(1000)
  feed(d, s0, 'gateway', 3)
  t.same(clock.delays(), [3500], '4 - 1 + 1 = 4 → capped')
  clock.advance(3500)
  clock.advance(2500)
  feed(d, s0, 'gateway', 3)
  t.same(clock.delays(), [3000], '4 - 2 + 1 = 3')
  clock.advance(3000)
  clock.advance(60_000)
  feed(d, s0, 'gateway', 3)
  t.same(clock.delays(), [1000], 'a long healthy stretch forgets it all')
})

t.test('healthy reflects both the active check and ejection', async (t) => {
  const [s0, s1] = makeServers(2)
  if (s0 === undefined || s1 === undefined) throw new Error('servers')
  const changes: boolean[] = []
  s0.onHealthChange = (_s, healthy) => { changes.push(healthy) }
  const clock = new Clock()
  const d = detector(t, [[s0, s1]], cfg({ baseEjectionTime: 1000 }), clock)
  s0.setCheckStatus(false, 'status 503 not in 200-399')
  t.equal(s0.healthy, false)
  feed(d, s0, '5xx', 5)
  t.equal(s0.ejected, true)
  t.equal(s0.healthy, false)
  clock.advance(1000)
  t.equal(s0.ejected, false)
  t.equal(s0.healthy, false, 'still down by the active check')
  s0.setCheckStatus(true, 'health check passed')
  t.equal(s0.healthy, true)
  feed(d, s0, '5xx', 5)
  t.equal(s0.healthy, false, 'down by ejection alone')
  t.same(changes, [false, true, false], 'one listener call per change of healthy')
})

t.test('stop() cancels ejection timers and ignores later outcomes; unknown servers are ignored', async (t) => {
  const [s0, s1] = makeServers(2)
  if (s0 === undefined || s1 === undefined) throw new Error('servers')
  const clock = new Clock()
  const d = createOutlierDetector([[s0, s1]], cfg(), clock.deps())
  feed(d, s0, '5xx', 5)
  t.equal(clock.pending.size, 1)
  d.observe(makeServers(1, 'x')[0] as Server, '5xx')
  d.stop()
  t.equal(clock.pending.size, 0)
  feed(d, s1, '5xx', 10)
  t.equal(s1.ejected, false)
  d.stop()
})

t.test('with the default timers, the ejection ends by itself', async (t) => {
  const [s0, s1] = makeServers(2)
  if (s0 === undefined || s1 === undefined) throw new Error('servers')
  const d = createOutlierDetector([[s0, s1]], cfg({ baseEjectionTime: 20 }))
  t.teardown(() => { d.stop() })
  feed(d, s0, '5xx', 5)
  t.equal(s0.ejected, true)
  const deadline = Date.now() + 5000
  while (s0.ejected && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5))
  t.equal(s0.ejected, false, 'un-ejected within the bounded wait')
})

t.test('statusOutcome: 5xx fail, but 501 and 505 are the client\'s doing (HAProxy observe layer7)', async (t) => {
  t.same([200, 404, 499, 500, 501, 502, 503, 504, 505, 599].map(statusOutcome),
    ['success', 'success', 'success', '5xx', 'success', '5xx', '5xx', '5xx', 'success', '5xx'])
})

t.test('two workers that eject in the same instant past maxEjectionPercent: the later ejection, by rank, is undone', async (t) => {
  // Two workers' detectors over the same two servers (each process has its own Server objects).
  const [a0, a1] = makeServers(2)
  const [b0, b1] = makeServers(2)
  if (a0 === undefined || a1 === undefined || b0 === undefined || b1 === undefined) throw new Error('servers')
  const toldA: string[] = []
  const toldB: string[] = []
  const ranked = (told: string[], rank: number) => (s: Server, ejected: boolean, reason: string): number | undefined => {
    told.push(`${s.name} ${ejected ? 'out' : 'back'}: ${reason}`)
    return ejected ? rank : undefined
  }
  const clockA = new Clock()
  const clockB = new Clock()
  const a = detector(t, [[a0, a1]], cfg({ maxEjectionPercent: 50 }), clockA, { onEjection: ranked(toldA, 100) })
  const b = detector(t, [[b0, b1]], cfg({ maxEjectionPercent: 50 }), clockB, { onEjection: ranked(toldB, 101) })
  // Before either hears of the other: A ejects a-0 (rank 100), B ejects a-1 (rank 101).
  feed(a, a0, '5xx', 5)
  feed(b, b1, '5xx', 5)
  t.same([a0.ejected, b1.ejected], [true, true], 'each within 50% as far as it knew')
  // The notices cross: each worker applies the other's, then contests it.
  a1.setEjected(true, 'consecutive 5xx: 5 (another worker)', false)
  a.contest(a1, 101)
  b0.setEjected(true, 'consecutive 5xx: 5 (another worker)', false)
  b.contest(b0, 100)
  t.same(toldA, ['a-0 out: consecutive 5xx: 5'], 'A made the earlier ejection: it keeps it')
  t.equal(toldB.length, 2)
  t.match(toldB[1], /^a-1 back: another worker ejected a server of its shard first/, 'B undoes its later one and says so')
  t.equal(b1.ejected, false)
  t.equal(clockB.pending.size, 0, 'its ejection timer is gone')
  // B's "back" reaches A, which lifts a-1: one server out in both, as one process would have it.
  a1.setEjected(false, 'back (another worker)', false)
  t.same([a0.ejected, a1.ejected, b0.ejected, b1.ejected], [true, false, true, false])
  // A later streak on a-1 in B is refused by the cap, as always.
  feed(b, b1, '5xx', 5)
  t.equal(b1.ejected, false)
  // Within the cap, a remote ejection undoes nothing.
  const [c0, c1, c2, c3] = makeServers(4, 'c')
  if (c0 === undefined || c1 === undefined || c2 === undefined || c3 === undefined) throw new Error('servers')
  const toldC: string[] = []
  const c = detector(t, [[c0, c1, c2, c3]], cfg({ maxEjectionPercent: 50 }), new Clock(), { onEjection: ranked(toldC, 200) })
  feed(c, c1, '5xx', 5)
  c0.setEjected(true, 'remote', false)
  c.contest(c0, 100)
  t.equal(c1.ejected, true, '2 of 4 is within 50%')
})
