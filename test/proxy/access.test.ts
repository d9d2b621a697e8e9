// Route access control apart from I/O: address lists (IPv4, IPv6, IPv4-mapped),
// Basic credentials parsing, verification and its memory of good credentials.
import t from 'tap'
import { hashPassword } from '../../src/auth/password.js'
import { basicCredentials, compileAccess, type RouteAccess } from '../../src/proxy/access.js'
import { Errors } from '../../src/errors.js'
import { MOCK_IMPORT_HANGS } from '../helpers/mock-import.js'

const basic = (user: string, password: string): string => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`
const access = (allow: string[], deny: string[], users?: Array<{ name: string, passwordHash: string }>): RouteAccess => {
  const a = compileAccess({ allow, deny, ...(users === undefined ? {} : { basicAuth: { realm: 'ops', users, forward: false } }) })
  if (a === undefined) throw new Error('expected access control')
  return a
}

t.test('nothing configured: no access object at all', async (t) => {
  t.equal(compileAccess({ allow: [], deny: [] }), undefined)
})

t.test('allow: IPv4 and IPv6 CIDRs and single addresses', async (t) => {
  const a = access(['10.0.0.0/8', '192.168.1.10', '2001:db8::/32'], [])
  t.equal(a.addressDenial('10.1.2.3'), undefined)
  t.equal(a.addressDenial('192.168.1.10'), undefined)
  t.equal(a.addressDenial('2001:db8::1'), undefined)
  t.equal(a.addressDenial('192.168.1.11')?.error, Errors.FORBIDDEN)
  t.equal(a.addressDenial('2001:db9::1')?.error, Errors.FORBIDDEN)
  t.equal(a.addressDenial('11.0.0.1')?.error, Errors.FORBIDDEN)
  t.equal(a.addressDenial('')?.error, Errors.FORBIDDEN, 'not an address: no list vouches for it')
})

t.test('IPv4-mapped IPv6 clients match IPv4 ranges', async (t) => {
  const a = access(['10.0.0.0/8'], ['10.9.0.0/16'])
  t.equal(a.addressDenial('::ffff:10.1.2.3'), undefined)
  t.equal(a.addressDenial('::ffff:10.9.0.1')?.error, Errors.FORBIDDEN)
  t.equal(a.addressDenial('::ffff:11.0.0.1')?.error, Errors.FORBIDDEN)
})

t.test('deny wins over allow; deny alone lets the rest in', async (t) => {
  const both = access(['10.0.0.0/8'], ['10.0.0.5'])
  t.equal(both.addressDenial('10.0.0.5')?.detail, 'client 10.0.0.5 is in deny')
  t.equal(both.addressDenial('10.0.0.6'), undefined)
  const deny = access([], ['::1', '127.0.0.0/8'])
  t.equal(deny.addressDenial('127.0.0.1')?.error, Errors.FORBIDDEN)
  t.equal(deny.addressDenial('::1')?.error, Errors.FORBIDDEN)
  t.equal(deny.addressDenial('8.8.8.8'), undefined)
})

t.test('Basic credentials: parsed or refused with a reason', async (t) => {
  t.same(basicCredentials(basic('alice', 'pa:ss')), { user: 'alice', password: 'pa:ss' }, 'the first colon splits')
  t.same(basicCredentials(`bAsIc   ${Buffer.from('bob:').toString('base64')}`), { user: 'bob', password: '' })
  t.same(basicCredentials(basic('zoë', 'ü')), { user: 'zoë', password: 'ü' }, 'UTF-8')
  t.equal(basicCredentials(undefined), 'no credentials')
  t.equal(basicCredentials('Bearer abc'), 'not Basic credentials')
  t.equal(basicCredentials('Basic'), 'not Basic credentials')
  t.equal(basicCredentials('Basic a!b'), 'not Basic credentials')
  t.equal(basicCredentials('Basic ' + Buffer.from('nocolon').toString('base64')), 'malformed Basic credentials (no colon)')
  t.equal(basicCredentials('Basic ' + Buffer.from([0x61, 0x3a, 0xff]).toString('base64')), 'Basic credentials are not UTF-8')
  t.equal(basicCredentials('Basic Y'), 'malformed Basic credentials', 'a lone base64 character')
})

t.test('basicAuth: 401 with the challenge, verified credentials remembered', async (t) => {
  const a = access([], [], [{ name: 'alice', passwordHash: hashPassword('s3cret', { N: 1024 }) }])
  const auth = a.basicAuth!
  t.same(auth.challenge, ['www-authenticate', 'Basic realm="ops", charset="UTF-8"'])

  const none = a.check('127.0.0.1', undefined)
  t.notOk(none instanceof Promise, 'no credentials: answered at once, no scrypt')
  t.equal((none as { error: unknown }).error, Errors.UNAUTHORIZED)
  t.same((none as { fields: unknown }).fields, auth.challenge)
  t.notOk(a.check('127.0.0.1', 'Basic !!') instanceof Promise, 'malformed: answered at once')

  t.equal((await a.check('127.0.0.1', basic('alice', 'wrong')))?.error, Errors.UNAUTHORIZED)
  t.equal(auth.remembered(basic('alice', 'wrong')), false, 'a failure is not remembered')
  const unknown = a.check('127.0.0.1', basic('mallory', 's3cret'))
  t.ok(unknown instanceof Promise, 'an unknown user costs a scrypt too: timing does not tell names apart')
  t.equal((await unknown)?.detail, 'unknown user "mallory"')

  const first = a.check('127.0.0.1', basic('alice', 's3cret'))
  t.ok(first instanceof Promise, 'the first time costs a scrypt')
  t.equal(await first, undefined)
  t.equal(auth.remembered(basic('alice', 's3cret')), true)
  t.equal(a.check('127.0.0.1', basic('alice', 's3cret')), undefined, 'then answered at once from memory')
  const other = a.check('127.0.0.1', basic('alice', 's3creT'))
  t.ok(other instanceof Promise, 'another password for the same user is verified again')
  t.equal((await other)?.error, Errors.UNAUTHORIZED)
})

t.test('addresses are checked before credentials', async (t) => {
  const a = access(['10.0.0.0/8'], [], [{ name: 'alice', passwordHash: hashPassword('s3cret', { N: 1024 }) }])
  const v = a.check('127.0.0.1', basic('alice', 's3cret'))
  t.notOk(v instanceof Promise, 'a denied address never costs a scrypt')
  t.equal((v as { error: unknown }).error, Errors.FORBIDDEN)
})

t.test('concurrent requests with the same new credentials share one scrypt', { skip: MOCK_IMPORT_HANGS }, async (t) => {
  const password = await import('../../src/auth/password.js')
  let verifies = 0
  const { compileAccess: compile } = await t.mockImport<typeof import('../../src/proxy/access.js')>('../../src/proxy/access.js', {
    '../../src/auth/password.ts': {
      ...password,
      verifyPassword: (p: string, h: Parameters<typeof password.verifyPassword>[1]) => {
        verifies++
        return password.verifyPassword(p, h)
      }
    }
  })
  const a = compile({ allow: [], deny: [], basicAuth: { realm: 'r', forward: false, users: [{ name: 'alice', passwordHash: hashPassword('s3cret', { N: 1024 }) }] } })!
  const all = await Promise.all([1, 2, 3].map(() => a.check('127.0.0.1', basic('alice', 's3cret'))))
  t.same(all, [undefined, undefined, undefined])
  t.equal(verifies, 1)
  const wrong = await Promise.all([1, 2].map(() => a.check('127.0.0.1', basic('alice', 'nope'))))
  // The mocked module has its own copy of errors.ts: compare codes.
  t.same(wrong.map((v) => v?.error.code), ['LB_ERR_UNAUTHORIZED', 'LB_ERR_UNAUTHORIZED'])
  t.equal(verifies, 2, 'a wrong password is verified once for both, and not remembered')
  t.equal((await a.check('127.0.0.1', basic('alice', 'nope')))?.error.code, 'LB_ERR_UNAUTHORIZED')
  t.equal(verifies, 3)
})

t.test('at most MAX_VERIFYING password checks at once; past it 503 at once, remembered credentials unaffected', async (t) => {
  const { MAX_VERIFYING } = await import('../../src/proxy/access.js')
  const a = access([], [], [{ name: 'alice', passwordHash: hashPassword('s3cret', { N: 1024 }) }])
  t.equal(await a.check('127.0.0.1', basic('alice', 's3cret')), undefined, 'remembered from here on')
  const running = Array.from({ length: MAX_VERIFYING }, (_, i) => a.check('127.0.0.1', basic('alice', `guess-${i}`)))
  t.ok(running.every((v) => v instanceof Promise), `${MAX_VERIFYING} wrong guesses under way`)
  const refused = a.check('127.0.0.1', basic('alice', 'one-more'))
  t.notOk(refused instanceof Promise, 'the next one is not queued')
  t.equal((refused as { error: unknown }).error, Errors.AUTH_BUSY)
  t.equal((a.check('127.0.0.1', basic('mallory', 'x')) as { error: unknown }).error, Errors.AUTH_BUSY, 'unknown users too')
  t.equal(a.check('127.0.0.1', basic('alice', 's3cret')), undefined, 'the remembered pair is answered at once meanwhile')
  for (const v of await Promise.all(running)) t.equal(v?.error, Errors.UNAUTHORIZED)
  const after = a.check('127.0.0.1', basic('alice', 'again'))
  t.ok(after instanceof Promise, 'checks run again once those ended')
  t.equal((await after)?.error, Errors.UNAUTHORIZED)
})
