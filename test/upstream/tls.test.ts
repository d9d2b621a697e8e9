// TLS to upstream servers at the pool level, over real sockets: which name is
// sent and verified, one connection whatever the Host header, failures mapped
// to connect errors with their real reason, and pool keys across reloads.
import { writeFileSync } from 'node:fs'
import t from 'tap'
import type { Test } from 'tap'
import { parseConfig } from '../../src/config/load.js'
import { Errors } from '../../src/errors.js'
import { Backend } from '../../src/upstream/backend.js'
import type { Logger } from 'pino'
import { ForwardHandler, connectFailure, retryableFailure, upstreamErrorKind, type ResponseSink } from '../../src/upstream/pool.js'
import type { ErrorKind } from '../../src/errors.js'
import { tlsFailure } from '../../src/upstream/tls.js'
import { CLIENT_CN, startTlsOrigin, testPkiFiles, type TestPkiFiles, type TlsSeen } from '../helpers/pki.js'

/** A backend of one server at `url` with this `tls` block (YAML flow mapping), its files checked at load. */
function backend (t: Test, url: string, tls: string, extra = ''): Backend {
  const config = parseConfig(`
listeners: [{ bind: "127.0.0.1:0" }]
backends:
  api:
    servers: [{ name: s1, url: "${url}" }]
    tls: ${tls}
    ${extra}
`, 'test.yaml', { checkFiles: true })
  const b = new Backend(config.backends.api!)
  t.teardown(() => b.close())
  return b
}

function mtls (pki: TestPkiFiles, extra = ''): string {
  return `{ ca: ${pki.caPath}, cert: ${pki.clientCertPath}, key: ${pki.clientKeyPath}${extra} }`
}

async function get (b: Backend, host = 'www.example.com'): Promise<TlsSeen> {
  const res = await b.servers[0]!.dispatcher.request({ path: '/', method: 'GET', headers: { host } })
  if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}`)
  return await res.body.json() as TlsSeen
}

async function failure (b: Backend): Promise<Error & { code?: string }> {
  try {
    await get(b)
  } catch (err) {
    return err as Error
  }
  throw new Error('expected the request to fail')
}

t.test('SNI and the verified name come from the config, never from the Host header', async (t) => {
  const pki = testPkiFiles(t)
  const origin = await startTlsOrigin(t)
  const byIp = await get(backend(t, origin.url, mtls(pki)), 'www.example.com')
  t.equal(byIp.servername, false, 'an IP URL sends no SNI (the IP is checked against the IP SANs)')
  t.equal(byIp.host, 'www.example.com', 'the Host header itself is forwarded')
  t.equal(byIp.clientCN, CLIENT_CN, 'the client certificate was presented')

  const named = await get(backend(t, origin.url, mtls(pki, ', servername: localhost')), 'www.example.com')
  t.equal(named.servername, 'localhost', 'servername is sent as SNI and verified against the DNS SANs')

  const wrong = await failure(backend(t, origin.url, mtls(pki, ', servername: other.test')))
  t.equal(wrong.code, 'ERR_TLS_CERT_ALTNAME_INVALID', 'a servername the certificate does not carry is refused')
})

t.test('requests with different Host headers share one connection', async (t) => {
  const pki = testPkiFiles(t)
  const origin = await startTlsOrigin(t)
  const b = backend(t, origin.url, mtls(pki), 'connections: 1')
  const seen = [await get(b, 'a.example.com'), await get(b, 'b.example.com'), await get(b, 'a.example.com')]
  t.same(seen.map((s) => s.connection), [1, 1, 1])
  t.equal(origin.connections(), 1, 'undici would reconnect whenever the Host (its default SNI) changes')
})

t.test('handshake failures keep their reason and are connect failures', async (t) => {
  const pki = testPkiFiles(t)
  const check = (t: Test, err: Error & { code?: string }, code: string | RegExp): void => {
    if (typeof code === 'string') t.equal(err.code, code)
    else t.match(err.code, code)
    t.equal(upstreamErrorKind(err), Errors.UPSTREAM_CONNECT, '502 LB_ERR_UPSTREAM_CONNECT')
    t.ok(connectFailure(err), 'counts as a connect failure (a free retry elsewhere)')
    t.ok(retryableFailure(err))
  }
  t.test('TLS 1.3: no client certificate', async (t) => {
    const origin = await startTlsOrigin(t)
    // The server refuses after our Finished; undici alone would say "other side closed".
    check(t, await failure(backend(t, origin.url, `{ ca: ${pki.caPath} }`)), 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED')
  })
  t.test('TLS 1.2: no client certificate', async (t) => {
    const origin = await startTlsOrigin(t, { maxVersion: 'TLSv1.2' })
    // OpenSSL 3.5 (Node 24) names the same alert SSL/TLS where 3.0 said SSLV3.
    check(t, await failure(backend(t, origin.url, `{ ca: ${pki.caPath} }`)), /^ERR_SSL_(SSLV3|SSL\/TLS)_ALERT_HANDSHAKE_FAILURE$/)
  })
  t.test('minVersion above what the server speaks', async (t) => {
    const origin = await startTlsOrigin(t, { maxVersion: 'TLSv1.2' })
    check(t, await failure(backend(t, origin.url, mtls(pki, ', minVersion: TLSv1.3'))), 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION')
  })
  t.test('a CA that did not sign the server certificate', async (t) => {
    const origin = await startTlsOrigin(t, { requireClientCert: false })
    check(t, await failure(backend(t, origin.url, `{ ca: ${pki.strangerCaPath} }`)), 'SELF_SIGNED_CERT_IN_CHAIN')
    check(t, await failure(backend(t, origin.url, '{}')), 'SELF_SIGNED_CERT_IN_CHAIN')
    t.equal((await get(backend(t, origin.url, `{ ca: ${pki.strangerCaPath}, insecureSkipVerify: true }`))).servername, false,
      'insecureSkipVerify accepts it')
  })
})

t.test('tlsFailure knows TLS codes from socket and HTTP ones', async (t) => {
  for (const code of ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'CERT_HAS_EXPIRED', 'ERR_TLS_CERT_ALTNAME_INVALID',
    'ERR_SSL_WRONG_VERSION_NUMBER', 'ERR_TLS_HANDSHAKE_TIMEOUT', 'EPROTO']) {
    t.ok(tlsFailure(code), code)
    t.equal(upstreamErrorKind(Object.assign(new Error(code), { code })), Errors.UPSTREAM_CONNECT, `${code} → UF`)
  }
  for (const code of [undefined, 'ECONNRESET', 'UND_ERR_SOCKET', 'HPE_INVALID_CONSTANT', 'CERT']) t.notOk(tlsFailure(code), String(code))
})

t.test('the pool key follows the TLS settings and the files\' contents', async (t) => {
  const pki = testPkiFiles(t)
  const key = (tls: string): string => backend(t, 'https://127.0.0.1:9', tls).servers[0]!.poolKey
  const base = key(mtls(pki))
  t.equal(key(mtls(pki)), base, 'same settings, same files: the server and its pool are kept on reload')
  t.not(key(mtls(pki, ', minVersion: TLSv1.3')), base, 'a setting changed')
  t.not(key(mtls(pki, ', servername: localhost')), base)
  t.not(key(mtls(pki, ', insecureSkipVerify: true')), base)
  writeFileSync(pki.caPath, `${pki.ca.certPem}${pki.stranger.certPem}`)
  t.not(key(mtls(pki)), base, 'the same CA path with new contents')
  t.notMatch(base, /PRIVATE KEY|BEGIN/, 'a hash of the files, never their text')
  const plain = parseConfig('listeners: [{ bind: ":0" }]\nbackends: { api: { servers: [{ url: "http://127.0.0.1:9" }] } }\n', '')
  const b = new Backend(plain.backends.api!)
  t.teardown(() => b.close())
  t.equal(b.tls, undefined, 'http:// servers: no TLS')
})

t.test('a config parsed without reading its files reads them when the backend is built', async (t) => {
  const pki = testPkiFiles(t)
  const origin = await startTlsOrigin(t)
  const yaml = (tls: string): string => `listeners: [{ bind: ":0" }]\nbackends: { api: { servers: [{ url: "${origin.url}" }], tls: ${tls} } }\n`
  const lazy = parseConfig(yaml(mtls(pki)), '')
  t.equal(lazy.backends.api?.tls?.pem, undefined)
  const b = new Backend(lazy.backends.api!)
  t.teardown(() => b.close())
  t.equal((await get(b)).clientCN, CLIENT_CN)
  t.equal(b.servers[0]!.poolKey, backend(t, origin.url, mtls(pki)).servers[0]!.poolKey, 'the same pool key as a config read with its files')
  writeFileSync(pki.clientKeyPath, pki.stranger.keyPem)
  t.throws(() => new Backend(parseConfig(yaml(mtls(pki)), '').backends.api!), /is not the private key of the certificate in/,
    'bad files throw (a reload is then rejected)')
})

t.test('a TLS failure is logged with its code where the request fails', async (t) => {
  const pki = testPkiFiles(t)
  const origin = await startTlsOrigin(t)
  const warnings: Array<{ obj: Record<string, unknown>, msg: string }> = []
  const log = { warn: (obj: Record<string, unknown>, msg: string) => { warnings.push({ obj, msg }) } } as unknown as Logger
  const config = parseConfig(`
listeners: [{ bind: "127.0.0.1:0" }]
backends: { api: { servers: [{ name: s1, url: "${origin.url}" }], tls: { ca: ${pki.strangerCaPath} } } }
`, 'test.yaml', { checkFiles: true })
  const b = new Backend(config.backends.api!, { log })
  t.teardown(() => b.close())
  const failed = await new Promise<ErrorKind>((resolve) => {
    const sink = {
      responseInterim: () => {},
          responseHead: () => true,
      responseData: () => true,
      responseEnd: () => {},
      responseError: (kind: ErrorKind) => { resolve(kind) },
      fault: (err: unknown) => { throw err }
    }
    const typed: ResponseSink = sink
    new ForwardHandler(b.servers[0]!, b, { released: () => {} }, typed, (_status, raw) => [...raw], false)
      .dispatch({ path: '/', method: 'GET', headers: ['host', 'a.test'], body: null })
  })
  t.equal(failed, Errors.UPSTREAM_CONNECT)
  t.equal(b.servers[0]!.failures, 1)
  t.match(warnings, [{
    msg: 'upstream TLS failure',
    obj: { backend: 'api', shard: 'default', server: 's1', url: origin.url, code: 'SELF_SIGNED_CERT_IN_CHAIN', reason: /self-signed/, flag: 'UF' }
  }])
})
