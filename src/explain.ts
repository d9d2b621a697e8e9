// `switchyard explain`: a formatter over the proxy's own decision. It builds
// the RuntimeState with buildState() (servers whose dispatcher sends
// nothing), asks plan() what the pipeline would decide for the request, the
// shard's balancer to account for its pick and the router for why each route
// did or did not match, and prints what they say. Nothing here decides
// anything the proxy decides: where the two could disagree, the proxy's code
// answers. Only `explainWithAdmin` talks to the running proxy's admin API,
// and only when asked: its /status is applied onto the Server records first.
import { isIP } from 'node:net'
import { NONE_TRIED, type Candidate, type PickAccount, type PickContext } from './balancer/balancer.js'
import { num } from './balancer/pick.js'
import { lookupAllowed, requestFacts } from './cache/policy.js'
import { isSafeHeaderValue } from './config/forms.js'
import { loadConfig } from './config/load.js'
import type { Config, HeaderOpsConfig, ListenerConfig, ShardByConfig, UpstreamProtocol } from './config/schema.js'
import { ConfigError, Errors, formatIssue, type ErrorKind } from './errors.js'
import { createTlsContexts } from './listener/tls.js'
import { parseAuthority } from './authority.js'
import { normalizeAddress } from './proxy/headers.js'
import { requestField } from './fields.js'
import { basicCredentials, describeAccess } from './proxy/access.js'
import { plan, RequestView, upstreamRequest, type Plan, type PlanRequest, type Refusal } from './proxy/plan.js'
import type { CompiledRoute } from './proxy/routes.js'
import { allServers, buildState, type RuntimeState } from './proxy/state.js'
import { trustedClientAddress } from './proxy/trust.js'
import type { RouteVerdict } from './router/router.js'
import type { RegexRewrite } from './router/regex.js'
import type { BackendStatus } from './upstream/backend.js'
import { sendNothing } from './upstream/pool.js'
import { serverIdentity, type Server } from './upstream/server.js'
import { describeBy, describeLimit } from './ratelimit/limiter.js'
import type { Shard } from './upstream/shard.js'
import { REDIRECT_TEXT, describeRedirect } from './proxy/redirect.js'
import { describeBytes, describeCompression, responseDecision } from './proxy/compression/decide.js'
import { describeProxyProtocol } from './router/table.js'

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
  // RFC 9112 §3.2.4: OPTIONS of a URL with no path is the server-wide OPTIONS *, as the proxy parses it.
  if (target === '') target = method === 'OPTIONS' ? '*' : '/'
  else if (target.startsWith('?')) target = `/${target}`
  // As the listeners refuse it (HTTP/1.1's parser, request-target.ts for h2).
  if (/[^\x21-\x7e]/.test(target)) throw new ExplainInputError(`a control character or non-ASCII byte in ${JSON.stringify(target)}: the proxy answers 400 (percent-encode it)`)
  const raw: string[] = []
  let hasHost = false
  for (const h of headers) {
    const colon = h.indexOf(':')
    const name = colon === -1 ? '' : h.slice(0, colon).trim()
    if (name === '' || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) throw new ExplainInputError(`expected -H 'name: value', got "${h}"`)
    const value = h.slice(colon + 1).trim()
    if (!isSafeHeaderValue(value)) throw new ExplainInputError(`header ${name}: a control character (CR, LF, NUL, ESC…) is refused with 400`)
    if (name.toLowerCase() === 'host') hasHost = true
    raw.push(name, value)
  }
  // An HTTP/1.1 client sends the URL's authority as Host; -H host overrides it (the TLS name stays the URL's).
  if (!hasHost) raw.unshift('host', authority)
  const peer = normalizeAddress(client.trim())
  if (isIP(peer) === 0) throw new ExplainInputError(`--client: not an IP address: "${client}"`)
  return { method, scheme: m[1]!.toLowerCase() as 'http' | 'https', authority, target, rawHeaders: raw, client: peer }
}

// ---------------------------------------------------------------- live state (admin API)

/** One server as the running proxy reports it (a ServerStatus of its /status). */
export interface LiveServer {
  readonly healthy: boolean
  readonly checkUp: boolean
  readonly ejected: boolean
  readonly active: number
  readonly weight?: number
  /** ms since it came back up (slow start); absent = up since the proxy started. */
  readonly upForMs?: number
  /** Peak-EWMA latency cost (ms) at the time of the status; 0 = not measured. */
  readonly latencyCost?: number
}

/** Key: `backend/shard/server`. */
export type LiveState = ReadonlyMap<string, LiveServer>

/**
 * The admin API's `GET /status` body (`{ backends: BackendStatus[] }`) → LiveState.
 * @throws Error when no server could be read from it
 */
export function liveFromStatus (body: unknown): LiveState {
  const out = new Map<string, LiveServer>()
  const backends = isObject(body) && Array.isArray(body.backends) ? body.backends as unknown[] : []
  for (const b of backends) {
    if (!isObject(b) || typeof b.name !== 'string' || !Array.isArray(b.shards)) continue
    for (const sh of b.shards as unknown[]) {
      if (!isObject(sh) || typeof sh.name !== 'string' || !Array.isArray(sh.servers)) continue
      for (const s of sh.servers as unknown[]) {
        if (!isObject(s) || typeof s.name !== 'string' || typeof s.healthy !== 'boolean') continue
        const status = s as Partial<BackendStatus['shards'][number]['servers'][number]>
        const number = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v)
        out.set(serverIdentity(b.name, sh.name, s.name), {
          healthy: s.healthy,
          checkUp: status.checkUp ?? s.healthy,
          ejected: status.ejected ?? false,
          active: number(status.active) ? status.active : 0,
          ...(number(status.weight) ? { weight: status.weight } : {}),
          ...(number(status.upForMs) ? { upForMs: status.upForMs } : {}),
          ...(number(status.latencyCost) ? { latencyCost: status.latencyCost } : {})
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

/**
 * Put the running proxy's server state onto the state's Server records, as
 * the health checker, outlier detection and pools would have left them.
 * Returns, per backend, what could not be applied.
 */
function applyLive (state: RuntimeState, live: LiveState, now: number): Map<string, string[]> {
  const notes = new Map<string, string[]>()
  for (const s of allServers(state)) {
    const key = s.identity
    const l = live.get(key)
    const note = (msg: string): void => { notes.set(s.backend, [...notes.get(s.backend) ?? [], msg]) }
    if (l === undefined) {
      note(`${key} is not in the live status: assumed healthy and idle`)
      continue
    }
    s.checkUp = l.checkUp
    s.ejected = l.ejected
    s.healthy = l.healthy
    s.active = l.active
    s.upSince = l.upForMs === undefined ? 0 : now - l.upForMs
    if (l.latencyCost !== undefined) {
      // The cost as of the status: current, to decay from here.
      s.latencyCost = l.latencyCost
      s.latencyStamp = now
    }
    if (l.weight !== undefined && l.weight !== s.weight) note(`${key}: weight ${l.weight} in the running proxy, ${s.weight} in the file (the file's is used)`)
  }
  return notes
}

// ---------------------------------------------------------------- the explanation

export interface ExplainOptions {
  /** Live server state (from the admin API); absent = every server healthy and idle. */
  readonly live?: LiveState
  /** Where `live` came from, for the output. */
  readonly liveSource?: string
  /** performance.now() for balancers (slow start, latency decay). */
  readonly now?: number
  /** A response head to decide compression for (`--response`); absent = what the response would need. */
  readonly response?: { readonly status: number, readonly headers: readonly string[] }
}

export interface Explanation {
  readonly request: RequestPart
  /** Every route in precedence order, as the router accounts for them. */
  readonly routes: readonly RouteLine[]
  /** The matched route's name. */
  readonly route: string | null
  readonly rewrite: RewritePart | null
  readonly shard: ShardPart | null
  readonly replicas: ReplicaPart | null
  /** The matched route's access control; null when it has none (or no route matched). */
  readonly access: AccessPart | null
  /** The matched route's rate limit; null when it has none (or no route matched). */
  readonly rateLimit: RateLimitPart | null
  readonly cache: CachePart | null
  /** The matched route's compression; null when it has none (or the request is not forwarded). */
  readonly compression: CompressionPart | null
  readonly result: ResultPart
  readonly warnings: readonly string[]
}

export interface CompressionPart {
  /** The route's setting in words, as `switchyard check` prints it. */
  readonly summary: string
  /** The coding the request negotiated (plan.ts), and why. */
  readonly coding: string
  readonly negotiation: string
  /** The response head decided for (`--response`); null = none given. */
  readonly response: { readonly status: number, readonly headers: readonly string[] } | null
  /** `compressed with br: client accepts br q=1, type text/html, 14 KiB`, or why not (or what the response needs). */
  readonly result: string
}

export interface RequestPart {
  readonly method: string
  readonly scheme: 'http' | 'https'
  readonly authority: string
  /** Lower-cased, without port: what routing compares (null when the proxy refuses the request target). */
  readonly host: string | null
  readonly target: string
  /** Normalised, without the query. */
  readonly path: string | null
  readonly query: string | null
  /** The configured listener the request is taken to arrive on (null: none for this scheme). */
  readonly listener: string | null
  readonly client: string
  /**
   * The listener takes a PROXY header (check's words for it): `client` is
   * the address a trusted balancer announces in it, not the socket peer.
   */
  readonly proxyProtocol: string | null
  readonly trustedProxy: boolean
  /** The address ipHash (and the balancers' clientAddress) would use. */
  readonly balancerClient: string
  readonly balancerClientFrom: 'peer' | 'x-forwarded-for'
  readonly headerFields: number
  readonly headerBytes: number
  readonly limits: { readonly maxHeaderCount: number; readonly maxHeaderBytes: number; readonly maxUriBytes: number }
}

export interface RouteLine {
  readonly name: string
  readonly hostClass: 'exact' | 'wildcard' | 'any'
  readonly host: string | null
  readonly pathPrefix: string
  /** The route's match.pathRegex (matched against the whole path); absent when it has none. */
  readonly pathRegex?: string
  readonly methods: readonly string[]
  /** The listeners it is bound to; empty = every listener. */
  readonly listeners: readonly string[]
  readonly headers: Readonly<Record<string, string>>
  readonly backend: string
  /** The route's redirect (`301 → https://{host}{path}{?query}`); absent when it has none. */
  readonly redirect?: string
  /** match: this one; miss: tried and failed (reasons); unreached: a route before it matched, or routing was not reached. */
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
  /** The normalised target (path + query). */
  readonly pathBefore: string
  /** The plan's upstream path: keyed query (cached routes), then the route's rewrite. */
  readonly pathAfter: string
  readonly stripPrefix: string | null
  readonly addPrefix: string | null
  /** The route's rewrite.regex, and the groups its pattern caught in this path; absent when it has none. */
  readonly regex?: { readonly pattern: string, readonly replacement: string, readonly captures: string }
  /** The client's header fields against the plan's upstream head. */
  readonly requestHeaders: readonly HeaderChange[]
  readonly unchangedHeaders: number
  readonly responseHeaders: {
    readonly set: readonly (readonly [string, string])[]
    readonly remove: readonly string[]
    /** Appended to the upstream's Via (forwarding.via). */
    readonly via: string | null
  }
}

export interface ShardPart {
  readonly backend: string
  /** `header x-user-id`, `cookie sid`, `query id`, `pathSegment 2`; null without shardBy. */
  readonly shardBy: string | null
  readonly missing: 'any' | 'reject' | null
  /** The plan's shard key. */
  readonly key: string | null
  /** single: one shard; rendezvous: by key; round-robin: no key, missing any; rejected: no key, missing reject. */
  readonly how: 'single' | 'rendezvous' | 'round-robin' | 'rejected'
  readonly chosen: string | null
}

export interface ReplicaLine {
  readonly name: string
  readonly id: string
  readonly url: string
  readonly weight: number
  /** The weight the balancer uses now (below `weight` during slow start). */
  readonly effectiveWeight: number
  /** 0 = unlimited. */
  readonly maxConn: number
  readonly health: 'healthy' | 'down' | 'ejected'
  readonly active: number
  /** Peak-EWMA latency (ms) on the record; 0 = not measured. */
  readonly latencyCost: number
  /** May take this request (healthy or panic, below maxConn). */
  readonly eligible: boolean
  /** The balancer's account of this server. */
  readonly score: string
  /** The balancer's number for it (load, cost, turn, place in the ring walk). */
  readonly scoreValue: number | null
  readonly picked: boolean
  /** `role` in the config: the shard's primary or a replica. */
  readonly role: 'primary' | 'replica'
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
  /** The balancer's reason. */
  readonly pickNote: string
  /** Why a live pick may differ (random choices, rotation state); null when it cannot. */
  readonly pickVaries: string | null
  /** roundRobin: this pick and the ones after it, from this state. */
  readonly cycle: readonly string[] | null
  readonly sticky: StickyPart | null
  /** The route's consistency and what it decided for this request (plan.ts consistencyDecision). */
  readonly consistency: { readonly mode: 'eventual' | 'strong' | 'readYourWrites', readonly primaryOnly: boolean, readonly reason: string }
  /** What would be sent, and over which protocol (the backend's `protocol`): absent when no server can be picked. */
  readonly upstream: {
    readonly url: string; readonly method: string; readonly host: string; readonly protocol: UpstreamProtocol
    /** The PROXY header its connection starts with (sendProxyProtocol); absent when none. */
    readonly proxyHeader?: string
  } | null
}

export interface AccessPart {
  /** allow/deny/basicAuth in words, as `switchyard check` prints them. */
  readonly summary: string
  /** The address the lists are matched against (the trusted client address). */
  readonly client: string
  /** Why the request is refused (403 or 401), or null when it passes. */
  readonly denied: string | null
  /** `user alice` when the request carries Basic credentials; null otherwise. */
  readonly credentials: string | null
}

export interface RateLimitPart {
  readonly average: number
  /** ms. */
  readonly period: number
  readonly burst: number
  /** What the limit is keyed by: `client address`, `header x-api-key`, `cookie sid`. */
  readonly by: string
  readonly store: 'local' | 'redis'
  /** All of the above in words, as `switchyard check` prints it. */
  readonly summary: string
  /** The bucket this request counts against, as the proxy's limiter picks it. */
  readonly bucket: { readonly by: 'clientIp' | 'header' | 'cookie', readonly value: string }
  /** Set when the request lacks the header or cookie the limit is keyed by, so its address is used. */
  readonly keyMissing: boolean
  /** The RateLimit-Policy field every answer of the route carries. */
  readonly policy: string
}

export interface CachePart {
  readonly enabled: boolean
  readonly why: string
  /** The plan's primary key: the URL as forwarded. */
  readonly key: string | null
  /** The plan's variant key: route, shard (when several), key headers. */
  readonly variant: string | null
  readonly keyConfig: string | null
  readonly lookup: boolean
  readonly lookupWhy: string
  readonly notes: readonly string[]
  /** From the admin API's /cache/lookup: yes/no; unknown (no admin, or no cache there). */
  readonly stored: 'yes' | 'no' | 'unknown'
  readonly storedDetail: string | null
}

export interface ResultPart {
  /** The status the proxy answers with itself; null when the request goes upstream (or waits in the queue). */
  readonly status: number | null
  readonly code: string | null
  readonly summary: string
  /** The refusal's detail, for the log (never sent to the client). */
  readonly detail: string | null
}

/**
 * The decision chain for `req` under `config`: the proxy's own state and
 * plan, with every server healthy and idle unless `opts.live` says otherwise.
 * Builds a throwaway RuntimeState and retires it before returning.
 */
export function explain (config: Config, req: ExplainRequest, opts: ExplainOptions = {}): Explanation {
  const state = buildState(config, { dispatcher: sendNothing })
  try {
    return explainIn(state, req, opts)
  } finally {
    for (const b of state.backends.values()) b.retire()
  }
}

function explainIn (state: RuntimeState, req: ExplainRequest, opts: ExplainOptions): Explanation {
  const config = state.config
  const now = opts.now ?? performance.now()
  const warnings: string[] = []
  const liveNotes = opts.live === undefined ? undefined : applyLive(state, opts.live, now)

  // The connection it arrives on, as the listener and pipeline describe it.
  const listener = listenerFor(config, req)
  if (listener === undefined) warnings.push(`no ${req.scheme === 'https' ? 'TLS' : 'plaintext'} listener is configured for ${req.scheme}://`)
  const peer = req.client
  const trusted = state.trustedProxies.check(peer, peer.includes(':') ? 'ipv6' : 'ipv4')
  const sni = req.scheme === 'https' && isIP(hostOf(req.authority)) === 0 ? hostOf(req.authority) : undefined
  const planReq: PlanRequest = {
    method: req.method,
    url: req.target,
    rawHeaders: req.rawHeaders,
    h2Authority: undefined,
    conn: { clientAddress: peer, trusted, proto: req.scheme, viaEntry: state.viaH1, servername: sni },
    // No listener for the scheme: routes bound to listeners take nothing ('' is no listener's name).
    listener: { name: listener?.name ?? '', redirect: listener?.redirect },
    misdirected: misdirectedCheck(listener, warnings)
  }
  const p = plan(state, planReq)
  const refused = 'error' in p ? p : undefined
  const redirected = 'redirect' in p ? p : undefined
  const planned = 'error' in p || 'redirect' in p || 'options' in p ? undefined : p

  // request
  const raw = req.rawHeaders
  const balancerClient = trusted ? trustedClientAddress(requestField(raw, 'x-forwarded-for'), peer, state.trustedProxies) : peer
  let fields = 0
  let bytes = 0
  for (let i = 0; i < raw.length; i += 2) {
    fields++
    bytes += raw[i]!.length + raw[i + 1]!.length
  }
  const q = req.target.indexOf('?')
  const request: RequestPart = {
    method: req.method, scheme: req.scheme, authority: req.authority,
    host: p.authority?.host ?? null, target: req.target, path: p.path ?? null,
    query: q === -1 ? null : req.target.slice(q + 1),
    listener: listener?.name ?? null,
    client: peer, proxyProtocol: listener?.proxyProtocol === undefined ? null : describeProxyProtocol(listener.proxyProtocol),
    trustedProxy: trusted, balancerClient,
    balancerClientFrom: balancerClient === peer ? 'peer' : 'x-forwarded-for',
    headerFields: fields, headerBytes: bytes, limits: { ...config.limits }
  }
  if ('options' in p) {
    const star = p.options === '*'
    const why = star ? 'not reached: the proxy answers OPTIONS * itself' : 'not reached: Max-Forwards: 0, the proxy answers this OPTIONS itself'
    return {
      request, route: null, rewrite: null, shard: null, replicas: null, access: null, rateLimit: null, cache: null, compression: null, warnings,
      routes: state.router.table.map((r) => ({ ...routeFields(r), verdict: 'unreached' as const, reasons: [why] })),
      result: {
        status: 200,
        code: OPTIONS_CODE,
        summary: star
          ? 'OPTIONS * is about the proxy itself: 200, Content-Length: 0, no Allow'
          : 'Max-Forwards: 0 makes the proxy the final recipient (RFC 9110 §7.6.2): 200, Content-Length: 0, no Allow',
        detail: 'no route, no upstream, no cache'
      }
    }
  }

  // routes: the router's own account, when plan() got as far as routing
  const routed = planned !== undefined || refused?.route !== undefined || refused?.error === Errors.NO_ROUTE || redirected?.route !== undefined
  let routes: RouteLine[]
  if (routed && p.authority !== undefined && p.path !== undefined) {
    const account = state.router.explain(new RequestView(p.authority.host, p.path, planned?.target ?? p.path, req.method, raw, planReq.listener.name))
    const chosen = planned?.route ?? refused?.route ?? redirected?.route
    if (account.route !== chosen) {
      warnings.push(`the router's account (${account.route?.name ?? 'no route'}) disagrees with the plan (${chosen?.name ?? 'no route'})`)
    }
    routes = account.routes.map(routeLine)
  } else {
    const why = `not reached: the proxy answers ${refused?.error.status ?? redirected!.redirect.status} first`
    routes = state.router.table.map((r) => ({ ...routeFields(r), verdict: 'unreached' as const, reasons: [why] }))
  }

  const backend = redirected === undefined ? (planned ?? refused)!.backend : undefined
  for (const note of backend === undefined ? [] : liveNotes?.get(backend.name) ?? []) warnings.push(note)
  const shard = backend === undefined ? null : shardPart((planned ?? refused)!, refused)
  // rate limit: the route's, checked before the cache (explain takes nothing from the bucket)
  const limit = p.route?.rateLimit
  const bucket = limit?.bucketOf({ clientAddress: balancerClient, rawHeaders: raw })
  const rateLimit: RateLimitPart | null = limit === undefined ? null : {
    average: limit.config.average, period: limit.config.period, burst: limit.config.burst,
    by: describeBy(limit.config.by), store: limit.config.store, summary: describeLimit(limit.config),
    bucket: bucket!,
    keyMissing: limit.config.by !== 'clientIp' && bucket!.by === 'clientIp',
    policy: limit.fields.policy
  }
  // access: right after the plan, before the rate limit (explain runs scrypt itself and remembers nothing)
  const ac = planned?.route.access
  const acDenial = ac === undefined ? undefined : ac.addressDenial(balancerClient) ?? ac.basicAuth?.explainCheck(requestField(raw, 'authorization'))
  const creds = ac?.basicAuth === undefined ? 'none' : basicCredentials(requestField(raw, 'authorization'))
  const access: AccessPart | null = ac === undefined ? null : {
    summary: describeAccess(planned!.route.config)!,
    client: balancerClient,
    denied: acDenial === undefined ? null : acDenial.detail,
    credentials: typeof creds === 'string' ? null : `user ${creds.user}`
  }
  const empty = { request, routes, route: p.route?.name ?? null, rewrite: null, shard, replicas: null, access, rateLimit, cache: null, compression: null, warnings }
  if (refused !== undefined) return { ...empty, result: answer(refused.error, refused.detail) }
  if (redirected !== undefined) {
    const r = redirected.redirect
    const whose = r.by === 'listener' ? `listener ${listener!.name}'s redirect, before routing` : `route ${redirected.route!.name}'s redirect`
    return { ...empty, result: { status: r.status, code: 'REDIRECT', summary: `${REDIRECT_TEXT[r.status]} to ${r.location}`, detail: `${whose}; no upstream, no cache` } }
  }
  if (acDenial !== undefined) return { ...empty, result: answer(acDenial.error, acDenial.detail) }
  const pl = planned!

  // cache: the pipeline's cache phase comes before the pick
  const cache = cacheExplanation(state, pl, req)
  const purge = cache.purge
  // pick: the shard's balancer accounts for its choice
  const ctx: PickContext = {
    clientAddress: balancerClient, now, tried: NONE_TRIED, panic: pl.shard.panic(), stickyId: pl.stickyId, primaryOnly: pl.primaryOnly !== undefined
  }
  const picking = purge === undefined ? replicaExplanation(state, pl, ctx, req, opts) : undefined
  const server = picking?.account.server

  const up = server === undefined ? undefined : upstreamRequest(pl, server)
  const d = headerDiff(raw, up?.headers ?? pl.head.headers, pl.route.config.requestHeaders)
  const route = pl.route.config
  const rewrite: RewritePart = {
    pathBefore: pl.target, pathAfter: pl.upstreamPath,
    stripPrefix: pl.route.stripPrefix ?? null, addPrefix: pl.route.addPrefix ?? null,
    ...(pl.route.rewriteRegex === undefined ? {} : { regex: regexPart(pl.route.rewriteRegex, pl.path) }),
    requestHeaders: server === undefined && !pl.backend.config.passHostHeader
      ? d.changes.map((c) => c.name === 'host' ? { ...c, after: '(the picked server\'s host:port)' } : c)
      : d.changes,
    unchangedHeaders: d.unchanged,
    responseHeaders: {
      set: Object.entries(route.responseHeaders.set),
      remove: route.responseHeaders.remove,
      via: config.forwarding.via ? `1.1 ${config.proxyName}` : null
    }
  }

  // result, in the pipeline's order: cache phase, then pick → send, queue or 503
  let result: ResultPart
  if (purge !== undefined) result = purge
  else if (server !== undefined) {
    const viaCache = cache.part.lookup ? ', unless the cache answers' : ''
    const limited = rateLimit === null ? '' : ` (within the rate limit; over it, ${Errors.RATE_LIMITED.status} ${Errors.RATE_LIMITED.code})`
    result = { status: null, code: null, summary: `forwarded to ${server.name} (${server.url})${viaCache}${limited}`, detail: null }
  } else if (picking!.busy) {
    const b = pl.backend.config
    result = {
      status: null, code: null, detail: null,
      summary: `waits in shard ${pl.shard.name}'s queue (every usable server is at maxConn or out of pooled connections); ` +
        `503 ${Errors.QUEUE_FULL.code} past maxQueue ${b.maxQueue}, 503 ${Errors.QUEUE_TIMEOUT.code} after ${b.timeouts.queue} ms`
    }
  } else result = answer(pl.primaryOnly === undefined ? Errors.NO_HEALTHY_SERVER : Errors.PRIMARY_UNAVAILABLE, pl.primaryOnly)

  return { ...empty, rewrite, replicas: picking?.part ?? null, cache: cache.part, compression: compressionPart(pl, opts.response), result }
}

/** The plan's negotiated coding and, given a response head, the proxy's own decision for it (compression/decide.ts). */
function compressionPart (pl: Plan, response: ExplainOptions['response']): CompressionPart | null {
  const c = pl.route.compression
  const n = pl.compression
  if (c === undefined || n === undefined) return null
  const base = { summary: describeCompression(c.config), coding: n.coding, negotiation: n.why, response: response ?? null }
  if (response === undefined) {
    const result = n.coding === 'identity'
      ? `not compressed: ${n.why}`
      : `${n.coding} (${n.why}) when the response is of a listed type, ${describeBytes(c.config.minBytes)} or more (or of unknown length), ` +
        'without Content-Encoding or no-transform, and not 204/206/304'
    return { ...base, result }
  }
  const d = responseDecision(c, n.coding, response.status, response.headers)
  const result = d.coding !== undefined
    ? `compressed with ${d.coding}: ${n.why}, ${d.why}`
    : n.coding === 'identity' && /the client gets identity/.test(d.why) ? `not compressed: ${n.why}` : d.why
  return { ...base, result: result + (d.vary ? '; Vary: Accept-Encoding' : '') }
}

/** ResultPart.code of the proxy's own answer to OPTIONS * (see plan.ts's ServerOptions). */
const OPTIONS_CODE = 'OPTIONS'

function answer (kind: ErrorKind, detail: string | undefined): ResultPart {
  return { status: kind.status, code: kind.code, summary: kind.message, detail: detail ?? null }
}

function hostOf (authority: string): string {
  return parseAuthority(authority)?.host.replace(/^\[(.*)\]$/, '$1') ?? authority
}

/** The listener a client of this URL reaches: of the URL's scheme, on its port when one listens there. */
function listenerFor (config: Config, req: ExplainRequest): ListenerConfig | undefined {
  const tls = req.scheme === 'https'
  const ofScheme = config.listeners.filter((l) => (l.tls !== undefined) === tls)
  const port = parseAuthority(req.authority)?.port ?? (tls ? 443 : 80)
  return ofScheme.find((l) => l.port === port) ?? ofScheme[0]
}

/** The listener's own 421 check (listener/tls.ts), which it only makes with several certificates. */
function misdirectedCheck (l: ListenerConfig | undefined, warnings: string[]): PlanRequest['misdirected'] {
  if (l?.tls === undefined || l.tls.certificates.length < 2) return undefined
  try {
    return createTlsContexts(l.tls).misdirected
  } catch (err) {
    warnings.push(`listener ${l.name}: its certificates could not be loaded (${(err as Error).message}); the 421 check is left out`)
    return undefined
  }
}

// ---------------------------------------------------------------- routes

function routeFields (r: CompiledRoute): Omit<RouteLine, 'verdict' | 'reasons'> {
  const m = r.config.match
  const hostClass = m.host === undefined ? 'any' : m.host.startsWith('*.') ? 'wildcard' : 'exact'
  const redirect = r.config.redirect
  return {
    name: r.name, hostClass, host: m.host ?? null, pathPrefix: m.pathPrefix, ...(m.pathRegex === undefined ? {} : { pathRegex: m.pathRegex }),
    methods: m.methods, listeners: m.listeners, headers: m.headers,
    backend: r.config.backend, ...(redirect === undefined ? {} : { redirect: describeRedirect(redirect) })
  }
}

/** A rewrite.regex as explain shows it: the groups its pattern caught in `path` ('' when it does not match). */
function regexPart (rw: RegexRewrite, path: string): NonNullable<RewritePart['regex']> {
  const captures = rw.pattern.test(path) ? rw.pattern.describeCaptures(path) : ''
  return { pattern: rw.pattern.source, replacement: rw.replacementSource, captures }
}

function routeLine (v: RouteVerdict<CompiledRoute>): RouteLine {
  return { ...routeFields(v.route), hostClass: v.hostClass, verdict: v.verdict, reasons: v.reasons }
}

// ---------------------------------------------------------------- shards

function describeShardBy (by: ShardByConfig): string {
  if ('header' in by) return `header ${by.header}`
  if ('cookie' in by) return `cookie ${by.cookie}`
  if ('query' in by) return `query ${by.query}`
  return `pathSegment ${by.pathSegment}`
}

function shardPart (p: Plan | Refusal, refused: Refusal | undefined): ShardPart {
  const backend = p.backend!
  const by = backend.selector.shardBy
  const key = refused === undefined ? (p as Plan).shardKey : undefined
  const chosen = p.shard
  return {
    backend: backend.name,
    shardBy: by === undefined ? null : describeShardBy(by),
    missing: by?.missing ?? null,
    key: key ?? null,
    how: refused?.error === Errors.SHARD_KEY_MISSING ? 'rejected'
      : backend.shards.length === 1 ? 'single' : key === undefined ? 'round-robin' : 'rendezvous',
    chosen: chosen?.name ?? null
  }
}

// ---------------------------------------------------------------- replicas

function health (s: Server): ReplicaLine['health'] {
  return s.healthy ? 'healthy' : s.ejected ? 'ejected' : 'down'
}

function replicaExplanation (state: RuntimeState, p: Plan, ctx: PickContext, req: ExplainRequest,
  opts: ExplainOptions): { part: ReplicaPart; account: PickAccount; busy: boolean } {
  const shard = p.shard
  const account = shard.balancer.explain(ctx)
  const server = account.server
  const busy = server === undefined && shard.anyBusy(ctx)
  const byServer = new Map<Server, Candidate>(account.candidates.map((c) => [c.server, c]))
  const lines = shard.servers.map((s): ReplicaLine => {
    const c = byServer.get(s)
    return {
      name: s.name, id: s.id, url: s.url, weight: s.weight, effectiveWeight: s.effectiveWeight(ctx.now), maxConn: s.maxConn,
      health: health(s), active: s.active, latencyCost: s.latencyCost,
      eligible: c?.eligible ?? false, score: c?.why ?? '', scoreValue: c?.score ?? null, picked: s === server,
      role: s.primary ? 'primary' : 'replica'
    }
  })
  const algorithm = account.inner ?? account
  const cfg = p.backend.config
  let pickNote = algorithm.reason
  if (ctx.panic) pickNote = `panic mode (fewer than ${cfg.panicThreshold}% healthy): health ignored; ${pickNote}`
  if (server === undefined) pickNote = busy ? 'none free: every usable server is at maxConn or out of pooled connections' : 'none: no eligible server in this shard'
  return {
    account,
    busy,
    part: {
      backend: p.backend.name,
      shard: shard.name,
      algorithm: cfg.balance.algorithm,
      health: opts.live === undefined ? 'config' : 'live',
      healthSource: opts.live === undefined ? null : opts.liveSource ?? null,
      panic: ctx.panic,
      servers: lines,
      pick: server?.name ?? null,
      pickNote,
      pickVaries: server === undefined ? null : account.varies ?? null,
      cycle: account.next === undefined || server === undefined ? null : [server, ...account.next].map((s) => s.name),
      sticky: stickyPart(state, p, shard, account, req),
      consistency: {
        mode: typeof p.route.config.consistency === 'object' ? 'readYourWrites' : p.route.config.consistency,
        primaryOnly: p.primaryOnly !== undefined,
        reason: p.primaryOnly !== undefined
          ? `${p.primaryOnly}: the primary only${shard.primary === undefined ? '' : ` (${shard.primary.name})`}, never a replica`
          : p.route.config.consistency !== 'strong' && shard.primary !== undefined
            ? `consistency: ${typeof p.route.config.consistency === 'object' ? 'readYourWrites, a read with no recent write by this client' : 'eventual, a read'}: any server of the shard (writes go to the primary)`
            : 'any server of the shard'
      },
      upstream: server === undefined ? null : upstreamLine(p, server, req.client)
    }
  }
}

function upstreamLine (p: Plan, server: Server, client: string): NonNullable<ReplicaPart['upstream']> {
  const up = upstreamRequest(p, server)
  const send = server.sendProxyProtocol
  return {
    method: up.method, url: server.url + up.path, host: requestField(up.headers, 'host') ?? '', protocol: p.backend.config.protocol,
    ...(send === undefined
      ? {}
      : { proxyHeader: `PROXY ${send} header naming client ${client} and its port, on a connection of this client connection's own (never shared with another client)` })
  }
}

function stickyPart (state: RuntimeState, p: Plan, shard: Shard, account: PickAccount, req: ExplainRequest): StickyPart | null {
  const cfg = p.backend.config.sticky
  if (cfg === undefined) return null
  const id = p.stickyId
  const server = account.server
  let reason = account.reason
  if (id !== undefined && !shard.servers.some((s) => s.id === id)) {
    const other = allServers(state).find((s) => s.id === id && s.backend === p.backend.name)
    if (other !== undefined) reason += ` (it names ${other.name} of shard ${other.shard}, not of ${shard.name})`
  }
  return {
    cookie: cfg.cookie.name,
    value: id ?? null,
    decision: id === undefined ? 'balanced' : server !== undefined && server.id === id ? 'pinned' : 'rebalanced',
    reason,
    // As the pipeline sets it at dispatch: only when the cookie does not already name the server.
    setCookie: server === undefined || server.id === id ? null : p.backend.stickyCookie(server, req.scheme === 'https') ?? null
  }
}

// ---------------------------------------------------------------- headers

/** What the header policy did: the client's fields against the upstream request's, by name. */
function headerDiff (input: readonly string[], output: readonly string[], ops: HeaderOpsConfig): { changes: HeaderChange[]; unchanged: number } {
  const group = (flat: readonly string[]): Map<string, string[]> => {
    const m = new Map<string, string[]>()
    for (let i = 0; i < flat.length; i += 2) {
      const name = flat[i]!.toLowerCase()
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

/** The plan's cache target, and what the cache phase does with this request before any pick. */
function cacheExplanation (state: RuntimeState, p: Plan, req: ExplainRequest): { part: CachePart; purge?: ResultPart } {
  const rc = p.route.cache
  const target = p.cache
  if (target === undefined || rc === undefined || state.cache === undefined) {
    const why = state.cache === undefined ? 'no top-level cache block' : `route ${p.route.name} has cache off`
    return {
      part: { enabled: false, why, key: null, variant: null, keyConfig: null, lookup: false, lookupWhy: 'the route does not cache', notes: [], stored: 'unknown', storedDetail: null }
    }
  }
  const keyConfig = `query ${rc.key.query}` +
    (rc.key.ignoreParams.length > 0 ? `, ignoring ${rc.key.ignoreParams.join(', ')}` : '') +
    (rc.key.headers.length > 0 ? `, headers ${rc.key.headers.join(', ')}` : '')
  const base = { enabled: true, why: `route ${p.route.name} caches`, key: target.key, variant: target.variant, keyConfig, stored: 'unknown' as const, storedDetail: null }

  const purgeFrom = state.purgeFrom
  if (req.method === 'PURGE' && purgeFrom !== undefined) {
    // cache-phase.ts checks the socket peer, never X-Forwarded-For.
    const allowed = purgeFrom.check(req.client, req.client.includes(':') ? 'ipv6' : 'ipv4')
    return {
      part: { ...base, lookup: false, lookupWhy: 'PURGE: the cache answers it', notes: [] },
      purge: allowed
        ? { status: null, code: null, summary: 'PURGE: every stored variant of the key is removed (200, or 404 when none was stored)', detail: null }
        : answer(Errors.PURGE_FORBIDDEN, undefined)
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
  // The same switch the cache phase reads (cache.shared, set when the config has shared + redis).
  const shared = state.config.cache?.shared
  if (lookup && shared?.enabled === true && state.config.redis !== undefined) {
    notes.push('shared cache: a local miss is looked up in Redis before the origin (one instance fetches, the others wait); ' +
      'what is stored here is written there too, sealed')
  }
  if (!lookup && shared?.enabled === true && state.config.redis !== undefined) notes.push('the invalidation reaches every instance through Redis')
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
      const res = await get(`/cache/lookup?url=${encodeURIComponent(url)}`)
      const body: unknown = await res.json().catch(() => undefined)
      if (res.ok) cache = { ...cache, ...storedFrom(body, cache.key) }
      else if (res.status === 404) {
        const error = isObject(body) && typeof body.error === 'string' ? body.error : `HTTP ${res.status}`
        cache = error.startsWith('not in cache')
          ? { ...cache, stored: 'no', storedDetail: null }
          : { ...cache, stored: 'unknown', storedDetail: error }
      } else throw new Error(`HTTP ${res.status}`)
    } catch (err) {
      warnings.push(`${root}/cache/lookup: ${reason(err)}`)
    }
  }
  return { ...e, cache, warnings: [...e.warnings, ...warnings] }
}

/** The admin API's lookup answer (`{ stored, key, variants: [...] }`) → yes, with what is stored. */
function storedFrom (body: unknown, key: string): Pick<CachePart, 'stored' | 'storedDetail'> {
  if (!isObject(body) || !Array.isArray(body.variants)) return { stored: 'unknown', storedDetail: 'unrecognized answer' }
  const variants = body.variants as unknown[]
  const detail = [`${variants.length} variant${variants.length === 1 ? '' : 's'} under the key`]
  for (const v of variants) {
    if (!isObject(v)) continue
    detail.push(`${String(v.status)}, ${String(v.ageSeconds)} s old, fresh for ${String(v.freshnessSeconds)} s`)
  }
  if (typeof body.key === 'string' && body.key !== key) detail.push(`the admin API keyed the URL as ${body.key}`)
  return { stored: variants.length > 0 ? 'yes' : 'no', storedDetail: detail.join('; ') }
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
  if (r.listeners.length > 0) parts.push(`listeners=${r.listeners.join(',')}`)
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
    ['host', r.host ?? '(refused before routing)'],
    ['path', (r.path ?? r.target) + (r.query === null ? '' : `  query ${r.query}`)],
    ['listener', r.listener ?? `none for ${r.scheme}://`],
    ['client', `${r.client}${r.trustedProxy ? ' (a trusted proxy: its X-Forwarded-* are kept)' : ' (not a trusted proxy)'}`],
    ...(r.proxyProtocol === null ? [] : [['', `client address from the PROXY v1/v2 header (${r.proxyProtocol})`] as [string, string]]),
    ['ipHash', `${r.balancerClient}${r.balancerClientFrom === 'peer' ? ' (the peer)' : ' (from X-Forwarded-For)'}`],
    ['target', `${r.target.length} bytes (limit ${r.limits.maxUriBytes} bytes)`],
    ['headers', `${r.headerFields} fields, ${r.headerBytes} bytes (limits ${r.limits.maxHeaderCount} fields, ${r.limits.maxHeaderBytes} bytes)`]
  ]))

  out.push('', 'Routes (precedence order)')
  if (e.routes.length === 0) out.push(`${INDENT}(no routes configured)`)
  const rows = e.routes.map((l) => [
    l.verdict === 'match' ? '✓' : l.verdict === 'miss' ? '✗' : '·',
    l.name, l.host ?? '*', l.pathRegex === undefined ? l.pathPrefix : `~ ${l.pathRegex}`, conditions(l), l.redirect === undefined ? `→ ${l.backend}` : `↪ ${l.redirect}`, l.verdict === 'unreached' ? `(${l.reasons[0] ?? 'not reached'})` : ''
  ])
  const lines = table(rows)
  e.routes.forEach((l, i) => {
    out.push(lines[i]!)
    if (l.verdict !== 'unreached') for (const why of l.reasons) out.push(`${INDENT}   ${why}`)
  })

  if (e.rewrite !== null) {
    const w = e.rewrite
    out.push('', 'Rewrites')
    const how = [w.stripPrefix === null ? '' : `stripPrefix ${w.stripPrefix}`, w.addPrefix === null ? '' : `addPrefix ${w.addPrefix}`,
      w.regex === undefined ? '' : `regex ${w.regex.pattern} → ${w.regex.replacement}` +
        (w.regex.captures === '' ? w.pathBefore === w.pathAfter ? ': no match, path kept' : '' : `, ${w.regex.captures}`)]
      .filter((s) => s !== '').join(', ')
    out.push(...table([['path', w.pathBefore === w.pathAfter ? `${w.pathBefore} (unchanged)`
      : `${w.pathBefore} → ${w.pathAfter}${how === '' ? '  (cache key query rules)' : `  (${how})`}`]]))
    out.push(`${INDENT}request headers (${w.unchangedHeaders} forwarded as sent)`)
    out.push(...table(w.requestHeaders.map((c) => [
      c.op,
      c.op === '~' ? `${c.name}: ${c.before!} → ${c.after!}` : `${c.name}: ${c.op === '+' ? c.after! : c.before!}`,
      c.by === 'proxy' ? '' : c.by
    ]), INDENT + '  '))
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
    if (s.shardBy !== null) rows.push(['key', s.key === null ? 'missing' : `"${s.key}"`])
    const verdict = s.how === 'single' ? `${s.chosen!} (the only shard)`
      : s.how === 'rendezvous' ? `${s.chosen!} (rendezvous hash of the key over the shard names)`
        : s.how === 'round-robin' ? `${s.chosen!} (no key, missing: any → shards in turn; a fresh proxy starts with the first)`
          : `none: no key and missing: reject → 400 ${Errors.SHARD_KEY_MISSING.code}`
    rows.push(['→ shard', verdict])
    out.push(...table(rows))
  }

  const stop = e.result.status === null ? '' : `not reached: the proxy answers ${e.result.status} first`
  if (e.replicas === null && e.route !== null) out.push('', 'Replicas', `${INDENT}${stop}`)
  if (e.replicas !== null) {
    const p = e.replicas
    const src = p.health === 'live' ? `health live from ${p.healthSource ?? 'the admin API'}` : 'from config: all healthy, idle'
    out.push('', `Replicas of shard ${p.shard} (${p.algorithm}; ${src})`)
    const withId = p.sticky !== null
    const roles = p.servers.some((s) => s.role === 'primary')
    const head = ['', 'server', ...(withId ? ['id'] : []), ...(roles ? ['role'] : []), 'url', 'weight', 'maxConn', 'health', 'active', 'balancer']
    const rows = p.servers.map((s) => [
      s.picked ? '✓' : s.eligible ? '' : '✗',
      s.name, ...(withId ? [s.id] : []), ...(roles ? [s.role] : []), s.url,
      s.effectiveWeight === s.weight ? String(s.weight) : `${num(s.effectiveWeight)}/${s.weight}`,
      s.maxConn === 0 ? '-' : String(s.maxConn),
      s.health + (p.panic && s.health !== 'healthy' ? ' (panic)' : ''), String(s.active), s.score
    ])
    const n = (withId ? 1 : 0) + (roles ? 1 : 0)
    out.push(...table([head, ...rows], INDENT, [3 + n, 4 + n, 6 + n]))
    const info: string[][] = [...wrap('pick', p.pick === null ? p.pickNote : `${p.pick}: ${p.pickNote}`)]
    if (roles || p.consistency.mode !== 'eventual') info.push(...wrap('consistency', p.consistency.reason))
    if (p.pickVaries !== null) info.push(...wrap('', `a live pick may differ: ${p.pickVaries}`))
    if (p.cycle !== null && p.cycle.length > 1) info.push(['cycle', p.cycle.join(' ')])
    if (p.sticky !== null) {
      info.push(...wrap('sticky', p.sticky.value === null ? p.sticky.reason : `${p.sticky.cookie}=${p.sticky.value}: ${p.sticky.reason}`))
      if (p.sticky.setCookie !== null) info.push(['', `Set-Cookie: ${p.sticky.setCookie}`])
    }
    if (p.upstream !== null) {
      info.push(['upstream', `${p.upstream.method} ${p.upstream.url}  (Host: ${p.upstream.host})  over ${PROTOCOL_TEXT[p.upstream.protocol]}`])
    }
    if (p.upstream?.proxyHeader !== undefined) info.push(['', p.upstream.proxyHeader])
    out.push(...table(info))
  }

  if (e.access !== null) {
    const a = e.access
    out.push('', 'Access (checked after routing, before the rate limit, the cache and any upstream)')
    out.push(...table([
      ...wrap('rules', a.summary),
      ['client', a.client],
      ...(a.credentials === null ? [] : [['credentials', a.credentials]]),
      ['→', a.denied === null ? 'admitted' : `refused: ${a.denied}`]
    ]))
  }

  if (e.rateLimit !== null) {
    const l = e.rateLimit
    out.push('', 'Rate limit (checked before the cache and any upstream)')
    const bucket = l.bucket.by === 'clientIp' ? `client ${l.bucket.value}` : `${l.bucket.by} ${JSON.stringify(l.bucket.value)}`
    out.push(...table([
      ['limit', l.summary + (l.store === 'redis' ? ' (the local limit while Redis is unavailable)' : ' (per process)')],
      ['bucket', bucket + (l.keyMissing ? ` (the request has no ${l.by}: limited by its address)` : '')],
      ['over it', `${Errors.RATE_LIMITED.status} ${Errors.RATE_LIMITED.code} with Retry-After; every answer carries RateLimit-Policy: ${l.policy} and RateLimit`]
    ]))
  }

  if (e.cache === null && e.route !== null) out.push('', 'Cache', `${INDENT}${stop}`)
  if (e.cache !== null) {
    const c = e.cache
    out.push('', 'Cache')
    if (!c.enabled) out.push(...table([['off', c.why]]))
    else {
      const rows: string[][] = [
        ['key', c.key!],
        ['', c.keyConfig!],
        ['variant', variantText(c.variant!)],
        ['lookup', `${c.lookup ? 'yes' : 'no'}: ${c.lookupWhy}`],
        ...c.notes.map((n) => ['', n]),
        ['stored', c.stored === 'unknown' && c.storedDetail === null
          ? 'unknown (pass --admin URL to ask the running proxy)'
          : c.stored + (c.storedDetail === null ? '' : ` (${c.storedDetail})`)]
      ]
      out.push(...table(rows))
    }
  }

  if (e.compression !== null) {
    const c = e.compression
    out.push('', 'Compression')
    out.push(...table([
      ...wrap('route', c.summary),
      ['coding', `${c.coding}: ${c.negotiation}`],
      ...(c.response === null ? [] : [['response', `${c.response.status} ${c.response.headers.map((v, i) => i % 2 === 0 ? `${v}: ` : `${v}; `).join('').replace(/; $/, '')}`]]),
      ...wrap('→', c.result)
    ]))
  }

  out.push('', 'Result')
  const res = e.result
  out.push(`${INDENT}${res.status === null ? '→' : res.code === 'REDIRECT' ? '↪' : res.code === OPTIONS_CODE ? '✓' : '✗'} ${res.status === null ? '' : `${res.status} ${res.code!}: `}${res.summary}` +
    (res.detail === null ? '' : ` (${res.detail})`))
  for (const w of e.warnings) out.push(`${INDENT}! ${w}`)
  return out.join('\n') + '\n'
}

/** How explain names a backend's protocol. */
const PROTOCOL_TEXT: Readonly<Record<UpstreamProtocol, string>> = {
  http1: 'HTTP/1.1',
  h2: 'h2 (HTTP/2 over TLS, ALPN; trailers and TE: trailers pass)',
  h2c: 'h2c (cleartext HTTP/2, prior knowledge; trailers and TE: trailers pass)'
}

/** The variant key (`route\nshard\nname:value…`, see cache/key.ts) on one line. */
function variantText (variant: string): string {
  const [route = '', shard = '', ...headers] = variant.split('\n')
  return [`route ${route}`, shard === '' ? '' : `shard ${shard}`, ...headers].filter((x) => x !== '').join(', ')
}

/** A label and a long text as rows no wider than about `width`, broken after `; `. */
function wrap (label: string, text: string, width = 96): string[][] {
  const rows: string[][] = []
  let line = ''
  for (const part of text.split(/(?<=; )/)) {
    if (line !== '' && line.length + part.length > width) {
      rows.push([rows.length === 0 ? label : '', line.trimEnd()])
      line = ''
    }
    line += part
  }
  rows.push([rows.length === 0 ? label : '', line.trimEnd()])
  return rows
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
  /** `name: value` response fields to decide compression for (status 200). */
  readonly response?: readonly string[] | undefined
  /** SWITCHYARD_ADMIN_TOKEN. */
  readonly token: string | undefined
}

export interface CommandOutput {
  /** 0: a route matched (or OPTIONS *, which the proxy answers); 2: none (404, or refused before routing); 1: bad input or config, or a request the proxy refuses as malformed. */
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
    const response = args.response === undefined || args.response.length === 0 ? {} : { response: { status: 200, headers: responseFields(args.response) } }
    e = args.admin === undefined
      ? explain(config, req, response)
      : await explainWithAdmin(config, req, { url: args.admin, ...(args.token === undefined ? {} : { token: args.token }) }, response)
  } catch (err) {
    if (err instanceof ExplainInputError) return fail(err.message)
    throw err
  }
  return {
    code: e.route !== null || e.result.code === OPTIONS_CODE ? 0 : malformed(e) ? 1 : 2,
    stdout: args.json ? JSON.stringify(e, null, 2) + '\n' : formatExplanation(e),
    stderr: ''
  }
}

/** `--response 'name: value'` fields, flat. */
function responseFields (lines: readonly string[]): string[] {
  const out: string[] = []
  for (const l of lines) {
    const colon = l.indexOf(':')
    const name = colon < 1 ? '' : l.slice(0, colon).trim()
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) throw new ExplainInputError(`expected --response 'name: value', got "${l}"`)
    out.push(name.toLowerCase(), l.slice(colon + 1).trim())
  }
  return out
}

/** The proxy refuses the request as malformed before routing it: bad input, not "no route". */
function malformed (e: Explanation): boolean {
  return e.request.host === null && e.result.code === Errors.BAD_REQUEST.code
}
