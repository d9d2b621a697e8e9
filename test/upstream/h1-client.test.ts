// Our HTTP/1.1 upstream client (upstream/h1-client.ts) over real sockets,
// against a raw origin that answers each request head as the test scripts
// it: keep-alive and its limits, the queue, framing of request bodies,
// interim responses, trailers, pauses, timeouts, closes and resets, and
// bytes nobody asked for. Every case runs twice: with the parser reading the
// socket's handle itself and fed the socket's 'data' events (as on a Node
// without consume).
import net from 'node:net'
import tls from 'node:tls'
import type { AddressInfo, Socket } from 'node:net'
import { PassThrough } from 'node:stream'
import t from 'tap'
import type { Test } from 'tap'
import type { Dispatcher } from 'undici'
import { H1Pool, REUSED_CLOSED, type H1PoolOptions } from '../../src/upstream/h1-client.js'
import { NativeParser } from '../../src/llhttp.js'
import { guardedConnector, plainConnector } from '../../src/upstream/connector.js'
import { buildConnector } from 'undici'
import { testCertificatePair } from '../helpers/certs.js'

/** How the client reads its connections in the tests running now (see the loop at the end). */
type Reads = 'handle' | 'stream'
let reads: Reads = 'handle'

/** Connections the client reads through their stream: marked as a parser's already, as node:http marks them. */
function streamReads (connect: buildConnector.connector): buildConnector.connector {
  return guardedConnector(connect, (socket) => {
    const handle = (socket as unknown as { _handle?: { _consumed?: boolean } | null })._handle
    if (handle != null) handle._consumed = true
  }, false)
}

/** What the origin got: each request's head and body (by Content-Length or chunked, as sent), and on which connection. */
interface Seen {
  readonly head: string
  readonly body: Buffer
  readonly conn: number
}

type Script = (socket: Socket, seen: Seen, n: number) => void

interface Origin {
  readonly url: string
  readonly seen: Seen[]
  connections: number
}

/** Reads request heads (and bodies) off each connection and lets `script` answer the n-th request. */
async function origin (t: Test, script: Script): Promise<Origin> {
  const o: Origin = { url: '', seen: [], connections: 0 }
  const sockets = new Set<Socket>()
  const server = net.createServer((socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => {})
    const conn = ++o.connections
    let buf = Buffer.alloc(0)
    socket.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d])
      for (;;) {
        const end = buf.indexOf('\r\n\r\n')
        if (end === -1) return
        const head = buf.subarray(0, end).toString('latin1')
        const rest = buf.subarray(end + 4)
        const length = /\r\ncontent-length: (\d+)/i.exec(head)
        let body: Buffer
        if (length !== null) {
          if (rest.length < Number(length[1])) return
          body = rest.subarray(0, Number(length[1]))
          buf = rest.subarray(body.length)
        } else if (/\r\ntransfer-encoding: chunked/i.test(head)) {
          const last = rest.indexOf('0\r\n\r\n')
          if (last === -1) return
          body = dechunk(rest.subarray(0, last + 5))
          buf = rest.subarray(last + 5)
        } else {
          body = Buffer.alloc(0)
          buf = rest
        }
        const seen = { head, body, conn }
        o.seen.push(seen)
        script(socket, seen, o.seen.length)
      }
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => {
    for (const s of sockets) s.destroy()
    server.close(() => resolve())
  }))
  return Object.assign(o, { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` })
}

function dechunk (raw: Buffer): Buffer {
  const out: Buffer[] = []
  let at = 0
  for (;;) {
    const eol = raw.indexOf('\r\n', at)
    const size = Number.parseInt(raw.subarray(at, eol).toString('latin1'), 16)
    if (size === 0) return Buffer.concat(out)
    out.push(raw.subarray(eol + 2, eol + 2 + size))
    at = eol + 2 + size + 2
  }
}

/** POST `abc`, then `def` 400 ms later: a client that pauses its streamed upload (headersTimeout 100 in the tests). */
async function pausedUpload (p: H1Pool): Promise<Outcome> {
  const body = new PassThrough()
  const out = send(p, { method: 'POST', body })
  body.write('abc')
  await new Promise((resolve) => setTimeout(resolve, 400))
  body.end('def')
  return await out
}

const ok = (body: string, extra = ''): string => `HTTP/1.1 200 OK\r\ncontent-length: ${body.length}\r\n${extra}\r\n${body}`

function pool (t: Test, url: string, o: Partial<H1PoolOptions> = {}): H1Pool {
  const p = new H1Pool(url, {
    connections: 10,
    keepAliveTimeout: 4000,
    keepAliveMaxTimeout: 600_000,
    headersTimeout: 5000,
    bodyTimeout: 5000,
    connect: reads === 'stream' ? streamReads(plainConnector(2000)) : plainConnector(2000),
    ...o
  })
  t.teardown(() => p.destroy())
  return p
}

interface Outcome {
  status?: number
  statusText?: string
  headers?: readonly string[]
  interim: { status: number, headers: readonly string[] }[]
  body: Buffer
  completed: boolean
  trailers?: Buffer[]
  error?: { code: string | undefined, message: string }
}

interface Options {
  readonly method?: string
  readonly path?: string
  readonly headers?: string[]
  readonly body?: Buffer | PassThrough | null
  /** Refuse every body chunk (the client is not draining) and resume after this many ms. */
  readonly pauseMs?: number
  /** Abort right after dispatching. */
  readonly abort?: boolean
}

function send (p: H1Pool, o: Options = {}): Promise<Outcome> {
  return new Promise<Outcome>((resolve) => {
    const out: Outcome = { interim: [], body: Buffer.alloc(0), completed: false }
    let resume: (() => void) | undefined
    const handler: Dispatcher.DispatchHandler = {
      onConnect (abort) { if (o.abort === true) queueMicrotask(() => abort(new Error('client aborted'))) },
      onHeaders (status, raw, r, statusText) {
        const fields = raw as unknown as string[]
        if (status < 200) {
          out.interim.push({ status, headers: fields })
          return true
        }
        out.status = status
        out.statusText = statusText
        out.headers = fields
        resume = r
        return true
      },
      onData (chunk) {
        out.body = Buffer.concat([out.body, chunk])
        if (o.pauseMs === undefined) return true
        setTimeout(() => resume?.(), o.pauseMs)
        return false
      },
      onComplete (trailers) {
        out.completed = true
        out.trailers = trailers as unknown as Buffer[]
        resolve(out)
      },
      onError (err) {
        out.error = { code: (err as { code?: string }).code, message: err.message }
        resolve(out)
      }
    }
    p.dispatch({
      method: (o.method ?? 'GET') as Dispatcher.HttpMethod,
      path: o.path ?? '/',
      headers: o.headers ?? ['host', 'a.test'],
      body: o.body ?? null
    }, handler)
  })
}

t.test('the parser this client needs is in this Node', async (t) => {
  t.equal(typeof NativeParser, 'function', `_http_common's HTTPParser (Node ${process.version})`)
})

/** The cases, under the read mode `reads` says. */
function cases (t: Test): void {
  t.test('keep-alive: one connection serves requests one after another; fields arrive as latin1 strings', async (t) => {
    const o = await origin(t, (s, _seen, n) => s.write(ok(`r${n}`, 'X-Cafe: \u00e9t\u00e9\r\n'), 'latin1'))
    const p = pool(t, o.url)
    for (let i = 1; i <= 3; i++) {
      const out = await send(p)
      t.equal(out.status, 200)
      t.equal(out.statusText, 'OK')
      t.equal(out.body.toString(), `r${i}`)
      t.ok(out.completed)
      t.same(out.headers, ['content-length', '2', 'X-Cafe', '\u00e9t\u00e9'], 'names and values as written, bytes kept')
    }
    t.equal(o.connections, 1, 'one connection for three requests')
    t.match(o.seen[0]!.head, /^GET \/ HTTP\/1\.1\r\nhost: a\.test\r\nconnection: keep-alive$/, 'the head as sent: no length for a GET without body')
  })

  t.test('connections: more requests than connections wait their turn, in order', async (t) => {
    const o = await origin(t, (s, seen) => setTimeout(() => s.write(ok(seen.head.split(' ')[1]!)), 20))
    const p = pool(t, o.url, { connections: 2 })
    const outs = await Promise.all([1, 2, 3, 4, 5].map((i) => send(p, { path: `/${i}` })))
    t.same(outs.map((x) => x.body.toString()), ['/1', '/2', '/3', '/4', '/5'])
    t.equal(o.connections, 2, 'never more than two connections')
    t.same(p.stats, { connected: 2, size: 0 }, 'both idle afterwards')
  })

  t.test('request bodies: a Buffer with its length, a stream chunked or with its declared length, a POST without body says 0', async (t) => {
    const o = await origin(t, (s) => s.write(ok('ok')))
    const p = pool(t, o.url)
    await send(p, { method: 'POST', body: Buffer.from('hello') })
    const chunked = new PassThrough()
    const streamed = send(p, { method: 'PUT', body: chunked })
    chunked.write('abc')
    setTimeout(() => chunked.end('def'), 10)
    await streamed
    const sized = new PassThrough()
    const declared = send(p, { method: 'POST', body: sized, headers: ['host', 'a.test', 'Content-Length', '4'] })
    sized.end('wxyz')
    await declared
    await send(p, { method: 'POST' })
    t.match(o.seen[0]!.head, /\r\ncontent-length: 5$/)
    t.equal(o.seen[0]!.body.toString(), 'hello')
    t.match(o.seen[1]!.head, /\r\ntransfer-encoding: chunked$/)
    t.equal(o.seen[1]!.body.toString(), 'abcdef')
    t.match(o.seen[2]!.head, /\r\ncontent-length: 4$/)
    t.notMatch(o.seen[2]!.head, /Content-Length/, 'the declared length is framed by the client, once')
    t.equal(o.seen[2]!.body.toString(), 'wxyz')
    t.match(o.seen[3]!.head, /\r\ncontent-length: 0$/)
    t.equal(o.connections, 1, 'every answered request left its connection reusable')
  })

  t.test('a streamed body longer or shorter than declared fails the exchange, and the connection goes', async (t) => {
    const o = await origin(t, (s) => s.write(ok('ok')))
    const p = pool(t, o.url)
    const long = new PassThrough()
    const a = send(p, { method: 'POST', body: long, headers: ['content-length', '2'] })
    long.end('abc')
    t.equal((await a).error?.code, 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH')
    const short = new PassThrough()
    const b = send(p, { method: 'POST', body: short, headers: ['content-length', '9'] })
    short.end('abc')
    t.equal((await b).error?.code, 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH')
    t.equal((await send(p, { method: 'POST', body: Buffer.from('abc'), headers: ['content-length', '9'] })).error?.code,
      'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH', 'a Buffer is checked before anything is sent')
  })

  t.test('what undici refuses to send is refused here too, before anything is sent', async (t) => {
    const o = await origin(t, (s) => s.write(ok('ok')))
    const p = pool(t, o.url)
    for (const [what, opts] of [
      ['a CR LF in a value', { headers: ['x-a', 'b\r\nx-injected: 1'] }],
      ['a space in a name', { headers: ['x a', 'b'] }],
      ['a space in the path', { path: '/a b' }],
      ['a path that is not origin-form', { path: 'a' }]
    ] as const) {
      t.equal((await send(p, opts as Options)).error?.code, 'UND_ERR_INVALID_ARG', what)
    }
    t.equal(o.seen.length, 0, 'the origin saw none of them')
  })

  t.test('interim responses: 100 passed over, 103 handed on with its fields; the final answer follows', async (t) => {
    const o = await origin(t, (s) => s.write('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n' + ok('done')))
    const out = await send(pool(t, o.url))
    t.same(out.interim, [{ status: 103, headers: ['Link', '</a.css>; rel=preload'] }], 'the 100 is never relayed')
    t.equal(out.status, 200)
    t.equal(out.body.toString(), 'done')
  })

  t.test('a chunked answer with trailers; a long head of many fields arrives whole', async (t) => {
    const many = Array.from({ length: 80 }, (_, i) => `x-f${i}: ${i}\r\n`).join('')
    const o = await origin(t, (s, _seen, n) => s.write(n === 1
      ? 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ntrailer: x-sum\r\n\r\n3\r\nabc\r\n0\r\nx-sum: 42\r\n\r\n'
      : `HTTP/1.1 200 OK\r\n${many}content-length: 2\r\n\r\nok`))
    const p = pool(t, o.url)
    const a = await send(p)
    t.equal(a.body.toString(), 'abc')
    t.same(a.trailers?.map((b) => b.toString('latin1')), ['x-sum', '42'], 'trailers as flat Buffers, as sinks take them')
    const b = await send(p)
    t.equal(b.headers?.length, 162, 'all 81 fields (the parser flushes them in parts)')
    t.equal(b.headers?.[0], 'x-f0')
    t.equal(b.headers?.[161], '2')
    t.same(b.trailers, [], 'no trailers')
    t.equal(o.connections, 1)
  })

  t.test('one read\'s events come before the tick queue runs: a tick from onHeaders runs after the end the same read brought', async (t) => {
    const o = await origin(t, (s) => s.write(ok('whole')))
    const p = pool(t, o.url)
    const order: string[] = []
    await new Promise<void>((resolve, reject) => {
      p.dispatch({ method: 'GET', path: '/', headers: ['host', 'a.test'] }, {
        onConnect () {},
        onHeaders () {
          order.push('head')
          process.nextTick(() => order.push('tick'))
          return true
        },
        onData () { order.push('body'); return true },
        onComplete () { order.push('end'); setImmediate(resolve) },
        onError: reject
      })
    })
    t.same(order, ['head', 'body', 'end', 'tick'])
  })

  t.test('HEAD: the answer has no body whatever its Content-Length, and the connection is reused', async (t) => {
    const o = await origin(t, (s, seen) => s.write(seen.head.startsWith('HEAD') ? 'HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n' : ok('after')))
    const p = pool(t, o.url)
    const head = await send(p, { method: 'HEAD' })
    t.ok(head.completed)
    t.equal(head.body.length, 0)
    t.equal((await send(p)).body.toString(), 'after')
    t.equal(o.connections, 1)
  })

  t.test('a response paused on its last chunk leaves a connection that still reads the next answer', async (t) => {
    const o = await origin(t, (s, _seen, n) => s.write(`HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nbody${n}\r\n0\r\n\r\n`))
    const p = pool(t, o.url)
    t.equal((await send(p, { pauseMs: 5 })).body.toString(), 'body1')
    const next = await send(p)
    t.equal(next.body.toString(), 'body2', 'answered on the same connection')
    t.equal(o.connections, 1)
  })

  for (const ending of ['fin', 'rst'] as const) {
    t.test(`${ending.toUpperCase()} short of Content-Length, paused: that exchange fails with a socket error`, async (t) => {
      const body = Buffer.alloc(300_000, 0x61)
      const o = await origin(t, (s) => {
        s.write(`HTTP/1.1 200 OK\r\ncontent-length: ${body.length + 3}\r\n\r\n`)
        if (ending === 'rst') s.write(body, () => s.resetAndDestroy())
        else s.end(body)
      })
      const out = await send(pool(t, o.url), { pauseMs: 5 })
      t.equal(out.status, 200)
      t.notOk(out.completed)
      t.equal(out.error?.code, 'UND_ERR_SOCKET', out.error?.message ?? '')
    })
  }

  t.test('a body the close ends: complete on a FIN, an error on a reset', async (t) => {
    const body = Buffer.alloc(300_000, 0x62)
    for (const ending of ['fin', 'rst'] as const) {
      const o = await origin(t, (s) => {
        s.write('HTTP/1.1 200 OK\r\n\r\n')
        if (ending === 'rst') s.write(body, () => s.resetAndDestroy())
        else s.end(body)
      })
      const out = await send(pool(t, o.url))
      if (ending === 'fin') {
        t.ok(out.completed, 'FIN: complete')
        t.equal(out.body.length, body.length)
      } else {
        t.notOk(out.completed, 'reset: never complete')
        t.equal(out.error?.code, 'UND_ERR_SOCKET', out.error?.message ?? '')
      }
    }
  })

  t.test('a close before any answer is a socket error (the owner may send it elsewhere)', async (t) => {
    const o = await origin(t, (s) => s.end())
    t.equal((await send(pool(t, o.url))).error?.code, 'UND_ERR_SOCKET')
  })

  t.test('malformed answers are the parser\'s errors (HPE_*), and the connection goes', async (t) => {
    const o = await origin(t, (s, _seen, n) => s.write(n === 1 ? 'HTTP/1.1 200 OK\r\nx-bad: a\u0000b\r\ncontent-length: 0\r\n\r\n' : ok('fine')))
    const p = pool(t, o.url)
    t.match((await send(p)).error?.code, /^HPE_/)
    t.equal((await send(p)).body.toString(), 'fine')
    t.equal(o.connections, 2)
  })

  t.test('bytes nobody asked for: an idle connection that receives them is dropped, the next request gets a new one', async (t) => {
    const o = await origin(t, (s, _seen, n) => {
      s.write(ok(`r${n}`))
      if (n === 1) setTimeout(() => s.write(ok('SMUGGLED')), 20)
    })
    const p = pool(t, o.url)
    t.equal((await send(p)).body.toString(), 'r1')
    await new Promise((resolve) => setTimeout(resolve, 100))
    t.equal((await send(p)).body.toString(), 'r2', 'never the unasked answer')
    t.equal(o.connections, 2)
  })

  t.test('an answer followed at once by one more, unasked: the connection is not reused', async (t) => {
    const o = await origin(t, (s, _seen, n) => s.write(ok(`r${n}`) + ok('SMUGGLED')))
    const p = pool(t, o.url)
    t.equal((await send(p)).body.toString(), 'r1')
    t.equal((await send(p)).body.toString(), 'r2')
    t.equal(o.connections, 2)
  })

  t.test('bytes past an answer, in its read, that begin a head: the next request never reads them as its answer', async (t) => {
    const evil = 'HTTP/1.1 302 Found\r\nlocation: http://evil.example/\r\nset-cookie: sess=attacker\r\nx-junk: '
    for (const [what, method, first] of [
      ['a body longer than its Content-Length', 'GET', 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nr1'],
      ['a body on a 204', 'GET', 'HTTP/1.1 204 No Content\r\n\r\n'],
      ['a body on a 304', 'GET', 'HTTP/1.1 304 Not Modified\r\ncontent-length: 2\r\n\r\n'],
      ['a body on an answer to HEAD', 'HEAD', 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nr1']
    ] as const) {
      const o = await origin(t, (s, _seen, n) => s.write(n === 1 ? first + evil : ok(`r${n}`)))
      const p = pool(t, o.url)
      t.equal((await send(p, { method })).error, undefined, `${what}: the first answer is relayed`)
      const next = await send(p)
      t.same([next.status, next.body.toString()], [200, 'r2'], `${what}: the next request gets its own answer`)
      t.equal(o.connections, 2, `${what}: on a new connection`)
    }
  })

  t.test('CR and LF past an answer in its read begin no message, but the connection is not reused either', async (t) => {
    const evil = 'HTTP/1.1 302 Found\r\nlocation: http://evil.example/\r\nx-junk: '
    for (const [what, first, later] of [
      ['CRLF after a Content-Length body', ok('r1') + '\r\n', ''],
      ['CRLF after a chunked body', 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nr1\r\n0\r\n\r\n\r\n', ''],
      ['a lone LF after a 204', 'HTTP/1.1 204 No Content\r\n\r\n\n', ''],
      // The padding pushes the injected head into a later read, where it would have been the next request's answer.
      ['100 KB of CRLF, then a head', ok('r1') + '\r\n'.repeat(50_000) + evil, ''],
      ['CRLF, then a head a moment later', ok('r1') + '\r\n', evil]
    ] as const) {
      const o = await origin(t, (s, _seen, n) => {
        if (n > 1) return s.write(ok(`r${n}`))
        s.write(first)
        if (later !== '') setTimeout(() => s.write(later), 50)
      })
      // One connection at most: a request that waits takes the first connection that frees.
      const p = pool(t, o.url, { connections: 1 })
      const [a, b] = await Promise.all([send(p), send(p)])
      t.equal(a.error, undefined, `${what}: the first answer is relayed`)
      t.same([b.status, b.body.toString()], [200, 'r2'], `${what}: the next request gets its own answer`)
      t.equal(o.connections, 2, `${what}: on a new connection`)
    }
  })

  t.test('an answer that ends its read exactly keeps its connection, whatever its framing', async (t) => {
    for (const [what, answer] of [
      ['Content-Length', (n: number) => ok(`r${n}`)],
      ['chunked, trailers', (n: number) => `HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nr${n}\r\n0\r\nx-t: 1\r\n\r\n`],
      ['a body of CRLFs', (n: number) => ok('\r\n'.repeat(n))],
      ['204', () => 'HTTP/1.1 204 No Content\r\n\r\n'],
      ['103, then the answer', (n: number) => 'HTTP/1.1 103 Early Hints\r\nlink: </a>; rel=preload\r\n\r\n' + ok(`r${n}`)]
    ] as const) {
      const o = await origin(t, (s, _seen, n) => s.write(answer(n)))
      const p = pool(t, o.url)
      await send(p)
      await send(p)
      t.equal(o.connections, 1, `${what}: one connection for both`)
    }
  })

  t.test('keep-alive limits: Connection: close, a server Keep-Alive hint too short to use, HTTP/1.0', async (t) => {
    for (const [what, answer] of [
      ['Connection: close', 'HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok'],
      ['Keep-Alive: timeout=1 (under the 2 s margin)', 'HTTP/1.1 200 OK\r\nkeep-alive: timeout=1\r\ncontent-length: 2\r\n\r\nok'],
      ['HTTP/1.0', 'HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\nok'],
      // RFC 9112 §6.1: faulty framing, closed after the message.
      ['HTTP/1.0 keep-alive with Transfer-Encoding', 'HTTP/1.0 200 OK\r\nconnection: keep-alive\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n']
    ] as const) {
      const o = await origin(t, (s) => s.write(answer))
      const p = pool(t, o.url)
      await send(p)
      await send(p)
      t.equal(o.connections, 2, `${what}: a new connection for the next request`)
    }
  })

  t.test('an idle connection is closed after keepAliveTimeout', async (t) => {
    const o = await origin(t, (s) => s.write(ok('ok')))
    const p = pool(t, o.url, { keepAliveTimeout: 50 })
    await send(p)
    t.equal(p.stats.connected, 1)
    await new Promise((resolve) => setTimeout(resolve, 300))
    t.equal(p.stats.connected, 0, 'closed by us')
    await send(p)
    t.equal(o.connections, 2)
  })

  t.test('a server\'s Keep-Alive hint longer than keepAliveTimeout: its idle connections live until 2 s before its own close', async (t) => {
    const o = await origin(t, (s) => s.write(ok('ok', 'keep-alive: timeout=3\r\n')))
    const p = pool(t, o.url, { keepAliveTimeout: 50 })
    await send(p)
    await new Promise((resolve) => setTimeout(resolve, 300))
    t.equal(p.stats.connected, 1, 'still open past keepAliveTimeout (the server keeps it 3 s)')
    await send(p)
    t.equal(o.connections, 1, 'and reused')
    const last = Date.now()
    while (p.stats.connected > 0 && Date.now() - last < 2900) await new Promise((resolve) => setTimeout(resolve, 50))
    t.equal(p.stats.connected, 0, 'closed by us (1 s after its last answer), before the server would')
  })

  t.test('timeouts: no head in time, then a body that stops', async (t) => {
    const o = await origin(t, (s, _seen, n) => { if (n === 2) s.write('HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc') })
    const p = pool(t, o.url, { headersTimeout: 100, bodyTimeout: 100 })
    t.equal((await send(p)).error?.code, 'UND_ERR_HEADERS_TIMEOUT')
    const body = await send(p)
    t.equal(body.status, 200)
    t.equal(body.error?.code, 'UND_ERR_BODY_TIMEOUT')
  })

  t.test('a streamed body the client pauses is not the server\'s stall: no headers timeout while the client is the one to send', async (t) => {
    const o = await origin(t, (s) => s.write(ok('ok')))
    const r = await pausedUpload(pool(t, o.url, { headersTimeout: 100 }))
    t.equal(r.error, undefined, 'no UND_ERR_HEADERS_TIMEOUT while waiting on the client')
    t.equal(r.status, 200)
    t.equal(o.seen[0]!.body.toString(), 'abcdef')
  })

  t.test('an interim answer (103) does not restart the head\'s wait while the client is the one to send', async (t) => {
    // Answers 103 as soon as the head is in, and 200 once the chunked body has ended.
    const sockets = new Set<Socket>()
    const server = net.createServer((socket) => {
      sockets.add(socket)
      socket.on('error', () => {})
      let got = ''
      let hinted = false
      socket.on('data', (d: Buffer) => {
        got += d.toString('latin1')
        if (!hinted && got.includes('\r\n\r\n')) {
          hinted = true
          socket.write('HTTP/1.1 103 Early Hints\r\nlink: </a.css>; rel=preload\r\n\r\n')
        }
        if (got.endsWith('0\r\n\r\n')) socket.write(ok('ok'))
      })
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    t.teardown(() => new Promise<void>((resolve) => { for (const s of sockets) s.destroy(); server.close(() => resolve()) }))
    const r = await pausedUpload(pool(t, `http://127.0.0.1:${(server.address() as AddressInfo).port}`, { headersTimeout: 100 }))
    t.equal(r.error, undefined, 'no UND_ERR_HEADERS_TIMEOUT after the 103 while the client paused')
    t.same(r.interim.map((i) => i.status), [103])
    t.equal(r.status, 200)
  })

  t.test('a server that stops taking the body is stalling: the headers timeout runs while the body waits on it', async (t) => {
    // Reads nothing: the kernel's buffers fill and the client's writes back up.
    const sockets = new Set<Socket>()
    const server = net.createServer((socket) => { sockets.add(socket); socket.pause(); socket.on('error', () => {}) })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    t.teardown(() => new Promise<void>((resolve) => { for (const s of sockets) s.destroy(); server.close(() => resolve()) }))
    const p = pool(t, `http://127.0.0.1:${(server.address() as AddressInfo).port}`, { headersTimeout: 100 })
    const body = new PassThrough()
    const out = send(p, { method: 'POST', body })
    const chunk = Buffer.alloc(256 * 1024, 'x')
    let written = 0
    // Feed it until the client stops taking more (paused on the full socket), 256 MiB at most.
    while (written < 256 * 1024 * 1024) {
      written += chunk.length
      if (!body.write(chunk)) {
        const drained = await Promise.race([new Promise((resolve) => body.once('drain', () => resolve(true))), out.then(() => false)])
        if (drained === false) break
      }
    }
    const r = await out
    t.equal(r.error?.code, 'UND_ERR_HEADERS_TIMEOUT', `after ${written} bytes`)
    body.destroy()
  })

  t.test('a paused response is not the server\'s stall: no body timeout while the client does not read', async (t) => {
    const o = await origin(t, (s) => s.write(`HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabcde`, () => setTimeout(() => s.write('fghij'), 50)))
    const out = await send(pool(t, o.url, { bodyTimeout: 100 }), { pauseMs: 300 })
    t.ok(out.completed, out.error?.message ?? 'complete')
    t.equal(out.body.toString(), 'abcdefghij')
  })

  t.test('abort: a waiting request is never sent; one in flight takes its connection with it', async (t) => {
    const o = await origin(t, (s) => setTimeout(() => s.write(ok('late')), 50))
    const p = pool(t, o.url, { connections: 1 })
    const first = send(p, { abort: true })
    const second = send(p, { path: '/second' })
    const queued = send(p, { path: '/queued', abort: true })
    t.equal((await first).error?.message, 'client aborted')
    t.equal((await queued).error?.message, 'client aborted')
    t.equal((await second).body.toString(), 'late')
    t.notOk(o.seen.some((s) => s.head.includes('/queued')), 'the aborted waiting request never reached the origin')
  })

  t.test('a request aborted while its connection is being made leaves that connection to the next one (no new connection per reset)', async (t) => {
    const o = await origin(t, (s, _seen, n) => s.write(ok(`r${n}`)))
    const p = pool(t, o.url, { connections: 10 })
    const aborted = Array.from({ length: 5 }, () => send(p, { abort: true }))
    // The aborts run (a microtask each), their connections still being made.
    await Promise.resolve()
    const next = Array.from({ length: 3 }, (_, i) => send(p, { path: `/next${i}` }))
    for (const a of await Promise.all(aborted)) t.equal(a.error?.message, 'client aborted')
    t.same((await Promise.all(next)).map((r) => r.status), [200, 200, 200], 'those after them are answered')
    t.equal(o.connections, 5, 'on the connections the aborted ones left, none opened for them')
    t.notOk(o.seen.some((s) => /^GET \/ /.test(s.head)), 'no aborted request reached the origin')
  })

  t.test('a spare connection that fails to connect: what waited for it gets a connection of its own', async (t) => {
    let attempts = 0
    const o = await origin(t, (s, _seen, n) => s.write(ok(`r${n}`)))
    const p = pool(t, o.url, {
      connections: 10,
      // The first connection fails (after its request was aborted); the rest connect.
      connect: (opts, cb) => {
        if (attempts++ === 0) setTimeout(() => cb(new Error('connect ECONNREFUSED (test)'), null), 20)
        else plainConnector(2000)(opts, cb)
      }
    })
    const aborted = send(p, { abort: true })
    await Promise.resolve()
    const waiting = send(p, { path: '/waiting' })
    t.equal((await aborted).error?.message, 'client aborted')
    t.same([(await waiting).status, (await waiting).body.toString()], [200, 'r1'])
  })

  t.test('connect failure: the request fails with the connect error and the pool says so', async (t) => {
    const closed = net.createServer()
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve))
    const port = (closed.address() as AddressInfo).port
    await new Promise<void>((resolve) => closed.close(() => resolve()))
    const p = pool(t, `http://127.0.0.1:${port}`)
    let told = 0
    p.on('connectionError', () => { told++ })
    t.equal((await send(p)).error?.code, 'ECONNREFUSED')
    t.equal(told, 1)
  })

  t.test('upgrade: the 101 hands the socket over with the bytes read past the head', async (t) => {
    const o = await origin(t, (s) => {
      s.write('HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\nEARLY')
      s.on('data', (d) => s.write(d))
    })
    const p = pool(t, o.url)
    const got = await new Promise<{ status: number, raw: string[], first: string }>((resolve, reject) => {
      p.dispatch({ method: 'GET', path: '/ws', headers: ['host', 'a.test'], upgrade: 'websocket' }, {
        onConnect () {},
        onHeaders () { reject(new Error('no 101')); return false },
        onData () { return true },
        onComplete () {},
        onError: reject,
        onUpgrade (status, raw, socket) {
          socket.once('data', (d: Buffer) => {
            resolve({ status, raw: raw as unknown as string[], first: d.toString() })
            socket.destroy()
          })
        }
      })
    })
    t.equal(got.status, 101)
    t.same(got.raw, ['upgrade', 'websocket', 'connection', 'upgrade'])
    t.equal(got.first, 'EARLY', 'what came with the head is read first')
    t.match(o.seen[0]!.head, /\r\nconnection: upgrade\r\nupgrade: websocket$/)
    t.equal(p.stats.connected, 0, 'the socket left the pool')
  })

  t.test('close() lets what is in flight finish; destroy() fails what waits', async (t) => {
    const o = await origin(t, (s) => setTimeout(() => s.write(ok('fin')), 30))
    const a = pool(t, o.url)
    const inFlight = send(a)
    await new Promise((resolve) => setTimeout(resolve, 5))
    const closed = a.close()
    t.equal((await inFlight).body.toString(), 'fin')
    await closed
    t.equal((await send(a)).error?.code, 'UND_ERR_CLOSED', 'nothing new after close')
    const b = pool(t, o.url, { connections: 1 })
    const first = send(b)
    const waiting = send(b)
    await new Promise((resolve) => setTimeout(resolve, 5))
    await b.destroy()
    t.equal((await first).error?.code, 'UND_ERR_DESTROYED')
    t.equal((await waiting).error?.code, 'UND_ERR_DESTROYED')
  })

  t.test('a request in the same turn as an idle timeout gets an open connection, not the one just closed', async (t) => {
    const o = await origin(t, (s) => s.write(ok('ok')))
    let socket: Socket | undefined
    const base = plainConnector(2000)
    const p = pool(t, o.url, {
      keepAliveTimeout: 100,
      connect: guardedConnector(reads === 'stream' ? streamReads(base) : base, (s) => { socket = s }, false)
    })
    t.equal((await send(p)).body.toString(), 'ok')
    // Checked once per turn: the first turn that sees the socket destroyed by
    // the idle timer is before its 'close' (check phase, then close callbacks).
    const second = await new Promise<Promise<Outcome>>((resolve) => {
      const look = (): void => {
        if (socket!.destroyed) resolve(send(p))
        else setImmediate(look)
      }
      look()
    })
    const out = await second
    t.equal(out.error, undefined, 'no "other side closed"')
    t.equal(out.body.toString(), 'ok')
    t.equal(o.connections, 2, 'on a new connection')
  })

  t.test('a reused connection the server closes before answering fails with REUSED_CLOSED; a new one with UND_ERR_SOCKET', async (t) => {
    // The server closes each connection when its second request arrives, as if its keep-alive timer had just fired.
    const o = await origin(t, (s, _seen, n) => {
      if (n === 1) s.write(ok('ok', 'keep-alive: timeout=60\r\n'))
      else s.destroy()
    })
    const p = pool(t, o.url)
    t.equal((await send(p)).body.toString(), 'ok')
    t.equal((await send(p)).error?.code, REUSED_CLOSED, 'nothing of an answer on a reused connection')
    const fresh = await origin(t, (s) => s.destroy())
    t.equal((await send(pool(t, fresh.url))).error?.code, 'UND_ERR_SOCKET', 'a first request: the server may have processed it')
    const partial = await origin(t, (s, _seen, n) => {
      if (n === 1) s.write(ok('ok'))
      else s.end('HTTP/1.1 200 OK\r\ncontent-le')
    })
    const q = pool(t, partial.url)
    t.equal((await send(q)).body.toString(), 'ok')
    t.equal((await send(q)).error?.code, 'UND_ERR_SOCKET', 'part of a head came: not a stale connection')
  })
}

t.test('a plain connection is read by the parser from its handle: no \'data\' listener on the socket', async (t) => {
  const o = await origin(t, (s) => s.write(ok('x')))
  let socket: Socket | undefined
  const p = pool(t, o.url, { connect: guardedConnector(plainConnector(2000), (s) => { socket = s }, false) })
  t.equal((await send(p)).body.toString(), 'x')
  t.equal((socket as unknown as { _handle: { _consumed?: boolean } })._handle._consumed, true, 'the handle is the parser\'s')
  t.equal(socket!.listenerCount('data'), 0)
})

t.test('a TLS connection is read from its handle too (a TLSWrap): keep-alive, a paused answer, a body the close ends', async (t) => {
  const pair = testCertificatePair()
  let n = 0
  let connections = 0
  const server = tls.createServer({ key: pair.keyPem, cert: pair.certPem }, (socket) => {
    connections++
    socket.on('error', () => {})
    socket.on('data', () => {
      n++
      if (n === 1) socket.write(ok('one'))
      else if (n === 2) socket.write(`HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\ntwo\r\n0\r\n\r\n`)
      else socket.end('HTTP/1.1 200 OK\r\n\r\nthree, to the close')
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  let socket: Socket | undefined
  const connect = guardedConnector(buildConnector({ rejectUnauthorized: false }), (s) => { socket = s }, false)
  const p = pool(t, `https://127.0.0.1:${(server.address() as AddressInfo).port}`, { connect })
  t.equal((await send(p)).body.toString(), 'one')
  t.equal((socket as unknown as { _handle: { _consumed?: boolean } })._handle._consumed, true, 'the TLSWrap is the parser\'s')
  t.equal(socket!.listenerCount('data'), 0)
  t.equal((await send(p, { pauseMs: 5 })).body.toString(), 'two', 'paused and resumed')
  const last = await send(p)
  t.equal(last.body.toString(), 'three, to the close')
  t.ok(last.completed, 'a body the close ends, complete on the TLS end')
  t.equal(connections, 1, 'all three on one connection')
})

for (const mode of ['handle', 'stream'] as const) {
  t.test(`reads: ${mode}`, async (t) => {
    reads = mode
    t.teardown(() => { reads = 'handle' })
    cases(t)
  })
}
