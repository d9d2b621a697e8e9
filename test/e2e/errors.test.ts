// Error answers through a real proxy, each on h1 and h2: the status, the
// `x-switchyard-error` code, a readable text body, and `retry-after` on 503.
import t from 'tap'
import type { Test } from 'tap'
import { testCertificate } from '../helpers/certs.js'
import { h1, h2, rawRequest, tlsAndPlainListeners } from '../helpers/e2e.js'
import { closedPort, startOrigin } from '../helpers/origin.js'
import type { Reply } from '../helpers/e2e.js'
import { startProxy } from '../helpers/proxy.js'
import type { RunningProxy } from '../helpers/proxy.js'

interface Setup {
  readonly proxy: RunningProxy
  readonly originRequests: () => number
}

/**
 * One TLS listener; a route per failure:
 *   /ok       a healthy origin
 *   /refused  a port nothing listens on
 *   /reset    an origin that destroys the socket before answering
 *   /slow     an origin that never answers (headers timeout 300ms)
 *   /down     a server marked unhealthy
 *   /shard    two shards keyed by x-user-id, key required
 * Nothing else has a route.
 */
async function setup (t: Test): Promise<Setup> {
  const ok = await startOrigin(t)
  const reset = await startOrigin(t, (_seen, _res, req) => { req.socket.destroy() })
  const slow = await startOrigin(t, () => { /* never answers */ })
  const refused = await closedPort()
  const cert = testCertificate(t)
  const proxy = await startProxy(t, `
${tlsAndPlainListeners(cert)}
routes:
  - { match: { pathPrefix: /ok }, backend: ok }
  - { match: { pathPrefix: /refused }, backend: refused }
  - { match: { pathPrefix: /reset }, backend: reset }
  - { match: { pathPrefix: /slow }, backend: slow }
  - { match: { pathPrefix: /down }, backend: down }
  - { match: { pathPrefix: /shard }, backend: sharded }
backends:
  ok:
    servers: [{ url: "${ok.url}" }]
  refused:
    servers: [{ url: "http://127.0.0.1:${refused}" }]
  reset:
    servers: [{ url: "${reset.url}" }]
  slow:
    timeouts: { headers: 300ms }
    servers: [{ url: "${slow.url}" }]
  down:
    servers: [{ url: "${ok.url}" }, { url: "${ok.url}" }]
  sharded:
    shardBy: { header: x-user-id, missing: reject }
    shards:
      - { name: a, servers: [{ url: "${ok.url}" }] }
      - { name: b, servers: [{ url: "${ok.url}" }] }
`)
  for (const s of proxy.app.state.backends.get('down')!.servers) s.healthy = false
  return { proxy, originRequests: () => ok.requests.length }
}

function both (t: Test, proxy: RunningProxy, path: string, headers: Record<string, string> = {}): Array<Promise<[string, Reply]>> {
  return [
    h1(proxy.url('tls'), { path, headers }).then((r) => ['h1', r]),
    h2(t, proxy.url('tls'), { ':path': path, ...headers }).then((r) => ['h2', r])
  ]
}

async function expectError (t: Test, proxy: RunningProxy, path: string, status: number, code: string,
  headers: Record<string, string> = {}): Promise<Reply[]> {
  const out: Reply[] = []
  for (const p of both(t, proxy, path, headers)) {
    const [proto, r] = await p
    t.equal(r.status, status, `${proto} ${path}: ${status}`)
    t.equal(r.headers['x-switchyard-error'], code, `${proto} ${path}: ${code}`)
    t.match(r.headers['content-type'], /^text\/plain/, `${proto}: text/plain`)
    t.match(r.text, new RegExp(`^${status} .+\\(${code}\\)\\n$`), `${proto}: readable body`)
    t.equal(r.headers['content-length'], String(r.body.length), `${proto}: content-length matches`)
    out.push(r)
  }
  return out
}

t.test('no matching route: 404 LB_ERR_NO_ROUTE naming the request', async (t) => {
  const { proxy, originRequests } = await setup(t)
  const replies = await expectError(t, proxy, '/nowhere?q=1', 404, 'LB_ERR_NO_ROUTE')
  for (const r of replies) t.match(r.text, /GET 127\.0\.0\.1:\d+\/nowhere/, 'the body says what was asked')
  t.equal(originRequests(), 0)
  const head = await h1(proxy.url('tls'), { method: 'HEAD', path: '/nowhere' })
  t.equal(head.status, 404)
  t.equal(head.body.length, 0, 'HEAD error has no body')
})

t.test('connect refused: 502 LB_ERR_UPSTREAM_CONNECT', async (t) => {
  const { proxy } = await setup(t)
  await expectError(t, proxy, '/refused', 502, 'LB_ERR_UPSTREAM_CONNECT')
})

t.test('origin closes the socket before answering: 502 LB_ERR_UPSTREAM_RESET', async (t) => {
  const { proxy } = await setup(t)
  await expectError(t, proxy, '/reset', 502, 'LB_ERR_UPSTREAM_RESET')
})

t.test('origin never answers: 504 LB_ERR_UPSTREAM_TIMEOUT', async (t) => {
  const { proxy } = await setup(t)
  await expectError(t, proxy, '/slow', 504, 'LB_ERR_UPSTREAM_TIMEOUT')
})

t.test('every server unhealthy: 503 LB_ERR_NO_HEALTHY_SERVER with retry-after', async (t) => {
  const { proxy, originRequests } = await setup(t)
  const replies = await expectError(t, proxy, '/down', 503, 'LB_ERR_NO_HEALTHY_SERVER')
  for (const r of replies) t.equal(r.headers['retry-after'], '1')
  t.equal(originRequests(), 0)
  t.equal((await h1(proxy.url('tls'), { path: '/ok' })).headers['retry-after'], undefined, 'a 200 has no retry-after')
})

t.test('shard key missing with missing: reject: 400 LB_ERR_SHARD_KEY_MISSING', async (t) => {
  const { proxy, originRequests } = await setup(t)
  await expectError(t, proxy, '/shard', 400, 'LB_ERR_SHARD_KEY_MISSING')
  await expectError(t, proxy, '/shard', 400, 'LB_ERR_SHARD_KEY_MISSING', { 'x-user-id': '' })
  t.equal(originRequests(), 0)
  for (const p of both(t, proxy, '/shard', { 'x-user-id': 'u1' })) {
    const [proto, r] = await p
    t.equal(r.status, 200, `${proto}: with a key it passes`)
  }
})

t.test('CONNECT: 405 on h1 and h2', async (t) => {
  const { proxy, originRequests } = await setup(t)
  for (const listener of ['plain', 'tls'] as const) {
    const r = await rawRequest(proxy.port(listener),
      'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n', { tls: listener === 'tls' })
    t.equal(r.status, 405, `h1 ${listener}: 405`)
    t.equal(r.headers['x-switchyard-error'], 'LB_ERR_METHOD_NOT_ALLOWED')
  }
  const viaH2 = await h2(t, proxy.url('tls'), { ':method': 'CONNECT', ':authority': 'example.com:443', ':path': undefined })
  t.equal(viaH2.status, 405, 'h2: 405')
  t.equal(viaH2.headers['x-switchyard-error'], 'LB_ERR_METHOD_NOT_ALLOWED')
  t.equal(originRequests(), 0)
})
