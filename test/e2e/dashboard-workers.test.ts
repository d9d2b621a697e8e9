// The Workers panel of the live dashboard against the real command line:
// `switchyard start -c FILE` with `workers: 2` (a primary and two worker
// processes) shows both workers ready, with the pids /status reports; with
// `workers: 1` (one process, no `workers` in /status) there is no panel.
// Needs Chromium like test/e2e/dashboard.test.ts (installed by .ci/run).
import { existsSync, writeFileSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import t, { type Test } from 'tap'
import type { Page } from 'playwright-core'
import { spawnCli, type Running } from '../helpers/cli.js'
import { closedPort, startServer } from '../helpers/origin.js'
import { isAlive } from '../helpers/reap.js'
import { CHROMIUM, browserContext, inCI } from '../helpers/chromium.js'

const skip = !existsSync(CHROMIUM) && !inCI ? `no browser at ${CHROMIUM}` : false

interface Proxy {
  readonly proc: Running
  readonly admin: number
  /** Every worker pid seen, for the teardown's check that none is left. */
  readonly pids: Set<number>
}

interface StatusJson { workers?: Array<{ id: number, pid: number, state: string }> }

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** `switchyard start -c FILE` with `workers`, one backend on a local origin; resolves once it serves. */
async function startProxy (t: Test, workers: number): Promise<Proxy> {
  const origin = await startServer(t, (req, res) => { req.resume(); res.writeHead(200, { 'content-type': 'text/plain' }).end('ok') })
  const port = await closedPort()
  const admin = await closedPort()
  const file = path.join(t.testdir({}), 'switchyard.yaml')
  writeFileSync(file, `
workers: ${workers}
listeners: [{ name: web, bind: "127.0.0.1:${port}" }]
admin: { bind: "127.0.0.1:${admin}" }
timeouts: { drain: 2s }
routes: [{ name: all, match: { pathPrefix: / }, backend: app }]
backends:
  app:
    servers: [{ name: a, url: "http://127.0.0.1:${origin.port}" }]
`)
  const proc = spawnCli(t, ['start', '-c', file])
  const pids = new Set<number>()
  // The primary is asked to drain first; a worker that outlives it anyway is killed by its pid.
  t.teardown(async () => {
    if (proc.child.exitCode === null && proc.child.signalCode === null) proc.child.kill('SIGTERM')
    const end = Date.now() + 10_000
    while ((proc.child.exitCode === null && proc.child.signalCode === null) && Date.now() < end) await sleep(50)
    if (proc.child.exitCode === null && proc.child.signalCode === null) proc.child.kill('SIGKILL')
    await proc.exited
    while ([...pids].some(isAlive) && Date.now() < end) await sleep(50)
    for (const pid of pids) if (isAlive(pid)) process.kill(pid, 'SIGKILL')
  })
  if (workers > 1) {
    const ready = await proc.waitForLog((l) => l.msg === 'cluster: every worker is ready')
    for (const pid of ready.pids as number[]) pids.add(pid)
  } else {
    await proc.waitForLog((l) => l.msg === 'admin: listening')
  }
  return { proc, admin, pids }
}

async function status (p: Proxy): Promise<StatusJson> {
  const res = await fetch(`http://127.0.0.1:${p.admin}/status`)
  const s = await res.json() as StatusJson
  for (const w of s.workers ?? []) if (w.pid > 0) p.pids.add(w.pid)
  return s
}

async function openDashboard (t: Test, p: Proxy): Promise<Page> {
  const ctx = await browserContext(t)
  const page = await ctx.newPage()
  page.on('pageerror', (err) => { t.fail(`page error: ${err.message}`) })
  page.on('console', (msg) => {
    if (msg.type() === 'error' && (msg.text().startsWith('dashboard:') || /Content Security Policy/i.test(msg.text()))) t.fail(`console: ${msg.text()}`)
  })
  await page.goto(`http://127.0.0.1:${p.admin}/`)
  return page
}

t.test('workers: 2: the Workers panel lists both workers ready, with the pids /status reports', { skip }, async (t) => {
  const p = await startProxy(t, 2)
  const page = await openDashboard(t, p)
  await page.locator('tr[data-worker][data-state="ready"]').nth(1).waitFor()

  const s = await status(p)
  const want = (s.workers ?? []).map((w) => `${w.id} ${w.state} ${w.pid}`)
  t.equal(want.length, 2, `/status lists two workers (${want.join(', ')})`)
  const rows = await Promise.all((await page.locator('tr[data-worker]').all()).map(async (row) => {
    const cells = await row.locator('td').allTextContents()
    return { key: `${await row.getAttribute('data-worker') ?? ''} ${await row.getAttribute('data-state') ?? ''} ${cells[2] ?? ''}`, cells }
  }))
  t.same(rows.map((r) => r.key), want, 'one row per worker: id, state and pid as /status has them')
  t.same(rows.map((r) => r.cells[0]), ['ready', 'ready'], 'shown as ready')
  t.same(new Set(rows.map((r) => Number(r.cells[2]))), p.pids, 'the pids are the workers the primary logged as ready')
  t.ok(rows.every((r) => Number(r.cells[2]) !== p.proc.child.pid && isAlive(Number(r.cells[2]))), 'live processes, not the primary')
  t.ok(rows.every((r) => /^\d+s$|^\d+m \d+s$/.test(r.cells[6] ?? '')), `an uptime each (${rows.map((r) => r.cells[6]).join(', ')})`)
  t.equal(await page.locator('#workers-summary').textContent(), '2/2 ready')
  const dot = await page.locator('tr[data-worker] .dot').first().evaluate((e) =>
    (globalThis as unknown as { getComputedStyle (e: unknown): { backgroundColor: string } }).getComputedStyle(e).backgroundColor)
  const [r, g, b] = (/rgba?\(([^)]+)\)/.exec(dot)?.[1] ?? '').split(',').map((x) => Number(x.trim()))
  t.ok(g! > r! && g! > b!, `a ready worker is green (${dot})`)

  const dir = process.env.TAP_ARTIFACTS ?? path.join(os.tmpdir(), 'switchyard-test-artifacts')
  await mkdir(dir, { recursive: true })
  const file = path.join(dir, 'dashboard-cluster-workers.png')
  await page.screenshot({ path: file, fullPage: true })
  t.comment(`screenshot: ${file}`)
})

t.test('workers: 1: one process, no `workers` in /status, no Workers panel', { skip }, async (t) => {
  const p = await startProxy(t, 1)
  const page = await openDashboard(t, p)
  // The page has rendered a /status once it shows the backend's server.
  // Its servers have no health check: the row says so (data-state nocheck), it is not "up".
  await page.locator('[data-server^="app/"][data-state="nocheck"]').waitFor()
  t.notOk('workers' in await status(p), '/status has no workers')
  t.equal(await page.locator('#workers-panel').isHidden(), true, 'the panel is not shown')
  t.equal(await page.locator('tr[data-worker]').count(), 0, 'no worker rows')
})
