// WebSocket through the proxy (HTTP/1.1 Upgrade), on the plain listener and on
// the TLS one (wss, http/1.1 by ALPN): echoes of text and binary messages and a
// clean close; an origin that refuses the upgrade is relayed as is (403); an
// upgrade to a dead server gets 502.
import t from 'tap'
import type { Test } from 'tap'
import { randomBytes } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import type { TLSSocket } from 'node:tls'
import WebSocket from 'ws'
import type { RawData } from 'ws'
import { testCertificate } from '../helpers/certs.js'
import { startProxy, type RunningProxy } from '../helpers/proxy.js'
import { KiB, MiB, within } from '../helpers/stream-kit.js'
import { closedPort } from '../helpers/origin.js'
import { startWsOrigin } from '../helpers/ws-origin.js'

const GUARD_MS = 10_000

interface Fixture {
  readonly proxy: RunningProxy
  /** Close codes the origin saw, one per finished server-side socket. */
  readonly originCloses: number[]
  /** The code of the first server-side close. */
  readonly firstOriginClose: Promise<number>
}

async function setup (tt: Test): Promise<Fixture> {
  const cert = testCertificate(tt)
  const origin = await startWsOrigin(tt)
  const dead = await closedPort()
  const yaml = `listeners:
  - name: http
    bind: 127.0.0.1:0
  - name: https
    bind: 127.0.0.1:0
    tls: { cert: ${JSON.stringify(cert.certPath)}, key: ${JSON.stringify(cert.keyPath)} }
routes:
  - name: live
    backend: live
  - name: dead
    match: { pathPrefix: /dead }
    backend: dead
backends:
  live:
    servers:
      - url: ${origin.url}
  dead:
    timeouts: { connect: 2s }
    servers:
      - url: http://127.0.0.1:${dead}
`
  const proxy = await startProxy(tt, yaml)
  return { proxy, originCloses: origin.closes, firstOriginClose: origin.firstClose }
}

function wsUrl (proxy: RunningProxy, listener: 'http' | 'https', path: string): string {
  return proxy.url(listener).replace(/^http/, 'ws') + path
}

/** Options for both schemes: trust the test certificate, offer only http/1.1 by ALPN. */
const CLIENT_OPTS = { rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] }

function open (tt: Test, url: string): Promise<{ ws: WebSocket, upgrade: IncomingMessage }> {
  const ws = new WebSocket(url, CLIENT_OPTS)
  tt.teardown(() => { ws.terminate() })
  return new Promise((resolve, reject) => {
    let upgrade: IncomingMessage | undefined
    ws.once('upgrade', (res) => { upgrade = res })
    ws.once('open', () => resolve({ ws, upgrade: upgrade! }))
    ws.on('error', reject)
  })
}

function nextMessage (ws: WebSocket): Promise<{ data: Buffer, isBinary: boolean }> {
  return new Promise((resolve, reject) => {
    ws.once('message', (data: RawData, isBinary: boolean) => {
      ws.off('error', reject)
      resolve({ data: Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer), isBinary })
    })
    ws.once('error', reject)
  })
}

/** Attempts a handshake that should fail; resolves with the HTTP answer the client got. */
function refused (tt: Test, url: string): Promise<{ status: number, headers: IncomingMessage['headers'], body: string }> {
  const ws = new WebSocket(url, CLIENT_OPTS)
  tt.teardown(() => { ws.terminate() })
  return new Promise((resolve, reject) => {
    ws.once('open', () => reject(new Error('the upgrade unexpectedly succeeded')))
    ws.on('error', (err) => reject(err))
    ws.once('unexpected-response', (req, res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => { body += c })
      res.once('end', () => {
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body })
        req.destroy()
      })
      res.once('error', reject)
    })
  })
}

for (const listener of ['http', 'https'] as const) {
  const scheme = listener === 'http' ? 'ws' : 'wss'

  t.test(`${scheme}: echo text and binary messages, then a clean close`, async (t) => {
    const fx = await setup(t)
    const { ws, upgrade } = await within(open(t, wsUrl(fx.proxy, listener, '/echo')), GUARD_MS, 'handshake')
    t.equal(upgrade.statusCode, 101, 'switching protocols')
    t.equal(String(upgrade.headers.upgrade).toLowerCase(), 'websocket')
    if (listener === 'https') {
      t.equal((upgrade.socket as TLSSocket).alpnProtocol, 'http/1.1', 'TLS listener spoke http/1.1 by ALPN')
    }

    ws.send('hello through the proxy')
    const text = await within(nextMessage(ws), GUARD_MS, 'text echo')
    t.equal(text.isBinary, false)
    t.equal(text.data.toString('utf8'), 'hello through the proxy')

    for (const size of [1, 64 * KiB + 3, 2 * MiB]) {
      const payload = randomBytes(size)
      ws.send(payload)
      const echo = await within(nextMessage(ws), GUARD_MS, `binary echo of ${size} bytes`)
      t.equal(echo.isBinary, true, `${size} bytes came back binary`)
      t.ok(echo.data.equals(payload), `${size} bytes came back unchanged`)
    }

    // Several messages in flight at once keep their order.
    const got: string[] = []
    const burst = new Promise<void>((resolve) => {
      const onMessage = (data: RawData): void => {
        got.push(String(data))
        if (got.length === 20) { ws.off('message', onMessage); resolve() }
      }
      ws.on('message', onMessage)
    })
    for (let i = 0; i < 20; i++) ws.send(`m${i}`)
    await within(burst, GUARD_MS, 'burst echoed')
    t.same(got, Array.from({ length: 20 }, (_v, i) => `m${i}`), 'burst echoed in order')

    const closed = new Promise<[number, string]>((resolve) => {
      ws.once('close', (code: number, reason: Buffer) => resolve([code, reason.toString()]))
    })
    ws.close(1000, 'bye')
    t.same(await within(closed, GUARD_MS, 'close handshake'), [1000, 'bye'], 'client got the close frame back')
    t.equal(await within(fx.firstOriginClose, GUARD_MS, 'origin side closed'), 1000, 'origin saw a normal close')
  })

  t.test(`${scheme}: an origin that refuses the upgrade answers 403 through the proxy`, async (t) => {
    const fx = await setup(t)
    const res = await within(refused(t, wsUrl(fx.proxy, listener, '/refuse')), GUARD_MS, 'refusal')
    t.equal(res.status, 403)
    t.equal(res.headers['x-switchyard-error'], undefined, 'the origin\'s own answer, not a proxy error')
    t.equal(res.body, 'Forbidden', 'origin body relayed')
    t.equal(fx.originCloses.length, 0, 'no WebSocket was opened')
  })

  t.test(`${scheme}: an upgrade to a dead server gets 502`, async (t) => {
    const fx = await setup(t)
    const res = await within(refused(t, wsUrl(fx.proxy, listener, '/dead/socket')), GUARD_MS, 'dead upstream')
    t.equal(res.status, 502)
    t.equal(res.headers['x-switchyard-error'], 'LB_ERR_UPSTREAM_CONNECT')
  })
}
