// Lingering close (src/listener/linger.ts) on real loopback connections: the
// FIN goes out after the answer, what the client still sends is read and
// dropped (no reset), and the connection ends when the client closes too or
// after the bound. And the listener's handling of Node's client errors.
import net from 'node:net'
import t, { type Test } from 'tap'
import { closingConnection, lingerOnClose, onClientError } from '../../src/listener/linger.js'

/** A connected pair: the server side (a listener's socket) and the client side. */
async function pair (t: Test): Promise<{ server: net.Socket, client: net.Socket }> {
  let accepted: net.Socket | undefined
  const server = net.createServer((s) => { accepted = s })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  // allowHalfOpen: the client side stays open after the server's FIN, as a client still sending does.
  const client = net.connect({ port: (server.address() as net.AddressInfo).port, host: '127.0.0.1', allowHalfOpen: true })
  t.teardown(() => { client.destroy(); accepted?.destroy(); server.close() })
  await new Promise((resolve) => client.once('connect', resolve))
  while (accepted === undefined) await new Promise((resolve) => setImmediate(resolve))
  return { server: accepted, client }
}

const closed = (s: net.Socket): Promise<void> => new Promise((resolve) => { if (s.destroyed) resolve(); else s.once('close', () => resolve()) })
const ended = (s: net.Socket): Promise<void> => new Promise((resolve) => { if (s.readableEnded) resolve(); else s.once('end', () => resolve()) })
/** All the client receives until the server's end of stream (listening from now on). */
const received = (client: net.Socket): Promise<string> => new Promise((resolve) => {
  const got: Buffer[] = []
  client.on('data', (c: Buffer) => got.push(c))
  client.once('end', () => resolve(Buffer.concat(got).toString()))
})
const tick = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

t.test('after the answer: a FIN, then what the client still sends is read, until the client closes too', async (t) => {
  const { server, client } = await pair(t)
  lingerOnClose(server, 60_000)
  const got: Buffer[] = []
  client.on('data', (c: Buffer) => got.push(c))
  let reset = false
  client.on('error', () => { reset = true })
  server.write('the answer')
  server.destroySoon()
  await ended(client)
  t.equal(Buffer.concat(got).toString(), 'the answer', 'the answer, then the end of the stream')
  t.notOk(server.destroyed, 'the server side is still open, reading')
  const before = server.bytesRead
  client.write('more of a body nobody reads')
  while (server.bytesRead === before) await tick(5)
  t.equal(server.bytesRead - before, 27, 'read and dropped')
  t.notOk(server.destroyed)
  client.end()
  await closed(server)
  t.ok(server.destroyed, 'closed once the client closed its side')
  await tick(20)
  t.notOk(reset, 'the client never saw a reset')
  t.ok(closingConnection(server), 'a request arriving now would not be taken')
})

t.test('a client that neither sends nor closes: closed after the bound', async (t) => {
  const { server, client } = await pair(t)
  lingerOnClose(server, 50)
  client.on('error', () => {})
  server.destroySoon()
  await ended(client)
  t.notOk(server.destroyed, 'open right after the FIN')
  await closed(server)
  t.ok(server.destroyed, 'closed by the bound')
})

t.test('a client that closed first: nothing to wait for', async (t) => {
  const { server, client } = await pair(t)
  lingerOnClose(server, 60_000)
  server.on('end', () => {})
  server.resume()
  client.end()
  await ended(server)
  server.destroySoon()
  await closed(server)
  t.ok(server.destroyed, 'closed once the FIN is out, not after the bound')
})

t.test('client errors', async (t) => {
  const err = (code: string): NodeJS.ErrnoException => Object.assign(new Error(code), { code })

  await t.test('a parse error with nothing in flight: Node\'s 400, then a lingering close', async (t) => {
    const { server, client } = await pair(t)
    lingerOnClose(server, 60_000)
    const answer = received(client)
    onClientError(err('HPE_INVALID_METHOD'), server)
    t.equal(await answer, 'HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n')
    t.notOk(server.destroyed, 'still reading what the client sends')
    onClientError(err('HPE_INVALID_METHOD'), server) // the failed parser reports the next read again
    t.notOk(server.destroyed, 'a second report changes nothing')
    client.end()
    await closed(server)
  })

  await t.test('a head too large: 431', async (t) => {
    const { server, client } = await pair(t)
    lingerOnClose(server, 60_000)
    const answer = received(client)
    onClientError(err('HPE_HEADER_OVERFLOW'), server)
    t.match(await answer, /^HTTP\/1\.1 431 Request Header Fields Too Large\r\n/)
  })

  await t.test('a request head slower than headersTimeout: 408 and closed at once', async (t) => {
    const { server, client } = await pair(t)
    lingerOnClose(server, 60_000)
    const answer = received(client)
    client.on('error', () => {})
    onClientError(err('ERR_HTTP_REQUEST_TIMEOUT'), server)
    t.ok(server.destroyed, 'no lingering for a client that slow')
    t.match(await answer, /^HTTP\/1\.1 408 Request Timeout\r\n/)
  })

  await t.test('bytes after a complete request in flight: its answer becomes the last, nothing is written', async (t) => {
    const { server, client } = await pair(t)
    const pending = { _headerSent: false, _last: false, shouldKeepAlive: true, req: { complete: true } }
    Object.assign(server, { _httpMessage: pending })
    onClientError(err('HPE_CLOSED_CONNECTION'), server)
    t.notOk(server.destroyed)
    t.equal(server.bytesWritten, 0, 'no 400 in place of the answer')
    t.equal(pending.shouldKeepAlive, false, 'the answer says Connection: close')
    t.equal(pending._last, true, 'and the connection closes after it')
    t.ok(closingConnection(server), 'a request pipelined behind it is not taken')
    client.end()
  })

  await t.test('the answered request\'s own body is broken: Node\'s 400 and the request ends', async (t) => {
    const { server, client } = await pair(t)
    const answer = received(client)
    client.on('error', () => {})
    Object.assign(server, { _httpMessage: { _headerSent: false, _last: false, shouldKeepAlive: true, req: { complete: false } } })
    onClientError(err('HPE_INVALID_CHUNK_SIZE'), server)
    t.ok(server.destroyed)
    t.equal(await answer, 'HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n')
  })

  await t.test('a socket error: closed', async (t) => {
    const { server, client } = await pair(t)
    client.on('error', () => {})
    onClientError(err('ECONNRESET'), server)
    t.ok(server.destroyed)
  })
})
