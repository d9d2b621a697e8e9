// The one place a request's handling is decided (Pingora's request_filter →
// upstream_peer, Envoy's route → cluster → host): parse → route → shard →
// sticky → upstream head → cache decision, pure and synchronous over the
// RuntimeState. The pipeline, the WebSocket upgrade path, background
// revalidation and `explain` all call plan() and upstreamRequest(), so they
// cannot disagree about any of it. Only the replica is left to pick: that
// reads live load and health, at dispatch.
import { cacheKey, keyedTarget, variantKey, type CacheTarget } from '../cache/key.js'
import { Errors, type ErrorKind } from '../errors.js'
import type { RouteInput } from '../router/router.js'
import { rewritePath } from '../router/router.js'
import type { Backend } from '../upstream/backend.js'
import type { ForwardRequest } from '../upstream/pool.js'
import type { Server } from '../upstream/server.js'
import { cookieValue, shardKey, type Shard, type ShardKeySource } from '../upstream/shard.js'
import { originOf, type Authority } from '../authority.js'
import { requestField } from '../fields.js'
import { upstreamRequestHead, withHost, type ForwardContext, type UpstreamHead } from './headers.js'
import { parseRequestTarget } from './request-target.js'
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
  /** The listener it arrived on (routes may be bound to listeners); '' = none. */
  readonly listener: { readonly name: string }
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

/** Decide everything about `req` that does not depend on live server state. */
export function plan (state: RuntimeState, req: PlanRequest): Plan | Refusal {
  // parse
  const t = parseRequestTarget(req.method, req.url, req.rawHeaders, req.h2Authority, state.config.pathNormalization)
  if ('error' in t) return { error: t.error, detail: t.detail }
  const authority = t.authority
  const parsed = { authority, path: t.path }
  // RFC 9110 §15.5.20: this connection's certificate is not the one for that host.
  if (req.misdirected?.(req.conn.servername, authority.host) === true) return { error: Errors.MISDIRECTED, detail: undefined, ...parsed }

  // route
  const view = new RequestView(authority.host, t.path, t.target, req.method, req.rawHeaders, req.listener.name)
  const route = state.router.match(view)
  if (route === undefined) return { error: Errors.NO_ROUTE, detail: undefined, ...parsed }
  const backend = route.backend

  // shard
  const by = backend.selector.shardBy
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

  // consistency: which servers may answer, and whether the cache may
  const primaryOnly = consistencyDecision(route.config.consistency, req.method, shard)

  // cache decision: keyed by what the origin is told (scheme, host) and what else picked the answer
  // (route, shard); the origin gets the keyed target ("forward what you key"). strong never caches.
  const rc = state.cache === undefined || route.config.consistency === 'strong' ? undefined : route.cache
  const target = rc === undefined ? t.target : keyedTarget(t.target, rc.key)
  let cache: CacheTarget | undefined
  if (rc !== undefined) {
    const origin = originOf(head.proto, head.authority)
    const primary = cacheKey(head.proto, origin, target)
    const variant = variantKey(route.variantBases.get(shard)!, rc.key.headers, req.rawHeaders)
    cache = { key: primary, variant, scheme: head.proto, origin }
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
    upstreamPath: route.stripPrefix === undefined && route.addPrefix === undefined
      ? target
      : rewritePath(target, route.stripPrefix, route.addPrefix),
    cache,
    primaryOnly
  }
}

/** RFC 9110 §9.2.1: the methods that change nothing on the server. */
const SAFE: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE'])

/**
 * Which servers of `shard` may answer, by the route's consistency: a reason
 * when only the primary may, undefined when any may. `strong`: always the
 * primary (load checks every shard has one). `eventual`: unsafe methods go
 * to the primary when the shard has one (a replica cannot take a write).
 */
export function consistencyDecision (mode: 'eventual' | 'strong', method: string, shard: Shard): string | undefined {
  if (mode === 'strong') return 'consistency: strong'
  if (!SAFE.has(method) && shard.primary !== undefined) return `consistency: eventual, ${method} is a write`
  return undefined
}

/**
 * The request to send to `server` for `plan`: every dispatch (first try,
 * retry, dequeue, upgrade, background refresh) builds it here. `headers`
 * replaces the plan's head (a revalidation adds its validators).
 */
export function upstreamRequest (plan: Plan, server: Server, body: ForwardRequest['body'] = null,
  headers: string[] = plan.head.headers, method: string = plan.method): ForwardRequest {
  return {
    path: plan.upstreamPath,
    method,
    headers: plan.backend.config.passHostHeader ? headers : withHost(headers, server.hostHeader),
    body
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
