import t from 'tap'
import type { Dispatcher } from 'undici'
import { Shard, ShardSelector, cookieCount, cookieValue, pathSegment, queryValue, shardKey } from '../../src/upstream/shard.js'
import { Server } from '../../src/upstream/server.js'

const shard = (name: string): Shard => new Shard(name, [], { pick: () => undefined, explain: () => ({ server: undefined, reason: "", candidates: [] }) }, { maxQueue: 10, queueTimeout: 0, panicThreshold: 0 })

t.test('cookieValue finds a cookie among others, unquotes, and rejects prefixes', async (t) => {
  t.equal(cookieValue('a=1; uid=42; b=2', 'uid'), '42')
  t.equal(cookieValue('uid=42', 'uid'), '42')
  t.equal(cookieValue('xuid=1; uid="q v"', 'uid'), 'q v')
  t.equal(cookieValue('xuid=1', 'uid'), undefined)
  t.equal(cookieValue('uid=', 'uid'), undefined)
  t.equal(cookieValue(undefined, 'uid'), undefined)
})

t.test('queryValue decodes the first occurrence', async (t) => {
  t.equal(queryValue('/x?id=a%20b&id=2', 'id'), 'a b')
  t.equal(queryValue('/x?other=1', 'id'), undefined)
  t.equal(queryValue('/x', 'id'), undefined)
})

t.test('pathSegment counts non-empty segments from 1 and ignores the query', async (t) => {
  t.equal(pathSegment('/users/42/x', 1), 'users')
  t.equal(pathSegment('/users/42/x', 2), '42')
  t.equal(pathSegment('//users//42?q=1/2', 2), '42')
  t.equal(pathSegment('/users/42?q=/a/b/c', 3), undefined)
  t.equal(pathSegment('/a%2Fb/c', 1), 'a/b')
})

t.test('shardKey reads each source', async (t) => {
  const req = { target: '/u/7?id=9', header: (n: string) => ({ 'x-user-id': 'alice', cookie: 'uid=bob' } as Record<string, string>)[n] }
  t.equal(shardKey({ header: 'x-user-id', missing: 'any' }, req), 'alice')
  t.equal(shardKey({ cookie: 'uid', missing: 'any' }, req), 'bob')
  t.equal(shardKey({ query: 'id', missing: 'any' }, req), '9')
  t.equal(shardKey({ pathSegment: 2, missing: 'any' }, req), '7')
  t.equal(shardKey({ header: 'x-none', missing: 'any' }, req), undefined)
})

t.test('ShardSelector: stable per key, spread over shards, key-less requests rotate', async (t) => {
  const sel = new ShardSelector([shard('a'), shard('b'), shard('c')], { header: 'x', missing: 'any' })
  const seen = new Map<string, number>()
  for (let i = 0; i < 3000; i++) {
    const name = sel.select(`user-${i}`).name
    t.equal(sel.select(`user-${i}`).name, name)
    seen.set(name, (seen.get(name) ?? 0) + 1)
  }
  t.equal(seen.size, 3)
  for (const n of seen.values()) t.ok(n > 850 && n < 1150, `${n} near 1000`)
  t.same([sel.select(undefined).name, sel.select(undefined).name, sel.select(undefined).name].sort(), ['a', 'b', 'c'])
})

t.test('adding a shard to N moves at most ~1/(N+1) of 100 000 keys', async (t) => {
  const names = ['s0', 's1', 's2', 's3']
  const before = new ShardSelector(names.map(shard), { header: 'x', missing: 'any' })
  const after = new ShardSelector([...names, 's4'].map(shard), { header: 'x', missing: 'any' })
  let moved = 0
  for (let i = 0; i < 100_000; i++) {
    const k = `customer-${i}`
    const a = before.select(k).name
    const b = after.select(k).name
    if (a !== b) {
      moved++
      if (b !== 's4') t.fail(`key ${k} moved between old shards`)
    }
  }
  t.ok(moved / 100_000 <= 1 / 5 + 0.01, `moved ${moved} (${(moved / 1000).toFixed(2)}%)`)
})

t.test('anyBusy: only a full server that could take the request once it frees is worth queueing for', async (t) => {
  const servers = ['a', 'b'].map((name, i) => new Server({
    name, url: `http://127.0.0.1:${9000 + i}`, weight: 1, backend: 'api', shard: 'default', dispatcher: {} as unknown as Dispatcher, maxConn: 1, primary: i === 0
  }))
  const [a, b] = servers as [Server, Server]
  const s = new Shard('default', servers, { pick: () => undefined, explain: () => ({ server: undefined, reason: '', candidates: [] }) },
    { maxQueue: 10, queueTimeout: 1000, panicThreshold: 0 })
  const ctx = { panic: false, stickyId: undefined }
  t.notOk(s.anyBusy(ctx), 'both have room: nothing to wait for')
  a.active = 1
  t.ok(s.anyBusy(ctx), 'a is full: worth waiting for')
  t.notOk(s.anyBusy(ctx, [a]), 'but not for a retry that tried it')
  t.notOk(s.anyBusy({ ...ctx, primaryOnly: true }, [a]))
  b.active = 1
  a.adminState = 'maint'
  t.ok(s.anyBusy(ctx), 'b is full and ready')
  t.notOk(s.anyBusy({ ...ctx, primaryOnly: true }), 'a write waits for the primary only, which is in maintenance: nothing to wait for')
  b.adminState = 'drain'
  t.notOk(s.anyBusy(ctx), 'maint and drain: neither takes a new client')
  t.ok(s.anyBusy({ ...ctx, stickyId: b.id }), 'a draining server still takes its sticky clients')
  b.adminState = 'ready'
  b.retired = true
  t.notOk(s.anyBusy(ctx), 'removed by a reload')
  b.retired = false
  b.setCheckStatus(false, 'down')
  t.notOk(s.anyBusy(ctx), 'down')
  t.ok(s.anyBusy({ ...ctx, panic: true }), 'unless in panic mode')
})

t.test('a cookie name with whitespace around it is that name, as lenient frameworks read it', async (t) => {
  t.equal(cookieValue('uid =42', 'uid'), '42')
  t.equal(cookieValue('a=1;\tuid=7', 'uid'), '7')
  t.equal(cookieCount('tenant=a; tenant =b', 'tenant'), 2, 'space before =')
  t.equal(cookieCount('tenant=a;\ttenant=b', 'tenant'), 2, 'a tab after ;')
  t.equal(cookieCount('tenant=a; tenantx =b; x tenant=c', 'tenant'), 1, 'still not a longer name, nor one ending in it')
})

t.test('cookieCount counts every occurrence of the name, empty ones too, not prefixes', async (t) => {
  t.equal(cookieCount('a=1; uid=42; b=2', 'uid'), 1)
  t.equal(cookieCount('uid=1; uid=2', 'uid'), 2)
  t.equal(cookieCount('uid=; x=1;uid=2;  uid="3"', 'uid'), 3)
  t.equal(cookieCount('xuid=1; uidx=2; uid', 'uid'), 0)
  t.equal(cookieCount(undefined, 'uid'), 0)
  t.equal(cookieValue('uid=; uid=2', 'uid'), undefined, 'the first is what we read')
})
