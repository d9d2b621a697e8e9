// Certificate files: loading and verifying a configured pair (the one place
// both `switchyard check` and a TLS listener do it), self-signed certificates
// for development and tests, and a private CA with server and client
// certificates signed by it (for TLS to backends and mTLS). The RSA key comes
// from node:crypto (native, fast); node-forge only builds and signs the X.509
// structure, which node:crypto cannot do.

import { X509Certificate, createPrivateKey, generateKeyPairSync, randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { isIP } from 'node:net'
import { join } from 'node:path'
import { createSecureContext } from 'node:tls'
import type { SecureContext } from 'node:tls'
import forge from 'node-forge'

/** Why a certificate/key pair cannot be served; `file` tells which of the two is at fault. */
export class CertificateError extends Error {
  override readonly name = 'CertificateError'
  readonly file: 'cert' | 'key'

  constructor (file: 'cert' | 'key', message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.file = file
  }
}

export interface LoadedCertificatePair {
  readonly cert: Buffer
  readonly key: Buffer
  /** The first certificate of the chain: the one the key must match. */
  readonly x509: X509Certificate
  readonly context: SecureContext
}

/**
 * Reads a PEM certificate chain and its private key, checks that the key
 * belongs to the certificate, and builds the secure context a TLS listener
 * serves: everything a listener does with the files, so a pair this accepts
 * is one a listener can start with. Used by config loading (`check`, start,
 * reload) and by the listener itself.
 * @throws CertificateError
 */
export function loadCertificatePair (certPath: string, keyPath: string, minVersion?: 'TLSv1.2' | 'TLSv1.3'): LoadedCertificatePair {
  const cert = readPairFile(certPath, 'cert')
  const key = readPairFile(keyPath, 'key')
  let x509: X509Certificate
  try {
    x509 = new X509Certificate(cert)
  } catch (err) {
    throw new CertificateError('cert', `TLS certificate file ${certPath} is not a valid PEM certificate: ${pemHint(cert, 'cert') ?? message(err)}`, { cause: err })
  }
  let matches: boolean
  try {
    matches = x509.checkPrivateKey(createPrivateKey(key))
  } catch (err) {
    throw new CertificateError('key', `TLS key file ${keyPath} is not a valid private key: ${pemHint(key, 'key') ?? message(err)}`, { cause: err })
  }
  if (!matches) throw new CertificateError('key', `TLS key file ${keyPath} does not match certificate file ${certPath}`)
  let context: SecureContext
  try {
    context = createSecureContext({ key, cert, ...(minVersion === undefined ? {} : { minVersion }) })
  } catch (err) {
    throw new CertificateError('cert', `TLS pair ${certPath} / ${keyPath} was rejected: ${message(err)}`, { cause: err })
  }
  return { cert, key, x509, context }
}

function readPairFile (path: string, file: 'cert' | 'key'): Buffer {
  try {
    return readFileSync(path)
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : `cannot be read: ${message(err)}`
    throw new CertificateError(file, `TLS ${file === 'cert' ? 'certificate' : 'key'} file ${path} ${reason}`, { cause: err })
  }
}

/** A plainer reason than OpenSSL's for the usual mistakes: not PEM, the two files swapped, an encrypted key. */
function pemHint (data: Buffer, file: 'cert' | 'key'): string | undefined {
  const text = data.toString('latin1')
  const hasCert = text.includes('-----BEGIN CERTIFICATE-----')
  const hasKey = /-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text)
  if (file === 'cert' && !hasCert) {
    return hasKey ? 'it holds a private key, not a certificate (are cert and key swapped?)' : 'no `-----BEGIN CERTIFICATE-----` block found'
  }
  if (file === 'key' && !hasKey) {
    return hasCert ? 'it holds a certificate, not a private key (are cert and key swapped?)' : 'no `-----BEGIN … PRIVATE KEY-----` block found'
  }
  if (file === 'key' && (text.includes('ENCRYPTED PRIVATE KEY') || text.includes('Proc-Type: 4,ENCRYPTED'))) {
    return 'the key is encrypted; Switchyard needs an unencrypted key (e.g. `openssl pkey -in KEY -out PLAIN`)'
  }
  return undefined
}

function message (err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

export interface CertificatePair {
  readonly certPem: string
  readonly keyPem: string
}

export interface GenerateCertificateOptions {
  /** DNS names and IP addresses (v4 or v6) for the SubjectAltName; at least one. */
  readonly names: readonly string[]
  /** Validity in days (default 365). */
  readonly days?: number
  /** Subject CN (default: the first name); also the issuer CN when self-signed. */
  readonly commonName?: string
  /** Sign with this CA (from generateCertificateAuthority) instead of self-signing. */
  readonly issuer?: CertificatePair
  /** Extended key usage: `server` (TLS server, the default), `client` (TLS client, for mTLS), or both. */
  readonly usage?: readonly CertificateUsage[]
}

export type CertificateUsage = 'server' | 'client'

export interface GenerateAuthorityOptions {
  /** Subject (and issuer) CN. */
  readonly commonName: string
  /** Validity in days (default 365). */
  readonly days?: number
}

export interface CertificateFiles {
  readonly certPath: string
  readonly keyPath: string
}

const DAY_MS = 24 * 60 * 60 * 1000
// Back-dated so a client whose clock is slightly behind still accepts it.
const CLOCK_SKEW_MS = 60 * 1000

// GeneralName tags of RFC 5280 SubjectAltName.
const SAN_DNS = 2
const SAN_IP = 7

export function generateCertificate (opts: GenerateCertificateOptions): CertificatePair {
  if (opts.names.length === 0) throw new Error('generateCertificate: at least one name is required')
  const usage = opts.usage ?? ['server']
  if (usage.length === 0) throw new Error('generateCertificate: usage needs at least one of server, client')
  return build({
    commonName: opts.commonName ?? opts.names[0] ?? '',
    days: opts.days ?? 365,
    ...(opts.issuer === undefined ? {} : { issuer: opts.issuer }),
    extensions: [
      { name: 'basicConstraints', cA: false, critical: true },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
      { name: 'extKeyUsage', serverAuth: usage.includes('server'), clientAuth: usage.includes('client') },
      { name: 'subjectAltName', altNames: opts.names.map(altName) }
    ]
  })
}

/** A self-signed certificate authority whose pair can be the `issuer` of generateCertificate. */
export function generateCertificateAuthority (opts: GenerateAuthorityOptions): CertificatePair {
  return build({
    commonName: opts.commonName,
    days: opts.days ?? 365,
    extensions: [
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true }
    ]
  })
}

interface BuildOptions {
  readonly commonName: string
  readonly days: number
  readonly issuer?: CertificatePair
  /** Without the key identifiers, which are added here. */
  readonly extensions: readonly object[]
}

function build (opts: BuildOptions): CertificatePair {
  if (!(opts.days > 0)) throw new Error(`generateCertificate: days must be positive, got ${opts.days}`)
  const { publicKey, privateKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' }
  })

  const cert = forge.pki.createCertificate()
  cert.publicKey = forge.pki.publicKeyFromPem(publicKey)
  cert.serialNumber = randomSerial()
  const notBefore = new Date(Date.now() - CLOCK_SKEW_MS)
  cert.validity.notBefore = notBefore
  cert.validity.notAfter = new Date(notBefore.getTime() + opts.days * DAY_MS)
  cert.setSubject([{ name: 'commonName', value: opts.commonName }])
  const issuer = opts.issuer === undefined ? undefined : forge.pki.certificateFromPem(opts.issuer.certPem)
  cert.setIssuer(issuer === undefined ? cert.subject.attributes : issuer.subject.attributes)
  const keyIds: object[] = [{ name: 'subjectKeyIdentifier' }]
  // Lets a verifier find the issuer among several CAs with the same name.
  if (issuer !== undefined) keyIds.push({ name: 'authorityKeyIdentifier', keyIdentifier: issuer.generateSubjectKeyIdentifier().getBytes() })
  cert.setExtensions([...opts.extensions, ...keyIds])
  const signingKey = opts.issuer === undefined ? privateKey : opts.issuer.keyPem
  cert.sign(forge.pki.privateKeyFromPem(signingKey), forge.md.sha256.create())

  return { certPem: forge.pki.certificateToPem(cert), keyPem: privateKey }
}

/** Writes `<dir>/<baseName>.crt` and `.key` (mode 0600), creating `dir`. */
export function writeCertificatePair (dir: string, baseName: string, pair: CertificatePair): CertificateFiles {
  mkdirSync(dir, { recursive: true })
  const certPath = join(dir, `${baseName}.crt`)
  const keyPath = join(dir, `${baseName}.key`)
  writeAtomic(keyPath, pair.keyPem, 0o600)
  writeAtomic(certPath, pair.certPem, 0o644)
  return { certPath, keyPath }
}

/** Keeps an existing `dir/dev.crt` + `dir/dev.key`; otherwise makes a pair for localhost. */
export async function ensureDevCertificate (dir: string): Promise<CertificateFiles & { created: boolean }> {
  const certPath = join(dir, 'dev.crt')
  const keyPath = join(dir, 'dev.key')
  if (existsSync(certPath) && existsSync(keyPath)) return { certPath, keyPath, created: false }
  const pair = generateCertificate({ names: ['localhost', '127.0.0.1', '::1'], commonName: 'Switchyard dev' })
  return { ...writeCertificatePair(dir, 'dev', pair), created: true }
}

// Positive, non-zero and minimally DER-encoded: top bit clear, second bit set.
function randomSerial (): string {
  const bytes = randomBytes(16)
  bytes[0] = ((bytes[0] ?? 0) & 0x7f) | 0x40
  return bytes.toString('hex')
}

function altName (name: string): { type: number, value: string } {
  switch (isIP(name)) {
    case 4: return { type: SAN_IP, value: String.fromCharCode(...name.split('.').map(Number)) }
    case 6: return { type: SAN_IP, value: ipv6Bytes(name) }
    default: return { type: SAN_DNS, value: name }
  }
}

// forge's own IPv6 parser mishandles embedded IPv4 (`::ffff:1.2.3.4`), so the
// WHATWG URL parser canonicalizes first (hex groups only), then `::` is expanded.
function ipv6Bytes (ip: string): string {
  let canonical: string
  try {
    canonical = new URL(`http://[${ip}]/`).hostname.slice(1, -1)
  } catch {
    throw new Error(`generateCertificate: unsupported IPv6 address ${ip}`)
  }
  const [head = '', tail] = canonical.split('::')
  const headGroups = head === '' ? [] : head.split(':')
  const tailGroups = tail === undefined || tail === '' ? [] : tail.split(':')
  const zeros = new Array<string>(8 - headGroups.length - tailGroups.length).fill('0')
  const groups = [...headGroups, ...(tail === undefined ? [] : zeros), ...tailGroups]
  let bytes = ''
  for (const group of groups) {
    const n = parseInt(group, 16)
    bytes += String.fromCharCode(n >> 8, n & 0xff)
  }
  return bytes
}

// Write to a temporary name, then rename: a concurrent reader (a cert reload)
// never sees a half-written file, and the key never exists with a wider mode.
function writeAtomic (path: string, data: string, mode: number): void {
  const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`
  try {
    writeFileSync(tmp, data, { mode })
    renameSync(tmp, path)
  } catch (err) {
    rmSync(tmp, { force: true })
    throw err
  }
}
