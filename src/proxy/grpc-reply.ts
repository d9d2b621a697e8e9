// Our own error answers to gRPC clients. A gRPC client reads the call's
// outcome from `grpc-status`, not from the HTTP status, so a plain 503 page
// reaches its application as an opaque "UNKNOWN"/"UNAVAILABLE: 503". As
// Envoy's local replies do, a request with a gRPC content type gets a
// Trailers-Only response instead: HTTP 200, `grpc-status` mapped from our
// status by gRPC's own table (doc/http-grpc-status-mapping.md), and the
// error's text as `grpc-message`. Pure.
import { Errors, type ErrorKind } from '../errors.js'

/** `application/grpc`, `application/grpc+proto`, `application/grpc;…` (not gRPC-Web, which has its own framing). */
export function isGrpcRequest (contentType: string | undefined): boolean {
  if (contentType === undefined || contentType.length < 16) return false
  const lower = contentType.slice(0, 16).toLowerCase()
  if (lower !== 'application/grpc') return false
  const next = contentType.charCodeAt(16)
  return Number.isNaN(next) || next === 43 /* + */ || next === 59 /* ; */ || next === 32 || next === 9
}

// gRPC status codes (grpc/doc/statuscodes.md).
const INTERNAL = 13
const UNAUTHENTICATED = 16
const PERMISSION_DENIED = 7
const UNIMPLEMENTED = 12
const UNAVAILABLE = 14
const DEADLINE_EXCEEDED = 4
const RESOURCE_EXHAUSTED = 8
const UNKNOWN = 2

/** Our errors that say more than their HTTP status. */
const BY_KIND: ReadonlyMap<ErrorKind, number> = new Map([
  [Errors.UPSTREAM_TIMEOUT, DEADLINE_EXCEEDED],
  [Errors.REQUEST_TIMEOUT, DEADLINE_EXCEEDED],
  [Errors.QUEUE_TIMEOUT, DEADLINE_EXCEEDED],
  [Errors.RATE_LIMITED, RESOURCE_EXHAUSTED]
])

/**
 * The gRPC status for one of our answers: gRPC's HTTP mapping (400 →
 * INTERNAL, 401 → UNAUTHENTICATED, 403 → PERMISSION_DENIED, 404 →
 * UNIMPLEMENTED, 429/502/503/504 → UNAVAILABLE), refined where our error says
 * more: a timeout is DEADLINE_EXCEEDED, a rate limit RESOURCE_EXHAUSTED.
 */
export function grpcStatusOf (kind: ErrorKind): number {
  const own = BY_KIND.get(kind)
  if (own !== undefined) return own
  switch (kind.status) {
    case 400: return INTERNAL
    case 401: return UNAUTHENTICATED
    case 403: return PERMISSION_DENIED
    case 404: return UNIMPLEMENTED
    case 429: case 502: case 503: case 504: return UNAVAILABLE
    default: return UNKNOWN
  }
}

/** grpc-message is percent-encoded UTF-8 (PROTOCOL-HTTP2.md): printable ASCII but `%` as is. */
export function encodeGrpcMessage (text: string): string {
  let out = ''
  for (const b of Buffer.from(text, 'utf8')) {
    out += b >= 0x20 && b <= 0x7e && b !== 0x25 ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`
  }
  return out
}

/**
 * The fields of a Trailers-Only answer for `kind` (flat, with the usual error
 * code field). The message is the error's public text, as the plain error
 * page says it; the detail (an upstream address, a socket error) stays in
 * the access log.
 */
export function grpcErrorFields (kind: ErrorKind): string[] {
  return [
    'content-type', 'application/grpc',
    'grpc-status', String(grpcStatusOf(kind)),
    'grpc-message', encodeGrpcMessage(`${kind.code}: ${kind.message}`),
    'x-switchyard-error', kind.code
  ]
}
