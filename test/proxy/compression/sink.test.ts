// CompressSink's budget of brotli/zstd streams: a real zlib stream per answer,
// a recording sink for the client. Past the budget an answer goes out
// uncompressed (with Vary); a stream that ends gives its place back.
import { brotliDecompressSync } from 'node:zlib'
import t from 'tap'
import { DEFAULTS } from '../../../src/config/schema.js'
import { compileCompression } from '../../../src/proxy/compression/decide.js'
import { CompressorBudget, CompressSink } from '../../../src/proxy/compression/sink.js'
import type { ResponseSink } from '../../../src/upstream/pool.js'

const c = compileCompression(DEFAULTS.route.compression)
const BODY = Buffer.from('switchyard '.repeat(400))
const HEAD = ['content-type', 'text/plain', 'content-length', String(BODY.length)]

class Client implements ResponseSink {
  head: string[] = []
  chunks: Buffer[] = []
  ended: Promise<void>
  #end!: () => void
  constructor () { this.ended = new Promise((resolve) => { this.#end = resolve }) }
  responseInterim (): void {}
  responseHead (_status: number, _text: string, headers: string[]): boolean { this.head = headers; return true }
  responseData (chunk: Buffer): boolean { this.chunks.push(chunk); return true }
  responseEnd (): void { this.#end() }
  responseError (): void {}
  fault (): void {}
  field (name: string): string | undefined {
    const i = this.head.findIndex((h, j) => j % 2 === 0 && h.toLowerCase() === name)
    return i === -1 ? undefined : this.head[i + 1]
  }
}

const flow = { awaitingDrain: false, resumeUpstream: () => {} }

t.test('past the budget an answer is sent uncompressed; a finished stream frees its place', async (t) => {
  const budget = new CompressorBudget(1)
  const first = new Client()
  const a = new CompressSink(first, c, 'br', 'GET', { ...flow }, budget)
  a.responseHead(200, 'OK', [...HEAD])
  t.equal(first.field('content-encoding'), 'br')
  t.equal(budget.live, 1)

  const second = new Client()
  const b = new CompressSink(second, c, 'br', 'GET', { ...flow }, budget)
  b.responseHead(200, 'OK', [...HEAD])
  t.equal(second.field('content-encoding'), undefined, 'no room: identity')
  t.match(second.field('vary'), /accept-encoding/i, 'with Vary, as any answer that could have been compressed')
  b.responseData(BODY)
  b.responseEnd([])
  await second.ended
  t.same(Buffer.concat(second.chunks), BODY, 'the body as the origin sent it')

  a.responseData(BODY)
  a.responseEnd([])
  await first.ended
  t.same(brotliDecompressSync(Buffer.concat(first.chunks)), BODY)
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(budget.live, 0, 'given back once the stream closed')

  const third = new Client()
  new CompressSink(third, c, 'br', 'GET', { ...flow }, budget).responseHead(200, 'OK', [...HEAD])
  t.equal(third.field('content-encoding'), 'br', 'room again')
})

t.test('gzip and HEAD take no place; a stream cut by an error gives its place back', async (t) => {
  const budget = new CompressorBudget(1)
  const g = new Client()
  new CompressSink(g, c, 'gzip', 'GET', { ...flow }, budget).responseHead(200, 'OK', [...HEAD])
  t.equal(g.field('content-encoding'), 'gzip')
  const h = new Client()
  new CompressSink(h, c, 'br', 'HEAD', { ...flow }, budget).responseHead(200, 'OK', [...HEAD])
  t.equal(h.field('content-encoding'), 'br', 'HEAD gets the fields a GET would')
  t.equal(budget.live, 0)
  const cut = new CompressSink(new Client(), c, 'br', 'GET', { ...flow }, budget)
  cut.responseHead(200, 'OK', [...HEAD])
  t.equal(budget.live, 1)
  cut.responseError({ code: 'LB_ERR_UPSTREAM_RESET' } as never, new Error('reset'))
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(budget.live, 0)
})
