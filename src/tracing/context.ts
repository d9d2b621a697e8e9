// Request ids and W3C trace context (https://www.w3.org/TR/trace-context/),
// decided once per request after planning: the id the request carries, the
// trace it belongs to and the span of the proxy hop, written into the
// upstream head. Pure but for the ids, which come from an IdSource.
import { randomFillSync } from 'node:crypto'
import { isName } from '../fields.js'

/** What one request carries, for the upstream head, the response, the log and the span. */
export interface RequestTrace {
  /** Undefined when `requestId: false`. */
  readonly requestId: string | undefined
  /** 32 lower-case hex digits. */
  readonly traceId: string
  /** The proxy hop's span: 16 hex digits. */
  readonly spanId: string
  /** The client's span (its traceparent's parent-id), when it sent one. */
  readonly parentId: string | undefined
  readonly sampled: boolean
}

export interface TraceSettings {
  /** Lower-case request id field name; undefined = no request ids. */
  readonly requestIdHeader: string | undefined
  /** Send traceparent upstream. */
  readonly propagate: boolean
  /** Traces this proxy starts are sampled (an exporter is configured). */
  readonly sampleNew: boolean
}

/**
 * Random hex ids from a pooled buffer: one getrandom call and one hex
 * conversion per ~100 requests, not per request (an id is a slice of the
 * pool's hex string).
 */
export class IdSource {
  readonly #pool = Buffer.alloc(4000)
  #hex = ''
  #at = 4000

  /**
   * One request's new ids: 80 lower-case hex digits, the request id (0–32),
   * trace id (32–64) and span id (64–80), none all zero (W3C: an all-zero id
   * is invalid).
   */
  requestIds (): string {
    const pool = this.#pool
    for (;;) {
      if (this.#at + 40 > pool.length) {
        randomFillSync(pool)
        this.#hex = pool.toString('hex')
        this.#at = 0
      }
      const at = this.#at
      this.#at += 40
      if (!zero(pool, at, 16) && !zero(pool, at + 16, 16) && !zero(pool, at + 32, 8)) return this.#hex.slice(2 * at, 2 * at + 80)
    }
  }
}

const standalone = new IdSource()

/** A request id made outside any request's trace (an answer node:http's parser forced): traceRequest's form. */
export function standaloneRequestId (): string {
  return standalone.requestIds().slice(0, 32)
}

function zero (b: Buffer, at: number, n: number): boolean {
  for (let i = at; i < at + n; i++) if (b[i] !== 0) return false
  return true
}

const ALL_ZERO = /^0+$/
/** version 00 (a later version is read as its first four fields, W3C §4.3), trace-id, parent-id, flags. */
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/
/** A request id worth keeping: visible ASCII, no spaces, at most 200 characters. */
const REQUEST_ID = /^[\x21-\x7e]{1,200}$/
/** W3C tracestate: at most 32 list members, and we keep it only within 512 characters of printable ASCII. */
const TRACESTATE = /^[\x20-\x7e]{1,512}$/

export interface TraceParent { readonly traceId: string, readonly parentId: string, readonly sampled: boolean }

/** A traceparent value, or undefined when it is not one (W3C §3.2: then a new trace starts). */
export function parseTraceparent (value: string | undefined): TraceParent | undefined {
  if (value === undefined) return undefined
  const m = TRACEPARENT.exec(value.trim())
  if (m === null) return undefined
  const [, version, traceId, parentId, flags, rest] = m
  if (version === 'ff' || (version === '00' && rest !== undefined)) return undefined
  if (ALL_ZERO.test(traceId!) || ALL_ZERO.test(parentId!)) return undefined
  return { traceId: traceId!, parentId: parentId!, sampled: (parseInt(flags!, 16) & 1) === 1 }
}

export function formatTraceparent (t: RequestTrace): string {
  return `00-${t.traceId}-${t.spanId}-${t.sampled ? '01' : '00'}`
}

/**
 * Decide `head`'s request id and trace, and write them into it (the
 * upstream head, a flat list of this request's own): the request id field
 * keeps a trusted peer's well-formed value, anything else is replaced by a
 * new id; traceparent is replaced by the proxy hop's (the client's trace
 * continued, or a new one); tracestate goes on as sent when well-formed
 * (dropped otherwise), and only beside a traceparent we continue.
 */
export function traceRequest (head: string[], trusted: boolean, s: TraceSettings, ids: IdSource): RequestTrace {
  const idName = s.requestIdHeader
  let idAt = -1
  let parentAt = -1
  let stateAt = -1
  let extraParent = false
  for (let i = 0; i < head.length; i += 2) {
    const name = head[i]!
    if (idName !== undefined && name.length === idName.length && isName(name, idName)) {
      if (idAt === -1) idAt = i // several: only the first counts (all are replaced below)
    } else if (name.length === 11 && isName(name, 'traceparent')) {
      if (parentAt === -1) parentAt = i
      else extraParent = true
    } else if (name.length === 10 && isName(name, 'tracestate') && stateAt === -1) {
      stateAt = i
    }
  }
  // Several traceparent fields make the trace unknown (W3C §3.2.1): start a new one.
  const parent = extraParent || parentAt === -1 ? undefined : parseTraceparent(head[parentAt + 1])
  const sent = idAt === -1 ? undefined : head[idAt + 1]
  const fresh = ids.requestIds()
  const requestId = idName === undefined
    ? undefined
    : trusted && sent !== undefined && REQUEST_ID.test(sent) ? sent : fresh.slice(0, 32)
  const trace: RequestTrace = {
    requestId,
    traceId: parent?.traceId ?? fresh.slice(32, 64),
    spanId: fresh.slice(64, 80),
    parentId: parent?.parentId,
    sampled: parent === undefined ? s.sampleNew : parent.sampled
  }
  const state = parent === undefined || stateAt === -1 || !TRACESTATE.test(head[stateAt + 1]!) ? undefined : head[stateAt + 1]!
  // Rewrite: drop what we replace, then append ours.
  if (idAt !== -1 || parentAt !== -1 || stateAt !== -1) {
    let w = 0
    for (let i = 0; i < head.length; i += 2) {
      const name = head[i]!
      if ((idName !== undefined && isName(name, idName)) || (s.propagate && (isName(name, 'traceparent') || isName(name, 'tracestate')))) continue
      head[w++] = name
      head[w++] = head[i + 1]!
    }
    head.length = w
  }
  if (requestId !== undefined) head.push(idName!, requestId)
  if (s.propagate) {
    head.push('traceparent', formatTraceparent(trace))
    if (state !== undefined) head.push('tracestate', state)
  }
  return trace
}
