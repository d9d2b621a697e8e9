// Requests pipelined behind an answer that is not finished yet, of the kinds
// node:http hands over out of turn: an Upgrade (WebSocket or any other, h2c
// included), a CONNECT, and a request with `Expect: 100-continue`. Each
// waits its turn: the earlier answer goes out whole and first, the process
// survives, and the bytes on the wire parse as HTTP/1.1 in order. Plain
// listener and TLS (HTTP/1.1 by ALPN), one raw packet per case.
import net from 'node:net'
import tls from 'node:tls'
import t from 'tap'
import type { Test } from 'tap'
import { testCertificate } from '../helpers/certs.js'
import { startServer } from '../helpers/origin.js'
import { startProxy, type RunningProxy } from '../helpers/proxy.js'
import { parseResponses } from '../helpers/wire.js'

const HOST = 'Host: a.test\r\n'
const SLOW_MS = 300

/** An origin whose /slow answers after SLOW_MS, everything else at once (body: the path); a WebSocket upgrade gets a 101 and `ws-bytes`. */
async function setup (t: Test): Promise<RunningProxy> {
  const origin = await startServer(t, (req, res) => {
    req.resume()
    const answer = (): void => {
      const body = `resp-for ${req.url ?? ''}`
      res.writeHead(200, { 'content-length': String(body.length), 'cache-control': 'no-store' }).end(body)
    }
    if (req.url === '/slow') setTimeout(answer, SLOW_MS)
    else answer()
  })
  origin.server.on('upgrade', (_req, socket: net.Socket) => {
    socket.end('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n' +
      'Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\nws-bytes')
  })
  const cert = testCertificate(t)
  return startProxy(t, `listeners:
  - { name: plain, bind: "127.0.0.1:0" }
  - { name: tls, bind: "127.0.0.1:0", tls: { cert: ${JSON.stringify(cert.certPath)}, key: ${JSON.stringify(cert.keyPath)} } }
routes: [{ backend: app }]
backends: { app: { servers: [{ url: "${origin.url}" }] } }
`)
}

/** Writes `packet` in one write and reads until the server closes or `idleMs` passes without a byte. */
function exchange (port: number, useTls: boolean, packet: string, idleMs = SLOW_MS + 700): Promise<string> {
  return new Promise((resolve) => {
    const socket: net.Socket = useTls
      ? tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] })
      : net.connect({ host: '127.0.0.1', port })
    const chunks: Buffer[] = []
    let timer = setTimeout(() => socket.destroy(), idleMs + SLOW_MS)
    const done = (): void => {
      clearTimeout(timer)
      resolve(Buffer.concat(chunks).toString('latin1'))
    }
    socket.once(useTls ? 'secureConnect' : 'connect', () => socket.write(packet))
    socket.on('data', (c: Buffer) => {
      chunks.push(c)
      clearTimeout(timer)
      timer = setTimeout(() => socket.destroy(), idleMs)
    })
    socket.on('error', () => {})
    socket.on('close', done)
  })
}

for (const useTls of [false, true]) {
  const side = useTls ? 'TLS' : 'plain'
  t.test(`${side}: a non-WebSocket Upgrade pipelined behind a pending answer is answered after it, and the process lives`, async (t) => {
    const p = await setup(t)
    const port = p.port(useTls ? 'tls' : 'plain')
    for (const upgrade of ['foo', 'h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA']) {
      const out = await exchange(port, useTls, `GET /slow HTTP/1.1\r\n${HOST}\r\nGET /second HTTP/1.1\r\n${HOST}Connection: Upgrade, HTTP2-Settings\r\nUpgrade: ${upgrade}\r\n\r\n`)
      const parsed = parseResponses(Buffer.from(out, 'latin1'), 'GET', true)
      t.equal(parsed.malformed, undefined, `${upgrade.slice(0, 3)}: the bytes parse as responses: ${out.slice(0, 300)}`)
      t.same(parsed.responses.map((r) => [r.status, r.body.toString()]), [[200, 'resp-for /slow'], [200, 'resp-for /second']],
        `${upgrade.slice(0, 3)}: both answered, in order`)
    }
    const after = await exchange(port, useTls, `GET /after HTTP/1.1\r\n${HOST}Connection: close\r\n\r\n`)
    t.match(after, /^HTTP\/1\.1 200 [^]*resp-for \/after$/, 'the listener still answers')
  })

  t.test(`${side}: a WebSocket upgrade pipelined behind a pending answer: that answer first, then the 101 and the tunnel`, async (t) => {
    const p = await setup(t)
    const out = await exchange(p.port(useTls ? 'tls' : 'plain'), useTls, `GET /slow HTTP/1.1\r\n${HOST}\r\nGET /ws HTTP/1.1\r\n${HOST}Connection: Upgrade\r\n` +
      'Upgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n')
    const first = out.indexOf('HTTP/1.1 200')
    const slowBody = out.indexOf('resp-for /slow')
    const switched = out.indexOf('HTTP/1.1 101')
    t.ok(first === 0 && slowBody > first, `the pending answer comes first, whole: ${out.slice(0, 200)}`)
    t.ok(switched > slowBody, 'then the 101')
    t.ok(out.endsWith('ws-bytes'), 'then the tunnel\'s bytes')
  })

  t.test(`${side}: a CONNECT pipelined behind a pending answer gets its 405 after that answer`, async (t) => {
    const p = await setup(t)
    const out = await exchange(p.port(useTls ? 'tls' : 'plain'), useTls, `GET /slow HTTP/1.1\r\n${HOST}\r\nCONNECT a.test:443 HTTP/1.1\r\n${HOST}\r\n`)
    const parsed = parseResponses(Buffer.from(out, 'latin1'), 'GET', true)
    t.equal(parsed.malformed, undefined, out.slice(0, 300))
    t.same(parsed.responses.map((r) => r.status), [200, 405])
    t.equal(parsed.responses[1]?.statusLine, 'HTTP/1.1 405 Method Not Allowed', 'the standard reason phrase (the code is in x-switchyard-error)')
    t.equal(parsed.responses[0]?.body.toString(), 'resp-for /slow', 'the earlier answer is not lost')
  })

  t.test(`${side}: Expect: 100-continue pipelined behind a pending answer never lands inside an answer`, async (t) => {
    const p = await setup(t)
    const port = p.port(useTls ? 'tls' : 'plain')
    const out = await exchange(port, useTls, `GET /slow HTTP/1.1\r\n${HOST}\r\nPOST /e HTTP/1.1\r\n${HOST}Expect: 100-continue\r\nContent-Length: 2\r\n\r\nhi`)
    const parsed = parseResponses(Buffer.from(out, 'latin1'), 'GET', true)
    t.equal(parsed.malformed, undefined, out.slice(0, 400))
    t.same(parsed.responses.map((r) => [r.status, r.body.toString()]), [[200, 'resp-for /slow'], [200, 'resp-for /e']])
    // Alone on its connection, the request still gets its 100 before the answer.
    const alone = await exchange(port, useTls, `POST /e HTTP/1.1\r\n${HOST}Expect: 100-continue\r\nContent-Length: 2\r\n\r\nhi`)
    const a = parseResponses(Buffer.from(alone, 'latin1'), 'POST', true)
    t.same(a.responses.map((r) => [r.status, r.interim, r.body.toString()]), [[200, [100], 'resp-for /e']])
  })
}
