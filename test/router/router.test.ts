import t from 'tap'
import type { RouteConfig } from '../../src/config/schema.js'
import { createRouter, rewritePath } from '../../src/router/router.js'

let index = 0
function route (name: string, match: Partial<RouteConfig['match']>): { config: RouteConfig } {
  return {
    config: {
      name, index: index++, backend: 'b',
      match: { pathPrefix: '/', methods: [], listeners: [], headers: {}, ...match },
      rewrite: {}, requestHeaders: { set: {}, remove: [] }, responseHeaders: { set: {}, remove: [] }, earlyHints: [], consistency: 'eventual', allow: [], deny: []
    }
  }
}
const req = (host: string, path: string, method = 'GET', headers: Record<string, string> = {}) =>
  ({ host, path, method, header: (n: string) => headers[n] })

t.test('host classes: exact, then wildcard, then any; fall through when a class has no match', async (t) => {
  const r = createRouter([
    route('any', {}),
    route('wild', { host: '*.example.com' }),
    route('exact', { host: 'api.example.com', pathPrefix: '/v1' })
  ])
  t.equal(r.match(req('api.example.com', '/v1/x'))?.config.name, 'exact')
  t.equal(r.match(req('api.example.com', '/other'))?.config.name, 'wild', 'exact class has no match → wildcard')
  t.equal(r.match(req('www.example.com', '/'))?.config.name, 'wild')
  t.equal(r.match(req('a.b.example.com', '/'))?.config.name, 'any', 'wildcard covers one label only')
  t.equal(r.match(req('example.com', '/'))?.config.name, 'any')
  t.equal(r.match(req('other.test', '/'))?.config.name, 'any')
})

t.test('longest prefix, then more conditions, then file order', async (t) => {
  const r = createRouter([
    route('root', {}),
    route('api', { pathPrefix: '/api' }),
    route('api-v1', { pathPrefix: '/api/v1' }),
    route('api-post', { pathPrefix: '/api', methods: ['POST'] }),
    route('api-beta', { pathPrefix: '/api', methods: ['POST'], headers: { 'x-beta': '1' } }),
    route('api-dup', { pathPrefix: '/api' })
  ])
  t.equal(r.match(req('h', '/api/v1/users'))?.config.name, 'api-v1')
  t.equal(r.match(req('h', '/api/x'))?.config.name, 'api')
  t.equal(r.match(req('h', '/api/x', 'POST'))?.config.name, 'api-post')
  t.equal(r.match(req('h', '/api/x', 'POST', { 'x-beta': '1' }))?.config.name, 'api-beta')
  t.equal(r.match(req('h', '/api/x', 'POST', { 'x-beta': '2' }))?.config.name, 'api-post')
  t.equal(r.match(req('h', '/apix'))?.config.name, 'api', 'plain string prefix')
  t.equal(r.match(req('h', '/'))?.config.name, 'root')
  t.same(r.table.map((x) => x.config.name), ['api-v1', 'api-beta', 'api-post', 'api', 'api-dup', 'root'])
})

t.test('match.listeners: a route takes only its listeners\' requests, and counts as one more condition', async (t) => {
  const r = createRouter([
    route('public', { pathPrefix: '/api' }),
    route('internal', { pathPrefix: '/api', listeners: ['internal', 'ops'] }),
    route('ops-only', { pathPrefix: '/ops', listeners: ['ops'] })
  ])
  const on = (listener: string | undefined, path: string) => r.match({ ...req('h', path), listener })?.config.name
  t.equal(on('internal', '/api/x'), 'internal', 'bound beats unbound with the same host and prefix, whatever the file order')
  t.equal(on('ops', '/api/x'), 'internal')
  t.equal(on('public', '/api/x'), 'public', 'other listeners fall through to the unbound route')
  t.equal(on('public', '/ops/x'), undefined, 'a route bound to another listener is no route here')
  t.equal(on('ops', '/ops/x'), 'ops-only')
  t.equal(on(undefined, '/ops/x'), 'ops-only', 'listener not known (admin purge): not checked')
  t.same(r.table.map((x) => x.config.name), ['internal', 'ops-only', 'public'])
  const account = r.explain({ ...req('h', '/ops/x'), listener: 'public' })
  t.equal(account.route, undefined)
  t.same(account.routes.find((v) => v.route.config.name === 'ops-only')?.reasons, ['listener public is not in ops'])
  t.same(r.explain({ ...req('h', '/ops/x'), listener: '' }).routes.find((v) => v.route.config.name === 'ops-only')?.reasons,
    ['arrives on no listener; the route takes ops'])
})

t.test('no route', async (t) => {
  const r = createRouter([route('only', { host: 'a.test', pathPrefix: '/x', methods: ['GET'] })])
  t.equal(r.match(req('b.test', '/x')), undefined)
  t.equal(r.match(req('a.test', '/y')), undefined)
  t.equal(r.match(req('a.test', '/x', 'DELETE')), undefined)
})

t.test('rewritePath', async (t) => {
  t.equal(rewritePath('/v1/users?id=1', '/v1', undefined), '/users?id=1')
  t.equal(rewritePath('/v1', '/v1', undefined), '/')
  t.equal(rewritePath('/v1?x=1', '/v1', undefined), '/?x=1')
  t.equal(rewritePath('/other', '/v1', undefined), '/other')
  t.equal(rewritePath('/users', undefined, '/api'), '/api/users')
  t.equal(rewritePath('/users', undefined, '/api/'), '/api/users')
  t.equal(rewritePath('/v1/users?q', '/v1', '/internal'), '/internal/users?q')
})

t.test('pathRegex: regex routes before prefix routes of their host class, the whole path matched', async (t) => {
  const r = createRouter([
    route('root', {}),
    route('api', { pathPrefix: '/api/' }),
    route('api-long', { pathPrefix: '/api/v2/users/' }),
    route('versioned', { pathRegex: '^/api/v(\\d+)/users/(\\d+)$' }),
    route('versioned-get', { pathRegex: '^/api/v(\\d+)/users/(\\d+)$', methods: ['GET'] }),
    route('images', { pathRegex: '/img/.*\\.(png|jpg)' }),
    route('host-regex', { host: 'a.test', pathRegex: '/only/.*' })
  ])
  t.equal(r.match(req('h', '/api/v2/users/7', 'DELETE'))?.config.name, 'versioned', 'a regex beats even a longer prefix (NGINX: regex locations first)')
  t.equal(r.match(req('h', '/api/v2/users/7'))?.config.name, 'versioned-get', 'more conditions first among regex routes, as among prefixes')
  t.equal(r.match(req('h', '/api/v2/users/7/x'))?.config.name, 'api-long', 'a regex takes the whole path or nothing; then the longest prefix')
  t.equal(r.match(req('h', '/x/api/v2/users/7'))?.config.name, 'root', 'not found in the middle either')
  t.equal(r.match(req('h', '/img/a/b.png'))?.config.name, 'images')
  t.equal(r.match(req('h', '/img/a.gif'))?.config.name, 'root')
  t.equal(r.match(req('a.test', '/only/x'))?.config.name, 'host-regex', 'host class first')
  t.equal(r.match(req('a.test', '/img/x.png'))?.config.name, 'images', 'an exact host class with no match falls through')
  t.equal(r.match(req('b.test', '/only/x'))?.config.name, 'root')
  t.same(r.table.map((x) => x.config.name), ['host-regex', 'versioned-get', 'versioned', 'images', 'api-long', 'api', 'root'])
})

t.test('pathRegex: explain says what matched and what the groups caught, or why it missed', async (t) => {
  const r = createRouter([
    route('api-v2', { pathRegex: '^/api/v(\\d+)/(?P<rest>.*)$' }),
    route('posts', { pathRegex: '/posts/\\d+', methods: ['GET'] }),
    route('root', {})
  ])
  const hit = r.explain(req('h', '/api/v2/users'))
  t.equal(hit.route?.config.name, 'api-v2')
  t.same(hit.routes.find((v) => v.verdict === 'match')?.reasons, ['pathRegex ^/api/v(\\d+)/(?P<rest>.*)$ matched the whole path /api/v2/users, $1=2, $rest=users'])
  const miss = r.explain(req('h', '/posts/x', 'POST'))
  t.equal(miss.route?.config.name, 'root')
  t.same(miss.routes.find((v) => v.route.config.name === 'posts')?.reasons,
    ['method POST is not in GET', 'path /posts/x does not match pathRegex /posts/\\d+ (the whole path)'], 'every failed condition')
  t.same(miss.routes.find((v) => v.route.config.name === 'api-v2')?.reasons,
    ['path /posts/x does not match pathRegex ^/api/v(\\d+)/(?P<rest>.*)$ (the whole path)'])
  t.equal(miss.routes.find((v) => v.route.config.name === 'root')?.reasons.length, 0, 'a prefix match has nothing to add')
})

t.test('pathRegex: a pattern the loader would refuse fails when the table is built, not per request', async (t) => {
  t.throws(() => createRouter([route('bad', { pathRegex: '(a)\\1' })]), /route bad: match\.pathRegex: `\\1` is a backreference/)
})
