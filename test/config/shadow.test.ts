// Routes that can never match: the pure detection, checked against the real
// router, then the warning as `check` prints it (path, line, both routes).

import t from 'tap'
import { parseConfig } from '../../src/config/load.js'
import type { RouteConfig } from '../../src/config/schema.js'
import { shadowedRoutes } from '../../src/config/shadow.js'
import { HTTP_METHODS } from '../../src/config/forms.js'
import { createRouter } from '../../src/router/router.js'
import type { ConfigIssue } from '../../src/errors.js'
import { BASE } from '../helpers/config.js'

let next = 0
function route (name: string, match: Partial<RouteConfig['match']> = {}): RouteConfig {
  return {
    name,
    index: next++,
    match: { pathPrefix: '/', methods: [], listeners: [], headers: {}, ...match },
    backend: 'api',
    rewrite: {},
    requestHeaders: { set: {}, remove: [] },
    responseHeaders: { set: {}, remove: [] },
    earlyHints: [],
    consistency: 'eventual',
    allow: [],
    deny: []
  }
}

const shadowed = (routes: RouteConfig[]): Array<[string, string[]]> =>
  shadowedRoutes(routes).map((s) => [s.route.name, s.by.map((b) => b.name)])

t.test('identical conditions: the later route never matches', async (t) => {
  t.same(shadowed([route('a'), route('b')]), [['b', ['a']]])
  t.same(shadowed([route('a', { host: 'x.test', pathPrefix: '/v1' }), route('b', { host: 'x.test', pathPrefix: '/v1' })]), [['b', ['a']]])
  t.same(shadowed([route('a', { headers: { 'x-a': '1', 'x-b': '2' } }), route('b', { headers: { 'x-b': '2', 'x-a': '1' } })]), [['b', ['a']]],
    'header order does not matter')
  t.same(shadowed([route('a', { methods: ['GET'] }), route('b', { methods: ['GET'] })]), [['b', ['a']]])
  t.same(shadowed([route('a'), route('b'), route('c')]), [['b', ['a']], ['c', ['a']]], 'each names the route that takes its requests')
})

t.test('methods covered by earlier routes, alone or together', async (t) => {
  t.same(shadowed([route('a', { methods: ['GET', 'POST'] }), route('b', { methods: ['POST'] })]), [['b', ['a']]])
  t.same(shadowed([route('a', { methods: ['GET'] }), route('b', { methods: ['POST'] }), route('c', { methods: ['POST', 'GET'] })]),
    [['c', ['a', 'b']]])
  t.same(shadowed([route('a', { methods: ['GET'] }), route('b', { methods: ['GET', 'PUT'] })]), [], 'PUT still reaches b')
})

t.test('routes that differ keep their requests', async (t) => {
  t.same(shadowed([route('a'), route('b', { methods: ['GET'] })]), [], 'b has more conditions: it goes first')
  t.same(shadowed([route('a', { methods: ['GET'] }), route('b')]), [], 'b gets every other method')
  t.same(shadowed([route('a', { methods: [...HTTP_METHODS] }), route('b')]), [], 'b still gets methods nobody lists (PROPFIND…)')
  t.same(shadowed([route('a'), route('b', { pathPrefix: '/v1' })]), [], 'a longer prefix goes first')
  t.same(shadowed([route('a', { pathPrefix: '/v1' }), route('b')]), [])
  t.same(shadowed([route('a'), route('b', { host: 'x.test' })]), [], 'another host class')
  t.same(shadowed([route('a', { host: '*.x.test' }), route('b', { host: 'a.x.test' })]), [])
  t.same(shadowed([route('a', { headers: { 'x-a': '1' } }), route('b', { headers: { 'x-a': '2' } })]), [])
  t.same(shadowed([route('a', { headers: { 'x-a': '1' } }), route('b')]), [])
  t.same(shadowed([route('a', { listeners: ['web'] }), route('b', { listeners: ['ops'] })]), [], 'other listeners')
  t.same(shadowed([route('a', { listeners: ['web'] }), route('b')]), [], 'b gets the other listeners\' requests')
  t.same(shadowed([route('a'), route('b', { listeners: ['web'] })]), [], 'b is bound: it goes first on its listener')
})

t.test('pathRegex: the same pattern twice shadows; a regex and a prefix never do', async (t) => {
  t.same(shadowed([route('a', { pathRegex: '/v(\\d+)/.*' }), route('b', { pathRegex: '/v(\\d+)/.*' })]), [['b', ['a']]])
  t.same(shadowed([route('a', { pathRegex: '/v(\\d+)/.*', methods: ['GET'] }), route('b', { pathRegex: '/v(\\d+)/.*', methods: ['GET'] })]), [['b', ['a']]])
  t.same(shadowed([route('a'), route('b', { pathRegex: '/.*' })]), [], 'regex routes are tried before the prefix route')
  t.same(shadowed([route('a', { pathRegex: '/.*' }), route('b')]), [], 'the prefix route still gets what no regex takes (none here, but that is not guessed)')
  t.same(shadowed([route('a', { pathRegex: '/a/.*' }), route('b', { pathRegex: '/b/.*' })]), [])
})

t.test('the same listeners, in any order, are the same conditions', async (t) => {
  t.same(shadowed([route('a', { listeners: ['web', 'ops'] }), route('b', { listeners: ['ops', 'web'] })]), [['b', ['a']]])
})

t.test('agrees with the router: a shadowed route is never what it returns', async (t) => {
  // Every combination of a few conditions, every request over the same values.
  const hosts = [undefined, 'x.test']
  const paths: Array<Partial<RouteConfig['match']>> = [{ pathPrefix: '/' }, { pathPrefix: '/v1' }, { pathRegex: '/v1/.*' }]
  const methodSets = [[], ['GET'], ['POST'], ['GET', 'POST']]
  const headerSets = [{}, { 'x-a': '1' }]
  const shapes: Array<Partial<RouteConfig['match']>> = []
  for (const host of hosts) for (const path of paths) for (const methods of methodSets) for (const headers of headerSets) {
    shapes.push({ ...(host === undefined ? {} : { host }), ...path, methods, headers })
  }
  let checked = 0
  for (let i = 0; i < 400; i++) {
    // A deterministic pseudo-random list of 2-5 routes.
    const n = 2 + (i % 4)
    const routes = Array.from({ length: n }, (_, k) => route(`r${k}`, shapes[(i * 7 + k * 13 + (i >> 2) * k) % shapes.length]))
    const never = new Set(shadowedRoutes(routes).map((s) => s.route.name))
    const router = createRouter(routes.map((config) => ({ config })))
    const reached = new Set<string>()
    for (const host of ['x.test', 'y.test']) for (const path of ['/', '/v1', '/v1/x']) for (const method of ['GET', 'POST', 'PUT']) for (const xa of [undefined, '1', '2']) {
      const hit = router.match({ host, path, method, header: (name) => (name === 'x-a' ? xa : undefined) })
      if (hit !== undefined) reached.add(hit.config.name)
    }
    for (const r of routes) {
      checked++
      if (never.has(r.name)) t.notOk(reached.has(r.name), `case ${i}: ${r.name} is reported unreachable but matched`)
      else if (!reached.has(r.name)) t.fail(`case ${i}: ${r.name} never matched but is not reported`)
    }
  }
  t.ok(checked > 1000, `${checked} routes checked`)
})

t.test('the warning names both routes and their lines; it is not an error', async (t) => {
  const warnings: ConfigIssue[] = []
  const text = BASE + [
    'routes:',
    '  - name: first',
    '    match: { pathPrefix: /api/ }',
    '    backend: api',
    '  - name: second',
    '    match: { pathPrefix: /api/ }',
    '    backend: api',
    '  - name: writes',
    '    match: { methods: [POST, PUT] }',
    '    backend: api',
    '  - name: posts',
    '    match: { methods: [post] }',
    '    backend: api'
  ].join('\n') + '\n'
  const c = parseConfig(text, 'config.yaml', { onWarning: (w) => warnings.push(w) })
  t.equal(c.routes.length, 4, 'the config is valid')
  t.same(warnings, [
    {
      path: 'routes[1]',
      message: 'route `second` (line 11) can never match: route `first` (line 8) has the same host, pathPrefix and headers and comes first',
      line: 11,
      column: 5
    },
    {
      path: 'routes[3]',
      message: 'route `posts` (line 17) can never match: route `writes` (line 14) has the same host, pathPrefix and headers, ' +
        'comes first, and lists every method of this one',
      line: 17,
      column: 5
    }
  ])
})

t.test('no warning guesses about routes that have mistakes', async (t) => {
  const warnings: ConfigIssue[] = []
  const text = BASE + 'routes:\n  - { match: { pathPrefx: /a }, backend: api }\n  - { backend: api }\n'
  t.throws(() => parseConfig(text, 'config.yaml', { onWarning: (w) => warnings.push(w) }))
  t.same(warnings, [], 'route 0 was read with a default match; no "route 1 can never match"')
})
