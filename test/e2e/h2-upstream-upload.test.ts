// A streamed upload to an HTTP/2 backend (undici's client): the response
// head is timed from the upload's end, as our HTTP/1.1 client times it. A
// client that pauses its upload longer than the backend's headers timeout is
// not the server's stall: no 504, no failure against the server. A server
// that has the whole body and does not answer still gets its 504.
import http from 'node:http'
import http2 from 'node:http2'
import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import { startProxy, type RunningProxy } from '../helpers/proxy.js'

const HEADERS_MS = 300
const PAUSE_MS = 3 * HEADERS_MS

interface Origin { readonly port: number, readonly bodies: number[] }

/** An h2c origin: reads each request's body, then does what `answer` says. */
async function h2Origin (t: Test, answer: (stream: http2.ServerHttp2Stream, bytes: number) => void): Promise<Origin> {
  const bodies: number[] = []
  const server = http2.createServer()
  server.on('stream', (stream) => {
    let n = 0
    stream.on('data', (d: Buffer) => { n += d.length })
    stream.on('end', () => { bodies.push(n); answer(stream, n) })
    stream.on('error', () => {})
  })
  server.on('sessionError', () => {})
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => { server.close(() => resolve()) }))
  return { port: (server.address() as AddressInfo).port, bodies }
}

async function proxyTo (t: Test, o: Origin): Promise<RunningProxy> {
  return await startProxy(t, `listeners: [{ name: plain, bind: "127.0.0.1:0" }]
timeouts: { clientBody: 30s }
routes: [{ match: { pathPrefix: / }, backend: b }]
backends:
  b:
    protocol: h2c
    timeouts: { headers: ${HEADERS_MS}ms }
    retries: { attempts: 0 }
    servers: [{ url: "http://127.0.0.1:${o.port}" }]
`)
}

/** A chunked POST over HTTP/1.1 of `parts`, each `pauseMs` after the one before, the last ending it. */
function upload (proxy: RunningProxy, parts: ReadonlyArray<string | Buffer>, pauseMs = 0): Promise<{ status: number, body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${proxy.url('plain')}/up`, { method: 'POST', agent: false, headers: { 'transfer-encoding': 'chunked' } }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => { body += d })
      res.on('end', () => resolve({ status: res.statusCode!, body }))
    })
    req.on('error', reject)
    const send = (i: number): void => {
      if (i === parts.length - 1) return void req.end(parts[i])
      req.write(parts[i])
      setTimeout(send, pauseMs, i + 1)
    }
    send(0)
  })
}

/** 2000 bytes, the second half `pauseMs` after the first. */
function pausedUpload (proxy: RunningProxy, pauseMs: number): Promise<{ status: number, body: string }> {
  return upload(proxy, ['a'.repeat(1000), 'b'.repeat(1000)], pauseMs)
}

function server (proxy: RunningProxy): { failures: number, consecutiveFailures: number } {
  const s = proxy.app.status()[0]!.shards[0]!.servers[0]!
  return { failures: s.failures, consecutiveFailures: s.consecutiveFailures }
}

t.test('a client pausing its upload past the headers timeout gets the answer; the server is not blamed', async (t) => {
  const o = await h2Origin(t, (stream, n) => { stream.respond({ ':status': 200 }); stream.end(`got ${n}`) })
  const proxy = await proxyTo(t, o)
  for (let i = 0; i < 2; i++) {
    const r = await pausedUpload(proxy, PAUSE_MS)
    t.same([r.status, r.body], [200, 'got 2000'], `upload ${i + 1}: the whole body reached the origin and its answer came back`)
  }
  t.same(o.bodies, [2000, 2000])
  t.same(server(proxy), { failures: 0, consecutiveFailures: 0 })
})

t.test('a server that has the whole body and sends no head gets 504 and the failure', async (t) => {
  const o = await h2Origin(t, () => {})
  const proxy = await proxyTo(t, o)
  const r = await pausedUpload(proxy, 10)
  t.equal(r.status, 504)
  t.match(r.body, /LB_ERR_UPSTREAM_TIMEOUT/)
  t.same(o.bodies, [2000], 'the body had gone through')
  t.same(server(proxy), { failures: 1, consecutiveFailures: 1 })
})

t.test('a server that takes none of the upload (its window shut) gets 504 and the failure, not the client a 408', async (t) => {
  let streams = 0
  const origin = http2.createServer({ settings: { initialWindowSize: 0 } })
  origin.on('stream', (stream) => { streams++; stream.on('error', () => {}) })
  origin.on('sessionError', () => {})
  await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => { origin.close(() => resolve()) }))
  const proxy = await proxyTo(t, { port: (origin.address() as AddressInfo).port, bodies: [] })
  // All of it at once: the client has nothing more to send, the server takes none.
  const r = await upload(proxy, [Buffer.alloc(256 * 1024, 0x61)])
  t.equal(streams, 1, 'the request reached the server')
  t.equal(r.status, 504)
  t.match(r.body, /LB_ERR_UPSTREAM_TIMEOUT/)
  t.same(server(proxy), { failures: 1, consecutiveFailures: 1 })
})
