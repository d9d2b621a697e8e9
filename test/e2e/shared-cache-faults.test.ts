// The shared cache and its purges when the network or Redis misbehaves (hostile
// sweep 19): two real proxies on one real redis-server, instance A reaching it
// through a TCP relay on loopback that delays, cuts, refuses or black-holes
// its connections, and one real origin whose content changes.
import http from 'node:http'
import t, { type Test } from 'tap'
import { Redis } from 'ioredis'
import { request } from 'undici'
import { startProxy, type RunningProxy } from '../helpers/proxy.js'
import { closedPort, startServer } from '../helpers/origin.js'
import { startRedis, type RedisServer } from '../helpers/redis.js'
import { startTcpRelay, type TcpRelay } from '../helpers/tcp-relay.js'
import { eventually } from '../helpers/poll.js'

const KEY_A = Buffer.alloc(32, 1).toString('base64')

interface Origin {
  readonly port: number
  readonly hits: Map<string, number>
  /** What it answers now (every path). */
  version: string
}

async function origin (t: Test): Promise<Origin> {
  const o: Origin = { port: 0, hits: new Map(), version: 'v1' }
  const server = await startServer(t, (req: http.IncomingMessage, res: http.ServerResponse) => {
    const path = req.url ?? '/'
    o.hits.set(path, (o.hits.get(path) ?? 0) + 1)
    req.resume()
    res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'public, max-age=300', 'cache-tag': 'news' })
    res.end(o.version)
  })
  return Object.assign(o, { port: server.port })
}

/** A proxy sharing its cache through the Redis on `port` (the server's, or a relay's). */
async function instance (t: Test, port: number, o: Origin, redisExtra = '', timeout = '500ms'): Promise<RunningProxy> {
  const dir = t.testdir({ 'a.key': KEY_A })
  return startProxy(t, `
listeners: [{ name: web, bind: "127.0.0.1:0" }]
redis: { url: "redis://127.0.0.1:${port}", timeout: ${timeout}, maxReconnectDelay: 100ms${redisExtra} }
cache:
  purgeFrom: [127.0.0.1]
  collapseTimeout: 30s
  shared: { encryptionKeys: [{ id: a, file: "${dir}/a.key" }] }
routes: [{ backend: origin }]
backends:
  origin:
    retries: { attempts: 0 }
    servers: [{ url: "http://127.0.0.1:${o.port}" }]
`)
}

async function get (p: RunningProxy, path: string): Promise<{ status: number, cacheStatus: string, body: string }> {
  const res = await request(p.url('web') + path, { headers: { host: 'shop.test' } })
  const body = await res.body.text()
  return { status: res.statusCode, cacheStatus: String(res.headers['cache-status'] ?? ''), body }
}

async function redisUp (...proxies: RunningProxy[]): Promise<void> {
  if (!await eventually(() => proxies.every((p) => p.app.state.cache?.shared?.up === true), 10_000)) {
    throw new Error('the proxies did not connect to Redis within 10 s')
  }
}

/**
 * Until both connections of each proxy are up and its shared cache has read
 * the purge epoch after each (so that a delay the test sets next meets only
 * the test's own requests).
 */
async function settled (...proxies: RunningProxy[]): Promise<void> {
  await redisUp(...proxies)
  if (!await eventually(() => proxies.every((p) => p.app.state.cache?.shared?.settled === true), 10_000)) {
    throw new Error('the proxies did not subscribe and catch up within 10 s')
  }
}

function rawClient (t: Test, redis: RedisServer): Redis {
  const raw = new Redis(redis.url)
  t.teardown(() => raw.disconnect())
  return raw
}

/** Instance A reaching a real Redis through a relay (its own `timeout`), B straight; both settled. */
async function relayedPair (t: Test, o: Origin, timeout?: string): Promise<{ redis: RedisServer, relay: TcpRelay, a: RunningProxy, b: RunningProxy }> {
  const redis = await startRedis(t)
  const relay = await startTcpRelay(t, redis.port)
  const a = await instance(t, relay.port, o, '', timeout)
  const b = await instance(t, redis.port, o)
  await settled(a, b)
  return { redis, relay, a, b }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

t.test('a write that reaches Redis after a purge from another instance does not bring the purged entry back', async (t) => {
  const o = await origin(t)
  const { redis, relay, a, b } = await relayedPair(t, o)

  // A's commands reach Redis 150 ms late (well within redis.timeout): its write
  // of v1, sent after its client had the answer, lands after B's purge.
  relay.up = 150
  t.equal((await get(a, '/news')).body, 'v1')
  o.version = 'v2'
  t.same(await b.app.api.purge({ url: 'http://shop.test/news' }), { purged: 0, shared: 'purged' })
  await sleep(600)
  relay.up = 0
  const raw = rawClient(t, redis)
  t.equal((await raw.keys('switchyard:g:*')).length, 1, 'the purge moved its URL\'s marker')
  t.equal(await raw.exists('switchyard:pe'), 0, 'and not the epoch of purges by prefix or tag')

  const fromB = await get(b, '/news')
  t.equal(fromB.body, 'v2', `B serves the new content (${fromB.cacheStatus})`)
  const fromA = await get(a, '/news')
  t.equal(fromA.body, 'v2', `A serves the new content (${fromA.cacheStatus})`)
  t.equal(o.hits.get('/news'), 2, 'v1 once, v2 once: the second fetch was shared')
  t.equal(a.app.redisReport()?.shared?.superseded, 1, 'the refused write is counted')
})

/**
 * Instance A fetches /p0../p4 while its writes reach Redis 150 ms late, and
 * `meanwhile(b)` runs on instance B five times, 40 ms apart; then, A's five
 * writes landed (stored or refused), B asks for each.
 */
async function slowWritesDuring (t: Test, meanwhile: (b: RunningProxy) => Promise<void>): Promise<{ a: RunningProxy, o: Origin, fromB: string[] }> {
  const o = await origin(t)
  const { relay, a, b } = await relayedPair(t, o)
  relay.up = 150
  const fetches = Promise.all([0, 1, 2, 3, 4].map(async (i) => (await get(a, `/p${i}`)).body))
  for (let i = 0; i < 5; i++) {
    await meanwhile(b)
    await sleep(40)
  }
  t.same(await fetches, ['v1', 'v1', 'v1', 'v1', 'v1'])
  // Every write of A's has reached Redis (stored or refused), however slow the machine.
  t.ok(await eventually(() => { const s = a.app.redisReport()?.shared; return (s?.stored ?? 0) + (s?.superseded ?? 0) >= 5 }, 10_000), 'A\'s five writes landed')
  relay.up = 0
  const fromB: string[] = []
  for (let i = 0; i < 5; i++) fromB.push((await get(b, `/p${i}`)).cacheStatus)
  return { a, o, fromB }
}

t.test('client writes elsewhere (RFC 9111 invalidations) do not keep fetches out of the shared cache', async (t) => {
  let n = 0
  const { a, fromB } = await slowWritesDuring(t, async (b) => {
    const r = await request(b.url('web') + `/comments/${n++}`, { method: 'POST', body: 'x', headers: { host: 'shop.test' } })
    await r.body.text()
    t.equal(r.statusCode, 200)
  })
  for (const [i, status] of fromB.entries()) t.match(status, /; hit;.*detail="shared"/, `/p${i}: B gets A's fetch from Redis`)
  t.equal(a.app.redisReport()?.shared?.superseded, 0)
})

t.test('purges of other URLs (a CMS purging a few times a second) do not keep slow fetches out of the shared cache', async (t) => {
  const { a, o, fromB } = await slowWritesDuring(t, async (b) => {
    t.same(await b.app.api.purge({ url: 'http://shop.test/unrelated' }), { purged: 0, shared: 'purged' })
  })
  for (const [i, status] of fromB.entries()) t.match(status, /; hit;.*detail="shared"/, `/p${i}: B gets A's fetch from Redis`)
  t.equal(a.app.redisReport()?.shared?.superseded, 0)
  t.equal(o.hits.get('/p0'), 1, 'fetched once, by A')
})

t.test('a lookup that timed out lets go of the fetch lock it took: the other instances do not wait collapseTimeout', async (t) => {
  const o = await origin(t)
  const { redis, relay, a, b } = await relayedPair(t, o)
  const raw = rawClient(t, redis)

  // A's lookup reaches Redis 2 s late (redis.timeout is 500ms): A goes to the origin
  // without it, and the script takes the lock in Redis after A gave up on it.
  relay.up = 2000
  const fromA = await get(a, '/orphan')
  t.equal(fromA.body, 'v1')
  let locked = false
  for (let i = 0; i < 200 && !locked; i++) {
    locked = (await raw.keys('switchyard:c:*:lock:*')).length > 0
    if (!locked) await sleep(20)
  }
  t.ok(locked, 'A\'s late lookup took the lock in Redis')

  // B's miss finds A's lock; collapseTimeout is 30 s.
  const started = Date.now()
  const fromB = await get(b, '/orphan')
  const took = Date.now() - started
  t.equal(fromB.body, 'v1')
  t.ok(took < 10_000, `B was answered without waiting out collapseTimeout (${took} ms)`)
  t.equal(o.hits.get('/orphan'), 2, 'A fetched, then B')
  relay.up = 0
})

t.test('purges published while an instance\'s connections were cut are caught up when it reconnects', async (t) => {
  const redis = await startRedis(t)
  const relay = await startTcpRelay(t, redis.port)
  const o = await origin(t)
  const a = await instance(t, relay.port, o)
  const b = await instance(t, redis.port, o)
  await redisUp(a, b)
  const aStore = a.app.state.cache!.store

  t.equal((await get(a, '/blip')).body, 'v1')
  t.equal(aStore.stats().entries, 1)
  // A's connections drop and stay away while B purges (Redis itself is fine).
  relay.refuse = true
  relay.cut()
  t.ok(await eventually(() => a.app.state.cache?.shared?.up === false, 5000), 'A saw its link go down')
  o.version = 'v2'
  t.same(await b.app.api.purge({ url: 'http://shop.test/blip' }), { purged: 0, shared: 'purged' })
  relay.refuse = false
  await redisUp(a)

  t.ok(await eventually(() => aStore.stats().entries === 0, 5000), 'A dropped the copy the purge it did not hear named')
  const again = await get(a, '/blip')
  t.equal(again.body, 'v2', `A serves the new content (${again.cacheStatus})`)
  // No purge was missed this time: the copy stays.
  relay.cut()
  await sleep(300)
  await redisUp(a)
  await sleep(500)
  t.equal(aStore.stats().entries, 1, 'a reconnect that missed nothing keeps the local copies')
})

t.test('a purge Redis refuses (READONLY after a failover) is not refilled from Redis by the instance that purged', async (t) => {
  const redis = await startRedis(t)
  const o = await origin(t)
  const a = await instance(t, redis.port, o)
  await redisUp(a)
  const raw = rawClient(t, redis)

  t.equal((await get(a, '/ro')).body, 'v1')
  t.equal((await get(a, '/ro-tag')).body, 'v1')
  t.ok(await eventually(() => (a.app.redisReport()?.shared?.stored ?? 0) >= 2, 5000), 'both written to Redis')
  // Demoted: writes answer READONLY, reads still find the entries.
  await raw.call('REPLICAOF', '127.0.0.1', String(await closedPort()))
  t.teardown(() => raw.call('REPLICAOF', 'NO', 'ONE').then(() => {}, () => {}))
  o.version = 'v2'
  t.same(await a.app.api.purge({ url: 'http://shop.test/ro' }), { purged: 1, shared: 'unreachable' })
  t.same(await a.app.api.purge({ tag: 'news' }), { purged: 1, shared: 'unreachable' })

  const ro = await get(a, '/ro')
  t.equal(ro.body, 'v2', `the purged URL comes from the origin, not back from Redis (${ro.cacheStatus})`)
  const tagged = await get(a, '/ro-tag')
  t.equal(tagged.body, 'v2', `the purged tag too (${tagged.cacheStatus})`)
  t.equal(await raw.exists('switchyard:pe'), 0, 'Redis really refused the purge')
})

t.test('after a failover behind one address, the link leaves the read-only node for the new primary', async (t) => {
  const old = await startRedis(t)
  const primary = await startRedis(t)
  const relay = await startTcpRelay(t, old.port)
  const o = await origin(t)
  const a = await instance(t, relay.port, o)
  await redisUp(a)
  const before = relay.accepted

  // The old primary follows the new one; the address now leads there.
  const rawOld = rawClient(t, old)
  await rawOld.call('REPLICAOF', '127.0.0.1', String(primary.port))
  t.teardown(() => rawOld.call('REPLICAOF', 'NO', 'ONE').then(() => {}, () => {}))
  relay.target = primary.port
  const rawPrimary = rawClient(t, primary)
  let shared = false
  for (let i = 0; i < 50 && !shared; i++) {
    t.equal((await get(a, `/after-failover-${i}`)).status, 200)
    shared = (await rawPrimary.keys('switchyard:c:*')).length > 0
    if (!shared) await sleep(100)
  }
  t.ok(shared, 'what A stores reaches the new primary')
  t.ok(relay.accepted > before, `A made new connections (${relay.accepted - before})`)
})

t.test('a half-open connection (every packet dropped, no reset) is replaced, and sharing resumes', async (t) => {
  const redis = await startRedis(t)
  const relay = await startTcpRelay(t, redis.port)
  const o = await origin(t)
  const a = await instance(t, relay.port, o)
  const b = await instance(t, redis.port, o)
  await redisUp(a, b)
  const before = relay.accepted

  relay.blackholeOpen()
  let degraded = false
  for (let i = 0; i < 150 && relay.accepted === before; i++) {
    t.equal((await get(a, `/half-open-${i}`)).status, 200)
    const status = a.app.api.status() as { redis?: { state: string } }
    if (status.redis?.state === 'degraded') degraded = true
    await sleep(100)
  }
  t.ok(relay.accepted > before, 'A made a new connection')
  t.ok(degraded, '/status said degraded while operations timed out')
  await redisUp(a)
  t.ok(await eventually(() => (a.app.api.status() as { redis?: { state: string } }).redis?.state === 'up', 5000), 'up again')

  // Sharing works again: what B stores, A finds in Redis.
  await get(b, '/after-half-open')
  t.ok(await eventually(() => (b.app.redisReport()?.shared?.stored ?? 0) >= 1, 5000))
  const fromA = await get(a, '/after-half-open')
  t.match(fromA.cacheStatus, /detail="shared"/, 'A is served from Redis again')
})

t.test('a Redis that lost its data (a restart) and then saw a purge by prefix still refuses a write begun before it', async (t) => {
  // The origin answers with the version of when the request came, once the test lets it.
  let version = 'v1'
  let release!: () => void
  const gate = new Promise<void>((resolve) => { release = resolve })
  let arrived!: () => void
  const fetching = new Promise<void>((resolve) => { arrived = resolve })
  const server = await startServer(t, (req: http.IncomingMessage, res: http.ServerResponse) => {
    const answer = version
    req.resume()
    arrived()
    void gate.then(() => {
      res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'public, max-age=300' })
      res.end(answer)
    })
  })
  const o: Origin = { port: server.port, hits: new Map(), version: 'v1' }
  // A hears Redis through the relay; its operations may wait long for an answer.
  const { redis, relay, a, b } = await relayedPair(t, o, '20s')
  // One purge by prefix before: an epoch that counted purges would be 1 now.
  t.same(await b.app.api.purge({ prefix: 'http://shop.test/other/' }), { purged: 0, shared: 'purged' })
  t.ok(await eventually(() => a.app.redisReport()?.shared?.remotePurges === 1, 10_000), 'A heard of it')

  const fromA = get(a, '/news')
  await fetching // A's lookup read the epoch; its fetch is at the origin
  // What Redis sends A now (the next purge's notice, its write's answer) comes late: only Redis can refuse that write.
  relay.down = 1500
  const raw = rawClient(t, redis)
  await raw.flushall() // Redis restarted empty
  version = 'v2'
  t.same(await b.app.api.purge({ prefix: 'http://shop.test/' }), { purged: 0, shared: 'purged' })
  release()
  t.equal((await fromA).body, 'v1', 'A\'s client gets what its fetch brought')
  t.ok(await eventually(() => { const s = a.app.redisReport()?.shared; return (s?.stored ?? 0) + (s?.superseded ?? 0) >= 1 }, 15_000), 'A\'s write landed')
  relay.down = 0
  t.equal(a.app.redisReport()?.shared?.superseded, 1, 'refused: the epoch is not the one its lookup read')
  t.equal((await raw.keys('switchyard:c:*')).length, 0, 'nothing of it in Redis')
  t.equal((await get(b, '/news')).body, 'v2', 'B fetches the content of after the purge')
})
