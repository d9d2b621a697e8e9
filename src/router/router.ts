// The route table, compiled once from config (Envoy's config_impl, HAProxy's
// use_backend rules). Precedence, documented in config/example.yaml:
//   1. host class: exact host, then wildcard `*.example.com`, then any host;
//      a class with no matching route falls through to the next;
//   2. within a class: pathRegex routes before pathPrefix routes (NGINX tries
//      its regex locations before settling on the longest prefix), then the
//      longest pathPrefix;
//   3. then the route with more conditions (listeners + methods + headers);
//   4. then file order.
// A route's cheap conditions (listener, method, headers, the regex's literal
// prefix) are checked before its regex runs; a table without pathRegex runs
// no regex code at all.
// Pure: no I/O, nothing mutable after construction. `explain` reports, route
// by route, why match() answers what it does, from the same checks.
import type { RouteConfig } from '../config/schema.js'
import { compilePathRegex, type PathRegex } from './regex.js'

/** What matching needs from a request. */
export interface RouteInput {
  /** Lower-cased host without port. */
  readonly host: string
  /** Path without query. */
  readonly path: string
  readonly method: string
  /**
   * The listener the request arrived on; routes with `match.listeners` take
   * only their listeners' requests. Absent: not known (an admin purge names
   * a URL, not a connection), so listener conditions are not checked.
   */
  readonly listener?: string | undefined
  header (name: string): string | undefined
}

export interface Router<R> {
  match (req: RouteInput): R | undefined
  /** Every route in precedence order per host class, for `switchyard check`. */
  readonly table: readonly R[]
  /** The (lower-case) header names some route's match reads. */
  readonly headerNames: readonly string[]
  /** What `match(req)` returns and why, route by route (`switchyard explain`); allocates. */
  explain (req: RouteInput): RouteAccount<R>
}

export interface RouteAccount<R> {
  /** What match() returns. */
  readonly route: R | undefined
  /** Every route of `table`, in its order. */
  readonly routes: readonly RouteVerdict<R>[]
}

export interface RouteVerdict<R> {
  readonly route: R
  readonly hostClass: 'exact' | 'wildcard' | 'any'
  /** match: the one; miss: its host class was not tried or a condition failed; unreached: a route before it matched. */
  readonly verdict: 'match' | 'miss' | 'unreached'
  /** Why it missed, one line per failed condition; on a pathRegex match, what the groups caught. */
  readonly reasons: readonly string[]
}

interface Entry<R> {
  readonly route: R
  readonly cfg: RouteConfig
  readonly methods: ReadonlySet<string> | undefined
  readonly listeners: ReadonlySet<string> | undefined
  readonly headers: readonly (readonly [string, string])[]
  /** The compiled match.pathRegex; undefined for a prefix route. */
  readonly regex: PathRegex | undefined
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
      listeners: cfg.match.listeners.length > 0 ? new Set(cfg.match.listeners) : undefined,
      headers: Object.entries(cfg.match.headers),
      regex: cfg.match.pathRegex === undefined ? undefined : compiled(cfg.match.pathRegex, route)
    }
    const host = cfg.match.host
    if (host === undefined) anyHost.push(entry)
    else if (host.startsWith('*.')) push(wildcard, host.slice(2), entry)
    else push(exact, host, entry)
  }
  for (const list of exact.values()) list.sort(byPrecedence)
  for (const list of wildcard.values()) list.sort(byPrecedence)
  anyHost.sort(byPrecedence)

  const entries: Entry<R>[] = []
  for (const list of [...exact.values(), ...wildcard.values(), anyHost]) for (const e of list) entries.push(e)

  /** The wildcard class for `host`: the routes for `*.` + everything after its first label. */
  const wildcardFor = (host: string): Entry<R>[] | undefined => {
    if (wildcard.size === 0) return undefined
    const dot = host.indexOf('.')
    return dot > 0 ? wildcard.get(host.slice(dot + 1)) : undefined
  }

  return {
    table: entries.map((e) => e.route),
    headerNames: [...new Set(entries.flatMap((e) => e.headers.map(([name]) => name)))],
    match (req: RouteInput): R | undefined {
      const byHost = exact.get(req.host)
      if (byHost !== undefined) {
        const r = firstMatch(byHost, req)
        if (r !== undefined) return r
      }
      const list = wildcardFor(req.host)
      if (list !== undefined) {
        const r = firstMatch(list, req)
        if (r !== undefined) return r
      }
      return firstMatch(anyHost, req)
    },
    explain (req: RouteInput): RouteAccount<R> {
      // match()'s classes in match()'s order, each route checked by accepts() as firstMatch checks it.
      const verdicts = new Map<Entry<R>, RouteVerdict<R>>()
      let matched: Entry<R> | undefined
      for (const list of [exact.get(req.host), wildcardFor(req.host), anyHost]) {
        if (list === undefined) continue
        for (const e of list) {
          if (matched !== undefined) {
            verdicts.set(e, verdict(e, 'unreached', ['not reached: an earlier route matched']))
            continue
          }
          const why: string[] = []
          if (accepts(e, req, why)) {
            matched = e
            if (e.regex !== undefined) {
              const caught = e.regex.describeCaptures(req.path)
              why.push(`pathRegex ${e.regex.source} matched the whole path ${req.path}${caught === '' ? '' : `, ${caught}`}`)
            }
          }
          verdicts.set(e, verdict(e, matched === e ? 'match' : 'miss', why))
        }
      }
      return {
        route: matched?.route,
        routes: entries.map((e) => verdicts.get(e) ?? verdict(e, 'miss', [otherHost(e.cfg.match.host!, req.host)]))
      }
    }
  }
}

function hostClass (host: string | undefined): RouteVerdict<unknown>['hostClass'] {
  return host === undefined ? 'any' : host.startsWith('*.') ? 'wildcard' : 'exact'
}

function verdict<R> (e: Entry<R>, v: RouteVerdict<R>['verdict'], reasons: readonly string[]): RouteVerdict<R> {
  return { route: e.route, hostClass: hostClass(e.cfg.match.host), verdict: v, reasons }
}

/** Why a route of another host class than `host`'s was not tried. */
function otherHost (pattern: string, host: string): string {
  return pattern.startsWith('*.') ? `host ${host} is not one label + .${pattern.slice(2)}` : `host ${host} is not ${pattern}`
}

function push<R> (map: Map<string, Entry<R>[]>, key: string, e: Entry<R>): void {
  const list = map.get(key)
  if (list === undefined) map.set(key, [e])
  else list.push(e)
}

/** The loader has checked the pattern; a route built without it fails here, at build, not per request. */
function compiled (source: string, route: { readonly config: RouteConfig }): PathRegex {
  const re = compilePathRegex(source)
  if ('error' in re) throw new Error(`route ${route.config.name}: match.pathRegex: ${re.error}`)
  return re
}

function byPrecedence<R> (a: Entry<R>, b: Entry<R>): number {
  return ((a.regex === undefined ? 1 : 0) - (b.regex === undefined ? 1 : 0)) ||
    (b.cfg.match.pathPrefix.length - a.cfg.match.pathPrefix.length) ||
    (conditions(b) - conditions(a)) ||
    (a.cfg.index - b.cfg.index)
}

function conditions<R> (e: Entry<R>): number {
  return (e.listeners === undefined ? 0 : 1) + (e.methods === undefined ? 0 : 1) + e.headers.length
}

function firstMatch<R> (list: readonly Entry<R>[], req: RouteInput): R | undefined {
  for (let i = 0; i < list.length; i++) {
    const e = list[i]!
    if (accepts(e, req, undefined)) return e.route
  }
  return undefined
}

/**
 * Does the route take this request (its host class already chosen): listener,
 * path prefix, methods, headers, and last (the only costly one) the path
 * regex. With `why` (explain) every failed condition is written there instead
 * of stopping at the first.
 */
function accepts<R> (e: Entry<R>, req: RouteInput, why: string[] | undefined): boolean {
  let ok = true
  const listeners = e.listeners
  if (listeners !== undefined && req.listener !== undefined && !listeners.has(req.listener)) {
    if (why === undefined) return false
    why.push(req.listener === '' ? `arrives on no listener; the route takes ${[...listeners].join(', ')}` : `listener ${req.listener} is not in ${[...listeners].join(', ')}`)
    ok = false
  }
  const prefix = e.cfg.match.pathPrefix
  if (!req.path.startsWith(prefix)) {
    if (why === undefined) return false
    why.push(`path ${req.path} does not start with ${prefix}`)
    ok = false
  }
  if (e.methods !== undefined && !e.methods.has(req.method)) {
    if (why === undefined) return false
    why.push(`method ${req.method} is not in ${[...e.methods].join(', ')}`)
    ok = false
  }
  const headers = e.headers
  for (let i = 0; i < headers.length; i++) {
    const [name, value] = headers[i]!
    const got = req.header(name)
    if (got === value) continue
    if (why === undefined) return false
    why.push(got === undefined ? `header ${name} is missing, wants "${value}"` : `header ${name} is "${got}", not "${value}"`)
    ok = false
  }
  const regex = e.regex
  if (regex !== undefined && !regex.test(req.path)) {
    if (why === undefined) return false
    why.push(`path ${req.path} does not match pathRegex ${regex.source} (the whole path)`)
    ok = false
  }
  return ok
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
