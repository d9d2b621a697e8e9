// The top-level `cache` section: the shared response cache (a route's own
// `cache` block is read with the route, in routes.ts).

import type { Node } from 'yaml'
import { DEFAULTS } from '../schema.js'
import type { CacheConfig, EncryptionKeyConfig, SharedCacheConfig } from '../schema.js'
import { type Field, type MapView, joinPath } from '../reader.js'
import { shortName } from './toplevel.js'
import { formatSize } from '../units.js'
import { SF_TOKEN_FORM, isSfToken, isToken } from '../forms.js'
import { type Context, Unique, duration, ipList, opt, optChecked, size, toggle } from './common.js'

const KEYS = ['maxBytes', 'maxEntryBytes', 'heuristic', 'heuristicMaxAge', 'statusName', 'collapseTimeout', 'hitForMiss', 'purgeFrom', 'shared', 'targetedCacheControl'] as const
const SHARED_KEYS = ['enabled', 'encryptionKeys'] as const
const KEY_ID = /^[A-Za-z0-9_.-]{1,32}$/

/** The smallest cache worth having: one small response and its headers. */
const MIN_CACHE_BYTES = 1024

/**
 * Absent, empty (`cache:`, as `healthCheck:`) or `false`: no cache; `true` or
 * `{}`: every default; a mapping: those options. `statusName` defaults to the
 * proxyName.
 */
export function readCache (ctx: Context, root: MapView, proxyName: string): CacheConfig | undefined {
  const f = root.get('cache')
  return f === undefined ? undefined : cache(ctx, f, proxyName, root.has('redis'))
}

function cache (ctx: Context, f: Field, proxyName: string, redis: boolean): CacheConfig | undefined {
  const r = ctx.r
  const m = toggle(r, f, KEYS)
  if (m === false || m === undefined) return undefined
  const d = DEFAULTS.cache
  if (m === true) return { ...d, statusName: defaultStatusName(ctx, proxyName, f, f.at) }
  const maxBytes = optChecked(m, 'maxBytes', (v) => size(r, v, MIN_CACHE_BYTES), d.maxBytes)
  const maxEntryBytes = optChecked(m, 'maxEntryBytes', (v) => size(r, v, 1), d.maxEntryBytes)
  if (maxBytes !== undefined && maxEntryBytes !== undefined && maxEntryBytes > maxBytes) {
    // The defaults obey the rule, so at least one of the two was written.
    const at = m.get('maxEntryBytes') ?? m.get('maxBytes')
    const show = (key: string, bytes: number): string => `\`${key}\` (${formatSize(bytes)}${m.has(key) ? '' : ', the default'})`
    if (at !== undefined) r.report(at.path, at.at, `${show('maxEntryBytes', maxEntryBytes)} must be at most ${show('maxBytes', maxBytes)}`)
  }
  const nameField = m.get('statusName')
  const statusName = nameField === undefined
    ? defaultStatusName(ctx, proxyName, f, m.node)
    : shortName(ctx, nameField, sfToken(ctx, nameField)) ?? proxyName
  const sharedField = m.get('shared')
  const shared = sharedField === undefined ? undefined : sharedCache(ctx, sharedField, redis)
  return {
    ...(shared === undefined ? {} : { shared }),
    maxBytes: maxBytes ?? d.maxBytes,
    maxEntryBytes: maxEntryBytes ?? d.maxEntryBytes,
    heuristic: opt(m, 'heuristic', (v) => r.boolean(v), d.heuristic),
    heuristicMaxAge: opt(m, 'heuristicMaxAge', (v) => duration(r, v), d.heuristicMaxAge),
    statusName,
    collapseTimeout: opt(m, 'collapseTimeout', (v) => duration(r, v, 1), d.collapseTimeout),
    hitForMiss: opt(m, 'hitForMiss', (v) => duration(r, v), d.hitForMiss),
    purgeFrom: opt<readonly string[]>(m, 'purgeFrom', (v) => ipList(r, v), d.purgeFrom),
    targetedCacheControl: opt<readonly string[]>(m, 'targetedCacheControl', (v) => targetList(ctx, v), d.targetedCacheControl)
  }
}

/** Fields that are not targeted cache control, whatever their name says. */
const NOT_TARGETED = new Set(['cache-control', 'expires', 'pragma', 'surrogate-control'])

/**
 * `targetedCacheControl: [switchyard-cache-control, cdn-cache-control]`: the
 * RFC 9213 target list, lower-case field names in priority order (they are
 * compared as written, once, at load).
 */
function targetList (ctx: Context, f: Field): readonly string[] | undefined {
  const r = ctx.r
  const items = r.seq(f)
  if (items === undefined) return undefined
  const out: string[] = []
  const seen = new Unique(r, 'targeted field')
  let ok = true
  for (const item of items) {
    const name = r.text(item)
    if (name === undefined) { ok = false; continue }
    if (!isToken(name) || name !== name.toLowerCase()) {
      r.expected(item, 'a lower-case header field name like `cdn-cache-control`')
      ok = false
    } else if (NOT_TARGETED.has(name)) {
      r.report(item.path, item.at, `\`${name}\` is not a targeted field: list fields like \`cdn-cache-control\`, which take precedence over Cache-Control`)
      ok = false
    } else if (seen.add(name, item, `${item.path}`)) {
      out.push(name)
    } else ok = false
  }
  return ok ? Object.freeze(out) : undefined
}

/** `statusName` defaults to the proxyName, which (an HTTP token) need not be an sf-token. */
function defaultStatusName (ctx: Context, proxyName: string, f: Field, at: Node | null): string {
  if (!isSfToken(proxyName)) {
    ctx.r.report(joinPath(f.path, 'statusName'), at,
      `the default \`statusName\` is the proxyName \`${proxyName}\`, which is not ${SF_TOKEN_FORM}; set \`statusName\``)
  }
  return proxyName
}

function sfToken (ctx: Context, f: Field): string | undefined {
  const s = ctx.r.text(f)
  if (s === undefined) return undefined
  return isSfToken(s) ? s : ctx.r.expected(f, SF_TOKEN_FORM)
}

/**
 * `shared: { enabled, encryptionKeys }`: the second-level cache in Redis.
 * Refused without the top-level `redis` or without a key: nothing is ever
 * written to Redis in clear. The keys' bytes are read by load.ts.
 */
function sharedCache (ctx: Context, f: Field, redis: boolean): SharedCacheConfig | undefined {
  const r = ctx.r
  const m = toggle(r, f, SHARED_KEYS)
  if (m === false || m === undefined) return undefined
  if (m === true) {
    r.report(f.path, f.at, 'the shared cache needs `encryptionKeys`: write `shared: { enabled: true, encryptionKeys: [{ id: k1, env: NAME }] }`')
    return undefined
  }
  const enabled = opt(m, 'enabled', (v) => r.boolean(v), true)
  const keysField = m.get('encryptionKeys')
  const encryptionKeys: EncryptionKeyConfig[] = []
  const items = keysField === undefined ? undefined : r.seq(keysField)
  const ids = new Unique(r, 'key id')
  for (const item of items ?? []) {
    const key = encryptionKey(ctx, item, enabled)
    if (key !== undefined && ids.add(key.id, item, item.path)) encryptionKeys.push(key)
  }
  if (enabled && keysField === undefined) {
    r.report(joinPath(f.path, 'encryptionKeys'), m.node, 'values in Redis are always encrypted: give at least one key ' +
      '(32 random bytes, e.g. `openssl rand -base64 32`) as `encryptionKeys: [{ id: k1, env: NAME }]` or `{ id: k1, file: PATH }`')
  } else if (enabled && items !== undefined && items.length === 0) {
    r.report(keysField!.path, keysField!.at, 'at least one key is required: the first encrypts, every one decrypts')
  }
  if (enabled && !redis) {
    r.report(f.path, f.at, 'the shared cache lives in Redis: add the top-level `redis` block (e.g. `redis: { url: redis://127.0.0.1:6379 }`)')
  }
  return { enabled, encryptionKeys }
}

/** `{ id, env: NAME }` or `{ id, file: PATH }`; the secret itself is read by load.ts (only when the shared cache is on). */
function encryptionKey (ctx: Context, f: Field, read: boolean): EncryptionKeyConfig | undefined {
  const r = ctx.r
  const m = r.map(f, ['id', 'env', 'file'])
  if (m === undefined) return undefined
  const idField = m.get('id')
  if (idField === undefined) r.report(joinPath(f.path, 'id'), m.node, 'a key needs an `id` (stored with each value it seals, so rotation knows which key opens it)')
  const rawId = idField === undefined ? undefined : r.text(idField)
  const id = rawId === undefined || KEY_ID.test(rawId) ? rawId : r.expected(idField!, 'an id of 1 to 32 letters, digits, `_`, `.` or `-`')
  const envField = m.get('env')
  const fileField = m.get('file')
  if ((envField === undefined) === (fileField === undefined)) {
    r.report(f.path, m.node, 'say where the key is with exactly one of `env: NAME` (an environment variable) or `file: PATH`')
    return undefined
  }
  let from: string | undefined
  if (envField !== undefined) {
    const name = r.text(envField)
    if (name !== undefined && !/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) r.expected(envField, 'an environment variable name like SWITCHYARD_CACHE_KEY')
    else if (name !== undefined) {
      from = `env:${name}`
      if (read) ctx.secrets.push({ path: f.path, source: { env: name }, ...r.position(envField.at) })
    }
  } else {
    const s = r.text(fileField!)
    if (s !== undefined) {
      const file = ctx.resolve(s)
      from = `file:${file}`
      if (read) ctx.secrets.push({ path: f.path, source: { file }, ...r.position(fileField!.at) })
    }
  }
  if (id === undefined || from === undefined) return undefined
  return { id, from, secret: '' }
}
