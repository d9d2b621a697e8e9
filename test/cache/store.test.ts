import t from 'tap'
import type { CacheEntry } from '../../src/cache/entry.js'
import { Interner } from '../../src/cache/intern.js'
import { CacheStore, ENTRY_OVERHEAD, compactBody, entrySize, joinBody, stringBytes, type EntryParts } from '../../src/cache/store.js'

interface Spec {
  key: string
  variant?: string
  size?: number
  varyNames?: string[]
  varyValues?: string[]
  tags?: string[]
  /** Tells entries apart in assertions. */
  body?: string
}

function entry (s: Spec): CacheEntry {
  const body = Buffer.from(s.body ?? '')
  return {
    key: s.key,
    variant: s.variant ?? '',
    status: 200,
    statusText: 'OK',
    headers: [],
    body,
    requestTime: 0,
    responseTime: 0,
    cc: {} as CacheEntry['cc'],
    freshness: 0,
    date: 0,
    ageValue: 0,
    etag: undefined,
    lastModified: undefined,
    varyNames: s.varyNames ?? [],
    varyValues: s.varyValues ?? [],
    tags: s.tags ?? [],
    size: s.size ?? 100
  }
}

const bodies = (list: readonly CacheEntry[]): string[] => list.map((e) => e.body.toString())

/** A small deterministic PRNG (mulberry32), so a failure can be replayed. */
function rng (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let x = a
    x = Math.imul(x ^ (x >>> 15), x | 1)
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61)
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

t.test('entrySize: the body\'s whole ArrayBuffer, each string with V8\'s header, the fixed overhead', async (t) => {
  t.equal(ENTRY_OVERHEAD, 1024)
  t.equal(stringBytes(''), 16)
  t.equal(stringBytes('abcdefgh'), 24)
  t.equal(stringBytes('abcdefghi'), 32, 'rounded up to 8')
  t.equal(stringBytes('é'), 24, 'Latin-1: one byte a character')
  t.equal(stringBytes('€'), 24, 'beyond Latin-1: two bytes a character')
  t.equal(stringBytes('€'.repeat(8)), 32)
  const parts = (over: Partial<EntryParts>): EntryParts => ({
    key: 'k', variant: '', statusText: 'OK', headers: [], body: Buffer.allocUnsafeSlow(0), etag: undefined, varyNames: [], varyValues: [], tags: [], ...over
  })
  const interner = new Interner()
  const base = entrySize(parts({}), interner)
  // key twice (the entry's and the store's id), statusText, the variant.
  t.equal(base, ENTRY_OVERHEAD + 24 + 24 + (24 + 0 + 8) + 16)
  t.equal(entrySize(parts({ body: Buffer.allocUnsafeSlow(5000) }), interner), base + 5000)
  const slab = Buffer.allocUnsafeSlow(8192)
  t.equal(entrySize(parts({ body: slab.subarray(0, 100) }), interner), base + 8192, 'a body cut from a bigger buffer counts all of it')
  t.ok(entrySize(parts({ headers: ['x-unique-name-for-this-test', 'v'] }), interner) >= base + 48 + 16 + 48 + 24, 'an array, its slots, its strings')
  t.ok(entrySize(parts({ varyNames: ['accept'], varyValues: ['text/html'] }), interner) > entrySize(parts({}), interner) + 100, 'Vary names and values')
})

t.test('compactBody: a body sharing a bigger ArrayBuffer is copied to memory of its own', async (t) => {
  const own = Buffer.allocUnsafeSlow(100)
  t.equal(compactBody(own), own, 'already exact: kept')
  // Buffer.from/concat of a small body come from Node's shared 8 KiB pool.
  const pooled = Buffer.concat([Buffer.from('hello'), Buffer.from(' world')])
  t.ok(pooled.buffer.byteLength > pooled.length, 'the pool is bigger than the body')
  const c = compactBody(pooled)
  t.equal(c.toString(), 'hello world')
  t.equal(c.byteOffset, 0)
  t.equal(c.buffer.byteLength, c.length)
  const read = Buffer.alloc(65536, 'x')
  const j = joinBody([read.subarray(10, 20), read.subarray(100, 105)], 15)
  t.equal(j.toString(), 'x'.repeat(15))
  t.equal(j.buffer.byteLength, 15, 'chunks joined into exact-size memory')
  t.equal(joinBody([read.subarray(0, 7)], 7).buffer.byteLength, 7, 'one chunk cut from a socket read is copied too')
  t.equal(joinBody([Buffer.from('ab')], 4).toString('hex'), '61620000', 'short chunks: zeroes, never old memory')
})

t.test('entrySize: header strings the interner holds count only as their slot', async (t) => {
  const interner = new Interner()
  const a = interner.headers(['Content-Type', 'text/plain', 'x-id', '1'])
  const counted = (h: string[], i = interner): number => entrySize({ key: 'k', variant: '', statusText: 'OK', headers: h, body: Buffer.allocUnsafeSlow(0), etag: undefined, varyNames: [], varyValues: [], tags: [] }, i)
  t.equal(counted(a), counted(['Content-Type', 'text/plain', 'x-id', 'z']), 'unique values count, shared ones do not')
  t.ok(counted(['x-never-interned-before', 'v']) > counted(['x-id', 'v']), 'a name not yet seen counts in full')
  t.ok(counted(a, new Interner()) > counted(a), 'held by another cache\'s interner: counted in full')
})

t.test('the constructor checks its options', async (t) => {
  t.throws(() => new CacheStore({ maxBytes: 0, maxEntryBytes: 1 }), RangeError)
  t.throws(() => new CacheStore({ maxBytes: 1.5, maxEntryBytes: 1 }), RangeError)
  t.throws(() => new CacheStore({ maxBytes: 100, maxEntryBytes: 101 }), RangeError)
  t.throws(() => new CacheStore({ maxBytes: 100, maxEntryBytes: 0 }), RangeError)
  t.doesNotThrow(() => new CacheStore({ maxBytes: 100, maxEntryBytes: 100 }))
})

t.test('put and get', async (t) => {
  const s = new CacheStore({ maxBytes: 10_000, maxEntryBytes: 1000 })
  t.same(s.get('k'), [], 'nothing stored: an empty list')
  const e = entry({ key: 'k', body: 'a' })
  t.equal(s.put(e), true)
  const got = s.get('k')
  t.equal(got.length, 1)
  t.equal(got[0], e, 'the very entry that was stored')
  t.same(s.get('other'), [])
  t.same(s.stats(), { entries: 1, keys: 1, bytes: 100, evictions: 0, maxBytes: 10_000 })
})

t.test('variants under one key, told apart by varyValues, most recently stored first', async (t) => {
  const s = new CacheStore({ maxBytes: 10_000, maxEntryBytes: 1000 })
  const v = (value: string, body: string): CacheEntry =>
    entry({ key: 'k', varyNames: ['accept-encoding'], varyValues: [value], body })
  s.put(v('gzip', 'g'))
  s.put(v('br', 'b'))
  s.put(v('', 'none'))
  t.same(bodies(s.get('k')), ['none', 'b', 'g'])
  t.same(s.stats(), { entries: 3, keys: 1, bytes: 300, evictions: 0, maxBytes: 10_000 })
})

t.test('a new entry replaces the variant with the same varyValues', async (t) => {
  const s = new CacheStore({ maxBytes: 10_000, maxEntryBytes: 1000 })
  const v = (value: string, body: string, size: number, tags: string[] = []): CacheEntry =>
    entry({ key: 'k', varyNames: ['accept-language'], varyValues: [value], body, size, tags })
  s.put(v('en', 'en-1', 100, ['old']))
  s.put(v('fr', 'fr-1', 100))
  s.put(v('en', 'en-2', 300, ['new']))
  t.same(bodies(s.get('k')), ['en-2', 'fr-1'], 'the replacement counts as the most recently stored')
  t.same(s.stats(), { entries: 2, keys: 1, bytes: 400, evictions: 0, maxBytes: 10_000 }, 'the old size is no longer counted')
  t.equal(s.purgeTag('old'), 0, 'the replaced entry left the tag index')
  t.equal(s.purgeTag('new'), 1)
  t.same(bodies(s.get('k')), ['fr-1'])
  t.test('without Vary: one entry per key', async (t) => {
    const s = new CacheStore({ maxBytes: 10_000, maxEntryBytes: 1000 })
    s.put(entry({ key: 'k', body: '1' }))
    s.put(entry({ key: 'k', body: '2' }))
    t.same(bodies(s.get('k')), ['2'])
    t.equal(s.stats().entries, 1)
  })
})

t.test('a changed Vary drops the variants made under the old one', async (t) => {
  const s = new CacheStore({ maxBytes: 10_000, maxEntryBytes: 1000 })
  s.put(entry({ key: 'k', varyNames: ['accept-encoding'], varyValues: ['gzip'], body: 'g', tags: ['t'] }))
  s.put(entry({ key: 'k', varyNames: ['accept-encoding'], varyValues: ['br'], body: 'b' }))
  s.put(entry({ key: 'k', varyNames: ['accept-language'], varyValues: ['gzip'], body: 'lang' }))
  t.same(bodies(s.get('k')), ['lang'], 'same values, other names: still a different Vary')
  t.same(s.stats(), { entries: 1, keys: 1, bytes: 100, evictions: 0, maxBytes: 10_000 }, 'dropping is not an eviction')
  t.equal(s.purgeTag('t'), 0, 'the dropped variants left the tag index')
  s.put(entry({ key: 'k', body: 'no-vary' }))
  t.same(bodies(s.get('k')), ['no-vary'], 'Vary removed altogether')
  s.put(entry({ key: 'k', varyNames: ['a', 'b'], varyValues: ['1', '2'], body: 'ab' }))
  s.put(entry({ key: 'k', varyNames: ['b', 'a'], varyValues: ['2', '1'], body: 'ba' }))
  t.same(bodies(s.get('k')), ['ba'], 'the same names in another order are another Vary')
  t.same(bodies(s.get('other')), [])
})

t.test('select: the one variant a request\'s values pick, by its id, and whether its variant key has any', async (t) => {
  const store = new CacheStore({ maxBytes: 1_000_000, maxEntryBytes: 1000 })
  const ua = (v: string) => () => [v]
  t.same(store.select('k', '', ua('a')), { entry: undefined, found: false }, 'nothing under the key')
  store.put(entry({ key: 'k', varyNames: ['user-agent'], varyValues: ['a'], body: 'A' }))
  t.equal(store.select('k', '', ua('a')).entry?.body.toString(), 'A', 'one variant: it')
  t.same(store.select('k', '', ua('b')), { entry: undefined, found: true }, 'another value: a vary miss')
  t.same(store.select('k', 'gzip', ua('a')), { entry: undefined, found: false }, 'another variant key: a miss of its own')
  for (let i = 0; i < 1000; i++) store.put(entry({ key: 'k', varyNames: ['user-agent'], varyValues: [`ua${i}`], body: `ua${i}` }))
  const asked: Array<readonly string[]> = []
  const r = store.select('k', '', (names) => { asked.push(names); return ['ua617'] })
  t.equal(r.entry?.body.toString(), 'ua617')
  t.same(asked, [['user-agent']], 'the request\'s values are made once, for the names its variant key was stored under')
  t.same(store.select('k', '', ua('nope')), { entry: undefined, found: true })
  // Variant keys apart: a compressed variant without Vary beside the Vary'd ones.
  store.put(entry({ key: 'k', variant: 'br', body: 'BR' }))
  t.equal(store.select('k', 'br', () => []).entry?.body.toString(), 'BR')
  t.same(store.select('k', 'zstd', () => []), { entry: undefined, found: false })
})

t.test('select: a use of the selected variant only; the index follows deletes, evictions and a changed Vary', async (t) => {
  const store = new CacheStore({ maxBytes: 300, maxEntryBytes: 100 })
  for (const v of ['a', 'b', 'c']) store.put(entry({ key: 'k', varyNames: ['x'], varyValues: [v], body: v }))
  t.equal(store.select('k', '', () => ['a']).entry?.body.toString(), 'a')
  store.put(entry({ key: 'other', body: 'o' }))
  t.same(bodies(store.get('k')).sort(), ['a', 'c'], 'b, not the selected a, was the least recently used')
  // A changed Vary: the variant key's old responses go, and lookups use the new names.
  store.put(entry({ key: 'k', varyNames: ['y'], varyValues: ['1'], body: 'y1' }))
  t.same(bodies(store.get('k')), ['y1'])
  t.equal(store.select('k', '', (names) => names[0] === 'y' ? ['1'] : ['a']).entry?.body.toString(), 'y1')
  // No Vary any more: the plain one is found by its id, the Vary'd one is gone.
  store.put(entry({ key: 'k', body: 'plain' }))
  t.same(bodies(store.get('k')), ['plain'])
  store.put(entry({ key: 'k', variant: 'br', body: 'br' }))
  t.equal(store.select('k', '', () => { throw new Error('no Vary: no values asked') }).entry?.body.toString(), 'plain')
  store.delete('k')
  t.same(store.select('k', '', () => []), { entry: undefined, found: false }, 'deleted: nothing, and no stale index')
  store.put(entry({ key: 'k', varyNames: ['x'], varyValues: ['a'], body: 'again' }))
  store.put(entry({ key: 'k', variant: 'br', varyNames: ['x'], varyValues: ['a'], body: 'again-br' }))
  t.equal(store.select('k', 'br', () => ['a']).entry?.body.toString(), 'again-br')
})

t.test('variant ids are unambiguous whatever the key and values hold', async (t) => {
  const s = new CacheStore({ maxBytes: 10_000, maxEntryBytes: 1000 })
  s.put(entry({ key: 'a', varyNames: ['x', 'y'], varyValues: ['b\0', 'c'], body: '1' }))
  s.put(entry({ key: 'a', varyNames: ['x', 'y'], varyValues: ['b', '\0c'], body: '2' }))
  s.put(entry({ key: 'a\0', varyNames: [], varyValues: [], body: '3' }))
  s.put(entry({ key: 'a', varyNames: ['x'], varyValues: [''], body: '4' }))
  s.put(entry({ key: 'a\0[""]', body: '5' }))
  t.same(bodies(s.get('a')), ['4'])
  t.same(bodies(s.get('a\0')), ['3'])
  t.same(bodies(s.get('a\0[""]')), ['5'])
  t.equal(s.stats().entries, 3)
})

t.test('maxEntryBytes: a bigger entry is refused and nothing changes', async (t) => {
  const s = new CacheStore({ maxBytes: 1000, maxEntryBytes: 200 })
  s.put(entry({ key: 'k', body: 'old', size: 150 }))
  s.put(entry({ key: 'j', size: 150 }))
  t.equal(s.put(entry({ key: 'k', body: 'huge', size: 201 })), false)
  t.equal(s.put(entry({ key: 'n', size: 201, tags: ['t'] })), false)
  t.equal(s.put(entry({ key: 'k', varyNames: ['x'], varyValues: ['1'], size: 201 })), false, 'even with a new Vary')
  t.same(bodies(s.get('k')), ['old'])
  t.same(s.get('n'), [])
  t.equal(s.purgeTag('t'), 0)
  t.same(s.stats(), { entries: 2, keys: 2, bytes: 300, evictions: 0, maxBytes: 1000 })
  t.equal(s.put(entry({ key: 'n', size: 200 })), true, 'exactly maxEntryBytes fits')
  t.throws(() => s.put(entry({ key: 'n', size: -1 })), RangeError)
  t.throws(() => s.put(entry({ key: 'n', size: 1.5 })), RangeError)
})

t.test('LRU eviction: least recently used variants go first, get counts as a use', async (t) => {
  const s = new CacheStore({ maxBytes: 1000, maxEntryBytes: 1000 })
  for (const k of ['a', 'b', 'c', 'd']) s.put(entry({ key: k, size: 250 }))
  s.get('a') // a is now the most recently used; b is the least
  s.put(entry({ key: 'e', size: 250 }))
  t.same(s.get('b'), [], 'b evicted')
  t.same(['a', 'c', 'd', 'e'].map((k) => s.get(k).length), [1, 1, 1, 1])
  // Recency now, oldest first: a c d e. Room for 600 means evicting three.
  s.put(entry({ key: 'f', size: 600 }))
  t.same(['a', 'c', 'd', 'e', 'f'].map((k) => s.get(k).length), [0, 0, 0, 1, 1])
  t.same(s.stats(), { entries: 2, keys: 2, bytes: 850, evictions: 4, maxBytes: 1000 })
  t.test('variants are evicted one by one, not per key', async (t) => {
    const s = new CacheStore({ maxBytes: 300, maxEntryBytes: 300 })
    const v = (value: string): CacheEntry => entry({ key: 'k', varyNames: ['x'], varyValues: [value], body: value })
    s.put(v('1'))
    s.put(v('2'))
    s.put(entry({ key: 'other' }))
    s.put(v('3'))
    t.same(bodies(s.get('k')), ['3', '2'], 'only the oldest variant left')
    t.equal(s.get('other').length, 1)
  })
  t.test('get marks the newest stored variant the most recently used', async (t) => {
    const s = new CacheStore({ maxBytes: 200, maxEntryBytes: 200 })
    const v = (value: string): CacheEntry => entry({ key: 'k', varyNames: ['x'], varyValues: [value], body: value })
    s.put(v('new'))
    s.put(v('newer'))
    s.get('k')
    s.put(entry({ key: 'other' }))
    t.same(bodies(s.get('k')), ['newer'])
  })
  t.test('an entry filling the whole store evicts everything else', async (t) => {
    const s = new CacheStore({ maxBytes: 1000, maxEntryBytes: 1000 })
    for (let i = 0; i < 10; i++) s.put(entry({ key: `k${i}`, tags: ['all'] }))
    s.put(entry({ key: 'big', size: 1000 }))
    t.same(s.stats(), { entries: 1, keys: 1, bytes: 1000, evictions: 10, maxBytes: 1000 })
    t.equal(s.purgeTag('all'), 0)
  })
})

t.test('10 000 random inserts never exceed maxBytes, and the books balance', async (t) => {
  const maxBytes = 64 * 1024
  const maxEntryBytes = 8 * 1024
  const s = new CacheStore({ maxBytes, maxEntryBytes })
  const random = rng(20_240_601)
  const int = (n: number): number => Math.floor(random() * n)
  const keys = new Set<string>()
  let over = 0
  let refused = 0
  for (let i = 0; i < 10_000; i++) {
    const key = `/k/${int(300)}`
    keys.add(key)
    const vary = int(4) === 0 ? ['accept-encoding', 'accept-language'] : ['accept-encoding']
    const ok = s.put(entry({
      key,
      // 0..maxEntryBytes inclusive, with the edges tried now and then.
      size: i % 97 === 0 ? 0 : i % 89 === 0 ? maxEntryBytes : int(maxEntryBytes + 1),
      varyNames: vary,
      varyValues: vary.map(() => String(int(3))),
      tags: [`t${int(20)}`, `t${int(20)}`]
    }))
    if (!ok) refused++
    if (s.stats().bytes > maxBytes) over++
  }
  t.equal(refused, 0, 'every size up to maxEntryBytes is accepted')
  t.equal(over, 0, 'stats().bytes never above maxBytes after an insert')
  let sum = 0
  let count = 0
  let nonEmpty = 0
  for (const key of keys) {
    const list = s.get(key)
    if (list.length > 0) nonEmpty++
    for (const e of list) {
      sum += e.size
      count++
      t.equal(e.key, key)
      if (!list.every((o) => o.varyNames.join() === e.varyNames.join())) t.fail(`mixed Vary under ${key}`)
    }
  }
  const st = s.stats()
  t.equal(st.bytes, sum, 'stats().bytes = the sizes of what get returns')
  t.ok(st.bytes <= maxBytes)
  t.equal(st.entries, count)
  t.equal(st.keys, nonEmpty)
  t.ok(st.evictions > 0, 'the run did evict')
  // The tag index holds exactly what is stored: purging every tag empties the store.
  let purged = 0
  for (let i = 0; i < 20; i++) purged += s.purgeTag(`t${i}`)
  t.equal(purged, count)
  t.same(s.stats(), { entries: 0, keys: 0, bytes: 0, evictions: st.evictions, maxBytes })
})

t.test('delete removes every variant of a key', async (t) => {
  const s = new CacheStore({ maxBytes: 10_000, maxEntryBytes: 1000 })
  s.put(entry({ key: 'k', varyNames: ['x'], varyValues: ['1'], tags: ['t'] }))
  s.put(entry({ key: 'k', varyNames: ['x'], varyValues: ['2'], tags: ['t'] }))
  s.put(entry({ key: 'k2', tags: ['t'] }))
  t.equal(s.delete('k'), 2)
  t.equal(s.delete('k'), 0)
  t.equal(s.delete('missing'), 0)
  t.same(s.get('k'), [])
  t.same(s.stats(), { entries: 1, keys: 1, bytes: 100, evictions: 0, maxBytes: 10_000 })
  t.equal(s.purgeTag('t'), 1, 'only k2 is still tagged')
})

t.test('purgePrefix: plain, case-sensitive string prefix of the primary key', async (t) => {
  const s = new CacheStore({ maxBytes: 10_000, maxEntryBytes: 1000 })
  const keys = ['https://a.test/v1/x', 'https://a.test/v1/y?q=1', 'https://a.test/v10', 'https://a.test/V1/z', 'https://b.test/v1/x']
  for (const k of keys) s.put(entry({ key: k }))
  s.put(entry({ key: 'https://a.test/v1/x', varyNames: ['x'], varyValues: ['1'] }))
  s.put(entry({ key: 'https://a.test/v1/x', varyNames: ['x'], varyValues: ['2'] }))
  t.equal(s.purgePrefix('https://a.test/v1/'), 3, 'two variants of one key + one other key')
  t.same(keys.map((k) => s.get(k).length), [0, 0, 1, 1, 1], '/v10 and /V1 are not under /v1/')
  t.equal(s.purgePrefix('https://a.test/v1'), 1, 'without the slash it is a string prefix: /v10 goes')
  t.equal(s.purgePrefix('nothing'), 0)
  t.equal(s.purgePrefix('https://b.test/v1/x'), 1, 'a whole key is its own prefix')
  t.equal(s.purgePrefix(''), 1, 'the empty prefix matches everything')
  t.same(s.stats(), { entries: 0, keys: 0, bytes: 0, evictions: 0, maxBytes: 10_000 })
})

t.test('purgeTag removes every variant carrying the tag, and only those', async (t) => {
  const s = new CacheStore({ maxBytes: 10_000, maxEntryBytes: 1000 })
  s.put(entry({ key: 'a', tags: ['product-1', 'list'] }))
  s.put(entry({ key: 'b', tags: ['product-2', 'list', 'list'] }))
  s.put(entry({ key: 'c', varyNames: ['x'], varyValues: ['1'], tags: ['product-1'], body: 'c1' }))
  s.put(entry({ key: 'c', varyNames: ['x'], varyValues: ['2'], tags: ['product-2'], body: 'c2' }))
  t.equal(s.purgeTag('product-1'), 2)
  t.same(s.get('a'), [])
  t.same(bodies(s.get('c')), ['c2'], 'the other variant of c stays')
  t.equal(s.purgeTag('product-1'), 0)
  t.equal(s.purgeTag('PRODUCT-2'), 0, 'tags are compared exactly')
  t.equal(s.purgeTag('list'), 1, 'a tag written twice counts its entry once')
  t.equal(s.purgeTag('nope'), 0)
  t.same(s.stats(), { entries: 1, keys: 1, bytes: 100, evictions: 0, maxBytes: 10_000 })
  t.test('an evicted entry is no longer in the tag index', async (t) => {
    const s = new CacheStore({ maxBytes: 300, maxEntryBytes: 300 })
    s.put(entry({ key: 'a', tags: ['t'], body: 'a' }))
    s.put(entry({ key: 'b', tags: ['u'] }))
    s.put(entry({ key: 'c', tags: ['u'] }))
    s.put(entry({ key: 'd', tags: ['t'], body: 'd' })) // evicts a
    t.equal(s.stats().evictions, 1)
    t.same(s.get('a'), [])
    // Re-store a under the same key without the tag: a stale index would purge it.
    s.put(entry({ key: 'a', body: 'a2' })) // evicts b
    t.equal(s.purgeTag('t'), 1, 'only d')
    t.same(bodies(s.get('a')), ['a2'])
    t.equal(s.purgeTag('u'), 1, 'only c: b was evicted')
    t.same(s.stats(), { entries: 1, keys: 1, bytes: 100, evictions: 2, maxBytes: 300 })
  })
})

t.test('stats counters', async (t) => {
  const s = new CacheStore({ maxBytes: 500, maxEntryBytes: 300 })
  t.same(s.stats(), { entries: 0, keys: 0, bytes: 0, evictions: 0, maxBytes: 500 })
  s.put(entry({ key: 'a', size: 0 }))
  s.put(entry({ key: 'b', varyNames: ['x'], varyValues: ['1'], size: 200 }))
  s.put(entry({ key: 'b', varyNames: ['x'], varyValues: ['2'], size: 200 }))
  t.same(s.stats(), { entries: 3, keys: 2, bytes: 400, evictions: 0, maxBytes: 500 }, 'a 0-byte entry is stored and counts 0')
  s.put(entry({ key: 'c', size: 300 })) // evicts a and b/1
  t.same(s.stats(), { entries: 2, keys: 2, bytes: 500, evictions: 2, maxBytes: 500 })
  s.delete('b')
  s.purgeTag('none')
  t.same(s.stats(), { entries: 1, keys: 1, bytes: 300, evictions: 2, maxBytes: 500 }, 'deletes are not evictions')
})

t.test('onRemove: called once for each entry that leaves the store, however it leaves', async (t) => {
  const gone: string[] = []
  const store = new CacheStore({ maxBytes: 250, maxEntryBytes: 250, onRemove: (e) => gone.push(e.body.toString()) })
  store.put(entry({ key: 'http://h/a', body: 'a1' }))
  store.put(entry({ key: 'http://h/a', body: 'a2' }))
  t.same(gone, ['a1'], 'replaced by a newer copy of the same variant')
  store.put(entry({ key: 'http://h/b', body: 'b', tags: ['t'] }))
  store.put(entry({ key: 'http://h/c', body: 'c' }))
  t.same(gone, ['a1', 'a2'], 'evicted (least recently used) to make room')
  store.purgeTag('t')
  store.delete('http://h/c')
  t.same(gone, ['a1', 'a2', 'b', 'c'], 'purged by tag, deleted by key')
  t.equal(store.stats().entries, 0)
})
