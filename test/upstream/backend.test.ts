import t from 'tap'
import { parseConfig } from '../../src/config/load.js'
import { Backend, RETRY_BUCKET_CAP } from '../../src/upstream/backend.js'

function backend (retries: string, extra = ''): Backend {
  const config = parseConfig(`
listeners: [{ bind: "127.0.0.1:0" }]
routes: [{ backend: app }]
backends:
  app:
    retries: ${retries}
    ${extra}
    servers: [{ name: s1, url: "http://127.0.0.1:1" }, { name: s2, url: "http://127.0.0.1:2" }]
`, 'test.yaml')
  const b = new Backend(config.backends.app!)
  t.teardown(() => b.close())
  return b
}

t.test('retry budget: earned per request, capped, with free concurrent retries', async (t) => {
  const b = backend('{ budgetPercent: 0.2, minRetryConcurrency: 2 }')
  b.retrying = 2 // the free allowance is in use: only tokens count now
  let allowed = 0
  while (b.retryAllowed()) allowed++
  t.equal(allowed, RETRY_BUCKET_CAP / 2, 'starts half full')
  for (let i = 0; i < 50; i++) b.deposit()
  let more = 0
  while (b.retryAllowed()) more++
  t.equal(more, 10, '50 requests at 20% earn 10 retries')
  for (let i = 0; i < 100_000; i++) b.deposit()
  let capped = 0
  while (b.retryAllowed()) capped++
  t.equal(capped, RETRY_BUCKET_CAP, 'the bucket never holds more than its cap')
  b.retrying = 1
  t.ok(b.retryAllowed(), 'below minRetryConcurrency a retry is always allowed')
})

t.test('sticky cookies are built once per server, opaque, with Secure on TLS', async (t) => {
  const b = backend('{}', 'sticky: { cookie: { name: SRV, maxAge: 1h, sameSite: Strict } }')
  const [s1, s2] = b.servers
  t.equal(b.stickyCookie(s1!, false), `SRV=${s1!.id}; Path=/; SameSite=Strict; HttpOnly; Max-Age=3600`)
  t.equal(b.stickyCookie(s1!, true), `SRV=${s1!.id}; Path=/; SameSite=Strict; HttpOnly; Max-Age=3600; Secure`)
  t.not(s1!.id, s2!.id)
  t.notMatch(b.stickyCookie(s2!, false)!, /127\.0\.0\.1|s2/)
  const plain = backend('{}')
  t.equal(plain.stickyCookie(plain.servers[0]!, true), undefined)
})

t.test('snapshot reports every server with its state', async (t) => {
  const b = backend('{}')
  b.servers[1]!.setCheckStatus(false, 'test')
  const snap = b.snapshot()
  t.equal(snap.shards.length, 1)
  t.same(snap.shards[0]!.servers.map((s) => [s.name, s.healthy, s.checkUp]), [['s1', true, true], ['s2', false, false]])
})
