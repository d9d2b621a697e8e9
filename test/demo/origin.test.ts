import t from 'tap'
import { Agent, request as httpRequest } from 'node:http'
import type { IncomingHttpHeaders } from 'node:http'
import { createServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import { DEMO_ORIGINS, startDemoOrigin, startDemoOrigins } from '../../src/demo/origin.js'
import type { DemoEcho } from '../../src/demo/origin.js'

interface Reply { status: number, headers: IncomingHttpHeaders, body: string }

function send (port: number, opts: { method?: string, path?: string, headers?: Record<string, string>, body?: Buffer, agent?: Agent } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({
      host: '127.0.0.1',
      port,
      method: opts.method ?? 'GET',
      path: opts.path ?? '/',
      headers: opts.headers ?? {},
      agent: opts.agent ?? false
    }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }) })
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(opts.body)
  })
}

t.test('GET /healthz answers 200 ok', async (t) => {
  const origin = await startDemoOrigin({ port: 0, shard: 'a', replica: 'a1' })
  t.teardown(() => origin.close())
  t.ok(origin.port > 0)

  const r = await send(origin.port, { path: '/healthz' })
  t.equal(r.status, 200)
  t.equal(r.body, 'ok')

  const q = await send(origin.port, { path: '/healthz?probe=1' })
  t.equal(q.status, 200)
  t.equal(q.body, 'ok')
})

t.test('other requests are echoed as JSON with x-served-by', async (t) => {
  const origin = await startDemoOrigin({ port: 0, shard: 'b', replica: 'b2' })
  t.teardown(() => origin.close())

  const r = await send(origin.port, { path: '/users/42?x=1', headers: { 'x-user-id': '42', 'x-forwarded-for': '10.0.0.9' } })
  t.equal(r.status, 200)
  t.equal(r.headers['content-type'], 'application/json')
  t.equal(r.headers['x-served-by'], 'b/b2')
  t.ok(r.body.endsWith('}\n'), 'ends with a newline')
  t.ok(r.body.includes('\n  "shard"'), 'indented for a terminal')
  t.equal(Number(r.headers['content-length']), Buffer.byteLength(r.body))

  const echo = JSON.parse(r.body) as DemoEcho
  t.equal(echo.shard, 'b')
  t.equal(echo.replica, 'b2')
  t.equal(echo.method, 'GET')
  t.equal(echo.url, '/users/42?x=1')
  t.equal(echo.httpVersion, '1.1')
  t.equal(echo.headers['x-user-id'], '42')
  t.equal(echo.headers['x-forwarded-for'], '10.0.0.9')
  t.equal(echo.headers.host, `127.0.0.1:${origin.port}`)
  t.equal(echo.bodyBytes, 0)
})

t.test('a request body is read, discarded and counted', async (t) => {
  const origin = await startDemoOrigin({ port: 0, shard: 'a', replica: 'a2' })
  t.teardown(() => origin.close())

  const body = Buffer.alloc(100_000, 0x61)
  const r = await send(origin.port, { method: 'POST', path: '/upload', body, headers: { 'content-type': 'application/octet-stream' } })
  t.equal(r.status, 200)
  const echo = JSON.parse(r.body) as DemoEcho
  t.equal(echo.method, 'POST')
  t.equal(echo.bodyBytes, body.length)
  t.equal(echo.headers['content-length'], String(body.length))
  t.notOk(r.body.includes('aaaa'), 'the body itself is not echoed')
})

t.test('close() resolves while a keep-alive connection is idle', async (t) => {
  const origin = await startDemoOrigin({ port: 0, shard: 'a', replica: 'a1' })
  const agent = new Agent({ keepAlive: true, maxSockets: 1 })
  t.teardown(async () => {
    agent.destroy()
    await origin.close()
  })

  const first = await send(origin.port, { agent })
  const second = await send(origin.port, { agent })
  t.equal(first.status, 200)
  t.equal(second.status, 200)
  t.equal(Object.values(agent.freeSockets).flat().length, 1, 'one idle pooled socket left open')

  await origin.close()
  await origin.close() // idempotent
  await t.rejects(send(origin.port), 'no longer listening')
})

t.test('DEMO_ORIGINS is the fixed demo topology', async (t) => {
  t.same(DEMO_ORIGINS.map((o) => [o.host, o.port, o.shard, o.replica]), [
    ['127.0.0.1', 9101, 'a', 'a1'],
    ['127.0.0.1', 9102, 'a', 'a2'],
    ['127.0.0.1', 9103, 'b', 'b1'],
    ['127.0.0.1', 9104, 'b', 'b2']
  ])
  t.ok(Object.isFrozen(DEMO_ORIGINS))
})

t.test('startDemoOrigins starts every origin, and closes them all', async (t) => {
  // Ephemeral ports here: the real DEMO_ORIGINS ports may be in use on a dev machine.
  const group = await startDemoOrigins([
    { port: 0, shard: 'a', replica: 'a1' },
    { port: 0, shard: 'b', replica: 'b1' }
  ])
  t.teardown(() => group.close())
  t.equal(group.ports.length, 2)

  const served = await Promise.all(group.ports.map(async (port) => (await send(port, { path: '/' })).headers['x-served-by']))
  t.same(served, ['a/a1', 'b/b1'])

  await group.close()
  for (const port of group.ports) await t.rejects(send(port), `port ${port} closed`)
})

t.test('startDemoOrigins rolls back when one origin cannot listen', async (t) => {
  const blocker = createServer()
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => blocker.close(() => { resolve() })))
  const taken = (blocker.address() as AddressInfo).port

  // Find a free port for the first origin, then show it was released after the failure.
  const probe = await startDemoOrigin({ port: 0, shard: 'x', replica: 'x0' })
  const free = probe.port
  await probe.close()

  await t.rejects(startDemoOrigins([
    { port: free, shard: 'a', replica: 'a1' },
    { port: taken, shard: 'a', replica: 'a2' }
  ]), { code: 'EADDRINUSE' })

  const again = await startDemoOrigin({ port: free, shard: 'a', replica: 'a1' })
  t.teardown(() => again.close())
  t.equal(again.port, free, 'the first origin was closed by the rollback')
})

t.test('POST /_demo/stop takes the replica away and brings it back', async (t) => {
  const origin = await startDemoOrigin({ port: 0, shard: 'a', replica: 'a1' })
  t.teardown(() => origin.close())
  const stop = await fetch(`http://127.0.0.1:${origin.port}/_demo/stop?seconds=1`, { method: 'POST' })
  t.equal(stop.status, 202)
  t.match(await stop.text(), /a\/a1 stops for 1s/)
  // While stopped, connections are refused; afterwards it answers again (bounded wait).
  let refused = false
  let back = false
  for (let i = 0; i < 100 && !back; i++) {
    try {
      const r = await fetch(`http://127.0.0.1:${origin.port}/healthz`)
      if (r.status === 200 && refused) back = true
      await r.arrayBuffer()
    } catch {
      refused = true
    }
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  t.ok(refused, 'refused while stopped')
  t.ok(back, 'answers again after the pause')
})
