// The test Redis is real: it answers, speaks TLS when asked, and comes back
// on the same port after a stop.
import t from 'tap'
import { Redis } from 'ioredis'
import { isAlive } from './reap.js'
import { startRedis } from './redis.js'

t.test('a plain redis-server answers, stops and starts again on its port', async (t) => {
  const redis = await startRedis(t)
  const client = new Redis(redis.url, { maxRetriesPerRequest: 0, lazyConnect: true, retryStrategy: () => null })
  await client.connect()
  t.equal(await client.set('k', 'v'), 'OK')
  t.equal(await client.get('k'), 'v')
  client.disconnect()
  const pid = redis.pid()!
  await redis.stop()
  t.notOk(isAlive(pid), 'the process is gone')
  await redis.start()
  const again = new Redis(redis.url, { maxRetriesPerRequest: 0, lazyConnect: true, retryStrategy: () => null })
  await again.connect()
  t.equal(await again.get('k'), null, 'nothing persisted')
  again.disconnect()
})

t.test('a TLS redis-server answers a client that trusts its CA, and refuses a plaintext one', async (t) => {
  const redis = await startRedis(t, { tls: true })
  t.match(redis.url, /^rediss:\/\//)
  const client = new Redis(redis.url, { tls: { ca: redis.ca }, maxRetriesPerRequest: 0, lazyConnect: true, retryStrategy: () => null })
  await client.connect()
  t.equal(await client.ping(), 'PONG')
  client.disconnect()
  const plain = new Redis(`redis://127.0.0.1:${redis.port}`, { maxRetriesPerRequest: 0, lazyConnect: true, retryStrategy: () => null, connectTimeout: 2000 })
  plain.on('error', () => {})
  await t.rejects(plain.connect().then(() => plain.ping()))
  plain.disconnect()
})
