// A client going away cancels the upstream request (while the origin streams,
// while it has not answered yet, mid-upload), over h1 and h2; an upstream that
// dies mid-body never reaches the client as a clean, complete response.
import t from 'tap'
import type { Test } from 'tap'
import http from 'node:http'
import http2 from 'node:http2'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { testCertificate } from '../helpers/certs.js'
import { startProxy, type RunningProxy } from '../helpers/proxy.js'
import { KiB, MiB, SessionLog, proxyYaml, within, writeBytes } from '../helpers/stream-kit.js'
import { startServer } from '../helpers/origin.js'

const GUARD_MS = 10_000
const NGHTTP2_CANCEL = http2.constants.NGHTTP2_CANCEL
const NGHTTP2_INTERNAL_ERROR = http2.constants.NGHTTP2_INTERNAL_ERROR

interface Deferred<T> { promise: Promise<T>, resolve (v: T): void }
function deferred<T> (): Deferred<T> {
  let resolve!: (v: T) => void
  const promise = new Promise<T>((r) => { resolve = r })
  return { promise, resolve }
}

/** What the origin saw of one request, by id (the last path segment). */
interface Seen {
  /** The request reached the origin. */
  readonly arrived: Deferred<void>
  /** The origin's response closed; `finished` tells whether it had been completed. */
  readonly closed: Deferred<{ finished: boolean, requestComplete: boolean }>
}

interface Fixture {
  readonly proxy: RunningProxy
  readonly log: SessionLog
  seen (id: string): Seen
}

const PARTIAL = 256 * KiB
const DECLARED = 1 * MiB

async function setup (tt: Test): Promise<Fixture> {
  const cert = testCertificate(tt)
  const seen = new Map<string, Seen>()
  const seenOf = (id: string): Seen => {
    let s = seen.get(id)
    if (s === undefined) {
      s = { arrived: deferred(), closed: deferred() }
      seen.set(id, s)
    }
    return s
  }
  const timers = new Set<NodeJS.Timeout>()
  tt.teardown(() => { for (const x of timers) clearInterval(x) })

  const origin = await startServer(tt, (req: IncomingMessage, res: ServerResponse) => {
    const parts = (req.url ?? '').split('/')
    const kind = parts[1]
    const id = parts[parts.length - 1]!
    const s = seenOf(id)
    res.once('close', () => s.closed.resolve({ finished: res.writableFinished, requestComplete: req.complete }))
    s.arrived.resolve()
    switch (kind) {
      case 'endless': { // a slow response that never ends
        res.writeHead(200, { 'content-type': 'text/plain' })
        res.write('first\n')
        const timer = setInterval(() => res.write('more\n'), 20)
        timers.add(timer)
        res.once('close', () => { clearInterval(timer); timers.delete(timer) })
        break
      }
      case 'pending': // never answers
        break
      case 'upload': // reads the body, answers at its end
        req.resume()
        req.once('end', () => res.end('uploaded'))
        break
      case 'die': { // /die/<cl|chunked>/<id>: part of the body, then the connection dies
        const framing = parts[2]
        res.writeHead(200, framing === 'cl'
          ? { 'content-type': 'application/octet-stream', 'content-length': String(DECLARED) }
          : { 'content-type': 'application/octet-stream' })
        writeBytes(res, PARTIAL).then(() => {
          res.write(Buffer.alloc(0), () => res.socket?.destroy())
        }, () => res.destroy())
        break
      }
      default:
        res.writeHead(404).end()
    }
  })
  const log = new SessionLog()
  const proxy = await startProxy(tt, proxyYaml(origin.url, cert), log.hooks)
  return { proxy, log, seen: seenOf }
}

function h2Connect (tt: Test, url: string): http2.ClientHttp2Session {
  const client = http2.connect(url, { rejectUnauthorized: false })
  client.on('error', () => {})
  tt.teardown(() => { client.destroy() })
  return client
}

/** An h1 GET; resolves once the response (or the attempt) is over, whatever way it ended. */
interface H1Outcome { status: number, bytes: number, complete: boolean, ended: boolean, error: string | undefined }
function h1Read (url: string): Promise<H1Outcome> {
  return new Promise((resolve) => {
    const out: H1Outcome = { status: 0, bytes: 0, complete: false, ended: false, error: undefined }
    const req = http.get(url, { agent: false }, (res) => {
      out.status = res.statusCode ?? 0
      res.on('data', (c: Buffer) => { out.bytes += c.length })
      res.once('end', () => { out.ended = true })
      res.once('error', (err) => { out.error ??= (err as NodeJS.ErrnoException).code ?? err.message })
      res.once('close', () => { out.complete = res.complete; resolve(out) })
    })
    req.once('error', (err) => { out.error ??= (err as NodeJS.ErrnoException).code ?? err.message; resolve(out) })
  })
}

/** An h2 GET; resolves when the stream closes, with its RST code. */
interface H2Outcome { status: number, bytes: number, ended: boolean, rstCode: number | undefined }
function h2Read (client: http2.ClientHttp2Session, path: string): Promise<H2Outcome> {
  return new Promise((resolve) => {
    const out: H2Outcome = { status: 0, bytes: 0, ended: false, rstCode: undefined }
    const stream = client.request({ ':path': path })
    stream.once('response', (h) => { out.status = Number(h[':status']) })
    stream.on('data', (c: Buffer) => { out.bytes += c.length })
    stream.once('end', () => { out.ended = true })
    stream.on('error', () => {})
    stream.once('close', () => { out.rstCode = stream.rstCode; resolve(out) })
  })
}

/** Resolves once `cond()` holds, polling every 10 ms; rejects after `maxPolls`. */
async function until (cond: () => boolean, maxPolls = 1000): Promise<void> {
  for (let i = 0; !cond(); i++) {
    if (i >= maxPolls) throw new Error('condition never held')
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

async function assertClientAborted (tt: Test, fx: Fixture, id: string, target: string): Promise<void> {
  const closed = await within(fx.seen(id).closed.promise, GUARD_MS, `origin sees ${id} closed`)
  tt.notOk(closed.finished, 'the upstream request was cancelled before the origin finished')
  const s = await within(fx.log.ended(target), GUARD_MS, `session ${target} ends`)
  tt.equal(s.error?.code, 'LB_ERR_CLIENT_ABORTED', 'session ended as a client abort')
}

t.test('client abort while the origin streams an endless response', async (t) => {
  const fx = await setup(t)

  await t.test('h1 client destroys its socket', async (t) => {
    const target = '/endless/h1'
    await new Promise<void>((resolve, reject) => {
      const req = http.get(`${fx.proxy.url('http')}${target}`, { agent: false }, (res) => {
        t.equal(res.statusCode, 200)
        res.once('data', () => { req.destroy(); resolve() })
      })
      req.on('error', (err) => { if ((err as NodeJS.ErrnoException).code !== 'ECONNRESET') reject(err) })
    })
    await assertClientAborted(t, fx, 'h1', target)
  })

  await t.test('h2 client resets the stream (RST_STREAM CANCEL)', async (t) => {
    const target = '/endless/h2-rst'
    const client = h2Connect(t, fx.proxy.url('https'))
    const stream = client.request({ ':path': target })
    stream.on('error', () => {})
    await within(new Promise<void>((resolve) => stream.once('data', () => resolve())), GUARD_MS, 'first bytes')
    stream.close(NGHTTP2_CANCEL)
    await assertClientAborted(t, fx, 'h2-rst', target)
    t.notOk(client.destroyed, 'the h2 connection itself stays up')
  })

  await t.test('h2 client destroys the whole session', async (t) => {
    const target = '/endless/h2-destroy'
    const client = h2Connect(t, fx.proxy.url('https'))
    const stream = client.request({ ':path': target })
    stream.on('error', () => {})
    await within(new Promise<void>((resolve) => stream.once('data', () => resolve())), GUARD_MS, 'first bytes')
    client.destroy()
    await assertClientAborted(t, fx, 'h2-destroy', target)
  })
})

t.test('client abort while the origin has not answered yet', async (t) => {
  const fx = await setup(t)

  await t.test('h1', async (t) => {
    const target = '/pending/h1'
    const req = http.get(`${fx.proxy.url('http')}${target}`, { agent: false })
    req.on('error', () => {})
    await within(fx.seen('h1').arrived.promise, GUARD_MS, 'request reaches the origin')
    req.destroy()
    await assertClientAborted(t, fx, 'h1', target)
  })

  await t.test('h2 RST_STREAM', async (t) => {
    const target = '/pending/h2-rst'
    const client = h2Connect(t, fx.proxy.url('https'))
    const stream = client.request({ ':path': target })
    stream.on('error', () => {})
    await within(fx.seen('h2-rst').arrived.promise, GUARD_MS, 'request reaches the origin')
    stream.close(NGHTTP2_CANCEL)
    await assertClientAborted(t, fx, 'h2-rst', target)
  })

  await t.test('h2 session destroyed', async (t) => {
    const target = '/pending/h2-destroy'
    const client = h2Connect(t, fx.proxy.url('https'))
    client.request({ ':path': target }).on('error', () => {})
    await within(fx.seen('h2-destroy').arrived.promise, GUARD_MS, 'request reaches the origin')
    client.destroy()
    await assertClientAborted(t, fx, 'h2-destroy', target)
  })
})

t.test('client abort mid-upload: the origin sees an incomplete request', async (t) => {
  const fx = await setup(t)

  await t.test('h1', async (t) => {
    const target = '/upload/h1'
    const req = http.request(`${fx.proxy.url('http')}${target}`, { method: 'POST', agent: false })
    req.on('error', () => {})
    await writeBytes(req, 512 * KiB)
    await within(fx.seen('h1').arrived.promise, GUARD_MS, 'upload reaches the origin')
    req.destroy()
    const closed = await within(fx.seen('h1').closed.promise, GUARD_MS, 'origin sees the upload closed')
    t.notOk(closed.requestComplete, 'the origin never saw the end of the body')
    t.notOk(closed.finished, 'nor answered')
    const s = await within(fx.log.ended(target), GUARD_MS, 'session ends')
    t.equal(s.error?.code, 'LB_ERR_CLIENT_ABORTED')
  })

  // The client stops while its body is still flowing (its writes are held back
  // by flow control). Note: Node's `stream.close(code)` sends END_STREAM before
  // the RST_STREAM (the body is then complete), so these abort with
  // `stream.destroy()` (RST_STREAM, no END_STREAM) or by dropping the session.
  for (const how of ['RST_STREAM', 'session destroyed'] as const) {
    await t.test(`h2 ${how}`, async (t) => {
      const id = how === 'RST_STREAM' ? 'h2-rst' : 'h2-destroy'
      const target = `/upload/${id}`
      const client = h2Connect(t, fx.proxy.url('https'))
      const stream = client.request({ ':method': 'POST', ':path': target })
      stream.on('error', () => {})
      const progress = { blocked: false }
      writeBytes(stream, 64 * MiB, (_w, b) => { progress.blocked = b }).catch(() => {})
      await within(fx.seen(id).arrived.promise, GUARD_MS, 'upload reaches the origin')
      await within(until(() => progress.blocked), GUARD_MS, 'client writes held back')
      if (how === 'RST_STREAM') stream.destroy()
      else client.destroy()
      const closed = await within(fx.seen(id).closed.promise, GUARD_MS, 'origin sees the upload closed')
      t.notOk(closed.requestComplete, 'the origin never saw the end of the body')
      t.notOk(closed.finished, 'nor answered')
      const s = await within(fx.log.ended(target), GUARD_MS, 'session ends')
      t.equal(s.error?.code, 'LB_ERR_CLIENT_ABORTED')
    })
  }
})

t.test('upstream dies mid-body: the client never sees a clean, complete response', async (t) => {
  const fx = await setup(t)
  const upstreamFailure = ['LB_ERR_UPSTREAM_RESET', 'LB_ERR_UPSTREAM_PROTOCOL']

  for (const framing of ['cl', 'chunked'] as const) {
    await t.test(`${framing === 'cl' ? 'content-length 1 MiB' : 'chunked'}, h1 client`, async (t) => {
      const target = `/die/${framing}/h1-${framing}`
      const out = await within(h1Read(`${fx.proxy.url('http')}${target}`), GUARD_MS, 'h1 response over')
      t.equal(out.status, 200, 'headers had been sent')
      t.ok(out.bytes <= PARTIAL, `no more than the origin sent (${out.bytes} bytes)`)
      t.notOk(out.complete, 'the response is not complete')
      t.notOk(out.ended, 'no clean end of body')
      t.ok(out.error !== undefined, `the client saw an error (${String(out.error)})`)
      const s = await within(fx.log.ended(target), GUARD_MS, 'session ends')
      t.ok(upstreamFailure.includes(s.error?.code ?? ''), `session error ${String(s.error?.code)} is an upstream failure`)
    })

    await t.test(`${framing === 'cl' ? 'content-length 1 MiB' : 'chunked'}, h2 client`, async (t) => {
      const target = `/die/${framing}/h2-${framing}`
      const client = h2Connect(t, fx.proxy.url('https'))
      const out = await within(h2Read(client, target), GUARD_MS, 'h2 stream closed')
      t.equal(out.status, 200, 'headers had been sent')
      t.ok(out.bytes <= PARTIAL, `no more than the origin sent (${out.bytes} bytes)`)
      t.equal(out.rstCode, NGHTTP2_INTERNAL_ERROR, 'stream reset with INTERNAL_ERROR')
      t.notOk(out.ended, 'no clean end of stream')
      t.notOk(client.destroyed, 'only the stream is reset, not the connection')
      const s = await within(fx.log.ended(target), GUARD_MS, 'session ends')
      t.ok(upstreamFailure.includes(s.error?.code ?? ''), `session error ${String(s.error?.code)} is an upstream failure`)
    })
  }
})
