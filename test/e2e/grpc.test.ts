// gRPC end to end: a real @grpc/grpc-js client → Switchyard's TLS listener
// (h2) → a real @grpc/grpc-js server behind `protocol: h2c` and `protocol: h2`.
// Unary and server-streaming calls, error statuses and trailers intact,
// deadlines propagated, metadata both ways. Everything started here is
// stopped on teardown, even when a test fails.
import * as grpc from '@grpc/grpc-js'
import t, { type Test } from 'tap'
import { testPki } from '../helpers/pki.js'
import { testCertificate } from '../helpers/certs.js'
import { echoService, grpcClient, startGrpcOrigin, type EchoRequest, type GrpcOrigin } from '../helpers/grpc-origin.js'
import { startProxy, type RunningProxy } from '../helpers/proxy.js'
import { writeFileSync } from 'node:fs'
import net from 'node:net'
import { join } from 'node:path'

interface EchoReply { message: string, index: number }

interface Unary {
  readonly err: grpc.ServiceError | null
  readonly reply: EchoReply | undefined
  readonly headers: grpc.Metadata | undefined
  readonly trailers: grpc.Metadata | undefined
}

/** One Unary call; resolves with its error or reply, the response headers and the trailers. */
function unary (client: grpc.Client, req: EchoRequest, md = new grpc.Metadata(), deadlineMs?: number): Promise<Unary> {
  return new Promise((resolve) => {
    let headers: grpc.Metadata | undefined
    let trailers: grpc.Metadata | undefined
    let result: { err: grpc.ServiceError | null, reply: EchoReply | undefined } | undefined
    const done = (): void => { if (result !== undefined && trailers !== undefined) resolve({ ...result, headers, trailers }) }
    const options = deadlineMs === undefined ? {} : { deadline: Date.now() + deadlineMs }
    const call = (client as unknown as Record<string, Function>).Unary!.call(client, req, md, options,
      (err: grpc.ServiceError | null, reply?: EchoReply) => { result = { err, reply }; done() }) as grpc.ClientUnaryCall
    call.on('metadata', (m: grpc.Metadata) => { headers = m })
    call.on('status', (s: grpc.StatusObject) => { trailers = s.metadata; done() })
  })
}

async function setup (t: Test, protocol: 'h2c' | 'h2'): Promise<{ origin: GrpcOrigin, proxy: RunningProxy, client: grpc.Client }> {
  const listenerCert = testCertificate(t)
  const pki = testPki()
  const origin = await startGrpcOrigin(t, protocol === 'h2' ? pki.server : undefined)
  let tls = ''
  if (protocol === 'h2') {
    const ca = join(listenerCert.dir, 'ca.pem')
    writeFileSync(ca, pki.ca.certPem)
    tls = `\n    tls: { ca: ${ca} }`
  }
  // A cache in front: gRPC calls (POSTs) must pass it untouched, never stored.
  const proxy = await startProxy(t, `listeners:
  - name: tls
    bind: 127.0.0.1:0
    tls: { cert: ${listenerCert.certPath}, key: ${listenerCert.keyPath} }
cache: { maxBytes: 1MiB }
routes:
  - { match: { pathPrefix: / }, backend: grpc }
backends:
  grpc:
    protocol: ${protocol}
    servers: [{ url: "${origin.url}" }]${tls}
`)
  const client = grpcClient(t, echoService(), proxy.port('tls'), listenerCert.certPem)
  return { origin, proxy, client }
}

for (const protocol of ['h2c', 'h2'] as const) {
  t.test(`gRPC through the TLS listener to a protocol: ${protocol} backend`, async (t) => {
    const { origin, proxy, client } = await setup(t, protocol)

    t.test('unary: reply, metadata both ways, trailers', async (t) => {
      const md = new grpc.Metadata()
      md.set('x-client', 'from-client')
      const r = await unary(client, { message: 'hi' }, md)
      t.equal(r.err, null)
      t.equal(r.reply?.message, 'echo: hi (x-client: from-client)', 'request metadata reached the server')
      t.same(r.headers?.get('x-origin-header'), ['from-origin'], 'response metadata reached the client')
      t.same(r.trailers?.get('x-origin-trailer'), ['done'], 'trailing metadata reached the client')
      const call = origin.calls.at(-1)!
      t.equal(call.metadata.via, '2 switchyard', 'the proxy says it is in the path')
    })

    t.test('an error status and its message arrive intact', async (t) => {
      const r = await unary(client, { message: 'no such thing here', fail_code: grpc.status.NOT_FOUND })
      t.equal(r.err?.code, grpc.status.NOT_FOUND)
      t.equal(r.err?.details, 'no such thing here')
    })

    t.test('a status only (Trailers-Only): an error before any reply', async (t) => {
      const r = await unary(client, { message: 'denied', fail_code: grpc.status.PERMISSION_DENIED, trailers_only: true })
      t.equal(r.err?.code, grpc.status.PERMISSION_DENIED)
      t.equal(r.err?.details, 'denied')
    })

    t.test('a deadline travels to the server; exceeding it is DEADLINE_EXCEEDED at the client', async (t) => {
      const r = await unary(client, { message: 'slow', delay_ms: 5000 }, new grpc.Metadata(), 300)
      t.equal(r.err?.code, grpc.status.DEADLINE_EXCEEDED)
      const call = origin.calls.at(-1)!
      t.ok(call.deadline, 'the server saw the deadline (grpc-timeout forwarded)')
    })

    t.test('server streaming: replies arrive as they are sent, not buffered to the end', async (t) => {
      const stream = (client as unknown as Record<string, Function>).Stream!.call(client, { message: 'tick', count: 5 }) as grpc.ClientReadableStream<EchoReply>
      const got: number[] = []
      const status = new Promise<grpc.StatusObject>((resolve) => stream.on('status', resolve))
      const ended = new Promise<void>((resolve, reject) => { stream.on('end', resolve); stream.on('error', reject) })
      stream.on('data', (m: EchoReply) => {
        got.push(m.index)
        // The server holds replies 1-4 until the client has reply 0: they can only end if 0 was streamed.
        if (m.index === 0) origin.release()
      })
      await ended
      t.same(got, [0, 1, 2, 3, 4])
      t.equal((await status).code, grpc.status.OK)
    })

    t.test('a cache in front stored none of it (gRPC calls are POSTs)', async (t) => {
      const stats = proxy.app.cacheStats()!
      t.equal(stats.entries, 0)
      t.equal(stats.bytes, 0)
    })
  })
}

/** Polls `check` every 20 ms until it holds, for up to `ms`. */
async function waitFor (what: string, check: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

t.test('a grpc health check takes a NOT_SERVING server out; calls then fail UNAVAILABLE', async (t) => {
  const listenerCert = testCertificate(t)
  const origin = await startGrpcOrigin(t)
  const proxy = await startProxy(t, `listeners:
  - name: tls
    bind: 127.0.0.1:0
    tls: { cert: ${listenerCert.certPath}, key: ${listenerCert.keyPath} }
routes:
  - { match: { pathPrefix: / }, backend: grpc }
backends:
  grpc:
    protocol: h2c
    # A timeout a loaded machine's check can meet: the test is about NOT_SERVING, not about slow answers.
    healthCheck: { type: grpc, interval: 500ms, timeout: 400ms, rise: 1, fall: 1 }
    servers: [{ url: "${origin.url}" }]
`)
  const client = grpcClient(t, echoService(), proxy.port('tls'), listenerCert.certPem)
  const state = (): string | undefined => proxy.app.status()[0]?.shards[0]?.servers[0]?.state
  await waitFor('the first check', () => origin.healthChecks > 0 && state() === 'up')
  t.equal((await unary(client, { message: 'up' })).err, null)

  origin.health.set('', 'NOT_SERVING')
  const lastCheck = () => proxy.app.status()[0]?.shards[0]?.servers[0]?.lastCheck
  await waitFor('the server to go down on NOT_SERVING', () => state() === 'down' && lastCheck()?.reason === 'NOT_SERVING')
  t.match(lastCheck(), { ok: false, reason: 'NOT_SERVING' })
  const r = await unary(client, { message: 'down' })
  t.equal(r.err?.code, grpc.status.UNAVAILABLE, 'no healthy server: 503, which gRPC clients read as UNAVAILABLE')

  origin.health.set('', 'SERVING')
  await waitFor('the server to come back', () => state() === 'up')
  t.equal((await unary(client, { message: 'back' })).err, null)
})

t.test('our own errors reach a gRPC client as gRPC statuses (Trailers-Only), not as HTTP error pages', async (t) => {
  const listenerCert = testCertificate(t)
  const origin = await startGrpcOrigin(t)
  // A port nothing listens on: a backend whose every connection is refused.
  const dead = await new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => { const p = (s.address() as net.AddressInfo).port; s.close(() => resolve(p)) })
  })
  const proxy = await startProxy(t, `listeners:
  - name: tls
    bind: 127.0.0.1:0
    tls: { cert: ${listenerCert.certPath}, key: ${listenerCert.keyPath} }
routes:
  - { match: { host: dead.test }, backend: dead }
  - { match: { host: limited.test }, backend: grpc, rateLimit: { average: 1, period: 1h, burst: 1 } }
  - { match: { host: only.test, pathPrefix: /nothing.Here/ }, backend: grpc }
backends:
  grpc: { protocol: h2c, servers: [{ url: "${origin.url}" }] }
  dead:
    protocol: h2c
    retries: { attempts: 0 }
    servers: [{ url: "http://127.0.0.1:${dead}" }]
`)
  const client = (authority: string): grpc.Client => {
    const Ctor = echoService()
    const c = new Ctor(`127.0.0.1:${proxy.port('tls')}`, grpc.credentials.createSsl(Buffer.from(listenerCert.certPem)), {
      'grpc.ssl_target_name_override': 'localhost', 'grpc.default_authority': authority
    })
    t.teardown(() => { c.close() })
    return c
  }
  const deadCall = await unary(client('dead.test'), { message: 'x' })
  t.equal(deadCall.err?.code, grpc.status.UNAVAILABLE, 'connection refused upstream: UNAVAILABLE')
  t.match(deadCall.err?.details, /^LB_ERR_UPSTREAM_CONNECT: /, 'grpc-message names our error')
  t.same(deadCall.trailers?.get('x-switchyard-error'), ['LB_ERR_UPSTREAM_CONNECT'])

  const noRoute = await unary(client('only.test'), { message: 'x' })
  t.equal(noRoute.err?.code, grpc.status.UNIMPLEMENTED, 'no route: UNIMPLEMENTED (gRPC\'s mapping of 404)')
  t.match(noRoute.err?.details, /^LB_ERR_NO_ROUTE: /)

  const limited = client('limited.test')
  t.equal((await unary(limited, { message: 'x' })).err, null, 'the first call passes the limit')
  const second = await unary(limited, { message: 'x' })
  t.equal(second.err?.code, grpc.status.RESOURCE_EXHAUSTED, 'rate limited: RESOURCE_EXHAUSTED')
  t.match(second.err?.details, /^LB_ERR_RATE_LIMITED: /)
})
