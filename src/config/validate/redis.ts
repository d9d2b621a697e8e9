// The top-level `redis` section: the one connection that the shared cache,
// purge fan-out and rate limits of every instance go through. `cache.shared`
// (cache.ts) and `rateLimit.store: redis` (routes) need it.

import { isIP } from 'node:net'
import { DEFAULTS } from '../schema.js'
import type { RedisConfig, RedisNode, RedisTlsConfig } from '../schema.js'
import { type Field, type MapView, joinPath } from '../reader.js'
import { isHostname } from '../forms.js'
import { type Context, duration, opt } from './common.js'

const KEYS = ['url', 'username', 'password', 'tls', 'keyPrefix', 'sentinel', 'cluster', 'timeout', 'connectTimeout', 'maxReconnectDelay'] as const
const TLS_KEYS = ['ca', 'cert', 'key', 'servername'] as const
const URL_FORM = 'a URL like redis://127.0.0.1:6379, redis://:password@host:6379/0 or rediss://host:6380 (TLS)'
const NODE_FORM = 'host:port, like 10.0.0.5:26379 or [fd00::5]:6379'

export function readRedis (ctx: Context, root: MapView): RedisConfig | undefined {
  const f = root.get('redis')
  if (f === undefined) return undefined
  const r = ctx.r
  const m = r.map(f, KEYS)
  if (m === undefined) return undefined
  const d = DEFAULTS.redis
  const urlField = m.get('url')
  const url = urlField === undefined ? undefined : redisUrl(ctx, urlField)
  const sentinel = m.get('sentinel')
  const cluster = m.get('cluster')
  const modes = [urlField, sentinel, cluster].filter((x) => x !== undefined).length
  if (modes === 0) r.report(joinPath(f.path, 'url'), m.node, 'set `url` (one server), `sentinel` or `cluster`: where is Redis?')
  if (sentinel !== undefined && cluster !== undefined) {
    r.report(cluster.path, cluster.at, '`sentinel` and `cluster` are two ways of running Redis: set one of them')
  }
  if (modes > 1 && urlField !== undefined) {
    r.report(urlField.path, urlField.at, 'with `sentinel` or `cluster`, the nodes come from there: leave `url` out ' +
      '(credentials go in `username`/`password`, TLS in `tls`)')
  }
  const tlsField = m.get('tls')
  const tls = tlsField === undefined ? undefined : redisTls(ctx, tlsField)
  const prefixField = m.get('keyPrefix')
  const keyPrefix = prefixField === undefined ? d.keyPrefix : r.string(prefixField) ?? d.keyPrefix
  const username = m.get('username')
  const password = m.get('password')
  return {
    ...(url === undefined ? {} : { url }),
    ...(username === undefined ? {} : { username: r.text(username) ?? '' }),
    ...(password === undefined ? {} : { password: r.text(password) ?? '' }),
    ...(tls === undefined ? (url?.startsWith('rediss:') === true ? { tls: {} } : {}) : { tls }),
    keyPrefix,
    ...(sentinel === undefined ? {} : sentinelBlock(ctx, sentinel)),
    ...(cluster === undefined ? {} : clusterBlock(ctx, cluster)),
    timeout: opt(m, 'timeout', (v) => duration(r, v, 1), d.timeout),
    connectTimeout: opt(m, 'connectTimeout', (v) => duration(r, v, 1), d.connectTimeout),
    maxReconnectDelay: opt(m, 'maxReconnectDelay', (v) => duration(r, v, 1), d.maxReconnectDelay)
  }
}

function redisUrl (ctx: Context, f: Field): string | undefined {
  const s = ctx.r.text(f)
  if (s === undefined) return undefined
  let u: URL
  try { u = new URL(s) } catch { return ctx.r.expected(f, URL_FORM) }
  if ((u.protocol !== 'redis:' && u.protocol !== 'rediss:') || u.hostname === '') return ctx.r.expected(f, URL_FORM)
  if (u.pathname !== '' && u.pathname !== '/' && !/^\/\d{1,2}$/.test(u.pathname)) {
    ctx.r.report(f.path, f.at, `the URL's path is the database number (/0 to /15), not \`${u.pathname}\``)
    return undefined
  }
  if (u.search !== '' || u.hash !== '') {
    ctx.r.report(f.path, f.at, 'a Redis URL takes no query or fragment here: timeouts and TLS have keys of their own in `redis`')
    return undefined
  }
  return s
}

function redisTls (ctx: Context, f: Field): RedisTlsConfig | undefined {
  const m = ctx.r.map(f, TLS_KEYS)
  if (m === undefined) return undefined
  const ca = ctx.fileRef(m.get('ca'))
  const certField = m.get('cert')
  const keyField = m.get('key')
  if ((certField === undefined) !== (keyField === undefined)) {
    ctx.r.report(f.path, m.node, '`cert` (the client certificate) and `key` (its private key) go together: set both or neither')
  }
  const cert = ctx.fileRef(certField)
  const key = ctx.fileRef(keyField)
  const snField = m.get('servername')
  let servername: string | undefined
  if (snField !== undefined) {
    const s = ctx.r.text(snField)
    if (s !== undefined && (isIP(s) !== 0 || !isHostname(s.toLowerCase()))) ctx.r.expected(snField, 'a DNS name like redis.internal (SNI is never an IP address)')
    else servername = s?.toLowerCase()
  }
  return {
    ...(ca === undefined ? {} : { ca: ca.file }),
    ...(cert === undefined ? {} : { cert: cert.file }),
    ...(key === undefined ? {} : { key: key.file }),
    ...(servername === undefined ? {} : { servername })
  }
}

function sentinelBlock (ctx: Context, f: Field): Pick<RedisConfig, 'sentinel'> {
  const m = ctx.r.map(f, ['masterName', 'nodes'])
  if (m === undefined) return {}
  const nameField = m.get('masterName')
  if (nameField === undefined) ctx.r.report(joinPath(f.path, 'masterName'), m.node, 'the master\'s name as the sentinels know it (`sentinel monitor <name> …`) is required')
  const masterName = nameField === undefined ? '' : ctx.r.text(nameField) ?? ''
  return { sentinel: { masterName, nodes: nodes(ctx, m, f) } }
}

function clusterBlock (ctx: Context, f: Field): Pick<RedisConfig, 'cluster'> {
  const m = ctx.r.map(f, ['nodes'])
  if (m === undefined) return {}
  return { cluster: { nodes: nodes(ctx, m, f) } }
}

function nodes (ctx: Context, m: MapView, f: Field): RedisNode[] {
  const listField = m.get('nodes')
  if (listField === undefined) {
    ctx.r.report(joinPath(f.path, 'nodes'), m.node, `at least one node (${NODE_FORM}) is required`)
    return []
  }
  const out: RedisNode[] = []
  const items = ctx.r.seq(listField) ?? []
  if (items.length === 0 && listField.node !== null) ctx.r.report(listField.path, listField.at, `at least one node (${NODE_FORM}) is required`)
  for (const item of items) {
    const s = ctx.r.text(item)
    if (s === undefined) continue
    const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(s)
    const host = match?.[1] ?? match?.[2]
    const port = Number(match?.[3])
    if (host === undefined || port < 1 || port > 65535 || (isIP(host) === 0 && !isHostname(host.toLowerCase()))) {
      ctx.r.expected(item, NODE_FORM)
      continue
    }
    out.push({ host, port })
  }
  return out
}
