// Large bodies stream through the proxy in both directions, over h1 and h2,
// with bounded memory; a client that stops reading stops the origin (the proxy
// does not buffer the body); Expect: 100-continue uploads get through.
import t from 'tap'
import type { Test } from 'tap'
import http from 'node:http'
import http2 from 'node:http2'
import type { IncomingMessage } from 'node:http'
import { testCertificate } from '../helpers/certs.js'
import { startProxy, type RunningProxy } from '../helpers/proxy.js'
import { BodyCheck, MiB, SessionLog, settle, proxyYaml, watchMemory, within, writeBytes } from '../helpers/stream-kit.js'
import { startServer, type Server } from '../helpers/origin.js'

/** Size of each large transfer. */
const BIG = 1024 * MiB
/** Peak memory growth allowed while BIG bytes pass through (proxy, origin and client share this process). */
const MEMORY_BOUND = 200 * MiB
/** Hang guard for one big transfer (generous: the suite runs two files at once on two cores). */
const TRANSFER_GUARD_MS = 90_000

interface Stall { written: number, blocked: boolean, done: boolean }

interface Fixture {
  readonly origin: Server
  readonly proxy: RunningProxy
  readonly log: SessionLog
  /** State of the latest /stall response the origin is writing. */
  stall: Stall
  /** The latest /sink request, which the origin does not read until the test says so. */
  sink: Promise<IncomingMessage>
}

async function setup (tt: Test): Promise<Fixture> {
  const cert = testCertificate(tt)
  let gotSink: (req: IncomingMessage) => void = () => {}
  const fx = {
    stall: { written: 0, blocked: false, done: false },
    sink: new Promise<IncomingMessage>((resolve) => { gotSink = resolve })
  } as Fixture
  const origin = await startServer(tt, (req, res) => {
    const [, kind, arg] = (req.url ?? '').split('/')
    const n = Number(arg)
    if (kind === 'download' || kind === 'chunked') {
      res.writeHead(200, kind === 'download'
        ? { 'content-type': 'application/octet-stream', 'content-length': String(n) }
        : { 'content-type': 'application/octet-stream' })
      writeBytes(res, n).then(() => res.end(), () => res.destroy())
    } else if (kind === 'stall') {
      const st: Stall = { written: 0, blocked: false, done: false }
      fx.stall = st
      res.writeHead(200, { 'content-length': String(n) })
      writeBytes(res, n, (w, b) => { st.written = w; st.blocked = b })
        .then(() => { st.done = true; res.end() }, () => res.destroy())
    } else if (kind === 'sink') {
      req.pause()
      gotSink(req)
      req.once('end', () => res.end('done'))
    } else if (kind === 'upload') {
      const check = new BodyCheck()
      check.consume(req).then(() => {
        const body = JSON.stringify({ bytes: check.bytes, mismatch: check.firstMismatch, expect: req.headers.expect ?? null })
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) })
        res.end(body)
      }, () => res.destroy())
    } else {
      res.writeHead(404).end()
    }
  })
  const log = new SessionLog()
  const proxy = await startProxy(tt, proxyYaml(origin.url, cert), log.hooks)
  return Object.assign(fx, { origin, proxy, log })
}

function h1Get (url: string): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    http.get(url, { agent: false }, resolve).once('error', reject)
  })
}

function h2Connect (tt: { teardown (fn: () => unknown): void }, url: string): http2.ClientHttp2Session {
  const client = http2.connect(url, { rejectUnauthorized: false })
  client.on('error', () => {})
  tt.teardown(() => { client.destroy() })
  return client
}

function readJson (r: NodeJS.ReadableStream): Promise<unknown> {
  return new Promise((resolve, reject) => {
    let text = ''
    r.setEncoding('utf8')
    r.on('data', (c: string) => { text += c })
    r.once('end', () => { try { resolve(JSON.parse(text)) } catch (err) { reject(err) } })
    r.once('error', reject)
  })
}

t.test('1 GiB download to an h1 client: every byte, bounded memory', async (t) => {
  const { proxy } = await setup(t)
  const mem = watchMemory()
  const res = await h1Get(`${proxy.url('http')}/download/${BIG}`)
  t.equal(res.statusCode, 200)
  t.equal(res.headers['content-length'], String(BIG), 'length passed through')
  const check = new BodyCheck()
  await within(check.consume(res), TRANSFER_GUARD_MS, 'h1 download')
  const growth = mem.stop()
  t.equal(check.bytes, BIG, 'exact byte count')
  t.equal(check.firstMismatch, -1, 'bytes unchanged')
  t.ok(growth.rss < MEMORY_BOUND, `rss growth ${(growth.rss / MiB).toFixed(1)} MiB < ${MEMORY_BOUND / MiB} MiB`)
  t.ok(growth.heap < MEMORY_BOUND, `heap+buffers growth ${(growth.heap / MiB).toFixed(1)} MiB < ${MEMORY_BOUND / MiB} MiB`)
})

t.test('1 GiB chunked download to an h2 client over TLS: every byte, bounded memory', async (t) => {
  const { proxy } = await setup(t)
  const client = h2Connect(t, proxy.url('https'))
  const mem = watchMemory()
  const stream = client.request({ ':path': `/chunked/${BIG}` })
  const [headers] = await within(new Promise<[http2.IncomingHttpHeaders]>((resolve, reject) => {
    stream.once('response', (h) => resolve([h]))
    stream.once('error', reject)
  }), 10_000, 'h2 response headers')
  t.equal(headers[':status'], 200)
  const check = new BodyCheck()
  await within(check.consume(stream), TRANSFER_GUARD_MS, 'h2 download')
  const growth = mem.stop()
  t.equal(check.bytes, BIG, 'exact byte count')
  t.equal(check.firstMismatch, -1, 'bytes unchanged')
  t.equal(stream.rstCode, http2.constants.NGHTTP2_NO_ERROR, 'clean end of stream')
  t.ok(growth.rss < MEMORY_BOUND, `rss growth ${(growth.rss / MiB).toFixed(1)} MiB < ${MEMORY_BOUND / MiB} MiB`)
  t.ok(growth.heap < MEMORY_BOUND, `heap+buffers growth ${(growth.heap / MiB).toFixed(1)} MiB < ${MEMORY_BOUND / MiB} MiB`)
})

t.test('1 GiB chunked upload from an h1 client: the origin counts every byte, bounded memory', async (t) => {
  const { proxy, log } = await setup(t)
  const mem = watchMemory()
  const req = http.request(`${proxy.url('http')}/upload/h1`, { method: 'POST', agent: false })
  const response = new Promise<IncomingMessage>((resolve, reject) => {
    req.once('response', resolve)
    req.once('error', reject)
  })
  await within(writeBytes(req, BIG), TRANSFER_GUARD_MS, 'h1 upload')
  req.end()
  const res = await within(response, 10_000, 'h1 upload response')
  const body = await readJson(res)
  const growth = mem.stop()
  t.equal(res.statusCode, 200)
  t.same(body, { bytes: BIG, mismatch: -1, expect: null }, 'origin got every byte unchanged')
  const s = await log.ended('/upload/h1')
  t.equal(s.error, undefined, 'session ended without error')
  t.ok(growth.rss < MEMORY_BOUND, `rss growth ${(growth.rss / MiB).toFixed(1)} MiB < ${MEMORY_BOUND / MiB} MiB`)
  t.ok(growth.heap < MEMORY_BOUND, `heap+buffers growth ${(growth.heap / MiB).toFixed(1)} MiB < ${MEMORY_BOUND / MiB} MiB`)
})

t.test('1 GiB upload from an h2 client: the origin counts every byte, bounded memory', async (t) => {
  const { proxy } = await setup(t)
  const client = h2Connect(t, proxy.url('https'))
  const mem = watchMemory()
  const stream = client.request({ ':method': 'POST', ':path': '/upload/h2' })
  const response = new Promise<http2.IncomingHttpHeaders>((resolve, reject) => {
    stream.once('response', resolve)
    stream.once('error', reject)
  })
  await within(writeBytes(stream, BIG), TRANSFER_GUARD_MS, 'h2 upload')
  stream.end()
  const headers = await within(response, 10_000, 'h2 upload response')
  const body = await readJson(stream)
  const growth = mem.stop()
  t.equal(headers[':status'], 200)
  t.same(body, { bytes: BIG, mismatch: -1, expect: null }, 'origin got every byte unchanged')
  t.ok(growth.rss < MEMORY_BOUND, `rss growth ${(growth.rss / MiB).toFixed(1)} MiB < ${MEMORY_BOUND / MiB} MiB`)
  t.ok(growth.heap < MEMORY_BOUND, `heap+buffers growth ${(growth.heap / MiB).toFixed(1)} MiB < ${MEMORY_BOUND / MiB} MiB`)
})

// Backpressure, proven directly: a client that stops reading must stop the
// origin's writes well before the body is done. What may be in flight is the
// kernel socket buffers on both hops plus a few high-water marks, far below
// the 256 MiB body; a proxy that buffered would let the origin write it all.
const STALL_BODY = 256 * MiB
const STALL_BOUND = 64 * MiB

t.test('a client that stops reading stops the origin (h1)', async (t) => {
  const fx = await setup(t)
  const res = await h1Get(`${fx.proxy.url('http')}/stall/${STALL_BODY}`)
  t.equal(res.statusCode, 200)
  res.pause()
  const check = new BodyCheck()
  const written = await settle(() => fx.stall.written)
  t.ok(fx.stall.blocked, 'the origin is waiting for drain')
  t.notOk(fx.stall.done, 'the origin could not finish')
  t.ok(written < STALL_BOUND, `origin wrote ${(written / MiB).toFixed(1)} MiB before being held back`)
  await within(check.consume(res), TRANSFER_GUARD_MS, 'h1 stalled download')
  t.equal(check.bytes, STALL_BODY, 'after resuming, every byte arrives')
  t.equal(check.firstMismatch, -1)
})

t.test('a client that stops reading stops the origin (h2)', async (t) => {
  const fx = await setup(t)
  const client = h2Connect(t, fx.proxy.url('https'))
  const stream = client.request({ ':path': `/stall/${STALL_BODY}` })
  const headers = await within(new Promise<http2.IncomingHttpHeaders>((resolve, reject) => {
    stream.once('response', resolve)
    stream.once('error', reject)
  }), 10_000, 'h2 response headers')
  t.equal(headers[':status'], 200)
  stream.pause()
  const check = new BodyCheck()
  const written = await settle(() => fx.stall.written)
  t.ok(fx.stall.blocked, 'the origin is waiting for drain')
  t.notOk(fx.stall.done, 'the origin could not finish')
  t.ok(written < STALL_BOUND, `origin wrote ${(written / MiB).toFixed(1)} MiB before being held back`)
  await within(check.consume(stream), TRANSFER_GUARD_MS, 'h2 stalled download')
  t.equal(check.bytes, STALL_BODY, 'after resuming, every byte arrives')
  t.equal(check.firstMismatch, -1)
})

t.test('an origin that stops reading stops the client\'s upload (h1 and h2)', async (t) => {
  for (const proto of ['h1', 'h2'] as const) {
    await t.test(proto, async (t) => {
      const fx = await setup(t)
      const progress = { written: 0, blocked: false }
      let upload: http.ClientRequest | http2.ClientHttp2Stream
      if (proto === 'h1') {
        upload = http.request(`${fx.proxy.url('http')}/sink/h1`, { method: 'POST', agent: false })
      } else {
        upload = h2Connect(t, fx.proxy.url('https')).request({ ':method': 'POST', ':path': '/sink/h2' })
      }
      upload.on('error', () => {})
      const writing = writeBytes(upload, STALL_BODY, (w, b) => { progress.written = w; progress.blocked = b })
      writing.catch(() => {})
      const originReq = await within(fx.sink, 10_000, 'the upload reaches the origin')
      const written = await settle(() => progress.written)
      t.ok(progress.blocked, 'the client is waiting for drain')
      t.ok(written < STALL_BOUND, `client wrote ${(written / MiB).toFixed(1)} MiB before being held back`)
      const check = new BodyCheck()
      const received = check.consume(originReq)
      await within(writing, TRANSFER_GUARD_MS, 'upload after the origin resumes')
      upload.end()
      await within(received, TRANSFER_GUARD_MS, 'origin reads the whole upload')
      t.equal(check.bytes, STALL_BODY, 'every byte arrives once the origin reads')
      t.equal(check.firstMismatch, -1)
    })
  }
})

t.test('Expect: 100-continue (h1): the client gets 100, the origin gets the body', async (t) => {
  const { proxy } = await setup(t)
  const size = 3 * MiB + 17
  const req = http.request(`${proxy.url('http')}/upload/continue`, {
    method: 'PUT',
    agent: false,
    headers: { expect: '100-continue', 'content-length': String(size) }
  })
  const response = new Promise<IncomingMessage>((resolve, reject) => {
    req.once('response', resolve)
    req.once('error', reject)
  })
  await within(new Promise<void>((resolve) => req.once('continue', resolve)), 10_000, '100 Continue')
  t.pass('100 Continue received before sending the body')
  await writeBytes(req, size)
  req.end()
  const res = await within(response, 10_000, 'final response')
  t.equal(res.statusCode, 200)
  t.same(await readJson(res), { bytes: size, mismatch: -1, expect: null },
    'origin got the whole body (Expect is hop-by-hop here: Node answered it)')
})
