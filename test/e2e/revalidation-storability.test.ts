// A 304 (or a HEAD's 200) that freshens a stored response also brings its
// new Cache-Control (RFC 9111 §4.3.4). When that says no-store or private,
// a shared cache must not keep the response (§3, §5.2.2.7): the client that
// revalidated gets the stored body once, and nobody gets it from the cache after.
import t from 'tap'
import type { Test } from 'tap'
import { request } from 'undici'
import { startOrigin, type Origin } from '../helpers/origin.js'
import { startProxy, type RunningProxy } from '../helpers/proxy.js'

/** First a 200 that is stale at once (max-age=0, an ETag), then 304s carrying `cc304`. */
async function origin (t: Test, cc304: string): Promise<Origin> {
  return startOrigin(t, (seen, res) => {
    if (seen.headers['if-none-match'] === '"v1"') return res.writeHead(304, { etag: '"v1"', 'cache-control': cc304 }).end()
    res.writeHead(200, { etag: '"v1"', 'cache-control': 'max-age=0', 'content-length': '6' }).end('shared')
  })
}

async function proxy (t: Test, o: Origin): Promise<RunningProxy> {
  return startProxy(t, `
listeners: [{ name: web, bind: "127.0.0.1:0" }]
cache: {}
routes: [{ backend: o }]
backends: { o: { servers: [{ url: "${o.url}" }] } }
`)
}

async function get (p: RunningProxy, method = 'GET'): Promise<{ status: number, body: string, cache: string, cc: string }> {
  const r = await request(p.url('web') + '/doc', { method })
  return { status: r.statusCode, body: await r.body.text(), cache: String(r.headers['cache-status']), cc: String(r.headers['cache-control']) }
}

for (const cc304 of ['private, max-age=60', 'no-store, max-age=60']) {
  t.test(`a 304 saying ${cc304} takes the stored response out of the cache`, async (t) => {
    const o = await origin(t, cc304)
    const p = await proxy(t, o)
    t.match(await get(p), { status: 200, body: 'shared', cache: /stored/ })
    const revalidated = await get(p)
    t.match(revalidated, { status: 200, body: 'shared', cc: cc304, cache: /fwd=stale; fwd-status=304/ }, 'the revalidating client gets the confirmed body')
    t.notMatch(revalidated.cache, /ttl=/, 'not kept, so no freshness left to tell')
    const next = await get(p)
    t.notMatch(next.cache, /hit/, 'never a hit after the origin said it must not be shared')
    t.equal(o.requests.length, 3, 'the next request went to the origin')
  })
}

t.test('a HEAD 200 saying private takes the stored response out too', async (t) => {
  const o = await startOrigin(t, (seen, res) => {
    const cc = seen.method === 'HEAD' ? 'private, max-age=60' : 'max-age=0'
    res.writeHead(200, { etag: '"v1"', 'cache-control': cc, 'content-length': '6' }).end(seen.method === 'HEAD' ? undefined : 'shared')
  })
  const p = await proxy(t, o)
  t.match(await get(p), { body: 'shared', cache: /stored/ })
  t.match(await get(p, 'HEAD'), { status: 200, body: '', cc: 'private, max-age=60' })
  t.notMatch((await get(p)).cache, /hit/)
})

t.test('a 304 without such directives still freshens the entry', async (t) => {
  const o = await origin(t, 'max-age=60')
  const p = await proxy(t, o)
  await get(p)
  t.match(await get(p), { body: 'shared', cache: /fwd=stale; fwd-status=304; ttl=/ })
  t.match(await get(p), { body: 'shared', cache: /hit/ })
  t.equal(o.requests.length, 2)
})
