// A reload that replaces a listener on the same address (renamed, h2 or TLS
// turned on or off, behind a PROXY header) hands its listening socket over,
// as HAProxy and Envoy do: the reload succeeds, the address accepts
// throughout, requests in flight on old connections finish, and new
// connections get the new listener. One process, and a cluster whose primary
// holds the socket for its workers.
import { lookup } from 'node:dns/promises'
import { writeFileSync } from 'node:fs'
import type { IncomingMessage, ServerResponse } from 'node:http'
import path from 'node:path'
import tls from 'node:tls'
import t, { type Test } from 'tap'
import { request } from 'undici'
import { parseConfig } from '../../src/config/load.js'
import type { Session } from '../../src/proxy/session.js'
import { testCertificate } from '../helpers/certs.js'
import { spawnCli } from '../helpers/cli.js'
import { h2Request, h2Session, rawRequest } from '../helpers/e2e.js'
import { closedPort, startServer } from '../helpers/origin.js'
import { eventually } from '../helpers/poll.js'
import { startProxy } from '../helpers/proxy.js'

const GET = 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'

/** An origin whose /slow answers only once released (and on teardown); `held` counts those waiting. */
async function slowOrigin (t: Test): Promise<{ url: string, release: () => void, held: () => number }> {
  let release!: () => void
  const gate = new Promise<void>((resolve) => { release = resolve })
  t.teardown(() => release())
  let held = 0
  const origin = await startServer(t, (req: IncomingMessage, res: ServerResponse) => {
    req.resume()
    if (req.url !== '/slow') return res.end('ok')
    held++
    void gate.then(() => res.end('slow'))
  })
  return { url: origin.url, release, held: () => held }
}

/** The protocol ALPN picks on a new TLS connection offering `protocols`. */
function alpnOf (port: number, protocols: string[]): Promise<string | false> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ALPNProtocols: protocols }, () => {
      resolve(s.alpnProtocol ?? false)
      s.destroy()
    })
    s.once('error', reject)
  })
}

/** New connections, one request each, back to back until stopped: the answers that were not 200. */
function hammer (port: number, tlsOn: () => boolean): { stop: () => Promise<{ done: number, failed: string[] }> } {
  let running = true
  let done = 0
  const failed: string[] = []
  const loop = (async () => {
    while (running) {
      const r = await rawRequest(port, GET, { tls: tlsOn() })
      if (r.status === 200) done++
      else failed.push(r.raw === '' ? 'no answer' : r.raw.slice(0, 40))
    }
  })()
  return { stop: async () => { running = false; await loop; return { done, failed } } }
}

function yaml (port: number, origin: string, listener: string): string {
  return `admin: false
accessLog: false
listeners:
  - ${listener.replaceAll('PORT', String(port))}
routes: [{ match: { pathPrefix: / }, backend: app }]
backends:
  app:
    servers: [{ url: "${origin}" }]
`
}

t.test('a reload that renames a TLS listener and turns h2 off, then on, keeps its address accepting', async (t) => {
  const origin = await slowOrigin(t)
  const cert = testCertificate(t)
  const port = await closedPort()
  const tlsBlock = (http2: boolean): string => `tls: { cert: ${cert.certPath}, key: ${cert.keyPath}, http2: ${String(http2)} }`
  const names: string[] = []
  const proxy = await startProxy(t, yaml(port, origin.url, `{ name: a, bind: "127.0.0.1:PORT", ${tlsBlock(true)} }`),
    { onSessionEnd: (s: Session) => { names.push(s.listener.name) } })
  t.equal(await alpnOf(port, ['h2', 'http/1.1']), 'h2')

  // In flight on old connections: an h2 stream and an HTTP/1.1 request.
  const session = await h2Session(t, `https://127.0.0.1:${port}`)
  const h2Slow = h2Request(session, { ':path': '/slow' })
  const h1Slow = rawRequest(port, 'GET /slow HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', { tls: true, limitMs: 20_000 })
  t.ok(await eventually(() => origin.held() === 2), 'both reached the origin')

  const load = hammer(port, () => true)
  const renamed = await proxy.app.reload(parseConfig(yaml(port, origin.url, `{ name: b, bind: "127.0.0.1:PORT", ${tlsBlock(false)} }`),
    'b.yaml', { checkFiles: false }))
  t.match(renamed, { ok: true, needsRestart: [] }, 'the reload succeeds')
  await new Promise((resolve) => setTimeout(resolve, 100))
  const during = await load.stop()
  t.same(during.failed, [], 'no connection refused or cut during the switch')
  t.ok(during.done > 0)

  t.equal(await alpnOf(port, ['h2', 'http/1.1']), 'http/1.1', 'new connections: h2 is off')
  t.same(proxy.app.listeners.map((l) => l.name), ['b'])
  names.length = 0
  t.equal((await rawRequest(port, GET, { tls: true })).status, 200)
  t.same(names, ['b'], 'and are the new listener\'s')

  origin.release()
  t.match(await h2Slow, { status: 200, text: 'slow' }, 'the h2 stream in flight finished')
  t.match(await h1Slow, { status: 200, body: 'slow' }, 'the HTTP/1.1 request in flight finished')

  const again = await proxy.app.reload(parseConfig(yaml(port, origin.url, `{ name: b, bind: "127.0.0.1:PORT", ${tlsBlock(true)} }`),
    'c.yaml', { checkFiles: false }))
  t.match(again, { ok: true })
  t.equal(await alpnOf(port, ['h2', 'http/1.1']), 'h2', 'h2 on again, same name')
  t.equal(proxy.app.listeners[0]!.address().port, port)
})

t.test('a reload that turns TLS on for an address: plain requests in flight finish, new connections are TLS', async (t) => {
  const origin = await slowOrigin(t)
  const cert = testCertificate(t)
  const port = await closedPort()
  const proxy = await startProxy(t, yaml(port, origin.url, '{ name: web, bind: "127.0.0.1:PORT" }'))
  const slow = rawRequest(port, 'GET /slow HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', { limitMs: 20_000 })
  t.ok(await eventually(() => origin.held() === 1), 'it reached the origin')
  const result = await proxy.app.reload(parseConfig(yaml(port, origin.url,
    `{ name: web, bind: "127.0.0.1:PORT", tls: { cert: ${cert.certPath}, key: ${cert.keyPath} } }`), 'b.yaml', { checkFiles: false }))
  t.match(result, { ok: true })
  t.equal((await rawRequest(port, GET, { tls: true })).status, 200, 'TLS now')
  t.equal(proxy.app.listeners[0]!.tls !== undefined, true)
  origin.release()
  t.match(await slow, { status: 200, body: 'slow' }, 'the plain request in flight finished')
})

t.test('a PROXY-protocol listener renamed on its address still reads the header; turned off, it reads none', async (t) => {
  const origin = await startServer(t, (req, res) => { req.resume(); res.end(String(req.headers['x-forwarded-for'])) })
  const port = await closedPort()
  const pp = 'proxyProtocol: { trustedSources: [127.0.0.1] }'
  const proxy = await startProxy(t, yaml(port, origin.url, `{ name: lb, bind: "127.0.0.1:PORT", ${pp} }`))
  const header = 'PROXY TCP4 203.0.113.7 127.0.0.1 40000 80\r\n'
  t.equal((await rawRequest(port, header + GET)).body, '203.0.113.7')
  const result = await proxy.app.reload(parseConfig(yaml(port, origin.url, `{ name: lb2, bind: "127.0.0.1:PORT", ${pp} }`),
    'b.yaml', { checkFiles: false }))
  t.match(result, { ok: true })
  t.same(proxy.app.listeners.map((l) => l.name), ['lb2'])
  t.equal((await rawRequest(port, header + GET)).body, '203.0.113.7', 'the new listener reads the header')
  const off = await proxy.app.reload(parseConfig(yaml(port, origin.url, '{ name: lb2, bind: "127.0.0.1:PORT" }'), 'c.yaml', { checkFiles: false }))
  t.match(off, { ok: true, needsRestart: [] }, 'applied, on the same address')
  t.equal((await rawRequest(port, GET)).body, '127.0.0.1', 'no header read: the peer is the client')
  t.equal((await rawRequest(port, header + GET)).status, 400, 'a PROXY header is not HTTP')
})

t.test('a bind spelled another way for the same socket (a name for its address) is that socket, not EADDRINUSE', async (t) => {
  const origin = await slowOrigin(t)
  const port = await closedPort()
  // Whatever this machine resolves localhost to first, as net.Server.listen() does.
  const { address, family } = await lookup('localhost')
  const literal = family === 6 ? `[${address}]` : address
  const proxy = await startProxy(t, yaml(port, origin.url, `{ name: web, bind: "${literal}:PORT" }`))
  const before = proxy.app.listeners[0]
  const byName = await proxy.app.reload(parseConfig(yaml(port, origin.url, '{ name: web, bind: "localhost:PORT" }'), 'b.yaml', { checkFiles: false }))
  t.match(byName, { ok: true }, `kept: ${JSON.stringify(byName)}`)
  t.equal(proxy.app.listeners[0], before, 'the same listener, kept as it was')
  const renamed = await proxy.app.reload(parseConfig(yaml(port, origin.url, `{ name: web2, bind: "${literal}:PORT" }`), 'c.yaml', { checkFiles: false }))
  t.match(renamed, { ok: true }, `renamed on the respelled address: ${JSON.stringify(renamed)}`)
  t.same(proxy.app.listeners.map((l) => l.name), ['web2'])
  if (family === 4) t.match(await rawRequest(port, GET), { status: 200, body: 'ok' }, 'it serves')
})

t.test('workers: 2: a rename and h2 off on the same address reload in every worker', async (t) => {
  const origin = await startServer(t, (req, res) => { req.resume(); res.end('ok') })
  const cert = testCertificate(t)
  const port = await closedPort()
  const dir = t.testdir({})
  const file = path.join(dir, 'config.yaml')
  const config = (name: string, http2: boolean): string => [
    'workers: 2',
    'accessLog: false',
    'admin: { bind: "127.0.0.1:0" }',
    `listeners: [{ name: ${name}, bind: "127.0.0.1:${port}", tls: { cert: ${cert.certPath}, key: ${cert.keyPath}, http2: ${String(http2)} } }]`,
    'routes: [{ backend: app }]',
    'backends:',
    '  app:',
    `    servers: [{ url: "${origin.url}" }]`,
    ''
  ].join('\n')
  writeFileSync(file, config('a', true))
  const proc = spawnCli(t, ['start', file])
  const admin = await proc.waitForLog((l) => l.msg === 'admin: listening')
  await proc.waitForLog((l) => l.msg === 'cluster: every worker is ready')
  t.equal(await alpnOf(port, ['h2', 'http/1.1']), 'h2')

  writeFileSync(file, config('b', false))
  const load = hammer(port, () => true)
  const res = await request(`http://127.0.0.1:${String(admin.port)}/reload`, { method: 'POST', headers: { 'content-type': 'application/json' } })
  const body = await res.body.json() as { ok: boolean, errors?: string[] }
  const during = await load.stop()
  t.match(body, { ok: true }, `reloaded: ${JSON.stringify(body)}`)
  t.same(during.failed, [], 'no connection refused or cut during the switch')
  t.ok(during.done > 0)
  // Each worker takes the new listener; a few connections each, so both are asked.
  for (let i = 0; i < 6; i++) t.equal(await alpnOf(port, ['h2', 'http/1.1']), 'http/1.1', 'new connections: h2 is off')
  t.equal((await rawRequest(port, GET, { tls: true })).status, 200)
  proc.child.kill('SIGTERM')
  t.equal(await proc.exited, 0)
})
