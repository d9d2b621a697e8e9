// The access log: one JSON line per finished request, written to pino's
// asynchronous SonicBoom destination (lines are buffered up to 16 KB and
// written off the hot path; a timer flushes a quiet log every second) and
// flushed by close(). The line has a fixed shape, so it is built directly
// (accessLogJson) rather than through pino's generic serializer, which cost
// ~4% of a core at 16k requests/s; the output is the same pino-style line. The line's `time` is the request's start, in ISO form;
// besides it and pino's `level`, the line carries only request fields
// (absent ones are left out):
//   {"level":30,"time":"2024-05-01T12:00:00.000Z","listener":"https","protocol":"h2",
//    "client":"203.0.113.7","method":"GET","host":"api.example.com","path":"/v1/users?id=7",
//    "status":200,"bytes":512,"route":"api","backend":"api","shard":"a","server":"a-1",
//    "cache":"miss","upstream_ms":11.204,"request_id":"4bf92f3577b34da6a3ce929d0e0e4736",
//    "trace_id":"0af7651916cd43dd8448eb211c80319c","total_ms":12.871,"retries":0}
// Failed requests add "error" (the stable code, e.g. LB_ERR_UPSTREAM_TIMEOUT), "flag" (UT)
// and, when known, "detail" (why: e.g. `malformed response head: etag`).
import { openSync } from 'node:fs'
import { pino, type DestinationStream } from 'pino'
import type { RequestRecord } from '../admin/metrics.js'

export interface AccessLog {
  write (r: RequestRecord): void
  /** Flush what is buffered and close the destination (stdout stays open). Idempotent. */
  close (): Promise<void>
}

export interface AccessLogConfig {
  readonly enabled: boolean
  /** File to append to; stdout when absent. */
  readonly path?: string | undefined
}

export interface AccessLogOptions {
  /** Write errors after start (disk full…); they never reach the request path. Default: ignored. */
  readonly onError?: (err: Error) => void
}

/** ms rounded to the microsecond. */
const ms3 = (ms: number): number => Math.round(ms * 1000) / 1000

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

const str = JSON.stringify

/**
 * The JSON line of one record, newline included: the one definition of the
 * log's fields and their order (pino's `level` first; absent fields left out).
 * Whoever needs the fields as an object parses the line.
 */
export function accessLogJson (r: RequestRecord, iso: (ms: number) => string): string {
  let s = `{"level":30,"time":"${iso(r.time)}","listener":${str(r.listener)},"protocol":"${r.protocol}","client":${str(r.clientAddress)},` +
    `"method":${str(r.method)},"host":${str(r.host)},"path":${str(r.path)},"status":${r.status},"bytes":${r.bytes}`
  if (r.route !== undefined) s += `,"route":${str(r.route)}`
  if (r.backend !== undefined) s += `,"backend":${str(r.backend)}`
  if (r.shard !== undefined) s += `,"shard":${str(r.shard)}`
  if (r.server !== undefined) s += `,"server":${str(r.server)}`
  if (r.role !== undefined) s += `,"role":"${r.role}"`
  if (r.cacheStatus !== undefined) s += `,"cache":${str(r.cacheStatus)}`
  if (r.errorCode !== undefined) s += `,"error":${str(r.errorCode)}`
  if (r.errorFlag !== undefined) s += `,"flag":${str(r.errorFlag)}`
  if (r.errorDetail !== undefined) s += `,"detail":${str(r.errorDetail)}`
  if (r.upstreamMs !== undefined) s += `,"upstream_ms":${ms3(r.upstreamMs)}`
  if (r.requestId !== undefined) s += `,"request_id":${str(r.requestId)}`
  if (r.traceId !== undefined) s += `,"trace_id":"${r.traceId}"`
  return `${s},"total_ms":${ms3(r.totalMs)},"retries":${r.retries}}\n`
}

/**
 * The access log of the config, or undefined when disabled. The file is
 * opened (for appending) right here, so a bad path fails at startup.
 */
export function createAccessLog (cfg: AccessLogConfig, opts: AccessLogOptions = {}): AccessLog | undefined {
  if (!cfg.enabled) return undefined
  const fd = cfg.path === undefined ? 1 : openSync(cfg.path, 'a', 0o640)
  const dest = pino.destination({ dest: fd, sync: false, minLength: 16000, maxWrite: 65536, periodicFlush: 1000 })
  const onError = opts.onError ?? (() => {})
  dest.on('error', onError)
  let closed: Promise<void> | undefined
  const iso = isoClock()

  return {
    write (r) {
      if (closed === undefined) dest.write(accessLogJson(r, iso))
    },
    close () {
      closed ??= new Promise<void>((resolve) => {
        dest.once('close', () => { resolve() })
        dest.once('error', () => { resolve() })
        try {
          dest.end()
        } catch {
          resolve() // already destroyed (EPIPE)
        }
      })
      return closed
    }
  }
}

/** An access log into any pino destination (tests, custom sinks): the same lines, one write each; close() only stops writing. */
export function createAccessLogTo (stream: DestinationStream): AccessLog {
  const iso = isoClock()
  let closed = false
  return {
    write (r) {
      if (!closed) stream.write(accessLogJson(r, iso))
    },
    async close () {
      closed = true
    }
  }
}
