// The Redis store: the Lua GCRA on a real redis-server (the same verdicts as
// gcra.ts, keys under the prefix, hashed and expiring, the script reloaded
// after a flush), and the fallback to the local limit when Redis is down,
// failing or slow: logged and counted once per switch, never an error.
import { Redis } from 'ioredis'
import { pino } from 'pino'
import t from 'tap'
import type { Test } from 'tap'
import { parseConfig } from '../../src/config/load.js'
import { rateOf, take, type Verdict } from '../../src/ratelimit/gcra.js'
import { LocalStore } from '../../src/ratelimit/local.js'
import { RETRY_MS, RedisStore, gcraOn, redisKey, type RedisEval, type StoreInUse, type StoreLog } from '../../src/ratelimit/redis.js'
import { RedisLink } from '../../src/redis/link.js'
import { startRedis, type RedisServer } from '../helpers/redis.js'

/** Log calls and transitions, as the app would log and count them. */
function recorder (): { log: StoreLog, lines: string[], transitions: StoreInUse[] } {
  const lines: string[] = []
  return {
    lines,
    transitions: [],
    log: {
      warn: (obj, msg) => { lines.push(`warn ${msg} ${JSON.stringify(obj)}`) },
      info: (_obj, msg) => { lines.push(`info ${msg}`) }
    }
  }
}

/** The shared connection to `redis`, as the app makes it from a `redis` block; closed on teardown. */
function linkTo (t: Test, redis: RedisServer, block: string): RedisLink {
  const cfg = parseConfig(`listeners: [{ bind: "127.0.0.1:0" }]\nredis: { url: "${redis.url}", maxReconnectDelay: 200ms, ${block} }\n`, '').redis!
  const link = new RedisLink(cfg, pino({ level: 'silent' }))
  t.teardown(() => link.close())
  return link
}

async function until (what: string, ok: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

t.test('the Lua script decides as take() does, on keys under the prefix that expire', async (t) => {
  const redis = await startRedis(t)
  const link = linkTo(t, redis, 'keyPrefix: "test:", timeout: 2s')
  await until('the link is up', () => link.up)
  const store = new RedisStore(gcraOn(link), new LocalStore())
  const rate = rateOf({ average: 2, period: 10_000, burst: 3 })
  const seen: Verdict[] = []
  for (let i = 0; i < 5; i++) seen.push(await store.take('route\nclientIp\n192.0.2.1', rate))
  t.same(seen.map((v) => v.allowed), [true, true, true, false, false])
  t.same(seen.map((v) => v.remaining), [2, 1, 0, 0, 0])
  // Within the few ms the calls took, the refusal waits about one interval (5 s).
  t.ok(seen[3]!.reset > 4900 && seen[3]!.reset <= 5000, `reset ${seen[3]!.reset}`)
  // The same rule as the pure policy, within Redis's µs clock.
  let tat: number | undefined
  const local = [0, 0, 0, 0, 0].map(() => { const r = take(rate, tat, 0); tat = r.tat; return r.verdict.allowed })
  t.same(seen.map((v) => v.allowed), local)

  const admin = new Redis(redis.url)
  t.teardown(() => admin.disconnect())
  const keys = await admin.keys('*')
  t.same(keys, [`test:${redisKey('route\nclientIp\n192.0.2.1')}`], 'one key, under the prefix')
  t.notMatch(keys[0]!, /192\.0\.2\.1/, 'the client is not written into the key name')
  const pttl = await admin.pttl(keys[0]!)
  t.ok(pttl > 14_000 && pttl <= 15_000, `it expires when the bucket is full again (${pttl} ms)`)
  t.match(await admin.get(keys[0]!), /^\d+$/, 'the TAT is stored as an integer, not 1.7e+15')

  // A restarted Redis (or SCRIPT FLUSH) has no script cache: the store sends the script again.
  await admin.script('FLUSH')
  t.notOk((await store.take('route\nclientIp\n192.0.2.1', rate)).allowed)
  t.ok((await store.take('route\nclientIp\n192.0.2.2', rate)).allowed)
  t.equal(store.inUse, 'redis')
})

t.test('Redis stopped: decided locally, logged and counted once; Redis back: shared again', async (t) => {
  const redis = await startRedis(t)
  const link = linkTo(t, redis, 'timeout: 500ms')
  await until('the link is up', () => link.up)
  const rec = recorder()
  let now = 0
  const local = new LocalStore({ now: () => now })
  const store = new RedisStore(gcraOn(link), local, { log: rec.log, onTransition: (to) => rec.transitions.push(to), now: () => now })
  const rate = rateOf({ average: 1, period: 60_000, burst: 2 })
  t.equal(store.inUse, 'local', 'nothing is shared before Redis first answers')
  t.ok((await store.take('k', rate)).allowed)
  t.same(rec.transitions, ['redis'])
  t.same(rec.lines, ['info rate limits are shared on Redis'])

  await redis.stop()
  await until('the link sees it', () => !link.up)
  const down = [await store.take('k', rate), await store.take('k', rate), await store.take('k', rate)]
  t.same(down.map((v) => v.allowed), [true, true, false], 'the local limit holds, with its own bucket')
  t.equal(store.inUse, 'local')
  t.same(rec.transitions, ['redis', 'local'])
  t.equal(rec.lines.length, 2)
  t.match(rec.lines[1], /^warn rate limits fall back to the local limit/)

  await redis.start()
  await until('the link reconnects', () => link.up, 10_000)
  now += RETRY_MS
  // The test Redis keeps nothing across a restart: its bucket starts full again, apart from the local one.
  const back = [await store.take('k', rate), await store.take('k', rate), await store.take('k', rate)]
  t.same(back.map((v) => v.allowed), [true, true, false])
  t.equal(store.inUse, 'redis')
  t.same(rec.transitions, ['redis', 'local', 'redis'])
  t.equal(rec.lines[2], 'info rate limits are shared on Redis')
})

t.test('a failing or slow Redis: local for RETRY_MS, then tried again; nonsense answers count as failures', async (t) => {
  let now = 0
  let calls = 0
  let answer: () => Promise<unknown> = async () => [1, 500_000]
  const link: RedisEval = { up: true, eval: async () => { calls++; return await answer() } }
  const rec = recorder()
  const store = new RedisStore(link, new LocalStore({ now: () => now }), { log: rec.log, onTransition: (to) => rec.transitions.push(to), now: () => now })
  const rate = rateOf({ average: 1, period: 1000, burst: 5 })
  t.same(await store.take('k', rate), { allowed: true, remaining: 4, reset: 500 }, 'the backlog (µs) is read by verdictOf')

  answer = async () => { throw new Error('Command timed out') }
  t.ok((await store.take('k', rate)).allowed)
  t.equal(calls, 2)
  t.match(rec.lines, ['info rate limits are shared on Redis', /fall back .*"reason":"Command timed out"/])
  for (let i = 0; i < 3; i++) await store.take('k', rate)
  t.equal(calls, 2, 'within RETRY_MS nobody waits on Redis')
  now += RETRY_MS
  await store.take('k', rate)
  t.equal(calls, 3, 'then it is tried again')

  answer = async () => 'OK'
  now += RETRY_MS
  t.ok((await store.take('k', rate)).allowed, 'an answer that is not {allowed, backlog} is decided locally')
  answer = async () => [1, 0]
  now += RETRY_MS
  await store.take('k', rate)
  t.same(rec.transitions, ['redis', 'local', 'redis'], 'one transition each way, however many requests')
})

t.test('a Lua error rejects, and the store decides locally', async (t) => {
  const redis = await startRedis(t)
  const link = linkTo(t, redis, 'timeout: 2s')
  await until('the link is up', () => link.up)
  const admin = new Redis(redis.url)
  t.teardown(() => admin.disconnect())
  // A key of the wrong type makes GET fail inside the script.
  const rec = recorder()
  const store = new RedisStore(gcraOn(link), new LocalStore(), { log: rec.log, onTransition: (to) => rec.transitions.push(to) })
  const rate = rateOf({ average: 1, period: 1000, burst: 1 })
  await admin.lpush(`switchyard:${redisKey('k')}`, 'x')
  const fine = await store.take('fine', rate)
  t.ok(fine.allowed, JSON.stringify({ fine, lines: rec.lines }))
  const k = await store.take('k', rate)
  t.ok(k.allowed, JSON.stringify({ k, lines: rec.lines, transitions: rec.transitions }))
  t.same(rec.transitions, ['redis', 'local'])
  t.match(rec.lines[1], /fall back .*WRONGTYPE/)
})
