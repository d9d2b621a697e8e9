// A route's `rateLimit`: defaults, the forms of `by`, and every mistake at
// its YAML path and line (the `redis` block it may use: redis.test.ts).
import t from 'tap'
import { parseConfig } from '../../src/config/load.js'
import { BASE, only } from '../helpers/config.js'

/** BASE with one route (line 8) whose `rateLimit` (line 9) is `limit`, and the top-level lines `top` below it. */
function withLimit (limit: string, top = ''): string {
  return BASE + `routes:\n  - backend: api\n    rateLimit: ${limit}\n${top}`
}

const limitOf = (yaml: string): unknown => parseConfig(yaml, 'config.yaml').routes[0]?.rateLimit

t.test('defaults: per second, burst = average, by client address, local store', async (t) => {
  t.same(limitOf(withLimit('{ average: 10 }')), { average: 10, period: 1000, burst: 10, by: 'clientIp', store: 'local' })
  t.equal(limitOf(BASE + 'routes:\n  - backend: api\n'), undefined, 'no rateLimit: not limited')
})

t.test('every key as written', async (t) => {
  t.same(limitOf(withLimit('{ average: 100, period: 1m, burst: 20, by: { header: X-Api-Key } }')),
    { average: 100, period: 60_000, burst: 20, by: { header: 'x-api-key' }, store: 'local' })
  t.same(limitOf(withLimit('{ average: 5, by: { cookie: SID }, store: redis }', 'redis: { url: "redis://127.0.0.1:6379" }\n')),
    { average: 5, period: 1000, burst: 5, by: { cookie: 'SID' }, store: 'redis' })
  t.same(limitOf(withLimit('{ average: 5, by: clientIp }')), { average: 5, period: 1000, burst: 5, by: 'clientIp', store: 'local' })
})

t.test('average is required, a whole number of requests', async (t) => {
  only(t, withLimit('{ period: 1s }'), 'routes[0].rateLimit.average', 9, 'missing required key `average`')
  only(t, withLimit('{ average: 0 }'), 'routes[0].rateLimit.average', 9, 'expected an integer >= 1, got 0')
  only(t, withLimit('{ average: 2.5 }'), 'routes[0].rateLimit.average', 9, /integer/)
  only(t, withLimit('{ average: 10, burst: 0 }'), 'routes[0].rateLimit.burst', 9, 'expected an integer >= 1, got 0')
})

t.test('period is whole seconds', async (t) => {
  only(t, withLimit('{ average: 5, period: 500ms }'), 'routes[0].rateLimit.period', 9, /whole number of seconds .*average: 10, period: 1s, burst: 5/)
  only(t, withLimit('{ average: 5, period: 1500ms }'), 'routes[0].rateLimit.period', 9, /whole number of seconds/)
  only(t, withLimit('{ average: 5, period: 0 }'), 'routes[0].rateLimit.period', 9, /greater than 0/)
  t.equal((limitOf(withLimit('{ average: 5, period: 1h }')) as { period: number }).period, 3_600_000)
})

t.test('by: clientIp, a header or a cookie', async (t) => {
  only(t, withLimit('{ average: 5, by: clientIP }'), 'routes[0].rateLimit.by', 9,
    'expected clientIp, { header: NAME } or { cookie: NAME }, got "clientIP"; did you mean `clientIp`?')
  only(t, withLimit('{ average: 5, by: "header:X-Api-Key" }'), 'routes[0].rateLimit.by', 9, /\{ header: NAME \}/)
  only(t, withLimit('{ average: 5, by: { header: a, cookie: b } }'), 'routes[0].rateLimit.by', 9,
    '`by` takes exactly one of header, cookie (got `header` and `cookie`)')
  only(t, withLimit('{ average: 5, by: {} }'), 'routes[0].rateLimit.by', 9, /got none/)
  only(t, withLimit('{ average: 5, by: { query: id } }'), 'routes[0].rateLimit.by.query', 9, /unknown key `query`/)
  only(t, withLimit('{ average: 5, by: { header: "x key" } }'), 'routes[0].rateLimit.by.header', 9, /header name/)
  only(t, withLimit('{ average: 5, by: { cookie: "a;b" } }'), 'routes[0].rateLimit.by.cookie', 9, /cookie name/)
})

t.test('store: redis needs the top-level redis block', async (t) => {
  only(t, withLimit('{ average: 5, store: redis }'), 'routes[0].rateLimit.store', 9, '`store: redis` keeps the limit in Redis: add the top-level `redis` block')
  only(t, withLimit('{ average: 5, store: memcached }'), 'routes[0].rateLimit.store', 9, 'expected one of local, redis, got "memcached"')
  only(t, withLimit('{ average: 5, sotre: local }'), 'routes[0].rateLimit.sotre', 9, 'did you mean `store`?')
})

t.test('a mistake is reported at its line in block style too', async (t) => {
  const yaml = BASE + [
    'routes:',
    '  - backend: api',
    '    rateLimit:',
    '      average: 10',
    '      period: 250ms',
    ''
  ].join('\n')
  only(t, yaml, 'routes[0].rateLimit.period', 11, /whole number of seconds/)
  only(t, BASE + 'routes:\n  - backend: api\n    rateLimit: 10\n', 'routes[0].rateLimit', 9, 'expected a mapping, got 10')
})
