// A throwaway PKI for backend TLS tests: a CA, a server certificate it signed
// for 127.0.0.1/localhost, a client certificate it signed, and a stranger CA,
// written as PEM files into a temp dir removed on teardown; plus a real HTTPS
// origin that may require a client certificate. Keys are generated once per
// test process (the slow part).
import https from 'node:https'
import type { AddressInfo } from 'node:net'
import type { TLSSocket } from 'node:tls'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { generateCertificate, generateCertificateAuthority, type CertificatePair } from '../../src/certs.js'
import { tempDir, type Teardown } from './certs.js'

export interface TestPki {
  readonly ca: CertificatePair
  /** Signed by `ca` for localhost, 127.0.0.1 and ::1. */
  readonly server: CertificatePair
  /** Signed by `ca`, CN `switchyard-client`, for TLS clients only. */
  readonly client: CertificatePair
  /** A CA that signed nothing here. */
  readonly stranger: CertificatePair
}

export interface TestPkiFiles {
  readonly dir: string
  /** Absolute paths: `ca.pem`, `client.crt`, `client.key`, `stranger-ca.pem`. */
  readonly caPath: string
  readonly clientCertPath: string
  readonly clientKeyPath: string
  readonly strangerCaPath: string
}

export const CLIENT_CN = 'switchyard-client'

let memo: TestPki | undefined

export function testPki (): TestPki {
  if (memo !== undefined) return memo
  const ca = generateCertificateAuthority({ commonName: 'Switchyard test CA' })
  memo = {
    ca,
    server: generateCertificate({ names: ['localhost', '127.0.0.1', '::1'], issuer: ca }),
    client: generateCertificate({ names: ['switchyard-client.test'], commonName: CLIENT_CN, issuer: ca, usage: ['client'] }),
    stranger: generateCertificateAuthority({ commonName: 'Stranger CA' })
  }
  return memo
}

/** The PKI's files for a config to name; removed on teardown. */
export function testPkiFiles (t: Teardown): TestPki & TestPkiFiles {
  const pki = testPki()
  const dir = tempDir(t)
  const write = (name: string, text: string): string => {
    const path = join(dir, name)
    writeFileSync(path, text, { mode: 0o600 })
    return path
  }
  return {
    ...pki,
    dir,
    caPath: write('ca.pem', pki.ca.certPem),
    clientCertPath: write('client.crt', pki.client.certPem),
    clientKeyPath: write('client.key', pki.client.keyPem),
    strangerCaPath: write('stranger-ca.pem', pki.stranger.certPem)
  }
}

/** What the origin saw of one request. */
export interface TlsSeen {
  readonly path: string
  readonly host: string | undefined
  /** SNI the client sent; false when none. */
  readonly servername: string | false
  /** CN of the client certificate, when one was presented. */
  readonly clientCN: string | undefined
  /** Which TLS connection (1, 2, …) carried it. */
  readonly connection: number
}

export interface TlsOrigin {
  readonly port: number
  /** `https://127.0.0.1:PORT` */
  readonly url: string
  readonly requests: TlsSeen[]
  /** TLS connections that completed a handshake. */
  connections (): number
}

export interface TlsOriginOptions {
  /** Require a client certificate signed by the test CA (default true). */
  readonly requireClientCert?: boolean
  /** Highest TLS version offered (default: Node's, TLSv1.3). */
  readonly maxVersion?: 'TLSv1.2' | 'TLSv1.3'
  /** The certificate it presents (default the PKI's `server`). */
  readonly serverCert?: CertificatePair
}

/** A server certificate for 127.0.0.1/localhost signed by the stranger CA: one the test CA does not vouch for. */
export function strangerServerCert (): CertificatePair {
  strangerServer ??= generateCertificate({ names: ['localhost', '127.0.0.1'], issuer: testPki().stranger })
  return strangerServer
}

let strangerServer: CertificatePair | undefined

/**
 * An HTTPS origin on 127.0.0.1 with the PKI's server certificate. It answers
 * every request 200 with a JSON TlsSeen, and `/healthz` with `ok`.
 */
export async function startTlsOrigin (t: Teardown, opts: TlsOriginOptions = {}): Promise<TlsOrigin> {
  const pki = testPki()
  const requests: TlsSeen[] = []
  const ids = new WeakMap<TLSSocket, number>()
  let connections = 0
  const own = opts.serverCert ?? pki.server
  const server = https.createServer({
    key: own.keyPem,
    cert: own.certPem,
    ca: pki.ca.certPem,
    requestCert: opts.requireClientCert !== false,
    rejectUnauthorized: opts.requireClientCert !== false,
    ...(opts.maxVersion === undefined ? {} : { maxVersion: opts.maxVersion })
  }, (req, res) => {
    const socket = req.socket as TLSSocket
    const peer = socket.getPeerCertificate()
    const seen: TlsSeen = {
      path: req.url ?? '',
      host: req.headers.host,
      servername: (socket as TLSSocket & { servername: string | false }).servername,
      clientCN: (peer.subject as { CN?: string } | undefined)?.CN,
      connection: ids.get(socket) ?? 0
    }
    requests.push(seen)
    const body = req.url === '/healthz' ? 'ok' : JSON.stringify(seen)
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) })
    res.end(body)
  })
  server.on('secureConnection', (socket: TLSSocket) => { ids.set(socket, ++connections) })
  // Refused handshakes are what some tests are about: not worth a crash.
  server.on('tlsClientError', () => {})
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => { server.off('error', reject); resolve() })
  })
  t.teardown(() => new Promise<void>((resolve) => {
    server.close(() => resolve())
    server.closeAllConnections()
  }))
  const port = (server.address() as AddressInfo).port
  return { port, url: `https://127.0.0.1:${port}`, requests, connections: () => connections }
}
