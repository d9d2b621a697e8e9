// `workers: 2` as an operator runs it: `switchyard start -c FILE` forks a
// primary and two workers (real processes). Both serve; /status lists them;
// /metrics adds their counters up exactly; a health verdict reaches both; a
// SIGKILLed worker is replaced; reloads under load fail nothing; an invalid
// reload is refused with its YAML errors; an admin purge reaches every
// worker's cache; SIGTERM drains every in-flight request and leaves no process.
import http from 'node:http'
import { writeFileSync } from 'node:fs'
import path from 'node:path'
import autocannon from 'autocannon'
import t, { type Test } from 'tap'
import { spawnCli, type Running } from '../helpers/cli.js'
import { closedPort, startServer, type Server } from '../helpers/origin.js'
import { isAlive } from '../helpers/reap.js'
import { Client } from 'undici'

interface Fleet {
  readonly proc: Running
  readonly port: number
  readonly admin: number
  readonly file: string
  readonly origins: Origins
  /** Every worker pid seen, for the check that none is left. */
  readonly pids: Set<number>
}

interface WorkerEntry { id: number, pid: number, state: string, requests: number, connections: number, restarts: number }
interface ServerEntry { name: string, healthy: boolean, ejected: boolean, requests: number, failures: number }
interface Status {
  workers: WorkerEntry[]
  backends: Array<{ name: string, shards: Array<{ servers: ServerEntry[] }> }>
  cache?: { entries: number }
}

interface Origins { readonly a: number, readonly b: number, readonly bad: number }

function config (port: number, admin: number, { a, b, bad }: Origins, extra = ''): string {
  return `
workers: 2
listeners: [{ name: web, bind: "127.0.0.1:${port}" }]
admin: { bind: "127.0.0.1:${admin}" }
accessLog: true
timeouts: { drain: 5s }
cache: { maxBytes: 1MiB, purgeFrom: [127.0.0.1/32] }
routes:
  - { name: flaky, match: { pathPrefix: /flaky/ }, backend: flaky }
  - { name: cached, match: { pathPrefix: /static/ }, backend: app, cache: {} }
  - { name: all, match: { pathPrefix: / }, backend: app }
backends:
  flaky:
    servers:
      - { name: ok, url: "http://127.0.0.1:${a}" }
      - { name: bad, url: "http://127.0.0.1:${bad}" }
    outlierDetection: { consecutive5xx: 3, baseEjectionTime: 60s }
  app:
    servers:
      - { name: a, url: "http://127.0.0.1:${a}" }
      - { name: b, url: "http://127.0.0.1:${b}" }
    healthCheck: { path: /health, interval: 500ms, timeout: 400ms, fall: 2, rise: 1 }
${extra}`
}

/** An origin answering its name (and 60 s of freshness on /static/), `delayMs` late. */
async function origin (t: Test, name: string, delayMs = 0): Promise<Server> {
  return await startServer(t, (req, res) => {
    req.resume()
    const headers = { 'content-type': 'text/plain', ...(req.url?.startsWith('/static/') === true ? { 'cache-control': 'max-age=60' } : {}) }
    setTimeout(() => res.writeHead(200, headers).end(name), delayMs)
  })
}

async function startFleet (t: Test, a: number, b: number): Promise<Fleet> {
  const bad = (await startServer(t, (req, res) => { req.resume(); res.writeHead(500).end('bad') })).port
  const origins = { a, b, bad }
  const port = await closedPort()
  const admin = await closedPort()
  const file = path.join(t.testdir({}), 'switchyard.yaml')
  writeFileSync(file, config(port, admin, origins))
  const proc = spawnCli(t, ['start', '-c', file])
  const pids = new Set<number>()
  // After the primary is gone (SIGKILLed here, or stopped by the test),
  // its workers must go too: they drain and exit when the IPC channel closes.
  t.teardown(async () => {
    if (proc.child.exitCode === null && proc.child.signalCode === null) proc.child.kill('SIGKILL')
    await proc.exited
    const end = Date.now() + 10_000
    while ([...pids].some(isAlive) && Date.now() < end) await sleep(50)
    for (const pid of pids) if (isAlive(pid)) process.kill(pid, 'SIGKILL')
  })
  await proc.waitForLog((l) => l.msg === 'cluster: every worker is ready')
  return { proc, port, admin, file, origins, pids }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** One request on its own connection (cluster spreads connections, not requests). */
function get (port: number, target: string, method = 'GET'): Promise<{ status: number, body: string, headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: target, method, agent: false, headers: { connection: 'close' } }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => { body += c })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }))
    })
    req.on('error', reject)
    req.end()
  })
}

async function status (f: Fleet): Promise<Status> {
  const r = await get(f.admin, '/status')
  const s = JSON.parse(r.body) as Status
  for (const w of s.workers) if (w.pid > 0) f.pids.add(w.pid)
  return s
}

async function adminPost (f: Fleet, target: string, body: unknown): Promise<{ status: number, json: unknown }> {
  const res = await fetch(`http://127.0.0.1:${f.admin}${target}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  return { status: res.status, json: await res.json() }
}

/** The sum of every `name{…}` sample in the exposition (or the one series `name{labels}`). */
async function metricSum (f: Fleet, name: string): Promise<number> {
  const text = (await get(f.admin, '/metrics')).body
  let sum = 0
  // `name` may carry its labels: then exactly that series.
  const prefixes = name.endsWith('}') ? [name + ' '] : [name + '{', name + ' ']
  for (const line of text.split('\n')) if (prefixes.some((p) => line.startsWith(p))) sum += Number(line.slice(line.lastIndexOf(' ') + 1))
  return sum
}

function server (s: Status, name: string, backend = 'app'): ServerEntry {
  const found = s.backends.find((x) => x.name === backend)?.shards[0]?.servers.find((x) => x.name === name)
  if (found === undefined) throw new Error(`no server ${name} in /status`)
  return found
}

/** autocannon through the proxy, bounded by `amount` requests; outcomes by status or error code. */
function load (port: number, connections: number, amount: number): { outcomes: Map<string, number>, done: Promise<autocannon.Result>, stop: () => void } {
  const outcomes = new Map<string, number>()
  const count = (k: string): void => { outcomes.set(k, (outcomes.get(k) ?? 0) + 1) }
  let inst: autocannon.Instance | undefined
  const done = new Promise<autocannon.Result>((resolve, reject) => {
    inst = autocannon({ url: `http://127.0.0.1:${port}/`, connections, amount, timeout: 10 }, (err, res) => err ? reject(err) : resolve(res))
    inst.on('response', (_c, code) => count(String(code)))
    inst.on('reqError', (err) => count((err as NodeJS.ErrnoException).code ?? err.message))
  })
  return { outcomes, done, stop: () => { try { inst?.stop() } catch { /* already stopped */ } } }
}

const total = (m: Map<string, number>): number => [...m.values()].reduce((x, y) => x + y, 0)

t.test('workers: 2', async (t) => {
  const a = await origin(t, 'a')
  const b = await origin(t, 'b')
  const f = await startFleet(t, a.port, b.port)

  await t.test('both workers serve, and /status lists them', async (t) => {
    const answers = await Promise.all(Array.from({ length: 40 }, async () => await get(f.port, '/hello')))
    t.ok(answers.every((r) => r.status === 200), 'every request answered 200')
    const s = await status(f)
    t.equal(s.workers.length, 2, 'two workers')
    t.same(s.workers.map((w) => w.state), ['ready', 'ready'], 'both ready')
    t.not(s.workers[0]!.pid, s.workers[1]!.pid, 'two processes')
    t.ok(s.workers.every((w) => w.requests > 0), `both served requests (${s.workers.map((w) => w.requests).join(' + ')})`)
    t.equal(s.workers.reduce((n, w) => n + w.requests, 0), 40, 'their requests add up to the 40 sent')
  })

  await t.test('/metrics: switchyard_requests_total summed over the workers equals what the client had answered', async (t) => {
    const before = await metricSum(f, 'switchyard_requests_total')
    const run = load(f.port, 8, 2000)
    const result = await run.done
    const answered = total(run.outcomes)
    t.equal(answered, 2000, 'autocannon had its 2000 requests answered')
    t.same([...run.outcomes.keys()], ['200'], 'all 200')
    t.equal(await metricSum(f, 'switchyard_requests_total') - before, answered, `the counters grew by exactly ${answered} (${result.requests.total} sent)`)
    t.equal(await metricSum(f, 'switchyard_workers'), 2, 'switchyard_workers 2')
  })

  await t.test('a health check verdict reaches both workers', async (t) => {
    await b.stop()
    let s = await status(f)
    for (let i = 0; i < 200 && server(s, 'b').healthy; i++) {
      await sleep(50)
      s = await status(f)
    }
    t.notOk(server(s, 'b').healthy, 'the primary\'s check marked b down')
    const seen = { requests: server(s, 'b').requests, failures: server(s, 'b').failures }
    const answers = await Promise.all(Array.from({ length: 30 }, async () => await get(f.port, '/after-down')))
    t.ok(answers.every((r) => r.status === 200 && r.body === 'a'), 'every request went to a')
    const after = server(await status(f), 'b')
    t.same({ requests: after.requests, failures: after.failures }, seen, 'no worker sent anything to b (not even an attempt retried elsewhere)')
    t.equal(await metricSum(f, 'switchyard_health_transitions_total{backend="app",shard="default",server="b",to="down"}'), 1,
      'b going down is counted once, by the primary, not once per worker')
  })

  await t.test('an admin purge reaches the cache of every worker', async (t) => {
    const answers = await Promise.all(Array.from({ length: 20 }, async () => await get(f.port, '/static/logo.txt')))
    t.ok(answers.every((r) => r.status === 200), 'answered')
    const s = await status(f)
    t.equal(s.cache?.entries, 2, 'each worker stored the response in its own cache (one entry each)')
    const purge = await adminPost(f, '/cache/purge', { url: `http://127.0.0.1:${f.port}/static/logo.txt` })
    t.same(purge, { status: 200, json: { purged: 2 } }, 'the purge removed it from both')
    t.equal((await status(f)).cache?.entries, 0, 'nothing is left in any worker')
  })

  await t.test('a PURGE request, and the invalidation after a POST, reach the cache of every worker', async (t) => {
    const fill = async (target: string): Promise<void> => {
      const answers = await Promise.all(Array.from({ length: 20 }, async () => await get(f.port, target)))
      t.ok(answers.every((r) => r.status === 200), `${target} answered`)
    }
    await fill('/static/purged.txt')
    t.equal((await status(f)).cache?.entries, 2, 'stored by both workers')
    const purge = await get(f.port, '/static/purged.txt', 'PURGE')
    t.equal(purge.status, 200, 'PURGE answered 200')
    t.equal(purge.body, 'purged 2 entries\n', 'it counts the entry of both workers: the answer waited for the other one')
    t.equal((await status(f)).cache?.entries, 0, 'no worker still holds it')

    await fill('/static/posted.txt')
    t.equal((await status(f)).cache?.entries, 2, 'stored by both workers')
    t.equal((await get(f.port, '/static/posted.txt', 'POST')).status, 200, 'a POST to it succeeds')
    let entries = (await status(f)).cache?.entries
    for (let i = 0; i < 100 && entries !== 0; i++) {
      await sleep(20)
      entries = (await status(f)).cache?.entries
    }
    t.equal(entries, 0, 'the invalidation reached the other worker too (RFC 9111 §4.4)')
  })

  await t.test('an outlier ejection decided by one worker is applied by both', async (t) => {
    // One keep-alive connection: every 5xx is seen by the one worker it landed on.
    const client = new Client(`http://127.0.0.1:${f.port}`, { pipelining: 1 })
    t.teardown(() => client.close())
    let s = await status(f)
    for (let i = 0; i < 20 && !server(s, 'bad', 'flaky').ejected; i++) {
      await (await client.request({ path: '/flaky/x', method: 'GET' })).body.dump()
      s = await status(f)
    }
    t.ok(server(s, 'bad', 'flaky').ejected, 'one worker ejected the server that answers 500')
    const seen = server(s, 'bad', 'flaky').requests
    const answers = await Promise.all(Array.from({ length: 30 }, async () => await get(f.port, '/flaky/y')))
    t.ok(answers.every((r) => r.status === 200), 'requests on new connections (both workers) all answered 200')
    t.equal(server(await status(f), 'bad', 'flaky').requests, seen, 'neither worker sent anything more to it')
  })

  await t.test('a SIGHUP or SIGUSR2 that reaches a worker (a terminal hangup reaches the whole group) leaves it serving', async (t) => {
    const before = (await status(f)).workers[1]!
    const run = load(f.port, 4, 400)
    process.kill(before.pid, 'SIGHUP')
    process.kill(before.pid, 'SIGUSR2') // HAProxy's master reloads on it: the primary does, never a worker's default exit
    await run.done
    t.same(Object.fromEntries(run.outcomes), { 200: 400 }, 'every request answered 200')
    const after = (await status(f)).workers[1]!
    t.same([after.pid, after.state, after.restarts], [before.pid, 'ready', 0], 'the same process, ready, never restarted')
  })

  await t.test('SIGKILL of a worker: only its in-flight requests fail, a new one is ready, then no errors', async (t) => {
    const s = await status(f)
    const victim = s.workers[0]!
    const run = load(f.port, 8, 4000)
    await sleep(200)
    process.kill(victim.pid, 'SIGKILL')
    const killedAt = Date.now()
    await run.done
    const failed = total(run.outcomes) - (run.outcomes.get('200') ?? 0)
    t.ok(failed <= 8, `at most the 8 connections' requests in flight failed (${failed}: ${JSON.stringify(Object.fromEntries(run.outcomes))})`)
    let next = await status(f)
    const replaced = (x: Status): WorkerEntry | undefined => x.workers.find((w) => w.id === victim.id && w.pid !== victim.pid && w.state === 'ready')
    for (let i = 0; i < 200 && replaced(next) === undefined; i++) {
      await sleep(25)
      next = await status(f)
    }
    const fresh = replaced(next)
    t.ok(fresh !== undefined, 'worker slot replaced by a new process, ready')
    t.comment(`replacement ready about ${Date.now() - killedAt} ms after the kill`)
    t.equal(fresh?.restarts, 1, 'its restart is counted')
    t.equal(await metricSum(f, 'switchyard_worker_restarts_total'), 1, 'switchyard_worker_restarts_total 1')
    const after = load(f.port, 8, 2000)
    await after.done
    t.same(Object.fromEntries(after.outcomes), { 200: 2000 }, 'afterwards every request is answered 200')
  })

  await t.test('ten reloads under load fail nothing; an invalid file is refused with its YAML errors', async (t) => {
    const run = load(f.port, 8, 1_000_000)
    t.teardown(() => run.stop())
    for (let i = 0; i < 10; i++) {
      writeFileSync(f.file, config(f.port, f.admin, f.origins, `    timeouts: { headers: ${10 + i}s }\n`))
      const r = await adminPost(f, '/reload', {})
      t.same(r, { status: 200, json: { ok: true, needsRestart: [] } }, `reload ${i + 1} applied`)
    }
    writeFileSync(f.file, config(f.port, f.admin, f.origins, '    weight: heavy\n'))
    const bad = await adminPost(f, '/reload', {})
    t.equal(bad.status, 400, 'an invalid file is refused')
    t.match((bad.json as { errors: string[] }).errors.join('\n'), /switchyard\.yaml:\d+:\d+ /, 'with its YAML position')
    run.stop()
    await run.done
    t.ok(total(run.outcomes) > 100, `${total(run.outcomes)} requests during the reloads`)
    t.same([...run.outcomes.keys()], ['200'], 'every one answered 200')
    if (run.outcomes.size > 1) t.comment(f.proc.logs.filter((l) => /health/.test(l.msg) || (l as { status?: number }).status !== 200 && (l as { status?: number }).status !== undefined).map((l) => JSON.stringify(l)).join('\n'))
  })
})

t.test('SIGTERM under autocannon load: no accepted request fails, the primary exits 0', async (t) => {
  const a = await origin(t, 'a', 30)
  const b = await origin(t, 'b', 30)
  const f = await startFleet(t, a.port, b.port)
  const workers = (await status(f)).workers
  const run = load(f.port, 16, 1_000_000)
  t.teardown(() => run.stop())
  // Under way for sure before the SIGTERM, whatever the machine's load.
  for (let i = 0; i < 1000 && (run.outcomes.get('200') ?? 0) < 100; i++) await sleep(10)
  f.proc.child.kill('SIGTERM')
  t.equal(await f.proc.exited, 0, 'the primary exits 0')
  run.stop()
  await run.done
  const outcomes = Object.fromEntries(run.outcomes)
  t.ok((outcomes['200'] ?? 0) >= 100, `requests were answered before and during the drain (${outcomes['200'] ?? 0})`)
  // Refused connections were never accepted (the listeners closed). A reset is a connection the
  // primary accepted in the instant its listening socket closed (as the kernel resets a closing
  // socket's backlog for one process): at most one per load connection, which reconnects at once.
  t.same(Object.keys(outcomes).filter((k) => k !== '200' && k !== 'ECONNREFUSED' && k !== 'ECONNRESET'), [],
    `no other outcome: ${JSON.stringify(outcomes)}`)
  t.ok((outcomes.ECONNRESET ?? 0) <= 16, `resets only as the listening socket closed: ${outcomes.ECONNRESET ?? 0} of at most one per connection (16)`)
  t.same(workers.map((w) => isAlive(w.pid)), [false, false], 'both workers are gone')
})

/**
 * A fleet in front of two origins that hold each /slow request for 1 s, with
 * `n` such requests sent and all of them at the origins: in flight for sure,
 * whatever the machine's load. `answers` settles when they are answered (0 for a failure).
 */
async function slowRequestsInFlight (t: Test, n: number): Promise<{ f: Fleet, s: Status, answers: Promise<Array<{ status: number }>> }> {
  let arrived = 0
  const slow = async (name: string): Promise<Server> => await startServer(t, (req, res) => {
    req.resume()
    if (req.url === '/slow') arrived++
    setTimeout(() => res.writeHead(200, { 'content-type': 'text/plain' }).end(name), req.url === '/slow' ? 1000 : 0)
  })
  const a = await slow('a')
  const b = await slow('b')
  const f = await startFleet(t, a.port, b.port)
  const s = await status(f)
  const answers = Promise.all(Array.from({ length: n }, async () => await get(f.port, '/slow').catch((err: Error) => ({ status: 0, body: err.message }))))
  for (let i = 0; i < 400 && arrived < n; i++) await sleep(10)
  t.equal(arrived, n, `all ${n} requests reached the origins first`)
  return { f, s, answers }
}

t.test('SIGTERM: every in-flight request is answered, the primary exits 0, no worker is left', async (t) => {
  const { f, s, answers: inflight } = await slowRequestsInFlight(t, 20)
  f.proc.child.kill('SIGTERM')
  await f.proc.waitForLog((l) => l.msg === 'stopping: every worker drains its in-flight requests')
  // The draining workers were not asked, and it answered 200 "reloaded" (in none of them).
  const reload = await adminPost(f, '/reload', {})
  t.same(reload, { status: 400, json: { ok: false, errors: ['shutting down: reloads are refused while the process drains'] } }, 'a reload is refused while draining')
  const answers = await inflight
  t.same(answers.map((r) => r.status), answers.map(() => 200), 'all 20 requests in flight answered 200')
  let timer: NodeJS.Timeout | undefined
  const code = await Promise.race([f.proc.exited, new Promise<string>((resolve) => { timer = setTimeout(() => resolve('still running after 15 s'), 15_000) })])
  clearTimeout(timer)
  t.equal(code, 0, 'the primary exits 0')
  if (code !== 0) t.comment(f.proc.stdout().slice(-3000), f.proc.stderr().slice(-3000))
  t.same(s.workers.map((w) => isAlive(w.pid)), [false, false], 'both workers are gone')
  // Each worker used to warn so as it disconnected at the end of the drain it was asked for.
  t.notOk(f.proc.logs.some((l) => l.msg === 'worker: the primary is gone; draining and exiting'), 'no worker says its primary is gone')
})

t.test('the primary killed: its workers drain what is in flight, then exit', async (t) => {
  const { f, s, answers: inflight } = await slowRequestsInFlight(t, 6)
  // node:cluster alone exits a worker the moment its IPC channel closes unasked.
  f.proc.child.kill('SIGKILL')
  const answers = await inflight
  t.same(answers.map((r) => r.status), answers.map(() => 200), 'every request in flight answered 200')
  for (let i = 0; i < 400 && s.workers.some((w) => isAlive(w.pid)); i++) await sleep(25)
  t.same(s.workers.map((w) => isAlive(w.pid)), [false, false], 'then both workers are gone')
  t.equal(f.proc.logs.filter((l) => l.msg === 'worker: the primary is gone; draining and exiting').length, 2, 'each says its primary is gone')
})
