// Health truth (issue 14, item 7): a server whose backend has no health
// checks is `no check` (HAProxy's wording), not `up`, on /status, /metrics
// (no switchyard_server_up for it; switchyard_server_state{state="no check"})
// and the dashboard; when its requests fail, how many in a row shows too.
// A real process, a dead origin and a live one, and Chromium for the page.
import { existsSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { request } from 'undici'
import type { ServerStatus } from '../../src/upstream/backend.js'
import { spawnCli } from '../helpers/cli.js'
import { CHROMIUM, browserContext, inCI } from '../helpers/chromium.js'
import { closedPort, startServer } from '../helpers/origin.js'
import { parsePrometheusText } from '../helpers/prometheus-parser.js'

const skipBrowser = !existsSync(CHROMIUM) && !inCI ? `no browser at ${CHROMIUM}` : false

interface Status { backends: Array<{ name: string, shards: Array<{ servers: ServerStatus[] }> }> }

for (const workers of [1, 2]) {
  t.test(`workers: ${workers}: no check, and the failures in a row`, async (t) => {
    const live = await startServer(t, (_req, res) => { res.end('ok') })
    const dead = await closedPort()
    const dir = t.testdir({})
    const file = path.join(dir, 'config.yaml')
    writeFileSync(file, [
      `workers: ${workers}`,
      'listeners: [{ name: web, bind: "127.0.0.1:0" }]',
      'accessLog: false',
      'admin: { bind: "127.0.0.1:0" }',
      'routes:',
      '  - { name: dead, match: { host: dead.test }, backend: unchecked }',
      '  - { name: live, match: { host: live.test }, backend: checked }',
      'backends:',
      '  unchecked:',
      '    retries: { attempts: 0 }',
      `    servers: [{ name: gone, url: "http://127.0.0.1:${dead}" }]`,
      '  checked:',
      '    healthCheck: { path: /, interval: 200ms, timeout: 100ms }',
      `    servers: [{ name: fine, url: "${live.url}" }]`,
      ''
    ].join('\n'))
    const proc = spawnCli(t, ['start', file])
    const admin = `http://127.0.0.1:${String((await proc.waitForLog((l) => l.msg === 'admin: listening')).port)}`
    const port = (await proc.waitForLog((l) => l.msg === 'listening')).port as number
    for (let i = 0; i < 4; i++) {
      const res = await request(`http://127.0.0.1:${String(port)}/`, { headers: { host: 'dead.test' } })
      await res.body.text()
      t.equal(res.statusCode, 502, 'every request to the dead server fails')
    }
    await (await request(`http://127.0.0.1:${String(port)}/`, { headers: { host: 'live.test' } })).body.text()

    const server = (st: Status, backend: string): ServerStatus => st.backends.find((b) => b.name === backend)!.shards[0]!.servers[0]!
    let st = await (await request(`${admin}/status`)).body.json() as Status
    // A cluster's worker counts arrive with its next answer to the primary: poll until all four are in.
    for (let i = 0; i < 100 && server(st, 'unchecked').consecutiveFailures < 4; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50))
      st = await (await request(`${admin}/status`)).body.json() as Status
    }
    t.match(server(st, 'unchecked'), { state: 'no check', checked: false, consecutiveFailures: 4 }, 'not "up": nothing checks it, and its last 4 failed')
    t.match(server(st, 'checked'), { state: 'up', checked: true, consecutiveFailures: 0 })

    const families = parsePrometheusText(await (await request(`${admin}/metrics`)).body.text())
    const samples = (name: string): ReadonlyArray<{ readonly labels: Readonly<Record<string, string>>, readonly value: number }> =>
      families.find((f) => f.name === name)?.samples ?? []
    t.same(samples('switchyard_server_up').map((s) => [s.labels.server, s.value]), [['fine', 1]], 'server_up only where a check vouches for it')
    t.same(samples('switchyard_server_state').map((s) => [s.labels.server, s.labels.state, s.value]).sort(), [['fine', 'up', 1], ['gone', 'no check', 1]])
    t.same(samples('switchyard_server_consecutive_failures').find((s) => s.labels.server === 'gone')?.value, 4)

    if (workers === 1 && skipBrowser === false) {
      const page = await (await browserContext(t)).newPage()
      page.on('pageerror', (err) => { t.fail(`page error: ${err.message}`) })
      await page.goto(`${admin}/`)
      const row = page.locator('tr.server[data-server="unchecked/default/gone"]')
      await row.waitFor()
      await row.locator('.lbl', { hasText: 'failed' }).waitFor()
      t.equal(await row.locator('.lbl').textContent(), 'no check \u00b7 4 failed in a row')
      t.equal(await row.getAttribute('data-state'), 'failing', 'amber, not green')
      const fine = page.locator('tr.server[data-server="checked/default/fine"]')
      t.equal(await fine.locator('.lbl').textContent(), 'up')
      t.equal(await fine.getAttribute('data-state'), 'up')
    }

    proc.child.kill('SIGTERM')
    t.equal(await proc.exited, 0)
  })
}
