// Preloaded into Switchyard by the harness (`node --import <this> dist/src/main.js …`),
// so the proxy under test stops even if the harness is SIGKILLed and cannot stop it:
// the IPC channel the harness opened closes with it, and we turn that into the
// SIGTERM Switchyard already handles (a clean shutdown). Does nothing when
// started without an IPC channel.

if (process.connected) {
  process.once('disconnect', () => { process.kill(process.pid, 'SIGTERM') })
  // The channel must not keep an otherwise finished process alive.
  process.channel?.unref()
}
