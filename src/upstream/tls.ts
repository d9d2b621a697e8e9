// TLS to upstream servers: one secure context per backend, built once from the
// PEM read at config load, and one connector per server (for its data pool and
// its health probes) that decides SNI and the name verified from the config
// alone. What counts as a TLS failure is decided here too.
import type { Socket } from 'node:net'
import { isIP } from 'node:net'
import { createSecureContext, type SecureContext } from 'node:tls'
import { buildConnector } from 'undici'
import { readTlsPem } from '../config/pem.js'
import type { BackendTlsConfig } from '../config/schema.js'
import { guardedConnector } from './connector.js'

/** A backend's TLS settings, ready for connections. */
export interface UpstreamTls {
  readonly config: BackendTlsConfig
  /** Trust (`ca` or Node's default store), client certificate and minVersion: built once, shared by every connection. */
  readonly secureContext: SecureContext
  /** What a server's pool was built from (settings and a hash of the files, never their text), for Server.poolKey. */
  readonly poolKey: string
}

export function upstreamTls (config: BackendTlsConfig): UpstreamTls {
  // A config parsed without reading its files has no PEM yet: read it now (throws when bad).
  const pem = config.pem ?? readTlsPem(config)
  const { ca, cert, key } = pem
  const secureContext = createSecureContext({
    ...(ca === undefined ? {} : { ca }),
    ...(cert === undefined ? {} : { cert }),
    ...(key === undefined ? {} : { key }),
    minVersion: config.minVersion
  })
  const poolKey = JSON.stringify([config.servername ?? null, config.minVersion, config.insecureSkipVerify, pem.sha256])
  return { config, secureContext, poolKey }
}

/**
 * The SNI for a server: `servername`, or else the URL's host when it is a DNS
 * name. Never an IP (RFC 6066): then none is sent, and Node checks the
 * certificate against the IP, which must be one of its IP SANs.
 */
export function serverName (tls: UpstreamTls, url: string): string | undefined {
  if (tls.config.servername !== undefined) return tls.config.servername
  const host = new URL(url).hostname
  return isIP(host.replace(/^\[(.*)\]$/, '$1')) === 0 ? host : undefined
}

/**
 * An undici connector for one https:// server. undici would take each
 * request's SNI and verified name from its Host header (for a proxy, the
 * client's), so the name is fixed here per server, as configured.
 */
export function tlsConnector (tls: UpstreamTls, url: string, timeout: number, h2 = false, guards = true): buildConnector.connector {
  const servername = serverName(tls, url)
  const connect = buildConnector({
    secureContext: tls.secureContext,
    rejectUnauthorized: !tls.config.insecureSkipVerify,
    timeout,
    ...(h2 ? { allowH2: true } : {}),
    ...(servername === undefined ? {} : { servername })
  })
  const guarded = guardedConnector(connect, (socket) => { socket.on('error', endOnError) }, guards)
  const named: buildConnector.connector = ({ servername: _fromHost, ...opts }, callback) => {
    guarded(servername === undefined ? opts : { ...opts, servername }, callback)
  }
  return h2 ? requireH2(named) : named
}

/**
 * `protocol: h2`: a server that picks http/1.1 in ALPN is refused like a
 * failed handshake (the request reached no application), instead of gRPC
 * being sent over HTTP/1.1, which cannot carry it.
 */
function requireH2 (connect: buildConnector.connector): buildConnector.connector {
  return (opts, callback) => {
    connect(opts, (err, socket) => {
      if (err != null || socket == null) {
        callback(err ?? new Error('connect failed'), null)
        return
      }
      const alpn = (socket as { alpnProtocol?: string | false }).alpnProtocol
      if (alpn === 'h2') {
        callback(null, socket)
        return
      }
      socket.destroy()
      callback(Object.assign(new Error(`the server did not negotiate h2 in TLS ALPN (got ${alpn === false || alpn === undefined ? 'none' : alpn})`),
        { code: NO_H2_CODE }), null)
    })
  }
}

/** A TLS server that would not speak HTTP/2 (classified as a TLS failure: see tlsFailure). */
export const NO_H2_CODE = 'ERR_TLS_NO_H2_ALPN'

/**
 * A TLS alert after the handshake (TLS 1.3: the server refuses our client
 * certificate only after our Finished) is emitted without closing the socket,
 * and undici would then report the close that follows as `other side closed`.
 * Ending the socket with the alert keeps the real reason for the request.
 */
function endOnError (this: Socket, err: Error): void {
  if (!this.destroyed) this.destroy(err)
}

/**
 * OpenSSL's certificate verification results, as Node reports them in
 * `err.code` (X509_V_ERR_* without the prefix).
 */
const VERIFY_CODES: ReadonlySet<string> = new Set([
  'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_CRL', 'UNABLE_TO_DECRYPT_CERT_SIGNATURE', 'UNABLE_TO_DECRYPT_CRL_SIGNATURE',
  'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY', 'CERT_SIGNATURE_FAILURE', 'CRL_SIGNATURE_FAILURE', 'CERT_NOT_YET_VALID', 'CERT_HAS_EXPIRED',
  'CRL_NOT_YET_VALID', 'CRL_HAS_EXPIRED', 'ERROR_IN_CERT_NOT_BEFORE_FIELD', 'ERROR_IN_CERT_NOT_AFTER_FIELD',
  'ERROR_IN_CRL_LAST_UPDATE_FIELD', 'ERROR_IN_CRL_NEXT_UPDATE_FIELD', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'CERT_CHAIN_TOO_LONG', 'CERT_REVOKED', 'INVALID_CA',
  'PATH_LENGTH_EXCEEDED', 'INVALID_PURPOSE', 'CERT_UNTRUSTED', 'CERT_REJECTED', 'HOSTNAME_MISMATCH'
])

/**
 * The TLS handshake failed or the connection's TLS broke: certificate
 * verification (ours of the server), a name mismatch, an alert from the
 * server (it refused our client certificate or our TLS version), or a peer
 * that does not speak TLS.
 */
export function tlsFailure (code: string | undefined): boolean {
  if (code === undefined) return false
  return code.startsWith('ERR_TLS_') || code.startsWith('ERR_SSL_') || code === 'EPROTO' || VERIFY_CODES.has(code)
}
