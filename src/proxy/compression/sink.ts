// The compressor between upstream and the next sink (the cache's, then the
// client's): so the cache stores the compressed variant and later hits are
// served without compressing again. Streams through node:zlib, never
// buffering a whole body; backpressure from the client and from zlib both
// pause the upstream.
import * as zlib from 'node:zlib'
import type { Transform } from 'node:stream'
import type { CompressionAlgorithm } from '../../config/schema.js'
import type { ErrorKind } from '../../errors.js'
import type { InterimHead } from '../../fields.js'
import { combinedValue } from '../../fields.js'
import type { ResponseSink } from '../../upstream/pool.js'
import { compressedHead, compressedTrailers, mediaType, notModifiedHead, responseDecision, withVary, type CompiledCompression } from './decide.js'
import type { Coding } from './negotiate.js'

/** Where the sink's flow control reaches: the client's writes and the upstream exchange. */
export interface CompressFlow {
  /** A write to the client returned false; its 'drain' resumes the upstream. */
  readonly awaitingDrain: boolean
  /** Told the coding this answer is compressed with, for the access log. */
  compressedWith?: string | undefined
  /** Let the upstream exchange send more. */
  resumeUpstream (): void
}

type ZstdFactory = (opts: { params: Record<number, number> }) => Transform
const createZstd = (zlib as unknown as { createZstdCompress?: ZstdFactory }).createZstdCompress

/**
 * Brotli's window, log2: 256 KiB, Envoy's default (ngx_brotli's is 512 KiB).
 * Left to the size hint, a large body got a 4 MiB window and a stream of
 * about 9 MiB, held for as long as its client takes to read; with this
 * window and the hint capped by it, about 1.3 MiB (quality 4).
 */
const BROTLI_WINDOW_BITS = 18

/**
 * Live brotli and zstd streams of one process: each holds megabytes (window,
 * hash tables) until its client has read the answer, and a client that reads
 * nothing holds it until timeouts.clientSend. Past `max`, answers go out
 * uncompressed (with Vary, as any other that is not compressed), so memory
 * stays bounded whatever the number of slow readers; gzip (about 256 KiB a
 * stream) is not counted.
 */
export class CompressorBudget {
  readonly max: number
  #live = 0

  constructor (max: number) {
    this.max = max
  }

  get live (): number { return this.#live }

  take (): boolean {
    if (this.#live >= this.max) return false
    this.#live++
    return true
  }

  give (): void {
    this.#live--
  }
}

/** Brotli and zstd streams a process keeps at once (CompressorBudget): about 130 MiB of them at most. */
export const MAX_HEAVY_COMPRESSORS = 64

/** A compressor for `coding`; `sizeHint`: the body length when known (brotli sizes its blocks by it). */
export function compressor (coding: CompressionAlgorithm, level: CompiledCompression['config']['level'], sizeHint: number | undefined): Transform {
  if (coding === 'gzip') return zlib.createGzip({ level: level.gzip })
  if (coding === 'br') {
    const params: Record<number, number> = {
      [zlib.constants.BROTLI_PARAM_QUALITY]: level.br,
      [zlib.constants.BROTLI_PARAM_MODE]: zlib.constants.BROTLI_MODE_TEXT,
      [zlib.constants.BROTLI_PARAM_LGWIN]: BROTLI_WINDOW_BITS
    }
    // A hint past the window (quality 4, a 4 MB body) took each stream from 1.3 MiB to 4.8 MiB.
    if (sizeHint !== undefined) params[zlib.constants.BROTLI_PARAM_SIZE_HINT] = Math.min(sizeHint, 1 << BROTLI_WINDOW_BITS)
    return zlib.createBrotliCompress({ params })
  }
  const zc = (zlib.constants as unknown as Record<string, number>).ZSTD_c_compressionLevel!
  return createZstd!({ params: { [zc]: level.zstd } })
}

/** What a per-chunk flush is called with: everything written so far goes out now. */
function flushKind (coding: CompressionAlgorithm): number | undefined {
  if (coding === 'gzip') return zlib.constants.Z_SYNC_FLUSH
  return undefined // brotli and zstd: their own flush default
}

/**
 * The longest compressed bytes wait in the compressor once their source
 * arrived: a body that streams slowly (NDJSON, long polling, progress lines)
 * reaches the client in time, not when the compressor's buffer fills or the
 * stream ends, at the cost of at most one flush per this long.
 */
export const FLUSH_AFTER_MS = 100

export class CompressSink implements ResponseSink {
  readonly #inner: ResponseSink
  readonly #c: CompiledCompression
  readonly #coding: Coding
  readonly #method: string
  readonly #flow: CompressFlow
  #z: Transform | undefined
  /** text/event-stream (listed by name): each upstream chunk goes out at once, flushed with this kind. */
  #flushEach = false
  #flushKind: number | undefined
  /** Armed while written input may still sit in the compressor. */
  #flushTimer: NodeJS.Timeout | undefined
  #failed = false

  readonly #budget: CompressorBudget

  constructor (inner: ResponseSink, c: CompiledCompression, coding: Coding, method: string, flow: CompressFlow, budget: CompressorBudget) {
    this.#inner = inner
    this.#c = c
    this.#coding = coding
    this.#method = method
    this.#flow = flow
    this.#budget = budget
  }

  responseInterim (status: 102 | 103, head: InterimHead): void {
    this.#inner.responseInterim(status, head)
  }

  responseHead (status: number, statusText: string, headers: string[]): boolean {
    let d = responseDecision(this.#c, this.#coding, status, headers)
    const heavy = d.coding !== undefined && d.coding !== 'gzip' && this.#method !== 'HEAD'
    if (heavy && !this.#budget.take()) d = { coding: undefined, vary: true, why: `not compressed: ${this.#budget.max} brotli/zstd streams live` }
    if (d.coding === undefined) {
      if (status === 304) headers = notModifiedHead(headers, this.#coding)
      else if (d.vary) headers = withVary(headers)
      return this.#inner.responseHead(status, statusText, headers)
    }
    const length = Number(combinedValue(headers, 'content-length') ?? NaN)
    const head = compressedHead(headers, d.coding)
    this.#flow.compressedWith = d.coding
    // HEAD: the fields a GET would get, and no body to compress.
    if (this.#method !== 'HEAD') {
      const z = this.#z = compressor(d.coding, this.#c.config.level, Number.isFinite(length) ? length : undefined)
      if (heavy) z.once('close', () => this.#budget.give()) // ended and read, or destroyed
      this.#flushEach = mediaType(combinedValue(headers, 'content-type')) === 'text/event-stream'
      this.#flushKind = flushKind(d.coding)
      z.on('data', (out: Buffer) => this.#out(out))
      z.on('drain', () => { if (!this.#flow.awaitingDrain) this.#flow.resumeUpstream() })
      z.on('error', (err: Error) => this.#fail(err))
    }
    return this.#inner.responseHead(status, statusText, head)
  }

  responseData (chunk: Buffer): boolean {
    const z = this.#z
    if (z === undefined) return this.#inner.responseData(chunk)
    if (this.#failed) return false
    const ok = z.write(chunk)
    if (this.#flushEach) this.flush()
    else this.#flushTimer ??= setTimeout(flushLater, FLUSH_AFTER_MS, this)
    // The client's backpressure shows once zlib has handed it output: its drain resumes the upstream.
    return ok && !this.#flow.awaitingDrain
  }

  responseEnd (trailers: Buffer[]): void {
    const z = this.#z
    if (z === undefined) return this.#inner.responseEnd(trailers)
    if (this.#failed) return
    this.#cancelFlush()
    z.once('end', () => {
      if (!this.#failed) this.#inner.responseEnd(compressedTrailers(trailers))
    })
    z.end()
    // 'end' comes only once the output is read: it is, by the 'data' listener.
  }

  responseError (kind: ErrorKind, err: Error): void {
    this.#stop()
    this.#inner.responseError(kind, err)
  }

  fault (err: unknown): void {
    this.#stop()
    this.#inner.fault(err)
  }

  /** What was written so far goes out now (the timer's, or each chunk's for text/event-stream). */
  flush (): void {
    this.#flushTimer = undefined
    const z = this.#z
    if (z === undefined || this.#failed || z.destroyed || z.writableEnded) return
    (z as unknown as { flush (kind?: number): void }).flush(this.#flushKind)
  }

  #cancelFlush (): void {
    if (this.#flushTimer !== undefined) clearTimeout(this.#flushTimer)
    this.#flushTimer = undefined
  }

  #out (out: Buffer): void {
    if (this.#failed) return
    try {
      this.#inner.responseData(out)
    } catch (err) {
      this.#fail(err)
    }
  }

  #fail (err: unknown): void {
    if (this.#failed) return
    this.#stop()
    this.#inner.fault(err)
  }

  #stop (): void {
    this.#cancelFlush()
    this.#failed = true
    const z = this.#z
    if (z !== undefined && !z.destroyed) z.destroy()
  }
}

function flushLater (sink: CompressSink): void { sink.flush() }
