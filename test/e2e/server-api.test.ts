// The runtime API for servers (issue 14, item 9), against a real process:
// POST /servers/{backend}/{server} with {"state": "ready" | "drain" | "maint",
// "weight": N}. Drain keeps sticky clients but takes no new ones; maint takes
// none. Shown on /status, /metrics and the dashboard (whose buttons call it,
// checked in Chromium); kept across a reload; token and JSON rules as the
// other admin writes. One process and a cluster.
import { existsSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { request } from 'undici'
import type { ServerStatus } from '../../src/upstream/backend.js'
import { spawnCli } from '../helpers/cli.js'
import { CHROMIUM, browserContext, inCI } from '../helpers/chromium.js'
import { startServer } from '../helpers/origin.js'
import { parsePrometheusText } from '../helpers/prometheus-parser.js'

const skipBrowser = !existsSync(CHROMIUM) && !inCI ? `no browser at ${CHROMIUM}` : false
const TOKEN = 'server-api-token-0123456789'
const auth = { authorization: `Bearer ${TOKEN}` }

interface Status { backends: Array<{ name: string, shards: Array<{ servers: ServerStatus[] }> }> }

for (const workers of [1, 2]) {
  t.test(`workers: ${workers}`, async (t) => {
    const s1 = await startServer(t, (_req, res) => { res.end('s1') })
    const s2 = await startServer(t, (_req, res) => { res.end('s2') })
    const dir = t.testdir({})
    const file = path.join(dir, 'config.yaml')
    const yaml = (proxyName: string): string => [
      `workers: ${workers}`,
      `proxyName: ${proxyName}`,
      'listeners: [{ name: web, bind: "127.0.0.1:0" }]',
      'accessLog: false',
      `admin: { bind: "127.0.0.1:0", token: "${TOKEN}" }`,
      'routes: [{ name: all, backend: app }]',
      'backends:',
      '  app:',
      '    sticky: { cookie: { name: SRV } }',
      `    servers: [{ name: s1, url: "${s1.url}" }, { name: s2, url: "${s2.url}" }]`,
      ''
    ].join('\n')
    writeFileSync(file, yaml('one'))
    const proc = spawnCli(t, ['start', file])
    const admin = `http://127.0.0.1:${String((await proc.waitForLog((l) => l.msg === 'admin: listening')).port)}`
    const port = (await proc.waitForLog((l) => l.msg === 'listening')).port as number

    const get = async (cookie?: string): Promise<{ body: string, cookie: string | undefined }> => {
      const res = await request(`http://127.0.0.1:${String(port)}/`, { headers: cookie === undefined ? {} : { cookie } })
      const set = res.headers['set-cookie']
      return { body: await res.body.text(), cookie: (Array.isArray(set) ? set[0] : set)?.split(';')[0] }
    }
    const post = async (p: string, body: unknown, headers: Record<string, string> = { ...auth, 'content-type': 'application/json' }): Promise<{ status: number, json: Record<string, unknown> }> => {
      const res = await request(`${admin}${p}`, { method: 'POST', headers, body: JSON.stringify(body) })
      return { status: res.statusCode, json: await res.body.json() as Record<string, unknown> }
    }
    const status = async (): Promise<ServerStatus[]> =>
      ((await (await request(`${admin}/status`, { headers: auth })).body.json()) as Status).backends[0]!.shards[0]!.servers

    // A sticky client of s1.
    let pinned: string | undefined
    for (let i = 0; i < 10 && pinned === undefined; i++) {
      const r = await get()
      if (r.body === 's1') pinned = r.cookie
    }
    t.ok(pinned, 'a client pinned to s1')

    // The rules of the other admin writes.
    t.equal((await post('/servers/app/s1', { state: 'drain' }, { 'content-type': 'application/json' })).status, 401, 'the token is required')
    t.equal((await post('/servers/app/s1', { state: 'drain' }, auth)).status, 415, 'JSON only')
    t.match(await post('/servers/app/nope', { state: 'drain' }), { status: 404, json: { error: /no server `nope`/ } })
    t.match(await post('/servers/app/s1', { state: 'off' }), { status: 400, json: { error: /ready, drain, maint/ } })
    t.match(await post('/servers/app/s1', { weight: 0 }), { status: 400 })

    t.same(await post('/servers/app/s1', { state: 'drain' }), { status: 200, json: { backend: 'app', shard: 'default', server: 's1', state: 'drain', weight: 1 } })
    const fresh = await Promise.all(Array.from({ length: 8 }, async () => (await get()).body))
    t.same(new Set(fresh), new Set(['s2']), 'drain: no new client goes to s1')
    t.equal((await get(pinned)).body, 's1', 'drain: its sticky client still does')
    t.match((await status()).find((s) => s.name === 's1'), { state: 'drain', adminState: 'drain' })

    t.equal((await post('/servers/app/s1', { state: 'maint' })).status, 200)
    t.equal((await get(pinned)).body, 's2', 'maint: not even its sticky clients')
    const metrics = parsePrometheusText(await (await request(`${admin}/metrics`, { headers: auth })).body.text())
    const states = metrics.find((f) => f.name === 'switchyard_server_state')!.samples.map((s) => [s.labels.server, s.labels.state])
    t.same(states.sort(), [['s1', 'maint'], ['s2', 'no check']])

    t.same((await post('/servers/app/s2', { weight: 3 })).json.weight, 3)
    // A reload that keeps both servers keeps what the API set.
    writeFileSync(file, yaml('two'))
    t.equal((await post('/reload', {})).status, 200)
    const after = await status()
    t.match(after.find((s) => s.name === 's1'), { state: 'maint' }, 'maint kept across a reload')
    t.match(after.find((s) => s.name === 's2'), { weight: 3 }, 'weight kept across a reload')
    t.equal((await get(pinned)).body, 's2')

    t.equal((await post('/servers/app/s1', { state: 'ready' })).status, 200)
    const back = new Set<string>()
    for (let i = 0; i < 12; i++) back.add((await get()).body)
    t.same(back, new Set(['s1', 's2']), 'ready: s1 takes new clients again')

    if (workers === 1 && skipBrowser === false) {
      const page = await (await browserContext(t)).newPage()
      page.on('pageerror', (err) => { t.fail(`page error: ${err.message}`) })
      await page.goto(`${admin}/#token=${TOKEN}`)
      const row = page.locator('tr.server[data-server="app/default/s2"]')
      await row.locator('button[data-action="maint"]').click()
      await row.locator('.lbl', { hasText: 'maint' }).waitFor()
      t.equal(await row.getAttribute('data-state'), 'maint')
      t.equal(await row.locator('button[data-action="maint"]').getAttribute('aria-pressed'), 'true')
      t.match((await status()).find((s) => s.name === 's2'), { state: 'maint' }, 'the button set it')
      await row.locator('button[data-action="ready"]').click()
      await row.locator('.lbl', { hasText: 'no check' }).waitFor()
      t.match((await status()).find((s) => s.name === 's2'), { adminState: 'ready' })
    }

    proc.child.kill('SIGTERM')
    t.equal(await proc.exited, 0)
  })
}

t.test('workers: 2: a server change made while a worker starts reaches it too', async (t) => {
  // A change went only to the workers ready at the time; one that had asked
  // for its config before it and said ready after it kept the old state
  // (seen above under load: a drained server still got new clients). Now a
  // starting worker is told too. The window is a race, as in reload-truth:
  // the change is made as soon as the first worker is ready, while the other
  // is usually still starting.
  const s1 = await startServer(t, (_req, res) => { res.end('s1') })
  const s2 = await startServer(t, (_req, res) => { res.end('s2') })
  const dir = t.testdir({})
  const file = path.join(dir, 'config.yaml')
  writeFileSync(file, [
    'workers: 2',
    'listeners: [{ name: web, bind: "127.0.0.1:0" }]',
    'accessLog: false',
    `admin: { bind: "127.0.0.1:0", token: "${TOKEN}" }`,
    'routes: [{ name: all, backend: app }]',
    'backends:',
    '  app:',
    `    servers: [{ name: s1, url: "${s1.url}" }, { name: s2, url: "${s2.url}" }]`,
    ''
  ].join('\n'))
  const proc = spawnCli(t, ['start', file])
  const admin = `http://127.0.0.1:${String((await proc.waitForLog((l) => l.msg === 'admin: listening')).port)}`
  const ready = (): number => proc.logs.filter((l) => l.msg === 'worker ready').length
  await proc.waitForLog((l) => l.msg === 'worker ready')
  const before = ready()
  const res = await request(`${admin}/servers/app/s1`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: '{"state":"drain"}' })
  t.equal(res.statusCode, 200)
  await res.body.dump()
  t.comment(before < 2 ? 'the change came while the other worker started' : 'both workers were ready already (no race this run)')
  await proc.waitForLog((l) => l.msg === 'worker ready' && l.worker !== proc.logs.find((x) => x.msg === 'worker ready')?.worker)
  const listening = await proc.waitForLog((l) => l.msg === 'listening')
  // New connections (round-robin between the workers), no sticky cookie: s2 only, from both workers.
  const answers = async (): Promise<Set<string>> => {
    const seen = new Set<string>()
    for (let i = 0; i < 12; i++) {
      const r = await request(`http://127.0.0.1:${String(listening.port)}/`, { headers: { connection: 'close' } })
      seen.add(await r.body.text())
    }
    return seen
  }
  let seen = await answers()
  // The notice to a worker that was starting crosses its ready notice at most: a moment, never more.
  for (let tries = 0; tries < 50 && seen.has('s1'); tries++) {
    await new Promise((resolve) => setTimeout(resolve, 100))
    seen = await answers()
  }
  t.same([...seen], ['s2'], 'the drained server gets no new client from either worker')
  proc.child.kill('SIGTERM')
  t.equal(await proc.exited, 0)
})
