// The Switchyard rules: YAML syntax tree → Config, with every default from
// schema.ts filled in. Pure except for path arithmetic: certificate files and
// the access log's folder are not touched here, they are returned as `files`
// and `folders` for load.ts to check.
//
// This file only composes: each section's rules live in validate/ (listeners,
// routes, backends, cache, toplevel), with what they share in validate/common.ts.

import { dirname, resolve } from 'node:path'
import type { Document, LineCounter } from 'yaml'
import type { ConfigIssue } from '../errors.js'
import { type Config, DEFAULTS } from './schema.js'
import { type Field, Reader } from './reader.js'
import { type BindRef, Context, type FileRef, type SecretRef, type TlsFileRefs } from './validate/common.js'
import { readListeners } from './validate/listeners.js'
import { type TopCache, readRoutes } from './validate/routes.js'
import { readBackends } from './validate/backends.js'
import { readCache } from './validate/cache.js'
import { readRedis } from './validate/redis.js'
import {
  DEFAULT_ADMIN, readAccessLog, readAdmin, readClientTimeouts, readForwarding, readLimits, readPathNormalization, readProxyName,
  readTrustedProxies, readWatchConfig, readWorkers
} from './validate/toplevel.js'
import { DEFAULT_TRACING, readRequestId, readTracing } from './validate/tracing.js'
import { readReadYourWrites } from './validate/consistency.js'

export type { BindRef, FileRef, SecretRef, TlsFileRefs } from './validate/common.js'

export interface Validation {
  /** Complete only when `issues` is empty. */
  readonly config: Config
  readonly issues: readonly ConfigIssue[]
  /** Valid, but risky or probably not what was meant (TLS verification off, a route that can never match), in file order. */
  readonly warnings: readonly ConfigIssue[]
  readonly binds: readonly BindRef[]
  readonly files: readonly FileRef[]
  readonly tlsFiles: readonly TlsFileRefs[]
  /**
   * Folders that must exist when files are checked (`checkFiles`): the one the
   * access log is written into (the file itself is created on first write).
   */
  readonly folders: readonly FileRef[]
  /** Encryption keys to read from the environment or a file (load.ts), in file order. */
  readonly secrets: readonly SecretRef[]
}

const ROOT_KEYS = [
  'proxyName', 'listeners', 'trustedProxies', 'forwarding', 'limits', 'timeouts', 'pathNormalization', 'routes', 'backends', 'cache',
  'admin', 'accessLog', 'watchConfig', 'workers', 'redis', 'requestId', 'tracing', 'readYourWrites'
] as const

/**
 * Checks a parsed YAML document and builds the Config. `source` is the absolute
 * path of the file ('' when there is none); relative certificate paths resolve
 * against its folder.
 */
export function validateDocument (doc: Document, lines: LineCounter, source: string): Validation {
  const r = new Reader(doc, lines)
  const ctx = new Context(r, source === '' ? resolve('') : dirname(source))
  const config = readConfig(ctx, r.root(), source)
  // Stable sort: file order, then the order the rules found them.
  const issues = [...r.issues].sort((a, b) => a.line - b.line || a.column - b.column)
  const warnings = [...r.warnings].sort((a, b) => a.line - b.line || a.column - b.column)
  return { config, issues, warnings, binds: ctx.binds, files: ctx.files, tlsFiles: ctx.tlsFiles, folders: ctx.folders, secrets: ctx.secrets }
}

/** The sections in a fixed order: issues at one position, and the files and binds, come in the order they are found. */
function readConfig (ctx: Context, root: Field, source: string): Config {
  const r = ctx.r
  const empty: Config = {
    source, proxyName: DEFAULTS.proxyName, listeners: [], trustedProxies: DEFAULTS.trustedProxies, forwarding: DEFAULTS.forwarding,
    limits: DEFAULTS.limits, timeouts: DEFAULTS.timeouts, pathNormalization: DEFAULTS.pathNormalization, routes: DEFAULTS.routes,
    backends: DEFAULTS.backends, admin: DEFAULT_ADMIN, accessLog: DEFAULTS.accessLog, watchConfig: DEFAULTS.watchConfig,
    workers: DEFAULTS.workers, requestId: DEFAULTS.requestId, tracing: DEFAULT_TRACING
  }
  if (root.node === null) {
    r.report('', null, 'the file is empty; expected a mapping with at least `listeners`')
    return empty
  }
  const m = r.map(root, ROOT_KEYS)
  if (m === undefined) return empty
  const proxyName = readProxyName(ctx, m)
  // Before the listeners: `proxyProtocol: true` trusts these sources.
  const trustedProxies = readTrustedProxies(ctx, m)
  const listeners = readListeners(ctx, m, trustedProxies)
  const forwarding = readForwarding(ctx, m)
  const limits = readLimits(ctx, m)
  const timeouts = readClientTimeouts(ctx, m)
  const pathNormalization = readPathNormalization(ctx, m)
  const backends = readBackends(ctx, m)
  const cache = readCache(ctx, m, proxyName)
  // Written and not `false`: routes get their cache settings even when the block
  // itself has a mistake, so that one mistake is reported once.
  const cacheField = m.get('cache')
  const top: TopCache = { on: cacheField !== undefined && r.scalar(cacheField) !== false, field: cacheField }
  const listenerNames = listeners.listeners.length === 0 ? undefined : listeners.listeners.map((l) => l.name)
  const shardsWithoutPrimary = new Map(Object.entries(backends.backends).map(([name, b]) =>
    [name, b.shards.filter((s) => !s.servers.some((x) => x.role === 'primary')).map((s) => s.name)] as const))
  const routes = readRoutes(ctx, m, { backends: backends.names, listeners: listenerNames, top, redis: m.has('redis'), shardsWithoutPrimary })
  const admin = readAdmin(ctx, m, listeners.binds)
  const accessLog = readAccessLog(ctx, m)
  const watchConfig = readWatchConfig(ctx, m)
  const workers = readWorkers(ctx, m)
  const redis = readRedis(ctx, m)
  const requestId = readRequestId(ctx, m)
  const tracing = readTracing(ctx, m, proxyName)
  const readYourWrites = readReadYourWrites(ctx, m, routes)
  return {
    source, proxyName, listeners: listeners.listeners, trustedProxies, forwarding, limits, timeouts, pathNormalization, routes,
    backends: backends.backends,
    ...(cache === undefined ? {} : { cache }),
    admin, accessLog, watchConfig, workers,
    ...(redis === undefined ? {} : { redis }),
    ...(readYourWrites === undefined ? {} : { readYourWrites }),
    requestId, tracing
  }
}
