// The cache phase of the pipeline (Pingora's request_cache_filter /
// response_cache_filter). Before a request is forwarded: answer it from the
// cache, wait for a fetch already in flight for the same key (collapsed
// forwarding), or set the session up so the upstream response is recorded,
// revalidates a stale entry, or is replaced by a stale one on error. After:
// the session calls back here with the response head, body and end.
// RFC rules come from cache/policy.ts; storage from cache/cache.ts.
import type { BlockList } from 'node:net'
import type { HttpCache, Inflight } from '../cache/cache.js'
import { headerValue, isName, parseCacheControl } from '../cache/cache-control.js'
import type { CacheEntry } from '../cache/entry.js'
import { cacheKey, keyedTarget } from '../cache/key.js'
import { originOf, parseAuthority } from './authority.js'
import { normalizePath } from './path.js'
import {
  currentAge, freshnessLifetime, headUpdates, invalidates, lookupAllowed, mergeRevalidated, notModified, parseAge, parseHttpDate,
  requestFacts, responseTags, revalidationHeaders, storableHeaders, storeDecision, usability, varyMatches, varyNames, varyValues,
  type RequestFacts, type StoreOptions
} from '../cache/policy.js'
import { cacheStatus } from '../cache/status.js'
import { entrySize } from '../cache/store.js'
import type { CacheConfig, PathNormalizationConfig, RouteCacheConfig } from '../config/schema.js'
import { Errors } from '../errors.js'
import type { ResponseSink } from '../upstream/pool.js'
import { downstreamResponseHeaders } from './headers.js'
import type { Session } from './session.js'

/** Per-request cache state, hung on the session only when the route caches. */
export interface CacheState {
  readonly cache: HttpCache
  readonly route: RouteCacheConfig
  readonly facts: RequestFacts
  /** The client's raw request headers (Vary values of a stored response come from them). */
  readonly requestHeaders: readonly string[]
  /** Where the response is stored: see CacheTarget. */
  readonly at: CacheTarget
  readonly opts: StoreOptions
  /** How paths are normalised, to key the URLs an unsafe method's answer names. */
  readonly paths: PathNormalizationConfig
  /** The stale entry being revalidated by this request's upstream exchange. */
  stale: CacheEntry | undefined
  /** This request is the one fetching `key`; others wait on it. */
  leader: Inflight | undefined
  /** Recording the response body for the store. */
  recording: Recording | undefined
  /** The upstream answer is not sent to the client (a 304 or an error replaced by the cache's copy). */
  withheld: boolean
  /** What Cache-Status says about the forward ('uri-miss', 'vary-miss', 'stale', 'request', 'bypass'). */
  fwd: 'uri-miss' | 'vary-miss' | 'stale' | 'request' | 'bypass'
}

interface Recording {
  readonly status: number
  readonly statusText: string
  readonly headers: readonly string[]
  readonly freshness: number
  readonly requestTime: number
  readonly responseTime: number
  readonly chunks: Buffer[]
  size: number
}

/** Where a request's response is stored, decided by the pipeline (see cache/key.ts). */
export interface CacheTarget {
  /** The primary key: the URL as forwarded. */
  readonly key: string
  /** The variant key: route, shard, key headers. */
  readonly variant: string
  /** Scheme and origin of the key, to key other URLs of the same origin (Location). */
  readonly scheme: 'http' | 'https'
  readonly origin: string
  /** What concurrent misses collapse on: key and variant together. */
  readonly lock: string
}

/** What the pipeline needs to go upstream from here (also for background revalidations). */
export interface CacheForwarder {
  /** Forward the session's request as it is now (pick → dispatch). */
  forward (s: Session): void
  /** Fetch `s`'s request upstream in the background to refresh `entry` (stale-while-revalidate). */
  refresh (s: Session, entry: CacheEntry, leader: Inflight): void
}

/** Store options of a route, built once when routes compile. */
export function storeOptions (cache: CacheConfig, route: RouteCacheConfig): StoreOptions {
  return Object.freeze({
    heuristic: cache.heuristic,
    heuristicMaxAge: cache.heuristicMaxAge,
    allowSetCookie: route.allowSetCookie,
    defaultTtl: route.defaultTtl
  })
}

/**
 * Run before forwarding. Returns true when the request was answered here or
 * will be (waiting on a collapsed fetch); false to forward now (with
 * `s.cacheState` set when the response should be recorded or revalidates).
 */
export function cacheRequest (s: Session, cache: HttpCache, route: RouteCacheConfig, opts: StoreOptions,
  purgeFrom: BlockList | undefined, fwd: CacheForwarder, at: CacheTarget, paths: PathNormalizationConfig): boolean {
  const method = s.method
  const key = at.key

  if (method === 'PURGE' && purgeFrom !== undefined) {
    purgeRequest(s, cache, key, purgeFrom)
    return true
  }
  const facts = requestFacts(method, s.req.rawHeaders)
  const state: CacheState = {
    cache, route, facts, requestHeaders: s.req.rawHeaders, at, opts, paths,
    stale: undefined, leader: undefined, recording: undefined, withheld: false, fwd: 'bypass'
  }
  s.cacheState = state
  if (!lookupAllowed(facts)) {
    s.cacheOutcome = 'bypass'
    // Unsafe methods go through; a success invalidates (see cacheResponseHead).
    return false
  }

  const now = Date.now()
  const variants = cache.store.get(key)
  let entry: CacheEntry | undefined
  let found = false
  for (let i = 0; i < variants.length; i++) {
    const v = variants[i]!
    if (v.variant !== at.variant) continue
    found = true
    if (varyMatches(v, varyValues(v.varyNames, s.req.rawHeaders))) {
      entry = v
      break
    }
  }
  state.fwd = entry !== undefined ? 'stale' : found ? 'vary-miss' : 'uri-miss'

  if (entry !== undefined) {
    const u = usability(facts, entry, now)
    if (u.fresh) {
      answerHit(s, cache, entry, now, undefined)
      return true
    }
    if (u.mayServeStale) {
      answerHit(s, cache, entry, now, 'max-stale')
      return true
    }
    if (u.staleWhileRevalidate) {
      answerHit(s, cache, entry, now, 'stale-while-revalidate')
      // The background fetch is a GET (a HEAD answer could not replace the stored body); it
      // revalidates with our validators, so a 304 freshens the entry.
      if (method === 'GET' && cache.inflight(at.lock) === undefined) {
        s.upstreamHeaders = withoutConditionals(s.upstreamHeaders)
        s.upstreamHeaders.push(...revalidationHeaders(entry))
        fwd.refresh(s, entry, cache.lead(at.lock))
      }
      return true
    }
    // §5.2.1.7: only-if-cached never goes to the origin, not even to revalidate.
    if (facts.cc.onlyIfCached) {
      s.sendError(Errors.ONLY_IF_CACHED)
      return true
    }
    // Stale: revalidate with our validators (the client's own conditionals are answered by us).
    s.cacheOutcome = 'revalidate'
    state.stale = entry
    s.upstreamHeaders = withoutConditionals(s.upstreamHeaders)
    s.upstreamHeaders.push(...revalidationHeaders(entry))
    cache.counters.misses++
    return false
  }

  if (facts.cc.onlyIfCached) {
    s.sendError(Errors.ONLY_IF_CACHED)
    return true
  }

  cache.counters.misses++
  s.cacheOutcome = 'miss'
  const inflight = cache.inflight(at.lock)
  if (inflight === undefined) {
    state.leader = cache.lead(at.lock)
    return false
  }
  // Collapse: wait for the request already fetching this key, then serve what it stored.
  cache.counters.collapsed++
  const timer = setTimeout(() => inflight.settle(undefined), cache.config.collapseTimeout)
  void inflight.done.then((stored) => {
    clearTimeout(timer)
    if (s.closed) return
    try {
      const t = Date.now()
      if (stored !== undefined && varyMatches(stored, varyValues(stored.varyNames, s.req.rawHeaders)) &&
        usability(facts, stored, t).fresh) {
        cache.counters.hits++
        s.cacheOutcome = 'collapsed'
        serveEntry(s, stored, t, cacheStatus(cache.config.statusName, { hit: true, collapsed: true, ttl: ttlSeconds(stored, t) }))
        return
      }
      // Nothing usable (uncacheable, failed or timed out): go upstream ourselves, uncollapsed.
      state.fwd = 'request'
      fwd.forward(s)
    } catch (err) {
      s.fault(err)
    }
  })
  return true
}

/** Answer from a stored entry without going upstream: fresh, or stale as `staleBy` allows. */
function answerHit (s: Session, cache: HttpCache, entry: CacheEntry, now: number, staleBy: 'max-stale' | 'stale-while-revalidate' | undefined): void {
  s.cacheOutcome = staleBy === undefined ? 'hit' : 'stale'
  cache.counters.hits++
  if (staleBy !== undefined) cache.counters.staleServed++
  serveEntry(s, entry, now, cacheStatus(cache.config.statusName, {
    hit: true, ttl: ttlSeconds(entry, now), ...(staleBy === undefined ? {} : { detail: staleBy })
  }))
}

/**
 * The upstream response head arrived (flat downstream headers, before any
 * sticky cookie or Cache-Status). Returns the headers to send, or undefined
 * when the answer is withheld and the cache answers instead.
 */
export function cacheResponseHead (s: Session, state: CacheState, status: number, statusText: string,
  headers: string[]): string[] | undefined {
  const cache = state.cache
  const now = Date.now()
  if (!lookupAllowed(state.facts)) {
    if (invalidates(s.method, status)) invalidateFor(state, headers)
    return withStatus(headers, cache, { fwd: 'bypass', fwdStatus: status })
  }
  const stale = state.stale
  if (stale !== undefined && (status === 304 || (status === 200 && state.facts.method === 'HEAD'))) {
    if (status === 200 && !headUpdates(stale, headers)) {
      // §4.3.5: a HEAD answer that disagrees with the stored GET: that one is stale for good.
      cache.store.delete(state.at.key)
      return withStatus(headers, cache, { fwd: state.fwd, fwdStatus: status })
    }
    // §4.3.4 / §4.3.5: freshen the stored response with the 304's (or the HEAD
    // 200's) fields, then answer from it. Its Age (dropped from the stored
    // fields) still counts for the new entry's age.
    const merged = mergeRevalidated(stale.headers, headers)
    const entry = makeEntry(state, stale.status, stale.statusText, merged.concat(ageFields(headers)), stale.body, s.startWall, now)
    cache.counters.revalidated304++
    if (entry !== undefined) cache.put(entry)
    state.withheld = true
    finishLeader(state, entry)
    serveEntry(s, entry ?? stale, now, cacheStatus(cache.config.statusName, {
      fwd: 'stale', fwdStatus: status, ttl: ttlSeconds(entry ?? stale, now)
    }))
    return undefined
  }
  if (stale !== undefined && status >= 500 && usability(state.facts, stale, now).staleIfErrorUntil > now) {
    state.withheld = true
    cache.counters.staleServed++
    serveEntry(s, stale, now, cacheStatus(cache.config.statusName, {
      fwd: 'stale', fwdStatus: status, ttl: ttlSeconds(stale, now), detail: 'stale-if-error'
    }))
    return undefined
  }
  if (stale !== undefined) cache.counters.revalidated200++

  const cc = parseCacheControl(headerValue(headers, 'cache-control'))
  const decision = storeDecision(state.facts, status, headers, cc, now, state.opts)
  const length = Number(headerValue(headers, 'content-length') ?? NaN)
  let stored = false
  let detail: string | undefined
  if (!decision.store) {
    detail = decision.reason
  } else if (length > cache.config.maxEntryBytes) {
    detail = 'too large'
  } else {
    stored = true
    // Age stays in: makeEntry reads it (for the entry's age) and leaves it out of the stored fields.
    state.recording = {
      status, statusText, headers: headers.slice(), freshness: decision.freshness,
      requestTime: s.startWall, responseTime: now, chunks: [], size: 0
    }
  }
  if (!stored) {
    // A new full response replaces the stored one (§4.3.3); if it cannot be stored, the old must not linger.
    if (stale !== undefined) cache.store.delete(state.at.key)
    cache.counters.notStored++
    // Waiters must not wait for a response that will not be stored.
    finishLeader(state, undefined)
  }
  return withStatus(headers, cache, {
    fwd: state.fwd, fwdStatus: status, stored,
    ...(stored ? { ttl: Math.round(decision.store ? decision.freshness / 1000 : 0) } : {}),
    ...(detail === undefined ? {} : { detail })
  })
}

/** A body chunk passed to the client; keep it while it fits. */
export function cacheResponseData (state: CacheState, chunk: Buffer): void {
  const r = state.recording
  if (r === undefined) return
  r.size += chunk.length
  if (r.size > state.cache.config.maxEntryBytes) {
    state.recording = undefined
    state.cache.counters.notStored++
    finishLeader(state, undefined)
    return
  }
  r.chunks.push(chunk)
}

/** The upstream body completed intact: store it, wake the waiters. */
export function cacheResponseEnd (state: CacheState): void {
  const r = state.recording
  state.recording = undefined
  if (r === undefined) return finishLeader(state, undefined)
  const entry = makeEntry(state, r.status, r.statusText, r.headers, Buffer.concat(r.chunks, r.size), r.requestTime, r.responseTime, r.freshness)
  if (entry !== undefined) state.cache.put(entry)
  finishLeader(state, entry)
}

/**
 * The upstream exchange failed. Returns true when a stale entry was served
 * instead (stale-if-error); the pipeline answers with the error otherwise.
 */
export function cacheUpstreamError (s: Session, state: CacheState): boolean {
  state.recording = undefined
  finishLeader(state, undefined)
  const stale = state.stale
  const now = Date.now()
  if (stale === undefined || s.res.headersSent || usability(state.facts, stale, now).staleIfErrorUntil <= now) return false
  state.cache.counters.staleServed++
  serveEntry(s, stale, now, cacheStatus(state.cache.config.statusName, { fwd: 'stale', ttl: ttlSeconds(stale, now), detail: 'stale-if-error' }))
  return true
}

/** The session ended: never leave waiters hanging. */
export function cacheSessionEnd (state: CacheState): void {
  state.recording = undefined
  finishLeader(state, undefined)
}

function finishLeader (state: CacheState, entry: CacheEntry | undefined): void {
  const f = state.leader
  if (f === undefined) return
  state.leader = undefined
  state.cache.finish(f, entry)
}

/** Build a storable entry, or undefined when its Vary is `*`. */
export function makeEntry (state: CacheState, status: number, statusText: string, headers: readonly string[], body: Buffer,
  requestTime: number, responseTime: number, freshness?: number): CacheEntry | undefined {
  const names = varyNames(headers)
  if (names === '*') return undefined
  const cc = parseCacheControl(headerValue(headers, 'cache-control'))
  // Dates contain commas, so a repeated field cannot be joined: the first one counts.
  const date = parseHttpDate(firstValue(headers, 'date'))
  const lm = parseHttpDate(firstValue(headers, 'last-modified'))
  // §3.1: never keep fields named by private="…" / no-cache="…", nor Age.
  const clean = storableHeaders(headers, cc).filter(notAge)
  // The body is complete in memory: always frame it by length (a chunked origin sent none).
  if (firstValue(clean, 'content-length') === undefined && status !== 204 && status !== 304) clean.push('content-length', String(body.length))
  return Object.freeze({
    key: state.at.key,
    variant: state.at.variant,
    status,
    statusText,
    headers: clean,
    body,
    requestTime,
    responseTime,
    cc,
    freshness: freshness ?? freshnessLifetime(status, headers, cc, responseTime, state.opts),
    date: date ?? responseTime,
    ageValue: parseAge(headers) ?? 0,
    etag: headerValue(headers, 'etag'),
    lastModified: lm,
    varyNames: names,
    varyValues: varyValues(names, state.requestHeaders),
    tags: responseTags(headers),
    size: entrySize(clean, body)
  })
}

/** Answer from a stored entry: 304 for a matching conditional, 206 for a single satisfiable range, HEAD without body. */
export function serveEntry (s: Session, entry: CacheEntry, now: number, status: string): void {
  const res = s.res
  if (s.closed || res.headersSent) return
  const facts = s.cacheState?.facts ?? requestFacts(s.method, s.req.rawHeaders)
  s.prepareHead()
  const headers = entry.headers.slice()
  headers.push('age', String(Math.floor(currentAge(entry, now) / 1000)), 'cache-status', status)
  s.status = entry.status
  if (entry.status === 200 && notModified(facts, entry)) {
    s.status = 304
    if (s.writeHead(304, headers.filter(notBodyHeader))) res.end()
    return
  }
  let body = entry.body
  let code = entry.status
  if (s.method !== 'HEAD') s.bytesOut = body.length
  if (entry.status === 200 && facts.range !== undefined && rangeApplies(s, entry)) {
    const r = singleRange(facts.range, body.length)
    if (r === 'unsatisfiable') {
      s.status = 416
      const h = headers.filter(notBodyHeader)
      h.push('content-range', `bytes */${body.length}`, 'content-length', '0')
      if (s.writeHead(416, h)) res.end()
      return
    }
    if (r !== undefined) {
      code = 206
      s.status = 206
      body = body.subarray(r[0], r[1] + 1)
      const h = headers.filter(notBodyHeader)
      h.push('content-range', `bytes ${r[0]}-${r[1]}/${entry.body.length}`, 'content-length', String(body.length))
      if (!s.writeHead(206, h)) return
      if (s.method === 'HEAD') res.end()
      else res.end(body)
      return
    }
  }
  if (!s.writeHead(code, headers)) return
  if (s.method === 'HEAD') res.end()
  else res.end(body)
}

/** If-Range (RFC 9110 §13.1.5): the range applies only if the validator still matches. */
function rangeApplies (s: Session, entry: CacheEntry): boolean {
  const ifRange = s.header('if-range')
  if (ifRange === undefined) return true
  if (ifRange.startsWith('"')) return entry.etag === ifRange // strong comparison
  const t = parseHttpDate(ifRange)
  return t !== undefined && entry.lastModified !== undefined && entry.lastModified <= t
}

/** `bytes=a-b` | `bytes=a-` | `bytes=-n` → inclusive [start, end]; several ranges → undefined (send the whole). */
export function singleRange (value: string, size: number): [number, number] | 'unsatisfiable' | undefined {
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(value)
  if (m === null) return undefined
  const [, a, b] = m
  if (a === '' && b === '') return undefined
  let start: number
  let end: number
  if (a === '') {
    const n = Number(b)
    if (n === 0) return 'unsatisfiable'
    start = Math.max(0, size - n)
    end = size - 1
  } else {
    start = Number(a)
    end = b === '' ? size - 1 : Math.min(Number(b), size - 1)
    if (b !== '' && Number(b) < start) return undefined // invalid: ignore the Range
  }
  if (start >= size || size === 0) return 'unsatisfiable'
  return [start, end]
}

function purgeRequest (s: Session, cache: HttpCache, key: string, allowed: BlockList): void {
  const addr = s.conn.clientAddress
  if (!allowed.check(addr, addr.includes(':') ? 'ipv6' : 'ipv4')) {
    s.sendError(Errors.PURGE_FORBIDDEN)
    return
  }
  const n = cache.purgeUrl(key)
  const body = `purged ${n} entr${n === 1 ? 'y' : 'ies'}\n`
  s.status = n > 0 ? 200 : 404
  if (s.writeHead(s.status, ['content-type', 'text/plain; charset=utf-8', 'content-length', String(Buffer.byteLength(body))])) s.res.end(body)
}

/** §4.4: a successful unsafe request invalidates its URI and same-origin Location / Content-Location. */
function invalidateFor (state: CacheState, headers: readonly string[]): void {
  const cache = state.cache
  const at = state.at
  cache.invalidate(at.key)
  for (const name of ['location', 'content-location']) {
    const v = headerValue(headers, name)
    if (v === undefined) continue
    let u: URL
    try { u = new URL(v, `${at.scheme}://${at.origin}/`) } catch { continue }
    const a = parseAuthority(u.host)
    const scheme = u.protocol === 'https:' ? 'https' : 'http'
    // Other origins: never (§4.4).
    if (a === undefined || scheme !== at.scheme || originOf(scheme, a) !== at.origin) continue
    const path = normalizePath(u.pathname, state.paths)
    if (path !== undefined) cache.invalidate(cacheKey(scheme, at.origin, keyedTarget(path + u.search, state.route.key)))
  }
}

function firstValue (headers: readonly string[], lowerName: string): string | undefined {
  for (let i = 0; i < headers.length; i += 2) if (isName(headers[i]!, lowerName)) return headers[i + 1]
  return undefined
}

function withStatus (headers: string[], cache: HttpCache, outcome: Parameters<typeof cacheStatus>[1]): string[] {
  headers.push('cache-status', cacheStatus(cache.config.statusName, outcome))
  return headers
}

function ttlSeconds (entry: CacheEntry, now: number): number {
  return Math.round((entry.freshness - currentAge(entry, now)) / 1000)
}

/** The Age field lines of `headers`, flat. */
function ageFields (headers: readonly string[]): string[] {
  const out: string[] = []
  for (let i = 0; i + 1 < headers.length; i += 2) if (isName(headers[i]!, 'age')) out.push(headers[i]!, headers[i + 1]!)
  return out
}

function notAge (_v: string, i: number, all: readonly string[]): boolean {
  const name = i % 2 === 0 ? all[i]! : all[i - 1]!
  return name.length !== 3 || name.toLowerCase() !== 'age'
}

const BODY_HEADERS = new Set(['content-length', 'content-range', 'transfer-encoding'])
function notBodyHeader (_v: string, i: number, all: readonly string[]): boolean {
  const name = i % 2 === 0 ? all[i]! : all[i - 1]!
  return !BODY_HEADERS.has(name.toLowerCase())
}

const CONDITIONALS = new Set(['if-none-match', 'if-modified-since', 'if-match', 'if-unmodified-since', 'if-range', 'range'])
function withoutConditionals (headers: readonly string[]): string[] {
  const out: string[] = []
  for (let i = 0; i < headers.length; i += 2) {
    if (!CONDITIONALS.has(headers[i]!.toLowerCase())) out.push(headers[i]!, headers[i + 1]!)
  }
  return out
}

/**
 * Sink of a background revalidation (stale-while-revalidate): no client to
 * answer, the response only refreshes or replaces the stored entry.
 */
export class RefreshSink implements ResponseSink {
  readonly #s: Session
  readonly #state: CacheState
  readonly #released: () => void

  constructor (s: Session, state: CacheState, released: () => void) {
    this.#s = s
    this.#state = state
    this.#released = released
  }

  responseHead (status: number, statusText: string, rawHeaders: Buffer[]): boolean | string {
    const s = this.#s
    const headers = downstreamResponseHeaders(rawHeaders, s.responseVia, s.route!.responseOps)
    if (typeof headers === 'string') return headers // malformed: never stored
    cacheResponseHead(s, this.#state, status, statusText, headers)
    return true
  }

  responseData (chunk: Buffer): boolean {
    cacheResponseData(this.#state, chunk)
    return true
  }

  responseEnd (): void { cacheResponseEnd(this.#state) }
  responseError (): void { cacheSessionEnd(this.#state) }
  released (): void { this.#released() }
  fault (err: unknown): void {
    cacheSessionEnd(this.#state)
    this.#s.driver?.internalError(this.#s, err)
  }
}
