// The response cache through a real proxy with a real origin that counts its
// requests. Each test names the rule it checks.
import http from 'node:http'
import t, { type Test } from 'tap'
import { Pool, request } from 'undici'
import { startProxy, type RunningProxy } from '../helpers/proxy.js'
import { startServer } from '../helpers/origin.js'

type Handler = (req: http.IncomingMessage, res: http.ServerResponse, n: number) => void

interface Origin {
  readonly port: number
  /** Requests per path (query included). */
  readonly hits: Map<string, number>
  /** Last request headers per path. */
  readonly lastHeaders: Map<string, http.IncomingHttpHeaders>
  route (path: string, h: Handler): void
  stop (): Promise<void>
  start (): Promise<void>
}

async function startOrigin (t: Test): Promise<Origin> {
  const routes = new Map<string, Handler>()
  const hits = new Map<string, number>()
  const lastHeaders = new Map<string, http.IncomingHttpHeaders>()
  const server = await startServer(t, (req, res) => {
    const url = req.url ?? '/'
    const n = (hits.get(url) ?? 0) + 1
    hits.set(url, n)
    lastHeaders.set(url, req.headers)
    req.resume()
    const h = routes.get(url.split('?')[0]!)
    if (h === undefined) {
      res.writeHead(404).end('no such test path')
      return
    }
    h(req, res, n)
  })
  return {
    port: server.port,
    hits,
    lastHeaders,
    route: (p, h) => { routes.set(p, h) },
    stop: server.stop,
    start: server.restart
  }
}

async function proxyFor (t: Test, origin: Origin, extra = '', routeExtra = ''): Promise<RunningProxy> {
  return startProxy(t, `
listeners: [{ name: web, bind: "127.0.0.1:0" }]
cache: { maxBytes: 8MiB, maxEntryBytes: 1MiB${extra} }
routes:
  - match: { pathPrefix: / }
    backend: origin
${routeExtra}
backends:
  origin:
    retries: { attempts: 0 }
    servers: [{ url: "http://127.0.0.1:${origin.port}" }]
`)
}

async function get (p: RunningProxy, path: string, headers: Record<string, string> = {}, method = 'GET') {
  const r = await request(`${p.url('web')}${path}`, { method, headers })
  const body = await r.body.text()
  return { status: r.statusCode, headers: r.headers, body }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

t.test('fresh hit: served from memory with Age and Cache-Status (RFC 9111 §4, RFC 9211)', async (t) => {
  const o = await startOrigin(t)
  o.route('/a', (_q, res) => res.writeHead(200, { 'cache-control': 'max-age=60', 'content-type': 'text/plain' }).end('hello'))
  const p = await proxyFor(t, o)
  const first = await get(p, '/a')
  t.equal(first.body, 'hello')
  t.match(first.headers['cache-status'], /^switchyard; fwd=uri-miss; fwd-status=200; stored; ttl=60$/)
  const second = await get(p, '/a')
  t.equal(second.body, 'hello')
  t.match(second.headers['cache-status'], /^switchyard; hit; ttl=\d+$/)
  t.match(second.headers.age, /^\d+$/)
  t.equal(o.hits.get('/a'), 1, 'origin asked once')
  const head = await get(p, '/a', {}, 'HEAD')
  t.equal(head.status, 200)
  t.equal(head.body, '')
  t.equal(head.headers['content-length'], '5', 'HEAD answered from the GET entry')
  t.equal(o.hits.get('/a'), 1)
  t.equal(p.app.cacheStats()?.hits, 2)
})

t.test('100 concurrent requests for a cold key reach the origin once (collapsed forwarding)', async (t) => {
  const o = await startOrigin(t)
  o.route('/cold', (_q, res) => setTimeout(() => res.writeHead(200, { 'cache-control': 'max-age=60' }).end('cold body'), 100))
  const p = await proxyFor(t, o)
  const client = new Pool(p.url('web'), { connections: 100 })
  t.teardown(() => client.close())
  const results = await Promise.all(Array.from({ length: 100 }, async () => {
    const r = await client.request({ path: '/cold', method: 'GET' })
    return { status: r.statusCode, body: await r.body.text(), cs: String(r.headers['cache-status']) }
  }))
  t.equal(o.hits.get('/cold'), 1, 'exactly one upstream request')
  t.ok(results.every((r) => r.status === 200 && r.body === 'cold body'), 'all 100 got the response')
  // The others either waited for that fetch (collapsed) or, arriving after it completed, hit the stored copy.
  const collapsed = results.filter((r) => /collapsed/.test(r.cs)).length
  const hits = results.filter((r) => /; hit/.test(r.cs)).length
  t.equal(hits, 99, `99 served by the cache (${collapsed} of them waited for the fetch)`)
  t.ok(collapsed > 0, 'some waited on the fetch in flight')
  // The counter counts only answers that came from that fetch (issue 14): the one miss went upstream.
  t.equal(p.app.cacheStats()?.collapsed, collapsed, 'switchyard_cache_collapsed_total = answers marked collapsed')
  t.equal(p.app.cacheStats()?.misses, 1, 'one miss, the request that went upstream')
})

t.test('collapsing stops for responses that turn out uncacheable', async (t) => {
  const o = await startOrigin(t)
  o.route('/private', (_q, res, n) => setTimeout(() => res.writeHead(200, { 'cache-control': 'private' }).end(`p${n}`), 50))
  const p = await proxyFor(t, o)
  const client = new Pool(p.url('web'), { connections: 10 })
  t.teardown(() => client.close())
  const bodies = await Promise.all(Array.from({ length: 10 }, async () => (await (await client.request({ path: '/private', method: 'GET' })).body.text())))
  t.equal(o.hits.get('/private'), 10, 'each request got its own private answer')
  t.equal(new Set(bodies).size, 10)
})

t.test('Vary: Accept-Encoding keeps two variants apart (§4.1)', async (t) => {
  const o = await startOrigin(t)
  o.route('/v', (q, res) => res.writeHead(200, { 'cache-control': 'max-age=60', vary: 'Accept-Encoding' }).end(`enc=${q.headers['accept-encoding'] ?? 'none'}`))
  const p = await proxyFor(t, o)
  t.equal((await get(p, '/v', { 'accept-encoding': 'gzip' })).body, 'enc=gzip')
  t.equal((await get(p, '/v', { 'accept-encoding': 'br' })).body, 'enc=br')
  const again = await get(p, '/v', { 'accept-encoding': 'gzip' })
  t.equal(again.body, 'enc=gzip')
  t.match(again.headers['cache-status'], /hit/)
  t.equal((await get(p, '/v', { 'accept-encoding': 'br' })).body, 'enc=br')
  t.equal(o.hits.get('/v'), 2, 'one upstream request per variant')
  const star = await startOrigin(t)
  star.route('/s', (_q, res) => res.writeHead(200, { 'cache-control': 'max-age=60', vary: '*' }).end('x'))
  const ps = await proxyFor(t, star)
  await get(ps, '/s'); await get(ps, '/s')
  t.equal(star.hits.get('/s'), 2, 'Vary: * is never served from cache')
})

t.test('no-store, private, Set-Cookie and Authorization responses are not served to another client (§3, §3.5)', async (t) => {
  const o = await startOrigin(t)
  o.route('/nostore', (_q, res, n) => res.writeHead(200, { 'cache-control': 'no-store, max-age=60' }).end(`ns${n}`))
  o.route('/private', (_q, res, n) => res.writeHead(200, { 'cache-control': 'private, max-age=60' }).end(`pv${n}`))
  o.route('/cookie', (_q, res, n) => res.writeHead(200, { 'cache-control': 'max-age=60', 'set-cookie': `sid=${n}` }).end(`ck${n}`))
  o.route('/auth', (q, res, n) => res.writeHead(200, { 'cache-control': 'max-age=60' }).end(`${q.headers.authorization ?? 'anon'}${n}`))
  o.route('/auth-public', (_q, res, n) => res.writeHead(200, { 'cache-control': 'public, max-age=60' }).end(`pub${n}`))
  const p = await proxyFor(t, o)
  for (const path of ['/nostore', '/private', '/cookie']) {
    const a = await get(p, path)
    const b = await get(p, path)
    t.not(a.body, b.body, `${path}: the second client gets its own answer`)
    t.equal(o.hits.get(path), 2)
    t.match(b.headers['cache-status'], /fwd=uri-miss; fwd-status=200; detail=/, `${path}: says why it was not stored`)
  }
  const alice = await get(p, '/auth', { authorization: 'Bearer alice' })
  const anon = await get(p, '/auth')
  t.equal(alice.body, 'Bearer alice1')
  t.equal(anon.body, 'anon2', 'an authorized answer is not given to an anonymous client')
  await get(p, '/auth-public', { authorization: 'Bearer alice' })
  t.equal((await get(p, '/auth-public')).body, 'pub1', 'unless the response says public')
})

t.test('allowSetCookie on a route stores Set-Cookie responses', async (t) => {
  const o = await startOrigin(t)
  o.route('/cookie', (_q, res, n) => res.writeHead(200, { 'cache-control': 'max-age=60', 'set-cookie': 'theme=dark' }).end(`ck${n}`))
  const p = await proxyFor(t, o, '', '    cache: { allowSetCookie: true }')
  await get(p, '/cookie')
  const b = await get(p, '/cookie')
  t.equal(b.body, 'ck1')
  t.equal(o.hits.get('/cookie'), 1)
})

t.test('a stale entry is revalidated; a 304 refreshes it (§4.3, §4.3.4)', async (t) => {
  const o = await startOrigin(t)
  o.route('/r', (q, res, n) => {
    if (q.headers['if-none-match'] === '"v1"') return res.writeHead(304, { etag: '"v1"', 'cache-control': 'max-age=60', 'x-refreshed': String(n) }).end()
    res.writeHead(200, { etag: '"v1"', 'cache-control': 'max-age=0', 'x-refreshed': 'no' }).end('body-v1')
  })
  const p = await proxyFor(t, o)
  t.equal((await get(p, '/r')).body, 'body-v1')
  const second = await get(p, '/r')
  t.equal(second.status, 200)
  t.equal(second.body, 'body-v1', 'body kept from the stored response')
  t.equal(second.headers['x-refreshed'], '2', 'headers updated from the 304')
  t.match(second.headers['cache-status'], /fwd=stale; fwd-status=304/)
  t.equal(o.lastHeaders.get('/r')?.['if-none-match'], '"v1"', 'conditional request sent upstream')
  const third = await get(p, '/r')
  t.match(third.headers['cache-status'], /hit/, 'now fresh for 60 s')
  t.equal(o.hits.get('/r'), 2)
  t.equal(p.app.cacheStats()?.revalidated304, 1)
})

t.test('a 304\'s Set-Cookie reaches the client that revalidated, and no other (§3.1, §4.3.4)', async (t) => {
  const o = await startOrigin(t)
  o.route('/rc', (q, res, n) => {
    if (q.headers['if-none-match'] === '"v1"') {
      return res.writeHead(304, { etag: '"v1"', 'cache-control': 'max-age=60', 'set-cookie': [`session=s${n}; Path=/`, 'seen=1'] }).end()
    }
    res.writeHead(200, { etag: '"v1"', 'cache-control': 'max-age=0' }).end('body-v1')
  })
  const p = await proxyFor(t, o)
  t.equal((await get(p, '/rc')).body, 'body-v1')
  const second = await get(p, '/rc')
  t.match(second.headers['cache-status'], /fwd=stale; fwd-status=304/)
  t.equal(second.body, 'body-v1')
  t.same(second.headers['set-cookie'], ['session=s2; Path=/', 'seen=1'], 'the revalidating client gets the 304\'s cookies')
  const third = await get(p, '/rc')
  t.match(third.headers['cache-status'], /hit/)
  t.equal(third.headers['set-cookie'], undefined, 'they are not stored: the next client gets none')
  t.equal(o.hits.get('/rc'), 2)
})

t.test('a 304 naming another representation updates nothing: the current one is fetched whole (§4.3.4)', async (t) => {
  const o = await startOrigin(t)
  const conditional: Array<string | undefined> = []
  o.route('/changed', (q, res, n) => {
    conditional.push(q.headers['if-none-match'])
    if (n === 1) return res.writeHead(200, { etag: '"v1"', 'cache-control': 'max-age=0' }).end('old-v1')
    // A careless origin: any conditional request gets a 304, whatever changed.
    if (q.headers['if-none-match'] !== undefined) return res.writeHead(304, { etag: '"v2"', 'cache-control': 'max-age=60' }).end()
    res.writeHead(200, { etag: '"v2"', 'cache-control': 'max-age=60' }).end('new-v2')
  })
  const p = await proxyFor(t, o)
  t.equal((await get(p, '/changed')).body, 'old-v1')
  const second = await get(p, '/changed', { 'if-none-match': '"v1"' })
  t.equal(second.status, 200, 'the client\'s "v1" is not current: the whole response')
  t.equal(second.body, 'new-v2', 'the stored "v1" body is never sent as "v2"')
  t.equal(second.headers.etag, '"v2"')
  t.match(second.headers['cache-status'], /fwd=stale; fwd-status=200; stored/)
  t.same(conditional, [undefined, '"v1"', undefined], 'revalidated, then fetched again without validators')
  const third = await get(p, '/changed', { 'if-none-match': '"v2"' })
  t.equal(third.status, 304, 'the new response was stored and answers conditionals')
  t.match(third.headers['cache-status'], /hit/)
  t.equal(o.hits.get('/changed'), 3)
  t.equal(p.app.cacheStats()?.revalidated304, 0, 'no entry was freshened by the 304')

  // HEAD revalidates the same way; the HEAD fetched again gets the origin's own answer.
  o.route('/changed-head', (q, res, n) => {
    if (n === 1) return res.writeHead(200, { etag: '"h1"', 'cache-control': 'max-age=0' }).end('old-h1')
    if (q.headers['if-none-match'] !== undefined) return res.writeHead(304, { etag: '"h2"', 'cache-control': 'max-age=60' }).end()
    res.writeHead(200, { etag: '"h2"', 'cache-control': 'max-age=60', 'x-whole': String(n) }).end(q.method === 'HEAD' ? undefined : 'new-h2')
  })
  await get(p, '/changed-head')
  const head = await get(p, '/changed-head', {}, 'HEAD')
  t.equal(head.status, 200)
  t.equal(head.headers.etag, '"h2"')
  t.equal(head.headers['x-whole'], '3', 'answered by the request sent again')
})

t.test('a GET with a body is neither answered from the cache nor stored: the key does not hold the body (fat GET)', async (t) => {
  const o = await startOrigin(t)
  o.route('/jsonp', (q, res) => {
    let body = ''
    q.on('data', (c: Buffer) => { body += c.toString() })
    q.on('end', () => {
      const cb = body !== '' ? body.replace('callback=', '') : new URL(q.url ?? '/', 'http://x').searchParams.get('callback')
      res.writeHead(200, { 'cache-control': 'max-age=600', 'content-type': 'application/javascript' }).end(`${cb}({"data":1})`)
    })
  })
  const p = await proxyFor(t, o)
  const fat = await new Promise<{ status: number, body: string, cacheStatus: string }>((resolve, reject) => {
    const q = http.request(`${p.url('web')}/jsonp?callback=ok`, { method: 'GET', headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': '15' } }, (r) => {
      let body = ''
      r.on('data', (c: Buffer) => { body += c.toString() })
      r.on('end', () => resolve({ status: r.statusCode ?? 0, body, cacheStatus: String(r.headers['cache-status']) }))
    })
    q.on('error', reject)
    q.end('callback=alert1')
  })
  t.equal(fat.body, 'alert1({"data":1})', 'the origin got the body and answered for it')
  t.match(fat.cacheStatus, /fwd=bypass/)
  const victim = await get(p, '/jsonp?callback=ok')
  t.equal(victim.body, 'ok({"data":1})', 'the victim never gets the answer made for the body')
  t.match(victim.headers['cache-status'], /fwd=uri-miss; fwd-status=200; stored/)
  t.equal((await get(p, '/jsonp?callback=ok')).body, 'ok({"data":1})')
  t.equal(o.hits.get('/jsonp?callback=ok'), 2)
})

t.test('client conditionals are answered 304 from a fresh entry (RFC 9110 §13.1)', async (t) => {
  const o = await startOrigin(t)
  o.route('/c', (_q, res) => res.writeHead(200, { etag: '"abc"', 'last-modified': 'Mon, 02 Nov 2026 10:00:00 GMT', 'cache-control': 'max-age=60' }).end('content'))
  const p = await proxyFor(t, o)
  await get(p, '/c')
  const inm = await get(p, '/c', { 'if-none-match': 'W/"abc", "zzz"' })
  t.equal(inm.status, 304)
  t.equal(inm.body, '')
  t.equal(inm.headers.etag, '"abc"')
  const ims = await get(p, '/c', { 'if-modified-since': 'Tue, 03 Nov 2026 10:00:00 GMT' })
  t.equal(ims.status, 304)
  const changed = await get(p, '/c', { 'if-none-match': '"other"' })
  t.equal(changed.status, 200)
  t.equal(changed.body, 'content')
  t.equal(o.hits.get('/c'), 1)
})

t.test('stale-if-error serves the stored response while the origin is down (RFC 5861 §4)', async (t) => {
  const o = await startOrigin(t)
  o.route('/sie', (_q, res) => res.writeHead(200, { 'cache-control': 'max-age=0, stale-if-error=60' }).end('safe copy'))
  o.route('/plain', (_q, res) => res.writeHead(200, { 'cache-control': 'max-age=0', etag: '"p"' }).end('plain'))
  const p = await proxyFor(t, o)
  await get(p, '/sie')
  await get(p, '/plain')
  await o.stop()
  const r = await get(p, '/sie')
  t.equal(r.status, 200)
  t.equal(r.body, 'safe copy')
  t.match(r.headers['cache-status'], /fwd=stale; ttl=-?\d+; detail="stale-if-error"/)
  const plain = await get(p, '/plain')
  t.equal(plain.status, 502, 'without stale-if-error the error stands')
  await o.start()
  o.route('/sie', (_q, res) => res.writeHead(503).end('down'))
  const five = await get(p, '/sie')
  t.equal(five.status, 200, 'a 5xx answer is replaced by the stale copy too')
  t.equal(five.body, 'safe copy')
})

t.test('stale-while-revalidate serves stale at once and refreshes in the background once (RFC 5861 §3)', async (t) => {
  const o = await startOrigin(t)
  // The refresh (request 2) is held 300 ms so the concurrent stale hits all land while it is in flight.
  o.route('/swr', (_q, res, n) => setTimeout(() => res.writeHead(200, { 'cache-control': 'max-age=1, stale-while-revalidate=60' }).end(`gen${n}`), n === 1 ? 0 : 300))
  const p = await proxyFor(t, o)
  t.equal((await get(p, '/swr')).body, 'gen1')
  await sleep(1100)
  const results = await Promise.all(Array.from({ length: 5 }, () => get(p, '/swr')))
  t.ok(results.every((r) => r.body === 'gen1'), 'stale answers, immediately')
  t.match(results[0]!.headers['cache-status'], /hit; ttl=-?\d+; detail="stale-while-revalidate"/)
  for (let i = 0; i < 100 && o.hits.get('/swr') !== 2; i++) await sleep(20)
  t.equal(o.hits.get('/swr'), 2, 'one background refresh for five stale hits')
  for (let i = 0; i < 100 && (await get(p, '/swr')).body !== 'gen2'; i++) await sleep(20)
  t.equal((await get(p, '/swr')).body, 'gen2', 'the refreshed entry is served')
})

t.test('a stale answer is counted as stale served, not as a fresh hit too', async (t) => {
  const o = await startOrigin(t)
  o.route('/s', (_q, res) => res.writeHead(200, { 'cache-control': 'max-age=0, stale-while-revalidate=60' }).end('s'))
  o.route('/f', (_q, res) => res.writeHead(200, { 'cache-control': 'max-age=60' }).end('f'))
  const p = await proxyFor(t, o)
  await get(p, '/s')
  t.match((await get(p, '/s')).headers['cache-status'], /hit; ttl=-?\d+; detail="stale-while-revalidate"/)
  t.match(p.app.cacheStats(), { hits: 0, staleServed: 1 })
  await get(p, '/f')
  t.match((await get(p, '/f')).headers['cache-status'], /^switchyard; hit; ttl=\d+$/)
  t.match(p.app.cacheStats(), { hits: 1, staleServed: 1 })
})

t.test('an origin that dies mid-body leaves nothing cached', async (t) => {
  const o = await startOrigin(t)
  o.route('/broken', (_q, res, n) => {
    res.writeHead(200, { 'cache-control': 'max-age=60', 'content-length': '1000' })
    res.write('x'.repeat(400))
    if (n === 1) setTimeout(() => res.socket?.destroy(), 20)
    else res.end('y'.repeat(600))
  })
  const p = await proxyFor(t, o)
  await t.rejects(request(`${p.url('web')}/broken`).then((r) => r.body.text()), 'the first client sees the failure')
  t.match(p.app.cacheStats(), { stored: 0, notStored: 1 }, 'its head said stored (it could not know), the counters say not')
  const second = await get(p, '/broken')
  t.equal(second.body.length, 1000)
  t.match(second.headers['cache-status'], /fwd=uri-miss/, 'nothing was stored from the broken response')
  t.equal(o.hits.get('/broken'), 2)
})

t.test('responses above maxEntryBytes stream through uncached', async (t) => {
  const o = await startOrigin(t)
  const big = Buffer.alloc(2 * 1024 * 1024, 'b')
  o.route('/big', (_q, res) => res.writeHead(200, { 'cache-control': 'max-age=60' }).end(big))
  o.route('/bigchunked', (_q, res) => { res.writeHead(200, { 'cache-control': 'max-age=60' }); res.write(big.subarray(0, 1024 * 1024)); res.end(big.subarray(1024 * 1024)) })
  const p = await proxyFor(t, o)
  for (const path of ['/big', '/bigchunked']) {
    t.equal((await get(p, path)).body.length, big.length)
    t.equal((await get(p, path)).body.length, big.length)
    t.equal(o.hits.get(path), 2, `${path} not stored`)
  }
  t.ok(p.app.cacheStats()!.bytes < 1024 * 1024)
})

t.test('a body within maxEntryBytes that its entry does not fit in is told apart at the head, not said stored', async (t) => {
  const o = await startOrigin(t)
  // 1 MiB exactly: the entry (the body, its fields and ~1 KiB besides) is over maxEntryBytes: 1MiB.
  const body = Buffer.alloc(1024 * 1024, 'b')
  o.route('/edge', (_q, res) => res.writeHead(200, { 'cache-control': 'max-age=60', 'content-length': String(body.length) }).end(body))
  const p = await proxyFor(t, o)
  const first = await get(p, '/edge')
  t.equal(first.body.length, body.length)
  t.equal(first.headers['cache-status'], 'switchyard; fwd=uri-miss; fwd-status=200; detail="too large"', 'not `stored`: it never would be')
  t.equal((await get(p, '/edge')).body.length, body.length)
  t.equal(o.hits.get('/edge'), 2)
  t.match(p.app.cacheStats(), { stored: 0 })
})

t.test('unsafe methods invalidate the URI and same-host Location (§4.4)', async (t) => {
  const o = await startOrigin(t)
  o.route('/item', (q, res, n) => {
    if (q.method === 'POST') return res.writeHead(201, { location: '/other' }).end()
    res.writeHead(200, { 'cache-control': 'max-age=60' }).end(`item${n}`)
  })
  o.route('/other', (_q, res, n) => res.writeHead(200, { 'cache-control': 'max-age=60' }).end(`other${n}`))
  const p = await proxyFor(t, o)
  await get(p, '/item'); await get(p, '/other')
  t.equal((await get(p, '/item')).body, 'item1')
  const post = await get(p, '/item', { 'content-type': 'text/plain' }, 'POST')
  t.equal(post.status, 201)
  t.equal((await get(p, '/item')).body.startsWith('item'), true)
  t.equal(o.hits.get('/item'), 3, 'GET after the POST went upstream')
  t.equal((await get(p, '/other')).body, 'other2', 'Location was invalidated too')
})

t.test('a relative Location or Content-Location is resolved against the request\'s URL (RFC 9110 §10.2.2, RFC 3986 §5.2)', async (t) => {
  const o = await startOrigin(t)
  o.route('/a/b/c', (q, res) => q.method === 'POST' ? res.writeHead(201, { location: 'd' }).end() : res.writeHead(404).end())
  o.route('/a/b/d', (_q, res, n) => res.writeHead(200, { 'cache-control': 'max-age=60' }).end(`d${n}`))
  o.route('/q/x', (q, res, n) => q.method === 'POST' ? res.writeHead(200, { 'content-location': '?v=2' }).end('ok') : res.writeHead(200, { 'cache-control': 'max-age=60' }).end(`x${n}`))
  const p = await proxyFor(t, o)
  await get(p, '/a/b/d')
  t.equal((await get(p, '/a/b/d')).body, 'd1', 'stored')
  t.equal((await get(p, '/a/b/c', { 'content-type': 'text/plain' }, 'POST')).status, 201)
  t.equal((await get(p, '/a/b/d')).body, 'd2', 'Location: d named /a/b/d')
  await get(p, '/q/x?v=2')
  t.equal((await get(p, '/q/x?v=2')).body, 'x1', 'stored')
  await get(p, '/q/x?v=1', { 'content-type': 'text/plain' }, 'POST')
  t.equal((await get(p, '/q/x?v=2')).body, 'x2', 'Content-Location: ?v=2 named /q/x?v=2')
})

t.test('Range on a cached response: 206 from cache; unsatisfiable: 416', async (t) => {
  const o = await startOrigin(t)
  o.route('/range', (_q, res) => res.writeHead(200, { 'cache-control': 'max-age=60', etag: '"r"' }).end('0123456789'))
  const p = await proxyFor(t, o)
  await get(p, '/range')
  const part = await get(p, '/range', { range: 'bytes=2-5' })
  t.equal(part.status, 206)
  t.equal(part.body, '2345')
  t.equal(part.headers['content-range'], 'bytes 2-5/10')
  const suffix = await get(p, '/range', { range: 'bytes=-3' })
  t.equal(suffix.body, '789')
  const bad = await get(p, '/range', { range: 'bytes=50-60' })
  t.equal(bad.status, 416)
  t.equal(bad.headers['content-range'], 'bytes */10')
  const staleIfRange = await get(p, '/range', { range: 'bytes=0-1', 'if-range': '"old"' })
  t.equal(staleIfRange.status, 200, 'If-Range mismatch: the whole body')
  t.equal(o.hits.get('/range'), 1)
})

t.test('only-if-cached: 504 when nothing is stored (§5.2.1.7)', async (t) => {
  const o = await startOrigin(t)
  o.route('/oic', (_q, res) => res.writeHead(200, { 'cache-control': 'max-age=60' }).end('x'))
  const p = await proxyFor(t, o)
  const miss = await get(p, '/oic', { 'cache-control': 'only-if-cached' })
  t.equal(miss.status, 504)
  t.equal(miss.headers['x-switchyard-error'], 'LB_ERR_ONLY_IF_CACHED')
  t.equal(o.hits.get('/oic'), undefined)
  await get(p, '/oic')
  t.equal((await get(p, '/oic', { 'cache-control': 'only-if-cached' })).status, 200)
})

t.test('request no-cache forces revalidation; cache key rules per route, and the origin gets what is keyed', async (t) => {
  const o = await startOrigin(t)
  o.route('/k', (q, res, n) => res.writeHead(200, { 'cache-control': 'max-age=60' }).end(`${q.url}#${n}`))
  const p = await proxyFor(t, o, '', '    cache: { key: { query: sort, ignoreParams: [utm_source] } }')
  t.equal((await get(p, '/k?b=2&a=1&utm_source=x')).body, '/k?a=1&b=2#1', 'forward what you key: sorted, ignored parameter gone')
  t.equal((await get(p, '/k?a=1&b=2')).body, '/k?a=1&b=2#1', 'sorted query: same key')
  t.equal((await get(p, '/k?a=1&b=2&utm_source=y')).body, '/k?a=1&b=2#1', 'ignored parameter')
  const nc = await get(p, '/k?b=2&a=1', { 'cache-control': 'no-cache' })
  t.equal(nc.body, '/k?a=1&b=2#2', 'no-cache went upstream (no validator: a full fetch)')
  t.equal(o.hits.get('/k?a=1&b=2'), 2)
  t.equal(o.hits.get('/k?b=2&a=1&utm_source=x'), undefined, 'the origin never saw the unkeyed form')
})

t.test('PURGE from an allowed address removes the URL; others get 405', async (t) => {
  const o = await startOrigin(t)
  o.route('/p', (_q, res, n) => res.writeHead(200, { 'cache-control': 'max-age=60' }).end(`p${n}`))
  const p = await proxyFor(t, o, ', purgeFrom: [127.0.0.1/32]')
  await get(p, '/p')
  const purge = await get(p, '/p', {}, 'PURGE')
  t.equal(purge.status, 200)
  t.match(purge.body, /purged 1 entry/)
  t.equal((await get(p, '/p')).body, 'p2')
  const other = await proxyFor(t, o, ', purgeFrom: [10.0.0.0/8]')
  const denied = await get(other, '/p', {}, 'PURGE')
  t.equal(denied.status, 405)
  t.equal(denied.headers['x-switchyard-error'], 'LB_ERR_PURGE_FORBIDDEN')
})

t.test('a purge while the URL is being fetched keeps that fetch\'s answer out of the cache', async (t) => {
  const o = await startOrigin(t)
  // The origin takes each request, then answers only when the test lets it.
  const held: Array<() => void> = []
  let arrived: () => void = () => {}
  const route = (path: string) => o.route(path, (_q, res, n) => {
    held.push(() => res.writeHead(200, { 'cache-control': 'max-age=300', 'cache-tag': 'news' }).end(`${path} v${n}`))
    arrived()
  })
  route('/f')
  route('/g')
  const p = await proxyFor(t, o, ', purgeFrom: [127.0.0.1/32]')
  /** Sends a GET and resolves once the origin holds it (or it was answered without the origin); `answer` is its response. */
  const fetching = async (path: string) => {
    const reached = new Promise<void>((resolve) => { arrived = resolve })
    const answer = get(p, path)
    await Promise.race([reached, answer])
    return { answer }
  }

  const first = await fetching('/f')
  const purge = await get(p, '/f', {}, 'PURGE')
  t.equal(purge.status, 404, 'nothing stored yet')
  held.shift()!()
  const firstAnswer = await first.answer
  t.equal(firstAnswer.body, '/f v1', 'the client that asked still gets its answer')
  t.equal(firstAnswer.headers['cache-status'], 'switchyard; fwd=uri-miss; fwd-status=200; detail="purged during the fetch"',
    'the purge came before its head: it does not say stored')
  t.match(p.app.cacheStats(), { stored: 0, notStored: 1 })
  const after = await fetching('/f')
  held.shift()?.()
  const a = await after.answer
  t.equal(a.body, '/f v2', 'the purge was not undone: the next request went to the origin')
  t.match(a.headers['cache-status'], /fwd=uri-miss/)
  t.equal((await get(p, '/f')).body, '/f v2', 'and its answer, fetched after the purge, is stored')
  t.equal(o.hits.get('/f'), 2)

  // A tag purge (the admin API's) acts the same on the fetches it matches.
  const tagged = await fetching('/g')
  p.app.state.cache!.purgeTag('news')
  held.shift()!()
  const taggedAnswer = await tagged.answer
  t.equal(taggedAnswer.body, '/g v1')
  t.match(taggedAnswer.headers['cache-status'], /detail="purged during the fetch"/)
  t.notMatch(taggedAnswer.headers['cache-status'], /stored/)
  const again = await fetching('/g')
  held.shift()?.()
  t.equal((await again.answer).body, '/g v2')
  t.equal(o.hits.get('/g'), 2)
})

/**
 * A proxy (PURGE from loopback) in front of `path`, whose first answer sends
 * its head and a first byte at once and the rest (`v1`) only on `finish()`,
 * so a purge can land between the two; later answers are `v<n>`. `first` is
 * that first response, its head read.
 */
async function heldFirstFetch (t: Test, path: string): Promise<{ o: Origin, p: RunningProxy, first: http.IncomingMessage, finish: () => void }> {
  const o = await startOrigin(t)
  let finish: () => void = () => {}
  o.route(path, (_q, res, n) => {
    res.writeHead(200, { 'cache-control': 'max-age=300', 'content-length': '2' })
    if (n > 1) return res.end(`v${n}`)
    res.write('v')
    finish = () => res.end('1')
  })
  const p = await proxyFor(t, o, ', purgeFrom: [127.0.0.1/32]')
  const first = await new Promise<http.IncomingMessage>((resolve, reject) => {
    http.get(`${p.url('web')}${path}`, { agent: false }, resolve).on('error', reject)
  })
  return { o, p, first, finish: () => finish() }
}

t.test('a request that waits on a fetch a purge overtook does not get that fetch\'s answer', async (t) => {
  const { o, p, first, finish } = await heldFirstFetch(t, '/h')
  t.match(first.headers['cache-status'], /stored/, 'its head came before the purge')
  const firstBody = new Promise<string>((resolve) => {
    let body = ''
    first.on('data', (c: Buffer) => { body += c.toString() }).on('end', () => resolve(body))
  })
  t.equal((await get(p, '/h', {}, 'PURGE')).status, 404, 'nothing stored yet')
  // Comes after the purge, and finds v1's fetch still under way.
  const late = get(p, '/h')
  await sleep(300)
  finish()
  t.equal(await firstBody, 'v1', 'the client that asked gets its answer')
  const l = await late
  t.equal(l.body, 'v2', 'the request after the purge does not')
  t.notMatch(l.headers['cache-status'], /collapsed/)
  t.equal(o.hits.get('/h'), 2)
})

t.test('requests that waited on a fetch a purge overtook share one fetch again, not one each in turn', async (t) => {
  const { o, p, first, finish } = await heldFirstFetch(t, '/w')
  first.resume()
  // Waiting on the first fetch before the purge: the purge overtakes their wait too.
  const waiters = Array.from({ length: 4 }, () => get(p, '/w'))
  await sleep(300)
  t.equal((await get(p, '/w', {}, 'PURGE')).status, 404, 'nothing stored yet')
  finish()
  const bodies = (await Promise.all(waiters)).map((r) => r.body)
  t.equal(o.hits.get('/w'), 2, 'the purged fetch, then one more for all of them')
  t.same(bodies, ['v2', 'v2', 'v2', 'v2'])
})

t.test('purge by URL, prefix and tag removes exactly what it should', async (t) => {
  const o = await startOrigin(t)
  for (const path of ['/docs/a', '/docs/b', '/docsx', '/img/1', '/img/2']) {
    o.route(path, (_q, res) => res.writeHead(200, {
      'cache-control': 'max-age=60',
      'cache-tag': path.startsWith('/img') ? 'images, all' : 'all',
      'surrogate-key': path === '/img/2' ? 'hero' : ''
    }).end(path))
  }
  const p = await proxyFor(t, o)
  for (const path of ['/docs/a', '/docs/b', '/docsx', '/img/1', '/img/2']) await get(p, path)
  const cache = p.app.state.cache!
  const base = `http://127.0.0.1:${p.port('web')}`
  t.equal(cache.purgeUrl(`${base}/docs/a`), 1)
  t.equal(cache.purgePrefix(`${base}/docs/`), 1, 'prefix /docs/ takes /docs/b but not /docsx')
  t.equal(cache.purgeTag('hero'), 1)
  t.equal(cache.purgeTag('images'), 1, 'only /img/1 was left with that tag')
  t.equal(p.app.cacheStats()!.entries, 1, '/docsx remains')
  t.match((await get(p, '/docsx')).headers['cache-status'], /hit/)
})

t.test('targeted cache control (RFC 9213): the first valid field on cache.targetedCacheControl decides, and is passed on', async (t) => {
  const o = await startOrigin(t)
  o.route('/own', (_q, res) => res.writeHead(200, {
    'switchyard-cache-control': 'max-age=60', 'cdn-cache-control': 'no-store', 'cache-control': 'no-store', expires: 'Thu, 01 Jan 1970 00:00:00 GMT'
  }).end('own'))
  o.route('/invalid-first', (_q, res) => res.writeHead(200, {
    'switchyard-cache-control': 'max-age="60"', 'cdn-cache-control': 'no-store', 'cache-control': 'max-age=60'
  }).end('next'))
  o.route('/fallback', (_q, res) => res.writeHead(200, { 'cdn-cache-control': 'max-age=60, &&&', 'cache-control': 'max-age=60' }).end('cc'))
  o.route('/reval', (q, res, n) => {
    if (q.headers['if-none-match'] === '"r1"') return res.writeHead(304, { etag: '"r1"', 'switchyard-cache-control': 'max-age=60' }).end()
    res.writeHead(200, { etag: '"r1"', 'switchyard-cache-control': 'max-age=0', 'cache-control': 'max-age=3600', 'x-n': String(n) }).end('r')
  })
  const p = await proxyFor(t, o, ', targetedCacheControl: [switchyard-cache-control, cdn-cache-control]')

  const own1 = await get(p, '/own')
  t.match(own1.headers['cache-status'], /stored; ttl=60$/, 'Switchyard-Cache-Control beats CDN-Cache-Control, Cache-Control and Expires')
  const own2 = await get(p, '/own')
  t.match(own2.headers['cache-status'], /hit/)
  t.equal(own2.body, 'own')
  t.equal(o.hits.get('/own'), 1)
  t.equal(own2.headers['switchyard-cache-control'], 'max-age=60', 'the targeted fields reach the client unchanged')
  t.equal(own2.headers['cdn-cache-control'], 'no-store')
  t.equal(own2.headers['cache-control'], 'no-store')

  await get(p, '/invalid-first')
  const next = await get(p, '/invalid-first')
  t.equal(o.hits.get('/invalid-first'), 2, 'an invalid first field → the next one on the list (no-store), not Cache-Control')
  t.match(next.headers['cache-status'], /fwd=uri-miss; fwd-status=200; detail="no-store"$/)

  await get(p, '/fallback')
  const cc = await get(p, '/fallback')
  t.match(cc.headers['cache-status'], /hit/, 'no valid targeted field → Cache-Control')
  t.equal(o.hits.get('/fallback'), 1)

  await get(p, '/reval')
  const second = await get(p, '/reval')
  t.equal(o.lastHeaders.get('/reval')?.['if-none-match'], '"r1"', 'max-age=0 in the targeted field: revalidated, Cache-Control max-age ignored')
  t.match(second.headers['cache-status'], /fwd=stale; fwd-status=304/)
  const third = await get(p, '/reval')
  t.match(third.headers['cache-status'], /hit/, 'the 304 refreshed the targeted field: fresh for 60 s')
  t.equal(third.headers['x-n'], '1')
  t.equal(o.hits.get('/reval'), 2)
})
