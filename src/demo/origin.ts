// Demo origins: tiny `node:http` servers that echo what they received as JSON,
// so a newcomer can see which shard/replica answered and which headers the proxy
// added (X-Forwarded-For, Via…). Used by the embedded demo (`config/demo.yaml`)
// and by tests; never on the proxy's hot path.

import { createServer } from 'node:http'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

export interface DemoOriginOptions {
  /** Default `127.0.0.1`. */
  readonly host?: string
  /** 0 picks a free port; the chosen one is returned. */
  readonly port: number
  readonly shard: string
  readonly replica: string
}

export interface DemoOrigin {
  readonly port: number
  /** Stops listening and closes every open connection, idle keep-alive ones included. */
  close (): Promise<void>
}

/** The fixed demo topology: shards `a` and `b`, two replicas each. Matches `config/demo.yaml`. */
export const DEMO_ORIGINS: readonly DemoOriginOptions[] = Object.freeze([
  Object.freeze({ host: '127.0.0.1', port: 9101, shard: 'a', replica: 'a1' }),
  Object.freeze({ host: '127.0.0.1', port: 9102, shard: 'a', replica: 'a2' }),
  Object.freeze({ host: '127.0.0.1', port: 9103, shard: 'b', replica: 'b1' }),
  Object.freeze({ host: '127.0.0.1', port: 9104, shard: 'b', replica: 'b2' })
])

/**
 * DEMO_ORIGINS bound to `host`, on `firstPort` to `firstPort + 3` (9101: the
 * ports the demo and deploy configs name), or each on a free port when
 * `firstPort` is 0. For `switchyard demo-origins`, which runs them apart
 * from the proxy (in a container of their own).
 */
export function demoOriginsAt (host: string, firstPort: number): DemoOriginOptions[] {
  return DEMO_ORIGINS.map((o, i) => ({ ...o, host, port: firstPort === 0 ? 0 : firstPort + i }))
}

/** Shape of the JSON body every non-health request gets back. */
export interface DemoEcho {
  readonly shard: string
  readonly replica: string
  readonly method: string
  readonly url: string
  readonly httpVersion: string
  readonly headers: Readonly<Record<string, string | string[] | undefined>>
  readonly bodyBytes: number
}

export async function startDemoOrigin (opts: DemoOriginOptions): Promise<DemoOrigin> {
  const host = opts.host ?? '127.0.0.1'
  const servedBy = `${opts.shard}/${opts.replica}`

  let restart: NodeJS.Timeout | undefined
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = req.url ?? '/'
    const query = path.indexOf('?')
    const pathname = query === -1 ? path : path.slice(0, query)
    if (pathname === '/_demo/stop' && req.method === 'POST') {
      // Failover demo: this replica goes away (listener closed, connections
      // cut) and comes back after `seconds` (default 20).
      req.resume()
      const seconds = Math.min(600, Math.max(1, Number(new URLSearchParams(query === -1 ? '' : path.slice(query + 1)).get('seconds') ?? 20) || 20))
      res.writeHead(202, { 'content-type': 'text/plain', connection: 'close' })
      res.end(`${servedBy} stops for ${seconds}s\n`, () => {
        server.close()
        server.closeAllConnections()
        restart = setTimeout(() => { restart = undefined; server.listen(port, host) }, seconds * 1000)
        restart.unref()
      })
      return
    }
    if (pathname === '/healthz') {
      req.resume()
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '2', 'x-served-by': servedBy })
      res.end('ok')
      return
    }

    let bodyBytes = 0
    req.on('data', (chunk: Buffer) => { bodyBytes += chunk.length })
    req.on('error', () => { /* the client went away; the socket is already being torn down */ })
    req.on('end', () => {
      const echo: DemoEcho = {
        shard: opts.shard,
        replica: opts.replica,
        method: req.method ?? '',
        url: path,
        httpVersion: req.httpVersion,
        headers: req.headers,
        bodyBytes
      }
      const body = JSON.stringify(echo, null, 2) + '\n'
      res.writeHead(200, {
        'content-type': 'application/json',
        'content-length': String(Buffer.byteLength(body)),
        'x-served-by': servedBy,
        // /static/… is cacheable, to show the proxy's cache in the demo.
        ...(pathname.startsWith('/static/') ? { 'cache-control': 'public, max-age=30' } : {})
      })
      res.end(body)
    })
  })

  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error): void => { reject(err) }
    server.once('error', onError)
    server.listen(opts.port, host, () => {
      server.off('error', onError)
      resolve()
    })
  })

  const port = (server.address() as AddressInfo).port
  let closing: Promise<void> | undefined
  return {
    port,
    close () {
      closing ??= new Promise<void>((resolve) => {
        clearTimeout(restart)
        if (!server.listening) return resolve()
        server.close(() => { resolve() })
        server.closeAllConnections()
      })
      return closing
    }
  }
}

export interface DemoOriginGroup {
  /** Listening ports, in the order of the options given. */
  readonly ports: readonly number[]
  close (): Promise<void>
}

/** Starts every origin in `origins` (default: `DEMO_ORIGINS`); if one fails, those already started are closed. */
export async function startDemoOrigins (origins: readonly DemoOriginOptions[] = DEMO_ORIGINS): Promise<DemoOriginGroup> {
  const started: DemoOrigin[] = []
  const closeAll = async (): Promise<void> => {
    await Promise.all(started.map(async (o) => { await o.close() }))
  }
  try {
    for (const o of origins) started.push(await startDemoOrigin(o))
  } catch (err) {
    await closeAll()
    throw err
  }
  return { ports: Object.freeze(started.map((o) => o.port)), close: closeAll }
}
