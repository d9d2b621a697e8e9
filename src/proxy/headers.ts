// Proxy header hygiene in one place (reply-from's lib/utils.js, Envoy's HCM):
// hop-by-hop fields stripped both ways (RFC 9110 §7.6.1, including every name
// listed in Connection), h2 pseudo-headers turned into Host, several h2
// `cookie` fields joined (RFC 9113 §8.2.3), X-Forwarded-* / Forwarded / Via
// added with the trust rules, and route header operations applied.
// Pure functions over flat [name, value, name, value…] arrays, the form both
// Node (rawHeaders, writeHead) and undici (request headers) take natively, so
// no header object is built per request.
import type { ForwardingConfig, HeaderOpsConfig, LimitsConfig } from '../config/schema.js'
import { Errors, type ErrorKind } from '../errors.js'
import { parseAuthority, type Authority } from '../authority.js'
import { connectionNames, type RawFields } from '../fields.js'

// What to do with a request field, by lower-cased name.
const DROP = 1 // hop-by-hop or never forwarded
const HOST = 2
const XFF = 3
const XFP = 4
const XFH = 5
const FORWARDED = 6
const VIA = 7
const COOKIE = 8
const CONNECTION = 9
const CONTENT_LENGTH = 10
const TRANSFER_ENCODING = 11
/** Kept from trusted proxies only (they describe the client side of an earlier hop). */
const TRUSTED_ONLY = 12
/** Hop-by-hop, but `TE: trailers` goes on to h2 backends (gRPC servers require it; RFC 9113 §8.2.2 allows only it). */
const TE = 13
/**
 * Kept from trusted proxies only, and an override frameworks read instead of
 * the request's own URL, host, scheme, port or method: it changes the answer,
 * so it keys a cached one (TRUSTED_OVERRIDES, cache/key.ts trustedVariant).
 */
const TRUSTED_OVERRIDE = 14

const REQUEST_FIELDS: ReadonlyMap<string, number> = new Map([
  ['connection', CONNECTION],
  ['keep-alive', DROP],
  ['proxy-connection', DROP],
  ['transfer-encoding', TRANSFER_ENCODING],
  ['te', TE],
  ['upgrade', DROP],
  ['http2-settings', DROP],
  ['proxy-authorization', DROP],
  // Node answers `Expect: 100-continue` itself; undici refuses to send it.
  ['expect', DROP],
  ['host', HOST],
  ['x-forwarded-for', XFF],
  ['x-forwarded-proto', XFP],
  ['x-forwarded-host', XFH],
  ['forwarded', FORWARDED],
  ['via', VIA],
  ['cookie', COOKIE],
  ['content-length', CONTENT_LENGTH],
  ['x-forwarded-port', TRUSTED_OVERRIDE],
  ['x-forwarded-prefix', TRUSTED_OVERRIDE],
  ['x-forwarded-server', TRUSTED_ONLY],
  ['x-forwarded-scheme', TRUSTED_OVERRIDE],
  ['x-forwarded-ssl', TRUSTED_OVERRIDE],
  ['x-real-ip', TRUSTED_ONLY],
  // Client addresses some frameworks believe, and URLs that IIS/Symfony-style
  // backends route by instead of the request line (a path ACL bypass when a
  // client may set them).
  ['x-client-ip', TRUSTED_ONLY],
  ['true-client-ip', TRUSTED_ONLY],
  ['x-cluster-client-ip', TRUSTED_ONLY],
  ['x-original-url', TRUSTED_OVERRIDE],
  ['x-rewrite-url', TRUSTED_OVERRIDE],
  // Hosts and methods some frameworks take instead of the request's own: from
  // a client, they would make a cached GET's answer another (a 405 stored for
  // everyone, links to another host).
  ['x-host', TRUSTED_OVERRIDE],
  ['x-original-host', TRUSTED_OVERRIDE],
  ['x-http-method-override', TRUSTED_OVERRIDE],
  ['x-http-method', TRUSTED_OVERRIDE],
  ['x-method-override', TRUSTED_OVERRIDE]
])

/** The override fields a trusted proxy may send (lower-case): they key cached answers (plan.ts). */
export const TRUSTED_OVERRIDES: ReadonlySet<string> = new Set([...REQUEST_FIELDS].filter(([, a]) => a === TRUSTED_OVERRIDE).map(([n]) => n))

// What to do with a response field, by lower-cased name.
const HOP = 1 // hop-by-hop (RFC 9110 §7.6.1); Node also refuses them on h2 responses
const SINGLE = 2 // one value only (Node's HTTP/2 refuses a repeat)
const LIST = 3 // one field on h2, but a list: repeats join (RFC 9110 §5.3)
const RESPONSE_VIA = 4
const FIRST = 5 // cache metadata whose first value counts (RFC 9111 §5.1 for Age; the dates alike)

const RESPONSE_FIELDS: ReadonlyMap<string, number> = new Map([
  ...['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'upgrade', 'http2-settings'].map((n) => [n, HOP] as const),
  // Node's kSingleValueHeaders (lib/internal/http2/util.js) as far as a response can carry them.
  ...['access-control-allow-credentials', 'access-control-max-age', 'access-control-request-method', 'authorization',
    'content-length', 'content-location', 'content-md5', 'content-range', 'content-type', 'dnt', 'etag',
    'from', 'host', 'if-match', 'if-modified-since', 'if-none-match', 'if-range', 'if-unmodified-since', 'last-modified',
    'location', 'max-forwards', 'proxy-authorization', 'range', 'referer', 'retry-after', 'tk', 'upgrade-insecure-requests',
    'user-agent', 'x-content-type-options'].map((n) => [n, SINGLE] as const),
  ...['content-encoding', 'content-language'].map((n) => [n, LIST] as const),
  ...['age', 'date', 'expires'].map((n) => [n, FIRST] as const),
  ['via', RESPONSE_VIA]
])

/** Per-route header operations, compiled once at load. */
export interface CompiledHeaderOps {
  /** Names removed from what is forwarded (removed and to-be-set ones). */
  readonly drop: ReadonlySet<string>
  /** Flat [name, value…] appended after stripping. */
  readonly set: readonly string[]
}

export const NO_HEADER_OPS: CompiledHeaderOps = Object.freeze({ drop: new Set<string>(), set: Object.freeze([]) })

export function compileHeaderOps (ops: HeaderOpsConfig): CompiledHeaderOps {
  const set: string[] = []
  const drop = new Set<string>(ops.remove)
  for (const [name, value] of Object.entries(ops.set)) {
    drop.add(name)
    set.push(name, value)
  }
  if (drop.size === 0) return NO_HEADER_OPS
  return Object.freeze({ drop, set: Object.freeze(set) })
}

/** Facts about the request that the forwarded fields describe. */
export interface ForwardContext {
  /** Socket peer, IPv4-mapped IPv6 unwrapped. */
  readonly clientAddress: string
  /** The peer is in trustedProxies: its X-Forwarded-For, Forwarded and Via values are kept and appended to. */
  readonly trusted: boolean
  readonly proto: 'http' | 'https'
  /** `1.1 switchyard` or `2 switchyard`, built once per listener and protocol. */
  readonly viaEntry: string
}

/** Everything fixed per route + backend, resolved at load. */
export interface UpstreamHeaderPolicy {
  readonly forwarding: ForwardingConfig
  readonly limits: LimitsConfig
  readonly ops: CompiledHeaderOps
  /** The backend speaks HTTP/2: a client's `TE: trailers` is passed on (as exactly that). */
  readonly teTrailers?: boolean
}

export interface UpstreamHead {
  /** Flat [name, value…] for undici. */
  readonly headers: string[]
  /** The request has a body to stream (Content-Length > 0 or chunked). */
  readonly hasBody: boolean
  /** Content-Length as sent, when present. */
  readonly contentLength: number | undefined
  /**
   * The scheme and `host[:port]` the origin is told the client used (the
   * trusted proxy's X-Forwarded-Proto/-Host, else ours): what it builds its
   * answer for, so what the cache keys it under.
   */
  readonly proto: 'http' | 'https'
  readonly authority: Authority
}

/**
 * Build the upstream request header list from the client's raw headers.
 * Returns an error kind instead of a head when limits are broken (431) or
 * the body has a transfer coding other than chunked (501).
 * `authority` is the request's parsed authority (h2 :authority, h1 Host or the
 * absolute-form target); `host` is what to send as Host (its value, or the
 * server's own).
 */
export function upstreamRequestHead (raw: readonly string[], authority: Authority, host: string, fwd: ForwardContext,
  policy: UpstreamHeaderPolicy): UpstreamHead | ErrorKind {
  const out: string[] = []
  const drop = policy.ops.drop
  const dropSome = drop.size > 0
  let bytes = 0
  let count = 0
  let xff: string | undefined
  let xfp: string | undefined
  let xfh: string | undefined
  let forwarded: string | undefined
  let via: string | undefined
  let cookie: string | undefined
  let connectionTokens: string | undefined
  let hasBody = false
  let hasChunked = false
  let contentLength: number | undefined
  let te = false

  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!
    const value = raw[i + 1]!
    if (name.charCodeAt(0) === 58) continue // ':' pseudo-header, h2 only
    bytes += name.length + value.length
    count++
    const lower = name.toLowerCase()
    const action = REQUEST_FIELDS.get(lower)
    if (action === undefined) {
      // CGI-style servers (WSGI, Rack, PHP) read `X_Forwarded_Prefix` as
      // `X-Forwarded-Prefix` (both HTTP_X_FORWARDED_PREFIX): another spelling
      // of a field handled here is dropped, from every client (nginx drops
      // every name with `_`; Envoy can).
      if (lower.indexOf('_') !== -1 && REQUEST_FIELDS.has(lower.replace(/_/g, '-'))) continue
      if (!dropSome || !drop.has(lower)) out.push(name, value)
      continue
    }
    switch (action) {
      case TRUSTED_ONLY:
      case TRUSTED_OVERRIDE: if (fwd.trusted && (!dropSome || !drop.has(lower))) out.push(name, value); break
      case XFF: xff = xff === undefined ? value : `${xff}, ${value}`; break
      case XFP: xfp ??= value; break
      case XFH: xfh ??= value; break
      case FORWARDED: forwarded = forwarded === undefined ? value : `${forwarded}, ${value}`; break
      case VIA: via = via === undefined ? value : `${via}, ${value}`; break
      case COOKIE:
        // h2 clients send each cookie as its own field (RFC 9113 §8.2.3): one field, as on HTTP/1.1.
        if (cookie === undefined) cookie = value
        else { cookie = `${cookie}; ${value}`; count-- }
        break
      case CONNECTION: connectionTokens = connectionTokens === undefined ? value : `${connectionTokens},${value}`; break
      case TRANSFER_ENCODING:
        // RFC 9112 §6.1: a coding we do not know (`gzip, chunked`) is a 501, not dropped on the way; so is a second field.
        if (hasChunked || !ONLY_CHUNKED.test(value)) return Errors.TRANSFER_CODING
        hasChunked = hasBody = true
        break
      case TE: if (policy.teTrailers === true && TE_TRAILERS.test(value)) te = true; break
      case CONTENT_LENGTH:
        contentLength = Number(value)
        if (value !== '0') hasBody = true
        if (!dropSome || !drop.has(lower)) out.push(name, value)
        break
      default: break // DROP, HOST
    }
  }
  if (count > policy.limits.maxHeaderCount || bytes > policy.limits.maxHeaderBytes) return Errors.HEADERS_TOO_LARGE

  if (connectionTokens !== undefined) stripConnectionTokens(out, connectionTokens)

  out.push('host', host)
  if (te) out.push('te', 'trailers')
  if (cookie !== undefined && !drop.has('cookie')) out.push('cookie', cookie)
  const f = policy.forwarding
  const trusted = fwd.trusted
  let proto = fwd.proto
  let effective = authority
  if (f.xForwarded) {
    // A trusted proxy's view of the client wins, when it is well-formed.
    if (trusted && xfp !== undefined) {
      const p = xfp.trim().toLowerCase()
      if (p === 'http' || p === 'https') proto = p
    }
    if (trusted && xfh !== undefined) effective = parseAuthority(xfh.trim()) ?? authority
    out.push('x-forwarded-for', trusted && xff !== undefined ? `${xff}, ${fwd.clientAddress}` : fwd.clientAddress)
    out.push('x-forwarded-proto', proto)
    out.push('x-forwarded-host', effective.value)
  }
  if (f.forwarded) {
    const ours = forwardedElement(fwd, authority.value)
    out.push('forwarded', trusted && forwarded !== undefined ? `${forwarded}, ${ours}` : ours)
  }
  if (f.via) out.push('via', via === undefined ? fwd.viaEntry : `${via}, ${fwd.viaEntry}`)
  else if (via !== undefined) out.push('via', via)
  const set = policy.ops.set
  for (let i = 0; i < set.length; i++) out.push(set[i]!)
  return { headers: out, hasBody, contentLength, proto, authority: effective }
}

/** A response's Transfer-Encoding as a proxy can take it: chunked, once. */
const ONLY_CHUNKED = /^\s*chunked\s*$/i
const ONLY_OPTIONS = /^\s*(?:keep-alive|close|upgrade)\s*$/i

/**
 * Response fields that say whether and how long a response may be stored,
 * and what it varies on. Listed in Connection they are addressed to the
 * next hop, which is this cache: it must decide by them (Connection:
 * cache-control with no-store had the answer stored; Connection: vary with
 * Vary: Cookie had one user's page served to another). They are kept, as
 * NGINX, HAProxy and Varnish keep them, so the client's caches see them too.
 */
const CACHE_DIRECTING: ReadonlySet<string> = new Set(['cache-control', 'pragma', 'expires', 'vary', 'age', 'cdn-cache-control', 'surrogate-control'])
/** A TE list naming `trailers` (RFC 9110 §10.1.4). */
const TE_TRAILERS = /(?:^|,)\s*trailers\s*(?:,|;|$)/i

/** Remove the fields a Connection header names (RFC 9110 §7.6.1); rare, so a second pass. */
function stripConnectionTokens (out: string[], tokens: string, keep?: ReadonlySet<string>): void {
  // Nearly every h1 message says just `keep-alive` or `close`: nothing to strip.
  if (ONLY_OPTIONS.test(tokens)) return
  const names = connectionNames(tokens)
  if (names === undefined) return
  let w = 0
  for (let r = 0; r < out.length; r += 2) {
    const name = out[r]!.toLowerCase()
    if (names.has(name) && keep?.has(name) !== true) continue
    out[w++] = out[r]!
    out[w++] = out[r + 1]!
  }
  out.length = w
}

/** The same head with Host replaced (backends with passHostHeader: false). */
export function withHost (headers: readonly string[], host: string): string[] {
  const out = headers.slice()
  for (let i = 0; i < out.length; i += 2) if (out[i] === 'host') out[i + 1] = host
  return out
}

/** RFC 7239 element: for=…;host=…;proto=… with IPv6 bracketed and quoted. */
export function forwardedElement (fwd: ForwardContext, authority: string): string {
  const addr = fwd.clientAddress.includes(':') ? `"[${fwd.clientAddress}]"` : fwd.clientAddress
  const host = /^[A-Za-z0-9.\-_~]+$/.test(authority) ? authority : `"${authority.replace(/["\\]/g, '\\$&')}"`
  return `for=${addr};host=${host};proto=${fwd.proto}`
}

/**
 * Translate an upstream response's raw head (latin1 strings, bytes kept exact)
 * into a flat list for writeHead, once, as the head arrives: hop-by-hop
 * fields out, a repeated one-value field collapsed (same value) or refused
 * (different values: the name of the field is returned instead of a list,
 * and the response must not be used) — except Age, Date and Expires, whose
 * first value counts as RFC 9111 §5.1 says for Age — Via appended, route
 * response header operations applied. The result is valid for HTTP/1.1 and HTTP/2 alike, so
 * what the cache stores can be served on either.
 */
export function downstreamResponseHeaders (raw: RawFields, via: string | undefined,
  ops: CompiledHeaderOps, status = 200): string[] | string {
  // A 204 carries no Content-Length (RFC 9110 §8.6); HTTP/2 clients reset a stream that has one.
  const noLength = status === 204
  const out: string[] = []
  const drop = ops.drop
  const dropSome = drop.size > 0
  let connectionTokens: string | undefined
  let upstreamVia: string | undefined
  // Lower-cased one-value names seen so far and where their value is in `out`.
  let seen: string[] | undefined
  let at: number[] | undefined
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!
    const lower = name.toLowerCase()
    const action = RESPONSE_FIELDS.get(lower)
    if (action === HOP) {
      if (lower === 'connection') {
        const v = raw[i + 1]!
        connectionTokens = connectionTokens === undefined ? v : `${connectionTokens},${v}`
      } else if (lower === 'transfer-encoding' && !ONLY_CHUNKED.test(raw[i + 1]!)) {
        // Only chunked is undone here (RFC 9112 §7): past any other coding the body would go on coded, with nothing
        // to say so (Transfer-Encoding is hop-by-hop). nginx: "upstream sent unknown Transfer-Encoding", 502.
        return lower
      }
      continue
    }
    if (dropSome && drop.has(lower)) continue
    if (noLength && lower === 'content-length') continue
    if (action === RESPONSE_VIA && via !== undefined) {
      const v = raw[i + 1]!
      upstreamVia = upstreamVia === undefined ? v : `${upstreamVia}, ${v}`
      continue
    }
    const value = raw[i + 1]!
    if (action === SINGLE || action === LIST || action === FIRST) {
      const k = seen === undefined ? -1 : seen.indexOf(lower)
      if (k !== -1) {
        const j = at![k]!
        if (out[j] === value || action === FIRST) continue
        if (action === SINGLE) return lower
        out[j] = `${out[j]!}, ${value}`
        continue
      }
      ;(seen ??= []).push(lower)
      ;(at ??= []).push(out.length + 1)
    }
    out.push(name, value)
  }
  if (connectionTokens !== undefined) stripConnectionTokens(out, connectionTokens, CACHE_DIRECTING)
  if (via !== undefined) out.push('via', upstreamVia === undefined ? via : `${upstreamVia}, ${via}`)
  const set = ops.set
  for (let i = 0; i < set.length; i++) out.push(set[i]!)
  return out
}

/** Trailers from undici (flat Buffers) as an object for addTrailers; hop-by-hop names dropped. */
/**
 * Fields a sender must not put in trailers (RFC 9110 §6.5.1: framing,
 * routing, request modifiers, authentication, response control, and what
 * describes the content): a recipient that merged them into the head would
 * read a Set-Cookie, a Location or a Content-Type the head never had. Not
 * relayed.
 */
const NOT_TRAILER: ReadonlySet<string> = new Set(['content-length', 'content-type', 'content-encoding', 'content-range', 'content-location',
  'host', 'authorization', 'proxy-authenticate', 'www-authenticate', 'set-cookie', 'cookie', 'cache-control', 'expires', 'age', 'date',
  'location', 'retry-after', 'vary', 'max-forwards', 'pragma', 'range', 'trailer'])

export function trailerObject (raw: readonly Buffer[]): Record<string, string> | undefined {
  if (raw.length === 0) return undefined
  // No prototype: a trailer named constructor or __proto__ is a field like any other.
  const obj: Record<string, string> = Object.create(null) as Record<string, string>
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toString('latin1').toLowerCase()
    if (RESPONSE_FIELDS.get(name) === HOP || NOT_TRAILER.has(name)) continue
    const v = raw[i + 1]!.toString('latin1')
    obj[name] = obj[name] === undefined ? v : `${obj[name]}, ${v}`
  }
  return obj
}

/** `::ffff:10.0.0.1` → `10.0.0.1`; anything else unchanged. */
export function normalizeAddress (addr: string | undefined): string {
  if (addr === undefined) return ''
  return addr.startsWith('::ffff:') && addr.includes('.') ? addr.slice(7) : addr
}
