// Tunnels and the parser's refusals are requests to observability too: a
// WebSocket upgrade (HTTP/1.1 Upgrade or RFC 8441 extended CONNECT) and an
// HTTP/1.1 CONNECT each make one access-log line and one
// switchyard_requests_total count (at the end of an open tunnel, with the
// bytes each way, as HAProxy logs a WebSocket; at once for a refusal), a
// dead server's failure is an upstream error, and every answer, the
// parser's 400 included, carries the request id its line has. Real `ws`
// origin, `ws` and node:http2 clients, the access log read from its file.
import { once } from 'node:events'
import { existsSync, readFileSync } from 'node:fs'
import http2 from 'node:http2'
import type { IncomingHttpHeaders } from 'node:http2'
import type { IncomingMessage } from 'node:http'
import path from 'node:path'
import t from 'tap'
import type { Test } from 'tap'
import { WebSocket } from 'ws'
import { testCertificate } from '../helpers/certs.js'
import { rawRequest } from '../helpers/e2e.js'
import { closedPort } from '../helpers/origin.js'
import { eventually } from '../helpers/poll.js'
import { parsePrometheusText, type ParsedSample } from '../helpers/prometheus-parser.js'
import { startProxy, type RunningProxy } from '../helpers/proxy.js'
import { startWsOrigin } from '../helpers/ws-origin.js'

type Line = Record<string, unknown>

interface Setup {
  readonly proxy: RunningProxy
  /** The access log's lines so far. */
  lines (): Line[]
  /** The first line `match` takes, once written (the log is flushed every second). */
  line (match: (l: Line) => boolean): Promise<Line>
  /** switchyard_requests_total and switchyard_upstream_errors_total samples. */
  samples (family: string): readonly ParsedSample[]
}

async function setup (t: Test): Promise<Setup> {
  const cert = testCertificate(t)
  const origin = await startWsOrigin(t)
  const dead = await closedPort()
  const log = path.join(t.testdir({}), 'access.log')
  const proxy = await startProxy(t, `accessLog: { path: ${JSON.stringify(log)} }
listeners:
  - { name: web, bind: 127.0.0.1:0 }
  - name: tls
    bind: 127.0.0.1:0
    tls: { cert: ${JSON.stringify(cert.certPath)}, key: ${JSON.stringify(cert.keyPath)} }
routes:
  - { name: deadws, match: { pathPrefix: /dead }, backend: dead }
  - { name: ws, backend: live }
backends:
  live: { servers: [{ name: ws1, url: "${origin.url}" }] }
  dead: { retries: { attempts: 0 }, servers: [{ name: gone, url: "http://127.0.0.1:${dead}" }] }
`)
  const lines = (): Line[] => existsSync(log)
    ? readFileSync(log, 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Line)
    : []
  return {
    proxy,
    lines,
    async line (match) {
      await eventually(() => lines().some(match), 5000)
      const found = lines().find(match)
      if (found === undefined) throw new Error(`no such line in ${JSON.stringify(lines())}`)
      return found
    },
    samples: (family) => parsePrometheusText(proxy.app.metrics.prometheus()).find((f) => f.name === family)?.samples ?? []
  }
}

function count (samples: readonly ParsedSample[], labels: Record<string, string>): number {
  return samples.filter((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v)).reduce((a, s) => a + s.value, 0)
}

const UPGRADE = (p: string): string => `GET ${p} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
  'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n'

t.test('an HTTP/1.1 WebSocket: one line when it closes, 101, bytes each way, its request id', async (t) => {
  const s = await setup(t)
  const ws = new WebSocket(`ws://127.0.0.1:${s.proxy.port('web')}/chat?room=1`)
  t.teardown(() => ws.terminate())
  // 'open' follows 'upgrade' in the same tick.
  let id: string | string[] | undefined
  ws.once('upgrade', (res: IncomingMessage) => { id = res.headers['x-request-id'] })
  await once(ws, 'open')
  t.match(id, /^[0-9a-f]{32}$/, 'the 101 carries the request id')
  ws.send('x'.repeat(1000))
  const [echo] = await once(ws, 'message') as [Buffer]
  t.equal(echo.length, 1000)
  t.same(s.lines().filter((l) => l.path === '/chat'), [], 'no line while the tunnel is open')
  await new Promise((resolve) => setTimeout(resolve, 300)) // open a while: the line's time, not the latency's
  ws.close(1000)
  await once(ws, 'close')

  const l = await s.line((l) => l.path === '/chat')
  t.match(l, { protocol: 'h1', method: 'GET', query: 'room=1', status: 101, request_id: id, route: 'ws', backend: 'live', server: 'ws1' })
  // The message (a 4-byte head; the client's masked: 8) and the close frame (4; masked: 8), each way.
  t.equal(l.bytes, 1004 + 4, 'bytes to the client')
  t.equal(l.request_bytes, 1008 + 8, 'bytes from the client')
  t.type(l.upstream_ms, 'number', 'time to the 101')
  t.ok((l.total_ms as number) >= 300, 'the whole life of the tunnel')
  t.equal(l.error, undefined)
  t.equal(count(s.samples('switchyard_requests_total'), { route: 'ws', server: 'ws1', code_class: '1xx' }), 1, 'counted once, as 1xx')
  const latency = s.samples('switchyard_request_duration_seconds')
  t.equal(count(latency.filter((x) => x.name.endsWith('_count')), { route: 'ws' }), 1)
  t.ok(count(latency.filter((x) => x.name.endsWith('_sum')), { route: 'ws' }) < 0.3, 'the latency is the time to the 101, not the tunnel\'s life')
})

t.test('an upgrade a dead server refuses: 502 with its request id, one line, an upstream error', async (t) => {
  const s = await setup(t)
  const r = await rawRequest(s.proxy.port('web'), UPGRADE('/dead/x'))
  t.equal(r.status, 502)
  t.equal(r.headers['x-switchyard-error'], 'LB_ERR_UPSTREAM_CONNECT')
  t.match(r.headers['x-request-id'], /^[0-9a-f]{32}$/)
  const l = await s.line((l) => l.path === '/dead/x')
  t.match(l, { method: 'GET', status: 502, route: 'deadws', backend: 'dead', server: 'gone', error: 'LB_ERR_UPSTREAM_CONNECT', flag: 'UF' })
  t.equal(l.request_id, r.headers['x-request-id'], 'the id answered is the one logged')
  t.equal(count(s.samples('switchyard_requests_total'), { route: 'deadws', server: 'gone', code_class: '5xx' }), 1)
  t.equal(count(s.samples('switchyard_upstream_errors_total'), { backend: 'dead', code: 'LB_ERR_UPSTREAM_CONNECT' }), 1,
    'the server that was tried failed')
})

t.test('an upgrade the server declines: its answer relayed with the request id, one line with its status', async (t) => {
  const s = await setup(t)
  const r = await rawRequest(s.proxy.port('web'), UPGRADE('/refuse'))
  t.equal(r.status, 403)
  t.match(r.headers['x-request-id'], /^[0-9a-f]{32}$/)
  const l = await s.line((l) => l.path === '/refuse')
  t.match(l, { status: 403, route: 'ws', server: 'ws1', request_id: r.headers['x-request-id'] })
  t.equal(l.error, undefined, 'the server\'s answer, not a failure')
  t.type(l.upstream_ms, 'number')
  t.equal(count(s.samples('switchyard_requests_total'), { route: 'ws', server: 'ws1', code_class: '4xx' }), 1)
})

t.test('an HTTP/1.1 CONNECT: 405 with its request id, one line, counted', async (t) => {
  const s = await setup(t)
  const r = await rawRequest(s.proxy.port('web'), 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n')
  t.equal(r.status, 405)
  t.match(r.headers['x-request-id'], /^[0-9a-f]{32}$/, 'a refusal before any route carries the request id too')
  const l = await s.line((l) => l.method === 'CONNECT')
  t.match(l, { status: 405, error: 'LB_ERR_METHOD_NOT_ALLOWED', path: 'example.com:443' })
  t.equal(l.request_id, r.headers['x-request-id'])
  t.equal(count(s.samples('switchyard_requests_total'), { route: '(none)', code_class: '4xx' }), 1)
  t.equal(count(s.samples('switchyard_request_errors_total'), { code: 'LB_ERR_METHOD_NOT_ALLOWED' }), 1)
})

/** A masked client text frame (RFC 6455 §5.2), payload < 126 bytes. */
function textFrame (text: string): Buffer {
  const payload = Buffer.from(text)
  const out = Buffer.alloc(6 + payload.length)
  out[0] = 0x81
  out[1] = 0x80 | payload.length
  for (let i = 0; i < payload.length; i++) out[6 + i] = payload[i]! // mask 0 0 0 0
  return out
}

t.test('a WebSocket over HTTP/2 (RFC 8441): one line when its stream closes, 200, bytes each way, its request id', async (t) => {
  const s = await setup(t)
  const session = http2.connect(s.proxy.url('tls'), { rejectUnauthorized: false })
  t.teardown(() => { session.destroy() })
  session.on('error', () => {})
  if (session.remoteSettings.enableConnectProtocol !== true) await once(session, 'remoteSettings')
  const stream = session.request({
    ':method': 'CONNECT', ':protocol': 'websocket', ':scheme': 'https', ':path': '/chat', 'sec-websocket-version': '13'
  })
  stream.on('error', () => {})
  const [head] = await once(stream, 'response') as [IncomingHttpHeaders]
  t.equal(head[':status'], 200)
  t.match(head['x-request-id'], /^[0-9a-f]{32}$/, 'the 200 carries the request id')
  const payload = 'y'.repeat(100)
  stream.write(textFrame(payload))
  let got = 0
  stream.on('data', (c: Buffer) => { got += c.length })
  t.ok(await eventually(() => got >= 102), 'echoed through the tunnel')
  stream.close(http2.constants.NGHTTP2_CANCEL)

  const l = await s.line((l) => l.path === '/chat')
  t.match(l, { protocol: 'h2', method: 'GET', status: 200, route: 'ws', backend: 'live', server: 'ws1' })
  t.equal(l.request_id, head['x-request-id'])
  t.equal(l.request_bytes, 106, 'the client\'s frame')
  t.equal(l.bytes, 102, 'the echoed frame')
  t.equal(count(s.samples('switchyard_requests_total'), { route: 'ws', server: 'ws1', code_class: '2xx' }), 1)
})

t.test('a request node:http\'s parser refuses: its 400 carries the id its line has', async (t) => {
  const s = await setup(t)
  const r = await rawRequest(s.proxy.port('web'), 'GARBAGE\r\n\r\n')
  t.equal(r.status, 400)
  t.match(r.headers['x-request-id'], /^[0-9a-f]{32}$/)
  const l = await s.line((l) => l.detail === 'HPE_INVALID_METHOD')
  t.equal(l.status, 400)
  t.equal(l.request_id, r.headers['x-request-id'], 'the id answered is the one logged')
})
