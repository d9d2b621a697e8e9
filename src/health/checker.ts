// Active HTTP health checks: a background service beside the proxy (Pingora's
// background.rs), one session per server (Envoy's ActiveHealthCheckSession),
// HAProxy rise/fall verdicts. It only ever calls `server.setCheckStatus`
// (Traefik's StatusSetter); the balancers read `server.healthy`.
//
// Probes go over their own undici Client per server, one request at a time and
// a fresh connection each (as HAProxy does), so they never take a slot of the
// data pool and never reuse a connection the server is about to close. To an
// https:// server they connect exactly as its pool does (same trust, same
// client certificate, same SNI), so a probe fails when real traffic would.
import { Client } from 'undici'
import type { HealthCheckConfig, UpstreamProtocol } from '../config/schema.js'
import { HEALTH_CHECK_PATH, healthCheckRequest, SERVING, SERVING_STATUS, servingStatus } from './grpc-health.js'
import type { CheckResult, Server } from '../upstream/server.js'
import { encodeProxyHeader } from '../listener/proxy-protocol.js'
import { serverConnector, VERSION } from '../upstream/proxy-send.js'
import { tlsFailure, type UpstreamTls } from '../upstream/tls.js'

/** The part of a pino logger health needs. */
export interface HealthLog {
  info (obj: object, msg: string): void
  warn (obj: object, msg: string): void
}

export type TimerHandle = unknown
export type SetTimer = (fn: () => void, ms: number) => TimerHandle
export type ClearTimer = (handle: TimerHandle) => void

export interface HealthTarget {
  readonly server: Server
  readonly config: HealthCheckConfig
  /** The backend's TLS settings, for an https:// server. */
  readonly tls?: UpstreamTls
  /** The backend's protocol (default http1): probes speak it too; `type: grpc` needs h2 or h2c. */
  readonly protocol?: UpstreamProtocol
}

export interface HealthDeps {
  readonly log?: HealthLog
  /** [0, 1), for the start spread and the jitter (default Math.random). */
  readonly random?: () => number
  /**
   * Schedule the sleep between probes (default the global timers). The probe
   * timeout itself always uses real timers: it races real I/O.
   */
  readonly setTimeout?: SetTimer
  readonly clearTimeout?: ClearTimer
}

export interface HealthChecks {
  /** Cancel timers, abort probes in flight, close the probe connections. */
  stop (): Promise<void>
  /** Probe `server` now (or join the probe in flight) and apply the verdict. */
  checkNow (server: Server): Promise<CheckResult>
}

export const USER_AGENT = 'switchyard-health-check'
/** Most of a body read when looking for `expectBody`. */
export const MAX_BODY_BYTES = 64 * 1024

const noLog: HealthLog = { info () {}, warn () {} }

export function startHealthChecks (targets: readonly HealthTarget[], deps: HealthDeps = {}): HealthChecks {
  const env: SessionEnv = {
    log: deps.log ?? noLog,
    random: deps.random ?? Math.random,
    setTimer: deps.setTimeout ?? ((fn, ms) => setTimeout(fn, ms)),
    clearTimer: deps.clearTimeout ?? ((h) => { clearTimeout(h as ReturnType<typeof setTimeout>) })
  }
  const sessions = new Map<Server, Session>()
  for (const target of targets) {
    if (sessions.has(target.server)) continue
    sessions.set(target.server, new Session(target.server, target.config, env, target.tls, target.protocol ?? 'http1'))
  }
  for (const session of sessions.values()) session.start()

  let stopping: Promise<void> | undefined
  return {
    stop () {
      stopping ??= Promise.all([...sessions.values()].map(async (s) => await s.stop())).then(() => {})
      return stopping
    },
    async checkNow (server) {
      const session = sessions.get(server)
      if (session === undefined) throw new Error(`no health check for server ${server.backend}/${server.name}`)
      if (stopping !== undefined) throw new Error('health checks stopped')
      return await session.check()
    }
  }
}

interface SessionEnv {
  readonly log: HealthLog
  readonly random: () => number
  readonly setTimer: SetTimer
  readonly clearTimer: ClearTimer
}

/** One server's probe loop and its rise/fall counters. */
class Session {
  readonly #server: Server
  readonly #config: HealthCheckConfig
  readonly #env: SessionEnv
  readonly #client: Client
  readonly #headers: Record<string, string>
  readonly #expected: string
  /** `type: grpc`: the Health/Check request frame, built once. */
  readonly #grpcRequest: Buffer | undefined
  #timer: TimerHandle | undefined
  #inflight: Promise<CheckResult> | undefined
  #abort: AbortController | undefined
  #stopped = false
  /** Consecutive results against the current verdict (HAProxy rise/fall). */
  #successes = 0
  #failures = 0

  constructor (server: Server, config: HealthCheckConfig, env: SessionEnv, tls: UpstreamTls | undefined, protocol: UpstreamProtocol) {
    this.#server = server
    this.#config = config
    this.#env = env
    const h2 = protocol !== 'http1'
    this.#client = new Client(server.url, {
      pipelining: 1,
      connectTimeout: config.timeout,
      headersTimeout: config.timeout,
      bodyTimeout: config.timeout,
      ...(h2 ? { allowH2: true } : {}),
      // The pool's connectors, with their guard (upstream/connector.ts): a probe's body is read as a stream too.
      // A server that takes a PROXY header gets one speaking for the proxy itself (HAProxy check-send-proxy).
      connect: serverConnector(server.url, config.timeout, tls === undefined || !server.url.startsWith('https:') ? undefined : tls,
        server.sendProxyProtocol === undefined ? undefined : encodeProxyHeader(VERSION[server.sendProxyProtocol]), protocol)
    })
    this.#headers = config.type === 'grpc'
      ? { host: server.hostHeader, 'user-agent': USER_AGENT, 'content-type': 'application/grpc', te: 'trailers' }
      : { host: config.host ?? server.hostHeader, 'user-agent': USER_AGENT }
    this.#grpcRequest = config.type === 'grpc' ? healthCheckRequest(config.service) : undefined
    this.#expected = config.expectStatus.map(([lo, hi]) => lo === hi ? String(lo) : `${lo}-${hi}`).join(',')
  }

  /** First probe after a random part of the interval, so servers are not probed in step. */
  start (): void {
    this.#schedule(this.#env.random() * this.#config.interval)
  }

  #schedule (ms: number): void {
    if (this.#stopped) return
    this.#timer = this.#env.setTimer(() => {
      this.#timer = undefined
      this.check().catch((err: unknown) => {
        // A health listener threw; the loop must go on.
        this.#env.log.warn({ ...this.#fields(describeError(err, this.#config.timeout), 0), err }, 'health check: listener failed')
      }).finally(() => {
        const { interval, jitter } = this.#config
        this.#schedule(interval + this.#env.random() * jitter * interval)
      })
    }, ms)
  }

  /** A probe that fails is a failed result, not a rejection (only a throwing health listener rejects). */
  check (): Promise<CheckResult> {
    this.#inflight ??= this.#probe().then((result) => {
      this.#inflight = undefined
      if (!this.#stopped) this.#apply(result)
      return result
    })
    return this.#inflight
  }

  async stop (): Promise<void> {
    this.#stopped = true
    if (this.#timer !== undefined) {
      this.#env.clearTimer(this.#timer)
      this.#timer = undefined
    }
    this.#abort?.abort(new Error('health checks stopped'))
    await this.#inflight?.catch(() => {})
    await this.#client.destroy()
  }

  async #probe (): Promise<CheckResult> {
    const config = this.#config
    const abort = new AbortController()
    this.#abort = abort
    let timedOut = false
    const timer = setTimeout(() => {
      timedOut = true
      abort.abort(new Error('health check timeout'))
    }, config.timeout)
    // The status is kept as soon as it arrives: a body that fails afterwards still reports it.
    const seen: Seen = { status: undefined }
    let reason: string
    try {
      reason = this.#grpcRequest === undefined
        ? await this.#httpProbe(abort.signal, seen)
        : await this.#grpcProbe(this.#grpcRequest, abort.signal, seen)
    } catch (err) {
      reason = timedOut ? `timeout after ${config.timeout}ms` : this.#stopped ? 'stopped' : describeError(err, config.timeout)
    } finally {
      clearTimeout(timer)
      this.#abort = undefined
    }
    const ok = reason === 'ok'
    const at = performance.now()
    const status = seen.status
    return status === undefined ? { ok, at, reason } : { ok, at, status, reason }
  }

  /** A request to `path`, judged by its status (and body). */
  async #httpProbe (signal: AbortSignal, seen: Seen): Promise<string> {
    const config = this.#config
    const res = await this.#client.request({ path: config.path, method: config.method, headers: this.#headers, signal, reset: true })
    const status = seen.status = res.statusCode
    if (!this.#statusOk(status)) {
      await res.body.dump()
      return `status ${status} not in ${this.#expected}`
    }
    if (config.expectBody !== undefined && config.method !== 'HEAD') {
      const found = await bodyContains(res.body, config.expectBody)
      return found ? 'ok' : `body missing ${JSON.stringify(config.expectBody)}`
    }
    await res.body.dump()
    return 'ok'
  }

  /**
   * grpc.health.v1.Health/Check: up only when the call succeeds (HTTP 200,
   * grpc-status 0) and says SERVING. A status in the head is a Trailers-Only
   * answer (an error, such as NOT_FOUND for a service the server does not know).
   */
  async #grpcProbe (frame: Buffer, signal: AbortSignal, seen: Seen): Promise<string> {
    const res = await grpcExchange(this.#client, this.#headers, frame, signal, seen)
    if (res.status !== 200) return `status ${res.status}, not a gRPC answer`
    const code = res.fields.get('grpc-status')
    if (code === undefined) return 'no grpc-status'
    // The spec's grpc-status is a decimal code; anything else is shown as what it is, not copied (it reaches /status and the log).
    if (!/^\d{1,3}$/.test(code)) return 'grpc-status not a decimal code'
    if (code !== '0') {
      const message = res.fields.get('grpc-message')
      return `grpc-status ${code}${message === undefined || message === '' ? '' : ` (${decodeGrpcMessage(message)})`}`
    }
    const serving = servingStatus(res.body)
    if (typeof serving === 'string') return serving
    return serving === SERVING ? 'ok' : SERVING_STATUS[serving] ?? `status ${serving}`
  }

  #statusOk (status: number): boolean {
    const ranges = this.#config.expectStatus
    for (let i = 0; i < ranges.length; i++) {
      const range = ranges[i]
      if (range !== undefined && status >= range[0] && status <= range[1]) return true
    }
    return false
  }

  /** HAProxy rise/fall over consecutive results; each change is logged once. */
  #apply (result: CheckResult): void {
    const server = this.#server
    server.lastCheck = result
    if (result.ok) {
      this.#failures = 0
      this.#successes++
      if (!server.checkUp && this.#successes >= this.#config.rise) {
        server.setCheckStatus(true, 'health check passed')
        this.#env.log.info(this.#fields(result.reason, this.#successes), 'health check: server up')
      }
    } else {
      this.#successes = 0
      this.#failures++
      if (server.checkUp && this.#failures >= this.#config.fall) {
        server.setCheckStatus(false, result.reason)
        this.#env.log.warn(this.#fields(result.reason, this.#failures), 'health check: server down')
      }
    }
  }

  #fields (reason: string, consecutive: number): object {
    const s = this.#server
    return { backend: s.backend, shard: s.shard, server: s.name, reason, consecutive }
  }
}

/** Reads up to MAX_BODY_BYTES looking for `needle`, then drops the rest. */
async function bodyContains (body: AsyncIterable<Buffer> & { destroy (): unknown }, needle: string): Promise<boolean> {
  const want = Buffer.from(needle)
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of body) {
    chunks.push(chunk)
    size += chunk.length
    if (size >= MAX_BODY_BYTES) break
  }
  body.destroy()
  return Buffer.concat(chunks, Math.min(size, MAX_BODY_BYTES)).includes(want)
}

/**
 * grpc-message is percent-encoded (gRPC over HTTP/2 spec); shown short, as
 * sent when it does not decode, without the control and bidi-override
 * characters decoding can give (it reaches /status, the dashboard and the log).
 */
function decodeGrpcMessage (m: string): string {
  let text = m
  try {
    text = decodeURIComponent(m)
  } catch { /* not percent-encoded: shown as sent */ }
  return text.replace(/[\p{Cc}\u200e\u200f\u202a-\u202e\u2066-\u2069]/gu, '\ufffd').slice(0, 80)
}

/** What a probe learnt before it ended (see #probe). */
interface Seen {
  status: number | undefined
}

interface GrpcAnswer {
  readonly status: number
  /** Head and trailer fields by lower-case name (a Trailers-Only answer has its status in the head). */
  readonly fields: Map<string, string>
  /** Up to MAX_BODY_BYTES. */
  readonly body: Buffer
}

/**
 * One gRPC call on `client` (POST `frame` to the health check path). Through
 * dispatch(), not request(): undici's request() drops the trailers its h2
 * client hands over (an object, where its parser expects flat pairs), and
 * the status is in them.
 */
function grpcExchange (client: Client, headers: Record<string, string>, frame: Buffer, signal: AbortSignal, seen: Seen): Promise<GrpcAnswer> {
  return new Promise((resolve, reject) => {
    let status = 0
    const fields = new Map<string, string>()
    const chunks: Buffer[] = []
    let size = 0
    const add = (raw: Buffer[] | Record<string, string | string[]> | null): void => {
      if (raw === null) return
      if (Array.isArray(raw)) {
        for (let i = 0; i + 1 < raw.length; i += 2) fields.set(raw[i]!.toString('latin1').toLowerCase(), raw[i + 1]!.toString('latin1'))
      } else {
        for (const name in raw) fields.set(name.toLowerCase(), String(raw[name]))
      }
    }
    let abort: ((err?: Error) => void) | undefined
    const onAbort = (): void => { abort?.(signal.reason as Error) }
    signal.addEventListener('abort', onAbort, { once: true })
    const settle = (): void => { signal.removeEventListener('abort', onAbort) }
    client.dispatch({ path: HEALTH_CHECK_PATH, method: 'POST', headers, body: frame }, {
      onConnect (a: (err?: Error) => void) {
        abort = a
        if (signal.aborted) a(signal.reason as Error)
      },
      onHeaders (statusCode: number, raw: Buffer[]) {
        status = seen.status = statusCode
        add(raw)
        return true
      },
      onData (chunk: Buffer) {
        if (size < MAX_BODY_BYTES) chunks.push(chunk)
        size += chunk.length
        return true
      },
      onComplete (trailers: Buffer[] | Record<string, string | string[]> | null) {
        settle()
        add(trailers)
        resolve({ status, fields, body: Buffer.concat(chunks) })
      },
      onError (err: Error) {
        settle()
        reject(err)
      }
    } as unknown as Parameters<Client['dispatch']>[1])
  })
}

/** Short, specific reasons for transport failures. */
export function describeError (err: unknown, timeout: number): string {
  const code = errorCode(err)
  switch (code) {
    case 'ECONNREFUSED': return 'connect refused'
    case 'ECONNRESET':
    case 'EPIPE':
    case 'UND_ERR_SOCKET': return 'connection reset'
    case 'UND_ERR_CONNECT_TIMEOUT':
    case 'ETIMEDOUT': return `connect timeout after ${timeout}ms`
    case 'UND_ERR_HEADERS_TIMEOUT':
    case 'UND_ERR_BODY_TIMEOUT': return `timeout after ${timeout}ms`
    case 'ENOTFOUND':
    case 'EAI_AGAIN': return 'dns lookup failed'
    case 'EHOSTUNREACH':
    case 'ENETUNREACH': return 'host unreachable'
    case 'HPE_INVALID_CONSTANT':
    case 'UND_ERR_INFO':
    case 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH': return 'invalid response'
    case undefined: break
    default:
      if (tlsFailure(code)) return `tls error ${code}`
      if (code.startsWith('HPE_')) return 'invalid response'
      return `error ${code}`
  }
  return err instanceof Error ? err.message.slice(0, 80) : 'error'
}

function errorCode (err: unknown): string | undefined {
  for (let e = err, depth = 0; e !== null && typeof e === 'object' && depth < 3; depth++) {
    const code = (e as { code?: unknown }).code
    if (typeof code === 'string') return code
    // Happy eyeballs (autoSelectFamily) reports every address tried.
    e = e instanceof AggregateError ? e.errors[0] : (e as { cause?: unknown }).cause
  }
  return undefined
}
