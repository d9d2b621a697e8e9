// The Redis panel of the live dashboard against a real proxy, a real
// redis-server and real Chromium: no panel without a `redis` block; with one,
// `up`, then `down` once Redis is stopped and `up` again once it is back, each
// within a few of the page's one-second polls; the shared cache's counters
// after the same request twice; a cluster's workers counted as connected.
// What the page shows is compared with GET /status, the document it polls.
// Needs Chromium like test/e2e/dashboard.test.ts (installed by .ci/run).
import { existsSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import t, { type Test } from 'tap'
import type { Page } from 'playwright-core'
import { request } from 'undici'
import type { RedisStatus } from '../../src/redis/report.js'
import { startChildProxy } from '../helpers/child-proxy.js'
import { CHROMIUM, browserContext, inCI } from '../helpers/chromium.js'
import { startServer } from '../helpers/origin.js'
import { startProxy, type RunningProxy } from '../helpers/proxy.js'
import { startRedis } from '../helpers/redis.js'

const skip = !existsSync(CHROMIUM) && !inCI ? `no browser at ${CHROMIUM}` : false

/** A few polls (one a second) and the time ioredis takes to see a closed or reopened connection. */
const CHANGE_MS = 10_000

async function origin (t: Test): Promise<number> {
  const server = await startServer(t, (req, res) => {
    req.resume()
    res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'public, max-age=60' }).end(`body of ${req.url ?? ''}`)
  })
  return server.port
}

/** A proxy with its admin listener (the dashboard) on a free port, `extra` YAML above its routes. */
async function proxy (t: Test, extra: string): Promise<{ p: RunningProxy, admin: number }> {
  const port = await origin(t)
  const p = await startProxy(t, `
admin: { bind: "127.0.0.1:0" }
listeners: [{ name: web, bind: "127.0.0.1:0" }]
${extra}
routes: [{ name: all, backend: app }]
backends:
  app:
    servers: [{ name: a, url: "http://127.0.0.1:${port}" }]
`)
  return { p, admin: p.app.adminAddress()!.port }
}

async function status (admin: number): Promise<{ redis?: RedisStatus }> {
  return await (await request(`http://127.0.0.1:${admin}/status`)).body.json() as { redis?: RedisStatus }
}

async function openDashboard (t: Test, admin: number): Promise<Page> {
  const page = await (await browserContext(t)).newPage()
  page.on('pageerror', (err) => { t.fail(`page error: ${err.message}`) })
  page.on('console', (msg) => {
    if (msg.type() === 'error' && (msg.text().startsWith('dashboard:') || /Content Security Policy/i.test(msg.text()))) t.fail(`console: ${msg.text()}`)
  })
  await page.goto(`http://127.0.0.1:${admin}/`)
  return page
}

/** The values of a `dl.kv` of the panel by `data-stat`. */
async function stats (page: Page, box: string): Promise<Record<string, string>> {
  return Object.fromEntries(await page.locator(`#${box} > div`).evaluateAll((els) =>
    els.map((e) => [e.getAttribute('data-stat') ?? '', e.querySelector('dd')?.textContent ?? ''])))
}

async function screenshot (t: Test, page: Page, name: string): Promise<void> {
  const dir = process.env.TAP_ARTIFACTS ?? path.join(os.tmpdir(), 'switchyard-test-artifacts')
  await mkdir(dir, { recursive: true })
  const file = path.join(dir, `${name}.png`)
  await page.screenshot({ path: file, fullPage: true })
  t.comment(`screenshot: ${file}`)
}

t.test('no `redis` block: /status has no `redis`, and there is no Redis panel', { skip }, async (t) => {
  const { admin } = await proxy(t, '')
  const page = await openDashboard(t, admin)
  // The page has rendered a /status once it shows the backend's server.
  // Its servers have no health check: the row says so (data-state nocheck), it is not "up".
  await page.locator('[data-server^="app/"][data-state="nocheck"]').waitFor()
  t.notOk('redis' in await status(admin), '/status has no redis')
  t.equal(await page.locator('#redis-panel').isHidden(), true, 'the panel is not shown')
})

t.test('a `redis` block: up; down after Redis stops; up again after it returns', { skip }, async (t) => {
  const redis = await startRedis(t)
  const { admin } = await proxy(t, `redis: { url: "${redis.url}", timeout: 500ms, maxReconnectDelay: 200ms }`)
  const page = await openDashboard(t, admin)
  const state = page.locator('#redis-state')

  await page.locator('#redis-state[data-state="up"]').waitFor({ timeout: CHANGE_MS })
  t.equal(await state.textContent(), 'up')
  const up = (await status(admin)).redis
  t.equal(up?.state, 'up', '/status agrees')
  t.equal(await page.locator('#redis-target').textContent(), up?.target, 'the target /status sends')
  t.match(up?.target, new RegExp(`127\\.0\\.0\\.1:${redis.port}`))
  t.same(await stats(page, 'redis-stats'), {
    connected: '1/1', transitions: '1', operations: '0', errors: '0', timeouts: '0', down: '0', shed: '0', latency: '\u2014'
  }, 'one process connected, one transition, no operations yet (no shared cache)')
  t.equal(await page.locator('#redis-shared-box').isHidden(), true, 'no `cache.shared`: no shared-cache counters')

  await redis.stop()
  await page.locator('#redis-state[data-state="down"]').waitFor({ timeout: CHANGE_MS })
  t.equal(await state.textContent(), 'down')
  t.equal((await status(admin)).redis?.state, 'down', '/status agrees')
  t.equal((await stats(page, 'redis-stats')).connected, '0/1')
  await screenshot(t, page, 'dashboard-redis-real-down')

  await redis.start()
  await page.locator('#redis-state[data-state="up"]').waitFor({ timeout: CHANGE_MS })
  t.equal(await state.textContent(), 'up')
  const back = (await status(admin)).redis
  t.equal(back?.state, 'up', '/status agrees')
  await page.locator('#redis-stats [data-stat="transitions"] dd', { hasText: String(back?.transitions) }).waitFor({ timeout: CHANGE_MS })
  t.ok((back?.transitions ?? 0) >= 3, `up, down, up: ${back?.transitions} transitions, as the page shows`)
})

t.test('`cache.shared`: the shared cache\'s counters after the same request twice', { skip }, async (t) => {
  const redis = await startRedis(t)
  const dir = t.testdir({ 'k1.key': Buffer.alloc(32, 7).toString('base64') })
  const { p, admin } = await proxy(t, `redis: { url: "${redis.url}", timeout: 500ms, maxReconnectDelay: 200ms }
cache: { shared: { encryptionKeys: [{ id: k1, file: "${dir}/k1.key" }] } }`)
  const page = await openDashboard(t, admin)
  await page.locator('#redis-state[data-state="up"]').waitFor({ timeout: CHANGE_MS })
  await page.locator('#redis-shared-box').waitFor()
  t.same(await stats(page, 'redis-shared'), {
    hits: '0', misses: '0', ratio: '\u2014', stored: '0', superseded: '0', rejected: '0', collapsed: '0', remotePurges: '0', unavailable: '0'
  }, 'the counters, all zero before any request')

  // The first asks Redis, fetches from the origin and stores there; the second is a hit in this instance's memory.
  const cacheStatus: string[] = []
  for (let i = 0; i < 2; i++) {
    const res = await request(p.url('web') + '/catalog/1', { headers: { host: 'shop.test' } })
    await res.body.text()
    cacheStatus.push(String(res.headers['cache-status'] ?? ''))
  }
  t.match(cacheStatus[0], /fwd=uri-miss; fwd-status=200; stored/)
  t.match(cacheStatus[1], /; hit; ttl=\d+$/)
  // The store in Redis is not awaited by the request: it shows on a later poll.
  await page.locator('#redis-shared [data-stat="stored"] dd', { hasText: /^1$/ }).waitFor({ timeout: CHANGE_MS })
  const shown = await stats(page, 'redis-shared')
  const shared = (await status(admin)).redis?.shared
  t.same(shown, {
    hits: String(shared?.hits), misses: String(shared?.misses), ratio: '0%', stored: String(shared?.stored), superseded: String(shared?.superseded), rejected: String(shared?.rejected),
    collapsed: String(shared?.collapsed), remotePurges: String(shared?.remotePurges), unavailable: String(shared?.unavailable)
  }, 'what /status has')
  t.same(shared, { hits: 0, misses: 1, stored: 1, superseded: 0, rejected: 0, collapsed: 0, remotePurges: 0, unavailable: 0 }, 'one miss in Redis, one store')
  const ops = await page.locator('tr[data-op]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-op')))
  t.ok(ops.includes('cache_lookup') && ops.includes('cache_store'), `the operations it took: ${ops.join(', ')}`)
  t.equal(await page.locator('#redis-stats [data-stat="errors"]').getAttribute('data-tone'), null, 'no errors, nothing highlighted')
  await screenshot(t, page, 'dashboard-redis-real-shared')
})

t.test('a cluster (workers: 2): both workers connected, 2/2', { skip }, async (t) => {
  const redis = await startRedis(t)
  const port = await origin(t)
  const cluster = await startChildProxy(t, `
workers: 2
admin: { bind: "127.0.0.1:0" }
accessLog: false
listeners: [{ name: web, bind: "127.0.0.1:0" }]
redis: { url: "${redis.url}", maxReconnectDelay: 200ms }
routes: [{ backend: app }]
backends: { app: { servers: [{ url: "http://127.0.0.1:${port}" }] } }
`)
  const page = await openDashboard(t, cluster.adminPort)
  await page.locator('#redis-stats [data-stat="connected"] dd', { hasText: '2/2' }).waitFor({ timeout: CHANGE_MS })
  t.equal(await page.locator('#redis-state').getAttribute('data-state'), 'up')
  t.equal((await status(cluster.adminPort)).redis?.connected, '2/2', '/status agrees')
})
