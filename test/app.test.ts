// Reload as the composition root does it: what stays, what goes, what is
// re-read, and what a failed reload leaves untouched.
import { copyFileSync } from 'node:fs'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import path from 'node:path'
import tls from 'node:tls'
import t, { type Test } from 'tap'
import { request } from 'undici'
import { createApp } from '../src/app.js'
import { generateCertificate, writeCertificatePair } from '../src/certs.js'
import { parseConfig } from '../src/config/load.js'

async function origin (t: Test, name: string): Promise<number> {
  const server = http.createServer((req, res) => { req.resume(); res.end(name) })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => { server.close(() => resolve()); server.closeAllConnections() }))
  return (server.address() as AddressInfo).port
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
  t.match(result, { errors: [/EADDRINUSE/] })
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
