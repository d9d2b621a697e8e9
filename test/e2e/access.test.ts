// Route access control through a real proxy and a real origin: allow/deny by
// the trusted client address (other clients simulated with a trusted proxy's
// X-Forwarded-For), basic auth over HTTP/1.1 and HTTP/2, a cached answer never
// served to a client without credentials, Authorization kept from the origin
// unless `forward: true`.
import t from 'tap'
import { hashPassword } from '../../src/auth/password.js'
import { testCertificate } from '../helpers/certs.js'
import { h1, h2, rawRequest, tlsAndPlainListeners, type H1Options, type Reply } from '../helpers/e2e.js'
import { startOrigin } from '../helpers/origin.js'
import { startProxy } from '../helpers/proxy.js'

const basic = (user: string, password: string): string => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`

t.test('access control', async (t) => {
  const origin = await startOrigin(t, (seen, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': seen.url.startsWith('/cached') ? 'public, max-age=60' : 'no-store' })
    res.end(`origin saw authorization=${seen.headers.authorization ?? '-'}`)
  })
  const cert = testCertificate(t)
  // A small N keeps the test quick; the form and the path are the production ones.
  const hash = hashPassword('s3cret', { N: 1024 })
  const proxy = await startProxy(t, `
${tlsAndPlainListeners(cert)}
trustedProxies: [127.0.0.1]
cache: {}
routes:
  - name: lists
    match: { pathPrefix: /lists }
    backend: app
    allow: [203.0.113.0/24, "2001:db8::/32"]
    deny: [203.0.113.66]
  - name: cached
    match: { pathPrefix: /cached }
    backend: app
    basicAuth: { realm: "ops area", users: [{ name: alice, passwordHash: "${hash}" }] }
  - name: forwarded
    match: { pathPrefix: /forwarded }
    backend: app
    basicAuth: { forward: true, users: [{ name: alice, passwordHash: "${hash}" }] }
  - name: auth
    match: { pathPrefix: /auth }
    backend: app
    basicAuth: { realm: "ops area", users: [{ name: alice, passwordHash: "${hash}" }] }
  - name: free
    backend: app
backends:
  app:
    servers: [{ url: "${origin.url}" }]
`)
  const plain = proxy.url('plain')
  const get = (path: string, opts: H1Options = {}): Promise<Reply> => h1(plain, { ...opts, path })
  const from = (client: string): H1Options => ({ headers: { 'x-forwarded-for': client } })
  const reached = (path: string): number => origin.requests.filter((r) => r.url === path).length

  t.test('allow/deny by the client a trusted proxy reports', async (t) => {
    t.equal((await get('/lists/a', from('203.0.113.5'))).status, 200)
    t.equal((await get('/lists/a', from('2001:db8::7'))).status, 200, 'IPv6 CIDR')
    const denied = await get('/lists/a', from('203.0.113.66'))
    t.equal(denied.status, 403, 'deny wins over allow')
    t.equal(denied.headers['x-switchyard-error'], 'LB_ERR_FORBIDDEN')
    t.equal(denied.headers['www-authenticate'], undefined)
    const outside = await get('/lists/a', from('198.51.100.1'))
    t.equal(outside.status, 403)
    t.equal(outside.headers['x-switchyard-error'], 'LB_ERR_FORBIDDEN')
    t.equal((await get('/lists/a')).status, 403, 'the proxy itself (127.0.0.1, no X-Forwarded-For) is not in allow')
    t.equal(reached('/lists/a'), 2, 'refused clients never reached the origin')
    t.equal((await get('/free', from('198.51.100.1'))).status, 200, 'routes without lists take anyone')
  })

  t.test('basic auth over HTTP/1.1: 401 with the challenge, then in', async (t) => {
    const none = await get('/auth/x')
    t.equal(none.status, 401)
    t.equal(none.headers['www-authenticate'], 'Basic realm="ops area", charset="UTF-8"')
    t.equal(none.headers['x-switchyard-error'], 'LB_ERR_UNAUTHORIZED')
    const wrong = await get('/auth/x', { headers: { authorization: basic('alice', 'nope') } })
    t.equal(wrong.status, 401)
    t.equal(wrong.headers['www-authenticate'], 'Basic realm="ops area", charset="UTF-8"')
    t.equal((await get('/auth/x', { headers: { authorization: basic('bob', 's3cret') } })).status, 401, 'unknown user')
    t.equal((await get('/auth/x', { headers: { authorization: 'Basic %%%' } })).status, 401, 'malformed')
    t.equal((await get('/auth/x', { headers: { authorization: 'Bearer abc' } })).status, 401, 'another scheme')
    t.equal(reached('/auth/x'), 0)
    const ok = await get('/auth/x', { headers: { authorization: basic('alice', 's3cret') } })
    t.equal(ok.status, 200)
    t.equal(ok.text, 'origin saw authorization=-', 'Authorization is not forwarded')
    const again = await get('/auth/x', { headers: { authorization: basic('alice', 's3cret') } })
    t.equal(again.status, 200, 'remembered credentials pass again')
  })

  t.test('basic auth over HTTP/2', async (t) => {
    const none = await h2(t, proxy.url('tls'), { ':path': '/auth/h2' })
    t.equal(none.status, 401)
    t.equal(none.headers['www-authenticate'], 'Basic realm="ops area", charset="UTF-8"')
    t.equal(none.headers['x-switchyard-error'], 'LB_ERR_UNAUTHORIZED')
    const ok = await h2(t, proxy.url('tls'), { ':path': '/auth/h2', authorization: basic('alice', 's3cret') })
    t.equal(ok.status, 200)
    t.equal(ok.text, 'origin saw authorization=-')
  })

  t.test('a cached answer is not served to a client without credentials', async (t) => {
    const creds = { headers: { authorization: basic('alice', 's3cret') } }
    const first = await get('/cached/page', creds)
    t.equal(first.status, 200)
    const hit = await get('/cached/page', creds)
    t.equal(hit.status, 200)
    t.equal(reached('/cached/page'), 1, 'the second answer came from the cache')
    const anonymous = await get('/cached/page')
    t.equal(anonymous.status, 401, 'the cache did not answer an unauthenticated client')
    t.equal(anonymous.headers['www-authenticate'], 'Basic realm="ops area", charset="UTF-8"')
    t.equal((await get('/cached/page', { headers: { authorization: basic('alice', 'guess') } })).status, 401)
    const h2anon = await h2(t, proxy.url('tls'), { ':path': '/cached/page' })
    t.equal(h2anon.status, 401, 'nor over HTTP/2')
    t.equal(reached('/cached/page'), 1)
  })

  t.test('WebSocket upgrades are checked as requests are', async (t) => {
    const port = Number(new URL(plain).port)
    const upgrade = (path: string, extra = ''): string => `GET ${path} HTTP/1.1\r\nHost: x.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
      `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n${extra}\r\n`
    const anonymous = await rawRequest(port, upgrade('/auth/ws'))
    t.equal(anonymous.status, 401)
    t.equal(anonymous.headers['www-authenticate'], 'Basic realm="ops area", charset="UTF-8"')
    t.equal(anonymous.headers['x-switchyard-error'], 'LB_ERR_UNAUTHORIZED')
    const outside = await rawRequest(port, upgrade('/lists/ws', 'X-Forwarded-For: 198.51.100.1\r\n'))
    t.equal(outside.status, 403)
    t.equal(outside.headers['x-switchyard-error'], 'LB_ERR_FORBIDDEN')
    t.equal(reached('/auth/ws') + reached('/lists/ws'), 0, 'neither reached the origin')
    // With credentials the upgrade goes on to the origin (which declines it with its 200: relayed).
    const admitted = await rawRequest(port, upgrade('/auth/ws', `Authorization: ${basic('alice', 's3cret')}\r\n`))
    t.equal(admitted.status, 200)
    t.equal(reached('/auth/ws'), 1)
  })

  t.test('forward: true sends Authorization on', async (t) => {
    const ok = await get('/forwarded', { headers: { authorization: basic('alice', 's3cret') } })
    t.equal(ok.status, 200)
    t.equal(ok.text, `origin saw authorization=${basic('alice', 's3cret')}`)
  })
})
