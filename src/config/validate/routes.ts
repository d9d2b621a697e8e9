// The `routes` section: each route's match, backend reference, rewrite,
// header operations, cache settings and rate limit, and a warning for each
// route an earlier one shadows.

import { isMap } from 'yaml'
import { DEFAULTS } from '../schema.js'
import type {
  CacheKeyConfig, Consistency, HeaderOpsConfig, RateLimitBy, RateLimitConfig, RegexRewriteConfig, RewriteConfig, RouteCacheConfig, RouteConfig, RouteMatchConfig
} from '../schema.js'
import { type Field, type MapView, type Reader, describe } from '../reader.js'
import { shadowedRoutes } from '../shadow.js'
import { didYouMean } from '../suggest.js'
import { isLinkValue } from '../../fields.js'
import { HTTP_METHODS, isHttpMethod, HEADER_VALUE_RULE, isSafeHeaderValue, isToken, normalizeHostPattern } from '../forms.js'
import { ACCESS_KEYS, routeAccess } from './access.js'
import { readRedirect } from './redirect.js'
import { compilePathRegex, parseReplacement } from '../../router/regex.js'
import { hasDotSegment } from '../../proxy/path.js'
import { readCompression } from './compression.js'
import { type Context, Unique, cookieName, duration, entryName, headerName, opt, optChecked, toggle } from './common.js'

const KEYS = {
  route: ['name', 'match', 'backend', 'rewrite', 'requestHeaders', 'responseHeaders', 'cache', 'rateLimit', 'earlyHints', 'consistency', 'redirect', 'compression', ...ACCESS_KEYS],
  match: ['host', 'pathPrefix', 'pathRegex', 'methods', 'listeners', 'headers'],
  rewrite: ['stripPrefix', 'addPrefix', 'regex'],
  rewriteRegex: ['pattern', 'replacement'],
  headerOps: ['set', 'remove'],
  routeCache: ['enabled', 'key', 'allowSetCookie', 'defaultTtl'],
  cacheKey: ['query', 'ignoreParams', 'headers'],
  rateLimit: ['average', 'period', 'burst', 'by', 'store'],
  rateLimitBy: ['header', 'cookie']
} as const

const CACHE_QUERY = ['keep', 'sort', 'ignore'] as const
const RATE_LIMIT_STORES = ['local', 'redis'] as const
const RATE_LIMIT_BY = 'clientIp, { header: NAME } or { cookie: NAME }'

/**
 * Fields a route may not set or remove: they frame the message or belong to
 * one hop (RFC 9110 §7.6.1, RFC 9113 §8.2.2), and the proxy writes them
 * itself. node:http2 refuses to send any of the connection-specific ones.
 */
const FRAMING_FIELDS: ReadonlySet<string> = new Set([
  'content-length', 'transfer-encoding', 'connection', 'te', 'upgrade', 'keep-alive', 'proxy-connection', 'http2-settings', 'host'
])

function framingMessage (name: string): string {
  if (name === 'host') return '`host` is not set by header operations: use the backend\'s `passHostHeader` (false sends the server\'s own host)'
  return `\`${name}\` frames the message or belongs to one connection; the proxy writes it itself and a route may not set or remove it`
}

/** Whether the top-level `cache` turns caching on, and where it was written. */
export interface TopCache {
  /** Written and not `false` (even with mistakes inside: those are reported once, at the block). */
  readonly on: boolean
  readonly field: Field | undefined
}

/** What routes refer to outside their own section. */
export interface RouteContext {
  /** Every backend name written (a route must name one). */
  readonly backends: readonly string[]
  /** Every listener name written; undefined when the section itself is broken (reported there, not at each route). */
  readonly listeners: readonly string[] | undefined
  /** Whether routes have cache settings. */
  readonly top: TopCache
  /** Whether a top-level `redis` is written (`rateLimit.store: redis` needs it). */
  readonly redis: boolean
  /** Per backend, its shards that have no primary (`consistency: strong` needs one in each). */
  readonly shardsWithoutPrimary: ReadonlyMap<string, readonly string[]>
}

/** The `routes` list of the top-level mapping. */
export function readRoutes (ctx: Context, root: MapView, rc: RouteContext): readonly RouteConfig[] {
  return opt<readonly RouteConfig[]>(root, 'routes', (f) => routes(ctx.r, f, rc), DEFAULTS.routes)
}

function routes (r: Reader, f: Field, rc: RouteContext): RouteConfig[] | undefined {
  const items = r.seq(f)
  if (items === undefined) return undefined
  const names = new Unique(r, 'route name')
  const out: RouteConfig[] = []
  const issuesBefore = r.issues.length
  items.forEach((item, i) => {
    const one = route(r, item, i, rc)
    if (one === undefined) return
    out.push(one.config)
    if (one.config.name !== '') names.add(one.config.name, one.nameField ?? item, item.path)
  })
  // A route with a mistake was read with defaults filled in: no guesses about it.
  if (r.issues.length === issuesBefore) unreachableRoutes(r, out, items)
  return out
}

/** Warns about each route an earlier one takes every request from (see shadow.ts). */
function unreachableRoutes (r: Reader, routes: readonly RouteConfig[], items: readonly Field[]): void {
  const line = (route: RouteConfig): number => r.position(items[route.index]?.at).line
  for (const { route, by } of shadowedRoutes(routes)) {
    const path = route.match.pathRegex === undefined ? 'pathPrefix' : 'pathRegex'
    const takers = by.map((b) => `\`${b.name}\` (line ${line(b)})`).join(', ')
    const why = route.match.methods.length === 0
      ? `has the same host, ${path} and headers and comes first`
      : by.length === 1
        ? `has the same host, ${path} and headers, comes first, and lists every method of this one`
        : `have the same host, ${path} and headers, come first, and together list every method of this one`
    r.warn(items[route.index]?.path ?? `routes[${route.index}]`, items[route.index]?.at,
      `route \`${route.name}\` (line ${line(route)}) can never match: route${by.length === 1 ? '' : 's'} ${takers} ${why}`)
  }
}

function route (r: Reader, f: Field, index: number, rc: RouteContext): { config: RouteConfig, nameField?: Field } | undefined {
  const backends = rc.backends
  const m = r.map(f, KEYS.route)
  if (m === undefined) return undefined
  const d = DEFAULTS.route
  const nameField = m.get('name')
  const name = nameField === undefined ? `route-${index}` : entryName(r, nameField) ?? ''
  const match = opt<RouteMatchConfig>(m, 'match', (v) => routeMatch(r, v, rc.listeners), d.match)
  const backendField = m.require('backend')
  const backend = backendField === undefined ? '' : r.text(backendField) ?? ''
  if (backendField !== undefined && backend !== '' && !backends.includes(backend)) {
    const known = backends.length === 0 ? 'no backends are defined' : `known backends: ${backends.join(', ')}`
    r.report(backendField.path, backendField.at, `unknown backend \`${backend}\` (${known})${didYouMean(backend, backends)}`)
  }
  // A pathRegex written but refused is reported there: not again as a rewrite without a pattern.
  const matchNode = m.get('match')?.node
  const regexWritten = isMap(matchNode) && matchNode.has('pathRegex')
  const rewrite = opt<RewriteConfig>(m, 'rewrite', (v) => routeRewrite(r, v, match.pathRegex, regexWritten), d.rewrite)
  const requestHeaders = opt<HeaderOpsConfig>(m, 'requestHeaders', (v) => headerOps(r, v, d.requestHeaders), d.requestHeaders)
  const responseHeaders = opt<HeaderOpsConfig>(m, 'responseHeaders', (v) => headerOps(r, v, d.responseHeaders), d.responseHeaders)
  const cache = routeCacheOf(r, m, rc.top)
  const limitField = m.get('rateLimit')
  const limit = limitField === undefined ? undefined : rateLimit(r, limitField, rc.redis)
  const earlyHints = opt<readonly string[]>(m, 'earlyHints', (v) => linkValues(r, v), d.earlyHints)
  const consistency = opt<Consistency>(m, 'consistency', (v) => routeConsistency(r, v, backend, rc), d.consistency)
  const redirectField = m.get('redirect')
  const redirect = redirectField === undefined ? undefined : readRedirect(r, redirectField)
  const compressionField = m.get('compression')
  const compression = compressionField === undefined ? undefined : readCompression(r, compressionField)
  if (redirect !== undefined) {
    // A redirecting route answers before anything else of it runs (access rules still apply first).
    const ignored = IGNORED_BY_REDIRECT.filter((k) => m.has(k))
    if (ignored.length > 0) {
      r.warn(redirectField!.path, redirectField!.at, `route \`${name}\` redirects every request, so its ${ignored.map((k) => `\`${k}\``).join(', ')} ` +
        `never ${ignored.length === 1 ? 'applies' : 'apply'} (and its backend is never contacted)`)
    }
  }
  return {
    config: {
      name, index, match, backend, rewrite, requestHeaders, responseHeaders, earlyHints, consistency, ...routeAccess(r, m),
      ...(cache === undefined ? {} : { cache }),
      ...(limit === undefined ? {} : { rateLimit: limit }),
      ...(redirect === undefined ? {} : { redirect }),
      ...(compression === undefined ? {} : { compression })
    },
    ...(nameField === undefined ? {} : { nameField })
  }
}

/** Route options a redirect makes pointless: nothing is forwarded, cached or answered by the backend. */
const IGNORED_BY_REDIRECT = ['rewrite', 'requestHeaders', 'responseHeaders', 'cache', 'rateLimit', 'earlyHints', 'consistency', 'compression'] as const

/**
 * `consistency`: eventual | strong | { readYourWrites: { window } }; strong
 * and readYourWrites need a primary in every shard of the route's backend.
 */
function routeConsistency (r: Reader, f: Field, backend: string, rc: RouteContext): Consistency | undefined {
  let mode: Consistency | undefined
  if (isMap(f.node)) {
    const m = r.map(f, ['readYourWrites'])
    const rywField = m?.require('readYourWrites')
    const ryw = rywField === undefined ? undefined : r.map(rywField, ['window'])
    const windowField = ryw?.require('window')
    const window = windowField === undefined ? undefined : duration(r, windowField, 1)
    if (window !== undefined) {
      if (window > MAX_RYW_WINDOW) return r.expected(windowField!, 'a window of at most 1h (a client reads from the primary for that long)')
      mode = { readYourWrites: { window } }
    }
  } else {
    mode = r.oneOf(f, CONSISTENCY)
  }
  if (mode === undefined) return undefined
  const missing = rc.shardsWithoutPrimary.get(backend) ?? []
  if (mode !== 'eventual' && missing.length > 0) {
    const which = missing.length === 1 ? `shard \`${missing[0]!}\`` : `shards ${missing.map((s) => `\`${s}\``).join(', ')}`
    const what = mode === 'strong' ? 'consistency: strong sends every request' : 'consistency: readYourWrites sends a writer\'s reads'
    r.report(f.path, f.at, `${what} to its shard's primary, but ${which} of backend \`${backend}\` has none (give one server \`role: primary\`)`)
    return undefined
  }
  return mode
}

const MAX_RYW_WINDOW = 3_600_000

const CONSISTENCY = ['eventual', 'strong'] as const

/** `earlyHints`: Link field values (RFC 8288), each one link: what a 103 may carry and Node will send. */
function linkValues (r: Reader, f: Field): string[] | undefined {
  const out: string[] = []
  for (const item of r.seq(f) ?? []) {
    const s = r.string(item)
    if (s === undefined) continue
    if (isLinkValue(s)) out.push(s)
    else r.expected(item, 'one Link value like </app.css>; rel=preload; as=style')
  }
  return out
}

// ── match, rewrite ──────────────────────────────────────────────────────────

function routeMatch (r: Reader, f: Field, known: readonly string[] | undefined): RouteMatchConfig | undefined {
  const m = r.map(f, KEYS.match)
  if (m === undefined) return undefined
  const hostField = m.get('host')
  let host: string | undefined
  if (hostField !== undefined) {
    const s = r.text(hostField)
    if (s !== undefined) host = hostPattern(r, hostField, s)
  }
  const d = DEFAULTS.route.match
  const pathPrefix = opt(m, 'pathPrefix', (v) => prefix(r, v), d.pathPrefix)
  const regexField = m.get('pathRegex')
  let pathRegex: string | undefined
  if (regexField !== undefined) {
    pathRegex = pattern(r, regexField)
    if (m.has('pathPrefix')) {
      r.report(regexField.path, regexField.at, 'a route matches by pathPrefix or by pathRegex, not both (start the pattern with the prefix instead: `^/api/…`)')
      pathRegex = undefined
    }
  }
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
  const listenersField = m.get('listeners')
  const listeners = listenersField === undefined ? d.listeners : listenerNames(r, listenersField, known)
  const headers = opt<Readonly<Record<string, string>>>(m, 'headers', (v) => headerMap(r, v), d.headers)
  return {
    ...(host === undefined ? {} : { host }), pathPrefix, ...(pathRegex === undefined ? {} : { pathRegex }),
    methods: methodsField === undefined ? d.methods : methods, listeners, headers
  }
}

/** `listeners: [web, admin]`: names of listeners the config defines; `[]`, as absent, is every listener (as `methods: []` is any method). */
function listenerNames (r: Reader, f: Field, known: readonly string[] | undefined): readonly string[] {
  const items = r.seq(f)
  if (items === undefined) return []
  const out: string[] = []
  for (const item of items) {
    const name = r.text(item)
    if (name === undefined) continue
    if (known !== undefined && !known.includes(name)) {
      r.report(item.path, item.at, `unknown listener \`${name}\` (known listeners: ${known.join(', ')})${didYouMean(name, known)}`)
    } else if (!out.includes(name)) out.push(name)
  }
  return out
}

function hostPattern (r: Reader, f: Field, s: string): string | undefined {
  const host = normalizeHostPattern(s)
  if (host !== undefined) return host
  let why = 'expected a host name like api.example.com or *.example.com'
  if (s.includes('*')) why = 'a wildcard is only allowed as a whole first label, like *.example.com'
  else if (/:\d+$/.test(s)) why = 'a host match does not include a port'
  r.report(f.path, f.at, `${why}, got ${describe(f.node)}`)
  return undefined
}

/** `pathRegex`: the route's pattern, if it has one (the default pattern of `regex`). */
function routeRewrite (r: Reader, f: Field, pathRegex: string | undefined, regexWritten: boolean): RewriteConfig | undefined {
  const m = r.map(f, KEYS.rewrite)
  if (m === undefined) return undefined
  const strip = m.get('stripPrefix')
  const add = m.get('addPrefix')
  const stripPrefix = strip === undefined ? undefined : prefix(r, strip)
  const addPrefix = add === undefined ? undefined : prefix(r, add)
  const regexField = m.get('regex')
  const regex = regexField === undefined ? undefined : rewriteRegex(r, regexField, pathRegex, regexWritten)
  if (regexField !== undefined && (strip !== undefined || add !== undefined)) {
    r.report(regexField.path, regexField.at, '`regex` gives the whole upstream path: it is not combined with stripPrefix/addPrefix (write them into the replacement)')
    return undefined
  }
  return {
    ...(stripPrefix === undefined ? {} : { stripPrefix }),
    ...(addPrefix === undefined ? {} : { addPrefix }),
    ...(regex === undefined ? {} : { regex })
  }
}

/** `regex: { pattern, replacement }`; the pattern defaults to the route's match.pathRegex. */
function rewriteRegex (r: Reader, f: Field, pathRegex: string | undefined, regexWritten: boolean): RegexRewriteConfig | undefined {
  const m = r.map(f, KEYS.rewriteRegex)
  if (m === undefined) return undefined
  const patternField = m.get('pattern')
  if (patternField === undefined && !regexWritten) {
    r.report(f.path, f.at, '`regex` needs a `pattern` (or the route\'s `match.pathRegex`, which it then uses)')
  }
  const source = patternField === undefined ? pathRegex : pattern(r, patternField)
  const replacementField = m.require('replacement')
  const replacement = replacementField === undefined ? undefined : r.string(replacementField)
  if (source === undefined || replacement === undefined) return undefined
  const compiled = compilePathRegex(source)
  if ('error' in compiled) return undefined // reported at the pattern
  const parsed = parseReplacement(replacement, compiled)
  if ('error' in parsed) {
    r.report(replacementField!.path, replacementField!.at, parsed.error)
    return undefined
  }
  return { pattern: source, replacement }
}

/** A path pattern RE2 compiles; the message says why one is refused. */
function pattern (r: Reader, f: Field): string | undefined {
  const s = r.string(f)
  if (s === undefined) return undefined
  if (s === '') return r.expected(f, 'a regular expression like ^/api/v(\\d+)/(.*)$')
  const compiled = compilePathRegex(s)
  if ('error' in compiled) {
    r.report(f.path, f.at, compiled.error)
    return undefined
  }
  // Matched against the whole path, which starts with `/`: `api/.*` could never match.
  if (compiled.literalPrefix !== '' && !compiled.literalPrefix.startsWith('/')) {
    r.report(f.path, f.at, `this pattern can never match: it is matched against the whole path, which starts with \`/\` (write \`^/${compiled.literalPrefix}…\`)`)
    return undefined
  }
  return s
}

/** A path prefix to match, strip or add. */
function prefix (r: Reader, f: Field): string | undefined {
  const s = r.string(f)
  if (s === undefined) return undefined
  // Visible ASCII: a request with anything else is refused before routing, so such a prefix could never match.
  if (!/^\/[!-~]*$/.test(s) || /[?#]/.test(s)) return r.expected(f, 'a path starting with `/`: visible ASCII (percent-encode the rest), no spaces, `?` or `#`')
  // The proxy refuses a rewritten path with a dot-segment (plan.ts): with one here, every request would be refused.
  if (hasDotSegment(s)) return r.expected(f, 'a path without `.` or `..` segments')
  return s
}

// ── header operations ───────────────────────────────────────────────────────

function headerOps (r: Reader, f: Field, d: HeaderOpsConfig): HeaderOpsConfig | undefined {
  const m = r.map(f, KEYS.headerOps)
  if (m === undefined) return undefined
  const set = opt(m, 'set', (v) => headerMap(r, v, true), d.set)
  const removeField = m.get('remove')
  if (removeField === undefined) return { set, remove: d.remove }
  const remove: string[] = []
  for (const item of r.seq(removeField) ?? []) {
    const name = headerName(r, item)
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
function headerMap (r: Reader, f: Field, ops = false): Record<string, string> | undefined {
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
    if (!isSafeHeaderValue(value)) r.report(field.path, field.at, HEADER_VALUE_RULE)
    else out[name] = value
  }
  return out
}

// ── a route's cache settings ────────────────────────────────────────────────

/**
 * A route's cache settings: always present (defaults filled) when the
 * top-level cache is on; an error when written while it is not.
 */
function routeCacheOf (r: Reader, m: MapView, top: TopCache): RouteCacheConfig | undefined {
  const f = m.get('cache')
  const d = DEFAULTS.route.cache
  if (top.on) return f === undefined ? d : routeCache(r, f) ?? d
  if (f !== undefined) {
    const key = m.entries().find((e) => e.key === 'cache')?.keyNode ?? f.at
    const why = top.field === undefined ? 'there is none' : 'it is `false`'
    r.report(f.path, key, `a route \`cache\` needs the top-level \`cache\` block, which turns caching on, and ${why}; add \`cache: {}\` at the top level`)
  }
  return undefined
}

/** `true` or `{}`: cached with every default; `false`: not cached; a mapping: those options. */
function routeCache (r: Reader, f: Field): RouteCacheConfig | undefined {
  const m = toggle(r, f, KEYS.routeCache)
  const d = DEFAULTS.route.cache
  if (m === true) return d
  if (m === false) return { ...d, enabled: false }
  if (m === undefined) return undefined
  const ttlField = m.get('defaultTtl')
  const defaultTtl = ttlField === undefined ? undefined : duration(r, ttlField, 1)
  return {
    enabled: opt(m, 'enabled', (v) => r.boolean(v), d.enabled),
    key: opt<CacheKeyConfig>(m, 'key', (v) => cacheKey(r, v), d.key),
    allowSetCookie: opt(m, 'allowSetCookie', (v) => r.boolean(v), d.allowSetCookie),
    ...(defaultTtl === undefined ? {} : { defaultTtl })
  }
}

function cacheKey (r: Reader, f: Field): CacheKeyConfig | undefined {
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
    const name = headerName(r, item)
    if (name !== undefined && !headers.includes(name)) headers.push(name)
  }
  return {
    query,
    ignoreParams: paramsField === undefined ? d.ignoreParams : ignoreParams,
    headers: headersField === undefined ? d.headers : headers
  }
}

// ── a route's rate limit ────────────────────────────────────────────────────

function rateLimit (r: Reader, f: Field, redis: boolean): RateLimitConfig | undefined {
  const m = r.map(f, KEYS.rateLimit)
  if (m === undefined) return undefined
  const d = DEFAULTS.route.rateLimit
  const averageField = m.require('average')
  const average = averageField === undefined ? undefined : r.integer(averageField, 1)
  const period = opt(m, 'period', (v) => wholeSeconds(r, v), d.period)
  const burst = optChecked(m, 'burst', (v) => r.integer(v, 1), average)
  const by = opt(m, 'by', (v) => limitKey(r, v), d.by)
  const storeField = m.get('store')
  const store = opt(m, 'store', (v) => r.oneOf(v, RATE_LIMIT_STORES), d.store)
  if (store === 'redis' && !redis && storeField !== undefined) {
    r.report(storeField.path, storeField.at,
      '`store: redis` keeps the limit in Redis: add the top-level `redis` block (e.g. `redis: { url: redis://127.0.0.1:6379 }`)')
  }
  if (average === undefined || burst === undefined) return undefined
  return { average, period, burst, by, store }
}

/** The window: the RateLimit-Policy field states it in whole seconds, so it is written in them. */
function wholeSeconds (r: Reader, f: Field): number | undefined {
  const ms = duration(r, f, 1)
  if (ms === undefined || ms % 1000 === 0) return ms
  return r.expected(f, 'a whole number of seconds like 1s or 1m (for 5 requests per 500ms write `average: 10, period: 1s, burst: 5`)')
}

function limitKey (r: Reader, f: Field): RateLimitBy | undefined {
  const v = r.scalar(f)
  if (v === 'clientIp') return v
  if (!isMap(f.node)) {
    const hint = typeof v === 'string' ? didYouMean(v, ['clientIp']) : ''
    r.report(f.path, f.at, `expected ${RATE_LIMIT_BY}, got ${describe(f.node)}${hint}`)
    return undefined
  }
  const m = r.map(f, KEYS.rateLimitBy)
  if (m === undefined) return undefined
  const given = KEYS.rateLimitBy.filter((k) => m.has(k))
  if (given.length === 0 && m.entries().length > 0) return undefined // an unknown key, reported with a suggestion
  if (given.length !== 1) {
    const what = given.length === 0 ? 'none' : '`header` and `cookie`'
    r.report(f.path, m.node, `\`by\` takes exactly one of header, cookie (got ${what})`)
    return undefined
  }
  if (given[0] === 'header') {
    const name = headerName(r, m.get('header')!)
    return name === undefined ? undefined : { header: name }
  }
  const name = cookieName(r, m.get('cookie')!)
  return name === undefined ? undefined : { cookie: name }
}
