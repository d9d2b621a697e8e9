// Sealing for the shared cache: what one key seals, only our keys open, only
// under the name it was sealed for; names are stable per key and differ
// between keys; nothing readable is left in a sealed value.
import t from 'tap'
import { Sealer } from '../../../src/cache/shared/seal.js'
import type { EncryptionKeyConfig } from '../../../src/config/schema.js'

const key = (id: string, byte: number): EncryptionKeyConfig => ({ id, from: `env:K_${id}`, secret: Buffer.alloc(32, byte).toString('base64') })

t.test('sealed under a name, opened under that name only', async (t) => {
  const s = new Sealer([key('k1', 1)])
  const plain = Buffer.from('https://shop.test/cart HTTP/1.1 200 secret body')
  const sealed = s.seal('n1', plain)
  t.notOk(sealed.toString('latin1').includes('shop.test'), 'no clear text')
  t.notOk(sealed.toString('latin1').includes('secret'))
  t.same(s.open('n1', sealed), plain)
  t.equal(s.open('n2', sealed), undefined, 'moved under another name: does not open')
  t.not(s.seal('n1', plain).toString('hex'), sealed.toString('hex'), 'a fresh IV each time')
})

t.test('tampering, truncation and foreign keys never open', async (t) => {
  const s = new Sealer([key('k1', 1)])
  const sealed = s.seal('n', Buffer.from('hello'))
  for (let i = 0; i < sealed.length; i++) {
    const bad = Buffer.from(sealed)
    bad[i]! ^= 0x40
    t.equal(s.open('n', bad), undefined, `byte ${i} flipped`)
  }
  t.equal(s.open('n', sealed.subarray(0, sealed.length - 1)), undefined, 'truncated')
  t.equal(s.open('n', Buffer.alloc(0)), undefined, 'empty')
  t.equal(new Sealer([key('k1', 2)]).open('n', sealed), undefined, 'same id, another secret')
  t.equal(new Sealer([key('k9', 1)]).open('n', sealed), undefined, 'an id we do not have')
})

t.test('rotation: the first key seals and names, every key opens and names where to look', async (t) => {
  const old = new Sealer([key('old', 1)])
  const rotated = new Sealer([key('new', 2), key('old', 1)])
  const sealedByOld = old.seal('n', Buffer.from('v'))
  t.same(rotated.open('n', sealedByOld), Buffer.from('v'), 'the new deployment reads what the old one wrote')
  const sealedByNew = rotated.seal('n', Buffer.from('w'))
  t.equal(old.open('n', sealedByNew), undefined, 'the old deployment cannot read the new key\'s values')
  t.same(rotated.ids, ['new', 'old'], 'ids in the order of names()')
  t.equal(old.keyId(sealedByNew), 'new', 'the old deployment can tell whose value it is (another instance\'s, not garbage)')
  t.equal(old.keyId(Buffer.from('not sealed')), undefined)
  t.equal(old.keyId(sealedByNew.subarray(0, 8)), undefined, 'truncated')
  t.same(rotated.names('https://a/x'), [new Sealer([key('new', 2)]).name('https://a/x'), old.name('https://a/x')])
  t.equal(old.name('https://a/x'), old.name('https://a/x'), 'stable')
  t.not(old.name('https://a/x'), old.name('https://a/y'))
  t.match(old.name('https://a/x'), /^[A-Za-z0-9_-]{22}$/)
  t.throws(() => new Sealer([]), /at least one/)
})
