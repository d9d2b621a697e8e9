// The live dashboard in a real browser (system Chromium through
// playwright-core) against the admin listener backed by a fake AdminApi whose
// state the test changes. No timing assertions: the page polls once a second
// and the test waits for the DOM to change (with Playwright's default limits).
//
// Needs /usr/bin/chromium (`apt-get install chromium`; .ci/run installs it),
// or SWITCHYARD_CHROMIUM=/path/to/chromium. Without it the test fails under CI
// (CI set) and is skipped locally. Screenshots go to $TAP_ARTIFACTS, else
// $TMPDIR/switchyard-test-artifacts; their paths are printed as TAP comments.
import { existsSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import t, { type Test } from 'tap'
import type { Page } from 'playwright-core'
import { startAdmin, type AdminApi, type AdminHandle, type PurgeRequest } from '../../src/admin/admin.js'
import type { AdminStatus, WorkerStatusEntry } from '../../src/admin/api.js'
import type { ServerStatus } from '../../src/upstream/backend.js'
import type { RedisStatus } from '../../src/redis/report.js'
import { CHROMIUM, browserContext, inCI } from '../helpers/chromium.js'


type Srv = { -readonly [K in keyof ServerStatus]: ServerStatus[K] }

function server (name: string, port: number): Srv {
  return {
    name, url: `http://127.0.0.1:${port}`, role: 'replica', weight: 1, state: 'up', checked: true, adminState: 'ready', consecutiveFailures: 0, effectiveWeight: 1, maxConn: 0, healthy: true, checkUp: true, ejected: false,
    active: 1, requests: 1200, failures: 2, lastCheck: { ok: true, reason: 'status 200', status: 200 }
  }
}

/** A fake app: a status of the type the real one sends, a snapshot with a few minutes of history. */
function fakeApp () {
  const servers = {
    a1: server('a1', 9101), a2: server('a2', 9102), b1: server('b1', 9103), b2: server('b2', 9104), w1: server('w1', 9201)
  }
  const purges: PurgeRequest[] = []
  const app = {
    servers,
    purges,
    /** Replaces whole documents, for the robustness test. */
    statusOverride: undefined as unknown,
    snapshotOverride: undefined as unknown,
    snapshotFails: false,
    /** A cluster primary's `workers`; undefined: one process, which sends none. */
    workers: undefined as WorkerStatusEntry[] | undefined,
    /** With a `redis` block; undefined: none, and /status sends no `redis`. */
    redis: undefined as RedisStatus | undefined,
    api: undefined as unknown as AdminApi
  }
  app.api = {
    status: () => app.statusOverride ?? ({
      listeners: [{ name: 'https', address: '127.0.0.1', port: 8443, tls: true }, { name: 'http', address: '127.0.0.1', port: 8080, tls: false }],
      routes: [
        { name: 'users', host: '*', pathPrefix: '/users/', methods: [], listeners: [], backend: 'users', cache: true },
        { name: 'web', host: '*', pathPrefix: '/', methods: ['GET', 'HEAD'], listeners: [], backend: 'web', cache: true }
      ],
      backends: [
        {
          name: 'users', algorithm: 'leastConn', active: 4, retries: 1,
          shards: [
            { name: 'a', queued: 0, servers: [servers.a1, servers.a2] },
            { name: 'b', queued: 0, servers: [servers.b1, servers.b2] }
          ]
        },
        { name: 'web', algorithm: 'roundRobin', active: 1, retries: 0, shards: [{ name: 'default', queued: 0, servers: [servers.w1] }] }
      ],
      cache: {
        hits: 900, misses: 100, staleServed: 3, revalidated304: 0, revalidated200: 0, collapsed: 0, stored: 0, notStored: 0,
        invalidations: 0, purges: 0, entries: 42, keys: 40, bytes: 3 * 1024 * 1024, maxBytes: 64 * 1024 * 1024, evictions: 0
      },
      ...(app.workers === undefined ? {} : { workers: app.workers }),
      ...(app.redis === undefined ? {} : { redis: app.redis })
    } satisfies AdminStatus),
    snapshot: () => {
      if (app.snapshotFails) throw new Error('snapshot unavailable')
      if (app.snapshotOverride !== undefined) return app.snapshotOverride
      const now = Date.now()
      const history = []
      for (let i = 299; i >= 0; i--) {
        const wave = Math.sin(i / 20)
        history.push({
          t: now - i * 1000,
          rps: 220 + 60 * wave,
          errors: i % 40 === 0 ? 3 : 0.2,
          hitRatio: 0.85 + 0.1 * wave,
          backends: {
            users: { rps: 150 + 40 * wave, p50: 12 + 3 * wave, p99: 80 + 25 * wave },
            web: { rps: 70 + 20 * wave, p50: 4 + wave, p99: 30 + 8 * wave }
          }
        })
      }
      return { now, history, routes: { users: { rps: 150, p99: 80 } }, backends: {} }
    },
    metrics: () => '',
    reload: async () => ({ ok: true, needsRestart: [] }),
    purge: (what) => {
      purges.push(what)
      return { purged: 3 }
    },
    ready: () => true
  }
  return app
}

async function startAdminFor (t: Test, api: AdminApi, token?: string): Promise<AdminHandle> {
  const h = await startAdmin({ host: '127.0.0.1', port: 0, ...(token === undefined ? {} : { token }) }, api)
  t.teardown(() => h.close())
  return h
}

/** Fails the test on any uncaught page exception, dashboard error log or Content-Security-Policy violation. */
function watchErrors (t: Test, page: Page): void {
  page.on('pageerror', (err) => { t.fail(`page error: ${err.message}`) })
  page.on('console', (msg) => {
    if (msg.type() === 'error' && (msg.text().startsWith('dashboard:') || /Content Security Policy/i.test(msg.text()))) t.fail(`console: ${msg.text()}`)
  })
}

async function screenshot (t: Test, page: Page, name: string): Promise<string> {
  const dir = process.env.TAP_ARTIFACTS ?? path.join(os.tmpdir(), 'switchyard-test-artifacts')
  await mkdir(dir, { recursive: true })
  const file = path.join(dir, `${name}.png`)
  await page.screenshot({ path: file, fullPage: true })
  t.comment(`screenshot: ${file}`)
  return file
}

// The tests' tsconfig has no DOM lib: the browser globals used inside evaluate(), typed by hand.
interface PageGlobals { getComputedStyle (el: unknown): { backgroundColor: string, color: string } }
interface Canvas {
  width: number
  height: number
  getContext (kind: '2d'): { getImageData (x: number, y: number, w: number, h: number): { data: ArrayLike<number> } } | null
}
const bg = (e: unknown): string => (globalThis as unknown as PageGlobals).getComputedStyle(e).backgroundColor
const fg = (e: unknown): string => (globalThis as unknown as PageGlobals).getComputedStyle(e).color

const rgb = (css: string): number[] => (/rgba?\(([^)]+)\)/.exec(css)?.[1] ?? '').split(',').map((x) => Number(x.trim()))

if (!existsSync(CHROMIUM)) {
  const msg = `${CHROMIUM} not found: install it with \`apt-get install -y chromium\` (.ci/run does)`
  if (inCI) t.fail(`${msg}; the dashboard test cannot run`)
  else t.plan(0, `dashboard e2e skipped: ${msg}`)
} else {
  t.test('the dashboard shows every server and turns one red when it goes down', async (t) => {
    const app = fakeApp()
    const admin = await startAdminFor(t, app.api)
    const page = await (await browserContext(t)).newPage()
    watchErrors(t, page)
    await page.goto(`http://127.0.0.1:${admin.address().port}/`)

    const a1 = page.locator('[data-server="users/a/a1"]')
    await a1.and(page.locator('[data-state="up"]')).waitFor()
    const rows = page.locator('tr[data-server]')
    t.same(await rows.evaluateAll((els) => els.map((e) => `${e.getAttribute('data-server')}=${e.getAttribute('data-state')}`)),
      ['users/a/a1=up', 'users/a/a2=up', 'users/b/b1=up', 'users/b/b2=up', 'web/default/w1=up'])
    t.equal(await page.locator('#conn').getAttribute('data-conn'), 'live')
    t.equal(await page.locator('#t-up').textContent(), '5 / 5')
    t.equal(await page.locator('#t-size').textContent(), '3.00 MiB')
    t.equal(await page.locator('#workers-panel').isHidden(), true, 'one process (no `workers` in /status): no Workers panel')
    t.match(await a1.textContent(), /a1.*http:\/\/127\.0\.0\.1:9101/)
    const upColor = rgb(await a1.locator('.dot').evaluate(bg))
    t.ok(upColor[1]! > upColor[0]! && upColor[1]! > upColor[2]!, `a healthy server is green (${upColor.join(',')})`)

    // Charts are drawn: the throughput canvas has ink on it.
    const inked = await page.locator('#c-rps').evaluate((c) => {
      const canvas = c as unknown as Canvas
      const data = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height).data
      let n = 0
      for (let i = 3; i < data.length; i += 4) if (data[i]! > 0) n++
      return n
    })
    t.ok(inked > 1000, `throughput chart drawn (${inked} pixels)`)
    t.match(await page.locator('#l-p99').textContent(), /users.*ms.*web.*ms/)
    t.same(await page.locator('#listeners .chip').allTextContents(), ['https 127.0.0.1:8443 \u00b7 https h2+h1 \u00b7 0 conn', 'http 127.0.0.1:8080 \u00b7 http \u00b7 0 conn'])
    t.same(await page.locator('#routes tr').evaluateAll((rows) => rows.map((r) => r.textContent)),
      ['users/users/*users15080 ms\u2014', 'web/* GET,HEADweb\u2014\u2014\u2014'], 'routes: name, match, backend, req/s, p99, hit ratio (none in the fake snapshot)')

    // The fake's server fails its health checks: the row turns red.
    app.servers.a1.healthy = false
    app.servers.a1.checkUp = false
    app.servers.a1.state = 'down'
    app.servers.a1.lastCheck = { ok: false, reason: 'connection refused' }
    await a1.and(page.locator('[data-state="down"]')).waitFor()
    const downColor = rgb(await a1.locator('.dot').evaluate(bg))
    t.ok(downColor[0]! > 150 && downColor[1]! < 110 && downColor[2]! < 110, `a down server is red (${downColor.join(',')})`)
    t.equal(await a1.locator('.lbl').textContent(), 'down')
    t.match(await a1.textContent(), /connection refused/)
    t.equal(await page.locator('[data-server="users/a/a2"]').getAttribute('data-state'), 'up', 'its sibling stays up')
    t.equal(await page.locator('#t-up').textContent(), '4 / 5')
    t.match(await page.title(), /1 down/)
    await screenshot(t, page, 'dashboard-server-down')

    // Ejected counts as down too; recovery turns it green again.
    app.servers.w1.ejected = true
    app.servers.w1.state = 'ejected'
    app.servers.w1.healthy = false
    await page.locator('[data-server="web/default/w1"][data-state="down"]').waitFor()
    t.equal(await page.locator('[data-server="web/default/w1"] .lbl').textContent(), 'ejected')
    Object.assign(app.servers.a1, { healthy: true, checkUp: true })
    Object.assign(app.servers.w1, { healthy: true, ejected: false })
    await page.locator('[data-server="users/a/a1"][data-state="up"]').waitFor()
    await page.locator('[data-server="web/default/w1"][data-state="up"]').waitFor()
  })

  t.test('a cluster\'s workers: one row each, coloured by state, with uptime; gone when /status has none', async (t) => {
    const app = fakeApp()
    const started = (secondsAgo: number): string => new Date(Date.now() - secondsAgo * 1000).toISOString()
    app.workers = [
      { id: 1, pid: 41001, state: 'ready', startedAt: started(3 * 3600 + 4 * 60 + 30), restarts: 0, requests: 123456, connections: 3 },
      { id: 2, pid: 41002, state: 'starting', startedAt: started(2), restarts: 1, requests: 0, connections: 0 },
      { id: 3, pid: 41003, state: 'draining', startedAt: started(90), restarts: 0, requests: 10, connections: 1 },
      { id: 4, pid: 41004, state: 'exited', startedAt: started(600), restarts: 2, requests: 0, connections: 0 }
    ]
    const admin = await startAdminFor(t, app.api)
    const page = await (await browserContext(t)).newPage()
    watchErrors(t, page)
    await page.goto(`http://127.0.0.1:${admin.address().port}/`)

    await page.locator('#workers-panel').waitFor()
    const rows = page.locator('tr[data-worker]')
    t.same(await rows.evaluateAll((els) => els.map((e) => `${e.getAttribute('data-worker')}=${e.getAttribute('data-state')}`)),
      ['1=ready', '2=starting', '3=draining', '4=exited'])
    t.equal(await page.locator('#workers-summary').textContent(), '1/4 ready')
    const cells = (id: number): Promise<string[]> => page.locator(`tr[data-worker="${id}"] td`).allTextContents()
    t.same(await cells(1), ['ready', '1', '41001', '123.5k', '3', '0', '3h 4m'], 'state, id, pid (never abbreviated), requests, connections, restarts, uptime')
    t.match((await cells(3))[6], /^1m 3\ds$/, 'a draining worker still has its uptime')
    t.equal((await cells(4))[6], '\u2014', 'an exited worker has none')
    const dot = async (id: number): Promise<number[]> => rgb(await page.locator(`tr[data-worker="${id}"] .dot`).evaluate(bg))
    const [ready, starting, draining, exited] = [await dot(1), await dot(2), await dot(3), await dot(4)]
    t.ok(ready[1]! > ready[0]! && ready[1]! > ready[2]!, `ready is green (${ready.join(',')})`)
    for (const [name, c] of [['starting', starting], ['draining', draining]] as const) {
      t.ok(c[0]! > 120 && c[1]! > 70 && c[2]! < 40 && c[0]! > c[1]!, `${name} is amber (${c.join(',')})`)
    }
    t.ok(exited[0]! > 150 && exited[1]! < 110 && exited[2]! < 110, `exited is red (${exited.join(',')})`)
    await screenshot(t, page, 'dashboard-workers')

    // A replacement process in the same slot: the row follows the slot.
    app.workers[3] = { id: 4, pid: 41005, state: 'ready', startedAt: started(1), restarts: 3, requests: 0, connections: 0 }
    await page.locator('tr[data-worker="4"][data-state="ready"]').waitFor()
    t.equal((await cells(4))[2], '41005')
    t.equal(await page.locator('#workers-summary').textContent(), '2/4 ready')

    // Malformed entries render, as the rest of the page does.
    app.workers = [null, { id: 'x', state: 'zombie', pid: -1 }, { id: 9 }] as unknown as WorkerStatusEntry[]
    await page.locator('tr[data-worker="9"][data-state="unknown"]').waitFor()
    t.equal(await page.locator('#workers-summary').textContent(), '0/3 ready')

    app.workers = undefined
    await page.locator('#workers-panel').waitFor({ state: 'hidden' })
  })

  t.test('Redis: a panel only with `redis` in /status; its state, target, counts (failures highlighted) and shared cache', async (t) => {
    const app = fakeApp()
    const admin = await startAdminFor(t, app.api)
    const page = await (await browserContext(t)).newPage()
    watchErrors(t, page)
    await page.goto(`http://127.0.0.1:${admin.address().port}/`)
    await page.locator('[data-server="users/a/a1"]').waitFor()
    t.equal(await page.locator('#redis-panel').isHidden(), true, 'no `redis` in /status: no Redis panel')

    app.redis = {
      state: 'up',
      target: 'redis://redis.internal:6379/0',
      connected: '1/1',
      transitions: 1,
      operations: {
        publish: { ok: 5, error: 0, timeout: 0, down: 0, shed: 0 },
        cache_lookup: { ok: 1500, error: 0, timeout: 2, down: 0, shed: 6 },
        cache_store: { ok: 40, error: 1, timeout: 0, down: 3, shed: 0 }
      },
      latency: { count: 1547, meanMs: 0.42 },
      shared: { hits: 300, misses: 100, stored: 40, superseded: 3, rejected: 0, collapsed: 7, remotePurges: 2, unavailable: 0 }
    }
    const indicator = page.locator('#redis-state')
    await page.locator('#redis-state[data-state="up"]').waitFor()
    t.equal(await indicator.textContent(), 'up')
    t.equal(await page.locator('#redis-target').textContent(), 'redis://redis.internal:6379/0')
    // `key=value`, and `!tone` when highlighted.
    const stats = (box: string): Promise<string[]> => page.locator(`#${box} > div`).evaluateAll((els) => els.map((e) =>
      `${e.getAttribute('data-stat')}=${e.querySelector('dd')?.textContent}${e.hasAttribute('data-tone') ? '!' + e.getAttribute('data-tone') : ''}`))
    t.same(await stats('redis-stats'), ['connected=1/1', 'transitions=1', 'operations=1,557', 'errors=1!bad', 'timeouts=2!bad', 'down=3!warn', 'shed=6!warn', 'latency=0.42 ms'],
      'connected, transitions, operations added up, failures highlighted, mean latency')
    t.equal(await page.locator('#redis-stats [data-stat="latency"]').getAttribute('title'), 'mean of 1,547 timed operations')
    const ops = await page.locator('tr[data-op]').evaluateAll((rows) => rows.map((r) =>
      Array.from(r.children as unknown as ArrayLike<typeof r>).map((td) => td.textContent + (td.hasAttribute('data-tone') ? '!' + td.getAttribute('data-tone') : '')).join(' ')))
    t.same(ops, ['cache_lookup 1,500 0 2!bad 0 6!warn', 'cache_store 40 1!bad 0 3!warn 0', 'publish 5 0 0 0 0'], 'one row per operation, by name; non-zero failures highlighted')
    t.same(await stats('redis-shared'), ['hits=300', 'misses=100', 'ratio=75.0%', 'stored=40', 'superseded=3', 'rejected=0', 'collapsed=7', 'remotePurges=2', 'unavailable=0'])
    // The indicator's dot is drawn in its text colour.
    const dot = async (): Promise<number[]> => rgb(await indicator.evaluate(fg))
    const up = await dot()
    t.ok(up[1]! > up[0]! && up[1]! > up[2]!, `up is green (${up.join(',')})`)
    const errColor = rgb(await page.locator('#redis-stats [data-stat="errors"] dd').evaluate(fg))
    t.ok(errColor[0]! > 150 && errColor[1]! < 110, `errors are red (${errColor.join(',')})`)
    await screenshot(t, page, 'dashboard-redis')

    // A cluster with one worker disconnected, then none, then a fresh start: amber, red, amber.
    app.redis = { ...app.redis, state: 'degraded', connected: '1/2', transitions: 3 }
    await page.locator('#redis-state[data-state="degraded"]').waitFor()
    const degraded = await dot()
    t.ok(degraded[0]! > 120 && degraded[1]! > 70 && degraded[2]! < 40 && degraded[0]! > degraded[1]!, `degraded is amber (${degraded.join(',')})`)
    t.equal(await page.locator('#redis-stats [data-stat="connected"] dd').textContent(), '1/2')
    app.redis = { ...app.redis, state: 'down', connected: '0/2', shared: { ...app.redis.shared!, rejected: 4, unavailable: 9 } }
    await page.locator('#redis-state[data-state="down"]').waitFor()
    t.equal(await indicator.textContent(), 'down')
    const down = await dot()
    t.ok(down[0]! > 150 && down[1]! < 110 && down[2]! < 110, `down is red (${down.join(',')})`)
    t.same((await stats('redis-shared')).filter((x) => x.includes('!')), ['rejected=4!bad', 'unavailable=9!warn'], 'rejected values and unavailable Redis highlighted')
    await screenshot(t, page, 'dashboard-redis-down')
    app.redis = { state: 'connecting', target: 'redis://127.0.0.1:6379', connected: '0/1', transitions: 0, operations: {}, latency: { count: 0, meanMs: null } }
    await page.locator('#redis-state[data-state="connecting"]').waitFor()
    await page.locator('#redis-shared-box').waitFor({ state: 'hidden' })
    t.equal(await page.locator('#redis-shared-box').isHidden(), true, 'no `shared`: no shared-cache counters')
    t.equal(await page.locator('#redis-ops').textContent(), 'No operations yet.')
    t.same(await stats('redis-stats'), ['connected=0/1', 'transitions=0', 'operations=0', 'errors=0', 'timeouts=0', 'down=0', 'shed=0', 'latency=\u2014'])

    // Malformed: rendered as unknown, grey, never an exception.
    app.redis = { state: 'zombie', target: 7, operations: { x: null, y: { ok: 'many', error: 2 } }, latency: 'fast', shared: [] } as unknown as RedisStatus
    await page.locator('#redis-state[data-state="unknown"]').waitFor()
    t.equal(await indicator.textContent(), 'unknown')
    t.same(await page.locator('tr[data-op]').evaluateAll((rows) => rows.map((r) => r.textContent)), ['x\u2014\u2014\u2014\u2014\u2014', 'y\u20142\u2014\u2014\u2014'],
      'malformed counts as \u2014')
    const unknown = await dot()
    t.ok(Math.abs(unknown[0]! - unknown[1]!) < 20 && Math.abs(unknown[1]! - unknown[2]!) < 20, `unknown is grey (${unknown.join(',')})`)

    app.redis = undefined
    await page.locator('#redis-panel').waitFor({ state: 'hidden' })
  })

  t.test('the purge form posts the URL and shows the result', async (t) => {
    const app = fakeApp()
    const admin = await startAdminFor(t, app.api)
    const page = await (await browserContext(t)).newPage()
    watchErrors(t, page)
    await page.goto(`http://127.0.0.1:${admin.address().port}/`)
    await page.locator('#purge-value').fill('https://example.com/users/42')
    await page.locator('#purge-go').click()
    await page.locator('#purge-result[data-tone="good"]').waitFor()
    t.match(await page.locator('#purge-result').textContent(), /Purged 3 entries/)
    t.same(app.purges, [{ url: 'https://example.com/users/42' }])

    await page.locator('#purge-kind').selectOption('tag')
    await page.locator('#purge-value').fill('product-42')
    await page.locator('#purge-go').click()
    await page.locator('#purge-result', { hasText: 'for tag product-42' }).waitFor()
    t.same(app.purges[1], { tag: 'product-42' })

    await page.locator('#purge-kind').selectOption('url')
    await page.locator('#purge-value').fill('/not-absolute')
    await page.locator('#purge-go').click()
    await page.locator('#purge-result[data-tone="bad"]').waitFor()
    t.match(await page.locator('#purge-result').textContent(), /Purge failed \(400\): .*absolute http\(s\) URL/)
    t.equal(app.purges.length, 2)
  })

  t.test('with a token: the page sends the #token from its URL on every poll', async (t) => {
    const token = 'dash-token-123'
    const app = fakeApp()
    const admin = await startAdminFor(t, app.api, token)
    const base = `http://127.0.0.1:${admin.address().port}/`
    const page = await (await browserContext(t)).newPage()
    watchErrors(t, page)
    // The page itself is behind the token too: add the header to the document request only.
    await page.route((u) => u.pathname === '/', async (route) => {
      await route.continue({ headers: { ...route.request().headers(), authorization: `Bearer ${token}` } })
    })
    await page.goto(`${base}#token=${token}`)
    await page.locator('[data-server="web/default/w1"][data-state="up"]').waitFor()
    t.equal(await page.locator('#conn').getAttribute('data-conn'), 'live')
    t.equal(await page.locator('#notice').isHidden(), true)

    // A wrong token in the hash: the polls are refused and the page says so.
    await page.goto(`${base}#token=wrong`)
    await page.locator('#conn[data-conn="unauthorized"]').waitFor()
    t.match(await page.locator('#notice').textContent(), /token in the URL was refused/)
  })

  t.test('missing, partial and malformed data render without exceptions', async (t) => {
    const app = fakeApp()
    const admin = await startAdminFor(t, app.api)
    const page = await (await browserContext(t)).newPage()
    watchErrors(t, page)
    app.statusOverride = {}
    app.snapshotOverride = {}
    await page.goto(`http://127.0.0.1:${admin.address().port}/`)
    await page.locator('#backends .empty', { hasText: 'No backends reported.' }).waitFor()
    t.equal(await page.locator('#t-rps').textContent(), '\u2014')

    app.statusOverride = {
      listeners: ['plain', null, { name: 7 }],
      routes: [null, { name: 'r', match: null }],
      backends: [null, 'x', { name: 'odd', shards: null }, { name: 'half', shards: [null, { name: 's', servers: [null, { name: 'n1', healthy: false }, { url: 'http://x' }] }] }],
      cache: { hits: 'many', bytes: null }
    }
    app.snapshotOverride = { now: 'soon', history: [null, 5, { t: 'x' }, { t: Date.now() / 1000, rps: 'fast', backends: null }], routes: null, backends: [] }
    await page.locator('[data-server="half/s/n1"][data-state="down"]').waitFor()
    await page.locator('[data-server="half/s/http://x"][data-state="up"]').waitFor()

    // One endpoint failing: the page keeps the other's data and says "partial".
    app.statusOverride = undefined
    app.snapshotOverride = undefined
    app.snapshotFails = true
    await page.locator('#conn[data-conn="partial"]').waitFor()
    await page.locator('[data-server="users/b/b2"]').waitFor()
    app.snapshotFails = false
    await page.locator('#conn[data-conn="live"]').waitFor()
  })
}
