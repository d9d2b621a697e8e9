// undici 7's HTTP/2 client completes a response on the stream's 'trailers'
// event and stops listening for 'data' there (lib/dispatcher/client-h2.js).
// A response read under backpressure (the stream paused because our client
// reads slowly) still has DATA waiting when the trailing HEADERS frame
// arrives, in the stream's buffer or in node:http2's: that tail was dropped
// and the response ended cleanly without it. Node 24 showed it in a plain
// test; any version does it under backpressure. Here each stream of an h2
// connection holds its 'trailers' back until its 'end', so every DATA frame is
// read first. Installed per connection (the pool's 'connect' event, before any
// request is sent on it) on the session undici made, never on a prototype.
// Remove once undici keeps reading data after trailers.
import type { ClientHttp2Session, ClientHttp2Stream } from 'node:http2'
import type { Dispatcher } from 'undici'

const kEmit = Symbol('switchyard.emit')
const kHeld = Symbol('switchyard.heldTrailers')

type GuardedStream = ClientHttp2Stream & {
  [kEmit]: ClientHttp2Stream['emit']
  [kHeld]: [unknown, unknown] | undefined
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
  session.request = function guardedRequest (this: ClientHttp2Session): ClientHttp2Stream {
    const stream = Reflect.apply(request, this, arguments) as GuardedStream
    stream[kEmit] = stream.emit
    stream[kHeld] = undefined
    stream.emit = trailersAfterData as ClientHttp2Stream['emit']
    return stream
  } as ClientHttp2Session['request']
}

/**
 * A stream's emit: 'trailers' waits for 'end' (the trailing HEADERS frame
 * ends the stream, so 'end' follows once every DATA frame has been read);
 * every other event passes, 'data' included, with no array per event.
 */
function trailersAfterData (this: GuardedStream, event: string | symbol, a?: unknown, b?: unknown): boolean {
  if (event === 'trailers' && !this.readableEnded) {
    this[kHeld] = [a, b]
    return true
  }
  if (event === 'end') {
    const held = this[kHeld]
    if (held !== undefined) {
      this[kHeld] = undefined
      this[kEmit]('trailers', held[0], held[1])
    }
  }
  return Reflect.apply(this[kEmit], this, arguments) as boolean
}
