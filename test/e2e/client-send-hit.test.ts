// timeouts.clientSend for answers the proxy writes itself: a client that stops
// taking a large cache hit (HTTP/1.1 or an h2 stream) holds its connection or
// stream only that long, as for a response streamed from upstream; then
// HTTP/1.1 closes the connection, h2 resets that stream alone, and the log and
// metrics say LB_ERR_CLIENT_SEND_TIMEOUT. A slow but steady reader of the
// same hit gets every byte. Real proxy, origin, clients and admin metrics.
import net from 'node:net'
import t from 'tap'
import { Client, request } from 'undici'
import { testCertificate } from '../helpers/certs.js'
import { h2Session, tlsAndPlainListeners } from '../helpers/e2e.js'
import { startOrigin } from '../helpers/origin.js'
import { parsePrometheusText } from '../helpers/prometheus-parser.js'
import { startProxy } from '../helpers/proxy.js'
import { BLOCK, BodyCheck, MiB, SessionLog, within } from '../helpers/stream-kit.js'

const SEND_MS = 300
/** Far more than the kernel's and Node's buffers between the proxy and a client that does not read. */
const BODY_BYTES = 32 * MiB
/** Failure guard only: nothing passes or fails on how long things take. */
const GUARD_MS = 20_000

t.test('a client that stops taking a cache hit is cut after clientSend; a steady one gets it all', async (t) => {
  const cert = testCertificate(t)
  const body = Buffer.allocUnsafe(BODY_BYTES)
  for (let at = 0; at < BODY_BYTES; at += BLOCK.length) BLOCK.copy(body, at)
  let fetched = 0
  const origin = await startOrigin(t, (_seen, res) => {
    fetched++
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(BODY_BYTES), 'cache-control': 'max-age=600' })
    res.end(body)
  })
  const log = new SessionLog()
  const proxy = await startProxy(t, `admin: { bind: "127.0.0.1:0" }
${tlsAndPlainListeners(cert)}
timeouts: { clientSend: ${SEND_MS}ms }
cache: { maxBytes: ${3 * BODY_BYTES / MiB}MiB, maxEntryBytes: ${BODY_BYTES / MiB + 1}MiB } # the body and its head, once per scheme
routes: [{ backend: o }]
backends: { o: { servers: [{ url: "${origin.url}" }] } }
`, log.hooks)
  const admin = `http://127.0.0.1:${proxy.app.adminAddress()!.port}`
  const metric = async (name: string, labels: Record<string, string> = {}): Promise<number> => {
    const families = parsePrometheusText(await (await request(`${admin}/metrics`)).body.text())
    const samples = families.find((f) => f.name === name)?.samples
      .filter((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v)) ?? []
    return samples.reduce((n, s) => n + s.value, 0)
  }
  const connectionsBefore = await metric('switchyard_active_connections')
  /** The gauge once it has come back to connectionsBefore, or after a bounded wait for it (a connection closes a moment after its last byte). */
  const settledConnections = async (): Promise<number> => {
    let n = await metric('switchyard_active_connections')
    for (let i = 0; i < 100 && n !== connectionsBefore; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50))
      n = await metric('switchyard_active_connections')
    }
    return n
  }

  // Fill the cache: one whole fetch through the proxy (every request says Host: a, so all share one key).
  const client = new Client(proxy.url('plain'))
  t.teardown(() => client.destroy())
  const fill = await client.request({ method: 'GET', path: '/big', headers: { host: 'a' } })
  const check = new BodyCheck()
  await check.consume(fill.body)
  t.equal(check.bytes, BODY_BYTES, 'the first fetch gets the whole body')
  // The hit, slice by slice after the raw head: the same bytes.
  const hit = await client.request({ method: 'GET', path: '/big', headers: { host: 'a' } })
  const hitCheck = new BodyCheck()
  await hitCheck.consume(hit.body)
  t.match(String(hit.headers['cache-status']), /hit/, 'a hit')
  t.equal(hitCheck.bytes, BODY_BYTES, 'the hit has every byte')
  t.equal(hitCheck.firstMismatch, -1, 'the hit has the right bytes')
  await client.close()
  // And over TLS (h2): the scheme is part of the key.
  const fillSession = await h2Session(t, proxy.url('tls'))
  const h2Fill = new BodyCheck()
  await h2Fill.consume(fillSession.request({ ':path': '/big', ':authority': 'a' }))
  t.equal(h2Fill.bytes, BODY_BYTES, 'the first h2 fetch gets the whole body')
  fillSession.close()
  t.equal(fetched, 2, 'one fetch per scheme')

  await t.test('HTTP/1.1: the connection closes before the hit\'s end', async (t) => {
    const before = log.sessions.length
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
    socket.write('GET /big HTTP/1.1\r\nHost: a\r\n\r\n')
    const ended = await within(nextEnded(log, before, false), GUARD_MS, 'the hit ends')
    t.equal(ended.cacheOutcome, 'hit')
    t.equal(ended.error?.code, 'LB_ERR_CLIENT_SEND_TIMEOUT')
    t.equal(ended.error?.flag, 'CD')
    t.equal(ended.status, 200, 'the log keeps the status that was sent')
    socket.resume()
    await within(closed, GUARD_MS, 'the connection closes')
    t.ok(received < BODY_BYTES, `cut: ${received} bytes of ${BODY_BYTES} (head included) reached the client`)
    t.equal(await settledConnections(), connectionsBefore, 'the proxy let the connection go: the active-connection gauge is back where it was')
  })

  await t.test('h2: the hit\'s stream is reset while the connection lives on', async (t) => {
    const before = log.sessions.length
    const session = await h2Session(t, proxy.url('tls'))
    const stream = session.request({ ':path': '/big', ':authority': 'a' })
    stream.on('error', () => {})
    stream.pause() // the window closes once the client's buffers are full
    const rst = new Promise<number>((resolve) => stream.once('close', () => resolve(stream.rstCode ?? 0)))
    const ended = await within(nextEnded(log, before, true), GUARD_MS, 'the hit ends')
    t.equal(ended.cacheOutcome, 'hit')
    t.equal(ended.error?.code, 'LB_ERR_CLIENT_SEND_TIMEOUT')
    t.not(await within(rst, GUARD_MS, 'the stream closes'), 0, 'RST_STREAM, never a clean end')
    t.notOk(session.destroyed, 'the session is still open')
    // The same connection still answers.
    const again = session.request({ ':path': '/big', ':authority': 'a', range: 'bytes=0-9' })
    const status = await within(new Promise<number>((resolve) => again.once('response', (h) => resolve(Number(h[':status'])))), GUARD_MS, 'another answer')
    again.resume()
    await within(new Promise((resolve) => again.once('close', resolve)), GUARD_MS, 'the range answer ends')
    t.equal(status, 206)
    session.close()
  })

  await t.test('a slow but steady reader gets the whole hit (h1 and h2)', async (t) => {
    const before = log.sessions.length
    const socket = net.connect(proxy.port('plain'), '127.0.0.1')
    t.teardown(() => { socket.destroy() })
    socket.on('error', () => {})
    let received = 0
    let reads = 0
    socket.on('data', (c: Buffer) => {
      received += c.length
      // A quarter of clientSend without reading, after every 2 MiB or so: far longer than clientSend in all.
      if (received > (reads + 1) * 2 * MiB) {
        reads++
        socket.pause()
        setTimeout(() => socket.resume(), SEND_MS / 4)
      }
    })
    socket.write('GET /big HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')
    await within(new Promise((resolve) => socket.once('close', resolve)), GUARD_MS * 2, 'the response ends')
    const ended = await within(nextEnded(log, before, false), GUARD_MS, 'the hit ends')
    t.equal(ended.cacheOutcome, 'hit')
    t.equal(ended.error, undefined, 'no error')
    t.ok(received > BODY_BYTES, 'the whole body (and the head) arrived')
    t.ok(reads > 4, `the reader paused ${reads} times`)

    const h2Before = log.sessions.length
    const session = await h2Session(t, proxy.url('tls'))
    const stream = session.request({ ':path': '/big', ':authority': 'a' })
    const h2Check = new BodyCheck()
    let h2Reads = 0
    stream.on('data', (c: Buffer) => {
      h2Check.push(c)
      if (h2Check.bytes > (h2Reads + 1) * 2 * MiB) {
        h2Reads++
        stream.pause()
        setTimeout(() => stream.resume(), SEND_MS / 4)
      }
    })
    await within(new Promise((resolve, reject) => { stream.once('end', resolve); stream.once('error', reject) }), GUARD_MS * 2, 'the h2 response ends')
    t.equal(h2Check.bytes, BODY_BYTES, 'h2: every byte')
    t.equal(h2Check.firstMismatch, -1, 'h2: the right bytes')
    t.ok(h2Reads > 4, `the h2 reader paused ${h2Reads} times`)
    const h2Ended = await within(nextEnded(log, h2Before, true), GUARD_MS, 'the h2 hit ends')
    t.equal(h2Ended.error, undefined, 'no error')
    session.close()
  })

  t.equal(fetched, 2, 'every later answer was a hit')
  t.ok(await metric('switchyard_request_errors_total', { code: 'LB_ERR_CLIENT_SEND_TIMEOUT' }) >= 2, 'the metric counts the cuts')
  t.equal(proxy.app.status()[0]!.shards[0]!.servers[0]!.failures, 0, 'a client that does not read a hit is no server\'s failure')
  t.equal(await settledConnections(), connectionsBefore, 'every connection the tests opened is gone again')
})

/** The first session over `h2` (or HTTP/1.1) to end after the first `after` (a hit has no upstream exchange of its own to wait on). */
function nextEnded (log: SessionLog, after: number, h2: boolean): Promise<NonNullable<SessionLog['sessions'][number]>> {
  return new Promise((resolve) => {
    const poll = (): void => {
      const s = log.sessions.slice(after).find((x) => x.h2 === h2)
      if (s !== undefined) resolve(s)
      else setTimeout(poll, 10)
    }
    poll()
  })
}

t.test('the proxy\'s own answers too: a client that pipelines requests and reads none of their 404s is cut', async (t) => {
  const log = new SessionLog()
  const proxy = await startProxy(t, `listeners: [{ name: plain, bind: "127.0.0.1:0" }]
timeouts: { clientSend: ${SEND_MS}ms }
routes: [{ match: { host: only.test }, backend: o }]
backends: { o: { servers: [{ url: "http://127.0.0.1:1" }] } }
`, log.hooks)
  const socket = net.connect(proxy.port('plain'), '127.0.0.1')
  t.teardown(() => { socket.destroy() })
  socket.on('error', () => {})
  socket.pause() // reads nothing, ever
  const closed = new Promise((resolve) => socket.once('close', resolve))
  // Far more 404s (~200 bytes each) than the kernel's buffers hold: the proxy's writes back up.
  socket.write('GET /x HTTP/1.1\r\nHost: a\r\n\r\n'.repeat(40_000))
  const cut = await within(new Promise<SessionLog['sessions'][number]>((resolve) => {
    const poll = (): void => {
      const s = log.sessions.find((x) => x.error?.code === 'LB_ERR_CLIENT_SEND_TIMEOUT')
      if (s !== undefined) resolve(s)
      else setTimeout(poll, 20)
    }
    poll()
  }), GUARD_MS, 'a 404 is cut')
  t.equal(cut.status, 404, 'the answer that waited was the proxy\'s own 404')
  t.equal(cut.route, undefined)
  socket.resume() // the close comes after what was received
  await within(closed, GUARD_MS, 'the connection closes')
  t.ok(log.sessions.length < 40_000, `the proxy stopped after ${log.sessions.length} answers`)
})
