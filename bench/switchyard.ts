// What the bench scripts that start Switchyard share (run.ts, pair.ts): its
// config, and the GET that checks a path answers before it is loaded.
import { request as httpRequest } from 'node:http'
import { request as httpsRequest } from 'node:https'

export interface ConfigPorts {
  readonly h1: number
  readonly tls: number
  /** The admin API's port; 0: any free one (nothing reads it). */
  readonly admin: number
}

/** Switchyard's bench config: h1 and TLS listeners, one origin, a `cache: false` route, a cached `/cached` one, the dynamic pair. */
export function switchyardConfig (ports: ConfigPorts, cert: string, key: string, originPort: number, accessLog: boolean, workers: number): string {
  const q = (s: string): string => JSON.stringify(s)
  const workersBlock = workers === 1
    ? `# One process, no primary: the default is one worker per CPU, and forked
# workers would inherit the harness's pin to a single CPU.
workers: 1`
    : `# A primary (admin API, health checks; serves no requests) and ${workers} workers
# on the same listeners: node:cluster round-robin, the primary accepts and hands
# each connection to a worker.
workers: ${workers}`
  return `# Written by the bench for one run; deleted afterwards.
listeners:
  - name: h1
    bind: ${q(`127.0.0.1:${ports.h1}`)}
  - name: tls
    bind: ${q(`127.0.0.1:${ports.tls}`)}
    tls: { cert: ${q(cert)}, key: ${q(key)} }
cache: { maxBytes: 64MiB }
${workersBlock}
# The peers (http-proxy, fastify, nginx) write no access log; compare like with like. Metrics stay on.
# Run with --access-log to measure Switchyard with its default JSON access log.
accessLog: ${accessLog ? 'true' : 'false'}
# A primary's GET /status lists its workers' pids (bench/run.ts reads it on a known port).
admin: { bind: ${q(`127.0.0.1:${ports.admin}`)} }
routes:
  # Pass-through scenarios: no cache phase at all.
  - match: { pathPrefix: / }
    backend: origin
    cache: false
  # The cache-hit scenario: the origin says public, max-age=3600 here.
  - match: { pathPrefix: /cached }
    backend: origin
  # The dynamic pair: the origin answers after 100 ms and sends no freshness
  # information. A cached route (hit-for-miss at its default) against cache: false.
  - match: { pathPrefix: /dynamic-cached }
    backend: origin
  - match: { pathPrefix: /dynamic }
    backend: origin
    cache: false
backends:
  origin:
    servers:
      - url: ${q(`http://127.0.0.1:${originPort}`)}
`
}

/** One GET of `url` (TLS unchecked): null when it answered 200 with the origin's `bodyBytes`, else why not; and its Cache-Status. */
export function checkGet (url: string, bodyBytes: number): Promise<{ problem: string | null, cacheStatus: string }> {
  return new Promise((resolve) => {
    const u = new URL(url)
    const request = u.protocol === 'https:' ? httpsRequest : httpRequest
    const req = request(u, { agent: false, rejectUnauthorized: false, timeout: 5000 }, (res) => {
      let n = 0
      res.on('data', (c: Buffer) => { n += c.length })
      res.on('end', () => {
        const cacheStatus = String(res.headers['cache-status'] ?? '')
        if (res.statusCode !== 200) resolve({ problem: `GET ${url} answered ${res.statusCode}`, cacheStatus })
        else if (n !== bodyBytes) resolve({ problem: `GET ${url} returned ${n} body bytes, origin sends ${bodyBytes}`, cacheStatus })
        else resolve({ problem: null, cacheStatus })
      })
      res.on('error', (err) => { resolve({ problem: `GET ${url}: ${err.message}`, cacheStatus: '' }) })
    })
    req.on('timeout', () => { req.destroy(new Error('timed out')) })
    req.on('error', (err) => { resolve({ problem: `GET ${url}: ${err.message}`, cacheStatus: '' }) })
    req.end()
  })
}
