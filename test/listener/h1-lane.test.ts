// The plain HTTP/1.1 lane on real loopback sockets: which requests it answers
// itself, and that everything else reaches node:http whole and in order, on
// the same connection.
import http from 'node:http'
import https from 'node:https'
import net, { type AddressInfo } from 'node:net'
import tls from 'node:tls'
import t, { type Test } from 'tap'
import { attachLane, H1Lane, LaneRequest, LANE_WORKS, type LaneSettings } from '../../src/listener/h1-lane.js'
import { onClientError } from '../../src/listener/linger.js'
import { testCertificatePair } from '../helpers/certs.js'

interface Served { readonly via: 'lane' | 'node', readonly method: string, readonly url: string, readonly body: string, readonly consumed: boolean }

interface Rig {
  readonly port: number
  readonly tls: boolean
  readonly served: Served[]
  readonly lane: H1Lane
  readonly settings: LaneSettings
  /** Requests whose path starts with /later wait for this to be called. */
  release: () => void
}

/** A node:http server with the lane in front (attachLane, as listener.ts attaches it); answers `<via> <method> <url> <body>`. */
async function rig (t: Test, settings: Partial<LaneSettings> = {}, secure = false): Promise<Rig> {
  const served: Served[] = []
  let waiting: (() => void)[] = []
  const handler = (req: http.IncomingMessage | LaneRequest, res: http.ServerResponse): void => {
    const via = req instanceof LaneRequest ? 'lane' : 'node'
    const chunks: Buffer[] = []
    const answer = (): void => {
      const body = Buffer.concat(chunks).toString()
      served.push({ via, method: req.method!, url: req.url!, body, consumed: (req.socket as unknown as { _handle?: { _consumed?: boolean } | null })._handle?._consumed === true })
      const text = `${via} ${req.method} ${req.url} ${body}`
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(text), ...(req.url!.startsWith('/close') ? { connection: 'close' } : {}) })
      res.end(text)
    }
    const go = (): void => {
      if (req instanceof LaneRequest) return answer()
      req.on('data', (c: Buffer) => chunks.push(c))
      req.on('end', answer)
    }
    if (req.url!.startsWith('/later')) waiting.push(go)
    else go()
  }
  const s: LaneSettings = { maxHeaderSize: 16384, headersTimeout: 0, ...settings }
  // node:http's limit is the lane's, as the listener sets both from one value.
  const options = { headersTimeout: 60_000, requestTimeout: 0, keepAliveTimeout: 0, maxHeaderSize: s.maxHeaderSize }
  // On TLS node:http's listener is the server's first 'secureConnection' one.
  const pair = testCertificatePair()
  const server: http.Server = secure
    ? https.createServer({ ...options, key: pair.keyPem, cert: pair.certPem }, handler as http.RequestListener)
    : http.createServer(options, handler as http.RequestListener)
  const lane = attachLane(server, secure ? 'secureConnection' : 'connection', s, handler, onClientError)
  server.on('clientError', onClientError)
  // An upgrade (node:http's, after a handover): 101, then every read echoed.
  server.on('upgrade', (_req: http.IncomingMessage, socket: net.Socket) => {
    socket.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n')
    socket.on('data', (d: Buffer) => socket.write(`echo:${d.toString()}`))
  })
  const sockets = new Set<net.Socket>()
  server.on('connection', (socket: net.Socket) => { sockets.add(socket); socket.once('close', () => sockets.delete(socket)) })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => {
    for (const socket of sockets) socket.destroy()
    await new Promise((resolve) => server.close(resolve))
  })
  return {
    port: (server.address() as AddressInfo).port,
    tls: secure,
    served,
    lane,
    settings: s,
    release: () => {
      const w = waiting
      waiting = []
      for (const go of w) go()
    }
  }
}

/** A raw client: writes what it is given, collects everything read until the server closes or `until` is seen. */
class Client {
  readonly socket: net.Socket
  text = ''
  closed = false

  constructor (t: Test, port: number, secure = false) {
    this.socket = secure ? tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false }) : net.connect(port, '127.0.0.1')
    this.socket.setEncoding('latin1')
    this.socket.on('data', (d: string) => { this.text += d })
    this.socket.on('error', () => {})
    this.socket.on('close', () => { this.closed = true })
    t.teardown(() => { this.socket.destroy() })
  }

  send (bytes: string): void {
    this.socket.write(bytes)
  }

  /** Wait until `n` complete responses (by Content-Length) have been read, or the connection closed. */
  async responses (n: number, bodiless: ReadonlySet<number> = new Set()): Promise<{ status: number, head: string, body: string }[]> {
    for (let i = 0; i < 400; i++) {
      const out = parseResponses(this.text, bodiless)
      if (out.length >= n || this.closed) return out
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
    return parseResponses(this.text, bodiless)
  }

  async closedByServer (): Promise<boolean> {
    for (let i = 0; i < 400 && !this.closed; i++) await new Promise((resolve) => setTimeout(resolve, 10))
    return this.closed
  }
}

/** Responses in `text`, framed by Content-Length; those numbered in `bodiless` (answers to HEAD) have no body. */
function parseResponses (text: string, bodiless: ReadonlySet<number>): { status: number, head: string, body: string }[] {
  const out: { status: number, head: string, body: string }[] = []
  let at = 0
  for (;;) {
    const end = text.indexOf('\r\n\r\n', at)
    if (end < 0) return out
    const head = text.slice(at, end)
    const length = /content-length: (\d+)/i.exec(head)
    const n = length === null || bodiless.has(out.length) ? 0 : Number(length[1])
    if (text.length < end + 4 + n) return out
    out.push({ status: Number(head.slice(9, 12)), head, body: text.slice(end + 4, end + 4 + n) })
    at = end + 4 + n
  }
}

const GET = (path: string, extra = ''): string => `GET ${path} HTTP/1.1\r\nHost: lane.test\r\n${extra}\r\n`

t.test('this Node has what the lane needs', async (t) => {
  t.ok(LANE_WORKS, `llhttp binding and ServerResponse's drain flag (Node ${process.version})`)
})

t.test('keep-alive requests without a body are the lane\'s, one connection after another request', async (t) => {
  const r = await rig(t)
  const c = new Client(t, r.port)
  c.send(GET('/a'))
  await c.responses(1)
  c.send(GET('/b?x=1'))
  const [a, b] = await c.responses(2)
  t.equal(a?.body, 'lane GET /a ')
  t.equal(b?.body, 'lane GET /b?x=1 ')
  t.match(a?.head, /^HTTP\/1\.1 200 OK\r\n/)
  t.match(a?.head, /\r\nConnection: keep-alive$/i, 'node:http\'s ServerResponse writes the head')
  t.match(a?.head, /\r\nDate: /)
  t.notOk(c.closed, 'the connection stays open')
  t.same(r.served.map((s) => s.via), ['lane', 'lane'])
})

t.test('pipelined requests are answered one at a time, in order', async (t) => {
  const r = await rig(t)
  const c = new Client(t, r.port)
  c.send(GET('/later/1') + GET('/2') + `HEAD /3 HTTP/1.1\r\nHost: lane.test\r\n\r\n` + GET('/4'))
  await new Promise((resolve) => setTimeout(resolve, 50))
  t.equal(r.served.length, 0, 'the second waits while the first is in flight')
  r.release()
  const out = await c.responses(4, new Set([2]))
  t.same(out.map((o) => o.body), ['lane GET /later/1 ', 'lane GET /2 ', '', 'lane GET /4 '], 'a HEAD answer has no body')
  t.same(r.served.map((s) => `${s.via} ${s.method} ${s.url}`), ['lane GET /later/1', 'lane GET /2', 'lane HEAD /3', 'lane GET /4'])
})

t.test('a request with a body hands the connection to node:http, which reads it whole and serves what follows', async (t) => {
  const r = await rig(t)
  const c = new Client(t, r.port)
  c.send(GET('/first'))
  await c.responses(1)
  c.send('POST /upload HTTP/1.1\r\nHost: lane.test\r\nContent-Length: 5\r\n\r\nhello')
  await c.responses(2)
  c.send(GET('/after'))
  const out = await c.responses(3)
  t.same(out.map((o) => o.body), ['lane GET /first ', 'node POST /upload hello', 'node GET /after '])
  t.notOk(c.closed)
})

t.test('a read mixing lane requests and one with a body goes to node:http whole, in order, after the answer in flight', async (t) => {
  const r = await rig(t)
  const c = new Client(t, r.port)
  c.send(GET('/later/a'))
  await new Promise((resolve) => setTimeout(resolve, 30))
  c.send(GET('/b') + 'POST /c HTTP/1.1\r\nHost: lane.test\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n' + GET('/d'))
  await new Promise((resolve) => setTimeout(resolve, 30))
  t.same(r.served, [], 'nothing of the second read runs while the lane answers the first')
  r.release()
  const out = await c.responses(4)
  t.same(out.map((o) => o.body), ['lane GET /later/a ', 'node GET /b ', 'node POST /c abc', 'node GET /d '])
})

t.test('a head split across reads is node:http\'s', async (t) => {
  const r = await rig(t)
  const c = new Client(t, r.port)
  c.send('GET /split HTTP/1.1\r\nHo')
  await new Promise((resolve) => setTimeout(resolve, 30))
  c.send('st: lane.test\r\n\r\n')
  const [a] = await c.responses(1)
  t.equal(a?.body, 'node GET /split ')
})

t.test('what the lane leaves to node:http gets node:http\'s answer', async (t) => {
  const cases: [string, string, RegExp | string][] = [
    ['HTTP/1.0', 'GET /old HTTP/1.0\r\nHost: lane.test\r\n\r\n', 'node GET /old '],
    ['Connection: close', GET('/bye', 'Connection: close\r\n'), 'node GET /bye '],
    ['Expect', 'POST /e HTTP/1.1\r\nHost: lane.test\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nok', /node POST \/e ok/],
    ['no Host', 'GET /nohost HTTP/1.1\r\n\r\n', /^HTTP\/1\.1 400 /],
    ['a malformed request line', 'GET /a b c HTTP/1.1\r\nHost: x\r\n\r\n', /^HTTP\/1\.1 400 Bad Request\r\n/],
    ['a bad field', 'GET / HTTP/1.1\r\nHost: x\r\nBad Field: y\r\n\r\n', /^HTTP\/1\.1 400 Bad Request\r\n/],
    ['Content-Length with Transfer-Encoding', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', /^HTTP\/1\.1 400 Bad Request\r\n/]
  ]
  for (const [name, bytes, expected] of cases) {
    const r = await rig(t)
    const c = new Client(t, r.port)
    c.send(bytes)
    const [a] = await c.responses(1)
    if (typeof expected === 'string') t.equal(a?.body, expected, name)
    else t.match(c.text, expected, name)
    t.notOk(r.served.some((s) => s.via === 'lane'), `${name}: not the lane's`)
  }
})

t.test('a head over maxHeaderSize is node:http\'s 431', async (t) => {
  const r = await rig(t, { maxHeaderSize: 1024 })
  const c = new Client(t, r.port)
  c.send(GET('/big', `X-Big: ${'a'.repeat(2000)}\r\n`))
  t.ok(await c.closedByServer(), 'closed')
  t.match(c.text, /^HTTP\/1\.1 431 Request Header Fields Too Large\r\n/)
})

t.test('a head of more than 32 fields is read by node:http, whole', async (t) => {
  const r = await rig(t)
  const c = new Client(t, r.port)
  let extra = ''
  for (let i = 0; i < 40; i++) extra += `X-F${i}: ${i}\r\n`
  c.send(GET('/many', extra))
  const [a] = await c.responses(1)
  t.equal(a?.body, 'node GET /many ')
})

t.test('a connection that sends nothing gets node:http\'s 408 after headersTimeout', async (t) => {
  const r = await rig(t, { headersTimeout: 150 })
  const c = new Client(t, r.port)
  t.ok(await c.closedByServer(), 'closed')
  t.match(c.text, /^HTTP\/1\.1 408 Request Timeout\r\n/)
  t.equal(r.lane.size, 0)
})

t.test('closeIdle closes connections with nothing in flight, and leaves an answer in flight to finish', async (t) => {
  const r = await rig(t)
  const idle = new Client(t, r.port)
  idle.send(GET('/x'))
  await idle.responses(1)
  const busy = new Client(t, r.port)
  busy.send(GET('/later/y'))
  await new Promise((resolve) => setTimeout(resolve, 30))
  t.equal(r.lane.size, 2)
  r.lane.closeIdle()
  t.ok(await idle.closedByServer(), 'the idle one is closed')
  t.notOk(busy.closed, 'the busy one is not')
  r.release()
  const [y] = await busy.responses(1)
  t.equal(y?.body, 'lane GET /later/y ')
})

t.test('a large answer waits for the client\'s drain and arrives whole', async (t) => {
  const size = 8 * 1024 * 1024
  const chunk = Buffer.alloc(64 * 1024, 'z')
  let falseWrites = 0
  const server = http.createServer()
  attachLane(server, 'connection', { maxHeaderSize: 16384, headersTimeout: 0 }, (_req, res) => {
    res.writeHead(200, { 'content-length': size })
    let sent = 0
    const more = (): void => {
      while (sent < size) {
        sent += chunk.length
        if (!res.write(chunk)) {
          falseWrites++
          res.once('drain', more)
          return
        }
      }
      res.end()
    }
    more()
  }, onClientError)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve) }))
  const socket = net.connect((server.address() as AddressInfo).port, '127.0.0.1')
  t.teardown(() => { socket.destroy() })
  socket.write(GET('/large'))
  socket.pause()
  await new Promise((resolve) => setTimeout(resolve, 100))
  let bytes = 0
  await new Promise<void>((resolve) => {
    socket.on('data', (d: Buffer) => {
      bytes += d.length
      if (bytes >= size) resolve()
    })
    socket.resume()
  })
  t.ok(falseWrites > 0, 'the client held the answer back')
  t.ok(bytes >= size && bytes < size + 1024, 'all of it, once')
})

t.test('a long pipeline is read a part at a time and answered whole, in order', async (t) => {
  const r = await rig(t)
  const c = new Client(t, r.port)
  let all = ''
  for (let i = 0; i < 100; i++) all += GET(`/p${i}`)
  c.send(all)
  const out = await c.responses(100)
  t.equal(out.length, 100)
  t.same(out.map((o) => o.body), Array.from({ length: 100 }, (_, i) => `lane GET /p${i} `))
  t.notOk(c.closed)
})

t.test('an answer that closes the connection is the last: what was pipelined after it is not served', async (t) => {
  const r = await rig(t)
  const c = new Client(t, r.port)
  c.send(GET('/close') + GET('/after'))
  t.ok(await c.closedByServer(), 'closed after the answer')
  const out = parseResponses(c.text, new Set())
  t.same(out.map((o) => o.body), ['lane GET /close '])
  t.match(out[0]?.head, /\r\nconnection: close\r\n/i)
  t.same(r.served.map((s) => s.url), ['/close'])
})

t.test('bytes that are not HTTP behind an answer in flight: that answer goes out whole as the last, no 400', async (t) => {
  const r = await rig(t)
  const c = new Client(t, r.port)
  c.send(GET('/later/a'))
  await new Promise((resolve) => setTimeout(resolve, 30))
  c.send('\x16\x03\x01 not http at all\r\n\r\n')
  await new Promise((resolve) => setTimeout(resolve, 30))
  r.release()
  t.ok(await c.closedByServer(), 'closed after the answer')
  const out = parseResponses(c.text, new Set())
  t.same(out.map((o) => o.body), ['lane GET /later/a '])
  t.notMatch(c.text, /400 Bad Request/)
})

t.test('the same bytes with nothing in flight get node:http\'s 400', async (t) => {
  const r = await rig(t)
  const c = new Client(t, r.port)
  c.send(GET('/a'))
  await c.responses(1)
  c.send('\x16\x03\x01 not http at all\r\n\r\n')
  t.ok(await c.closedByServer())
  t.match(c.text, /\r\n\r\nlane GET \/a HTTP\/1\.1 400 Bad Request\r\nConnection: close\r\n\r\n$/)
})

t.test('a read that ends inside a head, or with lines that end in LF alone, is node:http\'s', async (t) => {
  const r = await rig(t)
  const c = new Client(t, r.port)
  c.send(GET('/whole') + 'GET /part HTTP/1.1\r\nHost: lane.test\r\n')
  await new Promise((resolve) => setTimeout(resolve, 30))
  c.send('\r\n')
  const out = await c.responses(2)
  t.same(out.map((o) => o.body), ['node GET /whole ', 'node GET /part '], 'the whole read goes over, the complete request in it too')
  const lf = new Client(t, r.port)
  lf.send('GET /lf HTTP/1.1\nHost: lane.test\n\n')
  await lf.responses(1)
  t.notOk(r.served.some((s) => s.via === 'lane'), 'neither was the lane\'s')
  t.match(lf.text, /^HTTP\/1\.1 (200|400) /, `node:http's answer: ${lf.text.slice(0, 12)}`)
})

t.test('over TLS (the parser reads the TLS handle): the lane\'s requests, a handover in order, non-HTTP behind an answer', async (t) => {
  const r = await rig(t, {}, true)
  const c = new Client(t, r.port, true)
  c.send(GET('/later/a') + GET('/b'))
  await new Promise((resolve) => setTimeout(resolve, 50))
  c.send(GET('/c') + 'POST /d HTTP/1.1\r\nHost: lane.test\r\nContent-Length: 3\r\n\r\nxyz')
  await new Promise((resolve) => setTimeout(resolve, 50))
  r.release()
  const out = await c.responses(4)
  t.same(out.map((o) => o.body), ['lane GET /later/a ', 'lane GET /b ', 'node GET /c ', 'node POST /d xyz'])
  t.ok(r.served[0]!.consumed, 'the lane\'s parser read the TLS socket\'s handle')
  const d = new Client(t, r.port, true)
  d.send(GET('/later/e'))
  await new Promise((resolve) => setTimeout(resolve, 50))
  d.send('\x16\x03\x01 not http\r\n\r\n')
  await new Promise((resolve) => setTimeout(resolve, 50))
  r.release()
  t.ok(await d.closedByServer())
  t.same(parseResponses(d.text, new Set()).map((o) => o.body), ['lane GET /later/e '])
  t.notMatch(d.text, /HTTP\/1\.1 400/)
})

for (const secure of [false, true]) {
  t.test(`${secure ? 'TLS' : 'plain'}: an upgrade after lane requests is node:http's, and the tunnel reads what follows`, async (t) => {
    const r = await rig(t, {}, secure)
    const c = new Client(t, r.port, secure)
    c.send(GET('/a'))
    await c.responses(1)
    c.send(GET('/up', 'Connection: Upgrade\r\nUpgrade: echo\r\n'))
    for (let i = 0; i < 200 && !c.text.includes('101 Switching'); i++) await new Promise((resolve) => setTimeout(resolve, 10))
    await new Promise((resolve) => setTimeout(resolve, 50))
    c.send('ping')
    for (let i = 0; i < 200 && !c.text.endsWith('echo:ping'); i++) await new Promise((resolve) => setTimeout(resolve, 10))
    t.match(c.text, /lane GET \/a HTTP\/1\.1 101 Switching Protocols\r\n/)
    t.ok(c.text.endsWith('echo:ping'), 'the tunnel carries what the client sends next')
  })
}
