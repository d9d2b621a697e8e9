// The compression decision: the request's half (Range, CONNECT), the
// response's half (every exclusion and why), and the head edits (Vary
// merged, ETag weakened, Content-Length gone, upstream Accept-Encoding).
import t from 'tap'
import { DEFAULTS } from '../../../src/config/schema.js'
import {
  compileCompression, compressedHead, describeBytes, describeCompression, mediaType, notModifiedHead, requestCoding, responseDecision,
  typeListed, upstreamAcceptEncoding, weakETag, withVary
} from '../../../src/proxy/compression/decide.js'

const c = compileCompression(DEFAULTS.route.compression)
const html = (extra: string[] = []): string[] => ['content-type', 'text/html; charset=utf-8', 'content-length', '14336', ...extra]

t.test('the request\'s half', async (t) => {
  t.equal(requestCoding(c, 'GET', ['accept-encoding', 'gzip, br']).coding, 'br')
  t.equal(requestCoding(c, 'HEAD', ['accept-encoding', 'gzip']).coding, 'gzip', 'HEAD negotiates as GET does')
  t.equal(requestCoding(c, 'POST', ['accept-encoding', 'gzip']).coding, 'gzip')
  t.match(requestCoding(c, 'GET', ['accept-encoding', 'gzip', 'Range', 'bytes=0-1']), { coding: 'identity', why: 'a Range request' })
  t.match(requestCoding(c, 'CONNECT', ['accept-encoding', 'gzip']), { coding: 'identity', why: 'CONNECT' })
})

t.test('the response\'s half: compressed, and every reason not to', async (t) => {
  t.same(responseDecision(c, 'br', 200, html()), { coding: 'br', vary: true, why: 'type text/html, 14 KiB' })
  t.match(responseDecision(c, 'gzip', 200, ['content-type', 'application/json']), { coding: 'gzip', vary: true, why: 'type application/json, length unknown' })
  t.match(responseDecision(c, 'gzip', 404, html()), { coding: 'gzip' }, 'an error page is compressed too')
  const not: Array<[number, string[], boolean, RegExp]> = [
    [200, html(['content-encoding', 'gzip']), true, /Content-Encoding already gzip/],
    [200, html(['Cache-Control', 'public, No-Transform']), false, /no-transform/],
    [200, ['content-type', 'image/png'], false, /type image\/png is not in types/],
    [200, ['content-type', 'text/event-stream'], false, /text\/event-stream is not in types/],
    [200, [], false, /no Content-Type/],
    [200, ['content-type', 'text/html', 'content-length', '1023'], false, /1023 B is under minBytes \(1 KiB\)/],
    [206, html(['content-range', 'bytes 0-1/2']), false, /partial/],
    [200, html(['content-range', 'bytes 0-1/2']), false, /partial/],
    [204, [], false, /204 has no body/],
    [304, html(), true, /304 has no body/]
  ]
  for (const [status, headers, vary, why] of not) {
    const d = responseDecision(c, 'br', status, headers)
    t.equal(d.coding, undefined, String(why))
    t.equal(d.vary, vary, `${String(why)}: vary ${vary}`)
    t.match(d.why, why)
  }
  t.match(responseDecision(c, 'identity', 200, html()), { coding: undefined, vary: true, why: /the client gets identity/ })
  t.equal(responseDecision(c, 'gzip', 200, html(['content-encoding', 'identity'])).coding, 'gzip', 'identity is no encoding')
  t.equal(responseDecision(c, 'gzip', 200, ['content-type', 'text/html', 'content-length', '1024']).coding, 'gzip', 'minBytes itself is compressed')
})

t.test('types: exact, whole top-level types, event-stream only by name', async (t) => {
  const sse = compileCompression({ ...DEFAULTS.route.compression, types: ['text/*', 'text/event-stream'] })
  t.ok(typeListed(c, 'text/css'))
  t.ok(typeListed(c, 'image/svg+xml'))
  t.notOk(typeListed(c, 'image/png'))
  t.notOk(typeListed(c, 'text/event-stream'))
  t.ok(typeListed(sse, 'text/event-stream'))
  t.equal(mediaType(' Text/HTML ; charset=utf-8'), 'text/html')
  t.equal(mediaType(''), undefined)
})

t.test('head edits', async (t) => {
  t.same(compressedHead(['Content-Type', 'text/html', 'Content-Length', '9', 'ETag', '"a"', 'Accept-Ranges', 'bytes'], 'br'),
    ['Content-Type', 'text/html', 'ETag', 'W/"a"', 'content-encoding', 'br', 'vary', 'Accept-Encoding'])
  t.same(compressedHead(['etag', 'W/"a"', 'vary', 'Origin'], 'gzip'), ['etag', 'W/"a"', 'vary', 'Origin, Accept-Encoding', 'content-encoding', 'gzip'])
  t.same(compressedHead(['Content-Digest', 'sha-256=:x:', 'Repr-Digest', 'sha-256=:y:', 'Content-MD5', 'z', 'Digest', 'SHA=w', 'X-A', '1'], 'gzip'),
    ['X-A', '1', 'content-encoding', 'gzip', 'vary', 'Accept-Encoding'], 'digests of the uncompressed bytes dropped')
  t.same(notModifiedHead(['ETag', '"a"', 'Content-MD5', 'z', 'Cache-Control', 'max-age=5'], 'gzip'),
    ['ETag', 'W/"a"', 'Cache-Control', 'max-age=5', 'vary', 'Accept-Encoding'], 'a 304 freshening a compressed copy brings no digest')
  t.same(notModifiedHead(['ETag', '"a"', 'Content-MD5', 'z'], 'identity'), ['ETag', '"a"', 'Content-MD5', 'z', 'vary', 'Accept-Encoding'])
  t.same(withVary(['vary', 'accept-encoding']), ['vary', 'accept-encoding'], 'not twice')
  t.same(withVary(['Vary', 'Origin', 'vary', 'Accept-Encoding, Cookie']), ['Vary', 'Origin', 'vary', 'Accept-Encoding, Cookie'], 'on any line')
  t.same(withVary(['vary', '*']), ['vary', '*'], 'Vary * says it all')
  t.same(withVary(['vary', '']), ['vary', 'Accept-Encoding'])
  t.same(notModifiedHead(['etag', '"a"'], 'gzip'), ['etag', 'W/"a"', 'vary', 'Accept-Encoding'])
  t.same(notModifiedHead(['etag', '"a"'], 'identity'), ['etag', '"a"', 'vary', 'Accept-Encoding'])
  t.equal(weakETag(' "x" '), 'W/"x"')
  t.equal(weakETag('W/"x"'), 'W/"x"')
  const up = ['host', 'a', 'Accept-Encoding', 'gzip, br', 'accept-encoding', 'zstd']
  upstreamAcceptEncoding(up, 'br')
  t.same(up, ['host', 'a', 'accept-encoding', 'br'])
  upstreamAcceptEncoding(up, 'identity')
  t.same(up, ['host', 'a'])
})

t.test('words', async (t) => {
  t.equal(describeBytes(512), '512 B')
  t.equal(describeBytes(14 * 1024), '14 KiB')
  t.equal(describeBytes(1536), '1.5 KiB')
  t.equal(describeBytes(3 * 1024 * 1024), '3 MiB')
  t.equal(describeCompression(DEFAULTS.route.compression), 'br 4, gzip 6; ≥ 1 KiB; 14 types')
})
