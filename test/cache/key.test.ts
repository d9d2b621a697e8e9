import t from 'tap'
import type { CacheKeyConfig } from '../../src/config/schema.js'
import { cacheKey, keyPrefix } from '../../src/cache/key.js'

const cfg = (over: Partial<CacheKeyConfig> = {}): CacheKeyConfig => ({ query: 'keep', ignoreParams: [], headers: [], ...over })
const noHeaders = (): undefined => undefined

t.test('keep: scheme://host + the target as sent', async (t) => {
  t.equal(cacheKey('http', 'example.com', '/a/b?x=1&y=2', cfg(), noHeaders), 'http://example.com/a/b?x=1&y=2')
  t.equal(cacheKey('https', 'example.com', '/', cfg(), noHeaders), 'https://example.com/')
  t.equal(cacheKey('http', 'h', '/A%2Fb//c?', cfg(), noHeaders), 'http://h/A%2Fb//c?', 'path and empty query as sent')
  t.not(cacheKey('http', 'h', '/', cfg(), noHeaders), cacheKey('https', 'h', '/', cfg(), noHeaders), 'scheme is part of the key')
})

t.test('host: lower-cased, default port dropped, other ports kept (IPv6 too)', async (t) => {
  const k = (scheme: 'http' | 'https', authority: string): string => cacheKey(scheme, authority, '/', cfg(), noHeaders)
  t.equal(k('http', 'Example.COM'), 'http://example.com/')
  t.equal(k('http', 'example.com:80'), 'http://example.com/')
  t.equal(k('https', 'example.com:443'), 'https://example.com/')
  t.equal(k('http', 'example.com:443'), 'http://example.com:443/')
  t.equal(k('https', 'example.com:8443'), 'https://example.com:8443/')
  t.equal(k('http', 'example.com:'), 'http://example.com/', 'empty port = default')
  t.equal(k('http', '[::1]:80'), 'http://[::1]/')
  t.equal(k('http', '[::1]'), 'http://[::1]/', 'no port: the colons inside brackets are kept')
  t.equal(k('https', '[FE80::1]:8443'), 'https://[fe80::1]:8443/')
})

t.test('keep with ignoreParams: the query as sent minus those parameters', async (t) => {
  const c = cfg({ ignoreParams: ['utm_source', 'fbclid'] })
  t.equal(cacheKey('http', 'h', '/p?b=2&utm_source=x&a=1&fbclid', c, noHeaders), 'http://h/p?b=2&a=1')
  t.equal(cacheKey('http', 'h', '/p?utm_source=x', c, noHeaders), 'http://h/p', 'nothing left: no "?"')
  t.equal(cacheKey('http', 'h', '/p?utm%5Fsource=x&a=1', c, noHeaders), 'http://h/p?a=1', 'percent-encoded name')
  t.equal(cacheKey('http', 'h', '/p', c, noHeaders), 'http://h/p')
  t.equal(cacheKey('http', 'h', '/p?a=1&&b', c, noHeaders), 'http://h/p?a=1&b', 'empty members dropped')
  t.equal(cacheKey('http', 'h', '/p?%zz=1', c, noHeaders), 'http://h/p?%zz=1', 'undecodable name kept')
})

t.test('sort: parameters sorted by name then value, minus ignoreParams', async (t) => {
  const c = cfg({ query: 'sort', ignoreParams: ['utm_source'] })
  t.equal(cacheKey('http', 'h', '/p?b=2&a=2&utm_source=x&a=1&c', c, noHeaders), 'http://h/p?a=1&a=2&b=2&c')
  t.equal(
    cacheKey('http', 'h', '/p?y=1&x=1', c, noHeaders),
    cacheKey('http', 'h', '/p?x=1&y=1', c, noHeaders),
    'order does not matter'
  )
  t.equal(cacheKey('http', 'h', '/p', c, noHeaders), 'http://h/p')
})

t.test('ignore: no query in the key', async (t) => {
  t.equal(cacheKey('http', 'h', '/p?a=1', cfg({ query: 'ignore' }), noHeaders), 'http://h/p')
  t.equal(cacheKey('http', 'h', '/p', cfg({ query: 'ignore' }), noHeaders), 'http://h/p')
})

t.test('key headers: "\\n<name>:<value>" for each, in config order, "" when absent', async (t) => {
  const headers: Record<string, string> = { 'x-tenant': 'acme', 'accept-language': 'en' }
  const seen: string[] = []
  const header = (n: string): string | undefined => { seen.push(n); return headers[n] }
  const c = cfg({ headers: ['x-tenant', 'x-missing', 'accept-language'] })
  t.equal(cacheKey('http', 'h', '/p?q', c, header), 'http://h/p?q\nx-tenant:acme\nx-missing:\naccept-language:en')
  t.same(seen, ['x-tenant', 'x-missing', 'accept-language'], 'asked by lower-cased name')
  t.not(
    cacheKey('http', 'h', '/p', cfg({ headers: ['x-tenant'] }), () => 'a'),
    cacheKey('http', 'h', '/p', cfg({ headers: ['x-tenant'] }), () => 'b')
  )
})

t.test('keyPrefix is a prefix of every key under that path', async (t) => {
  const p = keyPrefix('https', 'Example.com:443', '/static/')
  t.equal(p, 'https://example.com/static/')
  t.ok(cacheKey('https', 'example.com', '/static/app.js?v=1', cfg(), noHeaders).startsWith(p))
  t.notOk(cacheKey('https', 'example.com', '/api/x', cfg(), noHeaders).startsWith(p))
  t.notOk(cacheKey('http', 'example.com', '/static/app.js', cfg(), noHeaders).startsWith(p))
})
