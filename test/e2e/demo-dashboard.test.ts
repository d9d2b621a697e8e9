// The dashboard of the running demo (`switchyard start`, exactly what
// `npm start` runs) in a real browser: it shows the demo's four replicas, and
// a replica stopped during the test turns red once health checks notice.
// Needs Chromium like test/e2e/dashboard.test.ts (installed by .ci/run). Uses
// the demo's fixed ports (8080, 8443, 9101-9104, admin 9901).
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { request } from 'undici'
import { nodeArgs } from '../helpers/entry.js'
import { reapOnExit } from '../helpers/reap.js'
import { CHROMIUM, browserContext, inCI } from '../helpers/chromium.js'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')

t.test('the demo dashboard shows the replicas, and a stopped one turns red', { skip: !existsSync(CHROMIUM) && !inCI ? `no browser at ${CHROMIUM}` : false }, async (t) => {
  const demo = reapOnExit(spawn(process.execPath, [...nodeArgs('src/main.ts'), 'start'],
    { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] }))
  const exited = new Promise<number | null>((resolve) => demo.once('exit', (code) => resolve(code)))
  t.teardown(async () => {
    if (demo.exitCode === null) demo.kill('SIGTERM')
    await exited
  })
  let out = ''
  demo.stdout!.on('data', (c: Buffer) => { out += c.toString() })
  demo.stderr!.on('data', (c: Buffer) => { out += c.toString() })
  for (let i = 0; i < 300 && !/Ctrl-C stops/.test(out); i++) {
    if (demo.exitCode !== null) break
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  t.match(out, /Dashboard, status and metrics: http:\/\/127\.0\.0\.1:9901\//, 'the demo prints where its dashboard is')

  const ctx = await browserContext(t)
  const page = await ctx.newPage()
  page.on('pageerror', (err) => { t.fail(`page error: ${err.message}`) })
  // Some traffic so the charts have something to show.
  for (let i = 0; i < 20; i++) await (await request('http://127.0.0.1:8080/', { headers: { 'x-user-id': `user-${i}` } })).body.text()
  await page.goto('http://127.0.0.1:9901/')

  for (const name of ['a/a1', 'a/a2', 'b/b1', 'b/b2']) {
    await page.locator(`[data-server="demo/${name}"][data-state="up"]`).waitFor({ timeout: 15_000 })
  }
  t.pass('all four demo replicas are shown up')

  const stop = await request('http://127.0.0.1:9101/_demo/stop?seconds=60', { method: 'POST' })
  t.equal(stop.statusCode, 202)
  await stop.body.text()
  const a1 = page.locator('[data-server="demo/a/a1"][data-state="down"]')
  await a1.waitFor({ timeout: 20_000 })
  const colour = await a1.evaluate((el) => (globalThis as unknown as { getComputedStyle (e: unknown): { borderLeftColor: string; color: string; backgroundColor: string } })
    .getComputedStyle(el))
  const rgb = [colour.borderLeftColor, colour.color, colour.backgroundColor].join(' ')
  t.match(rgb, /rgb\(2\d\d, \d{1,2}, \d{1,2}\)|rgba?\(2\d\d, \d{1,3}, \d{1,3}/, `replica a1 is shown red (${rgb})`)
  t.equal(await page.locator('[data-server="demo/a/a2"][data-state="up"]').count(), 1, 'its sibling stays up')

  const dir = process.env.TAP_ARTIFACTS ?? path.join(os.tmpdir(), 'switchyard-test-artifacts')
  await mkdir(dir, { recursive: true })
  const file = path.join(dir, 'demo-dashboard-replica-down.png')
  await page.screenshot({ path: file, fullPage: true })
  t.comment(`screenshot: ${file}`)
  t.ok(existsSync(file))
})
