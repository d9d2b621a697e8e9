// A route's `allow`, `deny` and `basicAuth`: defaults, forms, and every
// mistake at its YAML path and line; hashes may come from `${ENV}`.
import t from 'tap'
import { hashPassword } from '../../src/auth/password.js'
import { parseConfig } from '../../src/config/load.js'
import { BASE, issuesOf, only } from '../helpers/config.js'

const HASH = hashPassword('pw', { N: 1024 })

/** BASE with one route (line 8) whose lines from 9 on are `lines`. */
function route (...lines: string[]): string {
  return BASE + `routes:\n  - backend: api\n${lines.map((l) => `    ${l}\n`).join('')}`
}

const routeOf = (yaml: string, env?: NodeJS.ProcessEnv) => parseConfig(yaml, 'config.yaml', env === undefined ? {} : { env }).routes[0]!

t.test('defaults: any client, no authentication', async (t) => {
  const r = routeOf(route())
  t.same(r.allow, [])
  t.same(r.deny, [])
  t.equal(r.basicAuth, undefined)
})

t.test('every key as written', async (t) => {
  const r = routeOf(route('allow: [10.0.0.0/8, "::1", 192.168.1.10]', 'deny: ["2001:db8::/32"]',
    `basicAuth: { realm: ops, forward: true, users: [{ name: alice, passwordHash: "${HASH}" }] }`))
  t.same(r.allow, ['10.0.0.0/8', '::1', '192.168.1.10'])
  t.same(r.deny, ['2001:db8::/32'])
  t.same(r.basicAuth, { realm: 'ops', forward: true, users: [{ name: 'alice', passwordHash: HASH }] })
  const d = routeOf(route(`basicAuth: { users: [{ name: alice, passwordHash: "${HASH}" }] }`))
  t.same(d.basicAuth, { realm: 'switchyard', forward: false, users: [{ name: 'alice', passwordHash: HASH }] })
})

t.test('a hash from the environment', async (t) => {
  const r = routeOf(route('basicAuth: { users: [{ name: alice, passwordHash: "${ALICE_HASH}" }] }'), { ALICE_HASH: HASH })
  t.equal(r.basicAuth?.users[0]?.passwordHash, HASH)
})

t.test('address lists take IPs and CIDRs only', async (t) => {
  only(t, route('allow: [10.0.0.0/33]'), 'routes[0].allow[0]', 9, /an IP address or CIDR/)
  only(t, route('deny: [localhost]'), 'routes[0].deny[0]', 9, /an IP address or CIDR/)
  only(t, route('allow: 10.0.0.0/8'), 'routes[0].allow', 9, /a list/)
})

t.test('basicAuth mistakes', async (t) => {
  only(t, route('basicAuth: { realm: ops }'), 'routes[0].basicAuth.users', 9, 'missing required key `users`')
  only(t, route('basicAuth: { users: [] }'), 'routes[0].basicAuth.users', 9, /at least one user/)
  only(t, route('basicAuth: { users: [{ name: alice, passwordHash: hunter2 }] }'), 'routes[0].basicAuth.users[0].passwordHash', 9,
    /not a password hash: expected `\$scrypt\$N=16384,r=8,p=1\$<salt base64>\$<hash base64>` \(make one with `switchyard hash-password`\)/)
  t.notMatch(issuesOf(route('basicAuth: { users: [{ name: alice, passwordHash: hunter2 }] }'))[0]!.message, /hunter2/, 'the value is never echoed')
  only(t, route(`basicAuth: { users: [{ name: "a:b", passwordHash: "${HASH}" }] }`), 'routes[0].basicAuth.users[0].name', 9, /without `:`/)
  only(t, route('basicAuth:', '  users:', `    - { name: alice, passwordHash: "${HASH}" }`, `    - { name: alice, passwordHash: "${HASH}" }`),
    'routes[0].basicAuth.users[1].name', 12, /duplicate user name `alice`/)
  only(t, route(`basicAuth: { realm: 'a"b', users: [{ name: alice, passwordHash: "${HASH}" }] }`), 'routes[0].basicAuth.realm', 9, /without quotes/)
  only(t, route(`basicAuth: { users: [{ name: alice, password: x, passwordHash: "${HASH}" }] }`), 'routes[0].basicAuth.users[0].password', 9, /unknown key/)
  only(t, route(`basicAuth: { forward: yes, users: [{ name: alice, passwordHash: "${HASH}" }] }`), 'routes[0].basicAuth.forward', 9, /boolean|true or false/)
})
