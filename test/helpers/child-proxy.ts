// A real Switchyard in its own process (`switchyard start -c
// FILE`), for tests that must survive the proxy crashing: the fuzz harness
// asks after every batch whether it is still alive, and restarts it (new
// ports) so the next run, or fast-check's shrinking, has one to talk to.
// Listeners and admin bind port 0; the admin port comes from the proxy's
// `admin: listening` log line, the listener ports from admin `GET /status`.
// Stopped on teardown (SIGTERM, then SIGKILL after a bound) even when the test fails.
import { spawn, type ChildProcess } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import http from 'node:http'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { tempDir, type Teardown } from './certs.js'
import { nodeArgs } from './entry.js'
import { reapOnExit } from './reap.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const READY_MS = 15_000
const STOP_GRACE_MS = 3_000
/** Bytes of stdout / stderr kept for failure messages. */
const TAIL_BYTES = 16 * 1024

export interface ChildProxy {
  /** PID of the running proxy (changes on restart). */
  readonly pid: number
  readonly adminPort: number
  /** Port of the listener with this name. */
  port (listener: string): number
  /** How many times the proxy was found dead and started again. */
  readonly restarts: number
  /**
   * undefined when the process exists and admin /healthz answers 200 within
   * `limitMs`; otherwise why not, with the end of its stderr (a crash's stack).
   */
  check (limitMs?: number): Promise<string | undefined>
  /** Start a fresh process if this one is gone or not answering. */
  ensureRunning (): Promise<void>
  /** The last lines the proxy wrote (stderr first). */
  tail (): string
  stop (): Promise<void>
}

interface Running {
  readonly child: ChildProcess
  readonly adminPort: number
  readonly ports: ReadonlyMap<string, number>
  /** The ends of its stdout and stderr. */
  readonly out: { stdout: string; stderr: string }
}

/**
 * Writes `yaml` into a temp dir and runs Switchyard on it. The YAML must bind
 * `admin` to `127.0.0.1:0` (or any loopback port) and its listeners to port 0.
 */
export async function startChildProxy (t: Teardown, yaml: string): Promise<ChildProxy> {
  const file = join(tempDir(t), 'switchyard.yaml')
  writeFileSync(file, yaml)
  let current = await launch(file)
  let restarts = 0
  let stopped = false
  t.teardown(() => { stopped = true; return stopChild(current.child) })

  const handle: ChildProxy = {
    get pid () { return current.child.pid ?? -1 },
    get adminPort () { return current.adminPort },
    get restarts () { return restarts },
    port (listener) {
      const p = current.ports.get(listener)
      if (p === undefined) throw new Error(`no listener ${listener} (have ${[...current.ports.keys()].join(', ')})`)
      return p
    },
    async check (limitMs = 3000) {
      const c = current.child
      if (!running(c)) return `proxy process ${c.pid} exited (code ${c.exitCode}, signal ${c.signalCode})\n${tailOf(current)}`
      try {
        process.kill(c.pid!, 0)
      } catch {
        return `proxy process ${c.pid} does not exist\n${tailOf(current)}`
      }
      const r = await get(current.adminPort, '/healthz', limitMs).catch((err: Error) => err)
      if (r instanceof Error) return `admin /healthz did not answer: ${r.message}\n${tailOf(current)}`
      if (r.status !== 200) return `admin /healthz answered ${r.status}\n${tailOf(current)}`
      return undefined
    },
    async ensureRunning () {
      if (stopped) return
      if (await handle.check(2000) === undefined) return
      await stopChild(current.child)
      restarts++
      current = await launch(file)
    },
    tail: () => tailOf(current),
    stop: () => { stopped = true; return stopChild(current.child) }
  }
  return handle
}

async function launch (file: string): Promise<Running> {
  // Without the test runner's loader options: the child is a plain Switchyard.
  const env = { ...process.env }
  delete env.NODE_OPTIONS
  const child = reapOnExit(spawn(process.execPath, [...nodeArgs('src/main.ts'), 'start', '-c', file],
    { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] }))
  child.on('error', () => {}) // reported as "exited" by check()
  const out = { stdout: '', stderr: '' }
  child.stdout!.setEncoding('utf8')
  child.stderr!.setEncoding('utf8')
  child.stderr!.on('data', (s: string) => { out.stderr = (out.stderr + s).slice(-TAIL_BYTES) })
  const adminPort = await new Promise<number>((resolve, reject) => {
    let buffered = ''
    let ready = false
    const timer = setTimeout(() => fail(`not ready within ${READY_MS} ms`), READY_MS)
    const onExit = (): void => fail(`exited during start (code ${child.exitCode}, signal ${child.signalCode})`)
    function fail (why: string): void {
      clearTimeout(timer)
      child.off('exit', onExit)
      void stopChild(child)
      reject(new Error(`switchyard ${why}\n--- stderr\n${out.stderr}\n--- stdout\n${out.stdout}`))
    }
    child.once('exit', onExit)
    child.stdout!.on('data', (s: string) => {
      out.stdout = (out.stdout + s).slice(-TAIL_BYTES)
      if (ready) return
      buffered += s
      let nl: number
      while ((nl = buffered.indexOf('\n')) !== -1) {
        const line = buffered.slice(0, nl)
        buffered = buffered.slice(nl + 1)
        let rec: { msg?: string; port?: number }
        try { rec = JSON.parse(line) as typeof rec } catch { continue }
        if (rec.msg === 'admin: listening' && typeof rec.port === 'number') {
          ready = true
          clearTimeout(timer)
          child.off('exit', onExit)
          resolve(rec.port)
          return
        }
      }
    })
  })
  // A cluster's admin listens before its workers do: wait until it is ready.
  const status = await (async () => {
    for (let i = 0; i < 200 && (await get(adminPort, '/healthz', 5000)).status !== 200; i++) await new Promise((resolve) => setTimeout(resolve, 50))
    return await get(adminPort, '/status', 5000)
  })().catch(async (err: Error) => {
    // Say why: the proxy's own last words (a worker that could not start, say).
    await new Promise((resolve) => setTimeout(resolve, 200))
    await stopChild(child)
    throw new Error(`switchyard's admin API stopped answering during start (${err.message})\n--- stderr\n${out.stderr}\n--- stdout\n${out.stdout}`)
  })
  const listeners = (JSON.parse(status.body) as { listeners: { name: string; port: number }[] }).listeners
  return { child, adminPort, ports: new Map(listeners.map((l) => [l.name, l.port])), out }
}

function running (c: ChildProcess): boolean {
  return c.pid !== undefined && c.exitCode === null && c.signalCode === null
}

/** SIGTERM, then SIGKILL after STOP_GRACE_MS; by PID only. */
async function stopChild (child: ChildProcess): Promise<void> {
  if (!running(child)) return
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  child.kill('SIGTERM')
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<'late'>((resolve) => { timer = setTimeout(() => resolve('late'), STOP_GRACE_MS) })
  const outcome = await Promise.race([exited, late])
  clearTimeout(timer)
  if (outcome === 'late' && running(child)) {
    child.kill('SIGKILL')
    await exited
  }
}

function tailOf (r: Running): string {
  const lines = (s: string, n: number): string => s.split('\n').slice(-n).join('\n')
  return `--- proxy stderr (end)\n${lines(r.out.stderr, 40)}\n--- proxy stdout (end)\n${lines(r.out.stdout, 10)}`
}

function get (port: number, path: string, limitMs: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: false, timeout: limitMs }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => { body += c })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error(`no answer within ${limitMs} ms`)))
    req.on('error', reject)
  })
}
