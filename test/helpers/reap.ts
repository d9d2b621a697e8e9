// Children of a test file must not outlive it. t.teardown covers a failing
// test; this covers the test process itself being stopped (tap's timeout
// sends SIGTERM, Ctrl-C sends SIGINT), when no teardown runs and a proxy
// child would be left holding its ports.
import type { ChildProcess } from 'node:child_process'

const running = new Set<ChildProcess>()
let installed = false

function killAll (): void {
  for (const child of running) child.kill('SIGKILL')
}

function install (): void {
  if (installed) return
  installed = true
  process.once('exit', killAll)
  for (const [signal, code] of [['SIGTERM', 143], ['SIGINT', 130], ['SIGHUP', 129]] as const) {
    process.once(signal, () => {
      killAll()
      process.exit(code)
    })
  }
}

/** Registers `child` to be SIGKILLed if this test process ends first; returns it. */
export function reapOnExit<C extends ChildProcess> (child: C): C {
  install()
  running.add(child)
  child.once('exit', () => running.delete(child))
  return child
}

/** Whether a process with this pid exists (a zombie still counts until reaped). */
export function isAlive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}
