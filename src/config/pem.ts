// The PEM files of a backend's `tls` block, checked the way the TLS stack will
// use them: certificates that parse, a private key that belongs to the client
// certificate, and a secure context OpenSSL accepts. load.ts runs this at config
// load (each problem becomes an issue at its file's YAML key); a config parsed
// without reading files gets it when its backend is built (upstream/tls.ts).

import { X509Certificate, createHash, createPrivateKey } from 'node:crypto'
import type { KeyObject } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createSecureContext } from 'node:tls'
import type { BackendTlsConfig, BackendTlsPem } from './schema.js'

export type PemRole = 'ca' | 'cert' | 'key'

/** A file's path and text, as read. */
export interface PemText {
  readonly file: string
  readonly text: string
}

export type PemTexts = { readonly [R in PemRole]?: PemText }

export interface PemProblem {
  /** The file at fault; undefined when only the combination is (OpenSSL refused the settings). */
  readonly role: PemRole | undefined
  readonly message: string
}

export type PemCheck =
  | { readonly ok: true, readonly pem: BackendTlsPem }
  | { readonly ok: false, readonly problems: readonly PemProblem[] }

const ROLES: readonly PemRole[] = ['ca', 'cert', 'key']
const CERTIFICATE_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g

/** Checks the PEM text of a backend's TLS files and returns it with its hash, or every problem found. */
export function checkTlsPem (texts: PemTexts, minVersion: BackendTlsConfig['minVersion']): PemCheck {
  const problems: PemProblem[] = []
  const certificates = (role: 'ca' | 'cert'): X509Certificate[] | undefined => {
    const t = texts[role]
    if (t === undefined) return undefined
    const parsed = parseCertificates(t)
    if (typeof parsed === 'string') problems.push({ role, message: parsed })
    return typeof parsed === 'string' ? undefined : parsed
  }
  certificates('ca')
  const chain = certificates('cert')
  const key = texts.key === undefined ? undefined : parseKey(texts.key)
  if (typeof key === 'string') problems.push({ role: 'key', message: key })
  const leaf = chain?.[0]
  if (leaf !== undefined && key !== undefined && typeof key !== 'string' && !leaf.checkPrivateKey(key)) {
    problems.push({ role: 'key', message: `${texts.key?.file} is not the private key of the certificate in ${texts.cert?.file}` })
  }
  if (problems.length > 0) return { ok: false, problems }
  const pem = {
    ...(texts.ca === undefined ? {} : { ca: texts.ca.text }),
    ...(texts.cert === undefined ? {} : { cert: texts.cert.text }),
    ...(texts.key === undefined ? {} : { key: texts.key.text })
  }
  try {
    // What the pools will build: anything OpenSSL still refuses shows here, not on the first request.
    createSecureContext({ ...pem, minVersion })
  } catch (err) {
    return { ok: false, problems: [{ role: undefined, message: `OpenSSL refused these TLS files: ${message(err)}` }] }
  }
  return { ok: true, pem: { ...pem, sha256: hashTexts(texts) } }
}

/**
 * The PEM of `tls`'s files, read now: for a config that was parsed without
 * reading its files. Throws with every problem found.
 */
export function readTlsPem (tls: BackendTlsConfig): BackendTlsPem {
  const texts: Partial<Record<PemRole, PemText>> = {}
  for (const role of ROLES) {
    const file = tls[role]
    if (file === undefined) continue
    try {
      texts[role] = { file, text: readFileSync(file, 'utf8') }
    } catch (err) {
      throw new Error(`TLS ${role} file ${file} cannot be read: ${message(err)}`, { cause: err })
    }
  }
  const check = checkTlsPem(texts, tls.minVersion)
  if (!check.ok) throw new Error(`TLS files: ${check.problems.map((p) => p.message).join('; ')}`)
  return check.pem
}

/** Every certificate in the file (a CA bundle or a chain), or why there is none that parses. */
function parseCertificates ({ file, text }: PemText): X509Certificate[] | string {
  const blocks = text.match(CERTIFICATE_BLOCK) ?? []
  if (blocks.length === 0) {
    return text.includes('-----BEGIN ')
      ? `${file} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`
      : `${file} is not a PEM file (DER must be converted, e.g. openssl x509 -inform der)`
  }
  const out: X509Certificate[] = []
  for (let i = 0; i < blocks.length; i++) {
    try {
      out.push(new X509Certificate(blocks[i] as string))
    } catch (err) {
      return `${blocks.length === 1 ? '' : `certificate ${i + 1} of `}${file} is not a valid certificate: ${message(err)}`
    }
  }
  return out
}

function parseKey ({ file, text }: PemText): KeyObject | string {
  if (/-----BEGIN (ENCRYPTED|.* ENCRYPTED) PRIVATE KEY-----|Proc-Type: 4,ENCRYPTED/.test(text)) {
    return `${file} is an encrypted private key; Switchyard reads unencrypted keys only`
  }
  try {
    return createPrivateKey({ key: text, format: 'pem' })
  } catch (err) {
    return `${file} is not a PEM private key: ${message(err)}`
  }
}

function hashTexts (texts: PemTexts): string {
  const h = createHash('sha256')
  for (const role of ROLES) {
    const t = texts[role]
    if (t !== undefined) h.update(`${role} ${Buffer.byteLength(t.text)}\n`).update(t.text)
  }
  return h.digest('hex')
}

function message (err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}
