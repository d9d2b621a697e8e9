// The dashboard's files as the admin listener serves them: the page names its
// script and stylesheet by content hash, those names (and only those) serve
// exactly the built files, and a missing, modified or stale build is refused
// at start rather than served.
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import t, { type Test } from 'tap'
import { startAdmin, type AdminApi, type AdminConfig, type AdminHandle } from '../../src/admin/admin.js'
import {
  ASSET_CACHE_CONTROL, DASHBOARD_DIRS, DASHBOARD_FILES, hashedName, loadDashboard, MANIFEST, sha256,
  type DashboardDirs, type DashboardManifest
} from '../../src/admin/dashboard.js'

const api: AdminApi = {
  status: () => ({}),
  metrics: () => '',
  snapshot: () => ({}),
  reload: async () => ({ ok: true, needsRestart: [] }),
  purge: () => ({ purged: 0 }),
  ready: () => true
}

async function admin (t: Test, cfg: Partial<AdminConfig> = {}): Promise<AdminHandle> {
  const h = await startAdmin({ host: '127.0.0.1', port: 0, ...cfg }, api)
  t.teardown(() => h.close())
  return h
}

interface Reply { status: number; headers: http.IncomingHttpHeaders; body: string }

function call (h: AdminHandle, method: string, target: string, headers: Record<string, string> = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: h.address().port, method, path: target, headers, agent: false }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end()
  })
}

/** The script and stylesheet the page names: [name, the built file it must be]. */
function referenced (html: string): { js: string; css: string } {
  const js = /<script type="module" src="(dashboard\.[0-9a-f]{16}\.js)"><\/script>/.exec(html)?.[1]
  const css = /<link rel="stylesheet" href="(dashboard\.[0-9a-f]{16}\.css)">/.exec(html)?.[1]
  if (js === undefined || css === undefined) throw new Error(`the page does not name a hashed script and stylesheet:\n${html}`)
  return { js, css }
}

t.test('the page names its script and stylesheet by content hash, and each is served under that name', async (t) => {
  const h = await admin(t)
  const page = await call(h, 'GET', '/')
  t.equal(page.status, 200)
  t.equal(page.headers['cache-control'], 'no-store', 'the page is never cached: it names the current hashes')
  const names = referenced(page.body)
  t.equal((page.body.match(/<script/g) ?? []).length, 1, 'one script, the hashed file')
  for (const [name, built, type] of [[names.js, 'dashboard.js', 'text/javascript'], [names.css, 'dashboard.css', 'text/css']] as const) {
    const r = await call(h, 'GET', `/${name}`)
    t.equal(r.status, 200, name)
    t.equal(r.headers['content-type'], `${type}; charset=utf-8`)
    t.equal(r.headers['cache-control'], ASSET_CACHE_CONTROL)
    t.match(r.headers['cache-control'], /immutable/)
    t.equal(r.headers['x-content-type-options'], 'nosniff')
    t.equal(name.split('.')[1], sha256(r.body).slice(0, 16), `${name}: the name is the hash of what is served`)
    t.equal(r.body, await readFile(path.join(DASHBOARD_DIRS.build, built), 'utf8'), `${name} is the built ${built}`)
    const head = await call(h, 'HEAD', `/${name}`)
    t.equal(head.status, 200)
    t.equal(head.body, '')
    t.equal((await call(h, 'POST', `/${name}`, { 'content-type': 'application/json' })).status, 405)
  }
  t.notMatch(await call(h, 'GET', `/${names.js}`).then((r) => r.body), /^\s*import\s/m, 'the script imports nothing at run time')
})

t.test('any other name is a 404: a wrong or old hash, no hash, the source names', async (t) => {
  const h = await admin(t)
  const { js, css } = referenced((await call(h, 'GET', '/')).body)
  const served = (await call(h, 'GET', `/${js}`)).body
  const wrong = [
    hashedName('dashboard.js', `${served}\n// an older build`),
    hashedName('dashboard.css', 'body { color: red }'),
    js.replace(/[0-9a-f](?=\.js$)/, (d) => d === '0' ? '1' : '0'),
    js.toUpperCase(),
    js.replace('.js', '.css'),
    css.replace('.css', '.js'),
    'dashboard.js', 'dashboard.css', 'dashboard.ts', 'index.html', MANIFEST
  ]
  for (const name of wrong) {
    const r = await call(h, 'GET', `/${name}`)
    t.equal(r.status, 404, name)
    t.equal(r.headers['cache-control'], 'no-store', `${name}: a 404 is not cached`)
  }
})

t.test('with a token, the page, script and stylesheet load without it (they hold no data); nothing else does', async (t) => {
  const h = await admin(t, { token: 'dashboard-token-0123456789' })
  const page = await call(h, 'GET', '/')
  t.equal(page.status, 200)
  const { js, css } = referenced(page.body)
  t.equal((await call(h, 'GET', `/${js}`)).status, 200)
  t.equal((await call(h, 'GET', `/${css}?v=1`)).status, 200, 'a query string does not change the path')
  t.equal((await call(h, 'GET', `/${hashedName('dashboard.js', 'old')}`)).status, 401, 'an unknown name needs the token like any other path')
  t.equal((await call(h, 'GET', '/status')).status, 401)
})

/** A copy of the real sources and build in a temporary folder, to damage. */
async function copyOfBuild (t: Test): Promise<DashboardDirs> {
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'switchyard-dashboard-'))
  t.teardown(() => rm(tmp, { recursive: true, force: true }))
  const dirs = { sources: path.join(tmp, 'src'), build: path.join(tmp, 'build') }
  await cp(DASHBOARD_DIRS.sources, dirs.sources, { recursive: true })
  await cp(DASHBOARD_DIRS.build, dirs.build, { recursive: true })
  return dirs
}

t.test('the build in dist/ is the build of the sources in src/ (npm test builds it first)', async (t) => {
  const manifest = JSON.parse(await readFile(path.join(DASHBOARD_DIRS.build, MANIFEST), 'utf8')) as DashboardManifest
  t.same(Object.keys(manifest.files).sort(), [...DASHBOARD_FILES].sort())
  const d = await loadDashboard()
  t.equal(d.assets.size, 2)
})

t.test('a missing, incomplete, modified or stale build is a startup error that says to build', async (t) => {
  const rebuild = /run `npm run build:dashboard`/

  let dirs = await copyOfBuild(t)
  const ok = await loadDashboard(dirs)
  t.equal(ok.html, (await loadDashboard()).html, 'a copy loads like the original')
  await rm(dirs.sources, { recursive: true })
  t.equal((await loadDashboard(dirs)).html, ok.html, 'without the sources (a deployed dist/), the build is trusted')

  dirs = await copyOfBuild(t)
  await rm(path.join(dirs.build, MANIFEST))
  await t.rejects(loadDashboard(dirs), { name: 'DashboardError', message: /admin: the dashboard is not built: .*manifest\.json; run `npm run build:dashboard`/ }, 'no manifest')

  dirs = await copyOfBuild(t)
  await writeFile(path.join(dirs.build, MANIFEST), '{ not json')
  await t.rejects(loadDashboard(dirs), { message: rebuild }, 'unreadable manifest')

  dirs = await copyOfBuild(t)
  await rm(path.join(dirs.build, 'dashboard.js'))
  await t.rejects(loadDashboard(dirs), { message: /build is incomplete: .*dashboard\.js/ }, 'no script')

  dirs = await copyOfBuild(t)
  await writeFile(path.join(dirs.build, 'dashboard.js'), 'console.log("an old script")\n')
  await t.rejects(loadDashboard(dirs), { message: /does not match its manifest \(dashboard\.js\)/ }, 'a built file replaced')

  dirs = await copyOfBuild(t)
  const src = path.join(dirs.sources, 'dashboard.ts')
  await writeFile(src, `${await readFile(src, 'utf8')}\n// edited after the build\n`)
  await t.rejects(loadDashboard(dirs), { message: /is stale: dashboard\.ts in .* changed since it was built; run `npm run build:dashboard`/ }, 'a source edited')

  dirs = await copyOfBuild(t)
  await rm(path.join(dirs.sources, 'dashboard.css'))
  await t.rejects(loadDashboard(dirs), { message: /is stale: dashboard\.css/ }, 'a source removed')

  // A build whose page does not name the script (manifest consistent with it).
  dirs = await copyOfBuild(t)
  const html = (await readFile(path.join(dirs.build, 'index.html'), 'utf8')).replace('src="dashboard.js"', 'src="other.js"')
  await writeFile(path.join(dirs.build, 'index.html'), html)
  const manifest = JSON.parse(await readFile(path.join(dirs.build, MANIFEST), 'utf8')) as DashboardManifest
  await writeFile(path.join(dirs.build, MANIFEST), JSON.stringify({ ...manifest, files: { ...manifest.files, 'index.html': sha256(html) } }))
  await rm(dirs.sources, { recursive: true })
  await t.rejects(loadDashboard(dirs), { message: /index\.html must reference dashboard\.js exactly once/ })
})
