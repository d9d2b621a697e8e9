// Issue 8, item 1: an upstream response head is normalised once when it
// arrives. A repeated one-value field (common when an app and its web server
// both add X-Content-Type-Options) is collapsed; repeated with different
// values it is a 502 counted against the server and never stored. Before the
// fix, a stored response with a doubled field crashed the whole process the
// moment an HTTP/2 client asked for it.
import net from 'node:net'
import t from 'tap'
import type { Test } from 'tap'
import { testCertificate } from '../helpers/certs.js'
import { h1, h2, h2Session, rawRequest, tlsAndPlainListeners } from '../helpers/e2e.js'
import { startRawOrigin, startRawServer, type RawOrigin } from '../helpers/raw-origin.js'
import { startServer } from '../helpers/origin.js'
import { startProxy, type RunningProxy } from '../helpers/proxy.js'
import { SessionLog, within } from '../helpers/stream-kit.js'

/** Answers per path: a status line and header lines, then `body`. */
const ANSWERS: Record<string, { status?: string; headers: string[]; body?: string }> = {
  '/dup-same': { headers: ['Cache-Control: max-age=60', 'X-Content-Type-Options: nosniff', 'X-Content-Type-Options: nosniff', 'Content-Type: text/plain', 'content-type: text/plain', 'ETag: "v1"', 'ETag: "v1"'] },
  '/dup-etag': { headers: ['Cache-Control: max-age=60', 'ETag: "a"', 'ETag: "b"'] },
  '/dup-type': { headers: ['Cache-Control: max-age=60', 'Content-Type: text/html', 'Content-Type: application/json'] },
  '/dup-location': { status: '302 Found', headers: ['Location: /a', 'Location: /b'] },
  '/dup-age': { headers: ['Cache-Control: max-age=60', 'Age: 5', 'Age: 7200', 'Date: Thu, 01 Jan 2026 00:00:00 GMT', 'Date: Fri, 02 Jan 2026 00:00:00 GMT'] },
  '/encodings': { headers: ['Cache-Control: max-age=60', 'Content-Language: en', 'Content-Language: fr'] },
  '/status-999': { status: '999 Odd', headers: [] },
  // RFC 9110 §8.6: a 304 may carry the Content-Length of the 200 it stands for, and no body.
  '/304': { status: '304 Not Modified', headers: ['ETag: "a"', 'Content-Length: 5'], body: '' },
  '/204': { status: '204 No Content', headers: ['Content-Length: 5'], body: '' },
  '/reason-latin1': { status: '200 caf\xe9', headers: [] },
  '/reason-del': { status: '200 \x7f', headers: [] },
  // A Trailer field announces trailers: Node refuses it on an answer it does not send chunked.
  '/trailer-cl': { headers: ['Trailer: X-T', 'Cache-Control: max-age=60'], body: 'hello' },
  '/trailer-chunked': { headers: ['Transfer-Encoding: chunked', 'Trailer: X-T', 'Cache-Control: max-age=60'], body: '5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n' },
  '/trailer-10': { headers: ['Transfer-Encoding: chunked', 'Trailer: X-T'], body: '5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n' }
}

async function setup (t: Test): Promise<{ proxy: RunningProxy, origin: RawOrigin }> {
  const cert = testCertificate(t)
  const origin = await startRawOrigin(t, (seen) => {
    const path = seen.target.split('?')[0]!
    const a = ANSWERS[path] ?? { headers: [] }
    const body = a.body ?? `body of ${seen.target}`
    const length = a.headers.some((h) => /^(content-length|transfer-encoding):/i.test(h)) ? '' : `content-length: ${Buffer.byteLength(body)}\r\n`
    return Buffer.from(`HTTP/1.1 ${a.status ?? '200 OK'}\r\n${a.headers.map((h) => `${h}\r\n`).join('')}${length}\r\n${body}`, 'latin1')
  })
  const proxy = await startProxy(t, `${tlsAndPlainListeners(cert)}
cache: {}
routes: [{ backend: raw }]
backends:
  raw:
    retries: { attempts: 0 }
    servers: [{ url: "${origin.url}" }]
`)
  return { proxy, origin }
}

const hits = (o: RawOrigin, path: string): number => o.requests.filter((r) => r.target === path).length

t.test('the same value twice: collapsed, stored, and served to HTTP/2 clients (the process stays up)', async (t) => {
  const { proxy, origin } = await setup(t)
  const first = await h1(proxy.url('tls'), { path: '/dup-same' }) // https, like the h2 client: one key
  t.equal(first.status, 200)
  t.equal(first.headers['x-content-type-options'], 'nosniff', 'one field, not "nosniff, nosniff"')
  t.equal(first.headers.etag, '"v1"')
  const viaH2 = await h2(t, proxy.url('tls'), { ':path': '/dup-same' })
  t.equal(viaH2.status, 200, 'an h2 client gets the stored copy')
  t.match(viaH2.headers['cache-status'], /hit/)
  t.equal(viaH2.text, 'body of /dup-same')
  t.equal(viaH2.headers['x-content-type-options'], 'nosniff')
  t.equal(hits(origin, '/dup-same'), 1, 'served from the cache')
  const again = await h2(t, proxy.url('tls'), { ':path': '/dup-same' })
  t.equal(again.status, 200, 'and again: nothing crashed')
})

t.test('different values: 502 LB_ERR_UPSTREAM_BAD_RESPONSE on h1 and h2, counted against the server, never stored', async (t) => {
  const { proxy, origin } = await setup(t)
  for (const path of ['/dup-etag', '/dup-type', '/dup-location']) {
    const a = await h1(proxy.url('plain'), { path })
    t.equal(a.status, 502, `${path} h1`)
    t.equal(a.headers['x-switchyard-error'], 'LB_ERR_UPSTREAM_BAD_RESPONSE')
    t.notOk(a.headers.etag, 'none of the upstream fields leak into the error')
    const b = await h2(t, proxy.url('tls'), { ':path': path })
    t.equal(b.status, 502, `${path} h2: answered, not left hanging`)
    t.equal(b.headers['x-switchyard-error'], 'LB_ERR_UPSTREAM_BAD_RESPONSE')
    t.equal(hits(origin, path), 2, `${path}: the second request went upstream again (nothing stored)`)
  }
  const server = proxy.app.status()[0]!.shards[0]!.servers[0]!
  t.equal(server.failures, 6, 'each one counted against the server')
  t.equal(proxy.app.cacheStats()?.entries, 0)
})

t.test('Age and Date: the first value counts (RFC 9111 §5.1); list fields HTTP/2 wants once are joined', async (t) => {
  const { proxy } = await setup(t)
  const r = await h2(t, proxy.url('tls'), { ':path': '/dup-age' })
  t.equal(r.status, 200)
  t.equal(r.headers.date, 'Thu, 01 Jan 2026 00:00:00 GMT')
  const l = await h2(t, proxy.url('tls'), { ':path': '/encodings' })
  t.equal(l.headers['content-language'], 'en, fr')
})

t.test('a status beyond 599 is a malformed response', async (t) => {
  const { proxy } = await setup(t)
  const r = await h2(t, proxy.url('tls'), { ':path': '/status-999' })
  t.equal(r.status, 502)
  t.equal(r.headers['x-switchyard-error'], 'LB_ERR_UPSTREAM_BAD_RESPONSE')
  const raw = await rawRequest(proxy.port('plain'), 'GET /status-999 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')
  t.equal(raw.status, 502)
})

t.test('switchyard_internal_errors_total is exported (and stays 0 when nothing was contained)', async (t) => {
  const { proxy } = await setup(t)
  await h2(t, proxy.url('tls'), { ':path': '/dup-etag' })
  t.match(proxy.app.metrics.prometheus(), /\nswitchyard_internal_errors_total 0\n/)
})

t.test('bodiless statuses: a 304 with its 200\'s Content-Length reaches h1 clients; a 204 never carries one to h2', async (t) => {
  const { proxy } = await setup(t)
  const r = await rawRequest(proxy.port('plain'), 'GET /304 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')
  t.equal(r.status, 304, 'not a mismatch error (undici would wait for 5 bytes a 304 never has)')
  t.equal(r.headers.etag, '"a"')
  const viaH2 = await h2(t, proxy.url('tls'), { ':path': '/204' })
  t.equal(viaH2.status, 204)
  t.equal(viaH2.rstCode, undefined, 'no PROTOCOL_ERROR: the Content-Length was dropped (RFC 9110 §8.6)')
  t.equal(viaH2.headers['content-length'], undefined)
  t.equal(proxy.app.status()[0]!.shards[0]!.servers[0]!.failures, 0, 'neither counts against the server')
})

t.test('a Trailer field on an answer not sent chunked (Content-Length, HEAD, HTTP/1.0, a cache hit) is dropped, not the answer', async (t) => {
  const { proxy, origin } = await setup(t)
  const cl = await h1(proxy.url('plain'), { path: '/trailer-cl' })
  t.equal(cl.status, 200)
  t.equal(cl.text, 'hello')
  t.equal(cl.headers.trailer, undefined, 'no trailers can follow a Content-Length body')
  const head = await rawRequest(proxy.port('plain'), 'HEAD /trailer-10 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')
  t.equal(head.status, 200, 'HEAD of a chunked resource')
  const old = await rawRequest(proxy.port('plain'), 'GET /trailer-10 HTTP/1.0\r\nHost: a\r\n\r\n')
  t.equal(old.status, 200, 'an HTTP/1.0 client (no chunked coding)')
  t.equal(old.body, 'hello')
  // http and https are separate keys: each listener fills its own entry, then hits it.
  for (const url of [proxy.url('plain'), proxy.url('tls')]) {
    const miss = await h1(url, { path: '/trailer-chunked' })
    t.equal(miss.text, 'hello', `${url}: first, streamed chunked as it came`)
    t.equal(miss.trailers['x-t'], '1', 'with its trailer')
    const hit = await h1(url, { path: '/trailer-chunked' })
    t.equal(hit.status, 200, `${url}: a cache hit (stored with its length) is answered`)
    t.match(hit.headers['cache-status'], /hit/)
    t.equal(hit.text, 'hello')
    t.equal(hit.headers.trailer, undefined)
  }
  t.equal(hits(origin, '/trailer-chunked'), 2)
  t.match(proxy.app.metrics.prometheus(), /\nswitchyard_internal_errors_total 0\n/, 'nothing was contained as an internal error')
})

t.test('a reason phrase Node will not write (obs-text, DEL): the standard one instead, never a reset', async (t) => {
  const { proxy } = await setup(t)
  for (const path of ['/reason-latin1', '/reason-del']) {
    const r = await rawRequest(proxy.port('plain'), `GET ${path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`)
    t.equal(r.status, 200, path)
    t.match(r.raw, /^HTTP\/1\.1 200 OK\r\n/, `${path}: 200 OK`)
    t.equal(r.body, `body of ${path}`)
  }
  t.match(proxy.app.metrics.prometheus(), /\nswitchyard_internal_errors_total 0\n/)
})

t.test('interim responses without end: 504 once the headers timeout has passed since the request, not a stall', async (t) => {
  // undici restarts its headers timeout on every 1xx, so an origin that sends
  // 102 Processing forever held the request (and its client) forever.
  const timers = new Set<NodeJS.Timeout>()
  t.teardown(() => { for (const timer of timers) clearInterval(timer) })
  const origin = await startRawServer(t, (_seen, socket) => {
    const timer = setInterval(() => {
      if (socket.destroyed) clearInterval(timer)
      else socket.write('HTTP/1.1 102 Processing\r\n\r\n')
    }, 20)
    timers.add(timer)
    return false
  })
  const cert = testCertificate(t)
  const proxy = await startProxy(t, `${tlsAndPlainListeners(cert)}
routes: [{ backend: raw }]
backends:
  raw:
    retries: { attempts: 0 }
    timeouts: { headers: 300ms }
    servers: [{ url: "${origin.url}" }]
`)
  const r = await rawRequest(proxy.port('plain'), 'GET /processing HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n', { limitMs: 10_000 })
  // The 102s reach the client (relayed interim responses) before the final answer.
  t.match(r.raw, /^HTTP\/1\.1 102 /, 'h1: the interim responses were relayed')
  t.match(r.raw, /\r\nHTTP\/1\.1 504 [^\r]*\r\n(?:[^\r]+\r\n)*x-switchyard-error: LB_ERR_UPSTREAM_TIMEOUT\r\n/i, 'h1: answered 504')
  const viaH2 = await h2(t, proxy.url('tls'), { ':path': '/processing' })
  t.equal(viaH2.status, 504, 'h2: answered')
  const upgrade = await rawRequest(proxy.port('plain'), 'GET /processing HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n' +
    'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n', { limitMs: 10_000 })
  t.equal(upgrade.status, 504, 'a WebSocket upgrade: answered too')
  t.equal(proxy.app.status()[0]!.shards[0]!.servers[0]!.failures, 3, 'counted against the server')
})

t.test('a body that ends with the connection, to a client that does not read: one drain listener, not one per chunk', async (t) => {
  // Such a body is never paused upstream (undici 7, see ForwardHandler.onData),
  // so chunks keep coming while the client's side is full; each added a 'drain'
  // listener (MaxListenersExceededWarning, and listeners without bound).
  const block = Buffer.alloc(64 * 1024, 0x61)
  const origin = await startRawServer(t, (_seen, socket) => {
    socket.write('HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\n')
    for (let i = 0; i < 64; i++) socket.write(block)
    socket.end()
    return false
  })
  const warnings: string[] = []
  const onWarning = (w: Error): void => { if (w.name === 'MaxListenersExceededWarning') warnings.push(w.message) }
  process.on('warning', onWarning)
  t.teardown(() => { process.off('warning', onWarning) })
  const cert = testCertificate(t)
  const proxy = await startProxy(t, `${tlsAndPlainListeners(cert)}
routes: [{ backend: raw }]
backends: { raw: { servers: [{ url: "${origin.url}" }] } }
`)
  const session = await h2Session(t, proxy.url('tls'))
  const stream = session.request({ ':path': '/close-delimited' })
  stream.pause()
  const head = await new Promise<Record<string, unknown>>((resolve) => stream.once('response', resolve))
  t.equal(head[':status'], 200)
  // The whole body reaches the proxy while this client reads nothing.
  for (let i = 0; i < 500 && proxy.app.status()[0]!.shards[0]!.servers[0]!.active > 0; i++) await new Promise((resolve) => setTimeout(resolve, 10))
  let bytes = 0
  stream.on('data', (c: Buffer) => { bytes += c.length })
  const ended = new Promise((resolve) => stream.once('end', resolve))
  stream.resume()
  await ended
  t.equal(bytes, 64 * block.length, 'the whole body arrives')
  await new Promise((resolve) => setImmediate(resolve))
  t.same(warnings, [], 'no listener pile-up')
  session.close()
})

t.test('a body that ends with the connection, to a client that never reads: paused like any other, cut after clientSend, the server not blamed', async (t) => {
  // undici 7 could not pause such a body (the proxy then held up to 16 MiB of
  // it per client, see MAX_UNPAUSED_BYTES); our HTTP/1.1 client pauses it, so
  // the origin is held back and the send timeout ends the exchange.
  const block = Buffer.alloc(64 * 1024, 0x62)
  const CAP = 64 * 1024 * 1024
  const written: number[] = []
  const origin = await startRawServer(t, (_seen, socket) => {
    socket.write('HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\n\r\n')
    let total = 0
    const pump = (): void => {
      while (total < CAP && !socket.destroyed) {
        total += block.length
        if (!socket.write(block)) { socket.once('drain', pump); return }
      }
      socket.end()
    }
    socket.once('close', () => written.push(total))
    pump()
    return false
  })
  const log = new SessionLog()
  const cert = testCertificate(t)
  const proxy = await startProxy(t, `${tlsAndPlainListeners(cert)}
timeouts: { clientSend: 1500ms }
routes: [{ backend: raw }]
backends: { raw: { servers: [{ url: "${origin.url}" }] } }
`, log.hooks)

  await t.test('h2: the stream is reset', async (t) => {
    const session = await h2Session(t, proxy.url('tls'))
    const stream = session.request({ ':path': '/endless-h2' })
    stream.pause()
    stream.on('error', () => {})
    const closed = new Promise<number>((resolve) => stream.once('close', () => resolve(stream.rstCode ?? 0)))
    const ended = await within(log.ended('/endless-h2'), 20_000, 'the exchange ends')
    t.equal(ended.error?.code, 'LB_ERR_CLIENT_SEND_TIMEOUT')
    t.not(await within(closed, 20_000, 'the stream closes'), 0, 'RST_STREAM, never a clean end')
    session.close()
  })

  await t.test('h1: the connection is cut', async (t) => {
    const socket = net.connect(proxy.port('plain'), '127.0.0.1')
    t.teardown(() => { socket.destroy() })
    socket.on('error', () => {})
    socket.write('GET /endless-h1 HTTP/1.1\r\nHost: a\r\n\r\n')
    socket.pause()
    const ended = await within(log.ended('/endless-h1'), 20_000, 'the exchange ends')
    t.equal(ended.error?.code, 'LB_ERR_CLIENT_SEND_TIMEOUT')
    let text = ''
    socket.on('data', (c: Buffer) => { if (text.length < 1000) text += c.toString('latin1', 0, 1000) })
    const closed = new Promise((resolve) => socket.once('close', resolve))
    socket.resume()
    await within(closed, 20_000, 'the connection closes')
    t.match(text, /^HTTP\/1\.1 200 OK\r\n[^]*transfer-encoding: chunked/i, 'chunked to the client, so the cut shows (no last chunk)')
  })

  for (let i = 0; i < 500 && written.length < 2; i++) await new Promise((resolve) => setTimeout(resolve, 10))
  t.equal(written.length, 2, 'both origin connections were closed')
  // Unpaused, 16 MiB would have gone by long before the send timeout (LB_ERR_CLIENT_TOO_SLOW above).
  for (const n of written) t.ok(n < CAP, `the origin was held back, then cut off, after ${n} bytes, not read to its end`)
  t.equal(proxy.app.status()[0]!.shards[0]!.servers[0]!.failures, 0, 'a slow client is not the server\'s failure')
})

t.test('1xx during an upload longer than the headers timeout: not a stall, the final answer is relayed', async (t) => {
  // undici restarts its headers timeout on every body chunk it sends; 102s
  // while the body still arrives must not count against that timeout.
  const origin = await startServer(t, (req, res) => {
    const timer = setInterval(() => res.writeProcessing(), 50)
    req.resume()
    req.on('end', () => { clearInterval(timer); res.writeHead(200, { 'content-length': '2' }).end('ok') })
    req.on('close', () => clearInterval(timer))
  })
  const cert = testCertificate(t)
  const proxy = await startProxy(t, `${tlsAndPlainListeners(cert)}
routes: [{ backend: o }]
backends:
  o:
    retries: { attempts: 0 }
    timeouts: { headers: 300ms }
    servers: [{ url: "${origin.url}" }]
`)
  const socket = net.connect(proxy.port('plain'), '127.0.0.1')
  t.teardown(() => { socket.destroy() })
  let answer = ''
  socket.on('data', (c: Buffer) => { answer += c.toString('latin1') })
  socket.on('error', () => {})
  const closed = new Promise((resolve) => socket.once('close', resolve))
  socket.write('POST /upload HTTP/1.1\r\nHost: a\r\nConnection: close\r\nContent-Length: 8\r\n\r\n')
  for (let i = 0; i < 8; i++) {
    await new Promise((resolve) => setTimeout(resolve, 100)) // 800 ms of upload, past the 300 ms headers timeout
    socket.write('x')
  }
  await closed
  // The 102s are relayed as they come; then the origin's final answer.
  const final = answer.replace(/^(?:HTTP\/1\.1 102 Processing\r\n\r\n)+/, '')
  t.match(final, /^HTTP\/1\.1 200 /, `the origin's answer after the relayed 102s (got ${JSON.stringify(final.slice(0, 80))})`)
})
