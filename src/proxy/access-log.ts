// The access log: one line per finished request, written to pino's
// asynchronous SonicBoom destination (lines are buffered up to 64 KiB and
// written off the hot path; a timer flushes a quiet log every second) and
// flushed by close(). Two formats:
//  - json (default): a fixed shape built directly (accessLogJson) rather than
//    through pino's generic serializer, which cost ~4% of a core at 16k
//    requests/s; the same pino-style line. `time` is the request's start in
//    RFC 3339 (ISO 8601, UTC), as in every line the process writes. Besides
//    it and pino's `level`, only request fields (absent ones left out):
//   {"level":30,"time":"2024-05-01T12:00:00.000Z","listener":"https","protocol":"h2",
//    "client":"203.0.113.7","method":"GET","host":"api.example.com","path":"/v1/users",
//    "query":"id=7&token=REDACTED","status":200,"bytes":512,"request_bytes":0,
//    "user_agent":"curl/8.5.0","referer":"https://example.com/","request_id":"…","trace_id":"0af7651916cd43dd8448eb211c80319c",
//    "tls_version":"TLSv1.3","sni":"api.example.com","route":"api","backend":"api",
//    "shard":"a","server":"a-1","role":"replica","upstream":"10.0.0.1:9000","cache":"miss","stored":true,"compression":"br",
//    "upstream_ms":11.204,"total_ms":12.871,"retries":0}
//    Failed requests add "error" (the stable code, e.g. LB_ERR_UPSTREAM_TIMEOUT),
//    "flag" (UT) and, when known, "detail" (why: e.g. `malformed response head: etag`).
//    "stored": whether the upstream answer is in the cache now, as its end
//    found it (Cache-Status's `stored` is said with the head, before a cut body).
//  - combined: Apache's combined format (`%h %l %u %t "%r" %>s %b "%{Referer}i"
//    "%{User-agent}i"`), for tools that expect it; its time is Apache's by definition.
// Query parameters named in `redactQuery` are logged as NAME=REDACTED. A
// file is reopened on reopen() (SIGUSR1), for logrotate without copytruncate.
import { fstatSync, openSync } from 'node:fs'
import { pino, type DestinationStream } from 'pino'
import type { RequestRecord } from '../admin/metrics.js'

export interface AccessLog {
  write (r: RequestRecord): void
  /**
   * Open the file again by its name (after logrotate moved it); lines written
   * so far go to the old one. No-op on stdout. Undefined when done; else why
   * not (the folder is gone, say), and lines keep going to the file open now.
   */
  reopen (): string | undefined
  /** Flush what is buffered and close the destination (stdout stays open). Idempotent. */
  close (): Promise<void>
}

export interface AccessLogConfig {
  readonly enabled: boolean
  /** File to append to; stdout when absent. */
  readonly path?: string | undefined
  /** Default: json. */
  readonly format?: 'json' | 'combined'
  /** Query parameters logged as NAME=REDACTED, lower-cased (default: none). */
  readonly redactQuery?: readonly string[]
}

export interface AccessLogOptions {
  /** Write errors after start (disk full…); they never reach the request path. Default: ignored. */
  readonly onError?: (err: Error) => void
  /** A line dropped: MAX_BUFFERED bytes of lines wait for a destination that takes none. Default: ignored. */
  readonly onDrop?: () => void
}

/**
 * Lines kept for a destination that is not taking them (a stuck log shipper
 * or pipe, a hung file system): past this they are dropped and counted, as
 * HAProxy's log rings do, not kept until memory runs out (a sweep grew RSS by
 * 10 KB a request, each line carrying an 8 KB URL).
 */
export const MAX_BUFFERED = 16 * 1024 * 1024

/** POSIX: a write of at most this many bytes to a pipe is not interleaved with others' (Linux's PIPE_BUF). */
const PIPE_BUF = 4096

/** `.001` … `.999` without trailing zeros ('' for 0): the fraction of a whole number of microseconds, in ms. */
const FRACTIONS: readonly string[] = Array.from({ length: 1000 }, (_, i) => i === 0 ? '' : `.${String(i).padStart(3, '0')}`.replace(/0+$/, ''))

/**
 * ms rounded to the microsecond, as text: what `${Math.round(ms * 1000) / 1000}`
 * gives, from integers and a table (a fractional number's toString cost more
 * than the rest of the line's numbers together).
 */
export function ms3 (ms: number): string {
  const us = Math.round(ms * 1000)
  if (!(us >= 0 && us <= 0x7fffffff)) return String(us / 1000)
  const whole = Math.floor(us / 1000)
  return String(whole) + FRACTIONS[us - whole * 1000]!
}

/** ms → ISO time, remembering the last one: at thousands of requests per second most share a millisecond. */
export function isoClock (): (ms: number) => string {
  let lastMs = -1
  let lastIso = ''
  return (ms) => {
    if (ms !== lastMs) {
      lastMs = ms
      lastIso = new Date(ms).toISOString()
    }
    return lastIso
  }
}

/**
 * `v` as a JSON string, as JSON.stringify writes it; plain printable ASCII
 * (nearly every value: names, addresses, paths) is quoted as it is, without
 * the call.
 */
export function str (v: string): string {
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i)
    if (c < 0x20 || c === 0x22 || c === 0x5c || c > 0x7e) return JSON.stringify(v)
  }
  return '"' + v + '"'
}

const UTF8 = new TextDecoder('utf-8', { fatal: true })

/**
 * A field value as it came on the wire (node:http and node:http2 give each
 * byte as one character, U+0000 to U+00FF), for the JSON log: UTF-8 bytes
 * decoded (`é`, not `Ã©`); anything else left one character per byte.
 */
export function wireText (v: string): string {
  let i = 0
  while (i < v.length && v.charCodeAt(i) < 0x80) i++
  if (i === v.length) return v
  for (let j = i; j < v.length; j++) if (v.charCodeAt(j) > 0xff) return v
  try {
    return UTF8.decode(Buffer.from(v, 'latin1'))
  } catch {
    return v
  }
}

/** `query` with the values of the parameters in `names` (lower-cased) replaced by REDACTED; names compared decoded and case-insensitively. */
export function redactQuery (query: string, names: readonly string[]): string {
  if (names.length === 0 || query === '') return query
  const parts = query.split('&')
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i]!
    const eq = p.indexOf('=')
    const raw = eq < 0 ? p : p.slice(0, eq)
    let name = raw
    try { name = decodeURIComponent(raw.replace(/\+/g, ' ')) } catch { /* logged as sent */ }
    if (names.includes(name.toLowerCase())) parts[i] = raw + '=REDACTED'
  }
  return parts.join('&')
}

/**
 * The JSON line of one record, newline included: the one definition of the
 * log's fields and their order (pino's `level` first; absent fields left out).
 * Whoever needs the fields as an object parses the line.
 */
export function accessLogJson (r: RequestRecord, iso: (ms: number) => string, redact: readonly string[] = []): string {
  const d = r.detail
  let s = `{"level":30,"time":"${iso(r.time)}","listener":${str(r.listener)},"protocol":"${r.protocol}","client":${str(r.clientAddress)},` +
    `"method":${str(r.method)},"host":${str(r.host)},"path":${str(r.path)}`
  if (d !== undefined && d.query !== '') s += `,"query":${str(redactQuery(d.query, redact))}`
  s += `,"status":${r.status},"bytes":${r.bytes}`
  if (d !== undefined) {
    if (d.requestBytes !== undefined) s += `,"request_bytes":${d.requestBytes}`
    if (d.userAgent !== undefined) s += `,"user_agent":${str(wireText(d.userAgent))}`
    if (d.referer !== undefined) s += `,"referer":${str(wireText(d.referer))}`
    s += `,"request_id":${str(d.requestId)}`
    if (d.tlsVersion !== undefined) s += `,"tls_version":${str(d.tlsVersion)}`
    if (d.sni !== undefined) s += `,"sni":${str(d.sni)}`
  }
  if (r.route !== undefined) s += `,"route":${str(r.route)}`
  if (r.backend !== undefined) s += `,"backend":${str(r.backend)}`
  if (r.shard !== undefined) s += `,"shard":${str(r.shard)}`
  if (r.server !== undefined) s += `,"server":${str(r.server)}`
  if (r.role !== undefined) s += `,"role":"${r.role}"`
  if (d?.upstream !== undefined) s += `,"upstream":${str(d.upstream)}`
  if (r.cacheStatus !== undefined) s += `,"cache":${str(r.cacheStatus)}`
  if (r.cacheStored !== undefined) s += `,"stored":${r.cacheStored}`
  if (d?.compression !== undefined) s += `,"compression":"${d.compression}"`
  if (r.errorCode !== undefined) s += `,"error":${str(r.errorCode)}`
  if (r.errorFlag !== undefined) s += `,"flag":${str(r.errorFlag)}`
  if (r.errorDetail !== undefined) s += `,"detail":${str(r.errorDetail)}`
  if (r.upstreamMs !== undefined) s += `,"upstream_ms":${ms3(r.upstreamMs)}`
  if (r.traceId !== undefined) s += `,"trace_id":"${r.traceId}"`
  return `${s},"total_ms":${ms3(r.totalMs)},"retries":${r.retries}}\n`
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']
const pad = (n: number): string => (n < 10 ? '0' + String(n) : String(n))

/** Apache's `%t`: `[10/Oct/2000:13:55:36 +0000]` (UTC). */
export function apacheTime (ms: number): string {
  const d = new Date(ms)
  return `[${pad(d.getUTCDate())}/${MONTHS[d.getUTCMonth()]!}/${d.getUTCFullYear()}:${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} +0000]`
}

/**
 * A value inside `"…"` as Apache writes it: `"` and `\` escaped, control and
 * non-ASCII bytes as \xHH: the bytes that came on the wire (one character
 * each, see wireText), or the UTF-8 of a string of ours.
 */
function quoted (v: string | undefined): string {
  if (v === undefined || v === '') return '"-"'
  let out = ''
  for (const b of Buffer.from(v, /^[\u0000-\u00ff]*$/.test(v) ? 'latin1' : 'utf8')) {
    if (b === 0x22 || b === 0x5c) out += '\\' + String.fromCharCode(b)
    else if (b < 0x20 || b >= 0x7f) out += '\\x' + b.toString(16).padStart(2, '0')
    else out += String.fromCharCode(b)
  }
  return '"' + out + '"'
}

/** One line in Apache's combined format, newline included. */
export function accessLogCombined (r: RequestRecord, redact: readonly string[] = []): string {
  const d = r.detail
  const query = d === undefined || d.query === '' ? '' : '?' + redactQuery(d.query, redact)
  // A request line the parser refused (badRequestRecord): Apache's `"-"`.
  const line = r.method === '' ? undefined : `${r.method} ${r.path}${query} ${d?.httpVersion ?? (r.protocol === 'h2' ? 'HTTP/2.0' : 'HTTP/1.1')}`
  return `${r.clientAddress} - - ${apacheTime(r.time)} ${quoted(line)} ${r.status === 0 ? '-' : r.status} ${r.bytes === 0 ? '-' : r.bytes} ` +
    `${quoted(d?.referer)} ${quoted(d?.userAgent)}\n`
}

/**
 * The access log of the config, or undefined when disabled. The file is
 * opened (for appending) right here, so a bad path fails at startup.
 */
export function createAccessLog (cfg: AccessLogConfig, opts: AccessLogOptions = {}): AccessLog | undefined {
  if (!cfg.enabled) return undefined
  const file = cfg.path
  const open = (): SonicBoomLike => {
    const fd = file === undefined ? 1 : openSync(file, 'a', 0o640)
    // Buffers, not strings: SonicBoom's string mode measures the byte length
    // of everything it has buffered on every write (up to maxWrite, 64 KiB),
    // which cost a cache hit more than its own work; its buffer mode keeps
    // lengths as it goes. Each write holds whole lines. A file opened to
    // append takes any write whole; a pipe or terminal (stdout under a
    // container runtime), shared with the other workers and the app log,
    // only writes of PIPE_BUF bytes or fewer: a longer one can be cut into
    // by another process's.
    const whole = fstatSync(fd).isFile()
    const d = pino.destination({
      dest: fd, sync: false, minLength: whole ? 65536 : 0, maxWrite: whole ? 262144 : PIPE_BUF, maxLength: MAX_BUFFERED, periodicFlush: 1000, contentMode: 'buffer'
    }) as unknown as SonicBoomLike
    d.on('error', onError)
    d.on('drop', onDrop)
    return d
  }
  const onError = opts.onError ?? (() => {})
  const onDrop = opts.onDrop ?? (() => {})
  let dest = open()
  let closed: Promise<void> | undefined
  const line = lineFormat(cfg)
  const ending = (d: SonicBoomLike): Promise<void> => new Promise<void>((resolve) => {
    d.once('close', () => { resolve() })
    d.once('error', () => { resolve() })
    try {
      d.end()
    } catch {
      resolve() // already destroyed (EPIPE)
    }
  })

  return {
    write (r) {
      if (closed === undefined) dest.write(Buffer.from(line(r)))
    },
    reopen () {
      if (file === undefined || closed !== undefined) return undefined
      // The new file first: one that cannot be opened keeps the old one (and says why).
      let next
      try {
        next = open()
      } catch (err) {
        return `${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`
      }
      const old = dest
      dest = next
      void ending(old)
      return undefined
    },
    close () {
      closed ??= ending(dest)
      return closed
    }
  }
}

/** What of SonicBoom the log uses. */
interface SonicBoomLike {
  write (b: Buffer): boolean
  end (): void
  on (event: 'error', fn: (err: Error) => void): unknown
  on (event: 'drop', fn: () => void): unknown
  once (event: 'close' | 'error', fn: () => void): unknown
}

/** The line writer of a config: its format, its redactions. */
function lineFormat (cfg: AccessLogConfig): (r: RequestRecord) => string {
  const redact = cfg.redactQuery ?? []
  if (cfg.format === 'combined') return (r) => accessLogCombined(r, redact)
  const iso = isoClock()
  return (r) => accessLogJson(r, iso, redact)
}

/** An access log into any pino destination (tests, custom sinks): the same lines, one write each; close() only stops writing. */
export function createAccessLogTo (stream: DestinationStream, cfg: Omit<AccessLogConfig, 'enabled'> = {}): AccessLog {
  const line = lineFormat({ enabled: true, ...cfg })
  let closed = false
  return {
    write (r) {
      if (!closed) stream.write(line(r))
    },
    reopen () { return undefined },
    async close () {
      closed = true
    }
  }
}
