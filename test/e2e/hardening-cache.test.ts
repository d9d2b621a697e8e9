// Issue 8, items 6 and 7: a purge or an invalidation removes every stored
// variant of a URL (every Vary combination, every route and shard variant),
// and a background revalidation sends exactly the head a foreground request
// would.
import t from 'tap'
import type { Test } from 'tap'
import { request } from 'undici'
import { rawRequest } from '../helpers/e2e.js'
import { startOrigin, type Origin } from '../helpers/origin.js'
import { startProxy, type RunningProxy } from '../helpers/proxy.js'

async function varyOrigin (t: Test): Promise<Origin> {
  return startOrigin(t, (seen, res) => {
    if (seen.method !== 'GET') return res.writeHead(204).end()
    const body = `${seen.url} in ${String(seen.headers['accept-language'])}`
    res.writeHead(200, { 'cache-control': 'max-age=60', vary: 'accept-language', 'content-length': String(body.length) }).end(body)
  })
}

async function proxyWithAdmin (t: Test, o: Origin): Promise<{ p: RunningProxy, admin: string }> {
  const p = await startProxy(t, `admin: { bind: "127.0.0.1:0" }
listeners: [{ name: web, bind: "127.0.0.1:0" }]
cache: { purgeFrom: [127.0.0.1/32] }
routes:
  - { name: beta, match: { headers: { x-beta: "1" } }, backend: o }
  - { name: main, backend: o }
backends: { o: { servers: [{ url: "${o.url}" }] } }
`)
  return { p, admin: `http://127.0.0.1:${p.app.adminAddress()!.port}` }
}

async function get (p: RunningProxy, path: string, lang: string, method = 'GET', beta = false): Promise<{ status: number, body: string, cache: string }> {
  const r = await request(`${p.url('web')}${path}`, { method, headers: { 'accept-language': lang, ...(beta ? { 'x-beta': '1' } : {}) } })
  return { status: r.statusCode, body: await r.body.text(), cache: String(r.headers['cache-status'] ?? '') }
}

/** Three languages through the main route, one through the beta route: four variants of one URL. */
async function fill (p: RunningProxy, path: string): Promise<void> {
  for (const lang of ['en', 'fr', 'de']) await get(p, path, lang)
  await get(p, path, 'en', 'GET', true)
  for (const lang of ['en', 'fr', 'de']) if (!(await get(p, path, lang)).cache.includes('hit')) throw new Error(`${lang} not cached`)
  if (!(await get(p, path, 'en', 'GET', true)).cache.includes('hit')) throw new Error('beta not cached')
}

t.test('PURGE removes every variant of the URL: each Vary combination, each route', async (t) => {
  const o = await varyOrigin(t)
  const { p } = await proxyWithAdmin(t, o)
  await fill(p, '/doc')
  const purge = await get(p, '/doc', 'en', 'PURGE')
  t.equal(purge.status, 200)
  t.match(purge.body, /purged 4 entries/)
  t.notMatch((await get(p, '/doc', 'en', 'GET', true)).cache, /hit/, 'the other route\'s variant too')
  for (const lang of ['en', 'fr', 'de']) t.notMatch((await get(p, '/doc', lang)).cache, /hit/, `${lang} gone`)
})

t.test('the admin purge by URL removes every variant too', async (t) => {
  const o = await varyOrigin(t)
  const { p, admin } = await proxyWithAdmin(t, o)
  await fill(p, '/doc')
  const r = await request(`${admin}/cache/purge`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ url: `${p.url('web')}/doc` })
  })
  t.same(await r.body.json(), { purged: 4 })
  t.equal(p.app.cacheStats()!.entries, 0)
})

t.test('the admin purge reads a URL as live traffic does: characters WHATWG URL would re-encode, backslashes', async (t) => {
  // new URL() turns `{` into `%7B`, `'` in a query into `%27` and a backslash into `/`;
  // live requests keep them, so a purge parsed that way named another key.
  // (A raw backslash in a path is refused live, so in a query here.)
  const o = await varyOrigin(t)
  const { p, admin } = await proxyWithAdmin(t, o)
  const paths = ['/a{b}|c^d', "/q?x='1'&y=\"2\"", '/back?s=\\slash', '/caf%C3%A9']
  const send = (path: string, lang: string) => rawRequest(p.port('web'),
    `GET ${path} HTTP/1.1\r\nHost: shop.test\r\nAccept-Language: ${lang}\r\nConnection: close\r\n\r\n`)
  for (const path of paths) for (const lang of ['en', 'fr']) t.equal((await send(path, lang)).status, 200, `${path} ${lang}`)
  t.equal(p.app.cacheStats()!.entries, 8, 'two variants of each stored')
  for (const url of ['http://shop.test/a{b}|c^d', "http://Shop.Test:80/q?x='1'&y=\"2\"", 'http://shop.test/back?s=\\slash', 'http://shop.test/café']) {
    const r = await request(`${admin}/cache/purge`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ url }) })
    t.same(await r.body.json(), { purged: 2 }, url)
  }
  t.equal(p.app.cacheStats()!.entries, 0)
})

t.test('an unsafe method invalidates every variant', async (t) => {
  const o = await varyOrigin(t)
  const { p } = await proxyWithAdmin(t, o)
  await fill(p, '/doc')
  t.equal((await get(p, '/doc', 'en', 'DELETE')).status, 204)
  t.equal(p.app.cacheStats()!.entries, 0)
  for (const lang of ['en', 'fr', 'de']) t.notMatch((await get(p, '/doc', lang)).cache, /hit/, `${lang} gone`)
})

t.test('an unsafe method\'s Location and Content-Location are read as live traffic reads a URL', async (t) => {
  // They went through WHATWG URL, which names `/a%7Bb%7D` for `/a{b}`: the stored `/a{b}` stayed.
  const o = await startOrigin(t, (seen, res) => {
    if (seen.method === 'POST') {
      return res.writeHead(201, { location: "/a{b}|c?x='1'", 'content-location': 'http://shop.test/back?s=\\slash', 'content-length': '0' }).end()
    }
    res.writeHead(200, { 'cache-control': 'max-age=60', 'content-length': '2' }).end('ok')
  })
  const p = await startProxy(t, `listeners: [{ name: web, bind: "127.0.0.1:0" }]
cache: {}
routes: [{ backend: o }]
backends: { o: { servers: [{ url: "${o.url}" }] } }
`)
  const send = (method: string, path: string) => rawRequest(p.port('web'), `${method} ${path} HTTP/1.1\r\nHost: shop.test\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`)
  for (const path of ["/a{b}|c?x='1'", '/back?s=\\slash']) t.equal((await send('GET', path)).status, 200)
  t.equal(p.app.cacheStats()!.entries, 2)
  t.equal((await send('POST', '/form')).status, 201)
  t.equal(p.app.cacheStats()!.entries, 0, 'both invalidated')
})

t.test('background revalidation sends the foreground head (Host of the server when passHostHeader is false)', async (t) => {
  let n = 0
  const o = await startOrigin(t, (_seen, res) => {
    n++
    res.writeHead(200, { 'cache-control': 'max-age=1, stale-while-revalidate=60', 'content-length': '2' }).end(`${n}`.padStart(2, '0'))
  })
  const p = await startProxy(t, `listeners: [{ name: web, bind: "127.0.0.1:0" }]
cache: {}
routes: [{ backend: o }]
backends: { o: { passHostHeader: false, servers: [{ url: "${o.url}" }] } }
`)
  const fg = await request(`${p.url('web')}/swr`, { headers: { host: 'client.test' } })
  await fg.body.text()
  await new Promise((resolve) => setTimeout(resolve, 1100))
  const stale = await request(`${p.url('web')}/swr`, { headers: { host: 'client.test' } })
  t.match(String(stale.headers['cache-status']), /stale-while-revalidate/)
  await stale.body.text()
  for (let i = 0; i < 50 && o.requests.length < 2; i++) await new Promise((resolve) => setTimeout(resolve, 20))
  t.equal(o.requests.length, 2, 'the background refresh went out')
  const [first, refresh] = o.requests
  t.equal(first!.headers.host, `127.0.0.1:${o.port}`)
  t.equal(refresh!.headers.host, `127.0.0.1:${o.port}`, 'the server\'s own host, as in the foreground, never empty')
  t.equal(refresh!.headers['x-forwarded-host'], 'client.test')
  t.equal(refresh!.url, '/swr')
})
