// The grpc health check type: the hand-encoded grpc.health.v1 messages
// (against @grpc/proto-loader's own encoding), and real probes to a real
// @grpc/grpc-js server over h2c and h2 (TLS): SERVING is up, NOT_SERVING, an
// unknown service, an error status and no server at all are down. Probes are
// started by hand (checkNow), so nothing here depends on timing.
import { writeFileSync } from 'node:fs'
import http2 from 'node:http2'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import * as protoLoader from '@grpc/proto-loader'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import type { Dispatcher } from 'undici'
import type { HealthCheckConfig, UpstreamProtocol } from '../../src/config/schema.js'
import { startHealthChecks, type HealthChecks } from '../../src/health/checker.js'
import { healthCheckRequest, servingStatus } from '../../src/health/grpc-health.js'
import { Server } from '../../src/upstream/server.js'
import { upstreamTls } from '../../src/upstream/tls.js'
import { tempDir } from '../helpers/certs.js'
import { startGrpcOrigin } from '../helpers/grpc-origin.js'
import { closedPort } from '../helpers/origin.js'
import { testPki } from '../helpers/pki.js'

const proto = protoLoader.loadSync(fileURLToPath(new URL('../fixtures/grpc/health.proto', import.meta.url)), { keepCase: true, enums: String, defaults: true })
const check = proto['grpc.health.v1.Health'] as Record<string, protoLoader.MethodDefinition<object, object>>
const method = check.Check!

t.test('the request frame is what a protobuf library reads (and, but for the empty default, writes)', async (t) => {
  for (const service of ['', 'greeter', 'x'.repeat(200)]) {
    const frame = healthCheckRequest(service)
    t.equal(frame[0], 0, 'not compressed')
    t.equal(frame.readUInt32BE(1), frame.length - 5)
    t.same(method.requestDeserialize(frame.subarray(5)), { service }, `service ${JSON.stringify(service.slice(0, 10))}`)
    if (service !== '') t.same(frame.subarray(5), method.requestSerialize({ service }))
  }
  t.equal(healthCheckRequest('').length, 5, 'the empty default is left out, as proto3 does')
})

t.test('the response status is read as a protobuf library wrote it', async (t) => {
  const frame = (m: Buffer): Buffer => Buffer.concat([Buffer.from([0, 0, 0, 0, m.length]), m])
  for (const [status, n] of [['UNKNOWN', 0], ['SERVING', 1], ['NOT_SERVING', 2], ['SERVICE_UNKNOWN', 3]] as const) {
    t.equal(servingStatus(frame(method.responseSerialize({ status }))), n, status)
  }
  t.equal(servingStatus(frame(Buffer.from([0x12, 0x01, 0x41, 0x08, 0x01, 0x1d, 0, 0, 0, 0]))), 1, 'unknown fields of each wire type skipped')
  t.equal(servingStatus(Buffer.alloc(0)), 'no response message')
  t.equal(servingStatus(Buffer.from([1, 0, 0, 0, 0])), 'compressed response message')
  t.equal(servingStatus(Buffer.from([0, 0, 0, 0, 9, 8])), 'truncated response message')
  t.equal(servingStatus(frame(Buffer.from([0x08]))), 'malformed response message', 'a varint cut short')
  t.equal(servingStatus(frame(Buffer.from([0x12, 0x05, 0x41]))), 'malformed response message', 'a length past the end')
})

const config = (over: Partial<HealthCheckConfig> = {}): HealthCheckConfig => ({
  type: 'grpc', service: '', path: '/healthz', method: 'GET', interval: 60_000, jitter: 0, timeout: 2000, rise: 1, fall: 1,
  expectStatus: [[200, 399]], ...over
})

const noPool = { dispatch () { throw new Error('the data pool is not for probes') } } as unknown as Dispatcher

function probe (t: Test, url: string, protocol: UpstreamProtocol, over: Partial<HealthCheckConfig> = {}, tlsCa?: string): { server: Server, checks: HealthChecks } {
  const server = new Server({ name: 's1', url, weight: 1, backend: 'grpc', shard: 'default', dispatcher: noPool })
  const tls = tlsCa === undefined ? undefined : upstreamTls({ ca: tlsCa, minVersion: 'TLSv1.2', insecureSkipVerify: false })
  const checks = startHealthChecks([{ server, config: config(over), protocol, ...(tls === undefined ? {} : { tls }) }], { random: () => 0.999 })
  t.teardown(() => checks.stop())
  return { server, checks }
}

for (const protocol of ['h2c', 'h2'] as const) {
  t.test(`probes over ${protocol}: SERVING up, anything else down`, async (t) => {
    const pki = testPki()
    const origin = await startGrpcOrigin(t, protocol === 'h2' ? pki.server : undefined)
    let ca: string | undefined
    if (protocol === 'h2') {
      ca = join(tempDir(t), 'ca.pem')
      writeFileSync(ca, pki.ca.certPem)
    }
    const { server, checks } = probe(t, origin.url, protocol, {}, ca)
    t.match(await checks.checkNow(server), { ok: true, status: 200, reason: 'ok' })
    t.equal(server.healthy, true)

    origin.health.set('', 'NOT_SERVING')
    t.match(await checks.checkNow(server), { ok: false, reason: 'NOT_SERVING' })
    t.equal(server.healthy, false, 'NOT_SERVING takes the server down')

    origin.health.set('', 'SERVING')
    t.match(await checks.checkNow(server), { ok: true })
    t.equal(server.healthy, true, 'and SERVING brings it back')

    const named = probe(t, origin.url, protocol, { service: 'greeter' }, ca)
    t.match(await named.checks.checkNow(named.server), { ok: false, reason: /^grpc-status 5 \(unknown service\)$/ },
      'a service the server does not know: its NOT_FOUND status (a Trailers-Only answer)')
    origin.health.set('greeter', 'SERVING')
    t.match(await named.checks.checkNow(named.server), { ok: true }, 'the service asked about is the one judged')
    t.ok(origin.healthChecks >= 5)
  })
}

t.test('no server, or an HTTP server that is not gRPC: down', async (t) => {
  const { server, checks } = probe(t, `http://127.0.0.1:${await closedPort()}`, 'h2c')
  t.match(await checks.checkNow(server), { ok: false, reason: 'connect refused' })
})

t.test('an http check on an h2c backend probes over h2c too', async (t) => {
  const server = http2.createServer()
  const seen: string[] = []
  server.on('stream', (stream, headers) => {
    seen.push(`${String(headers[':method'])} ${String(headers[':path'])}`)
    stream.respond({ ':status': headers[':path'] === '/healthz' ? 200 : 503 })
    stream.end('ok')
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => { server.close(() => resolve()) }))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const up = probe(t, url, 'h2c', { type: 'http' })
  t.match(await up.checks.checkNow(up.server), { ok: true, status: 200 })
  const down = probe(t, url, 'h2c', { type: 'http', path: '/other' })
  t.match(await down.checks.checkNow(down.server), { ok: false, status: 503, reason: 'status 503 not in 200-399' })
  t.same(seen, ['GET /healthz', 'GET /other'], 'a cleartext h2 server only answers h2c (prior knowledge)')
})

t.test('what a gRPC server sends back is shown short and clean: a status that is no code, a hostile message', async (t) => {
  // A raw h2c server answering the check Trailers-Only with the fields under test.
  let answer: Record<string, string> = {}
  const server = http2.createServer()
  server.on('stream', (stream) => {
    stream.on('data', () => {})
    stream.respond({ ':status': 200, 'content-type': 'application/grpc', ...answer }, { endStream: true })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => { server.close(() => resolve()) }))
  const { server: s, checks } = probe(t, `http://127.0.0.1:${(server.address() as AddressInfo).port}`, 'h2c')

  answer = { 'grpc-status': '7' + 'x'.repeat(20_000) }
  t.match(await checks.checkNow(s), { ok: false, reason: 'grpc-status not a decimal code' }, 'not copied into /status and the log')
  answer = { 'grpc-status': '14', 'grpc-message': '%1B%5B2J%E2%80%AEevil%07' + '%41'.repeat(200) }
  const r = await checks.checkNow(s)
  t.equal(r.ok, false)
  t.equal(r.reason, `grpc-status 14 (\ufffd[2J\ufffdevil\ufffd${'A'.repeat(80 - 10)})`, 'control and bidi-override characters replaced, 80 characters at most')
})
