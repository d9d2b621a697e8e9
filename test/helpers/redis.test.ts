// The test Redis is real: it answers, speaks TLS when asked, and comes back
// on the same port after a stop; a three-master cluster spreads keys over its
// nodes, and a master stopped and started again takes its slots back.
import t from 'tap'
import { Cluster, Redis } from 'ioredis'
import { isAlive } from './reap.js'
import { startRedis, startRedisCluster } from './redis.js'

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

t.test('a Redis Cluster of three masters: the slots spread over them; a master comes back with its slots', async (t) => {
  const cluster = await startRedisCluster(t)
  t.equal(cluster.nodes.length, 3)
  t.equal(new Set(cluster.nodes.map((n) => n.pid())).size, 3, 'three processes')
  const client = new Cluster(cluster.seeds.map((s) => ({ host: '127.0.0.1', port: Number(s.split(':')[1]) })))
  t.teardown(() => client.disconnect())
  const masters = String(await client.call('CLUSTER', 'NODES')).split('\n').filter((l) => l.includes('master'))
  t.equal(masters.length, 3)
  for (const line of masters) t.match(line, /connected \d+-\d+$/, 'each master serves a range of slots')
  // {a}, {b}, {c} hash to slots 15495, 3300, 7365: one on each node.
  const owners = await Promise.all(['{a}', '{b}', '{c}'].map((k) => cluster.nodeOf(k)))
  t.same([...owners].sort(), [0, 1, 2], 'three keys, three nodes')
  for (const [i, k] of ['{a}', '{b}', '{c}'].entries()) {
    await client.set(k, k)
    const direct = new Redis(cluster.nodes[owners[i]!]!.port, '127.0.0.1', { maxRetriesPerRequest: 0, lazyConnect: true, retryStrategy: () => null })
    await direct.connect()
    t.equal(await direct.get(k), k, `${k} is stored on the node nodeOf names`)
    direct.disconnect()
  }

  const node = cluster.nodes[1]!
  const pid = node.pid()!
  await node.stop()
  t.notOk(isAlive(pid), 'the process is gone')
  await node.start()
  await cluster.ready()
  t.not(node.pid(), pid, 'a new process, on the same port')
  const direct = new Redis(node.port, '127.0.0.1', { maxRetriesPerRequest: 0, lazyConnect: true, retryStrategy: () => null })
  await direct.connect()
  t.match(String(await direct.call('CLUSTER', 'INFO')), /cluster_state:ok/, 'and the cluster is ok again')
  direct.disconnect()
})
