// KeepAliveSweep on real loopback connections, swept at chosen times: what it
// closes and what it leaves open.
import net from 'node:net'
import t, { type Test } from 'tap'
import { KeepAliveSweep } from '../../src/listener/keep-alive.js'

const MS = 60_000

/** `n` connected pairs: the server side (what a listener adds) and the client side. */
async function pairs (t: Test, n: number): Promise<{ server: net.Socket, client: net.Socket }[]> {
  const accepted: net.Socket[] = []
  const server = net.createServer((s) => { accepted.push(s) })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { for (const s of accepted) s.destroy(); server.close() })
  const out: { server: net.Socket, client: net.Socket }[] = []
  for (let i = 0; i < n; i++) {
    const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1')
    t.teardown(() => { client.destroy() })
    await new Promise((resolve) => client.once('connect', resolve))
    while (accepted.length <= i) await new Promise((resolve) => setImmediate(resolve))
    out.push({ server: accepted[i]!, client })
  }
  return out
}

const closed = (s: net.Socket): Promise<void> => new Promise((resolve) => { if (s.destroyed) resolve(); else s.once('close', () => resolve()) })

t.test('closes what read nothing and had no request in flight for the whole timeout, nothing earlier', async (t) => {
  const [quiet, talking, inFlight, handedOver] = await pairs(t, 4)
  const sweep = new KeepAliveSweep(MS)
  t.teardown(() => sweep.stop())
  const t0 = performance.now()
  for (const p of [quiet, talking, inFlight, handedOver]) sweep.add(p!.server)
  t.equal(sweep.size, 4)

  sweep.sweep(t0 + MS / 2)
  t.notOk(quiet!.server.destroyed, 'half the timeout: open')

  // Something read since the last look: idle again from this sweep on.
  const read = new Promise((resolve) => talking!.server.once('data', resolve))
  talking!.client.write('GET / HTTP/1.1\r\n')
  await read
  ;(inFlight!.server as net.Socket & { _httpMessage?: unknown })._httpMessage = {}
  sweep.forget(handedOver!.server)

  sweep.sweep(t0 + MS + 1)
  await closed(quiet!.server)
  t.ok(quiet!.server.destroyed, 'idle for the timeout: closed')
  t.notOk(talking!.server.destroyed, 'read something meanwhile: open')
  t.notOk(inFlight!.server.destroyed, 'a request in flight: open')
  t.notOk(handedOver!.server.destroyed, 'forgotten (a tunnel): open')
  t.equal(sweep.size, 2, 'the closed one is no longer watched; the forgotten one neither')

  sweep.sweep(t0 + 2 * MS + 2)
  t.notOk(inFlight!.server.destroyed, 'still in flight: still open')
  await closed(talking!.server)
  t.ok(talking!.server.destroyed, 'a timeout after its last read: closed')
  ;(inFlight!.server as net.Socket & { _httpMessage?: unknown })._httpMessage = null
  sweep.sweep(t0 + 2.5 * MS)
  t.notOk(inFlight!.server.destroyed, 'its request ended: idle since the last look that saw it in flight')
  sweep.sweep(t0 + 3 * MS + 3)
  await closed(inFlight!.server)
  t.ok(inFlight!.server.destroyed, 'then closed a timeout after that look')
  t.notOk(handedOver!.server.destroyed)
  t.equal(sweep.size, 0)
})

t.test('a connection the client closes is no longer watched', async (t) => {
  const [p] = await pairs(t, 1)
  const sweep = new KeepAliveSweep(MS)
  t.teardown(() => sweep.stop())
  sweep.add(p!.server)
  t.equal(sweep.size, 1)
  p!.client.destroy()
  p!.server.on('error', () => {})
  p!.server.resume()
  await closed(p!.server)
  t.equal(sweep.size, 0)
})

t.test('clientSend: an answer whose bytes wait with nothing written for sendMs is handed on; one that moves is not', async (t) => {
  const SEND = 1_000
  const [stuck, moving, idle] = await pairs(t, 3)
  const stalled: net.Socket[] = []
  const sweep = new KeepAliveSweep(0, SEND, (socket) => { stalled.push(socket); socket.destroy() })
  t.teardown(() => sweep.stop())
  for (const p of [stuck, moving, idle]) {
    sweep.add(p!.server)
    ;(p!.server as net.Socket & { _httpMessage?: unknown })._httpMessage = {}
  }
  // A client that reads nothing: the kernel's buffers fill, then bytes wait in the socket.
  stuck!.client.pause()
  moving!.client.pause()
  const block = Buffer.alloc(64 * 1024)
  for (const s of [stuck!.server, moving!.server]) {
    while (s.writableLength === 0) {
      s.write(block)
      await new Promise((resolve) => setImmediate(resolve))
    }
  }
  const t0 = performance.now()
  sweep.sweep(t0)
  // The moving one's client takes some: the socket finishes a write, and the next one waits.
  moving!.client.resume()
  await new Promise((resolve) => moving!.server.once('drain', resolve))
  moving!.client.pause()
  while (moving!.server.writableLength === 0) {
    moving!.server.write(block)
    await new Promise((resolve) => setImmediate(resolve))
  }
  sweep.sweep(t0 + SEND / 2)
  t.same(stalled, [], 'half of sendMs: nothing')
  sweep.sweep(t0 + SEND + 1)
  t.same(stalled, [stuck!.server], 'nothing written for sendMs: handed on')
  t.notOk(moving!.server.destroyed, 'wrote something meanwhile: left alone')
  t.notOk(idle!.server.destroyed, 'nothing waiting (an answer still being made): left alone')
  t.equal(sweep.size, 2)
  // Without an onStalled the sweep never looks (the listener always passes one).
  const plain = new KeepAliveSweep(0, SEND)
  plain.add(moving!.server)
  plain.sweep(t0 + 10 * SEND)
  t.notOk(moving!.server.destroyed)
  plain.stop()
})

t.test('headMs: bytes no answer follows are closed headMs and a sweep after they began, however often they come', async (t) => {
  const [drip, answered, inFlight] = await pairs(t, 3)
  const HEAD_MS = 1000
  const sweep = new KeepAliveSweep(MS, 0, undefined, HEAD_MS)
  t.teardown(() => sweep.stop())
  const t0 = performance.now()
  for (const p of [drip, answered, inFlight]) sweep.add(p!.server)
  const crlf = async (p: { server: net.Socket, client: net.Socket }): Promise<void> => {
    const read = new Promise((resolve) => p.server.once('data', resolve))
    p.client.write('\r\n')
    await read
  }
  for (const p of [drip, answered, inFlight]) await crlf(p!)
  sweep.sweep(t0 + 100)
  // One connection answers (bytes written), one has a request in flight.
  answered!.server.write('HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n')
  ;(inFlight!.server as net.Socket & { _httpMessage?: unknown })._httpMessage = {}
  for (const p of [drip, answered, inFlight]) await crlf(p!)
  sweep.sweep(t0 + 1500)
  t.notOk(drip!.server.destroyed, 'within headMs and a sweep of its first unanswered bytes: open')
  await crlf(drip!)
  sweep.sweep(t0 + 100 + HEAD_MS + 1000)
  await closed(drip!.server)
  t.ok(drip!.server.destroyed, 'still nothing answered: closed, though it kept sending')
  t.notOk(answered!.server.destroyed, 'an answer went out: its clock started again')
  t.notOk(inFlight!.server.destroyed, 'a request in flight: open')
  // With headMs 0, reads keep a connection as Node's keep-alive timer does.
  const [plain] = await pairs(t, 1)
  const noHead = new KeepAliveSweep(MS)
  t.teardown(() => noHead.stop())
  const t1 = performance.now()
  noHead.add(plain!.server)
  await crlf(plain!)
  noHead.sweep(t1 + MS / 2)
  noHead.sweep(t1 + MS + 1)
  t.notOk(plain!.server.destroyed, 'headMs 0: read within the timeout, open')
})
