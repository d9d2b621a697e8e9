// A reload tells the truth (issue 14, item 4): what it cannot apply at run
// time is named in POST /reload's answer and in the log (`admin.bind needs a
// restart`); what it can, it does: a kept listener's header limit and the
// access log's destination. One process and a cluster, as an operator runs them.
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { request } from 'undici'
import { spawnCli } from '../helpers/cli.js'
import { rawRequest } from '../helpers/e2e.js'
import { startServer } from '../helpers/origin.js'

const TOKEN = 'reload-truth-token-0123456789'

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
