// `switchyard explain`: a formatter over the proxy's own plan() on the
// proxy's own state. These check that what it prints is what the proxy
// decides (router, shard selector, balancers, header policy, cache key),
// including against a running proxy's real admin API, and the CLI's exit codes.
import { spawn } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { parseConfig } from '../src/config/load.js'
import type { Config } from '../src/config/schema.js'
import {
  explain, explainWithAdmin, ExplainInputError, formatExplanation, liveFromStatus, parseExplainRequest,
  type Explanation, type LiveServer
} from '../src/explain.js'
import { RequestView } from '../src/proxy/plan.js'
import { buildState } from '../src/proxy/state.js'
import { requestField } from '../src/fields.js'
import { sendNothing } from '../src/upstream/pool.js'
import { tempDir, testCertificate } from './helpers/certs.js'
import { echo, startOrigin } from './helpers/origin.js'
import { startProxy } from './helpers/proxy.js'
import { nodeArgs } from './helpers/entry.js'
import { reapOnExit } from './helpers/reap.js'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const cfg = (yaml: string): Config => parseConfig(`listeners: [{ name: web, bind: "127.0.0.1:8080" }]\n${yaml}`, '')
const run = (config: Config, line: string, headers: string[] = [], client?: string, live?: Map<string, LiveServer>): Explanation =>
  explain(config, parseExplainRequest(line, headers, client), live === undefined ? {} : { live, liveSource: 'test' })
const verdicts = (e: Explanation): string[] => e.routes.map((r) => `${r.verdict === 'match' ? '✓' : r.verdict === 'miss' ? '✗' : '·'}${r.name}`)
const reasons = (e: Explanation, name: string): readonly string[] => e.routes.find((r) => r.name === name)!.reasons
const up = (active = 0): LiveServer => ({ healthy: true, checkUp: true, ejected: false, active })
const down = (over: Partial<LiveServer> = {}): LiveServer => ({ healthy: false, checkUp: false, ejected: false, active: 0, ...over })

const ONE = 'backends: { app: { servers: [{ url: "http://127.0.0.1:9001" }] } }'

t.test('routes: host classes in precedence order, with the reason each one missed, as the router says', async (t) => {
  const config = cfg(`
routes:
  - { name: any, backend: app }
  - { name: wild, match: { host: "*.example.com" }, backend: app }
  - { name: exact, match: { host: api.example.com, pathPrefix: /v1/ }, backend: app }
${ONE}`)
  let e = run(config, 'GET http://api.example.com/other')
  t.same(verdicts(e), ['✗exact', '✓wild', '·any'], 'the exact class has no match: falls through to the wildcard')
  t.same(reasons(e, 'exact'), ['path /other does not start with /v1/'])
  t.equal(e.route, 'wild')

  e = run(config, 'GET https://a.b.example.com:8443/')
  t.same(verdicts(e), ['✗exact', '✗wild', '✓any'])
  t.same(reasons(e, 'exact'), ['host a.b.example.com is not api.example.com'])
  t.match(reasons(e, 'wild')[0], /one label \+ \.example\.com/)
  t.equal(e.request.host, 'a.b.example.com', 'port dropped, as routing sees it')

  e = run(config, 'GET http://API.example.com./v1/x')
  t.equal(e.route, 'exact', 'host compared case-insensitively and without the trailing dot')

  // The account is the router's: it names what match() returns for every request.
  const router = buildState(config, { dispatcher: sendNothing }).router
  for (const [host, p] of [['api.example.com', '/v1/a'], ['api.example.com', '/x'], ['x.example.com', '/'], ['other', '/v1/']] as const) {
    const view = new RequestView(host, p, p, 'GET', ['host', host], 'web')
    t.equal(router.explain(view).route, router.match(view), `${host}${p}`)
  }
})

t.test('routes: prefix, method and header mismatches; no route is the 404 the proxy sends', async (t) => {
  const config = cfg(`
routes:
  - { name: writes, match: { pathPrefix: /api/, methods: [POST, PUT], headers: { x-env: prod, x-team: a } }, backend: app }
  - { name: docs, match: { pathPrefix: /docs }, backend: app }
${ONE}`)
  const e = run(config, 'GET http://x.test/api/users', ['x-env: dev'])
  t.equal(e.route, null)
  t.same(verdicts(e), ['✗writes', '✗docs'])
  t.same(reasons(e, 'writes'), [
    'method GET is not in POST, PUT',
    'header x-env is "dev", not "prod"',
    'header x-team is missing, wants "a"'
  ])
  t.same(reasons(e, 'docs'), ['path /api/users does not start with /docs'])
  t.same(e.result, { status: 404, code: 'LB_ERR_NO_ROUTE', summary: 'no route matches this request', detail: null })
  t.equal(e.shard, null)
  const text = formatExplanation(e)
  t.match(text, /✗ 404 LB_ERR_NO_ROUTE/)
  t.match(text, /method GET is not in POST, PUT/)
})

t.test('routes bound to listeners: the listener is the one the URL reaches (scheme and port), as the proxy routes it', async (t) => {
  const config = parseConfig(`listeners: [{ name: public, bind: "127.0.0.1:8080" }, { name: internal, bind: "127.0.0.1:9090" }]
routes:
  - { name: ops, match: { pathPrefix: /ops/, listeners: [internal] }, backend: app }
  - { name: site, match: { pathPrefix: /site/ }, backend: app }
${ONE}`, '')
  let e = run(config, 'GET http://x.test:9090/ops/a')
  t.equal(e.request.listener, 'internal')
  t.equal(e.route, 'ops')
  t.same(e.routes.find((r) => r.name === 'ops')?.listeners, ['internal'])
  t.match(formatExplanation(e), /✓ +ops +\* +\/ops\/ +listeners=internal +→ app/)
  e = run(config, 'GET http://x.test:8080/ops/a')
  t.equal(e.request.listener, 'public')
  t.equal(e.route, null)
  t.same(reasons(e, 'ops'), ['listener public is not in internal'])
  t.same(e.result, { status: 404, code: 'LB_ERR_NO_ROUTE', summary: 'no route matches this request', detail: null })
  t.match(formatExplanation(e), /listener public is not in internal/)
})

t.test('refused before routing: the plan\'s 400 (bad input) and 421 (another certificate\'s host)', async (t) => {
  const bad = run(cfg(`pathNormalization: { escapedSlashes: reject }\nroutes: [{ name: r, backend: app }]\n${ONE}`), 'GET http://x.test/a%2Fb')
  t.same([bad.result.status, bad.result.code, bad.result.detail], [400, 'LB_ERR_BAD_REQUEST', 'escaped slash in the path'])
  t.equal(bad.request.host, null)
  t.same(bad.routes.map((r) => r.verdict), ['unreached'])
  t.match(formatExplanation(bad), /not reached: the proxy answers 400 first/)

  const a = testCertificate(t, ['a.test'])
  const b = testCertificate(t, ['b.test'])
  const tls = parseConfig(`
listeners:
  - name: tls
    bind: 127.0.0.1:8443
    tls: { certificates: [{ cert: ${a.certPath}, key: ${a.keyPath} }, { cert: ${b.certPath}, key: ${b.keyPath} }] }
routes: [{ name: r, backend: app }]
${ONE}`, '')
  const misdirected = run(tls, 'GET https://a.test:8443/', ['host: b.test:8443'])
  t.same([misdirected.result.status, misdirected.result.code], [421, 'LB_ERR_MISDIRECTED_REQUEST'], 'the TLS name is a.test, Host b.test')
  t.equal(misdirected.request.listener, 'tls')
  t.equal(misdirected.route, null)
  t.equal(run(tls, 'GET https://b.test:8443/').route, 'r', 'Host and TLS name agree')
})

const SHARDED = `
routes: [{ name: users, backend: users }]
backends:
  users:
    shardBy: { header: x-user-id, missing: MISSING }
    shards:
      - { name: a, servers: [{ url: "http://10.0.0.1:9000" }] }
      - { name: b, servers: [{ url: "http://10.0.1.1:9000" }] }
      - { name: c, servers: [{ url: "http://10.0.2.1:9000" }] }
`

t.test('shards: the plan\'s key and shard, as the proxy\'s selector chooses', async (t) => {
  const config = cfg(SHARDED.replace('MISSING', 'any'))
  const selector = buildState(config, { dispatcher: sendNothing }).backends.get('users')!.selector
  const seen = new Set<string>()
  for (const user of ['alice', 'bob', 'carol', 'dave', 'erin', 'frank']) {
    const e = run(config, 'GET http://x.test/', [`x-user-id: ${user}`])
    const s = e.shard!
    t.equal(s.shardBy, 'header x-user-id')
    t.equal(s.key, user)
    t.equal(s.how, 'rendezvous')
    t.equal(s.chosen, selector.select(user).name, `${user}: the same shard as the proxy's selector`)
    t.equal(e.replicas!.shard, s.chosen)
    seen.add(s.chosen!)
  }
  t.ok(seen.size > 1, 'keys spread over the shards')
  const e = run(config, 'GET http://x.test/')
  t.equal(e.shard!.how, 'round-robin')
  t.equal(e.shard!.key, null)
  t.equal(e.result.status, null, 'missing: any still forwards')
})

t.test('shards: missing key with missing: reject is the 400, and nothing after it is reached', async (t) => {
  const e = run(cfg(SHARDED.replace('MISSING', 'reject')), 'GET http://x.test/')
  t.equal(e.shard!.how, 'rejected')
  t.equal(e.result.code, 'LB_ERR_SHARD_KEY_MISSING')
  t.equal(e.result.status, 400)
  t.equal(e.replicas, null)
  t.equal(e.route, 'users', 'a route matched (exit 0)')
  t.match(formatExplanation(e), /missing: reject → 400 LB_ERR_SHARD_KEY_MISSING/)
})

const STICKY = `
routes: [{ name: r, backend: app }]
backends:
  app:
    sticky: { cookie: { name: SID, maxAge: 1h } }
    shardBy: { cookie: tenant }
    shards:
      - { name: a, servers: [{ name: a1, url: "http://10.0.0.1:9000" }, { name: a2, url: "http://10.0.0.2:9000" }] }
      - { name: b, servers: [{ name: b1, url: "http://10.0.1.1:9000" }] }
`

t.test('a shard cookie sent twice is refused as the proxy refuses it (one line or two)', async (t) => {
  const config = cfg(STICKY)
  for (const headers of [['cookie: tenant=t1; tenant=t2'], ['cookie: tenant=t1', 'cookie: SID=x; tenant=t2']]) {
    const e = run(config, 'GET http://x.test/', headers)
    t.same([e.result.status, e.result.code, e.result.detail], [400, 'LB_ERR_BAD_REQUEST', 'cookie tenant sent more than once (the shard is chosen by it)'], headers.join(' | '))
  }
  t.equal(run(config, 'GET http://x.test/', ['cookie: tenant=t1; xtenant=2; SID=1']).result.status, null, 'once, among others with the name in theirs: it goes upstream')
})

t.test('sticky: a cookie naming a usable server pins; a down, foreign or unknown one re-balances with a new cookie', async (t) => {
  const config = cfg(STICKY)
  const tenantOf = (shard: string): string => ['t1', 't2', 't3', 't4', 't5', 't6', 't7', 't8', 't9'].find((x) =>
    run(config, 'GET http://x.test/', [`cookie: tenant=${x}`]).shard!.chosen === shard)!
  const acme = tenantOf('a')
  const probe = run(config, 'GET https://x.test/', [`cookie: tenant=${acme}`])
  const shard = probe.shard!.chosen!
  t.equal(shard, 'a')
  t.equal(probe.shard!.shardBy, 'cookie tenant')
  const servers = probe.replicas!.servers
  t.equal(probe.replicas!.sticky!.decision, 'balanced')
  t.equal(probe.replicas!.sticky!.setCookie, `SID=${probe.replicas!.servers.find((s) => s.picked)!.id}; Path=/; SameSite=Lax; HttpOnly; Max-Age=3600; Secure`,
    'https: Secure; maxAge in seconds')

  const last = servers[servers.length - 1]!
  const pinned = run(config, 'GET http://x.test/', [`cookie: tenant=${acme}; SID=${last.id}`])
  t.equal(pinned.replicas!.sticky!.decision, 'pinned')
  t.equal(pinned.replicas!.pick, last.name)
  t.match(pinned.replicas!.sticky!.reason, new RegExp(`names ${last.name}, which may take it: pinned`))
  t.equal(pinned.replicas!.sticky!.setCookie, null, 'the cookie already names the server: nothing to set')

  const live = new Map<string, LiveServer>([[`app/${shard}/${last.name}`, down({ ejected: true, checkUp: true })]])
  const moved = run(config, 'GET http://x.test/', [`cookie: tenant=${acme}; SID=${last.id}`], undefined, live)
  const sticky = moved.replicas!.sticky!
  t.equal(sticky.decision, 'rebalanced')
  t.match(sticky.reason, new RegExp(`${last.name}, which is ejected by outlier detection: the algorithm chooses`))
  t.not(moved.replicas!.pick, last.name)
  t.match(sticky.setCookie, /^SID=\w+; Path=\/; SameSite=Lax; HttpOnly; Max-Age=3600$/, 'plain http: no Secure')
  t.equal(moved.replicas!.health, 'live')
  const line = moved.replicas!.servers.find((s) => s.name === last.name)!
  t.same([line.eligible, line.health], [false, 'ejected'])

  const unknown = run(config, 'GET http://x.test/', [`cookie: tenant=${acme}; SID=nope`])
  t.equal(unknown.shard!.chosen, 'a')
  t.equal(unknown.replicas!.sticky!.decision, 'rebalanced')
  t.match(unknown.replicas!.sticky!.reason, /names no server of this shard/)
  t.not(unknown.replicas!.sticky!.setCookie, null)

  // A cookie from the other shard's server.
  const foreign = run(config, 'GET http://x.test/', [`cookie: tenant=${tenantOf('b')}`]).replicas!.servers[0]!
  const e = run(config, 'GET http://x.test/', [`cookie: tenant=${acme}; SID=${foreign.id}`])
  t.match(e.replicas!.sticky!.reason, /names b1 of shard b/)
  t.match(formatExplanation(e), /Set-Cookie: SID=/)
})

t.test('ipHash: the client address (or a trusted proxy\'s X-Forwarded-For hop), the ring walk and bounded load', async (t) => {
  const yaml = (bounded: number): string => `
trustedProxies: [10.0.0.0/8]
routes: [{ name: r, backend: app }]
backends:
  app:
    balance: { algorithm: ipHash, boundedLoad: ${bounded} }
    servers: [{ name: s1, url: "http://127.0.0.1:9001" }, { name: s2, url: "http://127.0.0.1:9002" }, { name: s3, url: "http://127.0.0.1:9003", weight: 2 }]
`
  const config = cfg(yaml(0))
  const direct = run(config, 'GET http://x.test/', ['x-forwarded-for: 6.6.6.6'], '198.51.100.7')
  t.equal(direct.request.trustedProxy, false)
  t.equal(direct.request.balancerClient, '198.51.100.7', 'an untrusted peer cannot choose its address')
  const viaProxy = run(config, 'GET http://x.test/', ['x-forwarded-for: 198.51.100.7'], '10.1.2.3')
  t.equal(viaProxy.request.trustedProxy, true)
  t.equal(viaProxy.request.balancerClient, '198.51.100.7')
  t.equal(viaProxy.request.balancerClientFrom, 'x-forwarded-for')
  t.equal(viaProxy.replicas!.pick, direct.replicas!.pick, 'the same client lands on the same server either way')
  t.match(formatExplanation(direct), /client 198\.51\.100\.7 hashes to 0x[0-9a-f]{8}/)

  for (const client of ['192.0.2.1', '192.0.2.2', '2001:db8::1', '203.0.113.50']) {
    const e = run(config, 'GET http://x.test/', [], client)
    const first = e.replicas!.servers.find((s) => s.scoreValue === 1)!
    t.equal(e.replicas!.pick, first.name, `${client}: walk 1 is the pick`)
    const moved = run(config, 'GET http://x.test/', [], client, new Map([[`app/default/${first.name}`, down()]]))
    const walked = moved.replicas!.servers.find((s) => s.name === first.name)!
    t.match(walked.score, /^walk 1: passed, down/)
    t.equal(moved.replicas!.pick, moved.replicas!.servers.find((s) => s.scoreValue === 2)!.name, `${client}: walks past the down server`)
  }

  // Bounded load: the client's own server at its cap is passed over (the live proxy does the same).
  const bounded = cfg(yaml(0.25))
  const own = run(bounded, 'GET http://x.test/', [], '192.0.2.1').replicas!.pick!
  const busy = new Map(['s1', 's2', 's3'].map((n) => [`app/default/${n}`, up(n === own ? 6 : 0)]))
  const e = run(bounded, 'GET http://x.test/', [], '192.0.2.1', busy)
  t.not(e.replicas!.pick, own)
  t.match(e.replicas!.servers.find((s) => s.name === own)!.score, /walk 1: passed, one more would go over its bounded load; 6 in flight, cap \d/)
  t.match(e.replicas!.pickNote, /bounded load/)
})

t.test('leastConn scores (active+1)/weight from live state; leastLatency uses a known cost; roundRobin shows the cycle', async (t) => {
  const lc = cfg(`
routes: [{ name: r, backend: app }]
backends:
  app:
    balance: { algorithm: leastConn }
    servers: [{ name: s1, url: "http://127.0.0.1:9001", maxConn: 3 }, { name: s2, url: "http://127.0.0.1:9002", weight: 2 }]
`)
  const live = new Map([['app/default/s1', up(3)], ['app/default/s2', up(3)]])
  let e = run(lc, 'GET http://x.test/', [], undefined, live)
  const [s1, s2] = e.replicas!.servers
  t.equal(s1!.eligible, false, 's1 is at maxConn')
  t.match(s1!.score, /full: 3 of maxConn 3/)
  t.equal(s2!.scoreValue, 2)
  t.match(s2!.score, /\(3\+1\)\/2 = 2/)
  t.equal(e.replicas!.pick, 's2')
  e = run(lc, 'GET http://x.test/', [], undefined, new Map([['app/default/s1', up(3)], ['app/default/s2', down()]]))
  t.equal(e.replicas!.pick, null)
  t.match(e.result.summary, /waits in shard default's queue/)
  e = run(lc, 'GET http://x.test/', [], undefined, new Map([['app/default/s1', down()], ['app/default/s2', down()]]))
  t.equal(e.result.code, 'LB_ERR_NO_HEALTHY_SERVER')

  const ll = cfg(`
routes: [{ name: r, backend: app }]
backends:
  app:
    balance: { algorithm: leastLatency }
    servers: [{ name: s1, url: "http://127.0.0.1:9001" }, { name: s2, url: "http://127.0.0.1:9002" }]
`)
  e = run(ll, 'GET http://x.test/', [], undefined, new Map([
    ['app/default/s1', { ...up(1), latencyCost: 50 }], ['app/default/s2', { ...up(0), latencyCost: 80 }]]))
  t.same(e.replicas!.servers.map((s) => s.scoreValue), [100, 80])
  t.same(e.replicas!.servers.map((s) => s.latencyCost), [50, 80])
  t.equal(e.replicas!.pick, 's2')
  t.same(run(ll, 'GET http://x.test/').replicas!.servers.map((s) => s.score), ['unmeasured and idle: tried first (0)', 'unmeasured and idle: tried first (0)'])

  const rr = cfg(`
routes: [{ name: r, backend: app }]
backends:
  app:
    servers: [{ name: s1, url: "http://127.0.0.1:9001", weight: 2 }, { name: s2, url: "http://127.0.0.1:9002" }]
`)
  e = run(rr, 'GET http://x.test/')
  t.same(e.replicas!.cycle, ['s1', 's2', 's1'], 'smooth weighted round-robin, one full cycle')
  t.equal(e.replicas!.pick, 's1')
  t.equal(e.replicas!.servers[0]!.score, 'turn 1, weight 2')
  t.match(e.replicas!.pickVaries, /elsewhere in its cycle/)
  t.match(formatExplanation(e), /a live pick may differ: the rotation continues/)
})

t.test('slow start and latency survive the trip through the status JSON', async (t) => {
  const config = cfg(`
routes: [{ name: r, backend: app }]
backends:
  app:
    balance: { algorithm: leastLatency, decay: 60s }
    slowStart: 10s
    servers: [{ name: s1, url: "http://127.0.0.1:9001" }, { name: s2, url: "http://127.0.0.1:9002" }]
`)
  // A "running" state: s1 just came back up and was measured, s2 was measured slower.
  const running = buildState(config, { dispatcher: sendNothing })
  const [s1, s2] = running.backends.get('app')!.servers
  s1!.setCheckStatus(false, 'test')
  s1!.setCheckStatus(true, 'test')
  const now = performance.now()
  s1!.recordLatency(20, now)
  s2!.recordLatency(30, now)
  const status = JSON.parse(JSON.stringify({ backends: [...running.backends.values()].map((b) => b.snapshot()) })) as unknown
  const live = liveFromStatus(status)
  t.ok(live.get('app/default/s1')!.upForMs! >= 0)
  t.equal(live.get('app/default/s2')!.upForMs, undefined, 'up since the proxy started')
  const e = explain(config, parseExplainRequest('GET http://x.test/'), { live, now: performance.now() })
  const [l1, l2] = e.replicas!.servers
  t.ok(l1!.effectiveWeight < 0.5, `s1 in slow start: weight ${l1!.effectiveWeight}`)
  t.equal(l2!.effectiveWeight, 1)
  t.ok(Math.abs(l1!.latencyCost - 20) < 0.1 && Math.abs(l2!.latencyCost - 30) < 0.1, 'the costs as measured')
  t.equal(e.replicas!.pick, 's2', '20 ms at a twentieth of its weight costs more than 30 ms at full weight')
  t.match(l1!.score, /slow start: weight 0\.\d+ of 1; latency \d+(\.\d+)? ms/)
  for (const b of running.backends.values()) b.retire()
})

t.test('rewrites and the request header policy: the plan\'s upstream head against the client\'s', async (t) => {
  const config = cfg(`
routes:
  - name: api
    match: { pathPrefix: /v1/ }
    backend: app
    rewrite: { stripPrefix: /v1, addPrefix: /internal }
    requestHeaders: { set: { x-route: api, x-env: set }, remove: [x-debug] }
    responseHeaders: { set: { x-frame-options: DENY }, remove: [server] }
backends: { app: { passHostHeader: false, servers: [{ url: "http://127.0.0.1:9001" }] } }
`)
  const e = run(config, 'GET https://x.test/v1/a?b=1', ['x-debug: 1', 'x-env: dev', 'accept: */*', 'connection: keep-alive', 'x-forwarded-for: 6.6.6.6'], '192.0.2.9')
  const w = e.rewrite!
  t.equal(w.pathBefore, '/v1/a?b=1')
  t.equal(w.pathAfter, '/internal/a?b=1')
  const ops = Object.fromEntries(w.requestHeaders.map((c) => [c.name, `${c.op} ${c.before ?? ''}→${c.after ?? ''} ${c.by}`]))
  t.equal(ops['x-debug'], '- 1→ route remove')
  t.equal(ops['x-env'], '~ dev→set route set')
  t.equal(ops['x-route'], '+ →api route set')
  t.equal(ops.connection, '- keep-alive→ proxy')
  t.equal(ops['x-forwarded-for'], '~ 6.6.6.6→192.0.2.9 proxy', 'an untrusted client\'s X-Forwarded-For is replaced')
  t.equal(ops.host, '~ x.test→127.0.0.1:9001 proxy', 'passHostHeader: false sends the server\'s host')
  t.equal(ops['x-forwarded-proto'], '+ →https proxy')
  t.equal(ops.via, '+ →1.1 switchyard proxy')
  t.notOk(ops.accept, 'unchanged fields are only counted')
  t.equal(w.unchangedHeaders, 1)
  t.same(w.responseHeaders.set, [['x-frame-options', 'DENY']])
  t.same(w.responseHeaders.remove, ['server'])
  t.same(e.replicas!.upstream, { method: 'GET', url: 'http://127.0.0.1:9001/internal/a?b=1', host: '127.0.0.1:9001', protocol: 'http1' })
})

t.test('431 when the request breaks the header limits', async (t) => {
  const config = cfg(`
limits: { maxHeaderCount: 3, maxHeaderBytes: 1KiB }
routes: [{ name: r, backend: app }]
${ONE}`)
  t.equal(run(config, 'GET http://x.test/', ['a: 1', 'b: 2']).result.status, null, 'host + 2 = 3 fields: fine')
  let e = run(config, 'GET http://x.test/', ['a: 1', 'b: 2', 'c: 3'])
  t.same([e.result.status, e.result.code], [431, 'LB_ERR_HEADERS_TOO_LARGE'])
  t.equal(e.request.headerFields, 4)
  t.equal(e.route, 'r')
  t.equal(e.shard!.chosen, 'default', 'the shard was chosen before the head was built')
  t.equal(e.rewrite, null)
  t.equal(e.replicas, null)
  t.equal(e.cache, null)
  t.match(formatExplanation(e), /not reached: the proxy answers 431 first/)
  e = run(config, 'GET http://x.test/', [`big: ${'x'.repeat(1100)}`])
  t.equal(e.result.status, 431)
})

t.test('cache: the plan\'s key and variant, and whether a lookup happens', async (t) => {
  const config = cfg(`
cache: { purgeFrom: [127.0.0.1] }
routes:
  - { name: api, match: { pathPrefix: /api/ }, backend: app, cache: { key: { query: sort, ignoreParams: [utm_source], headers: [accept-language] } } }
  - { name: live, match: { pathPrefix: /live/ }, backend: app, cache: false }
  - { name: rest, backend: app }
${ONE}`)
  let e = run(config, 'GET https://X.test:443/api/list?b=2&utm_source=mail&a=1', ['accept-language: de'])
  t.equal(e.cache!.key, 'https://x.test/api/list?a=1&b=2')
  t.equal(e.cache!.variant, 'api\n\naccept-language:de')
  t.equal(e.rewrite!.pathAfter, '/api/list?a=1&b=2', 'the origin gets what is keyed')
  t.equal(e.cache!.lookup, true)
  t.equal(e.cache!.stored, 'unknown')
  t.match(e.result.summary, /unless the cache answers/)
  const text = formatExplanation(e)
  t.match(text, /key {6}https:\/\/x\.test\/api\/list\?a=1&b=2\n/)
  t.match(text, /variant {2}route api, accept-language:de/)

  e = run(config, 'POST http://x.test/api/list')
  t.equal(e.cache!.lookup, false)
  t.match(e.cache!.lookupWhy, /invalidates/)
  e = run(config, 'GET http://x.test/api/x', ['cache-control: no-cache', 'authorization: Bearer x'])
  t.equal(e.cache!.lookup, true)
  t.match(e.cache!.notes.join('\n'), /revalidated[\s\S]*Authorization/)
  e = run(config, 'GET http://x.test/live/x')
  t.same([e.cache!.enabled, e.cache!.why], [false, 'route live has cache off'])
  e = run(config, 'PURGE http://x.test/page', [], '127.0.0.1')
  t.match(e.result.summary, /every stored variant/)
  t.equal(e.replicas, null)
  e = run(config, 'PURGE http://x.test/page', [], '192.0.2.1')
  t.equal(e.result.code, 'LB_ERR_PURGE_FORBIDDEN')

  e = run(cfg(`routes: [{ name: r, backend: app }]\n${ONE}`), 'GET http://x.test/')
  t.same([e.cache!.enabled, e.cache!.why], [false, 'no top-level cache block'])
})

t.test('bad input is an ExplainInputError', async (t) => {
  t.throws(() => parseExplainRequest('GET ftp://x/'), ExplainInputError)
  t.throws(() => parseExplainRequest('GET'), ExplainInputError)
  t.throws(() => parseExplainRequest('GET http://x/', ['no colon']), ExplainInputError)
  t.throws(() => parseExplainRequest('GET http://x/', [], 'localhost'), ExplainInputError)
  // What the listeners refuse with 400 is not explained as forwarded.
  t.throws(() => parseExplainRequest('GET http://x/a\u001b]0;owned\u0007'), { message: /control character or non-ASCII byte.*400/ })
  t.throws(() => parseExplainRequest('GET http://x/caf\u00e9'), { message: /percent-encode/ })
  t.throws(() => parseExplainRequest('GET http://x/', ['x-a: \u001b[2J']), { message: /control character/ })
  t.equal(parseExplainRequest('GET http://x/', ['x-a: caf\u00e9\tok']).rawHeaders[3], 'caf\u00e9\tok', 'tab and latin-1 are fine')
  const r = parseExplainRequest('delete http://x.test:8080?q=1', ['Cookie: a=1'])
  t.same(r, { method: 'DELETE', scheme: 'http', authority: 'x.test:8080', target: '/?q=1', rawHeaders: ['host', 'x.test:8080', 'Cookie', 'a=1'], client: '127.0.0.1' })
  t.equal(requestField(r.rawHeaders, 'cookie'), 'a=1')
  t.equal(parseExplainRequest('https://x.test/a').method, 'GET')
})

t.test('--admin: a running proxy\'s measured latency, health and cache, from its real admin API', async (t) => {
  const cacheable: Parameters<typeof startOrigin>[1] = (seen, res, req) => { res.setHeader('cache-control', 'max-age=60'); echo(seen, res, req) }
  const slow = await startOrigin(t, (seen, res, req) => { setTimeout(() => cacheable(seen, res, req), 300) })
  const fast = await startOrigin(t, cacheable)
  const yaml = `
admin: { bind: "127.0.0.1:0", token: sekrit-explain-token-0123 }
listeners: [{ name: web, bind: "127.0.0.1:0" }]
cache: {}
routes: [{ name: r, backend: app }]
backends:
  app:
    balance: { algorithm: leastLatency, decay: 60s }
    servers: [{ name: slow, url: "${slow.url}" }, { name: fast, url: "${fast.url}" }]
`
  const proxy = await startProxy(t, yaml)
  // Real traffic from real origins: unmeasured servers are tried first, so both get measured.
  for (let i = 0; i < 6; i++) {
    const res = await fetch(`${proxy.url('web')}/item?i=${i}`)
    t.equal(res.status, 200)
    await res.arrayBuffer()
  }
  t.ok(slow.requests.length > 0 && fast.requests.length > 0, `both served (${slow.requests.length} slow, ${fast.requests.length} fast)`)
  const admin = `http://127.0.0.1:${proxy.app.adminAddress()!.port}`
  const status = await (await fetch(`${admin}/status`, { headers: { authorization: 'Bearer sekrit-explain-token-0123' } })).json() as
    { backends: Array<{ shards: Array<{ servers: Array<{ name: string; latencyCost: number }> }> }> }
  const cost = (name: string): number => status.backends[0]!.shards[0]!.servers.find((s) => s.name === name)!.latencyCost
  t.ok(cost('slow') >= 250, `the status reports the slow server's latency: ${cost('slow')} ms`)
  t.ok(cost('fast') > 0 && cost('fast') < cost('slow'), `and the fast one's: ${cost('fast')} ms`)

  const req = parseExplainRequest(`GET ${proxy.url('web')}/item?i=0`)
  const e = await explainWithAdmin(proxy.config, req, { url: admin, token: 'sekrit-explain-token-0123' })
  t.same(e.warnings, [])
  t.equal(e.replicas!.health, 'live')
  for (const name of ['slow', 'fast']) {
    const line = e.replicas!.servers.find((s) => s.name === name)!
    t.ok(Math.abs(line.latencyCost - cost(name)) < cost(name) * 0.1 + 1, `${name}: explain shows ${line.latencyCost} ms, the status said ${cost(name)} ms`)
    t.match(line.score, /^latency \d+(\.\d+)? ms × \(0\+1\)\/1 = /)
  }
  t.equal(e.replicas!.pick, 'fast', 'the measured latencies pick the fast server')
  t.equal(e.cache!.stored, 'yes', 'the admin API has the key stored')
  t.match(e.cache!.storedDetail, /^1 variant under the key; 200, \d+ s old, fresh for 60 s$/)
  t.match(formatExplanation(e), new RegExp(`health live from ${admin.replace(/[.]/g, '\\.')}/status`))
  const miss = await explainWithAdmin(proxy.config, parseExplainRequest(`GET ${proxy.url('web')}/never`), { url: admin, token: 'sekrit-explain-token-0123' })
  t.equal(miss.cache!.stored, 'no')

  // Without the token the admin API refuses: explain says so and falls back to the config.
  const noToken = await explainWithAdmin(proxy.config, req, { url: admin })
  t.equal(noToken.replicas!.health, 'config')
  t.match(noToken.warnings.join('\n'), /status: HTTP 401; health assumed from the config/)
  t.same(noToken.replicas!.servers.map((s) => s.latencyCost), [0, 0], 'without live state nothing is measured')

  // The command line, against the same proxy.
  const dir = tempDir(t)
  const file = path.join(dir, 'proxy.yaml')
  writeFileSync(file, `accessLog: false\n${yaml}`)
  const r = await cliRun(['explain', file, `GET ${proxy.url('web')}/item?i=0`, '--admin', admin, '--json'], { SWITCHYARD_ADMIN_TOKEN: 'sekrit-explain-token-0123' })
  t.equal(r.code, 0, r.stderr)
  const json = JSON.parse(r.stdout) as Explanation
  t.same(json.warnings, [])
  t.equal(json.replicas!.pick, 'fast')
  t.ok(json.replicas!.servers.every((s) => s.latencyCost > 0), 'every server measured')

  const gone = await explainWithAdmin(proxy.config, req, { url: 'http://127.0.0.1:1' })
  t.equal(gone.replicas!.health, 'config', 'unreachable admin: falls back to the config')
  t.match(gone.warnings.join('\n'), /status: .*health assumed from the config/)
  await t.rejects(explainWithAdmin(proxy.config, req, { url: 'nope' }), ExplainInputError)
  t.throws(() => liveFromStatus({ hello: 1 }))
})

/** `switchyard ...args` in a child process; asynchronous, so a proxy in this process can answer it. */
async function cliRun (args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = reapOnExit(spawn(process.execPath, [...nodeArgs('src/main.ts'), ...args],
    { cwd: root, env: { ...process.env, SWITCHYARD_ADMIN_TOKEN: '', ...env }, timeout: 60_000 }))
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d })
  child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d })
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve))
  return { code, stdout, stderr }
}

t.test('CLI: explain prints the chain; exit 0 on a match, 2 on none, 1 on bad input or config', async (t) => {
  const cli = async (...args: string[]) => cliRun(['explain', ...args])
  const fixture = 'test/fixtures/config/explain.yaml'
  let r = await cli('-c', fixture, 'GET http://api.example.com/v1/users?id=7', '-H', 'x-env: prod', '-H', 'x-user-id: alice',
    '-H', 'x-forwarded-for: 203.0.113.9', '--client', '10.1.2.3')
  t.equal(r.code, 0, r.stderr)
  for (const section of ['Request', 'Routes (precedence order)', 'Rewrites', 'Backend users: shard', 'Replicas of shard', 'Cache', 'Result']) {
    t.match(r.stdout, section)
  }
  t.match(r.stdout, /✓ +api-v1/)
  t.match(r.stdout, /ipHash +203\.0\.113\.9 \(from X-Forwarded-For\)/)
  t.match(r.stdout, /\/v1\/users\?id=7 → \/internal\/users\?id=7/)
  t.match(r.stdout, /Set-Cookie: SID=/)
  t.ok(r.stdout.split('\n').every((l) => l.length <= 110), 'short lines')

  r = await cli('-c', fixture, 'DELETE', 'http://other.test/x', '--json')
  t.equal(r.code, 2)
  const json = JSON.parse(r.stdout) as Explanation
  t.equal(json.result.code, 'LB_ERR_NO_ROUTE')
  t.same(json.routes.map((x) => x.verdict), ['miss', 'miss', 'miss', 'miss'])

  r = await cli('-c', fixture, 'GET localhost/x')
  t.equal(r.code, 1)
  t.match(r.stderr, /switchyard explain: expected an http:\/\/ or https:\/\/ URL/)
  r = await cli('-c', 'test/fixtures/config/three-mistakes.yaml', 'GET http://x/')
  t.equal(r.code, 1)
  t.match(r.stderr, /three-mistakes\.yaml:13:\d+ routes\[0\]\.match\.pathPrefx: /)
  t.match(r.stderr, /3 errors in /)
  r = await cli('GET http://x/')
  t.equal(r.code, 1)
  t.match(r.stderr, /"GET http:\/\/x\/" is a request, not a config file: the file comes first \(or give it with -c\)/)
  r = await cli()
  t.equal(r.code, 1)
  t.match(r.stderr, /-c FILE is required/)
})

t.test('a shared cache is named in the cache notes: lookups go to Redis first, invalidations reach every instance', async (t) => {
  process.env.SWITCHYARD_EXPLAIN_TEST_KEY = Buffer.alloc(32, 3).toString('base64')
  t.teardown(() => { delete process.env.SWITCHYARD_EXPLAIN_TEST_KEY })
  const base = 'routes: [{ backend: app }]\nbackends: { app: { servers: [{ url: "http://127.0.0.1:9" }] } }\n'
  const shared = cfg(`${base}redis: { url: "redis://127.0.0.1:1" }\ncache: { shared: { encryptionKeys: [{ id: k, env: SWITCHYARD_EXPLAIN_TEST_KEY }] } }\n`)
  const local = cfg(`${base}cache: {}\n`)
  const notes = (c: Config, line: string): readonly string[] => run(c, line).cache?.notes ?? []
  t.match(notes(shared, 'GET http://a/x').join('\n'), /shared cache: a local miss is looked up in Redis before the origin/)
  t.notMatch(notes(local, 'GET http://a/x').join('\n'), /Redis/)
  t.match(notes(shared, 'POST http://a/x').join('\n'), /the invalidation reaches every instance through Redis/)
})

t.test('rate limit: the route\'s limit and the bucket the proxy\'s limiter picks', async (t) => {
  const config = cfg(`
trustedProxies: [10.0.0.0/8]
routes:
  - { name: keyed, match: { pathPrefix: /keyed }, backend: app, rateLimit: { average: 100, period: 1m, burst: 20, by: { header: X-Api-Key } } }
  - { name: ip, match: { pathPrefix: /ip }, backend: app, rateLimit: { average: 5 } }
  - { name: free, backend: app }
${ONE}`)
  const keyed = run(config, 'GET http://x.test/keyed', ['x-api-key: k-123'])
  t.same(keyed.rateLimit, {
    average: 100, period: 60_000, burst: 20, by: 'header x-api-key', store: 'local',
    summary: '100 per 1m, burst 20, by header x-api-key, store local',
    bucket: { by: 'header', value: 'k-123' }, keyMissing: false, policy: '"keyed";q=100;w=60'
  })
  t.match(keyed.result.summary, /within the rate limit; over it, 429 LB_ERR_RATE_LIMITED/)
  const text = formatExplanation(keyed)
  t.match(text, /Rate limit \(checked before the cache and any upstream\)\n {2}limit +100 per 1m, burst 20, by header x-api-key, store local/)
  t.match(text, /bucket +header "k-123"\n/)
  t.match(text, /RateLimit-Policy: "keyed";q=100;w=60/)

  const keyless = run(config, 'GET http://x.test/keyed', ['x-forwarded-for: 203.0.113.9'], '10.1.2.3')
  t.same(keyless.rateLimit?.bucket, { by: 'clientIp', value: '203.0.113.9' }, 'the client the trusted proxy reports')
  t.ok(keyless.rateLimit?.keyMissing)
  t.match(formatExplanation(keyless), /bucket +client 203\.0\.113\.9 \(the request has no header x-api-key: limited by its address\)/)

  t.same(run(config, 'GET http://x.test/ip', ['x-forwarded-for: 203.0.113.9'], '192.0.2.1').rateLimit?.bucket,
    { by: 'clientIp', value: '192.0.2.1' }, 'an untrusted peer\'s X-Forwarded-For is not believed')

  const free = run(config, 'GET http://x.test/other')
  t.equal(free.rateLimit, null)
  t.notMatch(formatExplanation(free), /Rate limit/)
})

t.test('access: the route\'s allow/deny and basicAuth verdict, before the rate limit', async (t) => {
  const { hashPassword } = await import('../src/auth/password.js')
  const hash = hashPassword('s3cret', { N: 1024 })
  const config = cfg(`
trustedProxies: [10.0.0.0/8]
routes:
  - { name: lists, match: { pathPrefix: /lists }, backend: app, allow: [203.0.113.0/24], deny: [203.0.113.66], rateLimit: { average: 5 } }
  - { name: auth, match: { pathPrefix: /auth }, backend: app, basicAuth: { realm: ops, users: [{ name: alice, passwordHash: "${hash}" }] } }
  - { name: free, backend: app }
${ONE}`)
  const basic = (u: string, p: string): string => `authorization: Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`

  const inside = run(config, 'GET http://x.test/lists', ['x-forwarded-for: 203.0.113.9'], '10.1.2.3')
  t.same(inside.access, { summary: 'deny 203.0.113.66; allow 203.0.113.0/24', client: '203.0.113.9', denied: null, credentials: null },
    'the client the trusted proxy reports')
  t.equal(inside.result.status, null)

  const denied = run(config, 'GET http://x.test/lists', ['x-forwarded-for: 203.0.113.66'], '10.1.2.3')
  t.equal(denied.access?.denied, 'client 203.0.113.66 is in deny')
  t.same([denied.result.status, denied.result.code], [403, 'LB_ERR_FORBIDDEN'])
  const text = formatExplanation(denied)
  t.match(text, /Access \(checked after routing, before the rate limit, the cache and any upstream\)\n {2}rules +deny 203\.0\.113\.66; allow 203\.0\.113\.0\/24/)
  t.match(text, /→ +refused: client 203\.0\.113\.66 is in deny/)
  t.equal(run(config, 'GET http://x.test/lists', [], '198.51.100.1').result.code, 'LB_ERR_FORBIDDEN')

  const none = run(config, 'GET http://x.test/auth')
  t.same([none.result.status, none.result.code, none.access?.denied], [401, 'LB_ERR_UNAUTHORIZED', 'no credentials'])
  const wrong = run(config, 'GET http://x.test/auth', [basic('alice', 'guess')])
  t.same([wrong.result.code, wrong.access?.credentials, wrong.access?.denied], ['LB_ERR_UNAUTHORIZED', 'user alice', 'wrong password for user "alice"'])
  const ok = run(config, 'GET http://x.test/auth', [basic('alice', 's3cret')])
  t.equal(ok.access?.denied, null)
  t.equal(ok.result.status, null)
  t.match(formatExplanation(ok), /rules +basicAuth realm="ops" users=alice \(Authorization not forwarded\)/)
  t.notMatch(formatExplanation(ok), /\$scrypt/, 'never the hash')

  const free = run(config, 'GET http://x.test/other')
  t.equal(free.access, null)
  t.notMatch(formatExplanation(free), /Access/)
})
