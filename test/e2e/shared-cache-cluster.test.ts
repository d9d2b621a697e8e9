// The shared cache, its purges and shared rate limits on a real Redis
// Cluster of three masters (test/helpers/redis.ts startRedisCluster), with
// two real proxies in front of one real origin: entries, URL markers, fetch
// locks and rate-limit buckets spread over every node; the purge epoch and
// index live on one of them. One master stopped costs no request, /status
// says so, and sharing resumes when it returns.
import http from 'node:http'
import t, { type Test } from 'tap'
import { Redis } from 'ioredis'
import { request } from 'undici'
import type { PurgeRequest } from '../../src/admin/admin.js'
import { startProxy, type RunningProxy } from '../helpers/proxy.js'
import { startServer } from '../helpers/origin.js'
import { startRedisCluster, type RedisCluster } from '../helpers/redis.js'
import { eventually } from '../helpers/poll.js'

const KEY_A = Buffer.alloc(32, 1).toString('base64')

interface Origin {
  readonly port: number
  readonly hits: Map<string, number>
  /** While set, answers wait for it (a fetch held open while the test purges). */
  gate: Promise<void> | undefined
}

async function origin (t: Test): Promise<Origin> {
  const o: Origin = { port: 0, hits: new Map(), gate: undefined }
  const server = await startServer(t, (req: http.IncomingMessage, res: http.ServerResponse) => {
    const path = req.url ?? '/'
    o.hits.set(path, (o.hits.get(path) ?? 0) + 1)
    req.resume()
    const answer = (): void => {
      res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'public, max-age=60', 'cache-tag': 'products' })
      res.end(`${path} #${o.hits.get(path)!}`)
    }
    if (o.gate === undefined) answer()
    else void o.gate.then(answer)
  })
  return Object.assign(o, { port: server.port })
}

async function instance (t: Test, cluster: RedisCluster, o: Origin): Promise<RunningProxy> {
  const dir = t.testdir({ 'a.key': KEY_A })
  return startProxy(t, `
listeners: [{ name: web, bind: "127.0.0.1:0" }]
trustedProxies: [127.0.0.1]
redis: { cluster: { nodes: [${cluster.seeds.map((s) => `"${s}"`).join(', ')}] }, timeout: 500ms, maxReconnectDelay: 200ms }
cache:
  purgeFrom: [127.0.0.1]
  shared: { encryptionKeys: [{ id: a, file: "${dir}/a.key" }] }
routes:
  - name: limited
    match: { pathPrefix: /limited/ }
    backend: origin
    rateLimit: { average: 5, period: 1m, store: redis }
  - backend: origin
backends:
  origin:
    retries: { attempts: 0 }
    servers: [{ url: "http://127.0.0.1:${o.port}" }]
`)
}

async function get (p: RunningProxy, path: string, method = 'GET', headers: Record<string, string> = {}): Promise<{ status: number, cacheStatus: string, body: string }> {
  const res = await request(p.url('web') + path, { method, headers: { host: 'shop.test', ...headers } })
  const body = await res.body.text()
  return { status: res.statusCode, cacheStatus: String(res.headers['cache-status'] ?? ''), body }
}

async function settled (...proxies: RunningProxy[]): Promise<void> {
  if (!await eventually(() => proxies.every((p) => p.app.state.cache?.shared?.settled === true), 10_000)) {
    throw new Error('the proxies did not connect to the cluster, subscribe and catch up within 10 s')
  }
}

/** A plain client of every node (no prefix), to look at what each holds. */
function direct (t: Test, cluster: RedisCluster): Redis[] {
  const clients = cluster.nodes.map((n) => new Redis(n.port, '127.0.0.1', { maxRetriesPerRequest: 0, retryStrategy: () => 200 }))
  for (const c of clients) c.on('error', () => {})
  t.teardown(() => { for (const c of clients) c.disconnect() })
  return clients
}

const status = (p: RunningProxy): { redis?: { state: string, connected: string, shared?: { stored: number, superseded: number, remotePurges: number }, operations?: Record<string, Record<string, number>> } } =>
  p.app.api.status() as ReturnType<typeof status>

/** An admin purge through `p`: whether Redis was reached (`purged`). */
async function purge (p: RunningProxy, what: PurgeRequest): Promise<string | undefined> {
  const r = await p.app.api.purge(what)
  return 'error' in r ? r.error : r.shared
}

const PATHS = Array.from({ length: 12 }, (_, i) => `/n/${i}`)

t.test('on a three-master Redis Cluster', async (t) => {
  const cluster = await startRedisCluster(t)
  const o = await origin(t)
  const a = await instance(t, cluster, o)
  const b = await instance(t, cluster, o)
  await settled(a, b)
  const nodes = direct(t, cluster)
  const cacheKeys = async (i: number): Promise<string[]> => (await nodes[i]!.keys('switchyard:c:*')).filter((k) => !k.includes(':lock:'))
  const allCacheKeys = async (): Promise<number> => (await Promise.all([0, 1, 2].map(cacheKeys))).reduce((n, k) => n + k.length, 0)
  const shared = (p: RunningProxy): { stored: number, superseded: number, remotePurges: number } => status(p).redis?.shared ?? { stored: 0, superseded: 0, remotePurges: 0 }
  const entries = (p: RunningProxy): number => p.app.state.cache!.store.stats().entries
  /** Which node holds each path's entry (seen from where the write landed) and its hash's name. */
  const where = new Map<string, { node: number, key: string }>()
  /** Fetches `paths` (none cached anywhere) through `p`, until each write has reached Redis. */
  const fill = async (t: Test, p: RunningProxy, paths: readonly string[]): Promise<void> => {
    const before = shared(p).stored
    for (const path of paths) t.match((await get(p, path)).cacheStatus, /fwd=uri-miss; fwd-status=200; stored/)
    t.ok(await eventually(() => shared(p).stored === before + paths.length, 5000), `${paths.length} writes landed`)
  }

  t.test('what A fetched is a shared hit on B, for URLs whose entries are on every node', async (t) => {
    for (const path of PATHS) {
      const before = await Promise.all([0, 1, 2].map(cacheKeys))
      await fill(t, a, [path])
      const after = await Promise.all([0, 1, 2].map(cacheKeys))
      const node = after.findIndex((keys, i) => keys.length > before[i]!.length)
      const key = after[node]!.find((k) => !before[node]!.includes(k))!
      where.set(path, { node, key })
      t.equal(await cluster.nodeOf(key), node, `${path}: ${key} is in a slot of node ${node}`)
    }
    const spread = [0, 1, 2].map((n) => [...where.values()].filter((w) => w.node === n).length)
    t.ok(spread.every((n) => n > 0), `the ${PATHS.length} URLs are on all three nodes (${spread.join(', ')})`)
    for (const path of PATHS) t.match((await get(b, path)).cacheStatus, /; hit; ttl=\d+; detail="shared"/, `${path} from Redis`)
    for (const path of PATHS) t.equal(o.hits.get(path), 1)
    t.equal(status(a).redis?.state, 'up')
    t.equal(status(b).redis?.state, 'up')
  })

  t.test('PURGE of one URL through B: gone from A\'s memory and from Redis, whichever node held it', async (t) => {
    for (const node of [0, 1, 2]) {
      const path = PATHS.find((p) => where.get(p)!.node === node)!
      const { key } = where.get(path)!
      t.equal(await nodes[node]!.exists(key), 1)
      t.match((await get(a, path)).cacheStatus, /; hit; ttl=\d+$/, `A holds ${path} locally`)
      const held = entries(a)
      t.equal((await get(b, path, 'PURGE')).status, 200)
      t.equal(await nodes[node]!.exists(key), 0, `gone from node ${node} before the PURGE answered`)
      const marker = key.replace(':c:', ':g:')
      t.equal(await nodes[node]!.exists(marker), 1, 'its purge marker is on the same node')
      t.ok(await eventually(() => entries(a) === held - 1), 'A dropped its copy')
      t.match((await get(a, path)).cacheStatus, /fwd=uri-miss/)
      t.equal(o.hits.get(path), 2)
    }
  })

  t.test('purges by prefix, tag and path reach entries on every node and both instances', async (t) => {
    const purges = [
      [a, { prefix: 'http://shop.test/n/' }],
      [b, { tag: 'products' }],
      [a, { path: '/n/', pathPrefix: true }]
    ] as const
    t.equal(await purge(a, { prefix: 'http://shop.test/n/' }), 'purged')
    t.ok(await eventually(() => entries(a) === 0 && entries(b) === 0))
    for (const [by, what] of purges) {
      await fill(t, a, PATHS)
      // B's own copy, or (after a purge) Redis's.
      for (const path of PATHS) t.match((await get(b, path)).cacheStatus, /; hit; /)
      t.equal(await allCacheKeys(), PATHS.length)
      t.ok(entries(a) >= PATHS.length && entries(b) >= PATHS.length)
      t.same(await by.app.api.purge(what), { purged: PATHS.length, shared: 'purged' }, JSON.stringify(what))
      t.equal(await allCacheKeys(), 0, 'gone from every node')
      t.ok(await eventually(() => entries(a) === 0 && entries(b) === 0), 'and from both instances\' memory')
    }
    t.equal(await nodes[await cluster.nodeOf('switchyard:ci')]!.hlen('switchyard:ci'), 0, 'the purge index is empty')
  })

  /** Fetches `path` through `p` while the origin holds its answer, runs `meanwhile`, then lets the answer go. */
  const during = async (t: Test, p: RunningProxy, path: string, meanwhile: () => Promise<void>): Promise<string> => {
    const hits = o.hits.get(path) ?? 0
    let release = (): void => {}
    o.gate = new Promise((resolve) => { release = resolve })
    const fetch = get(p, path)
    t.ok(await eventually(() => o.hits.get(path) === hits + 1), `${path}: the fetch reached the origin (its lookup is done)`)
    await meanwhile()
    o.gate = undefined
    release()
    return (await fetch).body
  }

  t.test('a purge through B during A\'s fetch (of its URL, or by tag) keeps that fetch out of every cache', async (t) => {
    for (const [path, what] of [['/late/url', { url: 'http://shop.test/late/url' }], ['/late/tag', { tag: 'products' }]] as const) {
      const stored = shared(a).stored
      const released = status(a).redis?.operations?.cache_release?.ok ?? 0
      const heard = shared(a).remotePurges
      t.equal(await during(t, a, path, async () => {
        t.equal(await purge(b, what), 'purged')
        // A hears of it before its fetch ends, so A itself refuses to store (the next test has Redis refuse what A did not hear of).
        t.ok(await eventually(() => shared(a).remotePurges === heard + 1), 'A heard of the purge')
      }), `${path} #1`)
      t.ok(await eventually(() => status(a).redis?.operations?.cache_release?.ok === released + 1), 'A let its lock go, storing nothing')
      const fromA = await get(a, path)
      t.match(fromA.cacheStatus, /fwd=uri-miss/, `${path}: neither A nor Redis kept the fetch the purge overtook`)
      t.equal(fromA.body, `${path} #2`)
      t.ok(await eventually(() => status(a).redis?.shared?.stored === stored + 1))
    }
  })

  t.test('a write that reaches Redis after a purge A has not heard of yet is refused there: the URL\'s marker, the epoch on another node', async (t) => {
    t.equal(await purge(a, { prefix: 'http://shop.test/n/' }), 'purged')
    const epochNode = await cluster.nodeOf('switchyard:pe')
    // What another instance's purge does in Redis before its notice is heard: DROP moves the URL's marker, a purge by tag INCRs pe.
    const moves = [
      [PATHS.find((p) => where.get(p)!.node === epochNode)!, (key: string) => nodes[epochNode]!.set(key.replace(':c:', ':g:'), 'a purge not heard yet')],
      [PATHS.find((p) => where.get(p)!.node !== epochNode)!, () => nodes[epochNode]!.incr('switchyard:pe')]
    ] as const
    for (const [path, move] of moves) {
      const { node, key } = where.get(path)!
      const superseded = shared(a).superseded
      t.equal(await during(t, a, path, async () => { await move(key) }), `${path} #${o.hits.get(path)!}`)
      t.ok(await eventually(() => shared(a).superseded === superseded + 1, 5000), `${path}: the write was refused in Redis`)
      t.equal(await nodes[node]!.exists(key), 0, `nothing stored on node ${node}`)
    }
  })

  t.test('concurrent misses on both instances reach the origin once per URL, whichever node holds its lock', async (t) => {
    const heard = shared(b).remotePurges
    t.equal(await purge(a, { prefix: 'http://shop.test/n/' }), 'purged')
    // B's requests must begin after B heard it: the fills of requests that began before a purge
    // it heard of later are not taken (it cannot tell them from ones older than the purge).
    t.ok(await eventually(() => shared(b).remotePurges === heard + 1), 'B heard the purge')
    const paths = [0, 1, 2].map((node) => PATHS.find((p) => where.get(p)!.node === node)!)
    for (const p of paths) t.equal(await nodes[where.get(p)!.node]!.exists(where.get(p)!.key), 0, `${p} is in no cache`)
    const before = new Map(paths.map((p) => [p, o.hits.get(p)!]))
    const waited = a.app.state.cache!.shared!.stats().collapsed + b.app.state.cache!.shared!.stats().collapsed
    let release = (): void => {}
    o.gate = new Promise((resolve) => { release = resolve })
    const answers = Promise.all(paths.flatMap((p) => Array.from({ length: 10 }, (_, i) => get(i % 2 === 0 ? a : b, p))))
    t.ok(await eventually(() => paths.every((p) => o.hits.get(p) === before.get(p)! + 1)), 'one fetch of each went out')
    // The other instance's first miss of each found the lock in Redis, and waits for the fill.
    const collapsed = (): number => a.app.state.cache!.shared!.stats().collapsed + b.app.state.cache!.shared!.stats().collapsed
    t.ok(await eventually(() => collapsed() >= waited + paths.length), 'each URL\'s lock was found by the other instance')
    o.gate = undefined
    release()
    const all = await answers
    t.same(all.map((r) => r.status), Array(30).fill(200))
    for (const p of paths) t.equal(o.hits.get(p), before.get(p)! + 1, `${p}: one origin fetch for 10 requests on two instances`)
    t.ok(all.some((r) => /detail="shared"/.test(r.cacheStatus)), 'the other instance was served from Redis')
  })

  t.test('a rate limit on the cluster counts both instances\' requests together', async (t) => {
    const clients = Array.from({ length: 6 }, (_, i) => `198.51.100.${i + 1}`)
    for (const client of clients) {
      let passed = 0
      for (let i = 0; i < 12; i++) {
        const r = await get(i % 2 === 0 ? a : b, `/limited/${i}`, 'GET', { 'x-forwarded-for': client })
        t.ok(r.status === 200 || r.status === 429, `never an error (${r.status})`)
        if (r.status === 200) passed++
      }
      // A burst of 5, then one every 12 s: alone, each instance would let 5 through.
      t.ok(passed >= 5 && passed <= 6, `${client}: ${passed} of 12 passed, one limit for both`)
    }
    const buckets = await Promise.all(nodes.map((n) => n.keys('switchyard:rl:*')))
    t.equal(buckets.flat().length, clients.length, 'a bucket each in Redis')
    t.ok(buckets.filter((k) => k.length > 0).length > 1, `the buckets are on several nodes (${buckets.map((k) => k.length).join(', ')})`)
  })

  t.test('purge notices missed while the subscriber moved to another node are caught up', async (t) => {
    const epochs = (p: RunningProxy): number => status(p).redis?.operations?.cache_epoch?.ok ?? 0
    /** Cuts every instance's subscriber connection (on whichever node it is); resolves once `p` has read pn again. */
    const cut = async (p: RunningProxy): Promise<boolean> => {
      const before = epochs(p)
      for (const n of nodes) await n.call('CLIENT', 'KILL', 'TYPE', 'pubsub')
      return await eventually(() => epochs(p) > before, 5000)
    }
    t.match((await get(a, '/moved/1')).cacheStatus, /stored/)
    const held = entries(a)
    t.ok(await cut(a), 'A caught up after its subscriber came back')
    t.equal(entries(a), held, 'a move that missed nothing keeps the local copies')
    // A purge whose notice went out while A's subscriber was away: its count moved, A heard nothing.
    await nodes[await cluster.nodeOf('switchyard:pn')]!.incr('switchyard:pn')
    t.ok(await cut(a), 'A caught up again')
    t.ok(await eventually(() => entries(a) === 0), 'and dropped its local copies: it cannot tell which one the purge named')
    t.match((await get(a, '/moved/1')).cacheStatus, /; hit; .*detail="shared"/, 'Redis still holds the valid ones')
  })

  t.test('one master stopped: every request is answered, its operations fail at once, /status says degraded; back, sharing resumes', async (t) => {
    const down = 1
    const onDown = PATHS.filter((p) => where.get(p)!.node === down)
    const timeouts = (p: RunningProxy): number => Object.values(status(p).redis?.operations ?? {}).reduce((n, r) => n + (r.timeout ?? 0), 0)
    const before = [timeouts(a), timeouts(b)]
    await cluster.nodes[down]!.stop()
    const during: Array<{ status: number }> = []
    for (const path of [...PATHS, '/during/1', '/during/2']) during.push(await get(a, path), await get(b, path))
    for (const client of ['203.0.113.1', '203.0.113.2']) during.push(await get(a, '/limited/x', 'GET', { 'x-forwarded-for': client }))
    t.same(during.map((r) => r.status), Array(during.length).fill(200), 'no error to any client')
    // Its operations were refused (ioredis would retry them past redis.timeout, and the timeout would shed every node's).
    t.same([timeouts(a), timeouts(b)], before, 'no operation waited for redis.timeout')
    t.ok((status(a).redis?.operations?.cache_lookup?.error ?? 0) > 0, 'the stopped node\'s lookups failed')
    // Degraded while operations fail: asked right after misses whose lookups went to every node.
    let degraded = false
    for (let i = 0; i < 50 && !degraded; i++) {
      await get(a, `/degraded/${i}`)
      await get(b, `/degraded/${i}`)
      degraded = status(a).redis?.state === 'degraded' && status(b).redis?.state === 'degraded'
    }
    t.ok(degraded, `/status says degraded (${status(a).redis?.state}, ${status(b).redis?.state})`)

    await cluster.nodes[down]!.start()
    await cluster.ready()
    await settled(a, b)
    t.ok(await eventually(() => status(a).redis?.state === 'up' && status(b).redis?.state === 'up', 10_000), '/status says up again')
    const heard = b.app.state.cache!.shared!.stats().remotePurges
    t.equal(await purge(a, { prefix: 'http://shop.test/n/' }), 'purged')
    t.ok(await eventually(() => b.app.state.cache!.shared!.stats().remotePurges > heard), 'B heard the purge')
    await fill(t, a, onDown)
    for (const path of onDown) t.match((await get(b, path)).cacheStatus, /detail="shared"/, `${path}, on the node that came back, is shared again`)
  })
})
