// The `listeners` section: names, bind addresses (each unique, and handed to
// load.ts for the bind check) and TLS (one certificate inline, or a list for SNI).

import { DEFAULTS } from '../schema.js'
import type { CertificateConfig, ListenerConfig, TlsConfig } from '../schema.js'
import type { Field, MapView } from '../reader.js'
import { BIND_FORMS, normalizeHostPattern, parseBind } from '../forms.js'
import { checkListenerLoop, readRedirect } from './redirect.js'
import { type Context, type ListenerBind, Unique, bindKey, entryName, minVersion, opt } from './common.js'

const KEYS = {
  listener: ['name', 'bind', 'tls', 'maxTunnels', 'redirect'],
  tls: ['cert', 'key', 'certificates', 'minVersion', 'http2'],
  certificate: ['cert', 'key', 'serverNames']
} as const

export interface Listeners {
  readonly listeners: ListenerConfig[]
  /** Each well-formed bind (port 0 left out), by bindKey(), for the admin API's bind check. */
  readonly binds: ReadonlyMap<string, ListenerBind>
}

/** The required `listeners` list of the top-level mapping. */
export function readListeners (ctx: Context, m: MapView): Listeners {
  const r = ctx.r
  const listenerBinds = new Map<string, ListenerBind>()
  const f = m.require('listeners')
  if (f === undefined) return { listeners: [], binds: listenerBinds }
  const items = r.seq(f)
  if (items === undefined) return { listeners: [], binds: listenerBinds }
  if (items.length === 0) r.report(f.path, f.at, 'at least one listener is required')
  const out: ListenerConfig[] = []
  const names = new Unique(r, 'listener name')
  const binds = new Unique(r, 'bind address')
  items.forEach((item, i) => {
    const l = listener(ctx, item, i)
    if (l === undefined) return
    out.push(l.config)
    if (l.config.name !== '') names.add(l.config.name, l.nameField ?? item, item.path)
    // Port 0 asks the OS for a fresh port each time, so it never clashes.
    if (l.config.port !== 0 && l.bindField !== undefined) {
      const key = bindKey(l.config.host, l.config.port)
      if (binds.add(key, l.bindField, item.path)) listenerBinds.set(key, { owner: item.path, bind: l.config.bind, field: l.bindField })
    }
  })
  return { listeners: out, binds: listenerBinds }
}

function listener (ctx: Context, f: Field, i: number): { config: ListenerConfig, nameField?: Field, bindField?: Field } | undefined {
  const r = ctx.r
  const m = r.map(f, KEYS.listener)
  if (m === undefined) return undefined
  const nameField = m.get('name')
  const name = nameField === undefined ? `listener-${i}` : entryName(r, nameField) ?? ''
  const bindField = m.require('bind')
  const raw = bindField === undefined ? undefined : r.scalar(bindField)
  const bind = typeof raw === 'string' ? raw : undefined
  const parsed = bind === undefined ? undefined : parseBind(bind)
  if (bindField !== undefined && parsed === undefined) r.expected(bindField, BIND_FORMS)
  if (bindField !== undefined && parsed !== undefined) ctx.bind(bindField, parsed)
  const tlsField = m.get('tls')
  const tlsConfig = tlsField === undefined ? undefined : tls(ctx, tlsField)
  const redirectField = m.get('redirect')
  const redirect = redirectField === undefined ? undefined : readRedirect(r, redirectField)
  if (redirect !== undefined && parsed !== undefined) checkListenerLoop(r, redirectField!, redirect, tlsField === undefined ? 'http' : 'https', parsed.port)
  const config: ListenerConfig = {
    name,
    bind: bind ?? '',
    host: parsed?.host ?? '',
    port: parsed?.port ?? 0,
    ...(tlsConfig === undefined ? {} : { tls: tlsConfig }),
    maxTunnels: opt(m, 'maxTunnels', (v) => r.integer(v, 0), DEFAULTS.listener.maxTunnels),
    ...(redirect === undefined ? {} : { redirect })
  }
  return {
    config,
    ...(nameField === undefined ? {} : { nameField }),
    // Only a well-formed bind takes part in the duplicate check.
    ...(bindField === undefined || parsed === undefined ? {} : { bindField })
  }
}

function tls (ctx: Context, f: Field): TlsConfig | undefined {
  const r = ctx.r
  const d = DEFAULTS.listener.tls
  const m = r.map(f, KEYS.tls)
  if (m === undefined) return undefined
  let certificates: CertificateConfig[] = []
  const list = m.get('certificates')
  if (list !== undefined && (m.has('cert') || m.has('key'))) {
    r.report(f.path, m.node, 'use either `cert` + `key` (one certificate) or `certificates` (a list), not both')
  } else if (list !== undefined) {
    const items = r.seq(list)
    if (items?.length === 0) r.report(list.path, list.at, 'at least one certificate is required')
    const names = new Unique(r, 'server name')
    for (const item of items ?? []) {
      const c = certificate(ctx, item)
      if (c === undefined) continue
      certificates.push(c.config)
      c.serverNames.forEach(([serverName, at]) => names.add(serverName, at, item.path))
    }
  } else {
    // Shorthand: one certificate, written inline.
    const cert = ctx.file(m.require('cert', ' (or a `certificates` list)'))
    const key = ctx.file(m.require('key', ' (or a `certificates` list)'))
    certificates = [{ cert, key, serverNames: d.certificate.serverNames }]
  }
  return {
    certificates,
    minVersion: opt(m, 'minVersion', (v) => minVersion(r, v), d.minVersion),
    http2: opt(m, 'http2', (v) => r.boolean(v), d.http2)
  }
}

function certificate (ctx: Context, f: Field): { config: CertificateConfig, serverNames: Array<[string, Field]> } | undefined {
  const r = ctx.r
  const m = r.map(f, KEYS.certificate)
  if (m === undefined) return undefined
  const cert = ctx.file(m.require('cert'))
  const key = ctx.file(m.require('key'))
  const serverNames: Array<[string, Field]> = []
  const list = m.get('serverNames')
  for (const item of list === undefined ? [] : r.seq(list) ?? []) {
    const s = r.text(item)
    if (s === undefined) continue
    const host = normalizeHostPattern(s)
    if (host === undefined) r.expected(item, 'a host name like example.com or *.example.com')
    else serverNames.push([host, item])
  }
  const names = list === undefined ? DEFAULTS.listener.tls.certificate.serverNames : serverNames.map(([n]) => n)
  return { config: { cert, key, serverNames: names }, serverNames }
}
