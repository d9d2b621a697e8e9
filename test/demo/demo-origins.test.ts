// `switchyard demo-origins` as compose.yaml runs it: a process of its own
// that serves the demo topology until SIGTERM.
import { createServer, type AddressInfo } from 'node:net'
import t from 'tap'
import type { DemoEcho } from '../../src/demo/origin.js'
import { cli, spawnCli } from '../helpers/cli.js'

interface Listening { msg: string, host: string, origins: Array<{ shard: string, replica: string, port: number }> }

t.test('demo-origins serves the four demo replicas until SIGTERM, then exits 0', async (t) => {
  // Free ports: the fixed 9101-9104 may be taken by a demo on this machine.
  const proc = spawnCli(t, ['demo-origins', '--port', '0'])
  const listening = await proc.waitForLog((l) => l.msg === 'demo origins: listening') as unknown as Listening
  t.equal(listening.host, '127.0.0.1', 'loopback unless --host says otherwise')
  t.same(listening.origins.map((o) => `${o.shard}/${o.replica}`), ['a/a1', 'a/a2', 'b/b1', 'b/b2'])

  for (const o of listening.origins) {
    const res = await fetch(`http://127.0.0.1:${o.port}/users/7`, { headers: { 'x-user-id': '7' } })
    t.equal(res.status, 200)
    t.equal(res.headers.get('x-served-by'), `${o.shard}/${o.replica}`)
    const echo = await res.json() as DemoEcho
    t.equal(echo.url, '/users/7')
    t.equal(echo.headers['x-user-id'], '7')
    const health = await fetch(`http://127.0.0.1:${o.port}/healthz`)
    t.equal(await health.text(), 'ok', 'what the proxy health-checks')
  }

  proc.child.kill('SIGTERM')
  t.equal(await proc.exited, 0)
  t.ok(proc.logs.some((l) => l.msg === 'demo origins: stopped' && l.signal === 'SIGTERM'))
  for (const o of listening.origins) await t.rejects(fetch(`http://127.0.0.1:${o.port}/`), `port ${o.port} closed`)
})

t.test('demo-origins: a port in use is one line and exit 1; bad arguments are usage errors', async (t) => {
  const blocker = createServer()
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => blocker.close(() => { resolve() })))
  const taken = (blocker.address() as AddressInfo).port

  const busy = cli(['demo-origins', '--port', String(taken)])
  t.equal(busy.code, 1)
  t.equal(busy.stderr, `switchyard: demo origins not started: listen EADDRINUSE: address already in use 127.0.0.1:${taken}\n`)

  const usage = 'Usage: switchyard demo-origins [--host HOST] [--port PORT]\n'
  t.same(cli(['demo-origins', 'extra']), { code: 2, stdout: '', stderr: `switchyard: unexpected argument "extra"\n${usage}` })
  for (const port of ['65533', 'http', '-1']) {
    const r = cli(['demo-origins', `--port=${port}`])
    t.equal(r.code, 2, `--port ${JSON.stringify(port)}`)
    t.equal(r.stderr, `switchyard: --port must be 0 or a port up to 65532 (the first of 4), got ${JSON.stringify(port)}\n${usage}`)
  }
  t.match(cli(['--help']).stdout, /\n {2}demo-origins \[--host HOST\] \[--port PORT\]\n/, 'listed in the help')
})
