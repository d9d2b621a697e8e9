// A miss that carries the client's own validators (a browser revalidating
// what it holds, with If-None-Match or If-Modified-Since) fetches the whole
// response, so it can be stored, and answers those validators itself from
// its head, as nginx's cache does: a 304 when they match, while the body is
// recorded behind it. Any other precondition or Range goes upstream as sent.
import http from 'node:http'
import t from 'tap'
import { request } from 'undici'
import { startOrigin } from '../helpers/origin.js'
import { startProxy } from '../helpers/proxy.js'

const BODY = 'the representation the client holds'

t.test('a miss with the client\'s validators', async (t) => {
  let release!: () => void
  const held = new Promise<void>((resolve) => { release = resolve })
  t.teardown(() => release())
  const o = await startOrigin(t, (seen, res) => {
    const common = { etag: '"v1"', 'last-modified': 'Mon, 07 Dec 2026 10:00:00 GMT', 'cache-control': 'max-age=60' }
    if (seen.url === '/chunked') return res.writeHead(200, common).end(BODY) // no Content-Length: chunked
    const head = { ...common, 'content-length': String(BODY.length), ...(seen.url === '/private' ? { 'cache-control': 'private' } : {}) }
    if (seen.url === '/slow') {
      // The head now, the body once released: the client has its 304 long before.
      res.writeHead(200, head).write(BODY.slice(0, 5))
      void held.then(() => res.end(BODY.slice(5)))
      return
    }
    res.writeHead(200, head).end(BODY)
  })
  const p = await startProxy(t, `
listeners: [{ name: web, bind: "127.0.0.1:0" }]
cache: {}
routes: [{ backend: o }]
backends: { o: { servers: [{ url: "${o.url}" }] } }
`)
  const get = async (path: string, headers: Record<string, string> = {}): Promise<{ status: number, body: string, headers: http.IncomingHttpHeaders }> => {
    const r = await request(p.url('web') + path, { headers })
    return { status: r.statusCode, body: await r.body.text(), headers: r.headers as http.IncomingHttpHeaders }
  }
  const fetched = (path: string): Array<{ headers: http.IncomingHttpHeaders }> => o.requests.filter((r) => r.url === path)

  await t.test('matching If-None-Match: 304 to the client, the whole response stored', async (t) => {
    const r = await get('/a', { 'if-none-match': '"v1"' })
    t.equal(r.status, 304)
    t.equal(r.body, '')
    t.equal(r.headers.etag, '"v1"')
    t.match(r.headers['cache-status'], /fwd=uri-miss; fwd-status=200; stored/)
    t.equal(fetched('/a')[0]?.headers['if-none-match'], undefined, 'the origin was asked for the whole response')
    const again = await get('/a')
    t.same([again.status, again.body], [200, BODY])
    t.match(again.headers['cache-status'], /hit/, 'the next client gets it from the cache')
    t.equal(fetched('/a').length, 1)
  })

  await t.test('matching If-Modified-Since: the same', async (t) => {
    const r = await get('/ims', { 'if-modified-since': 'Mon, 07 Dec 2026 10:00:00 GMT' })
    t.equal(r.status, 304)
    t.equal(fetched('/ims')[0]?.headers['if-modified-since'], undefined)
    t.match((await get('/ims')).headers['cache-status'], /hit/)
  })

  await t.test('validators that do not match: the whole response, stored', async (t) => {
    const r = await get('/b', { 'if-none-match': '"v0"' })
    t.same([r.status, r.body], [200, BODY])
    t.match(r.headers['cache-status'], /stored/)
    t.match((await get('/b', { 'if-none-match': '"v1"' })).headers['cache-status'], /hit/, 'then answered from the cache')
    t.equal(fetched('/b').length, 1)
  })

  await t.test('the client leaves after its 304; the body still arrives and is stored', async (t) => {
    const r = await get('/slow', { 'if-none-match': '"v1"' })
    t.equal(r.status, 304, 'answered while the origin still holds its body')
    release()
    let hit = false
    // The body ends once released: poll until the entry is in (each miss meanwhile would be a fetch).
    for (let i = 0; i < 50 && !hit; i++) {
      const again = await get('/slow')
      t.equal(again.body, BODY)
      hit = /hit/.test(String(again.headers['cache-status']))
      if (!hit) await new Promise((resolve) => setTimeout(resolve, 50))
    }
    t.ok(hit, 'stored from the fetch the 304 went ahead of')
    t.equal(fetched('/slow').length, 1, 'one fetch')
  })

  await t.test('an answer that cannot be stored: still a 304 when they match, then the URL is asked as sent', async (t) => {
    const r = await get('/private', { 'if-none-match': '"v1"' })
    t.same([r.status, r.body], [304, ''])
    t.match(r.headers['cache-status'], /detail="private"/)
    t.equal(fetched('/private')[0]?.headers['if-none-match'], undefined)
    await get('/private', { 'if-none-match': '"v1"' })
    t.equal(fetched('/private')[1]?.headers['if-none-match'], '"v1"', 'marked hit-for-miss: its validators go upstream')
  })

  await t.test('an unknown length: the whole answer goes to the client (nothing to bound a body recorded alone)', async (t) => {
    const r = await get('/chunked', { 'if-none-match': '"v1"' })
    t.same([r.status, r.body], [200, BODY])
    t.equal(fetched('/chunked')[0]?.headers['if-none-match'], undefined)
  })

  await t.test('any other precondition or Range goes upstream as sent', async (t) => {
    await get('/c', { 'if-none-match': '"v1"', range: 'bytes=0-3' })
    t.equal(fetched('/c')[0]?.headers.range, 'bytes=0-3')
    t.equal(fetched('/c')[0]?.headers['if-none-match'], '"v1"')
    await get('/d', { 'if-match': '"v1"' })
    t.equal(fetched('/d')[0]?.headers['if-match'], '"v1"')
    await get('/e', { 'if-none-match': '"v1"', 'cache-control': 'no-store' })
    t.equal(fetched('/e')[0]?.headers['if-none-match'], '"v1"', 'a request that stores nothing asks as it was asked')
  })
})
