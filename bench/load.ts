// The load generator: autocannon's programmatic API, run in this process.
//
// autocannon keeps its latency histogram in whole milliseconds, which is too
// coarse on loopback (most responses take 1-3 ms). So we also listen to its
// per-response event, whose latency is fractional, and record it into our own
// HDR histogram in microseconds. The table uses that one; autocannon's own
// percentiles are kept in the JSON for reference.

import { createRequire } from 'node:module'
import type { EventEmitter } from 'node:events'
import * as hdr from 'hdr-histogram-js'

/** The subset of autocannon's result we read. */
interface AutocannonResult {
  readonly duration: number
  readonly errors: number
  readonly timeouts: number
  readonly non2xx: number
  readonly resets: number
  readonly '2xx': number
  readonly statusCodeStats: Readonly<Record<string, { count: number }>>
  readonly requests: { readonly total: number, readonly average: number, readonly sent: number }
  readonly latency: Readonly<Record<string, number>>
}

interface AutocannonOptions {
  readonly url: string
  readonly connections: number
  readonly duration: number
  readonly pipelining: number
  readonly timeout: number
}

type Autocannon = (opts: AutocannonOptions) => EventEmitter & PromiseLike<AutocannonResult>

const require = createRequire(import.meta.url)
const autocannon = require('autocannon') as Autocannon

export interface LoadSettings {
  readonly connections: number
  readonly durationSec: number
  readonly pipelining: number
}

export interface LoadResult {
  readonly durationSec: number
  readonly requests: number
  readonly reqPerSec: number
  readonly errors: number
  readonly timeouts: number
  readonly non2xx: number
  readonly statusCodes: Readonly<Record<string, number>>
  /** From our microsecond HDR histogram, in ms. */
  readonly latencyMs: { readonly p50: number, readonly p90: number, readonly p99: number, readonly p99_9: number, readonly mean: number, readonly max: number }
  /** autocannon's own (whole-millisecond) percentiles, in ms; null from wrk or h2load. */
  readonly autocannonLatencyMs: { readonly p50: number, readonly p99: number, readonly p99_9: number } | null
}

export async function runLoad (url: string, settings: LoadSettings): Promise<LoadResult> {
  const histogram = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: 3 })
  try {
    const run = autocannon({
      url,
      connections: settings.connections,
      duration: settings.durationSec,
      pipelining: settings.pipelining,
      timeout: 10
    })
    run.on('response', (_client: unknown, _status: number, _bytes: number, responseTimeMs: number) => {
      histogram.recordValue(Math.max(1, Math.round(responseTimeMs * 1000)))
    })
    const r = await run
    const ms = (us: number): number => us / 1000
    const statusCodes: Record<string, number> = {}
    for (const [code, { count }] of Object.entries(r.statusCodeStats)) statusCodes[code] = count
    return {
      durationSec: r.duration,
      requests: r.requests.total,
      reqPerSec: r.duration > 0 ? r.requests.total / r.duration : 0,
      errors: r.errors,
      timeouts: r.timeouts,
      non2xx: r.non2xx,
      statusCodes,
      latencyMs: {
        p50: ms(histogram.getValueAtPercentile(50)),
        p90: ms(histogram.getValueAtPercentile(90)),
        p99: ms(histogram.getValueAtPercentile(99)),
        p99_9: ms(histogram.getValueAtPercentile(99.9)),
        mean: ms(histogram.mean),
        max: ms(histogram.maxValue)
      },
      autocannonLatencyMs: { p50: r.latency.p50 ?? NaN, p99: r.latency.p99 ?? NaN, p99_9: r.latency.p99_9 ?? NaN }
    }
  } finally {
    histogram.destroy()
  }
}
