// `switchyard explain`: the decision chain the proxy would take for one
// request (route → rewrite → shard → replica → cache), computed with the
// proxy's own functions: the router, shard key + rendezvous selection, the
// balancers (on throwaway Server records whose dispatcher cannot send), the
// upstream header policy and the cache key/policy. Nothing is sent upstream;
// only `explainWithAdmin` talks to the running proxy's admin API, and only
// when asked. `explain` itself is synchronous and pure apart from the
// balancers' own randomness (power of two choices on large shards).
import { isIP, isIPv6 } from 'node:net'
import { Dispatcher } from 'undici'
import { eligible, createBalancer, NONE_TRIED, type Balancer, type PickContext } from './balancer/balancer.js'
import { hashString, rendezvous, rendezvousScore } from './balancer/hash.js'
import { LeastLatency } from './balancer/least-latency.js'
import { withSticky } from './balancer/sticky.js'
import { cacheKey, keyedTarget, variantKey } from './cache/key.js'
import { originOf, parseAuthority } from './proxy/authority.js'
import { parseRequestTarget } from './proxy/request-target.js'
import { lookupAllowed, requestFacts } from './cache/policy.js'
import { loadConfig } from './config/load.js'
import type { BackendConfig, Config, HeaderOpsConfig, RouteConfig, ShardByConfig } from './config/schema.js'
import { ConfigError, Errors, formatIssue, type ErrorKind } from './errors.js'
import { compileHeaderOps, normalizeAddress, upstreamRequestHead, withHost, type ForwardContext } from './proxy/headers.js'
import { buildTrustList, trustedClientAddress } from './proxy/trust.js'
import { createRouter, rewritePath } from './router/router.js'
import { stickyCookies } from './upstream/backend.js'
import { Server } from './upstream/server.js'
import { Shard, ShardSelector, cookieValue, shardKey } from './upstream/shard.js'

// ---------------------------------------------------------------- input

/** Bad command-line input (request line, header, address, admin URL). */
export class ExplainInputError extends Error {
  override readonly name = 'ExplainInputError'
}

export interface ExplainRequest {
  readonly method: string
  readonly scheme: 'http' | 'https'
  /** Host[:port] as a client would send it. */
  readonly authority: string
  /** Origin-form target: path and query. */
  readonly target: string
  /** Flat [name, value…], Host first, as an HTTP/1.1 client sends them. */
  readonly rawHeaders: readonly string[]
  /** The connecting peer. */
  readonly client: string
}

/**
 * `GET https://host/path?q` (or just the URL: GET), curl-style `name: value`
 * headers and the peer address → an ExplainRequest.
 * @throws ExplainInputError
 */
export function parseExplainRequest (line: string, headers: readonly string[] = [], client = '127.0.0.1'): ExplainRequest {
  const parts = line.trim().split(/\s+/).filter((p) => p !== '')
  if (parts.length === 0 || parts.length > 2) throw new ExplainInputError(`expected 'METHOD URL', got "${line}"`)
  const method = parts.length === 2 ? parts[0]!.toUpperCase() : 'GET'
  const url = parts[parts.length - 1]!
  if (!/^[A-Z][A-Z0-9!#$%&'*+.^_`|~-]*$/.test(method)) throw new ExplainInputError(`not an HTTP method: "${parts[0]!}"`)
  const m = /^(https?):\/\/([^/?#]*)([^#]*)/i.exec(url)
  if (m === null) throw new ExplainInputError(`expected an http:// or https:// URL, got "${url}"`)
  const parsed = parseAuthority(m[2]!)
  if (parsed === undefined) throw new ExplainInputError(`no usable host in "${url}" (expected host[:port]; the proxy answers 400)`)
  const authority = parsed.value
  let target = m[3]!
  if (target === '') target = '/'
  else if (target.startsWith('?')) target = `/${target}`
  const raw: string[] = []
  let hasHost = false
  for (const h of headers) {
    const colon = h.indexOf(':')
    const name = colon === -1 ? '' : h.slice(0, colon).trim()
    if (name === '' || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) throw new ExplainInputError(`expected -H 'name: value', got "${h}"`)
    const value = h.slice(colon + 1).trim()
    if (/[\r\n\0]/.test(value)) throw new ExplainInputError(`header ${name}: CR, LF and NUL are refused with 400`)
    if (name.toLowerCase() === 'host') hasHost = true
    raw.push(name, value)
  }
  // The URL's authority is what routing uses (absolute-form wins over Host, RFC 9112 §3.2.2).
  if (!hasHost) raw.unshift('host', authority)
  const peer = normalizeAddress(client.trim())
  if (isIP(peer) === 0) throw new ExplainInputError(`--client: not an IP address: "${client}"`)
  return { method, scheme: m[1]!.toLowerCase() as 'http' | 'https', authority, target, rawHeaders: raw, client: peer }
}

// ---------------------------------------------------------------- live state (admin API)

/** One server as the running proxy reports it. */
export interface LiveServer {
  readonly healthy: boolean
  readonly checkUp?: boolean
  readonly ejected?: boolean
  readonly active: number
  /** Peak-EWMA latency cost (ms), when the status reports one. */
  readonly latencyCost?: number
}

/** Key: `backend/shard/server`. */
export type LiveState = ReadonlyMap<string, LiveServer>

/**
 * The admin API's `GET /status` body → LiveState. Accepts a list of backend
 * snapshots (`Backend.snapshot()`), or `{ backends: [...] }`, or
 * `{ backends: { name: snapshot } }`.
 * @throws Error when no server could be read from it
 */
export function liveFromStatus (body: unknown): LiveState {
  const out = new Map<string, LiveServer>()
  const root = isObject(body) && 'backends' in body ? body.backends : body
  const entries: [string | undefined, unknown][] = Array.isArray(root)
    ? root.map((b) => [undefined, b])
    : isObject(root) ? Object.entries(root) : []
  for (const [key, b] of entries) {
    if (!isObject(b)) continue
    const backend = typeof b.name === 'string' ? b.name : key
    if (backend === undefined || !Array.isArray(b.shards)) continue
    for (const sh of b.shards) {
      if (!isObject(sh) || typeof sh.name !== 'string' || !Array.isArray(sh.servers)) continue
      for (const s of sh.servers) {
        if (!isObject(s) || typeof s.name !== 'string' || typeof s.healthy !== 'boolean') continue
        const latency = typeof s.latencyCost === 'number' ? s.latencyCost : typeof s.latencyMs === 'number' ? s.latencyMs : undefined
        out.set(`${backend}/${sh.name}/${s.name}`, {
          healthy: s.healthy,
          active: typeof s.active === 'number' ? s.active : 0,
          ...(typeof s.checkUp === 'boolean' ? { checkUp: s.checkUp } : {}),
          ...(typeof s.ejected === 'boolean' ? { ejected: s.ejected } : {}),
          ...(latency === undefined ? {} : { latencyCost: latency })
        })
      }
    }
  }
  if (out.size === 0) throw new Error('no backend → shard → server state in the /status answer')
  return out
}

function isObject (v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

// ---------------------------------------------------------------- the explanation

export interface ExplainOptions {
  /** Live server state (from the admin API); absent = every server healthy and idle. */
  readonly live?: LiveState
  /** Where `live` came from, for the output. */
  readonly liveSource?: string
  /** performance.now() for balancers (slow start, latency decay). */
  readonly now?: number
}

export interface Explanation {
  readonly request: RequestPart
  /** Every route in precedence order. */
  readonly routes: readonly RouteLine[]
  /** The matched route's name. */
  readonly route: string | null
  readonly rewrite: RewritePart | null
  readonly shard: ShardPart | null
  readonly replicas: ReplicaPart | null
  readonly cache: CachePart | null
  readonly result: ResultPart
  readonly warnings: readonly string[]
}

export interface RequestPart {
  readonly method: string
  readonly scheme: 'http' | 'https'
  readonly authority: string
  /** Lower-cased, without port: what routing compares. */
  readonly host: string
  readonly target: string
  readonly path: string
  readonly query: string | null
  readonly client: string
  readonly trustedProxy: boolean
  /** The address ipHash (and the balancers' clientAddress) would use. */
  readonly balancerClient: string
  readonly balancerClientFrom: 'peer' | 'x-forwarded-for'
  readonly headerFields: number
  readonly headerBytes: number
  readonly limits: { readonly maxHeaderCount: number; readonly maxHeaderBytes: number }
}

export interface RouteLine {
  readonly name: string
  readonly hostClass: 'exact' | 'wildcard' | 'any'
  readonly host: string | null
  readonly pathPrefix: string
  readonly methods: readonly string[]
  readonly headers: Readonly<Record<string, string>>
  readonly backend: string
  /** match: this one; miss: tried and failed (reasons); unreached: a route before it matched. */
  readonly verdict: 'match' | 'miss' | 'unreached'
  readonly reasons: readonly string[]
}

export interface HeaderChange {
  /** + added, - removed, ~ value changed. */
  readonly op: '+' | '-' | '~'
  readonly name: string
  readonly before: string | null
  readonly after: string | null
  /** `route set`, `route remove`, `proxy`. */
  readonly by: string
}

export interface RewritePart {
  readonly pathBefore: string
  readonly pathAfter: string
  readonly stripPrefix: string | null
  readonly addPrefix: string | null
  /** null when the request breaks the header limits (431). */
  readonly requestHeaders: readonly HeaderChange[] | null
  readonly unchangedHeaders: number
  readonly responseHeaders: {
    readonly set: readonly (readonly [string, string])[]
    readonly remove: readonly string[]
    /** Appended to the upstream's Via (forwarding.via). */
    readonly via: string | null
  }
}

export interface ShardScore {
  readonly shard: string
  /** hashString(shard name), hex. */
  readonly seed: string
  /** Rendezvous score, hex; the highest wins. */
  readonly score: string
  readonly chosen: boolean
}

export interface ShardPart {
  readonly backend: string
  /** `header x-user-id`, `cookie sid`, `query id`, `pathSegment 2`; null without shardBy. */
  readonly shardBy: string | null
  readonly missing: 'any' | 'reject' | null
  readonly key: string | null
  /** hashString(key), hex. */
  readonly keyHash: string | null
  /** single: one shard; rendezvous: by key; round-robin: no key, missing any; rejected: no key, missing reject. */
  readonly how: 'single' | 'rendezvous' | 'round-robin' | 'rejected'
  readonly scores: readonly ShardScore[]
  readonly chosen: string | null
}

export interface ReplicaLine {
  readonly name: string
  readonly id: string
  readonly url: string
  readonly weight: number
  /** 0 = unlimited. */
  readonly maxConn: number
  readonly health: 'healthy' | 'down' | 'ejected'
  readonly active: number
  /** May take this request (healthy or panic, below maxConn). */
  readonly eligible: boolean
  /** The algorithm's view, human-readable. */
  readonly score: string
  readonly scoreValue: number | null
  readonly picked: boolean
}

export interface StickyPart {
  readonly cookie: string
  /** The server id the request's cookie carries. */
  readonly value: string | null
  readonly decision: 'pinned' | 'rebalanced' | 'balanced'
  readonly reason: string
  /** What the response would carry (none when the cookie already names the picked server). */
  readonly setCookie: string | null
}

export interface ReplicaPart {
  readonly backend: string
  readonly shard: string
  readonly algorithm: string
  /** config: assumed healthy and idle; live: from the admin API. */
  readonly health: 'config' | 'live'
  readonly healthSource: string | null
  readonly panic: boolean
  readonly servers: readonly ReplicaLine[]
  readonly pick: string | null
  readonly pickNote: string
  /** roundRobin: a fresh proxy's first picks. */
  readonly cycle: readonly string[] | null
  readonly sticky: StickyPart | null
  /** What would be sent: absent when no server can be picked. */
  readonly upstream: { readonly url: string; readonly method: string; readonly host: string } | null
}

export interface CachePart {
  readonly enabled: boolean
  readonly why: string
  readonly key: string | null
  readonly keyConfig: string | null
  readonly lookup: boolean
  readonly lookupWhy: string
  readonly notes: readonly string[]
  /** From the admin API's /cache/lookup: yes/no; unknown (no admin, or the endpoint does not exist). */
  readonly stored: 'yes' | 'no' | 'unknown'
  readonly storedDetail: string | null
}

export interface ResultPart {
  /** The status the proxy answers with itself; null when the request goes upstream (or waits in the queue). */
  readonly status: number | null
  readonly code: string | null
  readonly summary: string
}

interface RouteItem { readonly config: RouteConfig }

/** A dispatcher that cannot send: undici's abstract base, whose dispatch() throws. */
const NO_DISPATCHER = new Dispatcher()

/**
 * The decision chain for `req` under `config`, in the proxy's phase order:
 * route (404), shard key (400), header limits (431), cache, pick (503 / queue).
 */
export function explain (config: Config, req: ExplainRequest, opts: ExplainOptions = {}): Explanation {
  const warnings: string[] = []
  const raw = req.rawHeaders
  const header = headerReader(raw)
  const parsedTarget = parseRequestTarget(req.method, req.target, raw, undefined, config.pathNormalization)
  if ('error' in parsedTarget) throw new ExplainInputError(`the proxy answers ${parsedTarget.error.status}: ${parsedTarget.detail}`)
  const authority = parsedTarget.authority
  const host = authority.host
  const q = req.target.indexOf('?')
  const path = parsedTarget.path

  // request: trust
  const trust = buildTrustList(config.trustedProxies)
  const trusted = trust.check(req.client, isIPv6(req.client) ? 'ipv6' : 'ipv4')
  const balancerClient = trusted ? trustedClientAddress(header('x-forwarded-for'), req.client, trust) : req.client
  let fields = 0
  let bytes = 0
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.charCodeAt(0) === 58) continue
    fields++
    bytes += raw[i]!.length + raw[i + 1]!.length
  }
  const request: RequestPart = {
    method: req.method, scheme: req.scheme, authority: req.authority, host, target: req.target, path,
    query: q === -1 ? null : req.target.slice(q + 1),
    client: req.client, trustedProxy: trusted, balancerClient,
    balancerClientFrom: balancerClient === req.client ? 'peer' : 'x-forwarded-for',
    headerFields: fields, headerBytes: bytes, limits: { ...config.limits }
  }
  if (!config.listeners.some((l) => (l.tls !== undefined) === (req.scheme === 'https'))) {
    warnings.push(`no ${req.scheme === 'https' ? 'TLS' : 'plaintext'} listener is configured for ${req.scheme}://`)
  }

  // route
  const router = createRouter<RouteItem>(config.routes.map((r) => ({ config: r })))
  const matched = router.match({ host, path, method: req.method, header })
  const routes = routeLines(router.table, host, path, req.method, header)
  const mine = routes.find((r) => r.verdict === 'match')
  if (mine?.name !== matched?.config.name) warnings.push(`explain's route reasons disagree with the router (${matched?.config.name ?? 'none'})`)
  const empty = { request, routes, rewrite: null, shard: null, replicas: null, cache: null, warnings }
  if (matched === undefined) return { ...empty, route: null, result: answer(Errors.NO_ROUTE) }
  const route = matched.config
  const backend = config.backends[route.backend]
  if (backend === undefined) throw new Error(`route ${route.name}: unknown backend ${route.backend}`) // the loader checks this

  // shard (the pipeline's order: before the header policy)
  const now = opts.now ?? performance.now()
  const shards = buildShards(backend, opts.live, warnings)
  const selector = new ShardSelector(shards, backend.shardBy)
  const by = backend.shardBy
  const key = by === undefined ? undefined : shardKey(by, { header, target: req.target })
  const rejected = by !== undefined && key === undefined && by.missing === 'reject'
  const shard = rejected ? undefined : selector.select(key)
  const shardPart = shardExplanation(backend, shards, key, shard)

  // upstream request head and rewrite
  const reqOps = compileHeaderOps(route.requestHeaders)
  const fwd: ForwardContext = { clientAddress: req.client, trusted, proto: req.scheme, viaEntry: `1.1 ${config.proxyName}` }
  const head = upstreamRequestHead(raw, authority, backend.passHostHeader ? authority.value : '', fwd,
    { forwarding: config.forwarding, limits: config.limits, ops: reqOps })
  const tooLarge = 'code' in head
  const { stripPrefix, addPrefix } = route.rewrite
  const upstreamPath = stripPrefix === undefined && addPrefix === undefined ? req.target : rewritePath(req.target, stripPrefix, addPrefix)

  // cache
  // Phases after an answer are not reached: 400 (no shard key) and 431 come before the cache.
  const cache = rejected || tooLarge ? undefined : cacheExplanation(config, route, req, header)

  // replicas
  let replicas: ReplicaPart | null = null
  let picked: Server | undefined
  let busy = false
  if (shard !== undefined && !tooLarge && cache?.purge === undefined) {
    const r = replicaExplanation(backend, shard, shards, {
      clientAddress: balancerClient, now, tried: NONE_TRIED, panic: shard.panic(),
      stickyId: backend.sticky === undefined ? undefined : cookieValue(header('cookie'), backend.sticky.cookie.name)
    }, req, upstreamPath, opts)
    replicas = r.part
    picked = r.picked
    busy = r.busy
  }

  let changes: HeaderChange[] | null = null
  let unchanged = 0
  if (!tooLarge) {
    const out = backend.passHostHeader ? head.headers : withHost(head.headers, picked?.hostHeader ?? '(the picked server)')
    const d = headerDiff(raw, out, route.requestHeaders)
    changes = d.changes
    unchanged = d.unchanged
  }
  const rewrite: RewritePart = {
    pathBefore: req.target, pathAfter: upstreamPath,
    stripPrefix: stripPrefix ?? null, addPrefix: addPrefix ?? null,
    requestHeaders: changes, unchangedHeaders: unchanged,
    responseHeaders: {
      set: Object.entries(route.responseHeaders.set),
      remove: route.responseHeaders.remove,
      via: config.forwarding.via ? `1.1 ${config.proxyName}` : null
    }
  }

  // result, in the pipeline's order
  let result: ResultPart
  if (rejected) result = answer(Errors.SHARD_KEY_MISSING)
  else if (tooLarge) result = answer(head)
  else if (cache?.purge !== undefined) result = cache.purge
  else if (picked !== undefined) {
    const viaCache = cache?.part.lookup === true ? ', unless the cache answers' : ''
    result = { status: null, code: null, summary: `forwarded to ${picked.name} (${picked.url})${viaCache}` }
  } else if (busy) {
    result = { status: null, code: null, summary: `waits in shard ${shard!.name}'s queue (every usable server is at maxConn); ` +
      `503 ${Errors.QUEUE_FULL.code} past maxQueue ${backend.maxQueue}, 503 ${Errors.QUEUE_TIMEOUT.code} after ${backend.timeouts.queue} ms` }
  } else result = answer(Errors.NO_HEALTHY_SERVER)

  return { ...empty, route: route.name, rewrite, shard: shardPart, replicas, cache: cache?.part ?? null, result }
}

function answer (kind: ErrorKind): ResultPart {
  return { status: kind.status, code: kind.code, summary: kind.message }
}

/** First value of a request header by lower-case name; several Cookie fields joined (as the session reads them). */
function headerReader (raw: readonly string[]): (name: string) => string | undefined {
  return (name) => {
    let found: string | undefined
    for (let i = 0; i < raw.length; i += 2) {
      if (raw[i]!.toLowerCase() !== name) continue
      if (found === undefined) found = raw[i + 1]!
      else if (name === 'cookie') found = `${found}; ${raw[i + 1]!}`
      else return found
    }
    return found
  }
}

// ---------------------------------------------------------------- routes

function hostClass (host: string | undefined): RouteLine['hostClass'] {
  return host === undefined ? 'any' : host.startsWith('*.') ? 'wildcard' : 'exact'
}

/**
 * Every route in the router's precedence order with why it did or did not
 * match. The router tries this host's exact class, then its wildcard class,
 * then the any-host class; its table lists exact, wildcard, any, so the first
 * route here that passes every check is the router's match.
 */
function routeLines (table: readonly RouteItem[], host: string, path: string, method: string,
  header: (n: string) => string | undefined): RouteLine[] {
  const dot = host.indexOf('.')
  const suffix = dot > 0 ? host.slice(dot + 1) : undefined
  let found = false
  return table.map(({ config: r }): RouteLine => {
    const m = r.match
    const cls = hostClass(m.host)
    const base = { name: r.name, hostClass: cls, host: m.host ?? null, pathPrefix: m.pathPrefix, methods: m.methods, headers: m.headers, backend: r.backend }
    const reasons: string[] = []
    if (cls === 'exact' && m.host !== host) reasons.push(`host ${host} is not ${m.host!}`)
    else if (cls === 'wildcard' && m.host!.slice(2) !== suffix) reasons.push(`host ${host} is not one label + .${m.host!.slice(2)}`)
    if (reasons.length > 0) return { ...base, verdict: 'miss', reasons }
    if (found) return { ...base, verdict: 'unreached', reasons: ['not reached: an earlier route matched'] }
    if (!path.startsWith(m.pathPrefix)) reasons.push(`path ${path} does not start with ${m.pathPrefix}`)
    if (m.methods.length > 0 && !m.methods.includes(method)) reasons.push(`method ${method} is not in ${m.methods.join(', ')}`)
    for (const [name, want] of Object.entries(m.headers)) {
      const v = header(name)
      if (v === undefined) reasons.push(`header ${name} is missing, wants "${want}"`)
      else if (v !== want) reasons.push(`header ${name} is "${v}", not "${want}"`)
    }
    if (reasons.length > 0) return { ...base, verdict: 'miss', reasons }
    found = true
    return { ...base, verdict: 'match', reasons: [] }
  })
}

// ---------------------------------------------------------------- shards

/** The backend's shards as the proxy builds them (see upstream/backend.ts), on servers that cannot send. */
function buildShards (cfg: BackendConfig, live: LiveState | undefined, warnings: string[]): Shard[] {
  const decay = cfg.balance.algorithm === 'leastLatency' ? cfg.balance.decay : undefined
  return cfg.shards.map((sh) => {
    const servers = sh.servers.map((s) => {
      const server = new Server({
        name: s.name,
        url: s.url,
        weight: s.weight,
        backend: cfg.name,
        shard: sh.name,
        dispatcher: NO_DISPATCHER,
        maxConn: s.maxConn ?? cfg.maxConn,
        slowStart: cfg.slowStart,
        ...(decay === undefined ? {} : { latencyDecay: decay })
      })
      if (live !== undefined) {
        const l = live.get(`${cfg.name}/${sh.name}/${s.name}`)
        if (l === undefined) warnings.push(`${cfg.name}/${sh.name}/${s.name} is not in the live status: assumed healthy and idle`)
        else {
          server.healthy = l.healthy
          server.checkUp = l.checkUp ?? l.healthy
          server.ejected = l.ejected ?? false
          server.active = l.active
          if (l.latencyCost !== undefined && l.latencyCost > 0) server.latencyCost = l.latencyCost
        }
      }
      return server
    })
    let balancer: Balancer = createBalancer(cfg.balance, servers)
    if (cfg.sticky !== undefined) balancer = withSticky(balancer, servers)
    return new Shard(sh.name, servers, balancer, { maxQueue: cfg.maxQueue, queueTimeout: cfg.timeouts.queue, panicThreshold: cfg.panicThreshold })
  })
}

function hex (n: number): string {
  return '0x' + (n >>> 0).toString(16).padStart(8, '0')
}

function describeShardBy (by: ShardByConfig): string {
  if ('header' in by) return `header ${by.header}`
  if ('cookie' in by) return `cookie ${by.cookie}`
  if ('query' in by) return `query ${by.query}`
  return `pathSegment ${by.pathSegment}`
}

function shardExplanation (cfg: BackendConfig, shards: readonly Shard[], key: string | undefined,
  chosen: Shard | undefined): ShardPart {
  const by = cfg.shardBy
  const keyHash = key === undefined ? undefined : hashString(key)
  const seeds = Uint32Array.from(shards, (s) => hashString(s.name))
  const scores: ShardScore[] = keyHash === undefined || shards.length < 2
    ? []
    : shards.map((s, i) => ({
      shard: s.name,
      seed: hex(seeds[i]!),
      score: hex(rendezvousScore(keyHash, seeds[i]!)),
      chosen: s === chosen
    }))
  if (keyHash !== undefined && shards.length > 1 && shards[rendezvous(keyHash, seeds)] !== chosen) {
    throw new Error('shard scores disagree with the selector')
  }
  return {
    backend: cfg.name,
    shardBy: by === undefined ? null : describeShardBy(by),
    missing: by?.missing ?? null,
    key: key ?? null,
    keyHash: keyHash === undefined ? null : hex(keyHash),
    how: chosen === undefined ? 'rejected' : shards.length === 1 ? 'single' : key === undefined ? 'round-robin' : 'rendezvous',
    scores,
    chosen: chosen?.name ?? null
  }
}

// ---------------------------------------------------------------- replicas

function health (s: Server): ReplicaLine['health'] {
  return s.healthy ? 'healthy' : s.ejected ? 'ejected' : 'down'
}

/** Why `s` cannot take the request, for the sticky decision. */
function unusable (s: Server, ctx: PickContext): string {
  if (!s.healthy && !ctx.panic) return health(s)
  if (s.maxConn !== 0 && s.active >= s.maxConn) return `full (${s.active}/${s.maxConn})`
  return 'not eligible'
}

interface Scored { readonly score: string; readonly value: number | null }

function replicaExplanation (cfg: BackendConfig, shard: Shard, shards: readonly Shard[], ctx: PickContext,
  req: ExplainRequest, upstreamPath: string, opts: ExplainOptions): { part: ReplicaPart; picked: Server | undefined; busy: boolean } {
  const servers = shard.servers
  const balance = cfg.balance
  let scored: Scored[]
  let note: string
  let cycle: string[] | null = null
  switch (balance.algorithm) {
    case 'roundRobin': {
      // A fresh proxy's rotation, from a throwaway balancer over the same servers.
      const rr = createBalancer(balance, servers)
      cycle = []
      const total = servers.reduce((n, s) => n + (eligible(s, ctx) ? s.weight : 0), 0)
      for (let i = 0; i < Math.min(total, 12); i++) {
        const s = rr.pick(ctx)
        if (s === undefined) break
        cycle.push(s.name)
      }
      scored = servers.map((s) => {
        const turn = cycle!.indexOf(s.name)
        return { score: turn === -1 ? (eligible(s, ctx) ? 'later in the cycle' : 'skipped') : `turn ${turn + 1}`, value: turn === -1 ? null : turn + 1 }
      })
      note = 'rotates: a fresh proxy picks first in turn; a running one continues its cycle'
      break
    }
    case 'leastConn': {
      scored = servers.map((s) => {
        // HAProxy fwlc key, as least-conn.ts computes it.
        const load = s.active === 0 ? 0 : (s.active + 1) / s.effectiveWeight(ctx.now)
        return { score: s.active === 0 ? 'idle (load 0)' : `load (${s.active}+1)/${s.weight} = ${round(load)}`, value: load }
      })
      note = servers.length > Math.max(2, balance.choiceThreshold)
        ? 'power of two choices: the lower load of two random eligible servers'
        : 'lowest load; ties rotate from a moving start'
      break
    }
    case 'ipHash': {
      const walk = ringWalk(servers, balance.virtualNodes, ctx.clientAddress)
      scored = servers.map((s) => {
        const w = walk.get(s)!
        return { score: `ring +${(w.distance / 2 ** 32 * 100).toFixed(3)}% (walk ${w.order})`, value: w.distance }
      })
      note = `client ${ctx.clientAddress} hashes to ${hex(hashString(ctx.clientAddress))}; ` +
        'first eligible server clockwise' + (balance.boundedLoad > 0 ? `, capped at ${1 + balance.boundedLoad}x the average load` : '')
      break
    }
    case 'leastLatency': {
      const ll = new LeastLatency(servers, balance.decay)
      scored = servers.map((s) => {
        if (s.latencyCost > 0) s.latencyStamp = ctx.now // a live cost is current
        const v = ll.score(s, ctx.now)
        return { score: s.latencyCost === 0 ? (s.active === 0 ? 'unmeasured, idle (0)' : 'unmeasured, busy') : `cost ${round(v)}`, value: v }
      })
      note = servers.length > 2
        ? 'power of two choices: the lower cost of two random eligible servers'
        : 'lowest cost (latency × (active+1) / weight); ties rotate'
      break
    }
  }

  const picked = shard.balancer.pick(ctx)
  const busy = picked === undefined && shard.anyBusy(ctx.panic)
  const lines: ReplicaLine[] = servers.map((s, i) => ({
    name: s.name, id: s.id, url: s.url, weight: s.weight, maxConn: s.maxConn, health: health(s), active: s.active,
    eligible: eligible(s, ctx), score: scored[i]!.score, scoreValue: scored[i]!.value, picked: s === picked
  }))

  let sticky: StickyPart | null = null
  const stickyCfg = cfg.sticky
  if (stickyCfg !== undefined) {
    const id = ctx.stickyId
    const named = id === undefined ? undefined : servers.find((s) => s.id === id)
    let decision: StickyPart['decision'] = 'rebalanced'
    let reason: string
    if (id === undefined) {
      decision = 'balanced'
      reason = `no ${stickyCfg.cookie.name} cookie: balanced`
    } else if (named !== undefined && eligible(named, ctx)) {
      decision = 'pinned'
      reason = `pinned to ${named.name}`
    } else if (named !== undefined) {
      reason = `${named.name} is ${unusable(named, ctx)}: balanced again, cookie rewritten`
    } else {
      const other = shards.flatMap((sh) => sh.servers).find((s) => s.id === id)
      reason = other !== undefined
        ? `names ${other.name} of shard ${other.shard}, not of ${shard.name}: balanced again`
        : 'names no configured server: balanced again'
    }
    sticky = {
      cookie: stickyCfg.cookie.name,
      value: id ?? null,
      decision,
      reason,
      setCookie: picked === undefined || id === picked.id ? null : stickyCookies(stickyCfg.cookie, picked.id)[req.scheme === 'https' ? 1 : 0]
    }
  }

  let pickNote = note
  if (ctx.panic) pickNote = `panic mode (fewer than ${cfg.panicThreshold}% healthy): health ignored; ${note}`
  if (picked === undefined) pickNote = busy ? 'none free: every usable server is at maxConn' : 'none: no healthy server in this shard'

  return {
    picked,
    busy,
    part: {
      backend: cfg.name,
      shard: shard.name,
      algorithm: balance.algorithm,
      health: opts.live === undefined ? 'config' : 'live',
      healthSource: opts.live === undefined ? null : opts.liveSource ?? null,
      panic: ctx.panic,
      servers: lines,
      pick: picked?.name ?? null,
      pickNote,
      cycle,
      sticky,
      upstream: picked === undefined
        ? null
        : { method: req.method, url: picked.url + upstreamPath, host: cfg.passHostHeader ? req.authority : picked.hostHeader }
    }
  }
}

function round (n: number): string {
  return Number.isInteger(n) ? String(n) : n.toFixed(2)
}

/**
 * Each server's clockwise distance from the client's hash to its nearest
 * point on the ipHash ring (the same points ip-hash.ts places) and its place
 * in the walk; the first eligible server of the walk is the pick.
 */
function ringWalk (servers: readonly Server[], virtualNodes: number, client: string): Map<Server, { distance: number; order: number }> {
  const h = hashString(client)
  const dist = servers.map((s) => {
    let best = Infinity
    const count = Math.max(1, Math.round(virtualNodes * s.weight))
    for (let v = 0; v < count; v++) {
      const d = (hashString(`${s.id}#${v}`) - h + 2 ** 32) % 2 ** 32
      if (d < best) best = d
    }
    return { s, distance: best }
  })
  const sorted = [...dist].sort((a, b) => a.distance - b.distance || (a.s.id < b.s.id ? -1 : a.s.id > b.s.id ? 1 : 0))
  return new Map(sorted.map((d, i) => [d.s, { distance: d.distance, order: i + 1 }]))
}


// ---------------------------------------------------------------- headers


/** What the header policy did: the client's fields against the upstream request's, by name. */
function headerDiff (input: readonly string[], output: readonly string[], ops: HeaderOpsConfig): { changes: HeaderChange[]; unchanged: number } {
  const group = (flat: readonly string[]): Map<string, string[]> => {
    const m = new Map<string, string[]>()
    for (let i = 0; i < flat.length; i += 2) {
      const name = flat[i]!.toLowerCase()
      if (name.charCodeAt(0) === 58) continue
      const list = m.get(name)
      if (list === undefined) m.set(name, [flat[i + 1]!])
      else list.push(flat[i + 1]!)
    }
    return m
  }
  const before = group(input)
  const after = group(output)
  const by = (name: string): string => name in ops.set ? 'route set' : ops.remove.includes(name) ? 'route remove' : 'proxy'
  const changes: HeaderChange[] = []
  let unchanged = 0
  for (const [name, values] of before) {
    const out = after.get(name)
    if (out === undefined) {
      for (const v of values) changes.push({ op: '-', name, before: v, after: null, by: by(name) })
    } else if (out.join('\n') === values.join('\n')) unchanged++
    else changes.push({ op: '~', name, before: values.join(', '), after: out.join(', '), by: by(name) })
  }
  for (const [name, values] of after) {
    if (before.has(name)) continue
    for (const v of values) changes.push({ op: '+', name, before: null, after: v, by: by(name) })
  }
  return { changes, unchanged }
}

// ---------------------------------------------------------------- cache

function cacheExplanation (config: Config, route: RouteConfig, req: ExplainRequest,
  header: (n: string) => string | undefined): { part: CachePart; purge?: ResultPart } | undefined {
  const off = (why: string): { part: CachePart } => ({
    part: { enabled: false, why, key: null, keyConfig: null, lookup: false, lookupWhy: 'the route does not cache', notes: [], stored: 'unknown', storedDetail: null }
  })
  const cache = config.cache
  if (cache === undefined) return off('no top-level cache block')
  const rc = route.cache
  if (rc === undefined || !rc.enabled) return off(`route ${route.name} has cache off`)
  const parsed = parseAuthority(req.authority)!
  const key = cacheKey(req.scheme, originOf(req.scheme, parsed), keyedTarget(req.target, rc.key)) +
    (rc.key.headers.length > 0 ? '\n' + variantKey('', '', rc.key.headers, { header }).slice(2) : '')
  const keyConfig = `query ${rc.key.query}` +
    (rc.key.ignoreParams.length > 0 ? `, ignoring ${rc.key.ignoreParams.join(', ')}` : '') +
    (rc.key.headers.length > 0 ? `, headers ${rc.key.headers.join(', ')}` : '')
  const base = { enabled: true, why: `route ${route.name} caches`, key, keyConfig, stored: 'unknown' as const, storedDetail: null }

  if (req.method === 'PURGE' && cache.purgeFrom.length > 0) {
    // cache-phase.ts checks the socket peer, never X-Forwarded-For.
    const allowed = buildTrustList(cache.purgeFrom).check(req.client, isIPv6(req.client) ? 'ipv6' : 'ipv4')
    return {
      part: { ...base, lookup: false, lookupWhy: 'PURGE: the cache answers it', notes: [] },
      purge: allowed
        ? { status: null, code: null, summary: 'PURGE: every stored variant of the key is removed (200, or 404 when none was stored)' }
        : answer(Errors.PURGE_FORBIDDEN)
    }
  }
  const facts = requestFacts(req.method, req.rawHeaders)
  const lookup = lookupAllowed(facts)
  const notes: string[] = []
  if (req.method === 'HEAD') notes.push('HEAD is answered from the stored GET response')
  if (facts.cc.noCache || facts.pragmaNoCache) notes.push('no-cache: a stored response is revalidated before use')
  if (facts.cc.maxAge !== undefined) notes.push(`max-age=${facts.cc.maxAge / 1000}: only a response at most that old is used`)
  if (facts.cc.noStore) notes.push('no-store: the response will not be stored')
  if (facts.cc.onlyIfCached) notes.push(`only-if-cached: ${Errors.ONLY_IF_CACHED.status} when nothing usable is stored`)
  if (facts.authorization) notes.push('Authorization: the response is stored only if it says public, s-maxage or must-revalidate')
  if (lookup && req.method === 'GET') notes.push('a miss is stored when the response allows it; concurrent misses wait for one fetch')
  return {
    part: {
      ...base,
      lookup,
      lookupWhy: lookup
        ? `${req.method} is looked up; a fresh hit is answered without going upstream`
        : `${req.method} is not GET or HEAD: forwarded; a 2xx/3xx answer invalidates the key`,
      notes
    }
  }
}

// ---------------------------------------------------------------- admin API

export interface AdminOptions {
  /** Base URL of the admin listener, e.g. http://127.0.0.1:9901. */
  readonly url: string
  readonly token?: string
  /** Default: the global fetch. */
  readonly fetch?: typeof fetch
  /** Per call (ms, default 3000). */
  readonly timeout?: number
}

/**
 * `explain` with live server state from `GET <admin>/status` and, for a
 * cached route, whether the key is stored (`GET <admin>/cache/lookup?url=…`).
 * An unreachable admin API is a warning, not an error: the explanation falls
 * back to the config.
 */
export async function explainWithAdmin (config: Config, req: ExplainRequest, admin: AdminOptions,
  opts: ExplainOptions = {}): Promise<Explanation> {
  let base: URL
  try {
    base = new URL(admin.url)
    if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new Error('not http(s)')
  } catch {
    throw new ExplainInputError(`--admin: expected an http(s) URL, got "${admin.url}"`)
  }
  const root = base.href.replace(/\/+$/, '')
  const get = async (path: string): Promise<Response> => (admin.fetch ?? fetch)(root + path, {
    headers: admin.token === undefined || admin.token === '' ? {} : { authorization: `Bearer ${admin.token}` },
    signal: AbortSignal.timeout(admin.timeout ?? 3000)
  })
  const warnings: string[] = []
  let live: LiveState | undefined
  try {
    const res = await get('/status')
    if (!res.ok) throw new Error(`HTTP ${res.status}`)
    live = liveFromStatus(await res.json())
  } catch (err) {
    warnings.push(`${root}/status: ${reason(err)}; health assumed from the config`)
  }
  const e = explain(config, req, { ...opts, ...(live === undefined ? {} : { live, liveSource: `${root}/status` }) })
  let cache = e.cache
  if (cache !== null && cache.key !== null) {
    const url = `${req.scheme}://${req.authority}${req.target}`
    try {
      const res = await get(`/cache/lookup?url=${encodeURIComponent(url)}&key=${encodeURIComponent(cache.key)}`)
      if (res.status === 404) {
        cache = { ...cache, stored: 'unknown', storedDetail: 'the admin API has no /cache/lookup' }
      } else if (!res.ok) {
        throw new Error(`HTTP ${res.status}`)
      } else {
        const body: unknown = await res.json()
        cache = { ...cache, ...storedFrom(body) }
      }
    } catch (err) {
      warnings.push(`${root}/cache/lookup: ${reason(err)}`)
    }
  }
  return { ...e, cache, warnings: [...e.warnings, ...warnings] }
}

/** `{ stored: true, … }`, `{ found: … }` or `{ entries: [...] }` → yes/no plus the other scalar fields. */
function storedFrom (body: unknown): Pick<CachePart, 'stored' | 'storedDetail'> {
  if (!isObject(body)) return { stored: 'unknown', storedDetail: 'unrecognized answer' }
  const list = Array.isArray(body.entries) ? body.entries : Array.isArray(body.variants) ? body.variants : undefined
  const flag = typeof body.stored === 'boolean' ? body.stored : typeof body.found === 'boolean' ? body.found
    : list !== undefined ? list.length > 0 : undefined
  const detail = Object.entries(body)
    .filter(([k, v]) => !['stored', 'found', 'key', 'url'].includes(k) && (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean'))
    .map(([k, v]) => `${k}=${String(v)}`)
  if (list !== undefined) detail.unshift(`${list.length} variant${list.length === 1 ? '' : 's'}`)
  return { stored: flag === undefined ? 'unknown' : flag ? 'yes' : 'no', storedDetail: detail.length > 0 ? detail.join(', ') : null }
}

function reason (err: unknown): string {
  if (err instanceof Error) {
    const cause = (err as { cause?: { code?: unknown } }).cause
    return typeof cause?.code === 'string' ? cause.code : err.message
  }
  return String(err)
}

// ---------------------------------------------------------------- text

const INDENT = '  '

/** Columns padded to their widest cell (`right`: numeric columns, right-aligned); the last column is not padded. */
function table (rows: readonly (readonly string[])[], indent = INDENT, right: readonly number[] = []): string[] {
  const widths: number[] = []
  for (const r of rows) r.forEach((c, i) => { widths[i] = Math.max(widths[i] ?? 0, c.length) })
  return rows.map((r) => indent + r.map((c, i) => i === r.length - 1 ? c
    : right.includes(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)).join('  ').trimEnd())
}

function conditions (r: RouteLine): string {
  const parts: string[] = []
  if (r.methods.length > 0) parts.push(r.methods.join(','))
  for (const [n, v] of Object.entries(r.headers)) parts.push(`${n}=${v}`)
  return parts.join(' ')
}

/** The explanation as terminal text: six sections and the result. */
export function formatExplanation (e: Explanation): string {
  const out: string[] = []
  const r = e.request

  out.push(`Request  ${r.method} ${r.scheme}://${r.authority}${r.target}`)
  out.push(...table([
    ['host', r.host],
    ['path', r.path + (r.query === null ? '' : `  query ${r.query}`)],
    ['client', `${r.client}${r.trustedProxy ? ' (a trusted proxy: its X-Forwarded-* are kept)' : ' (not a trusted proxy)'}`],
    ['ipHash', `${r.balancerClient}${r.balancerClientFrom === 'peer' ? ' (the peer)' : ' (from X-Forwarded-For)'}`],
    ['headers', `${r.headerFields} fields, ${r.headerBytes} bytes (limits ${r.limits.maxHeaderCount} fields, ${r.limits.maxHeaderBytes} bytes)`]
  ]))

  out.push('', 'Routes (precedence order)')
  if (e.routes.length === 0) out.push(`${INDENT}(no routes configured)`)
  const rows = e.routes.map((l) => [
    l.verdict === 'match' ? '✓' : l.verdict === 'miss' ? '✗' : '·',
    l.name, l.host ?? '*', l.pathPrefix, conditions(l), `→ ${l.backend}`, l.verdict === 'unreached' ? '(not reached)' : ''
  ])
  const lines = table(rows)
  e.routes.forEach((l, i) => {
    out.push(lines[i]!)
    if (l.verdict === 'miss') for (const why of l.reasons) out.push(`${INDENT}   ${why}`)
  })

  if (e.rewrite !== null) {
    const w = e.rewrite
    out.push('', 'Rewrites')
    const how = [w.stripPrefix === null ? '' : `stripPrefix ${w.stripPrefix}`, w.addPrefix === null ? '' : `addPrefix ${w.addPrefix}`]
      .filter((s) => s !== '').join(', ')
    out.push(...table([['path', w.pathBefore === w.pathAfter ? `${w.pathBefore} (unchanged)` : `${w.pathBefore} → ${w.pathAfter}  (${how})`]]))
    if (w.requestHeaders === null) {
      out.push(`${INDENT}request headers: over the limits → 431`)
    } else {
      out.push(`${INDENT}request headers (${w.unchangedHeaders} forwarded as sent)`)
      out.push(...table(w.requestHeaders.map((c) => [
        c.op,
        c.op === '~' ? `${c.name}: ${c.before!} → ${c.after!}` : `${c.name}: ${c.op === '+' ? c.after! : c.before!}`,
        c.by === 'proxy' ? '' : c.by
      ]), INDENT + '  '))
    }
    const resp = [
      ...w.responseHeaders.remove.map((n) => ['-', n, 'route remove']),
      ...w.responseHeaders.set.map(([n, v]) => ['=', `${n}: ${v}`, 'route set']),
      ...(w.responseHeaders.via === null ? [] : [['+', `via: …, ${w.responseHeaders.via}`, '']])
    ]
    out.push(`${INDENT}response headers${resp.length === 0 ? ': as the server sends them (minus hop-by-hop)' : ''}`)
    out.push(...table(resp, INDENT + '  '))
  }

  if (e.shard !== null) {
    const s = e.shard
    out.push('', `Backend ${s.backend}: shard`)
    const rows: string[][] = []
    rows.push(['shardBy', s.shardBy === null ? 'none (one shard)' : `${s.shardBy} (missing: ${s.missing!})`])
    if (s.shardBy !== null) rows.push(['key', s.key === null ? 'missing' : `"${s.key}" → hash ${s.keyHash!}`])
    out.push(...table(rows))
    if (s.scores.length > 0) {
      out.push(...table([['shard', 'seed', 'score'], ...s.scores.map((x) => [x.shard, x.seed, x.score + (x.chosen ? '  ✓ highest' : '')])], INDENT + '  '))
    }
    const verdict = s.how === 'single' ? `${s.chosen!} (the only shard)`
      : s.how === 'rendezvous' ? `${s.chosen!} (highest rendezvous score)`
        : s.how === 'round-robin' ? `${s.chosen!} (no key, missing: any → shards in turn; a fresh proxy starts with the first)`
          : `none: no key and missing: reject → 400 ${Errors.SHARD_KEY_MISSING.code}`
    out.push(...table([['→ shard', verdict]]))
  }

  const stop = e.result.status === null ? '' : `not reached: the proxy answers ${e.result.status} first`
  if (e.replicas === null && e.route !== null) out.push('', 'Replicas', `${INDENT}${stop}`)
  if (e.replicas !== null) {
    const p = e.replicas
    const src = p.health === 'live' ? `health live from ${p.healthSource ?? 'the admin API'}` : 'from config: all healthy, idle'
    out.push('', `Replicas of shard ${p.shard} (${p.algorithm}; ${src})`)
    const withId = p.sticky !== null
    const head = ['', 'server', ...(withId ? ['id'] : []), 'url', 'weight', 'maxConn', 'health', 'active', 'score']
    const rows = p.servers.map((s) => [
      s.picked ? '✓' : s.eligible ? '' : '✗',
      s.name, ...(withId ? [s.id] : []), s.url, String(s.weight), s.maxConn === 0 ? '-' : String(s.maxConn),
      s.health + (p.panic && s.health !== 'healthy' ? ' (panic)' : ''), String(s.active), s.score
    ])
    const n = withId ? 1 : 0
    out.push(...table([head, ...rows], INDENT, [3 + n, 4 + n, 6 + n]))
    const info: string[][] = [['pick', p.pick === null ? p.pickNote : `${p.pick}: ${p.pickNote}`]]
    if (p.cycle !== null && p.cycle.length > 1) info.push(['cycle', p.cycle.join(' ')])
    if (p.sticky !== null) {
      info.push(['sticky', p.sticky.value === null ? p.sticky.reason : `${p.sticky.cookie}=${p.sticky.value}: ${p.sticky.reason}`])
      if (p.sticky.setCookie !== null) info.push(['', `Set-Cookie: ${p.sticky.setCookie}`])
    }
    if (p.upstream !== null) info.push(['upstream', `${p.upstream.method} ${p.upstream.url}  (Host: ${p.upstream.host})`])
    out.push(...table(info))
  }

  if (e.cache === null && e.route !== null) out.push('', 'Cache', `${INDENT}${stop}`)
  if (e.cache !== null) {
    const c = e.cache
    out.push('', 'Cache')
    if (!c.enabled) out.push(...table([['off', c.why]]))
    else {
      const rows: string[][] = [
        ['key', c.key!.replace(/\n/g, ' + ')],
        ['', c.keyConfig!],
        ['lookup', `${c.lookup ? 'yes' : 'no'}: ${c.lookupWhy}`],
        ...c.notes.map((n) => ['', n]),
        ['stored', c.stored === 'unknown' && c.storedDetail === null
          ? 'unknown (pass --admin URL to ask the running proxy)'
          : c.stored + (c.storedDetail === null ? '' : ` (${c.storedDetail})`)]
      ]
      out.push(...table(rows))
    }
  }

  out.push('', 'Result')
  const res = e.result
  out.push(`${INDENT}${res.status === null ? '→' : '✗'} ${res.status === null ? '' : `${res.status} ${res.code!}: `}${res.summary}`)
  for (const w of e.warnings) out.push(`${INDENT}! ${w}`)
  return out.join('\n') + '\n'
}

// ---------------------------------------------------------------- the command

export interface ExplainCommandArgs {
  readonly config: string | undefined
  /** Positionals after `explain`: `GET URL` as one or two words. */
  readonly request: readonly string[]
  readonly headers: readonly string[] | undefined
  readonly client: string | undefined
  readonly admin: string | undefined
  readonly json: boolean
  /** SWITCHYARD_ADMIN_TOKEN. */
  readonly token: string | undefined
}

export interface CommandOutput {
  /** 0: a route matched; 2: none (404); 1: bad input or config. */
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

/** `switchyard explain`, without touching `process` (main.ts prints and exits). */
export async function explainCommand (args: ExplainCommandArgs): Promise<CommandOutput> {
  const fail = (msg: string): CommandOutput => ({ code: 1, stdout: '', stderr: `switchyard explain: ${msg}\n` })
  if (args.config === undefined) return fail('-c FILE is required')
  if (args.request.length === 0) return fail("a request is required, e.g. 'GET https://example.com/path'")
  let config: Config
  try {
    config = await loadConfig(args.config)
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    const lines = err.issues.map((i) => formatIssue(err.file, i))
    lines.push(`${err.issues.length} error${err.issues.length === 1 ? '' : 's'} in ${err.file}`)
    return { code: 1, stdout: '', stderr: lines.join('\n') + '\n' }
  }
  let e: Explanation
  try {
    const req = parseExplainRequest(args.request.join(' '), args.headers ?? [], args.client ?? '127.0.0.1')
    e = args.admin === undefined
      ? explain(config, req)
      : await explainWithAdmin(config, req, { url: args.admin, ...(args.token === undefined ? {} : { token: args.token }) })
  } catch (err) {
    if (err instanceof ExplainInputError) return fail(err.message)
    throw err
  }
  return {
    code: e.route === null ? 2 : 0,
    stdout: args.json ? JSON.stringify(e, null, 2) + '\n' : formatExplanation(e),
    stderr: ''
  }
}
