// The admin API of a real running proxy: metrics that match the traffic sent,
// status that follows health, purge and lookup by URL, readiness.
import t, { type Test } from 'tap'
import { request } from 'undici'
import { parsePrometheusText } from '../helpers/prometheus-parser.js'
import { startProxy } from '../helpers/proxy.js'
import { closedPort, startServer } from '../helpers/origin.js'

async function origin (t: Test): Promise<{ port: number; health: { status: number } }> {
  const health = { status: 200 }
  const { port } = await startServer(t, (req, res) => {
    req.resume()
    if (req.url === '/healthz') return res.writeHead(health.status).end()
    if (req.url?.startsWith('/cached') === true) return res.writeHead(200, { 'cache-control': 'max-age=60', 'cache-tag': 'pics' }).end('cached')
    res.writeHead(req.url === '/boom' ? 500 : 200).end('ok')
  })
  return { port, health }
}

t.test('metrics match a known request mix; status follows a health transition; purge and lookup', async (t) => {
  const o = await origin(t)
  const dead = await closedPort()
  const p = await startProxy(t, `
admin: { bind: "127.0.0.1:0" }
listeners: [{ name: web, bind: "127.0.0.1:0" }]
cache: {}
routes:
  - { name: main, match: { host: app.test }, backend: app }
  - { name: broken, match: { host: broken.test }, backend: gone }
backends:
  app:
    healthCheck: { interval: 500ms, timeout: 450ms, rise: 1, fall: 2, jitter: 0 }
    servers: [{ name: s1, url: "http://127.0.0.1:${o.port}" }]
  gone:
    retries: { attempts: 0 }
    servers: [{ name: d1, url: "http://127.0.0.1:${dead}" }]
`)
  const proxy = p.url('web')
  const admin = `http://127.0.0.1:${p.app.adminAddress()!.port}`
  const send = async (host: string, path: string) => {
    const r = await request(`${proxy}${path}`, { headers: { host } })
    await r.body.text()
    return r.statusCode
  }
  // The mix: 5 × 200, 2 × 500 from the origin, 3 × 404 no route, 2 × 502 dead server, 2 cache (miss + hit).
  for (let i = 0; i < 5; i++) t.equal(await send('app.test', '/ok'), 200)
  for (let i = 0; i < 2; i++) t.equal(await send('app.test', '/boom'), 500)
  for (let i = 0; i < 3; i++) t.equal(await send('nowhere.test', '/'), 404)
  for (let i = 0; i < 2; i++) t.equal(await send('broken.test', '/'), 502)
  for (let i = 0; i < 2; i++) t.equal(await send('app.test', '/cached/a'), 200)

  const m = await request(`${admin}/metrics`)
  t.match(m.headers['content-type'], /text\/plain; version=0\.0\.4/)
  const families = parsePrometheusText(await m.body.text())
  // Sum over every series whose labels include these (a cache hit has no server label, for instance).
  const value = (family: string, labels: Record<string, string>, sample = family): number => {
    const f = families.find((x) => x.name === family)
    const s = f?.samples.filter((x) => x.name === sample && Object.entries(labels).every(([k, v]) => x.labels[k] === v)) ?? []
    return s.length === 0 ? NaN : s.reduce((n, x) => n + x.value, 0)
  }
  t.equal(value('switchyard_requests_total', { route: 'main', code_class: '2xx' }), 7, '5 ok + 2 cache')
  t.equal(value('switchyard_requests_total', { route: 'main', code_class: '5xx' }), 2)
  t.equal(value('switchyard_requests_total', { route: '(none)', code_class: '4xx' }), 3, 'no-route requests')
  t.equal(value('switchyard_requests_total', { route: 'broken', code_class: '5xx' }), 2)
  t.equal(value('switchyard_upstream_errors_total', { backend: 'gone', code: 'LB_ERR_UPSTREAM_CONNECT' }), 2)
  t.equal(value('switchyard_cache_hits_total', {}), 1)
  t.equal(value('switchyard_server_up', { backend: 'app', server: 's1' }), 1)
  t.equal(value('switchyard_request_duration_seconds', { route: 'main' }, 'switchyard_request_duration_seconds_count'), 9, 'latency summary counts the route')
  t.ok(families.some((f) => f.name === 'switchyard_request_duration_seconds' && f.type === 'histogram'))

  // Health transition shows in /status and in metrics.
  o.health.status = 503
  let down = false
  for (let i = 0; i < 100 && !down; i++) {
    const st = await (await request(`${admin}/status`)).body.json() as { backends: { name: string; shards: { servers: { name: string; healthy: boolean }[] }[] }[] }
    down = st.backends.find((b) => b.name === 'app')?.shards[0]?.servers[0]?.healthy === false
    if (!down) await new Promise((resolve) => setTimeout(resolve, 50))
  }
  t.ok(down, '/status shows the server down')
  const after = parsePrometheusText(await (await request(`${admin}/metrics`)).body.text())
  const trans = after.find((f) => f.name === 'switchyard_health_transitions_total')?.samples.find((s) => s.labels.to === 'down')
  t.equal(trans?.value, 1, 'the transition is counted')

  // Cache lookup and purge by URL and tag through the admin API.
  const url = `http://app.test/cached/a`
  const look = await request(`${admin}/cache/lookup?url=${encodeURIComponent(url)}`)
  t.equal(look.statusCode, 200)
  t.match(await look.body.json(), { stored: true })
  const purge = await request(`${admin}/cache/purge`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ tag: 'pics' }) })
  t.same(await purge.body.json(), { purged: 1 })
  t.equal((await request(`${admin}/cache/lookup?url=${encodeURIComponent(url)}`)).statusCode, 404, 'gone after the purge')

  t.equal((await request(`${admin}/healthz`)).statusCode, 200)
  const reload = await request(`${admin}/reload`, { method: 'POST', headers: { 'content-type': 'application/json' } })
  t.equal(reload.statusCode, 400, 'no config file behind an in-process app')
  t.match(await reload.body.json(), { ok: false })
  const page = await request(`${admin}/`)
  t.match(await page.body.text(), /<html/i)
})

t.test('access log: one JSON line per request with the decision fields', async (t) => {
  const o = await origin(t)
  const dir = t.testdir({})
  const file = `${dir}/access.log`
  const p = await startProxy(t, `
accessLog: { path: ${JSON.stringify(file)} }
listeners: [{ name: web, bind: "127.0.0.1:0" }]
routes: [{ name: main, match: { pathPrefix: / }, backend: app }]
backends:
  app:
    servers: [{ name: s1, url: "http://127.0.0.1:${o.port}" }]
`)
  for (let i = 0; i < 3; i++) await (await request(`${p.url('web')}/ok?i=${i}`)).body.text()
  await p.app.stop()
  const { readFileSync } = await import('node:fs')
  const lines = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>)
  t.equal(lines.length, 3)
  t.match(lines[0], { method: 'GET', path: '/ok', status: 200, route: 'main', backend: 'app', server: 's1', client: '127.0.0.1' })
  t.type(lines[0]!.total_ms, 'number')
  t.type(lines[0]!.upstream_ms, 'number')
})
