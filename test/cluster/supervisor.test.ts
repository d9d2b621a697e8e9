import { fork, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import type { Port } from '../../src/cluster/ipc.js'
import { Supervisor, type WorkerProcess } from '../../src/cluster/supervisor.js'
import type { Teardown } from '../helpers/certs.js'
import { isAlive } from '../helpers/reap.js'

const WORKER = fileURLToPath(new URL('../fixtures/cluster-worker.ts', import.meta.url))

/** Forks real processes; every one is SIGKILLed at teardown if still alive. */
function spawner (t: Teardown, mode: (id: number, n: number) => string, env: Record<string, string> = {}): { spawn: (id: number) => WorkerProcess, all: ChildProcess[] } {
  const all: ChildProcess[] = []
  t.teardown(() => { for (const p of all) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL') })
  const spawn = (id: number): WorkerProcess => {
    const proc = fork(WORKER, [], { execArgv: ['--import=tsx'], env: { ...process.env, ...env, MODE: mode(id, all.length) }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    all.push(proc)
    return {
      pid: proc.pid ?? 0,
      port: proc as unknown as Port,
      kill: (signal) => { proc.kill(signal) },
      onExit: (fn) => { proc.once('exit', fn) }
    }
  }
  return { spawn, all }
}

t.test('starts every worker, lists them ready, and stops them all', async (t) => {
  const { spawn, all } = spawner(t, () => 'serve')
  const sup = new Supervisor({ count: 2, spawn })
  await sup.start()
  const ws = sup.workers()
  t.same(ws.map((w) => [w.id, w.state, w.restarts]), [[1, 'ready', 0], [2, 'ready', 0]])
  t.same(ws.map((w) => w.pid).sort(), all.map((p) => p.pid).sort())
  const pids = await Promise.all(sup.readyChannels().map(({ channel }) => channel.call('pid', null, 2000)))
  t.same(pids.sort(), all.map((p) => p.pid).sort(), 'each ready channel reaches its own worker')
  await sup.stop(1000)
  t.same(sup.workers().map((w) => w.state), ['exited', 'exited'])
  t.same(all.map((p) => p.exitCode), [0, 0], 'drained workers exit cleanly')
})

t.test('a killed worker is replaced at once; the other is untouched', async (t) => {
  const { spawn, all } = spawner(t, () => 'serve')
  const crashes: Array<{ id: number, signal: string | null, delayMs: number }> = []
  let replaced!: () => void
  const back = new Promise<void>((resolve) => { replaced = resolve })
  const sup = new Supervisor({
    count: 2,
    spawn,
    events: {
      crashed: (w, how) => crashes.push({ id: w.id, signal: how.signal, delayMs: how.delayMs }),
      ready: (w) => { if (w.restarts > 0) replaced() }
    }
  })
  await sup.start()
  const [first, second] = sup.workers()
  process.kill(first!.pid, 'SIGKILL')
  await back
  t.same(crashes, [{ id: 1, signal: 'SIGKILL', delayMs: 0 }])
  const [w1, w2] = sup.workers()
  t.equal(w1!.state, 'ready')
  t.equal(w1!.restarts, 1)
  t.not(w1!.pid, first!.pid, 'a new process')
  t.same(w2, second, 'the other worker did not move')
  t.equal(all.length, 3)
  await sup.stop(1000)
})

t.test('a crash loop is slowed down by the back-off, and stop ends it', async (t) => {
  const { spawn } = spawner(t, () => 'crash', { CRASH_MS: '5' })
  const delays: number[] = []
  let fourth!: () => void
  const enough = new Promise<void>((resolve) => { fourth = resolve })
  const sup = new Supervisor({
    count: 1,
    spawn,
    policy: { baseDelayMs: 20, maxDelayMs: 40, stableMs: 60_000 },
    events: { crashed: (_w, how) => { delays.push(how.delayMs); if (delays.length === 4) fourth() } }
  })
  await sup.start()
  await enough
  await sup.stop(500)
  t.same(delays.slice(0, 4), [0, 20, 40, 40], 'immediate once, then doubling to the cap')
  t.ok(sup.workers()[0]!.restarts >= 3)
})

t.test('a worker that exits before it is ready fails start, and is not replaced', async (t) => {
  const { spawn, all } = spawner(t, (id) => id === 2 ? 'unready' : 'serve')
  let crashed = 0
  const sup = new Supervisor({ count: 2, spawn, events: { crashed: () => { crashed++ } } })
  await t.rejects(sup.start(), /worker 2 \(pid \d+\) exited/)
  await sup.stop(500)
  t.equal(all.length, 2, 'no replacement was started')
  t.equal(crashed, 0, 'not reported as a crash to replace')
})

t.test('stop SIGKILLs a worker that does not drain by the deadline; nothing is left behind', async (t) => {
  const { spawn, all } = spawner(t, () => 'stubborn')
  const sup = new Supervisor({ count: 2, spawn })
  await sup.start()
  await sup.stop(100)
  t.same(all.map((p) => p.signalCode), ['SIGKILL', 'SIGKILL'])
  t.same(all.map((p) => isAlive(p.pid ?? 0)), [false, false])
})
