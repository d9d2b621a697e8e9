// The cache phase of the pipeline (Pingora's request_cache_filter /
// response_cache_filter). Before a request is forwarded, `cacheLookup`
// answers it from the cache, makes it wait for a fetch already in flight for
// the same key (collapsed forwarding), or hands it a CacheSink: a decorator
// in front of the client's sink (undici's cache handler shape) that records
// the upstream response, revalidates a stale entry, or replaces an error by a
// stale copy. The session knows nothing of any of this. RFC rules come from
// cache/policy.ts, entries from cache/build.ts, serving from cache/serve.ts,
// storage from cache/cache.ts.
import type { BlockList } from 'node:net'
import { buildEntry, ageFields } from '../cache/build.js'
import type { HttpCache, Inflight } from '../cache/cache.js'
import type { SharedCache } from '../cache/shared/shared-cache.js'
import { responseDirectives } from '../cache/targeted.js'
import { combinedValue, firstValue, type InterimHead } from '../fields.js'
import type { CacheEntry } from '../cache/entry.js'
import { cacheKey, keyedTarget, lockKey, type CacheTarget } from '../cache/key.js'
import type { CacheOutcome } from '../cache/outcome.js'
import {
  acceptsShared, answersOwnConditions, currentAge, headUpdates, invalidates, lookupAllowed, mergeRevalidated, notModified, parseAge, parseHttpDate,
  requestFacts, responseTags, revalidatedUnstorable, revalidationCookies, revalidationHeaders, revalidationSelects, storeDecision, usability,
  validatorsOnly, varyMatches, varyValues, type RequestFacts, type StoreOptions
} from '../cache/policy.js'
import { sendNotModified, serveEntry, serveHit, ttlSeconds, type ClientWriter } from '../cache/serve.js'
import { joinBody } from '../cache/store.js'
import { cacheStatus, type CacheStatusOutcome } from '../cache/status.js'
import type { PathNormalizationConfig, RouteCacheConfig } from '../config/schema.js'
import { Errors, type ErrorKind } from '../errors.js'
import type { ResponseSink } from '../upstream/pool.js'
import { originOf } from '../authority.js'
import { parseAbsoluteUrl } from './request-target.js'

/** What the cache phase needs of the client's session. */
export interface CacheClient extends ClientWriter {
  /** The client's raw request headers (conditionals, Range, Vary values). */
  readonly rawHeaders: readonly string[]
  /** The request has a body (h1 framing, or an h2 stream not ended with its headers): never cached. */
  readonly hasBody: boolean
  /** Date.now() at the request's start (RFC 9111 age arithmetic is wall-clock). */
  readonly startWall: number
  /** The socket peer, for PURGE's allow list. */
  readonly peerAddress: string
  readonly closed: boolean
  cacheOutcome: CacheOutcome | undefined
  /**
   * Whether its upstream answer is in the cache now, once that is known (the
   * body's end, or its head when refused then); undefined when it never
   * came to storing (answered from the cache, bypassed, failed before a head).
   */
  cacheStored: boolean | undefined
  /** The head sent upstream; a revalidation swaps the client's conditionals for the stored validators. */
  upstreamHeaders: string[]
  /** The sink upstream responses go to: the client itself, or a CacheSink in front of it. */
  sink: ResponseSink
  /** Called once when the client's side ends (response done, reset or client gone). */
  onClose: (() => void) | undefined
  sendError (kind: ErrorKind): void
  /** Something threw: contained to this request. */
  fault (err: unknown): void
  /** The upstream's response head arrived: times the exchange even when the cache answers instead (a 304, stale-if-error). */
  upstreamAnswered (): void
}

/** What the cache phase asks of the pipeline. */
export interface CacheForwarder<C extends CacheClient> {
  /** Forward `c`'s request upstream now (pick → dispatch), its responses into `c.sink`. */
  forward (c: C): void
  /** Fetch `c`'s request upstream in the background into `sink`; no client waits for it. */
  refresh (c: C, sink: ResponseSink): void
  /**
   * Send `c`'s request (its head as `c.upstreamHeaders` now is) upstream once
   * more, its responses into `sink`: a revalidation's 304 that matched
   * nothing stored. False when its body cannot be sent again.
   */
  refetch (c: C, sink: ResponseSink): boolean
}

/** Where and how one request's response is cached: fixed per request. */
export interface CacheScope {
  readonly cache: HttpCache
  readonly route: RouteCacheConfig
  readonly opts: StoreOptions
  readonly at: CacheTarget
  /** Who may send PURGE; undefined = PURGE is proxied like any method. */
  readonly purgeFrom: BlockList | undefined
  /** How paths are normalised, to key the URLs an unsafe method's answer names. */
  readonly paths: PathNormalizationConfig
}

/**
 * Run before forwarding. Returns true when the request was answered here or
 * will be (waiting on a collapsed fetch); false to forward now, with `c.sink`
 * set to a CacheSink that records or revalidates.
 */
export function cacheLookup<C extends CacheClient> (c: C, scope: CacheScope, fwd: CacheForwarder<C>): boolean {
  const { cache, at } = scope
  const method = c.method

  if (method === 'PURGE' && scope.purgeFrom !== undefined) {
    purgeRequest(c, cache, at.key, scope.purgeFrom)
    return true
  }
  const facts = requestFacts(method, c.rawHeaders, c.hasBody)
  const state = new CacheState(scope, facts, c.rawHeaders, c.startWall)
  if (!lookupAllowed(facts)) {
    c.cacheOutcome = 'bypass'
    // Unsafe methods go through; a success invalidates (see CacheSink.responseHead).
    attach(c, state, fwd)
    return false
  }

  const now = Date.now()
  const { entry, found } = cache.store.select(at.key, at.variant, (names) => varyValues(names, c.rawHeaders, at.coding))
  state.fwd = entry !== undefined ? 'stale' : found ? 'vary-miss' : 'uri-miss'

  if (entry !== undefined) {
    if (answerStored(c, state, entry, now, fwd, undefined)) return true
    attach(c, state, fwd)
    // Stale: concurrent revalidations of it collapse as misses do, one goes upstream. Not
    // a request that asks for its own validation (no-cache, max-age, min-fresh).
    const lock = lockKey(at)
    const inflight = cache.inflight(lock)
    if (inflight !== undefined && collapsesRevalidation(facts)) {
      waitFor(c, state, inflight, fwd)
      return true
    }
    if (inflight === undefined) state.leader = cache.lead(lock)
    cache.counters.misses++
    return false
  }

  if (facts.cc.onlyIfCached) {
    // §5.2.1.7: a stored response or 504, never the origin; the other instances' count as stored.
    const shared = cache.shared
    if (shared === undefined || !shared.up) c.sendError(Errors.ONLY_IF_CACHED)
    else void onlyIfCachedShared(c, state, shared, fwd).catch((err: unknown) => { c.fault(err) })
    return true
  }

  attach(c, state, fwd)
  const lock = lockKey(at)
  if (cache.uncacheable(lock)) {
    // Hit-for-miss: its last answer could not be stored, so nobody waits for anybody's
    // fetch (nor asks Redis); an answer that can be stored is still stored, and ends this.
    missed(c, cache)
    return false
  }
  const inflight = cache.inflight(lock)
  if (inflight !== undefined) {
    // Collapse: wait for the request already fetching this key, then serve what it stored.
    // Counted when the wait ends: collapsed if it was answered from that fetch, a miss if it goes upstream.
    c.cacheOutcome = 'miss'
    waitFor(c, state, inflight, fwd)
    return true
  }
  state.leader = cache.lead(lock)
  if (validatorsOnly(facts)) {
    // A browser revalidating what it holds, on a miss: the whole response is fetched, so
    // it can be stored, and the client's validators are answered from its head (CacheSink).
    c.upstreamHeaders = unconditional(c.upstreamHeaders)
    state.ownValidators = true
  } else if (!fillsCache(facts)) {
    // A HEAD, conditional or Range request cannot store what a plain GET waiting on it needs.
    state.leader.handover = true
  }
  const shared = cache.shared
  if (shared === undefined || !shared.up) {
    missed(c, cache)
    return false
  }
  // Local requests for this key wait on this one while it asks the other instances (Redis) first.
  void sharedLookup(c, state, shared, lock, fwd).catch((err: unknown) => { c.fault(err) })
  return true
}

/** Counted as a miss: what the request finds upstream is its answer. */
function missed (c: CacheClient, cache: HttpCache): void {
  cache.counters.misses++
  c.cacheOutcome = 'miss'
}

/**
 * A stored entry matched the request: answer from it (fresh, or stale as the
 * request or the entry allows). True when answered; false when `c` must be
 * forwarded to revalidate it (its upstream head already carries our
 * validators; the caller attaches the cache sink).
 */
function answerStored<C extends CacheClient> (c: C, state: CacheState, entry: CacheEntry, now: number, fwd: CacheForwarder<C>,
  detail: 'shared' | undefined): boolean {
  const { cache, at } = state.scope
  const facts = state.facts
  const method = c.method
  const u = usability(facts, entry, now)
  if (u.fresh) {
    answerHit(c, state, entry, now, undefined, detail)
    return true
  }
  if (u.mayServeStale) {
    answerHit(c, state, entry, now, 'max-stale', detail)
    return true
  }
  if (u.staleWhileRevalidate) {
    answerHit(c, state, entry, now, 'stale-while-revalidate', detail)
    // The background fetch is a GET (a HEAD answer could not replace the stored body); it
    // revalidates with our validators, so a 304 freshens the entry.
    const lock = lockKey(at)
    if (method === 'GET' && cache.inflight(lock) === undefined) {
      c.upstreamHeaders = revalidating(c.upstreamHeaders, entry)
      const refresh = new CacheState(state.scope, facts, c.rawHeaders, c.startWall)
      refresh.fwd = 'stale'
      refresh.stale = entry
      refresh.leader = cache.lead(lock)
      fwd.refresh(c, new CacheSink(refresh, new BackgroundSink(c), undefined, undefined))
    }
    return true
  }
  // §5.2.1.7: only-if-cached never goes to the origin, not even to revalidate.
  if (facts.cc.onlyIfCached) {
    c.sendError(Errors.ONLY_IF_CACHED)
    return true
  }
  // Stale: revalidate with our validators (the client's own conditionals are answered by us).
  c.cacheOutcome = 'revalidate'
  state.stale = entry
  c.upstreamHeaders = revalidating(c.upstreamHeaders, entry)
  return false
}

/**
 * A local miss with a shared cache: look in Redis (taking the fetch lock when
 * nothing is there). Found: fill the local cache and answer from it. Another
 * instance fetching: wait for its entry up to collapseTimeout. Otherwise, or
 * when Redis fails: go upstream, and the response is stored in both levels.
 */
async function sharedLookup<C extends CacheClient> (c: C, state: CacheState, shared: SharedCache, lockText: string,
  fwd: CacheForwarder<C>): Promise<void> {
  const { cache, at } = state.scope
  const timeout = cache.config.collapseTimeout
  let found = await shared.lookup(at.key, lockText, timeout)
  if (found.lock === 'theirs' && !c.closed) {
    await shared.waitFill(at.key, lockText, timeout)
    // Their entry, or the lock for ourselves when they stored nothing.
    found = await shared.lookup(at.key, lockText, timeout)
  }
  if (found.epoch !== undefined) state.epoch = found.epoch
  if (found.held !== undefined) {
    if (state.leader !== undefined) state.leader.sharedLock = found.held
    else shared.release(found.held)
  }
  if (c.closed) {
    state.finishLeader(undefined, true)
    return
  }
  const now = Date.now()
  const { entry, sameVariant } = takeShared(c, state, found.entries)
  if (entry !== undefined) {
    const u = usability(state.facts, entry, now)
    // Served from it: local requests waiting on this one get it too (a stale one they judge
    // for themselves), and a stale-while-revalidate refresh may take the local lock.
    if (u.fresh || u.mayServeStale || u.staleWhileRevalidate || state.facts.cc.onlyIfCached) state.finishLeader(u.fresh ? entry : undefined)
    if (answerStored(c, state, entry, now, fwd, 'shared')) return
    // Stale: this request revalidates it upstream, still leading the local waiters.
    cache.counters.misses++
    state.fwd = 'stale'
    fwd.forward(c)
    return
  }
  if (sameVariant) state.fwd = 'vary-miss'
  missed(c, cache)
  fwd.forward(c)
}

/**
 * The entries another instance stored for this key that this route may use
 * go into the local cache; the one matching the request's variant and Vary
 * values is returned.
 */
function takeShared (c: CacheClient, state: CacheState, entries: readonly CacheEntry[]): { entry: CacheEntry | undefined, sameVariant: boolean } {
  const { cache, at } = state.scope
  let entry: CacheEntry | undefined
  let sameVariant = false
  for (const v of entries) {
    if (v.variant !== at.variant || !acceptsShared(v, state.scope.opts)) continue
    cache.fill(v, state.since)
    sameVariant = true
    if (entry === undefined && varyMatches(v, varyValues(v.varyNames, c.rawHeaders, at.coding))) entry = v
  }
  return { entry, sameVariant }
}

/** only-if-cached after a local miss: what Redis has (answered as any stored entry is), else 504. */
async function onlyIfCachedShared<C extends CacheClient> (c: C, state: CacheState, shared: SharedCache, fwd: CacheForwarder<C>): Promise<void> {
  const found = await shared.lookup(state.scope.at.key, undefined, 0)
  if (c.closed) return
  const { entry } = takeShared(c, state, found.entries)
  // answerStored never forwards an only-if-cached request: a stored entry it cannot use is a 504 there too.
  if (entry === undefined || !answerStored(c, state, entry, Date.now(), fwd, 'shared')) c.sendError(Errors.ONLY_IF_CACHED)
}

/**
 * Wait for the fetch in flight until `deadline` (collapseTimeout after the
 * request began to wait), then serve what it stored. When it ended with
 * nothing stored for a reason that says nothing about the URL (Inflight.handover:
 * its client went away, or it was a HEAD, conditional or Range request), the
 * first plain GET waiting fetches for the others, who wait on it in turn,
 * instead of every waiter going upstream at once (nginx's proxy_cache_lock
 * passes on the same way). Otherwise (an answer that cannot be stored, an
 * upstream failure, the wait timed out) each goes upstream itself.
 */
function waitFor<C extends CacheClient> (c: C, state: CacheState, inflight: Inflight, fwd: CacheForwarder<C>,
  deadline = Date.now() + state.scope.cache.config.collapseTimeout): void {
  const cache = state.scope.cache
  const timer = setTimeout(() => inflight.settle(undefined), Math.max(0, deadline - Date.now()))
  void inflight.done.then((stored) => {
    clearTimeout(timer)
    if (c.closed) return
    try {
      const t = Date.now()
      if (stored !== undefined && varyMatches(stored, varyValues(stored.varyNames, c.rawHeaders, state.scope.at.coding)) &&
        usability(state.facts, stored, t).fresh) {
        cache.counters.hits++
        cache.counters.collapsed++
        c.cacheOutcome = 'collapsed'
        serveHit(c, state.facts, stored, t, cache.hitHeads, cache.config.statusName, true)
        return
      }
      const lock = lockKey(state.scope.at)
      if (stored === undefined && inflight.handover && t < deadline && !cache.uncacheable(lock)) {
        const next = cache.inflight(lock)
        // Another waiter took over first.
        if (next !== undefined && next !== inflight && !next.settled) return waitFor(c, state, next, fwd, deadline)
        if (next === undefined && fillsCache(state.facts)) {
          state.leader = cache.lead(lock)
          state.fetchBegins()
          goesUpstream(c, state)
          fwd.forward(c)
          return
        }
      }
      // Nothing usable: go upstream ourselves, uncollapsed.
      goesUpstream(c, state)
      if (state.stale === undefined) state.fwd = 'request'
      fwd.forward(c)
    } catch (err) {
      c.fault(err)
    }
  })
}

/** A plain GET: what it fetches can be stored for the requests waiting on it. */
function fillsCache (facts: RequestFacts): boolean {
  return facts.method === 'GET' && !facts.conditional
}

/** A stale response's revalidation this request may share with another's: it asks for no validation of its own. */
function collapsesRevalidation (facts: RequestFacts): boolean {
  const cc = facts.cc
  return !cc.noCache && !facts.pragmaNoCache && cc.maxAge === undefined && cc.minFresh === undefined
}

/** A waiter goes upstream: a miss, or a stale response's revalidation (with its validators). */
function goesUpstream (c: CacheClient, state: CacheState): void {
  if (state.stale === undefined) missed(c, state.scope.cache)
  else state.scope.cache.counters.misses++
}

/** The upstream responses of `c` go through the cache first. */
function attach<C extends CacheClient> (c: C, state: CacheState, fwd: CacheForwarder<C>): void {
  const sink = new CacheSink(state, c.sink, c, (next) => fwd.refetch(c, next))
  c.sink = sink
  c.onClose = () => sink.clientClosed()
}

/** Answer from a stored entry without going upstream: fresh, or stale as `staleBy` allows. */
function answerHit (c: CacheClient, state: CacheState, entry: CacheEntry, now: number,
  staleBy: 'max-stale' | 'stale-while-revalidate' | undefined, from: 'shared' | undefined): void {
  const cache = state.scope.cache
  c.cacheOutcome = staleBy === undefined ? 'hit' : 'stale'
  // Hits are fresh answers only: a stale one is counted once, as stale served.
  if (staleBy === undefined) cache.counters.hits++
  else cache.counters.staleServed++
  if (staleBy === undefined && from === undefined) return serveHit(c, state.facts, entry, now, cache.hitHeads, cache.config.statusName, false)
  // RFC 9211 detail: where the hit came from, then why a stale one was served.
  const detail = from === undefined ? staleBy : staleBy === undefined ? from : `${from} ${staleBy}`
  serveEntry(c, state.facts, entry, now, cacheStatus(cache.config.statusName, {
    hit: true, ttl: ttlSeconds(entry, now), detail
  }))
}

/** Per-request cache state, owned by the request's CacheSink. */
class CacheState {
  /** The stale entry being revalidated by this request's upstream exchange. */
  stale: CacheEntry | undefined
  /** This request is the one fetching the key; others wait on it. */
  leader: Inflight | undefined
  /** What Cache-Status says about the forward. */
  fwd: 'uri-miss' | 'vary-miss' | 'stale' | 'request' | 'bypass' = 'bypass'
  /** The cache's removals.seq when the request's fetch began: a purge after it keeps its answer out (see put). */
  since: number
  /** The shared cache's purge state when the fetch began (its lookup's epoch and URL marker, when it made one): see SharedCache.store. */
  epoch: string | undefined
  /** The client's If-None-Match / If-Modified-Since were kept from the fetch (validatorsOnly): the answer's head answers them. */
  ownValidators = false

  constructor (readonly scope: CacheScope, readonly facts: RequestFacts, readonly requestHeaders: readonly string[],
    /** Date.now() when the request started (the entry's request time). */
    readonly requestTime: number) {
    this.since = scope.cache.removals.seq
    this.epoch = scope.cache.shared?.epoch
  }

  /**
   * A waiter takes the fetch over (waitFor): its fetch begins now, so only a
   * purge from now on keeps it out. With the request's own start, a purge
   * that overtook the fetch it waited on would overtake this one too, and
   * every waiter in turn would fetch again, one after another.
   */
  fetchBegins (): void {
    this.since = this.scope.cache.removals.seq
    this.epoch = this.scope.cache.shared?.epoch
  }

  /**
   * The leader is done: wake the waiters with what it stored (or nothing).
   * `handover`: it ended for its client's reasons, not the URL's (see waitFor).
   * Not with what a purge or invalidation since its request began removed
   * (see HttpCache.put): a waiter may have come after that purge.
   */
  finishLeader (entry: CacheEntry | undefined, handover = false): void {
    const f = this.leader
    if (f === undefined) return
    this.leader = undefined
    const cache = this.scope.cache
    const kept = entry !== undefined && cache.removals.allows(entry, this.since) ? entry : undefined
    // A purge says nothing about the URL either.
    if (handover || kept !== entry) f.handover = true
    cache.finish(f, kept)
  }

  entry (status: number, statusText: string, headers: readonly string[], body: Buffer, responseTime: number,
    freshness?: number): CacheEntry | undefined {
    const { at, opts, cache } = this.scope
    return buildEntry(cache.interner, { key: at.key, variant: at.variant, requestHeaders: this.requestHeaders, opts, coding: at.coding }, status, statusText,
      headers, body, this.requestTime, responseTime, freshness)
  }
}

interface Recording {
  readonly status: number
  readonly statusText: string
  readonly headers: readonly string[]
  readonly freshness: number
  readonly responseTime: number
  readonly chunks: Buffer[]
  size: number
}

/**
 * The cache in front of the client's sink: passes the response on (with
 * Cache-Status) while recording it for the store, or withholds it and
 * answers from the cache instead (a 304 that freshened a stale entry, an
 * error replaced by a stale copy). `client` is undefined for a background
 * refresh, which nobody waits for.
 */
export class CacheSink implements ResponseSink {
  readonly #state: CacheState
  readonly #inner: ResponseSink
  readonly #client: CacheClient | undefined
  /** Sends the client's request again into another sink (CacheForwarder.refetch); undefined for a background refresh. */
  readonly #refetch: ((sink: CacheSink) => boolean) | undefined
  #recording: Recording | undefined
  /**
   * Where the upstream answer goes: to the client (through this sink); to
   * nobody, the cache having answered instead (or going to fetch it again);
   * to the recording alone, the client having had its 304 (#notModifiedHere).
   */
  #upstreamTo: 'client' | 'nobody' | 'store' = 'client'
  /** The 304 named another representation than the stored one: fetch the current one whole once it ends. */
  #superseded = false

  constructor (state: CacheState, inner: ResponseSink, client: CacheClient | undefined,
    refetch: ((sink: CacheSink) => boolean) | undefined) {
    this.#state = state
    this.#inner = inner
    this.#client = client
    this.#refetch = refetch
  }

  /** Interim responses go to the client as they come; the cache keeps only final responses. */
  responseInterim (status: 102 | 103, head: InterimHead): void {
    if (this.#upstreamTo === 'client') this.#inner.responseInterim(status, head)
  }

  responseHead (status: number, statusText: string, headers: string[]): boolean {
    this.#client?.upstreamAnswered()
    const state = this.#state
    const { cache, at } = state.scope
    const now = Date.now()
    if (!lookupAllowed(state.facts)) {
      if (invalidates(state.facts.method, status)) invalidateFor(state, headers)
      return this.#pass(status, statusText, headers, { fwd: 'bypass', fwdStatus: status })
    }
    const stale = state.stale
    if (stale !== undefined && (status === 304 || (status === 200 && state.facts.method === 'HEAD'))) {
      if (status === 304 && !revalidationSelects(stale, headers)) {
        // §4.3.4: it names another representation, so it updates nothing, and the stored
        // one is no longer current. The client gets the current one (see #fetchAgain).
        cache.store.delete(at.key)
        cache.counters.revalidated200++
        this.#upstreamTo = 'nobody'
        this.#superseded = true
        return true
      }
      if (status === 200 && !headUpdates(stale, headers)) {
        // §4.3.5: a HEAD answer that disagrees with the stored GET: that one is stale for good.
        cache.store.delete(at.key)
        return this.#pass(status, statusText, headers, { fwd: state.fwd, fwdStatus: status })
      }
      // §4.3.4 / §4.3.5: freshen the stored response with the 304's (or the HEAD
      // 200's) fields, then answer from it. Its Age (dropped from the stored
      // fields) still counts for the new entry's age.
      const merged = mergeRevalidated(stale.headers, headers)
      const entry = state.entry(stale.status, stale.statusText, merged.concat(ageFields(headers)), stale.body, now)
      cache.counters.revalidated304++
      const unstorable = entry === undefined ? undefined : revalidatedUnstorable(entry.status, entry.cc)
      if (entry !== undefined && unstorable !== undefined) {
        // §3: it now says no-store or private, so a shared cache must not keep it (Varnish's
        // builtin VCL makes the merged object uncacheable too). This client still gets the
        // stored body the 304 confirmed, with the 304's fields.
        cache.store.delete(at.key)
        this.#notStored()
        if (state.facts.method === 'GET') cache.markUncacheable(lockKey(at))
        state.finishLeader(undefined)
        return this.#answer(entry, now, { fwd: 'stale', fwdStatus: status, detail: unstorable }, revalidationCookies(headers))
      }
      if (entry !== undefined) this.#told(cache.put(entry, state.leader, state.since, state.epoch))
      state.finishLeader(entry)
      // The 304's Set-Cookie is not stored (mergeRevalidated), but it was meant for this client.
      return this.#answer(entry ?? stale, now, { fwd: 'stale', fwdStatus: status, ttl: ttlSeconds(entry ?? stale, now) }, revalidationCookies(headers))
    }
    if (stale !== undefined && status >= 500 && usability(state.facts, stale, now).staleIfErrorUntil > now) {
      cache.counters.staleServed++
      state.finishLeader(undefined)
      return this.#answer(stale, now, { fwd: 'stale', fwdStatus: status, ttl: ttlSeconds(stale, now), detail: 'stale-if-error' })
    }
    if (stale !== undefined) cache.counters.revalidated200++

    const cc = responseDirectives(headers, state.scope.opts.targets, cache.interner)
    const decision = storeDecision(state.facts, status, headers, cc, now, state.scope.opts)
    const length = Number(combinedValue(headers, 'content-length') ?? NaN)
    let detail: string | undefined
    if (!decision.store) detail = decision.reason
    // What the store can hold (maxEntryBytes counts the whole entry, and a worker's share of maxBytes may be less).
    else if (length > cache.store.maxBodyBytes) detail = 'too large'
    // A purge or invalidation since the request began keeps its answer out
    // (see HttpCache.put): known now, so the head does not say `stored`.
    else if (!cache.removals.allows({ key: at.key, tags: responseTags(headers) }, state.since)) detail = PURGED
    if (detail !== undefined || !decision.store) {
      // A new full response replaces the stored one (§4.3.3); if it cannot be stored, the old must not linger.
      if (stale !== undefined) cache.store.delete(at.key)
      this.#notStored()
      // A GET's answer says what this URL gives (a HEAD's can never be stored): stop collapsing its misses.
      // A purge says nothing about the URL, nor does a 304 or 206 to the client's own conditionals or
      // Range, unless its fields would keep a whole answer out too: the next answer is stored as usual.
      const own = answersOwnConditions(state.facts, status) && storeDecision(state.facts, 200, headers, cc, now, state.scope.opts).store
      if (state.facts.method === 'GET' && detail !== PURGED && !own) cache.markUncacheable(lockKey(at))
      // Waiters must not wait for a response that will not be stored.
      state.finishLeader(undefined)
      const outcome = { fwd: state.fwd, fwdStatus: status, detail }
      if (this.#notModifiedHere(status, headers, length, now, outcome)) return true
      return this.#pass(status, statusText, headers, outcome)
    }
    // Age stays in: the entry reads it (for its age) and leaves it out of the stored fields.
    this.#recording = { status, statusText, headers: headers.slice(), freshness: decision.freshness, responseTime: now, chunks: [], size: 0 }
    // `stored` goes with the head, before the body: it says the answer is
    // being stored, which it is once the body arrives whole. A body cut short
    // or grown past maxEntryBytes, or a purge before its end, is not stored
    // after all (the counters say so: see responseData, end, HttpCache.put);
    // the client of a cut body sees the cut itself.
    // ttl: what is left of its freshness (RFC 9211 §2.4): the age it arrived with (its Age field, or
    // how long ago its Date was) already counts, in whole seconds as a hit's Age field gives it.
    const age = currentAge({
      ageValue: parseAge(headers) ?? 0, date: parseHttpDate(firstValue(headers, 'date')) ?? now, requestTime: state.requestTime, responseTime: now
    }, now)
    const ttl = Math.round(decision.freshness / 1000) - Math.floor(age / 1000)
    const outcome = { fwd: state.fwd, fwdStatus: status, stored: true, ttl }
    if (this.#notModifiedHere(status, headers, length, now, outcome)) return true
    return this.#pass(status, statusText, headers, outcome)
  }

  /**
   * The client's validators, kept from the fetch (validatorsOnly), match what
   * came: the client gets a 304 now, and the body (of a known length the store
   * could take, so the drain is bounded) goes on behind it, into the store
   * when it is being recorded, else nowhere. False: the whole answer goes on.
   */
  #notModifiedHere (status: number, headers: string[], length: number, now: number, outcome: CacheStatusOutcome): boolean {
    const c = this.#client
    const state = this.#state
    if (!state.ownValidators || c === undefined || !(length >= 0 && length <= state.scope.cache.store.maxBodyBytes)) return false
    if (!notModified(state.facts, { status, etag: firstValue(headers, 'etag'), lastModified: parseHttpDate(firstValue(headers, 'last-modified')), date: now })) {
      return false
    }
    this.#upstreamTo = 'store'
    headers.push('cache-status', cacheStatus(state.scope.cache.config.statusName, outcome))
    sendNotModified(c, headers)
    return true
  }

  responseData (chunk: Buffer): boolean {
    if (this.#upstreamTo === 'nobody') return true
    const r = this.#recording
    if (r !== undefined) {
      r.size += chunk.length
      if (r.size > this.#state.scope.cache.store.maxBodyBytes) {
        this.#recording = undefined
        this.#notStored()
        this.#state.scope.cache.markUncacheable(lockKey(this.#state.scope.at))
        this.#state.finishLeader(undefined)
      } else {
        r.chunks.push(chunk)
      }
    }
    if (this.#upstreamTo === 'store') return true
    return this.#inner.responseData(chunk)
  }

  /** The upstream body completed intact: store it, wake the waiters. */
  responseEnd (trailers: Buffer[]): void {
    // The client was answered from the cache; only the waiters are left to wake.
    if (this.#upstreamTo === 'nobody') {
      if (this.#superseded) this.#fetchAgain()
      return this.end()
    }
    const r = this.#recording
    this.#recording = undefined
    if (r === undefined) {
      this.#state.finishLeader(undefined)
    } else {
      const entry = this.#state.entry(r.status, r.statusText, r.headers, joinBody(r.chunks, r.size), r.responseTime, r.freshness)
      this.#told(entry !== undefined && this.#state.scope.cache.put(entry, this.#state.leader, this.#state.since, this.#state.epoch))
      this.#state.finishLeader(entry)
    }
    if (this.#upstreamTo === 'client') this.#inner.responseEnd(trailers)
  }

  /** The exchange failed for good: a stale copy may answer instead (stale-if-error). */
  responseError (kind: ErrorKind, err: Error): void {
    // Upstream failed: its waiters go upstream themselves rather than one after another.
    if (kind !== Errors.CLIENT_ABORTED) this.#state.finishLeader(undefined)
    this.end()
    // The client has its 304: only the recording behind it failed.
    if (this.#upstreamTo === 'store') return
    const state = this.#state
    const stale = state.stale
    const now = Date.now()
    const c = this.#client
    if (kind !== Errors.CLIENT_ABORTED && stale !== undefined && c !== undefined && !c.answered &&
      usability(state.facts, stale, now).staleIfErrorUntil > now) {
      state.scope.cache.counters.staleServed++
      serveEntry(c, state.facts, stale, now, cacheStatus(state.scope.cache.config.statusName, {
        fwd: 'stale', ttl: ttlSeconds(stale, now), detail: 'stale-if-error'
      }))
      return
    }
    this.#inner.responseError(kind, err)
  }

  fault (err: unknown): void {
    this.#state.finishLeader(undefined)
    this.end()
    this.#inner.fault(err)
  }

  /** The client's side ended: what it was sent is all it gets, but a body recorded behind its 304 goes on to the store. */
  clientClosed (): void {
    if (this.#upstreamTo !== 'store') this.end()
  }

  /** Nothing more will be recorded (the client's side ended, or the exchange failed): never leave waiters hanging. */
  end (): void {
    // A recording still open: its head said `stored`, its body never came whole.
    if (this.#recording !== undefined) this.#notStored()
    this.#recording = undefined
    // Still leading here: its client went away mid-fetch, which says nothing about the URL.
    this.#state.finishLeader(undefined, true)
  }

  /**
   * After a 304 that matched nothing stored: the client's request goes again,
   * without validators, still leading the waiters; its answer is stored as a
   * miss's is. (A background refresh leaves it to the next request.)
   */
  #fetchAgain (): void {
    const c = this.#client
    const state = this.#state
    if (c === undefined || this.#refetch === undefined || c.closed) return
    const next = new CacheState(state.scope, state.facts, state.requestHeaders, state.requestTime)
    next.fwd = 'stale'
    next.leader = state.leader
    state.leader = undefined
    c.upstreamHeaders = unconditional(c.upstreamHeaders)
    const sink = new CacheSink(next, this.#inner, c, this.#refetch)
    c.onClose = () => sink.clientClosed()
    if (this.#refetch(sink)) return
    sink.end()
    this.#inner.responseError(Errors.UPSTREAM_BAD_RESPONSE,
      new Error('the 304 names another representation than the stored one, and the request body cannot be sent again'))
  }

  /** The answer is not stored after all: counted, and told to the access log. */
  #notStored (): void {
    this.#state.scope.cache.counters.notStored++
    this.#told(false)
  }

  /** What became of the answer, for the access log (HttpCache.put counts its own). */
  #told (stored: boolean): void {
    if (this.#client !== undefined) this.#client.cacheStored = stored
  }

  #pass (status: number, statusText: string, headers: string[], outcome: CacheStatusOutcome): boolean {
    headers.push('cache-status', cacheStatus(this.#state.scope.cache.config.statusName, outcome))
    return this.#inner.responseHead(status, statusText, headers)
  }

  /** Answer the client from `entry` and drain the upstream answer unseen. */
  #answer (entry: CacheEntry, now: number, outcome: CacheStatusOutcome, own?: readonly string[]): boolean {
    this.#upstreamTo = 'nobody'
    const c = this.#client
    if (c !== undefined) serveEntry(c, this.#state.facts, entry, now, cacheStatus(this.#state.scope.cache.config.statusName, outcome), own)
    return true
  }
}

/** Cache-Status detail of an answer a purge or invalidation since its request began keeps out of the cache. */
const PURGED = 'purged during the fetch'

/** Where a background refresh's response ends up after the cache: nowhere (nobody waits for it). */
class BackgroundSink implements ResponseSink {
  readonly #owner: CacheClient

  constructor (owner: CacheClient) {
    this.#owner = owner
  }

  responseInterim (): void {}
  responseHead (): boolean { return true }
  responseData (): boolean { return true }
  responseEnd (): void {}
  responseError (): void {}
  /** Reported through the request that started the refresh (its answer has long been sent). */
  fault (err: unknown): void { this.#owner.fault(err) }
}

function purgeRequest (c: CacheClient, cache: HttpCache, key: string, allowed: BlockList): void {
  const addr = c.peerAddress
  if (!allowed.check(addr, addr.includes(':') ? 'ipv6' : 'ipv4')) {
    c.sendError(Errors.PURGE_FORBIDDEN)
    return
  }
  const n = cache.purgeUrl(key)
  const shared = cache.shared
  if (cache.peers === undefined && shared === undefined) return purged(c, n)
  // Answered once every worker's cache has dropped it too, and Redis and the
  // other instances have been told (a Redis that cannot be reached is not an
  // error: the instances' own copies expire, and Redis failures never become 5xx).
  // Redis's copies count: a PURGE that removed the entry there was not a 404.
  Promise.all([cache.peers?.remove([key], 'purge') ?? 0, shared?.remove([key], 'purge')]).then(([others, inRedis]) => {
    if (!c.closed) purged(c, n + others + (inRedis ?? 0))
  }, () => {
    if (!c.closed) c.sendError(Errors.PURGE_INCOMPLETE)
  })
}

function purged (c: CacheClient, n: number): void {
  const body = Buffer.from(`purged ${n} entr${n === 1 ? 'y' : 'ies'}\n`)
  c.status = n > 0 ? 200 : 404
  c.bytesOut = body.length
  if (c.writeHead(c.status, ['content-type', 'text/plain; charset=utf-8', 'content-length', String(body.length)])) c.end(body)
}

/** §4.4: a successful unsafe request invalidates its URI and same-origin Location / Content-Location. */
function invalidateFor (state: CacheState, headers: readonly string[]): void {
  const { cache, at, route, paths } = state.scope
  const keys = [at.key]
  for (const name of ['location', 'content-location']) {
    const v = combinedValue(headers, name)
    if (v === undefined) continue
    // Parsed as a live request target would be (see parseAbsoluteUrl), so it names the key live traffic stored.
    const u = parseAbsoluteUrl(absoluteRef(v.trim(), at), paths)
    // Other origins: never (§4.4).
    if (u === undefined || u.scheme !== at.scheme || originOf(u.scheme, u.authority) !== at.origin) continue
    keys.push(cacheKey(u.scheme, at.origin, keyedTarget(u.path + u.search, route.key)))
  }
  for (const k of keys) cache.invalidate(k)
  // The other workers drop them within one IPC round trip, the other instances within one
  // Redis round trip; the response is not held for either.
  cache.peers?.remove(keys, 'invalidation').catch(() => {})
  void cache.shared?.remove(keys, 'invalidation')
}

/**
 * A Location / Content-Location value made absolute against the request's
 * URL (RFC 9110 §10.2.2, §8.7; RFC 3986 §5.2): the cache key is that URL. A
 * path- or query-relative one (`d`, `?v=2`) goes through WHATWG URL.
 */
function absoluteRef (ref: string, at: CacheTarget): string {
  if (/^https?:\/\//i.test(ref)) return ref
  if (ref.startsWith('//')) return `${at.scheme}:${ref}`
  if (ref.startsWith('/')) return `${at.scheme}://${at.origin}${ref}`
  try { return new URL(ref, at.key).href } catch { return '' }
}

const CONDITIONALS = new Set(['if-none-match', 'if-modified-since', 'if-match', 'if-unmodified-since', 'if-range', 'range'])

/** The upstream head with the client's conditionals replaced by `entry`'s validators. */
function revalidating (headers: readonly string[], entry: CacheEntry): string[] {
  const out = unconditional(headers)
  out.push(...revalidationHeaders(entry))
  return out
}

/** The upstream head without conditionals or Range: it asks for the whole current representation. */
function unconditional (headers: readonly string[]): string[] {
  const out: string[] = []
  for (let i = 0; i < headers.length; i += 2) {
    if (!CONDITIONALS.has(headers[i]!.toLowerCase())) out.push(headers[i]!, headers[i + 1]!)
  }
  return out
}
