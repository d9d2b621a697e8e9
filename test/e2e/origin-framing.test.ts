// Origins that frame their answers wrongly, or say things a shared cache must
// heed, checked byte for byte from a raw socket with HTTP/1.1 and h2 clients.
// Each case asserts what a careful proxy does (nginx, HAProxy; RFC 9110,
// 9112, 9111), not only that nothing crashed: the answer, whether the
// server is blamed, whether anything was stored, and that the upstream
// connection never carries the extra bytes into the next answer.
import t from 'tap'
import type { Test } from 'tap'
import { readFileSync } from 'node:fs'
import type { IncomingMessage, ServerResponse } from 'node:http'
import https from 'node:https'
import net, { type AddressInfo, type Socket } from 'node:net'
import { testCertificate } from '../helpers/certs.js'
import { h1, h2, h2Session, h2StreamClosed, tlsAndPlainListeners } from '../helpers/e2e.js'
import { startChildProxy } from '../helpers/child-proxy.js'
import { startServer } from '../helpers/origin.js'
import { startRawServer, type RawSeen } from '../helpers/raw-origin.js'
import { startProxy, type RunningProxy } from '../helpers/proxy.js'
import { SessionLog, within } from '../helpers/stream-kit.js'
import { h1Exchange, h2Exchange, type H2Outcome, type WireOutcome } from '../helpers/wire.js'

const CACHEABLE = 'Cache-Control: max-age=60\r\nContent-Type: text/plain\r\n'
/** A complete response the origin writes where none may be: it must never answer anything. */
const SMUGGLED = 'HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nContent-Length: 8\r\n\r\nSMUGGLED'

/** Per path: the bytes the origin writes (then `close`: FIN). Any other path gets its own name back. */
const ANSWERS: Record<string, { readonly bytes: string, readonly close?: boolean }> = {
  '/te-and-length': { bytes: `HTTP/1.1 200 OK\r\n${CACHEABLE}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n` },
  '/te-gzip-chunked': { bytes: `HTTP/1.1 200 OK\r\n${CACHEABLE}Transfer-Encoding: gzip, chunked\r\n\r\n5\r\n\x1f\x8b\x08\x00\x00\r\n0\r\n\r\n` },
  '/te-identity': { bytes: `HTTP/1.1 200 OK\r\n${CACHEABLE}Transfer-Encoding: identity\r\n\r\nhello`, close: true },
  '/te-chunked-twice': { bytes: `HTTP/1.1 200 OK\r\n${CACHEABLE}Transfer-Encoding: chunked, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n` },
  '/huge-head': { bytes: `HTTP/1.1 200 OK\r\n${CACHEABLE}X-Big: ${'b'.repeat(64 * 1024)}\r\nContent-Length: 5\r\n\r\nhello` },
  '/nul-in-value': { bytes: `HTTP/1.1 200 OK\r\n${CACHEABLE}X-Odd: a\x00b\r\nContent-Length: 5\r\n\r\nhello` },
  '/cr-in-value': { bytes: `HTTP/1.1 200 OK\r\n${CACHEABLE}X-Odd: a\rb\r\nContent-Length: 5\r\n\r\nhello` },
  '/204-body': { bytes: `HTTP/1.1 204 No Content\r\n${CACHEABLE}\r\n${SMUGGLED}` },
  '/304-body': { bytes: `HTTP/1.1 304 Not Modified\r\nETag: "a"\r\nCache-Control: max-age=60\r\n\r\n${SMUGGLED}` },
  '/head-body': { bytes: `HTTP/1.1 200 OK\r\n${CACHEABLE}Content-Length: 5\r\n\r\nhello${SMUGGLED}` },
  '/vary-star': { bytes: `HTTP/1.1 200 OK\r\n${CACHEABLE}Vary: *\r\nContent-Length: 5\r\n\r\nhello` },
  '/set-cookie': { bytes: `HTTP/1.1 200 OK\r\n${CACHEABLE}Set-Cookie: sid=secret\r\nContent-Length: 5\r\n\r\nhello` },
  '/private': { bytes: 'HTTP/1.1 200 OK\r\nCache-Control: max-age=60, private\r\nContent-Length: 5\r\n\r\nhello' },
  // Framing errors in the body, written with the head (one read upstream): nothing has gone out yet.
  '/bad-chunk-size': { bytes: `HTTP/1.1 200 OK\r\n${CACHEABLE}Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n` },
  '/cr-in-trailer': { bytes: `HTTP/1.1 200 OK\r\n${CACHEABLE}Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-T: a\rb\r\n\r\n` }
}

interface Fixture {
  readonly proxy: RunningProxy
  readonly log: SessionLog
  readonly seen: RawSeen[]
}

async function setup (t: Test, backend = ''): Promise<Fixture> {
  const seen: RawSeen[] = []
  const origin = await startRawServer(t, (req: RawSeen, socket: Socket) => {
    seen.push(req)
    const a = ANSWERS[req.target]
    if (a === undefined) {
      socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${Buffer.byteLength(req.target)}\r\n\r\n${req.target}`)
      return true
    }
    socket.write(Buffer.from(a.bytes, 'latin1'))
    if (a.close === true) socket.end()
    return a.close !== true
  })
  const log = new SessionLog()
  const cert = testCertificate(t)
  // One upstream connection: what one answer leaves on it, the next one reads.
  const proxy = await startProxy(t, `${tlsAndPlainListeners(cert)}
cache: {}
routes: [{ backend: raw }]
backends:
  raw:
    connections: 1
    retries: { attempts: 0 }
${backend}    servers: [{ url: "${origin.url}" }]
`, log.hooks)
  return { proxy, log, seen }
}

const server = (proxy: RunningProxy) => proxy.app.status()[0]!.shards[0]!.servers[0]!
const hits = (f: Fixture, path: string): number => f.seen.filter((s) => s.target === path).length

/** One HTTP/1.1 request over TLS (the h2 client's scheme and authority: one cache key). */
function viaH1 (proxy: RunningProxy, path: string, method = 'GET', extra = ''): Promise<WireOutcome> {
  return h1Exchange({
    port: proxy.port('tls'), tls: true, method, limitMs: 10_000,
    chunks: [Buffer.from(`${method} ${path} HTTP/1.1\r\nHost: a\r\n${extra}\r\n`)]
  })
}

async function viaH2 (t: Test, proxy: RunningProxy, path: string, method = 'GET'): Promise<H2Outcome> {
  const session = await h2Session(t, proxy.url('tls'))
  try {
    return await h2Exchange(session, { ':path': path, ':authority': 'a', ':method': method }, undefined, 10_000)
  } finally {
    session.close()
  }
}

const header = (o: WireOutcome, name: string): string | undefined =>
  o.responses[0]?.fields.find(([n]) => n.toLowerCase() === name)?.[1]

/** The next answer on the same upstream connection is the origin's answer to that request. */
async function nextIsClean (t: Test, f: Fixture): Promise<void> {
  const a = await viaH1(f.proxy, '/after')
  t.equal(a.responses[0]?.status, 200, 'the next request: answered')
  t.equal(a.responses[0]?.body.toString(), '/after', 'the next request gets its own answer, never the leftover bytes')
  const b = await viaH2(t, f.proxy, '/after-h2')
  t.equal(b.body.toString(), '/after-h2', 'and over h2')
}

// Answers nginx refuses with 502 ("upstream sent ... while reading response header from upstream").
const REFUSED: ReadonlyArray<readonly [string, string, string]> = [
  // RFC 9112 §6.3: both is a smuggling attempt, "ought to be handled as an error".
  ['/te-and-length', 'LB_ERR_UPSTREAM_PROTOCOL', 'Content-Length and Transfer-Encoding'],
  // The body stays gzip-coded after dechunking and nothing could say so downstream (Transfer-Encoding is hop-by-hop).
  ['/te-gzip-chunked', 'LB_ERR_UPSTREAM_BAD_RESPONSE', 'a transfer coding other than chunked'],
  ['/te-identity', 'LB_ERR_UPSTREAM_BAD_RESPONSE', 'Transfer-Encoding: identity (removed from HTTP in RFC 7230)'],
  ['/huge-head', 'LB_ERR_UPSTREAM_PROTOCOL', 'a response head past the size limit'],
  ['/nul-in-value', 'LB_ERR_UPSTREAM_PROTOCOL', 'NUL in a field value (RFC 9110 §5.5)'],
  ['/cr-in-value', 'LB_ERR_UPSTREAM_PROTOCOL', 'a bare CR in a field value (RFC 9110 §5.5)'],
  // Before, the head went to the client and the connection was cut: an empty or truncated reply where a 502 could still be sent.
  ['/bad-chunk-size', 'LB_ERR_UPSTREAM_PROTOCOL', 'a bad chunk size in the same read as the head'],
  ['/cr-in-trailer', 'LB_ERR_UPSTREAM_PROTOCOL', 'a bare CR in a trailer in the same read as the head']
]

for (const [path, code, what] of REFUSED) {
  t.test(`${what}: 502 ${code} on h1 and h2, counted against the server, never stored`, async (t) => {
    const f = await setup(t)
    const a = await viaH1(f.proxy, path)
    t.notOk(a.timedOut)
    t.equal(a.responses[0]?.status, 502, 'h1: 502')
    t.equal(header(a, 'x-switchyard-error'), code)
    t.equal(header(a, 'x-odd'), undefined, 'nothing of the upstream head leaks into the error')
    const ended = await within(f.log.ended(path), 10_000, 'the exchange ends')
    t.equal(ended.error?.code, code, 'the access log names it')
    const b = await viaH2(t, f.proxy, path)
    t.equal(b.status, 502, 'h2: 502')
    t.equal(b.headers?.['x-switchyard-error'], code)
    t.equal(hits(f, path), 2, 'not stored: the second request went upstream again')
    t.equal(f.proxy.app.cacheStats()?.entries, 0)
    t.equal(server(f.proxy).failures, 2, 'each counted against the server')
    await nextIsClean(t, f)
  })
}

t.test('Transfer-Encoding: chunked, chunked: refused as well (chunked must be applied once, RFC 9112 §7)', async (t) => {
  const f = await setup(t)
  const a = await viaH1(f.proxy, '/te-chunked-twice')
  t.equal(a.responses[0]?.status, 502)
  t.equal(hits(f, '/te-chunked-twice'), 1)
  await nextIsClean(t, f)
})

t.test('a body on a 204 or a 304: the status goes out without it, the bytes never answer the next request', async (t) => {
  for (const [path, status] of [['/204-body', 204], ['/304-body', 304]] as const) {
    const f = await setup(t)
    const a = await viaH1(f.proxy, path)
    t.equal(a.responses[0]?.status, status, `${path} h1`)
    t.equal(a.responses[0]?.body.length, 0, `${path}: no body`)
    t.ok(a.responses[0]?.complete)
    const b = await viaH2(t, f.proxy, path)
    t.equal(b.status, status, `${path} h2`)
    t.equal(b.body.length, 0)
    t.equal(b.rstCode, undefined, 'a clean end')
    t.equal(server(f.proxy).failures, 0, 'the status itself was sound')
    await nextIsClean(t, f)
  }
})

t.test('a body on an answer to HEAD: the head alone goes out, the bytes never answer the next request', async (t) => {
  const f = await setup(t)
  const a = await viaH1(f.proxy, '/head-body', 'HEAD')
  t.equal(a.responses[0]?.status, 200)
  t.equal(a.responses[0]?.body.length, 0)
  t.equal(header(a, 'content-length'), '5', 'the GET\'s length, as HEAD has it (RFC 9110 §9.3.2)')
  const b = await viaH2(t, f.proxy, '/head-body', 'HEAD')
  t.equal(b.status, 200)
  t.equal(b.body.length, 0)
  await nextIsClean(t, f)
  const get = await viaH1(f.proxy, '/head-body')
  t.equal(get.responses[0]?.body.toString(), 'hello', 'a GET after the HEADs gets the body, never SMUGGLED or an empty one')
})

t.test('Vary: *, Set-Cookie, private: never served to another client from the shared cache (RFC 9111 §3, §4.1, §5.2.2.7)', async (t) => {
  const f = await setup(t)
  for (const path of ['/vary-star', '/set-cookie', '/private']) {
    const a = await viaH1(f.proxy, path)
    t.equal(a.responses[0]?.status, 200, path)
    const b = await viaH2(t, f.proxy, path)
    t.equal(b.status, 200)
    t.notMatch(String(b.headers?.['cache-status'] ?? ''), /hit/, `${path}: not a hit`)
    t.equal(hits(f, path), 2, `${path}: each request went to the origin`)
  }
  t.equal(f.proxy.app.cacheStats()?.entries, 0)
})

t.test('Set-Cookie is stored where the route allows it (README: allowSetCookie)', async (t) => {
  const seen: RawSeen[] = []
  const origin = await startRawServer(t, (req, socket) => {
    seen.push(req)
    socket.write(ANSWERS['/set-cookie']!.bytes)
    return true
  })
  const cert = testCertificate(t)
  const proxy = await startProxy(t, `${tlsAndPlainListeners(cert)}
cache: {}
routes: [{ backend: raw, cache: { allowSetCookie: true } }]
backends: { raw: { servers: [{ url: "${origin.url}" }] } }
`)
  await viaH1(proxy, '/set-cookie')
  const b = await viaH2(t, proxy, '/set-cookie')
  t.match(String(b.headers?.['cache-status'] ?? ''), /hit/)
  t.equal(b.headers?.['set-cookie']?.[0], 'sid=secret')
  t.equal(seen.length, 1, 'served from the cache')
})

t.test('an answer before the request body is all sent, then a close: relayed, the rest of the upload dropped', async (t) => {
  const seen: RawSeen[] = []
  const origin = await startRawServer(t, (req, socket) => {
    seen.push(req)
    socket.end('HTTP/1.1 413 Content Too Large\r\nContent-Type: text/plain\r\nContent-Length: 8\r\nConnection: close\r\n\r\ntoo big!')
    return false
  }, { answerBeforeBody: true })
  const log = new SessionLog()
  const cert = testCertificate(t)
  const proxy = await startProxy(t, `${tlsAndPlainListeners(cert)}
routes: [{ backend: raw }]
backends: { raw: { retries: { attempts: 0 }, servers: [{ url: "${origin.url}" }] } }
`, log.hooks)
  // The client sends the head and a first part of a 1 MiB body, and no more.
  const a = await h1Exchange({
    port: proxy.port('plain'), tls: false, method: 'POST', limitMs: 10_000,
    chunks: [Buffer.from('POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 1048576\r\n\r\n'), Buffer.alloc(64 * 1024, 0x78)]
  })
  t.notOk(a.timedOut, 'h1: answered, not left waiting for the rest of the body')
  t.equal(a.responses[0]?.status, 413, 'h1: the origin\'s answer')
  t.equal(a.responses[0]?.body.toString(), 'too big!')
  // h2: the same, the stream left open (a Content-Length the DATA frames fall short of at END_STREAM is a PROTOCOL_ERROR).
  const session = await h2Session(t, proxy.url('tls'))
  const stream = session.request({ ':path': '/upload-h2', ':method': 'POST', 'content-length': '1048576' }, { endStream: false })
  stream.on('error', () => {})
  stream.write(Buffer.alloc(64 * 1024, 0x78))
  const chunks: Buffer[] = []
  stream.on('data', (c: Buffer) => chunks.push(c))
  const head = await within(new Promise<Record<string, unknown>>((resolve) => stream.once('response', resolve)), 10_000, 'the h2 answer')
  await within(new Promise((resolve) => stream.once('end', resolve)), 10_000, 'the h2 response ends')
  // RFC 9113 §8.1: a complete response, then RST_STREAM(NO_ERROR) so the client stops sending.
  await within(h2StreamClosed(stream), 10_000, 'RST_STREAM(NO_ERROR): the stream closes')
  t.equal(stream.rstCode, 0, 'NO_ERROR')
  session.close()
  t.equal(head[':status'], 413, 'h2: the origin\'s answer')
  t.equal(Buffer.concat(chunks).toString(), 'too big!')
  t.equal(proxy.app.status()[0]!.shards[0]!.servers[0]!.failures, 0, 'the origin\'s own answer is not its failure')
  t.equal((await log.ended('/upload')).status, 413, 'logged as the origin\'s 413')
  t.equal(seen.length, 2)
})

/** A raw client: an upload of `size` bytes, then a GET on the same connection; everything the proxy sends until it closes (or 10 s). */
function uploadThenNext (port: number, size: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1')
    let text = ''
    socket.on('data', (d: Buffer) => { text += d.toString('latin1') })
    socket.on('close', () => resolve(text))
    socket.on('error', () => {})
    const timer = setTimeout(() => { socket.destroy(); resolve(text + ' [no more within 10 s]') }, 10_000)
    socket.on('close', () => clearTimeout(timer))
    socket.write(`POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: ${size}\r\n\r\n`)
    socket.write(Buffer.alloc(size, 0x78))
    socket.write('GET /next HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')
  })
}

t.test('an answer before the request body is all sent, the origin keeping its connection: the rest of the upload is read, the next request answered', async (t) => {
  // With undici's client the proxy stopped reading the client's body once the answer was in: the client's next request hung.
  await t.test('an origin that reads on and passes over the body', async (t) => {
    const seen: RawSeen[] = []
    const origin = await startRawServer(t, (req, socket) => {
      seen.push(req)
      socket.write('HTTP/1.1 401 Unauthorized\r\nContent-Length: 4\r\n\r\nnope')
      return true
    }, { answerBeforeBody: true })
    const proxy = await startProxy(t, `listeners: [{ name: plain, bind: "127.0.0.1:0" }]
routes: [{ backend: raw }]
backends: { raw: { retries: { attempts: 0 }, servers: [{ url: "${origin.url}" }] } }
`)
    const text = await uploadThenNext(proxy.port('plain'), 8 * 1024 * 1024)
    t.equal(text.match(/HTTP\/1\.1 401 Unauthorized/g)?.length, 2, `both answered: ${text.slice(-60)}`)
    t.same(seen.map((r) => r.method), ['POST', 'GET'])
  })
  await t.test('an origin that stops reading (the proxy had paused the client\'s body), then answers', async (t) => {
    const heads: string[] = []
    const sockets = new Set<Socket>()
    const server = net.createServer((socket) => {
      sockets.add(socket)
      socket.on('error', () => {})
      socket.once('data', (d: Buffer) => {
        const head = d.toString('latin1').split('\r\n')[0]!
        heads.push(head)
        // Reads nothing more: the proxy's upload writes back up and it pauses the client's body. Then the answer.
        socket.pause()
        setTimeout(() => socket.write('HTTP/1.1 401 Unauthorized\r\nContent-Length: 4\r\n\r\nnope'), head.startsWith('POST') ? 300 : 0)
      })
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    t.teardown(() => new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy()
      server.close(() => resolve())
    }))
    const proxy = await startProxy(t, `listeners: [{ name: plain, bind: "127.0.0.1:0" }]
routes: [{ backend: raw }]
backends: { raw: { retries: { attempts: 0 }, servers: [{ url: "http://127.0.0.1:${(server.address() as AddressInfo).port}" }] } }
`)
    const text = await uploadThenNext(proxy.port('plain'), 32 * 1024 * 1024)
    t.equal(text.match(/HTTP\/1\.1 401 Unauthorized/g)?.length, 2, `both answered: ${text.slice(-60)}`)
    t.same(heads, ['POST /up HTTP/1.1', 'GET /next HTTP/1.1'])
  })
})

for (const scheme of ['http', 'https'] as const) {
  t.test(`an ${scheme} origin that answers an upload at once and closes (its kernel then resets the connection): its answer, never a 502`, async (t) => {
    await earlyAnswer(t, scheme)
  })
}

t.test('the same https origin behind a proxy in its own process, with curl-like uploads: the 413 every time', async (t) => {
  // In-process the proxy rarely loses this race over TLS; on its own it lost it most of the time.
  const cert = testCertificate(t)
  const server = https.createServer({ cert: readFileSync(cert.certPath), key: readFileSync(cert.keyPath) }, (_req, res) => {
    res.writeHead(413, { 'content-type': 'text/plain', 'content-length': '8', connection: 'close' }).end('too big!')
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { server.closeAllConnections(); server.close() })
  const proxy = await startChildProxy(t, `accessLog: false
admin: { bind: "127.0.0.1:0" }
listeners: [{ name: plain, bind: "127.0.0.1:0" }]
routes: [{ backend: o }]
backends: { o: { retries: { attempts: 0 }, tls: { insecureSkipVerify: true }, servers: [{ url: "https://127.0.0.1:${(server.address() as AddressInfo).port}" }] } }
`)
  const body = Buffer.alloc(5_000_000, 0x78)
  const statuses: number[] = []
  for (let i = 0; i < 8; i++) statuses.push(await expectUpload(proxy.port('plain'), body))
  t.same(statuses, Array.from({ length: 8 }, () => 413), 'every upload gets the origin\'s 413')
})

/** POST `body` with Expect: 100-continue, the body written once the 100 came; the final status. */
function expectUpload (port: number, body: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port })
    let got = ''
    let sent = false
    const timer = setTimeout(() => { socket.destroy(); reject(new Error(`no answer within 10 s: ${JSON.stringify(got.slice(0, 200))}`)) }, 10_000)
    socket.once('connect', () => socket.write(`POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: ${body.length}\r\nExpect: 100-continue\r\n\r\n`))
    socket.on('data', (c: Buffer) => {
      got += c.toString('latin1')
      if (!sent && got.startsWith('HTTP/1.1 100')) {
        sent = true
        socket.write(body)
      }
      const final = /HTTP\/1\.1 ([2-5]\d\d) [^\r]*\r\n(?:[^\r]+\r\n)*\r\n/.exec(got)
      if (final !== null) {
        clearTimeout(timer)
        socket.destroy()
        resolve(Number(final[1]))
      }
    })
    socket.on('error', () => {})
  })
}

async function earlyAnswer (t: Test, scheme: 'http' | 'https'): Promise<void> {
  // A Node origin refusing an upload: it answers without reading the body and closes, so the body
  // bytes still coming draw a reset; the proxy's next body write fails while the answer waits unread.
  let answered = 0
  const refuse = (_req: IncomingMessage, res: ServerResponse): void => {
    answered++
    res.writeHead(413, { 'content-type': 'text/plain', 'content-length': '8', connection: 'close' }).end('too big!')
  }
  const cert = testCertificate(t)
  let url: string
  if (scheme === 'http') {
    url = (await startServer(t, refuse)).url
  } else {
    const server = https.createServer({ cert: readFileSync(cert.certPath), key: readFileSync(cert.keyPath) }, refuse)
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    t.teardown(() => { server.closeAllConnections(); server.close() })
    url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`
  }
  const proxy = await startProxy(t, `${tlsAndPlainListeners(cert)}
routes: [{ backend: o }]
backends: { o: { retries: { attempts: 0 }, ${scheme === 'https' ? 'tls: { insecureSkipVerify: true }, ' : ''}servers: [{ url: "${url}" }] } }
`)
  const body = Buffer.alloc(4 << 20, 0x78)
  const statuses: string[] = []
  for (let i = 0; i < 4; i++) {
    for (const listener of ['plain', 'tls'] as const) {
      const r = await h1(proxy.url(listener), { method: 'POST', path: '/upload', body })
      statuses.push(`h1 ${listener} ${r.status} ${r.text}`)
    }
    const r = await h2(t, proxy.url('tls'), { ':method': 'POST', ':path': '/upload' }, body)
    statuses.push(`h2 ${r.status} ${r.body.toString()}`)
    // As curl sends a large body: Expect: 100-continue, the body after the 100.
    statuses.push(`expect ${await expectUpload(proxy.port('plain'), body)}`)
  }
  t.same(statuses, Array.from({ length: 4 }, () => ['h1 plain 413 too big!', 'h1 tls 413 too big!', 'h2 413 too big!', 'expect 413']).flat(),
    'every upload gets the origin\'s 413')
  t.equal(answered, 16)
  t.equal(proxy.app.status()[0]!.shards[0]!.servers[0]!.failures, 0, 'none of it counted against the origin')
}

t.test('a malformed answer during an h2 upload: 502, then RST_STREAM(NO_ERROR), not a client left sending', async (t) => {
  const origin = await startRawServer(t, (_req, socket) => {
    socket.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: gzip\r\n\r\nok')
    return false
  }, { answerBeforeBody: true })
  const cert = testCertificate(t)
  const proxy = await startProxy(t, `${tlsAndPlainListeners(cert)}
routes: [{ backend: raw }]
backends: { raw: { retries: { attempts: 0 }, servers: [{ url: "${origin.url}" }] } }
`)
  const session = await h2Session(t, proxy.url('tls'))
  const stream = session.request({ ':path': '/upload', ':method': 'POST', 'content-length': '1048576' }, { endStream: false })
  stream.on('error', () => {})
  stream.write(Buffer.alloc(64 * 1024, 0x78))
  stream.resume()
  const head = await within(new Promise<Record<string, unknown>>((resolve) => stream.once('response', resolve)), 10_000, 'the h2 answer')
  t.equal(head[':status'], 502)
  await within(h2StreamClosed(stream), 10_000, 'RST_STREAM(NO_ERROR): the stream closes')
  t.equal(stream.rstCode, 0, 'NO_ERROR')
  session.close()
})
