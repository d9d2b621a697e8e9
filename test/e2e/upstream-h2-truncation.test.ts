// A cacheable h2 response that the origin resets before END_STREAM, with no
// Content-Length to give the cut away. node:http2 ends a stream reset with
// RST_STREAM(CANCEL) as if it were complete ('end', no 'error'), and undici
// completed the response on it: the client got a clean 200 with part of the
// body, the cache stored it, and the server was not blamed. Like an HTTP/1.1
// truncation (origin-truncation.test.ts), each client must see the cut,
// nothing may be stored, and the server is blamed. RST_STREAM(INTERNAL_ERROR)
// was already an error; it stays one. RST_STREAM(NO_ERROR) before END_STREAM
// (a server that breaks RFC 9113 §8.1) cannot be told from END_STREAM once
// the body waits for a slow reader (see src/upstream/h2-streams.ts), unless
// the response has a Content-Length the body falls short of: that case is tested.
import http2 from 'node:http2'
import type { AddressInfo } from 'node:net'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { tempDir, testCertificate } from '../helpers/certs.js'
import { h2Session, tlsAndPlainListeners } from '../helpers/e2e.js'
import { testPki } from '../helpers/pki.js'
import { startProxy, type RunningProxy } from '../helpers/proxy.js'
import { SessionLog, within } from '../helpers/stream-kit.js'
import { h1Exchange, h2Exchange } from '../helpers/wire.js'

type Protocol = 'h2c' | 'h2'

/**
 * Per path, how the origin ends a stream after the head and `PARTIAL-`.
 * Node's stream.close(code) on a stream with nothing left to write sends
 * END_STREAM first (a complete response, whatever the code), so the resets
 * are made with destroy(), or close() right behind a write still queued.
 */
const CUTS: Record<string, (stream: http2.ServerHttp2Stream) => void> = {
  '/rst-cancel': (stream) => {
    stream.write('more-')
    stream.close(http2.constants.NGHTTP2_CANCEL)
  },
  '/rst-internal': (stream) => { stream.destroy(new Error('origin failed mid-body')) },
  // RST_STREAM(NO_ERROR) before END_STREAM reads as an end; its Content-Length (20) gives the cut away.
  '/rst-no-error-declared': (stream) => {
    stream.write('more-')
    stream.close(http2.constants.NGHTTP2_NO_ERROR)
  },
  // The control: END_STREAM, the whole body.
  '/whole': (stream) => { stream.end('the rest') }
}

interface Origin {
  readonly url: string
  /** Paths of the streams it got, in order. */
  readonly seen: string[]
}

async function startOrigin (t: Test, protocol: Protocol): Promise<Origin> {
  const pki = testPki()
  const server = protocol === 'h2' ? http2.createSecureServer({ key: pki.server.keyPem, cert: pki.server.certPem }) : http2.createServer()
  const seen: string[] = []
  server.on('stream', (stream, headers) => {
    const path = String(headers[':path'])
    seen.push(path)
    stream.on('error', () => {}) // Node reports its own reset as an error on the stream
    stream.respond({ ':status': 200, 'cache-control': 'max-age=60', 'content-type': 'text/plain',
      ...(path.endsWith('-declared') ? { 'content-length': '20' } : {}) })
    // The head and first bytes reach the proxy (and its client) before the end.
    stream.write('PARTIAL-', () => setTimeout(() => CUTS[path]!(stream), 30))
  })
  server.on('sessionError', () => {})
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => { server.close(() => resolve()) }))
  const port = (server.address() as AddressInfo).port
  return { url: `${protocol === 'h2' ? 'https' : 'http'}://127.0.0.1:${port}`, seen }
}

async function setup (t: Test, protocol: Protocol): Promise<{ proxy: RunningProxy, log: SessionLog, origin: Origin }> {
  const origin = await startOrigin(t, protocol)
  let tls = ''
  if (protocol === 'h2') {
    const ca = join(tempDir(t), 'ca.pem')
    writeFileSync(ca, testPki().ca.certPem)
    tls = `\n    tls: { ca: ${ca} }`
  }
  const log = new SessionLog()
  const proxy = await startProxy(t, `${tlsAndPlainListeners(testCertificate(t))}
cache: {}
routes: [{ backend: b }]
backends:
  b:
    protocol: ${protocol}
    retries: { attempts: 0 }
    servers: [{ url: "${origin.url}" }]${tls}
`, log.hooks)
  return { proxy, log, origin }
}

const server = (proxy: RunningProxy) => proxy.app.status()[0]!.shards[0]!.servers[0]!

for (const protocol of ['h2c', 'h2'] as const) {
  for (const path of Object.keys(CUTS).filter((p) => p !== '/whole')) {
    t.test(`protocol: ${protocol}, ${path}: the client sees the cut, nothing is stored, the server is blamed`, async (t) => {
      const { proxy, log, origin } = await setup(t, protocol)
      const viaH1 = await h1Exchange({
        // TLS, as the h2 client: one cache key.
        port: proxy.port('tls'), tls: true, method: 'GET', limitMs: 10_000,
        chunks: [Buffer.from(`GET ${path} HTTP/1.1\r\nHost: a\r\n\r\n`)]
      })
      t.notOk(viaH1.timedOut, 'h1: not left hanging')
      const r = viaH1.responses[0]
      t.ok(r === undefined || !r.complete || r.status === 502, `h1: never a complete 200 (got ${viaH1.head.slice(0, 300)})`)
      if (r?.status === 200) t.ok(viaH1.closed, 'h1: the connection is cut')
      const ended = await within(log.ended(path), 10_000, 'the exchange ends')
      t.equal(ended.error?.code, 'LB_ERR_UPSTREAM_RESET', 'the access log names the failure')
      t.equal(ended.error?.flag, 'UC')

      const session = await h2Session(t, proxy.url('tls'))
      const viaH2 = await h2Exchange(session, { ':path': path, ':authority': 'a' }, undefined, 10_000)
      session.close()
      t.notOk(viaH2.timedOut, 'h2: not left hanging')
      t.ok(viaH2.rstCode !== undefined || viaH2.status === 502,
        `h2: RST_STREAM or a 502, never END_STREAM on a 200 (got ${viaH2.status}, rst ${viaH2.rstCode}, body ${JSON.stringify(viaH2.body.toString())})`)
      t.notMatch(viaH2.headers?.['cache-status'] ?? '', /hit/, 'h2: not a cache hit')

      t.same(origin.seen, [path, path], 'the second request went to the origin again (nothing stored)')
      t.equal(proxy.app.cacheStats()?.entries, 0, 'the cache is empty')
      t.equal(server(proxy).failures, 2, 'both counted against the server')
    })
  }

  t.test(`protocol: ${protocol}, /whole (the control): END_STREAM without Content-Length is complete, and stored`, async (t) => {
    const { proxy, origin } = await setup(t, protocol)
    const first = await h1Exchange({
      port: proxy.port('tls'), tls: true, method: 'GET', limitMs: 10_000,
      chunks: [Buffer.from('GET /whole HTTP/1.1\r\nHost: a\r\n\r\n')]
    })
    t.equal(first.responses[0]?.status, 200)
    t.ok(first.responses[0]?.complete, 'complete, with its last chunk')
    t.equal(first.responses[0]?.body.toString(), 'PARTIAL-the rest')
    const session = await h2Session(t, proxy.url('tls'))
    const again = await h2Exchange(session, { ':path': '/whole', ':authority': 'a' }, undefined, 10_000)
    session.close()
    t.equal(again.status, 200)
    t.ok(again.ended, 'END_STREAM')
    t.equal(again.body.toString(), 'PARTIAL-the rest')
    t.match(again.headers?.['cache-status'], /hit/, 'served from the cache')
    t.same(origin.seen, ['/whole'], 'the origin was asked once')
    t.equal(server(proxy).failures, 0)
  })
}
