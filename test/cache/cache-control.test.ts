import t from 'tap'
import { EMPTY_DIRECTIVES, parseCacheControl } from '../../src/cache/cache-control.js'

const S = 1000

t.test('absent or empty Cache-Control → the shared frozen empty directives', async (t) => {
  t.equal(parseCacheControl(undefined), EMPTY_DIRECTIVES)
  t.equal(parseCacheControl(''), EMPTY_DIRECTIVES)
  t.ok(Object.isFrozen(EMPTY_DIRECTIVES))
  t.ok(Object.isFrozen(EMPTY_DIRECTIVES.noCacheFields))
  t.equal(EMPTY_DIRECTIVES.maxAge, undefined)
  t.equal(EMPTY_DIRECTIVES.noStore, false)
  t.same(parseCacheControl(' , ,'), EMPTY_DIRECTIVES, 'only empty list members')
})

t.test('§5.2 lifetimes in ms; names case-insensitive; whitespace tolerated', async (t) => {
  const d = parseCacheControl('Max-Age=60,S-MAXAGE=120 ,  stale-while-revalidate=30,stale-if-error=300')
  t.equal(d.maxAge, 60 * S)
  t.equal(d.sMaxAge, 120 * S)
  t.equal(d.staleWhileRevalidate, 30 * S)
  t.equal(d.staleIfError, 300 * S)
  t.equal(parseCacheControl('max-age = 5').maxAge, 5 * S, 'whitespace around "=" accepted')
  t.equal(parseCacheControl('max-age=0').maxAge, 0)
  t.ok(Object.isFrozen(d))
})

t.test('§5.2 quoted arguments are accepted for delta-seconds', async (t) => {
  t.equal(parseCacheControl('max-age="60"').maxAge, 60 * S)
  t.equal(parseCacheControl('s-maxage="7", min-fresh="3"').minFresh, 3 * S)
})

t.test('every boolean directive', async (t) => {
  const d = parseCacheControl('no-cache, no-store, private, public, must-revalidate, proxy-revalidate, no-transform, immutable, must-understand, only-if-cached')
  t.same(
    [d.noCache, d.noStore, d.private, d.public, d.mustRevalidate, d.proxyRevalidate, d.noTransform, d.immutable, d.mustUnderstand, d.onlyIfCached],
    [true, true, true, true, true, true, true, true, true, true]
  )
  t.same(d.noCacheFields, [])
  t.same(d.privateFields, [])
  t.equal(parseCacheControl('NO-STORE').noStore, true)
  t.equal(parseCacheControl('no-store=whatever').noStore, true, 'an unexpected argument does not hide the directive')
})

t.test('§5.2.2.4 / §5.2.2.7 qualified no-cache and private: field names, unqualified flag stays false', async (t) => {
  const d = parseCacheControl('no-cache="Set-Cookie, X-Foo", private="X-User", max-age=5')
  t.equal(d.noCache, false)
  t.same(d.noCacheFields, ['set-cookie', 'x-foo'], 'lower-cased, comma inside the quotes is not a directive separator')
  t.equal(d.private, false)
  t.same(d.privateFields, ['x-user'])
  t.equal(d.maxAge, 5 * S)
  t.ok(Object.isFrozen(d.noCacheFields))
  t.same(parseCacheControl('no-cache=set-cookie').noCacheFields, ['set-cookie'], 'token form accepted')
  t.same(parseCacheControl('private="a", private="b, a"').privateFields, ['a', 'b'], 'repeated: union, deduplicated')
  const both = parseCacheControl('no-cache="x", no-cache')
  t.equal(both.noCache, true, 'unqualified anywhere wins')
  t.same(both.noCacheFields, ['x'])
  // An empty field list qualifies nothing; reading it as unqualified is the safe choice.
  t.equal(parseCacheControl('no-cache=""').noCache, true)
  t.equal(parseCacheControl('private=""').private, true)
})

t.test('§1.2.2 / §4.2.1 invalid max-age / s-maxage → 0 (stale)', async (t) => {
  for (const v of ['abc', '-1', '', '1.5', '1e3', '+5', '0x10']) {
    t.equal(parseCacheControl(`max-age=${v}`).maxAge, 0, `max-age=${v}`)
    t.equal(parseCacheControl(`s-maxage=${v}`).sMaxAge, 0, `s-maxage=${v}`)
  }
  t.equal(parseCacheControl('max-age').maxAge, 0, 'no argument')
  t.equal(parseCacheControl('max-age=""').maxAge, 0, 'empty quoted')
})

t.test('invalid arguments of the other numeric directives are ignored', async (t) => {
  const d = parseCacheControl('min-fresh=x, stale-while-revalidate=-1, stale-if-error, max-stale=abc')
  t.equal(d.minFresh, undefined)
  t.equal(d.staleWhileRevalidate, undefined)
  t.equal(d.staleIfError, undefined)
  t.equal(d.maxStale, undefined)
})

// RFC 9111 §4.2.1: "When there is more than one value present for a given
// directive (e.g., two Expires header field lines or multiple Cache-Control:
// max-age directives), either the first occurrence should be used or the
// response should be considered stale." We use the first occurrence: it is
// deterministic, matches how the fields were joined (in order), and an
// invalid first value still yields 0, so a bad first value is never
// "repaired" by a later, longer one.
t.test('§4.2.1 duplicates: the first occurrence wins', async (t) => {
  t.equal(parseCacheControl('max-age=60, max-age=10').maxAge, 60 * S)
  t.equal(parseCacheControl('max-age=10, max-age=60').maxAge, 10 * S)
  t.equal(parseCacheControl('max-age=abc, max-age=60').maxAge, 0, 'an invalid first occurrence still counts (stale)')
  t.equal(parseCacheControl('s-maxage=1, s-maxage=2').sMaxAge, 1 * S)
  t.equal(parseCacheControl('stale-if-error=5, stale-if-error=50').staleIfError, 5 * S)
})

t.test('§1.2.2 very large delta-seconds clamp to 2^31 seconds', async (t) => {
  t.equal(parseCacheControl('max-age=2147483647').maxAge, 2147483647 * S)
  t.equal(parseCacheControl('max-age=2147483648').maxAge, 2 ** 31 * S)
  t.equal(parseCacheControl('max-age=2147483649').maxAge, 2 ** 31 * S)
  t.equal(parseCacheControl('max-age=99999999999999999999999').maxAge, 2 ** 31 * S)
  t.equal(parseCacheControl('max-age=00000000000000060').maxAge, 60 * S, 'leading zeros are not significant')
})

t.test('§5.2.1.2 max-stale without a value = Infinity', async (t) => {
  t.equal(parseCacheControl('max-stale').maxStale, Infinity)
  t.equal(parseCacheControl('max-stale=10').maxStale, 10 * S)
  t.equal(parseCacheControl('max-stale=10, max-stale').maxStale, 10 * S, 'first wins')
})

t.test('several fields joined with ", " parse as one list', async (t) => {
  const d = parseCacheControl('public, max-age=60, no-transform')
  t.equal(d.public, true)
  t.equal(d.maxAge, 60 * S)
  t.equal(d.noTransform, true)
})

t.test('quoted strings: commas, escapes, unknown extensions, unterminated quotes', async (t) => {
  t.equal(parseCacheControl('ext="a,max-age=1", max-age=2').maxAge, 2 * S, 'a comma inside quotes does not split')
  t.equal(parseCacheControl('ext="a\\"b,c", s-maxage=3').sMaxAge, 3 * S, 'escaped quote does not end the string')
  t.equal(parseCacheControl('ext="x" junk, max-age=4').maxAge, 4 * S, 'garbage after the closing quote skipped')
  t.same(parseCacheControl('no-cache="set-cookie').noCacheFields, ['set-cookie'], 'unterminated quote runs to the end')
  t.same(parseCacheControl('community="UCI", max-age=9').maxAge, 9 * S)
})

