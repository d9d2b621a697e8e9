// HttpCache's purges against fetches under way: what the shared cache's
// second apply of a remote purge relies on (shared-cache.ts #onPurge). A
// purge at some moment removes what is stored and keeps out what a fetch
// begun before it brings back; a fetch begun after it is not its business.
import t from 'tap'
import { HttpCache } from '../../src/cache/cache.js'
import type { CacheEntry } from '../../src/cache/entry.js'
import { parseConfig } from '../../src/config/load.js'

const config = parseConfig(`listeners: [{ bind: "127.0.0.1:0" }]
cache: {}
routes: [{ backend: b }]
backends: { b: { servers: [{ url: "http://127.0.0.1:1" }] } }
`, 'test.yaml', { checkFiles: false }).cache!

function entry (key: string, tags: string[] = []): CacheEntry {
  return {
    key, variant: '', status: 200, statusText: 'OK', headers: [], body: Buffer.from('x'), requestTime: 0, responseTime: 0,
    cc: {} as CacheEntry['cc'], freshness: 60_000, date: 0, ageValue: 0, etag: undefined, lastModified: undefined,
    varyNames: [], varyValues: [], tags, size: 100
  }
}

const URL = 'http://h/u'

t.test('a purge removes what is stored and keeps out only what a fetch begun before it brings back', async (t) => {
  const cache = new HttpCache(config)
  const before = cache.removals.seq
  t.ok(cache.fill(entry(URL), before))
  const underWay = cache.removals.seq
  cache.purgeUrl(URL)
  const after = cache.removals.seq
  t.same(cache.store.get(URL), [], 'what was stored went')
  t.notOk(cache.fill(entry(URL), underWay), 'a lookup begun before it fills nothing')
  t.notOk(cache.put(entry(URL), undefined, underWay, undefined), 'nor does a fetch begun before it')
  t.ok(cache.put(entry(URL), undefined, after, undefined), 'a fetch begun after it is stored')
  t.equal(cache.store.get(URL).length, 1)
})

t.test('the same for purges by tag', async (t) => {
  const cache = new HttpCache(config)
  const underWay = cache.removals.seq
  cache.purgeTag('news')
  const after = cache.removals.seq
  t.notOk(cache.fill(entry(URL, ['news']), underWay))
  t.ok(cache.fill(entry('http://h/other', ['sport']), underWay), 'what it does not match')
  t.ok(cache.fill(entry(URL, ['news']), after))
})
