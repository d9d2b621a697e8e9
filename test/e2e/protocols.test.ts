// Protocols through a real proxy: h2 and http/1.1 on one TLS listener (ALPN),
// plain h1, HEAD / 204 / 304 without bodies, trailers h1 → h2 and h1, request
// bodies on both protocols, and SNI certificate choice.
import tls from 'node:tls'
import t from 'tap'
import type { Test } from 'tap'
import { generateCertificate, writeCertificatePair } from '../../src/certs.js'
import { tempDir, testCertificate } from '../helpers/certs.js'
import { echoed, h1, h2, tlsAndPlainListeners } from '../helpers/e2e.js'
import { startOrigin } from '../helpers/origin.js'
import type { OriginHandler } from '../helpers/origin.js'
import { startProxy } from '../helpers/proxy.js'
import type { RunningProxy } from '../helpers/proxy.js'

/** A TLS listener `tls` and a plain one `plain`, every request to `origin`. */
async function proxyTo (t: Test, originUrl: string): Promise<RunningProxy> {
  const cert = testCertificate(t)
  return await startProxy(t, `
${tlsAndPlainListeners(cert)}
routes:
  - backend: app
backends:
  app:
    servers: [{ url: "${originUrl}" }]
`)
}

// Answers by path: /head (content-length, body unless HEAD), /204, /304, /trailers, else echo.
const varied: OriginHandler = (seen, res) => {
  switch (seen.url) {
    case '/sized':
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '5', 'x-kind': 'sized' })
      res.end(seen.method === 'HEAD' ? undefined : 'hello')
      return
    case '/204':
      res.writeHead(204, { 'x-kind': 'no-content' })
      res.end()
      return
    case '/304':
      res.writeHead(304, { etag: '"v1"', 'x-kind': 'not-modified' })
      res.end()
      return
    case '/trailers':
      res.writeHead(200, { 'content-type': 'text/plain', trailer: 'x-checksum' })
      res.write('part one, ')
      res.addTrailers({ 'x-checksum': 'abc123' })
      res.end('part two')
      return
    default: {
      const body = JSON.stringify({ method: seen.method, url: seen.url, httpVersion: seen.httpVersion,
        headers: seen.headers, rawHeaders: seen.rawHeaders, body: seen.body.toString('utf8') })
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(body)
    }
  }
}

t.test('h2 and http/1.1 on the same TLS listener, and a plain h1 listener', async (t) => {
  const origin = await startOrigin(t, varied)
  const proxy = await proxyTo(t, origin.url)

  const viaH2 = await h2(t, proxy.url('tls'), { ':path': '/hello?x=1' })
  t.equal(viaH2.status, 200, 'h2 :status')
  t.equal(viaH2.httpVersion, '2.0')
  t.equal(echoed(viaH2).url, '/hello?x=1')
  t.equal(echoed(viaH2).httpVersion, '1.1', 'upstream is HTTP/1.1')

  const viaH1 = await h1(proxy.url('tls'), { path: '/hello' })
  t.equal(viaH1.status, 200)
  t.equal(viaH1.httpVersion, '1.1', 'https without ALPN h2 gets http/1.1')
  t.equal(echoed(viaH1).url, '/hello')

  const plain = await h1(proxy.url('plain'), { path: '/plain' })
  t.equal(plain.status, 200)
  t.equal(plain.httpVersion, '1.1')
  t.equal(echoed(plain).url, '/plain')
  t.equal(origin.requests.length, 3)
})

t.test('HEAD, 204 and 304 carry headers and no body', async (t) => {
  const origin = await startOrigin(t, varied)
  const proxy = await proxyTo(t, origin.url)

  for (const [name, send] of [
    ['h1', (path: string, method = 'GET', headers: Record<string, string> = {}) =>
      h1(proxy.url('tls'), { path, method, headers })],
    ['h2', (path: string, method = 'GET', headers: Record<string, string> = {}) =>
      h2(t, proxy.url('tls'), { ':path': path, ':method': method, ...headers })]
  ] as const) {
    const get = await send('/sized')
    t.equal(get.text, 'hello', `${name} GET has the body`)

    const head = await send('/sized', 'HEAD')
    t.equal(head.status, 200, `${name} HEAD status`)
    t.equal(head.headers['content-length'], '5', `${name} HEAD keeps content-length`)
    t.equal(head.headers['x-kind'], 'sized')
    t.equal(head.body.length, 0, `${name} HEAD has no body`)

    const noContent = await send('/204')
    t.equal(noContent.status, 204, `${name} 204`)
    t.equal(noContent.headers['x-kind'], 'no-content')
    t.equal(noContent.body.length, 0)

    const notModified = await send('/304', 'GET', { 'if-none-match': '"v1"' })
    t.equal(notModified.status, 304, `${name} 304`)
    t.equal(notModified.headers.etag, '"v1"')
    t.equal(notModified.body.length, 0)
  }
  t.equal(origin.requests.filter((r) => r.url === '/304')[0]?.headers['if-none-match'], '"v1"',
    'conditional header reaches the origin')
})

t.test('trailers from a chunked h1 origin reach h2 and h1 clients', async (t) => {
  const origin = await startOrigin(t, varied)
  const proxy = await proxyTo(t, origin.url)

  const viaH2 = await h2(t, proxy.url('tls'), { ':path': '/trailers', te: 'trailers' })
  t.equal(viaH2.status, 200)
  t.equal(viaH2.text, 'part one, part two')
  t.equal(viaH2.trailers['x-checksum'], 'abc123', 'h2 trailers frame')

  const viaH1 = await h1(proxy.url('tls'), { path: '/trailers', headers: { te: 'trailers' } })
  t.equal(viaH1.status, 200)
  t.equal(viaH1.text, 'part one, part two')
  t.equal(viaH1.trailers['x-checksum'], 'abc123', 'h1 chunked trailer')

  const plain = await h1(proxy.url('plain'), { path: '/trailers' })
  t.equal(plain.trailers['x-checksum'], 'abc123', 'plain listener too')
})

t.test('a POSTed JSON body reaches the origin intact over h1 and h2', async (t) => {
  const origin = await startOrigin(t, varied)
  const proxy = await proxyTo(t, origin.url)
  const json = JSON.stringify({ user: 'ada', tags: ['ü', '✓'], n: 42, pad: 'x'.repeat(100_000) })
  const length = String(Buffer.byteLength(json))

  const viaH1 = await h1(proxy.url('tls'), {
    method: 'POST', path: '/h1', body: json, headers: { 'content-type': 'application/json', 'content-length': length }
  })
  t.equal(viaH1.status, 200)
  t.equal(echoed(viaH1).body, json, 'h1 with content-length')
  t.equal(echoed(viaH1).headers['content-length'], length)

  const chunked = await h1(proxy.url('plain'), {
    method: 'POST', path: '/h1-chunked', body: json, headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' }
  })
  t.equal(echoed(chunked).body, json, 'h1 chunked')

  const withLength = await h2(t, proxy.url('tls'),
    { ':method': 'POST', ':path': '/h2-cl', 'content-type': 'application/json', 'content-length': length }, json)
  t.equal(withLength.status, 200)
  t.equal(echoed(withLength).body, json, 'h2 with content-length')
  t.equal(echoed(withLength).headers['content-length'], length)

  const noLength = await h2(t, proxy.url('tls'),
    { ':method': 'POST', ':path': '/h2-stream', 'content-type': 'application/json' }, json)
  t.equal(noLength.status, 200)
  t.equal(echoed(noLength).body, json, 'h2 without content-length')
  t.equal(echoed(noLength).headers['transfer-encoding'], 'chunked', 'streamed upstream as chunked')

  const empty = await h2(t, proxy.url('tls'), { ':method': 'POST', ':path': '/h2-empty' }, '')
  t.equal(empty.status, 200)
  t.equal(echoed(empty).body, '', 'h2 POST with an empty body')
})

t.test('SNI: each name gets its certificate through the proxy; an unknown name gets the first', async (t) => {
  const origin = await startOrigin(t, varied)
  const dir = tempDir(t)
  const a = writeCertificatePair(dir, 'a', generateCertificate({ names: ['alpha.test'], commonName: 'alpha' }))
  const b = writeCertificatePair(dir, 'b', generateCertificate({ names: ['beta.test'], commonName: 'beta' }))
  const proxy = await startProxy(t, `
listeners:
  - name: tls
    bind: 127.0.0.1:0
    tls:
      certificates:
        - { cert: ${a.certPath}, key: ${a.keyPath} }
        - { cert: ${b.certPath}, key: ${b.keyPath} }
routes:
  - backend: app
backends:
  app:
    servers: [{ url: "${origin.url}" }]
`)
  const cases: Array<[string | undefined, string, string]> = [
    ['alpha.test', 'alpha', 'DNS:alpha.test'],
    ['beta.test', 'beta', 'DNS:beta.test'],
    ['gamma.test', 'alpha', 'DNS:alpha.test'],
    [undefined, 'alpha', 'DNS:alpha.test']
  ]
  for (const [servername, cn, san] of cases) {
    const r = await h1(proxy.url('tls'), {
      path: '/sni', ...(servername === undefined ? {} : { servername, headers: { host: servername } })
    })
    t.equal(r.status, 200, `${servername ?? '(no SNI)'} proxied`)
    t.equal(r.peerCertificate?.subject.CN, cn, `${servername ?? '(no SNI)'} → ${cn}`)
    t.equal(r.peerCertificate?.subjectaltname, san)
  }
})

/**
 * One request written as is on a new TLS connection offering `alpn` (none: no
 * ALPN); the answer, to the close, and what ALPN chose (no request: closed once chosen).
 */
function overTls (port: number, alpn: string[] | undefined, text: string, servername?: string): Promise<{ alpn: string | false, raw: string }> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host: '127.0.0.1', port, rejectUnauthorized: false, ...(alpn === undefined ? {} : { ALPNProtocols: alpn }), ...(servername === undefined ? {} : { servername })
    }, () => { if (text === '') socket.destroy(); else socket.write(text) })
    const chunks: Buffer[] = []
    socket.on('data', (c: Buffer) => chunks.push(c))
    socket.once('error', reject)
    socket.once('close', () => resolve({ alpn: socket.alpnProtocol ?? false, raw: Buffer.concat(chunks).toString('latin1') }))
  })
}

for (const http2 of [true, false]) {
  t.test(`http2: ${String(http2)}: a client offering only http/1.0 by ALPN is served HTTP/1.x; one with no ALPN too`, async (t) => {
    const origin = await startOrigin(t)
    const cert = testCertificate(t)
    const proxy = await startProxy(t, `
listeners:
  - { name: tls, bind: 127.0.0.1:0, tls: { cert: ${cert.certPath}, key: ${cert.keyPath}, http2: ${String(http2)} } }
routes:
  - backend: app
backends:
  app:
    servers: [{ url: "${origin.url}" }]
`)
    const port = proxy.port('tls')
    // curl --http1.0 https://…: ALPN http/1.0, then an HTTP/1.0 request (the connection closes after the answer).
    for (const servername of [undefined, 'localhost']) {
      const r = await overTls(port, ['http/1.0'], 'GET /ten HTTP/1.0\r\nHost: localhost\r\n\r\n', servername)
      t.equal(r.alpn, 'http/1.0', `ALPN http/1.0 accepted (${servername ?? 'no SNI'})`)
      t.match(r.raw, /^HTTP\/1\.[01] 200 /, 'answered')
      t.match(r.raw, /"url":"\/ten"/, 'by the origin')
    }
    const none = await overTls(port, undefined, 'GET /none HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n')
    t.equal(none.alpn, false, 'no ALPN')
    t.match(none.raw, /^HTTP\/1\.1 200 /)
    const both = await overTls(port, ['http/1.1', 'http/1.0'], 'GET /both HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n')
    t.equal(both.alpn, 'http/1.1', 'http/1.1 preferred to http/1.0')
    t.match(both.raw, /^HTTP\/1\.1 200 /)
    t.equal((await overTls(port, ['h2', 'http/1.1'], '')).alpn, http2 ? 'h2' : 'http/1.1')
    t.equal(origin.requests.length, 4)
  })
}
