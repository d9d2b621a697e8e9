// Preloaded into Switchyard by the harness (`node --import <this> dist/src/main.js …`),
// so the proxy under test stops even if the harness is SIGKILLed and cannot stop it:
// the IPC channel the harness opened closes with it, and we turn that into the
// SIGTERM Switchyard already handles (a clean shutdown). Does nothing when
// started without an IPC channel.
//
// Workers forked by a primary inherit this preload (cluster.fork reuses
// execArgv), but their channel is the primary's, and the worker already
// stops when it closes. Unref'ing it there would let a worker that is waiting
// for its boot message exit at once, so a worker is left alone.

import cluster from 'node:cluster'

if (process.connected && !cluster.isWorker) {
  process.once('disconnect', () => { process.kill(process.pid, 'SIGTERM') })
  // The channel must not keep an otherwise finished process alive.
  process.channel?.unref()
}
