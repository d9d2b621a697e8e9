// The normalized, validated configuration model. `config/load.ts` turns YAML into
// this shape once; nothing on the hot path ever sees YAML, raw strings for
// durations/sizes, or optional fields that a default could have filled.
// All durations are milliseconds, all sizes bytes. Every object is deep-frozen.

export interface Config {
  /** Absolute path of the file this came from ('' when built in code). */
  readonly source: string
  /** Name used in `Via` (and later `Cache-Status`). Default `switchyard`. */
  readonly proxyName: string
  readonly listeners: readonly ListenerConfig[]
  /** CIDRs whose X-Forwarded-* / Forwarded headers are trusted and appended to. */
  readonly trustedProxies: readonly string[]
  readonly forwarding: ForwardingConfig
  readonly limits: LimitsConfig
  readonly timeouts: ClientTimeoutsConfig
  /** How request paths are normalised before routing (the upstream gets the same path). */
  readonly pathNormalization: PathNormalizationConfig
  readonly routes: readonly RouteConfig[]
  readonly backends: Readonly<Record<string, BackendConfig>>
  /** The shared response cache; absent = no caching anywhere. */
  readonly cache?: CacheConfig
  /** The admin listener (status, metrics, reload, purge, dashboard); always present, default 127.0.0.1:9901. */
  readonly admin: AdminConfig
  readonly accessLog: AccessLogConfig
  /** Watch the config file and reload when it changes (default false; SIGHUP and POST /reload always work). */
  readonly watchConfig: boolean
}

export interface AdminConfig {
  /** Default `127.0.0.1:9901`; `false` in YAML turns the admin listener off (`enabled: false`). */
  readonly enabled: boolean
  readonly bind: string
  readonly host: string
  readonly port: number
  /** Bearer token; required to bind a non-loopback address, and then required on every call. */
  readonly token?: string
}

export interface AccessLogConfig {
  /** Default true. */
  readonly enabled: boolean
  /** Absolute file path; absent = stdout. */
  readonly path?: string
}

export interface CacheConfig {
  /** Total bytes of stored responses, headers + body (default 64MiB). */
  readonly maxBytes: number
  /** Bigger responses stream through uncached (default 1MiB). */
  readonly maxEntryBytes: number
  /** Heuristic freshness (RFC 9111 §4.2.2: 10% of the time since Last-Modified) for heuristically cacheable statuses (default true). */
  readonly heuristic: boolean
  /** Cap on a heuristic lifetime (ms, default 1h). */
  readonly heuristicMaxAge: number
  /** The cache's name in `Cache-Status` (RFC 9211); default `proxyName`. */
  readonly statusName: string
  /** How long a collapsed request waits for the one that went upstream before going itself (ms, default 10s). */
  readonly collapseTimeout: number
  /** Clients (IPs/CIDRs) allowed to send the PURGE method; empty (default) = PURGE is proxied like any method. */
  readonly purgeFrom: readonly string[]
}

export interface RouteCacheConfig {
  /** Default true when the top-level `cache` exists. */
  readonly enabled: boolean
  readonly key: CacheKeyConfig
  /** Store responses that carry Set-Cookie (default false: they are never stored). */
  readonly allowSetCookie: boolean
  /** Lifetime for responses that allow caching but state none (ms); absent = heuristic rules only. */
  readonly defaultTtl?: number
}

export interface CacheKeyConfig {
  /** `keep` (default): the query as sent; `sort`: parameters sorted; `ignore`: no query in the key. */
  readonly query: 'keep' | 'sort' | 'ignore'
  /** Query parameters left out of the key (e.g. utm_source); with `keep` or `sort`. */
  readonly ignoreParams: readonly string[]
  /** Lower-cased request header names whose values are part of the key. */
  readonly headers: readonly string[]
}

export interface ListenerConfig {
  readonly name: string
  /** As written, e.g. `127.0.0.1:8443`, `[::1]:8080`, `:8080`. */
  readonly bind: string
  readonly host: string
  readonly port: number
  /** Absent: plaintext HTTP/1.1. Present: TLS with ALPN h2 + http/1.1. */
  readonly tls?: TlsConfig
  /** Upgraded connections (WebSocket tunnels) open at once on this listener; more get 503 (default 10000). */
  readonly maxTunnels: number
}

export interface TlsConfig {
  /** The first certificate is the default when SNI matches none. */
  readonly certificates: readonly CertificateConfig[]
  readonly minVersion: 'TLSv1.2' | 'TLSv1.3'
  /** Offer h2 by ALPN (default true). */
  readonly http2: boolean
}

export interface CertificateConfig {
  /** Absolute paths (relative ones are resolved against the config file's folder). */
  readonly cert: string
  readonly key: string
  /** Host names this pair serves; empty = taken from the certificate's SAN/CN at load. */
  readonly serverNames: readonly string[]
}

export interface ForwardingConfig {
  /** Add X-Forwarded-For/-Proto/-Host (default true). */
  readonly xForwarded: boolean
  /** Add RFC 7239 Forwarded (default false). */
  readonly forwarded: boolean
  /** Add Via (default true). */
  readonly via: boolean
}

export interface LimitsConfig {
  /** Sum of header name + value bytes of one request, same rule for h1 and h2 (default 16 KiB). */
  readonly maxHeaderBytes: number
  /** Number of header fields of one request (default 100). */
  readonly maxHeaderCount: number
}

export interface ClientTimeoutsConfig {
  /** Time a client has to send a complete request head (default 30s). */
  readonly clientHeaders: number
  /** Idle keep-alive connection / h2 session lifetime without streams (default 60s). */
  readonly clientIdle: number
  /** On shutdown, how long in-flight requests may take to finish before connections are cut (default 30s). */
  readonly drain: number
  /** Longest pause between two chunks of a request body; then 408 or a reset (default 30s). */
  readonly clientBody: number
  /** Deadline for receiving the whole request, head and body, from its start (ms; default 0 = none). */
  readonly request: number
  /** An upgraded connection (WebSocket) with no traffic either way for this long is closed (HAProxy `timeout tunnel`, default 1h). */
  readonly tunnel: number
}

export interface PathNormalizationConfig {
  /** Collapse runs of `/` into one (Envoy merge_slashes; default false). */
  readonly mergeSlashes: boolean
  /**
   * `%2F` / `%5C` in a path (Envoy path_with_escaped_slashes_action): `keep` them
   * as they are (default), `reject` the request with 400, or `decode` them.
   */
  readonly escapedSlashes: 'keep' | 'reject' | 'decode'
}

export interface RouteConfig {
  /** `routes[i].name`, or `route-<i>` when not given. */
  readonly name: string
  /** Position in the file, used as the final tie-breaker. */
  readonly index: number
  readonly match: RouteMatchConfig
  readonly backend: string
  readonly rewrite: RewriteConfig
  readonly requestHeaders: HeaderOpsConfig
  readonly responseHeaders: HeaderOpsConfig
  /** Present exactly when the top-level `cache` exists (defaults filled). */
  readonly cache?: RouteCacheConfig
}

export interface RouteMatchConfig {
  /** Lower-cased; exact (`api.example.com`) or wildcard (`*.example.com`); absent = any host. */
  readonly host?: string
  /** Default `/`. Plain string prefix: `/v1` also matches `/v10`; write `/v1/` for a segment. */
  readonly pathPrefix: string
  /** Upper-cased; empty = any method. */
  readonly methods: readonly string[]
  /** Lower-cased names; exact value equality. */
  readonly headers: Readonly<Record<string, string>>
}

export interface RewriteConfig {
  /** Removed from the front of the path when present. */
  readonly stripPrefix?: string
  /** Added to the front of the (stripped) path. */
  readonly addPrefix?: string
}

export interface HeaderOpsConfig {
  /** Lower-cased name → value; replaces any existing field. */
  readonly set: Readonly<Record<string, string>>
  /** Lower-cased names removed. */
  readonly remove: readonly string[]
}

export interface BackendConfig {
  readonly name: string
  /** Always at least one; a backend written with `servers:` has one shard named `default`. */
  readonly shards: readonly ShardConfig[]
  /** Absent when there is a single shard and no `shardBy`. */
  readonly shardBy?: ShardByConfig
  readonly balance: BalanceConfig
  /** Send the client's Host upstream (default true, as HAProxy and Traefik do). */
  readonly passHostHeader: boolean
  readonly timeouts: UpstreamTimeoutsConfig
  /** Max connections per server in its pool (default 128). */
  readonly connections: number
  /** Cookie-based session affinity; absent = off. */
  readonly sticky?: StickyConfig
  /** Active HTTP health checks; absent = off (servers are assumed up). */
  readonly healthCheck?: HealthCheckConfig
  /** Passive health (Envoy outlier detection); absent = off. */
  readonly outlierDetection?: OutlierDetectionConfig
  readonly retries: RetriesConfig
  /**
   * Default per-server concurrency limit (HAProxy `maxconn`); 0 = unlimited
   * (default). A server's own `maxConn` overrides it.
   */
  readonly maxConn: number
  /** Requests that may wait per shard when every replica is at maxConn (HAProxy `maxqueue`, default 1024). */
  readonly maxQueue: number
  /** A server that comes back up ramps its weight from ~0 to full over this (ms, default 0 = off). */
  readonly slowStart: number
  /**
   * Envoy panic threshold, percent of a shard's servers: when fewer than this
   * are healthy, balance over all of them, ignoring health (default 0 = off).
   */
  readonly panicThreshold: number
  /**
   * TLS to the servers: present exactly when they are `https://` (a backend's
   * servers all use one scheme), with every default filled in when the backend
   * has no `tls` block.
   */
  readonly tls?: BackendTlsConfig
}

/** How Switchyard connects to a backend's `https://` servers (verification is always on unless `insecureSkipVerify`). */
export interface BackendTlsConfig {
  /** CA bundle (absolute path) the servers' certificates must chain to; absent = Node's default trust store. */
  readonly ca?: string
  /**
   * SNI and the name the server certificate must carry. Absent = the server
   * URL's host; for an IP address no SNI is sent and the IP must be in the
   * certificate's IP SANs.
   */
  readonly servername?: string
  /** Client certificate (chain) for mTLS, absolute path; set exactly when `key` is. */
  readonly cert?: string
  /** Private key of `cert`, absolute path. */
  readonly key?: string
  /** Default `TLSv1.2`. */
  readonly minVersion: 'TLSv1.2' | 'TLSv1.3'
  /** Accept any server certificate (default false); a loaded config warns about it. */
  readonly insecureSkipVerify: boolean
  /**
   * The files' PEM text, read and checked when the config was loaded with its
   * files checked (loadConfig, or parseConfig with `checkFiles`); absent when
   * no file was read, and then the backend reads them when it is built.
   */
  readonly pem?: BackendTlsPem
}

export interface BackendTlsPem {
  readonly ca?: string
  readonly cert?: string
  readonly key?: string
  /** sha256 (hex) of the files' contents: part of each server's pool key, so a changed file rebuilds the pools on reload. */
  readonly sha256: string
}

export interface StickyConfig {
  readonly cookie: StickyCookieConfig
}

export interface StickyCookieConfig {
  /** Default `SWITCHYARD_SERVER`. */
  readonly name: string
  /** ms; absent = session cookie. */
  readonly maxAge?: number
  /** Default `/`. */
  readonly path: string
  /** `SameSite`, default `Lax`. */
  readonly sameSite: 'Lax' | 'Strict' | 'None'
  /** Default true (`HttpOnly`). `Secure` is added on TLS listeners always. */
  readonly httpOnly: boolean
}

export interface HealthCheckConfig {
  /** Default `/healthz`. May carry a query. */
  readonly path: string
  /** Default `GET`; `HEAD` also allowed. */
  readonly method: 'GET' | 'HEAD'
  /** Host header for probes; default the server's host:port. */
  readonly host?: string
  /** ms between probes (default 2s), each delayed by a random jitter. */
  readonly interval: number
  /** Fraction of `interval` added at random, 0..1 (default 0.1). */
  readonly jitter: number
  /** ms (default 1s). */
  readonly timeout: number
  /** Consecutive successes to mark up (default 2). */
  readonly rise: number
  /** Consecutive failures to mark down (default 3). */
  readonly fall: number
  /** Inclusive status ranges counted as success (default [[200, 399]]); YAML `200-399`, `200`, or a list. */
  readonly expectStatus: readonly (readonly [number, number])[]
  /** Body must contain this substring (default: not checked). */
  readonly expectBody?: string
}

export interface OutlierDetectionConfig {
  /** Consecutive 5xx answers from real traffic that eject (default 5; 0 = off). */
  readonly consecutive5xx: number
  /** Consecutive connect/reset/timeout failures that eject (default 3; 0 = off). */
  readonly consecutiveGatewayFailure: number
  /** First ejection lasts this; each repeat ejection multiplies it (ms, default 30s). */
  readonly baseEjectionTime: number
  /** Cap on one ejection (ms, default 300s). */
  readonly maxEjectionTime: number
  /** Never eject more than this percent of a shard's servers (default 50). */
  readonly maxEjectionPercent: number
}

export interface RetriesConfig {
  /** Extra attempts on another replica of the same shard (default 2; 0 = off). */
  readonly attempts: number
  /** Also retry non-idempotent methods (POST, PATCH…) — default false. */
  readonly nonIdempotent: boolean
  /**
   * Retry budget (Finagle style): each request earns this fraction of a retry
   * (default 0.2, i.e. retries add at most ~20% load), kept in a bucket of at
   * most RETRY_BUCKET_CAP retries so a burst from one dead replica is covered
   * but a long outage cannot multiply the traffic. Retries after a failed
   * connect are free: that request reached no server…
   */
  readonly budgetPercent: number
  /** …and this many concurrent retries are always allowed, budget or not (default 3). */
  readonly minRetryConcurrency: number
  /** A request body up to this size is buffered so it can be replayed (default 64KiB); bigger bodies are streamed and not retried. */
  readonly bufferBodyBytes: number
}

export interface ShardConfig {
  readonly name: string
  readonly servers: readonly ServerConfig[]
}

export interface ServerConfig {
  /** Unique within the backend; default `<shard>-<i>` in a shard, `server-<i>` in a plain `servers:` list. */
  readonly name: string
  /** Normalized `http(s)://host:port` (no path). */
  readonly url: string
  /** Default 1, 0 < weight <= 256. */
  readonly weight: number
  /** Per-server concurrency limit; absent = the backend's `maxConn`. */
  readonly maxConn?: number
}

/** Exactly one source of the shard key. */
export type ShardByConfig =
  | { readonly header: string; readonly missing: ShardKeyMissing }
  | { readonly cookie: string; readonly missing: ShardKeyMissing }
  | { readonly query: string; readonly missing: ShardKeyMissing }
  | { readonly pathSegment: number; readonly missing: ShardKeyMissing }

/** Request without a shard key: `any` spreads it over shards round-robin, `reject` answers 400. */
export type ShardKeyMissing = 'any' | 'reject'

export type BalanceConfig =
  | { readonly algorithm: 'roundRobin' }
  /** Fewest active requests per weight; power of two choices above `choiceThreshold` servers. */
  | { readonly algorithm: 'leastConn'; readonly choiceThreshold: number }
  /**
   * Consistent hash of the client address on a ring with `virtualNodes` points
   * per unit of weight (default 100); `boundedLoad` ε > 0 caps any server at
   * (1+ε)× the average active load (default 0 = off).
   */
  | { readonly algorithm: 'ipHash'; readonly virtualNodes: number; readonly boundedLoad: number }
  /** Peak-EWMA latency × (active+1), power of two choices; `decay` is the EWMA time constant (ms, default 10s). */
  | { readonly algorithm: 'leastLatency'; readonly decay: number }

export interface UpstreamTimeoutsConfig {
  /** TCP (+TLS) connect (default 5s). */
  readonly connect: number
  /** From request sent to response headers received (default 60s). */
  readonly headers: number
  /** Max idle time between two response body chunks (default 60s). */
  readonly body: number
  /** Idle pooled connection lifetime (default 4s). */
  readonly keepAlive: number
  /** Max time a request waits in the shard queue for a free server slot (default 5s). */
  readonly queue: number
}
