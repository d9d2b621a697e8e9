// `switchyard check` output: the normalized config as a routing table, routes
// listed in the order the router tries them.
import type { BackendConfig, Config, ProxyProtocolConfig } from '../config/schema.js'
import { formatDuration } from '../config/units.js'
import { describeLimit } from '../ratelimit/limiter.js'
import { describeAccess } from '../proxy/access.js'
import { createRouter } from './router.js'
import { describeTarget } from '../redis/link.js'
import { describeRedirect } from '../proxy/redirect.js'
import { describeCompression } from '../proxy/compression/decide.js'

/** The normalized routing table, in match precedence order. */
export function routingTable (config: Config): string {
  const router = createRouter(config.routes.map((r) => ({ config: r })))
  let out = 'Listeners\n'
  for (const l of config.listeners) {
    out += `  ${l.name.padEnd(12)} ${l.tls === undefined ? 'http ' : 'https'} ${l.host}:${l.port}` +
      (l.tls === undefined ? '' : `  (${l.tls.http2 ? 'h2 + http/1.1' : 'http/1.1'}, ${l.tls.minVersion}+, ${l.tls.certificates.length} certificate(s))`) +
      (l.redirect === undefined ? '' : `  [redirect every request: ${describeRedirect(l.redirect)}]`) +
      (l.proxyProtocol === undefined ? '' : `  [${describeProxyProtocol(l.proxyProtocol)}]`) + '\n'
  }
  // The token is a secret: whether there is one, never what it is.
  const a = config.admin
  out += `\nAdmin API\n  ${a.enabled ? `${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}  auth: ${a.token === undefined ? 'none (loopback only)' : 'bearer token (set, not shown)'}` : 'off'}\n`
  // Redis and the shared cache: where, and which keys (by id and source, never the key).
  if (config.redis !== undefined) {
    const r = config.redis
    out += `\nRedis\n  ${describeTarget(r)}  keyPrefix=${JSON.stringify(r.keyPrefix)}  timeout=${r.timeout} ms` +
      `${r.tls === undefined ? '' : '  tls'}${r.password === undefined && !/\/\/[^@/]*:[^@/]*@/.test(r.url ?? '') ? '' : '  auth: password (set, not shown)'}\n`
    const shared = config.cache?.shared
    if (shared?.enabled === true) {
      out += `  shared cache: on, sealed with ${shared.encryptionKeys[0]!.id} (${shared.encryptionKeys[0]!.from})` +
        `${shared.encryptionKeys.length > 1 ? `, also opens ${shared.encryptionKeys.slice(1).map((k) => `${k.id} (${k.from})`).join(', ')}` : ''}\n`
    }
  }
  out += '\nRoutes (in match precedence order)\n'
  for (const { config: r } of router.table) {
    const m = r.match
    const conds = [
      `host=${m.host ?? '*'}`,
      m.pathRegex === undefined ? `pathPrefix=${m.pathPrefix}` : `pathRegex=${m.pathRegex} (whole path)`,
      m.listeners.length > 0 ? `listeners=${m.listeners.join(',')}` : '',
      m.methods.length > 0 ? `methods=${m.methods.join(',')}` : '',
      ...Object.entries(m.headers).map(([k, v]) => `${k}=${v}`)
    ].filter((x) => x !== '').join(' ')
    const access = describeAccess(r)
    const rw = [r.rewrite.stripPrefix === undefined ? '' : `strip ${r.rewrite.stripPrefix}`,
      r.rewrite.addPrefix === undefined ? '' : `add ${r.rewrite.addPrefix}`,
      r.rewrite.regex === undefined ? '' : `regex ${r.rewrite.regex.pattern} -> ${r.rewrite.regex.replacement}`].filter((x) => x !== '').join(', ')
    const to = r.redirect === undefined ? `-> ${r.backend}` : `redirect ${describeRedirect(r.redirect)} (${r.backend} not contacted)`
    out += `  ${r.name.padEnd(16)} ${conds} ${to}${rw === '' ? '' : `  [rewrite: ${rw}]`}` +
      `${access === undefined ? '' : `  [access: ${access}]`}` +
      `${r.rateLimit === undefined ? '' : `  [rateLimit: ${describeLimit(r.rateLimit)}]`}` +
      `${r.compression === undefined ? '' : `  [compression: ${describeCompression(r.compression)}]`}\n`
  }
  out += '\nBackends\n'
  for (const b of Object.values(config.backends)) {
    const by = b.shardBy === undefined ? '' : `  shardBy ${Object.entries(b.shardBy).map(([k, v]) => `${k}=${String(v)}`).join(' ')}`
    const hc = b.healthCheck?.type === 'grpc' ? `  healthCheck=grpc(${b.healthCheck.service === '' ? 'server' : `service ${JSON.stringify(b.healthCheck.service)}`})` : ''
    const send = b.sendProxyProtocol === undefined ? '' : `  sendProxyProtocol=${b.sendProxyProtocol} (a connection per client connection)`
    out += `  ${b.name}  balance=${b.balance.algorithm}  protocol=${b.protocol}${by}${hc}${send}\n`
    out += tlsLines(b)
    for (const s of b.shards) {
      out += `    shard ${s.name}: ${s.servers.map((v) => `${v.name}=${v.url}${v.weight === 1 ? '' : ` w${v.weight}`}` +
        `${v.sendProxyProtocol === undefined || v.sendProxyProtocol === b.sendProxyProtocol ? '' : ` sendProxyProtocol=${v.sendProxyProtocol}`}`).join(', ')}\n`
    }
  }
  return out
}

/** A listener's PROXY protocol acceptance, as check and explain show it. */
export function describeProxyProtocol (pp: ProxyProtocolConfig): string {
  return `PROXY protocol v1/v2 from ${pp.trustedSources.join(', ')}, header within ${formatDuration(pp.timeout)}; others closed`
}

/** How a backend's https:// servers are connected to, and a warning line when they are not verified. */
function tlsLines (b: BackendConfig): string {
  const tls = b.tls
  if (tls === undefined) return ''
  const parts = [
    tls.insecureSkipVerify ? 'NOT verified (insecureSkipVerify)' : `verify ca=${tls.ca ?? 'system trust store'}`,
    `servername=${tls.servername ?? 'server URL host'}`,
    tls.cert === undefined ? '' : `client cert=${tls.cert}`,
    `${tls.minVersion}+`
  ]
  let out = `    tls: ${parts.filter((p) => p !== '').join(', ')}\n`
  if (tls.insecureSkipVerify) {
    out += '    WARNING: tls.insecureSkipVerify is on: server certificates are not verified, ' +
      'anyone on the network path can pose as these servers\n'
  }
  return out
}
