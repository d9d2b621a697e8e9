// The request pipeline: one readable function calling the phases in a fixed
// order (Pingora's process_request): parse → route → shard → pick → forward,
// then the response streams back through the session. A phase either lets
// the request continue or answers it; there is no middleware chain.
import type { Http2ServerResponse } from 'node:http2'
import type { Socket } from 'node:net'
import type { Readable } from 'node:stream'
import type { BlockList } from 'node:net'
import type { Config } from '../config/schema.js'
import { Errors } from '../errors.js'
import type { Router } from '../router/router.js'
import { rewritePath } from '../router/router.js'
import type { Backend } from '../upstream/backend.js'
import { ForwardHandler } from '../upstream/pool.js'
import { shardKey } from '../upstream/shard.js'
import { normalizeAddress, upstreamRequestHead } from './headers.js'
import type { CompiledRoute } from './routes.js'
import { kSession, Session, type ConnectionInfo, type DownstreamRequest, type DownstreamResponse,
  type ListenerContext } from './session.js'
import { proxyUpgrade } from './upgrade.js'

/** Everything derived from one config; swapped as a whole on reload. */
export interface RuntimeState {
  readonly config: Config
  readonly router: Router<CompiledRoute>
  readonly backends: ReadonlyMap<string, Backend>
  readonly trustedProxies: BlockList
  /** `1.1 <proxyName>` and `2 <proxyName>`, for Via. */
  readonly viaH1: string
  readonly viaH2: string
}

export interface PipelineHooks {
  /** Called once per request when its session ends (response done, reset or client gone). */
  onSessionEnd?: (session: Session) => void
}

const kConn = Symbol('switchyard.conn')
type ConnHolder = { [kConn]?: ConnectionInfo & { readonly state: RuntimeState } }

export class Pipeline {
  #state: RuntimeState
  readonly #hooks: PipelineHooks

  constructor (state: RuntimeState, hooks: PipelineHooks = {}) {
    this.#state = state
    this.#hooks = hooks
  }

  get state (): RuntimeState { return this.#state }

  /** Atomic swap: requests already running keep the state they started with. */
  swap (state: RuntimeState): void { this.#state = state }

  handleRequest (req: DownstreamRequest, res: DownstreamResponse, listener: ListenerContext): void {
    const state = this.#state
    const h2 = req.httpVersionMajor === 2
    const s = new Session(req, res, listener, connectionInfo(req, h2, listener, state), performance.now())
    ;(res as unknown as { [kSession]: Session })[kSession] = s
    res.on('close', onResponseClose) // fires once; `on` spares once()'s wrapper
    if (this.#hooks.onSessionEnd !== undefined) s.onEnd = this.#hooks.onSessionEnd

    // parse
    const parseError = s.parseTarget()
    if (parseError !== undefined) return s.sendError(parseError)

    // route
    const route = state.router.match(s)
    if (route === undefined) return s.sendError(Errors.NO_ROUTE)
    s.route = route
    const backend = route.backend
    s.backend = backend

    // shard
    const by = backend.selector.shardBy
    let key: string | undefined
    if (by !== undefined) {
      key = shardKey(by, s)
      if (key === undefined && by.missing === 'reject') return s.sendError(Errors.SHARD_KEY_MISSING)
    }
    const shard = backend.selector.select(key)
    s.shard = shard

    // pick
    const server = shard.balancer.pick(s)
    if (server === undefined) return s.sendError(Errors.NO_HEALTHY_SERVER)
    s.server = server

    // forward
    const head = upstreamRequestHead(req.rawHeaders, s.authority,
      backend.config.passHostHeader ? s.authority : server.hostHeader, s.conn, route.requestPolicy)
    if ('code' in head) return s.sendError(head)
    const hasBody = h2 ? !(req as { stream?: { endAfterHeaders?: boolean } }).stream?.endAfterHeaders : head.hasBody
    s.responseVia = state.config.forwarding.via ? state.viaH1 : undefined
    const handler = new ForwardHandler(server, s)
    s.handler = handler
    // h2: a client RST_STREAM ends the request body as if it were complete
    // (Node pushes EOF before the response closes); cancel upstream first so a
    // truncated upload never reaches the origin as a whole one.
    if (h2 && hasBody) req.once('aborted', () => { s.error ??= Errors.CLIENT_ABORTED; handler.abort() })
    handler.dispatch({
      path: route.stripPrefix === undefined && route.addPrefix === undefined
        ? s.target
        : rewritePath(s.target, route.stripPrefix, route.addPrefix),
      method: s.method,
      headers: head.headers,
      body: hasBody ? req as Readable : null
    })
  }

  /** HTTP/1.1 `Upgrade` (WebSocket): route and pick as usual, then splice the sockets. */
  handleUpgrade (req: DownstreamRequest, socket: Socket, head: Buffer, listener: ListenerContext): void {
    const state = this.#state
    proxyUpgrade(req, socket, head, connectionInfo(req, false, listener, state), state)
  }
}

function onResponseClose (this: DownstreamResponse): void {
  const s = (this as unknown as { [kSession]?: Session })[kSession]
  if (s === undefined) return
  s.closed = true
  if (!responseCompleted(this, s.h2)) {
    // The client went away (or we reset it) before the response completed.
    s.error ??= Errors.CLIENT_ABORTED
    s.handler?.abort()
  }
  s.onEnd?.(s)
}

/**
 * Whether the whole response went out. Http2ServerResponse reports
 * writableFinished = true on every close, even after the client's RST_STREAM
 * or a dropped session, so on h2 our end() and the stream's close code decide.
 */
function responseCompleted (res: DownstreamResponse, h2: boolean): boolean {
  if (!h2) return res.writableFinished
  return res.writableEnded && (res as Http2ServerResponse).stream.rstCode === 0
}

/**
 * Facts about the client connection, computed once per socket (h1) or h2
 * session and recomputed only if the config (trusted proxies, name) changed.
 */
export function connectionInfo (req: DownstreamRequest, h2: boolean, listener: ListenerContext,
  state: RuntimeState): ConnectionInfo {
  const holder = (h2 ? (req as { stream: { session: object } }).stream.session : req.socket) as ConnHolder
  const cached = holder[kConn]
  if (cached !== undefined && cached.state === state) return cached
  const socket = h2 ? (req as { stream: { session: { socket: Socket } } }).stream.session.socket : req.socket
  const clientAddress = normalizeAddress(socket.remoteAddress)
  const info = {
    state,
    clientAddress,
    trusted: clientAddress !== '' &&
      state.trustedProxies.check(clientAddress, clientAddress.includes(':') ? 'ipv6' : 'ipv4'),
    proto: listener.proto,
    viaEntry: h2 ? state.viaH2 : state.viaH1
  }
  holder[kConn] = info
  return info
}
