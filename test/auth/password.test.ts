// scrypt hash form, hashing and verification (small N: the form, not the cost, is under test).
import t from 'tap'
import { formatScryptHash, hashPassword, parseScryptHash, SCRYPT_DEFAULTS, verifyPassword, type ScryptHash } from '../../src/auth/password.js'
import { MOCK_IMPORT_HANGS } from '../helpers/mock-import.js'

const parsed = (s: string): ScryptHash => {
  const h = parseScryptHash(s)
  if (typeof h === 'string') throw new Error(h)
  return h
}

t.test('a new hash has the documented form and default parameters', async (t) => {
  const s = hashPassword('correct horse')
  t.match(s, /^\$scrypt\$N=16384,r=8,p=1\$[A-Za-z0-9+/]+=*\$[A-Za-z0-9+/]+=*$/)
  const h = parsed(s)
  t.equal(h.salt.length, SCRYPT_DEFAULTS.saltBytes)
  t.equal(h.hash.length, SCRYPT_DEFAULTS.hashBytes)
  t.equal(formatScryptHash(h), s, 'format ∘ parse is the identity')
  t.not(hashPassword('correct horse'), s, 'a fresh salt each time')
  t.equal(await verifyPassword('correct horse', h), true)
})

t.test('verify: right, wrong, empty and Unicode passwords', async (t) => {
  const h = parsed(hashPassword('pässwörd', { N: 1024 }))
  t.equal(await verifyPassword('pässwörd', h), true)
  t.equal(await verifyPassword('pa\u0308sswo\u0308rd', h), true, 'NFC-normalised, as typed on another keyboard')
  t.equal(await verifyPassword('passwörd', h), false)
  t.equal(await verifyPassword('', h), false)
  const empty = parsed(hashPassword('', { N: 1024 }))
  t.equal(await verifyPassword('', empty), true)
})

t.test('parse refuses what is not a usable hash', async (t) => {
  const good = hashPassword('x', { N: 1024 })
  const bad = [
    'secret', // a password, not a hash
    good.replace('$scrypt$', '$argon2id$'),
    good.replace('N=1024', 'N=1000'), // not a power of two
    good.replace('N=1024', 'N=2097152'), // too costly
    good.replace('r=8', 'r=0'),
    good.replace('p=1', 'p=99'),
    '$scrypt$N=1024,r=8,p=1$AAAA$' + Buffer.alloc(32).toString('base64'), // salt too short
    '$scrypt$N=1024,r=8,p=1$' + Buffer.alloc(16).toString('base64') + '$AAAA' // hash too short
  ]
  for (const s of bad) t.type(parseScryptHash(s), 'string', s)
  t.type(parseScryptHash(good), 'object')
})

t.test('every verification ends in timingSafeEqual over equal-length buffers', { skip: MOCK_IMPORT_HANGS }, async (t) => {
  const crypto = await import('node:crypto')
  const calls: Array<[number, number]> = []
  const spied = await t.mockImport<typeof import('../../src/auth/password.js')>('../../src/auth/password.js', {
    'node:crypto': {
      ...crypto,
      timingSafeEqual: (a: NodeJS.ArrayBufferView, b: NodeJS.ArrayBufferView) => {
        calls.push([a.byteLength, b.byteLength])
        return crypto.timingSafeEqual(a, b)
      }
    }
  })
  const h = parsed(spied.hashPassword('right', { N: 1024 }))
  t.equal(await spied.verifyPassword('right', h), true)
  t.equal(await spied.verifyPassword('wrong', h), false)
  t.equal(await spied.verifyPassword('a much longer wrong password than the right one', h), false)
  t.equal(spied.verifyPasswordSync('wrong', h), false)
  t.same(calls, [[32, 32], [32, 32], [32, 32], [32, 32]], 'no early exit on a length or a byte')
})
