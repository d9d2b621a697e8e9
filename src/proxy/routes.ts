// Compile config routes into what the pipeline needs per match: the backend
// object, header policies, the response shaper, rewrite and rate limit, all
// resolved once at load.
import type { InterimHead, RawFields } from '../fields.js'
import { storeOptions, type StoreOptions } from '../cache/policy.js'
import type { Config, RouteCacheConfig, RouteConfig } from '../config/schema.js'
import type { Backend } from '../upstream/backend.js'
import type { Shard } from '../upstream/shard.js'
import { variantBase } from '../cache/key.js'
import type { ResponseShaper } from '../upstream/pool.js'
import { createRouter, rewritePath, type Router } from '../router/router.js'
import { applyRegexRewrite, compilePathRegex, parseReplacement, type RegexRewrite } from '../router/regex.js'
import { RouteLimit } from '../ratelimit/limiter.js'
import type { RateLimitStores } from '../ratelimit/store.js'
import { compileAccess, type RouteAccess } from './access.js'
import { compileCompression, type CompiledCompression } from './compression/decide.js'
import { compileHeaderOps, downstreamResponseHeaders, type UpstreamHeaderPolicy } from './headers.js'

export interface CompiledRoute {
  readonly name: string
  readonly config: RouteConfig
  readonly backend: Backend
  readonly requestPolicy: UpstreamHeaderPolicy
  /** Upstream response head → client fields (hop-by-hop out, Via, route ops), or the malformed field's name. */
  readonly shapeResponse: ResponseShaper
  readonly stripPrefix: string | undefined
  readonly addPrefix: string | undefined
  /** The compiled rewrite.regex; undefined when the route has none. */
  readonly rewriteRegex: RegexRewrite | undefined
  /**
   * The route's rewrite of the target (path + query) sent upstream, chosen
   * once here; undefined when it has none (the plan then forwards the target
   * as it is). Returns undefined for a result that is not an origin-form path.
   */
  readonly rewrite: ((target: string) => string | undefined) | undefined
  /** Set when this route caches (top-level cache exists and the route did not opt out). */
  readonly cache: RouteCacheConfig | undefined
  readonly cacheOptions: StoreOptions | undefined
  /** The start of this route's variant keys, per shard of its backend (see cache/key.ts). */
  readonly variantBases: ReadonlyMap<Shard, string>
  /** Set when the route has a rate limit. */
  readonly rateLimit: RouteLimit | undefined
  /** Header fields its rate-limit bucket or its backend's shard is read from (plan.ts refuses one sent on differing lines). */
  readonly keyFields: readonly string[]
  /** allow/deny and basicAuth; undefined when the route has none. */
  readonly access: RouteAccess | undefined
  /** The route's `earlyHints` as the 103 they are sent in; undefined when none. */
  readonly earlyHints: InterimHead | undefined
  /** The route's compression; undefined when it has none (the one check on the hot path). */
  readonly compression: CompiledCompression | undefined
}

/** `limits`: the stores of the process; required when a route has a rate limit. */
export function compileRoutes (config: Config, backends: ReadonlyMap<string, Backend>,
  limits?: RateLimitStores): Router<CompiledRoute> {
  // Responses are marked with the protocol they came over: `1.1 <proxyName>`, or `2 <proxyName>` from h2 backends.
  const via1 = config.forwarding.via ? `1.1 ${config.proxyName}` : undefined
  const via2 = config.forwarding.via ? `2 ${config.proxyName}` : undefined
  const routes = config.routes.map((r): CompiledRoute => {
    const backend = backends.get(r.backend)
    if (backend === undefined) throw new Error(`route ${r.name}: unknown backend ${r.backend}`) // the loader checks this
    const responseOps = compileHeaderOps(r.responseHeaders)
    const caches = config.cache !== undefined && r.cache?.enabled === true
    const rewriteRegex = r.rewrite.regex === undefined ? undefined : compileRewrite(r)
    const { stripPrefix, addPrefix } = r.rewrite
    const h2 = backend.config.protocol !== 'http1'
    const via = h2 ? via2 : via1
    return Object.freeze({
      name: r.name,
      config: r,
      backend,
      requestPolicy: Object.freeze({
        forwarding: config.forwarding,
        limits: config.limits,
        // The proxy consumed the credentials: they go no further unless asked (basicAuth.forward).
        ops: compileHeaderOps(r.basicAuth === undefined || r.basicAuth.forward
          ? r.requestHeaders
          : { ...r.requestHeaders, remove: [...r.requestHeaders.remove, 'authorization'] }),
        ...(h2 ? { teTrailers: true } : {})
      }),
      shapeResponse: (status: number, raw: RawFields) => downstreamResponseHeaders(raw, via, responseOps, status),
      stripPrefix,
      addPrefix,
      rewriteRegex,
      rewrite: rewriteRegex !== undefined
        ? (target: string) => applyRegexRewrite(rewriteRegex, target)
        : stripPrefix !== undefined || addPrefix !== undefined
          ? (target: string) => rewritePath(target, stripPrefix, addPrefix)
          : undefined,
      cache: caches ? r.cache : undefined,
      cacheOptions: caches ? storeOptions(config.cache!, r.cache!) : undefined,
      // The shard picks the answer only when the backend has several.
      variantBases: new Map(backend.shards.map((s) => [s, variantBase(r.name, backend.shards.length > 1 ? s.name : '')])),
      rateLimit: r.rateLimit === undefined ? undefined : new RouteLimit(r.name, r.rateLimit, limits!),
      keyFields: keyFields(r, backend),
      access: compileAccess(r),
      earlyHints: r.earlyHints.length === 0 ? undefined : Object.freeze({ link: [...r.earlyHints] }),
      compression: r.compression === undefined ? undefined : compileCompression(r.compression)
    })
  })
  return createRouter(routes)
}

function keyFields (r: RouteConfig, backend: Backend): readonly string[] {
  const out: string[] = []
  const limitBy = r.rateLimit?.by
  if (typeof limitBy === 'object' && 'header' in limitBy) out.push(limitBy.header)
  const shardBy = backend.selector.shardBy
  if (shardBy !== undefined && 'header' in shardBy && !out.includes(shardBy.header)) out.push(shardBy.header)
  return Object.freeze(out)
}

/** The route's rewrite.regex, compiled; the loader has checked it, so a failure here is a route built without it. */
function compileRewrite (r: RouteConfig): RegexRewrite {
  const { pattern, replacement } = r.rewrite.regex!
  const re = compilePathRegex(pattern)
  if ('error' in re) throw new Error(`route ${r.name}: rewrite.regex.pattern: ${re.error}`)
  const parts = parseReplacement(replacement, re)
  if ('error' in parts) throw new Error(`route ${r.name}: rewrite.regex.replacement: ${parts.error}`)
  return Object.freeze({ pattern: re, replacement: parts, replacementSource: replacement })
}
