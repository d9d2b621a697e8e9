// Benchmark origin: the cheapest keep-alive HTTP/1.1 server we can write, so the
// numbers measure the proxy and not the origin. Every request gets 200 with the
// same ~100-byte text body (256 KiB under /large; after 100 ms under */dynamic). Prints `{"port":N}` on stdout
// once listening, and exits when the harness that started it goes away (its IPC
// channel closes).
//
//   node dist/bench/origin.js [port]        (default 0 = any free port)

import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'

const BODY = Buffer.from('switchyard bench origin: the same plain-text body for every request, 100 bytes'.padEnd(99, '.') + '\n')
const HEADERS = {
  'content-type': 'text/plain',
  'content-length': String(BODY.length)
}
// Paths under /cached are cacheable for an hour (the cache-hit scenario).
const CACHEABLE = { ...HEADERS, 'cache-control': 'public, max-age=3600' }
// Paths containing /dynamic answer after 100 ms with no freshness information
// at all (no Cache-Control, Expires or Last-Modified): the dynamic-endpoint
// pair, a cached route against `cache: false` in front of the same slow origin.
const DYNAMIC_DELAY_MS = 100
// Paths under /large get 256 KiB (the soak benchmark's aborts and slow readers).
const LARGE = Buffer.alloc(256 * 1024, 'switchyard ')
const LARGE_HEADERS = { 'content-type': 'text/plain', 'content-length': String(LARGE.length) }

const server = createServer((req, res) => {
  // Any request body is dumped by node:http itself once the response is done.
  if (req.url?.startsWith('/large') === true) {
    res.writeHead(200, LARGE_HEADERS)
    res.end(LARGE)
    return
  }
  if (req.url?.includes('/dynamic') === true) {
    setTimeout(() => {
      res.writeHead(200, HEADERS)
      res.end(BODY)
    }, DYNAMIC_DELAY_MS)
    return
  }
  res.writeHead(200, req.url?.startsWith('/cached') === true ? CACHEABLE : HEADERS)
  res.end(BODY)
})
// Longer than any pause between two scenarios, so proxies' pooled connections
// are not closed under them (a reuse racing the close would count as an error).
server.keepAliveTimeout = 120_000
server.headersTimeout = 125_000

const port = Number(process.argv[2] ?? 0)
server.listen(port, '127.0.0.1', () => {
  process.stdout.write(JSON.stringify({ port: (server.address() as AddressInfo).port, bodyBytes: BODY.length }) + '\n')
})

function stop (): void {
  server.closeAllConnections()
  server.close()
  process.exit(0)
}
// Started by the harness with an IPC channel: it closes when the harness exits, however it exits.
if (process.connected) process.on('disconnect', stop)
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
