import { fork, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { Channel, IpcError, type Port } from '../../src/cluster/ipc.js'
import type { Teardown } from '../helpers/certs.js'

const CHILD = fileURLToPath(new URL('../fixtures/ipc-child.ts', import.meta.url))

async function child (t: Teardown & { equal: (found: unknown, wanted: unknown, message: string) => void }): Promise<{ proc: ChildProcess, channel: Channel }> {
  const proc = fork(CHILD, [], { execArgv: ['--import=tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  t.teardown(() => { if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL') })
  const channel = new Channel(proc as unknown as Port)
  const up = new Promise((resolve) => channel.listen('up', resolve))
  t.equal(await up, proc.pid, 'the child announced itself')
  return { proc, channel }
}

t.test('calls are answered by id, in any order, with values and errors', async (t) => {
  const { channel, proc } = await child(t)
  const [slow, fast] = await Promise.all([channel.call('later', { n: 1 }, 2000), channel.call('echo', { n: 2 }, 2000)])
  t.same(slow, { n: 1 })
  t.same(fast, { n: 2 })
  await t.rejects(channel.call('fail', null, 2000), new IpcError('fail', 'refused on purpose'))
  await t.rejects(channel.call('nope', null, 2000), /nope: no handler on this side/)
  proc.disconnect()
  await once(proc, 'exit')
})

t.test('both sides call: a handler may call back before it answers', async (t) => {
  const { channel, proc } = await child(t)
  channel.handle('double', (n) => (n as number) * 2)
  t.equal(await channel.call('ask-back', 21, 2000), 42)
  proc.disconnect()
  await once(proc, 'exit')
})

t.test('notices go one way and are delivered', async (t) => {
  const { channel, proc } = await child(t)
  const pong = new Promise((resolve) => channel.listen('pong', resolve))
  t.ok(channel.notify('ping', 'x'))
  t.equal(await pong, 'x')
  proc.disconnect()
  await once(proc, 'exit')
})

t.test('a call that is never answered fails on its timeout', async (t) => {
  const { channel, proc } = await child(t)
  await t.rejects(channel.call('never', null, 50), /never: no answer within 50 ms/)
  proc.disconnect()
  await once(proc, 'exit')
})

t.test('a child that dies fails its pending calls at once, and later calls too', async (t) => {
  const { channel, proc } = await child(t)
  const exited = once(proc, 'exit')
  await t.rejects(channel.call('die', null, 60_000), /die: the channel closed/)
  const [code] = await exited
  t.equal(code, 3)
  await t.rejects(channel.call('echo', 1, 1000), /echo: the channel is closed/)
  t.notOk(channel.notify('ping', 1), 'a notice to a dead child reports it was not sent')
})

t.test('a message written after the child died, before its channel reports it: the call fails, nothing is thrown', async (t) => {
  // The primary's crash a stop could cause: writing to a worker that has just
  // died gives EPIPE; without a send callback that is an 'error' event on the
  // worker that nobody handles, and it ends the process.
  const { channel, proc } = await child(t)
  const errors: Error[] = []
  proc.on('error', (err) => { errors.push(err) })
  const exited = once(proc, 'exit')
  proc.kill('SIGKILL')
  // Block this thread until the child is surely gone, so the sends below
  // write into a dead pipe before the event loop sees the disconnect.
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 300)
  channel.notify('ping', 1)
  await t.rejects(channel.call('echo', 1, 60_000), /echo: (could not be sent|the channel closed)/)
  await exited
  t.same(errors.map((e) => e.message), [], 'no error event on the child')
})

t.test('a child exits when its parent disconnects (no orphans)', async (t) => {
  const { proc } = await child(t)
  const exited = once(proc, 'exit')
  proc.disconnect()
  const [code] = await exited
  t.equal(code, 0)
})
