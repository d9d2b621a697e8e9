// A cache entry survives the trip through bytes unchanged, and bytes that are
// not an entry of ours are refused.
import t from 'tap'
import { decodeEntry, encodeEntry } from '../../../src/cache/shared/codec.js'
import { parseCacheControl } from '../../../src/cache/cache-control.js'
import type { CacheEntry } from '../../../src/cache/entry.js'
import { Interner } from '../../../src/cache/intern.js'
import { compactBody, entrySize } from '../../../src/cache/store.js'

const entry: CacheEntry = {
  key: 'https://shop.test/x?y=1', variant: 'r\0s', status: 200, statusText: 'OK', headers: ['content-type', 'text/plain', 'etag', '"1"'],
  body: compactBody(Buffer.from([0, 1, 2, 255])), requestTime: 1000, responseTime: 1010, cc: parseCacheControl('max-age=60, stale-if-error=30'),
  freshness: 60_000, date: 1005, ageValue: 0, etag: '"1"', lastModified: undefined, varyNames: ['accept'], varyValues: ['text/plain'],
  tags: ['t1'], size: 300
}

t.test('round trip', async (t) => {
  const interner = new Interner()
  const back = decodeEntry(encodeEntry(entry), interner)
  // The size is counted again, as this version counts it, whatever the writer counted.
  t.same(back, { ...entry, lastModified: undefined, size: entrySize(entry, interner) })
  t.not(entrySize(entry, interner), entry.size)
  t.same(interner.sizes(), { names: 2, values: 1, directives: 0 }, 'its names and content-type shared through the interner given')
  t.ok(back!.body.equals(entry.body))
  t.equal(back!.body.buffer.byteLength, entry.body.length, 'the body in memory of its own, not a slice of the record')
})

t.test('refused: short, not JSON, another format, missing or wrong fields', async (t) => {
  const interner = new Interner()
  t.equal(decodeEntry(Buffer.alloc(2), interner), undefined)
  const wrap = (head: unknown): Buffer => {
    const json = Buffer.from(typeof head === 'string' ? head : JSON.stringify(head))
    const len = Buffer.alloc(4)
    len.writeUInt32BE(json.length)
    return Buffer.concat([len, json])
  }
  t.equal(decodeEntry(wrap('{not json'), interner), undefined)
  const head = JSON.parse(encodeEntry(entry).subarray(4, 4 + encodeEntry(entry).readUInt32BE(0)).toString()) as Record<string, unknown>
  t.ok(decodeEntry(wrap(head), interner), 'the real head decodes')
  t.equal(decodeEntry(wrap({ ...head, format: 2 }), interner), undefined)
  t.equal(decodeEntry(wrap({ ...head, headers: ['odd'] }), interner), undefined)
  t.equal(decodeEntry(wrap({ ...head, status: '200' }), interner), undefined)
  t.equal(decodeEntry(wrap({ ...head, tags: [1] }), interner), undefined)
  const len = Buffer.alloc(4)
  len.writeUInt32BE(1000)
  t.equal(decodeEntry(Buffer.concat([len, Buffer.from('{}')]), interner), undefined, 'a length past the end')
})
