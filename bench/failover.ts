// Failover benchmark (not part of npm test): autocannon GETs through
// Switchyard to two replicas; one replica is killed mid-run and revived
// later. Reports the non-2xx answers and errors clients saw, how long until
// the dead replica was taken out (from Switchyard's own log lines), and how
// long until it got traffic again after it came back.
//   npm run bench:failover [-- --duration 14 --connections 32]
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import autocannon from 'autocannon'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '14' },
    connections: { type: 'string', default: '32' }
  }
})
const duration = Number(values.duration)
const connections = Number(values.connections)

interface Replica {
  readonly name: string
  port: number
  /** Non-health requests, and when the first one after a revival arrived. */
  requests: number
  firstAfterRevive: number | undefined
  revivedAt: number | undefined
  server: http.Server
}

async function startReplica (name: string, port = 0): Promise<Replica> {
  const r: Replica = { name, port, requests: 0, firstAfterRevive: undefined, revivedAt: undefined, server: undefined as never }
  r.server = http.createServer((req, res) => {
    if (req.url !== '/healthz') {
      r.requests++
      if (r.revivedAt !== undefined && r.firstAfterRevive === undefined) r.firstAfterRevive = Date.now()
    }
    res.writeHead(200, { 'content-type': 'text/plain' }).end(name)
  })
  await new Promise<void>((resolve) => r.server.listen(port, '127.0.0.1', resolve))
  r.port = (r.server.address() as AddressInfo).port
  return r
}

function kill (r: Replica): Promise<void> {
  return new Promise((resolve) => {
    r.server.close(() => resolve())
    r.server.closeAllConnections()
  })
}

async function revive (r: Replica): Promise<void> {
  r.revivedAt = Date.now()
  await new Promise<void>((resolve) => r.server.listen(r.port, '127.0.0.1', resolve))
}

interface Scenario { readonly name: string; readonly backendExtra: string }

const scenarios: Scenario[] = [
  {
    name: 'health check only (interval 1s, fall 2, rise 2)',
    backendExtra: 'healthCheck: { interval: 1s, timeout: 500ms, fall: 2, rise: 2 }\n    retries: { attempts: 2 }'
  },
  {
    name: 'health check + outlier detection (3 gateway failures, 2s ejection)',
    backendExtra: 'healthCheck: { interval: 1s, timeout: 500ms, fall: 2, rise: 2 }\n    outlierDetection: { consecutiveGatewayFailure: 3, baseEjectionTime: 2s }\n    retries: { attempts: 2 }'
  },
  {
    name: 'no retries (for contrast)',
    backendExtra: 'healthCheck: { interval: 1s, timeout: 500ms, fall: 2, rise: 2 }\n    retries: { attempts: 0 }'
  }
]

async function run (scenario: Scenario, dir: string) {
  const a = await startReplica('a')
  const b = await startReplica('b')
  const proxyPort = await freePort()
  const file = path.join(dir, 'failover.yaml')
  // One process, as these scenarios were measured before `workers: auto` became the default.
  writeFileSync(file, `
workers: 1
listeners: [{ name: web, bind: "127.0.0.1:${proxyPort}" }]
routes: [{ match: { pathPrefix: / }, backend: app }]
backends:
  app:
    ${scenario.backendExtra}
    servers:
      - { name: a, url: "http://127.0.0.1:${a.port}" }
      - { name: b, url: "http://127.0.0.1:${b.port}" }
`)
  const child = spawn(process.execPath, [path.join(root, 'dist/src/main.js'), 'start', '-c', file], { stdio: ['ignore', 'pipe', 'inherit'] })
  const logs: { time: number; msg: string; server?: string }[] = []
  let buf = ''
  child.stdout.on('data', (c: Buffer) => {
    buf += c.toString()
    let nl
    while ((nl = buf.indexOf('\n')) !== -1) {
      const line = buf.slice(0, nl)
      buf = buf.slice(nl + 1)
      try {
        const rec = JSON.parse(line) as { time: number | string; msg: string; server?: string }
        // The log's time is RFC 3339 text (README: one time format); compared here as epoch ms.
        logs.push({ ...rec, time: typeof rec.time === 'string' ? Date.parse(rec.time) : rec.time })
      } catch { /* not JSON */ }
    }
  })
  try {
    await waitFor(() => logs.some((l) => l.msg === 'listening'), 10_000)
    const statuses: Record<string, number> = {}
    let killedAt = 0
    const killAfter = Math.round(duration * 0.3 * 1000)
    const reviveAfter = Math.round(duration * 0.6 * 1000)
    const killTimer = setTimeout(() => { killedAt = Date.now(); void kill(a) }, killAfter)
    const reviveTimer = setTimeout(() => { void revive(a) }, reviveAfter)
    const result = await new Promise<autocannon.Result>((resolve, reject) => {
      const inst = autocannon({ url: `http://127.0.0.1:${proxyPort}/`, connections, duration }, (err, res) => err ? reject(err) : resolve(res))
      inst.on('response', (_c: unknown, status: number) => { statuses[status] = (statuses[status] ?? 0) + 1 })
    })
    clearTimeout(killTimer)
    clearTimeout(reviveTimer)
    const down = logs.find((l) => l.server === 'a' && l.time >= killedAt && /server down|server ejected/.test(l.msg))
    const up = logs.find((l) => l.server === 'a' && a.revivedAt !== undefined && l.time >= a.revivedAt && /server up|server back/.test(l.msg))
    const non2xx = Object.entries(statuses).filter(([s]) => Number(s) < 200 || Number(s) > 299).reduce((n, [, c]) => n + c, 0)
    return {
      scenario: scenario.name,
      requests: result.requests.total,
      non2xx,
      errors: result.errors,
      statuses,
      ejectMs: down === undefined ? null : down.time - killedAt,
      ejectedBy: down?.msg ?? null,
      upAgainMs: up === undefined || a.revivedAt === undefined ? null : up.time - a.revivedAt,
      firstRequestAfterReviveMs: a.firstAfterRevive === undefined || a.revivedAt === undefined ? null : a.firstAfterRevive - a.revivedAt
    }
  } finally {
    child.kill('SIGTERM')
    await new Promise((resolve) => child.once('exit', resolve))
    await Promise.all([a, b].map((r) => r.server.listening ? kill(r) : undefined))
  }
}

async function freePort (): Promise<number> {
  const s = http.createServer()
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve))
  const port = (s.address() as AddressInfo).port
  await new Promise((resolve) => s.close(resolve))
  return port
}

async function waitFor (cond: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error('Switchyard did not start (see stderr above)')
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

const dir = mkdtempSync(path.join(tmpdir(), 'switchyard-failover-'))
try {
  const rows = []
  for (const s of scenarios) {
    console.log(`[failover] ${s.name}: ${duration}s, ${connections} connections, kill replica a at ${Math.round(duration * 0.3)}s, revive at ${Math.round(duration * 0.6)}s`)
    rows.push(await run(s, dir))
  }
  console.log('\nscenario                                                              requests  non-2xx  errors  eject ms  (by)                         back up ms  first request ms')
  for (const r of rows) {
    console.log(`${r.scenario.padEnd(70)}${String(r.requests).padStart(8)}${String(r.non2xx).padStart(9)}${String(r.errors).padStart(8)}` +
      `${String(r.ejectMs ?? '-').padStart(10)}  ${(r.ejectedBy ?? '-').padEnd(29)}${String(r.upAgainMs ?? '-').padStart(10)}${String(r.firstRequestAfterReviveMs ?? '-').padStart(18)}`)
  }
  mkdirSync(path.join(root, 'bench/results'), { recursive: true })
  const out = path.join(root, 'bench/results', `failover-${new Date().toISOString().replace(/:/g, '-')}.json`)
  writeFileSync(out, JSON.stringify({ node: process.version, duration, connections, rows }, null, 2))
  console.log(`\nresults: ${out}`)
} finally {
  rmSync(dir, { recursive: true, force: true })
}
