// The top-level keys that are not a section of their own: proxyName,
// trustedProxies, forwarding, limits, client timeouts, pathNormalization,
// the admin API, the access log and watchConfig. Each reader takes the
// top-level mapping and returns the value with its default filled in.

import { isMap } from 'yaml'
import { DEFAULTS } from '../schema.js'
import type {
  AccessLogConfig, AdminConfig, ClientTimeoutsConfig, ForwardingConfig, LimitsConfig, PathNormalizationConfig
} from '../schema.js'
import { type Field, type MapView, describe } from '../reader.js'
import { didYouMean } from '../suggest.js'
import { ADMIN_TOKEN_FORM, BIND_FORMS, isAdminToken, isLoopback, parseBind } from '../forms.js'
import { type Context, type ListenerBind, bindKey, duration, httpToken, ipList, opt, size, toggle } from './common.js'

const KEYS = {
  forwarding: ['xForwarded', 'forwarded', 'via'],
  limits: ['maxHeaderBytes', 'maxHeaderCount', 'maxUriBytes'],
  clientTimeouts: ['clientHeaders', 'clientIdle', 'drain', 'clientBody', 'request', 'clientSend', 'tunnel', 'tunnelFin'],
  pathNormalization: ['mergeSlashes', 'escapedSlashes'],
  admin: ['bind', 'token'],
  accessLog: ['enabled', 'path', 'format', 'redactQuery']
} as const

const ESCAPED_SLASHES = ['keep', 'reject', 'decode'] as const

/** The admin API when the config leaves it out: on, at the default bind address. */
export const DEFAULT_ADMIN: AdminConfig = Object.freeze({ enabled: true, bind: DEFAULTS.admin.bind, ...defaultBind(DEFAULTS.admin.bind) })

function defaultBind (bind: string): { host: string, port: number } {
  const parsed = parseBind(bind)
  if (parsed === undefined) throw new Error(`DEFAULTS.admin.bind is not a bind address: ${bind}`)
  return parsed
}

/**
 * The longest proxyName (and cache.statusName): it goes into every answer's
 * Via and Cache-Status and every request's Via; a long one overflows heads
 * (Node refuses 16 KiB) and breaks every exchange after a reload took it.
 */
export const MAX_PROXY_NAME = 255

export function readProxyName (ctx: Context, m: MapView): string {
  return opt(m, 'proxyName', (f) => shortName(ctx, f, httpToken(ctx.r, f)), DEFAULTS.proxyName)
}

/** `name` (already checked for its form) when it is at most MAX_PROXY_NAME characters. */
export function shortName (ctx: Context, f: Field, name: string | undefined): string | undefined {
  if (name === undefined || name.length <= MAX_PROXY_NAME) return name
  return ctx.r.expected(f, `a name of at most ${MAX_PROXY_NAME} characters`)
}

export function readTrustedProxies (ctx: Context, m: MapView): readonly string[] {
  return opt<readonly string[]>(m, 'trustedProxies', (f) => ipList(ctx.r, f), DEFAULTS.trustedProxies)
}

export function readForwarding (ctx: Context, m: MapView): ForwardingConfig {
  return opt(m, 'forwarding', (f) => forwarding(ctx, f), DEFAULTS.forwarding)
}

export function readLimits (ctx: Context, m: MapView): LimitsConfig {
  return opt(m, 'limits', (f) => limits(ctx, f), DEFAULTS.limits)
}

/** The client-side `timeouts` (a backend's own `timeouts` are upstream ones). */
export function readClientTimeouts (ctx: Context, m: MapView): ClientTimeoutsConfig {
  return opt(m, 'timeouts', (f) => clientTimeouts(ctx, f), DEFAULTS.timeouts)
}

export function readPathNormalization (ctx: Context, m: MapView): PathNormalizationConfig {
  return opt(m, 'pathNormalization', (f) => pathNormalization(ctx, f), DEFAULTS.pathNormalization)
}

function forwarding (ctx: Context, f: Field): ForwardingConfig | undefined {
  const m = ctx.r.map(f, KEYS.forwarding)
  if (m === undefined) return undefined
  const d = DEFAULTS.forwarding
  const bool = (v: Field): boolean | undefined => ctx.r.boolean(v)
  return {
    xForwarded: opt(m, 'xForwarded', bool, d.xForwarded),
    forwarded: opt(m, 'forwarded', bool, d.forwarded),
    via: opt(m, 'via', bool, d.via)
  }
}

function limits (ctx: Context, f: Field): LimitsConfig | undefined {
  const m = ctx.r.map(f, KEYS.limits)
  if (m === undefined) return undefined
  const d = DEFAULTS.limits
  return {
    maxHeaderBytes: opt(m, 'maxHeaderBytes', (v) => size(ctx.r, v, 1), d.maxHeaderBytes),
    maxHeaderCount: opt(m, 'maxHeaderCount', (v) => ctx.r.integer(v, 1), d.maxHeaderCount),
    maxUriBytes: opt(m, 'maxUriBytes', (v) => size(ctx.r, v, 1), d.maxUriBytes)
  }
}

function clientTimeouts (ctx: Context, f: Field): ClientTimeoutsConfig | undefined {
  const r = ctx.r
  const m = r.map(f, KEYS.clientTimeouts)
  if (m === undefined) return undefined
  const d = DEFAULTS.timeouts
  return {
    clientHeaders: opt(m, 'clientHeaders', (v) => duration(r, v), d.clientHeaders),
    clientIdle: opt(m, 'clientIdle', (v) => duration(r, v), d.clientIdle),
    drain: opt(m, 'drain', (v) => duration(r, v), d.drain),
    clientBody: opt(m, 'clientBody', (v) => duration(r, v, 1), d.clientBody),
    request: opt(m, 'request', (v) => duration(r, v), d.request),
    clientSend: opt(m, 'clientSend', (v) => duration(r, v), d.clientSend),
    tunnel: opt(m, 'tunnel', (v) => duration(r, v, 1), d.tunnel),
    tunnelFin: opt(m, 'tunnelFin', (v) => duration(r, v, 1), d.tunnelFin)
  }
}

function pathNormalization (ctx: Context, f: Field): PathNormalizationConfig | undefined {
  const m = ctx.r.map(f, KEYS.pathNormalization)
  if (m === undefined) return undefined
  const d = DEFAULTS.pathNormalization
  return {
    mergeSlashes: opt(m, 'mergeSlashes', (v) => ctx.r.boolean(v), d.mergeSlashes),
    escapedSlashes: opt(m, 'escapedSlashes', (v) => ctx.r.oneOf(v, ESCAPED_SLASHES), d.escapedSlashes)
  }
}

export function readWatchConfig (ctx: Context, m: MapView): boolean {
  return opt(m, 'watchConfig', (f) => ctx.r.boolean(f), DEFAULTS.watchConfig)
}

/** `workers: auto` or a whole number of processes, 1 to 256. */
export function readWorkers (ctx: Context, m: MapView): 'auto' | number {
  return opt(m, 'workers', (f) => {
    const v = ctx.r.scalar(f)
    if (v === 'auto') return 'auto'
    if (typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= 256) return v
    return ctx.r.expected(f, '`auto` or a whole number of worker processes from 1 to 256')
  }, DEFAULTS.workers)
}

// ── admin API ───────────────────────────────────────────────────────────────

/**
 * Absent, `true` or `{}`: on at the default bind address; `false`: off (bind
 * fields keep the defaults); a mapping: `bind` and/or `token`. The address may
 * not be one of `listenerBinds`.
 */
export function readAdmin (ctx: Context, root: MapView, listenerBinds: ReadonlyMap<string, ListenerBind>): AdminConfig {
  const r = ctx.r
  const f = root.get('admin')
  const d = DEFAULT_ADMIN
  const clash = (admin: AdminConfig, bindField: Field | undefined): AdminConfig => adminClash(ctx, listenerBinds, admin, bindField)
  const v = f === undefined ? true : r.scalar(f)
  if (v === false) return { ...d, enabled: false }
  if (f === undefined || v === true) return clash(d, undefined)
  if (!isMap(f.node)) {
    r.expected(f, `a mapping (bind, token), true (${d.bind}) or false (off)`)
    return d
  }
  const m = r.map(f)
  if (m === undefined) return d
  for (const { key, keyNode, field } of m.entries()) {
    if ((KEYS.admin as readonly string[]).includes(key)) continue
    const hint = key === 'enabled' ? '; write `admin: false` to turn the admin API off' : didYouMean(key, KEYS.admin)
    r.report(field.path, keyNode, `unknown key \`${key}\`${hint === '' ? `; expected one of ${KEYS.admin.join(', ')}` : hint}`)
  }
  const bindField = m.get('bind')
  const tokenField = m.get('token')
  const token = tokenField === undefined ? undefined : adminToken(ctx, tokenField)
  if (bindField === undefined) return clash({ ...d, ...(token === undefined ? {} : { token }) }, undefined)
  const raw = r.scalar(bindField)
  const parsed = typeof raw === 'string' ? parseBind(raw) : undefined
  if (typeof raw !== 'string' || parsed === undefined) {
    r.expected(bindField, BIND_FORMS)
    return { ...d, ...(token === undefined ? {} : { token }) }
  }
  // A token written but refused is reported already: no second issue about it.
  if (tokenField === undefined && !isLoopback(parsed.host)) {
    r.report(bindField.path, bindField.at, `\`${raw}\` is not a loopback address, and the admin API can change routing and purge ` +
      'the cache: bind it to loopback (127.0.0.1, ::1 or localhost), or set admin.token')
  }
  ctx.bind(bindField, parsed)
  const admin: AdminConfig = { enabled: true, bind: raw, host: parsed.host, port: parsed.port, ...(token === undefined ? {} : { token }) }
  return clash(admin, bindField)
}

/**
 * The admin listener may not take a listener's address: reported at `admin.bind`
 * when written, else at the listener, whose bind is then the admin default.
 */
function adminClash (
  ctx: Context, listenerBinds: ReadonlyMap<string, ListenerBind>, admin: AdminConfig, bindField: Field | undefined
): AdminConfig {
  if (admin.port === 0) return admin
  const clash = listenerBinds.get(bindKey(admin.host, admin.port))
  if (clash === undefined) return admin
  if (bindField !== undefined) {
    ctx.r.report(bindField.path, bindField.at,
      `admin.bind \`${admin.bind}\` is the bind address of ${clash.owner} (\`${clash.bind}\`); give the admin API its own address`)
  } else {
    ctx.r.report(clash.field.path, clash.field.at, `\`${clash.bind}\` is the admin API's default bind address (admin.bind ` +
      `\`${admin.bind}\`); use another address here, or set admin.bind (or \`admin: false\`)`)
  }
  return admin
}

/** A bearer token. It is a secret: messages give its length, never its value. */
function adminToken (ctx: Context, f: Field): string | undefined {
  const v = ctx.r.scalar(f)
  let got: string
  if (typeof v === 'string') {
    if (isAdminToken(v)) return v
    got = /^[!-~]*$/.test(v) ? `${v.length} characters` : 'a space or a character that is not visible ASCII'
  } else {
    got = v === undefined ? describe(f.node) : `a ${typeof v} (quote the token)`
  }
  ctx.r.report(f.path, f.at, `expected ${ADMIN_TOKEN_FORM}, got ${got}`)
  return undefined
}

// ── access log ──────────────────────────────────────────────────────────────

export function readAccessLog (ctx: Context, m: MapView): AccessLogConfig {
  return opt<AccessLogConfig>(m, 'accessLog', (f) => accessLog(ctx, f), DEFAULTS.accessLog)
}

/** `true` or `{}`: on, to stdout; `false`: off; a mapping: `enabled` and/or `path`. */
function accessLog (ctx: Context, f: Field): AccessLogConfig | undefined {
  const m = toggle(ctx.r, f, KEYS.accessLog)
  if (m === true) return DEFAULTS.accessLog
  if (m === false) return { ...DEFAULTS.accessLog, enabled: false }
  if (m === undefined) return undefined
  const enabled = opt(m, 'enabled', (v) => ctx.r.boolean(v), DEFAULTS.accessLog.enabled)
  const pathField = m.get('path')
  const path = pathField === undefined ? undefined : logFile(ctx, pathField, enabled)
  const format = opt(m, 'format', (v) => ctx.r.oneOf(v, LOG_FORMATS), DEFAULTS.accessLog.format)
  const redactQuery = opt<readonly string[]>(m, 'redactQuery', (v) => paramNames(ctx, v), DEFAULTS.accessLog.redactQuery)
  return { enabled, ...(path === undefined ? {} : { path }), format, redactQuery }
}

const LOG_FORMATS = ['json', 'combined'] as const

/** Query parameter names (as they appear in URLs), kept lower-cased: the log compares them case-insensitively. */
function paramNames (ctx: Context, f: Field): string[] | undefined {
  const out: string[] = []
  for (const item of ctx.r.seq(f) ?? []) {
    const s = ctx.r.text(item)
    if (s === undefined) continue
    if (/[&=#?\s]/.test(s)) ctx.r.expected(item, 'a query parameter name (no &, =, #, ? or spaces)')
    else out.push(s.toLowerCase())
  }
  return out
}

/** A file to append to: made absolute; its folder (when the log is on) is remembered for the check. */
function logFile (ctx: Context, f: Field, enabled: boolean): string | undefined {
  const s = ctx.r.text(f)
  if (s === undefined) return undefined
  if (/(^|[/\\])\.{0,2}$/.test(s)) return ctx.r.expected(f, 'a file path like logs/access.log, not a folder')
  const file = ctx.resolve(s)
  if (enabled) ctx.folderOf(f, file)
  return file
}
