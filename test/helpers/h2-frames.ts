// A raw HTTP/2 client for the frames node:http2's client will not send: a
// TLS connection (ALPN h2) that writes frames as given and reads the
// server's frames, acknowledging its SETTINGS. Header blocks are HPACK
// literals without indexing (RFC 7541 §6.2.2), no Huffman coding.
import tls from 'node:tls'

export const FrameType = Object.freeze({ DATA: 0, HEADERS: 1, RST_STREAM: 3, SETTINGS: 4, PING: 6, GOAWAY: 7, WINDOW_UPDATE: 8 })
export const Flags = Object.freeze({ END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4 })

export interface Frame { readonly type: number, readonly flags: number, readonly stream: number, readonly payload: Buffer }

/** One frame: 24-bit length, type, flags, 31-bit stream id, payload. */
export function frame (type: number, flags: number, stream: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(9)
  head.writeUIntBE(payload.length, 0, 3)
  head[3] = type
  head[4] = flags
  head.writeUInt32BE(stream & 0x7fffffff, 5)
  return Buffer.concat([head, payload])
}

/** An HPACK integer with an n-bit prefix (RFC 7541 §5.1). */
function integer (value: number, bits: number, first: number): Buffer {
  const max = (1 << bits) - 1
  if (value < max) return Buffer.from([first | value])
  const out = [first | max]
  let v = value - max
  while (v >= 128) {
    out.push((v & 127) | 128)
    v >>= 7
  }
  out.push(v)
  return Buffer.from(out)
}

const literal = (s: string): Buffer => {
  const b = Buffer.from(s, 'latin1')
  return Buffer.concat([integer(b.length, 7, 0), b])
}

/** A header block of literal fields, in order. */
export function headerBlock (fields: ReadonlyArray<readonly [string, string]>): Buffer {
  return Buffer.concat(fields.flatMap(([name, value]) => [Buffer.from([0]), literal(name), literal(value)]))
}

/** SETTINGS from [id, value] pairs. */
export function settings (pairs: ReadonlyArray<readonly [number, number]> = []): Buffer {
  const payload = Buffer.alloc(6 * pairs.length)
  pairs.forEach(([id, value], i) => {
    payload.writeUInt16BE(id, i * 6)
    payload.writeUInt32BE(value, i * 6 + 2)
  })
  return frame(FrameType.SETTINGS, 0, 0, payload)
}

export interface RawH2 {
  readonly socket: tls.TLSSocket
  /** Every frame received, in order. */
  readonly frames: Frame[]
  /** Resolves when the server closes the connection. */
  readonly closed: Promise<void>
  write (...frames: Buffer[]): void
}

/** Connects, sends the preface and `initial` SETTINGS. */
export function rawH2 (port: number, initial: ReadonlyArray<readonly [number, number]> = []): Promise<RawH2> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ALPNProtocols: ['h2'], rejectUnauthorized: false, servername: 'localhost' })
    const frames: Frame[] = []
    let buf = Buffer.alloc(0)
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()))
    socket.on('error', () => {})
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk])
      while (buf.length >= 9) {
        const length = buf.readUIntBE(0, 3)
        if (buf.length < 9 + length) break
        const f = { type: buf[3]!, flags: buf[4]!, stream: buf.readUInt32BE(5) & 0x7fffffff, payload: buf.subarray(9, 9 + length) }
        frames.push(f)
        buf = buf.subarray(9 + length)
        if (f.type === FrameType.SETTINGS && (f.flags & Flags.ACK) === 0) socket.write(frame(FrameType.SETTINGS, Flags.ACK, 0))
      }
    })
    socket.once('secureConnect', () => {
      socket.write(Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1'), settings(initial)]))
      resolve({ socket, frames, closed, write: (...f) => { socket.write(Buffer.concat(f)) } })
    })
    socket.once('error', reject)
  })
}
