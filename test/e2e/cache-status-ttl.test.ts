// Cache-Status `ttl` on the answer that is stored (RFC 9211 §2.4: the
// remaining freshness lifetime) counts the age the response arrived with,
// as the hits that follow do: `max-age=60` with `Age: 20` has 40 s left,
// and with `Age: 100` it is stale already.
import t from 'tap'
import { request } from 'undici'
import { startOrigin } from '../helpers/origin.js'
import { startProxy } from '../helpers/proxy.js'

const ttl = (cacheStatus: unknown): number => Number(/ttl=(-?\d+)/.exec(String(cacheStatus))?.[1])

t.test('the stored answer\'s ttl counts its Age', async (t) => {
  const o = await startOrigin(t, (seen, res) => {
    const age = seen.url.slice(1)
    res.writeHead(200, { 'cache-control': 'max-age=60', age, 'content-length': '2' }).end('ok')
  })
  const p = await startProxy(t, `
listeners: [{ name: web, bind: "127.0.0.1:0" }]
cache: {}
routes: [{ backend: o }]
backends: { o: { servers: [{ url: "${o.url}" }] } }
`)
  const get = async (path: string): Promise<string> => {
    const r = await request(p.url('web') + path)
    await r.body.text()
    return String(r.headers['cache-status'])
  }
  const miss = await get('/20')
  t.match(miss, /fwd=uri-miss; fwd-status=200; stored; ttl=40$/)
  const hit = await get('/20')
  t.match(hit, /; hit; /)
  t.ok(Math.abs(ttl(hit) - ttl(miss)) <= 1, `the hit after says the same (${hit})`)
  t.match(await get('/100'), /stored; ttl=-40$/, 'stale on arrival')
})
