// Purge by path (issue 14, item 10): `{"path": "/p/1"}` removes that path
// (with any query) on every host and port the cache holds it for, and
// `{"path": "/static/", "prefix": true}` everything under it; other paths
// stay. A real process with two listeners and two hosts, one process and a
// cluster; the dashboard's purge form sends the same body (Chromium).
import { existsSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { request } from 'undici'
import { spawnCli } from '../helpers/cli.js'
import { CHROMIUM, browserContext, inCI } from '../helpers/chromium.js'
import { startServer } from '../helpers/origin.js'

const skipBrowser = !existsSync(CHROMIUM) && !inCI ? `no browser at ${CHROMIUM}` : false

for (const workers of [1, 2]) {
  t.test(`workers: ${workers}`, async (t) => {
    const origin = await startServer(t, (req, res) => {
      res.writeHead(200, { 'cache-control': 'public, max-age=600' }).end(`body of ${req.url ?? ''}`)
    })
    const dir = t.testdir({})
    const file = path.join(dir, 'config.yaml')
    writeFileSync(file, [
      `workers: ${workers}`,
      'listeners: [{ name: one, bind: "127.0.0.1:0" }, { name: two, bind: "127.0.0.1:0" }]',
      'accessLog: false',
      'admin: { bind: "127.0.0.1:0" }',
      'cache: {}',
      'routes: [{ name: all, backend: app }]',
      'backends:',
      '  app:',
      `    servers: [{ url: "${origin.url}" }]`,
      ''
    ].join('\n'))
    const proc = spawnCli(t, ['start', file])
    const admin = `http://127.0.0.1:${String((await proc.waitForLog((l) => l.msg === 'admin: listening')).port)}`
    const ports = [
      (await proc.waitForLog((l) => l.msg === 'listening' && l.listener === 'one')).port as number,
      (await proc.waitForLog((l) => l.msg === 'listening' && l.listener === 'two')).port as number
    ]
    const hosts = ['a.test', 'b.test']
    const paths = ['/p/1', '/p/1?x=1', '/p/10', '/static/a.css', '/static/img/b.png', '/other']
    const urls = ports.flatMap((port, i) => paths.map((p) => ({ port, host: hosts[i]!, p })))
    const fetchAll = async (): Promise<Map<string, boolean>> => {
      const hits = new Map<string, boolean>()
      for (const u of urls) {
        const res = await request(`http://127.0.0.1:${String(u.port)}${u.p}`, { headers: { host: u.host } })
        await res.body.text()
        hits.set(`${u.host}${u.p}`, /; hit/.test(String(res.headers['cache-status'])))
      }
      return hits
    }
    // Filled (a cluster's other worker may need a second round to hold its own copy).
    for (let i = 0; i < 4; i++) await fetchAll()
    const purge = async (body: unknown): Promise<{ status: number, json: { purged?: number, error?: string } }> => {
      const res = await request(`${admin}/cache/purge`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
      return { status: res.statusCode, json: await res.body.json() as { purged?: number, error?: string } }
    }
    const stored = async (host: string, p: string): Promise<boolean> =>
      (await request(`${admin}/cache/lookup?url=${encodeURIComponent(`http://${host}${p}`)}`)).statusCode === 200
    const where = async (): Promise<string[]> => {
      const out: string[] = []
      for (const h of hosts) for (const p of paths) if (await stored(h, p)) out.push(h + p)
      return out
    }
    t.equal((await where()).length, 12, 'every URL stored on both hosts')

    const exact = await purge({ path: '/p/1' })
    t.equal(exact.status, 200)
    // Each worker removes its own copies: one process holds each URL once, a cluster up to once per worker.
    if (workers === 1) t.equal(exact.json.purged, 4, '/p/1 and /p/1?x=1 on both hosts')
    else t.ok(exact.json.purged! >= 4 && exact.json.purged! <= 4 * workers, `/p/1 and /p/1?x=1 on both hosts, in each worker (${String(exact.json.purged)})`)
    t.same((await where()).sort(), ['a.test/other', 'a.test/p/10', 'a.test/static/a.css', 'a.test/static/img/b.png',
      'b.test/other', 'b.test/p/10', 'b.test/static/a.css', 'b.test/static/img/b.png'], 'not /p/10')

    t.equal((await purge({ path: '/static/', prefix: true })).status, 200)
    t.same((await where()).sort(), ['a.test/other', 'a.test/p/10', 'b.test/other', 'b.test/p/10'], 'everything under /static/ on every host')

    t.match(await purge({ path: 'p/1' }), { status: 400, json: { error: /starting with \// } })
    t.match(await purge({ path: '/p', prefix: 'yes' }), { status: 400, json: { error: /true or false/ } })
    t.match(await purge({ path: '/p', url: 'http://a.test/p' }), { status: 400 })
    t.equal((await request(`${admin}/cache/purge`, { method: 'POST', body: JSON.stringify({ path: '/p/10' }) })).statusCode, 415, 'JSON only')

    if (workers === 1 && skipBrowser === false) {
      const page = await (await browserContext(t)).newPage()
      page.on('pageerror', (err) => { t.fail(`page error: ${err.message}`) })
      await page.goto(`${admin}/`)
      await page.selectOption('#purge-kind', 'path')
      await page.fill('#purge-value', '/p/10')
      await page.click('#purge-go')
      await page.locator('#purge-result', { hasText: 'Purged 2 entries' }).waitFor()
      t.same((await where()).sort(), ['a.test/other', 'b.test/other'], 'the form purged /p/10 on both hosts')
    }

    proc.child.kill('SIGTERM')
    t.equal(await proc.exited, 0)
  })
}
