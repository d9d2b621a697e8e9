// Redirects as `switchyard explain` and `check` show them (issue 15, item 7):
// the same plan() decision the proxy makes, the listener's before routing
// and the route's after, and each in check's table.
import t from 'tap'
import { parseConfig } from '../src/config/load.js'
import { explain, formatExplanation, parseExplainRequest } from '../src/explain.js'
import { routingTable } from '../src/router/table.js'

const config = parseConfig(`listeners:
  - { name: web, bind: "127.0.0.1:8080" }
  - { name: tls, bind: "127.0.0.1:8443", tls: { cert: c.pem, key: k.pem } }
  - { name: to-https, bind: "127.0.0.1:80", redirect: { scheme: https, port: 8443 } }
routes:
  - { name: www, match: { host: www.example.com }, backend: app, redirect: { host: example.com, status: 308 } }
  - { name: app, backend: app }
backends: { app: { servers: [{ url: "http://127.0.0.1:9001" }] } }
`, '', { checkFiles: false })

t.test('a route redirect: routed, then answered by the proxy', async (t) => {
  const e = explain(config, parseExplainRequest('POST http://www.example.com:8080/a?b=1'))
  t.equal(e.route, 'www')
  t.same(e.result, {
    status: 308, code: 'REDIRECT', summary: 'Permanent Redirect to http://example.com/a?b=1',
    detail: 'route www\'s redirect; no upstream, no cache'
  })
  t.equal(e.routes.find((r) => r.name === 'www')?.redirect, '308 → {scheme}://example.com{path}{?query}')
  t.equal(e.routes.find((r) => r.name === 'app')?.redirect, undefined, 'a route without one has none')
  t.equal(e.shard, null, 'no backend part: it is never contacted')
  const text = formatExplanation(e)
  t.match(text, /✓ +www +www\.example\.com +\/ +↪ 308 → \{scheme\}:\/\/example\.com\{path\}\{\?query\}/)
  t.match(text, /↪ 308 REDIRECT: Permanent Redirect to http:\/\/example\.com\/a\?b=1 \(route www's redirect; no upstream, no cache\)/)
})

t.test('a listener redirect: every request, before routing', async (t) => {
  const e = explain(config, parseExplainRequest('GET http://shop.test:80/x?y'))
  t.equal(e.request.listener, 'to-https')
  t.equal(e.route, null)
  t.same(e.result, {
    status: 301, code: 'REDIRECT', summary: 'Moved Permanently to https://shop.test:8443/x?y',
    detail: 'listener to-https\'s redirect, before routing; no upstream, no cache'
  })
  t.ok(e.routes.every((r) => r.verdict === 'unreached' && r.reasons[0] === 'not reached: the proxy answers 301 first'))
  // The plain listener on 8080 has none: routed as usual.
  t.equal(explain(config, parseExplainRequest('GET http://shop.test:8080/x')).route, 'app')
})

t.test('check: the listener and the route show their redirect', async (t) => {
  const table = routingTable(config)
  t.match(table, /to-https +http +127\.0\.0\.1:80 +\[redirect every request: 301 → https:\/\/\{host\}:8443\{path\}\{\?query\}\]/)
  t.match(table, /www +host=www\.example\.com pathPrefix=\/ redirect 308 → \{scheme\}:\/\/example\.com\{path\}\{\?query\} \(app not contacted\)/)
  t.match(table, /app +pathPrefix=\/ -> app|app +host=\* pathPrefix=\/ -> app/)
})
