import t from 'tap'
import { X509Certificate } from 'node:crypto'
import { once } from 'node:events'
import { rmSync } from 'node:fs'
import type { Http2SecureServer } from 'node:http2'
import { createServer as createHttpsServer } from 'node:https'
import { join } from 'node:path'
import { connect } from 'node:tls'
import type { AddressInfo, Server } from 'node:net'
import type { ConnectionOptions } from 'node:tls'
import { generateCertificate, writeCertificatePair } from '../../src/certs.js'
import type { CertificatePair } from '../../src/certs.js'
import { createSecureH2Server, createTlsContexts } from '../../src/listener/tls.js'
import type { TlsContexts } from '../../src/listener/tls.js'
import type { CertificateConfig, TlsConfig } from '../../src/config/schema.js'
import { tempDir } from '../helpers/certs.js'
import type { Teardown } from '../helpers/certs.js'

// Two pairs, generated once for the file: A serves a.test (and is the default),
// B serves *.b.test. The CN tells which one a client got.
const pairA = generateCertificate({ names: ['a.test'], commonName: 'pair-a' })
const pairB = generateCertificate({ names: ['*.b.test'], commonName: 'pair-b' })

function writePairs (t: Teardown): { dir: string, a: CertificateConfig, b: CertificateConfig } {
  const dir = tempDir(t)
  return { dir, a: certificateConfig(dir, 'a', pairA), b: certificateConfig(dir, 'b', pairB) }
}

function certificateConfig (dir: string, baseName: string, pair: CertificatePair): CertificateConfig {
  const { certPath, keyPath } = writeCertificatePair(dir, baseName, pair)
  return { cert: certPath, key: keyPath, serverNames: [] }
}

function tlsConfig (certificates: CertificateConfig[], extra: Partial<TlsConfig> = {}): TlsConfig {
  return { certificates, minVersion: 'TLSv1.2', http2: true, ...extra }
}

async function startHttp2 (t: Teardown, contexts: TlsContexts): Promise<{ port: number, server: Http2SecureServer }> {
  const server = createSecureH2Server({ ...contexts.serverOptions }, (_req, res) => { res.end('ok') })
  return await listen(t, server)
}

async function listen<S extends Server> (t: Teardown, server: S): Promise<{ port: number, server: S }> {
  server.listen(0, '127.0.0.1')
  t.teardown(() => { server.close() })
  await once(server, 'listening')
  return { port: (server.address() as AddressInfo).port, server }
}

interface Handshake { cn: string, alpn: string | false, protocol: string | null }

/** A raw TLS handshake; resolves with the served certificate's CN and the ALPN result. */
function handshake (t: Teardown, port: number, opts: ConnectionOptions = {}): Promise<Handshake> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...opts })
    t.teardown(() => { socket.destroy() })
    socket.once('secureConnect', () => {
      const cn = socket.getPeerCertificate().subject.CN
      resolve({ cn: Array.isArray(cn) ? cn.join(',') : String(cn), alpn: socket.alpnProtocol ?? false, protocol: socket.getProtocol() })
      socket.destroy()
    })
    socket.once('error', reject)
  })
}

t.test('SNI picks the pair: exact, one-label wildcard, else the first', async (t) => {
  const { a, b } = writePairs(t)
  const contexts = createTlsContexts(tlsConfig([a, b]))
  t.same(contexts.names(), ['a.test', '*.b.test'], 'names read from the certificates')
  const { port } = await startHttp2(t, contexts)

  const cases: Array<[string | undefined, string]> = [
    ['a.test', 'pair-a'],
    ['A.Test', 'pair-a'],
    ['a.test.', 'pair-a'],
    ['x.b.test', 'pair-b'],
    ['X.B.TEST', 'pair-b'],
    ['x.b.test.', 'pair-b'],
    ['b.test', 'pair-a'],
    ['y.x.b.test', 'pair-a'],
    ['unknown.test', 'pair-a'],
    [undefined, 'pair-a']
  ]
  for (const [servername, cn] of cases) {
    const opts = servername === undefined ? {} : { servername }
    t.equal((await handshake(t, port, opts)).cn, cn, `${servername ?? '(no SNI)'} → ${cn}`)
  }

  // Reversed, so an exact match is not also the default.
  const reversed = await startHttp2(t, createTlsContexts(tlsConfig([b, a])))
  for (const [servername, cn] of [['A.Test.', 'pair-a'], ['unknown.test', 'pair-b']] as const) {
    t.equal((await handshake(t, reversed.port, { servername })).cn, cn, `${servername} → ${cn} (B first)`)
  }
})

t.test('serverNames from config override the certificate; the first pair wins a shared name', async (t) => {
  const { a, b } = writePairs(t)
  const contexts = createTlsContexts(tlsConfig([
    a,
    { ...b, serverNames: ['C.Test.', 'a.test', '*.d.test'] }
  ]))
  t.same(contexts.names(), ['a.test', 'c.test', 'a.test', '*.d.test'])
  const { port } = await startHttp2(t, contexts)
  t.equal((await handshake(t, port, { servername: 'c.test' })).cn, 'pair-b')
  t.equal((await handshake(t, port, { servername: 'e.d.test' })).cn, 'pair-b')
  t.equal((await handshake(t, port, { servername: 'a.test' })).cn, 'pair-a', 'config order breaks the tie')
  t.equal((await handshake(t, port, { servername: 'x.b.test' })).cn, 'pair-a', 'cert SANs ignored when serverNames given')
})

t.test('the CN is the name only when the certificate has no DNS SAN', async (t) => {
  const dir = tempDir(t)
  const ipOnly = writeCertificatePair(dir, 'ip', generateCertificate({ names: ['127.0.0.1'], commonName: 'CN.Test' }))
  const contexts = createTlsContexts(tlsConfig([{ cert: ipOnly.certPath, key: ipOnly.keyPath, serverNames: [] }]))
  t.same(contexts.names(), ['cn.test'])
})

t.test('ALPN and allowHTTP1', async (t) => {
  const { a } = writePairs(t)
  const contexts = createTlsContexts(tlsConfig([a]))
  t.equal(contexts.serverOptions.allowHTTP1, true)
  const { port } = await startHttp2(t, contexts)
  t.equal((await handshake(t, port, { ALPNProtocols: ['h2', 'http/1.1'] })).alpn, 'h2')
  t.equal((await handshake(t, port, { ALPNProtocols: ['http/1.1', 'h2'] })).alpn, 'h2', 'ours by preference')
  t.equal((await handshake(t, port, { ALPNProtocols: ['http/1.1'] })).alpn, 'http/1.1')
  t.equal((await handshake(t, port, { ALPNProtocols: ['http/1.0', 'http/1.1'] })).alpn, 'http/1.1')
  t.equal((await handshake(t, port, { ALPNProtocols: ['http/1.0'] })).alpn, 'http/1.0', 'curl --http1.0')
  t.equal((await handshake(t, port, { servername: 'a.test', ALPNProtocols: ['http/1.0'] })).alpn, 'http/1.0', 'with SNI too')
  t.equal((await handshake(t, port)).alpn, false, 'no ALPN')
  await t.rejects(handshake(t, port, { ALPNProtocols: ['spdy/3'] }), { code: 'ERR_SSL_TLSV1_ALERT_NO_APPLICATION_PROTOCOL' },
    'nothing of ours: refused')

  // http2: false. node:http2 takes what ALPN did not make HTTP/1 as h2, so such a listener is an https server.
  const h1 = createTlsContexts(tlsConfig([a], { http2: false }))
  const https = await listen(t, createHttpsServer({ ...h1.serverOptions }, (_req, res) => { res.end('ok') }))
  t.equal((await handshake(t, https.port, { ALPNProtocols: ['h2', 'http/1.1'] })).alpn, 'http/1.1')
  t.equal((await handshake(t, https.port, { ALPNProtocols: ['http/1.0'] })).alpn, 'http/1.0')
  await t.rejects(handshake(t, https.port, { ALPNProtocols: ['h2'] }), { code: 'ERR_SSL_TLSV1_ALERT_NO_APPLICATION_PROTOCOL' },
    'h2 alone: refused, h2 is off')
})

t.test('minVersion is enforced', async (t) => {
  const { a } = writePairs(t)
  const v12 = await startHttp2(t, createTlsContexts(tlsConfig([a])))
  await t.rejects(handshake(t, v12.port, { maxVersion: 'TLSv1.1', minVersion: 'TLSv1' }), 'a TLS 1.1 client is refused')
  t.equal((await handshake(t, v12.port, { maxVersion: 'TLSv1.2' })).protocol, 'TLSv1.2', 'TLS 1.2 is accepted')

  const v13 = await startHttp2(t, createTlsContexts(tlsConfig([a], { minVersion: 'TLSv1.3' })))
  t.equal(createTlsContexts(tlsConfig([a], { minVersion: 'TLSv1.3' })).serverOptions.minVersion, 'TLSv1.3')
  // The server answers with a protocol_version alert: it is the one refusing.
  const refused = { code: 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION' }
  await t.rejects(handshake(t, v13.port, { maxVersion: 'TLSv1.2' }), refused, 'minVersion TLSv1.3 refuses TLS 1.2')
  await t.rejects(handshake(t, v13.port, { maxVersion: 'TLSv1.2', servername: 'a.test' }), refused, 'also through SNI')
  t.equal((await handshake(t, v13.port)).protocol, 'TLSv1.3')
})

t.test('reload swaps certificates for the next handshake', async (t) => {
  const { dir, a, b } = writePairs(t)
  const contexts = createTlsContexts(tlsConfig([a, b]))
  const { port, server } = await startHttp2(t, contexts)
  contexts.attach(server)

  const newA = generateCertificate({ names: ['a.test'], commonName: 'pair-a2' })
  writeCertificatePair(dir, 'a', newA)
  t.equal((await handshake(t, port, { servername: 'a.test' })).cn, 'pair-a', 'files are not read per handshake')

  contexts.reload()
  t.equal((await handshake(t, port, { servername: 'a.test' })).cn, 'pair-a2', 'SNI client sees the new cert')
  t.equal((await handshake(t, port, { servername: 'unknown.test' })).cn, 'pair-a2', 'SNI fallback is the new default')
  t.equal((await handshake(t, port)).cn, 'pair-a2', 'a client without SNI sees it via the attached server')
  t.equal((await handshake(t, port, { servername: 'x.b.test' })).cn, 'pair-b')

  // A reload that fails keeps serving what was loaded.
  rmSync(b.key)
  t.throws(() => { contexts.reload() }, { message: new RegExp(`TLS key file ${escape(b.key)} does not exist`) })
  t.equal((await handshake(t, port, { servername: 'x.b.test' })).cn, 'pair-b', 'old contexts kept')
  t.same(contexts.names(), ['a.test', '*.b.test'])
})

t.test('a detached server keeps its default context on reload', async (t) => {
  const { dir, a } = writePairs(t)
  const contexts = createTlsContexts(tlsConfig([a]))
  const { port, server } = await startHttp2(t, contexts)
  const detach = contexts.attach(server)
  detach()
  writeCertificatePair(dir, 'a', generateCertificate({ names: ['a.test'], commonName: 'pair-a2' }))
  contexts.reload()
  t.equal((await handshake(t, port)).cn, 'pair-a')
  t.equal((await handshake(t, port, { servername: 'a.test' })).cn, 'pair-a2')
})

t.test('bad files throw errors that name them', async (t) => {
  const { dir, a, b } = writePairs(t)
  const missing = join(dir, 'missing.crt')
  t.throws(() => createTlsContexts(tlsConfig([{ ...a, cert: missing }])),
    { message: `TLS certificate file ${missing} does not exist` })
  t.throws(() => createTlsContexts(tlsConfig([a, { ...b, key: join(dir, 'nope.key') }])),
    { message: new RegExp(`TLS key file ${escape(join(dir, 'nope.key'))} does not exist`) })
  t.throws(() => createTlsContexts(tlsConfig([{ ...a, key: b.key }])),
    { message: `TLS key file ${b.key} does not match certificate file ${a.cert}` })
  t.throws(() => createTlsContexts(tlsConfig([{ ...a, cert: a.key }])),
    { message: new RegExp(`TLS certificate file ${escape(a.key)} is not a valid PEM certificate`) })
  t.throws(() => createTlsContexts(tlsConfig([{ ...a, key: a.cert }])),
    { message: new RegExp(`TLS key file ${escape(a.cert)} is not a valid private key`) })
  t.throws(() => createTlsContexts(tlsConfig([])), { message: /no certificates/ })
})

t.test('the served certificate is the file on disk', async (t) => {
  const { a } = writePairs(t)
  const { port } = await startHttp2(t, createTlsContexts(tlsConfig([a])))
  const raw = await new Promise<Buffer>((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, servername: 'a.test', rejectUnauthorized: false })
    t.teardown(() => { socket.destroy() })
    socket.once('secureConnect', () => { resolve(socket.getPeerCertificate().raw); socket.destroy() })
    socket.once('error', reject)
  })
  t.equal(new X509Certificate(raw).fingerprint256, new X509Certificate(pairA.certPem).fingerprint256)
})

function escape (s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}
