// How pool connections are made, and one guard every one of them gets.
//
// The guards below are for undici's HTTP/1.1 client, which now serves only
// on a Node without the parser our own client needs (h1-client.ts handles
// each case itself, and its connections are made without the guards). The
// last one, keepReadingOnReset, is shared: our client installs it too.
//
// undici 7 pauses its HTTP/1.1 parser under backpressure (our handler's
// onData returned false). When the origin then closes the connection, FIN or
// RST, with everything received already parsed, undici finishes the paused
// parser from the socket's 'end' (or ECONNRESET 'error') listener, asserts it
// is not paused, and the AssertionError, thrown from a socket event, ends the
// process (nodejs/undici#5360; fixed in undici 8, which needs Node 22).
// ForwardHandler never pauses on a body's last bytes; what is left is an
// origin that closes short of its Content-Length, or mid-chunk. That answer is
// truncated whatever undici makes of it, so the guard turns that close into
// the error a truncated keep-alive answer gets ('other side closed') before
// undici's listener sees it. Remove with the move to undici 8.
//
// The same listener finishes a body that only the close ends (no
// Content-Length, not chunked) on ECONNRESET as on a FIN (a macOS
// workaround), so a body cut by a reset passed as complete: relayed with a
// clean end and stored. A reset is a failed connection, whatever came before
// it (nginx: a recv() error is an upstream error, a 0-byte read the end), so
// a reset in the middle of any response gets the same error as above. libuv
// reports a reset that arrives with the last data as an end of stream
// (uv__stream_io reads, then takes POLLHUP after a partial read for EOF), so
// an end in the middle of a response is checked first: a zero-length write
// fails with ECONNRESET on a reset connection and succeeds on a half-closed
// one (see endOrReset). Only a response that the close cuts pays for it.
//
// The same parser also destroys the connection on any 100 Continue
// (Parser.onHeadersComplete: `statusCode === 100` → SocketError 'bad
// response'), as undici never sends Expect. Every 100 it reads is one nobody
// asked for (some application servers send one on every request): nginx and
// HAProxy drop it and read on to the final response, and so does each
// connection's parser here (see dropContinue).
//
// An origin that answers before reading the request body (a 413, a 401) and
// closes makes its kernel reset the connection on the body bytes still
// coming: our next body write fails (ECONNRESET, then EPIPE) while its answer
// waits, unread, in our kernel's buffer. Node destroys a socket on a failed
// write, and the answer with it: the client got a 502 for what the origin had
// answered (nginx reads the answer first). Such a write (plain or TLS),
// before any response head has been read, is dropped instead, and so are the
// body writes after it; the connection reads on, and ends with the origin's
// answer (undici then drops the rest of the upload) or, when there was none,
// with the close it would have failed with anyway (see keepReadingOnReset).
import type { Socket } from 'node:net'
import { buildConnector, errors } from 'undici'

/**
 * The connector undici would build for a plain http:// server, with the
 * guards (unless `guards` is false). `h2c`: the connection speaks HTTP/2 from its first byte (prior
 * knowledge, RFC 9113 §3.3): undici marks it as h2 without any negotiation.
 */
export function plainConnector (timeout: number, h2c = false, guards = true): buildConnector.connector {
  // undici 7's types lack `useH2c`, which its connector reads (lib/core/connect.js).
  return guardedConnector(buildConnector(h2c ? { timeout, useH2c: true } as buildConnector.BuildOptions : { timeout }), undefined, guards)
}

/**
 * `connect` (a connector undici built), whose connections get the guards
 * unless `guards` is false (our HTTP/1.1 client needs none of them); `ready`
 * sees each connection first (TLS adds its own error handling).
 */
export function guardedConnector (connect: buildConnector.connector, ready?: (socket: Socket) => void, guards = true): buildConnector.connector {
  return (opts, callback) => {
    connect(opts, (err, socket) => {
      // On failure undici passes no socket at all (not null).
      if (err != null || socket == null) {
        callback(err ?? new Error('connect failed'), null)
        return
      }
      ready?.(socket)
      if (!guards) {
        callback(null, socket)
        return
      }
      // undici builds the connection's parser inside this callback.
      callback(null, guardClose(socket))
      dropContinue(socket)
      keepReadingOnUndiciReset(socket)
    })
  }
}

/** Installs the guard on a connection undici is about to use; returns it. */
function guardClose<S extends Socket> (socket: S): S {
  const emit = socket.emit
  socket.emit = function guardedEmit (this: Socket, event: string | symbol, arg?: unknown): boolean {
    if (event === 'end') {
      if (parserPaused(this)) {
        this.destroy(truncated())
        return false
      }
      if (inResponse(this)) return endOrReset(this, emit)
    } else if (event === 'error' && (arg as { code?: unknown } | undefined)?.code === 'ECONNRESET' && inResponse(this)) {
      return Reflect.apply(emit, this, ['error', truncated()]) as boolean
    }
    // Every 'data' comes through here: no rest array or spread per event.
    return Reflect.apply(emit, this, arguments) as boolean
  } as Socket['emit']
  return socket
}

/** What the guards use of undici's HTTP/1.1 parser (lib/dispatcher/client-h1.js). */
interface H1Parser {
  paused?: unknown
  statusCode: number
  headers: unknown[]
  headersSize: number
  onHeadersComplete?: (this: H1Parser, statusCode: number, upgrade: boolean, keepAlive: boolean) => number
}

/**
 * undici keeps a connection's parser under a module-private symbol whose
 * description is 'parser'. Looked up once per connection and at a close,
 * never per request; when a later undici no longer has it (or on an h2
 * connection, which has none), the guards do nothing.
 */
function parserOf (socket: Socket): H1Parser | undefined {
  const key = Object.getOwnPropertySymbols(socket).find((s) => s.description === 'parser')
  if (key === undefined) return undefined
  return (socket as unknown as Record<symbol, H1Parser | null | undefined>)[key] ?? undefined
}

function parserPaused (socket: Socket): boolean {
  return parserOf(socket)?.paused === true
}

/** A response head has been read and its message is not complete (undici zeroes statusCode at its end). */
function inResponse (socket: Socket): boolean {
  const parser = parserOf(socket)
  return parser !== undefined && (parser.paused === true || parser.statusCode !== 0)
}

/**
 * Makes this connection's parser pass over a 100 as undici passes over any
 * other 1xx, except that the handler is not told (a 100 is never relayed:
 * the proxy answers its own clients' Expect). The headers timeout is not
 * restarted either, so 100s without end still get a 504. Set on the parser
 * itself, never on undici's prototype; the 100's head is part of the
 * response head undici's size limit counts, as for every 1xx.
 */
function dropContinue (socket: Socket): void {
  const parser = parserOf(socket)
  const onHeadersComplete = parser?.onHeadersComplete
  if (parser === undefined || typeof onHeadersComplete !== 'function') return
  parser.onHeadersComplete = function continueDropped (statusCode, upgrade, keepAlive) {
    // Every response head passes here: one comparison and a direct call, nothing allocated.
    if (statusCode !== 100 || upgrade) return onHeadersComplete.call(this, statusCode, upgrade, keepAlive)
    // As undici's own 1xx path: the head is forgotten, no body follows (onMessageComplete then resets the rest).
    this.statusCode = 100
    this.headers = []
    this.headersSize = 0
    return 1
  }
}

/** What keepReadingOnReset wraps: net.Socket's one write path (_write and _writev both call it; Node 20 to 24). */
type WriteGeneric = (this: Socket, writev: boolean, data: unknown, encoding: string, cb: (err?: Error | null) => void) => unknown

/** See the header: a body write the origin's reset fails, before its answer was read, is dropped; the connection reads on. */
function keepReadingOnUndiciReset (socket: Socket): void {
  // An h2 connection has no parser to ask (and its streams end with RST_STREAM, not this).
  if (parserOf(socket) === undefined) return
  keepReadingOnReset(socket, () => !inResponse(socket))
}

/** Whether writes are being dropped (see keepReadingOnReset). */
export interface ResetGuard { readonly dropping: boolean }

/**
 * The header's last case, for any HTTP/1.1 client: a write that fails with
 * ECONNRESET or EPIPE while `awaitingAnswer()` (no response head read yet)
 * is dropped, and so is every write after it; the connection reads on.
 */
export function keepReadingOnReset (socket: Socket, awaitingAnswer: () => boolean): ResetGuard {
  const guard = { dropping: false }
  const s = socket as Socket & { _writeGeneric?: WriteGeneric }
  const writeGeneric = s._writeGeneric
  if (typeof writeGeneric !== 'function') return guard
  s._writeGeneric = function writeKeepingReads (writev, data, encoding, cb) {
    if (guard.dropping) {
      cb()
      return undefined
    }
    return writeGeneric.call(this, writev, data, encoding, (err) => {
      const code = (err as { code?: unknown } | null | undefined)?.code
      if ((code === 'ECONNRESET' || code === 'EPIPE') && this.readable && awaitingAnswer()) {
        guard.dropping = true
        cb()
        return
      }
      cb(err)
    })
  }
  return guard
}

const PROBE = Buffer.alloc(0)

/**
 * The origin's close came in the middle of a response: a FIN, or a reset
 * libuv folded into an end of stream. A zero-length write reaches the kernel
 * (plain TCP; TLS writes nothing for it, and the end passes as before): on a
 * reset connection it fails with ECONNRESET, and the error goes through the
 * guard like any reset; after a FIN it succeeds and undici gets its 'end'.
 * Nothing reaches the origin either way.
 */
function endOrReset (socket: Socket, emit: Socket['emit']): boolean {
  // Nothing to probe with once our side is closed: the end passes as it always did.
  if (!socket.writable) return Reflect.apply(emit, socket, ['end']) as boolean
  socket.write(PROBE, (err) => {
    // Closed meanwhile (a timeout, the write's own error): undici has heard of it, and its 'end' listener must not run on a closed parser.
    if (socket.destroyed) return
    if ((err as { code?: unknown } | null | undefined)?.code === 'ECONNRESET') socket.destroy(truncated())
    else Reflect.apply(emit, socket, ['end'])
  })
  return true
}

function truncated (): Error {
  return new errors.SocketError('other side closed in the middle of a response')
}
