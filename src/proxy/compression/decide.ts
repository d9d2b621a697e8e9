// Whether a response is compressed, in one place: the proxy (sink.ts), the
// plan (the coding the request negotiates, which the cache keys) and
// `explain` all ask these functions. Two halves: what the request allows
// (method, Range, Accept-Encoding), known when it is planned; and what the
// response allows (status, Content-Encoding, Content-Range, no-transform,
// type, length), known when its head arrives. Pure.
import { parseCacheControl } from '../../cache/cache-control.js'
import type { CompressionAlgorithm, CompressionConfig } from '../../config/schema.js'
import { combinedValue, isName, setField } from '../../fields.js'
import { negotiate, type Coding, type Negotiated } from './negotiate.js'

/** A route's compression, compiled once at load. */
export interface CompiledCompression {
  readonly config: CompressionConfig
  /** Exact media types, and the top-level types written as `type/*`. */
  readonly exact: ReadonlySet<string>
  readonly wildcards: ReadonlySet<string>
}

export function compileCompression (config: CompressionConfig): CompiledCompression {
  const exact = new Set<string>()
  const wildcards = new Set<string>()
  for (const t of config.types) {
    if (t.endsWith('/*')) wildcards.add(t.slice(0, -2))
    else exact.add(t)
  }
  return Object.freeze({ config, exact, wildcards })
}

/** The request's half: the coding its answer may get. */
export function requestCoding (c: CompiledCompression, method: string, rawHeaders: readonly string[]): Negotiated {
  // A tunnel carries no representation to compress.
  if (method === 'CONNECT') return { coding: 'identity', q: 1, why: 'CONNECT' }
  // NGINX does the same: byte ranges are of the stored (identity) representation.
  if (combinedValue(rawHeaders, 'range') !== undefined) return { coding: 'identity', q: 1, why: 'a Range request' }
  return negotiate(combinedValue(rawHeaders, 'accept-encoding'), c.config.algorithms)
}

export interface ResponseDecision {
  /** The coding the body is compressed with; undefined = sent as it is. */
  readonly coding: CompressionAlgorithm | undefined
  /** The answer depends on Accept-Encoding: `Vary: Accept-Encoding` goes on it (compressed or not). */
  readonly vary: boolean
  /** In words, for explain and tests: `type text/html, 14 KiB`, or why not. */
  readonly why: string
}

/**
 * The response's half, for a request that negotiated `coding`. Vary is set
 * whenever another client could get another coding for this answer: the
 * response is compressible, or already encoded (the origin was told the
 * negotiated coding, so its choice followed the client's).
 */
export function responseDecision (c: CompiledCompression, coding: Coding, status: number, headers: readonly string[]): ResponseDecision {
  if (status === 304) return { coding: undefined, vary: true, why: 'not compressed: 304 has no body' }
  if (status === 204 || status < 200) return { coding: undefined, vary: false, why: `not compressed: ${status} has no body` }
  if (status === 206 || combinedValue(headers, 'content-range') !== undefined) {
    return { coding: undefined, vary: false, why: 'not compressed: a partial answer (206 / Content-Range)' }
  }
  const ce = combinedValue(headers, 'content-encoding')?.trim()
  if (ce !== undefined && ce !== '' && ce.toLowerCase() !== 'identity') {
    return { coding: undefined, vary: true, why: `not compressed: Content-Encoding already ${ce}` }
  }
  if (parseCacheControl(combinedValue(headers, 'cache-control')).noTransform) {
    return { coding: undefined, vary: false, why: 'not compressed: Cache-Control no-transform' }
  }
  const type = mediaType(combinedValue(headers, 'content-type'))
  if (type === undefined) return { coding: undefined, vary: false, why: 'not compressed: no Content-Type' }
  if (!typeListed(c, type)) return { coding: undefined, vary: false, why: `not compressed: type ${type} is not in types` }
  const lengthField = combinedValue(headers, 'content-length')
  const length = lengthField === undefined ? undefined : Number(lengthField)
  if (length !== undefined && Number.isFinite(length) && length < c.config.minBytes) {
    return { coding: undefined, vary: false, why: `not compressed: ${describeBytes(length)} is under minBytes (${describeBytes(c.config.minBytes)})` }
  }
  const size = length === undefined || !Number.isFinite(length) ? 'length unknown' : describeBytes(length)
  if (coding === 'identity') return { coding: undefined, vary: true, why: `not compressed: the client gets identity (type ${type}, ${size})` }
  return { coding, vary: true, why: `type ${type}, ${size}` }
}

/** `text/HTML; charset=utf-8` → `text/html`; undefined when there is none. */
export function mediaType (value: string | undefined): string | undefined {
  if (value === undefined) return undefined
  const semi = value.indexOf(';')
  const t = (semi < 0 ? value : value.slice(0, semi)).trim().toLowerCase()
  return t === '' ? undefined : t
}

/** Listed by name, or by its top-level type; `text/*` never takes text/event-stream (it must be flushed per event: list it by name). */
export function typeListed (c: CompiledCompression, type: string): boolean {
  if (c.exact.has(type)) return true
  if (type === 'text/event-stream') return false
  const slash = type.indexOf('/')
  return slash > 0 && c.wildcards.has(type.slice(0, slash))
}

/**
 * The response head as sent compressed with `coding` (in place): its
 * Content-Encoding, no Content-Length (the length changes) nor
 * Accept-Ranges (ranges of the compressed body are not offered), a strong
 * ETag made weak (the bytes differ, the representation does not: NGINX does
 * the same), and Vary.
 */
export function compressedHead (headers: string[], coding: CompressionAlgorithm): string[] {
  const out: string[] = []
  for (let i = 0; i + 1 < headers.length; i += 2) {
    const name = headers[i]!
    if (isName(name, 'content-length') || isName(name, 'accept-ranges') || isName(name, 'content-encoding')) continue
    if (isDigest(name)) continue
    if (isName(name, 'trailer')) {
      // The digest trailers go (compressedTrailers): the field announcing them says so.
      const kept = headers[i + 1]!.split(',').map((t) => t.trim()).filter((t) => t !== '' && !isDigest(t))
      if (kept.length > 0) out.push(name, kept.join(', '))
      continue
    }
    out.push(name, isName(name, 'etag') ? weakETag(headers[i + 1]!) : headers[i + 1]!)
  }
  out.push('content-encoding', coding)
  return withVary(out)
}

/**
 * A 304 for a request that negotiated a coding carries the validator the
 * compressed 200 had, and no digest of the origin's bytes (a cache freshening
 * its compressed copy with the 304's fields would take it on).
 */
export function notModifiedHead (headers: string[], coding: Coding): string[] {
  if (coding === 'identity') return withVary(headers)
  const out: string[] = []
  for (let i = 0; i + 1 < headers.length; i += 2) {
    const name = headers[i]!
    if (isDigest(name)) continue
    out.push(name, isName(name, 'etag') ? weakETag(headers[i + 1]!) : headers[i + 1]!)
  }
  return withVary(out)
}

/**
 * The trailers of a compressed answer (raw, flat): without the digests of
 * the origin's bytes, which a streaming origin sends there rather than in
 * its head (RFC 9530 §3), and which the compressed bytes would fail.
 */
export function compressedTrailers (trailers: Buffer[]): Buffer[] {
  let out: Buffer[] | undefined
  for (let i = 0; i + 1 < trailers.length; i += 2) {
    if (isDigest(trailers[i]!.toString('latin1'))) out ??= trailers.slice(0, i)
    else out?.push(trailers[i]!, trailers[i + 1]!)
  }
  return out ?? trailers
}

/** Digests of the origin's bytes (RFC 9530 Content-/Repr-Digest, RFC 1864 Content-MD5, RFC 3230 Digest): wrong for compressed ones. */
function isDigest (name: string): boolean {
  return isName(name, 'content-digest') || isName(name, 'repr-digest') || isName(name, 'content-md5') || isName(name, 'digest')
}

/** `"x"` → `W/"x"`; a weak one as it is. */
export function weakETag (value: string): string {
  const v = value.trim()
  return v.startsWith('"') ? `W/${v}` : v
}

/** `Vary: Accept-Encoding` merged into the first Vary field (in place); nothing when it is there already or Vary is `*`. */
export function withVary (headers: string[]): string[] {
  let first = -1
  for (let i = 0; i + 1 < headers.length; i += 2) {
    if (!isName(headers[i]!, 'vary')) continue
    if (first < 0) first = i
    for (const m of headers[i + 1]!.split(',')) {
      const n = m.trim().toLowerCase()
      if (n === '*' || n === 'accept-encoding') return headers
    }
  }
  if (first < 0) headers.push('vary', 'Accept-Encoding')
  else headers[first + 1] = headers[first + 1]!.trim() === '' ? 'Accept-Encoding' : `${headers[first + 1]!}, Accept-Encoding`
  return headers
}

/**
 * The upstream request head for a request that negotiated `coding` (in
 * place): Accept-Encoding is that coding alone (none for identity), so the
 * origin's answer depends only on what the cache keys it by.
 */
export function upstreamAcceptEncoding (headers: string[], coding: Coding): void {
  setField(headers, 'accept-encoding', coding === 'identity' ? undefined : coding)
}

export function describeBytes (n: number): string {
  if (n < 1024) return `${n} B`
  const k = n / 1024
  if (k < 1024) return `${Number.isInteger(k) ? k : k.toFixed(1)} KiB`
  const m = k / 1024
  return `${Number.isInteger(m) ? m : m.toFixed(1)} MiB`
}

/** The route's setting in words (check's table, explain). */
export function describeCompression (c: CompressionConfig): string {
  const levels = c.algorithms.map((a) => `${a} ${c.level[a]}`).join(', ')
  return `${c.algorithms.length === 0 ? 'none available' : levels}; ≥ ${describeBytes(c.minBytes)}; ${c.types.length} type${c.types.length === 1 ? '' : 's'}`
}
