// 103 Early Hints (RFC 8297) end to end: an origin's 103 reaches HTTP/1.1
// and HTTP/2 clients before the final response and is never stored; a
// route's configured `earlyHints` go out as soon as the request goes
// upstream; an HTTP/1.0 client gets none; an origin that sends interim
// responses without end is cut off with a 502 instead of holding the request.
// Real origins (node:http's writeEarlyHints and a raw socket), real clients.
import http from 'node:http'
import type { ClientHttp2Session } from 'node:http2'
import t from 'tap'
import { testCertificate } from '../helpers/certs.js'
import { h2Session, rawRequest, tlsAndPlainListeners } from '../helpers/e2e.js'
import { startServer } from '../helpers/origin.js'
import { startRawOrigin, startRawServer } from '../helpers/raw-origin.js'
import { startProxy } from '../helpers/proxy.js'

const ORIGIN_LINK = '</origin.css>; rel=preload; as=style'
const ROUTE_LINKS = ['</app.js>; rel=preload; as=script', '<https://cdn.example>; rel=preconnect']

/** What an HTTP/1.1 client saw, in order: each 1xx (status, link) then the final status and body. */
interface Seen { events: string[], status: number, body: string, headers: http.IncomingHttpHeaders }

function viaH1 (base: string, path: string): Promise<Seen> {
  return new Promise((resolve, reject) => {
    const events: string[] = []
    const req = http.get(`${base}${path}`, { agent: false }, (res) => {
      events.push(`final ${res.statusCode ?? 0}`)
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => { body += c })
      res.on('end', () => resolve({ events, status: res.statusCode ?? 0, body, headers: res.headers }))
    })
    req.on('information', (info) => {
      events.push(`${info.statusCode} ${String(info.headers.link)}${info.headers['x-my-header'] === undefined ? '' : ` x-my-header: ${String(info.headers['x-my-header'])}`}`)
    })
    req.on('error', reject)
  })
}

function viaH2 (session: ClientHttp2Session, path: string): Promise<Seen> {
  return new Promise((resolve, reject) => {
    const events: string[] = []
    const stream = session.request({ ':path': path })
    // node:http2 reports 1xx heads as 'headers' before 'response'.
    stream.on('headers', (h) => {
      events.push(`${String(h[':status'])} ${String(h.link)}${h['x-my-header'] === undefined ? '' : ` x-my-header: ${String(h['x-my-header'])}`}`)
    })
    let status = 0
    let headers: http.IncomingHttpHeaders = {}
    stream.on('response', (h) => {
      status = Number(h[':status'])
      headers = h as http.IncomingHttpHeaders
      events.push(`final ${status}`)
    })
    let body = ''
    stream.setEncoding('utf8')
    stream.on('data', (c: string) => { body += c })
    stream.on('end', () => resolve({ events, status, body, headers }))
    stream.on('error', reject)
  })
}

t.test('early hints', async (t) => {
  const cert = testCertificate(t)
  const origin = await startServer(t, (req, res) => {
    if (req.url?.startsWith('/hinted') === true) res.writeEarlyHints({ link: ORIGIN_LINK, 'x-my-header': 'test' })
    const cacheable = req.url?.startsWith('/hinted/cached') === true
    res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': cacheable ? 'public, max-age=600' : 'no-store' })
    res.end(`final ${req.url ?? ''}`)
  })
  // 20 interim responses at once before the final one; then one 103 whose Link is not a link, and 102s.
  const raw = await startRawOrigin(t, (seen) => {
    const ok = 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok'
    if (seen.target === '/burst') return 'HTTP/1.1 103 Early Hints\r\nlink: </a.css>; rel=preload\r\n\r\n'.repeat(20) + ok
    if (seen.target === '/odd') {
      return 'HTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: javascript:alert(1)\r\nx-other: 1\r\n\r\n' +
        'HTTP/1.1 103 Early Hints\r\nlink: </b.css>; rel=preload, </c.js>; rel=preload; as=script\r\n\r\n' + ok
    }
    return ok
  })
  // A 103 every 50 ms and never a final answer.
  const endless = await startRawServer(t, (_seen, socket) => {
    const timer = setInterval(() => socket.write('HTTP/1.1 103 Early Hints\r\nlink: </a.css>; rel=preload\r\n\r\n'), 50)
    socket.once('close', () => clearInterval(timer))
    return true
  })
  const proxy = await startProxy(t, `${tlsAndPlainListeners(cert)}
cache: { maxBytes: 8MiB }
routes:
  - match: { pathPrefix: /configured }
    backend: origin
    earlyHints: ${JSON.stringify(ROUTE_LINKS)}
  - match: { pathPrefix: /burst }
    backend: raw
  - match: { pathPrefix: /storm }
    backend: endless
  - match: { pathPrefix: /odd }
    backend: raw
  - match: { pathPrefix: / }
    backend: origin
backends:
  origin: { servers: [{ url: "${origin.url}" }] }
  raw:
    retries: { attempts: 0 }
    servers: [{ url: "${raw.url}" }]
  endless:
    retries: { attempts: 0 }
    timeouts: { headers: 500ms }
    servers: [{ url: "${endless.url}" }]
`)
  const plain = proxy.url('plain')
  const session = await h2Session(t, proxy.url('tls'))

  t.test('an origin\'s 103 reaches HTTP/1.1 and HTTP/2 clients before the final response, with its fields', async (t) => {
    const h1 = await viaH1(plain, '/hinted/a')
    t.same(h1.events, [`103 ${ORIGIN_LINK} x-my-header: test`, 'final 200'])
    t.equal(h1.body, 'final /hinted/a')
    const h2 = await viaH2(session, '/hinted/b')
    t.same(h2.events, [`103 ${ORIGIN_LINK} x-my-header: test`, 'final 200'])
    t.equal(h2.body, 'final /hinted/b')
  })

  t.test('a 103 is never stored: a cache hit has none, and no Link from it', async (t) => {
    const miss = await viaH1(plain, '/hinted/cached')
    t.same(miss.events, [`103 ${ORIGIN_LINK} x-my-header: test`, 'final 200'])
    t.match(miss.headers['cache-status'], /stored/)
    const hit = await viaH1(plain, '/hinted/cached')
    t.same(hit.events, ['final 200'], 'answered from the cache at once')
    t.match(hit.headers['cache-status'], /hit/)
    t.equal(hit.headers.link, undefined, 'the hint\'s Link is not part of the stored response')
  })

  t.test('a route\'s earlyHints go out as the request goes upstream, on both protocols', async (t) => {
    const h1 = await viaH1(plain, '/configured/x')
    t.same(h1.events, [`103 ${ROUTE_LINKS.join(', ')}`, 'final 200'])
    const h2 = await viaH2(session, '/configured/y')
    t.same(h2.events, [`103 ${ROUTE_LINKS.join(', ')}`, 'final 200'])
  })

  t.test('an HTTP/1.0 client gets no 1xx', async (t) => {
    const port = Number(new URL(plain).port)
    const reply = await rawRequest(port, 'GET /configured/old HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n')
    t.equal(reply.status, 200)
    t.notMatch(reply.raw, /HTTP\/1\.[01] 1\d\d/, 'no interim response on the wire (the random request id may hold "103")')
  })

  t.test('102 is relayed; a 103 only with well-formed links', async (t) => {
    const h1 = await viaH1(plain, '/odd')
    t.same(h1.events, ['102 undefined', '103 </b.css>; rel=preload, </c.js>; rel=preload; as=script', 'final 200'])
    t.equal(h1.body, 'ok')
    const h2 = await viaH2(session, '/odd')
    t.same(h2.events, ['102 undefined', '103 </b.css>; rel=preload, </c.js>; rel=preload; as=script', 'final 200'])
  })

  t.test('a burst of 103s: the first eight are relayed as they come, the rest dropped (never held in memory)', async (t) => {
    const h1 = await viaH1(plain, '/burst')
    t.equal(h1.status, 200)
    t.equal(h1.events.filter((e) => e.startsWith('103')).length, 8)
  })

  t.test('an origin that keeps sending interim responses gets a 504 after the headers timeout, not a held request', async (t) => {
    const h1 = await viaH1(plain, '/storm')
    t.equal(h1.status, 504)
    t.equal(h1.headers['x-switchyard-error'], 'LB_ERR_UPSTREAM_TIMEOUT')
    t.ok(h1.events.filter((e) => e.startsWith('103')).length >= 1, 'the hints that came in time were relayed')
    const after = await viaH1(plain, '/hinted/after')
    t.equal(after.status, 200, 'the proxy carries on')
  })
})
