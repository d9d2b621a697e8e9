// An origin that sends 100 Continue nobody asked for (the client sent no
// Expect), as some application servers do on every request. undici 7's
// HTTP/1.1 parser destroys the connection on any 100 (client-h1.js,
// Parser.onHeadersComplete: `statusCode === 100` → SocketError 'bad
// response'), so the client got a 502 and, for a GET, the origin got the
// request twice (a retry). nginx and HAProxy drop the 100 and relay the final
// response; so do we (upstream/connector.ts). A 100 is never relayed: the
// proxy answers its own clients' Expect, and an HTTP/1.0 client must never
// see a 1xx (RFC 9110 §15.2).
import t from 'tap'
import type { Test } from 'tap'
import type { Socket } from 'node:net'
import { testCertificate } from '../helpers/certs.js'
import { h1, h2, rawRequest, tlsAndPlainListeners } from '../helpers/e2e.js'
import { startRawServer, type RawSeen } from '../helpers/raw-origin.js'
import { startServer } from '../helpers/origin.js'
import { startProxy, type RunningProxy } from '../helpers/proxy.js'
import { SessionLog, within } from '../helpers/stream-kit.js'

const FINAL = 'HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 5\r\n\r\nhello'

/** Per path: the pieces the origin writes, each once the one before is flushed; `null` ends the connection (FIN). */
const SCRIPTS: Record<string, ReadonlyArray<string | null>> = {
  '/one': ['HTTP/1.1 100 Continue\r\n\r\n' + FINAL],
  '/split': ['HTTP/1.1 100 Continue\r\n\r\n', FINAL],
  // The status line cut in two reads: the parser, not a byte scan, must see the 100.
  '/torn': ['HTTP/1.1 10', '0 Continue\r\nx-odd: field\r\n\r\n', FINAL],
  '/several': ['HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 100 Continue\r\n\r\n', 'HTTP/1.1 102 Processing\r\n\r\n',
    'HTTP/1.1 103 Early Hints\r\nlink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 100 Continue\r\n\r\n', FINAL],
  '/http10': ['HTTP/1.1 100 Continue\r\n\r\n', 'HTTP/1.0 200 OK\r\ncontent-length: 5\r\n\r\nhello', null],
  '/then-close': ['HTTP/1.1 100 Continue\r\n\r\n', null],
  '/102-then-close': ['HTTP/1.1 102 Processing\r\n\r\n', null]
}

async function setup (t: Test): Promise<{ proxy: RunningProxy, log: SessionLog, seen: RawSeen[] }> {
  const seen: RawSeen[] = []
  const origin = await startRawServer(t, (req: RawSeen, socket: Socket) => {
    seen.push(req)
    const script = SCRIPTS[req.target] ?? [FINAL]
    const next = (i: number): void => {
      if (i >= script.length || socket.destroyed) return
      const piece = script[i]
      if (piece === null || piece === undefined) {
        socket.end()
        return
      }
      // Flushed, then a turn of the event loop: the proxy reads each piece on its own.
      socket.write(piece, () => setTimeout(() => next(i + 1), 5))
    }
    next(0)
    return !script.includes(null)
  })
  const log = new SessionLog()
  const cert = testCertificate(t)
  const proxy = await startProxy(t, `${tlsAndPlainListeners(cert)}
routes: [{ backend: raw }]
backends:
  raw:
    connections: 1
    retries: { attempts: 0 }
    servers: [{ url: "${origin.url}" }]
`, log.hooks)
  return { proxy, log, seen }
}

const server = (proxy: RunningProxy) => proxy.app.status()[0]!.shards[0]!.servers[0]!

t.test('an unsolicited 100 Continue: dropped, the final response relayed intact to h1 and h2 clients', async (t) => {
  const { proxy, seen } = await setup(t)
  for (const path of ['/one', '/split', '/torn', '/several']) {
    const a = await h1(proxy.url('plain'), { path })
    t.equal(a.status, 200, `${path} h1`)
    t.equal(a.text, 'hello', `${path} h1 body`)
    const b = await h2(t, proxy.url('tls'), { ':path': path })
    t.equal(b.status, 200, `${path} h2`)
    t.equal(b.text, 'hello', `${path} h2 body`)
    t.equal(b.rstCode, undefined, `${path} h2: a clean end`)
    t.equal(seen.filter((r) => r.target === path).length, 2, `${path}: one request upstream per client request (no retry)`)
  }
  t.equal(server(proxy).failures, 0, 'nothing counted against the server')
  t.equal(seen.length, 8)
})

t.test('the 100 never reaches the client; the 102 and 103 around it still do (HTTP/1.1 only)', async (t) => {
  const { proxy } = await setup(t)
  const r = await rawRequest(proxy.port('plain'), 'GET /several HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')
  t.notMatch(r.raw, /HTTP\/1\.1 100 /, 'no 100 relayed')
  t.match(r.raw, /^HTTP\/1\.1 102 Processing\r\n\r\nHTTP\/1\.1 103 Early Hints\r\nlink: <\/a\.css>; rel=preload\r\n\r\nHTTP\/1\.1 200 OK\r\n/i,
    'the 102 and the 103, then the final response')
  t.equal(r.body.slice(r.body.lastIndexOf('\r\n\r\n') + 4), 'hello')
  const old = await rawRequest(proxy.port('plain'), 'GET /several HTTP/1.0\r\nHost: a\r\n\r\n')
  t.match(old.raw, /^HTTP\/1\.1 200 OK\r\n/, 'an HTTP/1.0 client sees no 1xx at all (RFC 9110 §15.2)')
  t.match(old.raw, /\r\n\r\nhello$/)
})

t.test('a 100, then a close-delimited HTTP/1.0 response: relayed whole', async (t) => {
  const { proxy } = await setup(t)
  const r = await rawRequest(proxy.port('plain'), 'GET /http10 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')
  t.equal(r.status, 200)
  t.match(r.raw, /\r\n\r\nhello$/)
})

t.test('the upstream connection stays usable after a 100', async (t) => {
  const { proxy, seen } = await setup(t)
  for (let i = 0; i < 3; i++) t.equal((await h1(proxy.url('plain'), { path: '/split' })).text, 'hello')
  // connections: 1 and a keep-alive origin: had the 100 broken the connection, each request would be a new one.
  t.equal(seen.length, 3)
  t.equal(server(proxy).failures, 0)
})

t.test('a 100 and then a close: 502 LB_ERR_UPSTREAM_RESET (never a hang), counted against the server and logged', async (t) => {
  const { proxy, log, seen } = await setup(t)
  const a = await within(h1(proxy.url('plain'), { path: '/then-close' }), 10_000, 'the h1 answer')
  t.equal(a.status, 502)
  t.equal(a.headers['x-switchyard-error'], 'LB_ERR_UPSTREAM_RESET')
  const b = await within(h2(t, proxy.url('tls'), { ':path': '/then-close' }), 10_000, 'the h2 answer')
  t.equal(b.status, 502)
  const ended = await log.ended('/then-close')
  t.equal(ended.error?.code, 'LB_ERR_UPSTREAM_RESET', 'the access log names the failure')
  t.equal(ended.error?.flag, 'UC')
  t.equal(server(proxy).failures, 2, 'counted against the server')
  t.equal(seen.filter((r) => r.target === '/then-close').length, 2, 'not retried')
  const c = await within(h1(proxy.url('plain'), { path: '/102-then-close' }), 10_000, 'the answer after a 102')
  t.equal(c.status, 502, 'any 1xx then a close: the same')
  t.equal(c.headers['x-switchyard-error'], 'LB_ERR_UPSTREAM_RESET')
})

t.test('100s without end: 504 once the headers timeout has passed, not a stall', async (t) => {
  const timers = new Set<NodeJS.Timeout>()
  t.teardown(() => { for (const timer of timers) clearInterval(timer) })
  const origin = await startRawServer(t, (_seen, socket) => {
    const timer = setInterval(() => {
      if (socket.destroyed) clearInterval(timer)
      else socket.write('HTTP/1.1 100 Continue\r\n\r\n')
    }, 20)
    timers.add(timer)
    return false
  })
  const cert = testCertificate(t)
  const proxy = await startProxy(t, `${tlsAndPlainListeners(cert)}
routes: [{ backend: raw }]
backends:
  raw:
    retries: { attempts: 0 }
    timeouts: { headers: 300ms }
    servers: [{ url: "${origin.url}" }]
`)
  const r = await rawRequest(proxy.port('plain'), 'GET /endless HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n', { limitMs: 10_000 })
  t.match(r.raw, /^HTTP\/1\.1 504 /, 'h1: 504, and no 100 relayed before it')
  t.equal(r.headers['x-switchyard-error'], 'LB_ERR_UPSTREAM_TIMEOUT')
  const viaH2 = await within(h2(t, proxy.url('tls'), { ':path': '/endless' }), 10_000, 'the h2 answer')
  t.equal(viaH2.status, 504)
  t.equal(server(proxy).failures, 2)
})

t.test('a 100 written ahead of reading an upload (a real Node origin, no Expect): the upload and the answer go through', async (t) => {
  // Node's res.writeContinue() writes a 100 whenever it is called, as some frameworks do on every request with a body.
  const origin = await startServer(t, (req, res) => {
    res.writeContinue()
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => { res.writeHead(201, { 'content-type': 'text/plain' }).end(`got ${Buffer.concat(chunks).length}`) })
  })
  const cert = testCertificate(t)
  const proxy = await startProxy(t, `${tlsAndPlainListeners(cert)}
routes: [{ backend: o }]
backends: { o: { retries: { attempts: 0 }, servers: [{ url: "${origin.url}" }] } }
`)
  const body = Buffer.alloc(200_000, 0x61)
  const a = await h1(proxy.url('plain'), { method: 'POST', path: '/up', body })
  t.equal(a.status, 201, 'h1')
  t.equal(a.text, 'got 200000')
  const b = await h2(t, proxy.url('tls'), { ':path': '/up', ':method': 'POST' }, body)
  t.equal(b.status, 201, 'h2')
  t.equal(b.text, 'got 200000')
  t.equal(server(proxy).failures, 0)
})
