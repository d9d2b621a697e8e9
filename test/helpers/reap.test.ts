import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { isAlive } from './reap.js'

const FIXTURE = fileURLToPath(new URL('../fixtures/reaper.ts', import.meta.url))

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  t.test(`a test process stopped by ${signal} takes its registered children with it`, async (t) => {
    const parent = spawn(process.execPath, ['--import', 'tsx', FIXTURE], { stdio: ['ignore', 'pipe', 'inherit'] })
    let childPid = 0
    t.teardown(() => {
      if (parent.exitCode === null && parent.signalCode === null) parent.kill('SIGKILL')
      if (childPid > 0 && isAlive(childPid)) process.kill(childPid, 'SIGKILL')
    })
    parent.stdout.setEncoding('utf8')
    const [line] = await once(parent.stdout, 'data') as [string]
    childPid = Number(line.trim())
    t.ok(childPid > 0 && isAlive(childPid), 'the child runs')
    parent.kill(signal)
    const [code] = await once(parent, 'exit') as [number | null]
    t.equal(code, signal === 'SIGTERM' ? 143 : 130)
    // SIGKILL is delivered before the parent exits; the kernel may take a moment to reap.
    for (let i = 0; i < 100 && isAlive(childPid); i++) await new Promise((resolve) => setTimeout(resolve, 20))
    t.notOk(isAlive(childPid), 'the child is gone')
  })
}
