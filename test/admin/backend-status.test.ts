import t from 'tap'
import { ExitedCounts, mergeBackendStatus } from '../../src/admin/backend-status.js'
import { parseConfig } from '../../src/config/load.js'
import { Backend } from '../../src/upstream/backend.js'
import { sendNothing } from '../../src/upstream/pool.js'

const config = parseConfig(`
listeners: [{ bind: "127.0.0.1:0" }]
routes: [{ backend: users }]
backends:
  users:
    shardBy: { header: x-user }
    shards:
      - name: a
        servers: [{ name: a1, url: "http://127.0.0.1:1" }, { name: a2, url: "http://127.0.0.1:2" }]
      - name: b
        servers: [{ name: b1, url: "http://127.0.0.1:3" }]
  web:
    servers: [{ name: w1, url: "http://127.0.0.1:4" }]
`, 'test.yaml')

/** One process's Backends, as a worker or the primary builds them (pools that send nothing). */
function processBackends (): Backend[] {
  const backends = Object.values(config.backends).map((c) => new Backend(c, { dispatcher: sendNothing }))
  t.teardown(() => { for (const b of backends) b.retire() })
  return backends
}

const server = (backends: readonly Backend[], name: string) => backends.flatMap((b) => b.servers).find((s) => s.name === name)!

t.test('counters summed over workers, health from the primary', async (t) => {
  const primary = processBackends()
  const workers = [processBackends(), processBackends(), processBackends()]
  // The primary runs the checks: a2 is down.
  server(primary, 'a2').setCheckStatus(false, 'timeout')
  server(primary, 'a2').lastCheck = { ok: false, at: 1, reason: 'timeout' }
  server(primary, 'a1').lastCheck = { ok: true, at: 1, status: 200, reason: 'ok' }
  workers.forEach((w, i) => {
    const a1 = server(w, 'a1')
    a1.active = i + 1
    a1.requests = 100 * (i + 1)
    a1.failures = i
    server(w, 'w1').requests = 7
    w[0]!.active = 2
    w[0]!.retries = i
  })
  // One worker's outlier detection ejected b1.
  server(workers[1]!, 'b1').setEjected(true, 'consecutive 5xx')

  const merged = mergeBackendStatus(workers.map((w) => w.map((b) => b.snapshot())), primary.map((b) => b.snapshot()))
  t.same(merged.map((b) => [b.name, b.algorithm, b.active, b.retries, b.shards.map((s) => [s.name, s.queued])]), [
    ['users', 'roundRobin', 6, 3, [['a', 0], ['b', 0]]],
    ['web', 'roundRobin', 0, 0, [['default', 0]]]
  ])
  const [a1, a2] = merged[0]!.shards[0]!.servers
  t.match(a1, { name: 'a1', url: 'http://127.0.0.1:1', healthy: true, checkUp: true, ejected: false, active: 6, requests: 600, failures: 3 })
  t.same(a1!.lastCheck, { ok: true, reason: 'ok', status: 200 }, 'the primary\'s last check')
  t.match(a2, { name: 'a2', healthy: false, checkUp: false, ejected: false, active: 0, requests: 0 }, 'down by the primary\'s check')
  t.same(a2!.lastCheck, { ok: false, reason: 'timeout' })
  t.notOk('upForMs' in a2!)
  t.match(merged[0]!.shards[1]!.servers[0], { name: 'b1', healthy: false, checkUp: true, ejected: true }, 'ejected by one worker')
  t.equal(merged[1]!.shards[0]!.servers[0]!.requests, 21)
  t.same(JSON.parse(JSON.stringify(merged)), merged, 'plain JSON, as /status sends it')
})

t.test('without a health source the first worker gives it; what a worker lacks counts as nothing', async (t) => {
  const one = processBackends()
  const two = processBackends()
  server(one, 'a2').setCheckStatus(false, 'timeout')
  server(two, 'a1').requests = 5
  server(one, 'a1').requests = 4
  // The second worker does not know backend web yet (a reload half done).
  const merged = mergeBackendStatus([one.map((b) => b.snapshot()), two.slice(0, 1).map((b) => b.snapshot())])
  t.same(merged.map((b) => b.name), ['users', 'web'])
  t.equal(merged[0]!.shards[0]!.servers[0]!.requests, 9)
  t.equal(merged[0]!.shards[0]!.servers[1]!.healthy, false)
  t.same(mergeBackendStatus([]), [], 'no workers, no source: nothing')
  t.same(mergeBackendStatus([], one.map((b) => b.snapshot())).map((b) => b.shards[0]!.servers[0]!.requests), [0, 0], 'the primary alone: zero counts')
})

t.test('workers that exited leave their counters, not their gauges', async (t) => {
  const primary = processBackends()
  const [gone1, gone2, live] = [processBackends(), processBackends(), processBackends()]
  for (const [w, n] of [[gone1, 10], [gone2, 20], [live, 1]] as const) {
    const a1 = server(w, 'a1')
    a1.requests = n
    a1.failures = Math.floor(n / 10)
    a1.active = 3
    a1.consecutiveFailures = 2
    w[0]!.retries = n
    w[0]!.active = 4
  }
  const exited = new ExitedCounts()
  exited.add(gone1.map((b) => b.snapshot()))
  exited.add(gone2.map((b) => b.snapshot()))
  const merged = mergeBackendStatus([live.map((b) => b.snapshot())], primary.map((b) => b.snapshot()), exited)
  t.match(merged[0], { name: 'users', retries: 31, active: 4 }, 'retries of all three; in flight: the live one\'s')
  t.match(merged[0]!.shards[0]!.servers[0], { name: 'a1', requests: 31, failures: 3, active: 3, consecutiveFailures: 2 },
    'requests and failures of all three; in flight and failures in a row: the live one\'s')
  t.match(merged[1]!.shards[0]!.servers[0], { name: 'w1', requests: 0 })
})
