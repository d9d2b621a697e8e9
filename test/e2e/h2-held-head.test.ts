// HTTP/2 responses whose upstream head is held for a tick (Session.responseHead):
// a response that ends within the read that brought its head goes out whole,
// without waiting for trailers; anything else streams and waits for them as
// before, so a reset, even in the same tick as the head, never ends the stream
// as if the body were complete. Also: head objects carry any field name, and a
// hit's shared head lends the request's own fields without keeping them.
// A real node:http2 server driving Session, a real node:http2 client.
import { readFileSync } from 'node:fs'
import http2 from 'node:http2'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import type { HitHead } from '../../src/cache/hit-heads.js'
import { parseConfig } from '../../src/config/load.js'
import { Errors } from '../../src/errors.js'
import { Pipeline } from '../../src/proxy/pipeline.js'
import { kSession, Session } from '../../src/proxy/session.js'
import { buildState } from '../../src/proxy/state.js'
import { testCertificate } from '../helpers/certs.js'
import { h2Request, h2Session } from '../helpers/e2e.js'

const NGHTTP2_INTERNAL_ERROR = 2

t.test('h2 held heads: whole answers, streamed answers, resets, trailers, field names, lent hit fields', async (t) => {
  const cert = testCertificate(t)
  const config = parseConfig(`listeners: [{ bind: "127.0.0.1:0" }]
routes: [{ backend: b }]
backends: { b: { servers: [{ url: "http://127.0.0.1:1" }] } }
`, 'test.yaml', { checkFiles: false })
  const contained: unknown[] = []
  const pipeline = new Pipeline(buildState(config), { onInternalError: (err) => contained.push(err) })
  // The server side of each stream, by path: what Node says it sent.
  const streams = new Map<string, http2.ServerHttp2Stream>()
  const hit: HitHead = {
    age: 0, ttl: 60, name: 'switchyard', collapsed: false, h2: undefined, h1: undefined, h1Bytes: undefined,
    fields: ['content-type', 'text/plain', 'Set-Cookie', 'a=1', 'set-cookie', 'b=2', 'content-length', '3']
  }
  const server = http2.createSecureServer({ key: readFileSync(cert.keyPath), cert: readFileSync(cert.certPath) })
  server.on('stream', ((stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, _flags: number, rawHeaders: string[]) => {
    stream.on('error', () => {})
    const s = new Session(stream, stream, { name: 'l', proto: 'https' },
      { clientAddress: '127.0.0.1', trusted: false, proto: 'https', viaEntry: '2 switchyard', servername: undefined },
      performance.now(), pipeline, { headers, rawHeaders })
    ;(stream as unknown as { [kSession]: Session })[kSession] = s // as the pipeline hangs it (drain, trailers)
    const path = String(headers[':path'])
    streams.set(path, stream)
    const later = (fn: () => void): void => { setTimeout(fn, 20) }
    switch (path) {
      case '/whole': // head, body and end in one read: out whole
        if (s.responseHead(200, 'OK', ['content-type', 'text/plain', 'content-length', '11'])) {
          s.responseData(Buffer.from('hello '))
          s.responseData(Buffer.from('world'))
          s.responseEnd([])
        }
        return
      case '/streamed': // the end comes later: streamed, waiting for (empty) trailers
        s.responseHead(200, 'OK', ['content-type', 'text/plain'])
        s.responseData(Buffer.from('first '))
        later(() => { s.responseData(Buffer.from('second')); s.responseEnd([]) })
        return
      case '/reset-same-tick': // a failure in the read that brought the head: the head, then a reset
        s.responseHead(200, 'OK', ['content-type', 'text/plain', 'content-length', '100'])
        s.responseData(Buffer.from('partial'))
        s.responseError(Errors.UPSTREAM_RESET, new Error('upstream cut the body'))
        return
      case '/reset-same-tick-empty': // the same before any body byte
        s.responseHead(200, 'OK', ['content-type', 'text/plain', 'content-length', '100'])
        s.responseError(Errors.UPSTREAM_RESET, new Error('upstream cut the body'))
        return
      case '/reset-later': // the same a tick later, once the head has gone out
        s.responseHead(200, 'OK', ['content-type', 'text/plain', 'content-length', '100'])
        s.responseData(Buffer.from('partial'))
        later(() => s.responseError(Errors.UPSTREAM_RESET, new Error('upstream cut the body')))
        return
      case '/whole-trailers': // whole, with trailers: they still arrive
        s.responseHead(200, 'OK', ['content-type', 'text/plain'])
        s.responseData(Buffer.from('body'))
        s.responseEnd([Buffer.from('X-Sum'), Buffer.from('7')])
        return
      case '/grpc-trailers-only': // a Trailers-Only gRPC answer: its status repeated in the trailers
        s.responseHead(200, 'OK', ['content-type', 'application/grpc', 'grpc-status', '5', 'grpc-message', 'nope'])
        s.responseEnd([])
        return
      case '/bad-head': // a head Node refuses, held: contained to the stream, reported once
        s.responseHead(200, 'OK', ['x-bad\u0001name', 'v'])
        s.responseData(Buffer.from('never'))
        s.responseEnd([])
        return
      case '/odd-names': // names an object could inherit or treat specially are fields like any other
        if (s.writeHead(200, ['constructor', 'c', '__proto__', 'p', 'tostring', 't', 'content-length', '2'])) s.end(Buffer.from('ok'))
        return
      case '/hit-extra':
        s.extraFields = ['x-request-id', String(headers['x-id']), 'set-cookie', 'c=3']
        s.sendHit(200, hit, Buffer.from('hit'))
        return
      case '/hit-plain':
        s.sendHit(200, hit, Buffer.from('hit'))
    }
  }) as (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => void)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { server.close() })
  const session = await h2Session(t, `https://127.0.0.1:${(server.address() as AddressInfo).port}`)
  const sentTrailers = (path: string): unknown => streams.get(path)?.sentTrailers

  const whole = await h2Request(session, { ':path': '/whole' })
  t.equal(whole.status, 200)
  t.equal(whole.text, 'hello world')
  t.equal(whole.rstCode, undefined, 'ended, not reset')
  t.equal(sentTrailers('/whole'), undefined, 'a whole answer does not wait for trailers')

  const streamed = await h2Request(session, { ':path': '/streamed' })
  t.equal(streamed.text, 'first second')
  t.equal(streamed.rstCode, undefined)
  t.same(sentTrailers('/streamed'), {}, 'a streamed answer ends with (empty) trailers')

  for (const path of ['/reset-same-tick', '/reset-same-tick-empty', '/reset-later']) {
    const r = await h2Request(session, { ':path': path })
    // A head and a reset in the same tick with no DATA between: Node 20 sends
    // the HEADERS frame first, Node 22 only the RST_STREAM. Either way the
    // answer is a reset, never a complete one (below).
    if (path === '/reset-same-tick-empty') t.ok(r.status === 200 || r.status === 0, `${path}: the head went out or the reset came alone`)
    else t.equal(r.status, 200, `${path}: the head went out`)
    t.equal(r.rstCode, NGHTTP2_INTERNAL_ERROR, `${path}: the cut body ends in a reset, never as complete`)
    t.equal(sentTrailers(path), undefined, `${path}: nothing ended the stream`)
  }

  const wt = await h2Request(session, { ':path': '/whole-trailers' })
  t.equal(wt.text, 'body')
  t.equal(wt.trailers?.['x-sum'], '7', 'trailers of a whole answer arrive')

  const grpc = await h2Request(session, { ':path': '/grpc-trailers-only' })
  t.equal(grpc.status, 200)
  t.equal(grpc.trailers?.['grpc-status'], '5', 'a Trailers-Only status reaches the client in the trailers')
  t.equal(grpc.trailers?.['grpc-message'], 'nope')

  const bad = await h2Request(session, { ':path': '/bad-head' })
  t.equal(bad.status, 0, 'no head went out')
  t.equal(bad.rstCode, NGHTTP2_INTERNAL_ERROR, 'the stream is reset')
  t.equal(contained.length, 1, 'reported once as an internal error')

  const odd = await h2Request(session, { ':path': '/odd-names' })
  t.equal(odd.text, 'ok')
  t.equal(odd.headers.constructor, 'c')
  t.equal(odd.headers['__proto__'], 'p')
  t.equal(odd.headers.tostring, 't')

  // The shared hit head: the request's own fields on one answer only, repeated fields kept.
  const one = await h2Request(session, { ':path': '/hit-extra', 'x-id': 'one' })
  const plain = await h2Request(session, { ':path': '/hit-plain' })
  const two = await h2Request(session, { ':path': '/hit-extra', 'x-id': 'two' })
  t.equal(one.headers['x-request-id'], 'one')
  t.same(one.headers['set-cookie'], ['a=1', 'b=2', 'c=3'], 'a lent field repeating a head field is added to it')
  t.equal(plain.headers['x-request-id'], undefined, 'a lent field does not stay on the shared head')
  t.same(plain.headers['set-cookie'], ['a=1', 'b=2'])
  t.equal(two.headers['x-request-id'], 'two')
  for (const r of [one, plain, two]) t.equal(r.text, 'hit')
  t.equal(contained.length, 1, 'nothing else was refused')
  session.close()
})
