// The peer we compare against: the `http-proxy` npm package (what many Node
// reverse proxies are built on) in front of the bench origin over plain
// HTTP/1.1. It gets a keep-alive agent, as Switchyard pools its upstream
// connections too, and `xfwd` so it adds X-Forwarded-* like Switchyard does by
// default. Prints `{"port":N}` once listening; exits when the harness that
// started it goes away (its IPC channel closes).
//
//   node dist/bench/peer-http-proxy.js <origin-url> [port]

import { Agent, createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import httpProxy from 'http-proxy'

const target = process.argv[2]
if (target === undefined) {
  process.stderr.write('usage: peer-http-proxy.js <origin-url> [port]\n')
  process.exit(2)
}

const agent = new Agent({ keepAlive: true, maxSockets: 256 })
const proxy = httpProxy.createProxyServer({ target, agent, xfwd: true })
proxy.on('error', (_err, _req, res) => {
  // Count upstream trouble as a 502 in the load generator instead of a hung request.
  if ('writeHead' in res && !res.headersSent) {
    res.writeHead(502, { 'content-type': 'text/plain' })
    res.end('bad gateway\n')
  } else {
    res.destroy()
  }
})

const server = createServer((req, res) => { proxy.web(req, res) })
server.keepAliveTimeout = 120_000
server.headersTimeout = 125_000

const port = Number(process.argv[3] ?? 0)
server.listen(port, '127.0.0.1', () => {
  process.stdout.write(JSON.stringify({ port: (server.address() as AddressInfo).port }) + '\n')
})

function stop (): void {
  server.closeAllConnections()
  server.close()
  agent.destroy()
  process.exit(0)
}
// Started by the harness with an IPC channel: it closes when the harness exits, however it exits.
if (process.connected) process.on('disconnect', stop)
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
