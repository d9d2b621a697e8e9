// Accepting the PROXY protocol on a listener: the header is read from the raw
// socket before the TLS or HTTP server sees a byte, and the client it
// announces is remembered on the socket, where connectionInfo
// (proxy/pipeline.ts), the one place the client address is derived, finds it.
// Only from trusted sources (HAProxy's accept-proxy behind an ACL, NGINX's
// set_real_ip_from): anyone else could choose their own address.
import type { BlockList, Socket } from 'node:net'
import { Server as TlsServer, type TLSSocket } from 'node:tls'
import type { ProxyProtocolConfig } from '../config/schema.js'
import { normalizeAddress } from '../proxy/headers.js'
import { buildTrustList } from '../proxy/trust.js'
import { parseProxyHeader, type ClientEndpoints } from './proxy-protocol.js'

export type { ClientEndpoints } from './proxy-protocol.js'

const kAnnounced = Symbol('switchyard.proxyProtocol')
const kEndpoints = Symbol('switchyard.endpoints')
type Holder = { [kAnnounced]?: ClientEndpoints, [kEndpoints]?: ClientEndpoints }

/** Why a connection was closed before HTTP: counted and shown by the caller. */
export type ProxyRefusal = 'untrusted' | 'malformed' | 'timeout'

export interface ProxyAcceptSettings {
  trust: BlockList
  timeout: number
}

export function proxyAcceptSettings (cfg: ProxyProtocolConfig): ProxyAcceptSettings {
  return { trust: buildTrustList(cfg.trustedSources), timeout: cfg.timeout }
}

/**
 * The client a PROXY header announced on this socket (or on the plain socket
 * under this TLS one): undefined when none did (no header, LOCAL, UNKNOWN).
 */
export function announcedClient (socket: Socket): ClientEndpoints | undefined {
  return (socket as Holder)[kAnnounced]
}

/** The client of a connection: the one a PROXY header announced, else the socket's peer. */
export function clientAddressOf (socket: Socket): string {
  return announcedClient(socket)?.source.address ?? normalizeAddress(socket.remoteAddress)
}

/**
 * The client connection's endpoints for a PROXY header we send upstream: the
 * announced ones, else the socket's own. Computed once per connection, and
 * only for backends that send the header. Undefined when the socket no
 * longer knows its addresses (closed).
 */
export function clientEndpoints (socket: Socket): ClientEndpoints | undefined {
  try {
    const h = socket as Holder
    const known = h[kEndpoints] ?? h[kAnnounced]
    if (known !== undefined) return known
    const { remoteAddress, remotePort, localAddress, localPort } = socket
    if (remoteAddress === undefined || remotePort === undefined || localAddress === undefined || localPort === undefined) return undefined
    const e = { source: { address: normalizeAddress(remoteAddress), port: remotePort }, destination: { address: normalizeAddress(localAddress), port: localPort } }
    h[kEndpoints] = e
    return e
  } catch {
    // An h2 session's socket is a proxy that throws once the session is gone.
    return undefined
  }
}

/**
 * Put the header read in front of the 'connection' listeners `server` has
 * now (the HTTP or TLS machinery): they see each socket only once its header
 * is read, with the bytes after it still unread. Listeners added later (the
 * listener's own bookkeeping) see every socket at once. `settings` is read
 * per connection, so a reload can replace its fields.
 */
export function acceptProxyProtocol (server: import('node:net').Server, settings: () => ProxyAcceptSettings,
  refused?: (why: ProxyRefusal, peer: string) => void): void {
  const deliver = server.listeners('connection') as Array<(socket: Socket) => void>
  const isTls = server instanceof TlsServer
  server.removeAllListeners('connection')
  server.on('connection', (socket: Socket) => {
    readHeader(socket, settings(), (why) => refused?.(why, normalizeAddress(socket.remoteAddress)), () => {
      for (const l of deliver) l.call(server, socket)
      // The HTTP parser reads through the stream: let it flow again. A TLS
      // socket has taken the handle over and reads what was left buffered
      // itself (on the next tick): flowing now would throw that away.
      if (!isTls) socket.resume()
    })
  })
  // A TLS socket wraps the plain one that carried the header: it takes over
  // what was announced. `_parent` is Node's (undocumented, there since v0.11);
  // without it the balancer's address would show, never a client's choice.
  server.prependListener('secureConnection', (tls: TLSSocket) => {
    const plain = (tls as unknown as { _parent?: Holder })._parent
    const a = plain?.[kAnnounced]
    if (a !== undefined) (tls as Holder)[kAnnounced] = a
  })
}

/** Reads one header from `socket`, then calls `done` with the rest unread; closes the connection on any failure. */
export function readHeader (socket: Socket, s: ProxyAcceptSettings, refuse: (why: ProxyRefusal) => void, done: () => void): void {
  const peer = normalizeAddress(socket.remoteAddress)
  if (peer === '' || !s.trust.check(peer, peer.includes(':') ? 'ipv6' : 'ipv4')) {
    refuse('untrusted')
    socket.destroy()
    return
  }
  let buf: Buffer | undefined
  const timer = setTimeout(() => {
    finish()
    refuse('timeout')
    socket.destroy()
  }, s.timeout)
  const finish = (): void => {
    clearTimeout(timer)
    socket.off('data', onData)
    socket.off('error', onError)
    socket.off('close', onClose)
    socket.off('end', onEnd)
  }
  const onError = (): void => { finish(); socket.destroy() }
  const onClose = (): void => finish()
  // The peer closed before a whole header: a balancer's TCP check or a port probe (nothing
  // sent: closed, not counted, as HAProxy's dontlognull) or a cut header (malformed). Not held
  // half-open (node:http servers allow that) until the timeout, counted as a stalled client.
  const onEnd = (): void => {
    finish()
    if (buf !== undefined) refuse('malformed')
    socket.destroy()
  }
  const onData = (chunk: Buffer): void => {
    buf = buf === undefined ? chunk : Buffer.concat([buf, chunk])
    const r = parseProxyHeader(buf)
    if (r.state === 'incomplete') return
    finish()
    if (r.state === 'error') {
      // No HTTP answer is possible: we do not know yet what protocol follows.
      refuse('malformed')
      socket.destroy()
      return
    }
    const { source, destination } = r.header
    if (source !== undefined && destination !== undefined) {
      (socket as Holder)[kAnnounced] = {
        source: { address: normalizeAddress(source.address), port: source.port },
        destination: { address: normalizeAddress(destination.address), port: destination.port }
      }
    }
    // Paused, so what follows the header stays buffered until the HTTP or
    // TLS side takes the socket (a TLSSocket replays a wrapped socket's buffer).
    socket.pause()
    if (r.length < buf.length) socket.unshift(buf.subarray(r.length))
    done()
  }
  socket.on('data', onData)
  socket.on('error', onError)
  socket.on('close', onClose)
  socket.on('end', onEnd)
}
