// The `listeners` section: names, bind addresses (each unique, and handed to
// load.ts for the bind check) and TLS (one certificate inline, or a list for SNI).

import { isIP } from 'node:net'
import { DEFAULTS } from '../schema.js'
import type { CertificateConfig, ListenerConfig, ProxyProtocolConfig, TlsConfig } from '../schema.js'
import type { Field, MapView } from '../reader.js'
import { BIND_FORMS, normalizeHostPattern, parseBind } from '../forms.js'
import { checkListenerLoop, readRedirect } from './redirect.js'
import { type Context, type ListenerBind, Unique, bindKey, duration, entryName, ipList, minVersion, opt, toggle } from './common.js'

const KEYS = {
  listener: ['name', 'bind', 'tls', 'maxTunnels', 'redirect', 'proxyProtocol'],
  proxyProtocol: ['trustedSources', 'timeout'],
  tls: ['cert', 'key', 'certificates', 'minVersion', 'http2'],
  certificate: ['cert', 'key', 'serverNames']
} as const

export interface Listeners {
  readonly listeners: ListenerConfig[]
  /** Each well-formed bind (port 0 left out), by bindKey(), for the admin API's bind check. */
  readonly binds: ReadonlyMap<string, ListenerBind>
}

/** The required `listeners` list of the top-level mapping; `trustedProxies` is what `proxyProtocol: true` trusts. */
export function readListeners (ctx: Context, m: MapView, trustedProxies: readonly string[]): Listeners {
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
    const l = listener(ctx, item, i, trustedProxies)
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

function listener (ctx: Context, f: Field, i: number, trustedProxies: readonly string[]): { config: ListenerConfig, nameField?: Field, bindField?: Field } | undefined {
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
  const ppField = m.get('proxyProtocol')
  const proxyProtocol = ppField === undefined ? undefined : readProxyProtocol(ctx, ppField, trustedProxies)
  const config: ListenerConfig = {
    name,
    bind: bind ?? '',
    host: parsed?.host ?? '',
    port: parsed?.port ?? 0,
    ...(tlsConfig === undefined ? {} : { tls: tlsConfig }),
    maxTunnels: opt(m, 'maxTunnels', (v) => r.integer(v, 0), DEFAULTS.listener.maxTunnels),
    ...(redirect === undefined ? {} : { redirect }),
    ...(proxyProtocol === undefined ? {} : { proxyProtocol })
  }
  return {
    config,
    ...(nameField === undefined ? {} : { nameField }),
    // Only a well-formed bind takes part in the duplicate check.
    ...(bindField === undefined || parsed === undefined ? {} : { bindField })
  }
}

/**
 * `true`, or `{ trustedSources, timeout }`. The sources default to the
 * top-level `trustedProxies`; an empty list is an error, never "anyone": a
 * header from anyone would let any client choose its own address.
 */
function readProxyProtocol (ctx: Context, f: Field, trustedProxies: readonly string[]): ProxyProtocolConfig | undefined {
  const r = ctx.r
  const d = DEFAULTS.listener.proxyProtocol
  const m = toggle(r, f, KEYS.proxyProtocol)
  if (m === undefined || m === false) return undefined
  const sourcesField = m === true ? undefined : m.get('trustedSources')
  const trustedSources = sourcesField === undefined ? trustedProxies : ipList(r, sourcesField)
  if (trustedSources === undefined) return undefined
  // An empty list, not one whose every entry was wrong (each already reported).
  if (trustedSources.length === 0 && (sourcesField === undefined || r.seq(sourcesField)?.length === 0)) {
    const at = sourcesField ?? f
    r.report(at.path, at.at, sourcesField === undefined
      ? 'trusts the sources in the top-level trustedProxies, which lists none: list the balancers in proxyProtocol.trustedSources (or trustedProxies)'
      : 'at least one IP or CIDR is required (the balancers that send the header)')
    return undefined
  }
  if (trustedSources.length === 0) return undefined
  return {
    trustedSources,
    timeout: m === true ? d.timeout : opt(m, 'timeout', (v) => duration(r, v, 1), d.timeout)
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
    // A client never sends an IP as SNI (RFC 6066 §3): such a name could never pick this
    // certificate, and requests to https://IP would all be 421 (their Host is not on the default's).
    if (host === undefined || isIP(host.replace(/^\[|\]$/g, '')) !== 0) r.expected(item, 'a host name like example.com or *.example.com (an IP is never sent as SNI)')
    else serverNames.push([host, item])
  }
  const names = list === undefined ? DEFAULTS.listener.tls.certificate.serverNames : serverNames.map(([n]) => n)
  return { config: { cert, key, serverNames: names }, serverNames }
}
