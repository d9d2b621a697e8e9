// A WebSocket echo origin (the `ws` package on a real node:http server) for
// the tunnel tests: echoes every message, refuses `/refuse` with 403, picks
// the `chat` subprotocol when offered, and records each upgrade request and
// each close code. Closed on teardown.
import type { IncomingMessage } from 'node:http'
import { WebSocketServer } from 'ws'
import type { RawData } from 'ws'
import type { Teardown } from './certs.js'
import { startServer } from './origin.js'

export interface WsOrigin {
  readonly url: string
  /** Upgrade requests as the origin received them, in order. */
  readonly upgrades: IncomingMessage[]
  /** Close codes, one per finished server-side socket. */
  readonly closes: number[]
  /** The code of the first server-side close. */
  readonly firstClose: Promise<number>
}

/** `page`: what a plain GET gets (404 when absent). */
export async function startWsOrigin (t: Teardown, page?: string): Promise<WsOrigin> {
  const server = await startServer(t, (_req, res) => {
    if (page === undefined) res.writeHead(404).end()
    else res.writeHead(200, { 'content-type': 'text/html' }).end(page)
  })
  const upgrades: IncomingMessage[] = []
  const closes: number[] = []
  let onFirstClose: (code: number) => void = () => {}
  const firstClose = new Promise<number>((resolve) => { onFirstClose = resolve })
  const wss = new WebSocketServer({
    server: server.server,
    handleProtocols: (protocols) => protocols.has('chat') ? 'chat' : false,
    verifyClient: (info, cb) => {
      upgrades.push(info.req)
      if (info.req.url === '/refuse') cb(false, 403, 'Forbidden')
      else cb(true)
    }
  })
  t.teardown(() => {
    for (const c of wss.clients) c.terminate()
    wss.close()
  })
  wss.on('connection', (ws) => {
    ws.on('message', (data: RawData, isBinary: boolean) => ws.send(data, { binary: isBinary }))
    ws.on('close', (code) => { closes.push(code); onFirstClose(code) })
  })
  return { url: server.url, upgrades, closes, firstClose }
}
