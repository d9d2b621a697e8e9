// A cacheable body the origin cuts short. A body without Content-Length or
// chunked ends when the connection closes (RFC 9112 §6.3), but only with a
// FIN: a TCP reset says the connection failed, and what came before it may
// be anything up to the whole body (nginx treats a recv() error as an
// upstream error, a 0-byte read as the end). undici 7 finishes such a body on
// ECONNRESET as if it were a FIN (client-h1.js onHttpSocketError, a macOS
// workaround), and libuv reports a reset that arrives with the last bytes as
// a plain end of stream, so the truncated body was stored and served to every
// later client as complete. Bodies framed by Content-Length or chunked that end
// early with a FIN (or a reset) are truncated too; none of them may be
// stored, and each client must see the cut.
import t from 'tap'
import type { Test } from 'tap'
import type { Socket } from 'node:net'
import { testCertificate } from '../helpers/certs.js'
import { h2Session, tlsAndPlainListeners } from '../helpers/e2e.js'
import { startRawServer, type RawSeen } from '../helpers/raw-origin.js'
import { startProxy, type RunningProxy } from '../helpers/proxy.js'
import { SessionLog, within } from '../helpers/stream-kit.js'
import { h1Exchange, h2Exchange } from '../helpers/wire.js'

const CACHEABLE = 'Cache-Control: max-age=60\r\nContent-Type: text/plain\r\n'

/** Per path: the head and first body bytes, then how the origin ends the connection. */
const CUTS: Record<string, { readonly bytes: string, readonly end: 'fin' | 'rst' | 'rst-now' }> = {
  '/close-rst': { bytes: `HTTP/1.1 200 OK\r\n${CACHEABLE}\r\npart of the bo`, end: 'rst' },
  // The reset right behind the bytes: libuv reads both at once and reports an end of stream, not ECONNRESET.
  '/close-rst-now': { bytes: `HTTP/1.1 200 OK\r\n${CACHEABLE}\r\npart of the bo`, end: 'rst-now' },
  '/close-rst-10': { bytes: `HTTP/1.0 200 OK\r\n${CACHEABLE}\r\npart of the bo`, end: 'rst' },
  '/chunked-fin': { bytes: `HTTP/1.1 200 OK\r\n${CACHEABLE}Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n10\r\nmid-ch`, end: 'fin' },
  '/chunked-rst': { bytes: `HTTP/1.1 200 OK\r\n${CACHEABLE}Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n10\r\nmid-ch`, end: 'rst' },
  '/length-fin': { bytes: `HTTP/1.1 200 OK\r\n${CACHEABLE}Content-Length: 100\r\n\r\nonly twenty bytes..`, end: 'fin' },
  '/length-rst': { bytes: `HTTP/1.1 200 OK\r\n${CACHEABLE}Content-Length: 100\r\n\r\nonly twenty bytes..`, end: 'rst' },
  // The head alone: Node holds an HTTP/1.1 head until the first body byte; it must still go out before the cut.
  '/head-rst': { bytes: `HTTP/1.1 200 OK\r\n${CACHEABLE}Content-Length: 100\r\n\r\n`, end: 'rst' },
  // The control: a close-delimited body that ends with a FIN is complete, and stored.
  '/close-fin': { bytes: `HTTP/1.1 200 OK\r\n${CACHEABLE}\r\nthe whole body`, end: 'fin' }
}

async function setup (t: Test, route = ''): Promise<{ proxy: RunningProxy, log: SessionLog, seen: RawSeen[] }> {
  const seen: RawSeen[] = []
  const origin = await startRawServer(t, (req: RawSeen, socket: Socket) => {
    seen.push(req)
    const cut = CUTS[req.target.split('?')[0]!]!
    if (cut.end === 'rst-now') {
      socket.write(cut.bytes)
      socket.resetAndDestroy()
      return false
    }
    // The head and body bytes reach the proxy (flushed, a moment) before the end.
    socket.write(cut.bytes, () => setTimeout(() => {
      if (cut.end === 'rst') socket.resetAndDestroy()
      else socket.end()
    }, 30))
    return false
  })
  const log = new SessionLog()
  const cert = testCertificate(t)
  const proxy = await startProxy(t, `${tlsAndPlainListeners(cert)}
cache: {}
routes: [{ backend: raw${route} }]
backends:
  raw:
    retries: { attempts: 0 }
    servers: [{ url: "${origin.url}" }]
`, log.hooks)
  return { proxy, log, seen }
}

const server = (proxy: RunningProxy) => proxy.app.status()[0]!.shards[0]!.servers[0]!

for (const path of Object.keys(CUTS).filter((p) => p !== '/close-fin')) {
  t.test(`${path}: the client sees the cut, nothing is stored, the server is blamed, the log says so`, async (t) => {
    const { proxy, log, seen } = await setup(t)
    const viaH1 = await h1Exchange({
      // TLS, as the h2 client: one cache key.
      port: proxy.port('tls'), tls: true, method: 'GET', limitMs: 10_000,
      chunks: [Buffer.from(`GET ${path} HTTP/1.1\r\nHost: a\r\n\r\n`)]
    })
    t.notOk(viaH1.timedOut, 'h1: not left hanging')
    const r = viaH1.responses[0]
    t.ok(r === undefined || !r.complete || r.status === 502, `h1: never a complete 200 (got ${viaH1.head.slice(0, 200)})`)
    if (r?.status === 200) t.ok(viaH1.closed, 'h1: the connection is cut')
    if (path === '/head-rst') t.ok(r?.status === 200 && !r.complete, `h1: the origin's head, then the cut, not a close with nothing (got ${JSON.stringify(viaH1.head.slice(0, 100))})`)
    const ended = await within(log.ended(path), 10_000, 'the exchange ends')
    t.equal(ended.error?.code, 'LB_ERR_UPSTREAM_RESET', 'the access log names the failure')
    t.equal(ended.error?.flag, 'UC')
    if (ended.status === 200) t.equal(ended.cacheStored, false, 'the log says not stored (its head, sent before the cut, said stored)')

    const session = await h2Session(t, proxy.url('tls'))
    const viaH2 = await h2Exchange(session, { ':path': path, ':authority': 'a' }, undefined, 10_000)
    t.notOk(viaH2.timedOut, 'h2: not left hanging')
    t.ok(viaH2.rstCode !== undefined || viaH2.status === 502, `h2: RST_STREAM or a 502, never END_STREAM on a 200 (got ${viaH2.status}, rst ${viaH2.rstCode})`)
    session.close()

    t.equal(seen.filter((s) => s.target === path).length, 2, 'the second request went to the origin again (nothing stored)')
    t.equal(proxy.app.cacheStats()?.entries, 0, 'the cache is empty')
    t.equal(server(proxy).failures, 2, 'both counted against the server')
  })
}

t.test('/close-fin (the control): a close-delimited body ended by a FIN is complete, and stored', async (t) => {
  const { proxy, seen, log } = await setup(t)
  const first = await h1Exchange({ port: proxy.port('tls'), tls: true, method: 'GET', limitMs: 10_000, chunks: [Buffer.from('GET /close-fin HTTP/1.1\r\nHost: a\r\n\r\n')] })
  t.equal(first.responses[0]?.status, 200)
  t.ok(first.responses[0]?.complete, 'complete (chunked to the client, with its last chunk)')
  t.equal(first.responses[0]?.body.toString(), 'the whole body')
  t.equal((await within(log.ended('/close-fin'), 10_000, 'the exchange ends')).cacheStored, true, 'the log says stored')
  const session = await h2Session(t, proxy.url('tls'))
  const again = await h2Exchange(session, { ':path': '/close-fin', ':authority': 'a' }, undefined, 10_000)
  session.close()
  t.equal(again.status, 200)
  t.equal(again.rstCode, undefined)
  t.equal(again.body.toString(), 'the whole body')
  t.equal(seen.length, 1, 'served from the cache')
  t.equal(server(proxy).failures, 0)
})

t.test('through a compressing route: the gzip variant of a cut body is not stored either, and the cut shows', async (t) => {
  const { proxy, seen } = await setup(t, ', compression: { algorithms: [gzip], minBytes: 0 }')
  for (const path of ['/close-rst', '/close-rst-now', '/chunked-fin']) {
    const viaH1 = await h1Exchange({
      port: proxy.port('tls'), tls: true, method: 'GET', limitMs: 10_000,
      chunks: [Buffer.from(`GET ${path} HTTP/1.1\r\nHost: a\r\nAccept-Encoding: gzip\r\n\r\n`)]
    })
    const r = viaH1.responses[0]
    t.ok(r === undefined || !r.complete || r.status === 502, `${path} h1: never a complete 200`)
    const session = await h2Session(t, proxy.url('tls'))
    const viaH2 = await h2Exchange(session, { ':path': path, ':authority': 'a', 'accept-encoding': 'gzip' }, undefined, 10_000)
    session.close()
    t.ok(viaH2.rstCode !== undefined || viaH2.status === 502, `${path} h2: RST_STREAM or a 502`)
    t.equal(seen.filter((s) => s.target === path).length, 2, `${path}: not stored`)
  }
  t.equal(proxy.app.cacheStats()?.entries, 0)
})
