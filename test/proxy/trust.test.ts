import t from 'tap'
import { buildTrustList, trustedClientAddress } from '../../src/proxy/trust.js'

t.test('buildTrustList: CIDRs and single addresses, v4 and v6, v4-mapped peers', async (t) => {
  const list = buildTrustList(['10.0.0.0/8', '192.168.1.7', '2001:db8::/32', '::1'])
  t.ok(list.check('10.9.8.7', 'ipv4'))
  t.ok(list.check('192.168.1.7', 'ipv4'))
  t.notOk(list.check('192.168.1.8', 'ipv4'))
  t.ok(list.check('2001:db8::5', 'ipv6'))
  t.ok(list.check('::1', 'ipv6'))
  t.ok(list.check('::ffff:10.1.1.1', 'ipv6'), 'IPv4-mapped IPv6 matches the IPv4 range')
  t.notOk(list.check('8.8.8.8', 'ipv4'))
})

t.test('trustedClientAddress walks X-Forwarded-For from the right past trusted hops', async (t) => {
  const list = buildTrustList(['10.0.0.0/8'])
  t.equal(trustedClientAddress('1.2.3.4', '10.0.0.1', list), '1.2.3.4')
  t.equal(trustedClientAddress('6.6.6.6, 1.2.3.4, 10.0.0.9', '10.0.0.1', list), '1.2.3.4', 'spoofed left part ignored')
  t.equal(trustedClientAddress('10.0.0.3, 10.0.0.9', '10.0.0.1', list), '10.0.0.3', 'all trusted: the leftmost')
  t.equal(trustedClientAddress(undefined, '10.0.0.1', list), '10.0.0.1')
  t.equal(trustedClientAddress('garbage, 1.2.3.4', '10.0.0.1', list), '1.2.3.4')
  t.equal(trustedClientAddress('1.2.3.4, garbage', '10.0.0.1', list), '10.0.0.1', 'unparsable nearest hop: stop at the peer')
  t.equal(trustedClientAddress('[2001:db8::1]:443', '10.0.0.1', list), '2001:db8::1')
  t.equal(trustedClientAddress('1.2.3.4:5678', '10.0.0.1', list), '1.2.3.4')
})
