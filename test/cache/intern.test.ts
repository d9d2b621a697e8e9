// The Interner a cache owns: equal strings and Cache-Control values come back
// as the one copy it holds, its tables stop growing at their bounds, and two
// interners share nothing. A string's identity cannot be seen from JS (===
// compares contents), so for strings the table sizes and has*() stand for it;
// parsed Cache-Control values are objects, compared by identity.
import t from 'tap'
import { Interner } from '../../src/cache/intern.js'

/** A fresh copy of `s`, as a parser would make it (not the literal V8 interned). */
const fresh = (s: string): string => Buffer.from(s, 'latin1').toString('latin1')

t.test('same string in, the held copy out: names, and values of repeating fields', async (t) => {
  const i = new Interner()
  const a = i.headers(['Content-Type', 'text/plain', 'x-id', '1'])
  const b = i.headers([fresh('Content-Type'), fresh('text/plain'), fresh('x-id'), fresh('2')])
  t.same(a, ['Content-Type', 'text/plain', 'x-id', '1'])
  t.same(b, ['Content-Type', 'text/plain', 'x-id', '2'])
  t.same(i.sizes(), { names: 2, values: 1, directives: 0 }, 'equal strings held once; x-id\'s values not at all')
  t.ok(i.hasName('x-id'))
  t.ok(i.hasValue('content-type', 'text/plain'), 'field names compared without case')
  t.notOk(i.hasValue('x-id', '1'), 'not a repeating field')
  t.notOk(i.hasValue('etag', 'text/plain'), 'a held value counts only under a repeating field')
})

t.test('too long to be worth a slot: kept as it came', async (t) => {
  const i = new Interner()
  const name = 'x-'.padEnd(65, 'n')
  const value = 'text/'.padEnd(257, 'v')
  t.same(i.headers([name, 'v', 'content-type', value]), [name, 'v', 'content-type', value])
  t.notOk(i.hasName(name))
  t.notOk(i.hasValue('content-type', value))
  t.same(i.sizes(), { names: 1, values: 0, directives: 0 })
})

t.test('Cache-Control: the same value parsed once, the same object every time', async (t) => {
  const i = new Interner()
  const cc = i.directives('public, max-age=60')
  t.equal(cc.maxAge, 60_000)
  t.equal(i.directives(fresh('public, max-age=60')), cc)
  t.equal(i.directives(undefined), i.directives(''), 'no field: the shared empty directives')
  const long = 'max-age=1, '.padEnd(257, 'x')
  t.not(i.directives(long), i.directives(long), 'too long: parsed each time, not held')
  t.equal(i.sizes().directives, 2, 'the value and the empty one')
})

t.test('bounded: once full, new strings are kept per entry and held ones stay', async (t) => {
  const i = new Interner({ maxStrings: 2, maxDirectives: 1 })
  i.headers(['a', '1', 'b', '2', 'c', '3', 'vary', 'x', 'via', 'y', 'server', 'z'])
  t.same(i.sizes(), { names: 2, values: 2, directives: 0 })
  t.ok(i.hasName('a') && i.hasName('b'), 'the first ones stay: no eviction')
  t.notOk(i.hasName('c'))
  t.notOk(i.hasValue('server', 'z'))
  t.same(i.headers(['c', '3']), ['c', '3'], 'past the bound the string still comes back')
  const first = i.directives('max-age=1')
  t.equal(i.directives('max-age=1'), first)
  t.not(i.directives('max-age=2'), i.directives('max-age=2'), 'past the bound: parsed, not held')
  t.equal(i.sizes().directives, 1)
  t.same(new Interner().sizes(), { names: 0, values: 0, directives: 0 })
})

t.test('two interners are independent', async (t) => {
  const a = new Interner()
  const b = new Interner()
  a.headers(['content-type', 'text/html'])
  t.ok(a.hasName('content-type'))
  t.notOk(b.hasName('content-type'))
  t.notOk(b.hasValue('content-type', 'text/html'))
  t.same(b.sizes(), { names: 0, values: 0, directives: 0 })
  t.not(a.directives('max-age=5'), b.directives('max-age=5'))
  t.equal(b.sizes().directives, 1)
})

t.test('the constructor checks its options', async (t) => {
  t.throws(() => new Interner({ maxStrings: -1 }), RangeError)
  t.throws(() => new Interner({ maxDirectives: 1.5 }), RangeError)
  t.doesNotThrow(() => new Interner({ maxStrings: 0, maxDirectives: 0 }))
})
