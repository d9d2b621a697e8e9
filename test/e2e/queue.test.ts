// The shard queue at maxConn, through a real proxy and origins that hold each
// answer until the test lets it go: a freed slot goes to the oldest waiter
// that can use it, past one that cannot; nothing waits for a server that
// will not take it (maintenance).
import t, { type Test } from 'tap'
import { Pool } from 'undici'
import { startProxy, type RunningProxy } from '../helpers/proxy.js'
import { startServer } from '../helpers/origin.js'
import { changeServer } from '../../src/admin/servers.js'

/** An origin that answers its name to each request when `release(path)` says so; `seen` lists `METHOD path` in order. */
async function heldOrigin (t: Test, name: string): Promise<{ port: number, seen: string[], release: (path: string) => void }> {
  const seen: string[] = []
  const held = new Map<string, () => void>()
  const waiting = new Set<string>()
  const server = await startServer(t, (req, res) => {
    req.resume()
    const path = req.url ?? ''
    seen.push(`${req.method ?? ''} ${path}`)
    const answer = (): void => { res.writeHead(200, { 'content-type': 'text/plain' }).end(name) }
    if (waiting.delete(path)) answer()
    else held.set(path, answer)
  })
  const release = (path: string): void => {
    const answer = held.get(path)
    if (answer === undefined) waiting.add(path) // answered as soon as it comes
    else {
      held.delete(path)
      answer()
    }
  }
  // Teardown: nothing stays held.
  t.teardown(() => { for (const answer of held.values()) answer() })
  return { port: server.port, seen, release }
}

async function until (cond: () => boolean, ms = 10_000): Promise<boolean> {
  const end = Date.now() + ms
  while (Date.now() < end) {
    if (cond()) return true
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  return cond()
}

const queued = (proxy: RunningProxy): number => proxy.app.status()[0]?.shards[0]?.queued ?? -1

t.test('a waiter only the primary may take does not hold up the reads queued behind it when a replica frees', async (t) => {
  const primary = await heldOrigin(t, 'primary')
  const replica = await heldOrigin(t, 'replica')
  const proxy = await startProxy(t, `
listeners: [{ name: web, bind: "127.0.0.1:0" }]
routes: [{ name: all, backend: app }]
backends:
  app:
    retries: { attempts: 0 }
    maxConn: 1
    maxQueue: 10
    timeouts: { queue: 3s }
    servers:
      - { name: primary, url: "http://127.0.0.1:${primary.port}", role: primary }
      - { name: replica, url: "http://127.0.0.1:${replica.port}" }
`)
  const client = new Pool(proxy.url('web'), { connections: 8 })
  t.teardown(() => client.close())
  const ask = async (method: string, path: string): Promise<string> => {
    const r = await client.request({ method, path, ...(method === 'POST' ? { body: 'x' } : {}) })
    return `${r.statusCode} ${await r.body.text()}`
  }
  const write1 = ask('POST', '/write1')
  t.ok(await until(() => primary.seen.length === 1), 'the primary is busy with a write')
  const read1 = ask('GET', '/read1')
  t.ok(await until(() => replica.seen.length === 1), 'the replica is busy with a read')
  const write2 = ask('POST', '/write2') // only the primary may take it: it waits
  t.ok(await until(() => queued(proxy) === 1), 'the second write waits')
  const reads = [ask('GET', '/read2'), ask('GET', '/read3')]
  t.ok(await until(() => queued(proxy) === 3), 'two reads wait behind it')
  replica.release('/read1')
  replica.release('/read2')
  // Before: the write at the head could not use the replica, and the reads behind it timed out (503) with the replica idle.
  t.equal(await read1, '200 replica')
  t.equal(await reads[0], '200 replica', 'the first read took the freed replica')
  replica.release('/read3')
  t.equal(await reads[1], '200 replica', 'then the next, in order')
  t.equal(queued(proxy), 1, 'the write still waits, in its place')
  primary.release('/write1')
  primary.release('/write2')
  t.equal(await write1, '200 primary')
  t.equal(await write2, '200 primary', 'and gets the primary when it frees')
  t.same(replica.seen, ['GET /read1', 'GET /read2', 'GET /read3'], 'the reads reached the replica oldest first')
  t.same(primary.seen, ['POST /write1', 'POST /write2'])
})

t.test('no request waits for a server the admin API put in maintenance: 503 at once, while its last request is still in flight', async (t) => {
  const only = await heldOrigin(t, 'only')
  const proxy = await startProxy(t, `
listeners: [{ name: web, bind: "127.0.0.1:0" }]
routes: [{ name: all, backend: app }]
backends:
  app:
    retries: { attempts: 0 }
    maxConn: 1
    timeouts: { queue: 5s }
    servers:
      - { name: only, url: "http://127.0.0.1:${only.port}" }
`)
  const client = new Pool(proxy.url('web'), { connections: 4 })
  t.teardown(() => client.close())
  const slow = client.request({ method: 'GET', path: '/slow' })
  t.ok(await until(() => only.seen.length === 1), 'its one slot is taken')
  t.match(changeServer(proxy.app.state, 'app', 'only', { state: 'maint' }), { server: 'only', state: 'maint' })
  // Before: it waited in the queue for that slot, which maintenance never gives to anyone.
  const r = await client.request({ method: 'GET', path: '/next' })
  await r.body.dump()
  t.same({ status: r.statusCode, code: r.headers['x-switchyard-error'] }, { status: 503, code: 'LB_ERR_NO_HEALTHY_SERVER' })
  t.equal(queued(proxy), 0, 'nothing waits')
  only.release('/slow')
  const done = await slow
  t.equal(done.statusCode, 200, 'the request in flight ends normally')
  await done.body.dump()
  t.same(only.seen, ['GET /slow'])
})
