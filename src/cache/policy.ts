// RFC 9111 (HTTP caching) for a SHARED cache, with RFC 5861 (stale-while-
// revalidate / stale-if-error) and the RFC 9110 conditional requests a cache
// answers itself. Pure functions: no I/O, no clock (every time is passed in,
// ms since the epoch), headers are flat [name, value…] lists in any case.
import { parseCacheControl } from './cache-control.js'
import { combinedValue, hasToken, isName, requestField } from '../fields.js'
import type { CacheDirectives } from './cache-control.js'
import type { CacheEntry } from './entry.js'
import type { CacheConfig, RouteCacheConfig } from '../config/schema.js'

// ---------------------------------------------------------------- request

export interface RequestFacts {
  readonly method: string
  readonly cc: CacheDirectives
  /** `Pragma: no-cache`, counted only when the request has no Cache-Control (§5.4). */
  readonly pragmaNoCache: boolean
  readonly authorization: boolean
  /** The request carries a Cookie: its answer is stored only with a lifetime the origin gave (see storeDecision). */
  readonly cookie: boolean
  /**
   * The request has a body (Content-Length other than 0, or Transfer-Encoding):
   * never answered from the cache nor stored, because the key does not
   * include it (a "fat GET" would poison the URL for everyone).
   */
  readonly body: boolean
  /** All If-None-Match fields joined with ', '. */
  readonly ifNoneMatch: string | undefined
  /** If-Modified-Since (ms); undefined when absent, invalid or repeated (RFC 9110 §13.1.3). */
  readonly ifModifiedSince: number | undefined
  /** All If-Match fields joined with ', '. */
  readonly ifMatch: string | undefined
  /** If-Unmodified-Since (ms); undefined when absent, invalid or repeated (RFC 9110 §13.1.4). */
  readonly ifUnmodifiedSince: number | undefined
  readonly range: string | undefined
  /** Any precondition or Range: a hit takes serveEntry's general path (see serveHit). */
  readonly conditional: boolean
}

/**
 * What the cache needs from a request, in one pass over its headers.
 * `hasBody`: whether it has a body, when known better than its fields say
 * (an h2 request's DATA needs no Content-Length).
 */
export function requestFacts (method: string, rawHeaders: readonly string[], hasBody?: boolean): RequestFacts {
  let cc: string | undefined
  let pragmaNoCache = false
  let authorization = false
  let cookie = false
  let body = false
  let ifNoneMatch: string | undefined
  let ims: string | undefined
  let imsCount = 0
  let ifMatch: string | undefined
  let ius: string | undefined
  let iusCount = 0
  let ifRange = false
  let range: string | undefined
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!
    const value = rawHeaders[i + 1]!
    switch (name.length) {
      case 5:
        if (range === undefined && isName(name, 'range')) range = value
        break
      case 6:
        if (!pragmaNoCache && isName(name, 'pragma') && hasToken(value, 'no-cache')) pragmaNoCache = true
        else if (isName(name, 'cookie')) cookie = true
        break
      case 8:
        if (isName(name, 'if-match')) ifMatch = ifMatch === undefined ? value : ifMatch + ', ' + value
        else if (isName(name, 'if-range')) ifRange = true
        break
      case 14:
        if (isName(name, 'content-length') && value.trim() !== '0') body = true
        break
      case 17:
        if (isName(name, 'transfer-encoding')) body = true
        else if (isName(name, 'if-modified-since')) { ims ??= value; imsCount++ }
        break
      case 13:
        if (isName(name, 'cache-control')) cc = cc === undefined ? value : cc + ', ' + value
        else if (isName(name, 'authorization')) authorization = true
        else if (isName(name, 'if-none-match')) ifNoneMatch = ifNoneMatch === undefined ? value : ifNoneMatch + ', ' + value
        break
      case 19:
        if (isName(name, 'if-unmodified-since')) { ius ??= value; iusCount++ }
        break
    }
  }
  return {
    method,
    cc: parseCacheControl(cc),
    pragmaNoCache: pragmaNoCache && cc === undefined,
    authorization,
    cookie,
    body: hasBody ?? body,
    ifNoneMatch,
    ifModifiedSince: imsCount === 1 ? parseHttpDate(ims) : undefined,
    ifMatch,
    ifUnmodifiedSince: iusCount === 1 ? parseHttpDate(ius) : undefined,
    range,
    conditional: ifNoneMatch !== undefined || imsCount > 0 || ifMatch !== undefined || iusCount > 0 || ifRange || range !== undefined
  }
}

/**
 * A 304, 206, 412 or 416 to a request with preconditions or Range answers
 * that request's own question, not what the URL gives: its not being
 * stored says nothing about the URL's other answers.
 */
export function answersOwnConditions (req: RequestFacts, status: number): boolean {
  return req.conditional && (status === 304 || status === 206 || status === 412 || status === 416)
}

/**
 * A GET whose only conditions are the validators of a copy the client holds
 * (If-None-Match, If-Modified-Since): a browser revalidating. On a miss the
 * cache fetches the whole response instead (so it can be stored) and answers
 * those validators itself, as nginx's cache does; any other precondition or
 * Range goes upstream as sent.
 */
export function validatorsOnly (req: RequestFacts): boolean {
  return req.method === 'GET' && (req.ifNoneMatch !== undefined || req.ifModifiedSince !== undefined) && req.ifMatch === undefined &&
    req.ifUnmodifiedSince === undefined && req.range === undefined && !req.cc.noStore
}

/** Only GET and HEAD without a body are looked up; HEAD is answered from the GET entry. */
export function lookupAllowed (req: RequestFacts): boolean {
  return (req.method === 'GET' || req.method === 'HEAD') && !req.body
}

// ---------------------------------------------------------------- storing (§3)

export interface StoreOptions {
  /** Use §4.2.2 heuristic freshness. */
  readonly heuristic: boolean
  /** Cap on a heuristic lifetime (ms). */
  readonly heuristicMaxAge: number
  /** Store responses carrying Set-Cookie. */
  readonly allowSetCookie: boolean
  /** Lifetime (ms) for responses that allow caching but state none. */
  readonly defaultTtl: number | undefined
  /** RFC 9213 target list: lower-case targeted field names, most specific first. */
  readonly targets: readonly string[]
}

/** Store options of a route, built once when routes compile. */
export function storeOptions (cache: CacheConfig, route: RouteCacheConfig): StoreOptions {
  return Object.freeze({
    heuristic: cache.heuristic,
    heuristicMaxAge: cache.heuristicMaxAge,
    allowSetCookie: route.allowSetCookie,
    defaultTtl: route.defaultTtl,
    targets: cache.targetedCacheControl
  })
}

export type StoreDecision =
  | { readonly store: true; readonly freshness: number }
  | { readonly store: false; readonly reason: string }

/** RFC 9110 §15.1 / RFC 9111 §4.2.2: statuses that are heuristically cacheable. */
const HEURISTIC = new Set([200, 203, 204, 206, 300, 301, 308, 404, 405, 410, 414, 501])

/**
 * Final statuses this cache understands (RFC 9110 §15, plus 429/431 from
 * RFC 6585), for `must-understand` (§5.2.2.3). 206 and 304 are never stored.
 */
const UNDERSTOOD = new Set([
  200, 201, 202, 203, 204, 205,
  300, 301, 302, 303, 307, 308,
  400, 401, 402, 403, 404, 405, 406, 407, 408, 409, 410, 411, 412, 413, 414, 415, 416, 417, 421, 422, 426, 429, 431,
  500, 501, 502, 503, 504, 505
])

interface ResponseFields {
  date: string | undefined
  expires: string | undefined
  lastModified: string | undefined
  etag: boolean
  setCookie: boolean
  vary: string | undefined
}

/** The response fields the store decision reads, in one pass; single-valued fields take the first. */
function scanResponse (h: readonly string[], f: ResponseFields): ResponseFields {
  for (let i = 0; i + 1 < h.length; i += 2) {
    const name = h[i]!
    switch (name.length) {
      case 4:
        if (isName(name, 'date')) f.date ??= h[i + 1]!
        else if (isName(name, 'etag')) f.etag = true
        else if (isName(name, 'vary')) f.vary = f.vary === undefined ? h[i + 1]! : f.vary + ', ' + h[i + 1]!
        break
      case 7:
        if (isName(name, 'expires')) f.expires ??= h[i + 1]!
        break
      case 10:
        if (isName(name, 'set-cookie')) f.setCookie = true
        break
      case 13:
        if (isName(name, 'last-modified')) f.lastModified ??= h[i + 1]!
        break
    }
  }
  return f
}

function newFields (): ResponseFields {
  return { date: undefined, expires: undefined, lastModified: undefined, etag: false, setCookie: false, vary: undefined }
}

function no (reason: string): StoreDecision {
  return { store: false, reason }
}

/**
 * §3 for a shared cache: may this response to `req` be stored, and with
 * which freshness lifetime (ms)? `resCc` is what responseDirectives chose
 * (a targeted field's directives, or Cache-Control's). A stored freshness of 0 means "stored only
 * to be revalidated (or served under stale-if-error/-while-revalidate)".
 */
export function storeDecision (
  req: RequestFacts,
  status: number,
  resHeaders: readonly string[],
  resCc: CacheDirectives,
  responseTime: number,
  opts: StoreOptions
): StoreDecision {
  if (req.method !== 'GET') return no('method not GET')
  if (status < 200 || status > 599) return no('status not final')
  if (status === 206) return no('partial content')
  if (status === 304) return no('not modified')
  if (req.cc.noStore) return no('no-store in request')
  if (resCc.mustUnderstand) {
    // §5.2.2.3: a cache that understands the status ignores no-store.
    if (!UNDERSTOOD.has(status)) return no('must-understand')
  } else if (resCc.noStore) return no('no-store')
  if (resCc.private) return no('private')
  if (req.authorization && !resCc.public && resCc.sMaxAge === undefined && !resCc.mustRevalidate) {
    return no('authorization')
  }
  const f = scanResponse(resHeaders, newFields())
  if (f.setCookie && !opts.allowSetCookie) return no('set-cookie')
  if (f.vary !== undefined) {
    const names = varyNames1(f.vary)
    if (names === '*') return no('vary *')
    // The origin saw the proxy's value of these, not the client's, which the
    // cache would match on: one client's answer would reach another.
    if (names.some((n) => PROXY_SET.has(n))) return no('vary on a field the proxy sets')
  }
  // RFC 9213 §2.1: a targeted field's directives replace Expires as well.
  const expires = resCc.targeted ? undefined : f.expires
  const explicit = resCc.sMaxAge !== undefined || resCc.maxAge !== undefined || expires !== undefined
  if (!explicit && !resCc.public && !HEURISTIC.has(status)) return no('status not cacheable')
  // Cache deception (/account/x.css answered with the account page and only
  // a Last-Modified): an answer to a request with a Cookie is stored only
  // when the origin gave it a lifetime or made it public, never on a guess
  // (heuristic or defaultTtl). Varnish stores none of them by default.
  if (!explicit && !resCc.public && req.cookie) return no('cookie, and no lifetime from the origin')
  // §5.2.2.4: no-cache may be stored, but is never fresh.
  const freshness = resCc.noCache ? 0 : lifetime(status, f, resCc, responseTime, opts)
  if (freshness > 0) return { store: true, freshness }
  const validator = f.etag || parseHttpDate(f.lastModified) !== undefined
  if (validator) return { store: true, freshness: 0 }
  // Stale from the start but usable for RFC 5861 without a validator.
  if (!resCc.noCache && !resCc.mustRevalidate && !resCc.proxyRevalidate &&
      (resCc.staleWhileRevalidate !== undefined || resCc.staleIfError !== undefined)) {
    return { store: true, freshness: 0 }
  }
  return no('no freshness and no validator')
}

/**
 * §4.2.1 freshness lifetime (ms): s-maxage, then max-age, then Expires − Date
 * (unless `cc` came from a targeted field, RFC 9213);
 * then `opts.defaultTtl` when the response allows caching (heuristically
 * cacheable status or `public`) but states no lifetime; then §4.2.2 heuristic
 * (10% of Date − Last-Modified, capped; same statuses or `public`); else 0.
 */
export function freshnessLifetime (
  status: number,
  resHeaders: readonly string[],
  cc: CacheDirectives,
  responseTime: number,
  opts: StoreOptions
): number {
  return lifetime(status, scanResponse(resHeaders, newFields()), cc, responseTime, opts)
}

function lifetime (status: number, f: ResponseFields, cc: CacheDirectives, responseTime: number, opts: StoreOptions): number {
  if (cc.sMaxAge !== undefined) return cc.sMaxAge
  if (cc.maxAge !== undefined) return cc.maxAge
  if (f.expires !== undefined && !cc.targeted) { // RFC 9213 §2.1
    const expires = parseHttpDate(f.expires)
    if (expires === undefined) return 0 // §5.3: invalid (e.g. "0") = already expired
    const date = parseHttpDate(f.date) ?? responseTime
    return Math.max(0, expires - date)
  }
  // §4.2.2: heuristics apply to heuristically cacheable statuses and to responses marked `public`.
  const heuristicOk = HEURISTIC.has(status) || cc.public
  if (opts.defaultTtl !== undefined && heuristicOk) return opts.defaultTtl
  if (opts.heuristic && heuristicOk) {
    const lastModified = parseHttpDate(f.lastModified)
    if (lastModified !== undefined) {
      const date = parseHttpDate(f.date) ?? responseTime
      if (date > lastModified) return Math.min(opts.heuristicMaxAge, Math.floor((date - lastModified) / 10))
    }
  }
  return 0
}

// ---------------------------------------------------------------- age and reuse (§4)

/**
 * §5.1 Age (ms): the first Age field line, and of that its first list
 * member (so `7200, 0` is 7200 s), must be delta-seconds (1*DIGIT; a
 * trailing `;parameter` is tolerated). Anything else (negative, decimal,
 * garbage) is ignored: undefined, as when there is no Age. Capped at 2^31 s
 * (§1.2.2).
 */
export function parseAge (headers: readonly string[]): number | undefined {
  for (let i = 0; i + 1 < headers.length; i += 2) {
    if (!isName(headers[i]!, 'age')) continue
    let v = headers[i + 1]!
    const comma = v.indexOf(',')
    if (comma >= 0) v = v.slice(0, comma)
    const semi = v.indexOf(';')
    if (semi >= 0) v = v.slice(0, semi)
    v = v.trim()
    if (!/^\d+$/.test(v)) return undefined
    return Math.min(Number(v), 2 ** 31) * 1000
  }
  return undefined
}

/** §4.2.3 current_age (ms). */
export function currentAge (
  entry: Pick<CacheEntry, 'ageValue' | 'date' | 'requestTime' | 'responseTime'>,
  now: number
): number {
  const apparentAge = Math.max(0, entry.responseTime - entry.date)
  const responseDelay = entry.responseTime - entry.requestTime
  const correctedAgeValue = entry.ageValue + responseDelay
  const correctedInitialAge = Math.max(apparentAge, correctedAgeValue)
  const residentTime = now - entry.responseTime
  return correctedInitialAge + residentTime
}

/**
 * How long a cache shared between instances keeps `entry` from `now` (ms):
 * what is left of its freshness plus the longest stale window its
 * Cache-Control allows (stale-while-revalidate, stale-if-error); 0 when it is
 * of no more use to anyone.
 */
export function sharedLifetime (entry: CacheEntry, now: number): number {
  const rcc = entry.cc
  const left = (rcc.noCache ? 0 : entry.freshness) - currentAge(entry, now)
  const noStale = rcc.noCache || rcc.mustRevalidate || rcc.proxyRevalidate
  const grace = noStale ? 0 : Math.max(rcc.staleWhileRevalidate ?? 0, rcc.staleIfError ?? 0)
  return Math.max(0, left + grace)
}

/**
 * Whether an entry another instance stored may be used under this
 * instance's route options: instances can disagree during a rollout, and a
 * response carrying Set-Cookie must never reach a route that does not allow
 * storing it (it would hand one user's cookie to everyone).
 */
export function acceptsShared (entry: CacheEntry, opts: StoreOptions): boolean {
  if (opts.allowSetCookie) return true
  for (let i = 0; i < entry.headers.length; i += 2) if (isName(entry.headers[i]!, 'set-cookie')) return false
  return true
}

export interface Usability {
  /** §4.2.3 current age (ms). */
  readonly age: number
  /** Usable without contacting the origin. */
  readonly fresh: boolean
  /** Not fresh, but the request's max-stale allows serving it as is. */
  readonly mayServeStale: boolean
  /** Stale within the response's stale-while-revalidate: serve it and revalidate in the background. */
  readonly staleWhileRevalidate: boolean
  /** Until when (ms) stale-if-error allows serving it when the origin fails; 0 when not allowed (or already past). */
  readonly staleIfErrorUntil: number
}

/**
 * How a stored response may be used for `req` at `now` (§4.2, §5.2, RFC 5861).
 *
 * Stale serving is refused when the response carries no-cache, must-revalidate
 * or proxy-revalidate (§4.2.4). `s-maxage` implies proxy-revalidate for a
 * shared cache (§5.2.2.10), so it refuses the client's max-stale and the
 * client's stale-if-error; the origin's own stale-while-revalidate /
 * stale-if-error are explicit permissions and are honoured alongside s-maxage
 * (the common `s-maxage=N, stale-while-revalidate=M` CDN idiom).
 */
export function usability (req: RequestFacts, entry: CacheEntry, now: number): Usability {
  const age = currentAge(entry, now)
  const rcc = entry.cc
  const qcc = req.cc
  const lifetime = rcc.noCache ? 0 : entry.freshness // §5.2.2.4
  const left = lifetime - age // remaining freshness; ≤ 0 = stale by -left
  const reqNoCache = qcc.noCache || req.pragmaNoCache // §5.2.1.4, §5.4
  const maxAgeOk = qcc.maxAge === undefined || age <= qcc.maxAge // §5.2.1.1
  const minFreshOk = qcc.minFresh === undefined || left >= qcc.minFresh // §5.2.1.3
  const fresh = !reqNoCache && left > 0 && maxAgeOk && minFreshOk
  const noStale = rcc.noCache || rcc.mustRevalidate || rcc.proxyRevalidate
  const mayServeStale = !fresh && !reqNoCache && maxAgeOk && !noStale && rcc.sMaxAge === undefined &&
    qcc.maxStale !== undefined && -left <= qcc.maxStale // §5.2.1.2
  const staleWhileRevalidate = !fresh && !reqNoCache && maxAgeOk && minFreshOk && !noStale && left <= 0 &&
    rcc.staleWhileRevalidate !== undefined && -left <= rcc.staleWhileRevalidate
  let staleIfErrorUntil = 0
  if (!noStale) {
    const staleAt = now + left
    if (rcc.staleIfError !== undefined) staleIfErrorUntil = staleAt + rcc.staleIfError
    if (qcc.staleIfError !== undefined && rcc.sMaxAge === undefined) {
      staleIfErrorUntil = Math.max(staleIfErrorUntil, staleAt + qcc.staleIfError)
    }
    if (staleIfErrorUntil < now) staleIfErrorUntil = 0
  }
  return { age, fresh, mayServeStale, staleWhileRevalidate, staleIfErrorUntil }
}

// ---------------------------------------------------------------- Vary (§4.1)

const NO_NAMES: readonly string[] = Object.freeze([])

function varyNames1 (value: string): readonly string[] | '*' {
  const parts = value.split(',')
  const names: string[] = []
  for (let i = 0; i < parts.length; i++) {
    const name = parts[i]!.trim().toLowerCase()
    if (name === '*') return '*'
    if (name.length > 0 && !names.includes(name)) names.push(name)
  }
  if (names.length === 0) return NO_NAMES
  return names.sort()
}

/** Request fields the proxy sets or replaces on the way upstream (headers.ts, tracing): a Vary on one is not stored. */
const PROXY_SET = new Set(['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'forwarded', 'via', 'x-request-id', 'traceparent', 'tracestate'])

/** Lower-cased, deduplicated, sorted names in Vary; '*' when any member is '*'. */
export function varyNames (resHeaders: readonly string[]): readonly string[] | '*' {
  const value = combinedValue(resHeaders, 'vary')
  return value === undefined ? NO_NAMES : varyNames1(value)
}

const COMMA_OWS = /[ \t]*,[ \t]*/g

/**
 * A Vary'd field the request did not send: no field value can be it (NUL is
 * refused in every value), so an absent field matches only an absent one,
 * never an empty one (§4.1).
 */
export const VARY_ABSENT = '\u0000'

/**
 * §4.1: the request's values for `names`, fields combined with ', ', whitespace around commas collapsed; VARY_ABSENT when absent.
 * `coding`: on a compressing route, Accept-Encoding's value is the coding it negotiated (see CacheTarget.coding).
 */
export function varyValues (names: readonly string[], reqRawHeaders: readonly string[], coding?: string): readonly string[] {
  if (names.length === 0) return NO_NAMES
  const out = new Array<string>(names.length)
  for (let i = 0; i < names.length; i++) {
    if (coding !== undefined && names[i] === 'accept-encoding') {
      out[i] = coding
      continue
    }
    // As the request goes upstream: Cookie crumbs (h2) joined with '; ', what the origin answered to.
    const v = requestField(reqRawHeaders, names[i]!)
    out[i] = v === undefined ? VARY_ABSENT : v.includes(',') ? v.replace(COMMA_OWS, ', ').trim() : v.trim()
  }
  return out
}

/** The stored entry was selected with the same values for its Vary'd fields. */
export function varyMatches (entry: Pick<CacheEntry, 'varyValues'>, values: readonly string[]): boolean {
  const stored = entry.varyValues
  if (stored.length !== values.length) return false
  for (let i = 0; i < stored.length; i++) if (stored[i] !== values[i]) return false
  return true
}

// ---------------------------------------------------------------- validation

/** opaque-tag of an entity-tag: the W/ prefix removed. */
function opaqueTag (etag: string): string {
  const t = etag.trim()
  return t.startsWith('W/') ? t.slice(2) : t
}

/**
 * RFC 9110 §13.1.1–2: does an If-Match / If-None-Match value match `etag`?
 * `strong` (If-Match): both tags must be strong and identical; otherwise the
 * weak comparison (If-None-Match).
 */
function tagListHits (value: string, etag: string | undefined, strong: boolean): boolean {
  const target = etag === undefined || (strong && etag.trimStart().startsWith('W/')) ? undefined : opaqueTag(etag)
  const n = value.length
  let i = 0
  while (i < n) {
    const c = value.charCodeAt(i)
    if (c === 32 || c === 9 || c === 44) { i++; continue }
    if (c === 42) return true // '*': any current representation
    let weak = false
    if (c === 87 && value.charCodeAt(i + 1) === 47) { i += 2; weak = true } // 'W/'
    let tag: string
    if (value.charCodeAt(i) === 34) { // quoted opaque-tag; commas may appear inside
      const end = value.indexOf('"', i + 1)
      const stop = end < 0 ? n : end + 1
      tag = value.slice(i, stop)
      i = stop
    } else { // lenient: a bare tag up to the next comma
      const end = value.indexOf(',', i)
      const stop = end < 0 ? n : end
      tag = value.slice(i, stop).trim()
      i = stop
    }
    if (target !== undefined && tag === target && !(strong && weak)) return true
  }
  return false
}

/**
 * RFC 9110 §13.1.2 / §13.1.3 (and RFC 9111 §4.3.2) for a GET/HEAD answered
 * from `entry`: true when the answer is 304. If-None-Match takes precedence;
 * otherwise If-Modified-Since against Last-Modified, or Date when absent.
 * Preconditions are ignored for a stored status other than 2xx (§13.2.1).
 */
export function notModified (req: RequestFacts, entry: Pick<CacheEntry, 'status' | 'etag' | 'lastModified' | 'date'>): boolean {
  if (req.method !== 'GET' && req.method !== 'HEAD') return false
  if (entry.status < 200 || entry.status > 299) return false
  if (req.ifNoneMatch !== undefined) return tagListHits(req.ifNoneMatch, entry.etag, false)
  if (req.ifModifiedSince !== undefined) return (entry.lastModified ?? entry.date) <= req.ifModifiedSince
  return false
}

/**
 * RFC 9110 §13.2.2 steps 1–2 for a GET/HEAD answered from `entry`: true when
 * the answer is 412. If-Match compares strongly ('*' matches any stored
 * response); If-Unmodified-Since counts only without If-Match and when the
 * entry has a Last-Modified. Ignored for a stored status other than 2xx.
 */
export function preconditionFailed (req: RequestFacts, entry: CacheEntry): boolean {
  if (entry.status < 200 || entry.status > 299) return false
  if (req.ifMatch !== undefined) return !tagListHits(req.ifMatch, entry.etag, true)
  if (req.ifUnmodifiedSince !== undefined && entry.lastModified !== undefined) return entry.lastModified > req.ifUnmodifiedSince
  return false
}

/**
 * §4.3.1: the validators to send when revalidating `entry` (flat, lower-case
 * names). If-Modified-Since carries "the value of the Last-Modified field
 * from the selected stored response", as stored (origins often compare it
 * as a string); re-formatted only when no stored field parses.
 */
export function revalidationHeaders (entry: CacheEntry): string[] {
  const out: string[] = []
  if (entry.etag !== undefined) out.push('if-none-match', entry.etag)
  if (entry.lastModified !== undefined) {
    const lm = firstField(entry.headers, 'last-modified')?.trim()
    out.push('if-modified-since', lm !== undefined && parseHttpDate(lm) === entry.lastModified ? lm : httpDate(entry.lastModified))
  }
  return out
}

/**
 * §4.3.4: does a 304 to our revalidation of `entry` select it for update?
 * Not when it names another representation: an ETag whose opaque-tag differs
 * from the stored one (or any ETag when none is stored), or, without an ETag,
 * a Last-Modified other than the stored one. Compared weakly, because a
 * compressed variant is stored with its ETag made weak while the origin's
 * 304 carries the strong one. A 304 with no validator at all answers the
 * validators we sent, so it selects the entry.
 */
export function revalidationSelects (entry: CacheEntry, head: readonly string[]): boolean {
  const etag = combinedValue(head, 'etag')
  if (etag !== undefined) return entry.etag !== undefined && opaqueTag(etag) === opaqueTag(entry.etag)
  const lmField = firstField(head, 'last-modified')
  if (lmField === undefined || entry.lastModified === undefined) return true
  return parseHttpDate(lmField) === entry.lastModified
}

/**
 * §4.3.5: may a 200 answer to HEAD update the stored GET response `entry`?
 * Yes when every validator it carries (ETag, Last-Modified) and its
 * Content-Length, if any, match the stored ones; otherwise the stored
 * response is to be considered stale (the caller drops it).
 */
export function headUpdates (entry: CacheEntry, head: readonly string[]): boolean {
  const etag = combinedValue(head, 'etag')
  if (etag !== undefined && etag !== entry.etag) return false
  const lmField = firstField(head, 'last-modified')
  if (lmField !== undefined) {
    const lm = parseHttpDate(lmField)
    if (lm === undefined || lm !== entry.lastModified) return false
  }
  const length = firstField(head, 'content-length')
  if (length !== undefined && length.trim() !== (firstField(entry.headers, 'content-length') ?? '').trim()) return false
  return true
}

/** The first `lowerName` field's value (dates contain commas, so they are never joined). */
function firstField (h: readonly string[], lowerName: string): string | undefined {
  for (let i = 0; i + 1 < h.length; i += 2) if (isName(h[i]!, lowerName)) return h[i + 1]
  return undefined
}

/**
 * §3 for a stored response freshened by a 304 (or a HEAD's 200), whose
 * directives `cc` are now the merged ones (§4.3.4): why it may no longer
 * stay in a shared cache (the 304 said `no-store` or unqualified `private`,
 * as a 200 could), or undefined when it may.
 */
export function revalidatedUnstorable (status: number, cc: CacheDirectives): string | undefined {
  if (cc.mustUnderstand ? !UNDERSTOOD.has(status) : cc.noStore) return cc.mustUnderstand ? 'must-understand' : 'no-store'
  if (cc.private) return 'private'
  return undefined
}

/**
 * Not taken from a 304 (§3.2): the stored response's framing and the
 * representation metadata its stored body depends on (Content-Length,
 * Content-Encoding, Content-Range, Transfer-Encoding), the fields §3.1 keeps
 * out of storage (hop-by-hop, proxy-specific), Age (recomputed), and
 * Set-Cookie (meant for the one client whose request revalidated).
 */
const NOT_UPDATED = new Set([
  'content-length', 'content-encoding', 'content-range', 'transfer-encoding',
  'connection', 'keep-alive', 'proxy-connection', 'te', 'upgrade',
  'proxy-authenticate', 'proxy-authentication-info', 'proxy-authorization',
  'age', 'set-cookie'
])

/**
 * §3.2 / §4.3.4: the stored fields updated from a 304. Every field of the 304
 * replaces the stored fields of the same name, except those in NOT_UPDATED
 * and those its Connection field names. Stored order is kept; replacements
 * are appended in the 304's order.
 */
export function mergeRevalidated (stored: readonly string[], fresh: readonly string[]): string[] {
  let hop: string[] | undefined
  const connection = combinedValue(fresh, 'connection')
  if (connection !== undefined) hop = connection.split(',').map((s) => s.trim().toLowerCase())
  const replaced = new Set<string>()
  const added: string[] = []
  for (let i = 0; i + 1 < fresh.length; i += 2) {
    const name = fresh[i]!.toLowerCase()
    if (NOT_UPDATED.has(name) || (hop !== undefined && hop.includes(name))) continue
    replaced.add(name)
    added.push(fresh[i]!, fresh[i + 1]!)
  }
  if (replaced.size === 0) return stored.slice()
  const out: string[] = []
  for (let i = 0; i + 1 < stored.length; i += 2) {
    if (!replaced.has(stored[i]!.toLowerCase())) out.push(stored[i]!, stored[i + 1]!)
  }
  for (let i = 0; i < added.length; i++) out.push(added[i]!)
  return out
}

/**
 * The Set-Cookie fields of a 304 (or a HEAD's 200) that freshened a stored
 * response: not stored (NOT_UPDATED), but passed on to the one client whose
 * request revalidated, as a miss would have passed them.
 */
export function revalidationCookies (fresh: readonly string[]): readonly string[] {
  let out: string[] | undefined
  for (let i = 0; i + 1 < fresh.length; i += 2) {
    if (isName(fresh[i]!, 'set-cookie')) (out ??= []).push(fresh[i]!, fresh[i + 1]!)
  }
  return out ?? NO_COOKIES
}
const NO_COOKIES: readonly string[] = Object.freeze([])

/** §3.1 fields a shared cache must not store: always dropped by storableHeaders. */
const NOT_STORED = new Set(['proxy-authenticate', 'proxy-authentication-info', 'proxy-authorization', 'age'])

/**
 * §3.1 for a shared cache: `headers` without the fields named by
 * `private="…"` (§5.2.2.7) and `no-cache="…"` (§5.2.2.4: never reused
 * without revalidation, so simplest not kept), proxy-specific fields and
 * Age. Returns `headers` itself when nothing is removed.
 */
export function storableHeaders (headers: readonly string[], cc: CacheDirectives): readonly string[] {
  const priv = cc.privateFields
  const nc = cc.noCacheFields
  let out: string[] | undefined
  for (let i = 0; i + 1 < headers.length; i += 2) {
    const name = headers[i]!.toLowerCase()
    const drop = NOT_STORED.has(name) || (priv.length > 0 && priv.includes(name)) || (nc.length > 0 && nc.includes(name))
    if (drop) {
      out ??= headers.slice(0, i)
    } else if (out !== undefined) {
      out.push(headers[i]!, headers[i + 1]!)
    }
  }
  return out ?? headers
}

// ---------------------------------------------------------------- invalidation and tags

/** §4.4: an unsafe method with a non-error (2xx/3xx) answer invalidates the target URI. Methods are case-sensitive. */
export function invalidates (method: string, status: number): boolean {
  if (method === 'GET' || method === 'HEAD' || method === 'OPTIONS' || method === 'TRACE') return false
  return status >= 200 && status < 400
}

const WS = /[ \t]+/

/** Purge tags from Cache-Tag (comma-separated) and Surrogate-Key (space-separated), trimmed and deduplicated. */
export function responseTags (resHeaders: readonly string[]): string[] {
  const tags: string[] = []
  for (let i = 0; i + 1 < resHeaders.length; i += 2) {
    const name = resHeaders[i]!
    let sep: string | RegExp
    if (isName(name, 'cache-tag')) sep = ','
    else if (isName(name, 'surrogate-key')) sep = WS
    else continue
    const parts = resHeaders[i + 1]!.split(sep)
    for (let j = 0; j < parts.length; j++) {
      const tag = parts[j]!.trim()
      if (tag.length > 0 && !tags.includes(tag)) tags.push(tag)
    }
  }
  return tags
}


// ---------------------------------------------------------------- HTTP-date (RFC 9110 §5.6.7)

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']
const MONTH = 'Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec'
const IMF_FIXDATE = new RegExp(`^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), (\\d{2}) (${MONTH}) (\\d{4}) (\\d{2}):(\\d{2}):(\\d{2}) GMT$`)
const RFC850_DATE = new RegExp(`^(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday), (\\d{2})-(${MONTH})-(\\d{2}) (\\d{2}):(\\d{2}):(\\d{2}) GMT$`)
const ASCTIME_DATE = new RegExp(`^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) (${MONTH}) ([ \\d]\\d) (\\d{2}):(\\d{2}):(\\d{2}) (\\d{4})$`)

/** IMF-fixdate, e.g. `Sun, 06 Nov 1994 08:49:37 GMT`. */
export function httpDate (ms: number): string {
  return new Date(ms).toUTCString()
}

function daysIn (month: number, year: number): number {
  if (month === 1) return (year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0)) ? 29 : 28
  return month === 3 || month === 5 || month === 8 || month === 10 ? 30 : 31
}

function utc (year: number, monthName: string, day: number, h: number, m: number, s: number): number | undefined {
  const month = MONTHS.indexOf(monthName)
  if (day < 1 || day > daysIn(month, year) || h > 23 || m > 59 || s > 60) return undefined
  return Date.UTC(year, month, day, h, m, s)
}

/**
 * RFC 9110 §5.6.7 HTTP-date: IMF-fixdate and the two obsolete forms
 * (rfc850-date, asctime-date); anything else → undefined. A two-digit
 * rfc850 year is read as 20yy below 70 and 19yy otherwise: the RFC's
 * "more than 50 years in the future" rule needs the clock, which this
 * module never reads.
 */
export function parseHttpDate (s: string | undefined): number | undefined {
  if (s === undefined) return undefined
  const v = s.trim()
  let m = IMF_FIXDATE.exec(v)
  if (m !== null) return utc(Number(m[3]), m[2]!, Number(m[1]), Number(m[4]), Number(m[5]), Number(m[6]))
  m = RFC850_DATE.exec(v)
  if (m !== null) {
    const yy = Number(m[3])
    return utc(yy < 70 ? 2000 + yy : 1900 + yy, m[2]!, Number(m[1]), Number(m[4]), Number(m[5]), Number(m[6]))
  }
  m = ASCTIME_DATE.exec(v)
  if (m !== null) return utc(Number(m[6]), m[1]!, Number(m[2]!.trim()), Number(m[3]), Number(m[4]), Number(m[5]))
  return undefined
}

// ---------------------------------------------------------------- helpers
