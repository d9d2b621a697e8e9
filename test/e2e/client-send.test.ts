// timeouts.clientSend: a client that stops taking a streamed response holds
// the upstream exchange only that long; then the response is cut (HTTP/1.1:
// the connection closes before the body's end; h2: RST_STREAM), the upstream
// request is cancelled, the log says LB_ERR_CLIENT_SEND_TIMEOUT and the
// server is not blamed. A client that reads slowly but steadily is never cut.
// Real proxy, origin and clients.
import net from 'node:net'
import t from 'tap'
import { testCertificate } from '../helpers/certs.js'
import { h2Session, tlsAndPlainListeners } from '../helpers/e2e.js'
import { startOrigin } from '../helpers/origin.js'
import { startProxy } from '../helpers/proxy.js'
import { BLOCK, MiB, SessionLog, within } from '../helpers/stream-kit.js'

const SEND_MS = 400
/** Far more than the kernel's and Node's buffers between the proxy and a client that does not read. */
const BODY_BYTES = 32 * MiB
/** Failure guard only: nothing passes or fails on how long things take. */
const GUARD_MS = 20_000

t.test('a client that stops reading is cut after clientSend; the origin exchange is cancelled; the server not blamed', async (t) => {
  const cert = testCertificate(t)
  /** Per path: whether the origin wrote its whole body (true) or was cut off first (false). */
  const finished = new Map<string, Promise<boolean>>()
  const origin = await startOrigin(t, (seen, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(BODY_BYTES) })
    // Block by block, as fast as the proxy takes them: a proxy that stops reading stops this.
    let sent = 0
    const pump = (): void => {
      while (sent < BODY_BYTES && !res.destroyed) {
        sent += BLOCK.length
        if (!res.write(BLOCK)) return void res.once('drain', pump)
      }
      res.end()
    }
    finished.set(seen.url, new Promise((resolve) => res.once('close', () => resolve(sent >= BODY_BYTES))))
    pump()
  })
  const log = new SessionLog()
  const proxy = await startProxy(t, `${tlsAndPlainListeners(cert)}
timeouts: { clientSend: ${SEND_MS}ms }
routes: [{ backend: o }]
backends: { o: { servers: [{ url: "${origin.url}" }] } }
`, log.hooks)

  await t.test('HTTP/1.1: the connection closes before the body\'s end', async (t) => {
    const socket = net.connect(proxy.port('plain'), '127.0.0.1')
    t.teardown(() => { socket.destroy() })
    socket.on('error', () => {})
    let received = 0
    let paused = false
    socket.on('data', (c: Buffer) => {
      received += c.length
      if (received > 64 * 1024 && !paused) { // the head and a little body, then nothing
        paused = true
        socket.pause()
      }
    })
    const closed = new Promise((resolve) => socket.once('close', resolve))
    socket.write('GET /h1 HTTP/1.1\r\nHost: a\r\n\r\n')
    const ended = await within(log.ended('/h1'), GUARD_MS, 'the exchange ends')
    t.equal(ended.error?.code, 'LB_ERR_CLIENT_SEND_TIMEOUT')
    t.equal(ended.status, 200, 'the log keeps the status that was sent')
    socket.resume()
    await within(closed, GUARD_MS, 'the connection closes')
    t.ok(received < BODY_BYTES, `cut: ${received} bytes of ${BODY_BYTES} (head included) reached the client`)
    t.equal(await within(finished.get('/h1')!, GUARD_MS, 'the origin exchange ends'), false, 'the origin was cut off, not read to its end')
  })

  await t.test('h2: the stream is reset while the connection lives on', async (t) => {
    const session = await h2Session(t, proxy.url('tls'))
    const stream = session.request({ ':path': '/h2' })
    stream.on('error', () => {})
    stream.pause() // the window closes once the client's buffers are full
    const rst = new Promise<number>((resolve) => stream.once('close', () => resolve(stream.rstCode ?? 0)))
    const ended = await within(log.ended('/h2'), GUARD_MS, 'the exchange ends')
    t.equal(ended.error?.code, 'LB_ERR_CLIENT_SEND_TIMEOUT')
    t.not(await within(rst, GUARD_MS, 'the stream closes'), 0, 'RST_STREAM, never a clean end')
    t.equal(await within(finished.get('/h2')!, GUARD_MS, 'the origin exchange ends'), false, 'the origin was cut off')
    t.notOk(session.destroyed, 'the session is still open')
    session.close()
  })

  await t.test('a slow but steady reader gets the whole body', async (t) => {
    const socket = net.connect(proxy.port('plain'), '127.0.0.1')
    t.teardown(() => { socket.destroy() })
    socket.on('error', () => {})
    let received = 0
    let reads = 0
    socket.on('data', (c: Buffer) => {
      received += c.length
      // A quarter of clientSend without reading, after every 2 MiB or so.
      if (received > (reads + 1) * 2 * MiB) {
        reads++
        socket.pause()
        setTimeout(() => socket.resume(), SEND_MS / 4)
      }
    })
    socket.write('GET /steady HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')
    await within(new Promise((resolve) => socket.once('close', resolve)), GUARD_MS * 2, 'the response ends')
    const ended = await within(log.ended('/steady'), GUARD_MS, 'the exchange ends')
    t.equal(ended.error, undefined, 'no error')
    t.ok(received > BODY_BYTES, 'the whole body (and the head) arrived')
    t.ok(reads > 4, `the reader paused ${reads} times`)
  })

  t.equal(proxy.app.status()[0]!.shards[0]!.servers[0]!.failures, 0, 'a client that does not read is not the server\'s failure')
})
