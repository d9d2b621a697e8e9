// The one set of header-field lookups (src/fields.ts).
import t from 'tap'
import { combinedValue, countFields, firstValue, isName, requestField } from '../src/fields.js'

t.test('combinedValue joins every field of that name, any case', async (t) => {
  const h = ['Cache-Control', 'max-age=1', 'x', 'y', 'cache-control', 'public', 'CACHE-CONTROL', 'no-transform']
  t.equal(combinedValue(h, 'cache-control'), 'max-age=1, public, no-transform')
  t.equal(combinedValue(h, 'x'), 'y')
  t.equal(combinedValue(h, 'pragma'), undefined)
  t.equal(combinedValue([], 'x'), undefined)
  t.equal(combinedValue(['a', ''], 'a'), '', 'an empty field is present')
})

t.test('isName compares case-insensitively against a lower-case name', async (t) => {
  t.ok(isName('Content-Type', 'content-type'))
  t.ok(isName('content-type', 'content-type'))
  t.notOk(isName('content-typf', 'content-type'))
  t.notOk(isName('content-typ', 'content-type'))
  t.notOk(isName('CONTENT_TYPE', 'content-type'))
  t.notOk(isName('[', '{'), 'only A-Z are folded')
})

t.test('firstValue and countFields', async (t) => {
  const h = ['Host', 'a', 'X', '1', 'host', 'b']
  t.equal(firstValue(h, 'host'), 'a')
  t.equal(firstValue(h, 'none'), undefined)
  t.equal(countFields(h, 'host'), 2)
  t.equal(countFields(h, 'x'), 1)
  t.equal(countFields([], 'x'), 0)
})

t.test('requestField: the first value, but Cookie and X-Forwarded-For lines are one list', async (t) => {
  t.equal(requestField(['Cookie', 'a=1', 'cookie', 'b=2'], 'cookie'), 'a=1; b=2', 'RFC 9113 §8.2.3')
  t.equal(requestField(['X-Forwarded-For', '1.1.1.1', 'x-forwarded-for', '2.2.2.2'], 'x-forwarded-for'), '1.1.1.1, 2.2.2.2')
  t.equal(requestField(['X-Env', 'a', 'x-env', 'b'], 'x-env'), 'a')
  t.equal(requestField([], 'x-env'), undefined)
})
