// Every kind of listener turns Nagle's algorithm off on the sockets it
// accepts: node:http does by default, http2.createSecureServer (our TLS
// listener, h2 and HTTP/1.1 by ALPN) does not, and with Nagle on a response
// written in two parts waits for the client's delayed ACK. Real listeners,
// real TCP and TLS clients; the state read is the one net.Socket keeps for
// the TCP socket (kSetNoDelay), set when the server accepts.
import type { Socket } from 'node:net'
import net from 'node:net'
import tls from 'node:tls'
import t from 'tap'
import type { Test } from 'tap'
import { parseConfig } from '../../src/config/load.js'
import { startListener, type ConnectionObserver } from '../../src/listener/listener.js'
import { Pipeline } from '../../src/proxy/pipeline.js'
import { buildState } from '../../src/proxy/state.js'
import { testCertificate } from '../helpers/certs.js'
import { startOrigin } from '../helpers/origin.js'

/** The TCP socket under an accepted one (a TLS socket keeps it as `_parent`). */
function tcpOf (socket: Socket): Socket {
  return (socket as Socket & { _parent?: Socket })._parent ?? socket
}

/** What net.Socket recorded of TCP_NODELAY on this socket; undefined if this Node keeps no such record. */
function noDelayOf (socket: Socket): boolean | undefined {
  const key = Object.getOwnPropertySymbols(socket).find((s) => s.description === 'kSetNoDelay')
  return key === undefined ? undefined : (socket as unknown as Record<symbol, boolean>)[key]
}

async function accepted (t: Test, tlsBlock: string | null, connect: (port: number) => net.Socket): Promise<{ socket: Socket, protocol: string }> {
  const cert = testCertificate(t)
  const origin = await startOrigin(t)
  const listener = tlsBlock === null ? '' : `\n    tls: { cert: ${cert.certPath}, key: ${cert.keyPath}${tlsBlock} }`
  const config = parseConfig(`listeners:
  - name: l
    bind: 127.0.0.1:0${listener}
routes: [{ backend: b }]
backends: { b: { servers: [{ url: "${origin.url}" }] } }
`, 'test.yaml', { checkFiles: false })
  const pipeline = new Pipeline(buildState(config), {})
  let opened: ((v: { socket: Socket, protocol: string }) => void) | undefined
  const seen = new Promise<{ socket: Socket, protocol: string }>((resolve) => { opened = resolve })
  const observer: ConnectionObserver = {
    connectionOpened: (_l, protocol, socket) => opened!({ socket, protocol }),
    connectionClosed: () => {},
    streamOpened: () => {},
    streamClosed: () => {}
  }
  const handle = await startListener(config.listeners[0]!, pipeline, { limits: config.limits, timeouts: config.timeouts, observer })
  t.teardown(() => handle.close())
  const client = connect(handle.address().port)
  client.on('error', () => {})
  t.teardown(() => client.destroy())
  return await seen
}

t.test('a plaintext listener accepts with TCP_NODELAY', async (t) => {
  const { socket, protocol } = await accepted(t, null, (port) => net.connect(port, '127.0.0.1'))
  t.equal(protocol, 'h1')
  t.equal(noDelayOf(tcpOf(socket)), true)
})

for (const [alpn, block] of [['h2', ''], ['http/1.1', ''], ['http/1.1', ', http2: false']] as const) {
  t.test(`a TLS listener${block === '' ? '' : ' (http2: false)'} accepts with TCP_NODELAY, ALPN ${alpn}`, async (t) => {
    const { socket, protocol } = await accepted(t, block, (port) =>
      tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false, ALPNProtocols: [alpn] }))
    t.equal(protocol, alpn === 'h2' ? 'h2' : 'h1', 'ALPN chose the protocol asked for')
    t.not(tcpOf(socket), socket, 'the TLS socket sits on a TCP socket')
    t.equal(noDelayOf(tcpOf(socket)), true)
  })
}
