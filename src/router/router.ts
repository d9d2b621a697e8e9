// The route table, compiled once from config (Envoy's config_impl, HAProxy's
// use_backend rules). Precedence, documented in config/example.yaml:
//   1. host class: exact host, then wildcard `*.example.com`, then any host;
//      a class with no matching route falls through to the next;
//   2. within a class: longest pathPrefix;
//   3. then the route with more conditions (methods + headers);
//   4. then file order.
// Pure: no I/O, nothing mutable after construction.
import type { RouteConfig } from '../config/schema.js'

/** What matching needs from a request. */
export interface RouteInput {
  /** Lower-cased host without port. */
  readonly host: string
  /** Path without query. */
  readonly path: string
  readonly method: string
  header (name: string): string | undefined
}

export interface Router<R> {
  match (req: RouteInput): R | undefined
  /** Every route in precedence order per host class, for `switchyard check`. */
  readonly table: readonly R[]
}

interface Entry<R> {
  readonly route: R
  readonly cfg: RouteConfig
  readonly methods: ReadonlySet<string> | undefined
  readonly headers: readonly (readonly [string, string])[]
}

/**
 * Build a router over compiled route objects `R` (each carrying its config),
 * so the pipeline gets back whatever it attached at load (backend, header ops…).
 */
export function createRouter<R extends { readonly config: RouteConfig }> (routes: readonly R[]): Router<R> {
  const exact = new Map<string, Entry<R>[]>()
  const wildcard = new Map<string, Entry<R>[]>() // key: suffix after `*.`
  const anyHost: Entry<R>[] = []
  for (const route of routes) {
    const cfg = route.config
    const entry: Entry<R> = {
      route,
      cfg,
      methods: cfg.match.methods.length > 0 ? new Set(cfg.match.methods) : undefined,
      headers: Object.entries(cfg.match.headers)
    }
    const host = cfg.match.host
    if (host === undefined) anyHost.push(entry)
    else if (host.startsWith('*.')) push(wildcard, host.slice(2), entry)
    else push(exact, host, entry)
  }
  for (const list of exact.values()) list.sort(byPrecedence)
  for (const list of wildcard.values()) list.sort(byPrecedence)
  anyHost.sort(byPrecedence)

  const table: R[] = []
  for (const list of [...exact.values(), ...wildcard.values(), anyHost]) for (const e of list) table.push(e.route)

  return {
    table,
    match (req: RouteInput): R | undefined {
      const byHost = exact.get(req.host)
      if (byHost !== undefined) {
        const r = firstMatch(byHost, req)
        if (r !== undefined) return r
      }
      if (wildcard.size > 0) {
        const dot = req.host.indexOf('.')
        if (dot > 0) {
          const list = wildcard.get(req.host.slice(dot + 1))
          if (list !== undefined) {
            const r = firstMatch(list, req)
            if (r !== undefined) return r
          }
        }
      }
      return firstMatch(anyHost, req)
    }
  }
}

function push<R> (map: Map<string, Entry<R>[]>, key: string, e: Entry<R>): void {
  const list = map.get(key)
  if (list === undefined) map.set(key, [e])
  else list.push(e)
}

function byPrecedence<R> (a: Entry<R>, b: Entry<R>): number {
  return (b.cfg.match.pathPrefix.length - a.cfg.match.pathPrefix.length) ||
    (conditions(b) - conditions(a)) ||
    (a.cfg.index - b.cfg.index)
}

function conditions<R> (e: Entry<R>): number {
  return (e.methods === undefined ? 0 : 1) + e.headers.length
}

function firstMatch<R> (list: readonly Entry<R>[], req: RouteInput): R | undefined {
  for (let i = 0; i < list.length; i++) {
    const e = list[i]!
    if (!req.path.startsWith(e.cfg.match.pathPrefix)) continue
    if (e.methods !== undefined && !e.methods.has(req.method)) continue
    if (e.headers.length > 0 && !headersMatch(e.headers, req)) continue
    return e.route
  }
  return undefined
}

function headersMatch (headers: readonly (readonly [string, string])[], req: RouteInput): boolean {
  for (let i = 0; i < headers.length; i++) {
    const [name, value] = headers[i]!
    if (req.header(name) !== value) return false
  }
  return true
}

/** Apply a route's rewrite to a path that may carry a query. */
export function rewritePath (path: string, stripPrefix: string | undefined, addPrefix: string | undefined): string {
  let p = path
  if (stripPrefix !== undefined && p.startsWith(stripPrefix)) {
    p = p.slice(stripPrefix.length)
    if (p === '' || p.charCodeAt(0) !== 47) p = `/${p}` // keep origin-form: `/v1?x` → `/?x`
  }
  if (addPrefix !== undefined) p = addPrefix.endsWith('/') && p.startsWith('/') ? addPrefix + p.slice(1) : addPrefix + p
  return p
}
