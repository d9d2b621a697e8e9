// A real redis-server (Debian's package) for a test: on a free loopback port,
// no persistence, its own temp dir; stopped on teardown, and SIGKILLed if the
// test process itself is stopped. `stop()` and `start()` take it down and
// bring it back on the same port, for the tests of what Switchyard does while
// Redis is gone. startRedisCluster: several such servers made into one
// Redis Cluster, the slots spread over them.
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { writeFileSync } from 'node:fs'
import net from 'node:net'
import { join } from 'node:path'
import { closedPort } from './origin.js'
import { tempDir, testCertificate, type Teardown } from './certs.js'
import { reapOnExit } from './reap.js'

export interface RedisServer {
  readonly port: number
  /** redis:// or rediss:// URL of it. */
  readonly url: string
  /** The CA (PEM) that signed its certificate, when it speaks TLS. */
  readonly ca: string | undefined
  /** Its cluster bus port (0 when not a cluster node). */
  readonly busPort: number
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
  /**
   * A Redis Cluster of this one node, holding every slot (ready when the
   * cluster says ok); `member`: a cluster node that holds no slots yet
   * (startRedisCluster assigns them and introduces the nodes).
   */
  readonly cluster?: boolean | 'member'
}

export async function startRedis (t: Teardown, opts: RedisOptions = {}): Promise<RedisServer> {
  const dir = tempDir(t)
  const cert = opts.tls === true ? testCertificate(t, ['127.0.0.1', 'localhost']) : undefined
  let port = 0
  // Its own cluster bus port: the default, port + 10000, is past 65535 for a high ephemeral port.
  let busPort = 0
  let child: ChildProcess | undefined
  const clustered = opts.cluster === true || opts.cluster === 'member'

  const args = (): string[] => [
    // notice: its "Ready to accept connections" line says this process, not another, has the port.
    '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no', '--daemonize', 'no', '--loglevel', 'notice',
    ...(clustered
      ? ['--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`, '--cluster-announce-ip', '127.0.0.1',
          '--cluster-port', String(busPort), '--cluster-node-timeout', String(CLUSTER_NODE_TIMEOUT_MS)]
      : []),
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
    // Ready when it says so: a port found free can be taken by another test's
    // Redis meanwhile, and then connecting would reach that one while ours exits.
    const deadline = Date.now() + 10_000
    for (;;) {
      if (proc.exitCode !== null || proc.signalCode !== null) {
        await exited
        throw new Error(`redis-server exited at start: ${out.trim()}`)
      }
      if (out.includes('Ready to accept connections')) {
        if (opts.cluster === true) await ownEverySlot(port, deadline)
        return
      }
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
    if (clustered) busPort = await closedPort()
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
    busPort,
    pid: () => child?.pid,
    stop,
    start: launch
  }
}

/**
 * How long a cluster node may not answer before the others take it for
 * failed (the default is 15 s): a test that stops a master sees the
 * cluster's own verdict soon, and a busy machine does not make one up.
 */
export const CLUSTER_NODE_TIMEOUT_MS = 2000

export interface RedisCluster {
  /** The masters, each its own redis-server (stop one and start it again on its port, dir and node id). */
  readonly nodes: readonly RedisServer[]
  /** `host:port` of every node, for `redis.cluster.nodes`. */
  readonly seeds: readonly string[]
  /** Until every running node says `cluster_state:ok` and sees every slot served (after a node's start()). */
  ready (): Promise<void>
  /** Which node (index in `nodes`) serves `key`'s slot, as the cluster itself says (CLUSTER KEYSLOT, CLUSTER NODES). */
  nodeOf (key: string): Promise<number>
}

/**
 * A Redis Cluster of `masters` nodes (no replicas) on free loopback ports,
 * each its own redis-server and temp dir: the 16384 slots split in even
 * ranges, the nodes introduced with CLUSTER MEET; resolves once every node
 * says `cluster_state:ok`. Every node is stopped on teardown.
 */
export async function startRedisCluster (t: Teardown, masters = 3): Promise<RedisCluster> {
  const nodes = await Promise.all(Array.from({ length: masters }, () => startRedis(t, { cluster: 'member' })))
  const { Redis } = await import('ioredis')
  const clients = nodes.map((n) => new Redis(n.port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null }))
  try {
    for (const [i, c] of clients.entries()) {
      await c.connect()
      // Distinct epochs from the start: no collision for the nodes to settle first.
      await c.call('CLUSTER', 'SET-CONFIG-EPOCH', String(i + 1))
      const from = Math.floor(16384 * i / masters)
      const to = Math.floor(16384 * (i + 1) / masters) - 1
      await c.call('CLUSTER', 'ADDSLOTSRANGE', String(from), String(to))
    }
    for (const n of nodes.slice(1)) await clients[0]!.call('CLUSTER', 'MEET', '127.0.0.1', String(n.port), String(n.busPort))
  } finally {
    for (const c of clients) c.disconnect()
  }
  const ready = async (): Promise<void> => {
    const deadline = Date.now() + 15_000
    for (const n of nodes) {
      if (n.pid() === undefined) continue
      const c = new Redis(n.port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
      try {
        await c.connect()
        for (;;) {
          const info = String(await c.call('CLUSTER', 'INFO'))
          if (info.includes('cluster_state:ok') && info.includes('cluster_slots_ok:16384') && info.includes(`cluster_known_nodes:${masters}`)) break
          if (Date.now() > deadline) throw new Error(`the cluster was not ok on ${n.port} within 15 s:\n${info}`)
          await new Promise((resolve) => setTimeout(resolve, 20))
        }
      } finally {
        c.disconnect()
      }
    }
  }
  const nodeOf = async (key: string): Promise<number> => {
    const up = nodes.find((n) => n.pid() !== undefined)!
    const c = new Redis(up.port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
    try {
      await c.connect()
      const slot = Number(await c.call('CLUSTER', 'KEYSLOT', key))
      // <id> <ip:port@bus> <flags> <master> <ping> <pong> <epoch> <link> <slot or range>...
      for (const line of String(await c.call('CLUSTER', 'NODES')).trim().split('\n')) {
        const [, address = '', , , , , , , ...ranges] = line.split(' ')
        const owns = ranges.some((r) => {
          const [from, to = from] = r.split('-').map(Number)
          return slot >= from! && slot <= to!
        })
        if (owns) return nodes.findIndex((n) => address.startsWith(`127.0.0.1:${n.port}@`))
      }
      throw new Error(`no node serves slot ${slot}`)
    } finally {
      c.disconnect()
    }
  }
  await ready()
  return { nodes, seeds: nodes.map((n) => `127.0.0.1:${n.port}`), ready, nodeOf }
}

function accepts (port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1')
    s.once('connect', () => { s.destroy(); resolve(true) })
    s.once('error', () => { resolve(false) })
  })
}

/** A one-node cluster: take slots 0-16383 (once; the node keeps them in its nodes file) and wait for `cluster_state:ok`. */
async function ownEverySlot (port: number, deadline: number): Promise<void> {
  const { Redis } = await import('ioredis')
  const c = new Redis(port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
  try {
    await c.connect()
    const slots = await c.call('CLUSTER', 'SLOTS') as unknown[]
    if (slots.length === 0) await c.call('CLUSTER', 'ADDSLOTSRANGE', '0', '16383')
    while (!String(await c.call('CLUSTER', 'INFO')).includes('cluster_state:ok')) {
      if (Date.now() > deadline) throw new Error('the one-node cluster did not become ok within 10 s')
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  } finally {
    c.disconnect()
  }
}

export interface SentinelServer {
  readonly port: number
  /** The master's name it monitors. */
  readonly masterName: string
}

/** A real Redis Sentinel (redis-server --sentinel) on a free port, monitoring `master` under `masterName`. */
export async function startSentinel (t: Teardown, master: RedisServer, masterName = 'main'): Promise<SentinelServer> {
  const dir = tempDir(t)
  for (let attempt = 0; ; attempt++) {
    const port = await closedPort()
    const file = join(dir, `sentinel-${port}.conf`)
    // Sentinel rewrites its config file: it must be its own, and writable.
    writeFileSync(file, [
      `port ${port}`, 'bind 127.0.0.1', `dir ${dir}`,
      `sentinel monitor ${masterName} 127.0.0.1 ${master.port} 1`,
      `sentinel down-after-milliseconds ${masterName} 5000`
    ].join('\n') + '\n')
    const proc = reapOnExit(spawn('redis-server', [file, '--sentinel'], { stdio: ['ignore', 'pipe', 'pipe'] }))
    let out = ''
    proc.stdout!.on('data', (c: Buffer) => { out += c.toString() })
    proc.stderr!.on('data', (c: Buffer) => { out += c.toString() })
    const stop = async (): Promise<void> => {
      if (proc.exitCode !== null || proc.signalCode !== null) return
      const exited = once(proc, 'exit')
      proc.kill('SIGTERM')
      await exited
    }
    const deadline = Date.now() + 10_000
    let up = false
    // Its own "+monitor master" line: listening, and watching our master (not another test's sentinel on a reused port).
    while (Date.now() < deadline && proc.exitCode === null && proc.signalCode === null) {
      if (out.includes(`+monitor master ${masterName} 127.0.0.1 ${master.port}`) && await accepts(port)) { up = true; break }
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
    if (up) {
      t.teardown(stop)
      return { port, masterName }
    }
    await stop()
    if (attempt === 4) throw new Error(`redis sentinel did not start: ${out.trim()}`)
  }
}
