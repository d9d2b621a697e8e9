import t, { type Test } from 'tap'
import { encodeProxyHeader, parseProxyHeader, V1_MAX, V2_MAX_PAYLOAD, V2_SIGNATURE, type ProxyParse } from '../../src/listener/proxy-protocol.js'

const text = (s: string): Buffer => Buffer.from(s, 'latin1')

/** Every prefix shorter than the header is incomplete; the whole is `expected`; bytes after it are left alone. */
function byteByByte (t: Test, header: Buffer, expected: ProxyParse): void {
  const after = text('GET / HTTP/1.1\r\n\r\n')
  const all = Buffer.concat([header, after])
  for (let i = 0; i < header.length; i++) {
    const r = parseProxyHeader(all.subarray(0, i))
    if (r.state !== 'incomplete') return void t.fail(`prefix of ${i} bytes: ${JSON.stringify(r)}`)
  }
  t.same(parseProxyHeader(all), expected)
  t.same(parseProxyHeader(header), expected)
}

function v2 (command: number, fam: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(16)
  V2_SIGNATURE.copy(head)
  head[12] = command
  head[13] = fam
  head.writeUInt16BE(payload.length, 14)
  return Buffer.concat([head, payload])
}

function inet4 (src: number[], dst: number[], sp: number, dp: number): Buffer {
  const b = Buffer.alloc(12)
  b.set(src, 0); b.set(dst, 4)
  b.writeUInt16BE(sp, 8); b.writeUInt16BE(dp, 10)
  return b
}

t.test('v1 TCP4, TCP6 and UNKNOWN, byte by byte', async (t) => {
  const tcp4 = text('PROXY TCP4 192.0.2.7 198.51.100.1 56324 443\r\n')
  byteByByte(t, tcp4, {
    state: 'done',
    header: { version: 1, command: 'proxy', source: { address: '192.0.2.7', port: 56324 }, destination: { address: '198.51.100.1', port: 443 } },
    length: tcp4.length
  })
  const tcp6 = text('PROXY TCP6 2001:db8::7 2001:db8::1 65535 0\r\n')
  byteByByte(t, tcp6, {
    state: 'done',
    header: { version: 1, command: 'proxy', source: { address: '2001:db8::7', port: 65535 }, destination: { address: '2001:db8::1', port: 0 } },
    length: tcp6.length
  })
  byteByByte(t, text('PROXY UNKNOWN\r\n'), { state: 'done', header: { version: 1, command: 'proxy' }, length: 15 })
  // UNKNOWN may carry addresses; they are ignored.
  const unk = text('PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n')
  t.same(parseProxyHeader(unk), { state: 'done', header: { version: 1, command: 'proxy' }, length: unk.length })
})

t.test('v1 at the 107-byte limit, and past it', async (t) => {
  // The longest line the spec counts (§2.1): 107 bytes.
  const longest = text('PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n')
  t.equal(longest.length, V1_MAX)
  const r = parseProxyHeader(longest)
  t.equal(r.state, 'done')
  // 107 bytes without a CRLF: refused, not waited for.
  t.match(parseProxyHeader(text('PROXY UNKNOWN ' + 'x'.repeat(V1_MAX))), { state: 'error', reason: /no CRLF/ })
  t.match(parseProxyHeader(text('PROXY UNKNOWN ' + 'x'.repeat(V1_MAX - 15) + '\r')), { state: 'error', reason: /no CRLF/ })
  t.equal(parseProxyHeader(text('PROXY UNKNOWN ' + 'x'.repeat(V1_MAX - 17))).state, 'incomplete')
  // One byte over, CRLF and all: 108 bytes.
  const over = text('PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 655350\r\n')
  t.equal(over.length, V1_MAX + 1)
  t.match(parseProxyHeader(over), { state: 'error', reason: /no CRLF/ })
  t.match(parseProxyHeader(over.subarray(0, V1_MAX - 1)), { state: 'error', reason: /no CRLF/ }, 'known as soon as the CR is late')
  t.equal(parseProxyHeader(longest.subarray(0, V1_MAX - 1)).state, 'incomplete', 'the longest line, without its LF yet')
})

t.test('v1 garbage is refused', async (t) => {
  const bad = [
    'PROXY TCP4 192.0.2.7 198.51.100.1 56324\r\n', // a port missing
    'PROXY TCP4 192.0.2.7 198.51.100.1 56324 443 9\r\n', // one word too many
    'PROXY TCP4  192.0.2.7 198.51.100.1 56324 443\r\n', // two spaces
    'PROXY TCP4 192.0.2.7 198.51.100.1 56324 443 \r\n', // trailing space
    'PROXY TCP4 2001:db8::7 198.51.100.1 1 2\r\n', // IPv6 in TCP4
    'PROXY TCP6 192.0.2.7 2001:db8::1 1 2\r\n', // IPv4 in TCP6
    'PROXY TCP6 fe80::7%eth0 2001:db8::1 1 2\r\n', // a zone: only this host's
    'PROXY TCP6 2001:db8::7 fe80::1%1 1 2\r\n',
    'PROXY TCP4 192.0.2.300 198.51.100.1 1 2\r\n',
    'PROXY TCP4 192.0.2.7 198.51.100.1 65536 2\r\n',
    'PROXY TCP4 192.0.2.7 198.51.100.1 080 2\r\n', // leading zero
    'PROXY TCP4 192.0.2.7 198.51.100.1 -1 2\r\n',
    'PROXY TCP4 192.0.2.7 198.51.100.1 +1 2\r\n',
    'PROXY UDP4 192.0.2.7 198.51.100.1 1 2\r\n',
    'PROXY tcp4 192.0.2.7 198.51.100.1 1 2\r\n',
    'PROXY TCP4 192.0.2.7 198.51.100.1 1 2\n', // LF without CR
    'PROXY TCP4 192.0.2.7 198.51.100.1 1 2\rX',
    'PROXY TCP4 192.0.2.7\t198.51.100.1 1 2\r\n',
    'PROXY TCP4 192.0.2.7 198.51.100.1 1 2\x00\r\n',
    'PROXY \r\n',
    'PROXY\r\n',
    'PROXI TCP4',
    'GET / HTTP/1.1\r\n\r\n',
    '\x16\x03\x01\x02\x00' // a TLS ClientHello
  ]
  for (const s of bad) t.equal(parseProxyHeader(text(s)).state, 'error', JSON.stringify(s))
  // Refused from the first byte that breaks it, not after a timeout.
  t.equal(parseProxyHeader(text('G')).state, 'error')
  t.equal(parseProxyHeader(text('PROXX')).state, 'error')
  t.equal(parseProxyHeader(text('PROXY TCP4 1\x01')).state, 'error')
  t.equal(parseProxyHeader(Buffer.alloc(0)).state, 'incomplete')
})

t.test('v2 PROXY over IPv4 and IPv6, byte by byte', async (t) => {
  const h4 = v2(0x21, 0x11, inet4([192, 0, 2, 7], [198, 51, 100, 1], 56324, 443))
  byteByByte(t, h4, {
    state: 'done',
    header: { version: 2, command: 'proxy', source: { address: '192.0.2.7', port: 56324 }, destination: { address: '198.51.100.1', port: 443 } },
    length: 28
  })
  const a6 = Buffer.alloc(36)
  a6.set([0x20, 0x01, 0x0d, 0xb8], 0); a6[15] = 7
  a6.set([0x20, 0x01, 0x0d, 0xb8, 0, 1], 16); a6[31] = 1
  a6.writeUInt16BE(1, 32); a6.writeUInt16BE(8443, 34)
  const h6 = v2(0x21, 0x21, a6)
  byteByByte(t, h6, {
    state: 'done',
    header: { version: 2, command: 'proxy', source: { address: '2001:db8::7', port: 1 }, destination: { address: '2001:db8:1::1', port: 8443 } },
    length: 52
  })
})

t.test('v2 LOCAL, UNSPEC, UNIX and datagrams: the connection\'s own addresses apply', async (t) => {
  t.same(parseProxyHeader(v2(0x20, 0x00, Buffer.alloc(0))), { state: 'done', header: { version: 2, command: 'local' }, length: 16 })
  // LOCAL with addresses anyway: they are ignored.
  t.same(parseProxyHeader(v2(0x20, 0x11, inet4([1, 2, 3, 4], [5, 6, 7, 8], 1, 2))), { state: 'done', header: { version: 2, command: 'local' }, length: 28 })
  t.same(parseProxyHeader(v2(0x21, 0x00, Buffer.alloc(0))), { state: 'done', header: { version: 2, command: 'proxy' }, length: 16 })
  t.same(parseProxyHeader(v2(0x21, 0x31, Buffer.alloc(216))), { state: 'done', header: { version: 2, command: 'proxy' }, length: 232 })
  t.same(parseProxyHeader(v2(0x21, 0x12, inet4([1, 2, 3, 4], [5, 6, 7, 8], 1, 2))), { state: 'done', header: { version: 2, command: 'proxy' }, length: 28 })
})

t.test('v2 TLVs are skipped within bounds', async (t) => {
  const tlvs = Buffer.from([0x01, 0x00, 0x02, 0x68, 0x32, /* ALPN h2 */ 0x04, 0x00, 0x00 /* NOOP, empty */])
  const h = v2(0x21, 0x11, Buffer.concat([inet4([10, 0, 0, 1], [10, 0, 0, 2], 1000, 80), tlvs]))
  byteByByte(t, h, {
    state: 'done',
    header: { version: 2, command: 'proxy', source: { address: '10.0.0.1', port: 1000 }, destination: { address: '10.0.0.2', port: 80 } },
    length: h.length
  })
  const addr = inet4([10, 0, 0, 1], [10, 0, 0, 2], 1000, 80)
  t.match(parseProxyHeader(v2(0x21, 0x11, Buffer.concat([addr, Buffer.from([0x01, 0x00])]))), { state: 'error', reason: /truncated TLV/ })
  t.match(parseProxyHeader(v2(0x21, 0x11, Buffer.concat([addr, Buffer.from([0x01, 0x00, 0x05, 0x68])]))), { state: 'error', reason: /TLV longer/ })
  // The largest payload taken, and one byte more.
  const big = Buffer.concat([addr, Buffer.from([0x04, 0x00, 0x00]), Buffer.alloc(0)])
  const fill = V2_MAX_PAYLOAD - big.length - 3
  const max = Buffer.concat([big, Buffer.from([0x04, fill >> 8, fill & 0xff]), Buffer.alloc(fill)])
  t.equal(parseProxyHeader(v2(0x21, 0x11, max)).state, 'done')
  t.match(parseProxyHeader(v2(0x21, 0x11, Buffer.concat([max, Buffer.alloc(1)]))), { state: 'error', reason: /longer than/ })
  // Refused on the length alone, before the bytes arrive.
  const announced = v2(0x21, 0x11, Buffer.alloc(0))
  announced.writeUInt16BE(0xffff, 14)
  t.equal(parseProxyHeader(announced).state, 'error')
})

t.test('v2 malformed', async (t) => {
  const good = v2(0x21, 0x11, inet4([1, 2, 3, 4], [5, 6, 7, 8], 1, 2))
  const flip = (i: number, v: number): Buffer => { const b = Buffer.from(good); b[i] = v; return b }
  t.match(parseProxyHeader(flip(11, 0x0b)), { state: 'error', reason: /signature/ })
  t.match(parseProxyHeader(flip(12, 0x11)), { state: 'error', reason: /version/ }) // version 1 in v2 framing
  t.match(parseProxyHeader(flip(12, 0x22)), { state: 'error', reason: /command/ })
  t.match(parseProxyHeader(flip(13, 0x41)), { state: 'error', reason: /family/ })
  t.match(parseProxyHeader(flip(13, 0x13)), { state: 'error', reason: /family/ })
  // An INET6 family in a block sized for INET.
  t.match(parseProxyHeader(flip(13, 0x21)), { state: 'error', reason: /shorter than its address block/ })
  // The bad command is seen as soon as its byte is in.
  t.equal(parseProxyHeader(flip(12, 0x23).subarray(0, 13)).state, 'error')
  t.equal(parseProxyHeader(good.subarray(0, 13)).state, 'incomplete')
  t.equal(parseProxyHeader(Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x01])).state, 'error')
  t.equal(parseProxyHeader(Buffer.from([0x0d, 0x0a])).state, 'incomplete')
})

t.test('encode → parse round trips', async (t) => {
  const cases: Array<[string, string]> = [
    ['192.0.2.7', '198.51.100.1'],
    ['2001:db8::7', '2001:db8:1::1'],
    ['::1', '::1'],
    ['fe80::1:2:3:4', '1::'],
    ['1:2:3:4:5:6:7:8', '1:0:0:2::3'],
    ['::ffff:192.0.2.7', '::ffff:127.0.0.1']
  ]
  for (const version of [1, 2] as const) {
    for (const [src, dst] of cases) {
      const b = encodeProxyHeader(version, { source: { address: src, port: 40000 }, destination: { address: dst, port: 443 } })
      const r = parseProxyHeader(b)
      if (r.state !== 'done') { t.fail(`${src} ${dst}: ${JSON.stringify(r)}`); continue }
      t.equal(r.length, b.length)
      t.equal(r.header.version, version)
      const norm = (a: string): string => a.replace(/^::ffff:(?=\d+\.)/, '')
      t.equal(norm(r.header.source!.address), norm(src), `v${version} ${src}`)
      t.equal(norm(r.header.destination!.address), norm(dst), `v${version} ${dst}`)
      t.equal(r.header.source!.port, 40000)
      t.equal(r.header.destination!.port, 443)
    }
  }
  // Mixed families are sent as IPv6.
  const mixed = encodeProxyHeader(1, { source: { address: '192.0.2.7', port: 1 }, destination: { address: '::1', port: 2 } })
  t.equal(mixed.toString('latin1'), 'PROXY TCP6 ::ffff:192.0.2.7 ::1 1 2\r\n')
  const m2 = parseProxyHeader(encodeProxyHeader(2, { source: { address: '192.0.2.7', port: 1 }, destination: { address: '::1', port: 2 } }))
  t.match(m2, { state: 'done', header: { source: { address: '::ffff:192.0.2.7' }, destination: { address: '::1' } } })
  t.equal(encodeProxyHeader(1, { source: { address: '10.0.0.1', port: 5 }, destination: { address: '10.0.0.2', port: 80 } }).toString('latin1'),
    'PROXY TCP4 10.0.0.1 10.0.0.2 5 80\r\n')
  t.throws(() => encodeProxyHeader(2, { source: { address: 'nope', port: 1 }, destination: { address: '::1', port: 2 } }))
})

t.test('encode: the proxy speaking for itself (health checks)', async (t) => {
  t.equal(encodeProxyHeader(1).toString('latin1'), 'PROXY UNKNOWN\r\n')
  const local = encodeProxyHeader(2)
  t.same([...local], [...V2_SIGNATURE, 0x20, 0x00, 0x00, 0x00])
  t.same(parseProxyHeader(local), { state: 'done', header: { version: 2, command: 'local' }, length: 16 })
})
