// A cluster's counters never go down when workers die (Prometheus reads a
// drop as a reset): `switchyard start` with `workers: 2`, real worker
// processes SIGKILLed by pid and replaced, again and again, and one stopped
// (SIGSTOP) past the primary's answer deadline. Every counter of
// /metrics and /status keeps what the dead workers counted (requests, cache,
// per-server), while their gauges (cache size) go with them.
import http from 'node:http'
import { writeFileSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { spawnCli } from '../helpers/cli.js'
import { closedPort, startServer } from '../helpers/origin.js'
import { parsePrometheusText, type ParsedFamily } from '../helpers/prometheus-parser.js'
import { isAlive } from '../helpers/reap.js'

interface Status {
  workers: Array<{ id: number, pid: number, state: string, restarts: number }>
  backends: Array<{ name: string, retries: number, shards: Array<{ servers: Array<{ name: string, requests: number, failures: number }> }> }>
  cache: { misses: number, notStored: number, stored: number, hits: number, entries: number, bytes: number }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** One request on its own connection (the cluster spreads connections, not requests). */
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

t.test('workers: 2, workers killed one after another: no counter goes down', async (t) => {
  // /u… is never stored (a miss and a not-stored each time), /c… is stored.
  const origin = await startServer(t, (req, res) => {
    req.resume()
    res.writeHead(200, { 'cache-control': req.url?.startsWith('/c') === true ? 'max-age=600' : 'no-store' }).end('x')
  })
  const port = await closedPort()
  const admin = await closedPort()
  const file = path.join(t.testdir({}), 'switchyard.yaml')
  writeFileSync(file, `
workers: 2
listeners: [{ name: web, bind: "127.0.0.1:${port}" }]
admin: { bind: "127.0.0.1:${admin}" }
accessLog: false
cache: {}
routes: [{ name: r, match: { pathPrefix: / }, backend: b }]
backends:
  b:
    servers: [{ name: s1, url: "${origin.url}" }]
`)
  const proc = spawnCli(t, ['start', '-c', file])
  const pids = new Set<number>()
  // The primary goes last; its workers exit when their IPC channel closes (any left are killed, by pid).
  t.teardown(async () => {
    if (proc.child.exitCode === null && proc.child.signalCode === null) proc.child.kill('SIGKILL')
    await proc.exited
    const end = Date.now() + 10_000
    while ([...pids].some(isAlive) && Date.now() < end) await sleep(50)
    for (const pid of pids) if (isAlive(pid)) process.kill(pid, 'SIGKILL')
  })
  await proc.waitForLog((l) => l.msg === 'cluster: every worker is ready')

  const status = async (): Promise<Status> => {
    const s = JSON.parse((await get(admin, '/status')).body) as Status
    for (const w of s.workers) if (w.pid > 0) pids.add(w.pid)
    return s
  }
  const scrape = async (): Promise<Map<string, ParsedFamily>> =>
    new Map(parsePrometheusText((await get(admin, '/metrics')).body).map((f) => [f.name, f]))
  const COUNTERS = ['switchyard_requests_total', 'switchyard_cache_requests_total', 'switchyard_cache_misses_total',
    'switchyard_cache_not_stored_total', 'switchyard_cache_stored_total', 'switchyard_server_upstream_responses_total']
  /** Every counter this test watches, from both endpoints. */
  const counters = async (): Promise<Record<string, number>> => {
    const m = await scrape()
    const s = await status()
    const out: Record<string, number> = {}
    for (const name of COUNTERS) out[name] = (m.get(name)?.samples ?? []).reduce((n, x) => n + x.value, 0)
    out['upstream_duration_count'] = (m.get('switchyard_upstream_duration_seconds')?.samples ?? [])
      .filter((x) => x.name.endsWith('_count')).reduce((n, x) => n + x.value, 0)
    out['status cache.misses'] = s.cache.misses
    out['status cache.notStored'] = s.cache.notStored
    out['status cache.stored'] = s.cache.stored
    out['status server requests'] = s.backends[0]!.shards[0]!.servers[0]!.requests
    return out
  }
  /** Kills the worker in slot `id` by its pid; resolves once its replacement is ready. */
  const kill = async (id: number): Promise<void> => {
    const before = (await status()).workers.find((w) => w.id === id)!
    process.kill(before.pid, 'SIGKILL')
    for (let i = 0; i < 400; i++) {
      const s = await status()
      if (s.workers.every((w) => w.state === 'ready') && s.workers.some((w) => w.id === id && w.pid !== before.pid)) return
      await sleep(25)
    }
    throw new Error(`worker ${id} was not replaced`)
  }

  let sent = 0
  const send = async (prefix: string, n: number): Promise<void> => {
    for (let i = 0; i < n; i++, sent++) t.equal((await get(port, `/${prefix}${sent}`)).status, 200)
  }
  await send('u', 30)
  await send('c', 10)
  let last = await counters()
  t.equal(last.switchyard_requests_total, 40, 'every request counted')
  t.equal(last['status cache.misses'], 40)

  // A worker that cannot answer in time (stopped) counts with its last answers, not as nothing.
  const stopped = (await status()).workers.find((w) => w.id === 1)!.pid
  process.kill(stopped, 'SIGSTOP')
  try {
    const late = await counters()
    t.same(Object.entries(last).filter(([k, v]) => late[k]! < v), [], 'a worker late to answer keeps its share of every counter')
  } finally {
    process.kill(stopped, 'SIGCONT')
  }

  // Many deaths, with traffic between them: after each, no counter is below what the last scrape said.
  let deaths = 0
  // Both slots die (the gauges check below needs every worker that stored replaced); many more deaths are
  // test/admin/metrics-merge.test.ts's, without a worker boot each.
  for (const id of [1, 2, 1]) {
    await kill(id)
    deaths++
    const now = await counters()
    const down = Object.entries(last).filter(([k, v]) => now[k]! < v)
    t.same(down, [], `after ${deaths} worker deaths no counter went down`)
    await send('u', 4)
    // The primary has the live workers' latest answers once it is scraped: nothing of theirs is lost at their death.
    last = await counters()
  }
  const end = await counters()
  t.equal(end.switchyard_requests_total, sent, `${deaths} workers died, all ${sent} requests are still counted`)
  t.equal(end['switchyard_cache_misses_total'], sent)
  t.equal(end['switchyard_cache_not_stored_total'], sent - 10)
  t.equal(end['switchyard_server_upstream_responses_total'], sent)
  t.equal(end['status server requests'], sent)
  t.equal(end['status cache.stored'], 10)
  // Gauges are not kept: every worker that stored /c… is gone (slots 1 and 2 both replaced), and their entries with them.
  const s = await status()
  t.same([s.cache.entries, s.cache.bytes], [0, 0], 'no cache entries are left to the dead workers')
})
