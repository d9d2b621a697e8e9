// Shard selection: a shard key taken from the request picks one shard of a
// backend by rendezvous hashing over the shard names, so keys stay put when
// shards come and go (only ~1/N move). The backend's balancer then picks a
// replica inside that shard. Pure apart from the round-robin counter used
// for requests without a key.
import type { ShardByConfig } from '../config/schema.js'
import { hashString, rendezvous } from '../balancer/hash.js'
import type { Balancer } from '../balancer/balancer.js'
import { usable, type PickContext } from '../balancer/pick.js'
import type { Server } from './server.js'
import { WaitQueue, type Waiter } from './queue.js'

/** A shard's queue and panic settings, from its backend's config. */
export interface ShardLimits {
  readonly maxQueue: number
  readonly queueTimeout: number
  readonly panicThreshold: number
}

/** One shard: its replicas, the balancer over them, and the queue of requests waiting for a free slot. */
export class Shard {
  readonly name: string
  readonly servers: readonly Server[]
  /** Replaced when the admin API changes a weight (weights are built into some balancers). */
  balancer: Balancer
  readonly queue: WaitQueue<Waiter>
  /** How long a request may wait in the queue, from its start (ms; the backend's timeouts.queue). */
  readonly queueTimeout: number
  /** The shard's primary (`role: primary`), if it has one. */
  readonly primary: Server | undefined
  /** Panic below this many healthy servers (Envoy's panic threshold); 0 = never. */
  readonly #panicBelow: number

  constructor (name: string, servers: readonly Server[], balancer: Balancer, limits: ShardLimits) {
    this.name = name
    this.servers = servers
    this.balancer = balancer
    this.queue = new WaitQueue(limits.maxQueue)
    this.queueTimeout = limits.queueTimeout
    this.#panicBelow = limits.panicThreshold <= 0 ? 0 : (servers.length * limits.panicThreshold) / 100
    // Roles change only with a reload, which builds new shards: found once here, not per write.
    this.primary = servers.find((s) => s.primary)
  }

  /** Fewer than panicThreshold% of the servers are healthy: balance over all of them. */
  panic (): boolean {
    if (this.#panicBelow === 0) return false
    let healthy = 0
    for (let i = 0; i < this.servers.length; i++) if (this.servers[i]!.healthy) healthy++
    return healthy < this.#panicBelow
  }

  /** Some server has a free slot (whether it may take a given request or not). */
  anyRoom (): boolean {
    for (let i = 0; i < this.servers.length; i++) if (this.servers[i]!.hasRoom()) return true
    return false
  }

  /**
   * Some server that could take this request is only busy (at maxConn, or
   * every pooled connection taken): worth queueing for. Usable as a pick
   * would have it (balancer/pick.ts), so never one in maintenance, draining
   * (but for its sticky clients) or removed; `except`: servers a retry has
   * already tried.
   */
  anyBusy (ctx: Pick<PickContext, 'panic' | 'primaryOnly' | 'stickyId'>, except: readonly Server[] = NONE): boolean {
    for (let i = 0; i < this.servers.length; i++) {
      const s = this.servers[i]!
      if (!s.hasRoom() && usable(s, ctx, s.id === ctx.stickyId) && !except.includes(s)) return true
    }
    return false
  }
}

const NONE: readonly Server[] = []

/** The parts of a request a shard key can come from. */
export interface ShardKeySource {
  header (name: string): string | undefined
  /** The request target: path with its query. */
  readonly target: string
}

export class ShardSelector {
  readonly #shards: readonly Shard[]
  readonly #seeds: Uint32Array
  readonly #by: ShardByConfig | undefined
  #next = 0

  constructor (shards: readonly Shard[], by: ShardByConfig | undefined) {
    this.#shards = shards
    this.#by = by
    this.#seeds = Uint32Array.from(shards, (s) => hashString(s.name))
  }

  get shardBy (): ShardByConfig | undefined { return this.#by }

  /** The shard for this key; a key-less request gets the next shard in turn. */
  select (key: string | undefined): Shard {
    const shards = this.#shards
    if (shards.length === 1) return shards[0]!
    if (key === undefined) {
      const s = shards[this.#next]!
      this.#next = (this.#next + 1) % shards.length
      return s
    }
    return shards[rendezvous(hashString(key), this.#seeds)]!
  }
}

/** Extract the shard key from a request, or undefined when it has none. */
export function shardKey (by: ShardByConfig, req: ShardKeySource): string | undefined {
  if ('header' in by) return nonEmpty(req.header(by.header))
  if ('cookie' in by) return cookieValue(req.header('cookie'), by.cookie)
  if ('query' in by) return queryValue(req.target, by.query)
  return pathSegment(req.target, by.pathSegment)
}

function nonEmpty (v: string | undefined): string | undefined {
  return v === undefined || v === '' ? undefined : v
}

/** Value of cookie `name` in a `Cookie` header (`a=1; b=2`): its first occurrence. */
export function cookieValue (header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined
  const eq = cookieAt(header, name, 0)
  if (eq === -1) return undefined
  let end = header.indexOf(';', eq)
  if (end === -1) end = header.length
  let v = header.slice(eq + 1, end).trim()
  if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) v = v.slice(1, -1)
  return nonEmpty(v)
}

/** How many times cookie `name` is in a `Cookie` header (we read the first, many frameworks the last). */
export function cookieCount (header: string | undefined, name: string): number {
  if (header === undefined) return 0
  let n = 0
  for (let eq = cookieAt(header, name, 0); eq !== -1; n++) {
    const end = header.indexOf(';', eq)
    eq = end === -1 ? -1 : cookieAt(header, name, end + 1)
  }
  return n
}

/** Where the `=` of the first cookie `name` at or after `i` is in a `Cookie` header, or -1. */
function cookieAt (header: string, name: string, i: number): number {
  while (i < header.length) {
    // Names are read as lenient parsers read them (Python's http.cookies,
    // Django): whitespace around them does not make another cookie, or
    // `uid=a; uid =b` would be one uid here and two there.
    while (i < header.length && (isSpace(header.charCodeAt(i)) || header.charCodeAt(i) === 59)) i++ // ';'
    let end = header.indexOf(';', i)
    if (end === -1) end = header.length
    const eq = header.indexOf('=', i)
    if (eq !== -1 && eq < end && header.startsWith(name, i)) {
      let j = i + name.length
      while (j < eq && isSpace(header.charCodeAt(j))) j++
      if (j === eq) return eq
    }
    i = end + 1
  }
  return -1
}

/** SP or HTAB. */
function isSpace (c: number): boolean {
  return c === 32 || c === 9
}

/** Value of query parameter `name` (first occurrence, percent-decoded). */
export function queryValue (path: string, name: string): string | undefined {
  const q = path.indexOf('?')
  if (q === -1) return undefined
  const params = new URLSearchParams(path.slice(q + 1))
  const v = params.get(name)
  return v === null ? undefined : nonEmpty(v)
}

/** How many times parameter `name` is in the query of `path` (PHP reads the last, URLSearchParams the first). */
export function queryCount (path: string, name: string): number {
  const q = path.indexOf('?')
  return q === -1 ? 0 : new URLSearchParams(path.slice(q + 1)).getAll(name).length
}

/** The n-th (1-based) non-empty segment of the path: `/users/42/x`, n=2 → `42`. */
export function pathSegment (path: string, n: number): string | undefined {
  let end = path.indexOf('?')
  if (end === -1) end = path.length
  let seg = 0
  let i = 0
  while (i < end) {
    while (i < end && path.charCodeAt(i) === 47) i++ // '/'
    if (i >= end) break
    let j = path.indexOf('/', i)
    if (j === -1 || j > end) j = end
    if (++seg === n) {
      try { return nonEmpty(decodeURIComponent(path.slice(i, j))) } catch { return path.slice(i, j) }
    }
    i = j
  }
  return undefined
}
