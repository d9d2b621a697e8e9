// `redirect` on a route and on a listener: defaults, every key as written, and
// each mistake at its YAML path and line, including a listener redirect loop.
import t from 'tap'
import { parseConfig } from '../../src/config/load.js'
import { BASE, issuesOf, only } from '../helpers/config.js'

/** BASE with one route (line 8) whose `redirect` is on line 9. */
const onRoute = (redirect: string): string => BASE + `routes:\n  - backend: api\n    redirect: ${redirect}\n`

/** A config whose only listener (line 2) has `redirect` on line 3, TLS-less unless `tls`. */
function onListener (redirect: string, bind = '"127.0.0.1:8080"'): string {
  return `listeners:\n  - bind: ${bind}\n    redirect: ${redirect}\n` + BASE.split('\n').slice(2).join('\n')
}

const routeRedirect = (yaml: string): unknown => parseConfig(yaml, 'config.yaml').routes[0]?.redirect
const listenerRedirect = (yaml: string): unknown => parseConfig(yaml, 'config.yaml').listeners[0]?.redirect

t.test('defaults: status 301, the rest from the request', async (t) => {
  t.same(routeRedirect(onRoute('{ scheme: https }')), { status: 301, scheme: 'https' })
  t.same(listenerRedirect(onListener('{ scheme: https }')), { status: 301, scheme: 'https' })
  t.equal(routeRedirect(BASE + 'routes:\n  - backend: api\n'), undefined, 'no redirect: none')
  t.equal(listenerRedirect(BASE), undefined)
})

t.test('every key as written; hosts lower-cased, IPv6 bracketed', async (t) => {
  t.same(routeRedirect(onRoute('{ scheme: http, status: 308, host: WWW.Example.COM, port: 8080, path: /v2/ }')),
    { status: 308, scheme: 'http', host: 'www.example.com', port: 8080, path: '/v2/' })
  t.same(routeRedirect(onRoute('{ host: "::1" }')), { status: 301, host: '[::1]' })
  t.same(routeRedirect(onRoute('{ host: "[2001:DB8::1]", status: 307 }')), { status: 307, host: '[2001:db8::1]' })
  t.same(routeRedirect(onRoute('{ port: 443, status: 302 }')), { status: 302, port: 443 })
})

t.test('mistakes, at their path and line', async (t) => {
  only(t, onRoute('{ scheme: ftp }'), 'routes[0].redirect.scheme', 9, 'expected one of http, https, got "ftp"')
  only(t, onRoute('{ scheme: https, status: 303 }'), 'routes[0].redirect.status', 9, /301, 302, 307 or 308/)
  only(t, onRoute('{ scheme: https, status: "301" }'), 'routes[0].redirect.status', 9, /301, 302, 307 or 308/)
  only(t, onRoute('{ host: "example.com:8443" }'), 'routes[0].redirect.host', 9, /without a port/)
  only(t, onRoute('{ host: "a/b" }'), 'routes[0].redirect.host', 9, /host name or IP address/)
  only(t, onRoute('{ port: 0 }'), 'routes[0].redirect.port', 9, /from 1 to 65535, got 0/)
  only(t, onRoute('{ port: 65536 }'), 'routes[0].redirect.port', 9, /65535/)
  only(t, onRoute('{ path: v2 }'), 'routes[0].redirect.path', 9, /starting with one `\/`/)
  only(t, onRoute('{ path: "/a?b=1" }'), 'routes[0].redirect.path', 9, /the query is kept/)
  only(t, onRoute('{ path: "//evil.test/" }'), 'routes[0].redirect.path', 9, /one `\/`/)
  only(t, onRoute('{ path: "/a b" }'), 'routes[0].redirect.path', 9, /no spaces/)
  only(t, onRoute('{ status: 308 }'), 'routes[0].redirect', 9, /at least one of `scheme`, `host`, `port` or `path`/)
  only(t, onRoute('{ schema: https }'), 'routes[0].redirect.schema', 9, /did you mean `scheme`\?/)
  only(t, onRoute('https'), 'routes[0].redirect', 9, /mapping/)
})

t.test('block style: the line of the key itself', async (t) => {
  const yaml = BASE + 'routes:\n  - backend: api\n    redirect:\n      scheme: https\n      status: 399\n'
  only(t, yaml, 'routes[0].redirect.status', 11, /301, 302, 307 or 308/)
})

t.test('a listener redirect that sends every request back to itself is a loop', async (t) => {
  only(t, onListener('{ scheme: http }'), 'listeners[0].redirect', 3, /back to this http listener unchanged \(a redirect loop\).*to https/)
  only(t, onListener('{ scheme: http, port: 8080, status: 308 }'), 'listeners[0].redirect', 3, /redirect loop/)
  only(t, onListener('{ port: 8080 }'), 'listeners[0].redirect', 3, /redirect loop/)
  // Anything that changes where the client goes is fine.
  t.same(issuesOf(onListener('{ scheme: http, port: 8081 }')), [])
  t.same(issuesOf(onListener('{ scheme: http, host: www.example.com }')), [])
  t.same(issuesOf(onListener('{ path: /maintenance }')), [])
  t.same(issuesOf(onListener('{ scheme: https }')), [])
  // Port 0 is a fresh port each start: a written port cannot be told apart from it.
  t.same(issuesOf(onListener('{ scheme: http, port: 8080 }', '"127.0.0.1:0"')), [])
})

t.test('a redirecting route warns about the options it makes pointless; a plain one does not', async (t) => {
  const warnings: Array<{ path: string, line: number, message: string }> = []
  parseConfig(`${BASE}routes:
  - name: old
    backend: api
    redirect: { host: new.example.com }
    rateLimit: { average: 10 }
    requestHeaders: { set: { x-a: b } }
  - name: plain
    match: { pathPrefix: /plain }
    backend: api
    redirect: { scheme: https }
`, 'config.yaml', { onWarning: (w) => warnings.push(w) })
  t.equal(warnings.length, 1)
  t.match(warnings[0], { path: 'routes[0].redirect', line: 10, message: /route `old` redirects every request, so its `requestHeaders`, `rateLimit` never apply/ })
})
