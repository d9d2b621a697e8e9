// The pure parts of the peers comparison (issue 12): the configs of nginx,
// HAProxy and Varnish, the
// external load generators' output (wrk, h2load) read into numbers, medians
// over rounds, and each row's ratios to nginx, to the best Node peer and to
// the ceiling, plus its latency added over the direct path. No I/O here: the
// harness (bench/run.ts) runs the processes, these functions read the results.

// ---- nginx -------------------------------------------------------------------

export interface NginxPorts {
  /** Plaintext HTTP/1.1. */
  readonly h1: number
  /** TLS: HTTP/1.1, and h2 by ALPN. */
  readonly tls: number
}

export interface NginxConfigInput {
  readonly ports: NginxPorts
  readonly originPort: number
  /** The temp dir it runs in: pid file, error log, cache and temp paths all go under it. */
  readonly dir: string
  readonly cert: string
  readonly key: string
  /** Upstream keep-alive connections each worker keeps idle (nginx `keepalive`). */
  readonly keepalive?: number
  /**
   * The worker's user, when nginx starts as root (it would switch to `nobody`,
   * which cannot enter a 0700 temp dir); omitted otherwise.
   */
  readonly user?: string
}

/**
 * nginx as the bench's peer: one worker, access log off (like the other
 * proxies here), keep-alive to the origin, X-Forwarded-For added (Switchyard
 * adds it by default), `/cached` through proxy_cache (the origin's
 * `max-age=3600` makes it a hit after the first request). Everything it writes
 * stays under `dir`. Started with `-g 'daemon off;'` so its pid is the
 * harness's child. Written for nginx 1.22 (Debian's nginx-light): h2 is
 * `listen … ssl http2`, not the later `http2 on`.
 */
export function nginxConfig (o: NginxConfigInput): string {
  const d = o.dir.replace(/\/+$/, '')
  const q = (s: string): string => {
    if (/["\\\n;{}$]/.test(s)) throw new Error(`nginx config: path ${JSON.stringify(s)} has characters this writer does not quote`)
    return `"${s}"`
  }
  const proxied = (extra: string): string => `      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;${extra}`
  return `# Written by bench/run.ts for one benchmark run, in its temp dir; deleted afterwards.
${o.user === undefined ? '' : `user ${q(o.user)};\n`}worker_processes 1;
pid ${q(`${d}/nginx.pid`)};
error_log ${q(`${d}/nginx-error.log`)} warn;
events {
  worker_connections 4096;
  multi_accept on;
}
http {
  access_log off;
  server_tokens off;
  keepalive_requests 1000000;
  keepalive_timeout 120s;
  client_body_temp_path ${q(`${d}/nginx-body`)};
  proxy_temp_path ${q(`${d}/nginx-proxy`)};
  fastcgi_temp_path ${q(`${d}/nginx-fastcgi`)};
  uwsgi_temp_path ${q(`${d}/nginx-uwsgi`)};
  scgi_temp_path ${q(`${d}/nginx-scgi`)};
  proxy_cache_path ${q(`${d}/nginx-cache`)} levels=1:2 keys_zone=bench:8m max_size=64m inactive=60m use_temp_path=off;
  upstream origin {
    server 127.0.0.1:${o.originPort};
    keepalive ${o.keepalive ?? 64};
    keepalive_requests 1000000;
    keepalive_timeout 120s;
  }
  server {
    listen 127.0.0.1:${o.ports.h1};
    listen 127.0.0.1:${o.ports.tls} ssl http2;
    ssl_certificate ${q(o.cert)};
    ssl_certificate_key ${q(o.key)};
    location / {
${proxied('')}
    }
    location /cached {
${proxied(`
      proxy_cache bench;`)}
    }
  }
}
`
}

// ---- HAProxy and Varnish -----------------------------------------------------

export interface HaproxyConfigInput {
  readonly ports: NginxPorts
  readonly originPort: number
  /** The certificate and its key in one PEM file (HAProxy's `crt` takes both). */
  readonly pem: string
}

/** Refuses a path the writers below would have to quote or escape. */
function plainPath (what: string, s: string): string {
  if (!/^[\w./-]+$/.test(s)) throw new Error(`${what}: path ${JSON.stringify(s)} has characters this writer does not quote`)
  return s
}

/**
 * HAProxy as the bench's peer, set up as nginx is: one thread, no logs,
 * keep-alive to the origin (`http-reuse always`, so idle server connections
 * serve any client), X-Forwarded-For added, HTTP/1.1 on the plaintext port and
 * h2 or HTTP/1.1 by ALPN on the TLS one. `maxconn` stays under a default
 * 20,000-descriptor limit (HAProxy refuses to start when it cannot raise it
 * to twice maxconn). Run in the foreground with `-db`.
 */
export function haproxyConfig (o: HaproxyConfigInput): string {
  return `# Written by bench/run.ts for one benchmark run, in its temp dir; deleted afterwards.
global
  nbthread 1
  maxconn 4096
defaults
  mode http
  timeout connect 5s
  timeout client 120s
  timeout server 120s
  timeout http-keep-alive 120s
  option forwardfor
  http-reuse always
frontend bench
  bind 127.0.0.1:${o.ports.h1}
  bind 127.0.0.1:${o.ports.tls} ssl crt ${plainPath('haproxy config', o.pem)} alpn h2,http/1.1
  default_backend origin
backend origin
  server origin 127.0.0.1:${o.originPort}
`
}

/**
 * Varnish's VCL for the cache-hit peer: `/cached` is looked up in the cache
 * (the origin's `max-age=3600` makes it a hit after the first request, as for
 * nginx and Switchyard), everything else is passed. Varnish adds
 * X-Forwarded-For itself.
 */
export function varnishVcl (originPort: number): string {
  return `vcl 4.1;
# Written by bench/run.ts for one benchmark run, in its temp dir; deleted afterwards.
backend origin {
  .host = "127.0.0.1";
  .port = "${originPort}";
}
sub vcl_recv {
  if (req.url !~ "^/cached") {
    return (pass);
  }
}
`
}

// ---- wrk -----------------------------------------------------------------------

/** Marks the line the wrk script prints, among wrk's own output. */
export const WRK_MARK = 'SWITCHYARD-WRK '

/**
 * A wrk Lua script whose done() prints one JSON line after WRK_MARK: the
 * summary, the errors and the latency percentiles (µs) wrk's own report
 * does not give (p99.9).
 */
export const WRK_SCRIPT = `done = function (summary, latency, requests)
  local e = summary.errors
  io.write(string.format('${WRK_MARK}{"requests":%d,"durationUs":%d,"bytes":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,` +
  `"p50":%d,"p90":%d,"p99":%d,"p999":%d,"mean":%.1f,"max":%d}\\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9), latency.mean, latency.max))
end
`

/**
 * The think time of a paced run, in whole ms (wrk's delay() has ms
 * resolution): each connection waits a uniformly random lo..hi after an
 * answer before its next request, so the connections drift apart instead of
 * firing together.
 */
export function paceRange (paceMs: number): { readonly lo: number, readonly hi: number } {
  return { lo: Math.max(1, Math.round(paceMs / 2)), hi: Math.max(1, Math.round(paceMs * 3 / 2)) }
}

/** WRK_SCRIPT, paced (paceRange) when paceMs is a number. wrk does not count the wait in a request's latency. */
export function wrkScript (paceMs: number | null): string {
  if (paceMs === null) return WRK_SCRIPT
  const { lo, hi } = paceRange(paceMs)
  return `delay = function () return math.random(${lo}, ${hi}) end\n${WRK_SCRIPT}`
}

export interface WrkSummary {
  readonly requests: number
  readonly durationUs: number
  readonly bytes: number
  readonly connect: number
  readonly read: number
  readonly write: number
  /** Answers with a status above 399. */
  readonly status: number
  readonly timeout: number
  /** Latency in µs. */
  readonly p50: number
  readonly p90: number
  readonly p99: number
  readonly p999: number
  readonly mean: number
  readonly max: number
}

/** The WRK_SCRIPT line in wrk's stdout, or null when it is missing or incomplete. */
export function parseWrk (stdout: string): WrkSummary | null {
  const line = stdout.split('\n').find((l) => l.startsWith(WRK_MARK))
  if (line === undefined) return null
  let v: unknown
  try {
    v = JSON.parse(line.slice(WRK_MARK.length))
  } catch {
    return null
  }
  const keys = ['requests', 'durationUs', 'bytes', 'connect', 'read', 'write', 'status', 'timeout', 'p50', 'p90', 'p99', 'p999', 'mean', 'max'] as const
  if (typeof v !== 'object' || v === null) return null
  const o = v as Record<string, unknown>
  for (const k of keys) if (typeof o[k] !== 'number' || !Number.isFinite(o[k])) return null
  return o as unknown as WrkSummary
}

// ---- h2load --------------------------------------------------------------------

export interface H2loadSummary {
  /** "finished in X s": the measured time (after the warm-up). */
  readonly seconds: number
  readonly reqPerSec: number
  readonly done: number
  readonly succeeded: number
  readonly failed: number
  readonly errored: number
  readonly timeout: number
  readonly status2xx: number
  readonly status3xx: number
  readonly status4xx: number
  readonly status5xx: number
  /** The application protocol h2load says it negotiated (`h2`, `http/1.1`), if printed. */
  readonly protocol: string | null
}

/** h2load's stdout summary, or null when its lines are missing. */
export function parseH2load (stdout: string): H2loadSummary | null {
  const fin = /finished in ([\d.]+)(ms|s), ([\d.]+) req\/s/.exec(stdout)
  const req = /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(stdout)
  const st = /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(stdout)
  if (fin === null || req === null || st === null) return null
  const n = (s: string | undefined): number => Number(s)
  const proto = /Application protocol: (\S+)/.exec(stdout)
  return {
    seconds: n(fin[1]) / (fin[2] === 'ms' ? 1000 : 1),
    reqPerSec: n(fin[3]),
    done: n(req[3]),
    succeeded: n(req[4]),
    failed: n(req[5]),
    errored: n(req[6]),
    timeout: n(req[7]),
    status2xx: n(st[1]),
    status3xx: n(st[2]),
    status4xx: n(st[3]),
    status5xx: n(st[4]),
    protocol: proto?.[1] ?? null
  }
}

/**
 * The durations (µs, third column) of h2load's `--log-file`: one line per
 * request, `start µs since epoch <TAB> status <TAB> µs to the end of the
 * answer`. Lines that are not three numbers are left out.
 */
export function h2loadLogDurations (log: string): number[] {
  const out: number[] = []
  for (const line of log.split('\n')) {
    const f = line.split('\t')
    if (f.length !== 3) continue
    const d = Number(f[2])
    if (f[0] !== '' && Number.isFinite(Number(f[0])) && Number.isFinite(d) && d >= 0) out.push(d)
  }
  return out
}

/** The p-th percentile (0-100) of `sorted` (ascending), nearest rank; NaN when empty. */
export function percentile (sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN
  // Less a hair: 99.9 / 100 * 1000 is 999.0000000000001 in floating point, whose ceiling is one rank too far.
  const rank = Math.ceil((p / 100) * sorted.length - 1e-9)
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1] ?? NaN
}

// ---- rounds ----------------------------------------------------------------------

export interface Spread { readonly median: number, readonly min: number, readonly max: number, readonly n: number }

/** Median (mean of the middle two for an even count), least and largest of the finite values; null if none. */
export function spread (values: ReadonlyArray<number | null | undefined>): Spread | null {
  const v = values.filter((x): x is number => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b)
  if (v.length === 0) return null
  const mid = v.length >> 1
  const median = v.length % 2 === 1 ? v[mid] ?? NaN : ((v[mid - 1] ?? NaN) + (v[mid] ?? NaN)) / 2
  return { median, min: v[0] ?? NaN, max: v[v.length - 1] ?? NaN, n: v.length }
}

// ---- comparisons -----------------------------------------------------------------

export interface Latency { readonly p50: number, readonly p99: number, readonly p99_9: number }

/** One row of the peers table, as measured (medians over the rounds). */
export interface PeerRow {
  readonly name: string
  readonly reqPerSec: number | null
  /** req/s ÷ proxy CPU share; null without a proxy CPU (direct). */
  readonly reqPerCore: number | null
  readonly latencyMs: Latency | null
  /** The nginx row of the same kind (same protocol, same path), if any. */
  readonly nginx: string | null
  /** The Node peers of the same kind: the best of them (most req/s per core) is the reference. */
  readonly nodePeers: readonly string[]
  /** The other native proxy of the same kind (HAProxy; Varnish for cache hits), if any. */
  readonly native: string | null
  /** The bare server that answers the same bytes: nothing in front of it can do better per core. */
  readonly ceiling: string | null
  /** The row whose latency this one adds to (the same load without the proxy). */
  readonly latencyRef: string | null
}

export interface PeerComparison {
  readonly name: string
  /** req/s per core ÷ the reference's req/s per core. */
  readonly vsNginx: number | null
  /** … ÷ the other native proxy's (PeerRow.native), and its name. */
  readonly vsNative: number | null
  readonly native: string | null
  readonly vsBestNode: number | null
  /** Which Node peer was the best. */
  readonly bestNode: string | null
  readonly vsCeiling: number | null
  /** Percentile minus the reference's percentile, in ms (can be negative in noise). */
  readonly addedMs: Latency | null
}

const ratio = (a: number | null | undefined, b: number | null | undefined): number | null =>
  a === null || a === undefined || b === null || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b <= 0 ? null : a / b

/** Every row's ratios and added latency against the rows it names (which must be in `rows` to count). */
export function comparePeers (rows: readonly PeerRow[]): PeerComparison[] {
  const byName = new Map(rows.map((r) => [r.name, r]))
  const perCore = (name: string | null): number | null => name === null || name === undefined ? null : byName.get(name)?.reqPerCore ?? null
  return rows.map((r) => {
    let bestNode: string | null = null
    for (const p of r.nodePeers) {
      const v = perCore(p)
      if (v !== null && (bestNode === null || v > (perCore(bestNode) ?? -Infinity))) bestNode = p
    }
    const ref = r.latencyRef === null ? undefined : byName.get(r.latencyRef)?.latencyMs ?? undefined
    const addedMs = r.latencyMs === null || ref === undefined || ref === null
      ? null
      : { p50: r.latencyMs.p50 - ref.p50, p99: r.latencyMs.p99 - ref.p99, p99_9: r.latencyMs.p99_9 - ref.p99_9 }
    return {
      name: r.name,
      vsNginx: r.nginx === r.name ? null : ratio(r.reqPerCore, perCore(r.nginx)),
      vsNative: r.native === r.name ? null : ratio(r.reqPerCore, perCore(r.native)),
      native: r.native,
      vsBestNode: bestNode === null || bestNode === r.name ? null : ratio(r.reqPerCore, perCore(bestNode)),
      bestNode,
      vsCeiling: r.ceiling === r.name ? null : ratio(r.reqPerCore, perCore(r.ceiling)),
      addedMs
    }
  })
}
