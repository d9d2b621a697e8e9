// The one place a request's handling is decided (Pingora's request_filter →
// upstream_peer, Envoy's route → cluster → host): parse → route → shard →
// sticky → upstream head → cache decision, pure and synchronous over the
// RuntimeState. The pipeline, the WebSocket upgrade path, background
// revalidation and `explain` all call plan() and upstreamRequest(), so they
// cannot disagree about any of it. Only the replica is left to pick: that
// reads live load and health, at dispatch.
import type { Socket } from 'node:net'
import type { Consistency, RedirectConfig } from '../config/schema.js'
import { clientEndpoints } from '../listener/proxy-accept.js'
import type { ReadYourWrites } from './read-your-writes.js'
import { cacheKey, keyedTarget, trustedVariant, variantKey, type CacheTarget } from '../cache/key.js'
import { Errors, type ErrorKind } from '../errors.js'
import type { RouteInput } from '../router/router.js'
import type { Backend } from '../upstream/backend.js'
import type { ForwardRequest } from '../upstream/pool.js'
import type { Server } from '../upstream/server.js'
import { cookieCount, cookieValue, queryCount, shardKey, type Shard, type ShardKeySource } from '../upstream/shard.js'
import { originOf, type Authority } from '../authority.js'
import { countFields, firstValue, requestField, setField } from '../fields.js'
import { TRUSTED_OVERRIDES, upstreamRequestHead, withHost, type ForwardContext, type UpstreamHead } from './headers.js'
import { parseRequestTarget } from './request-target.js'
import { hasDotSegment, lenientReading } from './path.js'
import { redirectLocation, type RedirectAnswer } from './redirect.js'
import { requestCoding, upstreamAcceptEncoding } from './compression/decide.js'
import type { Negotiated } from './compression/negotiate.js'
import type { CompiledRoute } from './routes.js'
import type { RuntimeState } from './state.js'

/** What a plan is made from: the request as received on one connection of one listener. */
export interface PlanRequest {
  readonly method: string
  /** The request target as received (h1: origin-, absolute- or asterisk-form; h2: :path). */
  readonly url: string
  readonly rawHeaders: readonly string[]
  /** HTTP/2 `:authority` ('' when absent); undefined on HTTP/1.1. */
  readonly h2Authority: string | undefined
  readonly conn: ForwardContext & { readonly servername: string | undefined }
  /** Date.now() at the request's start (read-your-writes windows are wall-clock); now when absent. */
  readonly startWall?: number
  /** The listener it arrived on (routes may be bound to listeners); '' = none. Its redirect answers every request. */
  readonly listener: { readonly name: string, readonly redirect?: RedirectConfig | undefined }
  /** The listener's 421 check, when it has several certificates. */
  readonly misdirected?: ((servername: string | undefined, host: string) => boolean) | undefined
}

export interface Plan {
  readonly method: string
  readonly authority: Authority
  /** Normalised path without the query (routing, logs). */
  readonly path: string
  /** Normalised path + the query as sent. */
  readonly target: string
  readonly route: CompiledRoute
  readonly backend: Backend
  readonly shard: Shard
  /** The shard key the request carried, if the backend has shardBy. */
  readonly shardKey: string | undefined
  /** The server id from the request's sticky cookie, if any. */
  readonly stickyId: string | undefined
  /** The upstream request head; Host is a placeholder when the backend sends each server its own. */
  readonly head: UpstreamHead
  /** Path (and query) sent upstream: keyed query, then the route's rewrite. */
  readonly upstreamPath: string
  /** Where the response is looked up and stored; undefined when the route does not cache (or consistency forbids it). */
  readonly cache: CacheTarget | undefined
  /** Only the shard's primary may answer (see `consistency`), and why; undefined = any server. */
  readonly primaryOnly: string | undefined
  /** A write on a readYourWrites route: on success the client's window starts (Set-Cookie). */
  readonly readYourWrites: ReadYourWritesWrite | undefined
  /** On a compressing route: the coding the request negotiated (the response may still not be compressed). */
  readonly compression: Negotiated | undefined
}

/** The request is answered by the proxy itself, with what was decided up to then (for logs). */
export interface Refusal {
  readonly error: ErrorKind
  /** Why, for the log; never sent. */
  readonly detail: string | undefined
  readonly authority?: Authority
  readonly path?: string
  readonly route?: CompiledRoute
  readonly backend?: Backend
  readonly shard?: Shard
}

/** The request is answered with a redirect: no upstream, no cache. */
export interface Redirection {
  readonly redirect: RedirectAnswer
  readonly authority: Authority
  readonly path: string
  /** The route whose redirect it is; undefined for the listener's. */
  readonly route?: CompiledRoute
}

/**
 * `OPTIONS *` (RFC 9110 §9.3.7): a question about the server, not a
 * resource, so the proxy answers it: 200, Content-Length: 0. So is an
 * OPTIONS that may be forwarded no further (`Max-Forwards: 0`, §7.6.2: the
 * proxy is then its final recipient), whatever its target. Without Allow:
 * any method but CONNECT is forwarded, and which ones a resource takes is
 * its origin's to say, so no list would be true of every resource (and an
 * empty Allow would say none is allowed, §10.2.1). Nothing upstream could be
 * sent `*` anyway (undici sends origin-form only).
 */
export interface ServerOptions {
  /** Why: `*` (the target), or `max-forwards` (Max-Forwards: 0). */
  readonly options: '*' | 'max-forwards'
  readonly authority: Authority
  /** `*` or the path, for logs. */
  readonly path: string
}

/** Decide everything about `req` that does not depend on live server state. */
export function plan (state: RuntimeState, req: PlanRequest): Plan | Refusal | Redirection | ServerOptions {
  // parse (a target over the limit is not parsed at all)
  const maxUri = state.config.limits.maxUriBytes
  if (req.url.length > maxUri) return { error: Errors.URI_TOO_LONG, detail: `request target of ${req.url.length} bytes (limit ${maxUri})` }
  // Methods are case-sensitive (RFC 9110 §9.1) and many frameworks upper-case
  // them anyway: an h2 `post` (llhttp refuses one on h1) would pass a route for
  // POST by and be served as POST; a `head` answered without its body would
  // hold an upstream connection waiting for it. Refused, as nginx does.
  if (LOWER_CASE.test(req.method)) return { error: Errors.BAD_REQUEST, detail: `method ${req.method} is not upper-case`, path: sentPath(req.url) }
  const t = parseRequestTarget(req.method, req.url, req.rawHeaders, req.h2Authority, state.config.pathNormalization)
  // The log gets the path as sent (not its query: that may hold what redactQuery would hide).
  if ('error' in t) return { error: t.error, detail: t.detail, path: sentPath(req.url) }
  const authority = t.authority
  // OPTIONS * (the parser gives `*` to no other method): about the proxy itself, before any redirect or route
  if (t.path === '*') return { options: '*', authority, path: '*' }
  const parsed = { authority, path: t.path }
  // Max-Forwards (RFC 9110 §7.6.2), on OPTIONS and TRACE alone: at 0 the proxy is the final recipient
  const forwards = req.method === 'OPTIONS' || req.method === 'TRACE' ? maxForwards(req.rawHeaders) : undefined
  if (forwards === 0) {
    if (req.method === 'OPTIONS') return { options: 'max-forwards', ...parsed }
    // The final recipient SHOULD reflect a TRACE; a proxy that did would echo cookies and credentials (cross-site tracing).
    return { error: Errors.METHOD_NOT_ALLOWED, detail: 'TRACE with Max-Forwards: 0 (this proxy does not reflect requests)', ...parsed }
  }
  // the listener's redirect: every well-formed request, before routing
  const lr = req.listener.redirect
  if (lr !== undefined) {
    return { redirect: { status: lr.status, location: redirectLocation(lr, req.conn.proto, authority, t.target), by: 'listener' }, ...parsed }
  }
  // RFC 9110 §15.5.20: this connection's certificate is not the one for that host.
  if (req.misdirected?.(req.conn.servername, authority.host) === true) return { error: Errors.MISDIRECTED, detail: undefined, ...parsed }

  // route: by fields every server reads alike, and by a path no origin reads
  // as another route's. A field on several lines is read as the first, the
  // last or all joined, server by server: a route (or a rate-limit bucket, a
  // shard) picked by one reading would be served by another.
  const routeFields = state.router.headerNames
  for (let i = 0; i < routeFields.length; i++) {
    const name = routeFields[i]!
    if (countFields(req.rawHeaders, name) > 1) return { error: Errors.BAD_REQUEST, detail: `${name} sent on several lines (routes are chosen by it)`, ...parsed }
  }
  const view = new RequestView(authority.host, t.path, t.target, req.method, req.rawHeaders, req.listener.name)
  const route = state.router.match(view)
  if (route === undefined) return { error: Errors.NO_ROUTE, detail: undefined, ...parsed }
  const lenient = lenientReading(t.path)
  if (lenient !== undefined) {
    const other = state.router.match(new RequestView(authority.host, lenient, t.target, req.method, req.rawHeaders, req.listener.name))
    if (other !== route) {
      return { error: Errors.BAD_REQUEST, detail: `path ${t.path} is ${lenient} to origins that drop ;parameters, decode escaped slashes or merge slashes, and route ${other?.name ?? '(none)'} takes that, not ${route.name}`, ...parsed, route }
    }
  }
  const keyFields = route.keyFields
  for (let i = 0; i < keyFields.length; i++) {
    const name = keyFields[i]!
    if (countFields(req.rawHeaders, name) > 1) return { error: Errors.BAD_REQUEST, detail: `${name} sent on several lines (route ${route.name} keys by it)`, ...parsed, route }
  }
  const rr = route.config.redirect
  if (rr !== undefined) {
    return { redirect: { status: rr.status, location: redirectLocation(rr, req.conn.proto, authority, t.target), by: 'route' }, ...parsed, route }
  }
  const backend = route.backend

  // shard
  const by = backend.selector.shardBy
  // A key parameter sent twice is the first to us and the last to PHP: its shard might not hold what the origin serves.
  if (by !== undefined && 'query' in by && queryCount(t.target, by.query) > 1) {
    return { error: Errors.BAD_REQUEST, detail: `query parameter ${by.query} sent more than once (the shard is chosen by it)`, ...parsed, route, backend }
  }
  // So is a key cookie: Django and Python's SimpleCookie take its last value (every Cookie line and h2 crumb counts).
  if (by !== undefined && 'cookie' in by && cookieCount(view.header('cookie'), by.cookie) > 1) {
    return { error: Errors.BAD_REQUEST, detail: `cookie ${by.cookie} sent more than once (the shard is chosen by it)`, ...parsed, route, backend }
  }
  const key = by === undefined ? undefined : shardKey(by, view)
  if (by !== undefined && key === undefined && by.missing === 'reject') {
    return { error: Errors.SHARD_KEY_MISSING, detail: undefined, ...parsed, route, backend }
  }
  const shard = backend.selector.select(key)

  // sticky
  const sticky = backend.config.sticky
  const stickyId = sticky === undefined ? undefined : cookieValue(view.header('cookie'), sticky.cookie.name)

  // upstream request head (server-independent unless Host is the server's own)
  const head = upstreamRequestHead(req.rawHeaders, authority, backend.config.passHostHeader ? authority.value : '', req.conn,
    route.requestPolicy)
  if ('code' in head) return { error: head, detail: undefined, ...parsed, route, backend, shard }
  // one hop fewer, in a single field
  if (forwards !== undefined) setField(head.headers, 'max-forwards', String(forwards - 1))
  // compression: the coding this request's answer may get; the origin is asked for that one alone
  let compression: Negotiated | undefined
  const cc = route.compression
  if (cc !== undefined) {
    compression = requestCoding(cc, req.method, req.rawHeaders)
    upstreamAcceptEncoding(head.headers, compression.coding)
  }

  // consistency: which servers may answer, and whether the cache may
  const consistency = route.config.consistency
  const ryw = typeof consistency === 'object' ? state.readYourWrites : undefined
  const written = ryw === undefined
    ? undefined
    : ryw.read(cookieValue(view.header('cookie'), ryw.cookieName), req.startWall ?? Date.now())
  const decision = consistencyDecision(consistency, req.method, shard, written === undefined ? undefined : { ryw: ryw!, written })

  // cache decision: keyed by what the origin is told (scheme, host) and what else picked the answer
  // (route, shard); the origin gets the keyed target ("forward what you key").
  const rc = state.cache === undefined || decision.noCache ? undefined : route.cache
  const target = rc === undefined ? t.target : keyedTarget(t.target, rc.key)
  let cache: CacheTarget | undefined
  if (rc !== undefined) {
    const origin = originOf(head.proto, head.authority)
    const primary = cacheKey(head.proto, origin, target)
    const keyed = variantKey(route.variantBases.get(shard)!, rc.key.headers, req.rawHeaders)
    // Only a trusted proxy's overrides reach the origin (headers.ts): they key its answers.
    const variant = req.conn.trusted ? trustedVariant(keyed, req.rawHeaders, TRUSTED_OVERRIDES) : keyed
    cache = compression === undefined
      ? { key: primary, variant, scheme: head.proto, origin }
      : { key: primary, variant: `${variant}\nce:${compression.coding}`, scheme: head.proto, origin, coding: compression.coding }
  }
  // rewrite: the route's, chosen at load; its result is checked to be an origin-form path
  const upstreamPath = route.rewrite === undefined ? target : route.rewrite(target)
  if (upstreamPath === undefined) {
    return { error: Errors.REWRITE_INVALID, detail: `${target} rewritten by route ${route.name}`, ...parsed, route, backend, shard }
  }
  // The client's bytes made the dot-segment (normalisation left none): theirs to be refused, never the origin's to resolve.
  if (upstreamPath !== target && hasDotSegment(upstreamPath)) {
    return { error: Errors.BAD_REQUEST, detail: `route ${route.name} would rewrite ${target} to ${upstreamPath}, a dot-segment`, ...parsed, route, backend, shard }
  }
  return {
    method: req.method,
    authority,
    path: t.path,
    target: t.target,
    route,
    backend,
    shard,
    shardKey: key,
    stickyId,
    head,
    upstreamPath,
    cache,
    primaryOnly: decision.primaryOnly,
    readYourWrites: decision.write,
    compression
  }
}

/** The first Max-Forwards of a request, when it is a well-formed count (RFC 9110 §7.6.2); a malformed one is forwarded as sent. */
export function maxForwards (raw: readonly string[]): number | undefined {
  const v = firstValue(raw, 'max-forwards')?.trim()
  return v !== undefined && /^\d{1,9}$/.test(v) ? Number(v) : undefined
}

/** RFC 9110 §9.2.1: the methods that change nothing on the server. */
const SAFE: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE'])

export interface ConsistencyDecision {
  /** Only the shard's primary may answer, and why; undefined = any server. */
  readonly primaryOnly: string | undefined
  /** The cache may not answer this request (nor store its answer). */
  readonly noCache: boolean
  /** A write on a readYourWrites route: its success starts (or extends) the client's window. */
  readonly write: ReadYourWritesWrite | undefined
}

/** What the Set-Cookie after a successful write is made of (see Session.responseHead). */
export interface ReadYourWritesWrite {
  readonly ryw: ReadYourWrites
  /** The shard's tag, and the client's other unexpired windows (kept in the new cookie). */
  readonly tag: string
  readonly written: ReadonlyMap<string, number>
  readonly window: number
}

const ANY: ConsistencyDecision = Object.freeze({ primaryOnly: undefined, noCache: false, write: undefined })
const STRONG: ConsistencyDecision = Object.freeze({ primaryOnly: 'consistency: strong', noCache: true, write: undefined })

/**
 * Which servers of `shard` may answer, by the route's consistency, and
 * whether the cache may. `strong`: always the primary, never the cache
 * (load checks every shard has a primary). `eventual`: unsafe methods go to
 * the primary when the shard has one (a replica cannot take a write).
 * `readYourWrites`: as eventual, and a read by a client whose cookie
 * (`rw.written`, verified, unexpired) shows a write on this shard goes to
 * the primary, past the cache; a write is marked to start that window.
 */
export function consistencyDecision (mode: Consistency, method: string, shard: Shard,
  rw?: { readonly ryw: ReadYourWrites, readonly written: ReadonlyMap<string, number> }): ConsistencyDecision {
  if (mode === 'strong') return STRONG
  const safe = SAFE.has(method)
  const primary = shard.primary
  if (typeof mode === 'object' && rw !== undefined && primary !== undefined) {
    const tag = rw.ryw.tag(`${primary.backend}/${shard.name}`)
    if (!safe) {
      return { primaryOnly: `consistency: readYourWrites, ${method} is a write`, noCache: false, write: { ryw: rw.ryw, tag, written: rw.written, window: mode.readYourWrites.window } }
    }
    if (rw.written.has(tag)) return { primaryOnly: 'consistency: readYourWrites, this client wrote to this shard within the window', noCache: true, write: undefined }
    return ANY
  }
  if (!safe && primary !== undefined) return { primaryOnly: `consistency: eventual, ${method} is a write`, noCache: false, write: undefined }
  return ANY
}

/**
 * The request to send to `server` for `plan`: every dispatch (first try,
 * retry, dequeue, upgrade, background refresh) builds it here. `headers`
 * replaces the plan's head (a revalidation adds its validators). `socket`:
 * the client's, named in the PROXY header of a server that takes one.
 */
export function upstreamRequest (plan: Plan, server: Server, body: ForwardRequest['body'] = null,
  headers: string[] = plan.head.headers, method: string = plan.method, socket?: Socket): ForwardRequest {
  return {
    path: plan.upstreamPath,
    method,
    headers: plan.backend.config.passHostHeader ? headers : withHost(headers, server.hostHeader),
    body,
    client: server.sendProxyProtocol === undefined || socket === undefined ? undefined : clientEndpoints(socket)
  }
}

/** What routing, shard keys and variant keys read of a request (exported for explain's route account). */
export class RequestView implements RouteInput, ShardKeySource {
  constructor (readonly host: string, readonly path: string, readonly target: string, readonly method: string,
    readonly raw: readonly string[], readonly listener: string | undefined) {}

  header (name: string): string | undefined {
    return requestField(this.raw, name)
  }
}

const LOWER_CASE = /[a-z]/

/** A refused target's path as the client sent it, for the log: up to its query or fragment. */
function sentPath (target: string): string {
  const end = target.search(/[?#]/)
  return end === -1 ? target : target.slice(0, end)
}
