// The admin listener against a fake AdminApi: every endpoint and status code,
// bearer-token auth, the loopback rule, purge body validation and readiness.
import { createHash } from 'node:crypto'
import http from 'node:http'
import net from 'node:net'
import t, { type Test } from 'tap'
import { isLoopback } from '../../src/config/forms.js'
import {
  bearerMatches, MAX_BODY_BYTES, startAdmin,
  type AdminApi, type AdminConfig, type AdminHandle, type PurgeRequest
} from '../../src/admin/admin.js'
import { DASHBOARD_CSP, loadDashboard } from '../../src/admin/dashboard.js'

interface FakeApi extends AdminApi {
  isReady: boolean
  reloadResult: { ok: true; needsRestart: string[] } | { ok: false; errors: string[] } | Error
  purgeResult: { purged: number } | { error: string }
  purges: PurgeRequest[]
  reloads: number
  statusValue: unknown
}

function fakeApi (withLookup = true): FakeApi {
  const api: FakeApi = {
    isReady: true,
    reloadResult: { ok: true, needsRestart: [] },
    purgeResult: { purged: 3 },
    purges: [],
    reloads: 0,
    statusValue: { backends: [{ name: 'api', shards: [] }] },
    status: () => {
      if (api.statusValue instanceof Error) throw api.statusValue
      return api.statusValue
    },
    metrics: () => '# TYPE switchyard_requests_total counter\nswitchyard_requests_total 7\n',
    snapshot: () => ({ now: 1, history: [] }),
    reload: async () => {
      api.reloads++
      if (api.reloadResult instanceof Error) throw api.reloadResult
      return api.reloadResult
    },
    purge: (what) => {
      api.purges.push(what)
      return api.purgeResult
    },
    ready: () => api.isReady
  }
  if (withLookup) {
    api.cacheLookup = (url) => url === 'https://example.com/hit' ? { key: url, age: 5, size: 120 } : undefined
  }
  return api
}

async function admin (t: Test, api: AdminApi, cfg: Partial<AdminConfig> = {}): Promise<AdminHandle> {
  const h = await startAdmin({ host: '127.0.0.1', port: 0, ...cfg }, api)
  t.teardown(() => h.close())
  return h
}

interface Reply { status: number; headers: http.IncomingHttpHeaders; body: string }

/** One request on its own connection (no agent), so nothing outlives the test. */
function call (h: AdminHandle, method: string, path: string, opts: { headers?: Record<string, string>; body?: string | Buffer } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: h.address().port, method, path, headers: opts.headers ?? {}, agent: false }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(opts.body)
  })
}

const JSON_POST = { headers: { 'content-type': 'application/json' } }

const json = (body: unknown): { headers: Record<string, string>; body: string } =>
  ({ headers: { 'content-type': 'application/json' }, body: typeof body === 'string' ? body : JSON.stringify(body) })

t.test('isLoopbackHost: only addresses this machine alone can reach', async (t) => {
  for (const h of ['127.0.0.1', '127.1.2.3', '::1', '[::1]', '0:0:0:0:0:0:0:1', 'localhost', 'LOCALHOST', '::ffff:127.0.0.1', 'app.localhost']) {
    t.ok(isLoopback(h), h)
  }
  for (const h of ['0.0.0.0', '::', '10.0.0.1', '192.168.1.10', '128.0.0.1', 'example.com', 'localhost.example.com', '', '::2', '::ffff:10.0.0.1']) {
    t.notOk(isLoopback(h), JSON.stringify(h))
  }
})

t.test('refuses to start on a non-loopback host without a token', async (t) => {
  for (const host of ['0.0.0.0', '::', '10.1.2.3', 'example.com']) {
    await t.rejects(startAdmin({ host, port: 0 }, fakeApi()), /refusing to listen on non-loopback host .* without a token/, host)
  }
  await t.rejects(startAdmin({ host: '127.0.0.1', port: 0, token: '  ' }, fakeApi()), /token.*empty/, 'an empty token is refused too')
})

t.test('a port in use is a clear startup error', async (t) => {
  const first = await admin(t, fakeApi())
  await t.rejects(startAdmin({ host: '127.0.0.1', port: first.address().port }, fakeApi()), /admin: cannot listen on 127\.0\.0\.1:\d+: .*EADDRINUSE/)
})

t.test('GET / serves the dashboard page under a strict CSP', async (t) => {
  const h = await admin(t, fakeApi())
  const r = await call(h, 'GET', '/')
  t.equal(r.status, 200)
  t.match(r.headers['content-type'], /^text\/html; charset=utf-8/)
  t.equal(r.headers['cache-control'], 'no-store')
  t.equal(r.headers['x-content-type-options'], 'nosniff')
  t.equal(r.headers['content-security-policy'], DASHBOARD_CSP)
  t.equal(r.headers['x-frame-options'], 'DENY')
  t.equal(r.body, (await loadDashboard()).html)
  t.match(r.body, /<canvas/)
  t.notMatch(r.body, /<script(?![^>]*\ssrc=)|<style|\sstyle=|https?:\/\/(?!example\.com)/, 'no inline script or style, no external URLs')
})

t.test('the CSP allows scripts and styles from the admin listener only, nothing inline', async (t) => {
  t.match(DASHBOARD_CSP, /(^|; )default-src 'none'(;|$)/)
  t.match(DASHBOARD_CSP, /(^|; )script-src 'self'(;|$)/)
  t.match(DASHBOARD_CSP, /(^|; )style-src 'self'(;|$)/)
  t.notMatch(DASHBOARD_CSP, /unsafe-inline|unsafe-eval|\*/)
})

t.test('GET /status, /snapshot: pretty JSON, no-store, nosniff; HEAD has no body', async (t) => {
  const api = fakeApi()
  const h = await admin(t, api)
  const s = await call(h, 'GET', '/status')
  t.equal(s.status, 200)
  t.equal(s.headers['content-type'], 'application/json; charset=utf-8')
  t.equal(s.headers['cache-control'], 'no-store')
  t.equal(s.headers['x-content-type-options'], 'nosniff')
  t.same(JSON.parse(s.body), api.statusValue)
  t.equal(s.body, `${JSON.stringify(api.statusValue, null, 2)}\n`, 'pretty-printed')
  const n = await call(h, 'GET', '/snapshot')
  t.equal(n.status, 200)
  t.same(JSON.parse(n.body), { now: 1, history: [] })
  const head = await call(h, 'HEAD', '/status')
  t.equal(head.status, 200)
  t.equal(head.body, '')
  t.equal(head.headers['content-length'], String(Buffer.byteLength(s.body)))
  const q = await call(h, 'GET', '/status?pretty=0')
  t.equal(q.status, 200, 'a query string does not change the endpoint')
})

t.test('GET /metrics: Prometheus text 0.0.4', async (t) => {
  const h = await admin(t, fakeApi())
  const r = await call(h, 'GET', '/metrics')
  t.equal(r.status, 200)
  t.equal(r.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8')
  t.equal(r.headers['cache-control'], 'no-store')
  t.equal(r.body, '# TYPE switchyard_requests_total counter\nswitchyard_requests_total 7\n')
})

t.test('GET /healthz follows api.ready()', async (t) => {
  const api = fakeApi()
  const h = await admin(t, api)
  let r = await call(h, 'GET', '/healthz')
  t.equal(r.status, 200)
  t.equal(r.body, 'ready\n')
  t.match(r.headers['content-type'], /^text\/plain/)
  api.isReady = false
  r = await call(h, 'GET', '/healthz')
  t.equal(r.status, 503)
  t.equal(r.body, 'not ready\n')
  api.isReady = true
  r = await call(h, 'GET', '/healthz')
  t.equal(r.status, 200)
})

t.test('unknown paths are 404, wrong methods 405 with Allow', async (t) => {
  const h = await admin(t, fakeApi())
  const nf = await call(h, 'GET', '/nope')
  t.equal(nf.status, 404)
  t.match(JSON.parse(nf.body), { error: /no such endpoint: \/nope/ })
  t.equal(nf.headers['cache-control'], 'no-store')
  t.equal((await call(h, 'GET', '/status/')).status, 404, 'paths match exactly')
  for (const [method, path, allow] of [
    ['POST', '/status', 'GET, HEAD'], ['DELETE', '/', 'GET, HEAD'], ['PUT', '/metrics', 'GET, HEAD'],
    ['GET', '/reload', 'POST'], ['GET', '/cache/purge', 'POST'], ['OPTIONS', '/cache/purge', 'POST'], ['POST', '/healthz', 'GET, HEAD']
  ] as const) {
    const r = await call(h, method, path)
    t.equal(r.status, 405, `${method} ${path}`)
    t.equal(r.headers.allow, allow, `${method} ${path} Allow`)
  }
})

t.test('POST /reload: 200 ok, 400 with the errors, 500 when it throws', async (t) => {
  const api = fakeApi()
  const h = await admin(t, api)
  let r = await call(h, 'POST', '/reload', JSON_POST)
  t.equal(r.status, 200)
  t.same(JSON.parse(r.body), { ok: true, needsRestart: [] })
  api.reloadResult = { ok: false, errors: ['config.yaml:3:5 routes[0].backend: unknown backend `x`'] }
  r = await call(h, 'POST', '/reload', JSON_POST)
  t.equal(r.status, 400)
  t.same(JSON.parse(r.body), { ok: false, errors: ['config.yaml:3:5 routes[0].backend: unknown backend `x`'] })
  api.reloadResult = new Error('disk on fire')
  r = await call(h, 'POST', '/reload', JSON_POST)
  t.equal(r.status, 500)
  t.match(JSON.parse(r.body), { error: /disk on fire/ })
  api.reloadResult = { ok: true, needsRestart: [] }
  const both = await Promise.all([call(h, 'POST', '/reload', JSON_POST), call(h, 'POST', '/reload', JSON_POST)])
  t.same(both.map((b) => b.status), [200, 200], 'concurrent reloads both complete (one after the other)')
  t.equal(api.reloads, 5)
})

t.test('POST /cache/purge: exactly one of url / prefix / tag', async (t) => {
  const api = fakeApi()
  const h = await admin(t, api)
  for (const body of [{ url: 'https://example.com/a?b=1' }, { prefix: 'https://example.com/img/' }, { tag: 'product-42' }]) {
    const r = await call(h, 'POST', '/cache/purge', json(body))
    t.equal(r.status, 200, JSON.stringify(body))
    t.same(JSON.parse(r.body), { purged: 3 })
  }
  t.same(api.purges, [{ url: 'https://example.com/a?b=1' }, { prefix: 'https://example.com/img/' }, { tag: 'product-42' }])
  const bad: [string, string | RegExp][] = [
    ['{}', /exactly one of url, prefix, tag; got none/],
    [JSON.stringify({ url: 'https://example.com/', tag: 'x' }), /exactly one of url, prefix, tag; got url, tag/],
    [JSON.stringify({ url: 'https://example.com/', extra: 1 }), /unknown key `extra`/],
    [JSON.stringify({ url: '/relative/path' }), /absolute http\(s\) URL/],
    [JSON.stringify({ url: 'ftp://example.com/x' }), /absolute http\(s\) URL/],
    [JSON.stringify({ tag: '' }), /`tag` must be a non-empty string/],
    [JSON.stringify({ prefix: 42 }), /`prefix` must be a non-empty string/],
    [JSON.stringify(['https://example.com/']), /JSON object/],
    ['null', /JSON object/],
    ['{"url": ', /body must be JSON/],
    ['', /body must be JSON/]
  ]
  for (const [body, msg] of bad) {
    const r = await call(h, 'POST', '/cache/purge', json(body))
    t.equal(r.status, 400, body)
    t.match(JSON.parse(r.body), { error: msg }, body)
  }
  t.equal(api.purges.length, 3, 'invalid bodies never reach the api')
})

t.test('POST /cache/purge: JSON content type only; the api can refuse; bodies over 64 KiB are 413', async (t) => {
  const api = fakeApi()
  const h = await admin(t, api)
  let r = await call(h, 'POST', '/cache/purge', { headers: { 'content-type': 'text/plain' }, body: '{"tag":"x"}' })
  t.equal(r.status, 415, 'a cross-site form cannot trigger a purge')
  r = await call(h, 'POST', '/cache/purge', { body: '{"tag":"x"}' })
  t.equal(r.status, 415, 'no content type')
  r = await call(h, 'POST', '/cache/purge', { headers: { 'content-type': 'application/json; charset=utf-8' }, body: '{"tag":"x"}' })
  t.equal(r.status, 200, 'parameters on the media type are fine')

  api.purgeResult = { error: 'no cache configured' }
  r = await call(h, 'POST', '/cache/purge', json({ tag: 'x' }))
  t.equal(r.status, 400)
  t.same(JSON.parse(r.body), { error: 'no cache configured' })

  // Declared too large: refused before reading.
  const big = JSON.stringify({ tag: 'x'.repeat(MAX_BODY_BYTES) })
  r = await call(h, 'POST', '/cache/purge', json(big))
  t.equal(r.status, 413)
  t.match(JSON.parse(r.body), { error: /larger than 65536 bytes/ })
  // Chunked, no length: refused once it passes the limit.
  r = await new Promise<Reply>((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1', port: h.address().port, method: 'POST', path: '/cache/purge', agent: false,
      headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' }
    }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }))
    })
    req.on('error', reject)
    req.write(big.slice(0, 40_000))
    req.write(big.slice(40_000, MAX_BODY_BYTES + 10))
  })
  t.equal(r.status, 413)
  t.equal(r.headers.connection, 'close')
  // Exactly at the limit is fine.
  const atLimit = JSON.stringify({ tag: 'y'.repeat(MAX_BODY_BYTES - 10) })
  t.equal(Buffer.byteLength(atLimit), MAX_BODY_BYTES)
  api.purgeResult = { purged: 0 }
  r = await call(h, 'POST', '/cache/purge', json(atLimit))
  t.equal(r.status, 200)
  t.same(JSON.parse(r.body), { purged: 0 })
})

t.test('GET /cache/lookup: the api answer, 404 when absent or not provided, 400 without a URL', async (t) => {
  const h = await admin(t, fakeApi())
  let r = await call(h, 'GET', `/cache/lookup?url=${encodeURIComponent('https://example.com/hit')}`)
  t.equal(r.status, 200)
  t.same(JSON.parse(r.body), { key: 'https://example.com/hit', age: 5, size: 120 })
  r = await call(h, 'GET', `/cache/lookup?url=${encodeURIComponent('https://example.com/miss')}`)
  t.equal(r.status, 404)
  t.match(JSON.parse(r.body), { error: /not in cache/ })
  r = await call(h, 'GET', '/cache/lookup')
  t.equal(r.status, 400)
  r = await call(h, 'GET', '/cache/lookup?url=%2Fpath')
  t.equal(r.status, 400)

  const without = await admin(t, fakeApi(false))
  r = await call(without, 'GET', `/cache/lookup?url=${encodeURIComponent('https://example.com/hit')}`)
  t.equal(r.status, 404)
  t.match(JSON.parse(r.body), { error: /not available/ })
})

t.test('an api that throws is a 500 with the message, and the listener keeps serving', async (t) => {
  const api = fakeApi()
  api.statusValue = new Error('status exploded')
  const h = await admin(t, api)
  const r = await call(h, 'GET', '/status')
  t.equal(r.status, 500)
  t.match(JSON.parse(r.body), { error: /status exploded/ })
  t.equal((await call(h, 'GET', '/healthz')).status, 200)
})

t.test('with a token, every request but the data-free page and /healthz needs Authorization: Bearer <token>', async (t) => {
  const token = 's3cret-token-0123456789'
  const api = fakeApi()
  const h = await admin(t, api, { token })
  const page = await call(h, 'GET', '/')
  t.equal(page.status, 200, 'the dashboard page loads in a plain browser (it fetches its data with the #token)')
  // A kubelet or Docker probe cannot send a secret; /healthz tells only ready or not.
  t.equal((await call(h, 'GET', '/healthz')).status, 200, 'GET /healthz without a token')
  t.equal((await call(h, 'HEAD', '/healthz?probe=1', { headers: { host: 'pod.example' } })).status, 200, 'HEAD, any Host, a query')
  api.isReady = false
  t.equal((await call(h, 'GET', '/healthz')).status, 503, 'not ready is still told')
  api.isReady = true
  t.equal((await call(h, 'POST', '/healthz', JSON_POST)).status, 401, 'only GET and HEAD are open')
  for (const path of ['/status', '/metrics', '/snapshot', '/healthz/x', '/nope', '/cache/lookup?url=x']) {
    const r = await call(h, 'GET', path)
    t.equal(r.status, 401, `GET ${path} without a token`)
    t.equal(r.headers['www-authenticate'], 'Bearer realm="switchyard-admin"')
    t.equal(r.headers['cache-control'], 'no-store')
  }
  for (const [label, auth] of [
    ['wrong token', `Bearer ${token}x`],
    ['prefix of the token', `Bearer ${token.slice(0, -1)}`],
    ['much longer token', `Bearer ${token.repeat(50)}`],
    ['empty bearer', 'Bearer '],
    ['basic scheme', `Basic ${Buffer.from(`admin:${token}`).toString('base64')}`],
    ['token without scheme', token],
    ['two tokens', `Bearer ${token} ${token}`]
  ] as const) {
    const r = await call(h, 'GET', '/status', { headers: { authorization: auth } })
    t.equal(r.status, 401, label)
  }
  t.equal((await call(h, 'POST', '/reload', JSON_POST)).status, 401, 'POST without a token')
  t.equal((await call(h, 'POST', '/cache/purge', json({ tag: 'x' }))).status, 401, 'purge without a token')

  const ok = { authorization: `Bearer ${token}` }
  t.equal((await call(h, 'GET', '/status', { headers: ok })).status, 200)
  t.equal((await call(h, 'GET', '/', { headers: ok })).status, 200)
  t.equal((await call(h, 'GET', '/status', { headers: { authorization: `bearer ${token}` } })).status, 200, 'scheme is case-insensitive')
  t.equal((await call(h, 'POST', '/reload', { headers: { ...ok, 'content-type': 'application/json' } })).status, 200)
  const p = json({ tag: 'x' })
  t.equal((await call(h, 'POST', '/cache/purge', { headers: { ...p.headers, ...ok }, body: p.body })).status, 200)
  t.equal((await call(h, 'GET', '/nope', { headers: ok })).status, 404, 'authenticated, then routed')
  t.equal((await call(h, 'GET', '/status', { headers: { ...ok, host: 'admin.example.com' } })).status, 200,
    'any Host is fine once authenticated')
})

t.test('the token compare hashes both sides (constant time, any length)', async (t) => {
  const expected = createHash('sha256').update('abc').digest()
  t.ok(bearerMatches('Bearer abc', expected))
  t.ok(bearerMatches('bearer   abc ', expected))
  t.notOk(bearerMatches('Bearer abd', expected))
  t.notOk(bearerMatches('Bearer ab', expected), 'shorter: no length-mismatch exception from timingSafeEqual')
  t.notOk(bearerMatches(`Bearer ${'a'.repeat(10_000)}`, expected), 'much longer')
  t.notOk(bearerMatches(undefined, expected))
  t.notOk(bearerMatches('', createHash('sha256').update('').digest()), 'a missing header never matches, even an empty token')
})

t.test('without a token, a non-loopback Host header is refused (DNS rebinding)', async (t) => {
  const h = await admin(t, fakeApi())
  const port = h.address().port
  for (const host of ['evil.example.com', `evil.example.com:${port}`, `10.0.0.1:${port}`]) {
    const r = await call(h, 'GET', '/status', { headers: { host } })
    t.equal(r.status, 403, host)
    t.match(JSON.parse(r.body), { error: /Host/ })
  }
  for (const host of [`localhost:${port}`, `127.0.0.1:${port}`, `[::1]:${port}`, 'localhost']) {
    t.equal((await call(h, 'GET', '/status', { headers: { host } })).status, 200, host)
  }
})

t.test('close() ends idle keep-alive connections and frees the port; twice is fine', async (t) => {
  const h = await startAdmin({ host: '127.0.0.1', port: 0 }, fakeApi())
  const port = h.address().port
  const agent = new http.Agent({ keepAlive: true })
  t.teardown(() => agent.destroy())
  await new Promise<void>((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: '/healthz', agent }, (res) => { res.resume(); res.on('end', resolve) }).on('error', reject)
  })
  await Promise.all([h.close(), h.close()])
  const again = await startAdmin({ host: '127.0.0.1', port }, fakeApi())
  t.equal(again.address().port, port)
  await again.close()
})

/**
 * Sends `head`, waits for the answer, then sends `more` as a client still
 * writing its request would, and closes. What came back, and whether the
 * client saw a reset (or a broken pipe) at any point.
 */
function stillSending (h: AdminHandle, head: string, more: string): Promise<{ raw: string, reset: string | undefined }> {
  return new Promise((resolve, reject) => {
    // allowHalfOpen: the client's side stays open after the server's FIN, as a client still sending does.
    const socket = net.connect({ host: '127.0.0.1', port: h.address().port, allowHalfOpen: true })
    const chunks: Buffer[] = []
    let reset: string | undefined
    const timer = setTimeout(() => { socket.destroy(); reject(new Error('no close within 5 s')) }, 5000)
    socket.once('connect', () => socket.write(head))
    socket.once('data', () => {
      // The answer is here: the rest of the request comes after it, in two
      // writes (a closed socket answers the first with a reset, which the
      // second then meets).
      setTimeout(() => {
        socket.write(more)
        setTimeout(() => {
          socket.write(more)
          setTimeout(() => socket.end(), 50)
        }, 50)
      }, 50)
    })
    socket.on('data', (c: Buffer) => chunks.push(c))
    socket.on('error', (err: NodeJS.ErrnoException) => { reset = err.code })
    socket.on('close', () => {
      clearTimeout(timer)
      resolve({ raw: Buffer.concat(chunks).toString('latin1'), reset })
    })
  })
}

t.test('heads node:http refuses: its 431 or 400 with Connection: close, and no reset for a client still sending', async (t) => {
  const h = await admin(t, fakeApi())
  const rest = `${'x'.repeat(20_000)}\r\n\r\n`
  const cases: Array<[string, string, number]> = [
    ['a request target over the head limit', `GET /${'a'.repeat(20_000)}`, 431],
    ['a header field over the head limit', `GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nx-big: ${'b'.repeat(20_000)}`, 431],
    ['a bad request line', 'GE T /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n', 400],
    ['a bad header line', 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nnot a header\r\n', 400]
  ]
  for (const [what, head, status] of cases) {
    const r = await stillSending(h, head, rest)
    t.match(r.raw, new RegExp(`^HTTP/1\\.1 ${status} [^\\r]*\\r\\nConnection: close\\r\\n\\r\\n$`), `${what}: ${status}, then the end`)
    t.equal(r.reset, undefined, `${what}: what the client still sent was read and dropped, not answered with a reset`)
  }
  t.equal((await call(h, 'GET', '/healthz')).status, 200, 'the listener keeps serving')
})

t.test('state-changing calls refuse what a cross-site browser tab could send (CSRF)', async (t) => {
  const api = fakeApi()
  const h = await admin(t, api)
  const port = h.address().port
  const r1 = await call(h, 'POST', '/reload', { headers: { 'content-type': 'text/plain' } })
  t.equal(r1.status, 415, 'a form or text/plain body: refused')
  t.equal((await call(h, 'POST', '/reload')).status, 415, 'no Content-Type: refused')
  t.equal((await call(h, 'POST', '/cache/purge', { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'url=x' })).status, 415)
  const evil = await call(h, 'POST', '/reload', { headers: { 'content-type': 'application/json', origin: 'https://evil.example' } })
  t.equal(evil.status, 403, 'a foreign Origin')
  t.match(JSON.parse(evil.body), { error: /Origin/ })
  t.equal((await call(h, 'POST', '/reload', { headers: { 'content-type': 'application/json', origin: 'null' } })).status, 403, 'an opaque Origin')
  t.equal((await call(h, 'POST', '/reload', { headers: { 'content-type': 'application/json', 'sec-fetch-site': 'cross-site' } })).status, 403)
  t.equal((await call(h, 'POST', '/reload', { headers: { 'content-type': 'application/json', origin: `http://127.0.0.1:${port}` } })).status, 200,
    'the dashboard itself (same origin) may')
  t.equal(api.reloads, 1, 'only the allowed call reloaded')
})

t.test('every change made through the API is logged with the client that asked for it', async (t) => {
  const api = fakeApi()
  const lines: Array<{ level: string, obj: Record<string, unknown>, msg: string }> = []
  const log = {
    info: (obj: object, msg: string) => { lines.push({ level: 'info', obj: obj as Record<string, unknown>, msg }) },
    warn: (obj: object, msg: string) => { lines.push({ level: 'warn', obj: obj as Record<string, unknown>, msg }) }
  }
  const h = await startAdmin({ host: '127.0.0.1', port: 0 }, api, log)
  t.teardown(() => h.close())
  api.reloadResult = { ok: true, needsRestart: [] }
  t.equal((await call(h, 'POST', '/reload', JSON_POST)).status, 200)
  api.reloadResult = { ok: false, errors: ['x.yaml:1:1 nope'] }
  t.equal((await call(h, 'POST', '/reload', JSON_POST)).status, 400)
  t.equal((await call(h, 'POST', '/cache/purge', json({ tag: 'product-42' }))).status, 200)
  t.equal((await call(h, 'GET', '/status')).status, 200, 'a read is not a change: no line')
  const changes = lines.filter((l) => l.msg !== 'admin: listening')
  t.same(changes.map((l) => [l.level, l.msg]), [
    ['info', 'admin: config reloaded'], ['warn', 'admin: reload refused'], ['info', 'admin: cache purge']
  ])
  for (const l of changes) t.equal(l.obj.client, '127.0.0.1', `${l.msg}: names the client`)
})
