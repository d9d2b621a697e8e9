// timeouts.clientIdle on HTTP/1.1 (swept, see src/listener/keep-alive.ts): a
// keep-alive connection is closed once it has had no request in flight and
// sent nothing for that long, plain and over TLS; a slow answer, a client that
// keeps asking and an idle WebSocket tunnel are never reasons to close it; the
// responses still announce the timeout (Keep-Alive: timeout=N). Real proxy,
// origins and client sockets.
import net from 'node:net'
import tls from 'node:tls'
import t, { type Test } from 'tap'
import WebSocket from 'ws'
import { testCertificate } from '../helpers/certs.js'
import { tlsAndPlainListeners } from '../helpers/e2e.js'
import { startOrigin } from '../helpers/origin.js'
import { startProxy, type RunningProxy } from '../helpers/proxy.js'
import { startWsOrigin } from '../helpers/ws-origin.js'

const IDLE_MS = 1000
/** Failure guard only: nothing passes or fails on how long things take. */
const GUARD_MS = 15_000

/** A keep-alive client connection that reads whole Content-Length answers. */
class Conn {
  readonly socket: net.Socket
  readonly closed: Promise<'closed' | 'guard'>
  #buf = ''
  #wait: (() => void) | undefined

  constructor (socket: net.Socket) {
    this.socket = socket
    socket.setEncoding('latin1')
    socket.on('data', (d: string) => { this.#buf += d; this.#wait?.() })
    socket.on('error', () => {})
    this.closed = new Promise((resolve) => {
      const guard = setTimeout(() => resolve('guard'), GUARD_MS)
      socket.once('close', () => { clearTimeout(guard); this.#wait?.(); resolve('closed') })
    })
  }

  /** One GET; its head and body, or undefined when the connection closed first. */
  async get (path: string): Promise<{ head: string, body: string } | undefined> {
    this.socket.write(`GET ${path} HTTP/1.1\r\nHost: a\r\n\r\n`)
    for (;;) {
      const end = this.#buf.indexOf('\r\n\r\n')
      if (end >= 0) {
        const head = this.#buf.slice(0, end + 4)
        const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0)
        if (this.#buf.length >= end + 4 + length) {
          const body = this.#buf.slice(end + 4, end + 4 + length)
          this.#buf = this.#buf.slice(end + 4 + length)
          return { head, body }
        }
      }
      if (this.socket.destroyed) return undefined
      await new Promise<void>((resolve) => { this.#wait = resolve })
    }
  }
}

async function connect (t: Test, proxy: RunningProxy, listener: 'plain' | 'tls'): Promise<Conn> {
  const port = proxy.port(listener)
  const socket = listener === 'plain'
    ? net.connect({ host: '127.0.0.1', port })
    : tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] })
  t.teardown(() => { socket.destroy() })
  await new Promise<void>((resolve, reject) => {
    socket.once(listener === 'plain' ? 'connect' : 'secureConnect', () => resolve())
    socket.once('error', reject)
  })
  return new Conn(socket)
}

async function setup (t: Test): Promise<RunningProxy> {
  const cert = testCertificate(t)
  // /slow answers well after the idle time, with nothing on the wire meanwhile.
  const origin = await startOrigin(t, (seen, res) => {
    const answer = (): void => {
      const body = `answer ${seen.url}`
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': String(body.length) })
      res.end(body)
    }
    if (seen.url === '/slow') setTimeout(answer, IDLE_MS * 2.5)
    else answer()
  })
  const ws = await startWsOrigin(t)
  return startProxy(t, `${tlsAndPlainListeners(cert)}
timeouts: { clientIdle: ${IDLE_MS}ms }
routes:
  - { match: { pathPrefix: /ws }, backend: ws }
  - { backend: b }
backends:
  b: { servers: [{ url: "${origin.url}" }] }
  ws: { servers: [{ url: "${ws.url}" }] }
`)
}

t.test('h1 clientIdle: an idle keep-alive connection is closed, plain and TLS; the answers announce the timeout', async (t) => {
  const proxy = await setup(t)
  for (const listener of ['plain', 'tls'] as const) {
    const c = await connect(t, proxy, listener)
    const r = await c.get('/a')
    t.equal(r?.body, 'answer /a', `${listener}: answered`)
    t.match(r?.head, /\r\nConnection: keep-alive\r\nKeep-Alive: timeout=1\r\n/, `${listener}: the timeout is announced`)
    t.equal(await c.closed, 'closed', `${listener}: closed once idle`)
  }
  // A connection that never sends a request is closed too.
  const unused = await connect(t, proxy, 'plain')
  t.equal(await unused.closed, 'closed', 'a connection without a request is closed once idle')
})

t.test('h1 clientIdle: a slow answer and a client that keeps asking keep their connection', async (t) => {
  const proxy = await setup(t)
  const slow = await connect(t, proxy, 'plain')
  let closedEarly = false
  slow.socket.once('close', () => { closedEarly = true })
  const r = await slow.get('/slow')
  t.equal(r?.body, 'answer /slow', 'the slow answer arrives on its connection')
  t.notOk(closedEarly, 'not closed while its request was in flight, however quiet')

  // Requests a third of the timeout apart, for three timeouts: one connection throughout.
  const busy = await connect(t, proxy, 'tls')
  const answers: (string | undefined)[] = []
  for (let i = 0; i < 9; i++) {
    answers.push((await busy.get(`/n${i}`))?.body)
    await new Promise((resolve) => setTimeout(resolve, IDLE_MS / 3))
  }
  t.same(answers, Array.from({ length: 9 }, (_, i) => `answer /n${i}`), 'every request answered on the same connection')
  t.notOk(busy.socket.destroyed, 'still open')
  t.equal(await busy.closed, 'closed', 'and closed once it goes quiet')
})

t.test('h1 clientIdle: an idle WebSocket tunnel is not an idle HTTP connection', async (t) => {
  const proxy = await setup(t)
  const ws = new WebSocket(proxy.url('plain').replace(/^http/, 'ws') + '/ws')
  t.teardown(() => ws.terminate())
  let closed = false
  ws.on('close', () => { closed = true })
  await new Promise<void>((resolve, reject) => { ws.once('open', () => resolve()); ws.once('error', reject) })
  await new Promise((resolve) => setTimeout(resolve, IDLE_MS * 2.5))
  t.notOk(closed, 'the tunnel outlived the idle timeout')
  const echo = new Promise<string>((resolve) => ws.once('message', (m) => resolve(String(m))))
  ws.send('still there')
  t.equal(await echo, 'still there', 'and still carries messages')
})

t.test('bytes that start no request do not hold a connection; a slow head gets its 408; a TLS handshake is bounded too', async (t) => {
  const cert = testCertificate(t)
  const origin = await startOrigin(t, (seen, res) => {
    const body = `origin saw ${seen.method} ${seen.url}`
    res.writeHead(200, { 'content-length': String(body.length) })
    res.end(body)
  })
  // clientIdle far beyond the guard: only clientHeaders can close these in time.
  const proxy = await startProxy(t, `${tlsAndPlainListeners(cert)}
timeouts: { clientIdle: 120s, clientHeaders: 1s }
routes: [{ backend: b }]
backends: { b: { servers: [{ url: "${origin.url}" }] } }
`)
  // llhttp skips CRLF before a request line (RFC 9112 §2.2), so no head ever
  // starts: before, every read reset the idle clock and such a client held
  // its connection for as long as it kept sending.
  for (const listener of ['plain', 'tls'] as const) {
    for (const first of [false, true]) {
      const c = await connect(t, proxy, listener)
      if (first) t.equal((await c.get('/a'))?.body, 'origin saw GET /a', `${listener}: a request first`)
      const drip = setInterval(() => { if (!c.socket.destroyed) c.socket.write('\r\n') }, 200)
      t.teardown(() => clearInterval(drip))
      t.equal(await c.closed, 'closed', `${listener}${first ? ', after a request' : ''}: CRLF alone is closed`)
      clearInterval(drip)
    }
  }
  // Answered requests are not unanswered bytes: a client asking every 300 ms
  // for three times clientHeaders (and a sweep) keeps its connection, on the
  // lane's answers alike.
  for (const listener of ['plain', 'tls'] as const) {
    const c = await connect(t, proxy, listener)
    const bodies: (string | undefined)[] = []
    for (let i = 0; i < 10; i++) {
      bodies.push((await c.get(`/k${i}`))?.body)
      await new Promise((resolve) => setTimeout(resolve, 300))
    }
    t.same(bodies, Array.from({ length: 10 }, (_, i) => `origin saw GET /k${i}`), `${listener}: every request answered on one connection`)
    t.notOk(c.socket.destroyed, `${listener}: still open`)
    c.socket.destroy()
  }
  // A head sent a line at a time: node:http's 408 (its check ran every 30 s; now every second).
  const slow = await connect(t, proxy, 'plain')
  const lines = ['GET / HTTP/1.1\r\n', 'Host: a\r\n', 'X-1: 1\r\n', 'X-2: 2\r\n', 'X-3: 3\r\n', 'X-4: 4\r\n', 'X-5: 5\r\n', 'X-6: 6\r\n']
  let got = ''
  slow.socket.on('data', (d: string) => { got += d })
  const trickle = setInterval(() => { const l = lines.shift(); if (l !== undefined && !slow.socket.destroyed) slow.socket.write(l) }, 400)
  t.teardown(() => clearInterval(trickle))
  t.equal(await slow.closed, 'closed', 'a slow head is closed')
  clearInterval(trickle)
  t.match(got, /^HTTP\/1\.1 408 /, 'with node:http\'s 408')
  // A TCP connection to the TLS listener that never starts its handshake: Node's default waits 120 s.
  const bare = net.connect({ host: '127.0.0.1', port: proxy.port('tls') })
  t.teardown(() => { bare.destroy() })
  bare.on('error', () => {})
  const bareClosed = await new Promise<string>((resolve) => {
    const guard = setTimeout(() => resolve('guard'), GUARD_MS)
    bare.once('close', () => { clearTimeout(guard); resolve('closed') })
  })
  t.equal(bareClosed, 'closed', 'a handshake that never comes is closed after clientHeaders')
  t.equal((await (await connect(t, proxy, 'tls')).get('/b'))?.body, 'origin saw GET /b', 'the listener still serves')
})
