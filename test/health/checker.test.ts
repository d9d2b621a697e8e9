import t from 'tap'
import type { Dispatcher } from 'undici'
import type { HealthCheckConfig } from '../../src/config/schema.js'
import { MAX_BODY_BYTES, USER_AGENT, describeError, startHealthChecks, type HealthChecks, type HealthDeps, type HealthLog } from '../../src/health/checker.js'
import { Server } from '../../src/upstream/server.js'
import { closedPort, startOrigin, type Origin } from '../helpers/origin.js'

import type { Teardown } from '../helpers/certs.js'

/** Probes must use their own client: the data pool throws if touched. */
const dataPool = {
  dispatch () { throw new Error('health probe used the data pool') }
} as unknown as Dispatcher

function makeServer (url: string, name = 's1'): Server {
  return new Server({ name, url, weight: 1, backend: 'api', shard: 'a', dispatcher: dataPool })
}

function cfg (over: Partial<HealthCheckConfig> = {}): HealthCheckConfig {
  return {
    type: 'http',
    service: '',
    path: '/healthz',
    method: 'GET',
    interval: 2000,
    jitter: 0.1,
    timeout: 1000,
    rise: 2,
    fall: 3,
    expectStatus: [[200, 399]],
    ...over
  }
}

interface LogCall { readonly level: 'info' | 'warn', readonly obj: Record<string, unknown>, readonly msg: string }

function captureLog (): HealthLog & { calls: LogCall[] } {
  const calls: LogCall[] = []
  return {
    calls,
    info (obj, msg) { calls.push({ level: 'info', obj: obj as Record<string, unknown>, msg }) },
    warn (obj, msg) { calls.push({ level: 'warn', obj: obj as Record<string, unknown>, msg }) }
  }
}

/** Timers the test fires by hand; nothing runs on its own. */
class ManualTimers {
  readonly pending = new Map<number, { fn: () => void, ms: number }>()
  readonly delays: number[] = []
  #next = 1
  readonly setTimeout = (fn: () => void, ms: number): unknown => {
    const id = this.#next++
    this.pending.set(id, { fn, ms })
    this.delays.push(ms)
    return id
  }

  readonly clearTimeout = (h: unknown): void => { this.pending.delete(h as number) }

  /** Run the oldest pending timer (a session's sleep), then wait until that session sleeps again. */
  async tick (): Promise<void> {
    const first = this.pending.entries().next()
    if (first.done === true) throw new Error('no timer pending')
    const [id, timer] = first.value
    const before = this.pending.size
    this.pending.delete(id)
    timer.fn()
    await waitFor(() => this.pending.size >= before, 'next probe to be scheduled')
  }
}

async function waitFor (cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

function start (t: Teardown, targets: Parameters<typeof startHealthChecks>[0], deps: HealthDeps): HealthChecks {
  const checks = startHealthChecks(targets, deps)
  t.teardown(() => checks.stop())
  return checks
}

/** An origin whose status and body the test changes as it goes. */
async function switchable (t: Teardown, init: { status: number, body?: string }): Promise<Origin & { state: { status: number, body: string } }> {
  const state = { status: init.status, body: init.body ?? 'ok' }
  const origin = await startOrigin(t, (_seen, res) => {
    res.writeHead(state.status, { 'content-type': 'text/plain' })
    res.end(state.body)
  })
  return { ...origin, state }
}

t.test('a healthy server stays up; probes run on their own schedule with the right request', async (t) => {
  const origin = await switchable(t, { status: 200 })
  const server = makeServer(origin.url)
  const timers = new ManualTimers()
  const log = captureLog()
  start(t, [{ server, config: cfg() }], { log, random: () => 0.5, setTimeout: timers.setTimeout, clearTimeout: timers.clearTimeout })
  t.equal(timers.pending.size, 1, 'first probe scheduled, not run at once')
  t.equal(origin.requests.length, 0)
  for (let i = 1; i <= 3; i++) {
    await timers.tick()
    t.equal(origin.requests.length, i, `one probe per sleep (${i})`)
  }
  t.equal(server.checkUp, true)
  t.equal(server.healthy, true)
  t.equal(server.lastCheck?.ok, true)
  t.equal(server.lastCheck?.status, 200)
  t.equal(server.lastCheck?.reason, 'ok')
  const seen = origin.requests[0]
  t.equal(seen?.method, 'GET')
  t.equal(seen?.url, '/healthz')
  t.equal(seen?.headers.host, server.hostHeader)
  t.equal(seen?.headers['user-agent'], USER_AGENT)
  t.same(log.calls, [], 'nothing to log while nothing changes')
})

t.test('goes down after exactly `fall` failures and up after exactly `rise` successes, logging each change once', async (t) => {
  const origin = await switchable(t, { status: 200 })
  const server = makeServer(origin.url)
  const changes: Array<[boolean, string]> = []
  server.onHealthChange = (_s, healthy, reason) => { changes.push([healthy, reason]) }
  const timers = new ManualTimers()
  const log = captureLog()
  const checks = start(t, [{ server, config: cfg({ rise: 2, fall: 3 }) }], { log, setTimeout: timers.setTimeout, clearTimeout: timers.clearTimeout })

  origin.state.status = 503
  let r = await checks.checkNow(server)
  t.same({ ok: r.ok, status: r.status, reason: r.reason }, { ok: false, status: 503, reason: 'status 503 not in 200-399' })
  await checks.checkNow(server)
  t.equal(server.checkUp, true, 'still up after fall - 1 failures')
  await checks.checkNow(server)
  t.equal(origin.requests.length, 3, 'three probes reached the origin')
  t.equal(server.checkUp, false, 'down after exactly fall failures')
  t.equal(server.healthy, false)
  t.same(changes, [[false, 'status 503 not in 200-399']])
  await checks.checkNow(server)
  await checks.checkNow(server)
  t.equal(log.calls.length, 1, 'more failures while down are not logged again')
  t.same(log.calls[0], {
    level: 'warn',
    msg: 'health check: server down',
    obj: { backend: 'api', shard: 'a', server: 's1', reason: 'status 503 not in 200-399', consecutive: 3 }
  })

  origin.state.status = 200
  r = await checks.checkNow(server)
  t.equal(r.ok, true)
  t.equal(server.checkUp, false, 'still down after rise - 1 successes')
  // A failure breaks the success streak: rise starts again.
  origin.state.status = 500
  await checks.checkNow(server)
  origin.state.status = 204
  await checks.checkNow(server)
  t.equal(server.checkUp, false, 'the streak was reset by the failure')
  await checks.checkNow(server)
  t.equal(server.checkUp, true, 'up after rise consecutive successes')
  t.equal(server.healthy, true)
  t.equal(changes.length, 2)
  t.equal(changes[1]?.[0], true)
  t.equal(log.calls.length, 2)
  t.same(log.calls[1], {
    level: 'info',
    msg: 'health check: server up',
    obj: { backend: 'api', shard: 'a', server: 's1', reason: 'ok', consecutive: 2 }
  })

  // While up, a success between failures resets the failure streak.
  origin.state.status = 503
  await checks.checkNow(server)
  await checks.checkNow(server)
  origin.state.status = 200
  await checks.checkNow(server)
  origin.state.status = 503
  await checks.checkNow(server)
  await checks.checkNow(server)
  t.equal(server.checkUp, true, 'two failures, a success, two failures: never fall in a row')
  t.equal(log.calls.length, 2)
  t.equal(server.lastCheck?.ok, false, 'lastCheck follows every probe')
})

t.test('several expected status ranges', async (t) => {
  const origin = await switchable(t, { status: 204 })
  const server = makeServer(origin.url)
  const timers = new ManualTimers()
  const checks = start(t, [{ server, config: cfg({ expectStatus: [[200, 200], [204, 204]] }) }], timers)
  t.equal((await checks.checkNow(server)).ok, true)
  origin.state.status = 301
  t.equal((await checks.checkNow(server)).reason, 'status 301 not in 200,204')
})

t.test('an origin that never answers fails with a timeout', async (t) => {
  const origin = await startOrigin(t, () => { /* never answers */ })
  const server = makeServer(origin.url)
  const timers = new ManualTimers()
  const checks = start(t, [{ server, config: cfg({ timeout: 100, fall: 1 }) }], timers)
  const r = await checks.checkNow(server)
  t.equal(r.ok, false)
  t.equal(r.reason, 'timeout after 100ms')
  t.equal(r.status, undefined)
  t.equal(server.checkUp, false)
  t.equal(origin.requests.length, 1)
})

t.test('a body that stalls after the headers also times out', async (t) => {
  const origin = await startOrigin(t, (_seen, res) => { res.writeHead(200, { 'content-length': '10' }); res.write('ok') })
  const server = makeServer(origin.url)
  const timers = new ManualTimers()
  const checks = start(t, [{ server, config: cfg({ timeout: 100, expectBody: 'done' }) }], timers)
  const r = await checks.checkNow(server)
  t.equal(r.reason, 'timeout after 100ms')
  t.equal(r.status, 200)
})

t.test('connection refused', async (t) => {
  const port = await closedPort()
  const server = makeServer(`http://127.0.0.1:${port}`)
  const timers = new ManualTimers()
  const log = captureLog()
  const checks = start(t, [{ server, config: cfg({ fall: 2 }) }], { ...timers, log })
  t.equal((await checks.checkNow(server)).reason, 'connect refused')
  t.equal(server.checkUp, true)
  await checks.checkNow(server)
  t.equal(server.checkUp, false)
  t.equal(log.calls[0]?.obj.reason, 'connect refused')
  t.equal(log.calls[0]?.obj.consecutive, 2)
})

t.test('expectBody: substring of the first 64 KiB', async (t) => {
  const origin = await switchable(t, { status: 200, body: '{"status":"ok"}' })
  const server = makeServer(origin.url)
  const timers = new ManualTimers()
  const wantOk = start(t, [{ server, config: cfg({ expectBody: '"ok"' }) }], timers)
  t.equal((await wantOk.checkNow(server)).ok, true)
  origin.state.body = '{"status":"degraded"}'
  const r = await wantOk.checkNow(server)
  t.same({ ok: r.ok, status: r.status, reason: r.reason }, { ok: false, status: 200, reason: 'body missing "\\"ok\\""' })

  const other = makeServer(origin.url, 's2')
  const checks = start(t, [{ server: other, config: cfg({ expectBody: 'ok' }) }], new ManualTimers())
  origin.state.body = 'x'.repeat(MAX_BODY_BYTES - 10) + 'ok'
  t.equal((await checks.checkNow(other)).ok, true, 'found near the end of the window')
  origin.state.body = 'x'.repeat(MAX_BODY_BYTES) + 'ok'
  t.equal((await checks.checkNow(other)).reason, 'body missing "ok"', 'not looked for beyond the window')
  origin.state.body = 'x'.repeat(4 * MAX_BODY_BYTES)
  t.equal((await checks.checkNow(other)).ok, false, 'a large body is cut off, not read to the end')
  origin.state.body = 'ok'
  t.equal((await checks.checkNow(other)).ok, true, 'the next probe works after a cut-off body')
})

t.test('HEAD probes and a configured Host header', async (t) => {
  const origin = await switchable(t, { status: 200 })
  const server = makeServer(origin.url)
  const timers = new ManualTimers()
  const checks = start(t, [{ server, config: cfg({ method: 'HEAD', path: '/status?full=0', host: 'health.internal' }) }], timers)
  const r = await checks.checkNow(server)
  t.equal(r.ok, true)
  const seen = origin.requests[0]
  t.equal(seen?.method, 'HEAD')
  t.equal(seen?.url, '/status?full=0')
  t.equal(seen?.headers.host, 'health.internal')
  t.equal(seen?.headers['user-agent'], USER_AGENT)
})

t.test('start spread and jitter stay within their bounds', async (t) => {
  const origin = await switchable(t, { status: 200 })
  const servers = [makeServer(origin.url, 's1'), makeServer(origin.url, 's2')]
  const timers = new ManualTimers()
  const values = [0, 0.999999, 0.999999, 0, 0.5]
  let i = 0
  const random = (): number => values[i++ % values.length] ?? 0
  const config = cfg({ interval: 1000, jitter: 0.2 })
  start(t, servers.map((server) => ({ server, config })), { random, setTimeout: timers.setTimeout, clearTimeout: timers.clearTimeout })
  t.same(timers.delays, [0, 999.999], 'first probes spread over one interval')
  // Fire one server's sleep at a time; each reschedules with interval + random × jitter × interval.
  await timers.tick()
  await timers.tick()
  await timers.tick()
  const later = timers.delays.slice(2)
  t.equal(later.length, 3)
  for (const d of later) t.ok(d >= 1000 && d < 1200, `${d} in [interval, interval × (1 + jitter))`)
  t.same(later, [1000 + 0.999999 * 200, 1000, 1100])
})

t.test('stop() cancels the sleep, aborts a probe in flight, closes the client; nothing runs after', async (t) => {
  const origin = await startOrigin(t, () => { /* never answers */ })
  const server = makeServer(origin.url)
  const timers = new ManualTimers()
  const checks = startHealthChecks([{ server, config: cfg({ timeout: 60_000, fall: 1 }) }], timers)
  t.teardown(() => checks.stop())
  const first = timers.pending.values().next().value
  if (first === undefined) throw new Error('no first probe scheduled')
  timers.pending.clear()
  first.fn()
  await waitFor(() => origin.requests.length === 1, 'the probe to reach the origin')
  await checks.stop()
  t.equal(timers.pending.size, 0, 'no sleep scheduled after stop')
  t.equal(server.checkUp, true, 'the aborted probe is not counted as a failure')
  t.equal(server.lastCheck, undefined)
  await t.rejects(checks.checkNow(server), /stopped/)
  await checks.stop() // idempotent
})

t.test('with real timers, stop() leaves no probe running', async (t) => {
  const origin = await switchable(t, { status: 200 })
  const server = makeServer(origin.url)
  const checks = startHealthChecks([{ server, config: cfg({ interval: 10, jitter: 0.5 }) }])
  let stopped = false
  t.teardown(async () => { if (!stopped) await checks.stop() })
  await waitFor(() => origin.requests.length >= 3, 'three probes on the real schedule')
  await checks.stop()
  stopped = true
  const count = origin.requests.length
  await new Promise((resolve) => setTimeout(resolve, 50))
  t.equal(origin.requests.length, count, 'no probe after stop')
  t.equal(server.checkUp, true)
})

t.test('checkNow joins the probe in flight and refuses unknown servers', async (t) => {
  const origin = await switchable(t, { status: 200 })
  const server = makeServer(origin.url)
  const checks = start(t, [{ server, config: cfg() }], new ManualTimers())
  const [a, b] = await Promise.all([checks.checkNow(server), checks.checkNow(server)])
  t.equal(a, b)
  t.equal(origin.requests.length, 1)
  await t.rejects(checks.checkNow(makeServer(origin.url, 'other')), /no health check for server api\/other/)
})

t.test('a throwing health listener does not stop the probe loop', async (t) => {
  const origin = await switchable(t, { status: 500 })
  const server = makeServer(origin.url)
  server.onHealthChange = () => { throw new Error('listener bug') }
  const timers = new ManualTimers()
  const log = captureLog()
  start(t, [{ server, config: cfg({ fall: 1 }) }], { log, setTimeout: timers.setTimeout, clearTimeout: timers.clearTimeout })
  await timers.tick()
  t.equal(server.checkUp, false)
  t.match(log.calls, [{ level: 'warn', msg: 'health check: listener failed' }])
  await timers.tick()
  t.equal(origin.requests.length, 2, 'still probing')
})

t.test('describeError gives short reasons', async (t) => {
  const withCode = (code: string): Error => Object.assign(new Error('x'), { code })
  t.equal(describeError(withCode('ECONNREFUSED'), 1000), 'connect refused')
  t.equal(describeError(new AggregateError([withCode('ECONNREFUSED'), withCode('ECONNREFUSED')]), 1000), 'connect refused')
  t.equal(describeError(withCode('UND_ERR_SOCKET'), 1000), 'connection reset')
  t.equal(describeError(withCode('UND_ERR_CONNECT_TIMEOUT'), 250), 'connect timeout after 250ms')
  t.equal(describeError(withCode('UND_ERR_HEADERS_TIMEOUT'), 250), 'timeout after 250ms')
  t.equal(describeError(withCode('ENOTFOUND'), 1000), 'dns lookup failed')
  t.equal(describeError(withCode('ERR_TLS_CERT_ALTNAME_INVALID'), 1000), 'tls error ERR_TLS_CERT_ALTNAME_INVALID')
  t.equal(describeError(withCode('EWHATEVER'), 1000), 'error EWHATEVER')
})
