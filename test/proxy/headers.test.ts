import t from 'tap'
import { Errors } from '../../src/errors.js'
import {
  compileHeaderOps, downstreamResponseHeaders, forwardedElement, normalizeAddress, NO_HEADER_OPS, trailerObject,
  upstreamRequestHead, type CompiledHeaderOps, type ForwardContext, type UpstreamHeaderPolicy
} from '../../src/proxy/headers.js'
import { parseAuthority } from '../../src/authority.js'

const policy = (over: Partial<UpstreamHeaderPolicy> = {}): UpstreamHeaderPolicy => ({
  forwarding: { xForwarded: true, forwarded: false, via: true },
  limits: { maxHeaderBytes: 16384, maxHeaderCount: 100, maxUriBytes: 8192 },
  ops: NO_HEADER_OPS,
  ...over
})
const untrusted: ForwardContext = { clientAddress: '10.1.2.3', trusted: false, proto: 'https', viaEntry: '2 switchyard' }
const trusted: ForwardContext = { ...untrusted, trusted: true }

const H = parseAuthority('h')!

/** Response headers that must be well-formed in these tests. */
function shaped (raw: readonly string[], via: string | undefined, ops: CompiledHeaderOps): string[] {
  const out = downstreamResponseHeaders(raw, via, ops)
  if (typeof out === 'string') throw new Error(`refused: ${out}`)
  return out
}

function asMap (flat: readonly string[]): Record<string, string[]> {
  const m: Record<string, string[]> = {}
  for (let i = 0; i < flat.length; i += 2) (m[flat[i]!.toLowerCase()] ??= []).push(flat[i + 1]!)
  return m
}

function head (raw: string[], fwd = untrusted, p = policy()) {
  const r = upstreamRequestHead(raw, parseAuthority('api.test:8443')!, 'api.test:8443', fwd, p)
  if ('code' in r) throw new Error(r.code)
  return { ...r, map: asMap(r.headers) }
}

t.test('hop-by-hop request fields are stripped (RFC 9110 §7.6.1), including names listed in Connection', async (t) => {
  const { map } = head(['Connection', 'X-Secret, keep-alive', 'X-Secret', '1', 'Keep-Alive', 'timeout=5', 'TE', 'trailers',
    'Upgrade', 'h2c', 'Proxy-Connection', 'keep-alive', 'Transfer-Encoding', 'chunked', 'HTTP2-Settings', 'x',
    'Expect', '100-continue', 'Proxy-Authorization', 'Basic abc', 'Accept', '*/*'])
  for (const n of ['connection', 'x-secret', 'keep-alive', 'te', 'upgrade', 'proxy-connection', 'transfer-encoding',
    'http2-settings', 'expect', 'proxy-authorization']) t.notOk(map[n], `${n} stripped`)
  t.same(map.accept, ['*/*'])
})

t.test('a Connection header cannot strip what the proxy adds', async (t) => {
  const { map } = head(['Connection', 'x-forwarded-for, host, via'])
  t.same(map['x-forwarded-for'], ['10.1.2.3'])
  t.same(map.host, ['api.test:8443'])
  t.same(map.via, ['2 switchyard'])
})

t.test('h2 pseudo-headers are dropped and Host is the authority; cookies are joined', async (t) => {
  const { map } = head([':method', 'GET', ':path', '/', ':authority', 'api.test:8443', ':scheme', 'https',
    'cookie', 'a=1', 'cookie', 'b=2'])
  t.notOk(Object.keys(map).some((k) => k.startsWith(':')))
  t.same(map.host, ['api.test:8443'])
  t.same(map.cookie, ['a=1; b=2'])
})

t.test('X-Forwarded-* from an untrusted peer are replaced', async (t) => {
  const { map } = head(['X-Forwarded-For', '6.6.6.6', 'X-Forwarded-Proto', 'http', 'X-Forwarded-Host', 'evil', 'Forwarded', 'for=6.6.6.6'])
  t.same(map['x-forwarded-for'], ['10.1.2.3'])
  t.same(map['x-forwarded-proto'], ['https'])
  t.same(map['x-forwarded-host'], ['api.test:8443'])
  t.notOk(map.forwarded, 'Forwarded off by default and untrusted value dropped')
})

t.test('X-Forwarded-* from a trusted peer are kept and XFF appended; several XFF fields join', async (t) => {
  const { map } = head(['X-Forwarded-For', '6.6.6.6', 'x-forwarded-for', '7.7.7.7', 'X-Forwarded-Proto', 'http',
    'X-Forwarded-Host', 'front.test'], trusted)
  t.same(map['x-forwarded-for'], ['6.6.6.6, 7.7.7.7, 10.1.2.3'])
  t.same(map['x-forwarded-proto'], ['http'])
  t.same(map['x-forwarded-host'], ['front.test'])
})

t.test('Via is appended; RFC 7239 Forwarded when enabled', async (t) => {
  const p = policy({ forwarding: { xForwarded: false, forwarded: true, via: true } })
  const { map } = head(['Via', '1.1 edge', 'Forwarded', 'for=1.1.1.1'], trusted, p)
  t.same(map.via, ['1.1 edge, 2 switchyard'])
  t.same(map.forwarded, ['for=1.1.1.1, for=10.1.2.3;host="api.test:8443";proto=https'])
  t.notOk(map['x-forwarded-for'])
  t.equal(forwardedElement({ ...untrusted, clientAddress: '::1' }, 'h'), 'for="[::1]";host=h;proto=https')
})

t.test('route header operations', async (t) => {
  const ops = compileHeaderOps({ set: { 'x-env': 'prod', accept: 'text/html' }, remove: ['x-debug'] })
  const { map } = head(['Accept', '*/*', 'X-Debug', '1', 'X-Keep', 'y'], untrusted, policy({ ops }))
  t.same(map.accept, ['text/html'])
  t.same(map['x-env'], ['prod'])
  t.notOk(map['x-debug'])
  t.same(map['x-keep'], ['y'])
  t.equal(compileHeaderOps({ set: {}, remove: [] }), NO_HEADER_OPS)
})

t.test('body detection', async (t) => {
  t.equal(head(['Content-Length', '0']).hasBody, false)
  t.equal(head(['Content-Length', '12']).hasBody, true)
  t.same(head(['Content-Length', '12']).map['content-length'], ['12'])
  t.equal(head(['Transfer-Encoding', 'chunked']).hasBody, true)
  t.equal(head(['Transfer-Encoding', ' Chunked ']).hasBody, true)
  t.equal(head([]).hasBody, false)
})

t.test('RFC 9112 §6.1: a request transfer coding other than chunked is a 501, never dropped on the way', async (t) => {
  const p = policy()
  for (const te of [['gzip, chunked'], ['chunked, chunked'], ['gzip', 'chunked'], ['chunked', 'chunked'], ['identity'], ['xchunked']]) {
    const raw = te.flatMap((v) => ['Transfer-Encoding', v])
    t.equal(upstreamRequestHead(raw, H, 'h', untrusted, p), Errors.TRANSFER_CODING, JSON.stringify(te))
  }
  t.equal(Errors.TRANSFER_CODING.status, 501)
})

t.test('limits: count and bytes, pseudo-headers excluded, same rule for h1 and h2', async (t) => {
  const p = policy({ limits: { maxHeaderBytes: 100, maxHeaderCount: 3, maxUriBytes: 8192 } })
  const ok = upstreamRequestHead([':path', '/'.repeat(500), 'a', '1', 'b', '2', 'c', '3'], H, 'h', untrusted, p)
  t.notOk('code' in ok)
  t.equal(upstreamRequestHead(['a', '1', 'b', '2', 'c', '3', 'd', '4'], H, 'h', untrusted, p), Errors.HEADERS_TOO_LARGE)
  t.equal(upstreamRequestHead(['a', 'x'.repeat(100)], H, 'h', untrusted, p), Errors.HEADERS_TOO_LARGE)
  t.notOk('code' in upstreamRequestHead(['a', 'x'.repeat(99)], H, 'h', untrusted, p))
})

t.test('response headers: hop-by-hop out (with Connection-listed), Via appended, ops applied, bytes kept', async (t) => {
  const raw = ['Connection', 'X-Internal', 'X-Internal', 'secret', 'Keep-Alive', 'timeout=5', 'Transfer-Encoding', 'chunked',
    'Content-Type', 'text/plain', 'Via', '1.1 origin', 'Set-Cookie', 'a=1', 'Set-Cookie', 'b=2', 'X-Latin', 'caf\u00e9', 'Server', 'x']
  const ops = compileHeaderOps({ set: { 'x-frame-options': 'DENY' }, remove: ['server'] })
  const out = asMap(shaped(raw, '1.1 switchyard', ops))
  t.notOk(out.connection); t.notOk(out['x-internal']); t.notOk(out['keep-alive']); t.notOk(out['transfer-encoding'])
  t.notOk(out.server)
  t.same(out['set-cookie'], ['a=1', 'b=2'], 'set-cookie fields stay separate')
  t.same(out.via, ['1.1 origin, 1.1 switchyard'])
  t.same(out['x-frame-options'], ['DENY'])
  t.same(out['x-latin'], ['caf\u00e9'])
  t.same(asMap(shaped(['Via', '1.1 o'], undefined, NO_HEADER_OPS)).via, ['1.1 o'])
})

t.test('response headers: fields that direct this cache stay when Connection lists them; other listed fields go', async (t) => {
  const raw = ['Connection', 'cache-control, Vary, expires, pragma, age, cdn-cache-control, x-internal', 'Cache-Control', 'no-store',
    'Vary', 'Cookie', 'Expires', 'Thu, 01 Jan 2099 00:00:00 GMT', 'Pragma', 'no-cache', 'Age', '5', 'CDN-Cache-Control', 'no-store',
    'X-Internal', 'secret', 'Content-Type', 'text/plain']
  const out = asMap(shaped(raw, undefined, NO_HEADER_OPS))
  t.same(Object.keys(out).sort(), ['age', 'cache-control', 'cdn-cache-control', 'content-type', 'expires', 'pragma', 'vary'])
  t.same(out['cache-control'], ['no-store'])
  t.same(out.vary, ['Cookie'])
})

t.test('response headers: a transfer coding other than chunked, once, is refused (nginx: unknown Transfer-Encoding)', async (t) => {
  const te = (v: string) => downstreamResponseHeaders(['Transfer-Encoding', v], undefined, NO_HEADER_OPS)
  for (const v of ['gzip, chunked', 'identity', 'chunked, chunked', 'gzip', 'chunked;q=1']) t.equal(te(v), 'transfer-encoding', v)
  for (const v of ['chunked', 'Chunked', ' chunked ']) t.same(te(v), [], v)
})

t.test('response headers: a one-value field repeated is collapsed (same value) or refused (different values)', async (t) => {
  const buf = (...xs: string[]): string[] => xs
  const same = downstreamResponseHeaders(buf('X-Content-Type-Options', 'nosniff', 'Content-Type', 'text/html',
    'x-content-type-options', 'nosniff', 'ETag', '"a"', 'etag', '"a"'), undefined, NO_HEADER_OPS)
  t.same(same, ['X-Content-Type-Options', 'nosniff', 'Content-Type', 'text/html', 'ETag', '"a"'], 'collapsed, order kept')
  t.equal(downstreamResponseHeaders(buf('ETag', '"a"', 'ETag', '"b"'), undefined, NO_HEADER_OPS), 'etag', 'different ETags: refused')
  t.equal(downstreamResponseHeaders(buf('Content-Type', 'a/b', 'Date', 'x', 'content-type', 'c/d'), undefined, NO_HEADER_OPS), 'content-type')
  t.equal(downstreamResponseHeaders(buf('Location', '/a', 'Location', '/b'), undefined, NO_HEADER_OPS), 'location')
  t.same(downstreamResponseHeaders(buf('Content-Encoding', 'gzip', 'Content-Encoding', 'br'), undefined, NO_HEADER_OPS),
    ['Content-Encoding', 'gzip, br'], 'a list that HTTP/2 wants as one field: joined (RFC 9110 §5.3)')
  t.same(downstreamResponseHeaders(buf('Cache-Control', 'public', 'Cache-Control', 'max-age=5'), undefined, NO_HEADER_OPS),
    ['Cache-Control', 'public', 'Cache-Control', 'max-age=5'], 'other repeatable fields untouched')
  t.same(downstreamResponseHeaders(buf('Server', 'a', 'Server', 'b'), undefined, NO_HEADER_OPS), ['Server', 'a', 'Server', 'b'])
  t.same(downstreamResponseHeaders(buf('Age', '0', 'Date', 'd1', 'Age', '7200', 'Expires', 'e1', 'expires', 'e2', 'date', 'd2'),
    undefined, NO_HEADER_OPS), ['Age', '0', 'Date', 'd1', 'Expires', 'e1'], 'Age, Date, Expires: the first counts (RFC 9111 §5.1)')
})

t.test('request: X-Forwarded-Port/-Prefix/-Server/-Scheme/-Ssl, client-address, original-URL, host and method-override fields only from trusted proxies', async (t) => {
  const raw = ['X-Forwarded-Port', '443', 'X-Forwarded-Prefix', '/admin', 'X-Forwarded-Server', 'a', 'X-Forwarded-Scheme', 'https',
    'X-Real-IP', '10.9.9.9', 'X-Forwarded-Ssl', 'on', 'X-Client-IP', '10.1.1.1', 'True-Client-IP', '10.2.2.2',
    'X-Cluster-Client-IP', '10.3.3.3', 'X-Original-URL', '/admin/users', 'X-Rewrite-URL', '/admin/x',
    'X-Host', 'evil.test', 'X-Original-Host', 'evil.test', 'X-HTTP-Method-Override', 'DELETE', 'X-HTTP-Method', 'PUT',
    'X-Method-Override', 'PATCH']
  const u = head(raw).map
  for (const n of ['x-forwarded-port', 'x-forwarded-prefix', 'x-forwarded-server', 'x-forwarded-scheme', 'x-real-ip', 'x-forwarded-ssl',
    'x-client-ip', 'true-client-ip', 'x-cluster-client-ip', 'x-original-url', 'x-rewrite-url', 'x-host', 'x-original-host',
    'x-http-method-override', 'x-http-method', 'x-method-override']) {
    t.notOk(u[n], `${n} dropped from an untrusted peer`)
  }
  const tr = head(raw, trusted).map
  t.same(tr['x-forwarded-prefix'], ['/admin'], 'kept from a trusted one')
  t.same(tr['x-real-ip'], ['10.9.9.9'])
  t.same(tr['x-original-url'], ['/admin/users'])
  t.same(tr['true-client-ip'], ['10.2.2.2'])
  t.same(tr['x-http-method-override'], ['DELETE'])
})

t.test('effective scheme and host: a trusted proxy\'s well-formed X-Forwarded-Proto/-Host, else ours', async (t) => {
  const h = head(['X-Forwarded-Proto', 'https', 'X-Forwarded-Host', 'Shop.Test'])
  t.equal(h.proto, 'https', 'untrusted: our listener\'s scheme')
  t.equal(h.authority.value, 'api.test:8443')
  const tr = head(['X-Forwarded-Proto', 'HTTPS', 'X-Forwarded-Host', 'Shop.Test'], trusted)
  t.equal(tr.proto, 'https')
  t.equal(tr.authority.value, 'shop.test')
  t.same(tr.map['x-forwarded-host'], ['shop.test'])
  const bad = head(['X-Forwarded-Proto', 'gopher', 'X-Forwarded-Host', 'a.test/x'], { ...trusted, proto: 'http' })
  t.equal(bad.proto, 'http', 'not http(s): ours')
  t.equal(bad.authority.value, 'api.test:8443', 'not host[:port]: ours')
  t.same(bad.map['x-forwarded-host'], ['api.test:8443'], 'what is keyed is what is forwarded')
})


t.test('trailers and addresses', async (t) => {
  t.same(trailerObject(['Grpc-Status', '0', 'Connection', 'x'].map((s) => Buffer.from(s))), { 'grpc-status': '0' })
  t.equal(trailerObject([]), undefined)
  const odd = trailerObject(['Constructor', 'yes', '__proto__', 'p', 'toString', 't'].map((s) => Buffer.from(s)))!
  t.same(Object.entries(odd), [['constructor', 'yes'], ['__proto__', 'p'], ['tostring', 't']], 'names an Object has are fields like any other')
  // RFC 9110 §6.5.1: framing, routing, authentication, response control and content description never come as trailers.
  t.same(trailerObject(['Set-Cookie', 'sid=x', 'Location', '/evil', 'Content-Type', 'text/html', 'Host', 'h', 'Authorization', 'x',
    'Cache-Control', 'max-age=9', 'Server-Timing', 'db;dur=5', 'X-Checksum', 'abc'].map((s) => Buffer.from(s))),
  { 'server-timing': 'db;dur=5', 'x-checksum': 'abc' })
  t.equal(normalizeAddress('::ffff:10.0.0.1'), '10.0.0.1')
  t.equal(normalizeAddress('::1'), '::1')
  t.equal(normalizeAddress(undefined), '')
})

t.test('TE: trailers goes on to h2 backends only, as exactly `trailers`', async (t) => {
  const h2 = policy({ teTrailers: true })
  t.same(head(['TE', 'trailers'], untrusted, h2).map.te, ['trailers'])
  t.same(head(['TE', 'gzip;q=0.5, Trailers'], untrusted, h2).map.te, ['trailers'], 'other codings dropped (HTTP/2 allows only trailers)')
  t.same(head(['Connection', 'TE', 'TE', 'trailers'], untrusted, h2).map.te, ['trailers'], 'an h1 client names TE in Connection, as it must')
  t.notOk(head(['TE', 'gzip'], untrusted, h2).map.te, 'no trailers token: nothing sent')
  t.notOk(head(['TE', 'xtrailers'], untrusted, h2).map.te)
  t.notOk(head(['TE', 'trailers'], untrusted, policy()).map.te, 'HTTP/1.1 backends: hop-by-hop, stripped')
})

t.test('an underscore spelling of a field handled here is dropped (CGI servers read it as the dashed one)', async (t) => {
  for (const fwd of [untrusted, trusted]) {
    const { map } = head(['X_Forwarded_Prefix', '//evil.example', 'x_original_url', '/admin', 'X_Forwarded_For', '6.6.6.6',
      'X_HTTP_Method_Override', 'DELETE', 'Content_Length', '5', 'X_Custom_Thing', 'kept', 'X-Trace_Id', 'kept too'], fwd)
    for (const name of ['x_forwarded_prefix', 'x_original_url', 'x_forwarded_for', 'x_http_method_override', 'content_length']) {
      t.notOk(name in map, `${name} dropped (trusted: ${fwd.trusted})`)
    }
    t.same(map['x_custom_thing'], ['kept'], 'a field of no meaning here passes')
    t.same(map['x-trace_id'], ['kept too'])
    t.same(map['x-forwarded-for'], ['10.1.2.3'], 'the proxy\'s own X-Forwarded-For only')
  }
})
