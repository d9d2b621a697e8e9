// The pool connector's guard against undici 7's paused-parser assertion, over
// real sockets: an origin that closes (FIN or RST) short of its
// Content-Length while the response is paused fails that one exchange with a
// socket error, and the process goes on; answers the guard must not touch
// (complete, close-delimited, unpaused) still complete.
import net from 'node:net'
import t from 'tap'
import type { Test } from 'tap'
import { Pool, type Dispatcher } from 'undici'
import { plainConnector } from '../../src/upstream/connector.js'

interface Outcome {
  status?: number
  bytes: number
  completed: boolean
  error?: { code: string | undefined; message: string }
}

/** A raw origin that answers every request with `head` + `body`, then ends the connection as told. */
async function rawOrigin (t: Test, head: string, body: Buffer, ending: 'fin' | 'rst'): Promise<string> {
  const server = net.createServer((socket) => {
    socket.on('error', () => {})
    socket.once('data', () => {
      const bytes = Buffer.concat([Buffer.from(head, 'latin1'), body])
      // RST only once the bytes are out: a reset discards what is still queued.
      if (ending === 'rst') socket.write(bytes, () => socket.resetAndDestroy())
      else socket.end(bytes)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  const { port } = server.address() as net.AddressInfo
  return `http://127.0.0.1:${port}`
}

/**
 * One GET through a guarded pool. `pause`: the handler refuses every chunk and
 * resumes 20 ms later, as a slow client does, so the origin's close arrives
 * while the parser is paused on the last chunk.
 */
async function exchange (t: Test, url: string, pause: boolean): Promise<Outcome> {
  const pool = new Pool(url, { connect: plainConnector(2000), pipelining: 1 })
  t.teardown(() => pool.destroy())
  return await new Promise<Outcome>((resolve) => {
    const out: Outcome = { bytes: 0, completed: false }
    const handler: Dispatcher.DispatchHandler & { resume?: () => void } = {
      onConnect () {},
      onHeaders (status, _raw, resume) { out.status = status; this.resume = resume; return true },
      onData (chunk) {
        out.bytes += chunk.length
        if (!pause) return true
        setTimeout(() => (this as { resume?: () => void }).resume?.(), 20)
        return false
      },
      onComplete () { out.completed = true; resolve(out) },
      onError (err) { out.error = { code: (err as { code?: string }).code, message: err.message }; resolve(out) }
    }
    pool.dispatch({ path: '/', method: 'GET' }, handler)
  })
}

const BODY = Buffer.alloc(300_000, 0x61)

for (const ending of ['fin', 'rst'] as const) {
  for (const close of [true, false]) {
    const what = `${ending.toUpperCase()} short of Content-Length${close ? ', Connection: close' : ''}, paused`
    t.test(what, async (t) => {
      const url = await rawOrigin(t, `HTTP/1.1 200 OK\r\n${close ? 'Connection: close\r\n' : ''}Content-Length: ${BODY.length + 3}\r\n\r\n`, BODY, ending)
      const out = await exchange(t, url, true)
      t.equal(out.status, 200, 'the head arrives')
      t.notOk(out.completed, 'the truncated answer never completes')
      t.ok(out.error !== undefined, `the exchange fails (${out.error?.code}: ${out.error?.message})`)
      t.ok(out.bytes < BODY.length + 3, `fewer bytes than announced (${out.bytes})`)
    })
  }
}

t.test('complete answers are not touched by the guard', async (t) => {
  const framed = await rawOrigin(t, `HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: ${BODY.length}\r\n\r\n`, BODY, 'fin')
  const a = await exchange(t, framed, false)
  t.ok(a.completed && a.bytes === BODY.length, `Content-Length + Connection: close completes (${a.bytes} bytes, ${a.error?.message ?? 'no error'})`)
  const delimited = await rawOrigin(t, 'HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n', BODY, 'fin')
  const b = await exchange(t, delimited, false)
  t.ok(b.completed && b.bytes === BODY.length, `a body the close ends completes (${b.bytes} bytes, ${b.error?.message ?? 'no error'})`)
  const short = await rawOrigin(t, `HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: ${BODY.length + 3}\r\n\r\n`, BODY, 'fin')
  const c = await exchange(t, short, false)
  t.equal(c.error?.code, 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH', 'unpaused, a short body is undici\'s own length mismatch')
})

t.test('a body the close ends, cut by a reset: an error, never a complete answer (paused or not)', async (t) => {
  for (const pause of [false, true]) {
    const url = await rawOrigin(t, 'HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n', BODY, 'rst')
    const out = await exchange(t, url, pause)
    t.equal(out.status, 200)
    t.notOk(out.completed, `${pause ? 'paused' : 'flowing'}: not complete`)
    t.equal(out.error?.code, 'UND_ERR_SOCKET', `${pause ? 'paused' : 'flowing'}: a socket error (${out.error?.message})`)
  }
})

t.test('an unsolicited 100 Continue is passed over, the handler sees only the final answer', async (t) => {
  const url = await rawOrigin(t, 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 100 Continue\r\nx-a: b\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n', Buffer.from('hello'), 'fin')
  const out = await exchange(t, url, false)
  t.equal(out.status, 200)
  t.ok(out.completed, `complete (${out.error?.message ?? 'no error'})`)
  t.equal(out.bytes, 5)
})
