// What the cache's own upstream exchanges and its stale answers do to
// /metrics, through a real proxy, its admin listener and a real origin:
// every response head the origin sends is counted for its server (a
// background refresh, a 304 revalidation answered from the stored entry), a
// refresh that fails is an upstream error and has its own access-log line,
// and a stale answer is counted as stale served, never as a (fresh) hit.
import { readFileSync } from 'node:fs'
import path from 'node:path'
import t, { type Test } from 'tap'
import { request } from 'undici'
import { startServer } from '../helpers/origin.js'
import { eventually } from '../helpers/poll.js'
import { parsePrometheusText, type ParsedFamily } from '../helpers/prometheus-parser.js'
import { startProxy, type RunningProxy } from '../helpers/proxy.js'

type Metrics = Map<string, ParsedFamily>

async function setup (t: Test, handler: Parameters<typeof startServer>[1], accessLog = 'false') {
  const origin = await startServer(t, handler)
  const p = await startProxy(t, `
admin: { bind: "127.0.0.1:0" }
accessLog: ${accessLog}
listeners: [{ name: web, bind: "127.0.0.1:0" }]
cache: { maxBytes: 8MiB }
routes:
  - { name: r, match: { pathPrefix: / }, backend: b }
backends:
  b:
    retries: { attempts: 0 }
    servers: [{ name: s1, url: "${origin.url}" }]
`)
  return { origin, p }
}

async function get (p: RunningProxy, path: string) {
  const r = await request(`${p.url('web')}${path}`)
  return { status: r.statusCode, headers: r.headers, body: await r.body.text() }
}

async function scrape (p: RunningProxy): Promise<Metrics> {
  const a = p.app.adminAddress()!
  const res = await request(`http://127.0.0.1:${String(a.port)}/metrics`)
  return new Map(parsePrometheusText(await res.body.text()).map((f) => [f.name, f]))
}

/** The sum of family `name`'s samples named `sample` (default: the family) whose labels include `labels`. */
function value (m: Metrics, name: string, labels: Record<string, string> = {}, sample = name): number {
  const f = m.get(name)
  if (f === undefined) return 0
  return f.samples.filter((s) => s.name === sample && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((n, s) => n + s.value, 0)
}

const serverResponses = (m: Metrics): number => value(m, 'switchyard_server_upstream_responses_total', { backend: 'b', server: 's1' })
const upstreamCount = (m: Metrics): number => value(m, 'switchyard_upstream_duration_seconds', { route: 'r' }, 'switchyard_upstream_duration_seconds_count')
const backendUpstreamCount = (m: Metrics): number =>
  value(m, 'switchyard_backend_upstream_duration_seconds', { backend: 'b' }, 'switchyard_backend_upstream_duration_seconds_count')

/** Scrapes until `check` holds (the refresh ends after the stale answer went out); the last scrape. */
async function scrapeUntil (p: RunningProxy, check: (m: Metrics) => boolean): Promise<Metrics> {
  let m = await scrape(p)
  for (let i = 0; i < 150 && !check(m); i++) {
    await new Promise((resolve) => setTimeout(resolve, 20))
    m = await scrape(p)
  }
  return m
}

t.test('a stale-while-revalidate answer is stale served, not a hit; its refresh is the server\'s exchange, not a request', async (t) => {
  let heads = 0
  const { p } = await setup(t, (req, res) => {
    heads++
    // Stale at once (max-age=0): the second request is answered stale and refreshed in the background, which revalidates.
    if (req.headers['if-none-match'] === '"v1"') return res.writeHead(304, { etag: '"v1"', 'cache-control': 'max-age=0, stale-while-revalidate=60' }).end()
    res.writeHead(200, { etag: '"v1"', 'cache-control': 'max-age=0, stale-while-revalidate=60' }).end('one')
  })
  t.equal((await get(p, '/swr')).headers['cache-status'], 'switchyard; fwd=uri-miss; fwd-status=200; stored; ttl=0')
  const stale = await get(p, '/swr')
  t.match(stale.headers['cache-status'], /hit; ttl=-?\d+; detail="stale-while-revalidate"/)
  t.ok(await eventually(() => heads === 2), 'the origin answered the background refresh')

  const m = await scrapeUntil(p, (m) => serverResponses(m) === 2)
  t.equal(value(m, 'switchyard_cache_hits_total'), 0, 'no fresh hit')
  t.equal(value(m, 'switchyard_cache_stale_served_total'), 1, 'one stale answer')
  t.equal(value(m, 'switchyard_cache_requests_total', { result: 'stale' }), 1)
  t.equal(value(m, 'switchyard_cache_requests_total', { result: 'hit' }), 0)
  t.same({ hits: p.app.cacheStats()?.hits, staleServed: p.app.cacheStats()?.staleServed }, { hits: 0, staleServed: 1 }, '/status counts the same')
  t.equal(serverResponses(m), heads, 'every head the origin sent is counted for its server, the refresh\'s too')
  t.equal(upstreamCount(m), heads, 'the route\'s upstream latency counts the refresh')
  t.equal(backendUpstreamCount(m), heads, 'so does the backend\'s')
  t.equal(value(m, 'switchyard_requests_total'), 2, 'the refresh is no client\'s request')
  t.equal(value(m, 'switchyard_cache_revalidations_total', { status: '304' }), 1, 'the refresh revalidated with a 304')
})

t.test('a fresh hit is a hit', async (t) => {
  const { p } = await setup(t, (_req, res) => { res.writeHead(200, { 'cache-control': 'max-age=60' }).end('fresh') })
  await get(p, '/f')
  t.match((await get(p, '/f')).headers['cache-status'], /^switchyard; hit; ttl=\d+$/)
  const m = await scrape(p)
  t.equal(value(m, 'switchyard_cache_hits_total'), 1)
  t.equal(value(m, 'switchyard_cache_stale_served_total'), 0)
  t.equal(value(m, 'switchyard_cache_requests_total', { result: 'hit' }), 1)
})

t.test('a 304 revalidation answered from the stored entry counts as the server\'s upstream response', async (t) => {
  let heads = 0
  const { p } = await setup(t, (req, res) => {
    heads++
    if (req.headers['if-none-match'] === '"v1"') return res.writeHead(304, { etag: '"v1"', 'cache-control': 'max-age=0' }).end()
    res.writeHead(200, { etag: '"v1"', 'cache-control': 'max-age=0' }).end('one')
  })
  await get(p, '/r')
  const again = await get(p, '/r')
  t.equal(again.body, 'one')
  t.match(again.headers['cache-status'], /fwd=stale; fwd-status=304/)
  t.equal(heads, 2)
  const m = await scrapeUntil(p, (m) => value(m, 'switchyard_requests_total') === 2)
  t.equal(serverResponses(m), 2, 'the 304 is counted for the server')
  t.equal(upstreamCount(m), 2, 'and in the upstream latency')
  t.equal(value(m, 'switchyard_cache_revalidations_total', { status: '304' }), 1)
})

t.test('a background refresh the origin resets is an upstream error, logged as a refresh', async (t) => {
  let heads = 0
  const log = path.join(t.testdir({}), 'access.log')
  const { p } = await setup(t, (req, res) => {
    heads++
    if (heads > 1) return req.socket.destroy()
    res.writeHead(200, { etag: '"v1"', 'cache-control': 'max-age=0, stale-while-revalidate=60' }).end('one')
  }, `{ path: ${log} }`)
  await get(p, '/swr')
  t.equal((await get(p, '/swr')).body, 'one', 'answered stale')
  const m = await scrapeUntil(p, (m) => value(m, 'switchyard_upstream_errors_total', { backend: 'b' }) > 0)
  t.equal(value(m, 'switchyard_upstream_errors_total', { backend: 'b' }), 1, 'the failed refresh is an upstream error')
  t.equal(value(m, 'switchyard_requests_total'), 2, 'and no request')
  const lines = (): Array<Record<string, unknown>> => {
    try {
      return readFileSync(log, 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>)
    } catch {
      return []
    }
  }
  t.ok(await eventually(() => lines().length === 3, 5000), 'two requests and the refresh are logged')
  const refresh = lines().find((l) => l.cache === 'refresh')
  t.match(refresh, { method: 'GET', path: '/swr', cache: 'refresh', route: 'r', backend: 'b', server: 's1', status: 0, error: /^LB_ERR_UPSTREAM/ })
})
