// A backend's `protocol` (http1 | h2 | h2c) and the `grpc` health check type:
// the values, the scheme each one needs, and what a grpc check refuses,
// each error at its YAML path and line.
import t from 'tap'
import { parseConfig } from '../../src/config/load.js'
import { BASE, issuesOf, only } from '../helpers/config.js'

/** BASE (http:// servers) with these backend lines from line 7. */
const plain = (...lines: string[]): string => BASE + lines.map((l) => `    ${l}\n`).join('')
/** The same backend with an https:// server. */
const secure = (...lines: string[]): string => plain(...lines).replace('http://127.0.0.1:9000', 'https://127.0.0.1:9443')

t.test('protocol: default http1; h2c on http://, h2 on https://', async (t) => {
  t.equal(parseConfig(BASE, 'c.yaml').backends.api!.protocol, 'http1')
  t.equal(parseConfig(plain('protocol: h2c'), 'c.yaml').backends.api!.protocol, 'h2c')
  t.equal(parseConfig(secure('protocol: h2'), 'c.yaml').backends.api!.protocol, 'h2')
  t.equal(parseConfig(secure('protocol: http1'), 'c.yaml').backends.api!.protocol, 'http1')
})

t.test('protocol: a value it does not know, or one the scheme cannot carry', async (t) => {
  only(t, plain('protocol: http2'), 'backends.api.protocol', 7, /expected one of http1, h2, h2c/)
  only(t, plain('protocol: h2'), 'backends.api.protocol', 7, /`h2` is HTTP\/2 over TLS .* use `h2c`/)
  only(t, secure('protocol: h2c'), 'backends.api.protocol', 7, /`h2c` is cleartext HTTP\/2 .* use `h2`/)
})

t.test('healthCheck type grpc: service, defaults, and the backend protocol it needs', async (t) => {
  const hc = parseConfig(plain('protocol: h2c', 'healthCheck: { type: grpc, service: greeter, interval: 5s }'), 'c.yaml').backends.api!.healthCheck!
  t.match(hc, { type: 'grpc', service: 'greeter', interval: 5000 })
  t.equal(parseConfig(plain('protocol: h2c', 'healthCheck: { type: grpc }'), 'c.yaml').backends.api!.healthCheck!.service, '')
  t.equal(parseConfig(plain('healthCheck: true'), 'c.yaml').backends.api!.healthCheck!.type, 'http')
  only(t, plain('healthCheck: { type: grpc }'), 'backends.api.healthCheck.type', 7, /needs `protocol: h2` or `h2c`/)
  only(t, plain('healthCheck: { type: tcp }'), 'backends.api.healthCheck.type', 7, /expected one of http, grpc/)
})

t.test('healthCheck type grpc refuses the http probe options, each at its key', async (t) => {
  const issues = issuesOf(plain('protocol: h2c', 'healthCheck:', '  type: grpc', '  path: /healthz', '  expectStatus: 200'))
  t.same(issues.map((i) => [i.path, i.line]), [['backends.api.healthCheck.path', 10], ['backends.api.healthCheck.expectStatus', 11]])
  t.match(issues[0]!.message, /does not apply to `type: grpc`/)
  only(t, plain('healthCheck: { service: x }'), 'backends.api.healthCheck.service', 7, /applies only to `type: grpc`/)
})
