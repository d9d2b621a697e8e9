// A reload in three steps (nginx's new generation, HAProxy's reload): plan
// builds everything the new config needs beside the running one (the new
// RuntimeState, every new listener bound or ready to take over the socket of
// the one it replaces, every certificate loaded) and can fail without a
// trace; rollBack releases what a plan built; commit swaps it in, and cannot
// fail. Servers that stay (same identity and pool settings) are carried over
// with their health, counters and pooled connections.
import { lookup } from 'node:dns/promises'
import net from 'node:net'
import type { Logger } from 'pino'
import type { CachePeers, HttpCache } from './cache/cache.js'
import { sharedCacheFor } from './cache/shared/shared-cache.js'
import type { RedisLink } from './redis/link.js'
import type { EjectionListener } from './health/outlier.js'
import type { Config, ListenerConfig } from './config/schema.js'
import type { ListenerHandle, ListenerOptions } from './listener/listener.js'
import type { ListenSocket } from './listener/socket.js'
import { bindKey } from './config/validate/common.js'
import type { Pipeline } from './proxy/pipeline.js'
import { allServers, buildState, carryHealth, reuseFrom, type RuntimeState } from './proxy/state.js'
import type { Server } from './upstream/server.js'
import type { RateLimitStores } from './ratelimit/store.js'

/** A running listener and the config it was started from. */
export interface LiveListener {
  readonly handle: ListenerHandle
  readonly config: ListenerConfig
}

export interface ReloadDeps {
  readonly log?: Logger
  /** How kept listeners run under the new config (its limits and timeouts). */
  readonly listenerOptions: ListenerOptions
  /** Bind a listener for `cfg`, as the app starts them, or take over `socket` (see listener.startListener). */
  readonly startListener: (cfg: ListenerConfig, socket?: ListenSocket) => Promise<ListenerHandle>
  /** The line for a listener that could not start, naming it and its config line (see app.startFailure). */
  readonly failure: (config: Config, index: number, err: unknown) => string
  /** How many processes split cache.maxBytes, and the other processes' caches (see StateDeps). */
  readonly cacheShare?: number
  readonly cachePeers?: CachePeers
  /** See StateDeps. */
  readonly onEjection?: EjectionListener
  /** The Redis connection the new config uses (the same one when `redis` did not change). */
  readonly redis?: RedisLink
  /** See StateDeps: the app's, so that buckets outlive the reload. */
  readonly rateLimits?: RateLimitStores
}

export interface ReloadPlan {
  readonly next: Config
  readonly state: RuntimeState
  /** Servers carried over from the running state. */
  readonly kept: ReadonlySet<Server>
  /** Servers of the running state that the new one does not have: they drain. */
  readonly removed: readonly Server[]
  readonly keptListeners: readonly LiveListener[]
  /** New listeners, already bound, or on the socket of a listener they replace (they take it once committed). */
  readonly startedListeners: readonly LiveListener[]
  readonly removedListeners: readonly LiveListener[]
  /** Certificate swaps for kept TLS listeners, every file already loaded. */
  readonly certificateSwaps: readonly (() => void)[]
  /** The cache carried over, when its size limits did not change. */
  readonly cache: HttpCache | undefined
  readonly redis: RedisLink | undefined
  readonly log: Logger | undefined
  readonly listenerOptions: ListenerOptions
}

/**
 * What a reload from `old` to `next` leaves as it was, one `… needs a restart`
 * line per setting: the process-level ones (a cluster's primary owns them).
 * Listener limits, timeouts and the access log are applied (commitReload, the app).
 */
export function needsRestart (old: Config, next: Config): string[] {
  const out: string[] = []
  const a = old.admin
  const b = next.admin
  if (a.enabled !== b.enabled) out.push(`admin ${b.enabled ? 'on' : 'off'} needs a restart`)
  else if (a.enabled) {
    if (a.bind !== b.bind) out.push('admin.bind needs a restart')
    if (a.token !== b.token) out.push('admin.token needs a restart')
  }
  if (old.workers !== next.workers) out.push('workers needs a restart')
  if (old.watchConfig !== next.watchConfig) out.push('watchConfig needs a restart')
  return out
}

/**
 * A listener can be kept across a reload when where and how it listens is
 * unchanged; the PROXY header read sits in front of its HTTP server, so
 * turning it on or off is another listener too.
 */
function sameSocket (l: LiveListener, cfg: ListenerConfig, at: string): boolean {
  const a = l.config
  return a.name === cfg.name && sameAddress(l, cfg, at) &&
    (a.tls === undefined) === (cfg.tls === undefined) && a.tls?.http2 === cfg.tls?.http2 &&
    (a.proxyProtocol === undefined) === (cfg.proxyProtocol === undefined)
}

/**
 * Whether `cfg` binds where `l` listens. Port 0 is a new port each time:
 * the binds as written are compared. Otherwise where the socket really is,
 * so `localhost:8080` for `127.0.0.1:8080`, or `[0:0::1]` for `[::1]`, is the
 * same socket, not a clash with ourselves (EADDRINUSE).
 */
function sameAddress (l: LiveListener, cfg: ListenerConfig, at: string): boolean {
  if (cfg.port === 0 || l.config.port === 0) return bindKey(l.config.host, l.config.port) === bindKey(cfg.host, cfg.port)
  const bound = l.handle.socket.address()
  return `${bound.address}|${bound.port}` === at
}

/**
 * Where a bind puts its socket, as net.Server.listen() resolves its host (the
 * first address dns.lookup gives): `address|port`, the address in the form
 * the kernel reports it. A name that does not resolve is kept as written
 * (binding it fails with its own error).
 */
async function socketKey (cfg: ListenerConfig): Promise<string> {
  let address = cfg.host
  if (net.isIP(address) === 0) {
    try {
      address = (await lookup(address)).address
    } catch {
      return `${address}|${cfg.port}`
    }
  }
  const family = net.isIPv6(address) ? 'ipv6' : 'ipv4'
  return `${new net.SocketAddress({ address, family }).address}|${cfg.port}`
}

/**
 * The running listener a new one replaces on its address (renamed; TLS, h2
 * or the PROXY header turned on or off): it takes that one's socket. Port 0
 * is a new port each time, never a clash. A config binds each address once,
 * so the one found is not also kept.
 */
function replaced (running: readonly LiveListener[], cfg: ListenerConfig, at: string): LiveListener | undefined {
  return cfg.port === 0 ? undefined : running.find((l) => sameAddress(l, cfg, at))
}

/** Build everything `next` needs beside the running state; nothing running changes. */
export async function planReload (old: RuntimeState, running: readonly LiveListener[], next: Config,
  deps: ReloadDeps): Promise<ReloadPlan | { readonly errors: readonly string[] }> {
  const reuse = reuseFrom(old)
  // The cache keeps its entries unless its size limits changed.
  const cache = next.cache !== undefined && old.cache !== undefined && old.cache.config.maxBytes === next.cache.maxBytes &&
    old.cache.config.maxEntryBytes === next.cache.maxEntryBytes
    ? old.cache
    : undefined
  let state: RuntimeState
  try {
    state = buildState(next, {
      ...(deps.log === undefined ? {} : { log: deps.log }), ...(cache === undefined ? {} : { cache }), reuse,
      ...(deps.cacheShare === undefined ? {} : { cacheShare: deps.cacheShare }),
      ...(deps.cachePeers === undefined ? {} : { cachePeers: deps.cachePeers }),
      ...(deps.onEjection === undefined ? {} : { onEjection: deps.onEjection }),
      ...(deps.redis === undefined ? {} : { redis: deps.redis }),
      ...(deps.rateLimits === undefined ? {} : { rateLimits: deps.rateLimits })
    })
  } catch (err) {
    return { errors: [(err as Error).message] }
  }
  carryHealth(old, state)
  const serving = new Set(allServers(old))
  const kept = new Set(allServers(state).filter((s) => serving.has(s)))
  const partial = {
    next, state, kept, removed: [], keptListeners: [], removedListeners: [], certificateSwaps: [], cache, redis: deps.redis, log: deps.log,
    listenerOptions: deps.listenerOptions
  }

  // Listeners: load every certificate and bind every new port before changing anything.
  const keptListeners: LiveListener[] = []
  const startedListeners: LiveListener[] = []
  const certificateSwaps: (() => void)[] = []
  for (const [i, cfg] of next.listeners.entries()) {
    try {
      const at = await socketKey(cfg)
      const current = running.find((l) => sameSocket(l, cfg, at))
      if (current !== undefined) {
        keptListeners.push({ handle: current.handle, config: cfg })
        if (cfg.tls !== undefined && current.handle.tls !== undefined) certificateSwaps.push(current.handle.tls.prepare(cfg.tls))
        continue
      }
      startedListeners.push({ handle: await deps.startListener(cfg, replaced(running, cfg, at)?.handle.socket), config: cfg })
    } catch (err) {
      await rollBack({ ...partial, startedListeners })
      return { errors: [deps.failure(next, i, err)] }
    }
  }
  const stays = new Set(keptListeners.map((l) => l.handle))
  return {
    ...partial,
    removed: allServers(old).filter((s) => !kept.has(s)),
    keptListeners,
    startedListeners,
    removedListeners: running.filter((l) => !stays.has(l.handle)),
    certificateSwaps
  }
}

/** Release what a plan built and will not be used: its new listeners and new pools. */
export async function rollBack (plan: Pick<ReloadPlan, 'state' | 'kept' | 'startedListeners' | 'cache'>): Promise<void> {
  await Promise.all(plan.startedListeners.map((l) => l.handle.close()))
  if (plan.state.cache !== plan.cache) plan.state.cache?.shared?.close()
  for (const b of plan.state.backends.values()) b.retire()
  await Promise.all(allServers(plan.state).filter((s) => !plan.kept.has(s)).map((s) => s.dispatcher.close()))
}

/**
 * Make the plan the running state. Nothing here can fail: requests already
 * running finish on the state they started with; removed listeners and
 * servers drain (listeners within timeouts.drain, pools once idle).
 */
export function commitReload (plan: ReloadPlan, old: RuntimeState, pipeline: Pipeline): string[] {
  if (plan.cache !== undefined && plan.next.cache !== undefined) {
    plan.cache.config = plan.next.cache
    plan.cache.shared = sharedCacheFor(plan.next.cache, plan.redis, plan.cache, plan.log, plan.cache.shared)
  }
  // A cache left behind stops hearing the other instances' purges.
  if (old.cache !== undefined && old.cache !== plan.state.cache) old.cache.shared?.close()
  pipeline.swap(plan.state)
  for (const swap of plan.certificateSwaps) swap()
  const notApplied = plan.keptListeners.flatMap((l) => l.handle.update(l.config, plan.listenerOptions))
  // Before the listeners they replace close: a socket taken over is not closed, and accepts throughout.
  for (const l of plan.startedListeners) l.handle.accept()
  for (const l of plan.removedListeners) void l.handle.close(plan.next.timeouts.drain)
  // Their outlier detectors are replaced: carried-over servers start un-ejected.
  for (const s of plan.kept) if (s.ejected) s.setEjected(false, 'config reloaded')
  for (const b of old.backends.values()) b.retire()
  for (const s of plan.removed) {
    // A retry of a request still running on the old state must not pick it: its pool is closing.
    s.retired = true
    void s.dispatcher.close()
  }
  return notApplied
}
