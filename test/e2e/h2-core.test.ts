// HTTP/2 on node:http2's core API (stream.respond, no Http2ServerResponse):
// a head respond() refuses is contained to its stream, the listener hands h2
// streams to the pipeline as raw streams while HTTP/1.1 on the same port still
// arrives as 'request', Expect is answered as before, and stream counts stay
// balanced through resets. Real servers, real clients.
import { readFileSync } from 'node:fs'
import http2 from 'node:http2'
import https from 'node:https'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import type { Test } from 'tap'
import { parseConfig } from '../../src/config/load.js'
import { startListener, type ConnectionObserver } from '../../src/listener/listener.js'
import { Pipeline } from '../../src/proxy/pipeline.js'
import { kSession, Session } from '../../src/proxy/session.js'
import { buildState } from '../../src/proxy/state.js'
import { testCertificate } from '../helpers/certs.js'
import type { OutgoingHttpHeaders } from 'node:http2'
import { h1, h2Request, h2Session, tlsAndPlainListeners } from '../helpers/e2e.js'
import { startOrigin } from '../helpers/origin.js'
import { startProxy } from '../helpers/proxy.js'

const NGHTTP2_INTERNAL_ERROR = 2

t.test('Session on an h2 stream: a head respond() refuses resets that stream only and reports an internal error', async (t) => {
  const cert = testCertificate(t)
  const config = parseConfig(`listeners: [{ bind: "127.0.0.1:0" }]
routes: [{ backend: b }]
backends: { b: { servers: [{ url: "http://127.0.0.1:1" }] } }
`, 'test.yaml', { checkFiles: false })
  const contained: unknown[] = []
  const pipeline = new Pipeline(buildState(config), { onInternalError: (err) => contained.push(err) })
  const results: boolean[] = []
  // Each path writes one kind of head Node (or our field-name check) refuses.
  const bad: Record<string, [number, string[]]> = {
    '/connection-specific': [200, ['transfer-encoding', 'chunked']],
    '/bad-name': [200, ['x-bad\u0001name', 'v']],
    '/pseudo': [200, [':path', '/x']],
    '/single-value': [200, ['ETag', '"a"', 'etag', '"b"']],
    '/status': [99, []]
  }
  const server = http2.createSecureServer({ key: readFileSync(cert.keyPath), cert: readFileSync(cert.certPath) })
  server.on('stream', ((stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, _flags: number, rawHeaders: string[]) => {
    stream.on('error', () => {})
    const s = new Session(stream, stream, { name: 'l', proto: 'https' },
      { clientAddress: '127.0.0.1', trusted: false, proto: 'https', viaEntry: '2 switchyard', servername: undefined },
      performance.now(), pipeline, { headers, rawHeaders })
    ;(stream as unknown as { [kSession]: Session })[kSession] = s // as the pipeline hangs it (drain, trailers)
    const path = String(headers[':path'])
    // A streamed answer whose trailers are sent on 'wantTrailers': good ones arrive, a refused one resets.
    if (path === '/trailers' || path === '/bad-trailers') {
      s.responseHead(200, 'OK', ['content-type', 'text/plain'])
      s.responseData(Buffer.from('body'))
      s.responseEnd(path === '/trailers' ? [Buffer.from('X-Sum'), Buffer.from('1')] : [Buffer.from(':bad'), Buffer.from('x')])
      return
    }
    const head = bad[path]
    if (head !== undefined) {
      results.push(s.writeHead(head[0], head[1]))
      return
    }
    // Connection is dropped (as the compatibility layer did); repeated fields become one list.
    if (s.writeHead(200, ['content-length', '2', 'connection', 'close', 'x-many', 'a', 'X-Many', 'b'])) s.end(Buffer.from('ok'))
  }) as (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => void)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { server.close() })
  const base = `https://127.0.0.1:${(server.address() as AddressInfo).port}`
  const session = await h2Session(t, base)
  for (const path of Object.keys(bad)) {
    const r = await h2Request(session, { ':path': path })
    t.equal(r.rstCode, NGHTTP2_INTERNAL_ERROR, `${path}: the stream is reset with INTERNAL_ERROR`)
    t.equal(r.status, 0, `${path}: no head went out`)
  }
  t.same(results, Object.keys(bad).map(() => false), 'writeHead reports failure instead of throwing')
  t.equal(contained.length, Object.keys(bad).length, 'each one reported as an internal error')
  t.match(String(contained[0]), /connection/i)
  const trailers = await h2Request(session, { ':path': '/trailers' })
  t.equal(trailers.text, 'body')
  t.equal(trailers.trailers?.['x-sum'], '1', 'trailers sent on wantTrailers')
  t.equal(trailers.rstCode, undefined)
  const badTrailers = await h2Request(session, { ':path': '/bad-trailers' })
  t.equal(badTrailers.rstCode, NGHTTP2_INTERNAL_ERROR, 'a trailer Node refuses resets the stream')
  t.equal(contained.length, Object.keys(bad).length + 1, 'and is reported as an internal error, not thrown')
  // The same h2 session still answers.
  const ok = await h2Request(session, { ':path': '/fine' })
  t.equal(ok.status, 200)
  t.equal(ok.text, 'ok')
  t.equal(ok.headers.connection, undefined)
  t.same(ok.headers['x-many'], 'a, b', 'repeated fields arrive as one list')
  t.ok(ok.headers.date, 'Date is added')
  session.close()
})

/** A TLS (h2 + http/1.1) listener straight on a pipeline, its stream counts observed. */
async function observedListener (t: Test, originUrl: string) {
  const cert = testCertificate(t)
  const config = parseConfig(`${tlsAndPlainListeners(cert)}
routes: [{ backend: b }]
backends: { b: { servers: [{ url: "${originUrl}" }] } }
`, 'test.yaml', { checkFiles: false })
  const ended: Session[] = []
  const pipeline = new Pipeline(buildState(config), { onSessionEnd: (s) => ended.push(s) })
  const counts = { streamsOpened: 0, streamsClosed: 0, h1: 0, h2: 0 }
  const observer: ConnectionObserver = {
    connectionOpened: (_l, p) => { counts[p]++ },
    connectionClosed: () => {},
    streamOpened: () => { counts.streamsOpened++ },
    streamClosed: () => { counts.streamsClosed++ }
  }
  const cfg = config.listeners.find((l) => l.tls !== undefined)!
  const listener = await startListener(cfg, pipeline, { limits: config.limits, timeouts: config.timeouts, observer })
  t.teardown(() => listener.close())
  return { url: `https://127.0.0.1:${listener.address().port}`, counts, ended }
}

t.test('one TLS port: h2 streams reach the pipeline as raw streams, HTTP/1.1 as request/response; streams counted', async (t) => {
  const origin = await startOrigin(t, (seen, res) => {
    if (seen.url === '/slow') {
      // Headers and a first chunk, then nothing: the client resets mid-body.
      res.writeHead(200, { 'content-type': 'text/plain' })
      res.write('first')
      return
    }
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '5' })
    res.end('hello')
  })
  const { url, counts, ended } = await observedListener(t, origin.url)
  const session = await h2Session(t, url)
  for (let i = 0; i < 3; i++) {
    const r = await h2Request(session, { ':path': `/n${i}` })
    t.equal(r.status, 200)
    t.equal(r.text, 'hello')
  }
  // A reset mid-body: the stream is closed and counted, the session ends as the client's abort.
  await new Promise<void>((resolve) => {
    const stream = session.request({ ':path': '/slow' })
    stream.on('error', () => {})
    stream.once('data', () => stream.close(http2.constants.NGHTTP2_CANCEL))
    stream.on('close', () => resolve())
  })
  // HTTP/1.1 on the same port still arrives through 'request'.
  const h1 = await new Promise<{ status: number, body: string, version: string }>((resolve, reject) => {
    https.get(`${url}/h1`, { rejectUnauthorized: false, agent: false }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => { body += c })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, version: res.httpVersion }))
    }).on('error', reject)
  })
  t.same(h1, { status: 200, body: 'hello', version: '1.1' })
  session.close()
  await new Promise((resolve) => setTimeout(resolve, 200))
  t.equal(counts.streamsOpened, 4, 'every h2 stream counted once')
  t.equal(counts.streamsClosed, 4, 'and closed once, the reset one too')
  t.equal(counts.h2, 1)
  t.equal(counts.h1, 1)
  const h2s = ended.filter((s) => s.h2)
  t.equal(h2s.length, 4)
  for (const s of h2s) t.ok(s.req === s.res && typeof (s.res as http2.ServerHttp2Stream).respond === 'function', 'h2: the core stream, no compatibility objects')
  const slow = h2s.find((s) => s.url === '/slow')!
  t.equal(slow.error?.code, 'LB_ERR_CLIENT_ABORTED', 'the reset mid-body is the client\'s abort')
  const h1s = ended.filter((s) => !s.h2)
  t.equal(h1s.length, 1)
  t.not(h1s[0]!.req, h1s[0]!.res as unknown, 'HTTP/1.1: node:http\'s request and response')
})

t.test('Expect over h2: 100-continue is answered at once and the body goes upstream; any other expectation is 417', async (t) => {
  const origin = await startOrigin(t, (seen, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' })
    res.end(`got ${seen.body.length}`)
  })
  const cert = testCertificate(t)
  const proxy = await startProxy(t, `
${tlsAndPlainListeners(cert)}
routes: [{ backend: app }]
backends: { app: { servers: [{ url: "${origin.url}" }] } }
`)
  const session = await h2Session(t, proxy.url('tls'))
  const body = Buffer.alloc(100_000, 'x')
  const result = await new Promise<{ continued: boolean, status: number, text: string }>((resolve, reject) => {
    const stream = session.request({ ':method': 'POST', ':path': '/up', expect: '100-continue', 'content-length': String(body.length) })
    let continued = false
    let status = 0
    let text = ''
    stream.on('continue', () => { continued = true; stream.end(body) })
    stream.on('response', (h) => { status = Number(h[':status']) })
    stream.setEncoding('utf8')
    stream.on('data', (c: string) => { text += c })
    stream.on('end', () => resolve({ continued, status, text }))
    stream.on('error', reject)
  })
  t.same(result, { continued: true, status: 200, text: `got ${body.length}` })
  const r = await h2Request(session, { ':method': 'POST', ':path': '/up', expect: 'something-else' }, 'x')
  t.equal(r.status, 417)
  session.close()
})

t.test('cache hits answer from a prepared head on both protocols: the same fields each time, per-request parts stay per request', async (t) => {
  const cert = testCertificate(t)
  let version = 1
  const origin = await startOrigin(t, (seen, res) => {
    const body = `v${version} of ${seen.url}`
    res.writeHead(200, {
      'content-type': 'text/plain',
      'content-length': String(Buffer.byteLength(body)),
      'cache-control': 'public, max-age=600',
      etag: `"v${version}"`,
      'x-origin': 'yes'
    })
    res.end(body)
  })
  const proxy = await startProxy(t, `${tlsAndPlainListeners(cert)}
cache: { maxBytes: 8MiB, purgeFrom: [127.0.0.1] }
routes: [{ backend: origin }]
backends: { origin: { servers: [{ url: "${origin.url}" }] } }
`)
  const session = await h2Session(t, proxy.url('tls'))
  const viaH2 = (headers: OutgoingHttpHeaders = {}): ReturnType<typeof h2Request> => h2Request(session, { ':path': '/doc', ...headers })
  // HTTP/1.1 on the TLS listener: the same scheme, so the same entry as h2.
  const viaH1 = (headers: OutgoingHttpHeaders = {}, method = 'GET'): ReturnType<typeof h1> => h1(proxy.url('tls'), { path: '/doc', headers, method })

  const miss = await viaH1()
  t.match(miss.headers['cache-status'], /fwd=uri-miss; fwd-status=200; stored/)
  // h2, h1, h2, h1: each hit carries the origin's fields once, one Age, one Cache-Status hit.
  const hits = [await viaH2(), await viaH1(), await viaH2(), await viaH1(), await viaH2()]
  for (const [i, r] of hits.entries()) {
    t.equal(r.status, 200, `hit ${i}`)
    t.equal(r.text, 'v1 of /doc')
    t.equal(r.headers.etag, '"v1"')
    t.equal(r.headers['x-origin'], 'yes')
    t.equal(r.headers['content-length'], String(Buffer.byteLength('v1 of /doc')))
    t.match(r.headers['cache-status'], /^switchyard; hit; ttl=\d+$/, `hit ${i}: one Cache-Status member`)
    t.match(r.headers.age, /^\d+$/, `hit ${i}: one Age`)
  }
  t.equal(origin.requests.length, 1, 'every hit from the cache')

  // The request's own conditionals and ranges still get their own answers, on either protocol.
  t.equal((await viaH2({ 'if-none-match': '"v1"' })).status, 304)
  t.equal((await viaH1({ 'if-none-match': '"v1"' })).status, 304)
  const range = await viaH2({ range: 'bytes=0-1' })
  t.equal(range.status, 206)
  t.equal(range.text, 'v1')
  t.equal(range.headers['content-range'], 'bytes 0-1/10')
  const head = await viaH1({}, 'HEAD')
  t.equal(head.status, 200)
  t.equal(head.text, '', 'HEAD: no body')
  t.equal(head.headers['content-length'], '10')
  // ...and a plain hit after them is the plain answer again.
  const after = await viaH2()
  t.equal(after.status, 200)
  t.equal(after.text, 'v1 of /doc')
  t.equal(after.headers['content-range'], undefined)

  // A purged entry takes its prepared head with it: the next entry answers with its own.
  version = 2
  t.equal((await viaH1({}, 'PURGE')).status, 200)
  const refetched = await viaH2()
  t.equal(refetched.text, 'v2 of /doc')
  const hitAgain = await viaH2()
  t.equal(hitAgain.text, 'v2 of /doc')
  t.equal(hitAgain.headers.etag, '"v2"')
  t.match(hitAgain.headers['cache-status'], /hit/)
  t.equal((await viaH1()).headers.etag, '"v2"')
  t.equal(origin.requests.length, 2)
})
