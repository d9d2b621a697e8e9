import t from 'tap'
import { X509Certificate, createPrivateKey } from 'node:crypto'
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { once } from 'node:events'
import { connect, createServer } from 'node:tls'
import type { AddressInfo } from 'node:net'
import type { PeerCertificate, TLSSocket } from 'node:tls'
import forge from 'node-forge'
import { ensureDevCertificate, generateCertificate, generateCertificateAuthority, writeCertificatePair } from '../src/certs.js'
import { tempDir, testCertificate, testCertificatePair } from './helpers/certs.js'
import type { Teardown } from './helpers/certs.js'

const SERVER_AUTH = '1.3.6.1.5.5.7.3.1'
const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2'

t.test('generateCertificate puts DNS names and IPs in the right SAN types', async (t) => {
  const names = ['localhost', 'api.test', '127.0.0.1', '::1', '2001:db8::1:2', '::ffff:192.0.2.1']
  const pair = generateCertificate({ names, commonName: 'Switchyard dev' })
  const x509 = new X509Certificate(pair.certPem)

  t.equal(x509.subject, 'CN=Switchyard dev')
  t.equal(x509.issuer, 'CN=Switchyard dev', 'self-signed')
  t.ok(x509.verify(x509.publicKey), 'signature verifies with its own key')
  t.ok(x509.checkPrivateKey(createPrivateKey(pair.keyPem)), 'key matches')
  t.match(x509.subjectAltName, /^DNS:localhost, DNS:api\.test, IP Address:127\.0\.0\.1, IP Address:/)
  t.equal(x509.checkHost('localhost'), 'localhost')
  t.equal(x509.checkHost('api.test'), 'api.test')
  t.equal(x509.checkHost('other.test'), undefined)
  for (const ip of ['127.0.0.1', '::1', '2001:db8::1:2', '::ffff:192.0.2.1']) {
    t.equal(x509.checkIP(ip), ip, `IP SAN ${ip}`)
  }
  t.equal(x509.checkIP('::2'), undefined)
  t.equal(x509.checkIP('127.0.0.2'), undefined)
  t.equal(x509.checkHost('127.0.0.1'), undefined, 'an IP is not written as a DNS name')
})

t.test('generateCertificate sets serial, validity and extensions', async (t) => {
  const before = Date.now()
  const pair = generateCertificate({ names: ['a.test'], days: 10 })
  const after = Date.now()
  const x509 = new X509Certificate(pair.certPem)
  t.equal(x509.subject, 'CN=a.test', 'CN defaults to the first name')
  t.equal(x509.ca, false)
  t.same(x509.keyUsage, [SERVER_AUTH], 'extKeyUsage serverAuth')
  t.match(x509.serialNumber, /^[0-7][0-9A-F]{31}$/i, '128-bit positive serial')

  const from = new Date(x509.validFrom).getTime()
  const to = new Date(x509.validTo).getTime()
  // A minute before it was made (RSA key generation can take seconds on a loaded machine), whole seconds.
  t.ok(from <= after - 59_000 && from >= before - 61_000, 'valid from about a minute ago')
  t.equal(to - from, 10 * 24 * 60 * 60 * 1000, 'valid for `days`')

  const cert = forge.pki.certificateFromPem(pair.certPem)
  const bc = cert.getExtension('basicConstraints') as { cA?: boolean, critical?: boolean } | null
  t.equal(bc?.cA, false)
  const ku = cert.getExtension('keyUsage') as Record<string, boolean> | null
  t.equal(ku?.['digitalSignature'], true)
  t.equal(ku?.['keyEncipherment'], true)
  t.equal(ku?.['keyCertSign'], false)
  t.equal(cert.siginfo.algorithmOid, forge.pki.oids['sha256WithRSAEncryption'], 'sha256 signature')
  t.equal(cert.publicKey && (cert.publicKey as forge.pki.rsa.PublicKey).n.bitLength(), 2048)

  const other = new X509Certificate(generateCertificate({ names: ['a.test'] }).certPem)
  t.not(other.serialNumber, x509.serialNumber, 'serials are random')
})

t.test('generateCertificate rejects bad input', async (t) => {
  t.throws(() => generateCertificate({ names: [] }), /at least one name/)
  t.throws(() => generateCertificate({ names: ['a.test'], days: 0 }), /days must be positive/)
})

t.test('the generated certificate validates as its own CA for 127.0.0.1, localhost and ::1', async (t) => {
  const pair = generateCertificate({ names: ['localhost', '127.0.0.1', '::1'] })
  const server = createServer({ key: pair.keyPem, cert: pair.certPem }, (socket) => { socket.end() })
  server.listen(0, '127.0.0.1')
  t.teardown(() => { server.close() })
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo

  const byIp = await handshake(t, { host: '127.0.0.1', port, ca: pair.certPem })
  t.equal(byIp.authorized, true, '127.0.0.1 (IP SAN, no SNI)')
  const byName = await handshake(t, { host: '127.0.0.1', port, servername: 'localhost', ca: pair.certPem })
  t.equal(byName.authorized, true, 'localhost (DNS SAN)')
  // ::1 without needing IPv6 on this host: OpenSSL's own IP match (tls.checkServerIdentity
  // compares the text OpenSSL prints, 0:0:0:0:0:0:0:1, with '::1' on Node 22, and fails).
  t.equal(new X509Certificate(pair.certPem).checkIP('::1'), '::1', '::1 (IPv6 SAN)')
  t.equal(new X509Certificate(pair.certPem).checkIP('::2'), undefined, '::2 is not in it')

  await t.rejects(handshake(t, { host: '127.0.0.1', port, servername: 'other.test', ca: pair.certPem }),
    { code: 'ERR_TLS_CERT_ALTNAME_INVALID' }, 'a name not in the SANs is refused')
  const stranger = generateCertificate({ names: ['localhost'] })
  await t.rejects(handshake(t, { host: '127.0.0.1', port, ca: stranger.certPem }),
    { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' }, 'an unrelated CA is refused')
})

t.test('a CA signs server and client certificates that verify against it, and only it', async (t) => {
  const ca = generateCertificateAuthority({ commonName: 'Test CA', days: 30 })
  const caX509 = new X509Certificate(ca.certPem)
  t.equal(caX509.ca, true, 'basicConstraints cA')
  t.equal(caX509.subject, 'CN=Test CA')
  t.equal(caX509.issuer, 'CN=Test CA', 'self-signed')
  const caExt = forge.pki.certificateFromPem(ca.certPem).getExtension('keyUsage') as Record<string, boolean> | null
  t.equal(caExt?.['keyCertSign'], true)

  const server = generateCertificate({ names: ['localhost', '127.0.0.1'], issuer: ca })
  const serverX509 = new X509Certificate(server.certPem)
  t.equal(serverX509.issuer, 'CN=Test CA')
  t.ok(serverX509.checkIssued(caX509) && serverX509.verify(caX509.publicKey), 'signed by the CA')
  t.ok(serverX509.checkPrivateKey(createPrivateKey(server.keyPem)), 'its own key, not the CA\'s')
  t.same(serverX509.keyUsage, [SERVER_AUTH])

  const client = generateCertificate({ names: ['client.test'], commonName: 'client-1', issuer: ca, usage: ['client'] })
  const clientX509 = new X509Certificate(client.certPem)
  t.equal(clientX509.subject, 'CN=client-1')
  t.same(clientX509.keyUsage, [CLIENT_AUTH])
  t.same(new X509Certificate(generateCertificate({ names: ['x.test'], usage: ['server', 'client'] }).certPem).keyUsage,
    [SERVER_AUTH, CLIENT_AUTH])
  t.throws(() => generateCertificate({ names: ['x.test'], usage: [] }), /usage/)

  // A real mTLS handshake: the server trusts the CA for clients, the client trusts it for the server.
  const tlsServer = createServer({ key: server.keyPem, cert: server.certPem, ca: ca.certPem, requestCert: true, rejectUnauthorized: true },
    (socket) => { socket.end((socket.getPeerCertificate().subject as { CN?: string } | undefined)?.CN ?? '') })
  tlsServer.listen(0, '127.0.0.1')
  t.teardown(() => { tlsServer.close() })
  await once(tlsServer, 'listening')
  const { port } = tlsServer.address() as AddressInfo
  const socket = connect({ host: '127.0.0.1', port, ca: ca.certPem, cert: client.certPem, key: client.keyPem })
  t.teardown(() => { socket.destroy() })
  const chunks: Buffer[] = []
  socket.on('data', (c: Buffer) => chunks.push(c))
  await once(socket, 'end')
  t.equal(socket.authorized, true, 'server verified against the CA')
  t.equal(Buffer.concat(chunks).toString(), 'client-1', 'the server saw the client certificate')

  const other = generateCertificateAuthority({ commonName: 'Other CA' })
  await t.rejects(handshake(t, { host: '127.0.0.1', port, ca: other.certPem }), { code: 'SELF_SIGNED_CERT_IN_CHAIN' },
    'another CA does not verify it')
})

t.test('writeCertificatePair writes both files, the key with mode 0600', async (t) => {
  const dir = join(tempDir(t), 'nested', 'certs')
  const pair = generateCertificate({ names: ['a.test'] })
  const files = writeCertificatePair(dir, 'site', pair)
  t.same(files, { certPath: join(dir, 'site.crt'), keyPath: join(dir, 'site.key') })
  t.equal(readFileSync(files.certPath, 'utf8'), pair.certPem)
  t.equal(readFileSync(files.keyPath, 'utf8'), pair.keyPem)
  if (process.platform !== 'win32') t.equal(statSync(files.keyPath).mode & 0o777, 0o600)

  // Overwriting a key that was world-readable still leaves it 0600.
  writeFileSync(files.keyPath, 'old', { mode: 0o644 })
  writeCertificatePair(dir, 'site', pair)
  if (process.platform !== 'win32') t.equal(statSync(files.keyPath).mode & 0o777, 0o600)
  t.equal(readFileSync(files.keyPath, 'utf8'), pair.keyPem)
})

t.test('ensureDevCertificate creates once, then keeps the files', async (t) => {
  const dir = join(tempDir(t), 'certs')
  const first = await ensureDevCertificate(dir)
  t.same(first, { certPath: join(dir, 'dev.crt'), keyPath: join(dir, 'dev.key'), created: true })
  const pem = readFileSync(first.certPath, 'utf8')
  const x509 = new X509Certificate(pem)
  t.equal(x509.subject, 'CN=Switchyard dev')
  t.equal(x509.checkHost('localhost'), 'localhost')
  t.equal(x509.checkIP('127.0.0.1'), '127.0.0.1')
  t.equal(x509.checkIP('::1'), '::1')
  t.ok(x509.checkPrivateKey(createPrivateKey(readFileSync(first.keyPath))))

  const second = await ensureDevCertificate(dir)
  t.equal(second.created, false)
  t.equal(readFileSync(second.certPath, 'utf8'), pem, 'existing certificate left alone')

  rmSync(first.keyPath)
  const third = await ensureDevCertificate(dir)
  t.equal(third.created, true, 'a missing key means a new pair')
  t.ok(existsSync(third.keyPath))
  t.not(readFileSync(third.certPath, 'utf8'), pem)
})

t.test('test helper: cached localhost pair written to a temp dir removed on teardown', async (t) => {
  let dir = ''
  await t.test('inner', async (t) => {
    const cert = testCertificate(t)
    dir = cert.dir
    t.equal(readFileSync(cert.certPath, 'utf8'), cert.certPem)
    t.equal(readFileSync(cert.keyPath, 'utf8'), cert.keyPem)
    t.equal(new X509Certificate(cert.certPem).checkIP('127.0.0.1'), '127.0.0.1')
    t.equal(testCertificatePair(), testCertificatePair(), 'generated once per process')
    t.not(testCertificatePair(['a.test']).certPem, cert.certPem, 'keyed by names')
  })
  t.equal(existsSync(dir), false, 'temp dir removed')
})

interface HandshakeResult { authorized: boolean, peer: PeerCertificate }

function handshake (t: Teardown, opts: { host: string, port: number, ca: string, servername?: string }): Promise<HandshakeResult> {
  return new Promise((resolve, reject) => {
    const socket: TLSSocket = connect({ ...opts, rejectUnauthorized: true })
    t.teardown(() => { socket.destroy() })
    socket.once('secureConnect', () => {
      resolve({ authorized: socket.authorized, peer: socket.getPeerCertificate() })
      socket.destroy()
    })
    socket.once('error', reject)
  })
}
