import t from 'tap'
import { closest, didYouMean, editDistance } from '../../src/config/suggest.js'

t.test('edit distance counts a swap of neighbours as one edit', async (t) => {
  t.equal(editDistance('host', 'host'), 0)
  t.equal(editDistance('hsot', 'host'), 1)
  t.equal(editDistance('bnd', 'bind'), 1)
  t.equal(editDistance('severs', 'servers'), 1)
  t.equal(editDistance('kitten', 'sitting'), 3)
  t.equal(editDistance('', 'abc'), 3)
  t.equal(editDistance('abc', ''), 3)
})

t.test('closest picks a near or case-insensitive match', async (t) => {
  const keys = ['host', 'pathPrefix', 'methods', 'headers']
  t.equal(closest('hsot', keys), 'host')
  t.equal(closest('PathPrefix', keys), 'pathPrefix')
  t.equal(closest('pathprefix', keys), 'pathPrefix')
  t.equal(closest('method', keys), 'methods')
  t.equal(closest('headrs', keys), 'headers')
  t.equal(closest('xyzzy', keys), undefined)
})

t.test('short words need a closer match', async (t) => {
  t.equal(closest('url', ['name', 'bind', 'tls']), undefined, 'url is 2 edits from tls: too far for 3 letters')
  t.equal(closest('ur', ['url']), 'url')
})

t.test('closest prefers the smallest distance', async (t) => {
  t.equal(closest('servers', ['server', 'serverz']), 'server')
  t.equal(closest('shard', ['shards', 'shardBy']), 'shards')
})

t.test('didYouMean formats the hint', async (t) => {
  t.equal(didYouMean('hsot', ['host']), '; did you mean `host`?')
  t.equal(didYouMean('zzz', ['host']), '')
})
