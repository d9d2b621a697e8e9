// RFC 3986 §3.2.2 / RFC 9110 §7.2: Host is host[:port] and nothing else.
import t from 'tap'
import { originOf, parseAuthority } from '../src/authority.js'

t.test('well-formed authorities parse into host, port and value', async (t) => {
  t.same(parseAuthority('shop.test'), { host: 'shop.test', port: undefined, value: 'shop.test' })
  t.same(parseAuthority('Shop.TEST:8443'), { host: 'shop.test', port: 8443, value: 'shop.test:8443' })
  t.same(parseAuthority('shop.test.'), { host: 'shop.test', port: undefined, value: 'shop.test' }, 'trailing dot dropped')
  t.same(parseAuthority('shop.test:'), { host: 'shop.test', port: undefined, value: 'shop.test' }, 'empty port (RFC 3986 §6.2.3)')
  t.same(parseAuthority('shop.test:0080'), { host: 'shop.test', port: 80, value: 'shop.test:80' }, 'leading zeros')
  t.same(parseAuthority('10.0.0.1:80'), { host: '10.0.0.1', port: 80, value: '10.0.0.1:80' })
  t.same(parseAuthority('[::1]'), { host: '[::1]', port: undefined, value: '[::1]' })
  t.same(parseAuthority('[FE80::1]:65535'), { host: '[fe80::1]', port: 65535, value: '[fe80::1]:65535' })
  t.same(parseAuthority('xn--bcher-kva.example'), { host: 'xn--bcher-kva.example', port: undefined, value: 'xn--bcher-kva.example' })
  t.same(parseAuthority('a_b~c!$&\'()*+,;=%41'), { host: 'a_b~c!$&\'()*+,;=%41', port: undefined, value: 'a_b~c!$&\'()*+,;=%41' },
    'every reg-name character')
})

t.test('anything else is refused', async (t) => {
  const bad = [
    '', 'shop.test:8443/x', 'shop.test/x', 'shop.test?x', 'shop.test#x', 'user@shop.test', 'shop test', 'shop.test ',
    'shop.test:65536', 'shop.test:99999', 'shop.test:123456', 'shop.test:8a', 'shop.test:-1', 'shop.test:80:80', ':80',
    '[::1', '[::1]x', '[not-v6]', '[fe80::1%25eth0]', '[v1.fe]', 'caf\u00e9.test', 'a\tb', 'a\\b', 'a"b', 'a<b',
    '%zz.test', '%4.test', 'x'.repeat(300),
    // empty labels: a route for admin.test must not be missed by admin.test.. (an origin may drop one dot)
    'admin.test..', 'admin.test..:80', 'admin..test', '.admin.test', '.', '..'
  ]
  for (const raw of bad) t.equal(parseAuthority(raw), undefined, JSON.stringify(raw))
  t.same(parseAuthority('[::1]:'), { host: '[::1]', port: undefined, value: '[::1]' }, '…but an empty port after brackets is fine')
})

t.test('originOf drops only the scheme\'s default port', async (t) => {
  t.equal(originOf('https', parseAuthority('a.test:443')!), 'a.test')
  t.equal(originOf('http', parseAuthority('a.test:443')!), 'a.test:443')
  t.equal(originOf('http', parseAuthority('a.test:80')!), 'a.test')
  t.equal(originOf('https', parseAuthority('a.test')!), 'a.test')
})
