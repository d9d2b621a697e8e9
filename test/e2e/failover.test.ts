// Failover through a real proxy with real origins: retries on another replica,
// health checks ejecting and returning a replica, sticky sessions re-pinning,
// the per-shard queue under maxConn, panic mode, and all-down answers.
import net from 'node:net'
import { Readable } from 'node:stream'
import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import { Pool, request } from 'undici'
import { startProxy } from '../helpers/proxy.js'
import { RETRY_BUCKET_CAP } from '../../src/upstream/backend.js'
import { startServer } from '../helpers/origin.js'

/** An origin named `name` whose answers the test steers, built on origin.ts's server. */
interface Origin {
  readonly name: string
  readonly port: number
  /** Requests seen, by method. */
  readonly seen: { total: number; get: number; post: number; health: number; maxActive: number }
  /** What /healthz answers. */
  healthStatus: number
  /** Delay before answering normal requests (ms). */
  delay: number
  /** Destroy the socket instead of answering. */
  reset: boolean
  /** The server goes down (every connection cut), and comes back on the same port. */
  kill (): Promise<void>
  revive (): Promise<void>
}

async function startOrigin (t: Test, name: string): Promise<Origin> {
  let active = 0
  const steer = { healthStatus: 200, delay: 0, reset: false }
  const seen = { total: 0, get: 0, post: 0, health: 0, maxActive: 0 }
  const server = await startServer(t, (req, res) => {
    if (req.url === '/healthz') {
      seen.health++
      res.writeHead(steer.healthStatus).end()
      return
    }
    seen.total++
    if (req.method === 'POST') seen.post++
    else seen.get++
    if (steer.reset) {
      req.socket.destroy()
      return
    }
    active++
    seen.maxActive = Math.max(seen.maxActive, active)
    const answer = (): void => {
      active--
      req.resume()
      res.writeHead(200, { 'content-type': 'text/plain', 'x-served-by': name }).end(name)
    }
    if (steer.delay > 0) setTimeout(answer, steer.delay)
    else answer()
  })
  return Object.assign(steer, { name, port: server.port, seen, kill: server.stop, revive: server.restart })
}

function yaml (origins: Origin[], backendExtra: string): string {
  return `
listeners: [{ name: web, bind: "127.0.0.1:0" }]
routes: [{ match: { pathPrefix: / }, backend: app }]
backends:
  app:
${backendExtra.split('\n').map((l) => `    ${l}`).join('\n')}
    servers:
${origins.map((o) => `      - { name: ${o.name}, url: "http://127.0.0.1:${o.port}" }`).join('\n')}
`
}

/** Poll `cond` every 25 ms for up to `ms` (a bound, not an assertion on time). */
async function until (cond: () => boolean, ms = 10_000): Promise<boolean> {
  const end = Date.now() + ms
  while (Date.now() < end) {
    if (cond()) return true
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
  return cond()
}

for (const outlier of [false, true]) t.test(`a replica killed under a load of GETs causes zero non-2xx answers (outlier detection ${outlier ? 'on' : 'off'})`, async (t) => {
  const a = await startOrigin(t, 'a')
  const b = await startOrigin(t, 'b')
  const proxy = await startProxy(t, yaml([a, b], `
retries: { attempts: 2 }${outlier ? '\noutlierDetection: { consecutiveGatewayFailure: 2 }' : ''}`))
  const client = new Pool(proxy.url('web'), { connections: 16 })
  t.teardown(() => client.close())
  const statuses = new Map<number, number>()
  let sent = 0
  const total = 3000
  const worker = async (): Promise<void> => {
    while (sent < total) {
      sent++
      if (sent === 1000) void a.kill()
      const r = await client.request({ path: '/', method: 'GET' })
      await r.body.text()
      statuses.set(r.statusCode, (statuses.get(r.statusCode) ?? 0) + 1)
    }
  }
  await Promise.all(Array.from({ length: 16 }, worker))
  t.same(Object.fromEntries(statuses), { 200: total }, 'every request answered 200')
  t.ok(b.seen.get > a.seen.get, 'the survivor took over')
  const backend = proxy.app.status()[0]!
  t.ok(backend.retries > 0, `retries happened (${backend.retries})`)
  t.equal(backend.shards[0]!.servers.find((s) => s.name === 'a')!.ejected, outlier, 'outlier detection ejected the dead replica')
})

t.test('POST is not retried: a reset answers 502 and no other replica sees it', async (t) => {
  const a = await startOrigin(t, 'a')
  const b = await startOrigin(t, 'b')
  a.reset = true
  b.reset = true
  const proxy = await startProxy(t, yaml([a, b], 'retries: { attempts: 2 }'))
  const r = await request(`${proxy.url('web')}/submit`, { method: 'POST', body: 'x=1' })
  await r.body.text()
  t.equal(r.statusCode, 502)
  t.equal(r.headers['x-switchyard-error'], 'LB_ERR_UPSTREAM_RESET')
  t.equal(a.seen.post + b.seen.post, 1, 'sent exactly once')
  // The same failure on an idempotent method is retried on the other replica.
  b.reset = false
  const g = await request(`${proxy.url('web')}/x`, { method: 'PUT', body: 'v' })
  t.equal(g.statusCode, 200)
  t.equal(await g.body.text(), 'b')
})

t.test('a POST whose connection is refused goes to another replica: nothing reached a server', async (t) => {
  const a = await startOrigin(t, 'a')
  const b = await startOrigin(t, 'b')
  await a.kill()
  // Default retries (no nonIdempotent), no health check: every other POST picks the dead replica first.
  const proxy = await startProxy(t, yaml([a, b], 'retries: { attempts: 2 }'))
  for (let i = 0; i < 10; i++) {
    const r = await request(`${proxy.url('web')}/submit`, { method: 'POST', body: `n=${i}` })
    t.equal(r.statusCode, 200, `POST ${i}`)
    t.equal(await r.body.text(), 'b')
  }
  t.equal(b.seen.post, 10, 'each ran once, on the live replica')
  // A small chunked body (no Content-Length) is buffered as well, so it is replayed too.
  const chunked = await request(`${proxy.url('web')}/submit`, { method: 'POST', body: Readable.from(['chunked']) })
  t.equal(chunked.statusCode, 200, 'a small chunked POST goes to the live replica')
  t.equal(await chunked.body.text(), 'b')
  t.equal(b.seen.post, 11)
})

t.test('a sticky client pinned to a dead server: its POST goes elsewhere and the cookie moves with it', async (t) => {
  const a = await startOrigin(t, 'a')
  const b = await startOrigin(t, 'b')
  const proxy = await startProxy(t, yaml([a, b], 'retries: { attempts: 1 }\nsticky: { cookie: { name: SRV } }'))
  // Find a's cookie.
  let cookie: string | undefined
  for (let i = 0; i < 6 && cookie === undefined; i++) {
    const r = await request(`${proxy.url('web')}/`, { method: 'GET' })
    const name = await r.body.text()
    const set = String(r.headers['set-cookie'] ?? '')
    if (name === 'a') cookie = set.split(';')[0]
  }
  t.ok(cookie, 'a client pinned to a')
  await a.kill()
  const r = await request(`${proxy.url('web')}/submit`, { method: 'POST', body: 'x', headers: { cookie: cookie! } })
  t.equal(r.statusCode, 200)
  t.equal(await r.body.text(), 'b')
  t.match(String(r.headers['set-cookie'] ?? ''), /^SRV=/, 'pinned anew, to the server that answered')
})

t.test('an upload answered with 502 before its body was read closes the connection: no next request waits behind the rest of it', async (t) => {
  const a = await startOrigin(t, 'a')
  await a.kill()
  const proxy = await startProxy(t, yaml([a], 'retries: { attempts: 0 }'))
  const socket = net.connect(proxy.port('web'), '127.0.0.1')
  t.teardown(() => socket.destroy())
  await new Promise<void>((resolve) => socket.once('connect', resolve))
  socket.on('error', () => {})
  let text = ''
  socket.on('data', (d: Buffer) => { text += d.toString('latin1') })
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()))
  // 1 MB declared, 64 KiB sent: the proxy answers before reading the rest.
  socket.write('PUT /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 1048576\r\n\r\n')
  socket.write(Buffer.alloc(64 * 1024, 'x'))
  await until(() => text.includes('\r\n\r\n'))
  t.match(text, /^HTTP\/1\.1 502 /)
  t.match(text, /\r\nconnection: close\r\n/i, 'the answer says the connection ends')
  // Without it the connection stayed open, and a GET sent next waited for an answer that never came.
  socket.write('GET /next HTTP/1.1\r\nHost: a\r\n\r\n')
  await closed
  t.pass('and the proxy closed it')
})

t.test('nonIdempotent: true retries a small POST with its buffered body', async (t) => {
  const a = await startOrigin(t, 'a')
  const b = await startOrigin(t, 'b')
  await a.kill()
  const proxy = await startProxy(t, yaml([a, b], 'retries: { attempts: 1, nonIdempotent: true }'))
  for (let i = 0; i < 4; i++) {
    const r = await request(`${proxy.url('web')}/submit`, { method: 'POST', body: 'payload' })
    t.equal(r.statusCode, 200)
    t.equal(await r.body.text(), 'b')
  }
  t.equal(b.seen.post, 4)
})

t.test('a replica failing its health check stops getting traffic, and returns after recovery', async (t) => {
  const a = await startOrigin(t, 'a')
  const b = await startOrigin(t, 'b')
  const proxy = await startProxy(t, yaml([a, b], 'healthCheck: { interval: 100ms, timeout: 80ms, rise: 2, fall: 2, jitter: 0 }'))
  const server = (name: string) => proxy.app.state.backends.get('app')!.servers.find((s) => s.name === name)!
  a.healthStatus = 503
  t.ok(await until(() => !server('a').healthy), 'marked down')
  const before = a.seen.get
  for (let i = 0; i < 20; i++) {
    const r = await request(`${proxy.url('web')}/`)
    t.equal(await r.body.text(), 'b')
  }
  t.equal(a.seen.get, before, 'no traffic to the down replica')
  // The last check failed: a 503, or on a loaded machine a check timed out (80 ms) before the 503 came.
  const last = proxy.app.status()[0]!.shards[0]!.servers[0]!.lastCheck
  t.equal(last?.ok, false, `the last check failed (${last?.reason ?? 'none'})`)
  if (last?.status !== undefined) t.equal(last.status, 503)
  a.healthStatus = 200
  t.ok(await until(() => server('a').healthy), 'back up after rise successes')
  const names = new Set<string>()
  for (let i = 0; i < 6; i++) names.add(await (await request(`${proxy.url('web')}/`)).body.text())
  t.same([...names].sort(), ['a', 'b'], 'traffic returns')
})

t.test('sticky cookie pins a client, and re-pins when its server dies', async (t) => {
  const a = await startOrigin(t, 'a')
  const b = await startOrigin(t, 'b')
  const proxy = await startProxy(t, yaml([a, b], `
sticky: { cookie: { name: SRV, maxAge: 1h } }
retries: { attempts: 1 }
healthCheck: { interval: 100ms, timeout: 80ms, rise: 1, fall: 1, jitter: 0 }`))
  const first = await request(`${proxy.url('web')}/`)
  const pinned = await first.body.text()
  const setCookie = String(first.headers['set-cookie'])
  t.match(setCookie, /^SRV=[a-z0-9]+; Path=\/; SameSite=Lax; HttpOnly; Max-Age=3600$/)
  t.notMatch(setCookie, /127\.0\.0\.1|Secure/, 'opaque id; no Secure on plain HTTP')
  const cookie = setCookie.split(';')[0]!
  for (let i = 0; i < 10; i++) {
    const r = await request(`${proxy.url('web')}/`, { headers: { cookie } })
    t.equal(await r.body.text(), pinned)
    t.equal(r.headers['set-cookie'], undefined, 'no new cookie while pinned')
  }
  const dead = pinned === 'a' ? a : b
  await dead.kill()
  const moved = await request(`${proxy.url('web')}/`, { headers: { cookie } })
  t.equal(moved.statusCode, 200)
  const other = await moved.body.text()
  t.not(other, pinned, 're-balanced to the survivor')
  const newCookie = String(moved.headers['set-cookie']).split(';')[0]!
  t.not(newCookie, cookie, 'cookie rewritten')
  const again = await request(`${proxy.url('web')}/`, { headers: { cookie: newCookie } })
  t.equal(await again.body.text(), other)
})

t.test('all servers down: 503 with Retry-After and a clear code', async (t) => {
  const a = await startOrigin(t, 'a')
  const proxy = await startProxy(t, yaml([a], 'healthCheck: { interval: 100ms, timeout: 80ms, rise: 1, fall: 1, jitter: 0 }'))
  a.healthStatus = 500
  t.ok(await until(() => !proxy.app.state.backends.get('app')!.servers[0]!.healthy))
  const r = await request(`${proxy.url('web')}/`)
  t.equal(r.statusCode, 503)
  t.equal(r.headers['retry-after'], '1')
  t.equal(r.headers['x-switchyard-error'], 'LB_ERR_NO_HEALTHY_SERVER')
  await r.body.text()
})

t.test('panic mode: below panicThreshold, traffic goes to all servers regardless of health', async (t) => {
  const a = await startOrigin(t, 'a')
  const b = await startOrigin(t, 'b')
  const proxy = await startProxy(t, yaml([a, b], 'panicThreshold: 50'))
  for (const s of proxy.app.state.backends.get('app')!.servers) s.setCheckStatus(false, 'test')
  const names = new Set<string>()
  for (let i = 0; i < 4; i++) {
    const r = await request(`${proxy.url('web')}/`)
    t.equal(r.statusCode, 200)
    names.add(await r.body.text())
  }
  t.same([...names].sort(), ['a', 'b'])
})

t.test('maxConn with a queue absorbs a burst; past maxQueue and the queue timeout: 503', async (t) => {
  const a = await startOrigin(t, 'a')
  const b = await startOrigin(t, 'b')
  a.delay = 150
  b.delay = 150
  const proxy = await startProxy(t, yaml([a, b], 'maxConn: 1\nmaxQueue: 6\ntimeouts: { queue: 5s }'))
  const client = new Pool(proxy.url('web'), { connections: 8 })
  t.teardown(() => client.close())
  const burst = await Promise.all(Array.from({ length: 8 }, async () => {
    const r = await client.request({ path: '/', method: 'GET' })
    return { status: r.statusCode, body: await r.body.text() }
  }))
  t.same(burst.map((x) => x.status), Array(8).fill(200), '8 requests, 2 slots, 6 queued: all served')
  t.equal(a.seen.maxActive, 1, 'a never above maxConn')
  t.equal(b.seen.maxActive, 1, 'b never above maxConn')

  const wide = new Pool(proxy.url('web'), { connections: 12 })
  t.teardown(() => wide.close())
  const overflow = await Promise.all(Array.from({ length: 12 }, async () => {
    const r = await wide.request({ path: '/', method: 'GET' })
    return { status: r.statusCode, code: r.headers['x-switchyard-error'], text: await r.body.text() }
  }))
  const full = overflow.filter((x) => x.status === 503)
  t.equal(full.length, 4, '12 requests, 2 slots + 6 queued: 4 turned away')
  t.ok(full.every((x) => x.code === 'LB_ERR_QUEUE_FULL'))

  const slow = await startProxy(t, yaml([a], 'maxConn: 1\ntimeouts: { queue: 50ms }'))
  a.delay = 400
  const [first, second] = await Promise.all([request(`${slow.url('web')}/`), request(`${slow.url('web')}/`)])
  const results = [{ s: first.statusCode, c: first.headers['x-switchyard-error'] }, { s: second.statusCode, c: second.headers['x-switchyard-error'] }]
  await first.body.text(); await second.body.text()
  t.ok(results.some((x) => x.s === 200))
  t.ok(results.some((x) => x.s === 503 && x.c === 'LB_ERR_QUEUE_TIMEOUT'), 'the waiter timed out')
})

t.test('a server that comes up takes the waiters of its shard at once, not when a busy one frees a slot', async (t) => {
  const a = await startOrigin(t, 'a')
  const b = await startOrigin(t, 'b')
  b.healthStatus = 503
  a.delay = 4_000 // holds a's one slot past the waiters' wait
  const proxy = await startProxy(t, yaml([a, b], 'maxConn: 1\nmaxQueue: 8\ntimeouts: { queue: 3s }\nhealthCheck: { path: /healthz, interval: 100ms, timeout: 90ms, rise: 1, fall: 1 }'))
  const state = (name: string): string | undefined => proxy.app.status()[0]?.shards[0]?.servers.find((s) => s.name === name)?.state
  t.ok(await until(() => state('b') === 'down'), 'b starts down')
  const client = new Pool(proxy.url('web'), { connections: 4 })
  t.teardown(() => client.close())
  const ask = async (): Promise<string> => {
    const r = await client.request({ path: '/', method: 'GET' })
    return `${r.statusCode} ${await r.body.text()}`
  }
  const busy = ask() // takes a's slot for 4 s
  t.ok(await until(() => a.seen.get === 1), 'a is busy')
  const waiting = [ask(), ask()]
  t.ok(await until(() => (proxy.app.status()[0]?.shards[0]?.queued ?? 0) === 2), 'two wait in the queue')
  b.healthStatus = 200
  // Served by b once it is up: before, they waited for a's slot and timed out at 3 s.
  t.same(await Promise.all(waiting), ['200 b', '200 b'])
  t.equal(await busy, '200 a')
})

t.test('a retry that finds the other replicas busy waits in the queue for one', async (t) => {
  const a = await startOrigin(t, 'a')
  const b = await startOrigin(t, 'b')
  a.reset = true // every request it gets dies: retried
  b.delay = 1_000
  const proxy = await startProxy(t, yaml([a, b], 'retries: { attempts: 1 }\nmaxConn: 1\ntimeouts: { queue: 5s }'))
  const first = request(`${proxy.url('web')}/one`)
  t.ok(await until(() => b.seen.get === 1), 'b is busy with the first')
  // The second goes to a (the one with room), dies there, and its retry finds b full.
  const second = await request(`${proxy.url('web')}/two`)
  t.equal(second.statusCode, 200, 'served once b had room (before: 502 at once)')
  t.equal(await second.body.text(), 'b')
  t.equal((await first).statusCode, 200)
  t.equal(b.seen.maxActive, 1, 'b never above maxConn')
})

t.test('past `connections` requests wait in the shard queue, bounded by maxQueue and timeouts.queue, not in the pool', async (t) => {
  const a = await startOrigin(t, 'a')
  // maxConn 0 (unlimited), one pooled connection: the pool's size is the server's limit.
  const proxy = await startProxy(t, yaml([a], 'connections: 1\nmaxQueue: 1\nretries: { attempts: 0 }\ntimeouts: { queue: 300ms }'))
  a.delay = 1500
  const client = new Pool(proxy.url('web'), { connections: 4 })
  t.teardown(() => client.close())
  const send = async () => {
    const started = Date.now()
    const r = await client.request({ path: '/', method: 'GET' })
    await r.body.text()
    return { status: r.statusCode, code: r.headers['x-switchyard-error'], ms: Date.now() - started }
  }
  const holder = send()
  t.ok(await until(() => a.seen.get === 1), 'the first request holds the only connection')
  const waiters = [send(), send(), send()]
  t.ok(await until(() => proxy.app.status()[0]!.shards[0]!.queued === 1), 'one waits where /status shows it')
  const answers = await Promise.all(waiters)
  t.equal((await holder).status, 200)
  t.same(answers.map((x) => x.code).sort(), ['LB_ERR_QUEUE_FULL', 'LB_ERR_QUEUE_FULL', 'LB_ERR_QUEUE_TIMEOUT'])
  t.ok(answers.every((x) => x.status === 503 && x.ms < 1200), 'none waited for the slow answer')
  t.equal(a.seen.get, 1, 'nothing reached the server past its one connection')

  // A waiter whose slot frees within timeouts.queue is served.
  a.delay = 100
  const both = await Promise.all([send(), send()])
  t.same(both.map((x) => x.status), [200, 200], 'the second waited for the first and went out on its connection')
  t.equal(a.seen.maxActive, 1, 'never more in flight than connections')
})

t.test('a keep-alive connection the server closes as a GET goes out: the GET goes again, to the same server, free of the budget', async (t) => {
  // Each connection's first request is answered; its second finds the server closing it (its keep-alive timer firing).
  let connections = 0
  const seen: string[] = []
  const server = net.createServer((socket) => {
    connections++
    let n = 0
    socket.on('error', () => {})
    socket.on('data', (d: Buffer) => {
      seen.push(d.toString('latin1').split(' ', 1)[0]!)
      if (++n === 1) socket.write('HTTP/1.1 200 OK\r\nkeep-alive: timeout=60\r\ncontent-length: 2\r\n\r\nok')
      else socket.destroy()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  const port = (server.address() as AddressInfo).port
  // No other replica and no budget to spare: only the free reissue can answer.
  const proxy = await startProxy(t, `
listeners: [{ name: web, bind: "127.0.0.1:0" }]
routes: [{ match: { pathPrefix: / }, backend: app }]
backends:
  app:
    retries: { attempts: 1, budgetPercent: 0%, minRetryConcurrency: 0 }
    servers: [{ name: only, url: "http://127.0.0.1:${port}" }]
`)
  const get = async () => {
    const r = await request(`${proxy.url('web')}/`)
    return { status: r.statusCode, code: r.headers['x-switchyard-error'], body: await r.body.text() }
  }
  t.same(await get(), { status: 200, code: undefined, body: 'ok' })
  t.same(await get(), { status: 200, code: undefined, body: 'ok' }, 'the GET the server dropped went again on a new connection')
  t.equal(connections, 2)
  // The budget starts with RETRY_BUCKET_CAP / 2 retries saved and earns none here: more reissues than that all go.
  const more: number[] = []
  for (let i = 0; i < RETRY_BUCKET_CAP; i++) more.push((await get()).status)
  t.same(more, Array(RETRY_BUCKET_CAP).fill(200), 'none charged to the retry budget')
  t.equal(proxy.app.status()[0]!.retries, 1 + RETRY_BUCKET_CAP)
  const post = await request(`${proxy.url('web')}/`, { method: 'POST', body: 'x' })
  t.equal(post.statusCode, 502, 'a POST is not sent twice')
  t.equal(post.headers['x-switchyard-error'], 'LB_ERR_UPSTREAM_RESET')
  await post.body.text()
  t.same(seen, [...Array(3 + 2 * RETRY_BUCKET_CAP).fill('GET'), 'POST'])
})

t.test('ipHash through the proxy: the trusted X-Forwarded-For client keeps its server', async (t) => {
  const a = await startOrigin(t, 'a')
  const b = await startOrigin(t, 'b')
  const c = await startOrigin(t, 'c')
  const proxy = await startProxy(t, yaml([a, b, c], 'balance: { algorithm: ipHash }').replace('listeners:', 'trustedProxies: [127.0.0.1/32]\nlisteners:'))
  const seen = new Map<string, string>()
  for (let i = 0; i < 30; i++) {
    const client = `198.51.100.${i}`
    for (let k = 0; k < 3; k++) {
      const r = await request(`${proxy.url('web')}/`, { headers: { 'x-forwarded-for': client } })
      const name = await r.body.text()
      if (seen.has(client)) t.equal(name, seen.get(client), `${client} stays on ${seen.get(client)}`)
      seen.set(client, name)
    }
  }
  t.same([...new Set(seen.values())].sort(), ['a', 'b', 'c'], '30 clients spread over all three')
  // Without trust, every request comes from the socket peer 127.0.0.1: one server.
  const untrusted = await startProxy(t, yaml([a, b, c], 'balance: { algorithm: ipHash }'))
  const names = new Set<string>()
  for (let i = 0; i < 10; i++) names.add(await (await request(`${untrusted.url('web')}/`, { headers: { 'x-forwarded-for': `203.0.113.${i}` } })).body.text())
  t.equal(names.size, 1, 'a spoofed X-Forwarded-For does not move an untrusted client')
})

t.test('leastConn through the proxy: a slow server gets fewer of the concurrent requests', async (t) => {
  const a = await startOrigin(t, 'a')
  const b = await startOrigin(t, 'b')
  a.delay = 200
  const proxy = await startProxy(t, yaml([a, b], 'balance: { algorithm: leastConn }'))
  const client = new Pool(proxy.url('web'), { connections: 8 })
  t.teardown(() => client.close())
  let sent = 0
  await Promise.all(Array.from({ length: 8 }, async () => {
    while (sent < 200) {
      sent++
      const r = await client.request({ path: '/', method: 'GET' })
      await r.body.text()
    }
  }))
  t.ok(b.seen.get > a.seen.get * 3, `fast b took ${b.seen.get}, slow a ${a.seen.get}`)
})
