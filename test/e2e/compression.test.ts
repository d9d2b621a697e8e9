// Compression end to end: a real proxy, a real origin, real clients (node's
// http and http2 decoding with zlib, and curl --compressed). Negotiation,
// the exclusions, Vary, HEAD, backpressure on a large body, and the cache
// storing one compressed variant per coding.
import { execFile } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import http from 'node:http'
import { existsSync } from 'node:fs'
import { promisify } from 'node:util'
import zlib from 'node:zlib'
import t from 'tap'
import { testCertificate } from '../helpers/certs.js'
import { h1, h2Request, h2Session, tlsAndPlainListeners, type Reply } from '../helpers/e2e.js'
import { startOrigin, type SeenRequest } from '../helpers/origin.js'
import type { ServerResponse } from 'node:http'
import { startProxy } from '../helpers/proxy.js'
import { zstdAvailable } from '../../src/config/validate/compression.js'

const run = promisify(execFile)

const HTML = Buffer.from('<!doctype html><title>t</title>' + '<p>Switchyard compresses this paragraph. '.repeat(400))
const SMALL = Buffer.from('<p>tiny</p>')
const BIG = Buffer.alloc(4 * 1024 * 1024, 'abcdefghijklmnopqrstuvwxyz0123456789 switchyard ')
/** Base64 of random bytes: text that gzip shrinks only by a quarter, so compressed output fills buffers. */
const NOISE = Buffer.from(randomBytes(768 * 1024).toString('base64'))
const NOISE_TIMES = 96

/** The slow-client test's origin side: bytes written, and whether it finished. */
const stream = { written: 0, done: false }
/** Ends the held SSE response. */
let endSse: (() => void) | undefined
/** Ends the held plain-text stream, by coding asked for. */
const endStream = new Map<string, () => void>()
/** The revalidation test's origin: how it last answered. */
let revalidated = 0

/** The origin's answers by path; every request is recorded. */
function origin (seen: SeenRequest, res: ServerResponse): void {
  const path = seen.url.split('?')[0]
  const send = (status: number, headers: Record<string, string>, body: Buffer): void => {
    res.writeHead(status, { 'content-length': String(body.length), ...headers })
    res.end(seen.method === 'HEAD' ? undefined : body)
  }
  switch (path) {
    case '/html': return send(200, { 'content-type': 'text/html; charset=utf-8', etag: '"v1"' }, HTML)
    case '/cached': return send(200, { 'content-type': 'text/html', 'cache-control': 'max-age=60', etag: '"c1"', vary: 'Origin' }, HTML)
    case '/small': return send(200, { 'content-type': 'text/html' }, SMALL)
    case '/png': return send(200, { 'content-type': 'image/png' }, HTML)
    case '/no-transform': return send(200, { 'content-type': 'text/html', 'cache-control': 'no-transform' }, HTML)
    case '/encoded': {
      const gz = zlib.gzipSync(HTML)
      return send(200, { 'content-type': 'text/html', 'content-encoding': 'gzip' }, gz)
    }
    case '/json-chunked': {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.write('[')
      res.end('"x"]')
      return
    }
    case '/big': return send(200, { 'content-type': 'text/plain' }, BIG)
    case '/sse': {
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      res.end('data: hello\n\n')
      return
    }
    case '/sse/held': {
      // One event, then the stream stays open until the client has decoded it.
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      res.write('data: first\n\n')
      endSse = () => res.end('data: last\n\n')
      return
    }
    case '/stream/held': {
      // A slow stream (not an event stream): its first line, then nothing until the client has decoded it.
      res.writeHead(200, { 'content-type': 'text/plain' })
      res.write('progress: 1 of 2\n')
      endStream.set(String(seen.headers['accept-encoding']), () => res.end('progress: 2 of 2\n'))
      return
    }
    case '/noise': {
      res.writeHead(200, { 'content-type': 'text/plain' })
      let n = 0
      const more = (): void => {
        while (n < NOISE_TIMES) {
          n++
          stream.written += NOISE.length
          if (!res.write(NOISE)) return void res.once('drain', more)
        }
        stream.done = true
        res.end()
      }
      more()
      return
    }
    case '/reval': {
      // Stored, but revalidated on every use (no-cache): a weakly matching If-None-Match gets 304.
      const inm = seen.headers['if-none-match']
      if (typeof inm === 'string' && inm.replace(/^W\//, '') === '"r1"') {
        revalidated++
        res.writeHead(304, { etag: '"r1"', 'cache-control': 'no-cache' })
        return void res.end()
      }
      return send(200, { 'content-type': 'text/html', 'cache-control': 'no-cache', etag: '"r1"' }, HTML)
    }
    case '/digest-trailers': {
      // A streaming origin's digests come after the body, as trailers (RFC 9530 §3).
      res.writeHead(200, { 'content-type': 'text/html', trailer: 'content-digest, content-md5, x-checked' })
      res.addTrailers({
        'content-digest': `sha-256=:${createHash('sha256').update(HTML).digest('base64')}:`,
        'content-md5': createHash('md5').update(HTML).digest('base64'),
        'x-checked': 'yes'
      })
      return void res.end(HTML)
    }
    case '/purged': return send(200, { 'content-type': 'text/html', 'cache-control': 'max-age=60' }, HTML)
    default: return send(404, { 'content-type': 'text/plain' }, Buffer.from('no'))
  }
}

function decode (r: Pick<Reply, 'headers' | 'body'>): Buffer {
  const ce = r.headers['content-encoding']
  if (ce === 'gzip') return zlib.gunzipSync(r.body)
  if (ce === 'br') return zlib.brotliDecompressSync(r.body)
  if (ce === undefined) return r.body
  throw new Error(`unexpected content-encoding ${String(ce)}`)
}

const cert = testCertificate(t)
const o = await startOrigin(t, origin)
const proxy = await startProxy(t, `${tlsAndPlainListeners(cert)}
cache: { purgeFrom: [127.0.0.1/32] }
routes:
  - name: cached
    match: { pathPrefix: /cached }
    backend: o
    compression: true
  - name: cached-too
    match: { pathPrefix: /reval }
    backend: o
    compression: true
  - name: purge
    match: { pathPrefix: /purged }
    backend: o
    compression: true
  - name: plain
    match: { pathPrefix: /off }
    backend: o
    cache: false
  - name: sse
    match: { pathPrefix: /sse }
    backend: o
    cache: false
    compression: { types: [text/event-stream] }
  - name: main
    backend: o
    cache: false
    compression: { algorithms: [br, gzip], minBytes: 1KiB }
backends:
  o: { servers: [{ url: "${o.url}" }] }
`)
const base = proxy.url('plain')

t.test('negotiation picks by the client\'s q, then the route\'s order; bodies decode to the original', async (t) => {
  const cases: Array<[string | undefined, string | undefined]> = [
    ['gzip', 'gzip'],
    ['br', 'br'],
    ['gzip, deflate, br', 'br'],
    ['gzip;q=1, br;q=0.5', 'gzip'],
    ['br;q=0, *', 'gzip'],
    ['identity', undefined],
    ['*;q=0', undefined],
    [undefined, undefined],
    ['GZIP ; Q=0.8', 'gzip']
  ]
  for (const [ae, want] of cases) {
    const r = await h1(base, { path: '/html', headers: ae === undefined ? {} : { 'accept-encoding': ae } })
    t.equal(r.status, 200)
    t.equal(r.headers['content-encoding'], want, `Accept-Encoding ${String(ae)} → ${String(want)}`)
    t.equal(r.headers.vary, 'Accept-Encoding', 'Vary on every answer the route could compress')
    t.ok(decode(r).equals(HTML), 'decodes to the original')
    if (want !== undefined) {
      t.equal(r.headers['content-length'], undefined, 'no Content-Length when compressed')
      t.equal(r.headers.etag, 'W/"v1"', 'the strong ETag is weakened')
      t.ok(r.body.length < HTML.length / 4, 'smaller')
    } else {
      t.equal(r.headers.etag, '"v1"', 'the identity answer keeps its ETag')
      t.equal(r.headers['content-length'], String(HTML.length))
    }
  }
  // The origin was asked for the negotiated coding only.
  const last = o.requests.filter((x) => x.url === '/html')
  t.equal(last[0]!.headers['accept-encoding'], 'gzip')
  t.equal(last[2]!.headers['accept-encoding'], 'br', 'the client\'s list became the negotiated coding')
  t.equal(last[5]!.headers['accept-encoding'], undefined, 'identity: none')
})

t.test('never compressed: small, unlisted type, no-transform, already encoded, Range', async (t) => {
  const ae = { 'accept-encoding': 'gzip, br' }
  const small = await h1(base, { path: '/small', headers: ae })
  t.equal(small.headers['content-encoding'], undefined, 'under minBytes')
  t.equal(small.headers.vary, undefined, 'no Vary: no client would get another answer')
  t.ok(small.body.equals(SMALL))
  const png = await h1(base, { path: '/png', headers: ae })
  t.equal(png.headers['content-encoding'], undefined, 'type not listed')
  const nt = await h1(base, { path: '/no-transform', headers: ae })
  t.equal(nt.headers['content-encoding'], undefined, 'no-transform')
  t.ok(nt.body.equals(HTML))
  const enc = await h1(base, { path: '/encoded', headers: ae })
  t.equal(enc.headers['content-encoding'], 'gzip', 'already encoded: passed as it is')
  t.ok(zlib.gunzipSync(enc.body).equals(HTML), 'not compressed twice')
  t.equal(enc.headers.vary, 'Accept-Encoding')
  const ranged = await h1(base, { path: '/html', headers: { ...ae, range: 'bytes=0-9' } })
  t.equal(ranged.headers['content-encoding'], undefined, 'a Range request is never compressed')
  const off = await h1(base, { path: '/off/html', headers: ae })
  t.equal(off.headers['content-encoding'], undefined, 'a route without compression')
  t.equal(off.headers.vary, undefined)
  t.equal(o.requests.at(-1)!.headers['accept-encoding'], 'gzip, br', 'and its Accept-Encoding goes upstream untouched')
})

t.test('unknown length is compressed; HEAD gets the GET\'s fields without a body', async (t) => {
  const r = await h1(base, { path: '/json-chunked', headers: { 'accept-encoding': 'gzip' } })
  t.equal(r.headers['content-encoding'], 'gzip')
  t.equal(decode(r).toString(), '["x"]')
  const head = await h1(base, { method: 'HEAD', path: '/html', headers: { 'accept-encoding': 'br' } })
  t.equal(head.headers['content-encoding'], 'br')
  t.equal(head.headers['content-length'], undefined)
  t.equal(head.headers.etag, 'W/"v1"')
  t.equal(head.headers.vary, 'Accept-Encoding')
  t.equal(head.body.length, 0)
})

t.test('a compressed answer drops the trailers that digest the origin\'s bytes, keeps the others', async (t) => {
  const gz = await h1(base, { path: '/digest-trailers', headers: { 'accept-encoding': 'gzip' } })
  t.equal(gz.headers['content-encoding'], 'gzip')
  t.ok(decode(gz).equals(HTML))
  t.equal(gz.trailers['content-digest'], undefined, 'a digest of the identity bytes would fail the gzip ones')
  t.equal(gz.trailers['content-md5'], undefined)
  t.equal(gz.trailers['x-checked'], 'yes')
  t.equal(gz.headers.trailer, 'x-checked', 'the Trailer field announces only the trailers that come')
  const identity = await h1(base, { path: '/digest-trailers' })
  t.equal(identity.headers['content-encoding'], undefined)
  t.equal(identity.trailers['content-digest'], `sha-256=:${createHash('sha256').update(HTML).digest('base64')}:`, 'uncompressed: passed as sent')
})

t.test('a large body streams through with backpressure and decodes intact', async (t) => {
  const r = await h1(base, { path: '/big', headers: { 'accept-encoding': 'gzip' } })
  t.equal(r.headers['content-encoding'], 'gzip')
  t.ok(zlib.gunzipSync(r.body).equals(BIG))
})

t.test('text/event-stream listed by name: flushed per chunk', async (t) => {
  const r = await h1(base, { path: '/sse', headers: { 'accept-encoding': 'gzip' } })
  t.equal(r.headers['content-encoding'], 'gzip')
  t.equal(decode(r).toString(), 'data: hello\n\n')
  const other = await h1(base, { path: '/html-is-not-here', headers: { 'accept-encoding': 'gzip' } })
  t.equal(other.status, 404)
})

t.test('HTTP/2 clients', async (t) => {
  const session = await h2Session(t, proxy.url('tls'))
  const r = await h2Request(session, { ':path': '/html', 'accept-encoding': 'br' })
  t.equal(r.status, 200)
  t.equal(r.headers['content-encoding'], 'br')
  t.equal(r.headers.vary, 'Accept-Encoding')
  t.ok(decode(r).equals(HTML))
  const big = await h2Request(session, { ':path': '/big', 'accept-encoding': 'gzip' })
  t.ok(zlib.gunzipSync(big.body).equals(BIG), 'a large body over h2')
  session.close()
})

t.test('the cache stores one compressed variant per coding', async (t) => {
  const before = o.requests.filter((x) => x.url === '/cached').length
  const gz1 = await h1(base, { path: '/cached', headers: { 'accept-encoding': 'gzip, deflate' } })
  const br1 = await h1(base, { path: '/cached', headers: { 'accept-encoding': 'br' } })
  const gz2 = await h1(base, { path: '/cached', headers: { 'accept-encoding': 'deflate, gzip;q=0.9' } })
  const id1 = await h1(base, { path: '/cached' })
  const id2 = await h1(base, { path: '/cached', headers: { 'accept-encoding': 'identity' } })
  const br2 = await h1(base, { path: '/cached', headers: { 'accept-encoding': 'gzip;q=0.5, br' } })
  t.equal(gz1.headers['content-encoding'], 'gzip')
  t.equal(gz2.headers['content-encoding'], 'gzip')
  t.equal(br1.headers['content-encoding'], 'br')
  t.equal(br2.headers['content-encoding'], 'br')
  t.equal(id1.headers['content-encoding'], undefined)
  for (const r of [gz1, br1, gz2, id1, id2, br2]) {
    t.ok(decode(r).equals(HTML), 'decodes to the original')
    t.equal(r.headers.vary, 'Origin, Accept-Encoding', 'Vary merged with the origin\'s')
  }
  t.match(gz2.headers['cache-status'], /hit/, 'another browser string with the same coding is a hit')
  t.match(br2.headers['cache-status'], /hit/)
  t.match(id2.headers['cache-status'], /hit/)
  t.equal(gz2.headers['content-length'], String(gz2.body.length), 'a hit is framed by its stored length')
  t.equal(o.requests.filter((x) => x.url === '/cached').length - before, 3, 'one origin fetch per coding')
  // A conditional with the weak validator of the compressed variant: 304 from the cache.
  const cond = await h1(base, { path: '/cached', headers: { 'accept-encoding': 'gzip', 'if-none-match': 'W/"c1"' } })
  t.equal(cond.status, 304)
  t.equal(cond.headers.etag, 'W/"c1"')
  // Not its Content-Encoding (RFC 9110 §15.4.5): the client's copy the weak tag matched may be the
  // identity one, and a cache that freshens it with the 304's fields would mislabel its bytes.
  t.equal(cond.headers['content-encoding'], undefined, 'a 304 names no content coding')
  t.equal(cond.headers.vary, 'Origin, Accept-Encoding', 'but keeps Vary, which a 304 must send')
  // HEAD from the stored variant: the same fields, no body.
  const head = await h1(base, { method: 'HEAD', path: '/cached', headers: { 'accept-encoding': 'br' } })
  t.equal(head.headers['content-encoding'], 'br')
  t.equal(head.body.length, 0)
  t.equal(o.requests.filter((x) => x.url === '/cached').length - before, 3, 'still no more origin fetches')
})

t.test('a 304 from the origin freshens the stored compressed variant; the origin is asked with its weak validator', async (t) => {
  const first = await h1(base, { path: '/reval', headers: { 'accept-encoding': 'gzip' } })
  t.equal(first.headers['content-encoding'], 'gzip')
  const again = await h1(base, { path: '/reval', headers: { 'accept-encoding': 'gzip' } })
  t.equal(revalidated, 1, 'revalidated once, with 304')
  const asked = o.requests.filter((x) => x.url === '/reval').at(-1)!
  t.equal(asked.headers['if-none-match'], 'W/"r1"', 'the stored (weak) validator')
  t.equal(asked.headers['accept-encoding'], 'gzip', 'for the variant being revalidated')
  t.equal(again.status, 200)
  t.equal(again.headers['content-encoding'], 'gzip')
  t.equal(again.headers.etag, 'W/"r1"', 'the 304\'s strong ETag does not replace the compressed variant\'s weak one')
  t.match(again.headers['cache-status'], /fwd=stale; fwd-status=304/)
  t.ok(decode(again).equals(HTML), 'the stored compressed body, decoded')
})

t.test('PURGE removes every coding\'s variant of the URL', async (t) => {
  const count = (): number => o.requests.filter((x) => x.url === '/purged').length
  await h1(base, { path: '/purged', headers: { 'accept-encoding': 'gzip' } })
  await h1(base, { path: '/purged', headers: { 'accept-encoding': 'br' } })
  await h1(base, { path: '/purged' })
  t.equal(count(), 3)
  const purge = await h1(base, { method: 'PURGE', path: '/purged' })
  t.equal(purge.status, 200)
  t.equal(purge.text, 'purged 3 entries\n')
  const gz = await h1(base, { path: '/purged', headers: { 'accept-encoding': 'gzip' } })
  await h1(base, { path: '/purged', headers: { 'accept-encoding': 'br' } })
  t.equal(count(), 5, 'both fetched again')
  t.ok(decode(gz).equals(HTML))
})

t.test('a Range request after a stored gzip variant: identity from the origin, never compressed bytes', async (t) => {
  const before = o.requests.filter((x) => x.url === '/cached/r').length
  await h1(base, { path: '/cached/r', headers: { 'accept-encoding': 'gzip' } })
  const r = await h1(base, { path: '/cached/r', headers: { 'accept-encoding': 'gzip', range: 'bytes=0-9' } })
  t.equal(r.headers['content-encoding'], undefined)
  t.equal(o.requests.filter((x) => x.url === '/cached/r').length - before, 2, 'the identity variant is fetched')
  t.equal(o.requests.filter((x) => x.url === '/cached/r').at(-1)!.headers['accept-encoding'], undefined, 'and asked for as identity')
})

t.test('Server-Sent Events listed by name: each event is decodable before the stream ends', async (t) => {
  await new Promise<void>((resolve, reject) => {
    const req = http.get(`${base}/sse/held`, { headers: { 'accept-encoding': 'gzip' }, agent: false }, (res) => {
      t.equal(res.headers['content-encoding'], 'gzip')
      const gunzip = zlib.createGunzip()
      res.pipe(gunzip)
      let text = ''
      gunzip.on('data', (c: Buffer) => {
        text += c.toString()
        // Only a flush per chunk gets the first event here while the origin still holds the stream.
        if (text === 'data: first\n\n') endSse!()
      })
      gunzip.on('end', () => {
        t.equal(text, 'data: first\n\ndata: last\n\n')
        resolve()
      })
      gunzip.on('error', reject)
    })
    req.on('error', reject)
  })
})

t.test('a slow stream of any type reaches the client while the origin still holds it (flushed within FLUSH_AFTER_MS)', async (t) => {
  for (const coding of ['gzip', 'br']) {
    await new Promise<void>((resolve, reject) => {
      const req = http.get(`${base}/stream/held`, { headers: { 'accept-encoding': coding }, agent: false }, (res) => {
        t.equal(res.headers['content-encoding'], coding)
        const decoder = coding === 'gzip' ? zlib.createGunzip() : zlib.createBrotliDecompress()
        res.pipe(decoder)
        let text = ''
        decoder.on('data', (c: Buffer) => {
          text += c.toString()
          // The origin sends the rest only once the first line has been decoded here.
          if (text === 'progress: 1 of 2\n') endStream.get(coding)!()
        })
        decoder.on('end', () => {
          t.equal(text, 'progress: 1 of 2\nprogress: 2 of 2\n', `${coding}: both lines, in order`)
          resolve()
        })
        decoder.on('error', reject)
      })
      req.on('error', reject)
    })
  }
})

t.test('a client that stops reading stops the origin: the compressor does not buffer the body', async (t) => {
  await new Promise<void>((resolve, reject) => {
    const req = http.get(`${base}/noise`, { headers: { 'accept-encoding': 'gzip' }, agent: false }, (res) => {
      res.pause()
      // Wait until the origin stops making progress, then look at how far it got.
      let last = -1
      const poll = setInterval(() => {
        if (stream.written !== last && !stream.done) {
          last = stream.written
          return
        }
        clearInterval(poll)
        const total = NOISE.length * NOISE_TIMES
        t.notOk(stream.done, 'the origin is held back')
        t.ok(stream.written < total / 2, `the origin wrote ${stream.written} of ${total} bytes before the client read any`)
        const gunzip = zlib.createGunzip()
        let size = 0
        gunzip.on('data', (c: Buffer) => { size += c.length })
        gunzip.on('end', () => {
          t.equal(size, total, 'everything arrives once the client reads')
          resolve()
        })
        gunzip.on('error', reject)
        res.pipe(gunzip)
      }, 200)
      t.teardown(() => clearInterval(poll))
    })
    req.on('error', reject)
  })
})

t.test('curl --compressed', { skip: existsSync('/usr/bin/curl') ? false : 'no curl' }, async (t) => {
  const { stdout } = await run('/usr/bin/curl', ['-sS', '--compressed', '-D', '-', `${base}/html`], { encoding: 'buffer', maxBuffer: 1 << 24 })
  const text = stdout.toString('latin1')
  const split = text.indexOf('\r\n\r\n')
  const head = text.slice(0, split).toLowerCase()
  t.match(head, /content-encoding: (br|gzip)/, 'curl asked for and got a compressed answer')
  t.ok(stdout.subarray(split + 4).equals(HTML), 'curl decoded it to the original')
})

t.test('zstd where node:zlib has it', { skip: zstdAvailable() ? false : `node:zlib has no zstd on ${process.version}` }, async (t) => {
  const z = await startProxy(t, `listeners: [{ name: web, bind: "127.0.0.1:0" }]
routes:
  - { backend: o, compression: { algorithms: [zstd, gzip] } }
backends:
  o: { servers: [{ url: "${o.url}" }] }
`)
  const r = await h1(z.url('web'), { path: '/html', headers: { 'accept-encoding': 'gzip, zstd' } })
  t.equal(r.headers['content-encoding'], 'zstd')
  const decompress = (zlib as unknown as { zstdDecompressSync: (b: Buffer) => Buffer }).zstdDecompressSync
  t.ok(decompress(r.body).equals(HTML))
})
