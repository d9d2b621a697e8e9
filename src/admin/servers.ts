// The runtime API for servers (HAProxy's `set server state|weight`, Traefik's
// API): POST /servers/{backend}/{server} sets a server's admin state (ready,
// drain, maint) and weight. Applied to the running state's Server records,
// which a reload carries over while the server stays in the config; a
// cluster's primary applies it to its own state and sends it to every worker
// (and to workers that start later, with their boot).
import type { RuntimeState } from '../proxy/pipeline.js'
import type { AdminState, Server } from '../upstream/server.js'

export const ADMIN_STATES: readonly AdminState[] = ['ready', 'drain', 'maint']

/** What a POST /servers/… body asks for: at least one of the two. */
export interface ServerChange {
  readonly state?: AdminState
  readonly weight?: number
}

/** A server's admin settings, by name (what a cluster worker is sent). */
export interface ServerOverride {
  readonly backend: string
  readonly shard: string
  readonly server: string
  readonly state: AdminState
  readonly weight?: number
}

export type ServerChangeResult =
  | { readonly backend: string, readonly shard: string, readonly server: string, readonly state: AdminState, readonly weight: number }
  | { readonly error: string, readonly status: 400 | 404 | 409 }

/** Validates a body: a JSON object with `state` (ready | drain | maint) and/or `weight` (> 0, at most 256, as in the config). */
export function parseServerChange (text: string): ServerChange | { readonly error: string } {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return { error: 'body must be JSON: {"state": "ready" | "drain" | "maint", "weight": N}' }
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return { error: 'body must be a JSON object with state and/or weight' }
  const obj = value as Record<string, unknown>
  for (const k of Object.keys(obj)) if (k !== 'state' && k !== 'weight') return { error: `unknown key \`${k}\` (expected state, weight)` }
  const { state, weight } = obj
  if (state === undefined && weight === undefined) return { error: 'expected state and/or weight' }
  if (state !== undefined && !(ADMIN_STATES as readonly unknown[]).includes(state)) {
    return { error: `\`state\` must be one of ${ADMIN_STATES.join(', ')}, got ${JSON.stringify(state)}` }
  }
  if (weight !== undefined && (typeof weight !== 'number' || !Number.isFinite(weight) || weight <= 0 || weight > 256)) {
    return { error: `\`weight\` must be a number greater than 0 and at most 256, got ${JSON.stringify(weight)}` }
  }
  return { ...(state === undefined ? {} : { state: state as AdminState }), ...(weight === undefined ? {} : { weight: weight as number }) }
}

/** `server` of `backend` (in `shard` when given); an error when there is none or the name is in several shards. */
function find (state: RuntimeState, backend: string, server: string, shard?: string): Server | { error: string, status: 404 | 409 } {
  const b = state.backends.get(backend)
  if (b === undefined) return { error: `no backend \`${backend}\``, status: 404 }
  const found = b.servers.filter((s) => s.name === server && (shard === undefined || s.shard === shard))
  if (found.length === 0) return { error: `no server \`${server}\` in backend \`${backend}\`${shard === undefined ? '' : ` shard \`${shard}\``}`, status: 404 }
  if (found.length > 1) {
    return { error: `server \`${server}\` is in shards ${found.map((s) => s.shard).join(', ')} of \`${backend}\`: POST /servers/${backend}/{shard}/${server}`, status: 409 }
  }
  return found[0]!
}

/** Applies `change` to the named server of the running state. */
export function changeServer (state: RuntimeState, backend: string, server: string, change: ServerChange, shard?: string): ServerChangeResult {
  const s = find(state, backend, server, shard)
  if ('error' in s) return s
  if (change.state !== undefined && change.state !== s.adminState) {
    s.adminState = change.state
    s.changedAt = performance.now()
  }
  if (change.weight !== undefined) state.backends.get(backend)!.reweigh(s, change.weight)
  if (s.adminState === 'ready') s.onAvailable?.()
  return { backend, shard: s.shard, server: s.name, state: s.adminState, weight: s.weight }
}

/** Every server whose admin settings differ from the config's (for a worker that boots or reloads). */
export function serverOverrides (state: RuntimeState): ServerOverride[] {
  const out: ServerOverride[] = []
  for (const b of state.backends.values()) {
    for (const s of b.servers) {
      if (s.adminState === 'ready' && s.weightOverride === undefined) continue
      out.push({ backend: b.name, shard: s.shard, server: s.name, state: s.adminState, ...(s.weightOverride === undefined ? {} : { weight: s.weightOverride }) })
    }
  }
  return out
}

/** Applies overrides a primary sent (servers this state does not have are skipped). */
export function applyOverrides (state: RuntimeState, overrides: readonly ServerOverride[]): void {
  for (const o of overrides) changeServer(state, o.backend, o.server, { state: o.state, ...(o.weight === undefined ? {} : { weight: o.weight }) }, o.shard)
}
