// Careless and hostile WebSocket origins, with raw sockets on both sides: a
// 101 to a protocol the client did not ask for, a tunnel half closed by a
// client that vanished while the origin ignores the close, a client that
// gives up before the 101. Each must end as HAProxy's would: refused, closed
// after timeouts.tunnelFin, not blamed on the server.
import { createHash } from 'node:crypto'
import http from 'node:http'
import net, { type AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import { startProxy, type RunningProxy } from '../helpers/proxy.js'
import { within } from '../helpers/stream-kit.js'
import { eventually } from '../helpers/poll.js'

const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11'

/** An origin that answers each upgrade as `on` says (its socket is the handler's). */
async function origin (t: Test, on: (path: string, key: string, socket: net.Socket) => void): Promise<number> {
  const server = http.createServer((_req, res) => { res.writeHead(404).end() })
  const sockets = new Set<net.Socket>()
  server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket) => {
    sockets.add(socket)
    socket.on('error', () => {})
    on(req.url ?? '/', String(req.headers['sec-websocket-key'] ?? ''), socket)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => {
    for (const s of sockets) s.destroy()
    server.close(() => resolve())
  }))
  return (server.address() as AddressInfo).port
}

async function proxyTo (t: Test, port: number): Promise<RunningProxy> {
  return startProxy(t, `
listeners: [{ name: web, bind: "127.0.0.1:0" }]
timeouts: { tunnelFin: 300ms }
routes: [{ backend: ws }]
backends:
  ws:
    maxConn: 1
    servers: [{ url: "http://127.0.0.1:${port}" }]
`)
}

const KEY = 'dGhlIHNhbXBsZSBub25jZQ=='
const accept = (key: string): string => createHash('sha1').update(key + WS_GUID).digest('base64')

/** A raw client's upgrade: the socket, and a promise of what it reads until it closes. */
function upgrade (p: RunningProxy, path: string, allowHalfOpen = false): { socket: net.Socket, read: Promise<string>, head: Promise<string> } {
  const socket = net.connect({ port: Number(new URL(p.url('web')).port), host: '127.0.0.1', allowHalfOpen })
  socket.on('error', () => {})
  socket.write(`GET ${path} HTTP/1.1\r\nHost: ws.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
    `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${KEY}\r\n\r\n`)
  let text = ''
  let onHead: (s: string) => void = () => {}
  const head = new Promise<string>((resolve) => { onHead = resolve })
  socket.on('data', (b: Buffer) => {
    text += b.toString('latin1')
    if (text.includes('\r\n\r\n')) onHead(text)
  })
  const read = new Promise<string>((resolve) => { socket.on('close', () => resolve(text)) })
  return { socket, read, head }
}

function server (p: RunningProxy): { active: number, failures: number } {
  return p.app.state.backends.get('ws')!.shards[0]!.servers[0]!
}


t.test('a 101 to a protocol the client did not ask for (h2c) is a 502, never a tunnel', async (t) => {
  const port = await origin(t, (_path, _key, socket) => {
    socket.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n')
  })
  const p = await proxyTo(t, port)
  const c = upgrade(p, '/smuggle')
  const text = await within(c.read, 5000, 'the refusal')
  t.match(text, /^HTTP\/1\.1 502 /)
  t.match(text, /x-switchyard-error: LB_ERR_UPSTREAM_BAD_RESPONSE/)
  t.notMatch(text, /HTTP\/1\.1 101/, 'no 101 reached the client')
  t.equal(server(p).failures, 1, 'the server\'s failure')
  t.ok(await eventually(() => server(p).active === 0), 'its slot is free')
})

t.test('a 101 gets the route\'s responseHeaders and Via, as any other answer', async (t) => {
  const port = await origin(t, (_path, key, socket) => {
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: ${accept(key)}\r\n` +
      'Server: leaky/1.0\r\nX-Internal-Token: s3cr3t\r\nSec-WebSocket-Protocol: chat\r\n\r\n')
  })
  const p = await startProxy(t, `
listeners: [{ name: web, bind: "127.0.0.1:0" }]
routes:
  - backend: ws
    responseHeaders: { set: { strict-transport-security: max-age=60 }, remove: [server, x-internal-token] }
backends:
  ws:
    servers: [{ url: "http://127.0.0.1:${port}" }]
`)
  const c = upgrade(p, '/chat')
  const head = (await within(c.head, 5000, 'the 101')).split('\r\n\r\n')[0]!
  c.socket.destroy()
  t.match(head, /^HTTP\/1\.1 101 /)
  t.match(head, /\r\nconnection: upgrade\r\n/i)
  t.match(head, /\r\nupgrade: websocket\r\n/i)
  t.match(head, new RegExp(`\r\nsec-websocket-accept: ${accept(KEY).replace(/[+/]/g, '\\$&')}\r\n`, 'i'))
  t.match(head, /\r\nsec-websocket-protocol: chat\r\n/i, 'the handshake\'s end-to-end fields pass')
  t.notMatch(head, /server: leaky|x-internal-token/i, 'what the route removes is removed')
  t.match(head, /\r\nstrict-transport-security: max-age=60\r\n/i, 'what it sets is set')
  t.match(head, /\r\nvia: 1\.1 switchyard\r\n/i)
})

t.test('a client that vanishes from a tunnel frees the server\'s slot after timeouts.tunnelFin, not timeouts.tunnel', async (t) => {
  // A careless origin: it answers the handshake, then never closes its side (nor reads).
  const port = await origin(t, (_path, key, socket) => {
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: ${accept(key)}\r\n\r\n`)
  })
  const p = await proxyTo(t, port)
  const c = upgrade(p, '/chat')
  t.match(await within(c.head, 5000, 'the 101'), /^HTTP\/1\.1 101 /)
  t.equal(server(p).active, 1, 'the tunnel holds the one slot (maxConn: 1)')
  c.socket.end() // the client's FIN: its half is closed, the origin ignores it
  const started = Date.now()
  t.ok(await eventually(() => server(p).active === 0), 'the slot came back')
  t.ok(Date.now() - started < 3000, 'within seconds (tunnelFin 300ms), not the 1 h tunnel timeout')
  await within(c.read, 5000, 'the tunnel closed')
  t.equal(server(p).failures, 0)
})

t.test('a client that gives up before the 101 is not the server\'s failure', async (t) => {
  let got: () => void = () => {}
  const arrived = new Promise<void>((resolve) => { got = resolve })
  const port = await origin(t, (_path, key, socket) => {
    got()
    setTimeout(() => {
      if (!socket.destroyed) socket.write(`HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: ${accept(key)}\r\n\r\n`)
    }, 300)
  })
  const p = await proxyTo(t, port)
  const c = upgrade(p, '/slow')
  await arrived
  c.socket.destroy()
  t.ok(await eventually(() => server(p).active === 0), 'its slot is free')
  t.equal(server(p).failures, 0, 'not counted against the server')
})

t.test('a tunnel half closed by the client still brings the origin\'s last bytes', async (t) => {
  // The origin answers the client's FIN with a last message, then closes (HAProxy passes the FIN on and waits).
  const port = await origin(t, (_path, key, socket) => {
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: ${accept(key)}\r\n\r\n`)
    socket.on('end', () => { setTimeout(() => socket.end('LAST WORDS'), 50) })
  })
  const p = await proxyTo(t, port)
  const c = upgrade(p, '/chat')
  t.match(await within(c.head, 5000, 'the 101'), /^HTTP\/1\.1 101 /)
  c.socket.end()
  t.match(await within(c.read, 5000, 'the tunnel closed'), /LAST WORDS$/, 'what the origin sent after the FIN reached the client')
  t.ok(await eventually(() => server(p).active === 0), 'its slot is free')
})

t.test('a tunnel half closed by the origin still takes the client\'s bytes to it', async (t) => {
  let heard: (s: string) => void = () => {}
  const got = new Promise<string>((resolve) => { heard = resolve })
  const port = await origin(t, (_path, key, socket) => {
    socket.end(`HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: ${accept(key)}\r\n\r\n`)
    socket.on('data', (b: Buffer) => { heard(b.toString('latin1')) })
  })
  const p = await proxyTo(t, port)
  const c = upgrade(p, '/chat', true) // a client that keeps its side open after the origin's FIN
  t.match(await within(c.head, 5000, 'the 101'), /^HTTP\/1\.1 101 /)
  // The origin's FIN has come through (the client's end waits on tunnelFin): the client still speaks.
  await new Promise((resolve) => setTimeout(resolve, 50))
  c.socket.write('LAST WORDS')
  t.equal(await within(got, 5000, 'the origin hears the client'), 'LAST WORDS')
  c.socket.destroy()
  t.ok(await eventually(() => server(p).active === 0), 'its slot is free')
})
