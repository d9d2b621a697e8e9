// `store: redis` across two real proxies on one real redis-server: a limit of
// 10/s holds for both together; with Redis stopped each falls back to its
// local limit (counted, never a 5xx), and shares again once Redis returns.
// Bounds are counts of passed requests against burst + rate × elapsed, never
// timing alone.
import t from 'tap'
import { parsePrometheusText } from '../helpers/prometheus-parser.js'
import { h1, type Reply } from '../helpers/e2e.js'
import { startOrigin } from '../helpers/origin.js'
import { startProxy, type RunningProxy } from '../helpers/proxy.js'
import { startRedis } from '../helpers/redis.js'

const RATE = 10 // per second, burst 10

t.test('two instances, one limit', async (t) => {
  const redis = await startRedis(t)
  const origin = await startOrigin(t)
  const yaml = `
listeners: [{ name: plain, bind: "127.0.0.1:0" }]
trustedProxies: [127.0.0.1]
redis: { url: "${redis.url}", timeout: 1s, maxReconnectDelay: 200ms }
routes:
  - name: api
    backend: app
    rateLimit: { average: ${RATE}, store: redis }
backends:
  app:
    servers: [{ url: "${origin.url}" }]
`
  const a = await startProxy(t, yaml)
  const b = await startProxy(t, yaml)
  // Each phase speaks as a new client (X-Forwarded-For from the trusted peer): its bucket starts full.
  const get = (p: RunningProxy, client: string): Promise<Reply> => h1(p.url('plain'), { path: '/', headers: { 'x-forwarded-for': client } })
  const transitions = (p: RunningProxy, to: 'local' | 'redis'): number =>
    parsePrometheusText(p.app.metrics.prometheus()).find((f) => f.name === 'switchyard_ratelimit_store_transitions_total')
      ?.samples.find((s) => s.labels.to === to)?.value ?? 0
  /** Until both instances have had an answer from Redis (they connect at start). */
  const shared = async (probe: string): Promise<void> => {
    const end = Date.now() + 10_000
    for (const p of [a, b]) {
      const before = transitions(p, 'redis')
      while (transitions(p, 'redis') === before) {
        if (Date.now() > end) throw new Error('an instance never got to share its limit on Redis')
        await get(p, probe)
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
    }
  }

  /**
   * One client hammering both instances in turn, four requests in flight at
   * a time, for `ms`: how many each let through, what else they answered,
   * and how long it took from the first send to the last answer.
   */
  const hammer = async (client: string, ms: number): Promise<{ passed: number[], statuses: Set<number>, elapsed: number }> => {
    const passed = [0, 0]
    const statuses = new Set<number>()
    const start = performance.now()
    let i = 0
    const loop = async (): Promise<void> => {
      while (performance.now() - start < ms) {
        const which = i++ % 2
        const r = await get(which === 0 ? a : b, client)
        statuses.add(r.status)
        if (r.status === 200) passed[which]!++
      }
    }
    await Promise.all([loop(), loop(), loop(), loop()])
    return { passed, statuses, elapsed: (performance.now() - start) / 1000 }
  }

  t.test('10/s holds across both instances together', async (t) => {
    await shared('198.51.100.1')
    const h = await hammer('203.0.113.1', 1500)
    const total = h.passed[0]! + h.passed[1]!
    const bound = RATE + RATE * h.elapsed
    t.same([...h.statuses].sort(), [200, 429], 'only 200 and 429')
    t.ok(total <= bound + 1, `${total} passed in ${h.elapsed.toFixed(2)} s: at most burst + rate × elapsed = ${bound.toFixed(1)} (+1)`)
    t.ok(total >= RATE, `at least the burst passed (${total})`)
    // Alone, each instance would let its own burst + rate × elapsed through: about twice the bound.
    t.ok(h.passed[0]! > 0 && h.passed[1]! > 0, `both instances served some (${h.passed.join(' + ')})`)
  })

  t.test('Redis stopped: each instance falls back to its local limit, no 5xx; Redis back: one limit again', async (t) => {
    await redis.stop()
    const down = await hammer('203.0.113.2', 1000)
    t.same([...down.statuses].sort(), [200, 429], 'never a 5xx because of Redis')
    const bound = RATE + RATE * down.elapsed
    for (const [i, n] of down.passed.entries()) t.ok(n <= bound + 1, `instance ${i}: ${n} passed, its local limit is ${bound.toFixed(1)} (+1)`)
    t.ok(down.passed[0]! + down.passed[1]! > bound + 1, 'together more than one limit: each decides alone')
    t.equal(transitions(a, 'local'), 1, 'the switch is counted once per instance')
    t.equal(transitions(b, 'local'), 1)

    await redis.start()
    await shared('198.51.100.2')
    t.equal(transitions(a, 'redis'), 2, 'shared at start, and again after Redis returned')
    const back = await hammer('203.0.113.3', 1000)
    const total = back.passed[0]! + back.passed[1]!
    t.ok(total <= RATE + RATE * back.elapsed + 1, `one limit again: ${total} passed in ${back.elapsed.toFixed(2)} s`)
    t.same([...back.statuses].sort(), [200, 429])
  })
})
