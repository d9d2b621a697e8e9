// The one set of header-field lookups (src/fields.ts).
import t from 'tap'
import { combinedValue, countFields, firstValue, isName, requestField, interimHead, isLinkValue, setField } from '../src/fields.js'

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

t.test('setField: every line of the field replaced by one at the end, or none', async (t) => {
  const h = ['Max-Forwards', '3', 'a', '1', 'max-forwards', '9', 'b', '2']
  setField(h, 'max-forwards', '2')
  t.same(h, ['a', '1', 'b', '2', 'max-forwards', '2'])
  setField(h, 'max-forwards', undefined)
  t.same(h, ['a', '1', 'b', '2'])
  setField(h, 'c', '3')
  t.same(h, ['a', '1', 'b', '2', 'c', '3'], 'absent before: added')
})

t.test('firstValue and countFields', async (t) => {
  const h = ['Host', 'a', 'X', '1', 'host', 'b']
  t.equal(firstValue(h, 'host'), 'a')
  t.equal(firstValue(h, 'none'), undefined)
  t.equal(countFields(h, 'host'), 2)
  t.equal(countFields(h, 'x'), 1)
  t.equal(countFields([], 'x'), 0)
})

t.test('requestField: every line as one value, Cookie joined with ; and the rest with a comma', async (t) => {
  t.equal(requestField(['Cookie', 'a=1', 'cookie', 'b=2'], 'cookie'), 'a=1; b=2', 'RFC 9113 §8.2.3')
  t.equal(requestField(['X-Forwarded-For', '1.1.1.1', 'x-forwarded-for', '2.2.2.2'], 'x-forwarded-for'), '1.1.1.1, 2.2.2.2')
  t.equal(requestField(['X-Env', 'a', 'x-env', 'b'], 'x-env'), 'a, b', 'not just the first line (a backend may read the last)')
  t.equal(requestField(['X-Env', 'a', 'Other', 'z'], 'x-env'), 'a')
  t.equal(requestField([], 'x-env'), undefined)
})

t.test('isLinkValue: one RFC 8288 link, nothing that could break a header line', async (t) => {
  for (const ok of ['</a.css>; rel=preload; as=style', '<https://cdn.example>; rel=preconnect', '</x>', '</f.woff2>; rel=preload; as=font; crossorigin',
    '</a>; title="a b; c"']) t.ok(isLinkValue(ok), ok)
  for (const bad of ['', '/a.css; rel=preload', 'javascript:alert(1)', '</a b>; rel=preload', '</a>; rel=preload, </b>; rel=preload',
    '</a>\r\nx: y', '</a>; rel=pre\nload', '<</a>>']) t.notOk(isLinkValue(bad), JSON.stringify(bad))
})

t.test('interimHead: every link of a raw 103 head, split and checked; other end-to-end fields kept', async (t) => {
  const raw = (...f: string[]): string[] => f
  const plain = (h: object): object => ({ ...h })
  t.same(plain(interimHead(raw('Link', '</a.css>; rel=preload, </b.js>; rel=preload; as=script', 'X-Other', '1', 'LINK', '<https://c>; rel=preconnect',
    'x-other', '2'))), {
    link: ['</a.css>; rel=preload', '</b.js>; rel=preload; as=script', '<https://c>; rel=preconnect'],
    'x-other': '1, 2'
  })
  t.same(interimHead(raw('link', 'javascript:alert(1)', 'link', '</ok>; rel=preload')).link, ['</ok>; rel=preload'], 'a malformed link is dropped')
  t.same(plain(interimHead(raw('connection', 'close', 'content-length', '5', 'set-cookie', 'a=b', 'transfer-encoding', 'chunked', 'keep-alive', 'x',
    'x-bad', 'a\u0001b'))), { link: [] }, 'hop-by-hop, framing, cookies and bad values are dropped')
  t.same(plain(interimHead(raw('Connection', 'x-internal, X-Backend-Token', 'x-internal', 'secret', 'X-Backend-Token', 't0k3n', 'x-kept', '1'))),
    { link: [], 'x-kept': '1' }, 'fields the Connection field names are hop-by-hop in a 1xx too (RFC 9110 §7.6.1)')
  t.equal(Object.getPrototypeOf(interimHead(raw('__proto__', 'x'))), null, 'no field name reaches Object.prototype')
  t.same(interimHead([]).link, [])
})
