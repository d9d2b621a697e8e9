// Node's own HTTP/1.1 parser binding (llhttp, `_http_common`'s HTTPParser):
// the strict parser node:http runs, used directly by our upstream client
// (upstream/h1-client.ts) and the listener's request lane
// (listener/h1-lane.ts). `_http_common` is documented as deprecated
// (DEP0199, documentation-only); where a Node no longer has it this is
// undefined and both fall back to what they replace (undici's client,
// node:http's server).
import { createRequire } from 'node:module'
import type { Socket } from 'node:net'

export interface ParseError extends Error { readonly code: string }

export interface NativeParser {
  /** `lenient`: 0, strict (node:http's default). */
  initialize (type: number, resource: object, maxHeaderSize: number, lenient: number): void
  execute (data: Buffer): number | ParseError
  finish (): ParseError | undefined
  close (): void
  /** Read a stream handle directly (node:http's server does); each read parsed is reported to kOnExecute. */
  consume? (handle: object): void
  unconsume? (): void
  /** Within kOnExecute: a copy of the read just parsed. */
  getCurrentBuffer? (): Buffer
  [callback: number]: unknown
}

export interface NativeParserClass {
  new (): NativeParser
  readonly prototype: NativeParser
  readonly REQUEST: number
  readonly RESPONSE: number
  readonly kOnHeaders: number
  readonly kOnHeadersComplete: number
  readonly kOnBody: number
  readonly kOnMessageComplete: number
  readonly kOnMessageBegin?: number
  readonly kOnExecute?: number
}

const common = ((): { HTTPParser?: NativeParserClass, methods?: string[] } => {
  try {
    return createRequire(import.meta.url)('_http_common') as { HTTPParser?: NativeParserClass, methods?: string[] }
  } catch {
    return {}
  }
})()

/** The binding, or undefined where a Node no longer has it (as this code knows it). */
export const NativeParser: NativeParserClass | undefined = (() => {
  const P = common.HTTPParser
  return typeof P === 'function' && typeof P.kOnHeadersComplete === 'number' &&
    typeof P.REQUEST === 'number' && typeof P.RESPONSE === 'number'
    ? P
    : undefined
})()

/** Method names by the parser's method number (a request's onHeadersComplete gives the number). */
export const METHODS: readonly string[] = Object.freeze(Array.isArray(common.methods) ? [...common.methods] : [])

/** A socket's libuv stream handle, as net.Socket and node:http's server use it. */
export interface StreamHandle {
  readonly isStreamBase?: boolean
  /** A parser reads it (node:http's own mark; set by whoever consumes, so node:http never consumes it again). */
  _consumed?: boolean
  /** net.Socket's mark of a started read. */
  reading?: boolean
  readStart (): number
  readStop (): number
}

/** Whether the parser can read sockets itself (consume), as node:http's server does; without, parsers are fed 'data' events. */
const CONSUMES = NativeParser !== undefined && typeof NativeParser.prototype.consume === 'function' &&
  typeof NativeParser.prototype.unconsume === 'function' && typeof NativeParser.prototype.getCurrentBuffer === 'function' &&
  typeof NativeParser.kOnExecute === 'number' && typeof NativeParser.kOnMessageBegin === 'number' &&
  typeof NativeParser.kOnMessageComplete === 'number'

/**
 * The handle of `socket` if a parser can read it straight (`consume`): a
 * socket nobody reads yet, plain TCP or TLS (a TLSWrap is a stream handle
 * too; node:http's https server consumes it). A read then costs no Buffer and
 * no stream events (about 2 µs, measured on the listener's lane).
 */
export function consumableHandle (socket: Socket): StreamHandle | undefined {
  if (!CONSUMES || socket.readableLength !== 0) return undefined
  const handle = (socket as unknown as { _handle?: StreamHandle | null })._handle
  return handle != null && handle.isStreamBase === true && handle._consumed !== true ? handle : undefined
}

/** Stop a consumed handle's reads, marked as net.Socket marks it (its stream's next read starts the handle again). */
export function readStop (handle: StreamHandle): void {
  if (handle.reading !== true) return
  handle.reading = false
  handle.readStop()
}

export function readStart (handle: StreamHandle): void {
  if (handle.reading === true) return
  handle.reading = true
  handle.readStart()
}
