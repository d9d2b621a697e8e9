// A throwaway self-signed certificate for the benchmark's TLS listener: the key
// from node:crypto (fast), the X.509 certificate from node-forge. Written only
// into the benchmark's own temp dir.

import { generateKeyPairSync, randomBytes } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import forge from 'node-forge'

export interface CertFiles {
  readonly cert: string
  readonly key: string
}

export function writeSelfSignedCert (dir: string): CertFiles {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' }
  })

  const cert = forge.pki.createCertificate()
  cert.publicKey = forge.pki.publicKeyFromPem(publicKey)
  // Positive, non-zero and minimally DER-encoded (as src/certs.ts): top bit clear, second bit set.
  // A '00' prefix is not enough: forge strips one zero byte, so random bytes 00 0x… left an illegal padding (1 cert in 512).
  const serial = randomBytes(16)
  serial[0] = ((serial[0] ?? 0) & 0x7f) | 0x40
  cert.serialNumber = serial.toString('hex')
  const now = new Date()
  cert.validity.notBefore = new Date(now.getTime() - 60_000)
  cert.validity.notAfter = new Date(now.getTime() + 7 * 24 * 3600_000)
  const name = [{ name: 'commonName', value: 'localhost' }, { name: 'organizationName', value: 'switchyard bench' }]
  cert.setSubject(name)
  cert.setIssuer(name)
  cert.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
    { name: 'extKeyUsage', serverAuth: true },
    { name: 'subjectAltName', altNames: [{ type: 2, value: 'localhost' }, { type: 7, ip: '127.0.0.1' }] }
  ])
  cert.sign(forge.pki.privateKeyFromPem(privateKey), forge.md.sha256.create())

  const files = { cert: join(dir, 'bench.crt'), key: join(dir, 'bench.key') }
  writeFileSync(files.cert, forge.pki.certificateToPem(cert))
  writeFileSync(files.key, privateKey, { mode: 0o600 })
  return files
}
