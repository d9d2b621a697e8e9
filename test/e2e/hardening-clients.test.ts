// Issue 8, item 4: slow and stuck clients. A request body that stalls, or a
// request that is not complete by its deadline, is cut with 408 (or a reset
// once the response has started), on HTTP/1.1 and on each HTTP/2 stream, also
// while a small body is buffered for retries. Tunnels (WebSocket) time out
// when idle, hold their server's maxConn slot and a listener slot until they
// close, and only `Upgrade: websocket` is ever tunnelled (no h2c smuggling).
import net from 'node:net'
import t from 'tap'
import type { Test } from 'tap'
import WebSocket, { WebSocketServer } from 'ws'
import { testCertificate } from '../helpers/certs.js'
import { h2Session, rawRequest, tlsAndPlainListeners } from '../helpers/e2e.js'
import { startOrigin } from '../helpers/origin.js'
import { startProxy, type RunningProxy } from '../helpers/proxy.js'
import { startServer } from '../helpers/origin.js'

interface Trickled { readonly status: number; readonly raw: string; readonly closed: boolean }

/**
 * Sends `head`, then one body byte every `everyMs` until the proxy answers
 * and closes (or `limitMs` passes).
 */
function trickle (port: number, head: string, everyMs: number, limitMs = 5000): Promise<Trickled> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1')
    let raw = ''
    let timer: NodeJS.Timeout | undefined
    const done = (closed: boolean): void => {
      clearInterval(timer)
      clearTimeout(limit)
      socket.destroy()
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(raw)?.[1] ?? 0), raw, closed })
    }
    const limit = setTimeout(() => done(false), limitMs)
    socket.on('connect', () => {
      socket.write(head + 'x')
      timer = setInterval(() => { if (!socket.destroyed) socket.write('x') }, everyMs)
    })
    socket.on('data', (c: Buffer) => { raw += c.toString('latin1') })
    socket.on('error', () => {})
    socket.on('close', () => done(true))
  })
}

async function proxyFor (t: Test, o: { readonly url: string }, extra: string): Promise<RunningProxy> {
  const cert = testCertificate(t)
  return startProxy(t, `${tlsAndPlainListeners(cert)}
${extra}
routes: [{ backend: o }]
backends: { o: { servers: [{ url: "${o.url}" }] } }
`)
}

t.test('a stalled body: 408 LB_ERR_CLIENT_BODY_TIMEOUT and the connection closed (streamed and buffered bodies)', async (t) => {
  const o = await startOrigin(t)
  const p = await proxyFor(t, o, 'timeouts: { clientBody: 300ms }')
  // POST is streamed upstream as it comes; PUT (idempotent, small) is buffered for retries first.
  for (const method of ['POST', 'PUT']) {
    const started = performance.now()
    const r = await trickle(p.port('plain'), `${method} /up HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n`, 1000)
    t.equal(r.status, 408, `${method}: 408`)
    t.match(r.raw, /x-switchyard-error: LB_ERR_CLIENT_BODY_TIMEOUT/)
    t.match(r.raw, /connection: close/i)
    t.ok(r.closed, `${method}: the proxy closed the connection`)
    t.ok(performance.now() - started < 4000, `${method}: cut well before the body could finish`)
  }
  t.equal(o.requests.length, 0, 'no truncated body ever reached the origin as a complete one')
})

t.test('a request deadline: a body that keeps trickling is cut too (LB_ERR_REQUEST_TIMEOUT)', async (t) => {
  const o = await startOrigin(t)
  const p = await proxyFor(t, o, 'timeouts: { clientBody: 10s, request: 500ms }')
  const r = await trickle(p.port('plain'), 'POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n', 50)
  t.equal(r.status, 408)
  t.match(r.raw, /x-switchyard-error: LB_ERR_REQUEST_TIMEOUT/)
  t.ok(r.closed)
})

t.test('HTTP/2: each stream has its own body timer; the session lives on', async (t) => {
  const o = await startOrigin(t)
  const p = await proxyFor(t, o, 'timeouts: { clientBody: 300ms }')
  const session = await h2Session(t, p.url('tls'))
  const stuck = session.request({ ':method': 'POST', ':path': '/up', 'content-length': '100000' }, { endStream: false })
  stuck.write('x')
  const reply = await new Promise<{ status: number, code: string | undefined, rst: number }>((resolve) => {
    let status = 0
    let code: string | undefined
    stuck.on('response', (h) => { status = Number(h[':status']); code = h['x-switchyard-error'] as string | undefined })
    stuck.on('data', () => {})
    stuck.on('error', () => {})
    stuck.on('close', () => resolve({ status, code, rst: stuck.rstCode ?? 0 }))
  })
  t.equal(reply.status, 408)
  t.equal(reply.code, 'LB_ERR_CLIENT_BODY_TIMEOUT')
  t.equal(reply.rst, 0, 'the stream ends with NO_ERROR once answered')
  const fine = session.request({ ':method': 'POST', ':path': '/ok', 'content-length': '2' })
  fine.end('hi')
  const status = await new Promise<number>((resolve) => {
    fine.on('response', (h) => resolve(Number(h[':status'])))
    fine.resume()
  })
  t.equal(status, 200, 'the same session still serves')
  session.close()
})

t.test('a stall after the response started: the connection is reset', async (t) => {
  // The origin answers at once and streams, never waiting for the upload.
  const o = await startServer(t, (req, res) => {
    req.resume()
    res.writeHead(200, { 'content-type': 'text/plain' })
    res.write('started\n')
  })
  const p = await proxyFor(t, o, 'timeouts: { clientBody: 300ms }')
  const r = await trickle(p.port('plain'), 'POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n', 2000)
  t.equal(r.status, 200, 'the response had started')
  t.ok(r.closed, 'then the stalled request was cut')
  t.notMatch(r.raw, /\r\n0\r\n\r\n/, 'never a clean end that would pass a truncated exchange as complete')
})

async function wsOrigin (t: Test): Promise<{ origin: Awaited<ReturnType<typeof startServer>>, wss: WebSocketServer }> {
  const origin = await startServer(t, (_req, res) => { res.writeHead(200).end('plain') })
  const wss = new WebSocketServer({ server: origin.server })
  wss.on('connection', (ws) => { ws.on('message', (d, bin) => ws.send(d, { binary: bin })) })
  t.teardown(() => { for (const c of wss.clients) c.terminate(); wss.close() })
  return { origin, wss }
}

function openWs (url: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url)
    ws.once('open', () => resolve(ws))
    ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode} ${String(res.headers['x-switchyard-error'])}`)))
    ws.once('error', reject)
  })
}

t.test('tunnels: idle timeout, maxConn held while open, per-listener cap', async (t) => {
  const { origin } = await wsOrigin(t)
  const p = await startProxy(t, `listeners:
  - { name: web, bind: "127.0.0.1:0", maxTunnels: 1 }
timeouts: { tunnel: 1500ms }
routes: [{ backend: o }]
backends:
  o:
    maxConn: 1
    timeouts: { queue: 200ms }
    servers: [{ url: "${origin.url}" }]
`)
  const url = `ws://127.0.0.1:${p.port('web')}/ws`
  const ws = await openWs(url)
  ws.send('hello')
  const [echo] = await Promise.all([new Promise<string>((resolve) => ws.once('message', (d) => resolve(String(d))))])
  t.equal(echo, 'hello')
  t.equal(p.app.status()[0]!.shards[0]!.servers[0]!.active, 1, 'the open tunnel holds its server slot')
  const queued = await rawRequest(p.port('web'), 'GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')
  t.equal(queued.status, 503, 'maxConn 1 is taken by the tunnel')
  t.equal(queued.headers['x-switchyard-error'], 'LB_ERR_QUEUE_TIMEOUT')
  await t.rejects(openWs(url), /HTTP 503 LB_ERR_TOO_MANY_TUNNELS/, 'maxTunnels 1')
  const closed = await new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)))
  t.ok(closed > 0, 'the idle tunnel was closed by timeouts.tunnel')
  await new Promise((resolve) => setTimeout(resolve, 50))
  t.equal(p.app.status()[0]!.shards[0]!.servers[0]!.active, 0, 'and its slot released')
  t.equal((await rawRequest(p.port('web'), 'GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')).status, 200)
  const again = await openWs(url)
  t.pass('a new tunnel fits again')
  again.terminate()
})

t.test('Upgrade: h2c is never tunnelled: answered as an ordinary request, Upgrade not forwarded', async (t) => {
  const o = await startOrigin(t)
  const p = await proxyFor(t, o, '')
  const r = await rawRequest(p.port('plain'), 'GET /smuggle HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\n' +
    'Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n')
  t.equal(r.status, 200, 'an ordinary 200, not 101')
  t.match(r.headers.connection ?? '', /close/)
  const seen = o.requests[0]!
  t.equal(seen.url, '/smuggle')
  t.notOk(seen.headers.upgrade, 'no Upgrade reached the origin')
  t.notOk(seen.headers['http2-settings'])
  t.notMatch(String(seen.headers.connection ?? ''), /upgrade/i)
  const ws = await rawRequest(p.port('plain'), 'GET /x HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket, h2c\r\n' +
    'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n', { limitMs: 3000 })
  t.not(ws.status, 101, 'the echo origin declines; nothing was switched')
  t.equal(o.requests[1]?.headers.upgrade, 'websocket', 'a WebSocket upgrade carries only `websocket`')
})

t.test('an HTTP/1.0 request\'s Upgrade: websocket is ignored (RFC 9110 §7.8): an ordinary answer, never a 101', async (t) => {
  const { origin } = await wsOrigin(t)
  const p = await proxyFor(t, origin, '')
  const upgrade = 'Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n'
  const r = await rawRequest(p.port('plain'), `GET /ws HTTP/1.0\r\nHost: a\r\n${upgrade}\r\n`, { limitMs: 3000 })
  t.equal(r.status, 200, 'the origin\'s plain answer, not a tunnel')
  t.equal(r.body, 'plain')
  await t.rejects(rawRequest(p.port('plain'), `GET /ws HTTP/1.1\r\nHost: a\r\n${upgrade}\r\n`, { limitMs: 300 }),
    /HTTP\/1\.1 101 /, 'the same over HTTP/1.1 is tunnelled (and stays open)')
})

t.test('a WebSocket upgrade at maxConn waits in the shard queue like any request (issue 9)', async (t) => {
  const { origin } = await wsOrigin(t)
  const p = await startProxy(t, `listeners: [{ name: web, bind: "127.0.0.1:0" }]
routes: [{ backend: o }]
backends:
  o:
    maxConn: 1
    timeouts: { queue: 5s }
    servers: [{ url: "${origin.url}" }]
`)
  const url = `ws://127.0.0.1:${p.port('web')}/ws`
  const first = await openWs(url)
  let secondOpen = false
  const second = openWs(url).then((ws) => { secondOpen = true; return ws })
  await new Promise((resolve) => setTimeout(resolve, 300))
  t.equal(secondOpen, false, 'the second upgrade waits while the first holds the only slot')
  t.equal(p.app.status()[0]!.shards[0]!.queued, 1, 'queued in the shard, not refused')
  first.close()
  const ws = await second
  t.ok(secondOpen, 'and goes through once the first tunnel closes')
  ws.send('queued hello')
  t.equal(await new Promise<string>((resolve) => ws.once('message', (d) => resolve(String(d)))), 'queued hello')
  ws.terminate()
})

t.test('a queued WebSocket upgrade whose client leaves frees its queue place at once (issue 8, item 8)', async (t) => {
  const { origin } = await wsOrigin(t)
  const p = await startProxy(t, `listeners: [{ name: web, bind: "127.0.0.1:0" }]
routes: [{ backend: o }]
backends:
  o:
    maxConn: 1
    maxQueue: 1
    timeouts: { queue: 60s }
    servers: [{ url: "${origin.url}" }]
`)
  const shard = (): { readonly queued: number } => p.app.status()[0]!.shards[0]!
  const url = `ws://127.0.0.1:${p.port('web')}/ws`
  const first = await openWs(url)
  // A raw upgrade, so the client can leave while it waits.
  const waiting = net.connect(p.port('web'), '127.0.0.1')
  waiting.on('error', () => {})
  waiting.write('GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n' +
    'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n')
  for (let i = 0; i < 500 && shard().queued === 0; i++) await new Promise((resolve) => setTimeout(resolve, 10))
  t.equal(shard().queued, 1, 'the second upgrade waits in the queue')
  waiting.destroy()
  for (let i = 0; i < 500 && shard().queued > 0; i++) await new Promise((resolve) => setTimeout(resolve, 10))
  t.equal(shard().queued, 0, 'gone from the queue when its client left, not at the queue timeout')
  const third = openWs(url)
  for (let i = 0; i < 500 && shard().queued === 0; i++) await new Promise((resolve) => setTimeout(resolve, 10))
  t.equal(shard().queued, 1, 'the place is free for the next one (maxQueue 1), which waits instead of a 503')
  first.close()
  const ws = await third
  t.pass('and goes through once the first tunnel closes')
  ws.terminate()
})

t.test('a WebSocket upgrade with a large request body is answered (its bytes are read past a bound, not dropped)', async (t) => {
  // Found by the fuzz (seed 741918709) while reading upgrade sockets early was new:
  // 70,000 body bytes, more than are read before the tunnel opens.
  const o = await startOrigin(t)
  const p = await proxyFor(t, o, '')
  const body = 'b'.repeat(70_000)
  const r = await rawRequest(p.port('plain'), 'GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n' +
    'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nContent-Length: 70000\r\n\r\n' + body, { limitMs: 10_000 })
  t.equal(r.status, 200, 'the origin\'s answer (it does not speak WebSocket), not a close without one')
})

t.test('an Upgrade that is not tunnelled, with a request body: 400 at once, never left waiting for a body that cannot arrive', async (t) => {
  const o = await startOrigin(t)
  const p = await proxyFor(t, o, '')
  for (const [method, upgrade] of [['GET', 'Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA'],
    ['DELETE', 'Connection: Upgrade\r\nUpgrade: websocket']] as const) {
    const started = performance.now()
    const r = await rawRequest(p.port('plain'), `${method} /up HTTP/1.1\r\nHost: a\r\n${upgrade}\r\nContent-Length: 1\r\n\r\nb`, { limitMs: 3000 })
    t.equal(r.status, 400, `${method} + ${upgrade.split('\r\n').at(-1)!}`)
    t.ok(performance.now() - started < 2500, 'answered at once')
  }
  t.equal(o.requests.length, 0)
})
