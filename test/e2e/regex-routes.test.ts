// Regex routes and rewrites through a real proxy (issue 15, item 4): a real
// origin sees the rewritten path and the query as sent, over HTTP/1.1 and
// HTTP/2; the regex sees the normalised path, so dot-segment and
// percent-encoding tricks cannot walk around a regex route; and a pattern
// that would take a backtracking engine forever answers on a 50 KB path.
import t from 'tap'
import { testCertificate } from '../helpers/certs.js'
import { echoed, h1, h2, rawRequest, tlsAndPlainListeners } from '../helpers/e2e.js'
import { startOrigin } from '../helpers/origin.js'
import { startProxy } from '../helpers/proxy.js'

t.test('regex routes and rewrites end to end', async (t) => {
  // The origin takes long request lines too (the ReDoS case sends 50 KB of path).
  const origin = await startOrigin(t, undefined, { maxHeaderSize: 256 * 1024 })
  const cert = testCertificate(t)
  const tag = (name: string): string => `requestHeaders: { set: { x-route: ${name} } }`
  const proxy = await startProxy(t, String.raw`
${tlsAndPlainListeners(cert)}
limits: { maxHeaderBytes: 128KiB, maxUriBytes: 128KiB }
routes:
  - name: api-v2
    match: { pathRegex: '^/api/v(\d+)/(?P<rest>.*)$' }
    backend: app
    rewrite: { regex: { replacement: /v$1/$rest } }
    ${tag('api-v2')}
  - name: admin
    match: { pathRegex: '/admin(/.*)?' }
    backend: app
    deny: [0.0.0.0/0, "::/0"]
  - name: public
    match: { pathPrefix: /public/ }
    backend: app
    ${tag('public')}
  - name: legacy
    match: { pathPrefix: /legacy/ }
    backend: app
    rewrite: { regex: { pattern: '/legacy/(\w+)\.php', replacement: /pages/$1 } }
    ${tag('legacy')}
  - name: redos
    match: { pathRegex: '/(a+)+$' }
    backend: app
    ${tag('redos')}
  - name: rest
    backend: app
    ${tag('rest')}
backends:
  app:
    servers: [{ url: "${origin.url}" }]
`)
  const plain = proxy.url('plain')
  const seen = async (path: string): Promise<{ route: string | undefined, url: string }> => {
    const r = await h1(plain, { path, headers: { host: 'example.test' } })
    t.equal(r.status, 200, `${path}: 200`)
    const e = echoed(r)
    return { route: e.headers['x-route'] as string | undefined, url: e.url }
  }

  t.test('the origin sees the rewritten path and the query as sent (HTTP/1.1)', async (t) => {
    t.same(await seen('/api/v2/users'), { route: 'api-v2', url: '/v2/users' })
    t.same(await seen('/api/v10/users/7/orders?x=1&next=/api/v3/z'), { route: 'api-v2', url: '/v10/users/7/orders?x=1&next=/api/v3/z' },
      'query kept whole and not rewritten')
    t.same(await seen('/api/v2/?'), { route: 'api-v2', url: '/v2/?' })
    t.same(await seen('/api/vX/users'), { route: 'rest', url: '/api/vX/users' }, 'no match: the next route, path untouched')
    t.same(await seen('/legacy/about.php?lang=fr'), { route: 'legacy', url: '/pages/about?lang=fr' }, 'rewrite.regex on a prefix route')
    t.same(await seen('/legacy/a/b.html'), { route: 'legacy', url: '/legacy/a/b.html' }, 'a path its pattern does not match is sent as it is')
  })

  t.test('the same over HTTP/2', async (t) => {
    const r = await h2(t, proxy.url('tls'), { ':path': '/api/v3/items/9?sort=desc', ':authority': 'example.test' })
    t.equal(r.status, 200)
    t.equal(echoed(r).url, '/v3/items/9?sort=desc')
    t.equal(echoed(r).headers['x-route'], 'api-v2')
    const legacy = await h2(t, proxy.url('tls'), { ':path': '/legacy/contact.php', ':authority': 'example.test' })
    t.equal(echoed(legacy).url, '/pages/contact')
  })

  t.test('the regex sees the normalised path: no walking around a regex route', async (t) => {
    const before = origin.requests.length
    for (const target of ['/admin', '/admin/users', '/public/../admin/users', '/public/./../admin/x?y=1', '/public/%2e%2e/admin/users',
      '/%61dmin/users', '/public/..%2Fadmin', '/x/y/../../admin']) {
      const r = await rawRequest(proxy.port('plain'), `GET ${target} HTTP/1.1\r\nHost: example.test\r\nConnection: close\r\n\r\n`)
      // `/public/..%2Fadmin` keeps its escaped slash (escapedSlashes: keep), but nginx and WHATWG parsers
      // read it as /admin, another route: refused (plan.ts, lenientReading).
      if (target === '/public/..%2Fadmin') {
        t.equal(r.status, 400, `${target}: read as /admin by lenient origins`)
        t.equal(r.headers['x-switchyard-error'], 'LB_ERR_BAD_REQUEST')
        continue
      }
      t.equal(r.status, 403, `${target}: the admin regex route answers`)
      t.equal(r.headers['x-switchyard-error'], 'LB_ERR_FORBIDDEN')
    }
    t.notOk(origin.requests.slice(before).some((s) => s.url.includes('admin')), 'the origin never saw an admin path')
    const h2r = await h2(t, proxy.url('tls'), { ':path': '/public/../admin/users', ':authority': 'example.test' })
    t.equal(h2r.status, 403, 'h2 too')
  })

  t.test('a pattern that is exponential for backtracking engines answers on a 50 KB path', async (t) => {
    const as = 'a'.repeat(50 * 1024)
    // No match: `(a+)+$` against a run of `a` ending in `b` (a backtracking engine tries 2^50000 ways).
    t.same(await seen(`/${as}b`), { route: 'rest', url: `/${as}b` })
    t.same(await seen(`/${as}`), { route: 'redos', url: `/${as}` }, 'and a match')
    const r = await h2(t, proxy.url('tls'), { ':path': `/${as}b`, ':authority': 'example.test' })
    t.equal(echoed(r).headers['x-route'], 'rest', 'h2 too')
  })
})

t.test('a rewrite cannot make a dot-segment that walks past its prefix to another route\'s path', async (t) => {
  const origin = await startOrigin(t)
  const proxy = await startProxy(t, String.raw`
listeners: [{ name: plain, bind: "127.0.0.1:0" }]
routes:
  - name: secret
    match: { pathPrefix: /secret }
    backend: app
    deny: [0.0.0.0/0, "::/0"]
  - name: static
    match: { pathPrefix: /static }
    backend: app
    rewrite: { stripPrefix: /static, addPrefix: /public }
  - name: img
    match: { pathRegex: '^/img-(.*)$' }
    backend: app
    rewrite: { regex: { replacement: /public/img/$1 } }
backends: { app: { servers: [{ url: "${origin.url}" }] } }
`)
  const get = (target: string) => rawRequest(proxy.port('plain'), `GET ${target} HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n`)
  t.equal((await get('/secret')).status, 403, 'the protected path')
  // Routed by `static` (and `img`): `static..` and `img-..` are names, not dot-segments, until the rewrite cuts them.
  for (const target of ['/static../secret', '/static../secret?x=1', '/img-../x', '/img-./x']) {
    const r = await get(target)
    t.equal(r.status, 400, `${target}: refused`)
    t.equal(r.headers['x-switchyard-error'], 'LB_ERR_BAD_REQUEST')
  }
  t.equal(origin.requests.length, 0, 'the origin never saw /public/../secret nor /public/img/../x')
  const fine = await get('/static/css/site.css')
  t.equal(fine.status, 200)
  t.equal(origin.requests.at(-1)?.url, '/public/css/site.css', 'an ordinary rewrite goes through')
  t.equal((await get('/img-a..b/c')).status, 200, 'dots inside a name are no dot-segment')
})
