// Outlier ejections with `workers: 2` (real processes): each worker has its
// own detector and tells the others what it ejects. The shard's
// maxEjectionPercent counts every server out, whichever worker ejected it;
// an ejection ends on time in every worker even when the worker that decided
// it dies first, and a worker started meanwhile boots with it in force.
import http from 'node:http'
import { writeFileSync } from 'node:fs'
import path from 'node:path'
import t, { type Test } from 'tap'
import { spawnCli, type Running } from '../helpers/cli.js'
import { closedPort, startServer, type Server } from '../helpers/origin.js'
import { isAlive } from '../helpers/reap.js'

interface ServerEntry { name: string, state: string, ejected: boolean, requests: number }
interface Status {
  workers: Array<{ id: number, pid: number, state: string }>
  backends: Array<{ name: string, shards: Array<{ servers: ServerEntry[] }> }>
}

interface Fleet {
  readonly proc: Running
  readonly port: number
  readonly admin: number
  /** Every worker pid seen, for the check that none is left. */
  readonly pids: Set<number>
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** Two origins counting what they serve: `/boom…` answers 500 while `boom()` says so, anything else 200. */
async function origins (t: Test, boom: (i: number) => boolean): Promise<{ servers: Server[], hits: number[] }> {
  const hits = [0, 0]
  const servers = await Promise.all([0, 1].map(async (i) => await startServer(t, (req, res) => {
    req.resume()
    hits[i]!++
    res.writeHead(req.url?.startsWith('/boom') === true && boom(i) ? 500 : 200).end(`s${i + 1}`)
  })))
  return { servers, hits }
}

async function startFleet (t: Test, servers: Server[], outlier: string): Promise<Fleet> {
  const port = await closedPort()
  const admin = await closedPort()
  const file = path.join(t.testdir({}), 'switchyard.yaml')
  writeFileSync(file, `
workers: 2
listeners: [{ name: web, bind: "127.0.0.1:${port}" }]
admin: { bind: "127.0.0.1:${admin}" }
accessLog: false
routes:
  - { name: all, match: { pathPrefix: / }, backend: app }
backends:
  app:
    retries: { attempts: 0 }
    outlierDetection: ${outlier}
    servers:
      - { name: s1, url: "http://127.0.0.1:${servers[0]!.port}" }
      - { name: s2, url: "http://127.0.0.1:${servers[1]!.port}" }
`)
  const proc = spawnCli(t, ['start', '-c', file])
  const pids = new Set<number>()
  t.teardown(async () => {
    if (proc.child.exitCode === null && proc.child.signalCode === null) proc.child.kill('SIGKILL')
    await proc.exited
    const end = Date.now() + 10_000
    while ([...pids].some(isAlive) && Date.now() < end) await sleep(50)
    for (const pid of pids) if (isAlive(pid)) process.kill(pid, 'SIGKILL')
  })
  await proc.waitForLog((l) => l.msg === 'cluster: every worker is ready')
  const f = { proc, port, admin, pids }
  await status(f) // note the workers' pids for teardown
  return f
}

/** One request on its own connection (the cluster spreads connections over the workers, not requests). */
function get (port: number, target: string): Promise<{ status: number, body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: target, agent: false, headers: { connection: 'close' } }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => { body += c })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
    })
    req.on('error', reject)
    req.end()
  })
}

async function status (f: Fleet): Promise<Status> {
  const s = JSON.parse((await get(f.admin, '/status')).body) as Status
  for (const w of s.workers) if (w.pid > 0) f.pids.add(w.pid)
  return s
}

function states (s: Status): string[] {
  return s.backends.find((b) => b.name === 'app')!.shards[0]!.servers.map((x) => `${x.name}:${x.state}`)
}

/** How many of `n` sequential requests got each status. */
async function codes (port: number, target: string, n: number): Promise<Record<string, number>> {
  const out: Record<string, number> = {}
  for (let i = 0; i < n; i++) {
    const r = await get(port, `${target}${i}`)
    out[r.status] = (out[r.status] ?? 0) + 1
  }
  return out
}

t.test('maxEjectionPercent holds across workers: 5xx seen by both never eject the whole shard', async (t) => {
  const { servers, hits } = await origins(t, () => true)
  const f = await startFleet(t, servers, '{ consecutive5xx: 3, baseEjectionTime: 60s, maxEjectionPercent: 50 }')
  // Enough 500s for each worker to see a streak on each server (connections alternate between the workers).
  await codes(f.port, '/boom?', 60)
  const out = states(await status(f)).filter((x) => x.endsWith(':ejected'))
  t.equal(out.length, 1, `one of two servers ejected, not both (${out.join(' ')})`)
  const before = hits[0]! + hits[1]!
  t.same(await codes(f.port, '/ok?', 20), { 200: 20 }, 'the other serves every later request, in both workers')
  t.equal(hits[0]! + hits[1]! - before, 20, 'all 20 reached an origin')
})

/** s1 answers 500 to `/boom…` until some worker ejects it (one request per connection); that worker's pid. */
async function ejectS1 (t: Test, f: Fleet, failing: { s1: boolean }): Promise<number> {
  let ejected = false
  for (let i = 0; i < 40 && !ejected; i++) {
    await get(f.port, `/boom?${i}`)
    ejected = states(await status(f)).includes('s1:ejected')
  }
  failing.s1 = false
  t.ok(ejected, 's1 ejected')
  // /status can say so before the worker's log line has come through its pipe.
  const line = await f.proc.waitForLog((l) => l.msg === 'outlier detection: server ejected' && l.server === 's1')
  return line.pid as number
}

/** SIGKILLs worker `pid` and waits for its replacement to be ready. */
async function crash (t: Test, f: Fleet, pid: number): Promise<void> {
  const before = await status(f)
  const slot = before.workers.find((w) => w.pid === pid)
  if (slot === undefined) throw new Error(`no worker ${pid}`)
  process.kill(pid, 'SIGKILL')
  let s = before
  const replaced = (): boolean => s.workers.some((w) => w.id === slot.id && w.pid !== pid && w.state === 'ready')
  for (let i = 0; i < 200 && !replaced(); i++) {
    await sleep(50)
    s = await status(f)
  }
  t.ok(replaced(), `worker ${slot.id} replaced`)
}

t.test('an ejection ends on time in every worker, though the worker that decided it was killed before it ended', async (t) => {
  const failing = { s1: true }
  const { servers, hits } = await origins(t, (i) => i === 0 && failing.s1)
  const f = await startFleet(t, servers, '{ consecutive5xx: 3, baseEjectionTime: 1s, maxEjectionTime: 1s }')
  const ejector = await ejectS1(t, f, failing)
  await crash(t, f, ejector)
  // Generously past the 1 s ejection.
  await sleep(2500)
  hits[0] = hits[1] = 0
  t.same(await codes(f.port, '/ok?', 40), { 200: 40 }, 'all answered')
  t.same(states(await status(f)).filter((x) => x.startsWith('s1:')), ['s1:no check'], 's1 is back in both workers')
  t.ok(hits[0]! >= 10, `s1 serves its share again in both workers (s1/s2: ${hits[0]}/${hits[1]})`)
})

t.test('a worker restarted while another worker\'s ejection is in force boots with it', async (t) => {
  const failing = { s1: true }
  const { servers, hits } = await origins(t, (i) => i === 0 && failing.s1)
  const f = await startFleet(t, servers, '{ consecutive5xx: 3, baseEjectionTime: 60s }')
  const ejector = await ejectS1(t, f, failing)
  const other = (await status(f)).workers.find((w) => w.pid !== ejector)!.pid
  await crash(t, f, other)
  hits[0] = hits[1] = 0
  t.same(await codes(f.port, '/ok?', 30), { 200: 30 }, 'all answered')
  t.equal(hits[0], 0, `no worker, the new one included, sent anything to s1 (s1/s2: ${hits[0]}/${hits[1]})`)
  t.same(states(await status(f)).filter((x) => x.startsWith('s1:')), ['s1:ejected'])
})
