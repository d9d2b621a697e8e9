// A backend's `tls` block: how Switchyard connects to its https:// servers.
// Part of the backends section (backends.ts calls it); its files go to load.ts
// twice: in `files` for the file check, and in `tlsFiles` for the PEM check.

import { isIP } from 'node:net'
import { DEFAULTS } from '../schema.js'
import type { BackendTlsConfig } from '../schema.js'
import { type Field, type MapView, joinPath } from '../reader.js'
import { isHostname } from '../forms.js'
import { type Context, minVersion, opt } from './common.js'

const KEYS = ['ca', 'servername', 'cert', 'key', 'minVersion', 'insecureSkipVerify'] as const

/**
 * The backend's `tls` block. https:// servers need none (every default
 * applies); on a backend of http:// servers it is a mistake. `https`: what
 * the servers' URLs say (undefined when none is valid).
 */
export function readBackendTls (ctx: Context, backend: string, m: MapView, https: boolean | undefined): BackendTlsConfig | undefined {
  const r = ctx.r
  const f = m.get('tls')
  const d = DEFAULTS.backend.tls
  if (f === undefined) return https === true ? d : undefined
  if (https === false) {
    const key = m.entries().find((e) => e.key === 'tls')?.keyNode ?? f.at
    r.report(f.path, key, '`tls` is for https:// servers, and the servers of this backend are http://; ' +
      'write their URLs as https://host:port, or remove `tls`')
    return undefined
  }
  const tm = r.map(f, KEYS)
  if (tm === undefined) return undefined
  const certField = tm.get('cert')
  const keyField = tm.get('key')
  // A client certificate is useless without its key, and the other way round.
  let pair = true
  if (certField !== undefined && keyField === undefined) {
    pair = false
    r.report(joinPath(f.path, 'key'), tm.node, '`cert` (the client certificate) needs `key`, its private key: set both or neither')
  } else if (keyField !== undefined && certField === undefined) {
    pair = false
    r.report(joinPath(f.path, 'cert'), tm.node, '`key` needs `cert`, the client certificate it belongs to: set both or neither')
  }
  const ca = ctx.fileRef(tm.get('ca'))
  const cert = ctx.fileRef(certField)
  const key = ctx.fileRef(keyField)
  const snField = tm.get('servername')
  const servername = snField === undefined ? undefined : serverName(ctx, snField)
  const version = opt(tm, 'minVersion', (v) => minVersion(r, v), d.minVersion)
  const skipField = tm.get('insecureSkipVerify')
  const insecureSkipVerify = opt(tm, 'insecureSkipVerify', (v) => r.boolean(v), d.insecureSkipVerify)
  if (skipField !== undefined && insecureSkipVerify) {
    r.warn(skipField.path, skipField.at, 'server certificates are not verified: anyone on the network path can pose as these servers; ' +
      'trust their CA with `ca` instead')
  }
  if (pair && (ca !== undefined || cert !== undefined)) {
    ctx.tlsFiles.push({
      backend, minVersion: version, ...(ca === undefined ? {} : { ca }), ...(cert === undefined ? {} : { cert }), ...(key === undefined ? {} : { key })
    })
  }
  return {
    ...(ca === undefined ? {} : { ca: ca.file }),
    ...(servername === undefined ? {} : { servername }),
    ...(cert === undefined ? {} : { cert: cert.file }),
    ...(key === undefined ? {} : { key: key.file }),
    minVersion: version,
    insecureSkipVerify
  }
}

/** SNI is a DNS name (RFC 6066 §3): never an IP, a port or a wildcard. */
function serverName (ctx: Context, f: Field): string | undefined {
  const s = ctx.r.text(f)
  if (s === undefined) return undefined
  const name = s.toLowerCase()
  if (isIP(name.replace(/^\[(.*)\]$/, '$1')) !== 0) {
    ctx.r.report(f.path, f.at, 'an IP address is never sent as SNI (RFC 6066); leave `servername` out: ' +
      'a server URL with an IP address is verified against the IP addresses in the certificate')
    return undefined
  }
  return isHostname(name) ? name : ctx.r.expected(f, 'a DNS name like api.internal (no port, no wildcard)')
}
