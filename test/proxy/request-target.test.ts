// The request line and Host, parsed once for routing, the cache key and the upstream.
import t from 'tap'
import { Errors } from '../../src/errors.js'
import { parseAbsoluteUrl, parseRequestTarget, type RequestTarget, type TargetError } from '../../src/proxy/request-target.js'

const PATHS = { mergeSlashes: false, escapedSlashes: 'keep' } as const
const h1 = (url: string, raw: string[], method = 'GET'): RequestTarget | TargetError => parseRequestTarget(method, url, raw, undefined, PATHS)
const ok = (r: RequestTarget | TargetError): RequestTarget => {
  if ('error' in r) throw new Error(r.detail)
  return r
}

t.test('origin-form with Host', async (t) => {
  const r = ok(h1('/a/../b?x=1', ['Host', 'Shop.Test:8443']))
  t.equal(r.authority.value, 'shop.test:8443')
  t.equal(r.path, '/b')
  t.equal(r.target, '/b?x=1', 'the query is kept as sent')
})

t.test('malformed Host or target: 400 with the reason', async (t) => {
  const cases: [string, string[], RegExp][] = [
    ['/y', ['Host', 'shop.test:8443/x'], /host\[:port\]/],
    ['/y', ['Host', 'a.test', 'Host', 'b.test'], /more than one Host/],
    ['/y', ['Host', 'a.test', 'host', 'a.test'], /more than one Host/],
    ['/y', [], /no Host/],
    ['/y', ['Host', ''], /no Host/],
    ['y', ['Host', 'a.test'], /neither a path nor an absolute/],
    ['ftp://a.test/y', ['Host', 'a.test'], /neither a path nor an absolute/],
    ['*', ['Host', 'a.test'], /asterisk-form target with GET/],
    ['/admin#x', ['Host', 'a.test'], /fragment/],
    ['/a?b#c', ['Host', 'a.test'], /fragment/],
    ['http://a.test#x', ['Host', 'a.test'], /fragment/],
    ['http://a.test/p#x', ['Host', 'a.test'], /fragment/],
    ['/admin\\users', ['Host', 'a.test'], /backslash/],
    ['/admin\\', ['Host', 'a.test'], /backslash/],
    ['/x/..;/admin', ['Host', 'a.test'], /dot-segment with a ;parameter/],
    ['/x/..;jsessionid=1/admin', ['Host', 'a.test'], /dot-segment with a ;parameter/],
    ['/x/.;/admin', ['Host', 'a.test'], /dot-segment with a ;parameter/],
    ['/x/%2e%2e;/admin', ['Host', 'a.test'], /dot-segment with a ;parameter/]
  ]
  for (const [url, raw, why] of cases) {
    const r = h1(url, raw)
    t.ok('error' in r && r.error === Errors.BAD_REQUEST, `${url} ${JSON.stringify(raw)}: 400`)
    t.match((r as TargetError).detail, why)
  }
  t.equal((h1('/x', ['Host', 'a'], 'CONNECT') as TargetError).error, Errors.METHOD_NOT_ALLOWED)
})

t.test(';parameters are kept, outside a dot-segment', async (t) => {
  t.equal(ok(h1('/a;v=1/b;x', ['Host', 'a.test'])).target, '/a;v=1/b;x')
  t.equal(ok(h1('/a/x..;/b?q=/..;/', ['Host', 'a.test'])).target, '/a/x..;/b?q=/..;/', 'a name ending in dots, and the query, are not segments')
})

t.test('absolute-form: its authority wins over Host (RFC 9112 §3.2.2)', async (t) => {
  const r = ok(h1('http://A.test:8080/p/./q?z', ['Host', 'b.test']))
  t.equal(r.authority.value, 'a.test:8080')
  t.equal(r.target, '/p/q?z')
  t.equal(ok(h1('https://a.test', [])).target, '/')
  t.equal(ok(h1('https://a.test?q=1', [])).target, '/?q=1')
  t.ok('error' in h1('http://user@a.test/', []), 'userinfo is refused')
  t.ok('error' in h1('http://a.test:70000/', []), 'port out of range')
})

t.test('OPTIONS * is the one asterisk-form', async (t) => {
  t.same(ok(h1('*', ['Host', 'a.test'], 'OPTIONS')).path, '*')
  t.same(ok(h1('*', ['Host', 'a.test'], 'OPTIONS')).target, '*')
  t.match(h1('*', ['Host', 'a.test'], 'GET'), { error: Errors.BAD_REQUEST, detail: 'asterisk-form target with GET (only OPTIONS may use *)' })
  t.match(h1('*', [], 'OPTIONS'), { error: Errors.BAD_REQUEST, detail: /no Host/ }, 'still needs a Host')
  t.same(ok(parseRequestTarget('OPTIONS', '*', [], 'a.test', PATHS)).path, '*', 'h2 :path *')
  // RFC 9112 §3.2.4: OPTIONS of an absolute URI with an empty path and no query is the server-wide one.
  const abs = ok(h1('http://a.test:8080', ['Host', 'b.test'], 'OPTIONS'))
  t.equal(abs.target, '*')
  t.equal(abs.authority.value, 'a.test:8080')
  t.equal(ok(h1('http://a.test/', [], 'OPTIONS')).target, '/', 'a path / is a resource')
  t.equal(ok(h1('http://a.test?q', [], 'OPTIONS')).target, '/?q', 'a query is a resource')
  t.equal(ok(h1('http://a.test', [], 'GET')).target, '/', 'any other method: /')
})

t.test('HTTP/2: :authority, Host agreement and :path bytes', async (t) => {
  const h2 = (path: string, authority: string, raw: string[] = []): RequestTarget | TargetError =>
    parseRequestTarget('GET', path, raw, authority, PATHS)
  t.equal(ok(h2('/x', 'a.test')).authority.value, 'a.test')
  t.equal(ok(h2('/x', '', ['host', 'b.test'])).authority.value, 'b.test', 'Host when :authority is absent')
  t.equal(ok(h2('/x', 'a.test', ['host', 'A.test'])).authority.value, 'a.test', 'the same origin written differently')
  t.match(h2('/x', 'a.test', ['host', 'b.test']), { error: Errors.BAD_REQUEST, detail: /disagree/ })
  t.equal(ok(h2('/x', 'a.test', ['host', 'a.test:443'])).authority.value, 'a.test', 'a default port on one side only')
  t.equal(ok(h2('/x', 'a.test:80', [':scheme', 'http', 'host', 'a.test'])).authority.value, 'a.test:80', 'http\'s default port')
  // Over https, :80 is no default: the origin would be told another port than Host says.
  t.match(h2('/x', 'a.test:80', [':scheme', 'https', 'host', 'a.test']), { error: Errors.BAD_REQUEST, detail: /disagree/ }, ':80 over https')
  t.match(h2('/x', 'a.test', [':scheme', 'http', 'host', 'a.test:443']), { error: Errors.BAD_REQUEST, detail: /disagree/ }, ':443 over http')
  t.match(h2('/x', 'a.test', ['host', 'a.test:8443']), { error: Errors.BAD_REQUEST, detail: /disagree/ }, 'another port')
  t.match(h2('/x', 'a.test:80', ['host', 'a.test:443']), { error: Errors.BAD_REQUEST, detail: /disagree/ }, 'two different ports')
  t.match(h2('/x y', 'a.test'), { error: Errors.BAD_REQUEST, detail: /space/ })
  t.match(h2('/x\u0001', 'a.test'), { error: Errors.BAD_REQUEST })
  // node:http2 gives each byte as one character: raw UTF-8 (é is c3 a9) is refused as HTTP/1.1's parser refuses it.
  t.match(h2('/caf\u00c3\u00a9', 'a.test'), { error: Errors.BAD_REQUEST, detail: /non-ASCII/ })
  t.match(h2('/x?q=\u00ff', 'a.test'), { error: Errors.BAD_REQUEST }, 'in the query too')
  t.equal(ok(h2('/caf%C3%A9', 'a.test')).path, '/caf%C3%A9', 'percent-encoded, as RFC 3986 wants it')
  t.match(h2('/x', 'a.test/evil'), { error: Errors.BAD_REQUEST })
  t.match(h2('/admin#x', 'a.test'), { error: Errors.BAD_REQUEST, detail: /fragment/ })
  t.match(h2('/admin\\users', 'a.test'), { error: Errors.BAD_REQUEST, detail: /backslash/ })
})

t.test('a backslash in the query is the query\'s own; %5C in the path stays escaped', async (t) => {
  t.equal(ok(h1('/s?q=a\\b', ['Host', 'a.test'])).target, '/s?q=a\\b')
  t.equal(ok(h1('/a%5Cb', ['Host', 'a.test'])).path, '/a%5Cb')
})

t.test('parseAbsoluteUrl: a fragment is dropped (a Location may carry one), the rest parsed as live traffic', async (t) => {
  t.match(parseAbsoluteUrl('http://a.test/p?q=1#frag', PATHS), { scheme: 'http', path: '/p', search: '?q=1' })
  t.match(parseAbsoluteUrl('https://a.test#frag', PATHS), { scheme: 'https', path: '/', search: '' })
})

t.test('escapedSlashes: reject answers 400', async (t) => {
  const r = parseRequestTarget('GET', '/a%2Fb', ['Host', 'a'], undefined, { mergeSlashes: false, escapedSlashes: 'reject' })
  t.match(r, { error: Errors.BAD_REQUEST, detail: /escaped slash/ })
})
