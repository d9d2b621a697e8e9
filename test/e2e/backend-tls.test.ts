// TLS to backends end to end: a real proxy in front of real HTTPS origins that
// require a client certificate from a test CA. Verification, mTLS, SNI,
// failures as 502 LB_ERR_UPSTREAM_CONNECT with retries, health checks over the
// same TLS, and pools kept or rebuilt by a reload. Everything started here is
// stopped on teardown, even when a test fails.
import { writeFileSync } from 'node:fs'
import t from 'tap'
import { parseConfig } from '../../src/config/load.js'
import type { ServerStatus } from '../../src/upstream/backend.js'
import { h1 } from '../helpers/e2e.js'
import { CLIENT_CN, startTlsOrigin, strangerServerCert, testPkiFiles, type TestPkiFiles, type TlsSeen } from '../helpers/pki.js'
import { startProxy, type RunningProxy } from '../helpers/proxy.js'

const LISTENER = 'listeners: [{ name: plain, bind: "127.0.0.1:0" }]'

/** One route per backend: `/<name>/…` goes to backend `<name>`. */
function config (backends: Record<string, string>): string {
  const routes = Object.keys(backends).map((name) => `  - { match: { pathPrefix: /${name}/ }, backend: ${name} }`).join('\n')
  const blocks = Object.entries(backends).map(([name, body]) => `  ${name}:\n${body.replace(/^/gm, '    ')}`).join('\n')
  return `${LISTENER}\nroutes:\n${routes}\nbackends:\n${blocks}\n`
}

function backend (urls: readonly string[], tls: string, extra = ''): string {
  return `servers: [${urls.map((u) => `{ url: "${u}" }`).join(', ')}]\ntls: ${tls}\n${extra}`
}

function mtls (pki: TestPkiFiles, ca = pki.caPath, extra = ''): string {
  return `{ ca: ${ca}, cert: ${pki.clientCertPath}, key: ${pki.clientKeyPath}${extra} }`
}

async function seen (proxy: RunningProxy, path: string): Promise<TlsSeen> {
  const r = await h1(proxy.url('plain'), { path })
  if (r.status !== 200) throw new Error(`${path}: status ${r.status} ${r.headers['x-switchyard-error'] as string} ${r.text}`)
  return JSON.parse(r.text) as TlsSeen
}

/** Polls `check` every 25 ms until it holds, for up to `ms`. */
async function waitFor (what: string, check: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}

function server (proxy: RunningProxy, backendName: string, index = 0): ServerStatus {
  const s = proxy.app.status().find((b) => b.name === backendName)?.shards[0]?.servers[index]
  if (s === undefined) throw new Error(`no server ${index} in ${backendName}`)
  return s
}

t.test('mTLS through the proxy: verification, client certificate, SNI', async (t) => {
  const pki = testPkiFiles(t)
  const origin = await startTlsOrigin(t)
  const proxy = await startProxy(t, config({
    good: backend([origin.url], mtls(pki)),
    nocert: backend([origin.url], `{ ca: ${pki.caPath} }`),
    wrongca: backend([origin.url], mtls(pki, pki.strangerCaPath)),
    skip: backend([origin.url], mtls(pki, pki.strangerCaPath, ', insecureSkipVerify: true')),
    badname: backend([origin.url], mtls(pki, pki.caPath, ', servername: other.test')),
    named: backend([origin.url], mtls(pki, pki.caPath, ', servername: localhost'))
  }))

  t.test('the right CA and client certificate: the origin sees our certificate', async (t) => {
    const s = await seen(proxy, '/good/x')
    t.equal(s.path, '/good/x')
    t.equal(s.clientCN, CLIENT_CN)
    t.equal(s.servername, false, 'an IP server URL: no SNI, verified against the IP SAN')
    t.match(s.host, /^127\.0\.0\.1:\d+$/, 'the client\'s Host is passed, and is not used as SNI')
  })

  t.test('servername is sent as SNI', async (t) => {
    t.equal((await seen(proxy, '/named/')).servername, 'localhost')
  })

  for (const [name, why] of [['nocert', 'no client certificate'], ['wrongca', 'a CA that did not sign the origin'],
    ['badname', 'a servername the certificate does not carry']] as const) {
    t.test(`${why}: 502 LB_ERR_UPSTREAM_CONNECT`, async (t) => {
      const before = origin.requests.length
      const r = await h1(proxy.url('plain'), { path: `/${name}/` })
      t.equal(r.status, 502)
      t.equal(r.headers['x-switchyard-error'], 'LB_ERR_UPSTREAM_CONNECT')
      t.equal(origin.requests.length, before, 'nothing reached the origin\'s application')
      t.ok(server(proxy, name).failures >= 1, 'counted against the server')
    })
  }

  t.test('insecureSkipVerify with a wrong CA: 200', async (t) => {
    const s = await seen(proxy, '/skip/')
    t.equal(s.clientCN, CLIENT_CN, 'the client certificate is still sent')
  })
})

t.test('a replica that fails the handshake: the request is retried on another one', async (t) => {
  const pki = testPkiFiles(t)
  const impostor = await startTlsOrigin(t, { serverCert: strangerServerCert() })
  const origin = await startTlsOrigin(t)
  const proxy = await startProxy(t, config({ pair: backend([impostor.url, origin.url], mtls(pki)) }))
  for (let i = 0; i < 4; i++) t.equal((await seen(proxy, `/pair/${i}`)).clientCN, CLIENT_CN, `request ${i}`)
  t.equal(impostor.requests.length, 0)
  t.equal(origin.requests.length, 4, 'every request answered by the replica with a valid certificate')
  t.ok(server(proxy, 'pair', 0).failures >= 1, 'the impostor\'s failures are counted')
  t.equal(server(proxy, 'pair', 1).failures, 0)
})

t.test('health checks go over the same TLS: up with the right CA, down with a wrong one', async (t) => {
  const pki = testPkiFiles(t)
  const origin = await startTlsOrigin(t)
  const health = 'healthCheck: { path: /healthz, interval: 100ms, timeout: 90ms, rise: 1, fall: 1 }'
  const proxy = await startProxy(t, config({
    good: backend([origin.url], mtls(pki), health),
    wrongca: backend([origin.url], mtls(pki, pki.strangerCaPath), health)
  }))
  await waitFor('a passed check of the good backend', () => server(proxy, 'good').lastCheck?.ok === true)
  t.equal(server(proxy, 'good').healthy, true)
  const probe = origin.requests.find((r) => r.path === '/healthz')
  t.equal(probe?.clientCN, CLIENT_CN, 'the probe presented the client certificate')
  t.equal(probe?.servername, false, 'and the same SNI as the pool (none for an IP)')

  await waitFor('the wrong-CA backend marked down', () => !server(proxy, 'wrongca').healthy)
  t.match(server(proxy, 'wrongca').lastCheck, { ok: false, reason: /^tls error (SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE)$/ })
  const r = await h1(proxy.url('plain'), { path: '/wrongca/' })
  t.equal(r.headers['x-switchyard-error'], 'LB_ERR_NO_HEALTHY_SERVER', 'no traffic is sent to it')
  t.equal((await seen(proxy, '/good/')).clientCN, CLIENT_CN)
})

t.test('reload: unchanged TLS files keep the pool, a changed CA rebuilds it', async (t) => {
  const pki = testPkiFiles(t)
  const origin = await startTlsOrigin(t)
  const yaml = config({ api: backend([origin.url], mtls(pki)) })
  const proxy = await startProxy(t, yaml)
  const first = await seen(proxy, '/api/1')
  const same = await proxy.app.reload(parseConfig(yaml, 'test.yaml', { checkFiles: true }))
  t.match(same, { ok: true, kept: 1, added: 0, removed: 0 }, 'same settings and files: server and pool kept')
  t.equal((await seen(proxy, '/api/2')).connection, first.connection, 'still on the same connection')

  writeFileSync(pki.caPath, `${pki.stranger.certPem}${pki.ca.certPem}`)
  const changed = await proxy.app.reload(parseConfig(yaml, 'test.yaml', { checkFiles: true }))
  t.match(changed, { ok: true, kept: 0, added: 1, removed: 1 }, 'the CA file changed: a new pool')
  t.not((await seen(proxy, '/api/3')).connection, first.connection, 'a new connection, verified with the new CA file')

  writeFileSync(pki.clientKeyPath, 'not a key')
  const broken = await proxy.app.reload(parseConfig(yaml, 'test.yaml'))
  t.match(broken, { ok: false, errors: [/client\.key is not a PEM private key/] }, 'a bad file rejects the reload')
  t.equal((await seen(proxy, '/api/4')).clientCN, CLIENT_CN, 'and the running config keeps serving')
})
