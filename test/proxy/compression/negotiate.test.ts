// Accept-Encoding negotiation, exhaustively: q-values, `*`, identity, case,
// whitespace, malformed weights, aliases and ties.
import t from 'tap'
import { negotiate, parseAcceptEncoding } from '../../../src/proxy/compression/negotiate.js'

const both = ['br', 'gzip'] as const

t.test('parse: codings lower-cased, weights read, bad members dropped', async (t) => {
  t.same(parseAcceptEncoding('gzip, br;q=0.5'), [{ coding: 'gzip', q: 1 }, { coding: 'br', q: 0.5 }])
  t.same(parseAcceptEncoding('  GZip ;  Q = 0.8 ,BR'), [{ coding: 'gzip', q: 0.8 }, { coding: 'br', q: 1 }])
  t.same(parseAcceptEncoding('x-gzip'), [{ coding: 'gzip', q: 1 }], 'x-gzip is gzip (RFC 9110 §8.4.1.3)')
  t.same(parseAcceptEncoding('gzip;q=1.000, br;q=0.001, zstd;q=0.'), [{ coding: 'gzip', q: 1 }, { coding: 'br', q: 0.001 }, { coding: 'zstd', q: 0 }])
  for (const bad of ['gzip;q=2', 'gzip;q=1.5', 'gzip;q=0.1234', 'gzip;q=abc', 'gzip;q=', 'gzip;q', 'gzip;q=-1', 'gzip;q=1.0001']) {
    t.same(parseAcceptEncoding(bad), [], `${bad}: dropped`)
  }
  t.same(parseAcceptEncoding('gzip;level=9'), [{ coding: 'gzip', q: 1 }], 'other parameters mean nothing')
  t.same(parseAcceptEncoding('gzip;q=0.5, gzip'), [{ coding: 'gzip', q: 0.5 }], 'the first of a repeated coding counts')
  t.same(parseAcceptEncoding(' , ,'), [])
})

t.test('negotiate', async (t) => {
  const cases: Array<[string | undefined, string, RegExp?]> = [
    [undefined, 'identity', /no Accept-Encoding/],
    ['', 'identity', /names no coding/],
    ['gzip', 'gzip', /client accepts gzip q=1/],
    ['br', 'br'],
    ['gzip, br', 'br', /br q=1/],
    ['br, gzip', 'br'],
    ['gzip;q=1, br;q=0.9', 'gzip'],
    ['gzip;q=0.2, br;q=0.3', 'br'],
    ['deflate', 'identity', /none of br, gzip/],
    ['*', 'br', /br by \* q=1/],
    ['*;q=0.5', 'br'],
    ['br;q=0, *', 'gzip', /gzip by \* q=1/],
    ['*;q=0', 'identity'],
    ['gzip;q=0, br;q=0', 'identity'],
    ['identity', 'identity'],
    ['identity;q=0', 'identity', /none of/],
    ['identity;q=0, gzip', 'gzip'],
    ['gzip;q=0.5, identity', 'identity', /prefers identity/],
    ['gzip;q=0.5', 'gzip', /q=0.5/],
    ['*;q=0.5, identity', 'identity'],
    ['GZIP', 'gzip'],
    ['x-gzip', 'gzip'],
    ['gzip;q=9', 'identity'],
    ['zstd', 'identity']
  ]
  for (const [ae, want, why] of cases) {
    const n = negotiate(ae, both)
    t.equal(n.coding, want, `${String(ae)} → ${want}`)
    if (why !== undefined) t.match(n.why, why)
  }
  t.equal(negotiate('gzip, br', ['gzip', 'br']).coding, 'gzip', 'ties: the route\'s order')
  t.equal(negotiate('zstd, br', ['zstd', 'br', 'gzip']).coding, 'zstd')
  t.equal(negotiate('br', ['gzip']).coding, 'identity', 'only what the route offers')
  t.equal(negotiate('gzip;q=0.8', both).q, 0.8)
})

t.test('parse: repeats keep their first weight however many members come before them', async (t) => {
  const filler = Array.from({ length: 40 }, (_, i) => `c${i}`)
  const v = ['br;q=0.2', ...filler, 'BR', 'gzip;q=0.7', ...filler, 'gzip', 'c3;q=0'].join(', ')
  const members = parseAcceptEncoding(v)
  t.equal(members.length, 42, 'br, the 40 fillers and gzip, once each')
  t.same(members.find((m) => m.coding === 'br'), { coding: 'br', q: 0.2 })
  t.same(members.find((m) => m.coding === 'gzip'), { coding: 'gzip', q: 0.7 })
  t.same(members.find((m) => m.coding === 'c3'), { coding: 'c3', q: 1 }, 'a repeat past the first sixteen is dropped too')
  // A 16 KB field of distinct codings (the size limit allows it) is read once through, not compared member by member.
  const distinct = Array.from({ length: 4000 }, (_, i) => `c${i.toString(36)}`).join(',')
  t.equal(parseAcceptEncoding(distinct).length, 4000)
  t.equal(negotiate(`${distinct},gzip;q=0.5`, ['br', 'gzip']).coding, 'gzip')
})
