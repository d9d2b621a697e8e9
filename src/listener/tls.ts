// Secure contexts for a TLS listener: one per certificate pair, chosen by SNI.
// Lookup tables are built once per load; `reload()` builds a complete new set
// and swaps it in with one assignment, so handshakes never see a half-loaded
// state and a failed reload leaves the old certificates serving. And the
// protocol a client offers by ALPN that the listener speaks.

import type { X509Certificate } from 'node:crypto'
import http2 from 'node:http2'
import type { SecureContext, SecureContextOptions, TLSSocket } from 'node:tls'
import { loadCertificatePair } from '../certs.js'
import type { CertificateConfig, TlsConfig } from '../config/schema.js'

export interface TlsServerOptions {
  readonly key: Buffer
  readonly cert: Buffer
  readonly minVersion: TlsConfig['minVersion']
  /** ALPN: see chooseProtocol. */
  readonly ALPNCallback: (offer: { servername: string, protocols: string[] }) => string | undefined
  readonly allowHTTP1: true
  readonly SNICallback: (servername: string, cb: (err: Error | null, ctx?: SecureContext) => void) => void
}

/** The part of a `tls.Server` / `Http2SecureServer` that a reload updates. */
export interface SecureContextTarget {
  setSecureContext (options: SecureContextOptions): void
}

export interface TlsContexts {
  /**
   * Spread into `createSecureH2Server`, or `https.createServer` when
   * `tls.http2` is false (node:http2 takes every connection ALPN did not make
   * HTTP/1 as h2, a client that sent no ALPN among them).
   */
  readonly serverOptions: TlsServerOptions
  /**
   * Re-reads every file and swaps all contexts at once; throws (keeping the
   * old contexts) if any file is missing or invalid. Clients that send SNI
   * get the new certificates right away; attached servers get the new default.
   */
  reload (): void
  /**
   * Load `next` (or the current config's files again) without applying it;
   * throws on any bad file. The returned function swaps it in. Lets a config
   * reload load every listener's certificates before committing any.
   */
  prepare (next?: TlsConfig): () => void
  /**
   * Clients that send no SNI (e.g. connecting to an IP address) never reach
   * SNICallback, so they get the server's own default context: attach the
   * server so `reload()` replaces that one too. Returns a detach function.
   */
  attach (server: SecureContextTarget): () => void
  /** Server names per pair, in config order, for display. */
  names (): string[]
  /**
   * RFC 9110 §15.5.20: `host` is named by another certificate than the one
   * negotiated for `servername` (the SNI, or none), and not by that one: the
   * request came down a connection meant for another host (421).
   */
  misdirected (servername: string | undefined, host: string): boolean
}

interface LoadedPair {
  readonly key: Buffer
  readonly cert: Buffer
  readonly context: SecureContext
  readonly names: readonly string[]
}

interface ContextTable {
  readonly pairs: readonly LoadedPair[]
  readonly fallback: LoadedPair
  /** Lower-case exact name → pair. */
  readonly exact: ReadonlyMap<string, LoadedPair>
  /** For `*.example.com`, the key is `example.com`. */
  readonly wildcard: ReadonlyMap<string, LoadedPair>
}

export function createTlsContexts (initial: TlsConfig): TlsContexts {
  let tls = initial
  let table = loadTable(tls)
  const targets = new Set<SecureContextTarget>()

  const SNICallback: TlsServerOptions['SNICallback'] = (servername, cb) => {
    cb(null, lookup(table, servername))
  }

  return {
    serverOptions: {
      key: table.fallback.key,
      cert: table.fallback.cert,
      minVersion: tls.minVersion,
      ALPNCallback: chooseProtocol(tls.http2 ? H2_FIRST : H1_ONLY),
      allowHTTP1: true,
      SNICallback
    },
    reload () {
      this.prepare()()
    },
    prepare (nextConfig = tls) {
      const next = loadTable(nextConfig)
      return () => {
        tls = nextConfig
        table = next
        for (const server of targets) server.setSecureContext(defaultOptions(next, nextConfig))
      }
    },
    attach (server) {
      targets.add(server)
      return () => { targets.delete(server) }
    },
    names () {
      return table.pairs.flatMap((p) => p.names)
    },
    misdirected (servername, host) {
      const t = table
      if (t.pairs.length < 2) return false
      const served = lookupPair(t, host)
      if (served === undefined) return false // no certificate names it: not ours to judge
      const negotiated = servername === undefined ? t.fallback : lookupPair(t, servername) ?? t.fallback
      return served !== negotiated && !covers(negotiated, host)
    }
  }
}

// HTTP/1.0 last, for clients that offer nothing else (curl --http1.0), as nginx and HAProxy take them.
const H2_FIRST: readonly string[] = ['h2', 'http/1.1', 'http/1.0']
const H1_ONLY: readonly string[] = ['http/1.1', 'http/1.0']

/**
 * The first of ours (`preference`) that the client offers by ALPN. None of
 * them refuses the handshake (no_application_protocol, RFC 7301 §3.2), as an
 * ALPNProtocols list does. A client that offers nothing is not asked: HTTP/1.1.
 */
function chooseProtocol (preference: readonly string[]): TlsServerOptions['ALPNCallback'] {
  return ({ protocols }) => {
    for (let i = 0; i < preference.length; i++) if (protocols.includes(preference[i]!)) return preference[i]
    return undefined
  }
}

/**
 * node:http2's secure server, ALPN chosen by `options.ALPNCallback`. Node
 * takes that option from nodejs/node#56187 on; before it (20.18 among them)
 * node:http2 set its own ALPNProtocols and refused the two together: then the
 * callback goes on the server, where tls.Server reads both for each
 * connection. And node:http2 takes a connection as HTTP/1 only when ALPN
 * chose http/1.1 or nothing, else as h2: one that chose http/1.0 is HTTP/1
 * too (node:http reads both).
 */
export function createSecureH2Server (options: http2.SecureServerOptions,
  onRequest?: (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void): http2.Http2SecureServer {
  let server: http2.Http2SecureServer
  try {
    server = http2.createSecureServer(options, onRequest)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ERR_TLS_ALPN_CALLBACK_WITH_PROTOCOLS') throw err
    const { ALPNCallback, ...rest } = options
    server = Object.assign(http2.createSecureServer(rest, onRequest), { ALPNProtocols: undefined, ALPNCallback })
  }
  // In place of node:http2's own listener, so that whatever is put in front of it later hands over to this one.
  const dispatch = server.listeners('secureConnection')[0] as (socket: TLSSocket) => void
  server.removeListener('secureConnection', dispatch)
  server.on('secureConnection', (socket: TLSSocket) => {
    if (socket.alpnProtocol === 'http/1.0') socket.alpnProtocol = 'http/1.1'
    dispatch.call(server, socket)
  })
  return server
}

function lookup (table: ContextTable, servername: string): SecureContext {
  return (lookupPair(table, servername) ?? table.fallback).context
}

/** The pair serving `name` by SNI rules, or undefined when none names it. */
function lookupPair (table: ContextTable, servername: string): LoadedPair | undefined {
  const name = normalizeName(servername)
  const exact = table.exact.get(name)
  if (exact !== undefined) return exact
  // A wildcard covers exactly one label: strip the first one and look up the rest.
  const dot = name.indexOf('.')
  if (dot > 0) return table.wildcard.get(name.slice(dot + 1))
  return undefined
}

function covers (pair: LoadedPair, host: string): boolean {
  const dot = host.indexOf('.')
  return pair.names.includes(host) || (dot > 0 && pair.names.includes(`*${host.slice(dot)}`))
}

function loadTable (tls: TlsConfig): ContextTable {
  const pairs = tls.certificates.map((c) => loadPair(c, tls.minVersion))
  const fallback = pairs[0]
  if (fallback === undefined) throw new Error('TLS: no certificates configured')
  const exact = new Map<string, LoadedPair>()
  const wildcard = new Map<string, LoadedPair>()
  // The first pair that names a host wins, matching config order.
  for (const pair of pairs) {
    for (const name of pair.names) {
      if (name.startsWith('*.')) {
        const suffix = name.slice(2)
        if (!wildcard.has(suffix)) wildcard.set(suffix, pair)
      } else if (!exact.has(name)) {
        exact.set(name, pair)
      }
    }
  }
  return { pairs, fallback, exact, wildcard }
}

function loadPair (cfg: CertificateConfig, minVersion: TlsConfig['minVersion']): LoadedPair {
  // The same loader config checking uses: what `check` accepts, a listener can serve.
  const { key, cert, x509, context } = loadCertificatePair(cfg.cert, cfg.key, minVersion)
  const names = cfg.serverNames.length > 0 ? cfg.serverNames.map(normalizeName) : namesFromCertificate(x509)
  return { key, cert, context, names }
}

/** DNS SANs; the subject CN only when there are none (as clients do, RFC 6125). */
function namesFromCertificate (x509: X509Certificate): string[] {
  const dns: string[] = []
  for (const entry of splitSan(x509.subjectAltName ?? '')) {
    if (entry.startsWith('DNS:')) dns.push(normalizeName(unquote(entry.slice(4))))
  }
  if (dns.length > 0) return dns
  const cn: string[] = []
  for (const line of x509.subject.split('\n')) {
    if (line.startsWith('CN=')) cn.push(normalizeName(unquote(line.slice(3))))
  }
  return cn
}

// Node prints SANs as `DNS:a, IP Address:1.2.3.4`, JSON-quoting any value that
// contains a comma or quote, so split on `, ` outside quotes.
function splitSan (san: string): string[] {
  const out: string[] = []
  let start = 0
  let quoted = false
  for (let i = 0; i < san.length; i++) {
    const ch = san[i]
    if (ch === '\\' && quoted) i++
    else if (ch === '"') quoted = !quoted
    else if (ch === ',' && !quoted && san[i + 1] === ' ') {
      out.push(san.slice(start, i))
      start = i + 2
      i++
    }
  }
  if (start < san.length) out.push(san.slice(start))
  return out
}

function unquote (value: string): string {
  if (!value.startsWith('"')) return value
  try {
    return String(JSON.parse(value))
  } catch {
    return value
  }
}

function normalizeName (name: string): string {
  const lower = name.toLowerCase()
  return lower.endsWith('.') ? lower.slice(0, -1) : lower
}

function defaultOptions (table: ContextTable, tls: TlsConfig): SecureContextOptions {
  return { key: table.fallback.key, cert: table.fallback.cert, minVersion: tls.minVersion }
}
