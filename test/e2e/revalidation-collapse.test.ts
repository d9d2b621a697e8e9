// Concurrent requests for a stale stored response collapse onto one
// revalidation, as concurrent misses collapse onto one fetch: a hot entry
// expiring sends the origin one conditional request, not one per client.
// A request that asks for its own validation (no-cache) still goes itself.
import http from 'node:http'
import t from 'tap'
import { request } from 'undici'
import { startOrigin } from '../helpers/origin.js'
import { startProxy } from '../helpers/proxy.js'

t.test('a stale entry\'s concurrent requests share one revalidation', async (t) => {
  let hold!: (res: http.ServerResponse) => void
  const held = new Promise<http.ServerResponse>((resolve) => { hold = resolve })
  let holding = false
  const o = await startOrigin(t, (seen, res) => {
    if (seen.headers['if-none-match'] !== '"v1"') {
      // Stored, and stale at once: every request revalidates it.
      return res.writeHead(200, { etag: '"v1"', 'cache-control': 'max-age=0', 'content-length': '4' }).end('body')
    }
    // The first revalidation waits for the test; any other is answered at once.
    if (holding) return res.writeHead(304, { etag: '"v1"', 'cache-control': 'max-age=60' }).end()
    holding = true
    t.teardown(() => { res.destroy() })
    hold(res)
  })
  const p = await startProxy(t, `
listeners: [{ name: web, bind: "127.0.0.1:0" }]
cache: {}
routes: [{ backend: o }]
backends: { o: { servers: [{ url: "${o.url}" }] } }
`)
  const get = async (headers: Record<string, string> = {}): Promise<{ body: string, cache: string }> => {
    const r = await request(p.url('web') + '/doc', { headers })
    return { body: await r.body.text(), cache: String(r.headers['cache-status']) }
  }
  t.match(await get(), { body: 'body', cache: /stored/ })
  const first = get()
  const res = await held
  const others = Promise.all(Array.from({ length: 4 }, async () => get()))
  // Asks for its own validation: not collapsed, answered while the others wait.
  t.match(await get({ 'cache-control': 'no-cache' }), { body: 'body', cache: /fwd=stale; fwd-status=304/ })
  await new Promise((resolve) => setTimeout(resolve, 300)) // the four reach the cache
  res.writeHead(304, { etag: '"v1"', 'cache-control': 'max-age=60' }).end()
  t.match(await first, { body: 'body', cache: /fwd=stale; fwd-status=304/ })
  const got = await others
  t.ok(got.every((r) => r.body === 'body' && /hit; collapsed/.test(r.cache)), 'the others got the revalidated entry')
  t.equal(o.requests.length, 3, 'the first fetch, one shared revalidation, the no-cache one')
  t.match(p.app.cacheStats(), { collapsed: 4 })
})
