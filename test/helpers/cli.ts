// The real command line in a child process, as an operator runs it.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Test } from 'tap'
import { nodeArgs } from './entry.js'
import { reapOnExit } from './reap.js'

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')

export interface CliOptions {
  /** Added to this process's environment. */
  readonly env?: Record<string, string>
  readonly cwd?: string
  /** Run as this user (and group): only possible as root. */
  readonly uid?: number
}

export interface CliResult {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

function spawnOptions (opts: CliOptions): { cwd: string, env: NodeJS.ProcessEnv, uid?: number, gid?: number } {
  // Another user gets a plain environment, without the test run's variables.
  const base = opts.uid === undefined ? process.env : { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: '/tmp' }
  return {
    cwd: opts.cwd ?? root,
    env: { ...base, ...opts.env },
    ...(opts.uid === undefined ? {} : { uid: opts.uid, gid: opts.uid })
  }
}

/**
 * The command and its arguments. For another user, through `env -u
 * NODE_OPTIONS`: tap adds its process-info hook to every child's NODE_OPTIONS,
 * and that hook writes into the test run's folders, which are not theirs.
 */
function command (args: readonly string[], opts: CliOptions): [string, string[]] {
  const node = [process.execPath, ...nodeArgs('src/main.ts'), ...args]
  return opts.uid === undefined ? [node[0]!, node.slice(1)] : ['/usr/bin/env', ['-u', 'NODE_OPTIONS', ...node]]
}

/** Runs `switchyard ...args` to completion. */
export function cli (args: readonly string[], opts: CliOptions = {}): CliResult {
  const [cmd, argv] = command(args, opts)
  const r = spawnSync(cmd, argv, { ...spawnOptions(opts), encoding: 'utf8', timeout: 60_000 })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

export interface Running {
  readonly child: ChildProcess
  /** pino JSON lines from stdout, parsed. */
  readonly logs: Array<{ msg: string, [key: string]: unknown }>
  stdout (): string
  stderr (): string
  readonly exited: Promise<number | null>
  /** Resolves once a log line matches, or rejects when the process exits first (or after 20 s). */
  waitForLog (test: (l: { msg: string, [key: string]: unknown }) => boolean): Promise<{ msg: string, [key: string]: unknown }>
}

/** Starts `switchyard ...args` in the background; killed (by its pid) on teardown if still running. */
export function spawnCli (t: Test, args: readonly string[], opts: CliOptions = {}): Running {
  const [cmd, argv] = command(args, opts)
  const child = reapOnExit(spawn(cmd, argv, { ...spawnOptions(opts), stdio: ['ignore', 'pipe', 'pipe'] }))
  const logs: Running['logs'] = []
  let out = ''
  let err = ''
  let buf = ''
  child.stdout!.on('data', (c: Buffer) => {
    out += c.toString()
    buf += c.toString()
    let nl
    while ((nl = buf.indexOf('\n')) !== -1) {
      try { logs.push(JSON.parse(buf.slice(0, nl)) as Running['logs'][number]) } catch { /* not JSON */ }
      buf = buf.slice(nl + 1)
    }
  })
  child.stderr!.on('data', (c: Buffer) => { err += c.toString() })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    await exited
  })
  return {
    child,
    logs,
    stdout: () => out,
    stderr: () => err,
    exited,
    async waitForLog (test) {
      for (let i = 0; i < 400; i++) {
        const hit = logs.find(test)
        if (hit !== undefined) return hit
        if (child.exitCode !== null) break
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
      throw new Error(`no such log line; exit ${String(child.exitCode)}\nstdout: ${out}\nstderr: ${err}`)
    }
  }
}
