// Routing through a real proxy: host classes, longest prefix, method and header
// conditions, rewrites, host normalization, absolute-form targets, and shard
// selection by header / cookie / query / path segment.
import t from 'tap'
import type { Test } from 'tap'
import { Agent } from 'node:http'
import { startDemoOrigin } from '../../src/demo/origin.js'
import type { DemoEcho } from '../../src/demo/origin.js'
import { testCertificate } from '../helpers/certs.js'
import { echoed, h1, h2, rawRequest, tlsAndPlainListeners } from '../helpers/e2e.js'
import { startOrigin } from '../helpers/origin.js'
import type { H1Options, Reply } from '../helpers/e2e.js'
import { startProxy } from '../helpers/proxy.js'
import type { RunningProxy } from '../helpers/proxy.js'

t.test('route selection', async (t) => {
  const origin = await startOrigin(t)
  const cert = testCertificate(t)
  // Every route tags the request with its name, so the origin tells which matched.
  const route = (name: string, match: string, extra = ''): string =>
    `  - { name: ${name}, match: ${match}, backend: app, requestHeaders: { set: { x-route: ${name} } }${extra} }`
  const proxy = await startProxy(t, `
${tlsAndPlainListeners(cert)}
routes:
${route('any', '{}')}
${route('wild', '{ host: "*.example.com" }')}
${route('exact', '{ host: shop.example.com }')}
${route('deep-special', '{ host: deep.example.com, pathPrefix: /special }')}
${route('api', '{ pathPrefix: /api }')}
${route('api-v2', '{ pathPrefix: /api/v2 }')}
${route('api-v2-admin', '{ pathPrefix: /api/v2/admin }')}
${route('m-read', '{ pathPrefix: /m }')}
${route('m-write', '{ pathPrefix: /m, methods: [POST, PUT] }')}
${route('h-any', '{ pathPrefix: /h }')}
${route('h-v2', '{ pathPrefix: /h, headers: { x-version: "2" } }')}
${route('rw-both', '{ pathPrefix: /strip/ }', ', rewrite: { stripPrefix: /strip, addPrefix: /internal }')}
${route('rw-strip', '{ pathPrefix: /only-strip }', ', rewrite: { stripPrefix: /only-strip }')}
${route('rw-add', '{ pathPrefix: /add }', ', rewrite: { addPrefix: /v2 }')}
backends:
  app:
    servers: [{ url: "${origin.url}" }]
`)
  const plain = proxy.url('plain')
  const via = async (opts: H1Options): Promise<{ route: string | undefined, url: string, host: string | undefined }> => {
    const r = await h1(plain, opts)
    t.equal(r.status, 200)
    const e = echoed(r)
    return { route: e.headers['x-route'] as string | undefined, url: e.url, host: e.headers.host }
  }
  const routeOf = async (host: string, path = '/', opts: H1Options = {}): Promise<string | undefined> =>
    (await via({ ...opts, path, headers: { ...opts.headers, host } })).route

  t.test('exact host beats wildcard beats any host', async (t) => {
    t.equal(await routeOf('shop.example.com'), 'exact')
    t.equal(await routeOf('x.example.com'), 'wild')
    t.equal(await routeOf('a.b.example.com'), 'any', 'a wildcard covers one label only')
    t.equal(await routeOf('example.com'), 'any', 'a wildcard does not cover the apex')
    t.equal(await routeOf('other.test'), 'any')
    t.equal(await routeOf('deep.example.com', '/special/x'), 'deep-special')
    t.equal(await routeOf('deep.example.com', '/else'), 'wild', 'an exact host with no matching path falls through')
  })

  t.test('host matching ignores port and case', async (t) => {
    t.equal(await routeOf('SHOP.Example.COM:8443'), 'exact')
    t.equal(await routeOf('shop.example.com.'), 'exact', 'trailing dot')
    t.equal(await routeOf('X.EXAMPLE.com:1'), 'wild')
    const r = await h2(t, proxy.url('tls'), { ':authority': 'Shop.EXAMPLE.com:9999' })
    t.equal(echoed(r).headers['x-route'], 'exact', 'h2 :authority')
  })

  t.test('the longest pathPrefix wins', async (t) => {
    t.equal(await routeOf('other.test', '/api/v2/admin/users'), 'api-v2-admin')
    t.equal(await routeOf('other.test', '/api/v2/users?x=1'), 'api-v2')
    t.equal(await routeOf('other.test', '/api/v1'), 'api')
    t.equal(await routeOf('other.test', '/apix'), 'api', 'a plain string prefix')
    t.equal(await routeOf('other.test', '/ap'), 'any')
  })

  t.test('method and header conditions', async (t) => {
    t.equal(await routeOf('other.test', '/m', { method: 'POST' }), 'm-write')
    t.equal(await routeOf('other.test', '/m', { method: 'PUT' }), 'm-write')
    t.equal(await routeOf('other.test', '/m'), 'm-read')
    t.equal(await routeOf('other.test', '/m', { method: 'DELETE' }), 'm-read')
    t.equal(await routeOf('other.test', '/h', { headers: { 'x-version': '2' } }), 'h-v2')
    t.equal(await routeOf('other.test', '/h', { headers: { 'x-version': '1' } }), 'h-any')
    t.equal(await routeOf('other.test', '/h'), 'h-any')
    // Servers read two lines as the first, the last, or "2, 1": routed by none of those readings.
    const twice = await h1(plain, { path: '/h', headers: { host: 'other.test', 'x-version': ['2', '1'] } })
    t.equal(twice.status, 400, 'a routing field on two lines is refused')
    t.equal(twice.headers['x-switchyard-error'], 'LB_ERR_BAD_REQUEST')
    const r = await h2(t, proxy.url('tls'), { ':path': '/h', ':method': 'POST', 'x-version': '2' }, 'body')
    t.equal(echoed(r).headers['x-route'], 'h-v2', 'h2 too')
  })

  t.test('rewrite stripPrefix / addPrefix keeps the query', async (t) => {
    const cases: Array<[string, string, string]> = [
      ['/strip/a/b?x=1&y=2', 'rw-both', '/internal/a/b?x=1&y=2'],
      ['/strip/?q', 'rw-both', '/internal/?q'],
      ['/only-strip/a?x=1', 'rw-strip', '/a?x=1'],
      ['/only-strip?x=1', 'rw-strip', '/?x=1'],
      ['/only-strip', 'rw-strip', '/'],
      ['/add/me?z=%20', 'rw-add', '/v2/add/me?z=%20']
    ]
    for (const [path, name, upstream] of cases) {
      const r = await via({ path })
      t.equal(r.route, name, `${path} → ${name}`)
      t.equal(r.url, upstream, `${path} reaches the origin as ${upstream}`)
    }
    const r = await h2(t, proxy.url('tls'), { ':path': '/strip/h2?k=v' })
    t.equal(echoed(r).url, '/internal/h2?k=v', 'h2 too')
  })

  t.test('an absolute-form target routes by its authority', async (t) => {
    const r = await rawRequest(proxy.port('plain'),
      'GET http://shop.example.com/abs?x=1 HTTP/1.1\r\nHost: other.test\r\nConnection: close\r\n\r\n')
    t.equal(r.status, 200)
    const e = JSON.parse(r.body) as { url: string, headers: Record<string, string> }
    t.equal(e.headers['x-route'], 'exact')
    t.equal(e.url, '/abs?x=1', 'origin-form upstream')
    t.equal(e.headers.host, 'shop.example.com', 'Host is the target\'s authority')
    const query = await rawRequest(proxy.port('plain'),
      'GET http://X.Example.com:8080?y=2 HTTP/1.1\r\nHost: other.test\r\nConnection: close\r\n\r\n')
    t.equal(query.status, 200)
    const q = JSON.parse(query.body) as { url: string, headers: Record<string, string> }
    t.equal(q.headers['x-route'], 'wild', 'authority with a port and mixed case')
    t.equal(q.url, '/?y=2', 'an empty path becomes /')
  })
})

interface Replicas { readonly urls: readonly string[] }

/** Four demo origins: shard a (a1, a2) and shard b (b1, b2). */
async function replicas (t: Test): Promise<Replicas> {
  const urls: string[] = []
  for (const [shard, replica] of [['a', 'a1'], ['a', 'a2'], ['b', 'b1'], ['b', 'b2']] as const) {
    const o = await startDemoOrigin({ port: 0, shard, replica })
    t.teardown(() => o.close())
    urls.push(`http://127.0.0.1:${o.port}`)
  }
  return { urls }
}

function shardedBackend (name: string, shardBy: string, r: Replicas): string {
  return `
  ${name}:
    shardBy: ${shardBy}
    shards:
      - { name: a, servers: [{ url: "${r.urls[0]}" }, { url: "${r.urls[1]}" }] }
      - { name: b, servers: [{ url: "${r.urls[2]}" }, { url: "${r.urls[3]}" }] }`
}

async function shardProxy (t: Test): Promise<{ proxy: RunningProxy, get: (opts: H1Options) => Promise<DemoEcho> }> {
  const r = await replicas(t)
  const proxy = await startProxy(t, `
listeners:
  - name: plain
    bind: 127.0.0.1:0
routes:
  - { match: { pathPrefix: /h }, backend: byHeader }
  - { match: { pathPrefix: /c }, backend: byCookie }
  - { match: { pathPrefix: /q }, backend: byQuery }
  - { match: { pathPrefix: /p/ }, backend: byPath }
backends:${shardedBackend('byHeader', '{ header: x-user-id }', r)}${shardedBackend('byCookie', '{ cookie: uid }', r)}${shardedBackend('byQuery', '{ query: id, missing: any }', r)}${shardedBackend('byPath', '{ pathSegment: 2 }', r)}
`)
  const agent = new Agent({ keepAlive: true, maxSockets: 1 })
  t.teardown(() => agent.destroy())
  const get = async (opts: H1Options): Promise<DemoEcho> => {
    const reply = await h1(proxy.url('plain'), { ...opts, agent })
    if (reply.status !== 200) throw new Error(`status ${reply.status}: ${reply.text}`)
    return JSON.parse(reply.text) as DemoEcho
  }
  return { proxy, get }
}

t.test('routes per listener: a route bound to one listener takes its requests only; on another it is the 404 of no route', async (t) => {
  const origin = await startOrigin(t)
  const cert = testCertificate(t)
  const proxy = await startProxy(t, `
${tlsAndPlainListeners(cert)}
routes:
  - { name: internal, match: { pathPrefix: /internal/, listeners: [plain] }, backend: app, requestHeaders: { set: { x-route: internal } } }
  - { name: secure, match: { pathPrefix: /secure/, listeners: [tls] }, backend: app, requestHeaders: { set: { x-route: secure } } }
  - { name: shared, match: { pathPrefix: /shared/ }, backend: app, requestHeaders: { set: { x-route: shared } } }
backends:
  app:
    servers: [{ url: "${origin.url}" }]
`)
  const routeOf = (r: Reply): string | undefined => r.status === 200 ? echoed(r).headers['x-route'] as string : undefined
  const plain = await h1(proxy.url('plain'), { path: '/internal/a' })
  t.equal(routeOf(plain), 'internal', 'its own listener')
  for (const r of [await h1(proxy.url('tls'), { path: '/internal/a' }), await h2(t, proxy.url('tls'), { ':path': '/internal/a' })]) {
    t.equal(r.status, 404, 'another listener (h1 and h2): no route')
    t.equal(r.headers['x-switchyard-error'], 'LB_ERR_NO_ROUTE')
  }
  t.equal(routeOf(await h2(t, proxy.url('tls'), { ':path': '/secure/b' })), 'secure')
  const wrong = await h1(proxy.url('plain'), { path: '/secure/b' })
  t.equal(wrong.status, 404)
  t.equal(wrong.headers['x-switchyard-error'], 'LB_ERR_NO_ROUTE')
  t.equal(routeOf(await h1(proxy.url('plain'), { path: '/shared/c' })), 'shared', 'an unbound route: every listener')
  t.equal(routeOf(await h2(t, proxy.url('tls'), { ':path': '/shared/c' })), 'shared')
  t.equal(origin.requests.length, 4, 'nothing refused reached the origin')
})

t.test('shardBy header: a key always lands on its shard; replicas alternate inside it', async (t) => {
  const { get } = await shardProxy(t)
  const shardOf = new Map<string, string>()
  const shardsUsed = new Set<string>()
  let stable = true
  let alternating = true
  for (let round = 0; round < 2; round++) {
    for (let i = 0; i < 50; i++) {
      const id = `user-${i}`
      const seen: DemoEcho[] = []
      for (let k = 0; k < 2; k++) seen.push(await get({ path: '/h', headers: { 'x-user-id': id } }))
      for (const e of seen) {
        const known = shardOf.get(id)
        if (known === undefined) shardOf.set(id, e.shard)
        else if (known !== e.shard) stable = false
        shardsUsed.add(e.shard)
      }
      if (seen[0]!.replica === seen[1]!.replica) alternating = false
    }
  }
  t.ok(stable, 'each of 50 ids always hit the same shard over 200 requests')
  t.ok(alternating, 'two requests in a row to a shard went to its two replicas')
  t.same([...shardsUsed].sort(), ['a', 'b'], 'both shards own some ids')
  const counts = [...shardOf.values()].reduce((m, s) => m.set(s, (m.get(s) ?? 0) + 1), new Map<string, number>())
  t.ok((counts.get('a') ?? 0) >= 10 && (counts.get('b') ?? 0) >= 10, `ids spread over shards (${JSON.stringify([...counts])})`)

  const keyless = await get({ path: '/h' })
  t.ok(keyless.shard === 'a' || keyless.shard === 'b', 'a key-less request with missing: any (default) gets 200')
})

t.test('shardBy cookie / query / pathSegment route a key to a stable shard', async (t) => {
  const { get } = await shardProxy(t)
  const ways: Array<[string, (key: string) => H1Options]> = [
    ['cookie', (key) => ({ path: '/c', headers: { cookie: `theme=dark; uid=${key}; other=1` } })],
    ['query', (key) => ({ path: `/q/items?page=2&id=${encodeURIComponent(key)}` })],
    ['pathSegment', (key) => ({ path: `/p/${encodeURIComponent(key)}/profile?x=1` })]
  ]
  for (const [way, opts] of ways) {
    const shards = new Set<string>()
    let stable = true
    for (let i = 0; i < 20; i++) {
      const key = `k${i}`
      const first = (await get(opts(key))).shard
      shards.add(first)
      for (let k = 0; k < 2; k++) if ((await get(opts(key))).shard !== first) stable = false
    }
    t.ok(stable, `${way}: every key stayed on its shard`)
    t.same([...shards].sort(), ['a', 'b'], `${way}: keys spread over both shards`)
  }

  // The same key picks the same shard whatever it is carried in.
  for (let i = 0; i < 10; i++) {
    const key = `same-${i}`
    const byHeader = (await get({ path: '/h', headers: { 'x-user-id': key } })).shard
    t.equal((await get(ways[0]![1](key))).shard, byHeader, `${key}: cookie agrees with header`)
    t.equal((await get(ways[1]![1](key))).shard, byHeader, `${key}: query agrees with header`)
    t.equal((await get(ways[2]![1](key))).shard, byHeader, `${key}: path segment agrees with header`)
  }

  for (const path of ['/c', '/q/items?page=2', '/q/items?id=', '/p/']) {
    const e = await get({ path })
    t.ok(e.shard === 'a' || e.shard === 'b', `key-less ${path} with missing: any gets 200`)
  }
})
