// Reload as the composition root does it: what stays, what goes, what is
// re-read, and what a failed reload leaves untouched.
import { copyFileSync } from 'node:fs'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import path from 'node:path'
import tls from 'node:tls'
import t, { type Test } from 'tap'
import { request } from 'undici'
import { StartupError, createApp, startFailure } from '../src/app.js'
import { CertificateError, generateCertificate, writeCertificatePair } from '../src/certs.js'
import { parseConfig } from '../src/config/load.js'
import { startServer } from './helpers/origin.js'

async function origin (t: Test, name: string): Promise<number> {
  return (await startServer(t, (req, res) => { req.resume(); res.end(name) })).port
}

function yaml (servers: Record<string, number>, extra = '', listeners = 'listeners: [{ name: web, bind: "127.0.0.1:0" }]'): string {
  return `admin: false
accessLog: false
${listeners}
routes: [{ match: { pathPrefix: / }, backend: app }]
backends:
  app:
${extra}
    servers:
${Object.entries(servers).map(([n, p]) => `      - { name: ${n}, url: "http://127.0.0.1:${p}" }`).join('\n')}
`
}

t.test('reload keeps servers that stayed (health, counters, pool) and drains the removed ones', async (t) => {
  const a = await origin(t, 'a')
  const b = await origin(t, 'b')
  const c = await origin(t, 'c')
  const app = createApp(parseConfig(yaml({ a, b }), 'a.yaml'))
  t.teardown(() => app.stop())
  await app.start()
  const url = `http://127.0.0.1:${app.listeners[0]!.address().port}/`
  for (let i = 0; i < 4; i++) await (await request(url)).body.text()
  const before = app.state.backends.get('app')!
  const keptA = before.servers.find((s) => s.name === 'a')!
  const removedB = before.servers.find((s) => s.name === 'b')!
  keptA.setCheckStatus(false, 'test: pretend a failed its check')
  const requestsBefore = keptA.requests

  const result = await app.reload(parseConfig(yaml({ a, c }, '    balance: { algorithm: leastConn }'), 'b.yaml'))
  t.match(result, { ok: true, kept: 1, added: 1, removed: 1 })
  const after = app.state.backends.get('app')!
  t.not(after, before, 'the backend is rebuilt (new balancer)')
  t.equal(after.servers.find((s) => s.name === 'a'), keptA, 'the same server object: pool and counters kept')
  t.equal(keptA.requests, requestsBefore)
  t.equal(keptA.checkUp, false, 'its health state kept')
  t.equal(after.config.balance.algorithm, 'leastConn')
  t.notOk(after.servers.includes(removedB))
  // The removed server's pool closes once idle; a closed undici pool refuses new work.
  await new Promise((resolve) => setTimeout(resolve, 50))
  t.equal((removedB.dispatcher as unknown as { closed: boolean }).closed, true, 'removed server drained and closed')
  keptA.setCheckStatus(true, 'test')
  const names = new Set<string>()
  for (let i = 0; i < 6; i++) names.add(await (await request(url)).body.text())
  t.same([...names].sort(), ['a', 'c'])
})

t.test('a reload that rebuilds a server (new pool options) keeps its health verdict; retired servers are never picked', async (t) => {
  const a = await origin(t, 'a')
  const b = await origin(t, 'b')
  const app = createApp(parseConfig(yaml({ a, b }), 'a.yaml'))
  t.teardown(() => app.stop())
  await app.start()
  const url = `http://127.0.0.1:${app.listeners[0]!.address().port}/`
  const before = app.state.backends.get('app')!
  const oldB = before.servers.find((s) => s.name === 'b')!
  oldB.setCheckStatus(false, 'test: b failed its check')
  const result = await app.reload(parseConfig(yaml({ a, b }, '    timeouts: { headers: 7s }'), 'b.yaml'))
  t.match(result, { ok: true, kept: 0, added: 2, removed: 2 }, 'new pool options: every server rebuilt')
  const after = app.state.backends.get('app')!
  const newB = after.servers.find((s) => s.name === 'b')!
  t.not(newB, oldB, 'a new server object')
  t.equal(newB.checkUp, false, 'b is still down: the verdict carried over')
  t.equal(newB.healthy, false)
  t.equal(after.servers.find((s) => s.name === 'a')!.checkUp, true, 'a is still up')
  t.ok(before.retired && before.servers.every((s) => s.retired), 'the old backend and its servers are retired')
  const names = new Set<string>()
  for (let i = 0; i < 6; i++) names.add(await (await request(url)).body.text())
  t.same([...names], ['a'], 'nothing is sent to b')
})

t.test('a reload that fails (a listener port in use) changes nothing', async (t) => {
  const a = await origin(t, 'a')
  const busy = http.createServer()
  await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => busy.close(() => resolve())))
  const app = createApp(parseConfig(yaml({ a }), 'a.yaml'))
  t.teardown(() => app.stop())
  await app.start()
  const state = app.state
  const port = (busy.address() as AddressInfo).port
  const result = await app.reload(parseConfig(yaml({ a }, '', `listeners: [{ name: web, bind: "127.0.0.1:0" }, { name: extra, bind: "127.0.0.1:${port}" }]`), 'b.yaml'))
  t.equal(result.ok, false)
  t.same(result, { ok: false, errors: [`b.yaml:3:70 listeners[1] (extra) 127.0.0.1:${port}: address already in use (EADDRINUSE)`] },
    'named as at startup, with its line in the new file')
  t.equal(app.state, state, 'the running state is untouched')
  t.equal(app.listeners.length, 1)
})

t.test('reload re-reads TLS certificates', async (t) => {
  const a = await origin(t, 'a')
  const dir = t.testdir({})
  const first = writeCertificatePair(dir, 'one', generateCertificate({ names: ['localhost'], commonName: 'first' }))
  const second = writeCertificatePair(dir, 'two', generateCertificate({ names: ['localhost'], commonName: 'second' }))
  const live = { cert: path.join(dir, 'live.crt'), key: path.join(dir, 'live.key') }
  copyFileSync(first.certPath, live.cert)
  copyFileSync(first.keyPath, live.key)
  const listeners = `listeners: [{ name: tls, bind: "127.0.0.1:0", tls: { cert: ${JSON.stringify(live.cert)}, key: ${JSON.stringify(live.key)} } }]`
  const app = createApp(parseConfig(yaml({ a }, '', listeners), 'a.yaml'))
  t.teardown(() => app.stop())
  await app.start()
  const port = app.listeners[0]!.address().port
  const cn = () => new Promise<string>((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', rejectUnauthorized: false }, () => {
      resolve(String(s.getPeerCertificate().subject.CN))
      s.destroy()
    })
    s.once('error', reject)
  })
  t.equal(await cn(), 'first')
  copyFileSync(second.certPath, live.cert)
  copyFileSync(second.keyPath, live.key)
  t.match(await app.reload(parseConfig(yaml({ a }, '', listeners), 'a.yaml')), { ok: true })
  t.equal(await cn(), 'second', 'the same listener now serves the new certificate')
  t.equal(app.listeners[0]!.address().port, port, 'without rebinding')
})

t.test('start tries every listener and the admin API, then fails with one line for each that could not bind', async (t) => {
  const a = await origin(t, 'a')
  const [p1, p2, p3] = [await origin(t, 'busy'), await origin(t, 'busy'), await origin(t, 'busy')]
  const text = yaml({ a }, '', `listeners:\n  - { name: one, bind: "127.0.0.1:${p1}" }\n  - { name: two, bind: "127.0.0.1:0" }\n` +
    `  - { name: three, bind: "127.0.0.1:${p2}" }`).replace('admin: false', `admin: { bind: "127.0.0.1:${p3}" }`)
  const app = createApp(parseConfig(text, 'c.yaml'))
  t.teardown(() => app.stop())
  const err = await app.start().then(() => undefined, (e: unknown) => e)
  t.ok(err instanceof StartupError)
  t.same((err as StartupError).failures, [
    `c.yaml:4:24 listeners[0] (one) 127.0.0.1:${p1}: address already in use (EADDRINUSE)`,
    `c.yaml:6:26 listeners[2] (three) 127.0.0.1:${p2}: address already in use (EADDRINUSE)`,
    `c.yaml:1:16 admin 127.0.0.1:${p3}: address already in use (EADDRINUSE)`
  ])
  t.equal(app.listeners.length, 0, 'the listener that did start is closed again')
  t.equal(app.adminAddress(), undefined)
})

t.test('startFailure: the line for each kind of failure', async (t) => {
  const config = parseConfig(yaml({ a: 1 }, '', 'listeners: [{ name: web, bind: ":80" }]').replace('admin: false\n', ''), 'conf/site.yaml')
  const sys = (code: string): NodeJS.ErrnoException => Object.assign(new Error(`listen ${code}`), { code, syscall: 'listen' })
  t.equal(startFailure(config, 0, sys('EACCES')),
    'conf/site.yaml:2:32 listeners[0] (web) :80: permission denied (EACCES): port 80 is below 1024, which needs root or ' +
    'CAP_NET_BIND_SERVICE (e.g. `setcap cap_net_bind_service=+ep $(command -v node)`), or use a port >= 1024')
  t.equal(startFailure(config, 0, sys('EADDRNOTAVAIL')),
    'conf/site.yaml:2:32 listeners[0] (web) :80: 0.0.0.0 is not an address of this machine (EADDRNOTAVAIL); use one of its addresses, or 0.0.0.0 / :: for all')
  t.equal(startFailure(config, 'admin', new Error('admin: cannot listen', { cause: sys('EADDRINUSE') })),
    'conf/site.yaml admin 127.0.0.1:9901 (the default admin.bind): address already in use (EADDRINUSE)', 'no line: it was not written')
  t.equal(startFailure(config, 0, new CertificateError('key', 'TLS key file /k does not match certificate file /c')),
    'conf/site.yaml:2:32 listeners[0] (web) :80: TLS key file /k does not match certificate file /c', 'a certificate changed since it was checked')
  t.equal(startFailure(config, 0, new TypeError('x is not a function')), undefined, 'a bug is not dressed up as a config problem')
})
