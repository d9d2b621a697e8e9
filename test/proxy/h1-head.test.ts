import http from 'node:http'
import https from 'node:https'
import tls from 'node:tls'
import net from 'node:net'
import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import { testCertificatePair } from '../helpers/certs.js'
import { h1ExtraLines, h1FieldStart, h1Head, h1HeadLines, ONE_WRITE_MAX, RAW_HEADS, writeRawBody, writeRawHead, writeRawResponse } from '../../src/proxy/h1-head.js'

const DATE = 'Sun, 06 Dec 2026 10:00:00 GMT'
const FIELDS = ['Content-Type', 'text/plain', 'content-length', '5', 'date', DATE, 'etag', '"v1"', 'age', '3']
/** What writeHead writes for FIELDS on the test server (keepAliveTimeout 7 s): the head's lines, its keep-alive end, whole answers. */
const ONE = `HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\ncontent-length: 5\r\ndate: ${DATE}\r\netag: "v1"\r\nage: 3\r\n`
const KA = 'Connection: keep-alive\r\nKeep-Alive: timeout=7\r\n\r\n'
const FULL = `${ONE}${KA}hello`
const EXTRA = `${ONE}x-request-id: r-1\r\n${KA}hello`
/** A request for `path` on a keep-alive connection. */
const ask = (path: string, method = 'GET'): string => `${method} ${path} HTTP/1.1\r\nHost: x\r\n\r\n`

t.test('h1HeadLines: the plain case as text, everything writeHead must decide as null', async (t) => {
  t.equal(h1HeadLines(200, FIELDS),
    `HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\ncontent-length: 5\r\ndate: ${DATE}\r\netag: "v1"\r\nage: 3\r\n`)
  t.equal(h1HeadLines(404, ['content-length', '0', 'date', DATE]), `HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\ndate: ${DATE}\r\n`)
  t.equal(h1HeadLines(204, ['content-length', '0', 'date', DATE]), null, 'no body: writeHead decides')
  t.equal(h1HeadLines(304, ['content-length', '0', 'date', DATE]), null)
  t.equal(h1HeadLines(103, ['content-length', '0', 'date', DATE]), null)
  t.equal(h1HeadLines(299, ['content-length', '0', 'date', DATE]), null, 'no standard reason phrase')
  t.equal(h1HeadLines(200, ['date', DATE]), null, 'no Content-Length')
  t.equal(h1HeadLines(200, ['content-length', '5']), null, 'no Date: Node would add one per request')
  for (const special of ['Connection', 'transfer-encoding', 'Trailer', 'expect', 'keep-alive', 'content-disposition']) {
    t.equal(h1HeadLines(200, ['content-length', '5', 'date', DATE, special, 'x']), null, special)
  }
  t.equal(h1HeadLines(200, ['content-length', '5', 'date', DATE, 'x-bad', 'a\r\nb']), null, 'a value writeHead refuses')
  t.equal(h1HeadLines(200, ['content-length', '5', 'date', DATE, 'bad name', 'a']), null, 'a name writeHead refuses')
  t.equal(h1ExtraLines(['x-request-id', 'abc', 'ratelimit-remaining', '9']), 'x-request-id: abc\r\nratelimit-remaining: 9\r\n')
  t.equal(h1ExtraLines(['x-request-id', 'a\nb']), null)
  t.equal(h1ExtraLines(['content-length', '1']), null)
})

t.test('RAW_HEADS: this Node has the fields a raw head relies on', async (t) => {
  t.equal(RAW_HEADS, true)
})

t.test('h1FieldStart: a field line\'s start for a name a raw head may carry, none for one the head says or writeHead treats specially', async (t) => {
  t.equal(h1FieldStart('x-request-id'), 'x-request-id: ')
  for (const name of ['content-length', 'date', 'connection', 'transfer-encoding', 'keep-alive']) t.equal(h1FieldStart(name), undefined, name)
})

/**
 * A server answering `/plain` with writeHead, `/raw` with writeRawHead and
 * `/one` with writeRawResponse (both falling back to writeHead, as the proxy
 * does); `writes` has the size of each socket.write call per connection.
 */
async function server (t: Test, body = Buffer.from('hello'), secure = false): Promise<{ port: number, raw: boolean[], writes: number[][] }> {
  const raw: boolean[] = []
  const writes: number[][] = []
  const pair = testCertificatePair()
  const handler: http.RequestListener = (req, res) => {
    const extra = req.url?.includes('extra') === true ? ['x-request-id', 'r-1'] : undefined
    const fields = FIELDS.map((f) => f === '5' ? String(body.length) : f)
    let done = false
    if (req.url?.startsWith('/one') === true) {
      // `bytes`: the head's lines handed over as bytes too, as a cache hit's are.
      const lines = h1HeadLines(200, fields)!
      done = writeRawResponse(res, 200, lines, extra === undefined ? '' : h1ExtraLines(extra)!,
        req.method === 'HEAD' ? undefined : body, req.url.includes('bytes') ? Buffer.from(lines, 'latin1') : undefined)
      raw.push(done)
      if (done) return
    }
    if (req.url?.startsWith('/body') === true) {
      // As the proxy forwards an origin's answer: the head, then the body as it arrives, then the end.
      done = writeRawHead(res, 200, h1HeadLines(200, fields)!, extra === undefined ? '' : h1ExtraLines(extra)!)
      raw.push(done)
      if (done) {
        if (req.method !== 'HEAD' && !writeRawBody(res, body)) res.write(body)
        res.end()
        return
      }
    }
    if (req.url?.startsWith('/raw') === true) {
      const lines = h1HeadLines(200, FIELDS)!
      done = writeRawHead(res, 200, lines, extra === undefined ? '' : h1ExtraLines(extra)!)
      raw.push(done)
    }
    if (!done) res.writeHead(200, extra === undefined ? fields : fields.concat(extra))
    if (req.method === 'HEAD') res.end()
    else res.end(body)
  }
  const s = secure
    ? https.createServer({ keepAliveTimeout: 7000, cert: pair.certPem, key: pair.keyPem }, handler)
    : http.createServer({ keepAliveTimeout: 7000 }, handler)
  s.on(secure ? 'secureConnection' : 'connection', (socket: net.Socket) => {
    const sizes: number[] = []
    writes.push(sizes)
    const write = socket.write.bind(socket) as (chunk: unknown, ...rest: unknown[]) => boolean
    socket.write = ((chunk: unknown, ...rest: unknown[]) => {
      sizes.push(typeof chunk === 'string' ? chunk.length : (chunk as Buffer).length)
      return write(chunk, ...rest)
    }) as typeof socket.write
  })
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { s.closeAllConnections(); s.close() })
  return { port: (s.address() as AddressInfo).port, raw, writes }
}

/** Write `text` and read until the server closes. */
function exchange (port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = net.connect(port, '127.0.0.1', () => c.end(text))
    const got: Buffer[] = []
    c.on('data', (d: Buffer) => got.push(d))
    c.on('error', reject)
    c.on('close', () => resolve(Buffer.concat(got).toString('latin1')))
    c.setTimeout(5000, () => c.destroy(new Error('no close in 5 s')))
  })
}

t.test('writeRawHead: the bytes writeHead would send, pipelined, HEAD, extras; falls back where writeHead decides', async (t) => {
  const { port, raw } = await server(t)
  const get = (path: string, more = ''): string => `GET ${path} HTTP/1.1\r\nHost: x\r\n${more}\r\n`
  const out = await exchange(port, get('/plain') + get('/raw') + get('/raw') + `HEAD /raw HTTP/1.1\r\nHost: x\r\n\r\n` +
    `HEAD /plain HTTP/1.1\r\nHost: x\r\n\r\n` + get('/raw?extra') + get('/plain?extra') + get('/raw', 'Connection: close\r\n'))
  const last = `${ONE}Connection: close\r\n\r\nhello`
  t.equal(out, FULL + FULL + FULL + ONE + KA + ONE + KA + EXTRA + EXTRA + last)
  t.same(raw, [true, true, true, true, false], 'the Connection: close request took writeHead')
})

t.test('writeRawHead: HTTP/1.0 without keep-alive and Expect take writeHead', async (t) => {
  const { port, raw } = await server(t)
  const out = await exchange(port, 'GET /raw HTTP/1.0\r\n\r\n')
  t.match(out, /^HTTP\/1\.1 200 OK\r\n[^]*\r\n\r\nhello$/)
  t.notMatch(out, /keep-alive/i)
  t.same(raw, [false])
  const cont = await exchange(port, 'GET /raw HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n')
  t.match(cont, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 OK\r\n/)
  t.same(raw, [false, false])
})

/** Send each request only once the answer to the one before it is complete (`ends` says where each answer ends). */
function sequential (port: number, requests: string[], ends: (got: string, n: number) => boolean, secure = false): Promise<string> {
  return new Promise((resolve, reject) => {
    const c: net.Socket = secure
      ? tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false }, () => c.write(requests[0]!))
      : net.connect(port, '127.0.0.1', () => c.write(requests[0]!))
    let got = ''
    let n = 1
    c.on('data', (chunk: Buffer) => {
      got += chunk.toString('latin1')
      if (!ends(got, n)) return
      if (n === requests.length) return c.end()
      c.write(requests[n++]!)
    })
    c.on('error', reject)
    c.on('close', () => resolve(got))
    c.setTimeout(5000, () => c.destroy(new Error(`stalled after ${n} requests: ${JSON.stringify(got)}`)))
  })
}

t.test('writeRawResponse: writeHead\'s bytes, head and body in one socket write when the response has the connection to itself', async (t) => {
  const { port, raw, writes } = await server(t)
  const answers = [FULL, EXTRA, ONE + KA, FULL]
  const out = await sequential(port, [ask('/one'), ask('/one?extra'), ask('/one', 'HEAD'), ask('/plain')],
    (got, n) => got === answers.slice(0, n).join(''))
  t.equal(out, answers.join(''), 'one at a time: writeHead\'s bytes')
  t.same(raw, [true, true, true])
  t.same(writes[0]!.slice(0, 2), [FULL.length, EXTRA.length], 'a GET: head and body in one write each')
  // Pipelined: the second answer is made before the first has gone, so it waits in the response's own queue.
  const piped = await exchange(port, ask('/one') + ask('/one?extra') + ask('/one', 'HEAD') + ask('/plain') +
    `GET /one HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`)
  t.equal(piped, FULL + EXTRA + ONE + KA + FULL + `${ONE}Connection: close\r\n\r\nhello`, 'pipelined and close: the same bytes')
  t.same(raw.slice(3), [true, true, true, false], 'the Connection: close request took writeHead')
})

t.test('writeRawResponse with the head\'s lines as bytes (a hit\'s): writeHead\'s bytes, in one write', async (t) => {
  const { port, raw, writes } = await server(t)
  const answers = [FULL, EXTRA, ONE + KA, EXTRA]
  const out = await sequential(port, [ask('/one?bytes'), ask('/one?extra&bytes'), ask('/one?bytes', 'HEAD'), ask('/plain?extra')],
    (got, n) => got === answers.slice(0, n).join(''))
  t.equal(out, answers.join(''), 'one at a time: writeHead\'s bytes')
  t.same(raw, [true, true, true])
  t.same(writes[0]!.slice(0, 2), [FULL.length, EXTRA.length], 'a GET: head and body in one write each')
  const piped = await exchange(port, ask('/one?extra&bytes') + ask('/one?bytes') + `GET /one?bytes HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`)
  t.equal(piped, EXTRA + FULL + `${ONE}Connection: close\r\n\r\nhello`, 'pipelined and close: the same bytes')
})

t.test('writeRawResponse: a body above ONE_WRITE_MAX goes as end(body) does, with the same bytes', async (t) => {
  const body = Buffer.alloc(ONE_WRITE_MAX + 1, 'b')
  const { port, raw, writes } = await server(t, body)
  const head = `HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\ncontent-length: ${body.length}\r\ndate: ${DATE}\r\netag: "v1"\r\nage: 3\r\n` +
    'Connection: keep-alive\r\nKeep-Alive: timeout=7\r\n\r\n'
  const want = head + body.toString('latin1')
  const out = await sequential(port, ['GET /one HTTP/1.1\r\nHost: x\r\n\r\n', 'GET /plain HTTP/1.1\r\nHost: x\r\n\r\n'],
    (got, n) => got.length === n * want.length)
  t.equal(out, want + want)
  t.same(raw, [true])
  t.not(writes[0]![0], want.length, 'not copied into one buffer')
})

t.test('writeRawBody: after a raw head, the whole body in the same write when the response has the connection to itself', async (t) => {
  const { port, raw, writes } = await server(t)
  const answers = [FULL, EXTRA, ONE + KA, FULL]
  const out = await sequential(port, [ask('/body'), ask('/body?extra'), ask('/body', 'HEAD'), ask('/plain')],
    (got, n) => got === answers.slice(0, n).join(''))
  t.equal(out, answers.join(''), 'one at a time: writeHead\'s bytes')
  t.same(writes[0]!.slice(0, 2), [FULL.length, EXTRA.length], 'head and body in one write each')
  const piped = await exchange(port, ask('/body') + ask('/body?extra') + ask('/body', 'HEAD') +
    `GET /body HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`)
  t.equal(piped, FULL + EXTRA + ONE + KA + `${ONE}Connection: close\r\n\r\nhello`, 'pipelined and close: the same bytes')
  t.same(raw, [true, true, true, true, true, true, false])
  t.equal(h1Head(200, FIELDS)?.contentLength, 5, 'the announced length')
  t.ok(Number.isNaN(h1Head(200, ['content-length', 'x', 'date', DATE])?.contentLength), 'not a number: NaN, never a match')
})

t.test('writeRawResponse and writeRawBody over TLS (the socket corked for the one write): the same bytes, nothing held back', async (t) => {
  const { port, raw, writes } = await server(t, Buffer.from('hello'), true)
  const answers = [FULL, FULL, ONE + KA, FULL, FULL]
  const out = await sequential(port, [ask('/one'), ask('/body'), ask('/one', 'HEAD'), ask('/plain'), ask('/one')],
    (got, n) => got === answers.slice(0, n).join(''), true)
  t.equal(out, answers.join(''))
  t.same(raw, [true, true, true, true])
  // end()'s own empty write follows each (corked with it: one TLS record and one syscall, which strace shows and a test cannot).
  t.same(writes[0]!.slice(0, 4), [FULL.length, 0, FULL.length, 0], 'head and body handed to the TLS socket in one write each')
})
