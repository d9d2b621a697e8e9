// Issue 12, item 4: an origin's HTTP/1.1 head is written without writeHead on
// a keep-alive connection (proxy/h1-head.ts). The bytes must be exactly
// those writeHead writes: each answer is fetched twice on one connection,
// keep-alive first (the raw path), then with Connection: close (writeHead),
// and the two heads must differ only in the connection fields, the request
// id and Node's Date.
import t from 'tap'
import { rawRequest } from '../helpers/e2e.js'
import { startRawOrigin } from '../helpers/raw-origin.js'
import { startProxy } from '../helpers/proxy.js'

const DATE = 'Date: Sun, 06 Dec 2026 10:00:00 GMT'

/** Status line and field lines per path; the body is `body of <path>` with its Content-Length unless the fields frame it. */
const ANSWERS: Record<string, { status: string, headers: string[], body?: string }> = {
  '/plain': { status: '200 OK', headers: ['Content-Type: text/plain', DATE] },
  '/reason': { status: '200 Fine Thanks', headers: ['X-Mixed-Case: a', DATE, 'Set-Cookie: a=1', 'Set-Cookie: b=2', 'Cache-Control: no-store'] },
  '/obs-reason': { status: '200 caf\xe9', headers: [DATE] },
  '/not-found': { status: '404 Not Found', headers: [DATE, 'Content-Type: text/html'] },
  '/no-date': { status: '200 OK', headers: ['Content-Type: text/plain'] },
  '/unknown-status': { status: '299 Whatever', headers: [DATE] },
  '/chunked': { status: '200 OK', headers: [DATE, 'Transfer-Encoding: chunked'], body: '5\r\nhello\r\n0\r\n\r\n' },
  '/hop': { status: '200 OK', headers: [DATE, 'Connection: x-drop', 'X-Drop: 1', 'Keep-Alive: timeout=1', 'Proxy-Connection: keep-alive'] },
  '/no-content': { status: '204 No Content', headers: [DATE], body: '' },
  '/latin1-value': { status: '200 OK', headers: [DATE, 'X-Name: caf\xe9'] }
}

/** The responses in `raw`, in order: head text (up to the blank line) and body. */
function responses (raw: string, head: boolean[]): { head: string, body: string }[] {
  const out: { head: string, body: string }[] = []
  let at = 0
  for (const isHead of head) {
    const end = raw.indexOf('\r\n\r\n', at)
    if (end === -1) break
    const text = raw.slice(at, end + 2)
    let bodyEnd = end + 4
    const length = /\r\ncontent-length: (\d+)\r\n/i.exec(text)
    if (!isHead && length !== null) bodyEnd += Number(length[1])
    else if (!isHead && /\r\ntransfer-encoding: chunked\r\n/i.test(text)) bodyEnd = raw.indexOf('0\r\n\r\n', bodyEnd) + 5
    out.push({ head: text, body: raw.slice(end + 4, bodyEnd) })
    at = bodyEnd
  }
  return out
}

/** A head without what may differ between two answers of the same origin response. */
function comparable (head: string): string {
  return head
    .replace(/^x-request-id: [0-9a-f]{32}\r\n/im, 'x-request-id: ID\r\n')
    .replace(/^Date: [^\r]*\r\n/m, 'Date: NOW\r\n')
    .replace(/^Connection: (?:keep-alive|close)\r\n/m, '')
    .replace(/^Keep-Alive: timeout=\d+\r\n/m, '')
}

t.test('an origin\'s head on a keep-alive connection: the bytes writeHead writes, for every kind of head', async (t) => {
  const origin = await startRawOrigin(t, (seen) => {
    const path = seen.target.split('?')[0]!
    const a = ANSWERS[path]!
    const body = a.body ?? `body of ${path}`
    const framed = a.headers.some((h) => /^transfer-encoding:/i.test(h)) || a.status.startsWith('204')
    const length = framed ? '' : `Content-Length: ${Buffer.byteLength(body, 'latin1')}\r\n`
    return Buffer.from(`HTTP/1.1 ${a.status}\r\n${a.headers.map((h) => `${h}\r\n`).join('')}${length}\r\n${seen.method === 'HEAD' ? '' : body}`, 'latin1')
  })
  const proxy = await startProxy(t, `
listeners: [{ name: plain, bind: "127.0.0.1:0" }]
routes: [{ backend: raw }]
backends:
  raw:
    retries: { attempts: 0 }
    servers: [{ url: "${origin.url}" }]
`)
  for (const path of Object.keys(ANSWERS)) {
    for (const method of ['GET', 'HEAD']) {
      const req = (close: boolean): string => `${method} ${path} HTTP/1.1\r\nHost: a\r\n${close ? 'Connection: close\r\n' : ''}\r\n`
      const reply = await rawRequest(proxy.port('plain'), req(false) + req(false) + req(true))
      const [first, second, last] = responses(reply.raw, [method === 'HEAD', method === 'HEAD', method === 'HEAD'])
      const what = `${method} ${path}`
      t.ok(first !== undefined && second !== undefined && last !== undefined, `${what}: three answers on one connection`)
      if (first === undefined || second === undefined || last === undefined) continue
      t.match(first.head, /\r\nConnection: keep-alive\r\n/, `${what}: kept alive`)
      t.match(last.head, /\r\nConnection: close\r\n/, `${what}: closed when asked`)
      t.equal(comparable(first.head), comparable(last.head), `${what}: the keep-alive head is writeHead's`)
      t.equal(comparable(second.head), comparable(first.head), `${what}: the same again on a reused connection`)
      t.equal(first.body, last.body, `${what}: the same body`)
    }
  }
  // Spot checks of what both paths must say (a bug in both would pass the comparison).
  const r = await rawRequest(proxy.port('plain'), 'GET /reason HTTP/1.1\r\nHost: a\r\n\r\nGET /hop HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')
  const [reason, hop] = responses(r.raw, [false, false])
  t.match(reason!.head, /^HTTP\/1\.1 200 Fine Thanks\r\nX-Mixed-Case: a\r\nDate: Sun, 06 Dec 2026 10:00:00 GMT\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n/, 'the origin\'s reason phrase, names and order')
  t.match(reason!.head, /\r\nvia: 1\.1 switchyard\r\nx-request-id: [0-9a-f]{32}\r\nConnection: keep-alive\r\nKeep-Alive: timeout=\d+\r\n$/)
  t.notMatch(hop!.head, /x-drop|proxy-connection|keep-alive: timeout=1\r/i, 'hop-by-hop fields stay behind')
  const obs = await rawRequest(proxy.port('plain'), 'GET /obs-reason HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')
  t.match(obs.raw, /^HTTP\/1\.1 200 OK\r\n/, 'a reason phrase Node would not write: the standard one')
  const noDate = await rawRequest(proxy.port('plain'), 'GET /no-date HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')
  t.match(noDate.raw, /\r\nDate: [A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT\r\n/, 'no Date from the origin: Node adds one')
  t.match(proxy.app.metrics.prometheus(), /\nswitchyard_internal_errors_total 0\n/)
})
