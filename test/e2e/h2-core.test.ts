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
import { h2Request, h2Session, tlsAndPlainListeners } from '../helpers/e2e.js'
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
