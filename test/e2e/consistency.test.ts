// Consistency per route on a replicated shard (a primary and two replicas,
// each a real origin that names itself): eventual reads spread over every
// server and are cached, writes land on the primary; strong sends everything
// to the primary and never caches; with the primary down a strong read is a
// 503 with Retry-After, never a replica; explain says so.
import t from 'tap'
import { h1 } from '../helpers/e2e.js'
import { startOrigin } from '../helpers/origin.js'
import { startProxy } from '../helpers/proxy.js'
import { explain, formatExplanation, parseExplainRequest } from '../../src/explain.js'
import { ReadYourWrites } from '../../src/proxy/read-your-writes.js'

async function until (cond: () => boolean, ms = 10_000): Promise<boolean> {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) return false
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
  return true
}

t.test('consistency: eventual and strong on a primary with replicas', async (t) => {
  const names = ['p', 'r1', 'r2'] as const
  let primaryUp = true
  const origins = await Promise.all(names.map((name) => startOrigin(t, (seen, res) => {
    if (seen.url === '/health') {
      res.writeHead(name === 'p' && !primaryUp ? 503 : 200).end()
      return
    }
    res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': seen.url.includes('cacheable') ? 'public, max-age=600' : 'no-store' })
    res.end(name)
  })))
  const proxy = await startProxy(t, `listeners: [{ name: web, bind: "127.0.0.1:0" }]
accessLog: false
cache: { maxBytes: 8MiB }
routes:
  - { name: strong, match: { pathPrefix: /strong }, backend: db, consistency: strong }
  - { name: eventual, backend: db }
backends:
  db:
    balance: { algorithm: roundRobin }
    healthCheck: { path: /health, interval: 1s, timeout: 900ms, rise: 1, fall: 1, jitter: 0 }
    servers:
      - { name: p, url: "${origins[0]!.url}", role: primary }
      - { name: r1, url: "${origins[1]!.url}" }
      - { name: r2, url: "${origins[2]!.url}" }
`)
  const base = proxy.url('web')
  const who = async (path: string, method = 'GET'): Promise<string> => {
    const r = await h1(base, { path, method, ...(method === 'POST' ? { headers: { 'content-length': '0' } } : {}) })
    return r.status === 200 ? r.text : `${r.status} ${String(r.headers['x-switchyard-error'])}`
  }

  const reads = new Set<string>()
  for (let i = 0; i < 6; i++) reads.add(await who(`/items/${i}`))
  t.same([...reads].sort(), ['p', 'r1', 'r2'], 'eventual reads: every server of the shard')
  const writes = new Set<string>()
  for (const method of ['POST', 'PUT', 'DELETE', 'PATCH', 'POST', 'POST']) writes.add(await who('/items/1', method))
  t.same([...writes], ['p'], 'eventual writes: the primary only')

  const first = await h1(base, { path: '/items/cacheable' })
  const again = await h1(base, { path: '/items/cacheable' })
  t.match(again.headers['cache-status'], /hit/, 'eventual reads may be cached')
  t.equal(again.text, first.text)

  const strong = new Set<string>()
  const before = origins[0]!.requests.filter((r) => r.url === '/strong/cacheable').length
  for (let i = 0; i < 4; i++) {
    const r = await h1(base, { path: '/strong/cacheable' })
    strong.add(r.text)
    t.equal(r.headers['cache-status'], undefined, 'strong: the cache is not consulted')
  }
  t.same([...strong], ['p'], 'strong reads: the primary only')
  t.equal(origins[0]!.requests.filter((r) => r.url === '/strong/cacheable').length - before, 4, 'every strong read reached the primary')

  // explain: the same decision, with the roles.
  const explained = explain(proxy.config, parseExplainRequest(`GET ${base}/strong/x`))
  t.equal(explained.replicas?.consistency.primaryOnly, true)
  t.match(explained.replicas?.consistency.reason, /consistency: strong.*primary only \(p\)/)
  t.same(explained.replicas?.servers.map((s) => [s.name, s.role, s.eligible]), [['p', 'primary', true], ['r1', 'replica', false], ['r2', 'replica', false]])
  t.match(formatExplanation(explained), /consistency +consistency: strong: the primary only \(p\), never a replica/)
  const read = explain(proxy.config, parseExplainRequest(`GET ${base}/items/1`))
  t.equal(read.replicas?.consistency.primaryOnly, false, 'an eventual read: any server')

  // The primary goes down: strong reads get 503 with Retry-After; eventual reads carry on on the replicas.
  primaryUp = false
  t.ok(await until(() => !proxy.app.state.backends.get('db')!.servers[0]!.healthy), 'the primary is marked down')
  const refused = await h1(base, { path: '/strong/x' })
  t.equal(refused.status, 503)
  t.equal(refused.headers['x-switchyard-error'], 'LB_ERR_PRIMARY_UNAVAILABLE')
  t.equal(refused.headers['retry-after'], '1')
  t.match(await who('/items/cacheable-not'), /^r[12]$/, 'eventual reads: a replica')
  t.equal(await who('/items/1', 'POST'), '503 LB_ERR_PRIMARY_UNAVAILABLE', 'a write with the primary down is refused, not sent to a replica')
})

t.test('consistency: readYourWrites, across two instances sharing the key', async (t) => {
  const names = ['p', 'r1', 'r2'] as const
  const origins = await Promise.all(names.map((name) => startOrigin(t, (seen, res) => {
    const fail = seen.url.includes('fail')
    res.writeHead(fail ? 500 : 200, { 'content-type': 'text/plain', 'cache-control': seen.method === 'GET' ? 'public, max-age=600' : 'no-store' })
    res.end(name)
  })))
  const yaml = `listeners: [{ name: web, bind: "127.0.0.1:0" }]
cache: { maxBytes: 8MiB }
readYourWrites: { key: "${'s'.repeat(32)}" }
routes:
  - { backend: db, consistency: { readYourWrites: { window: 1h } } }
backends:
  db:
    balance: { algorithm: roundRobin }
    shards:
      - name: a
        servers:
          - { name: p, url: "${origins[0]!.url}", role: primary }
          - { name: r1, url: "${origins[1]!.url}" }
          - { name: r2, url: "${origins[2]!.url}" }
`
  const one = await startProxy(t, yaml)
  const two = await startProxy(t, yaml)
  const get = async (base: string, path: string, cookie?: string): Promise<{ who: string, cache: string | undefined }> => {
    const r = await h1(base, { path, ...(cookie === undefined ? {} : { headers: { cookie } }) })
    return { who: r.text, cache: r.headers['cache-status'] as string | undefined }
  }

  // Without a write, reads spread over the shard and are cached.
  const before = new Set<string>()
  for (let i = 0; i < 6; i++) before.add((await get(one.url('web'), `/doc/${i}`)).who)
  t.same([...before].sort(), ['p', 'r1', 'r2'])
  t.match((await get(one.url('web'), '/doc/0')).cache, /hit/)

  // A failed write starts no window.
  const failed = await h1(one.url('web'), { path: '/fail', method: 'POST', headers: { 'content-length': '0' } })
  t.equal(failed.status, 500)
  t.equal(failed.headers['set-cookie'], undefined)

  // A successful write: the primary takes it, and the answer carries the window.
  const write = await h1(one.url('web'), { path: '/doc/0', method: 'POST', headers: { 'content-length': '0' } })
  t.equal(write.text, 'p')
  const setCookie = String(write.headers['set-cookie'])
  t.match(setCookie, /^switchyard_ryw=[0-9a-f]{12}-\d{13}\.[A-Za-z0-9_-]{22}; Path=\/; Max-Age=3600; HttpOnly; SameSite=Lax$/)
  const cookie = setCookie.split(';')[0]!

  // This client's reads now go to the primary, past the cache, on either instance.
  for (const base of [one.url('web'), two.url('web')]) {
    for (let i = 0; i < 4; i++) {
      const r = await get(base, '/doc/0', cookie)
      t.equal(r.who, 'p', 'a read after the write: the primary')
      t.equal(r.cache, undefined, 'not from the cache')
    }
  }
  // Another client (no cookie), or a forged one, reads as before.
  // (The write invalidated the stored /doc/0, RFC 9111 §4.4: stored again, then a hit.)
  t.match((await get(one.url('web'), '/doc/0')).cache, /stored/)
  t.match((await get(one.url('web'), '/doc/0')).cache, /hit/, 'others still get the cached copy')
  const forged = cookie.replace(/\.[A-Za-z0-9_-]{22}$/, '.' + 'A'.repeat(22))
  const others = new Set<string>()
  for (let i = 0; i < 6; i++) others.add((await get(two.url('web'), `/other/${i}`, forged)).who)
  t.same([...others].sort(), ['p', 'r1', 'r2'], 'a forged cookie changes nothing')

  // After the window: a genuine cookie (same key) whose deadline has passed sends reads anywhere again.
  const ryw = new ReadYourWrites('s'.repeat(32), 'switchyard_ryw')
  const expired = `switchyard_ryw=${ryw.write(new Map(), ryw.tag('db/a'), Date.now() - 1)}`
  const after = new Set<string>()
  for (let i = 0; i < 6; i++) after.add((await get(one.url('web'), `/after/${i}`, expired)).who)
  t.same([...after].sort(), ['p', 'r1', 'r2'], 'outside the window: any server')
  const inside = `switchyard_ryw=${ryw.write(new Map(), ryw.tag('db/a'), Date.now() + 60_000)}`
  t.equal((await get(two.url('web'), '/after/0', inside)).who, 'p', 'the same cookie inside its window: the primary')
})
