// Closing an HTTP/1.1 connection in stages (RFC 9112 §9.6), as nginx's
// lingering close. Node ends a connection whose last answer is written with
// a FIN and then closes the socket at once. If the client is still sending
// (the rest of a body answered without reading it, a request pipelined after
// `Connection: close`), the kernel answers those bytes with a reset, and a
// reset can erase our answer from the client's buffers before it was read:
// the client sees a reset instead of its 431. So after the FIN the
// connection keeps reading, and drops, what still comes until the client
// closes its side too, for LINGER_MS at most.
//
// Node's HTTP/1.1 server calls `socket.destroySoon()` for the last answer
// (and only for it): `lingerOnClose` replaces it on each HTTP/1.1 socket.
//
// Node's parser reports bytes after a `Connection: close` request as a
// client error (HPE_CLOSED_CONNECTION), and Node answers it with its own 400
// in place of the answer in flight; `onClientError` keeps the answer and
// drops the bytes.
import type { Socket } from 'node:net'

/** The longest a closing connection reads and drops what its client still sends. */
export const LINGER_MS = 5000

/** Node's own answers to a client error (its _http_server.js), kept byte for byte; any other is a 400. */
const NODE_ANSWERS: Readonly<Record<string, string>> = Object.freeze({
  HPE_HEADER_OVERFLOW: 'HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\n\r\n',
  HPE_CHUNK_EXTENSIONS_OVERFLOW: 'HTTP/1.1 413 Payload Too Large\r\nConnection: close\r\n\r\n',
  ERR_HTTP_REQUEST_TIMEOUT: 'HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n'
})
const BAD_REQUEST = 'HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n'

/** What of Node's HTTP/1.1 socket this reads and sets: the answer in flight, if any (a ServerResponse). */
type HttpSocket = Socket & { _httpMessage?: PendingResponse | null }
interface PendingResponse {
  _headerSent?: boolean
  /** Node closes the connection once this response is written. */
  _last: boolean
  shouldKeepAlive: boolean
  req: { complete: boolean }
}

/** Make `socket.destroySoon()` (Node's close after a last answer) a lingering close of at most `ms`. */
export function lingerOnClose (socket: Socket, ms = LINGER_MS): void {
  socket.destroySoon = function (this: Socket): void { lingeringClose(this, ms) }
}

function lingeringClose (socket: Socket, ms: number): void {
  if (socket.destroyed) return
  if (socket.writable) socket.end()
  if (socket.writableFinished) linger(socket, ms)
  else socket.once('finish', () => linger(socket, ms))
}

function linger (socket: Socket, ms: number): void {
  // The client has closed its side: nothing more can come.
  if (socket.readableEnded || !socket.readable) {
    socket.destroy()
    return
  }
  const timer = setTimeout(destroyLingering, ms, socket)
  timer.unref()
  socket.once('close', () => clearTimeout(timer))
  // Read on whatever reads it (Node's parser, or nobody after an upgrade
  // answer): paused behind a flood of pipelined requests, or never flowing.
  socket.resume()
}

function destroyLingering (socket: Socket): void { socket.destroy() }

/** `answer` (a head without body, ending in an empty line) with `line` as its last field. */
function withField (answer: string, line: string): string {
  return line === '' ? answer : answer.slice(0, -2) + line + '\r\n'
}

/**
 * A request that arrives behind an answer that closes the connection (its
 * client pipelined past `Connection: close`, ours or its own) is not one we
 * take (RFC 9112 §9.6): it would go upstream and never be answered. True
 * when `socket` is such a connection: ended, or its answer in flight is the
 * last (Node's `_last`, known once that answer's head is made).
 */
export function closingConnection (socket: Socket): boolean {
  if (socket.writableEnded) return true
  const current = (socket as HttpSocket)._httpMessage
  return current != null && current._last
}

/**
 * The listener's 'clientError': Node's parse and socket errors on an
 * HTTP/1.1 connection. Node's own handler writes its 400 even while an
 * earlier request's answer is still being made, which the client then reads
 * as that answer: here an answer in flight is finished first, as the last.
 * `fieldLine` (`name: value\r\n`, the request id's) goes into any answer
 * written here; the status of that answer is returned.
 */
export function onClientError (err: NodeJS.ErrnoException, socket: Socket, fieldLine = ''): number | undefined {
  const code = err.code ?? ''
  const pending = (socket as HttpSocket)._httpMessage
  if (!code.startsWith('HPE_')) {
    // A socket error (a reset), or a request head slower than headersTimeout:
    // Node's 408, and no lingering for a client that slow.
    let answered: number | undefined
    if (code === 'ERR_HTTP_REQUEST_TIMEOUT' && socket.writable && pending?._headerSent !== true) {
      socket.write(withField(NODE_ANSWERS[code]!, fieldLine))
      answered = 408
    }
    socket.destroy()
    return answered
  }
  // The parser stays failed and reports each later read again; once the
  // connection is closing they are dropped (HPE_CLOSED_CONNECTION, bytes
  // after a request that asked to close, always comes to this).
  if (!socket.writable) return undefined
  if (pending?.req.complete === true) {
    // The bad bytes come after the request being answered: its answer is
    // sent in full, as the last (Node's `_last`: closed once it is written),
    // and they are dropped.
    pending.shouldKeepAlive = false
    pending._last = true
    return undefined
  }
  // Node's answer, unless an answer is half sent (no clean way to add ours).
  const answer = pending?._headerSent === true ? undefined : NODE_ANSWERS[code] ?? BAD_REQUEST
  if (answer !== undefined) socket.write(withField(answer, fieldLine))
  // With nothing in flight, a lingering close (lingerOnClose); a request
  // whose own body is broken, or a half-sent answer, ends here.
  if (pending == null) socket.destroySoon()
  else socket.destroy()
  // A request of its own that Node's parser refused (not the body of one being answered, which logs itself).
  return answer === undefined || pending != null ? undefined : Number(answer.slice(9, 12))
}
