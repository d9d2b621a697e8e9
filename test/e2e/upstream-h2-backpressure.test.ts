// A client that stops reading stops an HTTP/2 backend too: the proxy pauses
// undici's h2 stream (flow control reaches the origin) instead of buffering
// the body. An h1 client on the plain listener, an h2c origin.
import http from 'node:http'
import http2 from 'node:http2'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { startProxy } from '../helpers/proxy.js'
import { BodyCheck, MiB, settle, within, writeBytes } from '../helpers/stream-kit.js'

const BODY = 256 * MiB
const BOUND = 64 * MiB

t.test('a client that stops reading stops an h2c origin', async (t) => {
  const stall = { written: 0, blocked: false, done: false }
  const origin = http2.createServer()
  origin.on('stream', (stream) => {
    stream.respond({ ':status': 200, 'content-type': 'application/octet-stream' })
    writeBytes(stream, BODY, (w, b) => { stall.written = w; stall.blocked = b })
      .then(() => { stall.done = true; stream.end() }, () => stream.destroy())
  })
  origin.on('sessionError', () => {})
  await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => { origin.close(() => resolve()) }))
  const proxy = await startProxy(t, `listeners: [{ name: plain, bind: "127.0.0.1:0" }]
routes: [{ match: { pathPrefix: / }, backend: b }]
backends:
  b: { protocol: h2c, servers: [{ url: "http://127.0.0.1:${(origin.address() as AddressInfo).port}" }] }
`)
  const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
    http.get(`${proxy.url('plain')}/stall`, { agent: false }, resolve).once('error', reject)
  })
  t.teardown(() => { res.destroy() })
  t.equal(res.statusCode, 200)
  res.pause()
  const written = await settle(() => stall.written)
  t.ok(stall.blocked, 'the origin is waiting for flow control')
  t.notOk(stall.done, 'the origin could not finish')
  t.ok(written < BOUND, `origin wrote ${(written / MiB).toFixed(1)} MiB before being held back`)
  const check = new BodyCheck()
  await within(check.consume(res), 90_000, 'stalled download')
  t.equal(check.bytes, BODY, 'after resuming, every byte arrives')
  t.equal(check.firstMismatch, -1)
})
