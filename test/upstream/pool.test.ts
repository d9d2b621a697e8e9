// upstream/pool.ts: the one classification of upstream failures, which
// HTTP/1.1 client a backend's pools use, and what follows for pausing bodies.
import net from 'node:net'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import type { Test } from 'tap'
import { errors } from 'undici'
import { parseConfig } from '../../src/config/load.js'
import { Errors, type ErrorKind } from '../../src/errors.js'
import { Backend } from '../../src/upstream/backend.js'
import { H1Pool } from '../../src/upstream/h1-client.js'
import {
  ForwardHandler, MAX_UNPAUSED_BYTES, retryableFailure, undiciPools, upstreamErrorKind, type DispatcherFactory, type ResponseSink
} from '../../src/upstream/pool.js'

t.test('an llhttp parse error is a protocol error, though undici 7 gives it no code', async (t) => {
  // What undici 7 throws for a NUL or a bare CR in a response field value: `code` is undefined.
  const err = new errors.HTTPParserError('Response does not match the HTTP/1.1 protocol (Invalid header value char)')
  t.equal((err as { code?: string }).code, undefined, 'still no code in this undici')
  t.equal(upstreamErrorKind(err), Errors.UPSTREAM_PROTOCOL, '502 LB_ERR_UPSTREAM_PROTOCOL, not a reset')
  t.notOk(retryableFailure(err), 'the server answered: never sent again')
  t.equal(upstreamErrorKind(Object.assign(new Error('x'), { code: 'HPE_INVALID_CONSTANT' })), Errors.UPSTREAM_PROTOCOL, 'with a code too')
  t.equal(upstreamErrorKind(new Error('no code')), Errors.UPSTREAM_RESET, 'an error without a code is still a reset')
})

/** A raw origin: every request gets a 200 whose body only the close ends, and never ends (written while the socket takes it). */
async function endlessOrigin (t: Test): Promise<{ url: string, written: () => number }> {
  let written = 0
  const sockets = new Set<net.Socket>()
  const server = net.createServer((socket) => {
    sockets.add(socket)
    socket.on('error', () => {})
    socket.once('data', () => {
      socket.write('HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\n\r\n')
      const block = Buffer.alloc(64 * 1024, 0x61)
      const pump = (): void => {
        while (!socket.destroyed) {
          written += block.length
          if (!socket.write(block)) {
            socket.once('drain', pump)
            return
          }
        }
      }
      pump()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => {
    for (const s of sockets) s.destroy()
    server.close(() => resolve())
  }))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, written: () => written }
}

function backendFor (t: Test, url: string, dispatcher?: DispatcherFactory): Backend {
  const config = parseConfig(`
listeners: [{ bind: "127.0.0.1:0" }]
backends: { api: { servers: [{ name: s1, url: "${url}" }] } }
`, 'test.yaml')
  const b = new Backend(config.backends.api!, dispatcher === undefined ? {} : { dispatcher })
  // Destroyed, not closed: a held exchange would keep close() waiting.
  t.teardown(async () => { await Promise.all(b.servers.map((s) => s.dispatcher.destroy())) })
  return b
}

/** One GET whose sink takes the head and then never drains: what the exchange ends with, and the bytes the sink was handed. */
function stalled (b: Backend, settleMs: number): Promise<{ error?: ErrorKind, bytes: number }> {
  return new Promise((resolve) => {
    let bytes = 0
    let idle: NodeJS.Timeout | undefined
    const sink: ResponseSink = {
      responseInterim: () => {},
      responseHead: () => true,
      responseData: (chunk) => {
        bytes += chunk.length
        // Settled once nothing more has come for settleMs: the exchange is held back.
        clearTimeout(idle)
        idle = setTimeout(() => resolve({ bytes }), settleMs)
        return false
      },
      responseEnd: () => {},
      responseError: (kind) => {
        clearTimeout(idle)
        resolve({ error: kind, bytes })
      },
      fault: (err: unknown) => { throw err }
    }
    new ForwardHandler(b.servers[0]!, b, { released: () => {} }, sink, (_status, raw) => [...raw], false)
      .dispatch({ path: '/', method: 'GET', headers: ['host', 'a.test'], body: null })
  })
}

t.test('which client a backend\'s pools use decides whether any body can be paused', async (t) => {
  const origin = await endlessOrigin(t)
  const ours = backendFor(t, origin.url)
  t.ok(ours.servers[0]!.dispatcher instanceof H1Pool, 'HTTP/1.1 servers get our client')
  t.equal(ours.pausable, true)
  const fallback = backendFor(t, origin.url, undiciPools)
  t.notOk(fallback.servers[0]!.dispatcher instanceof H1Pool)
  t.equal(fallback.pausable, false, 'undici\'s HTTP/1.1 client: not every body can be paused')
})

t.test('a body only the close ends, to a sink that never drains: paused by our client, cut at 16 MiB by the undici fallback', async (t) => {
  const origin = await endlessOrigin(t)
  const paused = await stalled(backendFor(t, origin.url), 300)
  t.equal(paused.error, undefined, 'our client: no error, the exchange is held')
  t.ok(paused.bytes < MAX_UNPAUSED_BYTES, `our client: the sink got ${paused.bytes} bytes, then the socket was paused`)
  const cut = await stalled(backendFor(t, origin.url, undiciPools), 10_000)
  t.equal(cut.error, Errors.CLIENT_TOO_SLOW, 'the fallback: cut, as it cannot pause such a body')
  t.ok(cut.bytes > MAX_UNPAUSED_BYTES, `the fallback: cut past ${MAX_UNPAUSED_BYTES} bytes (${cut.bytes})`)
})

t.test('the undici fallback serves an exchange end to end', async (t) => {
  const server = net.createServer((socket) => {
    socket.on('error', () => {})
    socket.once('data', () => socket.end('HTTP/1.1 200 OK\r\ncontent-length: 5\r\nx-a: b\r\n\r\nhello'))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  const b = backendFor(t, `http://127.0.0.1:${(server.address() as AddressInfo).port}`, undiciPools)
  const got = await new Promise<{ head: string[], body: string }>((resolve, reject) => {
    let head: string[] = []
    let body = ''
    const sink: ResponseSink = {
      responseInterim: () => {},
      responseHead: (_status, _text, headers) => { head = headers; return true },
      responseData: (chunk) => { body += chunk.toString(); return true },
      responseEnd: () => resolve({ head, body }),
      responseError: (_kind, err) => reject(err),
      fault: reject
    }
    new ForwardHandler(b.servers[0]!, b, { released: () => {} }, sink, (_status, raw) => [...raw], false)
      .dispatch({ path: '/', method: 'GET', headers: ['host', 'a.test'], body: null })
  })
  t.same(got, { head: ['content-length', '5', 'x-a', 'b'], body: 'hello' }, 'raw fields reach the shaper as latin1 strings from undici too')
})
