import t from 'tap'
import { addRedisCounters, redisMetrics, redisStatus, type RedisReport } from '../../src/redis/report.js'
import { noOperations } from '../../src/redis/operations.js'

const latency = (count: number, sumMs: number) => ({ count, sumMs, buckets: [count], epoch: 1, cur: null, prev: null, curMax: 0, prevMax: 0 })

function report (state: RedisReport['state'], n: number): RedisReport {
  return {
    state,
    target: 'redis://127.0.0.1:6379',
    since: '2026-01-01T00:00:00.000Z',
    transitions: n,
    operations: { cache_lookup: { ...noOperations(), ok: 10 * n, error: n } },
    latency: latency(10 * n, 5 * n),
    shared: { hits: n, misses: n, stored: n, superseded: 0, rejected: 0, collapsed: 0, remotePurges: 0, unavailable: n }
  }
}

t.test('the counters of processes that exited add to the live ones\'; their state does not', async (t) => {
  const exited = addRedisCounters(addRedisCounters(undefined, report('up', 1)), report('down', 2))
  const live = [report('up', 4)]
  const status = redisStatus(live, exited)!
  t.match(status, { state: 'up', connected: '1/1', transitions: 7, latency: { count: 70 } })
  t.same(status.operations.cache_lookup, { ...noOperations(), ok: 70, error: 7 })
  t.match(status.shared, { hits: 7, misses: 7, stored: 7, unavailable: 7 })
  const metrics = redisMetrics(live, exited)!
  t.equal(metrics.up, 1, 'an exited process that was down does not make the fleet down')
  t.equal(metrics.transitions, 7)
  t.equal(metrics.latency.reduce((n, l) => n + l.count, 0), 70)
  t.same(redisStatus(live), { ...status, transitions: 4, operations: { cache_lookup: { ...noOperations(), ok: 40, error: 4 } },
    latency: { count: 40, meanMs: 0.5 }, shared: report('up', 4).shared }, 'without: the live ones only')
})
