// WebSocket over HTTP/2 (RFC 8441) through the TLS listener: the listener
// advertises SETTINGS_ENABLE_CONNECT_PROTOCOL, an extended CONNECT with
// `:protocol: websocket` becomes an HTTP/1.1 Upgrade to the backend (our own
// Sec-WebSocket-Key, its Accept checked), and frames flow both ways on the
// stream. A refused upgrade is relayed, a dead server is 502, a plain
// CONNECT is still 405, the listener's maxTunnels holds. Real servers: a
// `ws` origin, node:http2 clients speaking RFC 6455 frames by hand, and
// Chromium, which uses RFC 8441 on an h2 connection that offers it.
import { once } from 'node:events'
import http2 from 'node:http2'
import type { ClientHttp2Session, ClientHttp2Stream, IncomingHttpHeaders } from 'node:http2'
import t from 'tap'
import type { Test } from 'tap'
import { testCertificate } from '../helpers/certs.js'
import { browserContext, CHROMIUM, inCI } from '../helpers/chromium.js'
import { closedPort, startServer } from '../helpers/origin.js'
import { startWsOrigin, type WsOrigin } from '../helpers/ws-origin.js'
import { startProxy, type RunningProxy } from '../helpers/proxy.js'
import { existsSync } from 'node:fs'
import tls from 'node:tls'

async function setup (tt: Test, extra = ''): Promise<{ proxy: RunningProxy, origin: WsOrigin }> {
  const cert = testCertificate(tt)
  const page = '<!doctype html><title>ws over h2</title>'
  const origin = await startWsOrigin(tt, page)
  const dead = await closedPort()
  const proxy = await startProxy(tt, `listeners:
  - name: https
    bind: 127.0.0.1:0
    tls: { cert: ${JSON.stringify(cert.certPath)}, key: ${JSON.stringify(cert.keyPath)} }
    ${extra}
routes:
  - { name: dead, match: { pathPrefix: /dead }, backend: dead }
  - { name: live, backend: live }
backends:
  live: { servers: [{ url: "${origin.url}" }] }
  dead: { timeouts: { connect: 2s }, servers: [{ url: "http://127.0.0.1:${dead}" }] }
`)
  return { proxy, origin }
}

async function session (tt: Test, proxy: RunningProxy): Promise<ClientHttp2Session> {
  const s = http2.connect(proxy.url('https'), { rejectUnauthorized: false })
  tt.teardown(() => { s.destroy() })
  s.on('error', () => {})
  if (s.remoteSettings.enableConnectProtocol !== true) await once(s, 'remoteSettings')
  return s
}

/** An extended CONNECT for a WebSocket at `path`; resolves with the response head and the stream. */
async function connect (s: ClientHttp2Session, path: string, extra: Record<string, string> = {}): Promise<{ head: IncomingHttpHeaders, stream: ClientHttp2Stream }> {
  const stream = s.request({
    ':method': 'CONNECT', ':protocol': 'websocket', ':scheme': 'https', ':path': path, 'sec-websocket-version': '13', ...extra
  })
  stream.on('error', () => {})
  const [head] = await once(stream, 'response') as [IncomingHttpHeaders]
  return { head, stream }
}

/** A masked client text frame (RFC 6455 §5.2), payload < 126 bytes. */
function textFrame (text: string): Buffer {
  const payload = Buffer.from(text)
  const mask = Buffer.from([1, 2, 3, 4])
  const out = Buffer.alloc(6 + payload.length)
  out[0] = 0x81
  out[1] = 0x80 | payload.length
  mask.copy(out, 2)
  for (let i = 0; i < payload.length; i++) out[6 + i] = payload[i]! ^ mask[i % 4]!
  return out
}

/** The next unmasked server frame's opcode and payload (< 126 bytes); the stream stays open. */
function nextFrame (stream: ClientHttp2Stream): Promise<{ opcode: number, text: string }> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0)
    const onData = (chunk: Buffer): void => {
      buf = Buffer.concat([buf, chunk])
      if (buf.length < 2 || buf.length < 2 + (buf[1]! & 0x7f)) return
      stream.off('data', onData)
      stream.off('end', onEnd)
      stream.pause()
      resolve({ opcode: buf[0]! & 0x0f, text: buf.subarray(2, 2 + (buf[1]! & 0x7f)).toString() })
    }
    const onEnd = (): void => reject(new Error('stream ended before a frame'))
    stream.on('data', onData)
    stream.once('end', onEnd)
    stream.resume()
  })
}

t.test('WebSocket over HTTP/2 with node:http2', async (t) => {
  const { proxy, origin } = await setup(t)
  const s = await session(t, proxy)
  t.equal(s.remoteSettings.enableConnectProtocol, true, 'SETTINGS_ENABLE_CONNECT_PROTOCOL advertised')

  const { head, stream } = await connect(s, '/chat?room=1', { 'sec-websocket-protocol': 'chat, other' })
  t.equal(head[':status'], 200, 'RFC 8441: a 2xx, not a 101')
  t.equal(head['sec-websocket-protocol'], 'chat', 'the subprotocol the origin chose')
  t.equal(head['sec-websocket-accept'], undefined, 'no HTTP/1.1 handshake field on h2')
  t.equal(head.upgrade, undefined)
  const up = origin.upgrades.at(-1)!
  t.equal(up.url, '/chat?room=1')
  t.equal(up.method, 'GET')
  t.equal(up.headers.upgrade, 'websocket')
  t.equal(up.headers['sec-websocket-version'], '13')
  t.match(up.headers['sec-websocket-key'], /^[A-Za-z0-9+/]{22}==$/, 'a key of our own for the HTTP/1.1 hop')
  stream.write(textFrame('hello over h2'))
  t.same(await nextFrame(stream), { opcode: 1, text: 'hello over h2' }, 'echoed through the tunnel')
  stream.write(textFrame('again'))
  t.same(await nextFrame(stream), { opcode: 1, text: 'again' })
  stream.close(http2.constants.NGHTTP2_CANCEL)
  await t.resolves(waitFor(() => origin.closes.length === 1), 'the client\'s reset closes the origin\'s socket')

  // A key the h2 client sent anyway (RFC 8441 §5 has none) is not passed on beside ours (RFC 6455 §4.1: exactly one).
  const keyed = await connect(s, '/chat?room=2', { 'sec-websocket-key': 'Y2xpZW50LXNlbnQta2V5IQ==' })
  t.equal(keyed.head[':status'], 200)
  const keys = origin.upgrades.at(-1)!.rawHeaders.filter((_, i, raw) => i % 2 === 1 && raw[i - 1]!.toLowerCase() === 'sec-websocket-key')
  t.equal(keys.length, 1, 'one key reaches the origin')
  t.not(keys[0], 'Y2xpZW50LXNlbnQta2V5IQ==', 'ours, not the client\'s')
  keyed.stream.close(http2.constants.NGHTTP2_CANCEL)

  const refused = await connect(s, '/refuse')
  t.equal(refused.head[':status'], 403, 'an origin that declines is relayed')
  const dead = await connect(s, '/dead/x')
  t.equal(dead.head[':status'], 502)
  t.equal(dead.head['x-switchyard-error'], 'LB_ERR_UPSTREAM_CONNECT')

  // A CONNECT without :protocol is a forward-proxy request: still refused.
  const plain = s.request({ ':method': 'CONNECT', ':authority': 'example.com:443' })
  plain.on('error', () => {})
  const [plainHead] = await once(plain, 'response') as [IncomingHttpHeaders]
  t.equal(plainHead[':status'], 405)

  // Ordinary h2 requests on the same connection are unaffected.
  const get = s.request({ ':path': '/' })
  get.resume()
  const [getHead] = await once(get, 'response') as [IncomingHttpHeaders]
  t.equal(getHead[':status'], 200)
})

t.test('an origin that answers the upgrade with a 2xx instead of 101: 502, never a tunnel the client would believe open', async (t) => {
  const cert = testCertificate(t)
  // No 'upgrade' listener: node:http answers the Upgrade as an ordinary request.
  const plain = await startServer(t, (req, res) => {
    req.resume()
    res.writeHead(req.url === '/204' ? 204 : 200, { 'content-type': 'text/html' }).end(req.url === '/204' ? undefined : '<html>not ws</html>')
  })
  const proxy = await startProxy(t, `listeners:
  - { name: https, bind: 127.0.0.1:0, tls: { cert: ${JSON.stringify(cert.certPath)}, key: ${JSON.stringify(cert.keyPath)} } }
routes: [{ backend: plain }]
backends: { plain: { servers: [{ url: "${plain.url}" }] } }
`)
  const s = await session(t, proxy)
  for (const path of ['/chat', '/204']) {
    const { head, stream } = await connect(s, path)
    t.equal(head[':status'], 502, `${path}: RFC 8441 §5 / RFC 9113 §8.5: a 2xx would say the tunnel is open`)
    t.equal(head['x-switchyard-error'], 'LB_ERR_UPSTREAM_BAD_RESPONSE')
    const body: Buffer[] = []
    stream.on('data', (c: Buffer) => body.push(c))
    await once(stream, 'close')
    t.notMatch(Buffer.concat(body).toString(), /not ws/, `${path}: none of the origin's body reaches the client`)
  }
  // HTTP/1.1 clients are not affected: an Upgrade answered 200 is relayed (a client there needs a 101).
  const h1 = await new Promise<string>((resolve) => {
    const sock = tls.connect({ host: '127.0.0.1', port: proxy.port('https'), rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] }, () => {
      sock.write('GET /chat HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n')
    })
    let out = ''
    sock.on('data', (c: Buffer) => { out += c.toString('latin1') })
    sock.on('error', () => {})
    // A failure guard only: a connection the proxy left open ends the test, not hangs it.
    const guard = setTimeout(() => sock.destroy(), 10_000)
    sock.on('close', () => { clearTimeout(guard); resolve(out) })
  })
  t.match(h1, /^HTTP\/1\.1 200 /, 'HTTP/1.1: the 200 relayed, the connection then closed')
})

t.test('maxTunnels counts h2 tunnels too', async (t) => {
  const { proxy } = await setup(t, 'maxTunnels: 1')
  const s = await session(t, proxy)
  const first = await connect(s, '/one')
  t.equal(first.head[':status'], 200)
  const second = await connect(s, '/two')
  t.equal(second.head[':status'], 503)
  t.equal(second.head['x-switchyard-error'], 'LB_ERR_TOO_MANY_TUNNELS')
  first.stream.close(http2.constants.NGHTTP2_CANCEL)
  await once(first.stream, 'close')
  const third = await connect(s, '/three')
  t.equal(third.head[':status'], 200, 'a closed tunnel frees its slot')
})

t.test('Chromium opens its WebSocket on the h2 connection (RFC 8441)', { skip: !existsSync(CHROMIUM) && !inCI ? `no browser at ${CHROMIUM}` : false }, async (t) => {
  const { proxy, origin } = await setup(t)
  const ctx = await browserContext(t, { ignoreHTTPSErrors: true })
  const page = await ctx.newPage()
  const base = proxy.url('https')
  const nav = await page.goto(`${base}/`)
  t.equal(nav?.status(), 200)
  const echoed = await page.evaluate(async (url) => await new Promise<string>((resolve, reject) => {
    const ws = new WebSocket(url)
    ws.onopen = () => ws.send('from chromium')
    ws.onmessage = (e) => { resolve(String(e.data)); ws.close() }
    ws.onerror = () => reject(new Error('websocket error'))
  }), base.replace(/^https/, 'wss') + '/browser')
  t.equal(echoed, 'from chromium')
  t.ok(origin.upgrades.some((r) => r.url === '/browser'), 'the origin got the upgrade')
  // Over h2 the WebSocket is one more stream on the page's connection; over HTTP/1.1 it would be an h1 connection.
  const text = proxy.app.metrics.prometheus()
  t.match(text, /switchyard_connections_total\{listener="https",protocol="h2"\} 1\b/, 'one h2 connection')
  t.notMatch(text, /switchyard_connections_total\{listener="https",protocol="h1"\} [1-9]/, 'no HTTP/1.1 connection')
})

async function waitFor (cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time')
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}
