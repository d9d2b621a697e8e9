// `switchyard start FILE` as an operator meets it: the file it was given (not
// the demo), startup failures as one line per listener with the config line
// and no stack trace, the same refusals as `check` at start and at reload,
// and the admin token in no output at all.
import { readFileSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import path from 'node:path'
import t, { type Test } from 'tap'
import { request } from 'undici'
import { lowestUnprivilegedPort } from '../../src/config/binds.js'
import { cli, spawnCli } from '../helpers/cli.js'
import { startServer } from '../helpers/origin.js'
import { testCertificatePair } from '../helpers/certs.js'

const STACK_LINE = /^\s+at .+\(?.*:\d+:\d+\)?$/m

/** A port held by a real server (its address is in use). */
async function hold (t: Test, handler: http.RequestListener = (_req, res) => { res.end() }): Promise<number> {
  return (await startServer(t, handler)).port
}

const backend = (port: number): string => `routes: [{ name: all, backend: app }]\nbackends:\n  app:\n    servers: [{ url: "http://127.0.0.1:${port}" }]\n`

t.test('start FILE runs that file (not the demo) and stops on SIGTERM', async (t) => {
  const origin = await hold(t, (_req, res) => { res.end('from my origin') })
  const dir = t.testdir({ 'mine.yaml': 'listeners: [{ name: mine, bind: "127.0.0.1:0" }]\nadmin: false\naccessLog: false\n' + backend(origin) })
  const proc = spawnCli(t, ['start', path.join(dir, 'mine.yaml')])
  const listening = await proc.waitForLog((l) => l.msg === 'listening')
  t.equal(listening.listener, 'mine')
  const res = await request(`http://127.0.0.1:${String(listening.port)}/`)
  t.equal(await res.body.text(), 'from my origin')
  t.notMatch(proc.stdout(), /demo/i, 'no demo origins, no demo banner')
  proc.child.kill('SIGTERM')
  t.equal(await proc.exited, 0)
})

t.test('ports in use: every listener and the admin API that cannot bind, one line each with its config line, no stack', async (t) => {
  const busy = await hold(t)
  const busyAdmin = await hold(t)
  const dir = t.testdir({
    'config.yaml': [
      'listeners:',
      '  - { name: free, bind: "127.0.0.1:0" }',
      `  - { name: http, bind: "127.0.0.1:${busy}" }`,
      'accessLog: false',
      'admin:',
      `  bind: "127.0.0.1:${busyAdmin}"`,
      backend(busy)
    ].join('\n')
  })
  const file = path.join(dir, 'config.yaml')
  const r = cli(['start', file])
  t.equal(r.code, 1)
  t.equal(r.stderr, [
    `${file}:3:25 listeners[1] (http) 127.0.0.1:${busy}: address already in use (EADDRINUSE)`,
    `${file}:6:9 admin 127.0.0.1:${busyAdmin}: address already in use (EADDRINUSE)`,
    'switchyard: not started: 2 listeners could not start',
    ''
  ].join('\n'))
  t.notMatch(r.stderr + r.stdout, STACK_LINE)
  t.notMatch(r.stdout, /"stack"/, 'no stack in the JSON log lines either (the workers\' included)')
  t.notMatch(r.stderr, /Error: listen/)
  t.equal(cli(['check', file]).code, 0, 'a port in use is not a mistake in the file: check passes (the proxy may be running)')
})

t.test('a privileged port without the privilege: EACCES in words, no stack', async (t) => {
  // Really refused by the kernel: as root, run the CLI as `nobody`; otherwise as
  // ourselves, unless we may bind low ports (then there is nothing to refuse).
  const uid = process.getuid?.()
  let unprivilegedStart = 0
  try { unprivilegedStart = Number(readFileSync('/proc/sys/net/ipv4/ip_unprivileged_port_start', 'utf8')) } catch { /* not Linux */ }
  if (uid === undefined || unprivilegedStart <= 81 || (uid !== 0 && lowestUnprivilegedPort() <= 81)) {
    t.pass('skipped: here port 81 can be bound (or this is not Linux)')
    return
  }
  const dir = t.testdir({ 'low.yaml': 'listeners: [{ name: low, bind: "127.0.0.1:81" }]\nadmin: false\naccessLog: false\n' + backend(1) })
  const file = path.join(dir, 'low.yaml')
  const r = cli(['start', file], uid === 0 ? { uid: 65534 } : {})
  t.equal(r.code, 1, r.stderr)
  t.match(r.stderr, `${file}:1:32 listeners[0].bind: warning: port 81 is privileged on this machine (below ${unprivilegedStart})`,
    'check and start warn first')
  t.match(r.stderr, `${file}:1:32 listeners[0] (low) 127.0.0.1:81: permission denied (EACCES): port 81 is below 1024, ` +
    'which needs root or CAP_NET_BIND_SERVICE')
  t.notMatch(r.stderr, STACK_LINE)
  const c = cli(['check', file], uid === 0 ? { uid: 65534 } : {})
  t.equal(c.code, 0, 'only a warning: whoever runs start may have the privilege')
})

t.test('start refuses what check refuses, with the same lines: certificates, addresses, methods, references', async (t) => {
  const a = testCertificatePair()
  const b = testCertificatePair(['other.test'])
  const dir = t.testdir({
    'config.yaml': [
      'listeners:',
      '  - name: garbage',
      '    bind: "127.0.0.1:0"',
      '    tls: { cert: garbage.crt, key: a.key }',
      '  - name: mismatched',
      '    bind: "127.0.0.1:0"',
      '    tls: { cert: a.crt, key: b.key }',
      '  - name: elsewhere',
      '    bind: "10.255.255.1:8080"',
      'admin:',
      '  token: ${NO_SUCH_VARIABLE_HERE}',
      'routes:',
      '  - { match: { methods: [GETT] }, backend: app }',
      'backends:',
      '  app:',
      '    servers: [{ url: "http://127.0.0.1:1" }]',
      ''
    ].join('\n'),
    'garbage.crt': 'not a certificate at all\n',
    'a.crt': a.certPem,
    'a.key': a.keyPem,
    'b.key': b.keyPem
  })
  const file = path.join(dir, 'config.yaml')
  const check = cli(['check', file])
  t.equal(check.code, 1)
  t.equal(check.stderr, [
    `${file}:4:18 listeners[0].tls.cert: TLS certificate file ${path.join(dir, 'garbage.crt')} is not a valid PEM certificate: ` +
      'no `-----BEGIN CERTIFICATE-----` block found',
    `${file}:7:30 listeners[1].tls.key: TLS key file ${path.join(dir, 'b.key')} does not match certificate file ${path.join(dir, 'a.crt')}`,
    `${file}:9:11 listeners[2].bind: 10.255.255.1 is not an address of this machine (EADDRNOTAVAIL); use one of its addresses, or 0.0.0.0 / :: for all`,
    `${file}:11:10 admin.token: environment variable \`NO_SUCH_VARIABLE_HERE\` is not set`,
    `${file}:13:26 routes[0].match.methods[0]: unknown HTTP method "GETT"; did you mean \`GET\`?`,
    `5 errors in ${file}`,
    ''
  ].join('\n'))
  const start = cli(['start', file])
  t.equal(start.code, 1)
  t.equal(start.stderr, check.stderr, 'start prints exactly what check printed')
  t.notMatch(start.stderr, STACK_LINE)
})

t.test('reload: rejected with the check messages while the old config serves; the token is never printed', async (t) => {
  const TOKEN = 'tok-' + 'a1b2c3d4e5f6a7b8c9d0'.repeat(2)
  const origin = await hold(t, (_req, res) => { res.end('old config') })
  const a = testCertificatePair()
  const good = 'listeners: [{ name: web, bind: "127.0.0.1:0" }]\naccessLog: false\n' +
    'admin: { bind: "127.0.0.1:0", token: "${file:secrets/admin.token}" }\n' + backend(origin)
  const dir = t.testdir({ 'config.yaml': good, secrets: { 'admin.token': TOKEN + '\n' }, 'a.crt': a.certPem, 'bad.crt': 'garbage' })
  const file = path.join(dir, 'config.yaml')
  const proc = spawnCli(t, ['start', file])
  const listening = await proc.waitForLog((l) => l.msg === 'listening')
  const admin = await proc.waitForLog((l) => l.msg === 'admin: listening')
  const proxy = `http://127.0.0.1:${String(listening.port)}/`
  const reload = async (): Promise<{ status: number, body: { ok: boolean, errors?: string[] } }> => {
    const res = await request(`http://127.0.0.1:${String(admin.port)}/reload`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' } })
    return { status: res.statusCode, body: await res.body.json() as { ok: boolean, errors?: string[] } }
  }

  // A broken certificate and an unknown method: refused, with check's lines.
  writeFileSync(file, good.replace('listeners: [{ name: web, bind: "127.0.0.1:0" }]',
    'listeners: [{ name: web, bind: "127.0.0.1:0" }, { name: tls, bind: "127.0.0.1:0", tls: { cert: bad.crt, key: a.crt } }]')
    .replace('backend: app', 'match: { methods: [PSOT] }, backend: app'))
  const expected = cli(['check', file]).stderr.trim().split('\n').slice(0, -1)
  t.equal(expected.length, 2, expected.join('\n'))
  const rejected = await reload()
  t.equal(rejected.status, 400)
  t.same(rejected.body.errors, expected, 'the same lines as check')
  t.equal(await (await request(proxy)).body.text(), 'old config', 'the old config keeps serving')

  // An address this machine does not have, through SIGHUP this time.
  writeFileSync(file, good.replace('127.0.0.1:0"', '10.255.255.1:0"'))
  proc.child.kill('SIGHUP')
  const log = await proc.waitForLog((l) => l.msg === 'configuration rejected; the running one keeps serving' &&
    (l.errors as string[]).some((e) => e.includes('10.255.255.1')))
  t.match(log.errors, [`${file}:1:32 listeners[0].bind: 10.255.255.1 is not an address of this machine (EADDRNOTAVAIL)`])
  t.equal(await (await request(proxy)).body.text(), 'old config')

  // Valid, with a route that can never match: applied, and the warning logged.
  writeFileSync(file, good.replace('routes: [{ name: all, backend: app }]', 'routes: [{ name: all, backend: app }, { name: again, backend: app }]'))
  t.match(await reload(), { status: 200, body: { ok: true } })
  const warned = await proc.waitForLog((l) => l.msg === 'configuration warnings')
  t.match(warned.warnings, [/routes\[1\]: warning: route `again` \(line \d+\) can never match: route `all` \(line \d+\)/])

  proc.child.kill('SIGTERM')
  t.equal(await proc.exited, 0)
  const everything = proc.stdout() + proc.stderr()
  t.ok(everything.includes('"auth":"bearer"'), 'the logs do say a token is in use')
  t.notOk(everything.includes(TOKEN), 'but never the token')
  t.notOk(everything.includes(TOKEN.slice(0, 12)), 'nor a part of it')
  const check = cli(['check', file])
  t.equal(check.code, 0, check.stderr)
  t.match(check.stdout, 'auth: bearer token (set, not shown)')
  t.notOk((check.stdout + check.stderr).includes(TOKEN), 'check does not print it either')
  t.notOk(readFileSync(file, 'utf8').includes(TOKEN), 'and the YAML never held it')
})
