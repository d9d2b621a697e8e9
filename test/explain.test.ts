// `switchyard explain`: the decision chain, checked against the proxy's own
// functions (router, shard selector, balancers, header policy, cache key),
// plus the admin API lookups and the CLI's exit codes.
import { spawnSync } from 'node:child_process'
import { createServer, type IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { hashString } from '../src/balancer/hash.js'
import { parseConfig } from '../src/config/load.js'
import type { Config } from '../src/config/schema.js'
import {
  explain, explainWithAdmin, ExplainInputError, formatExplanation, liveFromStatus, parseExplainRequest,
  type Explanation, type LiveServer
} from '../src/explain.js'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const cfg = (yaml: string): Config => parseConfig(`listeners: [{ name: web, bind: "127.0.0.1:8080" }]\n${yaml}`, '')
const run = (config: Config, line: string, headers: string[] = [], client?: string, live?: Map<string, LiveServer>): Explanation =>
  explain(config, parseExplainRequest(line, headers, client), live === undefined ? {} : { live, liveSource: 'test' })
const verdicts = (e: Explanation): string[] => e.routes.map((r) => `${r.verdict === 'match' ? '✓' : r.verdict === 'miss' ? '✗' : '·'}${r.name}`)
const reasons = (e: Explanation, name: string): readonly string[] => e.routes.find((r) => r.name === name)!.reasons

const ONE = 'backends: { app: { servers: [{ url: "http://127.0.0.1:9001" }] } }'

t.test('routes: host classes in precedence order, with the reason each one missed', async (t) => {
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
  t.same(e.result, { status: 404, code: 'LB_ERR_NO_ROUTE', summary: 'no route matches this request' })
  t.equal(e.shard, null)
  const text = formatExplanation(e)
  t.match(text, /✗ 404 LB_ERR_NO_ROUTE/)
  t.match(text, /method GET is not in POST, PUT/)
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

t.test('shards: the key, its hash, every shard\'s rendezvous score and the winner', async (t) => {
  const config = cfg(SHARDED.replace('MISSING', 'any'))
  const { Shard, ShardSelector } = await import('../src/upstream/shard.js')
  const selector = new ShardSelector(['a', 'b', 'c'].map((n) => new Shard(n, [], { pick: () => undefined, explain: () => ({ server: undefined, reason: "", candidates: [] }) }, { maxQueue: 0, queueTimeout: 0, panicThreshold: 0 })), config.backends.users!.shardBy)
  for (const user of ['alice', 'bob', 'carol', 'dave']) {
    const e = run(config, 'GET http://x.test/', [`x-user-id: ${user}`])
    const s = e.shard!
    t.equal(s.shardBy, 'header x-user-id')
    t.equal(s.key, user)
    t.equal(s.keyHash, '0x' + hashString(user).toString(16).padStart(8, '0'))
    t.equal(s.how, 'rendezvous')
    t.equal(s.scores.length, 3)
    const best = [...s.scores].sort((x, y) => parseInt(y.score, 16) - parseInt(x.score, 16))[0]!
    t.ok(best.chosen, 'the highest score is marked chosen')
    t.equal(s.chosen, selector.select(user).name, `${user}: the same shard as the proxy's selector`)
    t.equal(e.replicas!.shard, s.chosen)
  }
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
  t.equal(pinned.replicas!.sticky!.setCookie, null, 'the cookie already names the server: nothing to set')

  const live = new Map<string, LiveServer>([[`app/${shard}/${last.name}`, { healthy: false, ejected: true, active: 0 }]])
  const moved = run(config, 'GET http://x.test/', [`cookie: tenant=${acme}; SID=${last.id}`], undefined, live)
  const sticky = moved.replicas!.sticky!
  t.equal(sticky.decision, 'rebalanced')
  t.match(sticky.reason, new RegExp(`${last.name} is ejected`))
  t.not(moved.replicas!.pick, last.name)
  t.match(sticky.setCookie, /^SID=\w+; Path=\/; SameSite=Lax; HttpOnly; Max-Age=3600$/, 'plain http: no Secure')
  t.equal(moved.replicas!.health, 'live')
  t.equal(moved.replicas!.servers.find((s) => s.name === last.name)!.eligible, false)

  const unknown = run(config, 'GET http://x.test/', [`cookie: tenant=${acme}; SID=nope`])
  t.equal(unknown.shard!.chosen, 'a')
  t.equal(unknown.replicas!.sticky!.decision, 'rebalanced')
  t.match(unknown.replicas!.sticky!.reason, /names no configured server/)
  t.not(unknown.replicas!.sticky!.setCookie, null)

  // A cookie from the other shard's server.
  const foreign = run(config, 'GET http://x.test/', [`cookie: tenant=${tenantOf('b')}`]).replicas!.servers[0]!
  const e = run(config, 'GET http://x.test/', [`cookie: tenant=${acme}; SID=${foreign.id}`])
  t.match(e.replicas!.sticky!.reason, /names b1 of shard b/)
  t.match(formatExplanation(e), /Set-Cookie: SID=/)
})

t.test('ipHash: the client address (or a trusted proxy\'s X-Forwarded-For hop) and the ring walk', async (t) => {
  const config = cfg(`
trustedProxies: [10.0.0.0/8]
routes: [{ name: r, backend: app }]
backends:
  app:
    balance: { algorithm: ipHash }
    servers: [{ name: s1, url: "http://127.0.0.1:9001" }, { name: s2, url: "http://127.0.0.1:9002" }, { name: s3, url: "http://127.0.0.1:9003", weight: 2 }]
`)
  const direct = run(config, 'GET http://x.test/', ['x-forwarded-for: 6.6.6.6'], '198.51.100.7')
  t.equal(direct.request.trustedProxy, false)
  t.equal(direct.request.balancerClient, '198.51.100.7', 'an untrusted peer cannot choose its address')
  const viaProxy = run(config, 'GET http://x.test/', ['x-forwarded-for: 198.51.100.7'], '10.1.2.3')
  t.equal(viaProxy.request.trustedProxy, true)
  t.equal(viaProxy.request.balancerClient, '198.51.100.7')
  t.equal(viaProxy.request.balancerClientFrom, 'x-forwarded-for')
  t.equal(viaProxy.replicas!.pick, direct.replicas!.pick, 'the same client lands on the same server either way')

  // The pick is the first server of the walk, and a down server is walked past.
  const { createBalancer } = await import('../src/balancer/balancer.js')
  for (const client of ['192.0.2.1', '192.0.2.2', '2001:db8::1', '203.0.113.50']) {
    const e = run(config, 'GET http://x.test/', [], client)
    const lines = e.replicas!.servers
    const first = lines.find((s) => /walk 1\)/.test(s.score))!
    t.equal(e.replicas!.pick, first.name, `${client}: walk 1 is the pick`)
    // The proxy's own IpHash over equivalent servers agrees.
    const { Server } = await import('../src/upstream/server.js')
    const { Dispatcher } = await import('undici')
    const servers = config.backends.app!.shards[0]!.servers.map((s) => new Server({ ...s, backend: 'app', shard: 'default', dispatcher: new Dispatcher() }))
    const pick = createBalancer(config.backends.app!.balance, servers).pick({ clientAddress: client, now: 0, tried: [], panic: false, stickyId: undefined })
    t.equal(pick?.name, first.name)
    const live = new Map<string, LiveServer>([[`app/default/${first.name}`, { healthy: false, active: 0 }]])
    const moved = run(config, 'GET http://x.test/', [], client, live)
    t.equal(moved.replicas!.pick, lines.find((s) => /walk 2\)/.test(s.score))!.name, `${client}: walks past the down server`)
  }
  t.match(formatExplanation(direct), /client 198\.51\.100\.7 hashes to 0x[0-9a-f]{8}/)
})

t.test('leastConn scores (active+1)/weight from live state; leastLatency uses a known cost; roundRobin shows the cycle', async (t) => {
  const lc = cfg(`
routes: [{ name: r, backend: app }]
backends:
  app:
    balance: { algorithm: leastConn }
    servers: [{ name: s1, url: "http://127.0.0.1:9001", maxConn: 3 }, { name: s2, url: "http://127.0.0.1:9002", weight: 2 }]
`)
  const live = new Map<string, LiveServer>([['app/default/s1', { healthy: true, active: 3 }], ['app/default/s2', { healthy: true, active: 3 }]])
  let e = run(lc, 'GET http://x.test/', [], undefined, live)
  const [s1, s2] = e.replicas!.servers
  t.equal(s1!.eligible, false, 's1 is at maxConn')
  t.equal(s2!.scoreValue, 2)
  t.match(s2!.score, /\(3\+1\)\/2 = 2/)
  t.equal(e.replicas!.pick, 's2')
  const full = new Map<string, LiveServer>([['app/default/s1', { healthy: true, active: 3 }], ['app/default/s2', { healthy: false, active: 0 }]])
  e = run(lc, 'GET http://x.test/', [], undefined, full)
  t.equal(e.replicas!.pick, null)
  t.match(e.result.summary, /waits in shard default's queue/)
  const down = new Map<string, LiveServer>([['app/default/s1', { healthy: false, active: 0 }], ['app/default/s2', { healthy: false, active: 0 }]])
  e = run(lc, 'GET http://x.test/', [], undefined, down)
  t.equal(e.result.code, 'LB_ERR_NO_HEALTHY_SERVER')

  const ll = cfg(`
routes: [{ name: r, backend: app }]
backends:
  app:
    balance: { algorithm: leastLatency }
    servers: [{ name: s1, url: "http://127.0.0.1:9001" }, { name: s2, url: "http://127.0.0.1:9002" }]
`)
  e = run(ll, 'GET http://x.test/', [], undefined, new Map([
    ['app/default/s1', { healthy: true, active: 1, latencyCost: 50 }], ['app/default/s2', { healthy: true, active: 0, latencyCost: 80 }]]))
  t.same(e.replicas!.servers.map((s) => s.scoreValue), [100, 80])
  t.equal(e.replicas!.pick, 's2')
  t.same(run(ll, 'GET http://x.test/').replicas!.servers.map((s) => s.score), ['unmeasured, idle (0)', 'unmeasured, idle (0)'])

  const rr = cfg(`
routes: [{ name: r, backend: app }]
backends:
  app:
    servers: [{ name: s1, url: "http://127.0.0.1:9001", weight: 2 }, { name: s2, url: "http://127.0.0.1:9002" }]
`)
  e = run(rr, 'GET http://x.test/')
  t.same(e.replicas!.cycle, ['s1', 's2', 's1'], 'smooth weighted round-robin, one full cycle')
  t.equal(e.replicas!.pick, 's1')
  t.equal(e.replicas!.servers[0]!.score, 'turn 1')
})

t.test('rewrites and the request header policy: what is added, replaced and removed', async (t) => {
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
  const ops = Object.fromEntries(w.requestHeaders!.map((c) => [c.name, `${c.op} ${c.before ?? ''}→${c.after ?? ''} ${c.by}`]))
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
  t.same(e.replicas!.upstream, { method: 'GET', url: 'http://127.0.0.1:9001/internal/a?b=1', host: '127.0.0.1:9001' })
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
  t.equal(e.rewrite!.requestHeaders, null)
  t.equal(e.replicas, null)
  t.equal(e.cache, null)
  t.match(formatExplanation(e), /not reached: the proxy answers 431 first/)
  e = run(config, 'GET http://x.test/', [`big: ${'x'.repeat(1100)}`])
  t.equal(e.result.status, 431)
})

t.test('cache: the key as the route configures it and whether a lookup happens', async (t) => {
  const config = cfg(`
cache: { purgeFrom: [127.0.0.1] }
routes:
  - { name: api, match: { pathPrefix: /api/ }, backend: app, cache: { key: { query: sort, ignoreParams: [utm_source], headers: [accept-language] } } }
  - { name: live, match: { pathPrefix: /live/ }, backend: app, cache: false }
  - { name: rest, backend: app }
${ONE}`)
  let e = run(config, 'GET https://X.test:443/api/list?b=2&utm_source=mail&a=1', ['accept-language: de'])
  t.equal(e.cache!.key, 'https://x.test/api/list?a=1&b=2\naccept-language:de')
  t.equal(e.cache!.lookup, true)
  t.equal(e.cache!.stored, 'unknown')
  t.match(e.result.summary, /unless the cache answers/)
  t.match(formatExplanation(e), /key {5}https:\/\/x\.test\/api\/list\?a=1&b=2 \+ accept-language:de/)

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
  const r = parseExplainRequest('delete http://x.test:8080?q=1', ['Cookie: a=1'])
  t.same(r, { method: 'DELETE', scheme: 'http', authority: 'x.test:8080', target: '/?q=1', rawHeaders: ['host', 'x.test:8080', 'Cookie', 'a=1'], client: '127.0.0.1' })
  t.equal(parseExplainRequest('https://x.test/a').method, 'GET')
})

t.test('--admin: live health from /status, the cache lookup, the bearer token; unknown on 404', async (t) => {
  const config = cfg(`
cache: {}
routes: [{ name: r, backend: app }]
backends: { app: { balance: { algorithm: leastConn }, servers: [{ name: s1, url: "http://127.0.0.1:9001" }, { name: s2, url: "http://127.0.0.1:9002" }] } }
`)
  const seen: IncomingMessage[] = []
  let lookup: 'none' | 'stored' = 'none'
  const admin = createServer((req, res) => {
    seen.push(req)
    const u = new URL(req.url!, 'http://admin')
    if (u.pathname === '/status') {
      res.setHeader('content-type', 'application/json')
      res.end(JSON.stringify([{ name: 'app', algorithm: 'leastConn', shards: [{ name: 'default', queued: 0, servers: [
        { name: 's1', url: 'http://127.0.0.1:9001', weight: 1, healthy: false, checkUp: false, ejected: false, active: 0 },
        { name: 's2', url: 'http://127.0.0.1:9002', weight: 1, healthy: true, checkUp: true, ejected: false, active: 4 }] }] }]))
    } else if (u.pathname === '/cache/lookup' && lookup === 'stored') {
      res.end(JSON.stringify({ url: u.searchParams.get('url'), stored: true, ttl: 42 }))
    } else {
      res.statusCode = 404
      res.end()
    }
  })
  await new Promise<void>((resolve) => admin.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { admin.close() })
  const url = `http://127.0.0.1:${(admin.address() as AddressInfo).port}/`
  const req = parseExplainRequest('GET http://x.test/a?b=1')

  let e = await explainWithAdmin(config, req, { url, token: 'sekrit' })
  t.equal(e.replicas!.health, 'live')
  t.same(e.replicas!.servers.map((s) => [s.name, s.health, s.active]), [['s1', 'down', 0], ['s2', 'healthy', 4]])
  t.equal(e.replicas!.pick, 's2')
  t.equal(e.cache!.stored, 'unknown')
  t.match(e.cache!.storedDetail, /no \/cache\/lookup/)
  t.equal(seen[0]!.headers.authorization, 'Bearer sekrit')
  t.equal(new URL(seen[1]!.url!, 'http://a').searchParams.get('url'), 'http://x.test/a?b=1')
  t.same(e.warnings, [])

  lookup = 'stored'
  e = await explainWithAdmin(config, req, { url })
  t.equal(e.cache!.stored, 'yes')
  t.equal(e.cache!.storedDetail, 'ttl=42')
  t.equal(seen[seen.length - 1]!.headers.authorization, undefined, 'no token, no header')
  t.match(formatExplanation(e), /stored {2}yes \(ttl=42\)/)

  admin.close()
  e = await explainWithAdmin(config, req, { url: 'http://127.0.0.1:1' })
  t.equal(e.replicas!.health, 'config', 'unreachable admin: falls back to the config')
  t.match(e.warnings.join('\n'), /status: .*health assumed from the config/)
  await t.rejects(explainWithAdmin(config, req, { url: 'nope' }), ExplainInputError)
  t.throws(() => liveFromStatus({ hello: 1 }))
  t.equal(liveFromStatus({ backends: { app: { shards: [{ name: 'default', servers: [{ name: 's1', healthy: true }] }] } } }).get('app/default/s1')?.active, 0)
})

t.test('CLI: explain prints the chain; exit 0 on a match, 2 on none, 1 on bad input or config', async (t) => {
  const cli = (...args: string[]) => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(root, 'src/main.ts'), 'explain', ...args],
      { cwd: root, encoding: 'utf8', timeout: 60_000, env: { ...process.env, SWITCHYARD_ADMIN_TOKEN: '' } })
    return { code: r.status, stdout: r.stdout, stderr: r.stderr }
  }
  const fixture = 'test/fixtures/config/explain.yaml'
  let r = cli('-c', fixture, 'GET http://api.example.com/v1/users?id=7', '-H', 'x-env: prod', '-H', 'x-user-id: alice',
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

  r = cli('-c', fixture, 'DELETE', 'http://other.test/x', '--json')
  t.equal(r.code, 2)
  const json = JSON.parse(r.stdout) as Explanation
  t.equal(json.result.code, 'LB_ERR_NO_ROUTE')
  t.same(json.routes.map((x) => x.verdict), ['miss', 'miss', 'miss', 'miss'])

  r = cli('-c', fixture, 'GET localhost/x')
  t.equal(r.code, 1)
  t.match(r.stderr, /switchyard explain: expected an http:\/\/ or https:\/\/ URL/)
  r = cli('-c', 'test/fixtures/config/three-mistakes.yaml', 'GET http://x/')
  t.equal(r.code, 1)
  t.match(r.stderr, /three-mistakes\.yaml:13:\d+ routes\[0\]\.match\.pathPrefx: /)
  t.match(r.stderr, /3 errors in /)
  r = cli('GET http://x/')
  t.equal(r.code, 1)
  t.match(r.stderr, /"GET http:\/\/x\/" is a request, not a config file: the file comes first \(or give it with -c\)/)
  r = cli()
  t.equal(r.code, 1)
  t.match(r.stderr, /-c FILE is required/)
})
