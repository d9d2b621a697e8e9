import t from 'tap'
import { IpHash } from '../../src/balancer/ip-hash.js'
import type { Server } from '../../src/upstream/server.js'
import { address, makeServers, pickContext, runConformance } from './conformance.js'

runConformance(t, 'ipHash', (servers) => new IpHash(servers, 100, 0))
runConformance(t, 'ipHash (bounded load)', (servers) => new IpHash(servers, 100, 0.25))

const ADDRESSES = 10_000
/** Pseudo-random but reproducible client addresses, IPv4 and IPv6. */
function client (i: number): string {
  const x = Math.imul(i + 1, 0x9e3779b1) >>> 0
  return i % 4 === 3
    ? `2001:db8:${(x >>> 16).toString(16)}::${(x & 0xffff).toString(16)}`
    : `${(x >>> 24) | 1}.${(x >>> 16) & 255}.${(x >>> 8) & 255}.${x & 255}`
}

function assign (b: IpHash, tried: readonly Server[] = []): Array<string | undefined> {
  return Array.from({ length: ADDRESSES }, (_, i) => b.pick(pickContext({ clientAddress: client(i), tried }))?.name)
}

t.test('the same address always maps to the same server, across instances', async (t) => {
  const s = makeServers([1, 1, 2, 1])
  const a = assign(new IpHash(s, 100, 0))
  t.same(assign(new IpHash(s, 100, 0)), a, 'a ring built again maps identically')
  const b = new IpHash(s, 100, 0)
  for (let i = 0; i < 100; i++) b.pick(pickContext({ clientAddress: address(i) })) // unrelated traffic
  t.same(assign(b), a, 'picks do not depend on earlier picks')
  // Also when the server list is in another order: points come from server ids.
  t.same(assign(new IpHash([...s].reverse(), 100, 0)), a, 'independent of server order')
})

t.test('distribution over 10 000 addresses follows the weights', async (t) => {
  const weights = [1, 1, 2, 1, 3]
  const s = makeServers(weights)
  const counts = new Map<string, number>()
  for (const n of assign(new IpHash(s, 100, 0))) counts.set(n!, (counts.get(n!) ?? 0) + 1)
  const total = weights.reduce((a, b) => a + b)
  for (const x of s) {
    const want = ADDRESSES * x.weight / total
    const got = counts.get(x.name) ?? 0
    t.ok(Math.abs(got - want) < want * 0.2, `${x.name} (weight ${x.weight}): ${got}, expected ~${want} (±20%)`)
  }
})

t.test('removing 1 of 5 servers moves only that server\'s addresses', async (t) => {
  const s = makeServers([1, 1, 1, 1, 1])
  const before = assign(new IpHash(s, 100, 0))
  const after = assign(new IpHash(s.filter((x) => x.name !== 's3'), 100, 0))
  let moved = 0
  let movedOthers = 0
  for (let i = 0; i < ADDRESSES; i++) {
    if (before[i] === after[i]) continue
    moved++
    if (before[i] !== 's3') movedOthers++
  }
  t.equal(movedOthers, 0, 'no address of a remaining server moved')
  t.equal(moved, before.filter((n) => n === 's3').length, 'every address of the removed server moved')
  t.ok(moved / ADDRESSES < 0.25, `remapped ${(moved / ADDRESSES * 100).toFixed(1)}% (< 25%)`)
})

t.test('an unhealthy server moves only its addresses, and they come back (no rebuild)', async (t) => {
  const s = makeServers([1, 2, 1, 1, 1])
  const b = new IpHash(s, 100, 0)
  const before = assign(b)
  s[1]!.setCheckStatus(false, 'test')
  const during = assign(b)
  let moved = 0
  for (let i = 0; i < ADDRESSES; i++) {
    if (before[i] === 's1') {
      moved++
      if (during[i] === 's1' || during[i] === undefined) t.fail(`address ${i} still on s1`)
    } else if (during[i] !== before[i]) {
      t.fail(`address ${i} of ${before[i]} moved to ${during[i]}`)
    }
  }
  t.ok(moved > 0 && moved < ADDRESSES * 0.45, `only s1's ${moved} addresses moved`)
  // Same rule for a retry: it goes where the address would go with that server down.
  t.same(assign(b), during)
  s[1]!.setCheckStatus(true, 'test')
  t.same(assign(b), before, 'all back where they were')
  t.same(assign(b, [s[1]!]), during, 'a retry after s1 goes where s1\'s clients go when it is down')
})

t.test('bounded load caps each server near (1+ε) × the average', async (t) => {
  const eps = 0.25
  for (const hot of [1, 5]) {
    const s = makeServers([1, 1, 1, 1])
    const b = new IpHash(s, 100, eps)
    let total = 0
    // Requests that never finish, from only `hot` distinct clients: without
    // the bound they would all sit on at most `hot` servers.
    for (let i = 0; i < 200; i++) {
      const got = b.pick(pickContext({ clientAddress: client(i % hot) }))!
      const cap = Math.ceil((1 + eps) * (total + 1) / s.length)
      got.active++
      total++
      if (got.active > cap) t.fail(`pick ${i}: ${got.name} at ${got.active} > cap ${cap}`)
    }
    const max = Math.max(...s.map((x) => x.active))
    t.ok(max <= Math.ceil((1 + eps) * 200 / 4), `${hot} hot client(s): actives ${s.map((x) => x.active).join('/')}, max ${max} <= ${Math.ceil((1 + eps) * 200 / 4)}`)
  }
  // Without the bound, one client's requests all land on one server.
  const s = makeServers([1, 1, 1, 1])
  const b = new IpHash(s, 100, 0)
  for (let i = 0; i < 200; i++) b.pick(pickContext({ clientAddress: client(0) }))!.active++
  t.same(s.map((x) => x.active).sort((a, b) => a - b), [0, 0, 0, 200])
})

t.test('bounded load: under the cap, every address keeps its own server', async (t) => {
  const s = makeServers([1, 1, 1, 1])
  s.forEach((x) => { x.active = 10 }) // even load: nobody is at the cap
  t.same(assign(new IpHash(s, 100, 0.25)), assign(new IpHash(s, 100, 0)))
})

t.test('bounded load with weights: the cap scales with weight', async (t) => {
  const eps = 0.1
  const s = makeServers([1, 3])
  const b = new IpHash(s, 100, eps)
  let total = 0
  for (let i = 0; i < 400; i++) {
    const got = b.pick(pickContext({ clientAddress: client(i % 3) }))!
    const cap = Math.ceil((1 + eps) * (total + 1) * got.weight / 4)
    got.active++
    total++
    if (got.active > cap) t.fail(`pick ${i}: ${got.name} at ${got.active} > cap ${cap}`)
  }
  t.ok(s[0]!.active <= Math.ceil(1.1 * 400 / 4), `weight 1 took ${s[0]!.active}, weight 3 took ${s[1]!.active}`)
})

t.test('explain: the ring walk pick takes, and why each server before the pick was passed', async (t) => {
  const s = makeServers([1, 1, 1, 1])
  const b = new IpHash(s, 100, 0)
  const c = client(3)
  const first = b.explain(pickContext({ clientAddress: c }))
  t.equal(first.server, b.pick(pickContext({ clientAddress: c })))
  t.same(first.candidates.map((x) => x.score), [1, undefined, undefined, undefined], 'the walk stops at the first eligible server')
  t.match(first.candidates[0]!.why, /walk 1: the first eligible server/)
  t.match(first.reason, new RegExp(`client ${c} hashes to 0x[0-9a-f]{8}`))
  first.server!.setCheckStatus(false, 'test')
  const moved = b.explain(pickContext({ clientAddress: c }))
  t.equal(moved.candidates[0]!.server, first.server)
  t.match(moved.candidates[0]!.why, /walk 1: passed, down/)
  t.equal(moved.server, moved.candidates[1]!.server)
  t.equal(moved.server, b.pick(pickContext({ clientAddress: c })))
})

t.test('explain: bounded load passes over a server at its cap, with the cap', async (t) => {
  const s = makeServers([1, 1, 1, 1])
  const b = new IpHash(s, 100, 0.25)
  const own = b.pick(pickContext({ clientAddress: client(0) }))!
  own.active = 10 // the others idle: cap ceil(1.25 × 11 / 4) = 4
  const a = b.explain(pickContext({ clientAddress: client(0) }))
  t.equal(a.candidates[0]!.server, own)
  t.match(a.candidates[0]!.why, /walk 1: passed, one more would go over its bounded load; 10 in flight, cap 4/)
  t.not(a.server, own)
  t.equal(a.server, b.pick(pickContext({ clientAddress: client(0) })))
  t.match(a.reason, /within 1\.25 × its share \(bounded load\)/)
})
