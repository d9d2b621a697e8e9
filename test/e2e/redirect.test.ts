// Redirects end to end (issue 15, item 2): a plaintext listener that sends
// every request to https, and route redirects over HTTP/1.1 and HTTP/2 on a
// TLS listener. Real sockets, a real origin that must never be contacted by a
// redirect, HEAD, and a following client that keeps the method on 307/308 and
// turns a POST into a GET on 301.
import t from 'tap'
import { parseConfig } from '../../src/config/load.js'
import { testCertificate } from '../helpers/certs.js'
import { h1, h2Request, h2Session, rawRequest, tlsAndPlainListeners } from '../helpers/e2e.js'
import { startOrigin } from '../helpers/origin.js'
import { startProxy } from '../helpers/proxy.js'

t.test('redirects', async (t) => {
  const cert = testCertificate(t)
  const origin = await startOrigin(t)
  const proxy = await startProxy(t, `${tlsAndPlainListeners(cert)}
  - name: redir
    bind: 127.0.0.1:0
    redirect: { scheme: https }
cache: { maxBytes: 1MiB }
routes:
  - { name: temp, match: { pathPrefix: /temp }, backend: origin, redirect: { path: /new, status: 307 } }
  - { name: perm, match: { pathPrefix: /perm }, backend: origin, redirect: { path: /new, status: 308 } }
  - { name: moved, match: { pathPrefix: /moved }, backend: origin, redirect: { path: /new } }
  - { name: secure, match: { pathPrefix: /login, listeners: [plain] }, backend: origin, redirect: { scheme: https, port: 8443, status: 302 } }
  - { name: rest, backend: origin }
backends:
  origin: { servers: [{ url: "${origin.url}" }] }
`)
  const redir = proxy.url('redir')
  const plain = proxy.url('plain')
  const tlsPort = proxy.port('tls')

  t.test('a plaintext listener sends every request to https, before routing and without the origin', async (t) => {
    const r = await h1(redir, { path: '/temp/a?x=1&y=%20', headers: { host: 'Shop.Test:8080' } })
    t.equal(r.status, 301)
    t.equal(r.headers.location, 'https://shop.test/temp/a?x=1&y=%20', 'scheme replaced, the http port dropped, path and query kept')
    t.equal(r.text, '301 Moved Permanently: https://shop.test/temp/a?x=1&y=%20\n')
    t.equal(r.headers['content-length'], String(r.body.length))
    t.equal(r.headers['cache-status'], undefined, 'no cache phase')
    const ipv6 = await h1(redir, { path: '/', headers: { host: '[::1]:8080' } })
    t.equal(ipv6.headers.location, 'https://[::1]/')
    const head = await h1(redir, { method: 'HEAD', path: '/h', headers: { host: 'shop.test' } })
    t.equal(head.status, 301)
    t.equal(head.headers.location, 'https://shop.test/h')
    t.equal(head.body.length, 0, 'HEAD: no body')
    const post = await h1(redir, { method: 'POST', path: '/form', headers: { host: 'shop.test', 'content-type': 'text/plain' }, body: 'a=1' })
    t.equal(post.status, 301)
    t.equal(post.headers.connection, 'close', 'the unread body: the connection is not reused')
    t.equal(origin.requests.length, 0, 'the origin saw nothing')
  })

  t.test('route redirects over HTTP/1.1: after routing, only on what the route matches', async (t) => {
    const r = await h1(plain, { path: '/login?next=/a', headers: { host: 'shop.test:8080' } })
    t.equal(r.status, 302)
    t.equal(r.headers.location, 'https://shop.test:8443/login?next=/a')
    const onTls = await h1(proxy.url('tls'), { path: '/login' })
    t.equal(onTls.status, 200, 'the route is bound to the plain listener: over TLS the next route forwards')
    t.equal(origin.requests.length, 1)
  })

  t.test('route redirects over HTTP/2 on the TLS listener, HEAD included', async (t) => {
    const session = await h2Session(t, proxy.url('tls'))
    const r = await h2Request(session, { ':path': '/perm/x?q=1' })
    t.equal(r.status, 308)
    t.equal(r.headers.location, `https://127.0.0.1:${tlsPort}/new?q=1`, 'same scheme and host: the request port kept')
    t.equal(r.text, `308 Permanent Redirect: https://127.0.0.1:${tlsPort}/new?q=1\n`)
    const head = await h2Request(session, { ':method': 'HEAD', ':path': '/moved' })
    t.equal(head.status, 301)
    t.equal(head.headers.location, `https://127.0.0.1:${tlsPort}/new`)
    t.equal(head.body.length, 0)
    const post = await h2Request(session, { ':method': 'POST', ':path': '/temp' }, 'payload')
    t.equal(post.status, 307)
    t.equal(post.rstCode, undefined, 'answered, not reset')
    const before = origin.requests.length
    const other = await h2Request(session, { ':path': '/other' })
    t.equal(other.status, 200, 'the session still serves')
    t.equal(origin.requests.length, before + 1)
  })

  t.test('a WebSocket upgrade gets the redirect too, and its connection closes', async (t) => {
    const before = origin.requests.length
    const r = await rawRequest(proxy.port('redir'), 'GET /ws?room=1 HTTP/1.1\r\nHost: shop.test\r\nConnection: Upgrade\r\n' +
      'Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n')
    t.equal(r.status, 301)
    t.equal(r.headers.location, 'https://shop.test/ws?room=1')
    t.equal(r.headers.connection, 'close')
    t.equal(origin.requests.length, before, 'no tunnel to the origin')
  })

  t.test('a following client keeps the method and body on 307 and 308, and turns POST into GET on 301', async (t) => {
    const follow = async (path: string): Promise<{ method: string, url: string, body: string }> => {
      const before = origin.requests.length
      const res = await fetch(`${plain}${path}`, { method: 'POST', body: 'payload', headers: { 'content-type': 'text/plain' } })
      t.equal(res.status, 200, `${path}: followed to the origin`)
      await res.arrayBuffer()
      t.equal(origin.requests.length, before + 1, `${path}: the origin saw only the followed request`)
      const seen = origin.requests.at(-1)!
      return { method: seen.method, url: seen.url, body: seen.body.toString('utf8') }
    }
    t.same(await follow('/temp?k=v'), { method: 'POST', url: '/new?k=v', body: 'payload' }, '307')
    t.same(await follow('/perm?k=v'), { method: 'POST', url: '/new?k=v', body: 'payload' }, '308')
    t.same(await follow('/moved?k=v'), { method: 'GET', url: '/new?k=v', body: '' }, '301')
  })
})

t.test('a reload that keeps the listener adds and removes its redirect', async (t) => {
  const origin = await startOrigin(t)
  const yaml = (redirect: string): string => `listeners:
  - name: plain
    bind: 127.0.0.1:0${redirect}
routes: [{ backend: origin }]
backends: { origin: { servers: [{ url: "${origin.url}" }] } }
`
  const proxy = await startProxy(t, yaml(''))
  const plain = proxy.url('plain')
  t.equal((await h1(plain, { path: '/a' })).status, 200)
  const on = await proxy.app.reload(parseConfig(`admin: false\naccessLog: false\n${yaml('\n    redirect: { scheme: https }')}`, 'test.yaml', { checkFiles: false }))
  t.match(on, { ok: true })
  t.equal(proxy.url('plain'), plain, 'the same socket')
  const r = await h1(plain, { path: '/a?b', headers: { host: 'shop.test' } })
  t.equal(r.status, 301)
  t.equal(r.headers.location, 'https://shop.test/a?b')
  await proxy.app.reload(parseConfig(`admin: false\naccessLog: false\n${yaml('')}`, 'test.yaml', { checkFiles: false }))
  t.equal((await h1(plain, { path: '/a' })).status, 200, 'removed again')
  t.equal(origin.requests.length, 2)
})
