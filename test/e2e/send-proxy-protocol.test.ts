// sendProxyProtocol, with a raw origin that reads the PROXY header each
// connection starts with (parsed here, independently of src/) before handing
// the rest to an HTTP server. Clients reach the proxy through a listener that
// accepts PROXY headers (so they can be any address) or directly. Asserted:
// the header names the client's address and port and the address it reached;
// every request arrives on a connection whose header names its own client
// (X-Forwarded-For == the header's source), so two clients never share one;
// one client's keep-alive requests do share one; health checks send LOCAL
// (v2) / PROXY UNKNOWN (v1).
import t from 'tap'
import { createHash } from 'node:crypto'
import http from 'node:http'
import http2 from 'node:http2'
import net, { type AddressInfo, type Socket } from 'node:net'
import { encodeProxyHeader } from '../../src/listener/proxy-protocol.js'
import type { Teardown } from '../helpers/certs.js'
import { testCertificate } from '../helpers/certs.js'
import { startProxy } from '../helpers/proxy.js'

const SIG = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a])

/** What a connection's header said: an address pair, or the proxy speaking for itself. */
type Seen = { version: 1 | 2, src: string, sport: number, dst: string, dport: number } | { version: 1 | 2, local: true }

/** Independent of src/: v1 by regex, v2 by its fixed offsets (IPv4 and IPv6, LOCAL). Undefined: incomplete; throws: bad. */
function parse (buf: Buffer): { seen: Seen, length: number } | undefined {
  if (buf[0] === 0x50) {
    const end = buf.indexOf('\r\n')
    if (end === -1) return undefined
    const line = buf.toString('latin1', 0, end)
    if (line === 'PROXY UNKNOWN') return { seen: { version: 1, local: true }, length: end + 2 }
    const m = /^PROXY TCP[46] (\S+) (\S+) (\d+) (\d+)$/.exec(line)
    if (m === null) throw new Error(`bad v1 line ${line}`)
    return { seen: { version: 1, src: m[1]!, dst: m[2]!, sport: Number(m[3]), dport: Number(m[4]) }, length: end + 2 }
  }
  if (buf.length < 16) return undefined
  if (!buf.subarray(0, 12).equals(SIG)) throw new Error('bad v2 signature')
  const len = buf.readUInt16BE(14)
  if (buf.length < 16 + len) return undefined
  if (buf[12] === 0x20) return { seen: { version: 2, local: true }, length: 16 + len }
  if (buf[12] !== 0x21) throw new Error('bad v2 command')
  if (buf[13] === 0x11) {
    const ip = (at: number): string => [...buf.subarray(at, at + 4)].join('.')
    return { seen: { version: 2, src: ip(16), dst: ip(20), sport: buf.readUInt16BE(24), dport: buf.readUInt16BE(26) }, length: 16 + len }
  }
  if (buf[13] === 0x21) {
    // The first run of zero groups as `::` (enough for the addresses used here).
    const ip = (at: number): string => Array.from({ length: 8 }, (_, i) => buf.readUInt16BE(at + 2 * i).toString(16)).join(':')
      .replace(/(^|:)0(:0)+(:|$)/, '::')
    return { seen: { version: 2, src: ip(16), dst: ip(32), sport: buf.readUInt16BE(48), dport: buf.readUInt16BE(50) }, length: 16 + len }
  }
  throw new Error('bad v2 family')
}

interface Received { readonly conn: number, readonly seen: Seen, readonly url: string, readonly xff: string | undefined }

/**
 * A raw origin: reads each connection's PROXY header, then serves HTTP on it
 * (HTTP/1.1, or cleartext HTTP/2 with `h2c`); records every request with its
 * connection's header.
 */
async function startHeaderOrigin (t: Teardown, h2c = false): Promise<{ port: number, received: Received[], connections: Seen[] }> {
  const received: Received[] = []
  const connections: Seen[] = []
  const seenOf = new WeakMap<Socket, { conn: number, seen: Seen }>()
  const httpServer = http.createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
    const c = seenOf.get(req.socket)!
    received.push({ conn: c.conn, seen: c.seen, url: req.url ?? '', xff: req.headers['x-forwarded-for'] as string | undefined })
    req.resume()
    req.on('end', () => {
      const body = JSON.stringify(c)
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
      res.end(body)
    })
  })
  // A WebSocket handshake: answered 101 with the connection's header in a field, then the tunnel echoes.
  httpServer.on('upgrade', (req: http.IncomingMessage, socket: Socket) => {
    const c = seenOf.get(socket)!
    received.push({ conn: c.conn, seen: c.seen, url: req.url ?? '', xff: req.headers['x-forwarded-for'] as string | undefined })
    const accept = createHash('sha1').update(`${req.headers['sec-websocket-key'] as string}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64')
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n` +
      `X-Proxy-Header: ${JSON.stringify(c.seen)}\r\n\r\n`)
    socket.pipe(socket)
  })
  // HTTP/2: Node's h2 server reads its socket's handle directly, so bytes put
  // back after the header would be lost; the rest of each connection is
  // relayed to it instead, and its requests found by the relay's port.
  const byRelayPort = new Map<number, { conn: number, seen: Seen }>()
  const h2Server = http2.createServer()
  h2Server.on('stream', (stream, headers) => {
    const c = byRelayPort.get(stream.session!.socket.remotePort!)!
    received.push({ conn: c.conn, seen: c.seen, url: headers[':path'] ?? '', xff: headers['x-forwarded-for'] as string | undefined })
    stream.resume()
    stream.on('end', () => {
      stream.respond({ ':status': 200, 'content-type': 'application/json' })
      stream.end(JSON.stringify(c))
    })
  })
  if (h2c) {
    await new Promise<void>((resolve) => h2Server.listen(0, '127.0.0.1', () => resolve()))
    t.teardown(() => new Promise<void>((resolve) => h2Server.close(() => resolve())))
  }
  const relay = (socket: Socket, c: { conn: number, seen: Seen }, rest: Buffer): void => {
    const up = net.connect((h2Server.address() as AddressInfo).port, '127.0.0.1', () => {
      byRelayPort.set(up.localPort!, c)
      up.write(rest)
      socket.pipe(up).pipe(socket)
      socket.resume()
    })
    up.on('error', () => socket.destroy())
    socket.once('close', () => up.destroy())
  }
  const sockets = new Set<Socket>()
  const server = net.createServer((socket) => {
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
    socket.on('error', () => {})
    let buf = Buffer.alloc(0)
    const onData = (chunk: Buffer): void => {
      buf = Buffer.concat([buf, chunk])
      let r
      try { r = parse(buf) } catch { socket.destroy(); return }
      if (r === undefined) return
      socket.off('data', onData)
      socket.pause()
      connections.push(r.seen)
      seenOf.set(socket, { conn: connections.length - 1, seen: r.seen })
      if (h2c) {
        relay(socket, seenOf.get(socket)!, buf.subarray(r.length))
        return
      }
      if (r.length < buf.length) socket.unshift(buf.subarray(r.length))
      httpServer.emit('connection', socket)
      socket.resume()
    }
    socket.on('data', onData)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()))
  t.teardown(() => new Promise<void>((resolve) => {
    for (const s of sockets) s.destroy()
    server.close(() => resolve())
  }))
  return { port: (server.address() as AddressInfo).port, received, connections }
}

/** A keep-alive client (one connection) that starts with a PROXY header announcing `address:port` (`header` undefined: none). */
function client (t: Teardown, port: number, header?: Buffer): (path: string) => Promise<{ conn: number, seen: Seen }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
  // eslint-disable-next-line @typescript-eslint/unbound-method
  agent.createConnection = (opts: net.NetConnectOpts): Socket => {
    const s = net.connect(opts)
    if (header !== undefined) s.write(header)
    return s
  }
  t.teardown(() => agent.destroy())
  return (path) => new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path, agent }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString()
        try {
          resolve(JSON.parse(text) as { conn: number, seen: Seen })
        } catch {
          reject(new Error(`${res.statusCode ?? 0} ${String(res.headers['x-switchyard-error'])}: ${text}`))
        }
      })
    }).on('error', reject)
  })
}

const announce = (address: string, port: number): Buffer =>
  encodeProxyHeader(2, { source: { address, port }, destination: { address: '198.51.100.1', port: 443 } })

t.test('sending the PROXY protocol', async (t) => {
  const origin = await startHeaderOrigin(t)
  const cert = testCertificate(t)
  const proxy = await startProxy(t, `
listeners:
  - name: tls
    bind: 127.0.0.1:0
    tls: { cert: ${cert.certPath}, key: ${cert.keyPath} }
  - name: lb
    bind: 127.0.0.1:0
    proxyProtocol: { trustedSources: [127.0.0.1] }
  - name: direct
    bind: 127.0.0.1:0
routes:
  - match: { pathPrefix: /v1 }
    backend: one
  - match: { pathPrefix: /v2 }
    backend: two
  - match: { pathPrefix: /mixed }
    backend: mixed
backends:
  one:
    sendProxyProtocol: v1
    servers: [{ url: "http://127.0.0.1:${origin.port}" }]
  two:
    sendProxyProtocol: v2
    healthCheck: { path: /health, interval: 50ms, timeout: 40ms }
    servers: [{ url: "http://127.0.0.1:${origin.port}" }]
  mixed:
    servers:
      - url: "http://127.0.0.1:${origin.port}"
        sendProxyProtocol: v1
    healthCheck: { path: /health-v1, interval: 50ms, timeout: 40ms }
`)
  const lb = proxy.port('lb')
  const a = client(t, lb, announce('203.0.113.1', 1111))
  const b = client(t, lb, announce('203.0.113.2', 2222))
  const c = client(t, lb, encodeProxyHeader(1, { source: { address: '2001:db8::3', port: 3333 }, destination: { address: '2001:db8::443', port: 8443 } }))

  t.test('the header names the client and the address it reached', async (t) => {
    const r = await a('/v2/first')
    t.same(r.seen, { version: 2, src: '203.0.113.1', sport: 1111, dst: '198.51.100.1', dport: 443 })
    const r1 = await a('/v1/first')
    t.same(r1.seen, { version: 1, src: '203.0.113.1', sport: 1111, dst: '198.51.100.1', dport: 443 })
    const r6 = await c('/v2/six')
    t.same(r6.seen, { version: 2, src: '2001:db8::3', sport: 3333, dst: '2001:db8::443', dport: 8443 })
    const r6v1 = await c('/v1/six')
    t.same(r6v1.seen, { version: 1, src: '2001:db8::3', sport: 3333, dst: '2001:db8::443', dport: 8443 })
  })

  t.test('a direct client: its own address and port, and the listener\'s', async (t) => {
    const direct = proxy.port('direct')
    let localPort = 0
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
    t.teardown(() => agent.destroy())
    const r = await new Promise<{ seen: Seen }>((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port: direct, path: '/v2/direct', agent }, (res) => {
        const chunks: Buffer[] = []
        res.on('data', (x: Buffer) => chunks.push(x))
        res.on('end', () => resolve(JSON.parse(Buffer.concat(chunks).toString()) as { seen: Seen }))
      })
      req.on('socket', (s: Socket) => s.once('connect', () => { localPort = s.localPort! }))
      req.on('error', reject)
    })
    t.same(r.seen, { version: 2, src: '127.0.0.1', sport: localPort, dst: '127.0.0.1', dport: direct })
  })

  t.test('an h2 client: its streams share its own connection upstream', async (t) => {
    const tport = proxy.port('tls')
    const session = http2.connect(`https://localhost:${tport}`, { ca: cert.certPem })
    t.teardown(() => session.destroy())
    await new Promise((resolve, reject) => { session.once('connect', resolve); session.once('error', reject) })
    const localPort = (session.socket as Socket).localPort!
    const fetch = (path: string): Promise<{ conn: number, seen: Seen }> => new Promise((resolve, reject) => {
      const stream = session.request({ ':path': path })
      const chunks: Buffer[] = []
      stream.on('data', (c: Buffer) => chunks.push(c))
      stream.on('end', () => resolve(JSON.parse(Buffer.concat(chunks).toString()) as { conn: number, seen: Seen }))
      stream.on('error', reject)
    })
    const [x, y] = await Promise.all([fetch('/v2/h2-a'), fetch('/v1/h2-b')])
    t.same(x.seen, { version: 2, src: '127.0.0.1', sport: localPort, dst: '127.0.0.1', dport: tport })
    t.same(y.seen, { version: 1, src: '127.0.0.1', sport: localPort, dst: '127.0.0.1', dport: tport })
    const z = await fetch('/v2/h2-c')
    t.equal(z.conn, x.conn, 'the next stream: the same upstream connection')
  })

  t.test('one client keeps its connection; two clients never share one', async (t) => {
    const a1 = await a('/v2/a1')
    const b1 = await b('/v2/b1')
    const a2 = await a('/v2/a2')
    const b2 = await b('/v2/b2')
    t.equal(a1.conn, a2.conn, 'a\'s requests on one upstream connection')
    t.equal(b1.conn, b2.conn, 'b\'s requests on one upstream connection')
    t.not(a1.conn, b1.conn)
    t.match(b1.seen, { src: '203.0.113.2', sport: 2222 })
    // Many at once, from both: every request is on a connection naming its own client.
    await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? a : b)(`/v2/burst-${i}`)))
    const forClients = origin.received.filter((r) => r.xff !== undefined)
    t.ok(forClients.length >= 24)
    for (const r of forClients) {
      if (!('src' in r.seen) || r.seen.src !== r.xff) t.fail(`${r.url} from ${r.xff} came on a connection announcing ${JSON.stringify(r.seen)}`)
    }
    t.pass('every request came on its own client\'s connection')
  })

  t.test('a WebSocket tunnel starts with its client\'s header too', async (t) => {
    const raw = net.connect({ host: '127.0.0.1', port: lb })
    t.teardown(() => raw.destroy())
    raw.write(Buffer.concat([announce('203.0.113.60', 6060), Buffer.from('GET /v2/ws HTTP/1.1\r\nHost: ws.test\r\nUpgrade: websocket\r\n' +
      'Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n')]))
    let head = ''
    while (!head.includes('\r\n\r\n')) {
      const chunk = await new Promise<Buffer>((resolve, reject) => { raw.once('data', resolve); raw.once('error', reject) })
      head += chunk.toString('latin1')
    }
    t.match(head, /^HTTP\/1\.1 101 /)
    const field = /^x-proxy-header: (.*)$/im.exec(head)?.[1]?.trim() ?? 'null'
    t.same(JSON.parse(field), { version: 2, src: '203.0.113.60', sport: 6060, dst: '198.51.100.1', dport: 443 })
  })

  t.test('health checks speak for the proxy: v2 LOCAL, v1 PROXY UNKNOWN', async (t) => {
    // Checks run every 50ms; wait for one of each (bounded by the test timeout, not asserted on).
    while (!origin.received.some((r) => r.url === '/health') || !origin.received.some((r) => r.url === '/health-v1')) {
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
    for (const r of origin.received.filter((x) => x.url === '/health')) t.same(r.seen, { version: 2, local: true })
    for (const r of origin.received.filter((x) => x.url === '/health-v1')) t.same(r.seen, { version: 1, local: true })
  })
})

t.test('sending the PROXY protocol to an h2c backend: the header first, then HTTP/2; one connection per client connection', async (t) => {
  const origin = await startHeaderOrigin(t, true)
  const proxy = await startProxy(t, `
listeners:
  - name: lb
    bind: 127.0.0.1:0
    proxyProtocol: { trustedSources: [127.0.0.1] }
routes: [{ backend: h2 }]
backends:
  h2:
    protocol: h2c
    sendProxyProtocol: v2
    servers: [{ url: "http://127.0.0.1:${origin.port}" }]
`)
  const lb = proxy.port('lb')
  const a = client(t, lb, announce('203.0.113.7', 7777))
  const b = client(t, lb, announce('203.0.113.8', 8888))
  const ra = await a('/one')
  t.same(ra.seen, { version: 2, src: '203.0.113.7', sport: 7777, dst: '198.51.100.1', dport: 443 }, 'the header names client a')
  const rb = await b('/two')
  t.same(rb.seen, { version: 2, src: '203.0.113.8', sport: 8888, dst: '198.51.100.1', dport: 443 }, 'and client b on its own connection')
  t.not(ra.conn, rb.conn)
  const again = await a('/three')
  t.equal(again.conn, ra.conn, 'client a\'s next request reuses its HTTP/2 connection')
  t.same(origin.received.map((r) => [r.url, r.xff]), [['/one', '203.0.113.7'], ['/two', '203.0.113.8'], ['/three', '203.0.113.7']],
    'HTTP/2 requests, each on a connection whose header names its own client')
})
