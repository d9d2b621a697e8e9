import t from 'tap'
import { ReadYourWrites } from '../../src/proxy/read-your-writes.js'

const KEY = 'k'.repeat(32)
const NOW = 1_700_000_000_000

t.test('a cookie written is read back, by any holder of the key, until its deadline', async (t) => {
  const a = new ReadYourWrites(KEY, 'switchyard_ryw')
  const b = new ReadYourWrites(KEY, 'switchyard_ryw') // another instance
  const tag = a.tag('db/a')
  t.match(tag, /^[0-9a-f]{12}$/)
  t.equal(b.tag('db/a'), tag, 'the same tag in every instance')
  t.not(a.tag('db/b'), tag)
  const value = a.write(new Map(), tag, NOW + 5000)
  t.notMatch(value, /db/, 'no backend or shard name in the cookie')
  t.same([...b.read(value, NOW)], [[tag, NOW + 5000]])
  t.same([...b.read(value, NOW + 5000)], [], 'at the deadline: over')
  t.same([...new ReadYourWrites('x'.repeat(32), 'c').read(value, NOW)], [], 'another key: not accepted')
})

t.test('forged, damaged or foreign values carry nothing', async (t) => {
  const r = new ReadYourWrites(KEY, 'c')
  const tag = r.tag('db/a')
  const value = r.write(new Map(), tag, NOW + 5000)
  const [payload, sig] = value.split('.')
  for (const bad of [undefined, '', 'garbage', `${payload}.`, `.${sig}`, `${payload!.replace(/\d$/, '9')}.${sig}`, `${payload}.${sig!.slice(1)}x`,
    `${tag}-${NOW + 99_999_999}.${sig}`]) {
    t.same([...r.read(bad, NOW)], [], JSON.stringify(bad))
  }
})

t.test('writes keep the other shards\' windows, drop expired ones, and stay bounded', async (t) => {
  const r = new ReadYourWrites(KEY, 'c')
  let value = r.write(new Map(), r.tag('db/a'), NOW + 1000)
  value = r.write(r.read(value, NOW), r.tag('db/b'), NOW + 5000)
  t.same(new Set(r.read(value, NOW).keys()), new Set([r.tag('db/a'), r.tag('db/b')]))
  value = r.write(r.read(value, NOW + 2000), r.tag('db/b'), NOW + 9000)
  t.same([...r.read(value, NOW + 2000)], [[r.tag('db/b'), NOW + 9000]], 'a expired and dropped; b extended')
  let many = new Map<string, number>()
  for (let i = 0; i < 20; i++) many = r.read(r.write(many, r.tag(`db/s${i}`), NOW + 10_000 + i), NOW)
  t.equal(many.size, 8, 'at most 8 shards remembered')
  t.ok(many.has(r.tag('db/s19')), 'the latest kept')
  t.match(r.setCookie('v', 5000, true), /^c=v; Path=\/; Max-Age=5; HttpOnly; SameSite=Lax; Secure$/)
  t.match(r.setCookie('v', 1500, false), /Max-Age=2; HttpOnly; SameSite=Lax$/)
})
