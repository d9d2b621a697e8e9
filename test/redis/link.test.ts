// The Redis link against a real redis-server: up, down at once when Redis
// goes away (operations refused, not queued), a slow Redis bounded by the
// timeout, back up by itself, and pub/sub that survives the restart.
import t, { type Test } from 'tap'
import { pino } from 'pino'
import { Redis } from 'ioredis'
import { parseConfig } from '../../src/config/load.js'
import { FAILING_MS, RedisLink, RedisUnavailable, SLOW_COOLDOWN_MS, describeTarget, type RedisState } from '../../src/redis/link.js'
import { startRedis } from '../helpers/redis.js'

function redisConfig (url: string, extra = '') {
  const c = parseConfig(`listeners: [{ bind: "127.0.0.1:0" }]\nredis: { url: "${url}", timeout: 150ms, maxReconnectDelay: 200ms${extra} }\n`, '')
  return c.redis!
}

async function until (link: RedisLink, state: RedisState): Promise<void> {
  if (link.state === state) return
  await new Promise<void>((resolve) => { const off = link.onState((s) => { if (s === state) { off(); resolve() } }) })
}

t.test('up, down while Redis is stopped (refused at once, counted), up again when it returns', async (t) => {
  const redis = await startRedis(t)
  const link = new RedisLink(redisConfig(redis.url), pino({ level: 'silent' }))
  t.teardown(() => link.close())
  await until(link, 'up')
  t.equal(await link.run('set', (c) => c.set('k', 'v')), 'OK')
  const raw = new Redis(redis.url)
  t.teardown(() => raw.disconnect())
  t.equal(await raw.get('switchyard:k'), 'v', 'keys carry the prefix')

  await redis.stop()
  await until(link, 'down')
  await t.rejects(link.run('get', (c) => c.get('k')), new RedisUnavailable('redis get: not connected (down)'), 'refused, not queued')

  await redis.start()
  await until(link, 'up')
  t.equal(await link.run('get', (c) => c.get('k')), null, 'a fresh Redis (no persistence in the test)')
  const s = link.stats()
  t.equal(s.state, 'up')
  t.same(s.operations.get, { ok: 1, error: 0, timeout: 0, down: 1, shed: 0 })
  t.same(s.operations.set, { ok: 1, error: 0, timeout: 0, down: 0, shed: 0 })
  t.ok(s.transitions >= 3, `connecting → up → down → up: ${s.transitions}`)
  t.equal(s.latency.count, 2, 'sent operations are timed (set, get); the refused one is not')
  t.equal(s.target, `redis://127.0.0.1:${redis.port}`)
})

t.test('an operation that fails with an error (a Redis Cluster node down answers so) says degraded for FAILING_MS, and sheds nothing', async (t) => {
  const redis = await startRedis(t)
  const link = new RedisLink(redisConfig(redis.url), pino({ level: 'silent' }))
  t.teardown(() => link.close())
  await until(link, 'up')
  await t.rejects(link.run('bad', (c) => c.call('NO-SUCH-COMMAND')), RedisUnavailable)
  t.equal(link.stats().state, 'degraded')
  t.equal(await link.run('get', (c) => c.get('k')), null, 'the next operation goes out (not shed)')
  await new Promise((resolve) => setTimeout(resolve, FAILING_MS + 50))
  t.equal(link.stats().state, 'up', 'up again once nothing failed for FAILING_MS')
})

/** A link, up, to a Redis that then answers no client for `ms` (CLIENT PAUSE). */
async function pausedFor (t: Test, ms: number): Promise<RedisLink> {
  const redis = await startRedis(t)
  const link = new RedisLink(redisConfig(redis.url), pino({ level: 'silent' }))
  t.teardown(() => link.close())
  await until(link, 'up')
  const admin = new Redis(redis.url)
  t.teardown(() => admin.disconnect())
  await admin.call('CLIENT', 'PAUSE', String(ms), 'ALL')
  return link
}

t.test('a slow Redis costs at most the timeout', async (t) => {
  const link = await pausedFor(t, 1000)
  // The pause outlasts the timeout: the answer can only be ours.
  await t.rejects(link.run('get', (c) => c.get('k')), /no answer within 150 ms/)
  t.equal(link.stats().operations.get?.timeout, 1)
})

t.test('after a timeout, operations are shed for a while, then one probes while the rest are still shed', async (t) => {
  const link = await pausedFor(t, 2500)
  await t.rejects(link.run('lookup', (c) => c.get('k')), /no answer within 150 ms/)
  // The request that made the rate-limit call wait now looks in the shared cache: refused at once, not a second timeout.
  await t.rejects(link.run('lookup', (c) => c.get('k')), /not sent, Redis timed out less than 1000 ms ago/)
  await new Promise((resolve) => setTimeout(resolve, SLOW_COOLDOWN_MS + 100))
  // Cooled down: one operation goes out as the probe; one sent beside it is still shed.
  const probe = link.run('lookup', (c) => c.get('k'))
  const beside = link.run('lookup', (c) => c.get('k'))
  await t.rejects(beside, /not sent/, 'only one probe at a time')
  await probe.catch(() => null)
  // Once Redis answers again, a probe gets through and shedding stops.
  let answered = false
  for (let i = 0; i < 60 && !answered; i++) {
    answered = await link.run('lookup', (c) => c.get('k')).then(() => true, () => false)
    if (!answered) await new Promise((resolve) => setTimeout(resolve, 100))
  }
  t.ok(answered, 'back to normal after the pause')
  t.equal(await link.run('lookup', (c) => c.get('k')), null, 'and the next one is sent too')
  const ops = link.stats().operations.lookup!
  t.ok(ops.shed >= 2, `shed counted: ${ops.shed}`)
  t.ok(ops.timeout >= 1 && ops.ok >= 2, JSON.stringify(ops))
})

t.test('pub/sub: messages arrive, also after Redis restarts', async (t) => {
  const redis = await startRedis(t)
  const link = new RedisLink(redisConfig(redis.url), pino({ level: 'silent' }))
  t.teardown(() => link.close())
  await until(link, 'up')
  const got: string[] = []
  let wake: () => void = () => {}
  link.subscribe('purge', (m) => { got.push(m.toString()); wake() })
  const publishUntilHeard = async (text: string): Promise<void> => {
    // The subscription is made asynchronously (and again after a reconnect): publish until it is heard.
    for (let i = 0; i < 100 && !got.includes(text); i++) {
      const heard = new Promise<void>((resolve) => { wake = resolve })
      await link.publish('purge', text).catch(() => 0)
      await Promise.race([heard, new Promise((resolve) => setTimeout(resolve, 50))])
    }
  }
  await publishUntilHeard('one')
  t.ok(got.includes('one'))
  await redis.stop()
  await until(link, 'down')
  await redis.start()
  await until(link, 'up')
  await publishUntilHeard('two')
  t.ok(got.includes('two'), 'resubscribed after the restart')
})

t.test('the target shown never carries the password', async (t) => {
  t.equal(describeTarget(redisConfig('redis://user:secret@10.0.0.5:6380/2')), 'redis://10.0.0.5:6380/2')
  const c = parseConfig('listeners: [{ bind: "127.0.0.1:0" }]\nredis: { sentinel: { masterName: main, nodes: ["a:26379", "[fd00::1]:26379"] }, password: s3cret }\n', '').redis!
  t.equal(describeTarget(c), 'sentinel main@a:26379,[fd00::1]:26379')
})

t.test('TLS: rediss:// with the CA in redis.tls', async (t) => {
  const redis = await startRedis(t, { tls: true })
  const dir = t.testdir({ 'ca.pem': redis.ca! })
  const c = parseConfig(`listeners: [{ bind: "127.0.0.1:0" }]\nredis: { url: "${redis.url}", tls: { ca: ca.pem, servername: localhost } }\n`, `${dir}/config.yaml`, { checkFiles: true }).redis!
  const link = new RedisLink(c, pino({ level: 'silent' }))
  t.teardown(() => link.close())
  await until(link, 'up')
  t.equal(await link.run('ping', (cl) => cl.ping()), 'PONG')
})
