// The Switchyard rules: YAML syntax tree → Config, with every default from
// schema.ts filled in. Pure except for path arithmetic: certificate files and
// the access log's folder are not touched here, they are returned as `files`
// and `folders` for load.ts to check.

import { isIP } from 'node:net'
import { dirname, resolve } from 'node:path'
import { isMap, isSeq } from 'yaml'
import type { Document, LineCounter, Node } from 'yaml'
import type { ConfigIssue } from '../errors.js'
import type {
  AccessLogConfig, AdminConfig, BackendConfig, BalanceConfig, CacheConfig, CacheKeyConfig, CertificateConfig, ClientTimeoutsConfig, Config, ForwardingConfig,
  HeaderOpsConfig, HealthCheckConfig, LimitsConfig, ListenerConfig, OutlierDetectionConfig, PathNormalizationConfig, RetriesConfig,
  RewriteConfig, RouteCacheConfig, RouteConfig, RouteMatchConfig, ServerConfig, ShardByConfig, ShardConfig, ShardKeyMissing, StickyConfig,
  StickyCookieConfig, TlsConfig, UpstreamTimeoutsConfig
} from './schema.js'
import { type BackendTlsConfig, DEFAULTS } from './schema.js'
import { type Field, type MapView, Reader, describe, joinPath } from './reader.js'
import { shadowedRoutes } from './shadow.js'
import { closest, didYouMean } from './suggest.js'
import {
  DURATION_FORMS, MAX_DURATION_MS, SIZE_FORMS, formatDuration, formatSize, parseDuration, parsePercent, parseSize
} from './units.js'
import {
  ADMIN_TOKEN_FORM, BIND_FORMS, HTTP_METHODS, NAME_FORM, SF_TOKEN_FORM, isAdminToken, isCookiePath, isHostname, isHttpMethod, isIpOrCidr,
  isLoopback, isName, isRequestPath, isSafeHeaderValue, isSfToken, isToken, normalizeHostHeader, normalizeHostPattern, normalizeServerUrl,
  parseBind
} from './forms.js'

/** A certificate or key file (or a folder) named in the config, for load.ts to check. */
export interface FileRef {
  /** YAML path of the key, e.g. `listeners[0].tls.cert`. */
  readonly path: string
  /** Absolute path (of the folder, in `folders`). */
  readonly file: string
  readonly line: number
  readonly column: number
}

/** A backend's TLS files (also in `files`), for load.ts to read and check as PEM once they passed the file check. */
export interface TlsFileRefs {
  readonly backend: string
  readonly minVersion: BackendTlsConfig['minVersion']
  readonly ca?: FileRef
  readonly cert?: FileRef
  readonly key?: FileRef
}

/** A well-formed bind address (a listener's or the admin API's), for load.ts to try on this machine. */
export interface BindRef {
  /** YAML path of the `bind` value, e.g. `listeners[1].bind` or `admin.bind`. */
  readonly path: string
  readonly host: string
  readonly port: number
  readonly line: number
  readonly column: number
}

export interface Validation {
  /** Complete only when `issues` is empty. */
  readonly config: Config
  readonly issues: readonly ConfigIssue[]
  /** Valid, but risky or probably not what was meant (TLS verification off, a route that can never match), in file order. */
  readonly warnings: readonly ConfigIssue[]
  readonly binds: readonly BindRef[]
  readonly files: readonly FileRef[]
  readonly tlsFiles: readonly TlsFileRefs[]
  /**
   * Folders that must exist when files are checked (`checkFiles`): the one the
   * access log is written into (the file itself is created on first write).
   */
  readonly folders: readonly FileRef[]
}

const KEYS = {
  root: [
    'proxyName', 'listeners', 'trustedProxies', 'forwarding', 'limits', 'timeouts', 'pathNormalization', 'routes', 'backends', 'cache',
    'admin', 'accessLog', 'watchConfig'
  ],
  listener: ['name', 'bind', 'tls', 'maxTunnels'],
  tls: ['cert', 'key', 'certificates', 'minVersion', 'http2'],
  certificate: ['cert', 'key', 'serverNames'],
  forwarding: ['xForwarded', 'forwarded', 'via'],
  limits: ['maxHeaderBytes', 'maxHeaderCount'],
  clientTimeouts: ['clientHeaders', 'clientIdle', 'drain', 'clientBody', 'request', 'tunnel'],
  pathNormalization: ['mergeSlashes', 'escapedSlashes'],
  route: ['name', 'match', 'backend', 'rewrite', 'requestHeaders', 'responseHeaders', 'cache'],
  match: ['host', 'pathPrefix', 'methods', 'headers'],
  rewrite: ['stripPrefix', 'addPrefix'],
  headerOps: ['set', 'remove'],
  backend: [
    'servers', 'shards', 'shardBy', 'balance', 'passHostHeader', 'timeouts', 'connections', 'sticky', 'healthCheck',
    'outlierDetection', 'retries', 'maxConn', 'maxQueue', 'slowStart', 'panicThreshold', 'tls'
  ],
  backendTls: ['ca', 'servername', 'cert', 'key', 'minVersion', 'insecureSkipVerify'],
  shard: ['name', 'servers'],
  server: ['name', 'url', 'weight', 'maxConn'],
  shardBy: ['header', 'cookie', 'query', 'pathSegment', 'missing'],
  upstreamTimeouts: ['connect', 'headers', 'body', 'keepAlive', 'queue'],
  sticky: ['cookie'],
  stickyCookie: ['name', 'maxAge', 'path', 'sameSite', 'httpOnly'],
  healthCheck: ['path', 'method', 'host', 'interval', 'jitter', 'timeout', 'rise', 'fall', 'expectStatus', 'expectBody'],
  outlierDetection: ['consecutive5xx', 'consecutiveGatewayFailure', 'baseEjectionTime', 'maxEjectionTime', 'maxEjectionPercent'],
  retries: ['attempts', 'nonIdempotent', 'budgetPercent', 'minRetryConcurrency', 'bufferBodyBytes'],
  cache: ['maxBytes', 'maxEntryBytes', 'heuristic', 'heuristicMaxAge', 'statusName', 'collapseTimeout', 'purgeFrom'],
  routeCache: ['enabled', 'key', 'allowSetCookie', 'defaultTtl'],
  cacheKey: ['query', 'ignoreParams', 'headers'],
  admin: ['bind', 'token'],
  accessLog: ['enabled', 'path']
} as const

/**
 * Fields a route may not set or remove: they frame the message or belong to
 * one hop (RFC 9110 §7.6.1), and the proxy writes them itself.
 */
const FRAMING_FIELDS: ReadonlySet<string> = new Set([
  'content-length', 'transfer-encoding', 'connection', 'te', 'upgrade', 'keep-alive', 'proxy-connection', 'host'
])

function framingMessage (name: string): string {
  if (name === 'host') return '`host` is not set by header operations: use the backend\'s `passHostHeader` (false sends the server\'s own host)'
  return `\`${name}\` frames the message or belongs to one connection; the proxy writes it itself and a route may not set or remove it`
}

const CACHE_QUERY = ['keep', 'sort', 'ignore'] as const
const ESCAPED_SLASHES = ['keep', 'reject', 'decode'] as const
/** The smallest cache worth having: one small response and its headers. */
const MIN_CACHE_BYTES = 1024

const SHARD_KEY_SOURCES = ['header', 'cookie', 'query', 'pathSegment'] as const
const SHARD_KEY_MISSING = ['any', 'reject'] as const

const BALANCE = DEFAULTS.backend.balance

/**
 * One entry per balance algorithm: the extra keys its `balance:` block takes and
 * how to build it. Adding an algorithm to BalanceConfig makes this table fail
 * to compile until the algorithm is added here.
 */
const BALANCERS: { readonly [A in BalanceConfig['algorithm']]: {
  readonly keys: readonly string[]
  build (m: MapView, r: Reader): Extract<BalanceConfig, { algorithm: A }>
} } = {
  roundRobin: { keys: [], build: () => ({ algorithm: 'roundRobin' }) },
  leastConn: {
    keys: ['choiceThreshold'],
    build: (m, r) => ({
      algorithm: 'leastConn',
      // P2C needs at least two servers to choose between.
      choiceThreshold: opt(m, 'choiceThreshold', (v) => r.integer(v, 2), BALANCE.choiceThreshold)
    })
  },
  ipHash: {
    keys: ['virtualNodes', 'boundedLoad'],
    build: (m, r) => ({
      algorithm: 'ipHash',
      virtualNodes: opt(m, 'virtualNodes', (v) => r.integer(v, 1, 1000), BALANCE.virtualNodes),
      boundedLoad: opt(m, 'boundedLoad', (v) => r.number(v, 0), BALANCE.boundedLoad)
    })
  },
  leastLatency: {
    keys: ['decay'],
    build: (m, r) => ({ algorithm: 'leastLatency', decay: opt(m, 'decay', (v) => duration(r, v, 1), BALANCE.decay) })
  }
}
const ALGORITHMS = Object.keys(BALANCERS) as Array<BalanceConfig['algorithm']>
/** No `balance` block: the default algorithm (which, to be a default, takes no options). */
const DEFAULT_BALANCE: BalanceConfig = { algorithm: BALANCE.algorithm }
/** Every option key of every algorithm, for suggestions across algorithms. */
const BALANCE_OPTIONS = ALGORITHMS.flatMap((a) => BALANCERS[a].keys)

const SAME_SITE = ['Lax', 'Strict', 'None'] as const
const PROBE_METHODS = ['GET', 'HEAD'] as const

/** The admin API when the config leaves it out: on, at the default bind address. */
const DEFAULT_ADMIN: AdminConfig = Object.freeze({ enabled: true, bind: DEFAULTS.admin.bind, ...defaultBind(DEFAULTS.admin.bind) })

function defaultBind (bind: string): { host: string, port: number } {
  const parsed = parseBind(bind)
  if (parsed === undefined) throw new Error(`DEFAULTS.admin.bind is not a bind address: ${bind}`)
  return parsed
}

/**
 * Checks a parsed YAML document and builds the Config. `source` is the absolute
 * path of the file ('' when there is none); relative certificate paths resolve
 * against its folder.
 */
export function validateDocument (doc: Document, lines: LineCounter, source: string): Validation {
  const r = new Reader(doc, lines)
  const v = new Validator(r, source === '' ? resolve('') : dirname(source))
  const config = v.config(r.root(), source)
  // Stable sort: file order, then the order the rules found them.
  const issues = [...r.issues].sort((a, b) => a.line - b.line || a.column - b.column)
  const warnings = [...r.warnings].sort((a, b) => a.line - b.line || a.column - b.column)
  return { config, issues, warnings, binds: v.binds, files: v.files, tlsFiles: v.tlsFiles, folders: v.folders }
}

class Validator {
  readonly files: FileRef[] = []
  readonly tlsFiles: TlsFileRefs[] = []
  readonly binds: BindRef[] = []
  readonly folders: FileRef[] = []
  readonly #r: Reader
  readonly #baseDir: string
  /** Each well-formed listener bind (port 0 left out), by normalized `host:port`, for the admin bind check. */
  readonly #listenerBinds = new Map<string, { owner: string, bind: string, field: Field }>()

  constructor (r: Reader, baseDir: string) {
    this.#r = r
    this.#baseDir = baseDir
  }

  config (root: Field, source: string): Config {
    const r = this.#r
    const empty: Config = {
      source, proxyName: DEFAULTS.proxyName, listeners: [], trustedProxies: DEFAULTS.trustedProxies, forwarding: DEFAULTS.forwarding,
      limits: DEFAULTS.limits, timeouts: DEFAULTS.timeouts, pathNormalization: DEFAULTS.pathNormalization, routes: DEFAULTS.routes, backends: DEFAULTS.backends,
      admin: DEFAULT_ADMIN,
      accessLog: DEFAULTS.accessLog, watchConfig: DEFAULTS.watchConfig
    }
    if (root.node === null) {
      r.report('', null, 'the file is empty; expected a mapping with at least `listeners`')
      return empty
    }
    const m = r.map(root, KEYS.root)
    if (m === undefined) return empty
    const proxyName = opt(m, 'proxyName', (f) => this.#token(f), DEFAULTS.proxyName)
    const listeners = this.#listeners(m)
    const trustedProxies = opt<readonly string[]>(m, 'trustedProxies', (f) => this.#ipList(f), DEFAULTS.trustedProxies)
    const forwarding = opt(m, 'forwarding', (f) => this.#forwarding(f), DEFAULTS.forwarding)
    const limits = opt(m, 'limits', (f) => this.#limits(f), DEFAULTS.limits)
    const timeouts = opt(m, 'timeouts', (f) => this.#clientTimeouts(f), DEFAULTS.timeouts)
    const pathNormalization = opt(m, 'pathNormalization', (f) => this.#pathNormalization(f), DEFAULTS.pathNormalization)
    const backendsField = m.get('backends')
    const backendsMap = backendsField === undefined ? undefined : r.map(backendsField)
    const backends = backendsMap === undefined ? DEFAULTS.backends : this.#backends(backendsMap)
    // Route → backend references are checked against every name written, even a
    // broken backend's, so one mistake does not cascade into many.
    const backendNames = backendsMap?.entries().map((e) => e.key) ?? []
    // `cache:` left empty takes the default, which is no cache (as `healthCheck:` does).
    const cacheField = m.get('cache')
    const cache = cacheField === undefined ? undefined : this.#cache(cacheField, proxyName)
    // Written and not `false`: routes get their cache settings even when the block
    // itself has a mistake, so that one mistake is reported once.
    const top: TopCache = { on: cacheField !== undefined && r.scalar(cacheField) !== false, field: cacheField }
    const routes = opt<readonly RouteConfig[]>(m, 'routes', (f) => this.#routes(f, backendNames, top), DEFAULTS.routes)
    const admin = this.#admin(m.get('admin'))
    const accessLog = opt<AccessLogConfig>(m, 'accessLog', (f) => this.#accessLog(f), DEFAULTS.accessLog)
    const watchConfig = opt(m, 'watchConfig', (f) => r.boolean(f), DEFAULTS.watchConfig)
    return {
      source, proxyName, listeners, trustedProxies, forwarding, limits, timeouts, pathNormalization, routes, backends,
      ...(cache === undefined ? {} : { cache }),
      admin, accessLog, watchConfig
    }
  }

  // ── listeners ────────────────────────────────────────────────────────────

  #listeners (m: MapView): ListenerConfig[] {
    const f = m.require('listeners')
    if (f === undefined) return []
    const items = this.#r.seq(f)
    if (items === undefined) return []
    if (items.length === 0) this.#r.report(f.path, f.at, 'at least one listener is required')
    const out: ListenerConfig[] = []
    const names = new Unique(this.#r, 'listener name')
    const binds = new Unique(this.#r, 'bind address')
    items.forEach((item, i) => {
      const l = this.#listener(item, i)
      if (l === undefined) return
      out.push(l.config)
      if (l.config.name !== '') names.add(l.config.name, l.nameField ?? item, item.path)
      // Port 0 asks the OS for a fresh port each time, so it never clashes.
      if (l.config.port !== 0 && l.bindField !== undefined) {
        const key = bindKey(l.config.host, l.config.port)
        if (binds.add(key, l.bindField, item.path)) this.#listenerBinds.set(key, { owner: item.path, bind: l.config.bind, field: l.bindField })
      }
    })
    return out
  }

  #listener (f: Field, i: number): { config: ListenerConfig, nameField?: Field, bindField?: Field } | undefined {
    const m = this.#r.map(f, KEYS.listener)
    if (m === undefined) return undefined
    const nameField = m.get('name')
    const name = nameField === undefined ? `listener-${i}` : this.#name(nameField) ?? ''
    const bindField = m.require('bind')
    const raw = bindField === undefined ? undefined : this.#r.scalar(bindField)
    const bind = typeof raw === 'string' ? raw : undefined
    const parsed = bind === undefined ? undefined : parseBind(bind)
    if (bindField !== undefined && parsed === undefined) this.#r.expected(bindField, BIND_FORMS)
    if (bindField !== undefined && parsed !== undefined) this.binds.push({ path: bindField.path, ...parsed, ...this.#r.position(bindField.at) })
    const tlsField = m.get('tls')
    const tls = tlsField === undefined ? undefined : this.#tls(tlsField)
    const config: ListenerConfig = {
      name,
      bind: bind ?? '',
      host: parsed?.host ?? '',
      port: parsed?.port ?? 0,
      ...(tls === undefined ? {} : { tls }),
      maxTunnels: opt(m, 'maxTunnels', (v) => this.#r.integer(v, 0), DEFAULTS.listener.maxTunnels)
    }
    return {
      config,
      ...(nameField === undefined ? {} : { nameField }),
      // Only a well-formed bind takes part in the duplicate check.
      ...(bindField === undefined || parsed === undefined ? {} : { bindField })
    }
  }

  #tls (f: Field): TlsConfig | undefined {
    const r = this.#r
    const m = r.map(f, KEYS.tls)
    if (m === undefined) return undefined
    let certificates: CertificateConfig[] = []
    const list = m.get('certificates')
    if (list !== undefined && (m.has('cert') || m.has('key'))) {
      r.report(f.path, m.node, 'use either `cert` + `key` (one certificate) or `certificates` (a list), not both')
    } else if (list !== undefined) {
      const items = r.seq(list)
      if (items?.length === 0) r.report(list.path, list.at, 'at least one certificate is required')
      const names = new Unique(r, 'server name')
      for (const item of items ?? []) {
        const c = this.#certificate(item)
        if (c === undefined) continue
        certificates.push(c.config)
        c.serverNames.forEach(([name, at]) => names.add(name, at, item.path))
      }
    } else {
      // Shorthand: one certificate, written inline.
      const cert = this.#file(m.require('cert', ' (or a `certificates` list)'))
      const key = this.#file(m.require('key', ' (or a `certificates` list)'))
      certificates = [{ cert, key, serverNames: DEFAULTS.listener.tls.certificate.serverNames }]
    }
    const minVersion = opt(m, 'minVersion', (v) => this.#minVersion(v), DEFAULTS.listener.tls.minVersion)
    const http2 = opt(m, 'http2', (v) => r.boolean(v), DEFAULTS.listener.tls.http2)
    return { certificates, minVersion, http2 }
  }

  #certificate (f: Field): { config: CertificateConfig, serverNames: Array<[string, Field]> } | undefined {
    const r = this.#r
    const m = r.map(f, KEYS.certificate)
    if (m === undefined) return undefined
    const cert = this.#file(m.require('cert'))
    const key = this.#file(m.require('key'))
    const serverNames: Array<[string, Field]> = []
    const list = m.get('serverNames')
    for (const item of list === undefined ? [] : r.seq(list) ?? []) {
      const s = r.text(item)
      if (s === undefined) continue
      const host = normalizeHostPattern(s)
      if (host === undefined) r.expected(item, 'a host name like example.com or *.example.com')
      else serverNames.push([host, item])
    }
    const names = list === undefined ? DEFAULTS.listener.tls.certificate.serverNames : serverNames.map(([n]) => n)
    return { config: { cert, key, serverNames: names }, serverNames }
  }

  /** A certificate/key path: made absolute and remembered for the file check. */
  #file (f: Field | undefined): string {
    if (f === undefined) return ''
    const s = this.#r.text(f)
    if (s === undefined) return ''
    const file = resolve(this.#baseDir, s)
    this.files.push({ path: f.path, file, ...this.#r.position(f.at) })
    return file
  }

  #minVersion (f: Field): TlsConfig['minVersion'] | undefined {
    const v = this.#r.scalar(f)
    if (v === 'TLSv1' || v === 'TLSv1.1' || v === 'TLSv1.0') {
      this.#r.report(f.path, f.at, `${v} is not allowed; use TLSv1.2 or TLSv1.3`)
      return undefined
    }
    return this.#r.oneOf(f, ['TLSv1.2', 'TLSv1.3'] as const)
  }

  // ── client side ─────────────────────────────────────────────────────────

  /** IPs and CIDRs (trustedProxies, cache.purgeFrom). */
  #ipList (f: Field): string[] | undefined {
    const out: string[] = []
    for (const item of this.#r.seq(f) ?? []) {
      const s = this.#r.string(item)
      if (s === undefined) continue
      if (isIpOrCidr(s)) out.push(s)
      else this.#r.expected(item, 'an IP address or CIDR like 10.0.0.0/8, 192.168.1.10 or fd00::/8')
    }
    return out
  }

  #forwarding (f: Field): ForwardingConfig | undefined {
    const m = this.#r.map(f, KEYS.forwarding)
    if (m === undefined) return undefined
    const d = DEFAULTS.forwarding
    const bool = (v: Field): boolean | undefined => this.#r.boolean(v)
    return {
      xForwarded: opt(m, 'xForwarded', bool, d.xForwarded),
      forwarded: opt(m, 'forwarded', bool, d.forwarded),
      via: opt(m, 'via', bool, d.via)
    }
  }

  #limits (f: Field): LimitsConfig | undefined {
    const m = this.#r.map(f, KEYS.limits)
    if (m === undefined) return undefined
    const d = DEFAULTS.limits
    return {
      maxHeaderBytes: opt(m, 'maxHeaderBytes', (v) => size(this.#r, v, 1), d.maxHeaderBytes),
      maxHeaderCount: opt(m, 'maxHeaderCount', (v) => this.#r.integer(v, 1), d.maxHeaderCount)
    }
  }

  #clientTimeouts (f: Field): ClientTimeoutsConfig | undefined {
    const m = this.#r.map(f, KEYS.clientTimeouts)
    if (m === undefined) return undefined
    const d = DEFAULTS.timeouts
    return {
      clientHeaders: opt(m, 'clientHeaders', (v) => duration(this.#r, v), d.clientHeaders),
      clientIdle: opt(m, 'clientIdle', (v) => duration(this.#r, v), d.clientIdle),
      drain: opt(m, 'drain', (v) => duration(this.#r, v), d.drain),
      clientBody: opt(m, 'clientBody', (v) => duration(this.#r, v, 1), d.clientBody),
      request: opt(m, 'request', (v) => duration(this.#r, v), d.request),
      tunnel: opt(m, 'tunnel', (v) => duration(this.#r, v, 1), d.tunnel)
    }
  }

  #pathNormalization (f: Field): PathNormalizationConfig | undefined {
    const m = this.#r.map(f, KEYS.pathNormalization)
    if (m === undefined) return undefined
    const d = DEFAULTS.pathNormalization
    return {
      mergeSlashes: opt(m, 'mergeSlashes', (v) => this.#r.boolean(v), d.mergeSlashes),
      escapedSlashes: opt(m, 'escapedSlashes', (v) => this.#r.oneOf(v, ESCAPED_SLASHES), d.escapedSlashes)
    }
  }

  // ── admin API, access log ───────────────────────────────────────────────

  /**
   * Absent, `true` or `{}`: on at 127.0.0.1:9901; `false`: off (bind fields keep
   * the defaults); a mapping: `bind` and/or `token`.
   */
  #admin (f: Field | undefined): AdminConfig {
    const r = this.#r
    const d = DEFAULT_ADMIN
    const v = f === undefined ? true : r.scalar(f)
    if (v === false) return { ...d, enabled: false }
    if (f === undefined || v === true) return this.#adminClash(d, undefined)
    if (!isMap(f.node)) {
      r.expected(f, 'a mapping (bind, token), true (127.0.0.1:9901) or false (off)')
      return d
    }
    const m = r.map(f)
    if (m === undefined) return d
    for (const { key, keyNode, field } of m.entries()) {
      if ((KEYS.admin as readonly string[]).includes(key)) continue
      const hint = key === 'enabled' ? '; write `admin: false` to turn the admin API off' : didYouMean(key, KEYS.admin)
      r.report(field.path, keyNode, `unknown key \`${key}\`${hint === '' ? `; expected one of ${KEYS.admin.join(', ')}` : hint}`)
    }
    const bindField = m.get('bind')
    const tokenField = m.get('token')
    const token = tokenField === undefined ? undefined : this.#adminToken(tokenField)
    if (bindField === undefined) return this.#adminClash({ ...d, ...(token === undefined ? {} : { token }) }, undefined)
    const raw = r.scalar(bindField)
    const parsed = typeof raw === 'string' ? parseBind(raw) : undefined
    if (typeof raw !== 'string' || parsed === undefined) {
      r.expected(bindField, BIND_FORMS)
      return { ...d, ...(token === undefined ? {} : { token }) }
    }
    // A token written but refused is reported already: no second issue about it.
    if (tokenField === undefined && !isLoopback(parsed.host)) {
      r.report(bindField.path, bindField.at, `\`${raw}\` is not a loopback address, and the admin API can change routing and purge ` +
        'the cache: bind it to loopback (127.0.0.1, ::1 or localhost), or set admin.token')
    }
    this.binds.push({ path: bindField.path, ...parsed, ...this.#r.position(bindField.at) })
    const admin: AdminConfig = { enabled: true, bind: raw, host: parsed.host, port: parsed.port, ...(token === undefined ? {} : { token }) }
    return this.#adminClash(admin, bindField)
  }

  /**
   * The admin listener may not take a listener's address: reported at `admin.bind`
   * when written, else at the listener, whose bind is then the admin default.
   */
  #adminClash (admin: AdminConfig, bindField: Field | undefined): AdminConfig {
    if (admin.port === 0) return admin
    const clash = this.#listenerBinds.get(bindKey(admin.host, admin.port))
    if (clash === undefined) return admin
    if (bindField !== undefined) {
      this.#r.report(bindField.path, bindField.at,
        `admin.bind \`${admin.bind}\` is the bind address of ${clash.owner} (\`${clash.bind}\`); give the admin API its own address`)
    } else {
      this.#r.report(clash.field.path, clash.field.at, `\`${clash.bind}\` is the admin API's default bind address (admin.bind ` +
        `\`${admin.bind}\`); use another address here, or set admin.bind (or \`admin: false\`)`)
    }
    return admin
  }

  /** A bearer token. It is a secret: messages give its length, never its value. */
  #adminToken (f: Field): string | undefined {
    const v = this.#r.scalar(f)
    let got: string
    if (typeof v === 'string') {
      if (isAdminToken(v)) return v
      got = /^[!-~]*$/.test(v) ? `${v.length} characters` : 'a space or a character that is not visible ASCII'
    } else {
      got = v === undefined ? describe(f.node) : `a ${typeof v} (quote the token)`
    }
    this.#r.report(f.path, f.at, `expected ${ADMIN_TOKEN_FORM}, got ${got}`)
    return undefined
  }

  /** `true` or `{}`: on, to stdout; `false`: off; a mapping: `enabled` and/or `path`. */
  #accessLog (f: Field): AccessLogConfig | undefined {
    const m = this.#toggle(f, KEYS.accessLog)
    if (m === true) return DEFAULTS.accessLog
    if (m === false) return { enabled: false }
    if (m === undefined) return undefined
    const enabled = opt(m, 'enabled', (v) => this.#r.boolean(v), DEFAULTS.accessLog.enabled)
    const pathField = m.get('path')
    const path = pathField === undefined ? undefined : this.#logFile(pathField, enabled)
    return { enabled, ...(path === undefined ? {} : { path }) }
  }

  /** A file to append to: made absolute; its folder (when the log is on) is remembered for the check. */
  #logFile (f: Field, enabled: boolean): string | undefined {
    const s = this.#r.text(f)
    if (s === undefined) return undefined
    if (/(^|[/\\])\.{0,2}$/.test(s)) return this.#r.expected(f, 'a file path like logs/access.log, not a folder')
    const file = resolve(this.#baseDir, s)
    if (enabled) this.folders.push({ path: f.path, file: dirname(file), ...this.#r.position(f.at) })
    return file
  }

  // ── routes ──────────────────────────────────────────────────────────────

  #routes (f: Field, backends: readonly string[], top: TopCache): RouteConfig[] | undefined {
    const items = this.#r.seq(f)
    if (items === undefined) return undefined
    const names = new Unique(this.#r, 'route name')
    const out: RouteConfig[] = []
    const issuesBefore = this.#r.issues.length
    items.forEach((item, i) => {
      const route = this.#route(item, i, backends, top)
      if (route === undefined) return
      out.push(route.config)
      if (route.config.name !== '') names.add(route.config.name, route.nameField ?? item, item.path)
    })
    // A route with a mistake was read with defaults filled in: no guesses about it.
    if (this.#r.issues.length === issuesBefore) this.#unreachableRoutes(out, items)
    return out
  }

  /** Warns about each route an earlier one takes every request from (see shadow.ts). */
  #unreachableRoutes (routes: readonly RouteConfig[], items: readonly Field[]): void {
    const r = this.#r
    const line = (route: RouteConfig): number => r.position(items[route.index]?.at).line
    for (const { route, by } of shadowedRoutes(routes)) {
      const takers = by.map((b) => `\`${b.name}\` (line ${line(b)})`).join(', ')
      const why = route.match.methods.length === 0
        ? 'has the same host, pathPrefix and headers and comes first'
        : by.length === 1
          ? `has the same host, pathPrefix and headers, comes first, and lists every method of this one`
          : `have the same host, pathPrefix and headers, come first, and together list every method of this one`
      r.warn(items[route.index]?.path ?? `routes[${route.index}]`, items[route.index]?.at,
        `route \`${route.name}\` (line ${line(route)}) can never match: route${by.length === 1 ? '' : 's'} ${takers} ${why}`)
    }
  }

  #route (
    f: Field, index: number, backends: readonly string[], top: TopCache
  ): { config: RouteConfig, nameField?: Field } | undefined {
    const r = this.#r
    const m = r.map(f, KEYS.route)
    if (m === undefined) return undefined
    const nameField = m.get('name')
    const name = nameField === undefined ? `route-${index}` : this.#name(nameField) ?? ''
    const match = opt<RouteMatchConfig>(m, 'match', (v) => this.#match(v), DEFAULTS.route.match)
    const backendField = m.require('backend')
    const backend = backendField === undefined ? '' : r.text(backendField) ?? ''
    if (backendField !== undefined && backend !== '' && !backends.includes(backend)) {
      const known = backends.length === 0 ? 'no backends are defined' : `known backends: ${backends.join(', ')}`
      r.report(backendField.path, backendField.at, `unknown backend \`${backend}\` (${known})${didYouMean(backend, backends)}`)
    }
    const rewrite = opt<RewriteConfig>(m, 'rewrite', (v) => this.#rewrite(v), DEFAULTS.route.rewrite)
    const d = DEFAULTS.route
    const requestHeaders = opt<HeaderOpsConfig>(m, 'requestHeaders', (v) => this.#headerOps(v, d.requestHeaders), d.requestHeaders)
    const responseHeaders = opt<HeaderOpsConfig>(m, 'responseHeaders', (v) => this.#headerOps(v, d.responseHeaders), d.responseHeaders)
    const cache = this.#routeCacheOf(m, top)
    return {
      config: { name, index, match, backend, rewrite, requestHeaders, responseHeaders, ...(cache === undefined ? {} : { cache }) },
      ...(nameField === undefined ? {} : { nameField })
    }
  }

  #match (f: Field): RouteMatchConfig | undefined {
    const r = this.#r
    const m = r.map(f, KEYS.match)
    if (m === undefined) return undefined
    const hostField = m.get('host')
    let host: string | undefined
    if (hostField !== undefined) {
      const s = r.text(hostField)
      if (s !== undefined) host = this.#host(hostField, s)
    }
    const d = DEFAULTS.route.match
    const pathPrefix = opt(m, 'pathPrefix', (v) => this.#pathPrefix(v), d.pathPrefix)
    const methods: string[] = []
    const methodsField = m.get('methods')
    for (const item of methodsField === undefined ? [] : r.seq(methodsField) ?? []) {
      const s = r.text(item)
      if (s === undefined) continue
      const method = s.toUpperCase()
      if (!isHttpMethod(method)) {
        const hint = didYouMean(method, HTTP_METHODS)
        r.report(item.path, item.at, `unknown HTTP method ${JSON.stringify(s)}${hint === '' ? `; expected one of ${HTTP_METHODS.join(', ')}` : hint}`)
      } else if (!methods.includes(method)) {
        methods.push(method)
        // Answered 405 before routing (session.ts): this is not a forward proxy.
        if (method === 'CONNECT') r.warn(item.path, item.at, 'CONNECT never reaches a route: Switchyard answers every CONNECT with 405 (it is not a forward proxy)')
      }
    }
    const headers = opt<Readonly<Record<string, string>>>(m, 'headers', (v) => this.#headerMap(v), d.headers)
    return { ...(host === undefined ? {} : { host }), pathPrefix, methods: methodsField === undefined ? d.methods : methods, headers }
  }

  #host (f: Field, s: string): string | undefined {
    const host = normalizeHostPattern(s)
    if (host !== undefined) return host
    let why = 'expected a host name like api.example.com or *.example.com'
    if (s.includes('*')) why = 'a wildcard is only allowed as a whole first label, like *.example.com'
    else if (/:\d+$/.test(s)) why = 'a host match does not include a port'
    this.#r.report(f.path, f.at, `${why}, got ${describe(f.node)}`)
    return undefined
  }

  #rewrite (f: Field): RewriteConfig | undefined {
    const m = this.#r.map(f, KEYS.rewrite)
    if (m === undefined) return undefined
    const strip = m.get('stripPrefix')
    const add = m.get('addPrefix')
    const stripPrefix = strip === undefined ? undefined : this.#pathPrefix(strip)
    const addPrefix = add === undefined ? undefined : this.#pathPrefix(add)
    return {
      ...(stripPrefix === undefined ? {} : { stripPrefix }),
      ...(addPrefix === undefined ? {} : { addPrefix })
    }
  }

  #pathPrefix (f: Field): string | undefined {
    const s = this.#r.string(f)
    if (s === undefined) return undefined
    if (!s.startsWith('/') || /[\s?#\0]/.test(s)) return this.#r.expected(f, 'a path starting with `/` (no spaces, `?` or `#`)')
    return s
  }

  #headerOps (f: Field, d: HeaderOpsConfig): HeaderOpsConfig | undefined {
    const r = this.#r
    const m = r.map(f, KEYS.headerOps)
    if (m === undefined) return undefined
    const set = opt(m, 'set', (v) => this.#headerMap(v, true), d.set)
    const removeField = m.get('remove')
    if (removeField === undefined) return { set, remove: d.remove }
    const remove: string[] = []
    for (const item of r.seq(removeField) ?? []) {
      const name = this.#headerName(item)
      if (name === undefined) continue
      if (FRAMING_FIELDS.has(name)) r.report(item.path, item.at, framingMessage(name))
      else if (!remove.includes(name)) remove.push(name)
    }
    return { set, remove }
  }

  /**
   * `name: value` pairs; names become lower-case tokens, values may not break
   * the header block. `ops`: fields a route sets, where framing and hop-by-hop
   * names are refused.
   */
  #headerMap (f: Field, ops = false): Record<string, string> | undefined {
    const r = this.#r
    const m = r.map(f)
    if (m === undefined) return undefined
    const out: Record<string, string> = {}
    const seen = new Unique(r, 'header name')
    for (const { key, keyNode, field } of m.entries()) {
      if (!isToken(key)) {
        r.report(field.path, keyNode, `expected a header name (an HTTP token), got ${JSON.stringify(key)}`)
        continue
      }
      const name = key.toLowerCase()
      if (ops && FRAMING_FIELDS.has(name)) {
        r.report(field.path, keyNode, framingMessage(name))
        continue
      }
      seen.add(name, { path: field.path, node: null, at: keyNode }, f.path)
      const value = r.stringish(field)
      if (value === undefined) continue
      if (!isSafeHeaderValue(value)) r.report(field.path, field.at, 'a header value may not contain CR, LF or NUL')
      else out[name] = value
    }
    return out
  }

  #headerName (f: Field): string | undefined {
    const s = this.#r.string(f)
    if (s === undefined) return undefined
    if (!isToken(s)) return this.#r.expected(f, 'a header name (an HTTP token)')
    return s.toLowerCase()
  }

  // ── backends ────────────────────────────────────────────────────────────

  #backends (m: MapView): Record<string, BackendConfig> {
    const out: Record<string, BackendConfig> = {}
    for (const { key, keyNode, field } of m.entries()) {
      if (!isName(key)) {
        this.#r.report(field.path, keyNode, `expected ${NAME_FORM} as backend name, got ${JSON.stringify(key)}`)
        continue
      }
      const b = this.#backend(key, field)
      if (b !== undefined) out[key] = b
    }
    return out
  }

  #backend (name: string, f: Field): BackendConfig | undefined {
    const r = this.#r
    const m = r.map(f, KEYS.backend)
    if (m === undefined) return undefined
    const serversField = m.get('servers')
    const shardsField = m.get('shards')
    const names = new Unique(r, 'server name')
    const scheme = new OneScheme(r)
    let shards: ShardConfig[] = []
    if (serversField !== undefined && shardsField !== undefined) {
      r.report(f.path, m.node, 'a backend has either `servers` or `shards`, not both')
    } else if (serversField !== undefined) {
      const shardName = 'default'
      shards = [{ name: shardName, servers: this.#servers(serversField, (i) => `server-${i}`, names, scheme) }]
    } else if (shardsField !== undefined) {
      shards = this.#shards(shardsField, names, scheme)
    } else {
      r.report(joinPath(f.path, 'servers'), m.node, 'a backend needs `servers` (a list) or `shards`')
    }
    const shardByField = m.get('shardBy')
    const shardBy = shardByField === undefined ? undefined : this.#shardBy(shardByField)
    if (shards.length > 1 && shardByField === undefined) {
      r.report(joinPath(f.path, 'shardBy'), m.node, `\`shardBy\` is required when a backend has more than one shard (${shards.length} here)`)
    }
    const balance = opt<BalanceConfig>(m, 'balance', (v) => this.#balance(v), DEFAULT_BALANCE)
    const passHostHeader = opt(m, 'passHostHeader', (v) => r.boolean(v), DEFAULTS.backend.passHostHeader)
    const timeouts = opt(m, 'timeouts', (v) => this.#upstreamTimeouts(v), DEFAULTS.backend.timeouts)
    const connections = opt(m, 'connections', (v) => r.integer(v, 1), DEFAULTS.backend.connections)
    const stickyField = m.get('sticky')
    const sticky = stickyField === undefined ? undefined : this.#sticky(stickyField)
    const healthField = m.get('healthCheck')
    const healthCheck = healthField === undefined ? undefined : this.#healthCheck(healthField)
    const outlierField = m.get('outlierDetection')
    const outlierDetection = outlierField === undefined ? undefined : this.#outlierDetection(outlierField)
    const retries = opt(m, 'retries', (v) => this.#retries(v), DEFAULTS.backend.retries)
    const maxConn = opt(m, 'maxConn', (v) => r.integer(v, 0), DEFAULTS.backend.maxConn)
    const maxQueue = opt(m, 'maxQueue', (v) => r.integer(v, 0), DEFAULTS.backend.maxQueue)
    const slowStart = opt(m, 'slowStart', (v) => duration(r, v), DEFAULTS.backend.slowStart)
    const panicThreshold = opt(m, 'panicThreshold', (v) => this.#percent(v), DEFAULTS.backend.panicThreshold)
    const tls = this.#backendTls(name, m, scheme.https)
    return {
      name,
      shards,
      ...(shardBy === undefined ? {} : { shardBy }),
      balance,
      passHostHeader,
      timeouts,
      connections,
      ...(sticky === undefined ? {} : { sticky }),
      ...(healthCheck === undefined ? {} : { healthCheck }),
      ...(outlierDetection === undefined ? {} : { outlierDetection }),
      retries,
      maxConn,
      maxQueue,
      slowStart,
      panicThreshold,
      ...(tls === undefined ? {} : { tls })
    }
  }

  #shards (f: Field, serverNames: Unique, scheme: OneScheme): ShardConfig[] {
    const r = this.#r
    const items = r.seq(f)
    if (items === undefined) return []
    if (items.length === 0) r.report(f.path, f.at, 'at least one shard is required')
    const names = new Unique(r, 'shard name')
    const out: ShardConfig[] = []
    for (const item of items) {
      const m = r.map(item, KEYS.shard)
      if (m === undefined) continue
      // Required, not defaulted: keys are hashed over shard names, so renaming one moves data.
      const nameField = m.require('name')
      const name = nameField === undefined ? '' : this.#name(nameField) ?? ''
      const fresh = nameField === undefined || name === '' || names.add(name, nameField, item.path)
      // A repeated shard name would repeat its default server names too: report it once.
      const serverScope = fresh ? serverNames : new Unique(r, 'server name')
      const serversField = m.require('servers')
      const servers = serversField === undefined ? [] : this.#servers(serversField, (i) => `${name}-${i}`, serverScope, scheme)
      out.push({ name, servers })
    }
    return out
  }

  #servers (f: Field, defaultName: (i: number) => string, names: Unique, scheme: OneScheme): ServerConfig[] {
    const r = this.#r
    const items = r.seq(f)
    if (items === undefined) return []
    if (items.length === 0) r.report(f.path, f.at, 'at least one server is required')
    const out: ServerConfig[] = []
    items.forEach((item, i) => {
      const m = r.map(item, KEYS.server)
      if (m === undefined) return
      const nameField = m.get('name')
      const name = nameField === undefined ? defaultName(i) : this.#name(nameField)
      if (name !== undefined) names.add(name, nameField ?? item, item.path)
      const urlField = m.require('url')
      let url = ''
      const s = urlField === undefined ? undefined : r.string(urlField)
      if (urlField !== undefined && s !== undefined) {
        const check = normalizeServerUrl(s)
        if (check.ok) url = check.url
        else r.report(urlField.path, urlField.at, `${check.reason}, got ${describe(urlField.node)}`)
      }
      if (urlField !== undefined && url !== '') scheme.add(url, urlField, item.path)
      const weight = opt(m, 'weight', (v) => this.#weight(v), DEFAULTS.backend.server.weight)
      // Absent = the backend's maxConn; 0 (unlimited) is only a backend-wide setting.
      const maxConnField = m.get('maxConn')
      const maxConn = maxConnField === undefined ? undefined : r.integer(maxConnField, 1)
      out.push({ name: name ?? '', url, weight, ...(maxConn === undefined ? {} : { maxConn }) })
    })
    return out
  }

  /**
   * The backend's `tls` block. https:// servers need none (every default
   * applies); on a backend of http:// servers it is a mistake.
   */
  #backendTls (backend: string, m: MapView, https: boolean | undefined): BackendTlsConfig | undefined {
    const r = this.#r
    const f = m.get('tls')
    if (f === undefined) return https === true ? DEFAULTS.backend.tls : undefined
    if (https === false) {
      const key = m.entries().find((e) => e.key === 'tls')?.keyNode ?? f.at
      r.report(f.path, key, '`tls` is for https:// servers, and the servers of this backend are http://; ' +
        'write their URLs as https://host:port, or remove `tls`')
      return undefined
    }
    const tm = r.map(f, KEYS.backendTls)
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
    const ca = this.#pemFile(tm.get('ca'))
    const cert = this.#pemFile(certField)
    const key = this.#pemFile(keyField)
    const snField = tm.get('servername')
    const servername = snField === undefined ? undefined : this.#servername(snField)
    const minVersion = opt(tm, 'minVersion', (v) => this.#minVersion(v), DEFAULTS.backend.tls.minVersion)
    const skipField = tm.get('insecureSkipVerify')
    const insecureSkipVerify = opt(tm, 'insecureSkipVerify', (v) => r.boolean(v), DEFAULTS.backend.tls.insecureSkipVerify)
    if (skipField !== undefined && insecureSkipVerify) {
      r.warn(skipField.path, skipField.at, 'server certificates are not verified: anyone on the network path can pose as these servers; ' +
        'trust their CA with `ca` instead')
    }
    if (pair && (ca !== undefined || cert !== undefined)) {
      this.tlsFiles.push({
        backend, minVersion, ...(ca === undefined ? {} : { ca }), ...(cert === undefined ? {} : { cert }), ...(key === undefined ? {} : { key })
      })
    }
    return {
      ...(ca === undefined ? {} : { ca: ca.file }),
      ...(servername === undefined ? {} : { servername }),
      ...(cert === undefined ? {} : { cert: cert.file }),
      ...(key === undefined ? {} : { key: key.file }),
      minVersion,
      insecureSkipVerify
    }
  }

  /** A TLS file of a backend: like #file, but the reference itself, for the PEM check in load.ts. */
  #pemFile (f: Field | undefined): FileRef | undefined {
    if (f === undefined || this.#file(f) === '') return undefined
    return this.files[this.files.length - 1]
  }

  /** SNI is a DNS name (RFC 6066 §3): never an IP, a port or a wildcard. */
  #servername (f: Field): string | undefined {
    const s = this.#r.text(f)
    if (s === undefined) return undefined
    const name = s.toLowerCase()
    if (isIP(name.replace(/^\[(.*)\]$/, '$1')) !== 0) {
      this.#r.report(f.path, f.at, 'an IP address is never sent as SNI (RFC 6066); leave `servername` out: ' +
        'a server URL with an IP address is verified against the IP addresses in the certificate')
      return undefined
    }
    return isHostname(name) ? name : this.#r.expected(f, 'a DNS name like api.internal (no port, no wildcard)')
  }

  #weight (f: Field): number | undefined {
    const w = this.#r.number(f)
    if (w === undefined) return undefined
    if (w <= 0 || w > 256) return this.#r.expected(f, 'a weight greater than 0 and at most 256')
    return w
  }

  #shardBy (f: Field): ShardByConfig | undefined {
    const r = this.#r
    const m = r.map(f, KEYS.shardBy)
    if (m === undefined) return undefined
    const given = SHARD_KEY_SOURCES.filter((k) => m.has(k))
    const missing = opt<ShardKeyMissing>(m, 'missing', (v) => r.oneOf(v, SHARD_KEY_MISSING), DEFAULTS.backend.shardBy.missing)
    if (given.length !== 1) {
      const what = given.length === 0 ? 'none' : given.map((k) => `\`${k}\``).join(' and ')
      r.report(f.path, m.node, `\`shardBy\` takes exactly one of header, cookie, query, pathSegment (got ${what})`)
      return undefined
    }
    const source = given[0] as typeof SHARD_KEY_SOURCES[number]
    const v = m.require(source)
    if (v === undefined) return undefined
    switch (source) {
      case 'header': {
        const name = this.#headerName(v)
        return name === undefined ? undefined : { header: name, missing }
      }
      case 'cookie': {
        const name = this.#cookieName(v)
        return name === undefined ? undefined : { cookie: name, missing }
      }
      case 'query': {
        const name = r.text(v)
        return name === undefined ? undefined : { query: name, missing }
      }
      case 'pathSegment': {
        // Counted from 1: in /users/42/x, segment 1 is `users` and 2 is `42`.
        const n = r.integer(v, 1)
        return n === undefined ? undefined : { pathSegment: n, missing }
      }
    }
  }

  #balance (f: Field): BalanceConfig | undefined {
    const r = this.#r
    const m = r.map(f)
    if (m === undefined) return undefined
    const algoField = m.get('algorithm')
    const algorithm = algoField === undefined ? BALANCE.algorithm : r.oneOf(algoField, ALGORITHMS)
    if (algorithm === undefined) {
      // The options may be right for the algorithm meant: flag only keys no algorithm takes.
      m.checkKeys(['algorithm', ...BALANCE_OPTIONS])
      return undefined
    }
    const entry = BALANCERS[algorithm]
    const known = ['algorithm', ...entry.keys]
    for (const { key, keyNode, field } of m.entries()) {
      if (known.includes(key)) continue
      r.report(field.path, keyNode, `unknown key \`${key}\`${balanceKeyHint(key, known, algorithm, algoField === undefined)}`)
    }
    return entry.build(m, r)
  }

  #upstreamTimeouts (f: Field): UpstreamTimeoutsConfig | undefined {
    const m = this.#r.map(f, KEYS.upstreamTimeouts)
    if (m === undefined) return undefined
    const d = DEFAULTS.backend.timeouts
    const dur = (v: Field): number | undefined => duration(this.#r, v)
    return {
      connect: opt(m, 'connect', dur, d.connect),
      headers: opt(m, 'headers', dur, d.headers),
      body: opt(m, 'body', dur, d.body),
      keepAlive: opt(m, 'keepAlive', dur, d.keepAlive),
      queue: opt(m, 'queue', dur, d.queue)
    }
  }

  // ── backend traffic options: sticky, health, outliers, retries ───────────

  #sticky (f: Field): StickyConfig | undefined {
    const r = this.#r
    const m = r.map(f, KEYS.sticky)
    if (m === undefined) return undefined
    // A misspelt `cookie` is already reported as an unknown key: no "missing" on top.
    if (!m.has('cookie') && m.entries().length > 0) return undefined
    const c = m.require('cookie')
    if (c === undefined) return undefined
    const d = DEFAULTS.backend.sticky.cookie
    // Shorthand: `cookie: NAME` names the cookie and keeps every other default.
    if (typeof r.scalar(c) === 'string') {
      const name = this.#cookieName(c)
      return name === undefined ? undefined : { cookie: { ...d, name } }
    }
    if (!isMap(c.node)) return r.expected(c, 'a cookie name or a mapping of cookie options')
    const cm = r.map(c, KEYS.stickyCookie)
    if (cm === undefined) return undefined
    const maxAgeField = cm.get('maxAge')
    const maxAge = maxAgeField === undefined ? undefined : this.#maxAge(maxAgeField)
    const cookie: StickyCookieConfig = {
      name: opt(cm, 'name', (v) => this.#cookieName(v), d.name),
      ...(maxAge === undefined ? {} : { maxAge }),
      path: opt(cm, 'path', (v) => this.#cookiePath(v), d.path),
      sameSite: opt(cm, 'sameSite', (v) => r.oneOf(v, SAME_SITE), d.sameSite),
      httpOnly: opt(cm, 'httpOnly', (v) => r.boolean(v), d.httpOnly)
    }
    return { cookie }
  }

  /** Cookie Max-Age counts whole seconds. */
  #maxAge (f: Field): number | undefined {
    const ms = duration(this.#r, f, 1000)
    if (ms !== undefined && ms % 1000 !== 0) return this.#r.expected(f, 'a whole number of seconds (cookie Max-Age counts seconds)')
    return ms
  }

  #cookiePath (f: Field): string | undefined {
    const s = this.#r.text(f)
    if (s === undefined) return undefined
    return isCookiePath(s) ? s : this.#r.expected(f, 'a cookie path starting with `/` (no spaces or `;`)')
  }

  /** `true` or `{}`: every default; `false`: off, as if absent; a mapping: those options. */
  #toggle (f: Field, keys: readonly string[]): MapView | boolean | undefined {
    const v = this.#r.scalar(f)
    if (typeof v === 'boolean') return v
    if (!isMap(f.node)) return this.#r.expected(f, 'a mapping, true (every default) or false (off)')
    return this.#r.map(f, keys)
  }

  #healthCheck (f: Field): HealthCheckConfig | undefined {
    const r = this.#r
    const m = this.#toggle(f, KEYS.healthCheck)
    if (m === true) return DEFAULTS.backend.healthCheck
    if (m === false || m === undefined) return undefined
    const d = DEFAULTS.backend.healthCheck
    const hostField = m.get('host')
    const hostText = hostField === undefined ? undefined : r.text(hostField)
    const host = hostText === undefined ? undefined : normalizeHostHeader(hostText)
    if (hostField !== undefined && hostText !== undefined && host === undefined) {
      r.expected(hostField, 'a Host header value: a host name or IP, with an optional port, like api.internal or 10.0.0.1:8080')
    }
    const bodyField = m.get('expectBody')
    const expectBody = bodyField === undefined ? undefined : r.text(bodyField)
    const interval = optChecked(m, 'interval', (v) => duration(r, v, 1), d.interval)
    const timeout = optChecked(m, 'timeout', (v) => duration(r, v, 1), d.timeout)
    // A probe still running when the next one is due would overlap it.
    this.#compare(m, { key: 'timeout', value: timeout }, 'shorter than', { key: 'interval', value: interval })
    const method = opt(m, 'method', (v) => this.#probeMethod(v), d.method)
    // A HEAD answer has no body, so a body check could never pass.
    if (method === 'HEAD' && bodyField !== undefined && expectBody !== undefined) {
      r.expected(bodyField, 'no `expectBody` with `method: HEAD` (a HEAD answer has no body); use GET')
    }
    return {
      path: opt(m, 'path', (v) => this.#requestPath(v), d.path),
      method,
      ...(host === undefined ? {} : { host }),
      interval: interval ?? d.interval,
      jitter: opt(m, 'jitter', (v) => this.#fraction(v), d.jitter),
      timeout: timeout ?? d.timeout,
      rise: opt(m, 'rise', (v) => r.integer(v, 1), d.rise),
      fall: opt(m, 'fall', (v) => r.integer(v, 1), d.fall),
      expectStatus: opt<HealthCheckConfig['expectStatus']>(m, 'expectStatus', (v) => this.#expectStatus(v), d.expectStatus),
      ...(expectBody === undefined ? {} : { expectBody })
    }
  }

  #requestPath (f: Field): string | undefined {
    const s = this.#r.text(f)
    if (s === undefined) return undefined
    return isRequestPath(s) ? s : this.#r.expected(f, 'a path starting with `/` (visible ASCII, no spaces or `#`; a query is fine)')
  }

  /** GET or HEAD, in any case (as route methods are). */
  #probeMethod (f: Field): HealthCheckConfig['method'] | undefined {
    const s = this.#r.text(f)
    if (s === undefined) return undefined
    const upper = s.toUpperCase()
    const method = PROBE_METHODS.find((x) => x === upper)
    return method ?? this.#r.expected(f, `one of ${PROBE_METHODS.join(', ')}`)
  }

  /** `200`, `"200-399"`, or a list of those. */
  #expectStatus (f: Field): Array<[number, number]> | undefined {
    if (!isSeq(f.node)) {
      const range = this.#statusRange(f)
      return range === undefined ? undefined : [range]
    }
    const items = this.#r.seq(f) ?? []
    if (items.length === 0) {
      this.#r.report(f.path, f.at, 'at least one status or range is required')
      return undefined
    }
    const out: Array<[number, number]> = []
    let ok = true
    for (const item of items) {
      const range = this.#statusRange(item)
      if (range === undefined) ok = false
      else out.push(range)
    }
    return ok ? out : undefined
  }

  #statusRange (f: Field): [number, number] | undefined {
    const r = this.#r
    const v = r.scalar(f)
    const m = typeof v === 'string' ? /^(\d+)(?:-(\d+))?$/.exec(v) : null
    let lo: number
    let hi: number
    if (typeof v === 'number' && Number.isInteger(v)) {
      lo = hi = v
    } else if (m !== null) {
      lo = Number(m[1])
      hi = Number(m[2] ?? m[1])
    } else {
      return r.expected(f, 'a status like 200 or a range like 200-399')
    }
    if (lo < 100 || hi > 599) return r.expected(f, 'status codes from 100 to 599')
    if (lo > hi) return r.expected(f, `a range from low to high, like ${hi}-${lo}`)
    return [lo, hi]
  }

  #outlierDetection (f: Field): OutlierDetectionConfig | undefined {
    const r = this.#r
    const m = this.#toggle(f, KEYS.outlierDetection)
    if (m === true) return DEFAULTS.backend.outlierDetection
    if (m === false || m === undefined) return undefined
    const d = DEFAULTS.backend.outlierDetection
    const base = optChecked(m, 'baseEjectionTime', (v) => duration(r, v, 1), d.baseEjectionTime)
    const max = optChecked(m, 'maxEjectionTime', (v) => duration(r, v, 1), d.maxEjectionTime)
    this.#compare(m, { key: 'maxEjectionTime', value: max }, 'at least', { key: 'baseEjectionTime', value: base })
    return {
      consecutive5xx: opt(m, 'consecutive5xx', (v) => r.integer(v, 0), d.consecutive5xx),
      consecutiveGatewayFailure: opt(m, 'consecutiveGatewayFailure', (v) => r.integer(v, 0), d.consecutiveGatewayFailure),
      baseEjectionTime: base ?? d.baseEjectionTime,
      maxEjectionTime: max ?? d.maxEjectionTime,
      maxEjectionPercent: opt(m, 'maxEjectionPercent', (v) => this.#percent(v, true), d.maxEjectionPercent)
    }
  }

  #retries (f: Field): RetriesConfig | undefined {
    const r = this.#r
    const m = r.map(f, KEYS.retries)
    if (m === undefined) return undefined
    const d = DEFAULTS.backend.retries
    return {
      attempts: opt(m, 'attempts', (v) => r.integer(v, 0, 10), d.attempts),
      nonIdempotent: opt(m, 'nonIdempotent', (v) => r.boolean(v), d.nonIdempotent),
      // Named a percent, stored as a fraction: `20%` and `0.2` are the same budget.
      budgetPercent: opt(m, 'budgetPercent', (v) => this.#fraction(v), d.budgetPercent),
      minRetryConcurrency: opt(m, 'minRetryConcurrency', (v) => r.integer(v, 0), d.minRetryConcurrency),
      bufferBodyBytes: opt(m, 'bufferBodyBytes', (v) => size(r, v, 0), d.bufferBodyBytes)
    }
  }

  // ── cache ───────────────────────────────────────────────────────────────

  /** `true` or `{}`: every default; `false`: no cache, as if absent; a mapping: those options. */
  #cache (f: Field, proxyName: string): CacheConfig | undefined {
    const r = this.#r
    const m = this.#toggle(f, KEYS.cache)
    if (m === false || m === undefined) return undefined
    const d = DEFAULTS.cache
    if (m === true) return { ...d, statusName: this.#defaultStatusName(proxyName, f, f.at) }
    const maxBytes = optChecked(m, 'maxBytes', (v) => size(r, v, MIN_CACHE_BYTES), d.maxBytes)
    const maxEntryBytes = optChecked(m, 'maxEntryBytes', (v) => size(r, v, 1), d.maxEntryBytes)
    if (maxBytes !== undefined && maxEntryBytes !== undefined && maxEntryBytes > maxBytes) {
      // The defaults obey the rule, so at least one of the two was written.
      const at = m.get('maxEntryBytes') ?? m.get('maxBytes')
      const show = (key: string, bytes: number): string => `\`${key}\` (${formatSize(bytes)}${m.has(key) ? '' : ', the default'})`
      if (at !== undefined) r.report(at.path, at.at, `${show('maxEntryBytes', maxEntryBytes)} must be at most ${show('maxBytes', maxBytes)}`)
    }
    const nameField = m.get('statusName')
    const statusName = nameField === undefined
      ? this.#defaultStatusName(proxyName, f, m.node)
      : this.#sfToken(nameField) ?? proxyName
    return {
      maxBytes: maxBytes ?? d.maxBytes,
      maxEntryBytes: maxEntryBytes ?? d.maxEntryBytes,
      heuristic: opt(m, 'heuristic', (v) => r.boolean(v), d.heuristic),
      heuristicMaxAge: opt(m, 'heuristicMaxAge', (v) => duration(r, v), d.heuristicMaxAge),
      statusName,
      collapseTimeout: opt(m, 'collapseTimeout', (v) => duration(r, v, 1), d.collapseTimeout),
      purgeFrom: opt<readonly string[]>(m, 'purgeFrom', (v) => this.#ipList(v), d.purgeFrom)
    }
  }

  /** `statusName` defaults to the proxyName, which (an HTTP token) need not be an sf-token. */
  #defaultStatusName (proxyName: string, f: Field, at: Node | null): string {
    if (!isSfToken(proxyName)) {
      this.#r.report(joinPath(f.path, 'statusName'), at,
        `the default \`statusName\` is the proxyName \`${proxyName}\`, which is not ${SF_TOKEN_FORM}; set \`statusName\``)
    }
    return proxyName
  }

  #sfToken (f: Field): string | undefined {
    const s = this.#r.text(f)
    if (s === undefined) return undefined
    return isSfToken(s) ? s : this.#r.expected(f, SF_TOKEN_FORM)
  }

  /**
   * A route's cache settings: always present (defaults filled) when the
   * top-level cache is on; an error when written while it is not.
   */
  #routeCacheOf (m: MapView, top: TopCache): RouteCacheConfig | undefined {
    const f = m.get('cache')
    if (top.on) return f === undefined ? DEFAULTS.route.cache : this.#routeCache(f) ?? DEFAULTS.route.cache
    if (f !== undefined) {
      const key = m.entries().find((e) => e.key === 'cache')?.keyNode ?? f.at
      const why = top.field === undefined ? 'there is none' : 'it is `false`'
      this.#r.report(f.path, key, `a route \`cache\` needs the top-level \`cache\` block, which turns caching on, and ${why}; add \`cache: {}\` at the top level`)
    }
    return undefined
  }

  /** `true` or `{}`: cached with every default; `false`: not cached; a mapping: those options. */
  #routeCache (f: Field): RouteCacheConfig | undefined {
    const r = this.#r
    const m = this.#toggle(f, KEYS.routeCache)
    const d = DEFAULTS.route.cache
    if (m === true) return d
    if (m === false) return { ...d, enabled: false }
    if (m === undefined) return undefined
    const ttlField = m.get('defaultTtl')
    const defaultTtl = ttlField === undefined ? undefined : duration(r, ttlField, 1)
    return {
      enabled: opt(m, 'enabled', (v) => r.boolean(v), d.enabled),
      key: opt<CacheKeyConfig>(m, 'key', (v) => this.#cacheKey(v), d.key),
      allowSetCookie: opt(m, 'allowSetCookie', (v) => r.boolean(v), d.allowSetCookie),
      ...(defaultTtl === undefined ? {} : { defaultTtl })
    }
  }

  #cacheKey (f: Field): CacheKeyConfig | undefined {
    const r = this.#r
    const m = r.map(f, KEYS.cacheKey)
    if (m === undefined) return undefined
    const d = DEFAULTS.route.cache.key
    const query = opt(m, 'query', (v) => r.oneOf(v, CACHE_QUERY), d.query)
    const ignoreParams: string[] = []
    const paramsField = m.get('ignoreParams')
    for (const item of paramsField === undefined ? [] : r.seq(paramsField) ?? []) {
      const name = r.text(item)
      if (name !== undefined && !ignoreParams.includes(name)) ignoreParams.push(name)
    }
    if (paramsField !== undefined && query === 'ignore') {
      r.report(paramsField.path, paramsField.at, '`ignoreParams` has no effect with `query: ignore` (the key has no query at all)')
    }
    const headers: string[] = []
    const headersField = m.get('headers')
    for (const item of headersField === undefined ? [] : r.seq(headersField) ?? []) {
      const name = this.#headerName(item)
      if (name !== undefined && !headers.includes(name)) headers.push(name)
    }
    return {
      query,
      ignoreParams: paramsField === undefined ? d.ignoreParams : ignoreParams,
      headers: headersField === undefined ? d.headers : headers
    }
  }

  // ── shared value checks ─────────────────────────────────────────────────

  #name (f: Field): string | undefined {
    const s = this.#r.text(f)
    if (s === undefined) return undefined
    return isName(s) ? s : this.#r.expected(f, NAME_FORM)
  }

  #token (f: Field): string | undefined {
    const s = this.#r.text(f)
    if (s === undefined) return undefined
    return isToken(s) ? s : this.#r.expected(f, 'a single word (an HTTP token, no spaces)')
  }

  #cookieName (f: Field): string | undefined {
    // Cookie names are tokens (RFC 6265) and, unlike header names, case-sensitive.
    const name = this.#r.text(f)
    if (name !== undefined && !isToken(name)) return this.#r.expected(f, 'a cookie name (an HTTP token)')
    return name
  }

  /** A fraction 0..1, written as a number (`0.2`) or a percentage (`20%`). */
  #fraction (f: Field): number | undefined {
    const v = this.#r.scalar(f)
    const pct = parsePercent(v)
    const x = typeof v === 'number' ? v : pct === undefined ? undefined : pct / 100
    if (x === undefined || !Number.isFinite(x) || x < 0 || x > 1) {
      return this.#r.expected(f, 'a fraction from 0 to 1 like 0.2, or a percentage like 20%')
    }
    return x
  }

  /** A percentage 0..100, written as a number (`50`) or with its sign (`50%`). */
  #percent (f: Field, whole = false): number | undefined {
    const v = this.#r.scalar(f)
    const x = typeof v === 'number' ? v : parsePercent(v)
    if (x === undefined || !Number.isFinite(x) || x < 0 || x > 100 || (whole && !Number.isInteger(x))) {
      return this.#r.expected(f, whole ? 'a whole percentage from 0 to 100 like 50 or 50%' : 'a percentage from 0 to 100 like 50 or 12.5%')
    }
    return x
  }

  /**
   * Checks two durations of one block against each other, and reports a
   * breach at `subject` (or at `other` when only that one was written).
   * Skipped when either is invalid: that is reported already.
   */
  #compare (m: MapView, subject: Bound, rule: 'shorter than' | 'at least', other: Bound): void {
    if (subject.value === undefined || other.value === undefined) return
    if (rule === 'shorter than' ? subject.value < other.value : subject.value >= other.value) return
    // The defaults obey every rule, so at least one of the two was written.
    const at = m.get(subject.key) ?? m.get(other.key)
    if (at === undefined) return
    const show = (b: Bound): string => `\`${b.key}\` (${formatDuration(b.value as number)}${m.has(b.key) ? '' : ', the default'})`
    this.#r.report(at.path, at.at, `${show(subject)} must be ${rule} ${show(other)}`)
  }
}

/**
 * Why `key` is not an option of `algorithm`: the algorithm that does take it,
 * or the closest option (of this algorithm first, then of any other).
 */
function balanceKeyHint (key: string, known: readonly string[], algorithm: string, defaulted: boolean): string {
  const owners = ALGORITHMS.filter((a) => BALANCERS[a].keys.includes(key))
  if (owners.length > 0) {
    return ` for algorithm ${algorithm}${defaulted ? ' (the default)' : ''}; \`${key}\` is an option of ${owners.join(', ')}`
  }
  const near = closest(key, known)
  if (near !== undefined) return `; did you mean \`${near}\`?`
  const far = closest(key, BALANCE_OPTIONS)
  const owner = ALGORITHMS.find((a) => far !== undefined && BALANCERS[a].keys.includes(far))
  if (far !== undefined && owner !== undefined) return `; did you mean \`${far}\` (an option of ${owner})?`
  return `; expected one of ${known.join(', ')}`
}

/** Whether the top-level `cache` turns caching on, and where it was written. */
interface TopCache {
  /** Written and not `false` (even with mistakes inside: those are reported once, at the block). */
  readonly on: boolean
  readonly field: Field | undefined
}

/** A duration option as read: its key and value (undefined when invalid). */
interface Bound {
  readonly key: string
  readonly value: number | undefined
}

/** The value of an optional key, or its default when absent, empty or invalid (then an issue is recorded). */
function opt<T> (m: MapView, key: string, read: (f: Field) => T | undefined, fallback: T): T {
  const f = m.get(key)
  return f === undefined ? fallback : read(f) ?? fallback
}

/** Like opt, but undefined when the value is invalid, for rules that compare two values. */
function optChecked<T> (m: MapView, key: string, read: (f: Field) => T | undefined, fallback: T): T | undefined {
  const f = m.get(key)
  return f === undefined ? fallback : read(f)
}

/** Milliseconds, at least `min` (1 = must be > 0). */
function duration (r: Reader, f: Field, min = 0): number | undefined {
  const ms = parseDuration(r.scalar(f))
  if (ms === undefined) return r.expected(f, DURATION_FORMS)
  if (ms > MAX_DURATION_MS) return r.expected(f, 'a duration of at most 596h31m23s (the Node.js timer limit)')
  if (ms < min) return r.expected(f, min === 1 ? 'a duration greater than 0' : `a duration of at least ${formatDuration(min)}`)
  return ms
}

function size (r: Reader, f: Field, min: number): number | undefined {
  const bytes = parseSize(r.scalar(f))
  if (bytes === undefined) return r.expected(f, SIZE_FORMS)
  if (bytes < min) return r.expected(f, `a size of at least ${formatSize(min)}`)
  return bytes
}

/** `host:port` as compared for clashes: IPv6 in brackets, names lower-cased. */
function bindKey (host: string, port: number): string {
  return `${host.includes(':') ? `[${host}]` : host.toLowerCase()}:${port}`
}

/** Reports the second and later uses of a value, naming where it was first used. */
class Unique {
  readonly #r: Reader
  readonly #what: string
  readonly #seen = new Map<string, string>()

  constructor (r: Reader, what: string) {
    this.#r = r
    this.#what = what
  }

  /** False (and reported) when `value` was seen before. */
  add (value: string, at: Field, owner: string): boolean {
    const first = this.#seen.get(value)
    if (first === undefined) {
      this.#seen.set(value, owner)
      return true
    }
    this.#r.report(at.path, at.at, `duplicate ${this.#what} \`${value}\` (already used by ${first})`)
    return false
  }
}

/** The servers of one backend share a scheme: reports each server whose URL's differs from the first one's. */
class OneScheme {
  readonly #r: Reader
  #first: { readonly scheme: string, readonly owner: string } | undefined

  constructor (r: Reader) {
    this.#r = r
  }

  /** Whether the backend's servers are https:// (as its first valid URL says); undefined when none is valid. */
  get https (): boolean | undefined {
    return this.#first === undefined ? undefined : this.#first.scheme === 'https'
  }

  add (url: string, at: Field, owner: string): void {
    const scheme = url.slice(0, url.indexOf(':'))
    if (this.#first === undefined) {
      this.#first = { scheme, owner }
      return
    }
    if (scheme === this.#first.scheme) return
    this.#r.report(at.path, at.at, `this server is ${scheme}:// but ${this.#first.owner} is ${this.#first.scheme}://; ` +
      'the servers of a backend all use one scheme (a retry or failover may send any request to any of them): ' +
      'use https:// for all of them, or give these their own backend')
  }
}
