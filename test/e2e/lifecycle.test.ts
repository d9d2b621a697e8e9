// The process as an operator runs it: `switchyard start -c FILE` in a child
// process, reloaded with SIGHUP under load (valid and invalid files), and
// stopped with SIGTERM under load.
import { spawn, type ChildProcess } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import autocannon from 'autocannon'
import t, { type Test } from 'tap'
import { Pool } from 'undici'
import { closedPort, startServer } from '../helpers/origin.js'
import { nodeArgs } from '../helpers/entry.js'
import { reapOnExit } from '../helpers/reap.js'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')

async function origin (t: Test, name: string, delayMs = 0): Promise<number> {
  const { port } = await startServer(t, (req, res) => {
    req.resume()
    setTimeout(() => res.writeHead(200, { 'content-type': 'text/plain' }).end(name), delayMs)
  })
  return port
}

function config (port: number, backendPort: number, extra = ''): string {
  // One process: the same checks with workers are in cluster.test.ts.
  return `
workers: 1
listeners: [{ name: web, bind: "127.0.0.1:${port}" }]
admin: false
accessLog: false
timeouts: { drain: 5s }
routes: [{ match: { pathPrefix: / }, backend: app }]
backends:
  app:
    servers: [{ url: "http://127.0.0.1:${backendPort}" }]
${extra}`
}

interface Proc { child: ChildProcess; logs: { msg: string; errors?: string[]; reason?: string }[]; exited: Promise<number | null> }

async function startCli (t: Test, file: string, port: number): Promise<Proc> {
  const child = reapOnExit(spawn(process.execPath, [...nodeArgs('src/main.ts'), 'start', '-c', file],
    { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] }))
  const logs: Proc['logs'] = []
  let buf = ''
  child.stdout!.on('data', (c: Buffer) => {
    buf += c.toString()
    let nl
    while ((nl = buf.indexOf('\n')) !== -1) {
      try { logs.push(JSON.parse(buf.slice(0, nl)) as Proc['logs'][number]) } catch { /* not JSON */ }
      buf = buf.slice(nl + 1)
    }
  })
  let stderr = ''
  child.stderr!.on('data', (c: Buffer) => { stderr += c.toString() })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  t.teardown(async () => {
    if (child.exitCode === null) child.kill('SIGKILL')
    await exited
  })
  for (let i = 0; i < 200 && !logs.some((l) => l.msg === 'listening'); i++) {
    if (child.exitCode !== null) throw new Error(`switchyard exited: ${stderr}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  if (!logs.some((l) => l.msg === 'listening')) throw new Error(`switchyard did not start: ${stderr}`)
  t.comment(`switchyard pid ${child.pid} on port ${port}`)
  return { child, logs, exited }
}

/**
 * autocannon (bounded: at most `maxSeconds`, stopped earlier with stop())
 * through the proxy; outcomes counted by status code or error code.
 */
function load (port: number, connections: number, maxSeconds: number) {
  const outcomes = new Map<string, number>()
  const count = (k: string): void => { outcomes.set(k, (outcomes.get(k) ?? 0) + 1) }
  let inst: autocannon.Instance | undefined
  const done = new Promise<autocannon.Result>((resolve, reject) => {
    inst = autocannon({ url: `http://127.0.0.1:${port}/`, connections, duration: maxSeconds }, (err, res) => err ? reject(err) : resolve(res))
    inst.on('response', (_c, status) => count(String(status)))
    inst.on('reqError', (err) => count(err.code ?? err.message))
  })
  return { outcomes, done, stop: () => inst?.stop() }
}

async function until (cond: () => boolean, ms = 10_000): Promise<boolean> {
  const end = Date.now() + ms
  while (!cond() && Date.now() < end) await new Promise((resolve) => setTimeout(resolve, 25))
  return cond()
}

t.test('20 reloads under load (and one invalid file): zero failed requests, final routing from the last valid file', async (t) => {
  const a = await origin(t, 'a')
  const b = await origin(t, 'b')
  const port = await closedPort()
  const dir = t.testdir({})
  const file = path.join(dir, 'switchyard.yaml')
  writeFileSync(file, config(port, a))
  const proc = await startCli(t, file, port)
  const client = new Pool(`http://127.0.0.1:${port}`, { connections: 1 })
  t.teardown(() => client.close())
  const run = load(port, 8, 60)
  t.teardown(() => run.stop())

  let reloads = 0
  for (let i = 0; i < 21; i++) {
    const before = proc.logs.length
    if (i === 10) {
      writeFileSync(file, config(port, a) + '    weight: heavy\n') // invalid (and misplaced)
    } else {
      writeFileSync(file, config(port, i % 2 === 0 ? b : a))
    }
    // SIGUSR2 reloads as SIGHUP does (HAProxy's master reloads on it).
    proc.child.kill(i % 4 === 3 ? 'SIGUSR2' : 'SIGHUP')
    const done = await until(() => proc.logs.slice(before).some((l) => l.msg === 'configuration reloaded' || /rejected/.test(l.msg)))
    t.ok(done, `reload ${i} finished`)
    if (i !== 10) reloads++
  }
  run.stop()
  await run.done
  const statuses = run.outcomes
  const rejected = proc.logs.filter((l) => /rejected/.test(l.msg))
  t.equal(rejected.length, 1, 'the invalid file was rejected once')
  t.match(rejected[0]?.errors?.join('\n'), /switchyard\.yaml:\d+:\d+ /, 'with its YAML position')
  t.equal(proc.logs.filter((l) => l.msg === 'configuration reloaded').length, reloads)
  t.equal(proc.logs.filter((l) => l.msg === 'reloading configuration' && l.reason === 'SIGUSR2').length, 5, 'each SIGUSR2 reloaded')
  const total = [...statuses.values()].reduce((x, y) => x + y, 0)
  t.ok(total > 100, `${total} requests during the reloads`)
  t.same([...statuses.keys()], ['200'], 'every request answered 200')
  // Last valid file (i = 20) routes to b.
  const last = await client.request({ path: '/', method: 'GET' })
  t.equal(await last.body.text(), 'b')
})

t.test('SIGTERM under load: every accepted request is answered, and the process exits 0', async (t) => {
  const slow = await origin(t, 'slow', 30)
  const port = await closedPort()
  const dir = t.testdir({})
  const file = path.join(dir, 'switchyard.yaml')
  writeFileSync(file, config(port, slow))
  const proc = await startCli(t, file, port)
  const run = load(port, 16, 30)
  t.teardown(() => run.stop())
  await new Promise((resolve) => setTimeout(resolve, 500))
  proc.child.kill('SIGTERM')
  const code = await proc.exited
  // Keep loading a moment after the exit: those attempts must be refused, never reset.
  await new Promise((resolve) => setTimeout(resolve, 300))
  run.stop()
  await run.done
  const outcomes = run.outcomes
  t.equal(code, 0, 'exit code 0')
  t.ok(proc.logs.some((l) => l.msg === 'stopped'))
  const answered = outcomes.get('200') ?? 0
  t.ok(answered > 50, `${answered} answered`)
  const failures = [...outcomes.entries()].filter(([k]) => k !== '200' && k !== 'ECONNREFUSED')
  t.same(failures, [], 'no resets or errors: only refused connections after the listener closed')
})

t.test('a second SIGTERM and a SIGINT during the drain cut nothing: the requests in flight are answered, exit 0', async (t) => {
  // Each used to take Node's default after the first: the process died with its requests.
  const slow = await origin(t, 'slow', 800)
  const port = await closedPort()
  const dir = t.testdir({})
  const file = path.join(dir, 'switchyard.yaml')
  writeFileSync(file, config(port, slow, 'cache: false'))
  const proc = await startCli(t, file, port)
  const pool = new Pool(`http://127.0.0.1:${String(port)}`, { connections: 2 })
  t.teardown(() => pool.destroy())
  const inflight = Promise.all([1, 2].map(async (i) => {
    const res = await pool.request({ path: `/${String(i)}`, method: 'GET' })
    return `${String(res.statusCode)} ${await res.body.text()}`
  }).map(async (p) => await p.catch((err: Error) => err.message)))
  await new Promise((resolve) => setTimeout(resolve, 200))
  proc.child.kill('SIGTERM')
  t.ok(await until(() => proc.logs.some((l) => l.msg.startsWith('stopping'))), 'stopping')
  proc.child.kill('SIGTERM')
  proc.child.kill('SIGINT')
  t.same(await inflight, ['200 slow', '200 slow'], 'both answered')
  t.equal(await proc.exited, 0, 'exit code 0')
})
