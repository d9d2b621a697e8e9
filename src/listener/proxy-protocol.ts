// The PROXY protocol (HAProxy's proxy-protocol.txt), versions 1 and 2: an L4
// balancer in front announces the client's address before the first byte of
// HTTP or TLS. Parsing and encoding only, pure and bounded; the listener reads
// the socket (listener/proxy-accept.ts), the upstream writes it
// (upstream/proxy-send.ts). Security-critical: every length is checked before
// it is read, and anything unexpected is an error, never a guess.
import { isIPv4, isIPv6 } from 'node:net'
import { normalizeAddress } from '../proxy/headers.js'

/** An address and port as the header carries them. */
export interface ProxyEndpoint {
  readonly address: string
  readonly port: number
}

/** A client connection's two ends: who connected, and to which address of ours (as the balancer saw it). */
export interface ClientEndpoints {
  readonly source: ProxyEndpoint
  readonly destination: ProxyEndpoint
}

export interface ProxyHeader {
  readonly version: 1 | 2
  /**
   * `local`: the balancer speaks for itself (its health checks; v2 LOCAL);
   * the connection's own addresses apply. `proxy`: a relayed connection.
   */
  readonly command: 'local' | 'proxy'
  /**
   * The announced client and the address it connected to. Absent for LOCAL,
   * v1 UNKNOWN and v2 UNSPEC/UNIX or a non-stream transport: the connection's
   * own addresses apply (the spec's "use the real connection endpoints").
   */
  readonly source?: ProxyEndpoint
  readonly destination?: ProxyEndpoint
}

export type ProxyParse =
  | { readonly state: 'incomplete' }
  | { readonly state: 'error', readonly reason: string }
  /** `length`: header bytes; whatever follows them in the buffer is the application's. */
  | { readonly state: 'done', readonly header: ProxyHeader, readonly length: number }

/** v1: the whole line, CRLF included, is at most 107 bytes (spec §2.1). */
export const V1_MAX = 107
/**
 * v2: the 16-byte fixed part plus what follows it. The spec allows up to
 * 65535 bytes of addresses and TLVs; real senders write a few hundred at most
 * (addresses, AWS/Azure/GCP ids, SSL info), so more is refused rather than
 * buffered for an unauthenticated peer.
 */
export const V2_MAX_PAYLOAD = 2048

const V1_PREFIX = Buffer.from('PROXY ', 'latin1')
export const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a])
const V2_FIXED = 16
const INCOMPLETE: ProxyParse = Object.freeze({ state: 'incomplete' })

/**
 * Parse the header at the start of `buf`, which holds every byte read so far.
 * Call again with more bytes while it says `incomplete`; an error can be told
 * from the first byte that breaks the grammar, so garbage is refused at once.
 */
export function parseProxyHeader (buf: Buffer): ProxyParse {
  if (buf.length === 0) return INCOMPLETE
  if (buf[0] === V1_PREFIX[0]) return parseV1(buf)
  if (buf[0] === V2_SIGNATURE[0]) return parseV2(buf)
  return error('not a PROXY protocol header')
}

function error (reason: string): ProxyParse {
  return { state: 'error', reason }
}

/** `buf` starts with as much of `prefix` as it holds. */
function startsWithPart (buf: Buffer, prefix: Buffer): boolean {
  const n = Math.min(buf.length, prefix.length)
  return buf.compare(prefix, 0, n, 0, n) === 0
}

function parseV1 (buf: Buffer): ProxyParse {
  if (!startsWithPart(buf, V1_PREFIX)) return error('v1: not a PROXY line')
  // The CR is at index V1_MAX - 2 at the latest, its LF right after it.
  const n = Math.min(buf.length, V1_MAX - 1)
  let cr = -1
  for (let i = V1_PREFIX.length; i < n; i++) {
    const c = buf[i]!
    if (c === 0x0d) { cr = i; break }
    // Printable US-ASCII only: a line is words, digits, dots, colons and single spaces.
    if (c < 0x20 || c > 0x7e) return error('v1: a control or non-ASCII byte in the line')
  }
  if (cr === -1) return buf.length >= V1_MAX - 1 ? error(`v1: no CRLF within ${V1_MAX} bytes`) : INCOMPLETE
  if (cr + 1 === buf.length) return INCOMPLETE
  if (buf[cr + 1] !== 0x0a) return error('v1: CR not followed by LF')
  const length = cr + 2
  const words = buf.toString('latin1', V1_PREFIX.length, cr).split(' ')
  const proto = words[0]
  // UNKNOWN: whatever follows is ignored (the sender may still write addresses).
  if (proto === 'UNKNOWN') return { state: 'done', header: { version: 1, command: 'proxy' }, length }
  if (proto !== 'TCP4' && proto !== 'TCP6') return error(`v1: unknown protocol "${proto ?? ''}"`)
  if (words.length !== 5) return error('v1: expected "PROXY TCPx SRC DST SRCPORT DSTPORT"')
  const check = proto === 'TCP4' ? isIPv4 : isIPv6
  const [, src, dst, sport, dport] = words as [string, string, string, string, string]
  // isIPv6 takes a zone (fe80::1%eth0), which no header from another host can mean, and
  // which would reach X-Forwarded-For and the access rules as the client's address.
  if (!check(src) || !check(dst) || src.includes('%') || dst.includes('%')) return error(`v1: an address is not ${proto === 'TCP4' ? 'IPv4' : 'IPv6'}`)
  const sp = port(sport)
  const dp = port(dport)
  if (sp === -1 || dp === -1) return error('v1: a port is not a decimal number 0-65535')
  return {
    state: 'done',
    header: { version: 1, command: 'proxy', source: { address: src, port: sp }, destination: { address: dst, port: dp } },
    length
  }
}

/** A v1 port: 0-65535, decimal, no sign, no leading zero. -1 when not. */
function port (s: string): number {
  if (!/^(?:0|[1-9][0-9]{0,4})$/.test(s)) return -1
  const n = Number(s)
  return n > 65535 ? -1 : n
}

function parseV2 (buf: Buffer): ProxyParse {
  if (!startsWithPart(buf, V2_SIGNATURE)) return error('v2: bad signature')
  if (buf.length < V2_FIXED) {
    // Refuse a bad version or command as soon as the byte is there.
    if (buf.length > 12 && !versionCommandOk(buf[12]!)) return error('v2: bad version or command')
    return INCOMPLETE
  }
  const vc = buf[12]!
  if (!versionCommandOk(vc)) return error('v2: bad version or command')
  const fam = buf[13]!
  const family = fam >> 4
  const transport = fam & 0x0f
  if (family > 3 || transport > 2) return error('v2: bad address family or transport')
  const len = buf.readUInt16BE(14)
  if (len > V2_MAX_PAYLOAD) return error(`v2: header longer than ${V2_MAX_PAYLOAD} bytes`)
  // The address block's size is fixed by the family; it must fit in `len`.
  const addrLen = family === 1 ? 12 : family === 2 ? 36 : family === 3 ? 216 : 0
  if (len < addrLen) return error('v2: length shorter than its address block')
  const total = V2_FIXED + len
  if (buf.length < total) return INCOMPLETE
  // TLVs after the addresses: skipped, but each must fit exactly.
  let at = V2_FIXED + addrLen
  while (at < total) {
    if (total - at < 3) return error('v2: truncated TLV')
    const tlvLen = buf.readUInt16BE(at + 1)
    at += 3 + tlvLen
    if (at > total) return error('v2: TLV longer than the header')
  }
  const local = (vc & 0x0f) === 0
  // LOCAL, UNSPEC, UNIX sockets and datagrams: the connection's own addresses apply.
  if (local || transport !== 1 || (family !== 1 && family !== 2)) {
    return { state: 'done', header: { version: 2, command: local ? 'local' : 'proxy' }, length: total }
  }
  const a = V2_FIXED
  let source: ProxyEndpoint, destination: ProxyEndpoint
  if (family === 1) {
    source = { address: ipv4(buf, a), port: buf.readUInt16BE(a + 8) }
    destination = { address: ipv4(buf, a + 4), port: buf.readUInt16BE(a + 10) }
  } else {
    source = { address: ipv6(buf, a), port: buf.readUInt16BE(a + 32) }
    destination = { address: ipv6(buf, a + 16), port: buf.readUInt16BE(a + 34) }
  }
  return { state: 'done', header: { version: 2, command: 'proxy', source, destination }, length: total }
}

/** Version 2; command LOCAL (0) or PROXY (1). */
function versionCommandOk (b: number): boolean {
  return b >> 4 === 2 && (b & 0x0f) <= 1
}

function ipv4 (buf: Buffer, at: number): string {
  return `${buf[at]!}.${buf[at + 1]!}.${buf[at + 2]!}.${buf[at + 3]!}`
}

/** RFC 5952 text, as Node prints addresses (zero runs compressed); an IPv4-mapped one as `::ffff:a.b.c.d`. */
function ipv6 (buf: Buffer, at: number): string {
  const groups: number[] = []
  for (let i = 0; i < 8; i++) groups.push(buf.readUInt16BE(at + i * 2))
  if (groups[0] === 0 && groups[1] === 0 && groups[2] === 0 && groups[3] === 0 && groups[4] === 0 && groups[5] === 0xffff) {
    return `::ffff:${ipv4(buf, at + 12)}`
  }
  // The longest run of two or more zero groups becomes `::` (the first, on a tie).
  let best = -1, bestLen = 1
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) { i++; continue }
    let j = i
    while (j < 8 && groups[j] === 0) j++
    if (j - i > bestLen) { best = i; bestLen = j - i }
    i = j
  }
  const hex = groups.map((g) => g.toString(16))
  if (best === -1) return hex.join(':')
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`
}

/**
 * The header an upstream connection starts with. `endpoints` absent: the
 * proxy speaks for itself (health checks: HAProxy's check-send-proxy), v1
 * `PROXY UNKNOWN`, v2 LOCAL. A source and destination of different families
 * are both sent as IPv6 (an IPv4 one as `::ffff:a.b.c.d`).
 */
export function encodeProxyHeader (version: 1 | 2, endpoints?: ClientEndpoints): Buffer {
  if (endpoints === undefined) {
    if (version === 1) return Buffer.from('PROXY UNKNOWN\r\n', 'latin1')
    const b = Buffer.alloc(V2_FIXED)
    V2_SIGNATURE.copy(b)
    b[12] = 0x20 // v2, LOCAL
    b[13] = 0x00 // UNSPEC
    return b
  }
  let src = normalizeAddress(endpoints.source.address)
  let dst = normalizeAddress(endpoints.destination.address)
  const v4 = isIPv4(src) && isIPv4(dst)
  if (!v4) {
    src = isIPv4(src) ? `::ffff:${src}` : src
    dst = isIPv4(dst) ? `::ffff:${dst}` : dst
    if (!isIPv6(src) || !isIPv6(dst)) throw new TypeError(`not IP addresses: ${src}, ${dst}`)
  }
  const sp = endpoints.source.port
  const dp = endpoints.destination.port
  if (version === 1) return Buffer.from(`PROXY ${v4 ? 'TCP4' : 'TCP6'} ${src} ${dst} ${sp} ${dp}\r\n`, 'latin1')
  const addrLen = v4 ? 12 : 36
  const b = Buffer.alloc(V2_FIXED + addrLen)
  V2_SIGNATURE.copy(b)
  b[12] = 0x21 // v2, PROXY
  b[13] = v4 ? 0x11 : 0x21 // AF_INET / AF_INET6, STREAM
  b.writeUInt16BE(addrLen, 14)
  const a = V2_FIXED
  if (v4) {
    writeIPv4(b, a, src)
    writeIPv4(b, a + 4, dst)
    b.writeUInt16BE(sp, a + 8)
    b.writeUInt16BE(dp, a + 10)
  } else {
    writeIPv6(b, a, src)
    writeIPv6(b, a + 16, dst)
    b.writeUInt16BE(sp, a + 32)
    b.writeUInt16BE(dp, a + 34)
  }
  return b
}

function writeIPv4 (b: Buffer, at: number, addr: string): void {
  const parts = addr.split('.')
  for (let i = 0; i < 4; i++) b[at + i] = Number(parts[i])
}

function writeIPv6 (b: Buffer, at: number, addr: string): void {
  let text = addr
  const pct = text.indexOf('%') // a zone id is not on the wire
  if (pct !== -1) text = text.slice(0, pct)
  // A dotted IPv4 tail is two groups.
  const lastColon = text.lastIndexOf(':')
  if (text.includes('.', lastColon)) {
    const p = text.slice(lastColon + 1).split('.').map(Number) as [number, number, number, number]
    text = `${text.slice(0, lastColon + 1)}${((p[0] << 8) | p[1]).toString(16)}:${((p[2] << 8) | p[3]).toString(16)}`
  }
  const double = text.indexOf('::')
  const hex = (part: string): number[] => part === '' ? [] : part.split(':').map((g) => parseInt(g, 16))
  const head = hex(double === -1 ? text : text.slice(0, double))
  const tail = double === -1 ? [] : hex(text.slice(double + 2))
  const groups = double === -1 ? head : [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail]
  for (let i = 0; i < 8; i++) b.writeUInt16BE(groups[i]!, at + i * 2)
}
