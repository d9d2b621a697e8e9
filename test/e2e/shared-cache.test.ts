// The shared cache on a real Redis, with two real proxies in front of one
// real origin: what one instance fetched, the other serves; Redis holds only
// sealed values under HMAC names; purges reach every instance; concurrent
// misses on both reach the origin once; a Redis that goes away costs no
// request, and sharing resumes when it returns.
import http from 'node:http'
import t, { type Test } from 'tap'
import { Redis } from 'ioredis'
import { request } from 'undici'
import { parseConfig } from '../../src/config/load.js'
import { startProxy, type RunningProxy } from '../helpers/proxy.js'
import { startServer } from '../helpers/origin.js'
import { startRedis, startSentinel, type RedisServer } from '../helpers/redis.js'
import { startChildProxy } from '../helpers/child-proxy.js'
import { startTcpRelay, type TcpRelay } from '../helpers/tcp-relay.js'
import { eventually } from '../helpers/poll.js'
import { MAX_SHARED_URL_BYTES, MAX_SHARED_VARIANTS } from '../../src/cache/shared/shared-cache.js'
import { variantLock } from '../../src/cache/key.js'

const KEY_A = Buffer.alloc(32, 1).toString('base64')
const KEY_B = Buffer.alloc(32, 2).toString('base64')
const BODY = (path: string): string => `secret-body-of-${path}-` + 'x'.repeat(64)

interface Origin { readonly port: number, readonly hits: Map<string, number> }

async function origin (t: Test, delayMs = 0): Promise<Origin> {
  const hits = new Map<string, number>()
  const server = await startServer(t, (req: http.IncomingMessage, res: http.ServerResponse) => {
    const path = req.url ?? '/'
    hits.set(path, (hits.get(path) ?? 0) + 1)
    req.resume()
    setTimeout(() => {
      res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'public, max-age=60', 'cache-tag': 'products' })
      res.end(BODY(path))
    }, delayMs)
  })
  return { port: server.port, hits }
}

/** `where`: the `redis` block's keys that say where Redis is (default: the server's URL); `timeout`: redis.timeout. */
async function instance (t: Test, redis: RedisServer, o: Origin, keys: string, extra = '', where?: string, timeout = '500ms'): Promise<RunningProxy> {
  const dir = t.testdir({ 'a.key': KEY_A, 'b.key': KEY_B, ...(redis.ca === undefined ? {} : { 'ca.pem': redis.ca }) })
  const tls = redis.ca === undefined ? '' : `, tls: { ca: "${dir}/ca.pem", servername: localhost }`
  return startProxy(t, `
listeners: [{ name: web, bind: "127.0.0.1:0" }]
redis: { ${where ?? `url: "${redis.url}"`}, timeout: ${timeout}, maxReconnectDelay: 200ms${tls} }
cache:
  purgeFrom: [127.0.0.1]
  shared: { encryptionKeys: ${keys.replaceAll('DIR', dir)} }
${extra}
routes: [{ backend: origin }]
backends:
  origin:
    retries: { attempts: 0 }
    servers: [{ url: "http://127.0.0.1:${o.port}" }]
`)
}

const ONE_KEY = '[{ id: a, file: "DIR/a.key" }]'

/** Two instances on one Redis and one origin, both connected. */
async function twoInstances (t: Test, redis: RedisServer, o: Origin): Promise<[RunningProxy, RunningProxy]> {
  const a = await instance(t, redis, o, ONE_KEY)
  const b = await instance(t, redis, o, ONE_KEY)
  await redisUp(a, b)
  return [a, b]
}

/** A plain client of the test's Redis (no prefix; its CA when it speaks TLS), to look at what is stored; closed on teardown. */
function rawClient (t: Test, redis: RedisServer): Redis {
  const raw = redis.ca === undefined ? new Redis(redis.url) : new Redis(redis.url, { tls: { ca: redis.ca } })
  t.teardown(() => raw.disconnect())
  return raw
}

async function get (p: RunningProxy, path: string, method = 'GET'): Promise<{ status: number, cacheStatus: string, body: string }> {
  // One site behind both instances (as behind a layer-4 balancer): the same Host, so the same cache key.
  const res = await request(p.url('web') + path, { method, headers: { host: 'shop.test' } })
  const body = await res.body.text()
  return { status: res.statusCode, cacheStatus: String(res.headers['cache-status'] ?? ''), body }
}

/** Until both proxies' Redis links are up (a link connects in the background). */
async function redisUp (...proxies: RunningProxy[]): Promise<void> {
  for (let i = 0; i < 400; i++) {
    // Subscribed and caught up too: a purge before then may be caught up later by dropping every local copy.
    if (proxies.every((p) => p.app.state.cache?.shared?.settled === true)) return
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
  throw new Error('the proxies did not connect to Redis within 10 s')
}


t.test('fetched through A, a hit through B without the origin; Redis holds neither URL nor body in clear', async (t) => {
  const redis = await startRedis(t)
  const o = await origin(t)
  const [a, b] = await twoInstances(t, redis, o)

  const first = await get(a, '/catalog/item-1')
  t.equal(first.status, 200)
  t.match(first.cacheStatus, /fwd=uri-miss; fwd-status=200; stored/)
  // The write to Redis is not awaited by the request: wait until it is there.
  const raw = rawClient(t, redis)
  t.ok(await waitForKeys(raw, 1), 'the entry reached Redis')

  const second = await get(b, '/catalog/item-1')
  t.equal(second.status, 200)
  t.equal(second.body, BODY('/catalog/item-1'))
  t.match(second.cacheStatus, /; hit; ttl=\d+; detail="shared"/)
  t.equal(o.hits.get('/catalog/item-1'), 1, 'the origin saw one request')
  const third = await get(b, '/catalog/item-1')
  t.match(third.cacheStatus, /; hit; ttl=\d+$/, 'then a local hit: B filled its own cache')

  // One view of it on /status and /metrics (the same report behind both).
  const status = a.app.api.status() as { redis?: { state: string, connected: string, shared?: { stored: number } } }
  t.equal(status.redis?.state, 'up')
  t.equal(status.redis?.connected, '1/1')
  t.equal(status.redis?.shared?.stored, 1)
  const metrics = await b.app.api.metrics()
  t.match(metrics, /^switchyard_redis_up 1$/m)
  t.match(metrics, /^switchyard_cache_shared_hits_total 1$/m)
  t.match(metrics, /^switchyard_redis_operations_total\{operation="cache_lookup",result="ok"\} 1$/m)
  t.match(metrics, /^switchyard_redis_operation_duration_seconds_count [1-9]\d*$/m)
  t.match(metrics, /^switchyard_redis_operation_duration_seconds_bucket\{le="\+Inf"\} [1-9]\d*$/m)

  const keys = await raw.keys('*')
  t.ok(keys.length > 0)
  for (const k of keys) {
    t.notMatch(k, /catalog|item-1|127\.0\.0\.1/, `key name ${k} gives nothing away`)
    const type = await raw.type(k)
    const values = type === 'hash' ? Object.values(await raw.hgetallBuffer(k)) : type === 'string' ? [await raw.getBuffer(k)] : []
    for (const v of values) {
      const text = v?.toString('latin1') ?? ''
      t.notOk(text.includes('secret-body-of') || text.includes('catalog') || text.includes('item-1') || text.includes('cache-control'),
        `the value under ${k} is sealed`)
    }
  }
})

async function waitForKeys (raw: Redis, n: number): Promise<boolean> {
  for (let i = 0; i < 200; i++) {
    if ((await raw.keys('switchyard:c:*')).length >= n) return true
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  return false
}

/** Until Redis holds no entry at all. */
async function gone (raw: Redis): Promise<boolean> {
  for (let i = 0; i < 200; i++) {
    if ((await raw.keys('switchyard:c:*')).length === 0) return true
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  return false
}

t.test('PURGE on A: B misses next; an admin purge by tag and an unsafe method reach B too', async (t) => {
  const redis = await startRedis(t)
  const o = await origin(t)
  const [a, b] = await twoInstances(t, redis, o)
  const raw = rawClient(t, redis)

  await get(a, '/p')
  t.ok(await waitForKeys(raw, 1))
  t.match((await get(b, '/p')).cacheStatus, /detail="shared"/)
  const bStore = b.app.state.cache!.store
  t.equal(bStore.stats().entries, 1, 'B holds it locally now')

  const purge = await get(a, '/p', 'PURGE')
  t.equal(purge.status, 200)
  t.equal((await raw.keys('switchyard:c:*')).length, 0, 'gone from Redis before the PURGE answered')
  t.ok(await eventually(() => bStore.stats().entries === 0, 1000), 'gone from B\'s memory within a second')
  const again = await get(b, '/p')
  t.match(again.cacheStatus, /fwd=uri-miss/)
  t.equal(o.hits.get('/p'), 2)

  // Admin purge by tag through A's API (the same function the admin listener calls).
  await get(a, '/tagged')
  await get(b, '/tagged')
  t.ok(await eventually(() => b.app.state.cache!.store.stats().entries >= 1, 1000))
  const result = await a.app.api.purge({ tag: 'products' })
  t.same(result, { purged: 1, shared: 'purged' }, 'A dropped /tagged locally (B\'s copy of /p is not in A); Redis reached')
  t.ok(await eventually(() => b.app.state.cache!.store.stats().entries === 0, 1000), 'B dropped every entry tagged products')
  t.equal((await raw.hlen('switchyard:ci')), 0, 'the index is empty')

  // Admin purge by path (every host): gone from Redis and from B's memory too.
  await get(a, '/by-path/1')
  await get(b, '/by-path/1')
  t.ok(await eventually(() => b.app.state.cache!.store.stats().entries >= 1, 1000))
  t.same(await a.app.api.purge({ path: '/by-path/', pathPrefix: true }), { purged: 1, shared: 'purged' })
  t.ok(await eventually(() => b.app.state.cache!.store.stats().entries === 0, 1000), 'B dropped everything under /by-path/')
  t.equal((await raw.hlen('switchyard:ci')), 0, 'the index is empty')

  // POST through B invalidates /tagged on A (RFC 9111 §4.4) through Redis.
  await get(a, '/tagged')
  t.ok(await eventually(() => a.app.state.cache!.store.stats().entries === 1, 1000))
  const post = await get(b, '/tagged', 'POST')
  t.equal(post.status, 200)
  t.ok(await eventually(() => a.app.state.cache!.store.stats().entries === 0, 1000), 'A dropped it within a second')
})

t.test('20 concurrent misses spread over both instances reach the origin once', async (t) => {
  const redis = await startRedis(t)
  const o = await origin(t, 300)
  const [a, b] = await twoInstances(t, redis, o)
  const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => get(i % 2 === 0 ? a : b, '/hot')))
  t.same(answers.map((r) => r.status), Array(20).fill(200))
  t.ok(answers.every((r) => r.body === BODY('/hot')))
  t.equal(o.hits.get('/hot'), 1, 'one origin fetch for 20 requests on two instances')
  t.ok(answers.some((r) => /detail="shared"/.test(r.cacheStatus)), 'the other instance served it from Redis')
})

t.test('Redis stopped: both keep answering (no 5xx); sharing resumes when it returns', async (t) => {
  const redis = await startRedis(t)
  const o = await origin(t)
  const [a, b] = await twoInstances(t, redis, o)
  await redis.stop()
  t.ok(await eventually(() => a.app.state.cache?.shared?.up === false && b.app.state.cache?.shared?.up === false, 5000), 'both see it down')
  t.match(await a.app.api.metrics(), /^switchyard_redis_up 0$/m)
  t.equal((a.app.api.status() as { redis?: { state: string } }).redis?.state, 'down')
  const during = await Promise.all(['/d1', '/d2', '/d1', '/d2'].flatMap((p) => [get(a, p), get(b, p)]))
  t.same(during.map((r) => r.status), Array(8).fill(200), 'every request answered')
  t.match(during[4]!.cacheStatus, /; hit/, 'each instance still has its own cache')

  await redis.start()
  await redisUp(a, b)
  await get(a, '/after')
  const raw = rawClient(t, redis)
  t.ok(await waitForKeys(raw, 1))
  t.match((await get(b, '/after')).cacheStatus, /detail="shared"/, 'B gets what A stored once Redis is back')
  t.equal(o.hits.get('/after'), 1)
})

t.test('a value that does not open is a miss and is deleted; a rotated key still opens the old entries', async (t) => {
  const redis = await startRedis(t)
  const o = await origin(t)
  const a = await instance(t, redis, o, ONE_KEY)
  // B has a new key first, A's key second: it reads what A sealed, and writes with its own.
  const b = await instance(t, redis, o, '[{ id: b, file: "DIR/b.key" }, { id: a, file: "DIR/a.key" }]')
  await redisUp(a, b)
  const raw = rawClient(t, redis)

  await get(a, '/rot')
  t.ok(await waitForKeys(raw, 1))
  t.match((await get(b, '/rot')).cacheStatus, /detail="shared"/, 'the old key still opens it')
  t.equal(o.hits.get('/rot'), 1)

  const before = new Set(await raw.keys('switchyard:c:*'))
  await get(a, '/bad')
  t.ok(await waitForKeys(raw, 2))
  const [bad] = (await raw.keys('switchyard:c:*')).filter((k) => !before.has(k))
  // One bit flipped in the sealed value, as a tampering or a broken write would.
  const fields = await raw.hgetallBuffer(bad!)
  for (const [field, value] of Object.entries(fields)) {
    value[value.length - 1]! ^= 1
    await raw.hset(bad!, field, value)
  }
  const r = await get(b, '/bad')
  t.match(r.cacheStatus, /fwd=uri-miss/, 'a value that fails to authenticate is a miss')
  t.equal(r.body, BODY('/bad'), 'and the answer is the origin\'s')
  t.equal(o.hits.get('/bad'), 2)
  t.equal(b.app.state.cache!.shared!.stats().rejected, 1, 'counted')
  // B writes its fetch under its own key's name: the tampered hash is simply deleted.
  let exists = 1
  for (let i = 0; i < 100 && exists !== 0; i++) {
    exists = await raw.exists(bad!)
    if (exists !== 0) await new Promise((resolve) => setTimeout(resolve, 10))
  }
  t.equal(exists, 0, 'the value that did not open is deleted from Redis')
})

t.test('over TLS, with the CA the test made', async (t) => {
  const redis = await startRedis(t, { tls: true })
  const o = await origin(t)
  const [a, b] = await twoInstances(t, redis, o)
  await get(a, '/tls')
  const raw = rawClient(t, redis)
  t.ok(await waitForKeys(raw, 1))
  t.match((await get(b, '/tls')).cacheStatus, /detail="shared"/)
  t.equal(o.hits.get('/tls'), 1)
})

t.test('a cluster (workers: 2) shares through Redis too: each worker has its own link, /status adds them up', async (t) => {
  const redis = await startRedis(t)
  const o = await origin(t)
  const dir = t.testdir({ 'a.key': KEY_A })
  const yaml = `
workers: 2
admin: { bind: "127.0.0.1:0" }
accessLog: false
listeners: [{ name: web, bind: "127.0.0.1:0" }]
redis: { url: "${redis.url}", maxReconnectDelay: 200ms }
cache: { shared: { encryptionKeys: [{ id: a, file: "${dir}/a.key" }] } }
routes: [{ backend: origin }]
backends: { origin: { servers: [{ url: "http://127.0.0.1:${o.port}" }] } }
`
  const cluster = await startChildProxy(t, yaml)
  const single = await instance(t, redis, o, ONE_KEY)
  await redisUp(single)
  const admin = async (path: string): Promise<string> => {
    try {
      return await (await request(`http://127.0.0.1:${cluster.adminPort}${path}`)).body.text()
    } catch (err) {
      throw new Error(`admin ${path}: ${(err as Error).message}\n${cluster.tail()}`)
    }
  }
  let status: { redis?: { state: string, connected: string } } = {}
  for (let i = 0; i < 200 && status.redis?.connected !== '2/2'; i++) {
    status = JSON.parse(await admin('/status')) as typeof status
    if (status.redis?.connected !== '2/2') await new Promise((resolve) => setTimeout(resolve, 25))
  }
  t.same(status.redis && { state: status.redis.state, connected: status.redis.connected }, { state: 'up', connected: '2/2' })
  await get(single, '/from-single')
  const raw = rawClient(t, redis)
  t.ok(await waitForKeys(raw, 1))
  const res = await request(`http://127.0.0.1:${cluster.port('web')}/from-single`, { headers: { host: 'shop.test' } })
  t.match(String(res.headers['cache-status']), /detail="shared"/, 'a cluster worker serves what the single process stored')
  await res.body.text()
  t.equal(o.hits.get('/from-single'), 1)
  t.match(await admin('/metrics'), /^switchyard_cache_shared_hits_total 1$/m, 'the primary adds up its workers\' shared-cache counters')
  const purge = await request(`http://127.0.0.1:${cluster.adminPort}/cache/purge`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ prefix: 'http://shop.test/' })
  })
  const purged = await purge.body.json() as { purged: number, shared?: string }
  t.equal(purged.shared, 'purged', 'Redis reached (by one worker; the others purge their memory only)')
  t.equal(purged.purged, 1, 'the worker that served it held it')
  t.equal((await raw.keys('switchyard:c:*')).length, 0, 'gone from Redis')
  t.ok(await eventually(() => single.app.state.cache!.store.stats().entries === 0, 1000), 'and from the other instance')
})

t.test('reload: a rotated key list and a new Redis take effect; the connection is kept when `redis` did not change', async (t) => {
  const redis = await startRedis(t)
  const other = await startRedis(t)
  const o = await origin(t)
  const a = await instance(t, redis, o, ONE_KEY)
  await redisUp(a)
  const linkBefore = a.app.state.cache!.shared!.link
  const dir = t.testdir({ 'a.key': KEY_A, 'b.key': KEY_B })
  const config = (url: string, keys: string): string => `
accessLog: false
admin: false
listeners: [{ name: web, bind: "127.0.0.1:0" }]
redis: { url: "${url}", timeout: 500ms, maxReconnectDelay: 200ms }
cache: { purgeFrom: [127.0.0.1], shared: { encryptionKeys: ${keys} } }
routes: [{ backend: origin }]
backends: { origin: { retries: { attempts: 0 }, servers: [{ url: "http://127.0.0.1:${o.port}" }] } }
`
  const rotated = await a.app.reload(parseConfig(config(redis.url, `[{ id: b, file: "${dir}/b.key" }, { id: a, file: "${dir}/a.key" }]`), 'test.yaml'))
  t.same(rotated, { ok: true, kept: 1, added: 0, removed: 0, needsRestart: [] })
  const shared = a.app.state.cache!.shared!
  t.equal(shared.link, linkBefore, 'the same Redis connection')
  t.same(shared.keys.map((k) => k.id), ['b', 'a'], 'the new keys')

  const moved = await a.app.reload(parseConfig(config(other.url, `[{ id: b, file: "${dir}/b.key" }]`), 'test.yaml'))
  t.same(moved, { ok: true, kept: 1, added: 0, removed: 0, needsRestart: [] })
  t.not(a.app.state.cache!.shared!.link, linkBefore, 'a new connection for the new Redis')
  await redisUp(a)
  await get(a, '/moved')
  const raw = rawClient(t, other)
  t.ok(await waitForKeys(raw, 1), 'written to the new Redis')
  t.equal(linkBefore.client.status, 'end', 'the old connection was closed')
  const off = await a.app.reload(parseConfig(config(other.url, '[]').replace(/redis: .*\n/, '').replace(/, shared: \{[^}]*\} \}/, ' }'), 'test.yaml'))
  t.same(off, { ok: true, kept: 1, added: 0, removed: 0, needsRestart: [] })
  t.equal(a.app.state.cache!.shared, undefined, 'no shared cache without the block')
  t.equal((await get(a, '/after-off')).status, 200)
})

t.test('a slow Redis: the lookup gives up after redis.timeout and the request goes to the origin', async (t) => {
  const redis = await startRedis(t)
  const o = await origin(t)
  const a = await instance(t, redis, o, ONE_KEY)
  await redisUp(a)
  const admin = rawClient(t, redis)
  // Longer than the test's redis.timeout (500ms): only our timeout can end the lookup.
  await admin.call('CLIENT', 'PAUSE', '5000', 'ALL')
  const r = await get(a, '/slow')
  t.equal(r.status, 200)
  t.match(r.cacheStatus, /fwd=uri-miss/)
  t.equal(o.hits.get('/slow'), 1)
  const ops = a.app.redisReport()?.operations
  t.equal(ops?.cache_lookup?.timeout, 1, 'the lookup timed out (it did not wait for Redis)')
  await admin.call('CLIENT', 'UNPAUSE').catch(() => {})
})

t.test('Redis Cluster and Sentinel: the same sharing through either', async (t) => {
  const o = await origin(t)
  const node = await startRedis(t, { cluster: true })
  const ca = await instance(t, node, o, ONE_KEY, '', `cluster: { nodes: ["127.0.0.1:${node.port}"] }`)
  const cb = await instance(t, node, o, ONE_KEY, '', `cluster: { nodes: ["127.0.0.1:${node.port}"] }`)
  await redisUp(ca, cb)
  await get(ca, '/in-cluster')
  const raw = rawClient(t, node)
  t.ok(await waitForKeys(raw, 1))
  t.match((await get(cb, '/in-cluster')).cacheStatus, /detail="shared"/, 'a hit through the other instance, over Redis Cluster')
  t.equal((await get(ca, '/in-cluster', 'PURGE')).status, 200)
  t.ok(await eventually(() => cb.app.state.cache!.store.stats().entries === 0, 1000), 'a purge reaches the other instance over the cluster\'s pub/sub')

  const master = await startRedis(t)
  const sentinel = await startSentinel(t, master)
  const where = `sentinel: { masterName: ${sentinel.masterName}, nodes: ["127.0.0.1:${sentinel.port}"] }`
  const sa = await instance(t, master, o, ONE_KEY, '', where)
  const sb = await instance(t, master, o, ONE_KEY, '', where)
  await redisUp(sa, sb)
  await get(sa, '/in-sentinel')
  const rawMaster = rawClient(t, master)
  t.ok(await waitForKeys(rawMaster, 1), 'written to the master the sentinel named')
  t.match((await get(sb, '/in-sentinel')).cacheStatus, /detail="shared"/, 'a hit through the other instance, found through Sentinel')
  t.equal(o.hits.get('/in-cluster'), 1)
  t.equal(o.hits.get('/in-sentinel'), 1)
})

t.test('a response with Set-Cookie stored by an instance that allows it is not served by one that does not', async (t) => {
  const redis = await startRedis(t)
  const hits = new Map<string, number>()
  const server = await startServer(t, (req, res) => {
    hits.set(req.url ?? '/', (hits.get(req.url ?? '/') ?? 0) + 1)
    req.resume()
    res.writeHead(200, { 'cache-control': 'public, max-age=60', 'set-cookie': 'sid=someone-else' })
    res.end('personal')
  })
  const dir = t.testdir({ 'a.key': KEY_A })
  const proxyWith = (allow: boolean): Promise<RunningProxy> => startProxy(t, `
listeners: [{ name: web, bind: "127.0.0.1:0" }]
redis: { url: "${redis.url}", maxReconnectDelay: 200ms }
cache: { shared: { encryptionKeys: [{ id: a, file: "${dir}/a.key" }] } }
routes: [{ backend: origin, cache: { allowSetCookie: ${String(allow)} } }]
backends: { origin: { servers: [{ url: "http://127.0.0.1:${server.port}" }] } }
`)
  const lax = await proxyWith(true)
  const strict = await proxyWith(false)
  await redisUp(lax, strict)
  t.match((await get(lax, '/me')).cacheStatus, /stored/)
  const raw = rawClient(t, redis)
  t.ok(await waitForKeys(raw, 1))
  const r = await request(strict.url('web') + '/me', { headers: { host: 'shop.test' } })
  await r.body.text()
  t.notMatch(String(r.headers['cache-status']), /hit/, 'not served from the shared cache')
  t.equal(hits.get('/me'), 2, 'fetched from the origin instead')
})

t.test('only-if-cached after a local miss is answered from the other instances\' entries, else 504, never the origin', async (t) => {
  const redis = await startRedis(t)
  const o = await origin(t)
  const [a, b] = await twoInstances(t, redis, o)
  const raw = rawClient(t, redis)
  await get(a, '/oic')
  t.ok(await waitForKeys(raw, 1))
  const ask = async (path: string): Promise<{ status: number, cacheStatus: string }> => {
    const res = await request(b.url('web') + path, { headers: { host: 'shop.test', 'cache-control': 'only-if-cached' } })
    await res.body.text()
    return { status: res.statusCode, cacheStatus: String(res.headers['cache-status'] ?? '') }
  }
  const found = await ask('/oic')
  t.equal(found.status, 200)
  t.match(found.cacheStatus, /detail="shared"/)
  t.equal((await ask('/nobody-has-it')).status, 504)
  t.equal(o.hits.get('/oic'), 1)
  t.equal(o.hits.get('/nobody-has-it'), undefined, 'the origin was never asked')
})

t.test('one URL shares at most MAX_SHARED_VARIANTS Vary\'d variants through Redis; the rest stay local', async (t) => {
  const redis = await startRedis(t)
  const server = await startServer(t, (req: http.IncomingMessage, res: http.ServerResponse) => {
    req.resume()
    res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'public, max-age=60', vary: 'User-Agent' })
    res.end(`for ${req.headers['user-agent'] ?? ''}`)
  })
  const a = await instance(t, redis, { port: server.port, hits: new Map() }, ONE_KEY)
  await redisUp(a)
  const n = MAX_SHARED_VARIANTS + 6
  for (let i = 0; i < n; i++) {
    const res = await request(a.url('web') + '/page', { headers: { host: 'shop.test', 'user-agent': `agent-${i}` } })
    t.equal(await res.body.text(), `for agent-${i}`)
  }
  const raw = rawClient(t, redis)
  const size = async (): Promise<number> => {
    let most = 0
    for (const k of await raw.keys('switchyard:c:*')) if (await raw.type(k) === 'hash') most = Math.max(most, await raw.hlen(k))
    return most
  }
  // Every one of the n writes has been answered (past the cap, answered as not stored).
  const status = (): { redis?: { shared?: { stored: number }, operations?: Record<string, { ok: number }> } } =>
    a.app.api.status() as ReturnType<typeof status>
  t.ok(await eventually(() => status().redis?.operations?.cache_store?.ok === n), `${n} writes answered`)
  t.equal(status().redis?.shared?.stored, MAX_SHARED_VARIANTS, `${MAX_SHARED_VARIANTS} stored in Redis`)
  t.equal(await size(), MAX_SHARED_VARIANTS, 'the URL\'s hash holds no more than the cap')
  const last = await request(a.url('web') + '/page', { headers: { host: 'shop.test', 'user-agent': `agent-${n - 1}` } })
  t.match(String(last.headers['cache-status']), /; hit; /, 'a variant past the cap is still a local hit')
  await last.body.text()
})

t.test('one URL\'s variants hold at most MAX_SHARED_URL_BYTES in Redis together, so every lookup arrives in time', async (t) => {
  const redis = await startRedis(t)
  const big = Buffer.alloc(3 * 1024 * 1024, 'x')
  const server = await startServer(t, (req: http.IncomingMessage, res: http.ServerResponse) => {
    req.resume()
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'cache-control': 'public, max-age=60', vary: 'Accept-Language' })
    res.end(big)
  })
  const a = await instance(t, redis, { port: server.port, hits: new Map() }, ONE_KEY, '  maxEntryBytes: 4MiB')
  await redisUp(a)
  for (const lang of ['de', 'fr', 'it']) {
    const res = await request(a.url('web') + '/video', { headers: { host: 'shop.test', 'accept-language': lang } })
    t.equal((await res.body.arrayBuffer()).byteLength, big.length)
  }
  const status = (): { redis?: { shared?: { stored: number }, operations?: Record<string, { ok: number }> } } =>
    a.app.api.status() as ReturnType<typeof status>
  t.ok(await eventually(() => status().redis?.operations?.cache_store?.ok === 3), '3 writes answered')
  t.equal(status().redis?.shared?.stored, 2, 'two 3 MiB variants fit in 8 MiB, the third does not')
  const raw = rawClient(t, redis)
  let bytes = 0
  for (const k of await raw.keys('switchyard:c:*')) {
    if (await raw.type(k) !== 'hash') continue
    for (const f of await raw.hkeys(k)) bytes += await raw.hstrlen(k, f)
  }
  t.ok(bytes > 0 && bytes <= MAX_SHARED_URL_BYTES, `the URL holds ${bytes} bytes in Redis`)
  const third = await request(a.url('web') + '/video', { headers: { host: 'shop.test', 'accept-language': 'it' } })
  t.match(String(third.headers['cache-status']), /; hit; /, 'the third is still a local hit')
  await third.body.arrayBuffer()
})

/** An origin whose answers vary on Accept-Language, each language with its own tag; `de` lives 2 s (Date has whole seconds), the others 60 s. */
async function languages (t: Test): Promise<Origin> {
  const hits = new Map<string, number>()
  const server = await startServer(t, (req: http.IncomingMessage, res: http.ServerResponse) => {
    const lang = String(req.headers['accept-language'] ?? 'none')
    const at = `${req.url ?? '/'} ${lang}`
    hits.set(at, (hits.get(at) ?? 0) + 1)
    req.resume()
    res.writeHead(200, { 'cache-control': `public, max-age=${lang === 'de' ? 2 : 60}`, vary: 'accept-language', 'cache-tag': `page-${lang}` })
    res.end(`${at} #${hits.get(at)!}`)
  })
  return { port: server.port, hits }
}

async function getIn (p: RunningProxy, path: string, lang: string): Promise<{ cacheStatus: string, body: string }> {
  const res = await request(p.url('web') + path, { headers: { host: 'shop.test', 'accept-language': lang } })
  return { cacheStatus: String(res.headers['cache-status'] ?? ''), body: await res.body.text() }
}

/** How many variants Redis holds in all. */
async function variants (raw: Redis): Promise<number> {
  let total = 0
  for (const k of await raw.keys('switchyard:c:*')) if (await raw.type(k) === 'hash') total += await raw.hlen(k)
  return total
}

/** Until the write `fetch` causes has reached Redis (each write lands after its answer). */
async function stored (raw: Redis, fetch: () => Promise<unknown>): Promise<boolean> {
  const before = await variants(raw)
  await fetch()
  for (let i = 0; i < 200; i++) {
    if (await variants(raw) > before) return true
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  return false
}

t.test('purges by tag and by path reach every variant of a URL in Redis, whatever was written last', async (t) => {
  const redis = await startRedis(t)
  const o = await languages(t)
  const [a, b] = await twoInstances(t, redis, o)
  const raw = rawClient(t, redis)

  // fr through A, then de through B: two variants in one hash, de written last.
  t.ok(await stored(raw, () => getIn(a, '/t', 'fr')))
  t.ok(await stored(raw, () => getIn(b, '/t', 'de')))
  const heard = (): number => b.app.state.cache!.shared!.stats().remotePurges
  let before = heard()
  t.same(await a.app.api.purge({ tag: 'page-fr' }), { purged: 1, shared: 'purged' })
  t.ok(await eventually(() => heard() > before), 'B heard the purge')
  const fr = await getIn(b, '/t', 'fr')
  t.match(fr.cacheStatus, /fwd=vary-miss/, 'the fr variant is gone from Redis too (B never held it)')
  t.equal(o.hits.get('/t fr'), 2)
  t.match((await getIn(b, '/t', 'de')).cacheStatus, /; hit/, 'de, not tagged page-fr, stays')

  // fr (60 s) then de (2 s) on /p: once de's time has passed, a scan must not forget fr.
  t.ok(await stored(raw, () => getIn(a, '/p', 'fr')))
  t.ok(await stored(raw, () => getIn(b, '/p', 'de')))
  await new Promise((resolve) => setTimeout(resolve, 2100))
  await a.app.api.purge({ tag: 'unrelated' })
  before = heard()
  // B filled fr from Redis with its de: its own copy goes by the notice, Redis's by the index.
  t.same(await a.app.api.purge({ path: '/p' }), { purged: 1, shared: 'purged' })
  t.ok(await eventually(() => heard() > before), 'B heard the purge')
  const after = await getIn(b, '/p', 'fr')
  t.match(after.cacheStatus, /fwd=(uri|vary)-miss/, 'the long-lived variant was found by the path purge')
  t.equal(o.hits.get('/p fr'), 2)
})

t.test('the purge index forgets entries once their time has passed: it holds what is live, not every URL ever stored', async (t) => {
  const redis = await startRedis(t)
  const server = await startServer(t, (req: http.IncomingMessage, res: http.ServerResponse) => {
    req.resume()
    // 2 s, not 1: Date has whole seconds, so a 1 s response may arrive with no lifetime left to share.
    res.writeHead(200, { 'cache-control': `public, max-age=${req.url === '/live' ? 60 : 2}` })
    res.end('x')
  })
  const a = await instance(t, redis, { port: server.port, hits: new Map() }, ONE_KEY)
  await redisUp(a)
  const raw = rawClient(t, redis)
  await get(a, '/live')
  // Past hash-max-listpack-entries (128): the index is a real hash table, swept a part at a time.
  const n = 200
  for (let i = 0; i < n; i++) await get(a, `/once?cb=${i}`)
  t.ok(await eventually(() => a.app.state.cache!.shared!.stats().stored === n + 1, 5000), 'every write landed')
  let left = -1
  for (let i = 0; i < 600 && left !== 1; i++) {
    left = await raw.hlen('switchyard:ci')
    if (left !== 1) await new Promise((resolve) => setTimeout(resolve, 10))
  }
  t.equal(left, 1, 'within a few seconds only the live entry\'s record is left')
  t.equal(await raw.pttl('switchyard:ci'), -1)
  t.same(await a.app.api.purge({ path: '/live' }), { purged: 1, shared: 'purged' }, 'and it is still found')
  t.equal(await raw.hlen('switchyard:ci'), 0)
})

t.test('during a key rotation, purges from an instance without the new key reach what the others wrote with it', async (t) => {
  const redis = await startRedis(t)
  const o = await origin(t)
  // A has the new key first (it writes with b); B has only the old one.
  const a = await instance(t, redis, o, '[{ id: b, file: "DIR/b.key" }, { id: a, file: "DIR/a.key" }]')
  const b = await instance(t, redis, o, ONE_KEY)
  await redisUp(a, b)
  const raw = rawClient(t, redis)

  // PURGE through B: A removes its own copy, named with b, from Redis.
  await get(a, '/u')
  t.ok(await waitForKeys(raw, 1))
  await get(b, '/u', 'PURGE')
  t.ok(await gone(raw), 'A\'s copy is gone from Redis')
  t.match((await get(a, '/u')).cacheStatus, /fwd=uri-miss/, 'and A fetches again')
  t.equal(o.hits.get('/u'), 2)

  // B's scan cannot open A's index records: it leaves them, and A's own purge later finds them.
  t.ok(await stored(raw, () => get(a, '/t')))
  const records = await raw.hlen('switchyard:ci')
  t.same(await b.app.api.purge({ tag: 'unrelated' }), { purged: 0, shared: 'purged' })
  t.equal(await raw.hlen('switchyard:ci'), records, 'B dropped none of A\'s records')
  t.same(await a.app.api.purge({ tag: 'products' }), { purged: 2, shared: 'purged' })
  t.ok(await gone(raw), 'A\'s purge found its entries in Redis')
  t.match((await get(a, '/t')).cacheStatus, /fwd=uri-miss/)
  t.equal(o.hits.get('/t'), 2)

  // A purge by tag through B: A removes from Redis what only it can open.
  t.ok(await stored(raw, () => get(a, '/v')))
  t.same(await b.app.api.purge({ tag: 'products' }), { purged: 0, shared: 'purged' })
  t.ok(await gone(raw), 'A removed its entry from Redis when it heard of B\'s purge')
  t.match((await get(a, '/v')).cacheStatus, /fwd=uri-miss/)
  t.equal(o.hits.get('/v'), 2)
})

/**
 * A key rotation half done: A has the new key first (it writes with b), B only the old one. A reaches
 * Redis through a relay that can hold what A sends, so each step of its work can be made to wait.
 */
async function rotationWithRelay (t: Test): Promise<{ relay: TcpRelay, o: Origin, a: RunningProxy, b: RunningProxy, raw: Redis }> {
  const redis = await startRedis(t)
  const relay = await startTcpRelay(t, redis.port)
  const o = await origin(t)
  const a = await instance(t, redis, o, '[{ id: b, file: "DIR/b.key" }, { id: a, file: "DIR/a.key" }]', '', `url: "redis://127.0.0.1:${relay.port}"`, '30s')
  const b = await instance(t, redis, o, ONE_KEY)
  await redisUp(a, b)
  return { relay, o, a, b, raw: rawClient(t, redis) }
}

t.test('during a key rotation, a copy A fetches from the origin once its old one left Redis outlives A\'s cleanup of that purge', async (t) => {
  const { relay, o, a, b, raw } = await rotationWithRelay(t)
  await get(a, '/u')
  t.ok(await waitForKeys(raw, 1))
  const cache = a.app.state.cache!
  const [first] = cache.store.get('http://shop.test/u')
  t.ok(first)
  const lock = variantLock(first!.key, first!.variant)

  // A's copy goes from Redis; the deletion of its index record (and all A sends after it) is held.
  relay.holdFrom(/hdel\r\n\$\d+\r\nswitchyard:ci\r\n/i)
  await get(b, '/u', 'PURGE')
  t.ok(await gone(raw), 'A removed its copy from Redis')
  t.ok(await eventually(() => relay.held.length > 0, 10_000), 'and its index cleanup waits in the relay')
  // Begun after the copy left Redis: nothing stale can come of it. Its lookup waits for the
  // cleanup's answer (one auto-pipelined connection), so the cleanup ends during this fetch.
  const refetch = get(a, '/u')
  t.ok(await eventually(() => cache.inflight(lock) !== undefined, 10_000), 'A is fetching again')
  t.ok(await stored(raw, async () => {
    relay.release()
    t.match((await refetch).cacheStatus, /fwd=uri-miss; fwd-status=200; stored/)
  }), 'written to Redis')
  t.equal(o.hits.get('/u'), 2)
  t.match((await get(a, '/u')).cacheStatus, /hit/, 'and kept locally: the end of the cleanup did not take it')
  t.equal(o.hits.get('/u'), 2)
})

t.test('during a key rotation, what A read from Redis before a remote purge\'s removal reached it there goes once it has', async (t) => {
  const { relay, o, a, b, raw } = await rotationWithRelay(t)
  const cache = a.app.state.cache!
  t.ok(await stored(raw, () => get(a, '/v')))
  const [first] = cache.store.get('http://shop.test/v')
  t.ok(first)
  const lock = variantLock(first!.key, first!.variant)

  // A's scan for B's tag purge waits in the relay: its copy is still in Redis.
  relay.holdFrom(/hscan\r\n\$\d+\r\nswitchyard:ci\r\n/i)
  t.same(await b.app.api.purge({ tag: 'products' }), { purged: 0, shared: 'purged' })
  t.ok(await eventually(() => relay.held.length > 0, 10_000), 'A is scanning')
  t.same(cache.store.get('http://shop.test/v'), [], 'A dropped its own copy when it heard')
  // Begun after the notice, its lookup reaches Redis before A's delete does: it finds the old copy.
  const late = get(a, '/v')
  t.ok(await eventually(() => cache.inflight(lock) !== undefined, 10_000), 'A is looking it up')
  relay.release()
  t.match((await late).cacheStatus, /hit/)
  t.ok(await gone(raw), 'A removed its copy from Redis')
  t.ok(await eventually(() => cache.store.get('http://shop.test/v').length === 0, 10_000), 'and what the lookup filled from it')
  t.match((await get(a, '/v')).cacheStatus, /fwd=uri-miss/)
  t.equal(o.hits.get('/v'), 2)
})

t.test('PURGE through an instance that holds no copy answers 200 when it removed the entry from Redis', async (t) => {
  const redis = await startRedis(t)
  const o = await origin(t)
  const [a, b] = await twoInstances(t, redis, o)
  const raw = rawClient(t, redis)
  await get(a, '/x')
  t.ok(await waitForKeys(raw, 1))
  const purge = await request(b.url('web') + '/x', { method: 'PURGE', headers: { host: 'shop.test' } })
  t.equal(purge.statusCode, 200)
  t.equal(await purge.body.text(), 'purged 1 entry\n', 'the copy in Redis')
  t.equal((await raw.keys('switchyard:c:*')).length, 0)
  t.equal((await get(b, '/x', 'PURGE')).status, 404, 'nothing anywhere: 404')

  // A Redis that cannot be reached is still no error: what this instance held decides.
  await get(a, '/y')
  await redis.stop()
  t.ok(await eventually(() => a.app.state.cache?.shared?.up === false, 5000))
  t.equal((await get(a, '/y', 'PURGE')).status, 200)
  t.equal((await get(a, '/y', 'PURGE')).status, 404)
})
