// sendProxyProtocol at the pool level, over real sockets: the header goes
// before the TLS handshake to an https:// server (the origin reads it with
// the listener's own reader, then does TLS), each client connection gets its
// own pool, and a pool whose connections have all closed is dropped.
import https from 'node:https'
import http from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import type { TLSSocket } from 'node:tls'
import t from 'tap'
import type { Test } from 'tap'
import { parseConfig } from '../../src/config/load.js'
import { acceptProxyProtocol, announcedClient, proxyAcceptSettings } from '../../src/listener/proxy-accept.js'
import type { ClientEndpoints } from '../../src/listener/proxy-protocol.js'
import { Backend } from '../../src/upstream/backend.js'
import { PerClientPool } from '../../src/upstream/proxy-send.js'
import { testPki, testPkiFiles } from '../helpers/pki.js'

/** An origin (TLS or not) that takes a PROXY header from 127.0.0.1 and answers with the client it announced. */
async function startOrigin (t: Test, tls: boolean): Promise<{ url: string, connections: () => number }> {
  const pki = testPki()
  let connections = 0
  const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const body = JSON.stringify(announcedClient(req.socket) ?? null)
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) })
    res.end(body)
  }
  const server = tls ? https.createServer({ key: pki.server.keyPem, cert: pki.server.certPem }, handler) : http.createServer(handler)
  acceptProxyProtocol(server, () => proxyAcceptSettings({ trustedSources: ['127.0.0.1'], timeout: 2000 }))
  const sockets = new Set<Socket>()
  server.on('connection', (s: Socket) => {
    connections++
    sockets.add(s)
    s.once('close', () => sockets.delete(s))
  })
  server.on('secureConnection', (s: TLSSocket) => { s.on('error', () => {}) })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()))
  t.teardown(() => new Promise<void>((resolve) => {
    for (const s of sockets) s.destroy()
    server.close(() => resolve())
  }))
  const port = (server.address() as AddressInfo).port
  return { url: `${tls ? 'https' : 'http'}://127.0.0.1:${port}`, connections: () => connections }
}

function backend (t: Test, url: string, extra: string): Backend {
  const config = parseConfig(`
listeners: [{ bind: "127.0.0.1:0" }]
backends:
  api:
    servers: [{ name: s1, url: "${url}" }]
    sendProxyProtocol: v2
    ${extra}
`, 'test.yaml', { checkFiles: true })
  const b = new Backend(config.backends.api!)
  t.teardown(() => b.close())
  return b
}

const clientAt = (address: string, port: number): ClientEndpoints =>
  ({ source: { address, port }, destination: { address: '198.51.100.1', port: 443 } })

async function get (b: Backend, client: ClientEndpoints | undefined): Promise<unknown> {
  const res = await b.servers[0]!.dispatcher.request({ path: '/', method: 'GET', headers: { host: 'x' }, client } as never)
  if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}`)
  return await res.body.json()
}

t.test('to an https:// server the header goes before the ClientHello', async (t) => {
  const pki = testPkiFiles(t)
  const origin = await startOrigin(t, true)
  const b = backend(t, origin.url, `tls: { ca: ${pki.caPath} }`)
  // One endpoints object per client connection, as the listener makes them.
  const one = clientAt('203.0.113.1', 1111)
  const two = clientAt('2001:db8::2', 2222)
  t.same(await get(b, one), one)
  t.same(await get(b, two), two)
  t.same(await get(b, one), one)
  t.equal(origin.connections(), 2, 'one connection per client, kept alive for its next request')
  // No client known: the header speaks for the proxy (LOCAL), and the origin sees no announced client.
  t.equal(await get(b, undefined), null)
})

t.test('a client\'s pool is dropped once its connections have closed', async (t) => {
  const origin = await startOrigin(t, false)
  const b = backend(t, origin.url, 'timeouts: { keepAlive: 50ms }')
  const d = b.servers[0]!.dispatcher as PerClientPool
  t.ok(d instanceof PerClientPool)
  const one = clientAt('203.0.113.1', 1)
  t.same(await get(b, one), one)
  t.same(await get(b, clientAt('203.0.113.2', 2)), clientAt('203.0.113.2', 2))
  t.equal(d.size, 2)
  // Each keep-alive connection closes after 50ms idle; its pool goes with it (polled, bounded by the test timeout).
  while (d.size > 0) await new Promise((resolve) => setTimeout(resolve, 20))
  t.equal(d.size, 0)
  // And a later request from the same client gets a fresh one.
  t.same(await get(b, one), one)
  t.equal(d.size, 1)
})

t.test('a server without sendProxyProtocol keeps its one shared pool', async (t) => {
  const config = parseConfig(`
listeners: [{ bind: "127.0.0.1:0" }]
backends:
  api:
    servers: [{ url: "http://127.0.0.1:9" }, { url: "http://127.0.0.1:10", sendProxyProtocol: v1 }]
`, 'test.yaml')
  const b = new Backend(config.backends.api!)
  t.teardown(() => b.close())
  t.notOk(b.servers[0]!.dispatcher instanceof PerClientPool)
  t.equal(b.servers[0]!.sendProxyProtocol, undefined)
  t.ok(b.servers[1]!.dispatcher instanceof PerClientPool)
  t.equal(b.servers[1]!.sendProxyProtocol, 'v1')
})
