// Regex routes and rewrites as `switchyard explain` and `check` show them
// (issue 15, items 4 and 7): the same plan() decision the proxy makes, the
// pattern, what its groups caught, and the path sent upstream.
import t from 'tap'
import { parseConfig } from '../src/config/load.js'
import { explain, formatExplanation, parseExplainRequest } from '../src/explain.js'
import { routingTable } from '../src/router/table.js'

const config = parseConfig(String.raw`listeners:
  - { name: web, bind: "127.0.0.1:8080" }
routes:
  - name: api-v2
    match: { pathRegex: '^/api/v(\d+)/(.*)$' }
    backend: app
    rewrite: { regex: { replacement: /v$1/$2 } }
  - name: legacy
    match: { pathPrefix: /legacy/ }
    backend: app
    rewrite: { regex: { pattern: '/legacy/(?P<page>\w+)\.php', replacement: /pages/$page } }
  - { name: app, backend: app }
backends: { app: { servers: [{ url: "http://127.0.0.1:9001" }] } }
`, '', { checkFiles: false })

t.test('a regex route: matched, its groups, the rewritten path', async (t) => {
  const e = explain(config, parseExplainRequest('GET http://api.test:8080/api/v2/users?x=1'))
  t.equal(e.route, 'api-v2')
  const line = e.routes.find((r) => r.name === 'api-v2')!
  t.equal(line.pathRegex, String.raw`^/api/v(\d+)/(.*)$`)
  t.same(line.reasons, [String.raw`pathRegex ^/api/v(\d+)/(.*)$ matched the whole path /api/v2/users, $1=2, $2=users`])
  t.equal(e.routes.find((r) => r.name === 'app')?.pathRegex, undefined, 'a prefix route has none')
  t.same(e.rewrite?.regex, { pattern: String.raw`^/api/v(\d+)/(.*)$`, replacement: '/v$1/$2', captures: '$1=2, $2=users' })
  t.equal(e.rewrite?.pathAfter, '/v2/users?x=1', 'query kept')
  t.match(e.result.summary, /^forwarded to /)
  const text = formatExplanation(e)
  t.match(text, /✓ +api-v2 +\* +~ \^\/api\/v\(\\d\+\)\/\(\.\*\)\$ +→ app\n +pathRegex \^\/api\/v\(\\d\+\)\/\(\.\*\)\$ matched the whole path \/api\/v2\/users, \$1=2, \$2=users\n/)
  t.match(text, /path +\/api\/v2\/users\?x=1 → \/v2\/users\?x=1 +\(regex \^\/api\/v\(\\d\+\)\/\(\.\*\)\$ → \/v\$1\/\$2, \$1=2, \$2=users\)/)
  t.match(text, /upstream +GET http:\/\/127\.0\.0\.1:9001\/v2\/users\?x=1/)
})

t.test('a regex route that misses says so, and the request goes on down the table', async (t) => {
  const e = explain(config, parseExplainRequest('GET http://api.test:8080/api/vX/users'))
  t.equal(e.route, 'app')
  t.same(e.routes.find((r) => r.name === 'api-v2')?.reasons, [String.raw`path /api/vX/users does not match pathRegex ^/api/v(\d+)/(.*)$ (the whole path)`])
  t.match(formatExplanation(e), /✗ +api-v2 .*\n +path \/api\/vX\/users does not match pathRegex/)
})

t.test('a rewrite.regex on a prefix route: applied when it matches, the path kept when not', async (t) => {
  const hit = explain(config, parseExplainRequest('GET http://a.test:8080/legacy/about.php'))
  t.equal(hit.rewrite?.pathAfter, '/pages/about')
  t.same(hit.rewrite?.regex, { pattern: String.raw`/legacy/(?P<page>\w+)\.php`, replacement: '/pages/$page', captures: '$page=about' })
  const miss = explain(config, parseExplainRequest('GET http://a.test:8080/legacy/a/b.html'))
  t.equal(miss.route, 'legacy')
  t.equal(miss.rewrite?.pathAfter, '/legacy/a/b.html')
  t.equal(miss.rewrite?.regex?.captures, '')
  t.match(formatExplanation(miss), /\/legacy\/a\/b\.html \(unchanged\)/)
})

t.test('explain sees the normalised path, as the router does', async (t) => {
  const e = explain(config, parseExplainRequest('GET http://a.test:8080/x/../api/v3/%61dmin'))
  t.equal(e.request.path, '/api/v3/admin')
  t.equal(e.route, 'api-v2')
  t.equal(e.rewrite?.pathAfter, '/v3/admin')
})

t.test('check: the regex and the rewrite in the table, regex routes first', async (t) => {
  const table = routingTable(config)
  t.match(table, String.raw`  api-v2           host=* pathRegex=^/api/v(\d+)/(.*)$ (whole path) -> app  [rewrite: regex ^/api/v(\d+)/(.*)$ -> /v$1/$2]`)
  t.match(table, String.raw`  legacy           host=* pathPrefix=/legacy/ -> app  [rewrite: regex /legacy/(?P<page>\w+)\.php -> /pages/$page]`)
  t.ok(table.indexOf('api-v2') < table.indexOf('legacy'), 'regex routes before prefix routes')
})
