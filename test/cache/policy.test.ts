import t from 'tap'
import { EMPTY_DIRECTIVES, parseCacheControl } from '../../src/cache/cache-control.js'
import type { CacheEntry } from '../../src/cache/entry.js'
import {
  acceptsShared, currentAge, freshnessLifetime, httpDate, invalidates, lookupAllowed, mergeRevalidated, notModified,
  parseHttpDate, requestFacts, responseTags, revalidationCookies, revalidationHeaders, revalidationSelects, sharedLifetime, storableHeaders, storeDecision,
  usability, VARY_ABSENT, varyMatches, varyNames, varyValues
} from '../../src/cache/policy.js'
import type { StoreOptions } from '../../src/cache/policy.js'

const S = 1000
const T0 = Date.UTC(2024, 0, 15, 12, 0, 0) // Mon, 15 Jan 2024 12:00:00 GMT
const D0 = 'Mon, 15 Jan 2024 12:00:00 GMT'
const OPTS: StoreOptions = { heuristic: true, heuristicMaxAge: 3600 * S, allowSetCookie: false, defaultTtl: undefined, targets: [] }
const GET = requestFacts('GET', [])

function decide (res: string[], opts: Partial<StoreOptions> = {}, status = 200, req = GET): ReturnType<typeof storeDecision> {
  let cc: string | undefined
  for (let i = 0; i < res.length; i += 2) if (res[i]!.toLowerCase() === 'cache-control') cc = res[i + 1]
  return storeDecision(req, status, res, parseCacheControl(cc), T0, { ...OPTS, ...opts })
}

function entry (over: Partial<CacheEntry> = {}): CacheEntry {
  return {
    key: 'http://h/',
    variant: '',
    status: 200,
    statusText: 'OK',
    headers: [],
    body: Buffer.alloc(0),
    requestTime: T0,
    responseTime: T0,
    cc: EMPTY_DIRECTIVES,
    freshness: 60 * S,
    date: T0,
    ageValue: 0,
    etag: undefined,
    lastModified: undefined,
    varyNames: [],
    varyValues: [],
    tags: [],
    size: 0,
    ...over
  }
}
const withCc = (cc: string, over: Partial<CacheEntry> = {}): CacheEntry => entry({ cc: parseCacheControl(cc), ...over })
const reqCc = (cc: string): ReturnType<typeof requestFacts> => requestFacts('GET', ['Cache-Control', cc])

// ------------------------------------------------------------ request facts

t.test('§5.2.1 requestFacts: Cache-Control from every field, names in any case, one pass', async (t) => {
  const r = requestFacts('GET', ['CACHE-CONTROL', 'max-age=5', 'Cache-Control', 'no-store', 'Range', 'bytes=0-1'])
  t.equal(r.method, 'GET')
  t.equal(r.cc.maxAge, 5 * S)
  t.equal(r.cc.noStore, true)
  t.equal(r.range, 'bytes=0-1')
  t.equal(r.authorization, false)
  t.equal(requestFacts('GET', []).cc, EMPTY_DIRECTIVES)
})

t.test('§5.4 Pragma: no-cache counts only when the request has no Cache-Control', async (t) => {
  t.equal(requestFacts('GET', ['Pragma', 'no-cache']).pragmaNoCache, true)
  t.equal(requestFacts('GET', ['pragma', 'foo, No-Cache']).pragmaNoCache, true)
  t.equal(requestFacts('GET', ['Pragma', 'no-cache', 'Cache-Control', 'max-age=10']).pragmaNoCache, false)
  t.equal(requestFacts('GET', ['Pragma', 'foo']).pragmaNoCache, false)
})

t.test('§3.5 requestFacts notices Authorization in any case', async (t) => {
  t.equal(requestFacts('GET', ['AUTHORIZATION', 'Bearer x']).authorization, true)
  t.equal(requestFacts('GET', ['authorization', '']).authorization, true)
})

t.test('RFC 9110 §13.1 conditional fields: If-None-Match joined, If-Modified-Since parsed (invalid or repeated → ignored)', async (t) => {
  const r = requestFacts('GET', ['If-None-Match', '"a"', 'if-none-match', 'W/"b"', 'If-Modified-Since', D0])
  t.equal(r.ifNoneMatch, '"a", W/"b"')
  t.equal(r.ifModifiedSince, T0)
  t.equal(requestFacts('GET', ['If-Modified-Since', 'yesterday']).ifModifiedSince, undefined)
  t.equal(requestFacts('GET', ['If-Modified-Since', D0, 'If-Modified-Since', D0]).ifModifiedSince, undefined)
  t.equal(requestFacts('GET', []).ifNoneMatch, undefined)
})

t.test('§4 lookupAllowed: GET and HEAD only (methods are case-sensitive)', async (t) => {
  t.equal(lookupAllowed(requestFacts('GET', [])), true)
  t.equal(lookupAllowed(requestFacts('HEAD', [])), true)
  for (const m of ['POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH', 'get']) t.equal(lookupAllowed(requestFacts(m, [])), false, m)
})

// ------------------------------------------------------------ storing (§3)

t.test('§3 a 200 with max-age is stored with that lifetime', async (t) => {
  t.same(decide(['Cache-Control', 'max-age=60']), { store: true, freshness: 60 * S })
})

t.test('§3 only responses to GET are stored (HEAD responses are not)', async (t) => {
  t.same(decide(['Cache-Control', 'max-age=60'], {}, 200, requestFacts('HEAD', [])), { store: false, reason: 'method not GET' })
  t.same(decide(['Cache-Control', 'max-age=60'], {}, 200, requestFacts('POST', [])), { store: false, reason: 'method not GET' })
})

t.test('§3 the status must be final; 206 and 304 are not stored', async (t) => {
  t.same(decide(['Cache-Control', 'max-age=60'], {}, 103), { store: false, reason: 'status not final' })
  t.same(decide(['Cache-Control', 'max-age=60'], {}, 600), { store: false, reason: 'status not final' })
  t.same(decide(['Cache-Control', 'max-age=60', 'Content-Range', 'bytes 0-1/10'], {}, 206), { store: false, reason: 'partial content' })
  t.same(decide(['Cache-Control', 'max-age=60', 'ETag', '"a"'], {}, 304), { store: false, reason: 'not modified' })
})

t.test('§3 no-store in the response: not stored', async (t) => {
  t.same(decide(['Cache-Control', 'no-store, max-age=60']), { store: false, reason: 'no-store' })
  t.same(decide(['cache-control', 'public', 'CACHE-CONTROL', 'no-store']), { store: false, reason: 'no-store' })
})

t.test('§5.2.1.5 no-store in the request: not stored', async (t) => {
  t.same(decide(['Cache-Control', 'max-age=60'], {}, 200, reqCc('no-store')), { store: false, reason: 'no-store in request' })
})

t.test('§5.2.2.3 must-understand: an understood status ignores no-store; an unknown one is not stored', async (t) => {
  t.same(decide(['Cache-Control', 'no-store, must-understand, max-age=60']), { store: true, freshness: 60 * S })
  t.same(decide(['Cache-Control', 'no-store, must-understand, max-age=60'], {}, 299), { store: false, reason: 'must-understand' })
  t.same(decide(['Cache-Control', 'must-understand, max-age=60'], {}, 299), { store: false, reason: 'must-understand' })
})

t.test('§5.2.2.7 private (unqualified): not stored by a shared cache; qualified private is', async (t) => {
  t.same(decide(['Cache-Control', 'private, max-age=60']), { store: false, reason: 'private' })
  t.same(decide(['Cache-Control', 'private="x-user", max-age=60']), { store: true, freshness: 60 * S })
})

t.test('§3.5 Authorization in the request: stored only with public, s-maxage or must-revalidate', async (t) => {
  const auth = requestFacts('GET', ['Authorization', 'Basic xyz'])
  t.same(decide(['Cache-Control', 'max-age=60'], {}, 200, auth), { store: false, reason: 'authorization' })
  t.same(decide(['Cache-Control', 'public, max-age=60'], {}, 200, auth), { store: true, freshness: 60 * S })
  t.same(decide(['Cache-Control', 's-maxage=30'], {}, 200, auth), { store: true, freshness: 30 * S })
  t.same(decide(['Cache-Control', 'must-revalidate, max-age=60'], {}, 200, auth), { store: true, freshness: 60 * S })
})

t.test('Set-Cookie in the response: not stored unless allowSetCookie', async (t) => {
  const res = ['Cache-Control', 'max-age=60', 'SET-COOKIE', 'a=1']
  t.same(decide(res), { store: false, reason: 'set-cookie' })
  t.same(decide(res, { allowSetCookie: true }), { store: true, freshness: 60 * S })
})

t.test('§4.1 Vary: * is never stored (it can never match)', async (t) => {
  t.same(decide(['Cache-Control', 'max-age=60', 'Vary', 'Accept, *']), { store: false, reason: 'vary *' })
  t.same(decide(['Cache-Control', 'max-age=60', 'vary', 'accept', 'Vary', '*']), { store: false, reason: 'vary *' })
  t.same(decide(['Cache-Control', 'max-age=60', 'Vary', 'Accept-Encoding']), { store: true, freshness: 60 * S })
})

t.test('§3 a status that is not heuristically cacheable needs explicit freshness or public', async (t) => {
  t.same(decide(['ETag', '"a"'], {}, 302), { store: false, reason: 'status not cacheable' })
  t.same(decide(['Last-Modified', 'Mon, 01 Jan 2024 00:00:00 GMT'], {}, 500), { store: false, reason: 'status not cacheable' })
  t.same(decide(['Cache-Control', 'max-age=10'], {}, 302), { store: true, freshness: 10 * S })
  t.same(decide(['Cache-Control', 'max-age=10'], {}, 503), { store: true, freshness: 10 * S })
  t.same(decide(['Date', D0, 'Expires', 'Mon, 15 Jan 2024 12:00:20 GMT'], {}, 302), { store: true, freshness: 20 * S })
  t.same(decide(['Cache-Control', 'public', 'ETag', '"a"'], {}, 302), { store: true, freshness: 0 }, 'public allows storing; the validator makes it useful')
  t.same(decide(['ETag', '"a"'], { defaultTtl: 60 * S }, 201), { store: false, reason: 'status not cacheable' }, 'defaultTtl does not make 201 cacheable')
})

t.test('§4.2.2 heuristically cacheable statuses are stored with a heuristic lifetime', async (t) => {
  const lm = ['Date', D0, 'Last-Modified', 'Mon, 15 Jan 2024 11:00:00 GMT'] // 1h old → 6 min
  for (const status of [200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501]) {
    t.same(decide(lm, {}, status), { store: true, freshness: 360 * S }, String(status))
  }
})

t.test('§3 a response with a validator but no freshness is stored with freshness 0, to be revalidated', async (t) => {
  t.same(decide(['ETag', '"a"']), { store: true, freshness: 0 })
  t.same(decide(['Date', D0, 'Last-Modified', 'Mon, 15 Jan 2024 11:00:00 GMT'], { heuristic: false }), { store: true, freshness: 0 })
  t.same(decide(['Cache-Control', 'max-age=0', 'ETag', '"a"']), { store: true, freshness: 0 })
})

t.test('§3 no explicit freshness, no validator, no heuristic, no defaultTtl → not stored', async (t) => {
  t.same(decide([]), { store: false, reason: 'no freshness and no validator' })
  t.same(decide(['Cache-Control', 'public']), { store: false, reason: 'no freshness and no validator' })
  t.same(decide(['Last-Modified', 'not a date']), { store: false, reason: 'no freshness and no validator' }, 'an invalid Last-Modified is no validator')
  t.same(decide(['Cache-Control', 'max-age=0']), { store: false, reason: 'no freshness and no validator' })
  t.same(decide(['Expires', '0']), { store: false, reason: 'no freshness and no validator' })
})

t.test('defaultTtl: the lifetime of a cacheable response that states none', async (t) => {
  t.same(decide([], { defaultTtl: 30 * S }), { store: true, freshness: 30 * S })
  t.same(decide(['Cache-Control', 'max-age=5'], { defaultTtl: 30 * S }), { store: true, freshness: 5 * S }, 'explicit wins')
  t.same(decide(['Cache-Control', 'public'], { defaultTtl: 30 * S }, 302), { store: true, freshness: 30 * S }, 'public allows caching')
})

t.test('§5.2.2.4 no-cache (unqualified): stored only with a validator, never fresh', async (t) => {
  t.same(decide(['Cache-Control', 'no-cache, max-age=60', 'ETag', '"a"']), { store: true, freshness: 0 })
  t.same(decide(['Cache-Control', 'no-cache, max-age=60']), { store: false, reason: 'no freshness and no validator' })
  t.same(decide(['Cache-Control', 'no-cache="set-cookie", max-age=60']), { store: true, freshness: 60 * S }, 'qualified no-cache does not prevent reuse')
})

t.test('RFC 5861: stale from the start but stale-while-revalidate / stale-if-error make it worth storing', async (t) => {
  t.same(decide(['Cache-Control', 'max-age=0, stale-if-error=600']), { store: true, freshness: 0 })
  t.same(decide(['Cache-Control', 'max-age=0, stale-while-revalidate=60']), { store: true, freshness: 0 })
  t.same(decide(['Cache-Control', 'max-age=0, must-revalidate, stale-if-error=600']), { store: false, reason: 'no freshness and no validator' })
})

// ------------------------------------------------------------ freshness lifetime (§4.2.1)

const life = (res: string[], status = 200, opts: Partial<StoreOptions> = {}): number => {
  let cc: string | undefined
  for (let i = 0; i < res.length; i += 2) if (res[i]!.toLowerCase() === 'cache-control') cc = res[i + 1]
  return freshnessLifetime(status, res, parseCacheControl(cc), T0, { ...OPTS, ...opts })
}

t.test('§4.2.1 s-maxage wins over max-age, which wins over Expires', async (t) => {
  const exp = ['Date', D0, 'Expires', 'Mon, 15 Jan 2024 13:00:00 GMT']
  t.equal(life(['Cache-Control', 's-maxage=10, max-age=20', ...exp]), 10 * S)
  t.equal(life(['Cache-Control', 'max-age=20', ...exp]), 20 * S)
  t.equal(life(exp), 3600 * S)
  t.equal(life(['Cache-Control', 'max-age=abc', ...exp]), 0, '§4.2.1 an invalid max-age is stale, Expires is not consulted')
})

t.test('§4.2.1 Expires − Date; Date absent or invalid → the response time', async (t) => {
  t.equal(life(['Expires', 'Mon, 15 Jan 2024 12:01:00 GMT']), 60 * S)
  t.equal(life(['Date', 'garbage', 'Expires', 'Mon, 15 Jan 2024 12:01:00 GMT']), 60 * S)
  t.equal(life(['Date', 'Mon, 15 Jan 2024 11:59:00 GMT', 'Expires', 'Mon, 15 Jan 2024 12:01:00 GMT']), 120 * S, 'origin clock used')
  t.equal(life(['Date', D0, 'Expires', 'Mon, 15 Jan 2024 11:00:00 GMT']), 0, 'in the past → 0')
})

t.test('§5.3 an invalid Expires (e.g. "0") means already expired', async (t) => {
  t.equal(life(['Expires', '0']), 0)
  t.equal(life(['Expires', '-1', 'Last-Modified', 'Mon, 01 Jan 2024 00:00:00 GMT']), 0, 'no heuristic when Expires is present')
  t.equal(life(['Expires', 'Mon, 15 Jan 2024 12:01:00 GMT', 'Expires', '0']), 60 * S, 'the first Expires is used')
})

t.test('§4.2.2 heuristic: 10% of Date − Last-Modified, capped at heuristicMaxAge', async (t) => {
  t.equal(life(['Date', D0, 'Last-Modified', 'Mon, 15 Jan 2024 11:00:00 GMT']), 360 * S)
  t.equal(life(['Last-Modified', 'Mon, 15 Jan 2024 11:00:00 GMT']), 360 * S, 'Date absent → response time')
  t.equal(life(['Date', D0, 'Last-Modified', 'Mon, 01 Jan 2024 12:00:00 GMT']), 3600 * S, 'capped')
  t.equal(life(['Date', D0, 'Last-Modified', 'Mon, 15 Jan 2024 11:00:00 GMT'], 200, { heuristic: false }), 0, 'heuristic off')
  t.equal(life(['Date', D0, 'Last-Modified', 'Mon, 15 Jan 2024 11:00:00 GMT'], 302), 0, 'not heuristically cacheable')
  t.equal(life(['Date', D0, 'Last-Modified', 'Mon, 15 Jan 2024 13:00:00 GMT']), 0, 'Last-Modified after Date')
  t.equal(life(['Date', D0]), 0, 'no Last-Modified')
})

t.test('defaultTtl comes before the heuristic, and only for a response that allows caching', async (t) => {
  t.equal(life(['Date', D0, 'Last-Modified', 'Mon, 15 Jan 2024 11:00:00 GMT'], 200, { defaultTtl: 5 * S }), 5 * S)
  t.equal(life([], 302, { defaultTtl: 5 * S }), 0)
  t.equal(life(['Cache-Control', 'public'], 302, { defaultTtl: 5 * S }), 5 * S)
})

// ------------------------------------------------------------ age (§4.2.3)

t.test('§4.2.3 current_age = corrected_initial_age + resident_time', async (t) => {
  // apparent_age = max(0, 3000 − 1500) = 1500; response_delay = 3000 − 1000 = 2000;
  // corrected_age_value = 5000 + 2000 = 7000; corrected_initial_age = 7000; resident = 10000 − 3000.
  t.equal(currentAge({ requestTime: 1000, responseTime: 3000, date: 1500, ageValue: 5000 }, 10000), 14000)
  // apparent age dominates when the Age header is small.
  t.equal(currentAge({ requestTime: 1000, responseTime: 3000, date: 0, ageValue: 0 }, 3000), 3000)
  // A Date later than the response (clock skew) gives apparent_age 0, not negative.
  t.equal(currentAge({ requestTime: 1000, responseTime: 1000, date: 9000, ageValue: 0 }, 2000), 1000)
  t.equal(currentAge({ requestTime: T0, responseTime: T0, date: T0, ageValue: 0 }, T0), 0)
})

// ------------------------------------------------------------ reuse (§4.2, §5.2, RFC 5861)

t.test('§4.2 fresh while age < freshness lifetime; stale from then on', async (t) => {
  const e = entry({ freshness: 60 * S })
  t.same(usability(GET, e, T0 + 59_999), { age: 59_999, fresh: true, mayServeStale: false, staleWhileRevalidate: false, staleIfErrorUntil: 0 })
  t.equal(usability(GET, e, T0 + 60 * S).fresh, false)
  t.equal(usability(GET, entry({ freshness: 0 }), T0).fresh, false, 'freshness 0 is never fresh')
})

t.test('§4.2.3 the upstream Age counts against freshness', async (t) => {
  const e = entry({ freshness: 60 * S, ageValue: 50 * S })
  t.equal(usability(GET, e, T0 + 9 * S).fresh, true)
  t.equal(usability(GET, e, T0 + 10 * S).fresh, false)
  t.equal(usability(GET, e, T0 + 10 * S).age, 60 * S)
})

t.test('§5.2.1.1 request max-age: the age must not exceed it', async (t) => {
  const e = entry({ freshness: 60 * S })
  t.equal(usability(reqCc('max-age=10'), e, T0 + 10 * S).fresh, true)
  t.equal(usability(reqCc('max-age=10'), e, T0 + 11 * S).fresh, false)
  t.equal(usability(reqCc('max-age=0'), e, T0 + 1).fresh, false)
  t.equal(usability(reqCc('max-age=0, max-stale'), e, T0 + 61 * S).mayServeStale, false, 'max-age still bounds the age with max-stale')
})

t.test('§5.2.1.3 request min-fresh: at least that much freshness must be left', async (t) => {
  const e = entry({ freshness: 60 * S })
  t.equal(usability(reqCc('min-fresh=20'), e, T0 + 40 * S).fresh, true)
  t.equal(usability(reqCc('min-fresh=20'), e, T0 + 41 * S).fresh, false)
})

t.test('§5.2.1.2 request max-stale: stale responses within the limit may be served', async (t) => {
  const e = entry({ freshness: 60 * S })
  const u = usability(reqCc('max-stale=10'), e, T0 + 70 * S)
  t.equal(u.fresh, false)
  t.equal(u.mayServeStale, true)
  t.equal(usability(reqCc('max-stale=10'), e, T0 + 70 * S + 1).mayServeStale, false)
  t.equal(usability(reqCc('max-stale'), e, T0 + 1e9).mayServeStale, true, 'no value: any staleness')
  t.equal(usability(GET, e, T0 + 61 * S).mayServeStale, false, 'no max-stale: never')
})

t.test('§4.2.4 / §5.2.2.2 / §5.2.2.8 / §5.2.2.10 a shared cache never serves must-revalidate, proxy-revalidate or s-maxage responses stale on max-stale', async (t) => {
  const req = reqCc('max-stale')
  for (const cc of ['max-age=60, must-revalidate', 'max-age=60, proxy-revalidate', 's-maxage=60']) {
    t.equal(usability(req, withCc(cc), T0 + 61 * S).mayServeStale, false, cc)
  }
  t.equal(usability(req, withCc('max-age=60'), T0 + 61 * S).mayServeStale, true)
})

t.test('§5.2.1.4 request no-cache: not fresh, not served stale (must revalidate)', async (t) => {
  const e = withCc('max-age=60, stale-while-revalidate=60')
  const u = usability(reqCc('no-cache, max-stale'), e, T0 + 1)
  t.equal(u.fresh, false)
  t.equal(u.mayServeStale, false)
  t.equal(usability(reqCc('no-cache'), e, T0 + 61 * S).staleWhileRevalidate, false)
})

t.test('§5.4 Pragma: no-cache without Cache-Control acts as request no-cache', async (t) => {
  t.equal(usability(requestFacts('GET', ['Pragma', 'no-cache']), entry(), T0 + 1).fresh, false)
  t.equal(usability(requestFacts('GET', ['Pragma', 'no-cache', 'Cache-Control', 'max-stale']), entry(), T0 + 1).fresh, true)
})

t.test('§5.2.2.4 response no-cache (unqualified): never fresh, never served stale', async (t) => {
  const e = withCc('no-cache, max-age=60, stale-while-revalidate=60, stale-if-error=60')
  const u = usability(reqCc('max-stale'), e, T0 + 1)
  t.same(u, { age: 1, fresh: false, mayServeStale: false, staleWhileRevalidate: false, staleIfErrorUntil: 0 })
})

t.test('RFC 5861 §3 stale-while-revalidate: stale by no more than its value', async (t) => {
  const e = withCc('max-age=60, stale-while-revalidate=30', { freshness: 60 * S })
  t.equal(usability(GET, e, T0 + 30 * S).staleWhileRevalidate, false, 'fresh: not needed')
  t.equal(usability(GET, e, T0 + 60 * S).staleWhileRevalidate, true)
  t.equal(usability(GET, e, T0 + 90 * S).staleWhileRevalidate, true)
  t.equal(usability(GET, e, T0 + 90 * S + 1).staleWhileRevalidate, false)
  t.equal(usability(reqCc('max-age=5'), e, T0 + 61 * S).staleWhileRevalidate, false, 'request max-age bounds the age')
  t.equal(usability(reqCc('min-fresh=1'), e, T0 + 61 * S).staleWhileRevalidate, false, 'request min-fresh wants fresh')
})

t.test('RFC 5861 §3 + §4.2.4 stale-while-revalidate: refused with must-revalidate / proxy-revalidate, honoured with s-maxage', async (t) => {
  t.equal(usability(GET, withCc('max-age=60, must-revalidate, stale-while-revalidate=30'), T0 + 61 * S).staleWhileRevalidate, false)
  t.equal(usability(GET, withCc('max-age=60, proxy-revalidate, stale-while-revalidate=30'), T0 + 61 * S).staleWhileRevalidate, false)
  // The origin's explicit RFC 5861 permission (the `s-maxage=N, stale-while-revalidate=M` idiom).
  t.equal(usability(GET, withCc('s-maxage=60, stale-while-revalidate=30'), T0 + 61 * S).staleWhileRevalidate, true)
})

t.test('RFC 5861 §4 stale-if-error: until when a stale response may be served on errors', async (t) => {
  const e = withCc('max-age=60, stale-if-error=300', { freshness: 60 * S })
  t.equal(usability(GET, e, T0 + 10 * S).staleIfErrorUntil, T0 + 360 * S, 'computed while fresh too')
  t.equal(usability(GET, e, T0 + 100 * S).staleIfErrorUntil, T0 + 360 * S)
  t.equal(usability(GET, e, T0 + 360 * S).staleIfErrorUntil, T0 + 360 * S)
  t.equal(usability(GET, e, T0 + 360 * S + 1).staleIfErrorUntil, 0, 'window over')
  t.equal(usability(GET, entry(), T0 + 100 * S).staleIfErrorUntil, 0, 'no directive')
  t.equal(usability(reqCc('stale-if-error=600'), entry(), T0 + 100 * S).staleIfErrorUntil, T0 + 660 * S, 'request directive')
  t.equal(usability(reqCc('stale-if-error=600'), e, T0).staleIfErrorUntil, T0 + 660 * S, 'the larger window')
  t.equal(usability(reqCc('no-cache'), e, T0).staleIfErrorUntil, T0 + 360 * S, 'request no-cache does not cancel the origin\'s error fallback')
})

t.test('RFC 5861 §4 + §4.2.4 stale-if-error: refused with must-revalidate / proxy-revalidate; request directive refused with s-maxage', async (t) => {
  t.equal(usability(GET, withCc('max-age=60, must-revalidate, stale-if-error=300'), T0 + 61 * S).staleIfErrorUntil, 0)
  t.equal(usability(GET, withCc('max-age=60, proxy-revalidate, stale-if-error=300'), T0 + 61 * S).staleIfErrorUntil, 0)
  t.equal(usability(GET, withCc('s-maxage=60, stale-if-error=300'), T0 + 61 * S).staleIfErrorUntil, T0 + 360 * S)
  t.equal(usability(reqCc('stale-if-error=300'), withCc('s-maxage=60'), T0 + 61 * S).staleIfErrorUntil, 0)
})

// ------------------------------------------------------------ Vary (§4.1)

t.test('§4.1 varyNames: lower-cased, deduplicated, sorted, from every field; * alone decides', async (t) => {
  t.same(varyNames(['Vary', 'Accept-Encoding, User-Agent', 'vary', 'accept-encoding,  Accept']), ['accept', 'accept-encoding', 'user-agent'])
  t.equal(varyNames(['Vary', 'Accept, *']), '*')
  t.same(varyNames([]), [])
  t.same(varyNames(['Vary', ' , ']), [])
})

t.test('§4.1 varyValues: fields combined, whitespace around commas normalized, absent = VARY_ABSENT', async (t) => {
  const req = ['Accept-Encoding', 'gzip,deflate', 'accept-encoding', ' br ', 'X-Other', 'a']
  t.same(varyValues(['accept-encoding', 'user-agent'], req), ['gzip, deflate, br', VARY_ABSENT])
  t.same(varyValues(['accept-encoding'], ['accept-encoding', 'gzip ,  deflate, br']), ['gzip, deflate, br'])
  t.same(varyValues([], req), [])
  // Vary: Cookie: h2 crumbs are matched as they go upstream ('; '), not as a single cookie with a comma in it.
  t.same(varyValues(['cookie'], ['cookie', 'lang=fr', 'cookie', 'consent=yes']), varyValues(['cookie'], ['cookie', 'lang=fr; consent=yes']))
  t.not(varyValues(['cookie'], ['cookie', 'lang=fr', 'cookie', 'consent=yes'])[0], varyValues(['cookie'], ['cookie', 'lang=fr, consent=yes'])[0])
})

t.test('§4.1 varyMatches compares the stored values with the request\'s', async (t) => {
  const e = entry({ varyNames: ['accept-encoding'], varyValues: ['gzip, br'] })
  t.ok(varyMatches(e, varyValues(e.varyNames, ['Accept-Encoding', 'gzip,br'])))
  t.notOk(varyMatches(e, varyValues(e.varyNames, ['Accept-Encoding', 'gzip'])))
  t.notOk(varyMatches(e, varyValues(e.varyNames, [])))
  // An empty field is sent; an absent one is not: neither selects the other's response.
  const empty = entry({ varyNames: ['x-token'], varyValues: [...varyValues(['x-token'], ['X-Token', ''])] })
  t.same(empty.varyValues, [''])
  t.notOk(varyMatches(empty, varyValues(['x-token'], [])), 'absent does not match empty')
  const absent = entry({ varyNames: ['x-token'], varyValues: [...varyValues(['x-token'], [])] })
  t.notOk(varyMatches(absent, varyValues(['x-token'], ['x-token', ''])), 'empty does not match absent')
  t.ok(varyMatches(absent, varyValues(['x-token'], ['accept', '*/*'])), 'absent matches absent')
  t.ok(varyMatches(entry(), []))
  t.notOk(varyMatches(entry(), ['x']))
})

// ------------------------------------------------------------ conditional requests

t.test('RFC 9110 §13.1.2 If-None-Match: weak comparison, lists, *', async (t) => {
  const e = entry({ etag: 'W/"v1"' })
  const inm = (v: string): boolean => notModified(requestFacts('GET', ['If-None-Match', v]), e)
  t.ok(inm('"v1"'))
  t.ok(inm('W/"v1"'))
  t.ok(inm('"x", W/"v1"'))
  t.ok(inm('"a,b" ,"v1"'), 'a comma inside a tag is not a separator')
  t.notOk(inm('"v1'), 'an unterminated tag matches nothing')
  t.notOk(inm('"v2"'))
  t.notOk(inm('"V1"'), 'case-sensitive')
  t.ok(inm('*'))
  t.notOk(notModified(requestFacts('GET', ['If-None-Match', '"v1"']), entry()), 'no stored ETag: no match')
  t.ok(notModified(requestFacts('GET', ['If-None-Match', '*']), entry()), '* matches any stored representation')
  t.ok(notModified(requestFacts('HEAD', ['if-none-match', '"abc"']), entry({ etag: '"abc"' })))
})

t.test('RFC 9110 §13.1.3 If-None-Match takes precedence over If-Modified-Since', async (t) => {
  const e = entry({ etag: '"v1"', lastModified: T0 - 3600 * S })
  t.notOk(notModified(requestFacts('GET', ['If-None-Match', '"v2"', 'If-Modified-Since', D0]), e))
  t.ok(notModified(requestFacts('GET', ['If-None-Match', '"v1"', 'If-Modified-Since', 'Mon, 01 Jan 1990 00:00:00 GMT']), e))
})

t.test('RFC 9110 §13.1.3 If-Modified-Since against Last-Modified', async (t) => {
  const e = entry({ lastModified: T0 - 3600 * S })
  const ims = (d: string): boolean => notModified(requestFacts('GET', ['If-Modified-Since', d]), e)
  t.ok(ims(httpDate(T0 - 3600 * S)), 'equal → not modified')
  t.ok(ims(D0), 'later → not modified')
  t.notOk(ims(httpDate(T0 - 3601 * S)), 'earlier → modified')
  t.notOk(ims('garbage'), 'invalid date is ignored')
})

t.test('RFC 9111 §4.3.2 If-Modified-Since against Date when the stored response has no Last-Modified', async (t) => {
  const e = entry({ date: T0 })
  t.ok(notModified(requestFacts('GET', ['If-Modified-Since', D0]), e))
  t.notOk(notModified(requestFacts('GET', ['If-Modified-Since', httpDate(T0 - S)]), e))
})

t.test('RFC 9110 §13.2.1 preconditions apply to GET/HEAD and a stored 2xx only', async (t) => {
  t.notOk(notModified(requestFacts('POST', ['If-None-Match', '*']), entry({ etag: '"a"' })))
  t.notOk(notModified(requestFacts('GET', ['If-None-Match', '*']), entry({ status: 404, etag: '"a"' })))
  t.notOk(notModified(GET, entry({ etag: '"a"' })), 'unconditional')
})

t.test('§4.3.1 revalidationHeaders: If-None-Match and If-Modified-Since from the stored validators', async (t) => {
  t.same(revalidationHeaders(entry({ etag: '"a"', lastModified: T0 })), ['if-none-match', '"a"', 'if-modified-since', D0])
  t.same(revalidationHeaders(entry({ etag: 'W/"a"' })), ['if-none-match', 'W/"a"'])
  t.same(revalidationHeaders(entry({ lastModified: T0 })), ['if-modified-since', D0])
  t.same(revalidationHeaders(entry()), [])
})

t.test('§3.2 / §4.3.4 mergeRevalidated: the 304\'s fields replace stored ones, representation metadata kept', async (t) => {
  const stored = ['Content-Type', 'text/html', 'Content-Length', '10', 'Content-Encoding', 'gzip', 'Cache-Control', 'max-age=60',
    'ETag', '"a"', 'Date', 'Mon, 15 Jan 2024 11:00:00 GMT', 'Link', '</a>', 'Link', '</b>', 'X-Keep', '1']
  const fresh = ['cache-control', 'max-age=120', 'date', D0, 'content-length', '0', 'Content-Encoding', 'br',
    'Content-Range', 'bytes 0-0/1', 'Transfer-Encoding', 'chunked', 'etag', '"a"', 'LINK', '</c>', 'Age', '5']
  t.same(mergeRevalidated(stored, fresh), [
    'Content-Type', 'text/html', 'Content-Length', '10', 'Content-Encoding', 'gzip', 'X-Keep', '1',
    'cache-control', 'max-age=120', 'date', D0, 'etag', '"a"', 'LINK', '</c>'
  ])
})

t.test('§3.1 / §3.2 mergeRevalidated: hop-by-hop and Connection-named fields are not taken; Set-Cookie neither', async (t) => {
  const stored = ['X-A', '1', 'X-B', '1']
  const fresh = ['Connection', 'x-a', 'X-A', '2', 'Keep-Alive', 'timeout=5', 'Set-Cookie', 's=1', 'Proxy-Authenticate', 'Basic', 'X-B', '2']
  t.same(mergeRevalidated(stored, fresh), ['X-A', '1', 'X-B', '2'])
  const same = mergeRevalidated(stored, [])
  t.same(same, stored)
  t.not(same, stored, 'a new array')
})

t.test('revalidationCookies: the 304\'s Set-Cookie fields, for the client that revalidated', async (t) => {
  t.same(revalidationCookies(['ETag', '"a"', 'Set-Cookie', 's=1', 'set-cookie', 't=2; Path=/', 'X-B', '2']), ['Set-Cookie', 's=1', 'set-cookie', 't=2; Path=/'])
  t.same(revalidationCookies(['ETag', '"a"']), [])
  t.same(revalidationCookies([]), [])
})

t.test('§3.1 storableHeaders: private="…" and no-cache="…" fields, proxy fields and Age are not stored', async (t) => {
  const h = ['Content-Type', 'text/plain', 'X-User', 'bob', 'Set-Cookie', 'a=1', 'Proxy-Authenticate', 'Basic', 'Age', '3', 'X-Ok', '1']
  t.same(storableHeaders(h, parseCacheControl('private="x-user", no-cache="Set-Cookie"')), ['Content-Type', 'text/plain', 'X-Ok', '1'])
  const clean = ['Content-Type', 'text/plain']
  t.equal(storableHeaders(clean, parseCacheControl('max-age=1')), clean, 'unchanged: the same array')
})

t.test('§4.4 invalidates: an unsafe method with a 2xx/3xx answer', async (t) => {
  t.ok(invalidates('POST', 200))
  t.ok(invalidates('PUT', 204))
  t.ok(invalidates('DELETE', 302))
  t.ok(invalidates('PATCH', 399))
  t.notOk(invalidates('POST', 404))
  t.notOk(invalidates('POST', 500))
  t.notOk(invalidates('POST', 100))
  for (const m of ['GET', 'HEAD', 'OPTIONS', 'TRACE']) t.notOk(invalidates(m, 200), m)
})

t.test('responseTags: Cache-Tag (comma) and Surrogate-Key (space), trimmed, deduplicated', async (t) => {
  t.same(responseTags(['Cache-Tag', 'a, b,,c ', 'surrogate-key', ' b  d\te ', 'CACHE-TAG', 'a', 'X', 'z']), ['a', 'b', 'c', 'd', 'e'])
  t.same(responseTags([]), [])
})

// ------------------------------------------------------------ HTTP-date

t.test('RFC 9110 §5.6.7 parseHttpDate: IMF-fixdate and the two obsolete forms', async (t) => {
  const x = Date.UTC(1994, 10, 6, 8, 49, 37)
  t.equal(parseHttpDate('Sun, 06 Nov 1994 08:49:37 GMT'), x)
  t.equal(parseHttpDate('Sunday, 06-Nov-94 08:49:37 GMT'), x)
  t.equal(parseHttpDate('Sun Nov  6 08:49:37 1994'), x)
  t.equal(parseHttpDate('Thu Nov 16 08:49:37 1994'), Date.UTC(1994, 10, 16, 8, 49, 37))
  t.equal(parseHttpDate('Wednesday, 01-Jan-25 00:00:00 GMT'), Date.UTC(2025, 0, 1), 'two-digit year below 70 → 20yy')
  t.equal(parseHttpDate(' Sun, 06 Nov 1994 08:49:37 GMT '), x, 'surrounding whitespace')
  t.equal(parseHttpDate('Thu, 29 Feb 2024 00:00:00 GMT'), Date.UTC(2024, 1, 29), 'leap day')
})

t.test('RFC 9110 §5.6.7 parseHttpDate: anything else is invalid', async (t) => {
  for (const s of [undefined, '', '0', '-1', '2024-01-15T12:00:00Z', '1705320000', 'sun, 06 nov 1994 08:49:37 gmt',
    'Sun, 06 Nov 1994 08:49:37 UTC', 'Sun, 6 Nov 1994 08:49:37 GMT', 'Sun, 31 Nov 1994 08:49:37 GMT',
    'Thu, 29 Feb 2023 00:00:00 GMT', 'Sun, 06 Nov 1994 24:00:00 GMT', 'Sun, 06 Nov 1994 08:60:00 GMT', 'Sun, 00 Nov 1994 08:49:37 GMT']) {
    t.equal(parseHttpDate(s), undefined, String(s))
  }
})

t.test('httpDate writes IMF-fixdate and round-trips', async (t) => {
  t.equal(httpDate(Date.UTC(1994, 10, 6, 8, 49, 37)), 'Sun, 06 Nov 1994 08:49:37 GMT')
  t.equal(httpDate(T0), D0)
  t.equal(parseHttpDate(httpDate(T0 + 123_000)), T0 + 123_000)
  t.equal(parseHttpDate(httpDate(T0 + 123_456)), T0 + 123_000, 'seconds precision')
})

t.test('sharedLifetime: the freshness left plus the longest stale window, 0 when of no more use', async (t) => {
  t.equal(sharedLifetime(entry(), T0), 60 * S)
  t.equal(sharedLifetime(entry(), T0 + 20 * S), 40 * S, 'its age counts')
  t.equal(sharedLifetime(entry({ ageValue: 50 * S }), T0), 10 * S, 'so does the Age it arrived with')
  t.equal(sharedLifetime(entry(), T0 + 61 * S), 0)
  const stale = parseCacheControl('max-age=60, stale-while-revalidate=30, stale-if-error=300')
  t.equal(sharedLifetime(entry({ cc: stale }), T0 + 100 * S), 260 * S, 'kept through stale-if-error')
  t.equal(sharedLifetime(entry({ cc: parseCacheControl('max-age=60, must-revalidate, stale-if-error=300') }), T0), 60 * S,
    'must-revalidate: never served stale, so no stale window')
  t.equal(sharedLifetime(entry({ cc: parseCacheControl('no-cache') }), T0), 0, 'no-cache: always revalidated, nothing to share')
})

t.test('acceptsShared: an entry with Set-Cookie from another instance is refused on a route that does not allow it', async (t) => {
  const withCookie = entry({ headers: ['Content-Type', 'text/plain', 'Set-Cookie', 'sid=1'] })
  t.notOk(acceptsShared(withCookie, OPTS))
  t.ok(acceptsShared(withCookie, { ...OPTS, allowSetCookie: true }))
  t.ok(acceptsShared(entry({ headers: ['content-type', 'text/plain'] }), OPTS))
})

t.test('RFC 9111 §4.3.4 revalidationSelects: a 304 naming another representation updates nothing', async (t) => {
  const tagged = entry({ etag: '"v1"', lastModified: T0 })
  t.ok(revalidationSelects(tagged, ['ETag', '"v1"']), 'the same strong ETag')
  t.notOk(revalidationSelects(tagged, ['ETag', '"v2"']), 'another ETag: the origin changed')
  t.notOk(revalidationSelects(tagged, ['ETag', 'W/"v2"']), 'another weak ETag')
  t.ok(revalidationSelects(entry({ etag: 'W/"v1"' }), ['ETag', '"v1"']),
    'the strong tag of a variant stored weak (compressed): the same representation')
  t.notOk(revalidationSelects(entry({ lastModified: T0 }), ['ETag', '"v1"']), 'an ETag when none is stored')
  t.ok(revalidationSelects(tagged, ['Last-Modified', D0]), 'no ETag, the same Last-Modified')
  t.notOk(revalidationSelects(entry({ lastModified: T0 }), ['Last-Modified', 'Mon, 15 Jan 2024 12:00:01 GMT']),
    'no ETag, another Last-Modified')
  t.ok(revalidationSelects(tagged, ['Cache-Control', 'max-age=60']), 'no validator at all: it answers the ones we sent')
  t.ok(revalidationSelects(entry({ etag: '"v1"' }), ['Last-Modified', D0]), 'a Last-Modified when none is stored: nothing contradicts')
})

t.test('a request with a body is never looked up nor stored (fat GET: the key does not hold the body)', async (t) => {
  t.ok(lookupAllowed(requestFacts('GET', [])))
  t.notOk(lookupAllowed(requestFacts('GET', ['Content-Length', '15'])), 'Content-Length')
  t.notOk(lookupAllowed(requestFacts('GET', ['Transfer-Encoding', 'chunked'])), 'chunked')
  t.ok(lookupAllowed(requestFacts('GET', ['Content-Length', '0'])), 'an empty body is none')
  t.notOk(lookupAllowed(requestFacts('GET', [], true)), 'h2: DATA without Content-Length (the session knows)')
  t.notOk(lookupAllowed(requestFacts('HEAD', ['content-length', '3'])))
})

t.test('a Vary on a field the proxy sets is not stored: the origin saw our value, not the client\'s', async (t) => {
  t.match(decide(['Cache-Control', 'max-age=60', 'Vary', 'X-Forwarded-For']), { store: false, reason: 'vary on a field the proxy sets' })
  t.match(decide(['Cache-Control', 'max-age=60', 'Vary', 'accept-language, Forwarded']), { store: false })
  t.match(decide(['Cache-Control', 'max-age=60', 'Vary', 'Accept-Language']), { store: true })
})

t.test('cache deception: with a Cookie, only a lifetime from the origin (or public) stores the answer, never a guess', async (t) => {
  const withCookie = requestFacts('GET', ['Cookie', 'session=abc'])
  const lm = ['Date', D0, 'Last-Modified', 'Mon, 01 Jan 2024 12:00:00 GMT']
  t.match(decide(lm), { store: true }, 'no Cookie: the heuristic lifetime')
  t.match(decide(lm, {}, 200, withCookie), { store: false, reason: 'cookie, and no lifetime from the origin' })
  t.match(decide(lm, { defaultTtl: 60 * S }, 200, withCookie), { store: false }, 'nor defaultTtl')
  t.match(decide(['Cache-Control', 'max-age=60'], {}, 200, withCookie), { store: true }, 'the origin said how long')
  t.match(decide(['Expires', 'Mon, 15 Jan 2024 13:00:00 GMT', 'Date', D0], {}, 200, withCookie), { store: true })
  t.match(decide(['Cache-Control', 'public', ...lm], {}, 200, withCookie), { store: true }, 'public: the origin allows it')
})
