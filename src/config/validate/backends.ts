// The `backends` section: each backend's servers or shards (and `shardBy`),
// `balance`, upstream `timeouts`, connection limits, `sticky` and `retries`;
// health checks are read in backend-health.ts and the `tls` block in
// backend-tls.ts.

import { isMap } from 'yaml'
import { DEFAULTS } from '../schema.js'
import type {
  BackendConfig, BalanceConfig, RetriesConfig, ServerConfig, ShardByConfig, ShardConfig, ShardKeyMissing, StickyConfig,
  StickyCookieConfig, UpstreamProtocol, UpstreamTimeoutsConfig
} from '../schema.js'
import { type Field, type MapView, type Reader, describe, joinPath } from '../reader.js'
import { closest } from '../suggest.js'
import { NAME_FORM, isCookiePath, isName, normalizeServerUrl } from '../forms.js'
import { type Context, Unique, cookieName, duration, entryName, fraction, headerName, opt, percent, size } from './common.js'
import { readHealthCheck, readOutlierDetection } from './backend-health.js'
import { readBackendTls } from './backend-tls.js'

const KEYS = {
  backend: [
    'servers', 'shards', 'shardBy', 'balance', 'passHostHeader', 'timeouts', 'connections', 'protocol', 'sticky', 'healthCheck',
    'outlierDetection', 'retries', 'maxConn', 'maxQueue', 'slowStart', 'panicThreshold', 'tls', 'sendProxyProtocol'
  ],
  shard: ['name', 'servers'],
  server: ['name', 'url', 'weight', 'maxConn', 'role', 'sendProxyProtocol'],
  shardBy: ['header', 'cookie', 'query', 'pathSegment', 'missing'],
  upstreamTimeouts: ['connect', 'headers', 'body', 'keepAlive', 'queue'],
  sticky: ['cookie'],
  stickyCookie: ['name', 'maxAge', 'path', 'sameSite', 'httpOnly'],
  retries: ['attempts', 'nonIdempotent', 'budgetPercent', 'minRetryConcurrency', 'bufferBodyBytes']
} as const

/** The one shard of a backend written with `servers:`. */
const PLAIN_SHARD = 'default'

const SHARD_KEY_SOURCES = ['header', 'cookie', 'query', 'pathSegment'] as const
const SHARD_KEY_MISSING = ['any', 'reject'] as const
const SAME_SITE = ['Lax', 'Strict', 'None'] as const

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

export interface Backends {
  readonly backends: Readonly<Record<string, BackendConfig>>
  /**
   * Every backend name written, even a broken backend's, for the routes'
   * references: one mistake in a backend does not cascade into many.
   */
  readonly names: readonly string[]
}

/** The `backends` mapping of the top-level mapping: name → backend. */
export function readBackends (ctx: Context, root: MapView): Backends {
  const f = root.get('backends')
  const m = f === undefined ? undefined : ctx.r.map(f)
  if (m === undefined) return { backends: DEFAULTS.backends, names: [] }
  const out: Record<string, BackendConfig> = {}
  for (const { key, keyNode, field } of m.entries()) {
    if (!isName(key)) {
      ctx.r.report(field.path, keyNode, `expected ${NAME_FORM} as backend name, got ${JSON.stringify(key)}`)
      continue
    }
    const b = backend(ctx, key, field)
    if (b !== undefined) out[key] = b
  }
  return { backends: out, names: m.entries().map((e) => e.key) }
}

function backend (ctx: Context, name: string, f: Field): BackendConfig | undefined {
  const r = ctx.r
  const d = DEFAULTS.backend
  const m = r.map(f, KEYS.backend)
  if (m === undefined) return undefined
  const serversField = m.get('servers')
  const shardsField = m.get('shards')
  const names = new Unique(r, 'server name')
  const scheme = new OneScheme(r)
  let shardList: ShardConfig[] = []
  if (serversField !== undefined && shardsField !== undefined) {
    r.report(f.path, m.node, 'a backend has either `servers` or `shards`, not both')
  } else if (serversField !== undefined) {
    shardList = [{ name: PLAIN_SHARD, servers: servers(r, serversField, (i) => `server-${i}`, names, scheme) }]
  } else if (shardsField !== undefined) {
    shardList = shards(r, shardsField, names, scheme)
  } else {
    r.report(joinPath(f.path, 'servers'), m.node, 'a backend needs `servers` (a list) or `shards`')
  }
  const shardByField = m.get('shardBy')
  const shardBy = shardByField === undefined ? undefined : shardKey(r, shardByField)
  if (shardList.length > 1 && shardByField === undefined) {
    r.report(joinPath(f.path, 'shardBy'), m.node, `\`shardBy\` is required when a backend has more than one shard (${shardList.length} here)`)
  }
  const balance = opt<BalanceConfig>(m, 'balance', (v) => balancing(r, v), DEFAULT_BALANCE)
  const passHostHeader = opt(m, 'passHostHeader', (v) => r.boolean(v), d.passHostHeader)
  const timeouts = opt(m, 'timeouts', (v) => upstreamTimeouts(r, v), d.timeouts)
  const connections = opt(m, 'connections', (v) => r.integer(v, 1), d.connections)
  const stickyField = m.get('sticky')
  const sticky = stickyField === undefined ? undefined : stickiness(r, stickyField)
  const healthCheck = readHealthCheck(ctx, m)
  const outlierDetection = readOutlierDetection(ctx, m)
  const retries = opt(m, 'retries', (v) => retryPolicy(r, v), d.retries)
  const maxConn = opt(m, 'maxConn', (v) => r.integer(v, 0), d.maxConn)
  const maxQueue = opt(m, 'maxQueue', (v) => r.integer(v, 0), d.maxQueue)
  const slowStart = opt(m, 'slowStart', (v) => duration(r, v), d.slowStart)
  const panicThreshold = opt(m, 'panicThreshold', (v) => percent(r, v), d.panicThreshold)
  const tls = readBackendTls(ctx, name, m, scheme.https)
  const protocol = upstreamProtocol(r, m, scheme.https)
  if (healthCheck?.type === 'grpc' && protocol === 'http1') {
    const at = m.get('healthCheck')!
    r.report(joinPath(at.path, 'type'), at.at, '`type: grpc` needs `protocol: h2` or `h2c` on the backend (gRPC runs over HTTP/2)')
  }
  const ppField = m.get('sendProxyProtocol')
  const sendProxyProtocol = ppField === undefined ? undefined : r.oneOf(ppField, SEND_PROXY)
  return {
    name,
    shards: shardList,
    ...(shardBy === undefined ? {} : { shardBy }),
    balance,
    passHostHeader,
    timeouts,
    connections,
    protocol,
    ...(sticky === undefined ? {} : { sticky }),
    ...(healthCheck === undefined ? {} : { healthCheck }),
    ...(outlierDetection === undefined ? {} : { outlierDetection }),
    retries,
    maxConn,
    maxQueue,
    slowStart,
    panicThreshold,
    ...(tls === undefined ? {} : { tls }),
    ...(sendProxyProtocol === undefined ? {} : { sendProxyProtocol })
  }
}

/** `protocol`, which must suit the servers' scheme: h2 is negotiated by TLS ALPN, h2c is cleartext. */
function upstreamProtocol (r: Reader, m: MapView, https: boolean | undefined): UpstreamProtocol {
  const f = m.get('protocol')
  if (f === undefined) return DEFAULTS.backend.protocol
  const p = r.oneOf(f, ['http1', 'h2', 'h2c'] as const)
  if (p === undefined) return DEFAULTS.backend.protocol
  if (p === 'h2' && https === false) r.report(f.path, f.at, '`h2` is HTTP/2 over TLS (negotiated by ALPN) and these servers are http://: use `h2c`, or https:// servers')
  if (p === 'h2c' && https === true) r.report(f.path, f.at, '`h2c` is cleartext HTTP/2 and these servers are https://: use `h2`, or http:// servers')
  return p
}

// ── shards and servers ──────────────────────────────────────────────────────

function shards (r: Reader, f: Field, serverNames: Unique, scheme: OneScheme): ShardConfig[] {
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
    const name = nameField === undefined ? '' : entryName(r, nameField) ?? ''
    const fresh = nameField === undefined || name === '' || names.add(name, nameField, item.path)
    // A repeated shard name would repeat its default server names too: report it once.
    const serverScope = fresh ? serverNames : new Unique(r, 'server name')
    const serversField = m.require('servers')
    const list = serversField === undefined ? [] : servers(r, serversField, (i) => `${name}-${i}`, serverScope, scheme)
    out.push({ name, servers: list })
  }
  return out
}

function servers (r: Reader, f: Field, defaultName: (i: number) => string, names: Unique, scheme: OneScheme): ServerConfig[] {
  const items = r.seq(f)
  if (items === undefined) return []
  if (items.length === 0) r.report(f.path, f.at, 'at least one server is required')
  const out: ServerConfig[] = []
  items.forEach((item, i) => {
    const m = r.map(item, KEYS.server)
    if (m === undefined) return
    const nameField = m.get('name')
    const name = nameField === undefined ? defaultName(i) : entryName(r, nameField)
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
    const weight = opt(m, 'weight', (v) => serverWeight(r, v), DEFAULTS.backend.server.weight)
    // Absent = the backend's maxConn; 0 (unlimited) is only a backend-wide setting.
    const maxConnField = m.get('maxConn')
    const maxConn = maxConnField === undefined ? undefined : r.integer(maxConnField, 1)
    const roleField = m.get('role')
    const role = roleField === undefined ? DEFAULTS.backend.server.role : r.oneOf(roleField, ROLES) ?? DEFAULTS.backend.server.role
    // One shard, one writer: a second primary is a mistake at its own line.
    if (role === 'primary') {
      const first = out.find((s) => s.role === 'primary')
      if (first !== undefined) r.report(roleField!.path, roleField!.at, `a shard has at most one primary; \`${first.name}\` is already its primary`)
    }
    const ppField = m.get('sendProxyProtocol')
    const sendProxyProtocol = ppField === undefined ? undefined : r.oneOf(ppField, SEND_PROXY)
    out.push({
      name: name ?? '', url, weight, role,
      ...(maxConn === undefined ? {} : { maxConn }),
      ...(sendProxyProtocol === undefined ? {} : { sendProxyProtocol })
    })
  })
  return out
}

const ROLES = ['primary', 'replica'] as const
/** HAProxy's send-proxy / send-proxy-v2. */
const SEND_PROXY = ['v1', 'v2'] as const

function serverWeight (r: Reader, f: Field): number | undefined {
  const w = r.number(f)
  if (w === undefined) return undefined
  if (w <= 0 || w > 256) return r.expected(f, 'a weight greater than 0 and at most 256')
  return w
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

// ── shardBy, balance, timeouts ──────────────────────────────────────────────

function shardKey (r: Reader, f: Field): ShardByConfig | undefined {
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
      const name = headerName(r, v)
      return name === undefined ? undefined : { header: name, missing }
    }
    case 'cookie': {
      const name = cookieName(r, v)
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

function balancing (r: Reader, f: Field): BalanceConfig | undefined {
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

function upstreamTimeouts (r: Reader, f: Field): UpstreamTimeoutsConfig | undefined {
  const m = r.map(f, KEYS.upstreamTimeouts)
  if (m === undefined) return undefined
  const d = DEFAULTS.backend.timeouts
  const dur = (v: Field): number | undefined => duration(r, v)
  return {
    connect: opt(m, 'connect', dur, d.connect),
    headers: opt(m, 'headers', dur, d.headers),
    body: opt(m, 'body', dur, d.body),
    keepAlive: opt(m, 'keepAlive', dur, d.keepAlive),
    queue: opt(m, 'queue', dur, d.queue)
  }
}

// ── sticky, retries ─────────────────────────────────────────────────────────

function stickiness (r: Reader, f: Field): StickyConfig | undefined {
  const m = r.map(f, KEYS.sticky)
  if (m === undefined) return undefined
  // A misspelt `cookie` is already reported as an unknown key: no "missing" on top.
  if (!m.has('cookie') && m.entries().length > 0) return undefined
  const c = m.require('cookie')
  if (c === undefined) return undefined
  const d = DEFAULTS.backend.sticky.cookie
  // Shorthand: `cookie: NAME` names the cookie and keeps every other default.
  if (typeof r.scalar(c) === 'string') {
    const name = cookieName(r, c)
    return name === undefined ? undefined : { cookie: { ...d, name } }
  }
  if (!isMap(c.node)) return r.expected(c, 'a cookie name or a mapping of cookie options')
  const cm = r.map(c, KEYS.stickyCookie)
  if (cm === undefined) return undefined
  const maxAgeField = cm.get('maxAge')
  const maxAge = maxAgeField === undefined ? undefined : cookieMaxAge(r, maxAgeField)
  const cookie: StickyCookieConfig = {
    name: opt(cm, 'name', (v) => cookieName(r, v), d.name),
    ...(maxAge === undefined ? {} : { maxAge }),
    path: opt(cm, 'path', (v) => cookiePath(r, v), d.path),
    sameSite: opt(cm, 'sameSite', (v) => r.oneOf(v, SAME_SITE), d.sameSite),
    httpOnly: opt(cm, 'httpOnly', (v) => r.boolean(v), d.httpOnly)
  }
  return { cookie }
}

/** Cookie Max-Age counts whole seconds. */
function cookieMaxAge (r: Reader, f: Field): number | undefined {
  const ms = duration(r, f, 1000)
  if (ms !== undefined && ms % 1000 !== 0) return r.expected(f, 'a whole number of seconds (cookie Max-Age counts seconds)')
  return ms
}

function cookiePath (r: Reader, f: Field): string | undefined {
  const s = r.text(f)
  if (s === undefined) return undefined
  return isCookiePath(s) ? s : r.expected(f, 'a cookie path starting with `/` (no spaces or `;`)')
}

function retryPolicy (r: Reader, f: Field): RetriesConfig | undefined {
  const m = r.map(f, KEYS.retries)
  if (m === undefined) return undefined
  const d = DEFAULTS.backend.retries
  return {
    attempts: opt(m, 'attempts', (v) => r.integer(v, 0, 10), d.attempts),
    nonIdempotent: opt(m, 'nonIdempotent', (v) => r.boolean(v), d.nonIdempotent),
    // Named a percent, stored as a fraction: `20%` and `0.2` are the same budget.
    budgetPercent: opt(m, 'budgetPercent', (v) => fraction(r, v), d.budgetPercent),
    minRetryConcurrency: opt(m, 'minRetryConcurrency', (v) => r.integer(v, 0), d.minRetryConcurrency),
    bufferBodyBytes: opt(m, 'bufferBodyBytes', (v) => size(r, v, 0), d.bufferBodyBytes)
  }
}
