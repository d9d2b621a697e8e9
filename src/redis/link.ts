// The one connection to Redis that the shared cache, the purge fan-out and
// the rate limits go through (ioredis: one API for a single server, Sentinel
// and Redis Cluster). Redis is never on the critical path: an operation is
// refused at once while the connection is down (no offline queue), fails after
// `timeout` when Redis is slow, and every caller treats a failure as "Redis
// has nothing to say" and goes on without it. After a timeout, operations
// are shed (refused at once) for SLOW_COOLDOWN_MS, then one goes through as a
// probe while the others are still shed: a slow Redis costs a request one
// timeout at most, and most requests none. The state (connecting → up →
// down → up …) is logged and counted once per transition; reconnecting is
// ioredis's job, with a capped back-off.
import { readFileSync } from 'node:fs'
import { Cluster, Redis, type RedisOptions } from 'ioredis'

/** What the Redis constructor takes (its declared type adds `replyMapping`). */
type Options = RedisOptions & { replyMapping: 'legacy' }
import type { Logger } from 'pino'
import type { RedisConfig } from '../config/schema.js'
import { Latency, toMicros } from '../admin/metrics/latency.js'
import type { LatencyExport } from '../admin/metrics/types.js'
import { noOperations, type OperationResult } from './operations.js'

export type RedisState = 'connecting' | 'up' | 'down'

/** An operation that Redis did not answer in time, or could not be sent. */
export class RedisUnavailable extends Error {
  override readonly name = 'RedisUnavailable'
  readonly code = 'REDIS_UNAVAILABLE'
  /** It went out (and timed out, or failed there): it may have run in Redis all the same. */
  readonly sent: boolean

  constructor (message: string, sent = false, options?: ErrorOptions) {
    super(message, options)
    this.sent = sent
  }
}

/** The client ioredis gives us: a single connection or a cluster. */
export type RedisClient = Redis | Cluster

/** How long operations are shed after one timed out, before one probes again (ms). */
export const SLOW_COOLDOWN_MS = 1000

/**
 * Timeouts in a row (nothing answered in between) after which the connection
 * is taken for dead and replaced: a half-open one (a lost NAT entry, a host
 * gone without a reset) would otherwise stay until the kernel gives up, about
 * 15 minutes, while a new connection would work.
 */
export const DEAD_AFTER_TIMEOUTS = 3

/** What /status, the dashboard and /metrics show (a cluster's primary merges the workers'). */
export interface RedisStats {
  /** `degraded`: connected, but operations are shed after a timeout, or failed within FAILING_MS (a Redis Cluster node unreachable). */
  readonly state: RedisState | 'degraded'
  /** Where it connects, without credentials. */
  readonly target: string
  readonly since: string
  readonly transitions: number
  /** By operation, by result. */
  readonly operations: Readonly<Record<string, Readonly<Record<OperationResult, number>>>>
  readonly latency: LatencyExport
}

/**
 * How long after an operation failed with an error (not a timeout) /status
 * says degraded: a Redis Cluster with a node down answers the other nodes'
 * operations and fails that node's at once, so nothing is shed to tell it by.
 */
export const FAILING_MS = 1000

/** Operation latency quantiles cover the last one to two of these (Redis sees far fewer operations than requests). */
export const REDIS_HALF_WINDOW_MS = 30_000

export class RedisLink {
  readonly config: RedisConfig
  readonly client: RedisClient
  readonly #log: Logger | undefined
  #state: RedisState = 'connecting'
  #since = Date.now()
  #transitions = 0
  readonly #ops = new Map<string, Record<OperationResult, number>>()
  readonly #latency = new Latency()
  /** The options of every connection (see clientOptions): a cluster's subscriber makes its own. */
  readonly #options: Record<string, unknown>
  #subscriber: Redis | undefined
  /** Full names of the channels subscribed, and their listeners: a Redis Cluster's subscriber subscribes them again on each node it moves to. */
  readonly #channels = new Set<string>()
  readonly #listeners = new Set<(channel: Buffer, message: Buffer) => void>()
  /** A Redis Cluster's subscriber: connections that ended in a row (its back-off, and the next node to try), and the timer of the next. */
  #moves = 0
  #moveTimer: NodeJS.Timeout | undefined
  #closed = false
  /** Operations are shed until then (performance.now() ms; 0: not shedding), and while a probe is out. */
  #shedUntil = 0
  #probing = false
  /** An operation failed with an error until then (performance.now() ms; see FAILING_MS). */
  #failingUntil = 0
  /** Operations that timed out since the last answer (see DEAD_AFTER_TIMEOUTS). */
  #timeouts = 0
  readonly #onState = new Set<(state: RedisState) => void>()
  readonly #onSubscribed = new Set<() => void>()

  constructor (config: RedisConfig, log?: Logger) {
    this.config = config
    this.#log = log?.child({ redis: describeTarget(config) })
    this.#options = clientOptions(config)
    this.client = connect(config, this.#options)
    this.#watch(this.client, true)
  }

  get state (): RedisState { return this.#state }
  /** A Redis Cluster: keys in different slots cannot meet in one script. */
  get cluster (): boolean { return this.client instanceof Cluster }
  get up (): boolean { return this.#state === 'up' }

  /** Told each state change (the shared cache resyncs when Redis returns). */
  onState (fn: (state: RedisState) => void): () => void {
    this.#onState.add(fn)
    return () => this.#onState.delete(fn)
  }

  /**
   * Runs `fn` on the client, bounded by the configured timeout. Rejects with
   * RedisUnavailable at once when the connection is down, and when Redis is
   * slower than the timeout (the command may still run there: every write we
   * make is safe to lose or to apply late).
   */
  async run<T> (op: string, fn: (client: RedisClient) => Promise<T>): Promise<T> {
    return await this.#send(op, fn, true)
  }

  /**
   * As run(), for an operation no request waits for (letting go of a fetch
   * lock): sent even while operations are shed, since it delays nobody and
   * whoever waits on it would wait longer; its timeout sheds nothing.
   */
  async runAside<T> (op: string, fn: (client: RedisClient) => Promise<T>): Promise<T> {
    return await this.#send(op, fn, false)
  }

  async #send<T> (op: string, fn: (client: RedisClient) => Promise<T>, gated: boolean): Promise<T> {
    if (this.#state !== 'up') {
      this.#count(op, 'down')
      throw new RedisUnavailable(`redis ${op}: not connected (${this.#state})`)
    }
    const start = performance.now()
    let probe = false
    if (gated && this.#shedUntil !== 0) {
      if (start < this.#shedUntil || this.#probing) {
        this.#count(op, 'shed')
        throw new RedisUnavailable(`redis ${op}: not sent, Redis timed out less than ${SLOW_COOLDOWN_MS} ms ago`)
      }
      probe = this.#probing = true
    }
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new RedisUnavailable(`redis ${op}: no answer within ${this.config.timeout} ms`, true)), this.config.timeout)
    })
    try {
      const value = await Promise.race([fn(this.client), timeout])
      this.#timeouts = 0
      this.#done(op, 'ok', start)
      if (probe) this.#shedUntil = 0
      return value
    } catch (err) {
      const timedOut = err instanceof RedisUnavailable
      this.#done(op, timedOut ? 'timeout' : 'error', start)
      if (!timedOut) {
        this.#timeouts = 0
        this.#failingUntil = performance.now() + FAILING_MS
      } else if (++this.#timeouts >= DEAD_AFTER_TIMEOUTS) {
        this.#replaceConnections()
      }
      // An error reply is an answer in time: only a timeout sheds.
      if (timedOut && gated) this.#shedUntil = performance.now() + SLOW_COOLDOWN_MS
      else if (probe) this.#shedUntil = 0
      if (timedOut) throw err
      throw new RedisUnavailable(`redis ${op}: ${(err as Error).message}`, true, { cause: err })
    } finally {
      clearTimeout(timer)
      if (probe) this.#probing = false
    }
  }

  /**
   * A Lua script as a command of the client (sent by SHA, loaded on first
   * use): call the result with the script's keys (the key prefix is added)
   * and arguments, inside run(). Replies come back as Buffers.
   */
  script (name: string, lua: string, numberOfKeys: number): (client: RedisClient, keys: readonly string[], args: ReadonlyArray<string | number | Buffer>) => Promise<unknown> {
    this.client.defineCommand(name, { lua, numberOfKeys })
    const method = `${name}Buffer`
    return (client, keys, args) => (client as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>)[method]!(...keys, ...args)
  }

  /**
   * A second connection for pub/sub (a subscribed connection can send
   * nothing else), made on first use; `onMessage` gets every message of
   * `channel` (the prefix is added here: ioredis does not prefix channels).
   */
  subscribe (channel: string, onMessage: (message: Buffer) => void): () => void {
    const sub = this.#subscriber ??= this.#newSubscriber()
    const name = this.config.keyPrefix + channel
    const listener = (ch: Buffer, message: Buffer): void => { if (ch.toString() === name) onMessage(message) }
    this.#listeners.add(listener)
    this.#channels.add(name)
    // Subscriptions are restored by ioredis after a reconnect (autoResubscribe), and by #newSubscriber on another node.
    sub.subscribe(name).catch((err: Error) => { this.#log?.warn({ err }, 'redis: subscribe failed; retried on reconnect') })
    // The channel stays subscribed (another listener may share it); this listener stops hearing it.
    return () => { this.#listeners.delete(listener) }
  }

  /**
   * Told each time the subscriber connection is ready with its channels
   * subscribed (the first time, and after each reconnect): what was published
   * while it was away was not heard, and is not replayed.
   */
  onSubscribed (fn: () => void): () => void {
    this.#onSubscribed.add(fn)
    return () => this.#onSubscribed.delete(fn)
  }

  /** A pub/sub channel's full name (ioredis prefixes keys, not channels): for scripts that publish. */
  channel (name: string): string {
    return this.config.keyPrefix + name
  }

  /** Publishes on `channel` (prefixed like subscribe's); resolves with how many subscribers got it. */
  publish (channel: string, message: Buffer | string): Promise<number> {
    return this.run('publish', (c) => c.publish(this.config.keyPrefix + channel, message))
  }

  stats (): RedisStats {
    const operations: Record<string, Record<OperationResult, number>> = {}
    for (const [op, counts] of this.#ops) operations[op] = { ...counts }
    return {
      // Degraded while operations are shed (or a probe is out) or fail, not for good after one failure in a quiet spell.
      state: this.#state === 'up' && (this.#probing || performance.now() < Math.max(this.#shedUntil, this.#failingUntil)) ? 'degraded' : this.#state,
      target: describeTarget(this.config),
      since: new Date(this.#since).toISOString(),
      transitions: this.#transitions,
      operations,
      latency: this.#latency.export(Math.floor(Date.now() / REDIS_HALF_WINDOW_MS), true)
    }
  }

  async close (): Promise<void> {
    this.#closed = true
    clearTimeout(this.#moveTimer)
    const quit = async (c: RedisClient | undefined): Promise<void> => {
      if (c === undefined) return
      // quit() waits for pending replies; a dead connection is simply dropped.
      if (c.status === 'ready') await c.quit().catch(() => c.disconnect())
      else c.disconnect()
    }
    await Promise.all([quit(this.client), quit(this.#subscriber)])
  }

  /**
   * Nothing answered DEAD_AFTER_TIMEOUTS operations in a row: the sockets are
   * destroyed (not ended: a FIN on a dead path is never answered), and
   * ioredis reconnects as after any drop. The subscriber goes too: it sends
   * nothing, so it cannot tell, and it most likely went the same way.
   */
  #replaceConnections (): void {
    this.#timeouts = 0
    this.#log?.warn({ timeouts: DEAD_AFTER_TIMEOUTS }, 'redis: no answer to several operations in a row; replacing the connection')
    for (const c of [this.client, this.#subscriber]) {
      if (c === undefined) continue
      for (const node of c instanceof Cluster ? c.nodes() : [c]) (node as unknown as { stream?: { destroy (): void } }).stream?.destroy()
    }
  }

  #newSubscriber (): Redis {
    const c = this.client
    // Its subscriptions may wait for the connection (nothing waits on them), and ioredis restores them after a reconnect.
    const sub = c instanceof Cluster ? this.#nodeSubscriber(c) : c.duplicate({ enableOfflineQueue: true })
    this.#watch(sub, false)
    sub.on('messageBuffer', (ch: Buffer, message: Buffer) => { for (const fn of this.#listeners) fn(ch, message) })
    if (this.#channels.size > 0) sub.subscribe(...this.#channels).catch(() => {})
    // ioredis sends the SUBSCRIBEs before 'ready' is emitted: the PING's answer comes after theirs.
    sub.on('ready', () => {
      this.#moves = 0
      void sub.ping().then(() => { for (const fn of this.#onSubscribed) fn() }, () => {})
    })
    return sub
  }

  /**
   * A Redis Cluster's subscriber: a plain connection to one master (a
   * PUBLISH reaches the subscribers of every node). Not ioredis's cluster
   * subscriber: that one moves to another node without a word, so purges
   * published meanwhile were never caught up. This one does not reconnect:
   * when it ends, the next goes to the next master (a failed one may never
   * come back), and its 'ready' is told like any reconnect's.
   */
  #nodeSubscriber (c: Cluster): Redis {
    const known = c.nodes('master').map((n) => ({ host: n.options.host, port: n.options.port }))
    const nodes = known.length > 0 ? known : this.config.cluster!.nodes
    const node = nodes[this.#moves % nodes.length]!
    const sub = new Redis({ ...this.#options, host: node.host, port: node.port, enableOfflineQueue: true, retryStrategy: () => null } as unknown as Options)
    sub.once('end', () => {
      if (this.#closed || this.#subscriber !== sub) return
      this.#moveTimer = setTimeout(() => {
        if (!this.#closed) this.#subscriber = this.#newSubscriber()
      }, backOff(this.config, ++this.#moves))
    })
    return sub
  }

  #watch (c: RedisClient, main: boolean): void {
    // Errors are connection trouble, reported through the state change below; an unhandled 'error' event would end the process.
    c.on('error', (err: Error) => { if (main) this.#log?.debug({ err }, 'redis: connection error') })
    if (!main) return
    c.on('ready', () => {
      // A new connection starts afresh: what timed out was the old one.
      this.#shedUntil = 0
      this.#failingUntil = 0
      this.#timeouts = 0
      this.#set('up', undefined)
    })
    c.on('close', () => { this.#set('down', 'connection closed') })
    c.on('end', () => { this.#set('down', 'connection ended') })
  }

  #set (state: RedisState, reason: string | undefined): void {
    if (this.#closed || state === this.#state || (state === 'down' && this.#state === 'connecting' && this.#transitions === 0 && reason === undefined)) return
    const was = this.#state
    this.#state = state
    this.#since = Date.now()
    this.#transitions++
    if (state === 'up') this.#log?.info({ was }, 'redis: up')
    else this.#log?.warn({ was, reason }, 'redis: down; going on without it (local cache, origin, local limits) until it returns')
    for (const fn of this.#onState) fn(state)
  }

  #done (op: string, result: OperationResult, start: number): void {
    this.#count(op, result)
    const ms = performance.now() - start
    this.#latency.record(toMicros(ms), ms, Math.floor(Date.now() / REDIS_HALF_WINDOW_MS))
  }

  #count (op: string, result: OperationResult): void {
    let c = this.#ops.get(op)
    if (c === undefined) {
      c = noOperations()
      this.#ops.set(op, c)
    }
    c[result]++
  }
}

/** `redis://host:port/db`, `sentinel mymaster@a:26379,b:26379` or `cluster a:7000,…`: never the password. */
export function describeTarget (config: RedisConfig): string {
  const nodes = (list: ReadonlyArray<{ host: string, port: number }>): string =>
    list.map((n) => `${n.host.includes(':') ? `[${n.host}]` : n.host}:${n.port}`).join(',')
  if (config.sentinel !== undefined) return `sentinel ${config.sentinel.masterName}@${nodes(config.sentinel.nodes)}`
  if (config.cluster !== undefined) return `cluster ${nodes(config.cluster.nodes)}`
  const u = new URL(config.url ?? 'redis://127.0.0.1')
  return `${u.protocol}//${u.host}${u.pathname === '/' ? '' : u.pathname}`
}

/**
 * Error replies that say this connection's node cannot serve us any more:
 * after a failover behind one address (a DNS name, a VIP) the connection
 * stays on the demoted node (READONLY), or reaches one still loading or
 * without its master; a new connection reaches the new primary.
 */
const RECONNECT_ON = /^(READONLY|LOADING|MASTERDOWN)\b/

/** Reconnects back off from 100 ms, doubling, up to maxReconnectDelay. */
function backOff (config: RedisConfig, times: number): number {
  return Math.min(50 * 2 ** Math.min(times, 10), config.maxReconnectDelay)
}

/** The options of a connection to one server or node (Redis's; a Cluster takes some for itself, see connect). */
function clientOptions (config: RedisConfig): Record<string, unknown> {
  const tls = config.tls === undefined
    ? undefined
    : {
        ...(config.tls.ca === undefined ? {} : { ca: readFileSync(config.tls.ca) }),
        ...(config.tls.cert === undefined ? {} : { cert: readFileSync(config.tls.cert) }),
        ...(config.tls.key === undefined ? {} : { key: readFileSync(config.tls.key) }),
        ...(config.tls.servername === undefined ? {} : { servername: config.tls.servername })
      }
  // Plain objects: ioredis's option types do not allow for exactOptionalPropertyTypes.
  return {
    keyPrefix: config.keyPrefix,
    connectTimeout: config.connectTimeout,
    // Fail at once while disconnected instead of queueing: a request never waits for Redis to come back.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    // Commands issued in the same tick go out in one write (a store's script and index update, many requests' lookups).
    enableAutoPipelining: true,
    retryStrategy: (times: number) => backOff(config, times),
    // 1: reconnect, without sending the command again (its caller has its answer: a failure).
    reconnectOnError: (err: Error) => RECONNECT_ON.test(err.message) ? 1 : false,
    ...(config.username === undefined ? {} : { username: config.username }),
    ...(config.password === undefined ? {} : { password: config.password }),
    ...(tls === undefined ? {} : { tls })
  }
}

function connect (config: RedisConfig, common: Record<string, unknown>): RedisClient {
  if (config.cluster !== undefined) {
    const { keyPrefix, retryStrategy, enableOfflineQueue, enableAutoPipelining, ...redisOptions } = common
    // A node that cannot be reached, or a cluster that answers CLUSTERDOWN, fails the operation at once, as a lost
    // connection does: ioredis would retry every 100 ms past our timeout, and that timeout would shed the other
    // nodes' operations too (ioredis looks the slots up again when a node has left its pool).
    const opts = { keyPrefix, enableOfflineQueue, enableAutoPipelining, clusterRetryStrategy: retryStrategy, retryDelayOnFailover: 0, retryDelayOnClusterDown: 0, redisOptions }
    return new Cluster(config.cluster.nodes.map((n) => ({ host: n.host, port: n.port })), opts as ConstructorParameters<typeof Cluster>[1])
  }
  if (config.sentinel !== undefined) {
    const tls = common.tls
    return new Redis({
      ...common,
      sentinels: config.sentinel.nodes.map((n) => ({ host: n.host, port: n.port })),
      name: config.sentinel.masterName,
      ...(tls === undefined ? {} : { enableTLSForSentinelMode: true, sentinelTLS: tls })
    } as Options)
  }
  return new Redis(config.url!, common as unknown as Options)
}
