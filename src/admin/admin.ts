// The admin listener: a small node:http server, separate from the proxy
// listeners, that serves the dashboard (the page and its content-hashed
// script and stylesheet, see dashboard.ts), status JSON, Prometheus metrics, a
// readiness probe, and the two write actions (reload, cache purge). It knows
// nothing about the proxy's internals: everything goes through `AdminApi`,
// which the composition root implements.
import { createHash, timingSafeEqual } from 'node:crypto'
import http from 'node:http'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { ASSET_CACHE_CONTROL, DASHBOARD_CSP, loadDashboard } from './dashboard.js'
import { parseAuthority } from '../authority.js'
import { isLoopback } from '../config/forms.js'
import { lingerOnClose, onClientError } from '../listener/linger.js'
import { parseServerChange, type ServerChange, type ServerChangeResult } from './servers.js'

/** What the admin listener asks of the running proxy. Implemented by the app. */
/**
 * What the admin listener serves. A single process answers at once; a
 * cluster's primary asks its workers first (hence the promises).
 */
export interface AdminApi {
  /** Backend → shard → server state, listeners, routes, cache counters (JSON-serializable). */
  status (): unknown
  /** Prometheus text exposition format 0.0.4. */
  metrics (): string | Promise<string>
  /** The dashboard's data: recent history and current rates (JSON-serializable). */
  snapshot (): unknown
  /** Re-read the config file and swap it in, or say why not. */
  reload (): Promise<{ ok: true; needsRestart: string[] } | { ok: false; errors: string[] }>
  /** Exactly one of the three is set (the admin listener checks that). */
  purge (what: PurgeRequest): PurgeResult | Promise<PurgeResult>
  /** POST /servers/{backend}/[{shard}/]{server}: set a server's admin state and/or weight. */
  setServer? (backend: string, server: string, change: ServerChange, shard?: string): ServerChangeResult | Promise<ServerChangeResult>
  /** What the cache holds for an absolute URL; undefined = nothing. */
  cacheLookup? (url: string): unknown
  /** Readiness: listeners bound and config loaded. */
  ready (): boolean
}

/**
 * `purged`: entries removed from this instance's memory. `shared`, with a
 * shared cache: whether Redis and the other instances were reached
 * (`unreachable`: Redis is down; their copies expire by themselves).
 */
export type PurgeResult = { purged: number, shared?: 'purged' | 'unreachable' } | { error: string }

export interface PurgeRequest {
  readonly url?: string
  readonly prefix?: string
  readonly tag?: string
  /** A path on every host and port (`{"path": "/static/", "prefix": true}`); `pathPrefix`: every path under it. */
  readonly path?: string
  readonly pathPrefix?: boolean
  /** This process's memory only (a cluster's primary asks one worker for Redis, the rest for this); never from a request body. */
  readonly localOnly?: boolean
}

export interface AdminConfig {
  readonly host: string
  readonly port: number
  /** When set, every request but the dashboard page and /healthz needs `Authorization: Bearer <token>`. Required off loopback. */
  readonly token?: string
}

export interface AdminLog {
  info (obj: object, msg: string): void
  warn (obj: object, msg: string): void
}

export interface AdminHandle {
  address (): AddressInfo
  close (): Promise<void>
}

/** Largest request body accepted (purge JSON). */
export const MAX_BODY_BYTES = 64 * 1024

const noLog: AdminLog = { info () {}, warn () {} }

/** Who asked for a change, for its log line: an audit trail names the caller. */
function caller (req: IncomingMessage): { client: string } {
  return { client: req.socket.remoteAddress ?? '' }
}

type Method = 'GET' | 'POST'
type Handler = (req: IncomingMessage, res: ServerResponse, url: URL) => void | Promise<void>
interface Endpoint { readonly method: Method; readonly handler: Handler }



const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest()

/**
 * Compares `Authorization: Bearer <token>` against the expected token's
 * SHA-256 in constant time: both sides are hashed to 32 bytes first, so
 * neither the content nor the length of the expected token leaks.
 */
export function bearerMatches (authorization: string | undefined, expectedDigest: Buffer): boolean {
  const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization ?? '')
  const given = digest(m?.[1] ?? '')
  // Always run the comparison, even without a well-formed header.
  const equal = timingSafeEqual(given, expectedDigest)
  return equal && m !== null
}

class HttpError extends Error {
  constructor (readonly status: number, message: string, readonly headers: Record<string, string> = {}) {
    super(message)
  }
}

const BASE_HEADERS = {
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff'
} as const

function send (res: ServerResponse, status: number, type: string, body: string, extra: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.destroy()
    return
  }
  res.writeHead(status, {
    ...BASE_HEADERS,
    'content-type': type,
    'content-length': String(Buffer.byteLength(body)),
    ...extra
  })
  res.end(body)
}

function sendJson (res: ServerResponse, status: number, value: unknown, extra: Record<string, string> = {}): void {
  send(res, status, 'application/json; charset=utf-8', `${JSON.stringify(value ?? null, null, 2)}\n`, extra)
}

function sendText (res: ServerResponse, status: number, text: string, extra: Record<string, string> = {}): void {
  send(res, status, 'text/plain; charset=utf-8', text.endsWith('\n') ? text : `${text}\n`, extra)
}

/** Reads the whole body, at most MAX_BODY_BYTES (413 beyond). */
function readBody (req: IncomingMessage): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? 0)
  if (declared > MAX_BODY_BYTES) {
    return Promise.reject(new HttpError(413, `body larger than ${MAX_BODY_BYTES} bytes`, { connection: 'close' }))
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    const onData = (chunk: Buffer): void => {
      size += chunk.length
      if (size > MAX_BODY_BYTES) {
        req.off('data', onData)
        req.pause()
        reject(new HttpError(413, `body larger than ${MAX_BODY_BYTES} bytes`, { connection: 'close' }))
        return
      }
      chunks.push(chunk)
    }
    req.on('data', onData)
    req.once('end', () => resolve(Buffer.concat(chunks)))
    req.once('error', reject)
  })
}

const PURGE_KEYS = ['url', 'prefix', 'tag'] as const

/** Validates a purge body: a JSON object with exactly one of url / prefix / tag, a non-empty string. */
export function parsePurgeBody (body: Buffer): PurgeRequest {
  let value: unknown
  try {
    value = JSON.parse(body.toString('utf8'))
  } catch {
    throw new HttpError(400, 'body must be JSON: {"url": "..."}, {"prefix": "..."} or {"tag": "..."}')
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new HttpError(400, 'body must be a JSON object with exactly one of url, prefix, tag')
  }
  const obj = value as Record<string, unknown>
  if (obj.path !== undefined) return parsePathPurge(obj)
  for (const k of Object.keys(obj)) {
    if (!(PURGE_KEYS as readonly string[]).includes(k)) throw new HttpError(400, `unknown key \`${k}\` (expected exactly one of url, prefix, tag, path)`)
  }
  const present = PURGE_KEYS.filter((k) => obj[k] !== undefined)
  if (present.length !== 1) throw new HttpError(400, `expected exactly one of url, prefix, tag; got ${present.length === 0 ? 'none' : present.join(', ')}`)
  const key = present[0]!
  const v = obj[key]
  if (typeof v !== 'string' || v.length === 0) throw new HttpError(400, `\`${key}\` must be a non-empty string`)
  if (key === 'url' && !isHttpUrl(v)) throw new HttpError(400, `\`url\` must be an absolute http(s) URL, got ${JSON.stringify(v)}`)
  return { [key]: v }
}

/** `{"path": "/p", "prefix": true | false}`: a path on every host and port of the cache. */
function parsePathPurge (obj: Record<string, unknown>): PurgeRequest {
  for (const k of Object.keys(obj)) {
    if (k !== 'path' && k !== 'prefix') throw new HttpError(400, `unknown key \`${k}\` with \`path\` (expected path and optionally prefix: true | false)`)
  }
  const { path, prefix } = obj
  if (typeof path !== 'string' || !path.startsWith('/')) throw new HttpError(400, `\`path\` must be a string starting with /, got ${JSON.stringify(path)}`)
  if (prefix !== undefined && typeof prefix !== 'boolean') throw new HttpError(400, `with \`path\`, \`prefix\` is true or false, got ${JSON.stringify(prefix)}`)
  return { path, pathPrefix: prefix === true }
}

function isHttpUrl (s: string): boolean {
  try {
    const u = new URL(s)
    return u.protocol === 'http:' || u.protocol === 'https:'
  } catch {
    return false
  }
}

function isJsonType (req: IncomingMessage): boolean {
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase()
  return type === 'application/json'
}

/**
 * Why a state-changing call may not come from a browser tab on another site
 * (CSRF against a tokenless loopback admin), or undefined when it may:
 * - `Content-Type: application/json` is required: a cross-site page cannot
 *   send it without a CORS preflight, which this listener never grants;
 * - an `Origin` (browsers send it on every POST) must name this very
 *   listener, and `Sec-Fetch-Site` must not say cross-site.
 */
export function crossSite (req: IncomingMessage): HttpError | undefined {
  if (!isJsonType(req)) return new HttpError(415, 'content-type must be application/json (curl: -H \'Content-Type: application/json\')')
  const site = req.headers['sec-fetch-site']
  if (site === 'cross-site' || site === 'same-site') return new HttpError(403, `forbidden: a ${site} request from a browser`)
  const origin = req.headers.origin
  if (origin === undefined) return undefined
  let host: string
  try {
    const u = new URL(origin)
    host = u.host
  } catch {
    return new HttpError(403, `forbidden: Origin ${JSON.stringify(origin)} is not this admin listener`)
  }
  if (host.toLowerCase() !== (req.headers.host ?? '').toLowerCase()) {
    return new HttpError(403, `forbidden: Origin ${JSON.stringify(origin)} is not this admin listener`)
  }
  return undefined
}

/**
 * Starts the admin listener. Refuses to start on a non-loopback host without
 * a token, or without a built, up-to-date dashboard. Resolves once listening;
 * rejects if the port cannot be bound.
 */
export async function startAdmin (cfg: AdminConfig, api: AdminApi, log: AdminLog = noLog): Promise<AdminHandle> {
  if (cfg.token !== undefined && cfg.token.trim().length === 0) {
    throw new Error('admin: `token` is empty; set a real token or remove it')
  }
  const loopback = isLoopback(cfg.host)
  if (!loopback && cfg.token === undefined) {
    throw new Error(`admin: refusing to listen on non-loopback host ${JSON.stringify(cfg.host)} without a token; ` +
      'set admin.token or bind to 127.0.0.1 / ::1')
  }
  const tokenDigest = cfg.token === undefined ? undefined : digest(cfg.token)
  // Read once: the page and its assets do not change while the listener runs.
  const dashboard = await loadDashboard()

  // Reloads run one after another, never overlapping.
  let reloading: Promise<unknown> = Promise.resolve()

  const endpoints = new Map<string, Endpoint>([
    ['/', {
      method: 'GET',
      handler: (_req, res) => {
        send(res, 200, 'text/html; charset=utf-8', dashboard.html, {
          'content-security-policy': DASHBOARD_CSP,
          'x-frame-options': 'DENY',
          'referrer-policy': 'no-referrer'
        })
      }
    }],
    // /dashboard.<hash>.js and .css: any other name, an old hash included, is a 404.
    ...[...dashboard.assets].map(([path, asset]): [string, Endpoint] => [path, {
      method: 'GET',
      handler: (_req, res) => { send(res, 200, asset.type, asset.body, { 'cache-control': ASSET_CACHE_CONTROL }) }
    }]),
    ['/status', { method: 'GET', handler: async (_req, res) => { sendJson(res, 200, await api.status()) } }],
    ['/snapshot', { method: 'GET', handler: async (_req, res) => { sendJson(res, 200, await api.snapshot()) } }],
    ['/metrics', {
      method: 'GET',
      handler: async (_req, res) => { send(res, 200, 'text/plain; version=0.0.4; charset=utf-8', await api.metrics()) }
    }],
    ['/healthz', {
      method: 'GET',
      handler: (_req, res) => {
        if (api.ready()) sendText(res, 200, 'ready')
        else sendText(res, 503, 'not ready')
      }
    }],
    ['/reload', {
      method: 'POST',
      handler: async (req, res) => {
        await readBody(req) // ignored, but bounded and drained
        const run = reloading.then(() => api.reload())
        reloading = run.catch(() => {})
        const result = await run
        if (result.ok) {
          log.info(caller(req), 'admin: config reloaded')
          // What the reload could not apply is said, not silently left as it was.
          sendJson(res, 200, { ok: true, needsRestart: result.needsRestart })
        } else {
          log.warn({ ...caller(req), errors: result.errors }, 'admin: reload refused')
          sendJson(res, 400, { ok: false, errors: result.errors })
        }
      }
    }],
    ['/cache/purge', {
      method: 'POST',
      handler: async (req, res) => {
        const what = parsePurgeBody(await readBody(req))
        const result = await api.purge(what)
        if ('error' in result) throw new HttpError(400, result.error)
        const shared = result.shared === undefined ? {} : { shared: result.shared }
        if (result.shared === 'unreachable') log.warn({ ...caller(req), ...what, purged: result.purged }, 'admin: cache purge: Redis unreachable; other instances not told')
        else log.info({ ...caller(req), ...what, purged: result.purged, ...shared }, 'admin: cache purge')
        sendJson(res, 200, { purged: result.purged, ...shared })
      }
    }],
    ['/cache/lookup', {
      method: 'GET',
      handler: async (_req, res, url) => {
        if (api.cacheLookup === undefined) throw new HttpError(404, 'cache lookup is not available')
        const target = url.searchParams.get('url')
        if (target === null || target === '') throw new HttpError(400, 'missing query parameter `url`')
        if (!isHttpUrl(target)) throw new HttpError(400, `\`url\` must be an absolute http(s) URL, got ${JSON.stringify(target)}`)
        const found = await api.cacheLookup(target)
        if (found === undefined) throw new HttpError(404, `not in cache: ${target}`)
        sendJson(res, 200, found)
      }
    }]
  ])

  // POST /servers/{backend}/{server} or /servers/{backend}/{shard}/{server} (names percent-encoded).
  const serversEndpoint: Endpoint = {
    method: 'POST',
    handler: async (req, res, url) => {
      if (api.setServer === undefined) throw new HttpError(404, 'the server API is not available')
      let parts: string[]
      try {
        parts = url.pathname.slice('/servers/'.length).split('/').map(decodeURIComponent)
      } catch {
        throw new HttpError(400, 'bad percent-encoding in the path')
      }
      if ((parts.length !== 2 && parts.length !== 3) || parts.some((p) => p === '')) {
        throw new HttpError(404, 'expected /servers/{backend}/{server} or /servers/{backend}/{shard}/{server}')
      }
      const change = parseServerChange((await readBody(req)).toString('utf8'))
      if ('error' in change) throw new HttpError(400, change.error)
      const [backend, a, b] = parts as [string, string, string | undefined]
      const result = b === undefined ? await api.setServer(backend, a, change) : await api.setServer(backend, b, change, a)
      if ('error' in result) throw new HttpError(result.status, result.error)
      log.info({ ...caller(req), ...result, ...(change.state === undefined ? {} : { asked: change.state }) }, 'admin: server changed')
      sendJson(res, 200, result)
    }
  }

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (tokenDigest !== undefined) {
      // The page and its script and stylesheet hold no data (the script
      // fetches everything with the token from the page's #token=… fragment),
      // so a plain browser may load them. /healthz says only ready or not, and
      // an orchestrator's probe (kubelet httpGet) cannot carry a secret.
      const target = (req.url ?? '').split('?', 1)[0]!
      const open = (req.method === 'GET' || req.method === 'HEAD') && (target === '/' || target === '/healthz' || dashboard.assets.has(target))
      if (!open && !bearerMatches(req.headers.authorization, tokenDigest)) {
        req.resume()
        sendJson(res, 401, { error: 'unauthorized: send Authorization: Bearer <token>' },
          { 'www-authenticate': 'Bearer realm="switchyard-admin"' })
        return
      }
    } else {
      // Without a token the listener is loopback-only; also refuse foreign Host
      // names, so a web page cannot reach it through DNS rebinding.
      const host = req.headers.host
      const authority = host === undefined ? undefined : parseAuthority(host)
      if (authority === undefined || !isLoopback(authority.host)) {
        req.resume()
        sendJson(res, 403, { error: 'forbidden: Host must be a loopback address or localhost' })
        return
      }
    }
    let url: URL
    try {
      url = new URL(req.url ?? '/', 'http://admin.invalid')
    } catch {
      req.resume()
      sendJson(res, 400, { error: 'bad request target' })
      return
    }
    const ep = endpoints.get(url.pathname) ?? (url.pathname.startsWith('/servers/') ? serversEndpoint : undefined)
    if (ep === undefined) {
      req.resume()
      sendJson(res, 404, { error: `no such endpoint: ${url.pathname}` })
      return
    }
    const allowed = ep.method === 'GET' ? ['GET', 'HEAD'] : ['POST']
    if (!allowed.includes(req.method ?? '')) {
      req.resume()
      sendJson(res, 405, { error: `method ${req.method ?? ''} not allowed on ${url.pathname}` }, { allow: allowed.join(', ') })
      return
    }
    if (ep.method === 'POST') {
      const refused = crossSite(req)
      if (refused !== undefined) {
        req.resume()
        sendJson(res, refused.status, { error: refused.message })
        return
      }
    }
    try {
      await ep.handler(req, res, url)
    } catch (err) {
      if (err instanceof HttpError) {
        if (err.status === 413) req.resume()
        sendJson(res, err.status, { error: err.message }, err.headers)
        return
      }
      log.warn({ err, path: url.pathname }, 'admin: handler failed')
      sendJson(res, 500, { error: `internal error: ${err instanceof Error ? err.message : String(err)}` })
    }
  }

  const server = http.createServer({
    headersTimeout: 10_000,
    requestTimeout: 30_000,
    maxHeaderSize: 16 * 1024
  }, (req, res) => {
    handle(req, res).catch((err: unknown) => {
      log.warn({ err }, 'admin: request failed')
      res.destroy()
    })
  })
  server.keepAliveTimeout = 5_000
  // Node's own answer to a head its parser refuses (431, 400) closes at once,
  // and a client still sending that head then meets a reset: as on the proxy
  // listeners, the answer is followed by a lingering close (linger.ts).
  server.on('connection', (socket: Socket) => { lingerOnClose(socket) })
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => { onClientError(err, socket) })

  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error): void => {
      reject(new Error(`admin: cannot listen on ${cfg.host}:${cfg.port}: ${err.message}`, { cause: err }))
    }
    server.once('error', onError)
    server.listen(cfg.port, cfg.host, () => {
      server.off('error', onError)
      resolve()
    })
  })
  server.on('error', (err) => { log.warn({ err }, 'admin: listener error') })

  const address = server.address() as AddressInfo
  log.info({ address: address.address, port: address.port, auth: tokenDigest === undefined ? 'none (loopback)' : 'bearer' }, 'admin: listening')

  let closing: Promise<void> | undefined
  return {
    address: () => address,
    close: () => {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      })
      return closing
    }
  }
}
