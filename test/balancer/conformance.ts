// The contract every balancing algorithm keeps (hono's common.case.test.ts
// idea): each algorithm's test file runs `runConformance` with a factory, then
// adds its own behaviour tests. Real `Server` records throughout.
import type { Test } from 'tap'
import type { Dispatcher } from 'undici'
import { eligible, NONE_TRIED, type Balancer, type PickContext } from '../../src/balancer/balancer.js'
import { Server } from '../../src/upstream/server.js'

export type MakeBalancer = (servers: readonly Server[]) => Balancer

export interface ServerOpts {
  readonly maxConn?: number
  readonly slowStart?: number
  readonly latencyDecay?: number
  /** Name prefix, so two lists can hold distinct servers (default 's'). */
  readonly prefix?: string
}

/** Real servers `s0, s1, …` with these weights (a dummy dispatcher: nothing is sent). */
export function makeServers (weights: readonly number[], opts: ServerOpts = {}): Server[] {
  const prefix = opts.prefix ?? 's'
  return weights.map((weight, i) => new Server({
    name: `${prefix}${i}`,
    url: `http://127.0.0.1:${9001 + i}`,
    weight,
    backend: 'conformance',
    shard: 'default',
    dispatcher: {} as Dispatcher,
    ...(opts.maxConn !== undefined && { maxConn: opts.maxConn }),
    ...(opts.slowStart !== undefined && { slowStart: opts.slowStart }),
    ...(opts.latencyDecay !== undefined && { latencyDecay: opts.latencyDecay })
  }))
}

/** A distinct, well-formed IPv4 address per i. */
export function address (i: number): string {
  return `10.${(i >>> 16) & 255}.${(i >>> 8) & 255}.${i & 255}`
}

export function pickContext (over: Partial<PickContext> = {}): PickContext {
  return { clientAddress: '192.0.2.1', now: 0, tried: NONE_TRIED, panic: false, stickyId: undefined, ...over }
}

const PICKS = 2000

/**
 * Contexts vary the client address (so hashing algorithms reach every server)
 * and carry a sticky cookie naming each server in turn, eligible or not (so a
 * sticky wrapper is held to the same rules).
 */
function picks (b: Balancer, servers: readonly Server[], over: Partial<PickContext> = {}): Array<Server | undefined> {
  const out: Array<Server | undefined> = []
  for (let i = 0; i < PICKS; i++) {
    const stickyId = servers.length === 0 ? undefined : servers[i % servers.length]!.id
    out.push(b.pick(pickContext({ clientAddress: address(i), stickyId, ...over })))
  }
  return out
}

function names (list: ReadonlyArray<Server | undefined>): string[] {
  return [...new Set(list.map((s) => s?.name ?? 'undefined'))].sort()
}

/** Math.random replaced by a seeded generator while `fn` runs, so two runs draw the same numbers. */
export function seeded<T> (seed: number, fn: () => T): T {
  const real = Math.random
  let x = seed >>> 0 || 1
  Math.random = () => {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5
    return (x >>> 0) / 2 ** 32
  }
  try { return fn() } finally { Math.random = real }
}

export function runConformance (t: Test, name: string, make: MakeBalancer): void {
  t.test(`${name}: explain`, async (t) => {
    t.test('explain names the server pick would choose, and leaves the picks after it unchanged', async (t) => {
      for (const weights of [[1, 1, 1], [3, 1, 2, 1, 1], [1]]) {
        const s = makeServers(weights, { maxConn: 4 })
        s[0]!.active = 4 // full
        if (s.length > 2) s[2]!.active = 1
        if (s.length > 3) s[3]!.setCheckStatus(false, 'test')
        const withExplain = make(s)
        const plain = make(s)
        for (let i = 0; i < 40; i++) {
          const ctx = pickContext({ clientAddress: address(i), stickyId: s[i % s.length]!.id })
          // The same random draws for all three: explain, then the pick it explains, and a twin never explained.
          const account = seeded(i + 1, () => withExplain.explain(ctx))
          const picked = seeded(i + 1, () => withExplain.pick(ctx))
          const twin = seeded(i + 1, () => plain.pick(ctx))
          if (account.server !== picked) t.fail(`${weights.join('/')} #${i}: explain says ${account.server?.name}, pick says ${picked?.name}`)
          if (picked !== twin) t.fail(`${weights.join('/')} #${i}: explain changed the pick after it`)
        }
      }
      t.pass('explain and pick agree on 120 requests')
    })

    t.test('every server is accounted for once, eligible exactly as the shared rule says', async (t) => {
      const s = makeServers([1, 2, 1, 1], { maxConn: 2 })
      s[1]!.active = 2
      s[3]!.setEjected(true, 'test')
      const ctx = pickContext({ tried: [s[2]!] })
      const a = make(s).explain(ctx)
      t.same(a.candidates.map((c) => c.server.name).sort(), ['s0', 's1', 's2', 's3'])
      for (const c of a.candidates) t.equal(c.eligible, eligible(c.server, ctx), `${c.server.name}: ${c.why}`)
      t.equal(a.server, s[0], 'the only eligible server')
      t.type(a.reason, 'string')
      t.match(a.candidates.find((c) => c.server === s[1])!.why, /full/)
      t.match(a.candidates.find((c) => c.server === s[3])!.why, /ejected/)
    })

    t.test('nothing eligible: no server, and an empty shard has no candidates', async (t) => {
      const s = makeServers([1, 1])
      for (const x of s) x.setCheckStatus(false, 'test')
      const a = make(s).explain(pickContext())
      t.equal(a.server, undefined)
      t.ok(a.candidates.every((c) => !c.eligible && /down/.test(c.why)))
      t.same(make([]).explain(pickContext()).candidates, [])
    })
  })

  t.test(`${name}: conformance`, async (t) => {
    t.test('every server is picked when all are eligible, and picking changes no server state', async (t) => {
      const s = makeServers([1, 2, 1, 3, 1])
      const b = make(s)
      t.same(names(picks(b, s)), ['s0', 's1', 's2', 's3', 's4'])
      t.same(s.map((x) => [x.active, x.healthy, x.requests]), s.map(() => [0, true, 0]), 'pick only reads servers')
    })

    t.test('never an unhealthy server; every healthy one is eventually picked', async (t) => {
      const s = makeServers([1, 1, 2, 1, 1])
      s[1]!.setCheckStatus(false, 'test')
      s[3]!.setEjected(true, 'test')
      t.same(names(picks(make(s), s)), ['s0', 's2', 's4'])
    })

    t.test('never a server at maxConn; filling every server leaves undefined', async (t) => {
      const s = makeServers([1, 2, 1], { maxConn: 2 })
      s[1]!.active = 2
      t.same(names(picks(make(s), s)), ['s0', 's2'])
      // Take slots without releasing them: each pick may add one in flight.
      s[1]!.active = 0
      const b = make(s)
      for (let i = 0; i < 6; i++) {
        const got = b.pick(pickContext({ clientAddress: address(i) }))
        if (got === undefined) { t.fail(`pick ${i} found no slot with ${6 - i} free`); return }
        got.active++
        t.ok(got.active <= 2, `${got.name} stays within maxConn`)
      }
      t.same(s.map((x) => x.active), [2, 2, 2])
      t.equal(b.pick(pickContext()), undefined, 'all full')
    })

    t.test('never a server already tried; all tried gives undefined', async (t) => {
      const s = makeServers([1, 1, 1, 1])
      const b = make(s)
      t.same(names(picks(b, s, { tried: [s[0]!, s[2]!] })), ['s1', 's3'])
      t.equal(b.pick(pickContext({ tried: s })), undefined)
    })

    t.test('undefined when nothing is eligible (and for an empty shard)', async (t) => {
      const s = makeServers([1, 3, 1])
      for (const x of s) x.setCheckStatus(false, 'test')
      t.same(names(picks(make(s), s)), ['undefined'])
      t.equal(make([]).pick(pickContext()), undefined)
    })

    t.test('panic mode picks unhealthy servers, still within maxConn and tried', async (t) => {
      const s = makeServers([1, 1, 1, 1], { maxConn: 5 })
      for (const x of s) x.setCheckStatus(false, 'test')
      const b = make(s)
      t.same(names(picks(b, s, { panic: true })), ['s0', 's1', 's2', 's3'])
      s[0]!.active = 5
      t.same(names(picks(b, s, { panic: true, tried: [s[3]!] })), ['s1', 's2'])
    })

    t.test('one server: picked while eligible, never otherwise, no exceptions', async (t) => {
      const s = makeServers([2])
      const b = make(s)
      t.same(names(picks(b, s)), ['s0'])
      t.equal(b.pick(pickContext({ tried: s })), undefined)
      s[0]!.setCheckStatus(false, 'test')
      t.equal(b.pick(pickContext()), undefined)
      t.equal(b.pick(pickContext({ panic: true })), s[0])
    })

    t.test('a server coming back is picked again without rebuilding', async (t) => {
      const s = makeServers([1, 1, 1])
      const b = make(s)
      s[2]!.setCheckStatus(false, 'test')
      t.same(names(picks(b, s)), ['s0', 's1'])
      s[2]!.setCheckStatus(true, 'test')
      t.same(names(picks(b, s)), ['s0', 's1', 's2'])
    })
  })
}
