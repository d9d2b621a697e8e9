import t from 'tap'
import { REMEMBERED_PATTERNS, REMEMBERED_URLS, Removals } from '../../src/cache/removals.js'

const e = (key: string, tags: string[] = []) => ({ key, tags })

t.test('nothing removed since a fetch began: it may be stored', async (t) => {
  const r = new Removals()
  const since = r.seq
  t.ok(r.allows(e('http://h/a'), since))
  r.url('http://h/a')
  t.ok(r.allows(e('http://h/a'), r.seq), 'a fetch that began after the removal')
})

t.test('a URL removed after the fetch began keeps that URL out, and only it', async (t) => {
  const r = new Removals()
  const since = r.seq
  r.url('http://h/a')
  t.notOk(r.allows(e('http://h/a'), since))
  t.ok(r.allows(e('http://h/b'), since), 'another URL')
  t.ok(r.allows(e('http://h/a?x=1'), since), 'another query is another URL')
})

t.test('prefix, path and tag purges keep out what they match', async (t) => {
  const r = new Removals()
  const since = r.seq
  r.pattern((x) => x.key.startsWith('http://h/docs/'))
  r.pattern((x) => x.tags.includes('news'))
  t.notOk(r.allows(e('http://h/docs/1'), since))
  t.notOk(r.allows(e('http://h/other', ['sport', 'news']), since))
  t.ok(r.allows(e('http://h/other', ['sport']), since))
  const later = r.seq
  t.ok(r.allows(e('http://h/docs/1'), later), 'fetched after the purge')
})

t.test('removals pushed out of memory: a fetch older than them is not stored', async (t) => {
  const r = new Removals()
  const old = r.seq
  r.url('http://h/first')
  const mid = r.seq
  for (let i = 0; i < REMEMBERED_URLS; i++) r.url(`http://h/${i}`)
  t.notOk(r.allows(e('http://h/unrelated'), old), 'cannot tell what it missed')
  t.notOk(r.allows(e('http://h/first'), old))
  t.ok(r.allows(e('http://h/unrelated'), mid), 'began after the forgotten removal: still judged exactly')
  t.notOk(r.allows(e('http://h/5'), mid))

  const p = new Removals()
  const before = p.seq
  for (let i = 0; i <= REMEMBERED_PATTERNS; i++) p.pattern((x) => x.key === `http://h/${i}`)
  t.notOk(p.allows(e('http://h/unrelated'), before))
  t.ok(p.allows(e('http://h/unrelated'), before + 1), 'only the first pattern was forgotten')
})
