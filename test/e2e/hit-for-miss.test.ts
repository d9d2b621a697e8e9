// Hit-for-miss: once a URL's answer could not be stored, its concurrent
// requests go upstream side by side instead of queueing behind one fetch they
// cannot share; the first answer that can be stored ends it. Checked by what
// the origin sees at once (a barrier that answers when N requests are in),
// not by the clock.
import http from 'node:http'
import t, { type Test } from 'tap'
import { request } from 'undici'
import { startProxy, type RunningProxy } from '../helpers/proxy.js'
import { startServer } from '../helpers/origin.js'

interface Barrier {
  readonly port: number
  /** Most requests the origin held at once. */
  maxInFlight (): number
  /** How many requests each release answered together, in order. */
  batches (): number[]
  reset (): void
  /** What the next answers say about caching. */
  cacheControl: string | undefined
}

/**
 * An origin that holds each request until `n` are in (or 1.5 s passed), then
 * answers them all: 206 to a Range, 304 to If-None-Match: "v", else 200
 * (`/no-store` with no-store, others with `cacheControl`).
 */
async function barrierOrigin (t: Test, n: number): Promise<Barrier> {
  let held: Array<[http.IncomingMessage, http.ServerResponse]> = []
  let max = 0
  let batches: number[] = []
  let timer: NodeJS.Timeout | undefined
  const b: Barrier = {
    port: 0,
    maxInFlight: () => max,
    batches: () => batches,
    reset: () => { max = 0; batches = [] },
    cacheControl: undefined
  }
  const release = (): void => {
    clearTimeout(timer)
    timer = undefined
    const now = held
    held = []
    if (now.length > 0) batches.push(now.length)
    for (const [req, res] of now) {
      const cc = req.url === '/no-store' ? 'no-store' : b.cacheControl
      const fields = { 'content-type': 'text/plain', ...(cc === undefined ? {} : { 'cache-control': cc }) }
      if (req.headers['if-none-match'] === '"v"') res.writeHead(304, fields).end()
      else if (req.headers.range !== undefined) res.writeHead(206, { ...fields, 'content-range': 'bytes 0-1/7' }).end('dy')
      else res.writeHead(200, fields).end('dynamic')
    }
  }
  const server = await startServer(t, (req, res) => {
    req.resume()
    held.push([req, res])
    max = Math.max(max, held.length)
    if (held.length >= n) release()
    else timer ??= setTimeout(release, 1500)
  })
  t.teardown(() => clearTimeout(timer))
  return Object.assign(b, { port: server.port })
}

async function proxy (t: Test, port: number, cache = ''): Promise<RunningProxy> {
  return startProxy(t, `
listeners: [{ name: web, bind: "127.0.0.1:0" }]
cache: { ${cache} }
routes: [{ backend: origin }]
backends: { origin: { retries: { attempts: 0 }, servers: [{ url: "http://127.0.0.1:${port}" }] } }
`)
}

const wave = async (p: RunningProxy, n: number): Promise<string[]> =>
  Promise.all(Array.from({ length: n }, async () => {
    const res = await request(p.url('web') + '/dynamic')
    await res.body.text()
    return String(res.headers['cache-status'])
  }))

t.test('after an answer that cannot be stored, concurrent requests for that URL go upstream side by side', async (t) => {
  const origin = await barrierOrigin(t, 10)
  const p = await proxy(t, origin.port)
  await wave(p, 1)
  t.equal(p.app.state.cache!.stats().notStored, 1, 'no lifetime, no validator: not stored')
  origin.reset()
  const statuses = await wave(p, 10)
  t.equal(origin.maxInFlight(), 10, 'all 10 reached the origin together (none waited for another\'s fetch)')
  t.same(origin.batches(), [10])
  t.ok(statuses.every((s) => /fwd=uri-miss; fwd-status=200/.test(s)), 'each is a plain miss')
  t.equal(p.app.state.cache!.counters.collapsed, 0)

  // The origin starts allowing caching: the next answer is stored, and the URL collapses and hits again.
  origin.cacheControl = 'max-age=60'
  await wave(p, 1)
  origin.reset()
  const hits = await wave(p, 10)
  t.ok(hits.every((s) => /; hit;/.test(s)), 'stored, then served from the cache')
  t.equal(origin.maxInFlight(), 0)
})

t.test('hitForMiss: 0 keeps collapsing every miss', async (t) => {
  const origin = await barrierOrigin(t, 10)
  const p = await proxy(t, origin.port, 'hitForMiss: 0')
  await wave(p, 1)
  origin.reset()
  await wave(p, 10)
  t.same(origin.batches(), [1, 9], 'one fetch first, alone: the others waited for it, then went themselves')
  // They waited, but each went upstream in the end: misses, not collapsed answers.
  t.equal(p.app.state.cache!.counters.collapsed, 0)
  t.equal(p.app.state.cache!.counters.misses, 11, 'the first request, then all ten of the wave')
})

t.test('a HEAD answer does not mark the URL (it can never be stored)', async (t) => {
  const origin = await barrierOrigin(t, 10)
  origin.cacheControl = 'max-age=60'
  const p = await proxy(t, origin.port)
  const head = await request(p.url('web') + '/dynamic', { method: 'HEAD' })
  await head.body.text()
  origin.reset()
  const statuses = await wave(p, 10)
  t.same(origin.batches(), [1], 'the GETs collapse onto one fetch (not marked by the HEAD)')
  t.equal(statuses.filter((s) => /collapsed/.test(s)).length, 9)
})

t.test('a 304 or 206 to a client\'s own conditional or Range does not mark the URL', async (t) => {
  const origin = await barrierOrigin(t, 10)
  origin.cacheControl = 'max-age=60'
  const p = await proxy(t, origin.port)
  const get = async (path: string, headers: Record<string, string> = {}): Promise<string> => {
    const r = await request(p.url('web') + path, { headers })
    await r.body.text()
    return `${r.statusCode} ${String(r.headers['cache-status'])}`
  }
  // One batch: a Range, a conditional, and a conditional whose 304 says no-store. With
  // If-Unmodified-Since beside If-None-Match they go upstream as sent (If-None-Match alone
  // would fetch the whole response to store it: test/e2e/miss-validators.test.ts).
  const conditional = { 'if-none-match': '"v"', 'if-unmodified-since': 'Mon, 07 Dec 2026 10:00:00 GMT' }
  const own = await Promise.all([get('/range', { range: 'bytes=0-1' }), get('/inm', conditional), get('/no-store', conditional)])
  t.match(own, [/^206 /, /^304 /, /^304 /], 'answers about the request')
  origin.reset()
  const waves = await Promise.all(['/range', '/inm'].flatMap((path) => Array.from({ length: 10 }, async () => get(path))))
  t.same(origin.batches(), [2], 'the plain GETs still collapse onto one fetch per URL')
  t.equal(waves.filter((s) => /collapsed/.test(s)).length, 18)
  // A 304 saying no-store speaks for the URL too: marked as any unstorable answer.
  origin.reset()
  await Promise.all(Array.from({ length: 10 }, async () => get('/no-store')))
  t.same(origin.batches(), [10], 'marked: its GETs go upstream side by side')
})
