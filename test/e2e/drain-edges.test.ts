// The edges of a drain (a stop with a grace period), in process: a reload
// that arrives meanwhile is refused (a listener it added would never be
// closed, and the process would never exit), /status keeps answering while
// the listeners are closed, and an h2 session whose TLS handshake ends only
// after the stop began gets a GOAWAY that still takes the streams already on
// their way.
import http from 'node:http'
import http2 from 'node:http2'
import net from 'node:net'
import tls from 'node:tls'
import t from 'tap'
import { parseConfig } from '../../src/config/load.js'
import { testCertificate } from '../helpers/certs.js'
import { startServer } from '../helpers/origin.js'
import { startProxy } from '../helpers/proxy.js'
import { within } from '../helpers/stream-kit.js'

t.test('while draining: reloads are refused and /status answers', async (t) => {
  const origin = await startServer(t, (_req, res) => { res.end('ok') })
  const p = await startProxy(t, `
listeners: [{ name: web, bind: "127.0.0.1:0" }]
routes: [{ backend: app }]
backends:
  app: { servers: [{ url: "${origin.url}" }] }
`)
  const next = p.app.state.config
  const stopping = p.app.stop(300)
  await new Promise((resolve) => setTimeout(resolve, 20))
  const r = await p.app.reload(next)
  t.equal(r.ok, false, 'refused')
  if (!r.ok) t.match(r.errors[0], /shutting down/)
  t.doesNotThrow(() => p.app.api.status(), '/status still answers')
  const listed = (p.app.api.status() as { listeners?: Array<{ name: string, port: number }> }).listeners
  t.equal(listed?.[0]?.name, 'web', 'a closed listener is still listed where it was bound')
  await stopping
})

t.test('an h2 session that starts after the stop began gets a GOAWAY, and its first streams are served', async (t) => {
  const cert = testCertificate(t)
  const origin = await startServer(t, (_req, res) => { setTimeout(() => res.end('ok'), 50) })
  const p = await startProxy(t, `
listeners: [{ name: tls, bind: "127.0.0.1:0", tls: { cert: ${JSON.stringify(cert.certPath)}, key: ${JSON.stringify(cert.keyPath)} } }]
routes: [{ backend: app }]
backends:
  app: { servers: [{ url: "${origin.url}" }] }
`)
  const port = Number(new URL(p.url('tls')).port)
  // Accepted before the stop; its TLS handshake (and so its h2 session) only after.
  const raw = net.connect(port, '127.0.0.1')
  await new Promise((resolve) => raw.once('connect', resolve))
  const stopping = p.app.stop(3000)
  await new Promise((resolve) => setTimeout(resolve, 50))
  const session = http2.connect(`https://127.0.0.1:${port}`, {
    createConnection: () => tls.connect({ socket: raw, ALPNProtocols: ['h2'], rejectUnauthorized: false })
  })
  session.on('error', () => {})
  t.teardown(() => { session.destroy() })
  const goaway = new Promise<void>((resolve) => session.once('goaway', () => resolve()))
  const status = await new Promise<number | string>((resolve) => {
    const s = session.request({ ':path': '/first' })
    s.on('response', (h) => { resolve(Number(h[':status'])) })
    s.on('error', (e: NodeJS.ErrnoException) => { resolve(e.code ?? e.message) })
    s.resume()
    s.end()
  })
  t.equal(status, 200, 'the stream already on its way is served')
  await within(goaway, 5000, 'the GOAWAY')
  t.pass('GOAWAY received: the client opens no more streams here')
  session.close()
  await stopping
})

t.test('a listener a reload removes tells its keep-alive clients to close (Connection: close), as a stop does', async (t) => {
  const origin = await startServer(t, (_req, res) => { res.end('ok') })
  const yaml = (old: boolean) => `
listeners:
  - { name: stays, bind: "127.0.0.1:0" }
${old ? '  - { name: old, bind: "127.0.0.1:0" }' : ''}
timeouts: { drain: 2s }
routes: [{ backend: app }]
backends:
  app: { servers: [{ url: "${origin.url}" }] }
`
  const p = await startProxy(t, yaml(true))
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
  t.teardown(() => { agent.destroy() })
  const url = `${p.url('old')}/x`
  const get = (): Promise<http.IncomingMessage> => new Promise((resolve, reject) => {
    http.get(url, { agent }, (res) => { res.resume(); res.on('end', () => resolve(res)) }).on('error', reject)
  })
  t.equal((await get()).headers.connection, 'keep-alive', 'before: kept alive')
  const r = await p.app.reload(parseConfig(yaml(false), 'test.yaml'))
  t.equal(r.ok, true)
  const after = await get()
  t.equal(after.statusCode, 200, 'the connection accepted before the reload is still served')
  t.equal(after.headers.connection, 'close', 'and told to close')
})

t.test('requests queued for a server a reload replaces go to its replacement, not to a queue timeout', async (t) => {
  let release: () => void = () => {}
  const held = new Promise<void>((resolve) => { release = resolve })
  let arrived: () => void = () => {}
  const atA = new Promise<void>((resolve) => { arrived = resolve })
  const a = await startServer(t, (_req, res) => { arrived(); void held.then(() => res.end('old')) })
  const b = await startServer(t, (_req, res) => { res.end('new') })
  const yaml = (url: string) => `
listeners: [{ name: web, bind: "127.0.0.1:0" }]
routes: [{ backend: app }]
backends:
  app:
    maxConn: 1
    timeouts: { queue: 30s }
    servers: [{ name: s, url: "${url}" }]
`
  const p = await startProxy(t, yaml(a.url))
  const get = (): Promise<string> => new Promise((resolve, reject) => {
    http.get(`${p.url('web')}/`, { agent: false }, (res) => {
      let body = ''
      res.on('data', (c: Buffer) => { body += c.toString() })
      res.on('end', () => resolve(`${res.statusCode ?? 0} ${body}`))
    }).on('error', reject)
  })
  const first = get()
  await atA
  const queued = [get(), get()]
  await new Promise((resolve) => setTimeout(resolve, 50)) // both in the shard's queue (maxConn 1)
  t.equal((await p.app.reload(parseConfig(yaml(b.url), 'test.yaml'))).ok, true)
  release()
  t.equal(await within(first, 5000, 'the request in flight'), '200 old')
  t.same(await within(Promise.all(queued), 5000, 'the queued requests'), ['200 new', '200 new'], 'served by the replacement')
})
