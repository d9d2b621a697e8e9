// The two messages of the standard gRPC health check (grpc.health.v1.Health/
// Check), encoded and decoded by hand: HealthCheckRequest { string service = 1 }
// and HealthCheckResponse { ServingStatus status = 1 }, each in one gRPC
// length-prefixed frame. Thirty lines of protobuf instead of a runtime gRPC
// library. Pure: the checker sends and reads the bytes.

/** The request path of the standard health check. */
export const HEALTH_CHECK_PATH = '/grpc.health.v1.Health/Check'

/** HealthCheckResponse.ServingStatus, by number. */
export const SERVING_STATUS: readonly string[] = ['UNKNOWN', 'SERVING', 'NOT_SERVING', 'SERVICE_UNKNOWN']
export const SERVING = 1

/** A gRPC frame (uncompressed) holding HealthCheckRequest { service }. Built once per check config. */
export function healthCheckRequest (service: string): Buffer {
  const name = Buffer.from(service, 'utf8')
  // proto3 leaves a default (empty) field out: the server's own status is asked with an empty message.
  const message = name.length === 0 ? Buffer.alloc(0) : Buffer.concat([Buffer.from([0x0a]), varint(name.length), name])
  const frame = Buffer.alloc(5 + message.length)
  frame.writeUInt32BE(message.length, 1)
  message.copy(frame, 5)
  return frame
}

/**
 * The ServingStatus number in a response body (one gRPC frame of
 * HealthCheckResponse), or why it cannot be read. A missing field is
 * UNKNOWN (0), as proto3 says.
 */
export function servingStatus (body: Buffer): number | string {
  if (body.length < 5) return 'no response message'
  if (body[0] !== 0) return 'compressed response message'
  const length = body.readUInt32BE(1)
  if (body.length < 5 + length) return 'truncated response message'
  let status = 0
  let i = 5
  const end = 5 + length
  while (i < end) {
    const tag = readVarint(body, i, end)
    if (tag === undefined) return 'malformed response message'
    i = tag.next
    const wire = tag.value & 7
    const value = wire === 0 ? readVarint(body, i, end) : undefined
    if (wire === 0) {
      if (value === undefined) return 'malformed response message'
      if (tag.value >>> 3 === 1) status = value.value
      i = value.next
    } else if (wire === 2) {
      const len = readVarint(body, i, end)
      if (len === undefined || len.next + len.value > end) return 'malformed response message'
      i = len.next + len.value
    } else if (wire === 1 || wire === 5) {
      i += wire === 1 ? 8 : 4
    } else {
      return 'malformed response message'
    }
  }
  return i === end ? status : 'malformed response message'
}

function varint (n: number): Buffer {
  const out: number[] = []
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80)
    n >>>= 7
  }
  out.push(n)
  return Buffer.from(out)
}

/** A varint of at most 32 bits (tags, lengths and enums here all are). */
function readVarint (b: Buffer, at: number, end: number): { value: number, next: number } | undefined {
  let value = 0
  for (let shift = 0, i = at; i < end && shift < 35; shift += 7, i++) {
    const byte = b[i]!
    value += (byte & 0x7f) * 2 ** shift
    if ((byte & 0x80) === 0) return { value, next: i + 1 }
  }
  return undefined
}
