// A reload tells the truth (issue 14, item 4): what it cannot apply at run
// time is named in POST /reload's answer and in the log (`admin.bind needs a
// restart`); what it can, it does: a kept listener's header limit and the
// access log's destination. One process and a cluster, as an operator runs them.
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import net, { type AddressInfo } from 'node:net'
import path from 'node:path'
import t from 'tap'
import { request } from 'undici'
import { spawnCli } from '../helpers/cli.js'
import { rawRequest } from '../helpers/e2e.js'
import { startServer } from '../helpers/origin.js'

const TOKEN = 'reload-truth-token-0123456789'

/** Two workers, one listener (and `more` listeners), an admin port, and a route that says its config's version. */
function clusterConfig (originUrl: string, version: number, more = ''): string {
  return [
    'workers: 2',
    `listeners: [{ name: web, bind: "127.0.0.1:0" }${more}]`,
    'accessLog: false',
    'admin: { bind: "127.0.0.1:0" }',
    `routes: [{ name: all, backend: app, responseHeaders: { set: { x-version: "${version}" } } }]`,
    'backends:',
    '  app:',
    `    servers: [{ url: "${originUrl}" }]`,
    ''
  ].join('\n')
}

for (const workers of [1, 2]) {
  t.test(`workers: ${workers}: reload applies limits and the access log, and names what needs a restart`, async (t) => {
    const origin = await startServer(t, (_req, res) => { res.end('ok') })
    const dir = t.testdir({})
    const file = path.join(dir, 'config.yaml')
    const logA = path.join(dir, 'a.log')
    const logB = path.join(dir, 'b.log')
    const config = (o: { maxHeaderBytes: string, log: string, admin: string }): string => [
      `workers: ${workers}`,
      'listeners: [{ name: web, bind: "127.0.0.1:0" }]',
      `limits: { maxHeaderBytes: ${o.maxHeaderBytes} }`,
      `accessLog: { path: ${o.log} }`,
      `admin: ${o.admin}`,
      'routes: [{ name: all, backend: app }]',
      'backends:',
      '  app:',
      `    servers: [{ url: "${origin.url}" }]`,
      ''
    ].join('\n')
    writeFileSync(file, config({ maxHeaderBytes: '4KiB', log: logA, admin: '{ bind: "127.0.0.1:0" }' }))
    const proc = spawnCli(t, ['start', file])
    const admin = await proc.waitForLog((l) => l.msg === 'admin: listening')
    const listening = await proc.waitForLog((l) => l.msg === 'listening')
    const port = listening.port as number
    const big = `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(16_000)}\r\nConnection: close\r\n\r\n`
    t.equal((await rawRequest(port, big)).status, 431, 'a 16 kB header is over the 4 KiB limit')

    const reload = async (headers: Record<string, string> = {}): Promise<{ status: number, body: { ok: boolean, needsRestart?: string[] } }> => {
      const res = await request(`http://127.0.0.1:${String(admin.port)}/reload`,
        { method: 'POST', headers: { 'content-type': 'application/json', ...headers } })
      return { status: res.statusCode, body: await res.body.json() as { ok: boolean, needsRestart?: string[] } }
    }
    // Nothing changed: nothing to say.
    t.same(await reload(), { status: 200, body: { ok: true, needsRestart: [] } })

    writeFileSync(file, config({ maxHeaderBytes: '32KiB', log: logB, admin: `{ bind: "127.0.0.2:0", token: "${TOKEN}" }` }))
    const r = await reload()
    t.equal(r.status, 200)
    t.same(r.body.needsRestart, ['admin.bind needs a restart', 'admin.token needs a restart'], 'named, one by one')
    const warned = await proc.waitForLog((l) => l.msg.startsWith('configuration reloaded, but not all of it'))
    t.same(warned.needsRestart, r.body.needsRestart, 'and logged')
    t.notOk(proc.stdout().includes(TOKEN), 'the token is not logged')

    // The kept listener took the new limit: the same request now goes through.
    t.equal((await rawRequest(port, big)).status, 200, 'the 16 kB header is within 32 KiB after the reload')
    // The access log moved to the new file (the old one has the first request only).
    await request(`http://127.0.0.1:${String(port)}/after`).then((res) => res.body.text())
    proc.child.kill('SIGTERM')
    t.equal(await proc.exited, 0)
    t.ok(existsSync(logB), 'the new access log file was opened')
    const after = readFileSync(logB, 'utf8')
    t.match(after, /"path":"\/after"/, 'requests after the reload are logged to the new file')
    t.notMatch(readFileSync(logA, 'utf8'), /"path":"\/after"/, 'not to the old one')
  })
}

t.test('an access log path that cannot be opened rejects the reload', async (t) => {
  const origin = await startServer(t, (_req, res) => { res.end('ok') })
  const dir = t.testdir({})
  const file = path.join(dir, 'config.yaml')
  const body = (log: string): string => `workers: 1\nlisteners: [{ name: web, bind: "127.0.0.1:0" }]\naccessLog: { path: ${log} }\n` +
    `admin: { bind: "127.0.0.1:0" }\nroutes: [{ name: all, backend: app }]\nbackends:\n  app:\n    servers: [{ url: "${origin.url}" }]\n`
  writeFileSync(file, body(path.join(dir, 'a.log')))
  const proc = spawnCli(t, ['start', file])
  const admin = await proc.waitForLog((l) => l.msg === 'admin: listening')
  writeFileSync(file, body(path.join(dir, 'no-such-dir', 'b.log')))
  const res = await request(`http://127.0.0.1:${String(admin.port)}/reload`, { method: 'POST', headers: { 'content-type': 'application/json' } })
  t.equal(res.statusCode, 400)
  const json = await res.body.json() as { errors: string[] }
  t.match(json.errors, [/accessLog/])
  proc.child.kill('SIGTERM')
  t.equal(await proc.exited, 0)
})

t.test('a config file with a second YAML document: the reload is refused at its line, the old config keeps serving', async (t) => {
  const origin = await startServer(t, (_req, res) => { res.end('ok') })
  const dir = t.testdir({})
  const file = path.join(dir, 'config.yaml')
  const body = `workers: 1\nlisteners: [{ name: web, bind: "127.0.0.1:0" }]\nadmin: { bind: "127.0.0.1:0" }\n` +
    `routes: [{ name: all, backend: app }]\nbackends:\n  app:\n    servers: [{ url: "${origin.url}" }]\n`
  writeFileSync(file, body)
  const proc = spawnCli(t, ['start', file])
  const admin = await proc.waitForLog((l) => l.msg === 'admin: listening')
  const listening = await proc.waitForLog((l) => l.msg === 'listening')
  writeFileSync(file, `${body}---\nroutes: [{ name: all, backend: nowhere }\n`)
  const res = await request(`http://127.0.0.1:${String(admin.port)}/reload`, { method: 'POST', headers: { 'content-type': 'application/json' } })
  t.equal(res.statusCode, 400)
  const json = await res.body.json() as { errors: string[] }
  t.same(json.errors, [`${file}:8:1 (root): the config must be one YAML document; a second one starts here (remove it, or merge it into the first)`])
  const served = await request(`http://127.0.0.1:${String(listening.port)}/`)
  t.equal(served.statusCode, 200, 'the old config still serves')
  t.equal(await served.body.text(), 'ok')
  proc.child.kill('SIGTERM')
  t.equal(await proc.exited, 0)
})

t.test('workers: 2: a worker that boots while reloads run ends on the last config, not the one it booted with', async (t) => {
  // A reload goes to the workers ready at the time; one that asked for its
  // config before it and said ready after it kept the old one (seen as a
  // request logged to the old access log in the test above, under load).
  // The window is a race: without the catch-up this test failed in some runs
  // (1 in 4 in one series, none in another), never with it.
  const origin = await startServer(t, (_req, res) => { res.end('ok') })
  const dir = t.testdir({})
  const file = path.join(dir, 'config.yaml')
  const config = (version: number): string => clusterConfig(origin.url, version)
  writeFileSync(file, config(0))
  const proc = spawnCli(t, ['start', file])
  const admin = await proc.waitForLog((l) => l.msg === 'admin: listening')
  const ready = (): number => proc.logs.filter((l) => l.msg === 'worker ready').length
  // Reload again and again while the workers start, until the first is ready:
  // the other has asked for its config by then and is still starting.
  let version = 0
  const refused: number[] = []
  const reload = async (): Promise<void> => {
    writeFileSync(file, config(++version))
    const res = await request(`http://127.0.0.1:${String(admin.port)}/reload`, { method: 'POST', headers: { 'content-type': 'application/json' } })
    if (res.statusCode !== 200) refused.push(version)
    await res.body.dump()
  }
  while (ready() < 1 && version < 500) await reload()
  // And one more when the other is not ready yet (it did not hear it): without the catch-up it kept an older version.
  if (ready() < 2) await reload()
  t.same(refused, [], `${version} reloads while the workers started, every one accepted`)
  await proc.waitForLog((l) => l.msg === 'worker ready' && l.worker !== proc.logs.find((x) => x.msg === 'worker ready')?.worker)
  t.equal(ready(), 2, 'both workers started')
  const listening = await proc.waitForLog((l) => l.msg === 'listening')
  // Both workers (connections go round-robin between them) answer with the last version.
  const versions = async (): Promise<Set<string>> => {
    const seen = new Set<string>()
    for (let i = 0; i < 8; i++) {
      const res = await request(`http://127.0.0.1:${String(listening.port)}/`, { headers: { connection: 'close' } })
      seen.add(String(res.headers['x-version']))
      await res.body.dump()
    }
    return seen
  }
  let seen = await versions()
  // A worker that caught up did so just after it said ready: give it that moment.
  for (let tries = 0; tries < 50 && (seen.size !== 1 || !seen.has(String(version))); tries++) {
    await new Promise((resolve) => setTimeout(resolve, 100))
    seen = await versions()
  }
  t.same([...seen], [String(version)], `every answer carries the last version (${version})`)
  proc.child.kill('SIGTERM')
  t.equal(await proc.exited, 0)
})

t.test('workers: 2: a reload the workers refuse changes nothing: a worker that starts later boots the running config', async (t) => {
  // The workers refused it (a new listener's port is another process's), but
  // the primary had made it its config: a crashed worker's replacement booted
  // from it, could not bind, and was replaced again and again.
  const origin = await startServer(t, (_req, res) => { res.end('ok') })
  const taken = net.createServer()
  await new Promise<void>((resolve) => { taken.listen(0, '127.0.0.1', resolve) })
  t.teardown(() => { taken.close() })
  const dir = t.testdir({})
  const file = path.join(dir, 'config.yaml')
  const config = (version: number, more = ''): string => clusterConfig(origin.url, version, more)
  writeFileSync(file, config(0))
  const proc = spawnCli(t, ['start', file])
  const admin = await proc.waitForLog((l) => l.msg === 'admin: listening')
  const listening = await proc.waitForLog((l) => l.msg === 'listening')
  await proc.waitForLog((l) => l.msg === 'cluster: every worker is ready')
  const adminUrl = `http://127.0.0.1:${String(admin.port)}`

  writeFileSync(file, config(1, `, { name: taken, bind: "127.0.0.1:${String((taken.address() as AddressInfo).port)}" }`))
  const res = await request(`${adminUrl}/reload`, { method: 'POST', headers: { 'content-type': 'application/json' } })
  t.equal(res.statusCode, 400)
  t.match((await res.body.json() as { errors: string[] }).errors, [/EADDRINUSE/])

  const status = await (await request(`${adminUrl}/status`)).body.json() as { workers: Array<{ pid: number }> }
  process.kill(status.workers[0]!.pid, 'SIGKILL')
  const next = await proc.waitForLog((l) => (l.msg === 'worker ready' && l.restarts === 1) || l.msg === 'worker: could not start')
  t.equal(next.msg, 'worker ready', 'the replacement starts, with the running config')
  for (let i = 0; i < 6; i++) {
    const r = await request(`http://127.0.0.1:${String(listening.port)}/`, { headers: { connection: 'close' } })
    t.equal(r.headers['x-version'], '0', 'every worker answers with the running config')
    await r.body.dump()
  }
  proc.child.kill('SIGTERM')
  t.equal(await proc.exited, 0)
})
