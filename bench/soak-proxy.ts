// Switchyard for the soak benchmark: the real app (createApp, as src/main.ts
// builds it, without the CLI), in its own process so its memory is its own,
// answering memory queries from the harness over the IPC channel.
//
//   node --expose-gc dist/bench/soak-proxy.js <config.yaml>    (started by bench/soak.ts)
//
// Messages from the harness: { type: 'memory', id, gc } → { type: 'memory', id,
// usage: process.memoryUsage(), gcRan, cache }. With `gc` and --expose-gc, a
// full GC runs first, so heapUsed is what is still reachable. Sends
// { type: 'ready', listeners } once listening. Stops (gracefully, then exits)
// on SIGTERM or when the harness's IPC channel closes.

import { createApp } from '../src/app.js'
import { loadConfig } from '../src/config/load.js'

interface MemoryQuery { readonly type: 'memory'; readonly id: number; readonly gc: boolean }

const send = (msg: unknown): void => { if (process.connected) process.send?.(msg) }

const file = process.argv[2]
if (file === undefined || process.send === undefined) {
  process.stderr.write('usage: node dist/bench/soak-proxy.js <config.yaml> (with an IPC channel: started by bench/soak.ts)\n')
  process.exit(2)
}

const app = createApp(await loadConfig(file))
await app.start()
send({ type: 'ready', pid: process.pid, listeners: app.listeners.map((l) => ({ name: l.name, port: l.address().port })) })

const gc = (globalThis as { gc?: () => void }).gc
process.on('message', (m: MemoryQuery) => {
  if (m?.type !== 'memory') return
  const gcRan = m.gc && gc !== undefined
  if (gcRan) gc()
  send({ type: 'memory', id: m.id, usage: process.memoryUsage(), gcRan, cache: app.cacheStats() ?? null })
})

let stopping = false
function stop (): void {
  if (stopping) return
  stopping = true
  void app.stop(1000).finally(() => process.exit(0))
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
process.on('disconnect', stop)
