// Closing HTTP/1.1 connections in stages (RFC 9112 §9.6; listener/linger.ts),
// with a real proxy, origin and raw clients on plain and TLS listeners:
//   - a large answer with Connection: close reaches, whole, a client that
//     sends a byte after it (closed at once, the proxy's kernel would answer
//     that byte with a reset and drop the answer's unsent rest);
//   - a request pipelined after `Connection: close` is dropped: the first
//     request gets its answer (Node's parser would have made it a 400), the
//     second never reaches the origin;
//   - bad bytes after a request in flight: its answer goes out whole, as the
//     last; a request whose own body is broken still gets the 400.
import net from 'node:net'
import tls from 'node:tls'
import t from 'tap'
import { testCertificate } from '../helpers/certs.js'
import { rawRequest, tlsAndPlainListeners } from '../helpers/e2e.js'
import { startOrigin } from '../helpers/origin.js'
import { startProxy } from '../helpers/proxy.js'
import { field, parseResponses } from '../helpers/wire.js'

const BIG = Buffer.alloc(2 << 20, 0x61)

t.test('lingering close', async (t) => {
  const cert = testCertificate(t)
  const seen: string[] = []
  const origin = await startOrigin(t, (req, res) => {
    seen.push(`${req.method} ${req.url}`)
    if (req.url === '/big') {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(BIG.length), 'cache-control': 'no-store' })
      res.end(BIG)
      return
    }
    const body = `${req.method} ${req.url}`
    // /slow: the answer is still being made when the client's next bytes come.
    setTimeout(() => {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': String(body.length), 'cache-control': 'no-store' })
      res.end(body)
    }, req.url === '/slow' ? 100 : 0)
  })
  const proxy = await startProxy(t, `${tlsAndPlainListeners(cert)}
routes: [{ backend: o }]
backends: { o: { servers: [{ url: "${origin.url}" }] } }
`)

  for (const listener of ['plain', 'tls'] as const) {
    const secure = listener === 'tls'

    await t.test(`${listener}: a 2 MiB answer that closes reaches whole a client that sends a byte after it`, async (t) => {
      const raw = await lateByteClient(proxy.port(listener), secure)
      const { responses, malformed } = parseResponses(raw, 'GET', true)
      t.equal(malformed, undefined, 'well framed')
      t.equal(responses.length, 1)
      t.equal(responses[0]?.status, 200)
      t.equal(field(responses[0]!, 'connection'), 'close')
      t.ok(responses[0]?.complete, 'the body ended as its Content-Length says')
      t.equal(responses[0]?.body.length, BIG.length, 'every byte of it')
    })

    await t.test(`${listener}: a request pipelined after Connection: close is dropped, the first is answered`, async (t) => {
      seen.length = 0
      const reply = await rawRequest(proxy.port(listener),
        'GET /first HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\nPOST /second HTTP/1.1\r\nHost: a.test\r\nContent-Length: 3\r\n\r\nabc',
        { tls: secure })
      const { responses } = parseResponses(Buffer.from(reply.raw, 'latin1'), 'GET', true)
      t.equal(responses.length, 1, 'one answer')
      t.equal(responses[0]?.status, 200, 'the first request\'s, not a 400 for the bytes after it')
      t.equal(responses[0]?.body.toString(), 'GET /first')
      t.same(seen, ['GET /first'], 'the POST never reached the origin')
    })

    await t.test(`${listener}: bad bytes after a request in flight: its answer goes out whole, as the last`, async (t) => {
      seen.length = 0
      const reply = await rawRequest(proxy.port(listener), 'GET /slow HTTP/1.1\r\nHost: a.test\r\n\r\nNOT HTTP AT ALL\r\n\r\n', { tls: secure })
      const { responses, malformed } = parseResponses(Buffer.from(reply.raw, 'latin1'), 'GET', true)
      t.equal(malformed, undefined)
      t.equal(responses.length, 1)
      t.equal(responses[0]?.status, 200, 'the answer to GET /slow, not Node\'s 400 in its place')
      t.equal(responses[0]?.body.toString(), 'GET /slow')
      t.equal(field(responses[0]!, 'connection'), 'close', 'the connection closes after it')
      t.same(seen, ['GET /slow'])
    })

    await t.test(`${listener}: a request whose own chunked body is broken gets a 400`, async (t) => {
      const reply = await rawRequest(proxy.port(listener),
        'POST /broken HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n0123456789\r\n0\r\n\r\n', { tls: secure })
      t.equal(reply.status, 400)
      t.equal(reply.headers.connection, 'close')
    })

    await t.test(`${listener}: a request pipelined behind the proxy's own closing answer is not forwarded`, async (t) => {
      seen.length = 0
      // OPTIONS * is answered by the proxy; its unread body makes that answer close the connection.
      const reply = await rawRequest(proxy.port(listener),
        'OPTIONS * HTTP/1.1\r\nHost: a.test\r\nContent-Length: 5\r\n\r\nhelloPOST /after HTTP/1.1\r\nHost: a.test\r\nContent-Length: 3\r\n\r\nabc',
        { tls: secure })
      const { responses } = parseResponses(Buffer.from(reply.raw, 'latin1'), 'OPTIONS', true)
      t.equal(responses.length, 1)
      t.equal(responses[0]?.status, 200)
      t.equal(field(responses[0]!, 'connection'), 'close')
      // The origin would have seen it by now had it been forwarded: the reply above waited for the close.
      await new Promise((resolve) => setTimeout(resolve, 100))
      t.same(seen, [], 'nothing reached the origin')
    })
  }
})

/**
 * GET /big with Connection: close; stop reading at the first bytes, send one
 * more byte once the proxy has handed the whole answer to its kernel and
 * closed, then read everything.
 */
function lateByteClient (port: number, secure: boolean): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket: net.Socket = secure
      ? tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] })
      : net.connect({ host: '127.0.0.1', port })
    const chunks: Buffer[] = []
    const timer = setTimeout(() => { socket.destroy(); reject(new Error('no close within 10 s')) }, 10_000)
    socket.once(secure ? 'secureConnect' : 'connect', () => socket.write('GET /big HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n'))
    socket.once('data', (c: Buffer) => {
      chunks.push(c)
      socket.pause()
      setTimeout(() => {
        socket.write('X')
        setTimeout(() => {
          socket.on('data', (c: Buffer) => chunks.push(c))
          socket.resume()
        }, 200)
      }, 500)
    })
    socket.on('error', () => {}) // a reset ends the read; what arrived is judged
    socket.on('close', () => {
      clearTimeout(timer)
      resolve(Buffer.concat(chunks))
    })
  })
}
