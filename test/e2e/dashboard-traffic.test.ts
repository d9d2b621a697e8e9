// The dashboard from real traffic in Chromium (issue 14, item 8): a real
// proxy, an origin that answers 200 and one that answers 500, a cached route,
// a request no route matches, an open client connection. Checked on the page:
// the routes' MATCH column, listener ports and connections, per-server
// responses by status class, request and error rates, latency, time since the last
// state change, 4xx in the error figures, the cache hit ratio per route and
// since start (stale answers served from the cache, not counted as hits), and
// a layout without horizontal overflow at 800 px.
import { existsSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import t from 'tap'
import { request } from 'undici'
import { spawnCli } from '../helpers/cli.js'
import { CHROMIUM, browserContext, inCI } from '../helpers/chromium.js'
import { startServer } from '../helpers/origin.js'

const skip = !existsSync(CHROMIUM) && !inCI ? `no browser at ${CHROMIUM}` : false

t.test('the dashboard shows what real traffic did', { skip }, async (t) => {
  // /static/stale… is stale at once: its second request is answered stale (stale-while-revalidate).
  const ok = await startServer(t, (req, res) => {
    res.writeHead(200, { 'cache-control': req.url?.includes('stale') === true ? 'max-age=0, stale-while-revalidate=600' : 'public, max-age=600' }).end('ok')
  })
  const bad = await startServer(t, (_req, res) => { res.writeHead(500, { 'cache-control': 'no-store' }).end('bad') })
  const dir = t.testdir({})
  const file = path.join(dir, 'config.yaml')
  writeFileSync(file, [
    'workers: 1',
    'listeners: [{ name: web, bind: "127.0.0.1:0" }]',
    'accessLog: false',
    'admin: { bind: "127.0.0.1:0" }',
    'cache: {}',
    'routes:',
    '  - { name: static, match: { host: shop.test, pathPrefix: /static/ }, backend: files }',
    '  - { name: api, match: { host: shop.test, pathPrefix: /api/, methods: [GET, POST] }, backend: app, cache: false }',
    'backends:',
    '  files:',
    `    servers: [{ name: f1, url: "${ok.url}" }]`,
    '  app:',
    '    retries: { attempts: 0 }',
    `    servers: [{ name: good, url: "${ok.url}" }, { name: broken, url: "${bad.url}" }]`,
    ''
  ].join('\n'))
  const proc = spawnCli(t, ['start', file])
  const adminPort = (await proc.waitForLog((l) => l.msg === 'admin: listening')).port as number
  const port = (await proc.waitForLog((l) => l.msg === 'listening')).port as number
  const admin = `http://127.0.0.1:${String(adminPort)}`
  const get = async (p: string, host = 'shop.test'): Promise<number> => {
    const res = await request(`http://127.0.0.1:${String(port)}${p}`, { headers: { host } })
    await res.body.text()
    return res.statusCode
  }
  for (let i = 0; i < 4; i++) t.equal(await get('/static/a.css'), 200)
  for (let i = 0; i < 2; i++) t.equal(await get('/static/stale.css'), 200)
  const statuses: number[] = []
  for (let i = 0; i < 6; i++) statuses.push(await get('/api/x'))
  t.same(statuses.sort(), [200, 200, 200, 500, 500, 500], 'round robin: three each')
  t.equal(await get('/x', 'nowhere.test'), 404, 'no route')
  // One client connection held open, for the listener's count.
  const held = net.connect(port, '127.0.0.1')
  t.teardown(() => { held.destroy() })
  await new Promise((resolve) => held.once('connect', resolve))

  const page = await (await browserContext(t)).newPage()
  page.on('pageerror', (err) => { t.fail(`page error: ${err.message}`) })
  await page.setViewportSize({ width: 800, height: 1000 })
  await page.goto(`${admin}/`)

  // Routes: MATCH from /status's host, pathPrefix and methods; the hit ratio per route.
  const staticRow = page.locator('#routes tr', { hasText: 'static' })
  await staticRow.waitFor()
  t.equal(await staticRow.locator('td').nth(1).textContent(), 'shop.test /static/*')
  t.equal(await page.locator('#routes tr', { hasText: 'api' }).locator('td').nth(1).textContent(), 'shop.test /api/* GET,POST')
  await staticRow.locator('td', { hasText: '66.7%' }).waitFor()
  t.pass('static: 2 misses, 3 hits and 1 stale answer = 66.7% served from the cache')
  // Since start, the same ratio: stale answers count as served (they are not hits).
  await page.locator('#t-hit-hint', { hasText: 'lifetime 66.7%' }).waitFor()
  t.pass('lifetime hit ratio 66.7%')
  t.equal(await page.locator('#routes tr', { hasText: 'api' }).locator('td').nth(5).textContent(), 'off', 'a route without cache says so')

  // Listeners: port and open connections.
  const chip = page.locator('#listeners .chip')
  await chip.filter({ hasText: / [1-9]\d* conn$/ }).waitFor()
  t.match(await chip.textContent(), new RegExp(`web 127\\.0\\.0\\.1:${String(port)} · http · [1-9]\\d* conn`))

  // 4xx in the error figures.
  await page.locator('#t-err-hint', { hasText: '1 4xx' }).waitFor()
  t.match(await page.locator('#t-err-hint').textContent(), /3 5xx · 1 4xx since start/)

  // Per server: responses by class since start.
  const good = page.locator('tr.server[data-server="app/default/good"]')
  const broken = page.locator('tr.server[data-server="app/default/broken"]')
  await broken.locator('.srv-classes', { hasText: '0 / 0 / 0 / 0 / 3' }).waitFor()
  t.equal(await good.locator('.srv-classes').textContent(), '0 / 3 / 0 / 0 / 0')
  t.equal(await broken.locator('.srv-changed').textContent(), '\u2014', 'no change of state yet')

  // Rates between two polls: traffic until the page has seen some on each server.
  let traffic = true
  const load = (async () => { while (traffic) await get('/api/x') })()
  try {
    await broken.locator('.srv-err', { hasText: '100%' }).waitFor()
    await good.locator('.srv-err', { hasText: '0%' }).waitFor()
    await good.locator('.srv-rps', { hasText: /^[1-9]/ }).waitFor()
    await good.locator('.srv-latency', { hasText: / ms$/ }).waitFor()
  } finally {
    traffic = false
    await load
  }
  t.pass('broken: 100% errors; good: 0%, a request rate and a latency, between two polls')

  // Time since the last state change.
  await request(`${admin}/servers/app/broken`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ state: 'maint' }) })
  await broken.locator('.srv-changed', { hasText: 'ago' }).waitFor()
  t.match(await broken.locator('.srv-changed').textContent(), /^\d+s ago$/)

  // 800 px: nothing wider than the window (wide tables scroll inside their card).
  const overflow = await page.evaluate('document.documentElement.scrollWidth - document.documentElement.clientWidth')
  t.equal(overflow, 0, 'no horizontal scrolling at 800 px')

  proc.child.kill('SIGTERM')
  t.equal(await proc.exited, 0)
})
