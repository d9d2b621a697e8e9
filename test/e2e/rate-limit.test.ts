// Per-route rate limits through a real proxy and a real origin (local store):
// 429 with Retry-After and the RateLimit fields, recovery once the wait is
// over, buckets per client address (behind trusted proxies), header and
// cookie, the fields on every answer (cached ones and h2 too), upgrades,
// metrics and the access-log record.
import net from 'node:net'
import t from 'tap'
import { requestRecord, type AdminStatus } from '../../src/admin/api.js'
import type { Session } from '../../src/proxy/session.js'
import { parsePrometheusText } from '../helpers/prometheus-parser.js'
import { testCertificate } from '../helpers/certs.js'
import { h1, h2, tlsAndPlainListeners, type H1Options, type Reply } from '../helpers/e2e.js'
import { startOrigin } from '../helpers/origin.js'
import { startProxy } from '../helpers/proxy.js'

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

t.test('rate limits', async (t) => {
  const origin = await startOrigin(t, (seen, res) => {
    // /cached is cacheable for a minute; everything else is not stored.
    res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': seen.url.startsWith('/cached') ? 'max-age=60' : 'no-store' })
    res.end('ok')
  })
  const cert = testCertificate(t)
  const sessions: Session[] = []
  const proxy = await startProxy(t, `
${tlsAndPlainListeners(cert)}
trustedProxies: [127.0.0.1]
cache: {}
routes:
  - name: ip
    match: { pathPrefix: /ip }
    backend: app
    rateLimit: { average: 1, period: 2s, burst: 2 }
  - name: key
    match: { pathPrefix: /key }
    backend: app
    rateLimit: { average: 1, period: 10s, burst: 2, by: { header: x-api-key } }
  - name: session
    match: { pathPrefix: /session }
    backend: app
    rateLimit: { average: 1, period: 10s, burst: 1, by: { cookie: sid } }
  - name: cached
    match: { pathPrefix: /cached }
    backend: app
    rateLimit: { average: 1, period: 10s, burst: 3 }
  - name: free
    backend: app
backends:
  app:
    servers: [{ url: "${origin.url}" }]
`, { onSessionEnd: (s) => sessions.push(s) })
  const plain = proxy.url('plain')
  const get = (path: string, opts: H1Options = {}): Promise<Reply> => h1(plain, { ...opts, path })
  // Each subtest speaks as its own client (a trusted proxy's X-Forwarded-For), so buckets never mix.
  const as = (client: string, headers: Record<string, string> = {}): H1Options => ({ headers: { 'x-forwarded-for': client, ...headers } })

  t.test('burst at once, then 429 with Retry-After and the RateLimit fields; passes again after the wait', async (t) => {
    const me = as('203.0.113.1')
    const first = await get('/ip/a', me)
    t.equal(first.status, 200)
    t.equal(first.headers['ratelimit-policy'], '"ip";q=1;w=2')
    t.equal(first.headers.ratelimit, '"ip";r=1;t=2')
    t.equal((await get('/ip/a', me)).status, 200)
    const refused = await get('/ip/a', me)
    t.equal(refused.status, 429)
    t.equal(refused.headers['x-switchyard-error'], 'LB_ERR_RATE_LIMITED')
    t.match(refused.text, /^429 too many requests/)
    t.equal(refused.headers['retry-after'], '2')
    t.equal(refused.headers['ratelimit-policy'], '"ip";q=1;w=2')
    t.equal(refused.headers.ratelimit, '"ip";r=0;t=2')
    t.equal(origin.requests.filter((r) => r.url === '/ip/a').length, 2, 'the refused request never reached the origin')
    // Waiting what Retry-After says is enough (one request back every 2 s). A timer may fire a
    // millisecond before the monotonic clock the limiter reads has moved that far: a small margin.
    await sleep(Number(refused.headers['retry-after']) * 1000 + 50)
    t.equal((await get('/ip/a', me)).status, 200)
  })

  t.test('clientIp: each client behind the trusted proxy has its own bucket', async (t) => {
    for (let i = 0; i < 2; i++) t.equal((await get('/ip/b', as('198.51.100.7'))).status, 200)
    t.equal((await get('/ip/b', as('198.51.100.7'))).status, 429)
    t.equal((await get('/ip/b', as('198.51.100.8'))).status, 200, 'another client is not held by the first')
    t.equal((await get('/ip/b', as('192.0.2.50, 198.51.100.7'))).status, 429,
      'the address the trusted proxy reports, not what its client claimed before it')
  })

  t.test('by header: one bucket per value; without it, the client address', async (t) => {
    const key = (k: string): H1Options => as('203.0.113.20', { 'x-api-key': k })
    t.equal((await get('/key', key('alpha'))).status, 200)
    t.equal((await get('/key', key('alpha'))).status, 200)
    const refused = await get('/key', key('alpha'))
    t.equal(refused.status, 429)
    t.equal(refused.headers['retry-after'], '10', 'one request back every 10 s')
    t.equal((await get('/key', key('beta'))).status, 200, 'another key, another bucket (same address)')
    // No key: the address's own bucket, not alpha's and not one shared by every keyless client.
    t.equal((await get('/key', as('203.0.113.20'))).status, 200)
    t.equal((await get('/key', as('203.0.113.20'))).status, 200)
    t.equal((await get('/key', as('203.0.113.20'))).status, 429)
    t.equal((await get('/key', as('203.0.113.21'))).status, 200, 'another keyless client')
    t.equal((await get('/key', key('203.0.113.21'))).status, 200, 'a key that spells an address is not that address')
  })

  t.test('by cookie: one bucket per value', async (t) => {
    const sid = (v: string): H1Options => as('203.0.113.30', { cookie: `theme=dark; sid=${v}` })
    t.equal((await get('/session', sid('s1'))).status, 200)
    t.equal((await get('/session', sid('s1'))).status, 429)
    t.equal((await get('/session', sid('s2'))).status, 200)
  })

  t.test('cache hits count and carry fresh fields; h2 answers carry them too', async (t) => {
    const me = as('203.0.113.40')
    const miss = await get('/cached', me)
    t.equal(miss.headers.ratelimit, '"cached";r=2;t=10')
    const hit = await get('/cached', me)
    t.match(hit.headers['cache-status'], /hit/)
    t.equal(hit.headers.ratelimit, '"cached";r=1;t=10', 'the stored head is the origin\'s; the fields are this request\'s')
    t.equal(origin.requests.filter((r) => r.url === '/cached').length, 1)
    const viaH2 = await h2(t, proxy.url('tls'), { ':path': '/cached', 'x-forwarded-for': '203.0.113.40' })
    t.equal(viaH2.status, 200)
    t.equal(viaH2.headers.ratelimit, '"cached";r=0;t=10')
    const refused = await h2(t, proxy.url('tls'), { ':path': '/cached', 'x-forwarded-for': '203.0.113.40' })
    t.equal(refused.status, 429)
    t.equal(refused.headers['retry-after'], '10')
  })

  t.test('a route without a rate limit has no fields and is never refused', async (t) => {
    for (let i = 0; i < 10; i++) {
      const r = await get('/free', as('203.0.113.1'))
      t.equal(r.status, 200)
      t.equal(r.headers.ratelimit, undefined)
      t.equal(r.headers['ratelimit-policy'], undefined)
    }
  })

  t.test('a WebSocket upgrade counts like a request; refused, it gets the fields too', async (t) => {
    const upgrade = (): Promise<string> => new Promise((resolve, reject) => {
      const socket = net.connect(proxy.port('plain'), '127.0.0.1')
      let text = ''
      socket.on('data', (c: Buffer) => { text += c.toString('latin1') })
      socket.on('error', reject)
      socket.on('close', () => resolve(text))
      socket.write('GET /session/ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n' +
        'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nX-Forwarded-For: 203.0.113.60\r\n\r\n')
      setTimeout(() => socket.end(), 500)
    })
    // The origin is plain HTTP: it answers the first upgrade with 200, which is relayed.
    t.match(await upgrade(), /^HTTP\/1\.1 200/)
    const refused = await upgrade()
    t.match(refused, /^HTTP\/1\.1 429 /)
    t.match(refused, /\r\nretry-after: 10\r\n/)
    t.match(refused, /\r\nratelimit: "session";r=0;t=10\r\n/)
  })

  t.test('/status lists each route\'s limit', async (t) => {
    const routes = (proxy.app.api.status() as AdminStatus).routes
    t.equal(routes.find((r) => r.name === 'key')?.rateLimit, '1 per 10s, burst 2, by header x-api-key, store local')
    t.equal(routes.find((r) => r.name === 'free')?.rateLimit, undefined)
  })

  t.test('refusals are counted per route and logged with their code and flag', async (t) => {
    const families = parsePrometheusText(proxy.app.metrics.prometheus())
    const limited = families.find((f) => f.name === 'switchyard_ratelimited_total')?.samples ?? []
    const count = (route: string): number | undefined => limited.find((s) => s.labels.route === route)?.value
    t.equal(count('ip'), 3)
    t.equal(count('key'), 2)
    t.equal(count('session'), 2, 'a refused request, and the refused upgrade under its route')
    t.equal(count('cached'), 1)
    t.equal(count('free'), undefined)
    const refused = sessions.map((s) => requestRecord(s)).filter((r) => r.status === 429)
    t.equal(refused.length, 7)
    t.match(refused[0], { route: 'ip', errorCode: 'LB_ERR_RATE_LIMITED', errorFlag: 'RL', clientAddress: '127.0.0.1' })
  })
})
