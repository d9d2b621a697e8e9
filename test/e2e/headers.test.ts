// Header hygiene through a real proxy: hop-by-hop fields both ways, h2 cookie
// joining, Host, X-Forwarded-*, Forwarded, Via, route header operations, the
// 431 limits on h1 and h2, and invalid bytes in a raw h1 head.
import t from 'tap'
import type { Test } from 'tap'
import { testCertificate } from '../helpers/certs.js'
import { echoed, h1, h2, rawRequest, tlsAndPlainListeners } from '../helpers/e2e.js'
import { startOrigin } from '../helpers/origin.js'
import type { Origin } from '../helpers/origin.js'
import { startProxy } from '../helpers/proxy.js'
import type { RunningProxy } from '../helpers/proxy.js'

/** A TLS listener `tls` and a plain one `plain`, every request to `origin`; `extra` is top-level YAML. */
async function proxyTo (t: Test, origin: Origin, extra = '', backendExtra = ''): Promise<RunningProxy> {
  const cert = testCertificate(t)
  return await startProxy(t, `
${tlsAndPlainListeners(cert)}
routes:
  - backend: app
backends:
  app:
    servers: [{ url: "${origin.url}" }]
${backendExtra}
${extra}
`)
}

/** Names of fields in a raw header list, lower-cased. */
function names (raw: readonly string[]): string[] {
  return raw.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase())
}

t.test('hop-by-hop request fields never reach the origin', async (t) => {
  const origin = await startOrigin(t)
  const proxy = await proxyTo(t, origin)
  const r = await rawRequest(proxy.port('plain'), [
    'GET /hop HTTP/1.1',
    'Host: hop.test',
    'Connection: x-secret, keep-alive, close',
    'X-Secret: 1',
    'Keep-Alive: timeout=5',
    'TE: trailers',
    'Proxy-Connection: keep-alive',
    'Proxy-Authorization: Basic Zm9vOmJhcg==',
    'X-Kept: yes',
    '', ''
  ].join('\r\n'))
  t.equal(r.status, 200)
  const seen = origin.requests[0]!
  const got = names(seen.rawHeaders)
  for (const n of ['x-secret', 'keep-alive', 'te', 'proxy-connection', 'proxy-authorization']) {
    t.notOk(got.includes(n), `origin does not see ${n}`)
  }
  t.notMatch(seen.headers.connection ?? '', /x-secret/i, 'the client Connection value is not forwarded')
  t.equal(seen.headers['x-kept'], 'yes', 'end-to-end fields pass')
})

t.test('hop-by-hop response fields never reach h1 or h2 clients', async (t) => {
  const origin = await startOrigin(t, (_seen, res) => {
    res.writeHead(200, {
      connection: 'x-internal',
      'x-internal': 'secret',
      'keep-alive': 'timeout=5',
      'proxy-connection': 'keep-alive',
      'x-public': 'yes',
      'content-length': '2'
    })
    res.end('ok')
  })
  const proxy = await proxyTo(t, origin)

  const viaH1 = await h1(proxy.url('tls'), { headers: { connection: 'close' } })
  t.equal(viaH1.status, 200)
  t.equal(viaH1.text, 'ok')
  t.equal(viaH1.headers.connection, 'close', 'Connection is the proxy\'s own')
  t.equal(viaH1.headers['x-internal'], undefined)
  t.equal(viaH1.headers['keep-alive'], undefined)
  t.equal(viaH1.headers['proxy-connection'], undefined)
  t.equal(viaH1.headers['x-public'], 'yes')

  const viaH2 = await h2(t, proxy.url('tls'))
  t.equal(viaH2.status, 200, 'the h2 response does not fail on connection-specific fields')
  t.equal(viaH2.rstCode, undefined)
  t.equal(viaH2.text, 'ok')
  for (const n of ['connection', 'x-internal', 'keep-alive', 'proxy-connection']) t.equal(viaH2.headers[n], undefined, `h2: no ${n}`)
  t.equal(viaH2.headers['x-public'], 'yes')
})

t.test('several h2 cookie fields reach the origin as one cookie joined with "; "', async (t) => {
  const origin = await startOrigin(t)
  const proxy = await proxyTo(t, origin)
  const r = await h2(t, proxy.url('tls'), { cookie: ['a=1', 'b=2', 'c=3'] })
  t.equal(r.status, 200)
  const seen = echoed(r)
  t.equal(names(seen.rawHeaders).filter((n) => n === 'cookie').length, 1, 'one cookie field')
  t.equal(seen.headers.cookie, 'a=1; b=2; c=3')
})

t.test('Host upstream: the client authority by default, the server\'s own with passHostHeader: false', async (t) => {
  const origin = await startOrigin(t)
  const cert = testCertificate(t)
  const proxy = await startProxy(t, `
listeners:
  - name: tls
    bind: 127.0.0.1:0
    tls: { cert: ${cert.certPath}, key: ${cert.keyPath} }
routes:
  - { match: { pathPrefix: /own }, backend: own }
  - backend: pass
backends:
  pass:
    servers: [{ url: "${origin.url}" }]
  own:
    passHostHeader: false
    servers: [{ url: "${origin.url}" }]
`)
  const base = proxy.url('tls')
  t.equal(echoed(await h1(base, { headers: { host: 'shop.test:8443' } })).headers.host, 'shop.test:8443', 'h1 Host kept')
  t.equal(echoed(await h2(t, base, { ':authority': 'shop.test' })).headers.host, 'shop.test', 'h2 :authority becomes Host')
  const own = `127.0.0.1:${origin.port}`
  t.equal(echoed(await h1(base, { path: '/own', headers: { host: 'shop.test' } })).headers.host, own, 'h1 server host')
  t.equal(echoed(await h2(t, base, { ':path': '/own', ':authority': 'shop.test' })).headers.host, own, 'h2 server host')
  t.equal(echoed(await h1(base, { path: '/own', headers: { host: 'shop.test' } })).headers['x-forwarded-host'], 'shop.test',
    'X-Forwarded-Host still names the original host')
})

t.test('X-Forwarded-For / -Proto / -Host from an untrusted client are replaced', async (t) => {
  const origin = await startOrigin(t)
  const proxy = await proxyTo(t, origin)
  const spoof = { 'x-forwarded-for': '6.6.6.6', 'x-forwarded-proto': 'gopher', 'x-forwarded-host': 'evil.test' }

  const tls1 = echoed(await h1(proxy.url('tls'), { headers: { ...spoof, host: 'app.test' } })).headers
  t.equal(tls1['x-forwarded-for'], '127.0.0.1')
  t.equal(tls1['x-forwarded-proto'], 'https')
  t.equal(tls1['x-forwarded-host'], 'app.test')

  const tls2 = echoed(await h2(t, proxy.url('tls'), { ...spoof, ':authority': 'app.test' })).headers
  t.equal(tls2['x-forwarded-for'], '127.0.0.1')
  t.equal(tls2['x-forwarded-proto'], 'https')
  t.equal(tls2['x-forwarded-host'], 'app.test')

  const plain = echoed(await h1(proxy.url('plain'), { headers: { ...spoof, host: 'app.test:8080' } })).headers
  t.equal(plain['x-forwarded-for'], '127.0.0.1')
  t.equal(plain['x-forwarded-proto'], 'http')
  t.equal(plain['x-forwarded-host'], 'app.test:8080')
})

t.test('X-Forwarded-For from a trusted proxy is appended to', async (t) => {
  const origin = await startOrigin(t)
  const proxy = await proxyTo(t, origin, 'trustedProxies: [127.0.0.1/32]')
  const viaH1 = echoed(await h1(proxy.url('plain'), { headers: { 'x-forwarded-for': '6.6.6.6', host: 'app.test' } })).headers
  t.equal(viaH1['x-forwarded-for'], '6.6.6.6, 127.0.0.1')
  const viaH2 = echoed(await h2(t, proxy.url('tls'), { 'x-forwarded-for': '6.6.6.6, 7.7.7.7' })).headers
  t.equal(viaH2['x-forwarded-for'], '6.6.6.6, 7.7.7.7, 127.0.0.1')
  const none = echoed(await h1(proxy.url('plain'))).headers
  t.equal(none['x-forwarded-for'], '127.0.0.1', 'no incoming value: just the peer')
  const kept = echoed(await h1(proxy.url('plain'), {
    headers: { host: 'inner.test', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'public.test' }
  })).headers
  t.equal(kept['x-forwarded-proto'], 'https', 'a trusted X-Forwarded-Proto is kept')
  t.equal(kept['x-forwarded-host'], 'public.test', 'a trusted X-Forwarded-Host is kept')
})

t.test('Via on requests (by client protocol) and on responses', async (t) => {
  const origin = await startOrigin(t, (seen, res) => {
    const body = JSON.stringify({ headers: seen.headers })
    res.writeHead(200, seen.url === '/cached' ? { via: '1.1 origin-cache' } : {})
    res.end(body)
  })
  const proxy = await proxyTo(t, origin)

  const viaH1 = await h1(proxy.url('tls'))
  t.equal(echoed(viaH1).headers.via, '1.1 switchyard', 'h1 request')
  t.equal(viaH1.headers.via, '1.1 switchyard', 'h1 response')
  const viaH2 = await h2(t, proxy.url('tls'))
  t.equal(echoed(viaH2).headers.via, '2 switchyard', 'h2 request')
  t.equal(viaH2.headers.via, '1.1 switchyard', 'h2 response: the upstream hop was HTTP/1.1')
  const appended = await h1(proxy.url('plain'), { headers: { via: '1.0 edge' } })
  t.equal(echoed(appended).headers.via, '1.0 edge, 1.1 switchyard', 'appended to the incoming Via')
  const upstreamVia = await h2(t, proxy.url('tls'), { ':path': '/cached' })
  t.equal(upstreamVia.headers.via, '1.1 origin-cache, 1.1 switchyard', 'appended to the origin\'s Via')
})

t.test('forwarding.forwarded adds an RFC 7239 Forwarded element', async (t) => {
  const origin = await startOrigin(t)
  const proxy = await proxyTo(t, origin, 'forwarding: { forwarded: true }')
  const viaH1 = echoed(await h1(proxy.url('tls'), { headers: { host: 'fwd.test', forwarded: 'for=6.6.6.6' } })).headers
  t.equal(viaH1.forwarded, 'for=127.0.0.1;host=fwd.test;proto=https', 'untrusted incoming Forwarded replaced')
  t.equal(viaH1['x-forwarded-for'], '127.0.0.1', 'X-Forwarded-* still added')
  const port = proxy.port('tls')
  const viaH2 = echoed(await h2(t, proxy.url('tls'))).headers
  t.equal(viaH2.forwarded, `for=127.0.0.1;host="127.0.0.1:${port}";proto=https`, 'a host with a port is quoted')
  const plain = echoed(await h1(proxy.url('plain'), { headers: { host: 'fwd.test' } })).headers
  t.equal(plain.forwarded, 'for=127.0.0.1;host=fwd.test;proto=http')
})

t.test('route requestHeaders and responseHeaders set / remove', async (t) => {
  const origin = await startOrigin(t, (seen, res) => {
    const body = JSON.stringify({ headers: seen.headers, rawHeaders: seen.rawHeaders })
    res.writeHead(200, { 'x-powered-by': 'Express', 'x-frame-options': 'SAMEORIGIN', 'x-origin': 'kept' })
    res.end(body)
  })
  const cert = testCertificate(t)
  const proxy = await startProxy(t, `
listeners:
  - name: tls
    bind: 127.0.0.1:0
    tls: { cert: ${cert.certPath}, key: ${cert.keyPath} }
routes:
  - backend: app
    requestHeaders:
      set: { x-route: edited, x-override: proxy }
      remove: [x-debug]
    responseHeaders:
      set: { x-frame-options: DENY, x-added: "1" }
      remove: [x-powered-by]
backends:
  app:
    servers: [{ url: "${origin.url}" }]
`)
  const clientHeaders = { 'x-debug': '1', 'x-override': 'client', 'x-other': 'passes' }
  for (const [name, r] of [
    ['h1', await h1(proxy.url('tls'), { headers: clientHeaders })],
    ['h2', await h2(t, proxy.url('tls'), clientHeaders)]
  ] as const) {
    const seen = echoed(r)
    t.equal(seen.headers['x-route'], 'edited', `${name}: set adds`)
    t.equal(names(seen.rawHeaders).filter((n) => n === 'x-override').length, 1, `${name}: set replaces`)
    t.equal(seen.headers['x-override'], 'proxy')
    t.equal(seen.headers['x-debug'], undefined, `${name}: remove drops`)
    t.equal(seen.headers['x-other'], 'passes')
    t.equal(r.headers['x-frame-options'], 'DENY', `${name}: response set replaces`)
    t.equal(r.headers['x-added'], '1')
    t.equal(r.headers['x-powered-by'], undefined, `${name}: response remove drops`)
    t.equal(r.headers['x-origin'], 'kept')
  }
})

t.test('header limits answer 431 on h1 and h2 and never reach the origin', async (t) => {
  const origin = await startOrigin(t)
  const proxy = await proxyTo(t, origin, 'limits: { maxHeaderCount: 10, maxHeaderBytes: 1KiB }')
  const many: Record<string, string> = {}
  for (let i = 0; i < 20; i++) many[`x-h${i}`] = String(i)
  const big = { 'x-big': 'v'.repeat(2048) }

  const cases = [
    ['h1 20 fields', () => h1(proxy.url('tls'), { headers: many })],
    ['h1 2 KiB value', () => h1(proxy.url('tls'), { headers: big })],
    ['plain h1 20 fields', () => h1(proxy.url('plain'), { headers: many })],
    ['h2 20 fields', () => h2(t, proxy.url('tls'), many)],
    ['h2 2 KiB value', () => h2(t, proxy.url('tls'), big)]
  ] as const
  for (const [name, send] of cases) {
    const r = await send()
    t.equal(r.status, 431, name)
    t.equal(r.headers['x-switchyard-error'], 'LB_ERR_HEADERS_TOO_LARGE', `${name}: code`)
  }
  t.equal(origin.requests.length, 0, 'no oversized request reached the origin')

  t.equal((await h2(t, proxy.url('tls'), { 'x-small': 'v'.repeat(100) })).status, 200, 'a head within the limits passes')
  t.equal(origin.requests.length, 1)

  // RFC 9113 §8.2.3: browsers send each cookie as its own h2 field; they are one Cookie field,
  // counted once, as the same cookies in one HTTP/1.1 Cookie field are.
  const crumbs = Array.from({ length: 30 }, (_, i) => `c${i}=${i}`)
  const split = await h2(t, proxy.url('tls'), { cookie: crumbs })
  t.equal(split.status, 200, 'h2: 30 cookie fields under maxHeaderCount 10')
  t.equal(origin.requests[1]?.headers.cookie, crumbs.join('; '), 'joined into one field for the origin')
  t.equal((await h1(proxy.url('tls'), { headers: { cookie: crumbs.join('; ') } })).status, 200, 'h1: the same cookies')
})

t.test('CR, LF or NUL inside a header value on a raw h1 socket: 400, origin untouched', async (t) => {
  const origin = await startOrigin(t)
  const proxy = await proxyTo(t, origin)
  const bad: Array<[string, string]> = [
    ['bare CR', 'a\rb'],
    ['bare LF', 'a\nb'],
    ['NUL', 'a\u0000b'],
    ['CR LF then no colon', 'a\r\nbroken line']
  ]
  for (const [name, value] of bad) {
    for (const listener of ['plain', 'tls'] as const) {
      const r = await rawRequest(proxy.port(listener),
        `GET /bad HTTP/1.1\r\nHost: bad.test\r\nX-Bad: ${value}\r\nConnection: close\r\n\r\n`,
        { tls: listener === 'tls' })
      t.equal(r.status, 400, `${name} (${listener}): 400`)
    }
  }
  t.equal(origin.requests.length, 0, 'the origin never saw any of them')
  const ok = await rawRequest(proxy.port('plain'), 'GET /good HTTP/1.1\r\nHost: ok.test\r\nX-Good: a b\tc\r\nConnection: close\r\n\r\n')
  t.equal(ok.status, 200, 'a clean request on the same listener passes')
  t.equal(origin.requests.length, 1)
})
