// Compile config routes into what the pipeline needs per match: the backend
// object, header policies and rewrite, all resolved once at load.
import type { StoreOptions } from '../cache/policy.js'
import type { Config, RouteCacheConfig, RouteConfig } from '../config/schema.js'
import type { Backend } from '../upstream/backend.js'
import { createRouter, type Router } from '../router/router.js'
import { storeOptions } from './cache-phase.js'
import { compileHeaderOps, type CompiledHeaderOps, type UpstreamHeaderPolicy } from './headers.js'

export interface CompiledRoute {
  readonly name: string
  readonly config: RouteConfig
  readonly backend: Backend
  readonly requestPolicy: UpstreamHeaderPolicy
  readonly responseOps: CompiledHeaderOps
  readonly stripPrefix: string | undefined
  readonly addPrefix: string | undefined
  /** Set when this route caches (top-level cache exists and the route did not opt out). */
  readonly cache: RouteCacheConfig | undefined
  readonly cacheOptions: StoreOptions | undefined
}

export function compileRoutes (config: Config, backends: ReadonlyMap<string, Backend>): Router<CompiledRoute> {
  const routes = config.routes.map((r): CompiledRoute => {
    const backend = backends.get(r.backend)
    if (backend === undefined) throw new Error(`route ${r.name}: unknown backend ${r.backend}`) // the loader checks this
    return Object.freeze({
      name: r.name,
      config: r,
      backend,
      requestPolicy: Object.freeze({
        forwarding: config.forwarding,
        limits: config.limits,
        ops: compileHeaderOps(r.requestHeaders)
      }),
      responseOps: compileHeaderOps(r.responseHeaders),
      stripPrefix: r.rewrite.stripPrefix,
      addPrefix: r.rewrite.addPrefix,
      cache: config.cache !== undefined && r.cache?.enabled === true ? r.cache : undefined,
      cacheOptions: config.cache !== undefined && r.cache?.enabled === true ? storeOptions(config.cache, r.cache) : undefined
    })
  })
  return createRouter(routes)
}
