// One span per finished request, exported over OTLP/HTTP as JSON
// (opentelemetry-proto's JSON mapping: hex ids, int64 as decimal strings).
// The request path only pushes into a bounded queue; a timer (or a full
// batch) sends batches, one at a time, each bounded by `timeout`. A slow or
// dead collector costs dropped spans, counted, never a waiting request.
import { request } from 'undici'
import { isHttpMethod } from '../config/forms.js'
import type { OtlpConfig } from '../config/schema.js'
import type { RequestRecord } from '../admin/metrics/types.js'
import type { RequestTrace } from './context.js'

export interface SpanStats {
  /** Spans the collector accepted. */
  exported: number
  /** Spans dropped because the queue was full. */
  dropped: number
  /** Spans of batches that failed (collector down, slow, or answering an error). */
  failed: number
  /** Spans waiting. */
  queued: number
}

interface Attr { key: string, value: { stringValue: string } | { intValue: string } }

interface Span {
  traceId: string
  spanId: string
  parentSpanId?: string
  name: string
  kind: 2
  startTimeUnixNano: string
  endTimeUnixNano: string
  attributes: Attr[]
  status: { code: 0 | 2 }
}

/** ms since the epoch (fractional) as integer nanoseconds, in a string: Number cannot hold them exactly. */
export function unixNanos (ms: number): string {
  const whole = Math.floor(ms)
  const ns = Math.round((ms - whole) * 1e6)
  return ns >= 1e6 ? `${whole + 1}000000` : `${whole}${String(ns).padStart(6, '0')}`
}

const str = (key: string, v: string): Attr => ({ key, value: { stringValue: v } })
const int = (key: string, v: number): Attr => ({ key, value: { intValue: String(v) } })

/** The span of one request: the proxy hop, a SERVER span (OpenTelemetry HTTP semantic conventions). */
export function requestSpan (r: RequestRecord, t: RequestTrace): Span {
  // A method of the client's own making (h2 takes any token) would give a span
  // name, and a series in span metrics, per request: OpenTelemetry's
  // conventions record it as _OTHER, the name as HTTP, the original apart.
  const known = isHttpMethod(r.method)
  const method = known ? r.method : 'HTTP'
  const attributes: Attr[] = [
    str('http.request.method', known ? r.method : '_OTHER'),
    str('url.path', r.path),
    str('server.address', r.host),
    str('client.address', r.clientAddress),
    str('network.protocol.version', r.protocol === 'h2' ? '2' : '1.1'),
    int('http.response.status_code', r.status),
    int('http.response.body.size', r.bytes)
  ]
  if (!known) attributes.push(str('http.request.method_original', r.method))
  if (r.route !== undefined) attributes.push(str('http.route', r.route), str('switchyard.route', r.route))
  if (r.backend !== undefined) attributes.push(str('switchyard.backend', r.backend))
  if (r.shard !== undefined) attributes.push(str('switchyard.shard', r.shard))
  if (r.server !== undefined) attributes.push(str('switchyard.server', r.server))
  if (r.cacheStatus !== undefined) attributes.push(str('switchyard.cache', r.cacheStatus))
  if (r.errorCode !== undefined) attributes.push(str('error.type', r.errorCode))
  if (t.requestId !== undefined) attributes.push(str('switchyard.request_id', t.requestId))
  if (r.retries > 0) attributes.push(int('switchyard.retries', r.retries))
  return {
    traceId: t.traceId,
    spanId: t.spanId,
    ...(t.parentId === undefined ? {} : { parentSpanId: t.parentId }),
    name: r.route === undefined ? method : `${method} ${r.route}`,
    kind: 2,
    startTimeUnixNano: unixNanos(r.time),
    endTimeUnixNano: unixNanos(r.time + r.totalMs),
    attributes,
    // OpenTelemetry: a server span is an error for 5xx (and when no answer went out), not for 4xx.
    status: { code: r.status >= 500 || r.status === 0 ? 2 : 0 }
  }
}

export class SpanExporter {
  readonly config: OtlpConfig
  readonly #queue: Span[] = []
  readonly #timer: NodeJS.Timeout
  readonly #body: { resourceSpans: Array<{ resource: object, scopeSpans: Array<{ scope: object, spans: Span[] }> }> }
  #sending: Promise<void> | undefined
  readonly stats: SpanStats = { exported: 0, dropped: 0, failed: 0, queued: 0 }
  /** Told once per failed batch (the caller rate-limits its log). */
  readonly #onFailure: (err: Error) => void

  constructor (config: OtlpConfig, onFailure: (err: Error) => void = () => {}) {
    this.config = config
    this.#onFailure = onFailure
    this.#body = {
      resourceSpans: [{
        resource: { attributes: [str('service.name', config.serviceName)] },
        scopeSpans: [{ scope: { name: 'switchyard' }, spans: [] }]
      }]
    }
    this.#timer = setInterval(() => { void this.flush() }, config.flushInterval)
    this.#timer.unref()
  }

  /** A finished request's span: queued, or dropped when the queue is full. Never blocks. */
  push (span: Span): void {
    if (this.#queue.length >= this.config.maxQueue) {
      this.stats.dropped++
      return
    }
    this.#queue.push(span)
    this.stats.queued = this.#queue.length
    if (this.#queue.length >= this.config.maxBatch && this.#sending === undefined) void this.flush()
  }

  /** Send what is queued, a batch at a time; resolves when the queue is empty or a batch failed. */
  flush (): Promise<void> {
    this.#sending ??= this.#drain().finally(() => { this.#sending = undefined })
    return this.#sending
  }

  /** Stop the timer and send what is left (bounded by `timeout` per batch). */
  async close (): Promise<void> {
    clearInterval(this.#timer)
    await this.#sending
    await this.flush()
  }

  async #drain (): Promise<void> {
    while (this.#queue.length > 0) {
      const batch = this.#queue.splice(0, this.config.maxBatch)
      this.stats.queued = this.#queue.length
      this.#body.resourceSpans[0]!.scopeSpans[0]!.spans = batch
      const payload = JSON.stringify(this.#body)
      this.#body.resourceSpans[0]!.scopeSpans[0]!.spans = []
      try {
        const res = await request(this.config.endpoint, {
          method: 'POST',
          headers: { ...this.config.headers, 'content-type': 'application/json' },
          body: payload,
          signal: AbortSignal.timeout(this.config.timeout)
        })
        await res.body.dump()
        if (res.statusCode < 200 || res.statusCode > 299) throw new Error(`collector answered ${res.statusCode}`)
        this.stats.exported += batch.length
      } catch (err) {
        this.stats.failed += batch.length
        this.#onFailure(err instanceof Error ? err : new Error(String(err)))
        return // the rest waits for the next tick: a down collector gets one request per interval
      }
    }
  }
}
