// The `redis` block and `cache.shared`: what is accepted, what is refused
// (with the YAML path and line), and the encryption keys read at load, never
// shown.
import t from 'tap'
import { parseConfig } from '../../src/config/load.js'
import { ConfigError } from '../../src/errors.js'

const BASE = 'listeners: [{ bind: "127.0.0.1:0" }]\nroutes: [{ backend: app }]\nbackends: { app: { servers: [{ url: "http://127.0.0.1:1" }] } }\n'
const KEY_HEX = 'ab'.repeat(32)
const KEY_B64 = Buffer.alloc(32, 7).toString('base64')
const ENV = { KEY_HEX, KEY_B64, SHORT: 'c2hvcnQ=' }

function issues (yaml: string, env: Record<string, string> = ENV): string[] {
  try {
    parseConfig(BASE + yaml, 'x.yaml', { env })
    return []
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    return err.issues.map((i) => `${i.line}:${i.column} ${i.path}: ${i.message}`)
  }
}

t.test('a single server, with defaults filled in', async (t) => {
  const c = parseConfig(BASE + 'redis: { url: "rediss://:pw@cache.internal:6380/2" }\n', '', {})
  t.same(c.redis, {
    url: 'rediss://:pw@cache.internal:6380/2', tls: {}, keyPrefix: 'switchyard:', timeout: 250, connectTimeout: 2000, maxReconnectDelay: 5000
  }, 'rediss:// turns TLS on with the default trust store')
  t.ok(Object.isFrozen(c.redis))
})

t.test('sentinel and cluster name their nodes', async (t) => {
  const s = parseConfig(BASE + 'redis: { sentinel: { masterName: main, nodes: ["a.internal:26379", "[fd00::1]:26379"] }, password: pw, keyPrefix: "" }\n', '')
  t.same(s.redis?.sentinel, { masterName: 'main', nodes: [{ host: 'a.internal', port: 26379 }, { host: 'fd00::1', port: 26379 }] })
  t.equal(s.redis?.keyPrefix, '', 'an empty prefix is allowed')
  const c = parseConfig(BASE + 'redis: { cluster: { nodes: ["10.0.0.7:7000"] } }\n', '')
  t.same(c.redis?.cluster, { nodes: [{ host: '10.0.0.7', port: 7000 }] })
})

t.test('mistakes in the redis block, each at its line', async (t) => {
  t.same(issues('redis: {}\n'), ['4:8 redis.url: set `url` (one server), `sentinel` or `cluster`: where is Redis?'])
  t.same(issues('redis: { url: "http://x:1" }\n'), [
    '4:15 redis.url: expected a URL like redis://127.0.0.1:6379, redis://:password@host:6379/0 or rediss://host:6380 (TLS), got "http://x:1"'
  ])
  t.same(issues('redis: { url: "redis://x/db" }\n'), ['4:15 redis.url: the URL\'s path is the database number (/0 to /15), not `/db`'])
  t.same(issues('redis: { url: "redis://x", cluster: { nodes: ["a:1", "nope", "b:99999"] }, timeout: 0 }\n'), [
    '4:15 redis.url: with `sentinel` or `cluster`, the nodes come from there: leave `url` out (credentials go in `username`/`password`, TLS in `tls`)',
    '4:54 redis.cluster.nodes[1]: expected host:port, like 10.0.0.5:26379 or [fd00::5]:6379, got "nope"',
    '4:62 redis.cluster.nodes[2]: expected host:port, like 10.0.0.5:26379 or [fd00::5]:6379, got "b:99999"',
    '4:85 redis.timeout: expected a duration greater than 0, got 0'
  ])
  t.same(issues('redis: { sentinel: { nodes: [] }, cluster: { nodes: ["a:1"] } }\n'), [
    '4:20 redis.sentinel.masterName: the master\'s name as the sentinels know it (`sentinel monitor <name> …`) is required',
    '4:29 redis.sentinel.nodes: at least one node (host:port, like 10.0.0.5:26379 or [fd00::5]:6379) is required',
    '4:44 redis.cluster: `sentinel` and `cluster` are two ways of running Redis: set one of them'
  ])
  t.same(issues('redis: { url: "redis://x", tls: { cert: a.pem, servername: 10.0.0.1 } }\n'), [
    '4:33 redis.tls: `cert` (the client certificate) and `key` (its private key) go together: set both or neither',
    '4:60 redis.tls.servername: expected a DNS name like redis.internal (SNI is never an IP address), got "10.0.0.1"'
  ])
})

t.test('cache.shared: keys read from the environment or a file, in base64 or hex', async (t) => {
  const dir = t.testdir({ 'old.key': `${KEY_B64}\n` })
  const c = parseConfig(BASE + 'redis: { url: "redis://127.0.0.1:6379" }\n' +
    'cache: { shared: { encryptionKeys: [{ id: new, env: KEY_HEX }, { id: old, file: old.key }] } }\n', `${dir}/config.yaml`, { env: ENV })
  t.same(c.cache?.shared, {
    enabled: true,
    encryptionKeys: [
      { id: 'new', from: 'env:KEY_HEX', secret: Buffer.from(KEY_HEX, 'hex').toString('base64') },
      { id: 'old', from: `file:${dir}/old.key`, secret: KEY_B64 }
    ]
  })
})

t.test('cache.shared refuses to run without Redis or without a usable key, and never prints a key', async (t) => {
  t.same(issues('cache: { shared: { encryptionKeys: [{ id: k, env: KEY_HEX }] } }\n'), [
    '4:18 cache.shared: the shared cache lives in Redis: add the top-level `redis` block (e.g. `redis: { url: redis://127.0.0.1:6379 }`)'
  ])
  const redis = 'redis: { url: "redis://127.0.0.1:6379" }\n'
  t.same(issues(redis + 'cache: { shared: true }\n'), [
    '5:18 cache.shared: the shared cache needs `encryptionKeys`: write `shared: { enabled: true, encryptionKeys: [{ id: k1, env: NAME }] }`'
  ])
  t.same(issues(redis + 'cache: { shared: { enabled: true } }\n'), [
    '5:18 cache.shared.encryptionKeys: values in Redis are always encrypted: give at least one key (32 random bytes, e.g. `openssl rand -base64 32`) ' +
    'as `encryptionKeys: [{ id: k1, env: NAME }]` or `{ id: k1, file: PATH }`'
  ])
  const bad = issues(redis + 'cache: { shared: { encryptionKeys: [{ id: a, env: SHORT }, { id: a, env: UNSET }, { env: KEY_HEX }, { id: "b c", file: x, env: Y }] } }\n')
  t.same(bad, [
    '5:51 cache.shared.encryptionKeys[0]: environment variable `SHORT` must hold 32 random bytes in base64 or hex (`openssl rand -base64 32`)',
    '5:60 cache.shared.encryptionKeys[1]: duplicate key id `a` (already used by cache.shared.encryptionKeys[0])',
    '5:74 cache.shared.encryptionKeys[1]: environment variable `UNSET` is not set',
    '5:83 cache.shared.encryptionKeys[2].id: a key needs an `id` (stored with each value it seals, so rotation knows which key opens it)',
    '5:101 cache.shared.encryptionKeys[3]: say where the key is with exactly one of `env: NAME` (an environment variable) or `file: PATH`',
    '5:107 cache.shared.encryptionKeys[3].id: expected an id of 1 to 32 letters, digits, `_`, `.` or `-`, got "b c"'
  ])
  t.notMatch(bad.join('\n'), 'c2hvcnQ', 'a malformed key is not shown either')
  t.same(issues(redis + 'cache: { shared: { enabled: false, encryptionKeys: [{ id: a, env: UNSET }] } }\n'), [],
    'a disabled shared cache reads no key')
})
