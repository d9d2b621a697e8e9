// Child processes of the benchmark: CPU pinning with taskset, spawning, waiting
// until a child is ready (on ports chosen free), its log when it is not, and
// stopping every one of them on any exit path.

import { execFileSync, spawn } from 'node:child_process'
import type { ChildProcess, StdioOptions } from 'node:child_process'
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs'
import { connect, createServer } from 'node:net'
import type { AddressInfo, Server } from 'node:net'
import { cpus, release, tmpdir } from 'node:os'
import { basename, dirname, join, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

/** CPU 0 runs the proxy under test; CPU 1 runs the origin and the load generator. */
export const PROXY_CPU = '0'
export const WORK_CPU = '1'

export interface Pinning {
  readonly enabled: boolean
  readonly proxyCpu: string | null
  readonly originCpu: string | null
  readonly loadgenCpu: string | null
  /** Every CPU the harness could use before it pinned itself (`0-1`): for a proxy with several workers. */
  readonly allCpus: string | null
  /** Why pinning is off, or what was done. */
  readonly note: string
}

function hasTaskset (): boolean {
  try {
    execFileSync('taskset', ['--version'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

/** The CPUs a process may run on, as the kernel reports them (`0-1`, `1`…); null off Linux. */
export function cpusAllowed (pid: number | 'self'): string | null {
  try {
    const m = /^Cpus_allowed_list:\s*(\S+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m?.[1] ?? null
  } catch {
    return null
  }
}

/**
 * Pins this process (every thread: `taskset -a`) to WORK_CPU, where autocannon
 * runs, and tells the caller whether children should be pinned too. Never throws:
 * without taskset, or on a one-CPU machine, it warns and runs unpinned.
 */
export function setupPinning (wanted: boolean): Pinning {
  const off = (note: string): Pinning => ({ enabled: false, proxyCpu: null, originCpu: null, loadgenCpu: null, allCpus: null, note })
  if (!wanted) return off('disabled by --no-pin')
  if (!hasTaskset()) return off('taskset not found; running unpinned')
  // Read before pinning: children inherit this process's affinity, so an unpinned child needs it spelled out.
  const allCpus = cpusAllowed('self')
  try {
    execFileSync('taskset', ['-a', '-p', '-c', WORK_CPU, String(process.pid)], { stdio: 'ignore' })
  } catch {
    return off(`taskset could not pin to CPU ${WORK_CPU} (fewer than 2 CPUs available?); running unpinned`)
  }
  return {
    enabled: true,
    proxyCpu: PROXY_CPU,
    originCpu: WORK_CPU,
    loadgenCpu: WORK_CPU,
    allCpus,
    note: `proxy on CPU ${PROXY_CPU}; origin and load generator on CPU ${WORK_CPU}`
  }
}

export interface SpawnOptions {
  /** CPU list for `taskset -c`, or null for unpinned. */
  readonly cpu: string | null
  readonly stdio: StdioOptions
  readonly cwd?: string
  /** Flags for node itself, before the script (e.g. `--cpu-prof`). */
  readonly nodeFlags?: readonly string[]
}

/** Owns every child process the harness starts, so all of them can be stopped from any exit path. */
export class Children {
  readonly #all = new Set<ChildProcess>()
  /** The signal killAllSync sends a child instead of SIGKILL (nginx: SIGTERM, so its master takes its workers down). */
  readonly #exitSignal = new WeakMap<ChildProcess, NodeJS.Signals>()

  /** Runs `node <script> ...args`, through `taskset -c <cpu>` when pinned (taskset execs, so the pid is node's). */
  spawnNode (script: string, args: readonly string[], opts: SpawnOptions): ChildProcess {
    const nodeArgs = [...(opts.nodeFlags ?? []), script, ...args]
    const child = opts.cpu === null
      ? spawn(process.execPath, nodeArgs, { stdio: opts.stdio, ...(opts.cwd === undefined ? {} : { cwd: opts.cwd }) })
      : spawn('taskset', ['-c', opts.cpu, process.execPath, ...nodeArgs], { stdio: opts.stdio, ...(opts.cwd === undefined ? {} : { cwd: opts.cwd }) })
    this.#all.add(child)
    child.once('exit', () => { this.#all.delete(child) })
    // A spawn failure is reported on 'error'; without a listener it would crash the harness.
    child.on('error', () => { this.#all.delete(child) })
    return child
  }

  /**
   * Runs any command (nginx, wrk, h2load), through `taskset -c <cpu>` when
   * pinned; owned like spawnNode's children. `exitSignal`: what killAllSync
   * sends it (default SIGKILL); a master that must stop its own workers wants SIGTERM.
   */
  spawnCommand (command: string, args: readonly string[], opts: Omit<SpawnOptions, 'nodeFlags'> & { readonly exitSignal?: NodeJS.Signals }): ChildProcess {
    const child = opts.cpu === null
      ? spawn(command, [...args], { stdio: opts.stdio, ...(opts.cwd === undefined ? {} : { cwd: opts.cwd }) })
      : spawn('taskset', ['-c', opts.cpu, command, ...args], { stdio: opts.stdio, ...(opts.cwd === undefined ? {} : { cwd: opts.cwd }) })
    this.#all.add(child)
    if (opts.exitSignal !== undefined) this.#exitSignal.set(child, opts.exitSignal)
    child.once('exit', () => { this.#all.delete(child) })
    child.on('error', () => { this.#all.delete(child) })
    return child
  }

  /** SIGTERM one child, wait up to `graceMs`, then SIGKILL it. */
  async stop (child: ChildProcess, graceMs = 5000): Promise<void> {
    if (!isRunning(child)) return
    const exited = new Promise<void>((resolve) => { child.once('exit', () => { resolve() }) })
    child.kill('SIGTERM')
    let timer: NodeJS.Timeout | undefined
    const late = new Promise<'late'>((resolve) => { timer = setTimeout(() => { resolve('late') }, graceMs) })
    const outcome = await Promise.race([exited, late])
    clearTimeout(timer)
    if (outcome === 'late' && isRunning(child)) {
      child.kill('SIGKILL')
      await exited
    }
  }

  /** SIGTERM every running child, wait up to `graceMs`, then SIGKILL what is left. */
  async stopAll (graceMs = 5000): Promise<void> {
    await Promise.all([...this.#all].map((child) => this.stop(child, graceMs)))
  }

  /** For `process.on('exit')`, where nothing async can run: SIGKILL every child still running (or its exitSignal). */
  killAllSync (): void {
    for (const child of this.#all) {
      if (isRunning(child)) child.kill(this.#exitSignal.get(child) ?? 'SIGKILL')
    }
  }
}

/** The commit a result was measured on, for the report; null outside a git checkout. */
export function gitCommit (root: string): string | null {
  try {
    return execFileSync('git', ['rev-parse', 'HEAD'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
  } catch {
    return null
  }
}

export function isRunning (child: ChildProcess): boolean {
  return child.pid !== undefined && child.exitCode === null && child.signalCode === null
}

/** Resolves with the first stdout line of `child` parsed as JSON; rejects if it exits or stays silent. */
export function readJsonLine<T> (child: ChildProcess, what: string, timeoutMs: number): Promise<T> {
  const stdout = child.stdout
  if (stdout === null) return Promise.reject(new Error(`${what}: stdout is not piped`))
  return new Promise<T>((resolve, reject) => {
    let buffered = ''
    const done = (err: Error | null, value?: T): void => {
      clearTimeout(timer)
      stdout.off('data', onData)
      child.off('exit', onExit)
      child.off('error', onError)
      stdout.resume() // keep draining anything printed later
      if (err !== null) reject(err)
      else resolve(value as T)
    }
    const onData = (chunk: Buffer): void => {
      buffered += chunk.toString('utf8')
      const nl = buffered.indexOf('\n')
      if (nl === -1) return
      try {
        done(null, JSON.parse(buffered.slice(0, nl)) as T)
      } catch (err) {
        done(new Error(`${what}: first line is not JSON: ${buffered.slice(0, nl)}`, { cause: err }))
      }
    }
    const onExit = (code: number | null, signal: string | null): void => {
      done(new Error(`${what} exited before it was ready (code ${code}, signal ${signal})`))
    }
    const onError = (err: Error): void => { done(new Error(`${what} could not be started: ${err.message}`, { cause: err })) }
    const timer = setTimeout(() => { done(new Error(`${what} printed no port within ${timeoutMs} ms`)) }, timeoutMs)
    stdout.on('data', onData)
    child.once('exit', onExit)
    child.once('error', onError)
  })
}

function canConnect (port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port })
    socket.setTimeout(500)
    const finish = (ok: boolean): void => {
      socket.destroy()
      resolve(ok)
    }
    socket.once('connect', () => { finish(true) })
    socket.once('error', () => { finish(false) })
    socket.once('timeout', () => { finish(false) })
  })
}

/**
 * Polls TCP connects until every port accepts, the child exits, or `timeoutMs`
 * passes (bounded: at most timeoutMs / 100 rounds). Returns null when ready,
 * otherwise the reason.
 */
export async function waitForPorts (child: ChildProcess, ports: readonly number[], timeoutMs: number): Promise<string | null> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (!isRunning(child)) return `exited (code ${child.exitCode}, signal ${child.signalCode})`
    const ok = await Promise.all(ports.map(canConnect))
    if (ok.every(Boolean)) return null
    if (Date.now() >= deadline) return `ports ${ports.join(', ')} not accepting connections after ${timeoutMs} ms`
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

/** One benchmark process: where the repo is, its children, a temp dir, and an exit that stops them all. */
export interface BenchRun {
  /** The repository root, and its dist/ (benchmarks run compiled). */
  readonly root: string
  readonly dist: string
  readonly children: Children
  /** A fresh temp dir, removed on any exit. */
  tempDir (prefix: string): string
  /**
   * `node <script> ...args` (Switchyard's `start`), its output straight to
   * `logFile`: no pipe for the harness to drain on the load CPU. It gets
   * bench/parent-watch.js (fd 3 is IPC), so it stops if we die without
   * stopping it.
   */
  spawnLogged (script: string, args: readonly string[], opts: { readonly cpu: string | null, readonly logFile: string, readonly nodeFlags: readonly string[] }): ChildProcess
  /** Stop every child, remove the temp dir, exit with `code`. */
  shutdown (code: number): Promise<never>
  log (msg: string): void
}

/**
 * Sets up a benchmark process named `name` (for its error lines), from its
 * module URL (dist/bench/<name>.js once compiled): every exit path, signal or
 * crash stops the children it started and removes its temp dir.
 */
export function benchRun (name: string, moduleUrl: string): BenchRun {
  const here = dirname(fileURLToPath(moduleUrl))
  const root = basename(dirname(here)) === 'dist' ? resolve(here, '../..') : resolve(here, '..')
  const children = new Children()
  let tmp: string | undefined
  let exiting = false
  const removeTmp = (): void => {
    if (tmp !== undefined) {
      rmSync(tmp, { recursive: true, force: true })
      tmp = undefined
    }
  }
  const shutdown = async (code: number): Promise<never> => {
    if (!exiting) {
      exiting = true
      try {
        await children.stopAll()
      } finally {
        removeTmp()
      }
    }
    process.exit(code)
  }
  process.on('exit', () => {
    children.killAllSync()
    removeTmp()
  })
  process.on('SIGINT', () => {
    process.stderr.write('\ninterrupted: stopping child processes\n')
    void shutdown(130)
  })
  process.on('SIGTERM', () => { void shutdown(143) })
  process.on('uncaughtException', (err) => {
    process.stderr.write(`${name}: ${err.stack ?? String(err)}\n`)
    void shutdown(1)
  })
  process.on('unhandledRejection', (err) => {
    process.stderr.write(`${name}: unhandled rejection: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`)
    void shutdown(1)
  })
  const dist = join(root, 'dist')
  return {
    root,
    dist,
    children,
    spawnLogged (script, args, opts) {
      const fd = openSync(opts.logFile, 'w')
      try {
        return children.spawnNode(script, args, {
          cpu: opts.cpu,
          stdio: ['ignore', fd, fd, 'ipc'],
          cwd: root,
          nodeFlags: ['--import', pathToFileURL(join(dist, 'bench/parent-watch.js')).href, ...opts.nodeFlags]
        })
      } finally {
        closeSync(fd)
      }
    },
    tempDir (prefix) {
      tmp = mkdtempSync(join(tmpdir(), prefix))
      return tmp
    },
    shutdown,
    log: (msg) => { process.stderr.write(msg + '\n') }
  }
}

/** `n` distinct free ports: all held open until every one is chosen, so none comes back twice. */
export async function freePorts (n: number): Promise<number[]> {
  const servers: Server[] = []
  try {
    for (let i = 0; i < n; i++) {
      const s = createServer()
      servers.push(s)
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject)
        s.listen(0, '127.0.0.1', resolve)
      })
    }
    return servers.map((s) => (s.address() as AddressInfo).port)
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => { s.close(() => { resolve() }) })))
  }
}

/** The last `lines` lines of a child's log file, indented for an error message. */
export function logTail (file: string, lines: number): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).map((l) => `    | ${l}`).join('\n')
  } catch {
    return '    | (no log)'
  }
}

/** The machine a result was measured on, for the JSON reports. */
export function machineFacts (): { node: string, os: string, cpuModel: string | null, cpuCount: number } {
  return { node: process.version, os: `${process.platform} ${release()}`, cpuModel: cpus()[0]?.model ?? null, cpuCount: cpus().length }
}
