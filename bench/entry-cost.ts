// What one cached entry really costs in memory, against what entrySize counts
// for it (not a test, not part of `npm test`; test/cache/entry-cost.test.ts
// runs it small). Builds entries the way the proxy does (buildEntry over a
// response's flat header list, the body concatenated from chunks of a larger
// socket read), puts them in a CacheStore big enough to keep them all, and
// reads the heap and ArrayBuffer deltas after full GCs:
//
//   node --expose-gc --import tsx bench/entry-cost.ts [--entries 20000] [--body 2048] [--vary] [--json]
//
// --vary: each response also has `Vary: Accept-Language` and two Cache-Tags.
//
// Prints, per entry: the real cost (heap + array buffers), entrySize's count,
// and their ratio. With --json, one line of JSON.

import { parseArgs } from 'node:util'
import { buildEntry } from '../src/cache/build.js'
import { Interner } from '../src/cache/intern.js'
import { CacheStore } from '../src/cache/store.js'

const gc = (globalThis as { gc?: () => void }).gc
if (gc === undefined) {
  process.stderr.write('entry-cost: run with node --expose-gc\n')
  process.exit(2)
}

const args = parseArgs({
  options: {
    entries: { type: 'string', default: '20000' },
    body: { type: 'string', default: '2048' },
    vary: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false }
  }
}).values
const N = Number(args.entries)
const BODY = Number(args.body)
if (!(N > 0) || !(BODY >= 0)) throw new RangeError('--entries must be > 0 and --body >= 0')

/** A fresh copy of `s`, as a parser would make it (not the literal V8 interned). */
const fresh = (s: string): string => Buffer.from(s, 'latin1').toString('latin1')

/** A socket read the body chunks are slices of, as undici hands them over. */
const READ = Buffer.alloc(64 * 1024, 'x')

function response (i: number): { headers: string[], body: Buffer } {
  const headers = [
    'content-type', 'text/plain; charset=utf-8',
    'cache-control', 'public, max-age=3600',
    'date', 'Sun, 06 Dec 2026 07:00:00 GMT',
    'last-modified', 'Sat, 05 Dec 2026 07:00:00 GMT',
    'etag', `"${i.toString(16)}-800"`,
    'content-length', String(BODY),
    'keep-alive', 'timeout=5',
    'x-request-id', `${i}-0123456789abcdef`,
    ...(args.vary ? ['vary', 'Accept-Language', 'cache-tag', `product-${i}, catalog`] : [])
  ].map(fresh)
  return { headers, body: Buffer.concat([READ.subarray(100, 100 + BODY)], BODY) }
}

function snapshot (): { heap: number, buffers: number, rss: number } {
  for (let i = 0; i < 4; i++) gc!()
  const m = process.memoryUsage()
  return { heap: m.heapUsed, buffers: m.arrayBuffers, rss: m.rss }
}

const store = new CacheStore({ maxBytes: 2 ** 40, maxEntryBytes: 2 ** 30 })
// The cache's own interner, as HttpCache holds one beside its store.
const interner = new Interner()
const opts = { heuristic: true, heuristicMaxAge: 3_600_000, defaultTtl: 0, allowSetCookie: false, targets: [] }
// One entry first, so the interner's tables and lazily built module state are not counted per entry.
const put = (i: number): number => {
  const r = response(i)
  const key = fresh(`http://127.0.0.1:8080/objects/${i}?v=1`)
  const e = buildEntry(interner, { key, variant: '', requestHeaders: [fresh('host'), fresh('127.0.0.1:8080'), ...(args.vary ? [fresh('accept-language'), fresh('en-GB, en;q=0.8')] : [])], opts }, 200, fresh('OK'),
    r.headers, r.body, Date.now(), Date.now())
  if (e === undefined || !store.put(e)) throw new Error('entry not stored')
  return e.size
}
put(-1)
const before = snapshot()
let counted = 0
for (let i = 0; i < N; i++) counted += put(i)
const after = snapshot()

const heap = (after.heap - before.heap) / N
const buffers = (after.buffers - before.buffers) / N
const real = heap + buffers
const out = {
  entries: N,
  bodyBytes: BODY,
  vary: args.vary,
  realPerEntry: Math.round(real),
  heapPerEntry: Math.round(heap),
  arrayBuffersPerEntry: Math.round(buffers),
  countedPerEntry: Math.round(counted / N),
  ratio: Number((real / (counted / N)).toFixed(3)),
  // Also what malloc holds for each ArrayBuffer (its backing store record), which neither figure above shows; noisy.
  rssPerEntry: Math.round((after.rss - before.rss) / N),
  stored: store.stats().entries
}
if (args.json) {
  process.stdout.write(JSON.stringify(out) + '\n')
} else {
  console.log(`entries: ${N} of a ${BODY}-byte body`)
  console.log(`real cost per entry:   ${out.realPerEntry} B (heap ${out.heapPerEntry} B + array buffers ${out.arrayBuffersPerEntry} B)`)
  console.log(`entrySize per entry:   ${out.countedPerEntry} B`)
  console.log(`real / counted:        ${out.ratio}`)
  console.log(`RSS per entry:         ${out.rssPerEntry} B (heap pages, buffers and malloc together; noisy)`)
}
