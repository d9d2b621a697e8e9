// Path normalisation before routing: RFC 3986 §5.2.4 and §6.2.2.2, plus
// Envoy-style merge_slashes and escaped-slash handling.
import t from 'tap'
import type { PathNormalizationConfig } from '../../src/config/schema.js'
import { hasDotSegment, lenientReading, normalizePath, removeDotSegments } from '../../src/proxy/path.js'

const DEFAULT: PathNormalizationConfig = { mergeSlashes: false, escapedSlashes: 'keep' }
const n = (p: string, cfg: Partial<PathNormalizationConfig> = {}): string | undefined => normalizePath(p, { ...DEFAULT, ...cfg })

t.test('dot-segments are removed (RFC 3986 §5.2.4 examples and more)', async (t) => {
  t.equal(removeDotSegments('/a/b/c/./../../g'), '/a/g')
  t.equal(removeDotSegments('/mid/content=5/../6'), '/mid/6')
  t.equal(n('/public/../internal/x'), '/internal/x')
  t.equal(n('/../../etc/passwd'), '/etc/passwd', 'never above the root')
  t.equal(n('/a/.'), '/a/')
  t.equal(n('/a/..'), '/')
  t.equal(n('/a/./b'), '/a/b')
  t.equal(n('/a/b/../'), '/a/')
  t.equal(n('/..'), '/')
  t.equal(n('/a/.hidden/..b/...'), '/a/.hidden/..b/...', 'only whole `.`/`..` segments')
})

t.test('%2e is a dot, and other encoded unreserved characters are decoded', async (t) => {
  t.equal(n('/public/%2e%2e/internal'), '/internal')
  t.equal(n('/public/%2E%2E/internal'), '/internal')
  t.equal(n('/public/.%2e/internal'), '/internal')
  t.equal(n('/%2e/x'), '/x')
  t.equal(n('/%61dmin'), '/admin', '%61 is `a` (RFC 3986 §6.2.2.2)')
  t.equal(n('/a%7Eb%2D%5F'), '/a~b-_')
  t.equal(n('/a%20b%25c%3F'), '/a%20b%25c%3F', 'reserved and non-unreserved escapes stay as sent')
  t.equal(n('/a%zz%2'), '/a%zz%2', 'broken escapes are left alone')
  t.equal(n('/%252e%252e/x'), '/%252e%252e/x', 'one round of decoding only')
})

t.test('the default keeps the path byte-identical apart from dot-segments and encoded unreserved characters', async (t) => {
  for (const p of ['/', '/a//b', '/a/b/', '/a%2Fb', '/a%5cb', '/%C3%A9', '/a;b=c/d', '/a\\b']) t.equal(n(p), p, p)
})

t.test('mergeSlashes', async (t) => {
  t.equal(n('//a///b//', { mergeSlashes: true }), '/a/b/')
  t.equal(n('/a//../b', { mergeSlashes: true }), '/a/b', 'dot-segments first, as RFC 3986 reads `//`')
})

t.test('escapedSlashes: keep, reject, decode (%2F and %5C, any case)', async (t) => {
  t.equal(n('/a%2fb', { escapedSlashes: 'keep' }), '/a%2fb')
  t.equal(n('/a%2Fb', { escapedSlashes: 'reject' }), undefined)
  t.equal(n('/a%5cb', { escapedSlashes: 'reject' }), undefined)
  t.equal(n('/a%41b', { escapedSlashes: 'reject' }), '/aAb', 'other escapes are not refused')
  t.equal(n('/a%2Fb', { escapedSlashes: 'decode' }), '/a/b')
  t.equal(n('/x/..%2F..%2Fadmin', { escapedSlashes: 'decode' }), '/admin', 'decoded before dot-segments, so no `..` survives')
  t.equal(n('/a%5cb', { escapedSlashes: 'decode' }), '/a/b', '%5C decodes to a slash (WHATWG URL reads `\\` as `/`)')
  t.equal(n('/p/..%5Cinternal/x', { escapedSlashes: 'decode' }), '/internal/x')
  t.equal(n('/p/..\\internal/x', { escapedSlashes: 'decode' }), '/internal/x', 'a raw backslash counts as an escaped slash')
  t.equal(n('/a\\b', { escapedSlashes: 'reject' }), undefined)
  t.equal(n('/a\\b', { escapedSlashes: 'keep' }), '/a\\b')
})

t.test('hasDotSegment: a `.` or `..` segment in the path, not in the query, not inside a name', async (t) => {
  for (const p of ['/public/../secret', '/a/./b', '/..', '/.', '/a/..', '/a/..?x=1', '/public/img/../x']) t.ok(hasDotSegment(p), p)
  for (const p of ['/', '/a/b', '/static../x', '/a..b/.c/..d', '/a/b?x=/../y', '/.well-known/x', '/a/..%2Fb', '/...']) t.notOk(hasDotSegment(p), p)
})

t.test('lenientReading: the path as servlet containers, nginx and WHATWG parsers read it; undefined when that is the path', async (t) => {
  t.equal(lenientReading('/admin/panel'), undefined)
  t.equal(lenientReading('/a/b.c/d'), undefined)
  t.equal(lenientReading('/admin;x/panel'), '/admin/panel', ';parameters dropped per segment')
  t.equal(lenientReading('/admin;/panel;jsessionid=1'), '/admin/panel')
  t.equal(lenientReading('//admin//panel'), '/admin/panel', 'slashes merged')
  t.equal(lenientReading('/%2fadmin/'), '/admin/', '%2F decoded')
  t.equal(lenientReading('/x/..%2Fadmin/'), '/admin/', 'decoded, then the dot-segment resolved')
  t.equal(lenientReading('/x/..%5cadmin/'), '/admin/')
  t.equal(lenientReading('/x/..\\admin/'), '/admin/', 'a backslash is a slash')
  t.equal(lenientReading('/a;b'), '/a')
  t.equal(lenientReading('/files/a%2Fb'), '/files/a/b')
})
