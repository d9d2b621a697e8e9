// PROXY protocol on a listener, with raw sockets: a client writes a v1 or v2
// header (in one write with its request, or byte by byte) and the origin sees
// the announced client in X-Forwarded-For; allow/deny judge it; untrusted
// peers, garbage and silence get their connection closed with no answer; a
// TLS listener reads the header before the ClientHello (h1 and h2 by ALPN).
import t from 'tap'
import http2 from 'node:http2'
import { readFileSync } from 'node:fs'
import net from 'node:net'
import { Duplex } from 'node:stream'
import tls from 'node:tls'
import { parseConfig } from '../../src/config/load.js'
import { encodeProxyHeader } from '../../src/listener/proxy-protocol.js'
import { testCertificate } from '../helpers/certs.js'
import { rawRequest, type RawReply } from '../helpers/e2e.js'
import { startOrigin } from '../helpers/origin.js'
import { startProxy } from '../helpers/proxy.js'

const from = (address: string, port = 40000): Buffer =>
  encodeProxyHeader(2, { source: { address, port }, destination: { address: '198.51.100.1', port: 443 } })
const fromV1 = (address: string, port = 40000): Buffer =>
  encodeProxyHeader(1, { source: { address, port }, destination: { address: address.includes(':') ? '2001:db8::1' : '198.51.100.1', port: 80 } })
const get = (path: string): string => `GET ${path} HTTP/1.1\r\nHost: pp.test\r\nConnection: close\r\n\r\n`

/** Writes `bytes` one at a time (each in its own write, a turn of the event loop apart), then reads to the close. */
function byteByByte (port: number, bytes: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port })
    socket.setNoDelay(true)
    const chunks: Buffer[] = []
    const timer = setTimeout(() => { socket.destroy(); reject(new Error('no close within 10s')) }, 10_000)
    socket.on('data', (c: Buffer) => chunks.push(c))
    socket.on('error', () => {})
    socket.on('close', () => { clearTimeout(timer); resolve(Buffer.concat(chunks).toString('latin1')) })
    socket.once('connect', () => {
      let i = 0
      const next = (): void => {
        if (i === bytes.length || socket.destroyed) return
        socket.write(bytes.subarray(i, i + 1), () => setImmediate(next))
        i++
      }
      next()
    })
  })
}

/** `raw` as a stream whose first write is prefixed with `header` (one segment with it). */
function prefixed (raw: net.Socket, header: Buffer): Duplex {
  let first = true
  const d = new Duplex({
    write (chunk: Buffer, _enc, cb) {
      raw.write(first ? Buffer.concat([header, chunk]) : chunk, cb)
      first = false
    },
    read () { raw.resume() },
    final (cb) { raw.end(cb) },
    destroy (err, cb) { raw.destroy(); cb(err) }
  })
  raw.on('data', (c: Buffer) => { if (!d.push(c)) raw.pause() })
  raw.on('end', () => d.push(null))
  raw.on('close', () => d.destroy())
  return d
}

/** The client the origin saw, from the echo body. */
const xff = (r: RawReply): unknown => (JSON.parse(r.body) as { headers: Record<string, string> }).headers['x-forwarded-for']

t.test('accepting the PROXY protocol', async (t) => {
  const origin = await startOrigin(t)
  const cert = testCertificate(t)
  const proxy = await startProxy(t, `
listeners:
  - name: lb
    bind: 127.0.0.1:0
    proxyProtocol: { trustedSources: [127.0.0.0/8], timeout: 300ms }
  - name: lbtls
    bind: 127.0.0.1:0
    tls: { cert: ${cert.certPath}, key: ${cert.keyPath} }
    proxyProtocol: { trustedSources: [127.0.0.1] }
  - name: elsewhere
    bind: 127.0.0.1:0
    proxyProtocol: { trustedSources: [192.0.2.0/24] }
trustedProxies: [192.0.2.0/24]
routes:
  - name: listed
    match: { pathPrefix: /listed }
    backend: app
    allow: [203.0.113.0/24, "2001:db8::/32"]
  - name: limited
    match: { pathPrefix: /limited }
    backend: app
    rateLimit: { average: 1, period: 1h, burst: 1 }
  - match: { pathPrefix: / }
    backend: app
backends:
  app:
    servers: [{ url: "${origin.url}" }]
`)
  const port = proxy.port('lb')

  t.test('v1 and v2 in the same write as the request', async (t) => {
    const v2 = await rawRequest(port, Buffer.concat([from('203.0.113.7'), Buffer.from(get('/'))]))
    t.equal(v2.status, 200)
    t.equal(xff(v2), '203.0.113.7')
    const v1 = await rawRequest(port, Buffer.concat([fromV1('203.0.113.8'), Buffer.from(get('/'))]))
    t.equal(v1.status, 200)
    t.equal(xff(v1), '203.0.113.8')
    const v6 = await rawRequest(port, Buffer.concat([fromV1('2001:db8::42'), Buffer.from(get('/'))]))
    t.equal(xff(v6), '2001:db8::42')
    // An IPv4 client announced in an IPv6 header is the IPv4 client.
    const mapped = await rawRequest(port, Buffer.concat([
      encodeProxyHeader(2, { source: { address: '::ffff:203.0.113.9', port: 1 }, destination: { address: '::1', port: 2 } }),
      Buffer.from(get('/'))
    ]))
    t.equal(xff(mapped), '203.0.113.9')
  })

  t.test('split byte by byte, header and request together', async (t) => {
    for (const header of [from('203.0.113.10'), fromV1('203.0.113.11')]) {
      const raw = await byteByByte(port, Buffer.concat([header, Buffer.from(get('/'))]))
      t.match(raw, /^HTTP\/1\.1 200 /)
      const body = raw.slice(raw.indexOf('\r\n\r\n') + 4)
      t.ok(body.includes(`"x-forwarded-for":"203.0.113.1${header[0] === 0x50 ? 1 : 0}"`), `v${header[0] === 0x50 ? 1 : 2}: the announced client`)
    }
  })

  t.test('allow/deny judge the announced client, not the balancer', async (t) => {
    const inside = await rawRequest(port, Buffer.concat([from('203.0.113.20'), Buffer.from(get('/listed'))]))
    t.equal(inside.status, 200)
    const outside = await rawRequest(port, Buffer.concat([from('198.51.100.20'), Buffer.from(get('/listed'))]))
    t.equal(outside.status, 403)
    const v6 = await rawRequest(port, Buffer.concat([fromV1('2001:db8::7'), Buffer.from(get('/listed'))]))
    t.equal(v6.status, 200)
  })

  t.test('rate limits count the announced client; a trusted proxy announced keeps its X-Forwarded-For', async (t) => {
    const once = async (client: string): Promise<number> =>
      (await rawRequest(port, Buffer.concat([from(client), Buffer.from(get('/limited'))]))).status
    t.equal(await once('203.0.113.40'), 200)
    t.equal(await once('203.0.113.40'), 429, 'the same client: its bucket is empty')
    t.equal(await once('203.0.113.41'), 200, 'another client behind the same balancer: its own bucket')
    // 192.0.2.0/24 are trustedProxies: announced as the client, it is a proxy whose X-Forwarded-For is kept.
    const withXff = (client: string): Buffer => Buffer.concat([from(client),
      Buffer.from('GET / HTTP/1.1\r\nHost: pp.test\r\nX-Forwarded-For: 198.51.100.77\r\nConnection: close\r\n\r\n')])
    t.equal(xff(await rawRequest(port, withXff('192.0.2.9'))), '198.51.100.77, 192.0.2.9')
    t.equal(xff(await rawRequest(port, withXff('203.0.113.9'))), '203.0.113.9', 'from an announced client that is no proxy, it is replaced')
  })

  t.test('LOCAL (the balancer\'s own health check): the connection\'s address', async (t) => {
    const local = await rawRequest(port, Buffer.concat([encodeProxyHeader(2), Buffer.from(get('/'))]))
    t.equal(local.status, 200)
    t.equal(xff(local), '127.0.0.1')
    const listed = await rawRequest(port, Buffer.concat([encodeProxyHeader(2), Buffer.from(get('/listed'))]))
    t.equal(listed.status, 403)
    const unknown = await rawRequest(port, Buffer.concat([encodeProxyHeader(1), Buffer.from(get('/'))]))
    t.equal(xff(unknown), '127.0.0.1')
  })

  t.test('no header, garbage, an untrusted peer or silence: closed without an answer', async (t) => {
    const before = origin.requests.length
    const plain = await rawRequest(port, get('/'))
    t.equal(plain.raw, '', 'a request without a header')
    const garbage = await rawRequest(port, Buffer.concat([Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 99999 1\r\n'), Buffer.from(get('/'))]))
    t.equal(garbage.raw, '', 'a bad port')
    const badV2 = from('203.0.113.7')
    badV2[12] = 0x22 // an unknown command
    t.equal((await rawRequest(port, Buffer.concat([badV2, Buffer.from(get('/'))]))).raw, '', 'a bad v2 command')
    const long = Buffer.from(`PROXY UNKNOWN ${'x'.repeat(200)}\r\n`)
    t.equal((await rawRequest(port, Buffer.concat([long, Buffer.from(get('/'))]))).raw, '', 'a v1 line past 107 bytes')
    // A trusted header from a peer that is not a trusted source.
    const untrusted = await rawRequest(proxy.port('elsewhere'), Buffer.concat([from('203.0.113.7'), Buffer.from(get('/'))]))
    t.equal(untrusted.raw, '', 'untrusted source')
    // Half a header, then nothing: the header timeout (300ms) closes it; the bound is 5s.
    const half = await rawRequest(port, from('203.0.113.7').subarray(0, 10))
    t.equal(half.raw, '', 'half a header')
    const silent = await rawRequest(port, Buffer.alloc(0))
    t.equal(silent.raw, '', 'silence')
    // Closed by the peer before a whole header: a TCP check (connect, close) is no refusal,
    // a cut header is malformed; neither is held open until the header timeout.
    const closedEarly = async (bytes: Buffer): Promise<void> => {
      const s = net.connect(port, '127.0.0.1')
      s.on('error', () => {})
      await new Promise((resolve) => s.once('connect', resolve))
      s.end(bytes)
      await new Promise((resolve) => s.once('close', resolve))
    }
    await closedEarly(Buffer.alloc(0))
    await closedEarly(from('203.0.113.7').subarray(0, 10))
    t.equal(origin.requests.length, before, 'none reached the origin')
    const metrics = proxy.app.metrics.prometheus()
    t.match(metrics, /switchyard_proxy_protocol_refused_total\{listener="lb",reason="malformed"\} 5\n/)
    t.match(metrics, /switchyard_proxy_protocol_refused_total\{listener="lb",reason="timeout"\} 2\n/, 'the checks were not timeouts')
    t.match(metrics, /switchyard_proxy_protocol_refused_total\{listener="elsewhere",reason="untrusted"\} 1\n/)
  })

  t.test('TLS: the header comes before the ClientHello (h1 and h2 by ALPN)', async (t) => {
    const tport = proxy.port('lbtls')
    // `together`: the header and the ClientHello in one write (one segment),
    // as an L4 balancer often sends them; else the header first, on its own.
    const connectWith = (header: Buffer, alpn: string, together: boolean): Promise<tls.TLSSocket> => new Promise((resolve, reject) => {
      const raw = net.connect({ host: '127.0.0.1', port: tport }, () => {
        if (!together) raw.write(header)
        const s = tls.connect({ socket: together ? prefixed(raw, header) : raw, servername: 'localhost', ca: cert.certPem, ALPNProtocols: [alpn] },
          () => resolve(s))
        s.once('error', reject)
      })
      raw.once('error', reject)
    })
    const s1 = await connectWith(from('203.0.113.30'), 'http/1.1', true)
    t.teardown(() => s1.destroy())
    t.equal(s1.alpnProtocol, 'http/1.1')
    const chunks: Buffer[] = []
    s1.on('data', (c: Buffer) => chunks.push(c))
    s1.write(get('/'))
    await new Promise((resolve) => s1.once('close', resolve))
    const text = Buffer.concat(chunks).toString('latin1')
    t.match(text, /^HTTP\/1\.1 200 /)
    t.ok(text.includes('"x-forwarded-for":"203.0.113.30"'), text)

    const s2 = await connectWith(fromV1('203.0.113.31'), 'h2', false)
    t.equal(s2.alpnProtocol, 'h2')
    const session = http2.connect(`https://localhost:${tport}`, { createConnection: () => s2 })
    t.teardown(() => session.destroy())
    const stream = session.request({ ':path': '/listed' })
    const body: Buffer[] = []
    let status = 0
    stream.on('response', (h) => { status = Number(h[':status']) })
    stream.on('data', (c: Buffer) => body.push(c))
    await new Promise((resolve, reject) => { stream.on('end', resolve); stream.on('error', reject) })
    t.equal(status, 200)
    t.ok(Buffer.concat(body).toString().includes('"x-forwarded-for":"203.0.113.31"'))
    // A second stream on the same connection: the same client.
    const again = session.request({ ':path': '/x' })
    const b2: Buffer[] = []
    again.on('data', (c: Buffer) => b2.push(c))
    await new Promise((resolve, reject) => { again.on('end', resolve); again.on('error', reject) })
    t.ok(Buffer.concat(b2).toString().includes('"x-forwarded-for":"203.0.113.31"'))

    // h2 with the header in the ClientHello's segment; h1 with it on its own.
    const s3 = await connectWith(from('2001:db8::33'), 'h2', true)
    const s3session = http2.connect(`https://localhost:${tport}`, { createConnection: () => s3 })
    t.teardown(() => s3session.destroy())
    const s3stream = s3session.request({ ':path': '/listed' })
    const b3: Buffer[] = []
    s3stream.on('data', (c: Buffer) => b3.push(c))
    await new Promise((resolve, reject) => { s3stream.on('end', resolve); s3stream.on('error', reject) })
    t.ok(Buffer.concat(b3).toString().includes('"x-forwarded-for":"2001:db8::33"'))
    const s4 = await connectWith(fromV1('203.0.113.34'), 'http/1.1', false)
    const c4: Buffer[] = []
    s4.on('data', (c: Buffer) => c4.push(c))
    s4.write(get('/'))
    await new Promise((resolve) => s4.once('close', resolve))
    t.ok(Buffer.concat(c4).toString('latin1').includes('"x-forwarded-for":"203.0.113.34"'))
  })

  // Last: it changes the listeners' trust.
  t.test('a reload applies new trusted sources; turning it on or off replaces the listener', async (t) => {
    const yaml = (lb: string, plain: string): string => `
admin: false
accessLog: false
listeners:
  - name: lb
    bind: 127.0.0.1:0
    proxyProtocol: ${lb}
  - name: lbtls
    bind: 127.0.0.1:0
    tls: { cert: ${cert.certPath}, key: ${cert.keyPath} }
    proxyProtocol: { trustedSources: [127.0.0.1] }
  - name: elsewhere
    bind: 127.0.0.1:0
    ${plain}
routes:
  - match: { pathPrefix: / }
    backend: app
backends:
  app:
    servers: [{ url: "${origin.url}" }]
`
    const moved = await proxy.app.reload(parseConfig(yaml('{ trustedSources: [192.0.2.0/24] }', 'proxyProtocol: { trustedSources: [192.0.2.0/24] }'), 'test.yaml'))
    t.same(moved, { ok: true, kept: 1, added: 0, removed: 0, needsRestart: [] })
    t.equal((await rawRequest(port, Buffer.concat([from('203.0.113.7'), Buffer.from(get('/'))]))).raw, '', 'no longer trusted')
    const off = await proxy.app.reload(parseConfig(yaml('{ trustedSources: [127.0.0.1] }', 'maxTunnels: 5'), 'test.yaml'))
    t.match(off, { ok: true, needsRestart: [] })
    t.equal(xff(await rawRequest(port, Buffer.concat([from('203.0.113.7'), Buffer.from(get('/'))]))), '203.0.113.7', 'trusted again')
  })
})

t.test('the access log names the announced client', async (t) => {
  const origin = await startOrigin(t)
  const dir = t.testdir({})
  const log = `${dir}/access.log`
  const proxy = await startProxy(t, `
accessLog: { path: ${log} }
listeners:
  - name: lb
    bind: 127.0.0.1:0
    proxyProtocol: { trustedSources: [127.0.0.1] }
routes: [{ backend: app }]
backends:
  app:
    servers: [{ url: "${origin.url}" }]
`)
  t.equal((await rawRequest(proxy.port('lb'), Buffer.concat([from('203.0.113.50'), Buffer.from(get('/logged'))]))).status, 200)
  // The line is written after the response; wait for it (bounded by the test timeout).
  let text = ''
  while (!text.includes('/logged')) {
    await new Promise((resolve) => setTimeout(resolve, 20))
    try { text = readFileSync(log, 'utf8') } catch {}
  }
  t.match(text, /"client":"203\.0\.113\.50"/)
})
