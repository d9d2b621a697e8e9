// `switchyard check`'s table: how each backend's servers are connected to.
import { resolve } from 'node:path'
import t from 'tap'
import { parseConfig } from '../../src/config/load.js'
import { routingTable } from '../../src/router/table.js'

t.test('backends show their TLS settings, and a warning when verification is off', async (t) => {
  const table = routingTable(parseConfig(`
listeners: [{ bind: "127.0.0.1:0" }]
backends:
  plain: { servers: [{ url: "http://127.0.0.1:9001" }] }
  secure: { servers: [{ url: "https://10.0.0.1" }] }
  mtls:
    servers: [{ url: "https://api.internal:8443" }]
    tls: { ca: pki/ca.pem, servername: api.internal, cert: pki/client.crt, key: pki/client.key, minVersion: TLSv1.3 }
  skip:
    servers: [{ url: "https://10.0.0.2" }]
    tls: { cert: pki/client.crt, key: pki/client.key, insecureSkipVerify: true }
`, 'conf/switchyard.yaml'))
  const block = (name: string): string => table.slice(table.indexOf(`\n  ${name}  `), table.indexOf('shard default', table.indexOf(`\n  ${name}  `)))
  t.notMatch(block('plain'), /tls/)
  t.match(block('secure'), '\n    tls: verify ca=system trust store, servername=server URL host, TLSv1.2+\n')
  t.match(block('mtls'), `\n    tls: verify ca=${resolve('conf/pki/ca.pem')}, servername=api.internal, client cert=${resolve('conf/pki/client.crt')}, TLSv1.3+\n`)
  t.match(block('skip'), `\n    tls: NOT verified (insecureSkipVerify), servername=server URL host, client cert=${resolve('conf/pki/client.crt')}, TLSv1.2+\n` +
    '    WARNING: tls.insecureSkipVerify is on: server certificates are not verified, anyone on the network path can pose as these servers\n')
  t.equal(table.match(/WARNING/g)?.length, 1, 'only where verification is off')
})

t.test('routes show their rate limit', async (t) => {
  const table = routingTable(parseConfig(`
listeners: [{ bind: "127.0.0.1:0" }]
routes:
  - { name: api, match: { pathPrefix: /api }, backend: app, rateLimit: { average: 100, period: 1m, burst: 20, by: { cookie: sid } } }
  - { name: rest, backend: app }
backends:
  app: { servers: [{ url: "http://127.0.0.1:9001" }] }
`, 'c.yaml'))
  t.match(table, /\n {2}api +host=\* pathPrefix=\/api -> app {2}\[rateLimit: 100 per 1m, burst 20, by cookie sid, store local\]\n/)
  t.match(table, /\n {2}rest +host=\* pathPrefix=\/ -> app\n/)
})

t.test('Redis and the shared cache: where and which keys, never a password or a key', async (t) => {
  const secret = Buffer.alloc(32, 5).toString('base64')
  const config = parseConfig([
    'listeners: [{ bind: "127.0.0.1:0" }]',
    'redis: { url: "redis://:hunter2@10.0.0.5:6380/1", timeout: 100ms }',
    'cache: { shared: { encryptionKeys: [{ id: k2, env: TABLE_KEY }, { id: k1, env: TABLE_KEY }] } }',
    'routes: [{ backend: app }]',
    'backends: { app: { servers: [{ url: "http://127.0.0.1:1" }] } }'
  ].join('\n'), '', { env: { TABLE_KEY: secret } })
  const text = routingTable(config)
  t.match(text, 'Redis\n  redis://10.0.0.5:6380/1  keyPrefix="switchyard:"  timeout=100 ms  auth: password (set, not shown)\n')
  t.match(text, '  shared cache: on, sealed with k2 (env:TABLE_KEY), also opens k1 (env:TABLE_KEY)\n')
  t.notMatch(text, 'hunter2')
  t.notMatch(text, secret)
  t.notMatch(routingTable(parseConfig('listeners: [{ bind: "127.0.0.1:0" }]\n', '')), 'Redis')
})

t.test('routes show the listeners they are bound to', async (t) => {
  const table = routingTable(parseConfig(`
listeners: [{ name: public, bind: "127.0.0.1:0" }, { name: internal, bind: "127.0.0.1:0" }]
routes:
  - { name: ops, match: { pathPrefix: /ops, listeners: [internal] }, backend: app }
  - { name: rest, backend: app }
backends:
  app: { servers: [{ url: "http://127.0.0.1:9001" }] }
`, 'c.yaml'))
  t.match(table, /\n {2}ops +host=\* pathPrefix=\/ops listeners=internal -> app\n/)
  t.match(table, /\n {2}rest +host=\* pathPrefix=\/ -> app\n/, 'unbound routes: every listener, nothing shown')
})

t.test('routes show their access control: lists and user names, never a hash', async (t) => {
  const { hashPassword } = await import('../../src/auth/password.js')
  const hash = hashPassword('pw', { N: 1024 })
  const table = routingTable(parseConfig(`
listeners: [{ bind: "127.0.0.1:0" }]
routes:
  - { name: ops, match: { pathPrefix: /ops }, backend: app, allow: [10.0.0.0/8, "::1"], deny: [10.9.0.0/16],
      basicAuth: { realm: ops, users: [{ name: alice, passwordHash: "${hash}" }, { name: bob, passwordHash: "${hash}" }] } }
  - { name: fwd, match: { pathPrefix: /fwd }, backend: app, basicAuth: { forward: true, users: [{ name: alice, passwordHash: "${hash}" }] } }
  - { name: rest, backend: app }
backends:
  app: { servers: [{ url: "http://127.0.0.1:9001" }] }
`, 'c.yaml'))
  t.match(table, '\n  ops              host=* pathPrefix=/ops -> app  [access: deny 10.9.0.0/16; allow 10.0.0.0/8,::1; ' +
    'basicAuth realm="ops" users=alice,bob (Authorization not forwarded)]\n')
  t.match(table, '[access: basicAuth realm="switchyard" users=alice (Authorization forwarded)]\n')
  t.match(table, /\n {2}rest +host=\* pathPrefix=\/ -> app\n/)
  t.notMatch(table, /scrypt/)
})

t.test('backends show their protocol, and a grpc health check', async (t) => {
  const table = routingTable(parseConfig(`
listeners: [{ bind: "127.0.0.1:0" }]
backends:
  web: { servers: [{ url: "http://127.0.0.1:9001" }] }
  grpc: { protocol: h2c, healthCheck: { type: grpc }, servers: [{ url: "http://127.0.0.1:50051" }] }
  named: { protocol: h2, healthCheck: { type: grpc, service: greeter }, servers: [{ url: "https://10.0.0.1" }] }
`, 'c.yaml'))
  t.match(table, '\n  web  balance=roundRobin  protocol=http1\n')
  t.match(table, '\n  grpc  balance=roundRobin  protocol=h2c  healthCheck=grpc(server)\n')
  t.match(table, '\n  named  balance=roundRobin  protocol=h2  healthCheck=grpc(service "greeter")\n')
})

t.test('listeners show PROXY protocol acceptance; backends and servers what they send', async (t) => {
  const table = routingTable(parseConfig(`
listeners:
  - { name: edge, bind: "127.0.0.1:0", proxyProtocol: { trustedSources: [10.0.0.0/8, "fd00::/8"], timeout: 3s } }
  - { name: plain, bind: "127.0.0.1:0" }
backends:
  both:
    sendProxyProtocol: v2
    servers: [{ name: a, url: "http://127.0.0.1:9001" }, { name: b, url: "http://127.0.0.1:9002", sendProxyProtocol: v1 }]
  none: { servers: [{ url: "http://127.0.0.1:9003" }] }
`, 'conf/switchyard.yaml'))
  t.match(table, /\n {2}edge +http +127\.0\.0\.1:0 {2}\[PROXY protocol v1\/v2 from 10\.0\.0\.0\/8, fd00::\/8, header within 3s; others closed\]\n/)
  t.match(table, /\n {2}plain +http +127\.0\.0\.1:0\n/)
  t.match(table, '\n  both  balance=roundRobin  protocol=http1  sendProxyProtocol=v2 (a connection per client connection)\n' +
    '    shard default: a=http://127.0.0.1:9001, b=http://127.0.0.1:9002 sendProxyProtocol=v1\n')
  t.match(table, '\n  none  balance=roundRobin  protocol=http1\n')
})
