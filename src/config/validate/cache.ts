// The top-level `cache` section: the shared response cache (a route's own
// `cache` block is read with the route, in routes.ts).

import type { Node } from 'yaml'
import { DEFAULTS } from '../schema.js'
import type { CacheConfig } from '../schema.js'
import { type Field, type MapView, joinPath } from '../reader.js'
import { formatSize } from '../units.js'
import { SF_TOKEN_FORM, isSfToken } from '../forms.js'
import { type Context, duration, ipList, opt, optChecked, size, toggle } from './common.js'

const KEYS = ['maxBytes', 'maxEntryBytes', 'heuristic', 'heuristicMaxAge', 'statusName', 'collapseTimeout', 'purgeFrom'] as const

/** The smallest cache worth having: one small response and its headers. */
const MIN_CACHE_BYTES = 1024

/**
 * Absent, empty (`cache:`, as `healthCheck:`) or `false`: no cache; `true` or
 * `{}`: every default; a mapping: those options. `statusName` defaults to the
 * proxyName.
 */
export function readCache (ctx: Context, root: MapView, proxyName: string): CacheConfig | undefined {
  const f = root.get('cache')
  return f === undefined ? undefined : cache(ctx, f, proxyName)
}

function cache (ctx: Context, f: Field, proxyName: string): CacheConfig | undefined {
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
    : sfToken(ctx, nameField) ?? proxyName
  return {
    maxBytes: maxBytes ?? d.maxBytes,
    maxEntryBytes: maxEntryBytes ?? d.maxEntryBytes,
    heuristic: opt(m, 'heuristic', (v) => r.boolean(v), d.heuristic),
    heuristicMaxAge: opt(m, 'heuristicMaxAge', (v) => duration(r, v), d.heuristicMaxAge),
    statusName,
    collapseTimeout: opt(m, 'collapseTimeout', (v) => duration(r, v, 1), d.collapseTimeout),
    purgeFrom: opt<readonly string[]>(m, 'purgeFrom', (v) => ipList(r, v), d.purgeFrom)
  }
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
