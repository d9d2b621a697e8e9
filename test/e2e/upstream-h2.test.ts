// HTTP/2 to backends with a plain node:http2 origin: `protocol: h2c`
// (cleartext, prior knowledge) and `protocol: h2` (TLS, ALPN), each reached
// by HTTP/1.1 and HTTP/2 clients. Bodies both ways, response trailers to
// both kinds of client, TE: trailers passed on, Via, a refused stream
// retried elsewhere, and an h2 backend whose server only speaks HTTP/1.1.
// Everything started here is stopped on teardown, even when a test fails.
import { writeFileSync } from 'node:fs'
import http2 from 'node:http2'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { tempDir, testCertificate } from '../helpers/certs.js'
import { h1, h2 } from '../helpers/e2e.js'
import { startTlsOrigin, testPki } from '../helpers/pki.js'
import { startProxy, type RunningProxy } from '../helpers/proxy.js'

interface H2Origin {
  readonly url: string
  /** Each request's method, path, headers and body as the origin got them. */
  readonly seen: Array<{ method: string, path: string, headers: http2.IncomingHttpHeaders, body: string, alpn: string | false }>
  /** Streams refused with RST_STREAM(REFUSED_STREAM). */
  refused: number
  /** h2 sessions (connections) opened to it. */
  sessions: number
}

/** An h2 origin (TLS when `tls`): echoes the request as JSON, then trailers; `refuse` refuses every stream instead. */
async function startH2Origin (t: Test, tls: boolean, refuse = false): Promise<H2Origin> {
  const pki = testPki()
  const server = tls ? http2.createSecureServer({ key: pki.server.keyPem, cert: pki.server.certPem }) : http2.createServer()
  const origin: H2Origin = { url: '', seen: [], refused: 0, sessions: 0 }
  server.on('session', () => { origin.sessions++ })
  server.on('stream', (stream, headers) => {
    if (refuse) {
      origin.refused++
      stream.on('error', () => {}) // Node reports our own RST_STREAM as an error on the stream
      stream.close(http2.constants.NGHTTP2_REFUSED_STREAM)
      return
    }
    const chunks: Buffer[] = []
    stream.on('data', (c: Buffer) => chunks.push(c))
    stream.on('end', () => {
      const alpn = (stream.session?.socket as { alpnProtocol?: string | false } | undefined)?.alpnProtocol ?? false
      const seen = { method: String(headers[':method']), path: String(headers[':path']), headers, body: Buffer.concat(chunks).toString(), alpn }
      origin.seen.push(seen)
      stream.respond({ ':status': 200, 'content-type': 'application/json', 'x-origin': 'h2' }, { waitForTrailers: true })
      stream.on('wantTrailers', () => { stream.sendTrailers({ 'x-checksum': 'c0ffee' }) })
      stream.end(JSON.stringify({ method: seen.method, path: seen.path, body: seen.body }))
    })
  })
  server.on('sessionError', () => {})
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => { server.close(() => resolve()) }))
  const port = (server.address() as AddressInfo).port
  return Object.assign(origin, { url: `${tls ? 'https' : 'http'}://127.0.0.1:${port}` })
}

async function proxyFor (t: Test, protocol: 'h2' | 'h2c', urls: readonly string[], extra = ''): Promise<RunningProxy> {
  const cert = testCertificate(t)
  let tls = ''
  if (protocol === 'h2') {
    const ca = join(tempDir(t), 'ca.pem')
    writeFileSync(ca, testPki().ca.certPem)
    tls = `\n    tls: { ca: ${ca} }`
  }
  return await startProxy(t, `listeners:
  - name: tls
    bind: 127.0.0.1:0
    tls: { cert: ${cert.certPath}, key: ${cert.keyPath} }
  - name: plain
    bind: 127.0.0.1:0
routes:
  - { match: { pathPrefix: / }, backend: b }
backends:
  b:
    protocol: ${protocol}
    servers: [${urls.map((u) => `{ url: "${u}" }`).join(', ')}]${tls}${extra}
`)
}

for (const protocol of ['h2c', 'h2'] as const) {
  t.test(`protocol: ${protocol} to a node:http2 origin`, async (t) => {
    const origin = await startH2Origin(t, protocol === 'h2')
    const proxy = await proxyFor(t, protocol, [origin.url])

    t.test('an HTTP/1.1 client: body both ways, trailers as chunked trailers', async (t) => {
      const r = await h1(proxy.url('plain'), { method: 'PUT', path: '/put?x=1', body: 'hello', headers: { te: 'trailers', connection: 'TE' } })
      t.equal(r.status, 200)
      t.same(JSON.parse(r.text), { method: 'PUT', path: '/put?x=1', body: 'hello' })
      t.equal(r.headers['x-origin'], 'h2')
      t.equal(r.headers.via, '2 switchyard', 'Via names the protocol the answer came over')
      t.equal(r.trailers['x-checksum'], 'c0ffee', 'the origin\'s trailers reach the client')
      const seen = origin.seen.at(-1)!
      t.equal(seen.headers.te, 'trailers', 'TE: trailers passed on')
      t.equal(seen.alpn, protocol === 'h2' ? 'h2' : false, protocol === 'h2' ? 'h2 negotiated by ALPN' : 'cleartext')
    })

    t.test('an HTTP/2 client: body both ways, trailers in a trailing HEADERS frame', async (t) => {
      const r = await h2(t, proxy.url('tls'), { ':method': 'POST', ':path': '/post', te: 'trailers' }, 'from h2')
      t.equal(r.status, 200)
      t.same(JSON.parse(r.text), { method: 'POST', path: '/post', body: 'from h2' })
      t.equal(r.trailers['x-checksum'], 'c0ffee')
      t.equal(origin.seen.at(-1)!.headers.te, 'trailers')
    })

    t.test('a large request body from an h2 client streams through (no Content-Length, past the flow-control window)', async (t) => {
      const big = Buffer.alloc(512 * 1024, 'y')
      const r = await h2(t, proxy.url('tls'), { ':method': 'POST', ':path': '/big' }, big)
      t.equal(r.status, 200)
      t.equal((JSON.parse(r.text) as { body: string }).body.length, big.length)
      t.equal(r.trailers['x-checksum'], 'c0ffee')
    })

    t.test('requests are streams on one h2 connection', async (t) => {
      for (let i = 0; i < 4; i++) t.equal((await h1(proxy.url('plain'), { path: `/many/${i}` })).status, 200)
      t.equal(origin.seen.length, 7)
      t.equal(origin.sessions, 1)
    })
  })
}

t.test('a refused stream (REFUSED_STREAM) goes to another server, even for a POST', async (t) => {
  const refusing = await startH2Origin(t, false, true)
  const good = await startH2Origin(t, false)
  const proxy = await proxyFor(t, 'h2c', [refusing.url, good.url])
  const replies = []
  for (let i = 0; i < 4; i++) replies.push(await h1(proxy.url('plain'), { method: 'POST', path: `/p${i}` }))
  t.same(replies.map((r) => r.status), [200, 200, 200, 200], 'every POST answered by the server that took it')
  t.ok(refusing.refused >= 1, 'the refusing server was tried')
  t.equal(good.seen.length, 4)
})

t.test('protocol: h2 to a TLS server that only speaks HTTP/1.1: a connect failure, never HTTP/1.1', async (t) => {
  const origin = await startTlsOrigin(t, { requireClientCert: false })
  const proxy = await proxyFor(t, 'h2', [origin.url])
  const r = await h1(proxy.url('plain'), { path: '/x' })
  t.equal(r.status, 502)
  t.equal(r.headers['x-switchyard-error'], 'LB_ERR_UPSTREAM_CONNECT')
  t.equal(origin.requests.length, 0, 'no request reached it')
})

t.test('a body read under backpressure keeps its tail when the trailers arrive (undici 7 stopped reading at them)', async (t) => {
  // The whole answer fits undici's stream window (256 KiB), so the origin
  // sends all of it and its trailers at once, while our h2 client does not
  // read: the proxy's writes back up, undici's stream is paused with DATA
  // still waiting, and then the trailing HEADERS frame arrives.
  const BODY = 192 * 1024
  const server = http2.createServer()
  /** Per path: the origin has sent the whole answer and its trailers (its stream closed). */
  const sent = new Map<string, Promise<void>>()
  server.on('stream', (stream, headers) => {
    sent.set(String(headers[':path']), new Promise((resolve) => stream.on('close', () => resolve())))
    stream.respond({ ':status': 200, 'content-type': 'application/octet-stream' }, { waitForTrailers: true })
    stream.on('wantTrailers', () => { stream.sendTrailers({ 'x-checksum': 'c0ffee' }) })
    for (let at = 0; at < BODY; at += 16 * 1024) stream.write(Buffer.alloc(16 * 1024, 0x7a))
    stream.end()
  })
  server.on('sessionError', () => {})
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => { server.close(() => resolve()) }))
  const proxy = await proxyFor(t, 'h2c', [`http://127.0.0.1:${(server.address() as AddressInfo).port}`])

  const session = http2.connect(proxy.url('tls'), { rejectUnauthorized: false })
  t.teardown(() => { session.destroy() })
  session.on('error', () => {})
  for (let round = 0; round < 3; round++) {
    const stream = session.request({ ':path': `/held/${round}` })
    stream.pause()
    stream.on('error', () => {})
    let received = 0
    let trailers: http2.IncomingHttpHeaders | undefined
    stream.on('trailers', (h) => { trailers = h })
    const ended = new Promise<string>((resolve) => {
      stream.on('end', () => resolve('end'))
      stream.on('close', () => resolve(`close ${stream.rstCode ?? 0}`))
    })
    while (!sent.has(`/held/${round}`)) await new Promise((resolve) => setImmediate(resolve))
    await sent.get(`/held/${round}`)
    // The origin is done; give its last frames a moment to reach the proxy before reading.
    await new Promise((resolve) => setTimeout(resolve, 100))
    stream.on('data', (c: Buffer) => { received += c.length })
    stream.resume()
    t.equal(await ended, 'end', `round ${round}: a clean end`)
    t.equal(received, BODY, `round ${round}: every byte before it`)
    t.equal(trailers?.['x-checksum'], 'c0ffee', `round ${round}: and the trailers`)
  }
})
