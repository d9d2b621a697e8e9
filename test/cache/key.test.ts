import t from 'tap'
import type { CacheKeyConfig } from '../../src/config/schema.js'
import { cacheKey, keyedTarget, keyPrefix, pathMatcher, trustedVariant, variantBase, variantKey } from '../../src/cache/key.js'
import { TRUSTED_OVERRIDES } from '../../src/proxy/headers.js'
import { originOf, parseAuthority } from '../../src/authority.js'

const cfg = (over: Partial<CacheKeyConfig> = {}): CacheKeyConfig => ({ query: 'keep', ignoreParams: [], headers: [], ...over })
/** The key live traffic gets: the authority parsed, the target keyed. */
const key = (scheme: 'http' | 'https', authority: string, target: string, c = cfg()): string =>
  cacheKey(scheme, originOf(scheme, parseAuthority(authority)!), keyedTarget(target, c))

t.test('keep: scheme://host + the target as sent', async (t) => {
  t.equal(key('http', 'example.com', '/a/b?x=1&y=2'), 'http://example.com/a/b?x=1&y=2')
  t.equal(key('https', 'example.com', '/'), 'https://example.com/')
  t.equal(key('http', 'h', '/A%2Fb//c?'), 'http://h/A%2Fb//c?', 'path and empty query as sent')
  t.not(key('http', 'h', '/'), key('https', 'h', '/'), 'scheme is part of the key')
})

t.test('host: lower-cased, default port dropped, other ports kept (IPv6 too)', async (t) => {
  t.equal(key('http', 'Example.COM', '/'), 'http://example.com/')
  t.equal(key('http', 'example.com:80', '/'), 'http://example.com/')
  t.equal(key('https', 'example.com:443', '/'), 'https://example.com/')
  t.equal(key('http', 'example.com:443', '/'), 'http://example.com:443/')
  t.equal(key('https', 'example.com:8443', '/'), 'https://example.com:8443/')
  t.equal(key('http', 'example.com:', '/'), 'http://example.com/', 'empty port = default')
  t.equal(key('http', 'example.com.', '/'), 'http://example.com/', 'trailing dot = the same host')
  t.equal(key('http', 'example.com:0080', '/'), 'http://example.com/', 'leading zeros')
  t.equal(key('http', '[::1]:80', '/'), 'http://[::1]/')
  t.equal(key('http', '[::1]', '/'), 'http://[::1]/', 'no port: the colons inside brackets are kept')
  t.equal(key('https', '[FE80::1]:8443', '/'), 'https://[fe80::1]:8443/')
})

t.test('keep with ignoreParams: the query as sent minus those parameters', async (t) => {
  const c = cfg({ ignoreParams: ['utm_source', 'fbclid'] })
  t.equal(keyedTarget('/p?b=2&utm_source=x&a=1&fbclid', c), '/p?b=2&a=1')
  t.equal(keyedTarget('/p?utm_source=x', c), '/p', 'nothing left: no "?"')
  t.equal(keyedTarget('/p?utm%5Fsource=x&a=1', c), '/p?a=1', 'percent-encoded name')
  t.equal(keyedTarget('/p', c), '/p')
  t.equal(keyedTarget('/p?a=1&&b', c), '/p?a=1&b', 'empty members dropped')
  t.equal(keyedTarget('/p?%zz=1', c), '/p?%zz=1', 'undecodable name kept')
  t.equal(keyedTarget('/p?x=1', cfg()), '/p?x=1', 'keep, nothing ignored: the target itself')
})

t.test('sort: parameters sorted by name then value, minus ignoreParams', async (t) => {
  const c = cfg({ query: 'sort', ignoreParams: ['utm_source'] })
  t.equal(keyedTarget('/p?b=2&a=2&utm_source=x&a=1&c', c), '/p?a=1&a=2&b=2&c')
  t.equal(keyedTarget('/p?y=1&x=1', c), keyedTarget('/p?x=1&y=1', c), 'order does not matter')
  t.equal(keyedTarget('/p', c), '/p')
})

t.test('ignore: no query in the key', async (t) => {
  t.equal(keyedTarget('/p?a=1', cfg({ query: 'ignore' })), '/p')
  t.equal(keyedTarget('/p', cfg({ query: 'ignore' })), '/p')
})

t.test('variant key: route, shard, then "\\n<name>:<value>" per key header, "" when absent', async (t) => {
  const raw = ['X-Tenant', 'acme', 'Accept-Language', 'en']
  t.equal(variantKey(variantBase('api', 'a'), ['x-tenant', 'x-missing', 'accept-language'], raw),
    'api\na\nx-tenant:acme\nx-missing:\naccept-language:en')
  t.not(variantKey(variantBase('r', ''), ['x-tenant'], ['x-tenant', 'a']), variantKey(variantBase('r', ''), ['x-tenant'], ['x-tenant', 'b']))
  t.not(variantKey(variantBase('r1', ''), [], []), variantKey(variantBase('r2', ''), [], []), 'routes differ')
  t.not(variantKey(variantBase('r', 's1'), [], []), variantKey(variantBase('r', 's2'), [], []), 'shards differ')
  // Keyed by the first line only, `a` then `b` shared a's entry: the origin reads both.
  t.equal(variantKey(variantBase('r', ''), ['x-tenant'], ['x-tenant', 'a', 'X-Tenant', 'b']), 'r\n\nx-tenant:a, b', 'every line of a key header')
  // h2 cookie crumbs are keyed as they go upstream, joined with '; ' (RFC 9113 §8.2.3), never as one line with a comma.
  const crumbs = variantKey(variantBase('r', ''), ['cookie'], ['cookie', 'lang=fr', 'cookie', 'consent=yes'])
  t.equal(crumbs, 'r\n\ncookie:lang=fr; consent=yes')
  t.equal(crumbs, variantKey(variantBase('r', ''), ['cookie'], ['cookie', 'lang=fr; consent=yes']), 'the same cookies on one h1 line')
  t.not(crumbs, variantKey(variantBase('r', ''), ['cookie'], ['cookie', 'lang=fr, consent=yes']), 'one cookie holding a comma')
  t.not(variantKey(variantBase('r', ''), ['x-tenant'], ['x-tenant', 'a', 'x-tenant', 'b']), variantKey(variantBase('r', ''), ['x-tenant'], ['x-tenant', 'a']))
})

t.test('keyPrefix is a prefix of every key under that path', async (t) => {
  const p = keyPrefix('https', originOf('https', parseAuthority('Example.com:443')!), '/static/')
  t.equal(p, 'https://example.com/static/')
  t.ok(key('https', 'example.com', '/static/app.js?v=1').startsWith(p))
  t.notOk(key('https', 'example.com', '/api/x').startsWith(p))
  t.notOk(key('http', 'example.com', '/static/app.js').startsWith(p))
})

t.test('pathMatcher: a path on every scheme, host and port; with any query unless it names one; or everything under a prefix', async (t) => {
  const exact = pathMatcher('/p/1', false)
  t.ok(exact('http://a.test/p/1'))
  t.ok(exact('https://b.test:8443/p/1'))
  t.ok(exact('http://a.test/p/1?x=1'), 'any query')
  t.notOk(exact('http://a.test/p/10'))
  t.notOk(exact('http://a.test/p/1/'))
  t.notOk(exact('http://a.test/x/p/1'), 'the whole path, not a suffix')
  const query = pathMatcher('/p/1?x=1', false)
  t.ok(query('http://a.test/p/1?x=1'))
  t.notOk(query('http://a.test/p/1'))
  t.notOk(query('http://a.test/p/1?x=10'))
  const prefix = pathMatcher('/static/', true)
  t.ok(prefix('http://a.test/static/a.css'))
  t.ok(prefix('https://b.test:8443/static/img/b.png?v=2'))
  t.notOk(prefix('http://a.test/static'))
  t.notOk(prefix('http://a.test/other/static/a.css'))
})

t.test('trustedVariant: what a trusted proxy says besides the URL keys its answer', async (t) => {
  t.equal(trustedVariant('r\ns', ['accept', '*/*', 'x-forwarded-for', '1.2.3.4'], TRUSTED_OVERRIDES), 'r\ns', 'nothing more: unchanged')
  t.equal(trustedVariant('r\ns', ['X-Forwarded-Prefix', '/app', 'X-Original-URL', '/evil'], TRUSTED_OVERRIDES), 'r\ns\nx-forwarded-prefix:/app\nx-original-url:/evil')
  t.equal(trustedVariant('r\ns', ['x-http-method-override', 'DELETE'], TRUSTED_OVERRIDES), 'r\ns\nx-http-method-override:DELETE')
  t.equal(trustedVariant('r\ns', ['Forwarded', 'for=1.2.3.4;host=evil.test;proto=https, for=5.6.7.8'], TRUSTED_OVERRIDES),
    'r\ns\nforwarded-host:evil.test\nforwarded-proto:https', 'Forwarded: host and proto, never for')
  t.equal(trustedVariant('r\ns', ['Forwarded', 'for=1.2.3.4'], TRUSTED_OVERRIDES), 'r\ns', 'Forwarded with only for= keys nothing')
})
