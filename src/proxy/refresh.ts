// A stale-while-revalidate refresh: an upstream exchange no client waits for.
// It is not a request (the request counters, the dashboard's rates and the
// cache outcomes leave it out), but a server did the work, so it is recorded
// when it ends: in the per-server and upstream latency families, in the
// upstream errors, and as an access-log line whose cache field is `refresh`.
// (nginx logs its background updates only as subrequests, with
// log_subrequest on; Varnish's backend fetches are their own log records.)
import type { ErrorKind } from '../errors.js'
import type { InterimHead } from '../fields.js'
import type { ResponseSink } from '../upstream/pool.js'
import type { Server } from '../upstream/server.js'

/** What one refresh did, read when it ends. */
export interface RefreshExchange {
  /** Date.now() and performance.now() when it started. */
  readonly startWall: number
  readonly start: number
  /** The server it went to (undefined: none could be picked). */
  readonly server: Server | undefined
  /** The upstream's status, 0 when no head arrived. */
  readonly status: number
  /** Response body bytes received. */
  readonly bytes: number
  /** Dispatch to response head, ms; undefined when no head arrived. */
  readonly upstreamMs: number | undefined
  readonly error: ErrorKind | undefined
}

/** In front of the refresh's sink: notes what the exchange does, then reports it once when it ends. */
export class RefreshSink implements ResponseSink, RefreshExchange {
  readonly startWall = Date.now()
  readonly start = performance.now()
  server: Server | undefined
  status = 0
  bytes = 0
  upstreamMs: number | undefined
  error: ErrorKind | undefined
  readonly #inner: ResponseSink
  #done: ((x: RefreshExchange) => void) | undefined

  constructor (inner: ResponseSink, done: (x: RefreshExchange) => void) {
    this.#inner = inner
    this.#done = done
  }

  responseInterim (status: 102 | 103, head: InterimHead): void {
    this.#inner.responseInterim(status, head)
  }

  responseHead (status: number, statusText: string, headers: string[]): boolean {
    this.status = status
    this.upstreamMs = performance.now() - this.start
    return this.#inner.responseHead(status, statusText, headers)
  }

  responseData (chunk: Buffer): boolean {
    this.bytes += chunk.length
    return this.#inner.responseData(chunk)
  }

  responseEnd (trailers: Buffer[]): void {
    try {
      this.#inner.responseEnd(trailers)
    } finally {
      this.#finish()
    }
  }

  responseError (kind: ErrorKind, err: Error): void {
    this.error = kind
    try {
      this.#inner.responseError(kind, err)
    } finally {
      this.#finish()
    }
  }

  fault (err: unknown): void {
    try {
      this.#inner.fault(err)
    } finally {
      this.#finish()
    }
  }

  #finish (): void {
    const done = this.#done
    this.#done = undefined
    done?.(this)
  }
}
