// Issue 8, items 2, 3, 5 and 8: what a client sends can neither poison the
// cache, nor slip past a route, nor reach a shard's cached answer for another
// shard. Real proxy, real origins, raw sockets where clients would refuse to
// send the bytes.
import http2 from 'node:http2'
import t from 'tap'
import type { Test } from 'tap'
import { testCertificate, testCertificatePair } from '../helpers/certs.js'
import { writeCertificatePair } from '../../src/certs.js'
import { echoed, h1, h2, h2Request, h2Session, rawRequest, tlsAndPlainListeners } from '../helpers/e2e.js'
import { startOrigin, startServer, type Origin } from '../helpers/origin.js'
import { startProxy } from '../helpers/proxy.js'
import type { Session } from '../../src/proxy/session.js'

/** An origin that says which path it served, cacheable for a minute. */
async function pathOrigin (t: Test, name: string): Promise<Origin> {
  return startOrigin(t, (seen, res) => {
    const body = `${name} ${seen.url}`
    res.writeHead(200, { 'cache-control': 'max-age=60', 'content-length': String(Buffer.byteLength(body)) })
    res.end(body)
  })
}

const raw = (port: number, target: string, headers: string, method = 'GET') =>
  rawRequest(port, `${method} ${target} HTTP/1.1\r\n${headers}Connection: close\r\n\r\n`)

t.test('Host must be host[:port]: the cache cannot be poisoned through it', async (t) => {
  const o = await pathOrigin(t, 'shop')
  const p = await startProxy(t, `listeners: [{ name: web, bind: "127.0.0.1:0" }]
cache: {}
routes: [{ match: { host: shop.test }, backend: shop }]
backends: { shop: { servers: [{ url: "${o.url}" }] } }
`)
  const port = p.port('web')
  const poison = await raw(port, '/y', 'Host: shop.test:8443/x\r\n')
  t.equal(poison.status, 400, 'Host with a path: 400')
  t.equal(poison.headers['x-switchyard-error'], 'LB_ERR_BAD_REQUEST')
  for (const host of ['shop.test?x', 'user@shop.test', 'shop.test:70000', 'shop.test:8a', 'shop.test:1:2', '[::1']) {
    t.equal((await raw(port, '/y', `Host: ${host}\r\n`)).status, 400, JSON.stringify(host))
  }
  t.equal(o.requests.length, 0, 'none of them reached the origin')
  const real = await raw(port, '/x/y', 'Host: shop.test:8443\r\n')
  t.equal(real.body, 'shop /x/y', '/x/y is /x/y, not a poisoned /y')
  t.equal((await raw(port, '/y', 'Host: shop.test\r\nHost: other.test\r\n')).status, 400, 'two Host fields (RFC 9112 §3.2)')
  t.equal((await raw(port, '/y', 'Host: SHOP.test.:80\r\n')).body, 'shop /y', 'case, trailing dot and default port normalised')
})

t.test('absolute-form wins over Host, and Host is rewritten to it', async (t) => {
  const a = await startOrigin(t)
  const p = await startProxy(t, `listeners: [{ name: web, bind: "127.0.0.1:0" }]
routes:
  - { match: { host: a.test }, backend: a }
backends: { a: { servers: [{ url: "${a.url}" }] } }
`)
  const r = await raw(p.port('web'), 'http://A.test:8080/p?q=1', 'Host: other.test\r\n')
  t.equal(r.status, 200)
  const seen = a.requests[0]!
  t.equal(seen.url, '/p?q=1')
  t.equal(seen.headers.host, 'a.test:8080')
  t.equal(seen.headers['x-forwarded-host'], 'a.test:8080')
})

t.test('paths are normalised before routing, and the upstream gets the same path', async (t) => {
  const pub = await pathOrigin(t, 'public')
  const internal = await pathOrigin(t, 'internal')
  const cert = testCertificate(t)
  const p = await startProxy(t, `${tlsAndPlainListeners(cert)}
routes:
  - { match: { pathPrefix: /public/ }, backend: pub }
  - { match: { pathPrefix: /internal/ }, backend: internal }
backends:
  pub: { servers: [{ url: "${pub.url}" }] }
  internal: { servers: [{ url: "${internal.url}" }] }
`)
  for (const target of ['/public/../internal/x', '/public/%2e%2e/internal/x', '/public/.%2E/internal/x', '/public/./../internal/./x']) {
    const r = await raw(p.port('plain'), target, 'Host: a\r\n')
    t.equal(r.body, 'internal /internal/x', `${target}: routed and forwarded as /internal/x`)
  }
  const viaH2 = await h2(t, p.url('tls'), { ':path': '/public/%2e%2e/internal/y' })
  t.equal(viaH2.text, 'internal /internal/y', 'h2 too')
  t.equal((await raw(p.port('plain'), '/public/%61bout', 'Host: a\r\n')).body, 'public /public/about', 'encoded unreserved decoded')
  t.equal((await raw(p.port('plain'), '/public/a%2Fb//c', 'Host: a\r\n')).body, 'public /public/a%2Fb//c', 'defaults keep the rest byte for byte')
  t.equal(pub.requests.filter((r) => r.url.includes('internal')).length, 0, 'the public backend never saw an internal path')
})

t.test('pathNormalization: mergeSlashes and escapedSlashes (reject, decode)', async (t) => {
  const o = await pathOrigin(t, 'o')
  const proxy = (cfg: string) => startProxy(t, `listeners: [{ name: web, bind: "127.0.0.1:0" }]
pathNormalization: ${cfg}
routes: [{ backend: o }]
backends: { o: { servers: [{ url: "${o.url}" }] } }
`)
  const merge = await proxy('{ mergeSlashes: true }')
  t.equal((await raw(merge.port('web'), '//a///b', 'Host: a\r\n')).body, 'o /a/b')
  const reject = await proxy('{ escapedSlashes: reject }')
  const r = await raw(reject.port('web'), '/a%2Fb', 'Host: a\r\n')
  t.equal(r.status, 400)
  t.equal(r.headers['x-switchyard-error'], 'LB_ERR_BAD_REQUEST')
  const decode = await proxy('{ escapedSlashes: decode }')
  t.equal((await raw(decode.port('web'), '/x/..%2F..%2Fa%2Fb', 'Host: a\r\n')).body, 'o /a/b', 'decoded first, so no `..` survives')
  // Origins that parse with WHATWG URL read a backslash as `/`: routed by the
  // path before it, `/public/..\internal/x` reached them as `/internal/x`.
  t.equal((await raw(decode.port('web'), '/x/..%5C..%5ca/b', 'Host: a\r\n')).body, 'o /a/b', '%5C decodes to `/` too')
  t.equal((await raw(decode.port('web'), '/x/..\\a\\b', 'Host: a\r\n')).body, 'o /a/b', 'and a raw backslash is one')
  t.equal((await raw(reject.port('web'), '/x/..\\a', 'Host: a\r\n')).status, 400, 'reject refuses a raw backslash')
  const keep = await proxy('{ escapedSlashes: keep }')
  t.equal((await raw(keep.port('web'), '/x/..%5Ca', 'Host: a\r\n')).body, 'o /x/..%5Ca', 'keep leaves an escaped one byte for byte')
  t.equal((await raw(keep.port('web'), '/x/..\\a', 'Host: a\r\n')).status, 400, 'and refuses a raw one, which origins would read as `/`')
})

t.test('what picks the backend or the shard is part of the cache key', async (t) => {
  const stable = await pathOrigin(t, 'stable')
  const beta = await pathOrigin(t, 'beta')
  const shardA = await pathOrigin(t, 'shard-a')
  const shardB = await pathOrigin(t, 'shard-b')
  const p = await startProxy(t, `listeners: [{ name: web, bind: "127.0.0.1:0" }]
cache: {}
routes:
  - { name: beta, match: { pathPrefix: /app, headers: { x-beta: "1" } }, backend: beta }
  - { name: stable, match: { pathPrefix: /app }, backend: stable }
  - { name: users, match: { pathPrefix: /profile }, backend: users }
backends:
  stable: { servers: [{ url: "${stable.url}" }] }
  beta: { servers: [{ url: "${beta.url}" }] }
  users:
    shardBy: { header: x-user }
    shards:
      - { name: a, servers: [{ url: "${shardA.url}" }] }
      - { name: b, servers: [{ url: "${shardB.url}" }] }
`)
  const port = p.port('web')
  t.equal((await raw(port, '/app', 'Host: a\r\nX-Beta: 1\r\n')).body, 'beta /app')
  t.equal((await raw(port, '/app', 'Host: a\r\n')).body, 'stable /app', 'the beta answer is not served to a stable user')
  const again = await raw(port, '/app', 'Host: a\r\nX-Beta: 1\r\n')
  t.equal(again.body, 'beta /app')
  t.match(again.headers['cache-status'], /hit/, 'each is cached on its own')
  const seen = new Map<string, string>()
  for (let i = 0; i < 16; i++) seen.set(`u${i}`, (await raw(port, '/profile', `Host: a\r\nX-User: u${i}\r\n`)).body)
  t.same(new Set(seen.values()), new Set(['shard-a /profile', 'shard-b /profile']), 'each shard answered its own users')
  for (const [user, body] of seen) {
    const r = await raw(port, '/profile', `Host: a\r\nX-User: ${user}\r\n`)
    if (r.body !== body) t.fail(`${user} got another shard's answer`)
  }
  t.equal(shardA.requests.length + shardB.requests.length, 2, 'one fetch per shard, then hits')
})

t.test('a key header sent on two field lines is keyed by both, not by the first one alone', async (t) => {
  // The origin answers by the last line (as many frameworks read a field):
  // keyed by the first line only, `light` then `dark` stored dark's page
  // for every later `light` user.
  const o = await startOrigin(t, (seen, res) => {
    const themes = seen.rawHeaders.filter((_, i) => i % 2 === 1 && seen.rawHeaders[i - 1]!.toLowerCase() === 'x-theme')
    const body = `theme ${themes.at(-1) ?? 'none'}`
    res.writeHead(200, { 'cache-control': 'max-age=60', 'content-length': String(body.length) }).end(body)
  })
  const p = await startProxy(t, `listeners: [{ name: web, bind: "127.0.0.1:0" }]
cache: {}
routes: [{ backend: o, cache: { key: { headers: [x-theme] } } }]
backends: { o: { servers: [{ url: "${o.url}" }] } }
`)
  const port = p.port('web')
  t.equal((await raw(port, '/page', 'Host: a\r\nX-Theme: light\r\nX-Theme: dark\r\n')).body, 'theme dark')
  const light = await raw(port, '/page', 'Host: a\r\nX-Theme: light\r\n')
  t.equal(light.body, 'theme light', 'a light user gets the light page')
  t.equal(o.requests.length, 2, 'fetched for itself, not served the two-line answer')
})

t.test('trust: X-Forwarded-* from untrusted peers removed; a trusted proxy\'s scheme and host key the cache', async (t) => {
  const o = await startOrigin(t, (seen, res) => {
    const body = `${String(seen.headers['x-forwarded-proto'])}://${String(seen.headers['x-forwarded-host'])}${seen.url}`
    res.writeHead(200, { 'cache-control': 'max-age=60', 'content-length': String(body.length) }).end(body)
  })
  const yaml = (trusted: string) => `listeners: [{ name: web, bind: "127.0.0.1:0" }]
trustedProxies: [${trusted}]
cache: {}
routes: [{ backend: o }]
backends: { o: { servers: [{ url: "${o.url}" }] } }
`
  const untrusted = await startProxy(t, yaml('10.0.0.0/8'))
  await raw(untrusted.port('web'), '/h', 'Host: a.test\r\nX-Forwarded-Port: 1\r\nX-Forwarded-Prefix: /evil\r\nX-Real-IP: 6.6.6.6\r\n' +
    'X-Forwarded-Server: x\r\nX-Forwarded-Scheme: https\r\nX-Forwarded-Host: evil.test\r\n')
  const h = o.requests[0]!.headers
  for (const n of ['x-forwarded-port', 'x-forwarded-prefix', 'x-real-ip', 'x-forwarded-server', 'x-forwarded-scheme']) t.notOk(h[n], `${n} removed`)
  t.equal(h['x-forwarded-host'], 'a.test', 'ours, not the client\'s')

  const trusted = await startProxy(t, yaml('127.0.0.1/32'))
  const port = trusted.port('web')
  const one = await raw(port, '/k', 'Host: edge\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: one.test\r\n')
  const two = await raw(port, '/k', 'Host: edge\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: two.test\r\n')
  t.equal(one.body, 'https://one.test/k')
  t.equal(two.body, 'https://two.test/k', 'another forwarded host is another cache entry')
  t.match((await raw(port, '/k', 'Host: edge\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: one.test\r\n')).headers['cache-status'], /hit/)
  t.equal(o.requests.at(-1)!.headers['x-real-ip'], undefined)
})

t.test('X-Forwarded-For over several field lines is one list (trusted client address)', async (t) => {
  const o = await startOrigin(t)
  const clients: string[] = []
  const p = await startProxy(t, `listeners: [{ name: web, bind: "127.0.0.1:0" }]
trustedProxies: [127.0.0.1/32, 10.0.0.0/8]
routes: [{ backend: o }]
backends: { o: { balance: { algorithm: ipHash }, servers: [{ url: "${o.url}" }] } }
`, { onSessionEnd: (s: Session) => { clients.push(s.clientAddress) } })
  await raw(p.port('web'), '/', 'Host: a\r\nX-Forwarded-For: 198.51.100.7\r\nX-Forwarded-For: 203.0.113.9, 10.1.1.1\r\n')
  t.same(clients, ['203.0.113.9'], 'the nearest untrusted hop, found on the second line')
  t.equal(o.requests[0]!.headers['x-forwarded-for'], '198.51.100.7, 203.0.113.9, 10.1.1.1, 127.0.0.1')
})

t.test('limits.maxHeaderBytes applies to HTTP/1.1 on a TLS listener too', async (t) => {
  // An origin that takes big heads itself, so only the proxy's limit is tested.
  const o = await startServer(t, (_req, res) => res.end('ok'), { maxHeaderSize: 256 * 1024 })
  const cert = testCertificate(t)
  const p = await startProxy(t, `${tlsAndPlainListeners(cert)}
limits: { maxHeaderBytes: 64KiB }
routes: [{ backend: o }]
backends: { o: { servers: [{ url: "${o.url}" }] } }
`)
  const big = 'x'.repeat(40 * 1024)
  const r = await h1(p.url('tls'), { headers: { 'x-big': big } })
  t.equal(r.status, 200, '40 KiB of headers under a 64 KiB limit: accepted (Node\'s own 16 KiB default no longer applies)')
  const tooBig = await h1(p.url('tls'), { headers: { 'x-big': 'x'.repeat(70 * 1024) } })
  t.equal(tooBig.status, 431)
  t.equal(tooBig.headers['x-switchyard-error'], 'LB_ERR_HEADERS_TOO_LARGE', 'our own 431, the same rule as h2')
})

t.test('limits.maxUriBytes: a longer request target is our 414 on HTTP/1.1 (plain and TLS) and h2, never forwarded', async (t) => {
  // An origin that takes long request lines itself, so only the proxy's limit is tested.
  const seen: string[] = []
  const o = await startServer(t, (req, res) => { seen.push(req.url!); res.end('ok') }, { maxHeaderSize: 256 * 1024 })
  const cert = testCertificate(t)
  const p = await startProxy(t, `${tlsAndPlainListeners(cert)}
limits: { maxUriBytes: 4KiB }
routes: [{ backend: o }]
backends: { o: { servers: [{ url: "${o.url}" }] } }
`)
  const atLimit = '/' + 'a'.repeat(4095)
  const over = atLimit + 'b'
  for (const listener of ['plain', 'tls'] as const) {
    t.equal((await h1(p.url(listener), { path: atLimit })).status, 200, `${listener}: 4 KiB exactly is forwarded`)
    const r = await h1(p.url(listener), { path: over })
    t.equal(r.status, 414, `${listener}: one byte more is a 414`)
    t.equal(r.headers['x-switchyard-error'], 'LB_ERR_URI_TOO_LONG')
  }
  // Far over the limit and over Node's own 16 KiB default: still our 414, not Node's 431.
  const huge = await h1(p.url('plain'), { path: '/' + 'c'.repeat(20_000) })
  t.equal(huge.status, 414, '20 KB: our 414 (Node\'s parser limit sits above it)')
  const session = await h2Session(t, p.url('tls'))
  const viaH2 = await h2Request(session, { ':path': over, ':authority': 'a' })
  t.equal(viaH2.status, 414, 'h2: the same rule on :path')
  t.equal(viaH2.headers['x-switchyard-error'], 'LB_ERR_URI_TOO_LONG')
  t.same(seen, [atLimit, atLimit], 'only the targets at the limit reached the origin')
})

t.test('421 when the host belongs to another certificate of the listener than the one negotiated', async (t) => {
  const o = await startOrigin(t)
  const dir = testCertificate(t).dir
  const a = writeCertificatePair(dir, 'a', testCertificatePair(['a.test']))
  const b = writeCertificatePair(dir, 'b', testCertificatePair(['b.test']))
  const p = await startProxy(t, `listeners:
  - name: tls
    bind: 127.0.0.1:0
    tls:
      certificates:
        - { cert: ${a.certPath}, key: ${a.keyPath} }
        - { cert: ${b.certPath}, key: ${b.keyPath} }
routes: [{ backend: o }]
backends: { o: { servers: [{ url: "${o.url}" }] } }
`)
  const session = await h2Session(t, p.url('tls'), 'a.test')
  t.equal((await h2Request(session, { ':authority': 'a.test' })).status, 200)
  const wrong = await h2Request(session, { ':authority': 'b.test' })
  t.equal(wrong.status, 421, 'b.test down a connection negotiated for a.test')
  t.equal(wrong.headers['x-switchyard-error'], 'LB_ERR_MISDIRECTED_REQUEST')
  t.equal((await h2Request(session, { ':authority': 'c.test' })).status, 200, 'a host no certificate names is not ours to judge')
  const h1wrong = await h1(p.url('tls'), { servername: 'a.test', headers: { host: 'b.test' } })
  t.equal(h1wrong.status, 421, 'h1 too')
  t.equal(o.requests.filter((r) => r.headers.host === 'b.test').length, 0)
  session.close()
})

t.test('a client that gives up mid-upload is never the server\'s failure', async (t) => {
  const o = await startOrigin(t)
  const p = await startProxy(t, `listeners: [{ name: web, bind: "127.0.0.1:0" }]
routes: [{ backend: o }]
backends:
  o:
    outlierDetection: { consecutiveGatewayFailure: 1 }
    servers: [{ url: "${o.url}" }]
`)
  for (let i = 0; i < 3; i++) {
    const socket = (await import('node:net')).connect(p.port('web'), '127.0.0.1')
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()))
    socket.write('POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n' + 'x'.repeat(1000))
    await new Promise((resolve) => setTimeout(resolve, 50))
    socket.destroy()
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  const server = p.app.status()[0]!.shards[0]!.servers[0]!
  t.equal(server.failures, 0, 'no failure counted')
  t.equal(server.ejected, false, 'not ejected')
  t.equal((await raw(p.port('web'), '/ok', 'Host: a\r\n')).status, 200)
})

t.test('HTTP/2 :path with a space is refused, never forwarded', async (t) => {
  const o = await startOrigin(t)
  const cert = testCertificate(t)
  const p = await startProxy(t, `${tlsAndPlainListeners(cert)}
routes: [{ backend: o }]
backends: { o: { servers: [{ url: "${o.url}" }] } }
`)
  const session = http2.connect(p.url('tls'), { rejectUnauthorized: false })
  t.teardown(() => session.destroy())
  session.on('error', () => {})
  const r = await h2Request(session, { ':path': '/a b' })
  // nghttp2 resets the stream itself (RFC 9113 §8.3.1); our own check answers 400 if it ever lets one through.
  t.ok(r.status === 400 || (r.rstCode ?? 0) !== 0, `refused (status ${r.status}, rst ${r.rstCode ?? 0})`)
  t.equal(o.requests.length, 0)
  t.equal(p.app.status()[0]!.shards[0]!.servers[0]!.failures, 0)
  t.equal(echoed(await h2Request(session, { ':path': '/fine' })).url, '/fine')
})

t.test('raw non-ASCII bytes in the target: 400 over HTTP/1.1 and h2 alike, never forwarded', async (t) => {
  const o = await startOrigin(t)
  const cert = testCertificate(t)
  const p = await startProxy(t, `${tlsAndPlainListeners(cert)}
routes: [{ backend: o }]
backends: { o: { servers: [{ url: "${o.url}" }] } }
`)
  const utf8 = Buffer.from('/café', 'utf8')
  const h1 = await rawRequest(p.port('plain'), Buffer.concat([Buffer.from('GET '), utf8, Buffer.from(' HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')]))
  t.equal(h1.status, 400, 'HTTP/1.1: the parser refuses it')
  const session = await h2Session(t, p.url('tls'))
  // node:http2 sends a header string's characters as bytes (latin1): these are é's UTF-8 bytes.
  const r = await h2Request(session, { ':path': utf8.toString('latin1') })
  t.equal(r.status, 400, 'h2: the same 400')
  t.equal(r.headers['x-switchyard-error'], 'LB_ERR_BAD_REQUEST')
  t.equal(o.requests.length, 0, 'nothing reached the origin')
  t.equal(echoed(await h2Request(session, { ':path': '/caf%C3%A9' })).url, '/caf%C3%A9', 'percent-encoded, it goes through')
})

t.test('a fragment or a backslash cannot slip past a route: 400 on HTTP/1.1 and h2, never forwarded', async (t) => {
  const o = await startOrigin(t)
  const cert = testCertificate(t)
  // /admin is for 10.0.0.0/8 only; everything else goes to the same origin.
  const p = await startProxy(t, `${tlsAndPlainListeners(cert)}
routes:
  - { name: admin, match: { pathRegex: "^/admin(/.*)?$" }, backend: o, allow: [10.0.0.0/8] }
  - { name: site, match: { pathPrefix: / }, backend: o }
backends: { o: { servers: [{ url: "${o.url}" }] } }
`)
  const port = p.port('plain')
  t.equal((await raw(port, '/admin', 'Host: a\r\n')).status, 403, 'the route holds for /admin itself')
  // WHATWG URL parsers (Node's URL, Express) read each of these as a path under /admin.
  // Tomcat, Jetty and Spring read `/x/..;/admin` as /admin.
  for (const target of ['/admin#x', '/admin\\', '/admin\\users', '/admin#/../users', '/x?#', '/x/..;/admin', '/x/.;/admin/u']) {
    const r = await raw(port, target, 'Host: a\r\n')
    t.equal(r.status, 400, `${target}: 400`)
    t.equal(r.headers['x-switchyard-error'], 'LB_ERR_BAD_REQUEST')
  }
  t.equal((await raw(port, '/s?q=a\\b', 'Host: a\r\n')).status, 200, 'a backslash in the query is the query\'s own')
  const session = http2.connect(p.url('tls'), { rejectUnauthorized: false })
  t.teardown(() => session.destroy())
  session.on('error', () => {})
  for (const path of ['/admin#x', '/admin\\users', '/x/..;/admin']) t.equal((await h2Request(session, { ':path': path })).status, 400, `h2 ${path}: 400`)
  t.same(o.requests.map((r) => r.url), ['/s?q=a\\b'], 'only the query one reached the origin')
  // A Host with an empty label would miss a host route that an origin dropping one trailing dot serves.
  t.equal((await raw(port, '/x', 'Host: a.test..\r\n')).status, 400, 'Host a.test..: 400')
  t.equal((await h2Request(session, { ':path': '/x', ':authority': 'a.test..' })).status, 400, ':authority a.test..: 400')
  t.equal(o.requests.length, 1)
})

t.test('an HTTP/2.0 request line on an HTTP/1.1 connection: 505, not an internal error', async (t) => {
  const o = await startOrigin(t)
  const cert = testCertificate(t)
  const p = await startProxy(t, `${tlsAndPlainListeners(cert)}
routes: [{ backend: o }]
backends: { o: { servers: [{ url: "${o.url}" }] } }
`)
  for (const tls of [false, true]) {
    const r = await rawRequest(p.port(tls ? 'tls' : 'plain'), 'GET /x HTTP/2.0\r\nHost: a\r\n\r\n', { tls })
    t.equal(r.status, 505, tls ? 'TLS listener' : 'plain listener')
    t.equal(r.headers['x-switchyard-error'], 'LB_ERR_HTTP_VERSION_NOT_SUPPORTED')
  }
  t.equal(o.requests.length, 0)
  t.match(p.app.metrics.prometheus(), /\nswitchyard_internal_errors_total 0\n/)
})

t.test('a request body in a transfer coding other than chunked: 501 and the connection closes, nothing forwarded (RFC 9112 §6.1)', async (t) => {
  const o = await startOrigin(t)
  const cert = testCertificate(t)
  const p = await startProxy(t, `${tlsAndPlainListeners(cert)}
routes: [{ backend: o }]
backends: { o: { servers: [{ url: "${o.url}" }] } }
`)
  const body = '5\r\nhello\r\n0\r\n\r\n'
  for (const tls of [false, true]) {
    for (const fields of ['Transfer-Encoding: gzip, chunked\r\n', 'Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n']) {
      // No Connection: close from the client: the proxy closes the connection itself (rawRequest reads until it does).
      const r = await rawRequest(p.port(tls ? 'tls' : 'plain'), `POST /up HTTP/1.1\r\nHost: a\r\n${fields}\r\n${body}GET /next HTTP/1.1\r\nHost: a\r\n\r\n`, { tls })
      t.equal(r.status, 501, `${tls ? 'TLS' : 'plain'} ${JSON.stringify(fields)}`)
      t.equal(r.headers['x-switchyard-error'], 'LB_ERR_TRANSFER_CODING')
      t.equal(r.headers.connection, 'close')
      t.notMatch(r.raw, /HTTP\/1\.1 200/, 'the request after it is not answered')
    }
  }
  t.equal(o.requests.length, 0, 'nothing reached the origin')
  const ok = await rawRequest(p.port('plain'), `POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n${body}`)
  t.equal(ok.status, 200, 'chunked alone is forwarded')
  t.equal(o.requests[0]?.body.toString(), 'hello')
})

t.test('what origins read apart is refused before it reaches one: lower-case h2 methods, ;parameters and escaped slashes that reach another route, repeated routing fields, underscore spellings', async (t) => {
  const pub = await pathOrigin(t, 'public')
  const admin = await pathOrigin(t, 'admin')
  const cert = testCertificate(t)
  const p = await startProxy(t, `${tlsAndPlainListeners(cert)}
routes:
  - { name: admin, match: { pathPrefix: /admin/ }, backend: admin }
  - { name: writes, match: { pathPrefix: /api/, methods: [POST] }, backend: admin }
  - { name: debug, match: { pathPrefix: /api/, headers: { x-debug: "1" } }, backend: admin }
  - { name: public, match: { pathPrefix: / }, backend: pub }
backends:
  pub: { servers: [{ url: "${pub.url}" }] }
  admin: { servers: [{ url: "${admin.url}" }] }
`)
  // Flask, Django and Jetty upper-case the method: `post` would be served as the POST this route guards.
  const session = await h2Session(t, p.url('tls'))
  for (const method of ['post', 'head', 'Get']) {
    const r = await h2Request(session, { ':method': method, ':path': '/api/x' })
    t.equal(r.status, 400, `h2 :method ${method}`)
    t.equal(r.headers['x-switchyard-error'], 'LB_ERR_BAD_REQUEST')
  }
  t.equal((await h2Request(session, { ':method': 'GET', ':path': '/api/x' })).status, 200, 'the session still serves')
  // Jetty serves /admin;x/panel from /admin/*; nginx decodes %2F and merges //.
  for (const target of ['/admin;x/panel', '//admin/panel', '/%2Fadmin/panel', '/x/..%2fadmin/panel']) {
    const r = await raw(p.port('plain'), target, 'Host: a\r\n')
    t.equal(r.status, 400, target)
    t.match(r.headers['x-switchyard-error'], 'LB_ERR_BAD_REQUEST')
  }
  const viaH2 = await h2Request(session, { ':path': '/admin;x/panel' })
  t.equal(viaH2.status, 400, 'h2 too')
  t.equal((await raw(p.port('plain'), '/app;jsessionid=1/page', 'Host: a\r\n')).body, 'public /app;jsessionid=1/page', 'a ;parameter within one route passes')
  t.equal((await raw(p.port('plain'), '/files/a%2Fb', 'Host: a\r\n')).body, 'public /files/a%2Fb')
  // A servlet's getHeader reads the first line: `1`; joined, `1, 0` missed the debug route.
  const twice = await raw(p.port('plain'), '/api/x', 'Host: a\r\nX-Debug: 1\r\nX-Debug: 0\r\n')
  t.equal(twice.status, 400, 'a routing field on two lines')
  t.equal((await raw(p.port('plain'), '/api/x', 'Host: a\r\nX-Debug: 1\r\n')).body, 'admin /api/x')
  t.equal(admin.requests.filter((r) => r.url.includes('panel') || r.method !== 'GET').length, 0, 'none reached the admin origin')
  // WSGI/Rack/PHP read X_Forwarded_Prefix as X-Forwarded-Prefix.
  await raw(p.port('plain'), '/u', 'Host: a\r\nX_Forwarded_Prefix: //evil.example\r\nX_Original_URL: /admin/panel\r\nX_Custom: kept\r\n')
  const seen = pub.requests.find((r) => r.url === '/u')!
  t.notOk('x_forwarded_prefix' in seen.headers)
  t.notOk('x_original_url' in seen.headers)
  t.equal(seen.headers['x_custom'], 'kept')
})
