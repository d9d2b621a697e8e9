// Guards on each stream undici's HTTP/2 client opens, for two ways it takes
// a stream's end for a complete response (lib/dispatcher/client-h2.js).
// Installed per connection (the pool's 'connect' event, before any request
// is sent on it) on the session undici made, never on a prototype.
//
// Trailers: undici 7 completes a response on the stream's 'trailers' event
// and stops listening for 'data' there. A response read under backpressure
// (the stream paused because our client reads slowly) still has DATA waiting
// when the trailing HEADERS frame arrives, in the stream's buffer or in
// node:http2's: that tail was dropped and the response ended cleanly without
// it. Node 24 showed it in a plain test; any version does it under
// backpressure. Here each stream holds its 'trailers' back until its 'end',
// so every DATA frame is read first. Remove once undici keeps reading data
// after trailers.
//
// Resets: node:http2 ends a stream's readable side ('end', no 'error') when
// the server resets it with RST_STREAM(NO_ERROR) or (CANCEL) before
// END_STREAM; only other codes become an 'error'. undici completes the
// response on that 'end', so a body cut short was relayed as whole and
// stored. A stream whose readable side ends after it was closed with a code
// other than NO_ERROR (CANCEL) was reset: its 'end' is preceded by the error
// Node gives other codes, so undici fails the request as it does for
// RST_STREAM(INTERNAL_ERROR). NO_ERROR is left alone: a complete answer
// waiting for a slow reader also ends after its stream closed, with that
// code, so a reset with it (which RFC 9113 §8.1 allows only after
// END_STREAM) cannot be told from it.
import type { ClientHttp2Session, ClientHttp2Stream, OutgoingHttpHeaders } from 'node:http2'
import type { Dispatcher } from 'undici'

const kEmit = Symbol('switchyard.emit')
const kPush = Symbol('switchyard.push')
const kHeld = Symbol('switchyard.heldTrailers')
const kEnd = Symbol('switchyard.end')

const NGHTTP2_NO_ERROR = 0

/** How a stream's readable side ended: not yet, by END_STREAM, or by a reset. */
const OPEN = 0
const END_STREAM = 1
const RESET = 2

type GuardedStream = ClientHttp2Stream & {
  [kEmit]: ClientHttp2Stream['emit']
  [kPush]: ClientHttp2Stream['push']
  [kHeld]: [unknown, unknown] | undefined
  [kEnd]: typeof OPEN | typeof END_STREAM | typeof RESET
}

/** Guard the h2 connections `pool` opens (a no-op on HTTP/1.1 ones, which have no session). */
export function guardH2Streams (pool: Dispatcher): void {
  pool.on('connect', (_origin: URL, targets: readonly Dispatcher[]) => {
    const client = targets[targets.length - 1]
    if (client !== undefined) guardSession(sessionOf(client))
  })
}

/** undici keeps a client's session under a module-private symbol described 'http2Session'. */
function sessionOf (client: Dispatcher): ClientHttp2Session | undefined {
  const key = Object.getOwnPropertySymbols(client).find((s) => s.description === 'http2Session')
  if (key === undefined) return undefined
  const session = (client as unknown as Record<symbol, unknown>)[key]
  return session !== null && typeof session === 'object' && typeof (session as ClientHttp2Session).request === 'function'
    ? session as ClientHttp2Session
    : undefined
}

function guardSession (session: ClientHttp2Session | undefined): void {
  if (session === undefined) return
  const request = session.request
  session.request = function guardedRequest (this: ClientHttp2Session, headers?: OutgoingHttpHeaders): ClientHttp2Stream {
    const stream = Reflect.apply(request, this, arguments) as GuardedStream
    stream[kEmit] = stream.emit
    stream[kHeld] = undefined
    stream.emit = guardedEmit as ClientHttp2Stream['emit']
    // A CONNECT stream is a tunnel handed to its caller, not a response undici completes.
    if (headers?.[':method'] !== 'CONNECT') {
      stream[kPush] = stream.push
      stream[kEnd] = OPEN
      stream.push = guardedPush as ClientHttp2Stream['push']
    }
    return stream
  } as ClientHttp2Session['request']
}

/** A stream's push: its first end of data says how the stream ended (see the top of this file). */
function guardedPush (this: GuardedStream, chunk: unknown): boolean {
  if (chunk === null && this[kEnd] === OPEN) this[kEnd] = this.closed && this.rstCode !== NGHTTP2_NO_ERROR ? RESET : END_STREAM
  return Reflect.apply(this[kPush], this, arguments) as boolean
}

/**
 * A stream's emit: 'trailers' waits for 'end' (the trailing HEADERS frame
 * ends the stream, so 'end' follows once every DATA frame has been read);
 * an 'end' after a reset is an error first. Every other event passes,
 * 'data' included, with no array per event.
 */
function guardedEmit (this: GuardedStream, event: string | symbol, a?: unknown, b?: unknown): boolean {
  if (event === 'trailers' && !this.readableEnded) {
    this[kHeld] = [a, b]
    return true
  }
  if (event === 'end') {
    if (this[kEnd] === RESET) {
      // 'end' still follows: Node destroys the stream on it, and undici's
      // handler then finds the request failed. Without a listener an 'error' would throw.
      if (this.listenerCount('error') > 0) this[kEmit]('error', resetError(this.rstCode))
    } else {
      const held = this[kHeld]
      if (held !== undefined) {
        this[kHeld] = undefined
        this[kEmit]('trailers', held[0], held[1])
      }
    }
  }
  return Reflect.apply(this[kEmit], this, arguments) as boolean
}

/** Node's own error for a stream reset (see classifyFailure in pool.ts). */
function resetError (code: number): Error {
  const name = code === 8 ? 'NGHTTP2_CANCEL' : code === 0 ? 'NGHTTP2_NO_ERROR' : String(code)
  return Object.assign(new Error(`Stream closed with error code ${name} before END_STREAM`), { code: 'ERR_HTTP2_STREAM_ERROR' })
}
