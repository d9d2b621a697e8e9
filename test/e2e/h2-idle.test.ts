// timeouts.clientIdle on HTTP/2: a session is closed (GOAWAY) once no stream
// has been open for that long; a stream that takes longer, with no frame
// meanwhile, is never a reason to send it; a session that can send nothing
// more (after its own GOAWAY, or into a window that never opens) is closed
// with its streams. Real proxy, origin and clients (raw frames where
// node:http2's client would refuse).
import type { ClientHttp2Session } from 'node:http2'
import t from 'tap'
import { testCertificate } from '../helpers/certs.js'
import { h2Request, h2Session, tlsAndPlainListeners } from '../helpers/e2e.js'
import { startOrigin } from '../helpers/origin.js'
import { startProxy } from '../helpers/proxy.js'
import { Flags, frame, FrameType, headerBlock, rawH2, type RawH2 } from '../helpers/h2-frames.js'

const IDLE_MS = 150
/** Failure guard only: nothing passes or fails on how long things take. */
const GUARD_MS = 10_000

function closed (session: ClientHttp2Session): Promise<'closed' | 'guard'> {
  return new Promise((resolve) => {
    const guard = setTimeout(() => resolve('guard'), GUARD_MS)
    session.once('close', () => { clearTimeout(guard); resolve('closed') })
  })
}

t.test('h2 clientIdle: an idle session gets GOAWAY; a slow stream does not', async (t) => {
  const cert = testCertificate(t)
  // The origin answers /slow well after the idle time, with nothing on the wire meanwhile.
  const origin = await startOrigin(t, (seen, res) => {
    const answer = (): void => { res.writeHead(200, { 'content-type': 'text/plain' }); res.end('done') }
    if (seen.url === '/slow') setTimeout(answer, IDLE_MS * 4)
    else answer()
  })
  const proxy = await startProxy(t, `${tlsAndPlainListeners(cert)}
timeouts: { clientIdle: ${IDLE_MS}ms }
routes: [{ backend: b }]
backends: { b: { servers: [{ url: "${origin.url}" }] } }
`)

  const slow = await h2Session(t, proxy.url('tls'))
  let goawayDuringStream = false
  let streaming = true
  slow.on('goaway', () => { if (streaming) goawayDuringStream = true })
  const r = await h2Request(slow, { ':path': '/slow' })
  streaming = false
  t.equal(r.status, 200)
  t.equal(r.text, 'done')
  t.notOk(goawayDuringStream, 'no GOAWAY while a stream is open, however quiet')
  // Then idle: the proxy closes it.
  t.equal(await closed(slow), 'closed', 'the session is closed once idle')

  // A session that never opens a stream is closed too.
  const unused = await h2Session(t, proxy.url('tls'))
  t.equal(await closed(unused), 'closed', 'a session without streams is closed once idle')
})

t.test('h2 clientIdle: a session that can send nothing more is closed, streams open or not', async (t) => {
  const cert = testCertificate(t)
  const origin = await startOrigin(t, (_seen, res) => { res.writeHead(200, { 'content-type': 'text/plain' }); res.end('x'.repeat(100)) })
  const proxy = await startProxy(t, `${tlsAndPlainListeners(cert)}
timeouts: { clientIdle: ${IDLE_MS}ms }
routes: [{ backend: b }]
backends: { b: { servers: [{ url: "${origin.url}" }] } }
`)
  const port = proxy.port('tls')
  const get = headerBlock([[':method', 'GET'], [':scheme', 'https'], [':authority', 'localhost'], [':path', '/x']])
  const guard = (c: RawH2): Promise<'closed' | 'guard'> => new Promise((resolve) => {
    const timer = setTimeout(() => resolve('guard'), GUARD_MS)
    void c.closed.then(() => { clearTimeout(timer); resolve('closed') })
  })

  // DATA on a stream the client has ended: nghttp2 answers GOAWAY(STREAM_CLOSED)
  // and then sends nothing, not even the answer: Node kept that stream, and the
  // connection, open for good.
  const ended = await rawH2(port)
  t.teardown(() => ended.socket.destroy())
  ended.write(frame(FrameType.HEADERS, Flags.END_HEADERS | Flags.END_STREAM, 1, get), frame(FrameType.DATA, Flags.END_STREAM, 1, Buffer.from('hello')))
  t.equal(await guard(ended), 'closed', 'the connection is closed')
  t.ok(ended.frames.some((f) => f.type === FrameType.GOAWAY), 'after its GOAWAY')

  // A client whose stream window is 0 (SETTINGS_INITIAL_WINDOW_SIZE) never lets the answer's DATA out.
  const shut = await rawH2(port, [[0x4, 0]])
  t.teardown(() => shut.socket.destroy())
  shut.write(frame(FrameType.HEADERS, Flags.END_HEADERS | Flags.END_STREAM, 1, get))
  t.equal(await guard(shut), 'closed', 'a stream that can never be answered does not hold the connection')
  t.ok(shut.frames.some((f) => f.type === FrameType.HEADERS && f.stream === 1), 'its head went out; its body could not')
  t.notOk(shut.frames.some((f) => f.type === FrameType.DATA && f.stream === 1 && f.payload.length > 0), 'no body byte was sent')

  // The same request from a client that reads is answered on an open connection.
  const fine = await rawH2(port)
  t.teardown(() => fine.socket.destroy())
  fine.write(frame(FrameType.HEADERS, Flags.END_HEADERS | Flags.END_STREAM, 1, get))
  for (let i = 0; i < 100 && !fine.frames.some((f) => f.type === FrameType.DATA && (f.flags & Flags.END_STREAM) !== 0); i++) await new Promise((resolve) => setTimeout(resolve, 20))
  t.equal(fine.frames.filter((f) => f.type === FrameType.DATA && f.stream === 1).reduce((n, f) => n + f.payload.length, 0), 100, 'the whole answer')
})

t.test('h2 clientSend: a small answer held by a shut window is reset, though the client keeps the connection busy with PINGs', async (t) => {
  const cert = testCertificate(t)
  const origin = await startOrigin(t, (_seen, res) => { res.writeHead(200, { 'content-type': 'text/plain' }); res.end('x'.repeat(100)) })
  const proxy = await startProxy(t, `${tlsAndPlainListeners(cert)}
timeouts: { clientIdle: ${IDLE_MS}ms, clientSend: ${IDLE_MS}ms }
routes: [{ backend: b }]
backends: { b: { servers: [{ url: "${origin.url}" }] } }
`)
  const get = headerBlock([[':method', 'GET'], [':scheme', 'https'], [':authority', 'localhost'], [':path', '/x']])
  const shut = await rawH2(proxy.port('tls'), [[0x4, 0]])
  t.teardown(() => shut.socket.destroy())
  shut.write(frame(FrameType.HEADERS, Flags.END_HEADERS | Flags.END_STREAM, 1, get))
  // Bytes move both ways all the time: the session's own backstop never sees it stalled.
  const pings = setInterval(() => { shut.write(frame(FrameType.PING, 0, 0, Buffer.alloc(8))) }, IDLE_MS / 4)
  t.teardown(() => clearInterval(pings))
  const reset = (): boolean => shut.frames.some((f) => f.type === FrameType.RST_STREAM && f.stream === 1)
  const deadline = Date.now() + GUARD_MS
  while (!reset() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
  clearInterval(pings)
  t.ok(reset(), 'the stream is reset')
  t.ok(shut.frames.some((f) => f.type === FrameType.HEADERS && f.stream === 1), 'after its head went out')
  t.notOk(shut.frames.some((f) => f.type === FrameType.DATA && f.stream === 1 && f.payload.length > 0), 'no body byte was sent')
})
