// A request body of unknown length (HTTP/1.1 chunked, HTTP/2 without
// Content-Length) reaches the origin with a Content-Length when it fits in
// retries.bufferBodyBytes, as nginx sends it: an origin that ignores chunked
// framing on a GET would read the body as its next request (the TE.0
// desync). Past that size it streams chunked, or a GET or HEAD gets a 413.
// An HTTP/2 backend frames any body itself: a stream there flows both ways at
// once (gRPC's bidirectional calls), never held back.
import { once } from 'node:events'
import http2 from 'node:http2'
import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import { testCertificate } from '../helpers/certs.js'
import { h2Request, h2Session, rawRequest, tlsAndPlainListeners } from '../helpers/e2e.js'
import { startOrigin } from '../helpers/origin.js'
import { startProxy } from '../helpers/proxy.js'

const CAP = 1024

async function setup (t: Test, retries = '') {
  const o = await startOrigin(t)
  const cert = testCertificate(t)
  const p = await startProxy(t, `${tlsAndPlainListeners(cert)}
routes: [{ backend: o }]
backends: { o: { servers: [{ url: "${o.url}" }], retries: { bufferBodyBytes: ${CAP}${retries} } } }
`)
  return { o, p }
}

/** One chunked HTTP/1.1 request of `chunks`, read to the close. */
function chunked (port: number, method: string, chunks: readonly string[]) {
  const body = chunks.map((c) => `${Buffer.byteLength(c).toString(16)}\r\n${c}\r\n`).join('') + '0\r\n\r\n'
  return rawRequest(port, `${method} /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n${body}`)
}

t.test('HTTP/1.1 chunked bodies within bufferBodyBytes go upstream with a Content-Length, whatever the method', async (t) => {
  const { o, p } = await setup(t)
  for (const method of ['POST', 'PUT', 'GET', 'DELETE']) {
    const r = await chunked(p.port('plain'), method, ['hello ', 'world'])
    t.equal(r.status, 200, method)
    const seen = o.requests.at(-1)!
    t.equal(seen.method, method)
    t.equal(seen.headers['content-length'], '11', `${method}: framed with a Content-Length`)
    t.equal(seen.headers['transfer-encoding'], undefined, `${method}: not chunked`)
    t.equal(seen.body.toString(), 'hello world')
  }
  // Exactly the cap still fits; an empty chunked body is an empty body.
  const full = 'x'.repeat(CAP)
  t.equal((await chunked(p.port('plain'), 'POST', [full.slice(0, 100), full.slice(100)])).status, 200)
  t.equal(o.requests.at(-1)!.headers['content-length'], String(CAP))
  t.equal((await chunked(p.port('plain'), 'POST', [])).status, 200)
  t.equal(o.requests.at(-1)!.headers['content-length'], '0')
  t.equal(o.requests.at(-1)!.headers['transfer-encoding'], undefined)
})

t.test('past bufferBodyBytes: a POST streams chunked, every byte; a GET, HEAD, DELETE, OPTIONS or TRACE is refused with 413 and nothing is forwarded', async (t) => {
  const { o, p } = await setup(t, ', attempts: 0')
  const big = ['a'.repeat(700), 'b'.repeat(700), 'c'.repeat(700)]
  const post = await chunked(p.port('plain'), 'POST', big)
  t.equal(post.status, 200)
  const seen = o.requests.at(-1)!
  t.equal(seen.headers['transfer-encoding'], 'chunked', 'streamed, its length unknown')
  t.equal(seen.headers['content-length'], undefined)
  t.equal(seen.body.toString(), big.join(''), 'the part read before the cap, then the rest, in order')

  const before = o.requests.length
  for (const method of ['GET', 'HEAD', 'DELETE', 'OPTIONS', 'TRACE']) {
    const r = await chunked(p.port('plain'), method, big)
    t.equal(r.status, 413, method)
    t.equal(r.headers['x-switchyard-error'], 'LB_ERR_BODY_TOO_LARGE')
    t.equal(r.headers.connection, 'close', 'the rest of the body is never read as a request')
  }
  t.equal(o.requests.length, before, 'nothing reached the origin')
})

t.test('HTTP/2 bodies without Content-Length: framed upstream when they fit, 413 for a long GET, nothing sent for a reset upload', async (t) => {
  const { o, p } = await setup(t)
  const session = await h2Session(t, p.url('tls'))
  const post = await h2Request(session, { ':method': 'POST', ':path': '/up' }, 'from h2')
  t.equal(post.status, 200)
  t.equal(o.requests.at(-1)!.headers['content-length'], '7')
  t.equal(o.requests.at(-1)!.headers['transfer-encoding'], undefined)
  t.equal(o.requests.at(-1)!.body.toString(), 'from h2')

  // A GET whose HEADERS did not end the stream, then an empty DATA frame that does: no body at all upstream.
  const empty = await h2Request(session, { ':method': 'GET', ':path': '/empty' }, '')
  t.equal(empty.status, 200)
  t.equal(o.requests.at(-1)!.url, '/empty')
  t.equal(o.requests.at(-1)!.headers['content-length'], undefined)
  t.equal(o.requests.at(-1)!.headers['transfer-encoding'], undefined)

  const before = o.requests.length
  const long = await h2Request(session, { ':method': 'GET', ':path': '/long' }, Buffer.alloc(CAP * 3, 'g'))
  t.equal(long.status, 413)
  t.equal(long.headers['x-switchyard-error'], 'LB_ERR_BODY_TOO_LARGE')

  // An upload reset half-way: the origin never sees a truncated body as a whole one.
  const cut = session.request({ ':method': 'POST', ':path': '/cut' }, { endStream: false })
  cut.on('error', () => {})
  cut.write('half of it')
  await new Promise((resolve) => setTimeout(resolve, 100))
  // destroy(), not close(): Node's close() sends END_STREAM before its RST_STREAM, which completes the body.
  cut.destroy()
  await once(cut, 'close')
  const after = await h2Request(session, { ':method': 'POST', ':path': '/after' }, 'ok')
  t.equal(after.status, 200, 'the session still serves')
  t.same(o.requests.slice(before).map((r) => r.url), ['/after'], 'neither the long GET nor the reset upload reached the origin')
})

t.test('to an h2c backend a body of unknown length is not held: request and response flow both ways at once', async (t) => {
  // The origin echoes each DATA frame as it comes; the client sends its next
  // one only after the echo of the last, and ends the stream at the third.
  const origin = http2.createServer()
  origin.on('stream', (stream) => {
    stream.respond({ ':status': 200, 'content-type': 'application/octet-stream' })
    stream.on('data', (c: Buffer) => { stream.write(c) })
    stream.on('end', () => { stream.end() })
  })
  origin.on('sessionError', () => {})
  await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => { origin.close(() => resolve()) }))
  const cert = testCertificate(t)
  const p = await startProxy(t, `${tlsAndPlainListeners(cert)}
routes: [{ backend: o }]
backends: { o: { protocol: h2c, servers: [{ url: "http://127.0.0.1:${(origin.address() as AddressInfo).port}" }] } }
`)
  const session = await h2Session(t, p.url('tls'))
  const stream = session.request({ ':method': 'POST', ':path': '/duplex' }, { endStream: false })
  stream.setEncoding('utf8')
  const echoes: string[] = []
  let pending = ''
  const echoed = (want: string) => new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error(`no echo of ${want} in 5 s (held back?)`)) }, 5000)
    const check = (): void => {
      if (!pending.includes(want)) return
      pending = pending.slice(pending.indexOf(want) + want.length)
      echoes.push(want)
      clearTimeout(timer)
      stream.off('data', onData)
      resolve()
    }
    const onData = (d: string): void => { pending += d; check() }
    stream.on('data', onData)
    check()
  })
  for (const msg of ['one;', 'two;']) {
    stream.write(msg)
    await echoed(msg)
  }
  stream.end('three;')
  await echoed('three;')
  await once(stream, 'close')
  t.same(echoes, ['one;', 'two;', 'three;'], 'each message echoed before the next was sent')
})
