// A real redis-server (Debian's package) for a test: on a free loopback port,
// no persistence, its own temp dir; stopped on teardown, and SIGKILLed if the
// test process itself is stopped. `stop()` and `start()` take it down and
// bring it back on the same port, for the tests of what Switchyard does while
// Redis is gone.
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import net from 'node:net'
import { closedPort } from './origin.js'
import { tempDir, testCertificate, type Teardown } from './certs.js'
import { reapOnExit } from './reap.js'

export interface RedisServer {
  readonly port: number
  /** redis:// or rediss:// URL of it. */
  readonly url: string
  /** The CA (PEM) that signed its certificate, when it speaks TLS. */
  readonly ca: string | undefined
  /** The process's pid while it runs, else undefined. */
  pid (): number | undefined
  /** SIGTERM, and wait for the exit. */
  stop (): Promise<void>
  /** Start again on the same port (after stop). */
  start (): Promise<void>
}

export interface RedisOptions {
  /** Speak TLS only (a certificate for 127.0.0.1 made for the test; clients need not present one). */
  readonly tls?: boolean
}

export async function startRedis (t: Teardown, opts: RedisOptions = {}): Promise<RedisServer> {
  const dir = tempDir(t)
  const cert = opts.tls === true ? testCertificate(t, ['127.0.0.1', 'localhost']) : undefined
  let port = 0
  let child: ChildProcess | undefined

  const args = (): string[] => [
    '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no', '--daemonize', 'no', '--loglevel', 'warning',
    ...(cert === undefined
      ? ['--port', String(port)]
      : ['--port', '0', '--tls-port', String(port), '--tls-cert-file', cert.certPath, '--tls-key-file', cert.keyPath,
          '--tls-ca-cert-file', cert.certPath, '--tls-auth-clients', 'no'])
  ]

  const launch = async (): Promise<void> => {
    const proc = reapOnExit(spawn('redis-server', args(), { stdio: ['ignore', 'pipe', 'pipe'] }))
    let out = ''
    proc.stdout!.on('data', (c: Buffer) => { out += c.toString() })
    proc.stderr!.on('data', (c: Buffer) => { out += c.toString() })
    child = proc
    const exited = once(proc, 'exit')
    // Ready when it accepts a TCP connection (it binds before it serves).
    const deadline = Date.now() + 10_000
    for (;;) {
      if (proc.exitCode !== null || proc.signalCode !== null) {
        await exited
        throw new Error(`redis-server exited at start: ${out.trim()}`)
      }
      if (await accepts(port)) return
      if (Date.now() > deadline) throw new Error(`redis-server did not listen on ${port} within 10 s: ${out.trim()}`)
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  }

  const stop = async (): Promise<void> => {
    const proc = child
    child = undefined
    if (proc === undefined || proc.exitCode !== null || proc.signalCode !== null) return
    const exited = once(proc, 'exit')
    proc.kill('SIGTERM')
    const timer = setTimeout(() => proc.kill('SIGKILL'), 5000)
    await exited
    clearTimeout(timer)
  }

  // A port found free may be taken before redis binds it: try a few.
  for (let attempt = 0; ; attempt++) {
    port = await closedPort()
    try {
      await launch()
      break
    } catch (err) {
      await stop()
      if (attempt === 4) throw err
    }
  }
  t.teardown(stop)
  return {
    port,
    url: `${cert === undefined ? 'redis' : 'rediss'}://127.0.0.1:${port}`,
    ca: cert?.certPem,
    pid: () => child?.pid,
    stop,
    start: launch
  }
}

function accepts (port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1')
    s.once('connect', () => { s.destroy(); resolve(true) })
    s.once('error', () => { resolve(false) })
  })
}
