// RFC 9213 targeted cache control: the Structured Fields parse of a targeted
// field, and which field's directives a response's policy comes from.
import t from 'tap'
import { EMPTY_DIRECTIVES } from '../../src/cache/cache-control.js'
import { Interner } from '../../src/cache/intern.js'
import { freshnessLifetime, requestFacts, storeDecision, type StoreOptions } from '../../src/cache/policy.js'
import { parseDictionary, parseTargeted, responseDirectives } from '../../src/cache/targeted.js'

const S = 1000
const CDN = ['cdn-cache-control']
const BOTH = ['switchyard-cache-control', 'cdn-cache-control']

t.test('RFC 8941 Dictionaries: what parses and what fails', async (t) => {
  t.same([...parseDictionary('a=1, b, c=?0, d="x\\"y", e=tok/en:1, f=:aGk=:, g=(1 2);p, h=1.5;q=2')!].map(([k, v]) => [k, v.t]), [
    ['a', 'integer'], ['b', 'boolean'], ['c', 'boolean'], ['d', 'string'], ['e', 'token'], ['f', 'bytes'], ['g', 'inner'], ['h', 'decimal']
  ])
  t.same(parseDictionary('d="x\\"y"')!.get('d'), { t: 'string', v: 'x"y' }, 'escapes')
  t.same(parseDictionary('a=1, a=2')!.get('a'), { t: 'integer', v: 2 }, 'a later duplicate wins')
  t.same(parseDictionary('  a=1  ,\tb  ')!.size, 2, 'OWS around members, SP around the value')
  t.equal(parseDictionary('')!.size, 0)
  for (const bad of [
    'max-age =100', 'max-age= 100', 'Max-Age=1', 'a=1,', 'a=1,,b', '1a', 'a=1 b', '&&&', 'a=1, &&&&&', 'a="unterminated', 'a="\\x"',
    'a=?2', 'a=1234567890123456', 'a=1.2345', 'a=1.', 'a=1234567890123.5', 'a=:bad!:', 'a=(1 2', 'a=(1,2)', 'a=-', 'a;P=1', 'a=1;=2'
  ]) {
    t.equal(parseDictionary(bad), undefined, JSON.stringify(bad))
  }
})

t.test('directives of a targeted field, in ms like Cache-Control', async (t) => {
  const d = parseTargeted('max-age=600, s-maxage=60, stale-while-revalidate=30, stale-if-error=300;x=1, must-revalidate')!
  t.match(d, { maxAge: 600 * S, sMaxAge: 60 * S, staleWhileRevalidate: 30 * S, staleIfError: 300 * S, mustRevalidate: true, targeted: true })
  t.ok(Object.isFrozen(d))
  t.equal(parseTargeted('max-age=99999999999')!.maxAge, 2 ** 31 * S, 'capped at 2^31 s')
  const flags = parseTargeted('no-store, public, proxy-revalidate, no-transform, immutable, must-understand')!
  t.same([flags.noStore, flags.public, flags.proxyRevalidate, flags.noTransform, flags.immutable, flags.mustUnderstand], [true, true, true, true, true, true])
  t.match(parseTargeted('private, no-cache'), { private: true, noCache: true, privateFields: [], noCacheFields: [] })
  t.match(parseTargeted('private="Set-Cookie, x-a", no-cache="x-b"'), { private: false, privateFields: ['set-cookie', 'x-a'], noCache: false, noCacheFields: ['x-b'] })
  t.match(parseTargeted('no-cache=""'), { noCache: true }, 'an empty list is the unqualified form')
  t.match(parseTargeted('none'), { ...EMPTY_DIRECTIVES, targeted: true }, 'an unknown directive: valid, and nothing set')
  t.match(parseTargeted('foobar, max-age=3600, only-if-cached, max-stale=5'), { maxAge: 3600 * S, onlyIfCached: false }, 'extensions and request directives ignored')
})

t.test('§2.2: an empty field, a parse error or a value of the wrong type → the field is ignored', async (t) => {
  for (const bad of [
    '', '   ', 'max-age=10000, &&&&&', 'MaX-aGe=3600', 'max-age =100',
    'max-age="10000"', 'max-age=1.5', 'max-age=-1', 'max-age=abc', 'max-age=?1', 'max-age=(1)',
    'no-store=?0', 'no-store=1', 'public="yes"', 'private=tok', 'no-cache=5', 'no-cache=?0'
  ]) {
    t.equal(parseTargeted(bad), undefined, JSON.stringify(bad))
  }
})

t.test('§2.1: the first present and valid field on the target list replaces Cache-Control', async (t) => {
  const h = (...kv: string[]): string[] => kv
  t.equal(responseDirectives(h('Cache-Control', 'max-age=1', 'CDN-Cache-Control', 'max-age=3600'), CDN).maxAge, 3600 * S)
  t.equal(responseDirectives(h('Cache-Control', 'max-age=3600', 'CDN-Cache-Control', 'max-age=1'), CDN).maxAge, 1 * S, 'even when shorter')
  t.match(responseDirectives(h('Cache-Control', 'no-store', 'CDN-Cache-Control', 'max-age=60'), CDN), { noStore: false, maxAge: 60 * S })
  t.match(responseDirectives(h('Cache-Control', 'max-age=60', 'cdn-cache-control', 'no-store'), CDN), { noStore: true, maxAge: undefined })
  t.match(responseDirectives(h('Cache-Control', 'max-age=60', 'CDN-Cache-Control', 'max-age="10"'), CDN), { maxAge: 60 * S, targeted: false },
    'an invalid one falls back to Cache-Control')
  t.match(responseDirectives(h('Cache-Control', 'max-age=60', 'CDN-Cache-Control', ''), CDN), { maxAge: 60 * S, targeted: false }, 'so does an empty one')
  t.equal(responseDirectives(h('Switchyard-Cache-Control', 'max-age=5', 'CDN-Cache-Control', 'max-age=50'), BOTH).maxAge, 5 * S, 'list order, not field order')
  t.equal(responseDirectives(h('Switchyard-Cache-Control', 'max-age=x', 'CDN-Cache-Control', 'max-age=50'), BOTH).maxAge, 50 * S, 'an invalid first → the next')
  t.equal(responseDirectives(h('Cache-Control', 'max-age=7', 'Switchyard-Cache-Control', 'max-age=5'), CDN).maxAge, 7 * S,
    'a field not on the list changes nothing')
  t.equal(responseDirectives(h('Cache-Control', 'max-age=7', 'CDN-Cache-Control', 'max-age=5'), []).maxAge, 7 * S, 'an empty list: Cache-Control only')
  t.equal(responseDirectives(h('CDN-Cache-Control', 'max-age=5', 'CDN-Cache-Control', 'must-revalidate'), CDN).mustRevalidate, true,
    'field lines are joined before parsing')
  t.equal(responseDirectives(h('CDN-Cache-Control', 'max-age=5,', 'CDN-Cache-Control', ',private'), CDN).targeted, false,
    '… and an empty member across lines fails the whole field')
})

t.test('the Interner keeps each parsed targeted value once, invalid ones included', async (t) => {
  const interner = new Interner()
  const a = interner.targeted('max-age=60')
  t.equal(interner.targeted('max-age=60'), a)
  t.equal(interner.targeted('max-age="60"'), undefined)
  t.equal(interner.targeted('max-age="60"'), undefined)
  t.equal(responseDirectives(['CDN-Cache-Control', 'max-age=60'], CDN, interner), a)
})

t.test('with a targeted field, Expires is ignored as well (§2.1)', async (t) => {
  const OPTS: StoreOptions = { heuristic: true, heuristicMaxAge: 3600 * S, allowSetCookie: false, defaultTtl: undefined, targets: CDN }
  const now = Date.UTC(2024, 0, 15, 12, 0, 0)
  const date = new Date(now).toUTCString()
  const past = new Date(now - 10_000 * S).toUTCString()
  const future = new Date(now + 10_000 * S).toUTCString()
  const GET = requestFacts('GET', [])
  const res1 = ['Date', date, 'Expires', past, 'CDN-Cache-Control', 'max-age=3600']
  t.same(storeDecision(GET, 200, res1, responseDirectives(res1, CDN), now, OPTS), { store: true, freshness: 3600 * S }, 'a past Expires does not shorten it')
  const res2 = ['Date', date, 'Expires', future, 'CDN-Cache-Control', 'must-revalidate']
  t.equal(freshnessLifetime(200, res2, responseDirectives(res2, CDN), now, OPTS), 0, 'a future Expires gives no freshness')
  t.match(storeDecision(GET, 200, res2, responseDirectives(res2, CDN), now, OPTS), { store: false }, 'so, without a validator, not stored')
  t.equal(freshnessLifetime(200, res2, responseDirectives(res2, []), now, OPTS), 10_000 * S, 'without the target, Expires counts')
  const res3 = ['Date', date, 'Cache-Control', 'max-age=10000', 'Expires', future, 'CDN-Cache-Control', 'private']
  t.same(storeDecision(GET, 200, res3, responseDirectives(res3, CDN), now, OPTS), { store: false, reason: 'private' })
  const res4 = ['Date', date, 'Cache-Control', 'max-age=10000', 'CDN-Cache-Control', 'no-cache', 'ETag', '"a"']
  t.same(storeDecision(GET, 200, res4, responseDirectives(res4, CDN), now, OPTS), { store: true, freshness: 0 }, 'no-cache: stored only to revalidate')
})
