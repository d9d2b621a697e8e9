// The Location a redirect builds, and where plan() decides it: a listener's
// before routing, a route's after; no socket.
import t from 'tap'
import type { Test } from 'tap'
import { parseAuthority } from '../../src/authority.js'
import type { RedirectConfig } from '../../src/config/schema.js'
import { parseConfig } from '../../src/config/load.js'
import { Errors } from '../../src/errors.js'
import { plan, type PlanRequest, type Redirection, type Refusal } from '../../src/proxy/plan.js'
import { describeRedirect, redirectLocation } from '../../src/proxy/redirect.js'
import { buildState, type RuntimeState } from '../../src/proxy/state.js'
import { sendNothing } from '../../src/upstream/pool.js'

const loc = (c: Partial<RedirectConfig>, scheme: 'http' | 'https', host: string, target: string): string =>
  redirectLocation({ status: 301, ...c }, scheme, parseAuthority(host)!, target)

t.test('Location: the request with the written parts replaced', async (t) => {
  t.equal(loc({ scheme: 'https' }, 'http', 'shop.test', '/a/b?x=1&y'), 'https://shop.test/a/b?x=1&y', 'query kept')
  t.equal(loc({ scheme: 'https' }, 'http', 'shop.test:8080', '/'), 'https://shop.test/', 'a scheme change drops the request port')
  t.equal(loc({ scheme: 'https', port: 8443 }, 'http', 'shop.test:8080', '/'), 'https://shop.test:8443/')
  t.equal(loc({ scheme: 'https', port: 443 }, 'http', 'shop.test:8080', '/'), 'https://shop.test/', 'the default port is left out')
  t.equal(loc({ scheme: 'http', port: 80 }, 'https', 'shop.test', '/'), 'http://shop.test/')
  t.equal(loc({ path: '/new' }, 'https', 'shop.test:8443', '/old/x?q=%20'), 'https://shop.test:8443/new?q=%20',
    'same scheme and host: the request port kept; path replaced, query kept')
  t.equal(loc({ path: '/new' }, 'http', 'shop.test', '/old'), 'http://shop.test/new', 'no query, none added')
  t.equal(loc({ host: 'www.shop.test' }, 'http', 'shop.test:8080', '/p?a'), 'http://www.shop.test/p?a', 'another host: not the request port')
  t.equal(loc({ scheme: 'http' }, 'http', 'shop.test:80', '/'), 'http://shop.test/', 'an explicit default port in Host is dropped')
})

t.test('Location: IPv6 hosts keep their brackets', async (t) => {
  t.equal(loc({ scheme: 'https' }, 'http', '[::1]:8080', '/x?y'), 'https://[::1]/x?y')
  t.equal(loc({ scheme: 'https', port: 8443 }, 'http', '[2001:DB8::1]', '/'), 'https://[2001:db8::1]:8443/')
  t.equal(loc({ host: '[::2]' }, 'https', '[::1]:8443', '/'), 'https://[::2]/')
})

t.test('describeRedirect: what check and explain print', async (t) => {
  t.equal(describeRedirect({ status: 301, scheme: 'https' }), '301 → https://{host}{path}{?query}')
  t.equal(describeRedirect({ status: 308, path: '/v2' }), '308 → {scheme}://{host}{:port}/v2{?query}')
  t.equal(describeRedirect({ status: 302, scheme: 'https', host: 'example.com', port: 443 }), '302 → https://example.com{path}{?query}')
  t.equal(describeRedirect({ status: 307, scheme: 'https', port: 8443 }), '307 → https://{host}:8443{path}{?query}')
})

const YAML = `listeners:
  - { name: plain, bind: "127.0.0.1:0", redirect: { scheme: https } }
  - { name: other, bind: "127.0.0.1:0" }
routes:
  - name: old
    match: { pathPrefix: /old/ }
    backend: api
    redirect: { path: /new, status: 308 }
  - name: api
    backend: api
backends:
  api:
    servers: [{ url: "http://127.0.0.1:9001" }]
`

function state (t: Test): RuntimeState {
  const s = buildState(parseConfig(YAML, 'redirect.yaml', { checkFiles: false }), { dispatcher: sendNothing })
  t.teardown(() => { for (const b of s.backends.values()) b.retire() })
  return s
}

function req (s: RuntimeState, listener: string, url: string, headers: string[], method = 'GET'): PlanRequest {
  const l = s.config.listeners.find((l) => l.name === listener)!
  return {
    method,
    url,
    rawHeaders: headers,
    h2Authority: undefined,
    conn: { clientAddress: '192.0.2.7', trusted: false, proto: 'http', viaEntry: '1.1 switchyard', servername: undefined },
    listener: { name: l.name, redirect: l.redirect }
  }
}

t.test('plan: the listener redirect answers before routing, the route redirect after', async (t) => {
  const s = state(t)
  const l = plan(s, req(s, 'plain', '/old/x?a=1', ['Host', 'shop.test:8080'])) as Redirection
  t.same(l.redirect, { status: 301, location: 'https://shop.test/old/x?a=1', by: 'listener' })
  t.equal(l.route, undefined, 'not routed')
  t.equal(l.path, '/old/x')
  const r = plan(s, req(s, 'other', '/old/x?a=1', ['Host', 'shop.test:8080'], 'POST')) as Redirection
  t.same(r.redirect, { status: 308, location: 'http://shop.test:8080/new?a=1', by: 'route' })
  t.equal(r.route?.name, 'old')
  const p = plan(s, req(s, 'other', '/x', ['Host', 'shop.test']))
  t.notOk('redirect' in p, 'other routes are planned as before')
  t.equal('route' in p ? p.route?.name : undefined, 'api')
  // The request must be well-formed before any redirect: a bad Host is still a 400.
  const bad = plan(s, req(s, 'plain', '/', ['Host', 'a b'])) as Refusal
  t.equal(bad.error, Errors.BAD_REQUEST)
})
