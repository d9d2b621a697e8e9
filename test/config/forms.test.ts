import t from 'tap'
import {
  HTTP_METHODS, isAdminToken, isCookiePath, isHttpMethod, isHostname, isLoopback, isIpOrCidr, isName, isRequestPath, isSafeHeaderValue, isSfToken, isToken,
  normalizeHostHeader, normalizeHostPattern, normalizeServerUrl, parseBind
} from '../../src/config/forms.js'

t.test('bind addresses', async (t) => {
  t.same(parseBind('127.0.0.1:8443'), { host: '127.0.0.1', port: 8443 })
  t.same(parseBind('[::1]:8443'), { host: '::1', port: 8443 })
  t.same(parseBind(':8080'), { host: '0.0.0.0', port: 8080 })
  t.same(parseBind('localhost:8080'), { host: 'localhost', port: 8080 })
  t.same(parseBind('127.0.0.1:0'), { host: '127.0.0.1', port: 0 })
  t.same(parseBind(':65535'), { host: '0.0.0.0', port: 65535 })
  for (const bad of ['8080', ':65536', '::1:8080', '[::1]8080', '[nope]:80', '127.0.0.1:', '1.2.3.4:-1', 'a b:80', '999.1.1.1:80', ':80x']) {
    t.equal(parseBind(bad), undefined, bad)
  }
})

t.test('server URLs are normalized to scheme://host:port', async (t) => {
  t.same(normalizeServerUrl('http://127.0.0.1'), { ok: true, url: 'http://127.0.0.1:80' })
  t.same(normalizeServerUrl('https://Example.COM/'), { ok: true, url: 'https://example.com:443' })
  t.same(normalizeServerUrl('http://[::1]:9000'), { ok: true, url: 'http://[::1]:9000' })
  t.same(normalizeServerUrl('https://[::1]'), { ok: true, url: 'https://[::1]:443' })
  t.same(normalizeServerUrl('http://a:8443'), { ok: true, url: 'http://a:8443' })
  t.match(normalizeServerUrl('10.0.0.1'), { ok: false, reason: 'expected an http(s) URL' })
  t.match(normalizeServerUrl('ftp://a'), { ok: false, reason: 'expected an http(s) URL' })
  t.match(normalizeServerUrl('http://a/api'), { ok: false, reason: /no path/ })
  t.match(normalizeServerUrl('http://a/?x=1'), { ok: false, reason: /no path, query/ })
  t.match(normalizeServerUrl('http://u:p@a'), { ok: false, reason: /credentials/ })
})

t.test('IPs and CIDRs', async (t) => {
  for (const good of ['10.0.0.1', '10.0.0.0/8', '0.0.0.0/0', '192.168.1.0/32', '::1', 'fd00::/8', '::/0', '2001:db8::/128']) {
    t.ok(isIpOrCidr(good), good)
  }
  for (const bad of ['nope', '10.0.0.0/33', 'fd00::/129', '10.0.0.0/', '10.0.0.0/x', '10.0.0.0/8/8', '10.0.0', '', '/8']) {
    t.notOk(isIpOrCidr(bad), bad)
  }
})

t.test('route and SNI host patterns', async (t) => {
  t.equal(normalizeHostPattern('API.Example.com'), 'api.example.com')
  t.equal(normalizeHostPattern('*.Example.com'), '*.example.com')
  t.equal(normalizeHostPattern('127.0.0.1'), '127.0.0.1')
  t.equal(normalizeHostPattern('[::1]'), '[::1]')
  t.equal(normalizeHostPattern('localhost'), 'localhost')
  for (const bad of ['*', '*.', 'a.*.com', '*example.com', 'example.com:8080', 'a..b', '-a.com', 'a b', '*.1.2.3', '']) {
    t.equal(normalizeHostPattern(bad), undefined, bad)
  }
})

t.test('names, tokens, header values', async (t) => {
  t.ok(isName('api-v2.eu:1'))
  t.notOk(isName('a b'))
  t.notOk(isName(''))
  t.ok(isToken('X-Request-Id'))
  t.notOk(isToken('x y'))
  t.notOk(isToken('x:y'))
  t.ok(isSafeHeaderValue('a b; c=d'))
  for (const bad of ['a\rb', 'a\nb', 'a\0b']) t.notOk(isSafeHeaderValue(bad), JSON.stringify(bad))
  t.ok(isHostname('a-b.c_d.example'))
  t.notOk(isHostname('1.2.3.4'), 'an all-digit last label is not a DNS name')
})

t.test('health-check Host header values', async (t) => {
  t.equal(normalizeHostHeader('API.internal'), 'api.internal')
  t.equal(normalizeHostHeader('api.internal:8080'), 'api.internal:8080')
  t.equal(normalizeHostHeader('10.0.0.1'), '10.0.0.1')
  t.equal(normalizeHostHeader('10.0.0.1:80'), '10.0.0.1:80')
  t.equal(normalizeHostHeader('[::1]'), '[::1]')
  t.equal(normalizeHostHeader('[::1]:9000'), '[::1]:9000')
  for (const bad of ['', 'a b', '*.example.com', 'api:', 'api:0', 'api:65536', 'api:8x', '::1', '[::1]x', '[nope]', 'a..b', '1.2.3']) {
    t.equal(normalizeHostHeader(bad), undefined, bad)
  }
})

t.test('probe request paths and cookie paths', async (t) => {
  for (const good of ['/', '/healthz', '/status?full=1&x=%20']) t.ok(isRequestPath(good), good)
  for (const bad of ['', 'healthz', '/a b', '/a#b', '/é', '/a\tb']) t.notOk(isRequestPath(bad), bad)
  for (const good of ['/', '/app', '/a,b']) t.ok(isCookiePath(good), good)
  for (const bad of ['', 'app', '/a;b', '/a b']) t.notOk(isCookiePath(bad), bad)
})

t.test('Cache-Status names are structured-field tokens', async (t) => {
  for (const good of ['a', 'Z', '*', '*cache', 'switchyard', 'edge-1.example:8443/x%y_z*']) t.ok(isSfToken(good), good)
  for (const bad of ['', '1edge', '-a', '.a', '/a', 'a b', 'a;b', 'a,b', 'a"b', 'é', 'a=b', 'edge!']) t.notOk(isSfToken(bad), bad)
})

t.test('loopback bind hosts (the admin API without a token)', async (t) => {
  for (const good of ['127.0.0.1', '127.1.2.3', '127.255.255.255', '::1', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1', 'localhost', 'LOCALHOST']) {
    t.ok(isLoopback(good), good)
  }
  for (const bad of ['0.0.0.0', '128.0.0.1', '10.0.0.1', '::', '::2', '::ffff:10.0.0.1', 'localhost.example.com', 'example.com', '']) {
    t.notOk(isLoopback(bad), bad)
  }
})

t.test('admin tokens: 16+ visible ASCII characters, no spaces', async (t) => {
  for (const good of ['0123456789abcdef', 'a'.repeat(64), '!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~']) t.ok(isAdminToken(good), good)
  for (const bad of ['', '0123456789abcde', '0123456789 abcdef', '0123456789abcdef\t', '0123456789abcdeé', '0123456789abcdef\n']) {
    t.notOk(isAdminToken(bad), JSON.stringify(bad))
  }
})

t.test('isHttpMethod: RFC 9110 methods, PATCH and PURGE, case-sensitive', async (t) => {
  for (const m of ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH', 'PURGE']) t.ok(isHttpMethod(m), m)
  for (const m of ['get', 'GETT', 'PROPFIND', 'BREW', '', 'GET ']) t.notOk(isHttpMethod(m), JSON.stringify(m))
  t.equal(HTTP_METHODS.length, 10)
})
