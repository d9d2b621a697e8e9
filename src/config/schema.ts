// The normalized, validated configuration model. `config/load.ts` turns YAML into
// this shape once; nothing on the hot path ever sees YAML, raw strings for
// durations/sizes, or optional fields that a default could have filled.
// All durations are milliseconds, all sizes bytes. Every object is deep-frozen.
// Every default value is stated once, in DEFAULTS at the end of this file: the
// comments here say what a value means and where its default is, never the
// default itself.

export interface Config {
  /** Absolute path of the file this came from ('' when built in code). */
  readonly source: string
  /** Name used in `Via` (and later `Cache-Status`). Default: `DEFAULTS.proxyName`. */
  readonly proxyName: string
  readonly listeners: readonly ListenerConfig[]
  /** CIDRs whose X-Forwarded-* / Forwarded headers are trusted and appended to; empty = trust no one. */
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
  /** The admin listener (status, metrics, reload, purge, dashboard); always present, at `DEFAULTS.admin.bind` unless set. */
  readonly admin: AdminConfig
  readonly accessLog: AccessLogConfig
  /** Watch the config file and reload when it changes (SIGHUP and POST /reload always work). Default: `DEFAULTS.watchConfig`. */
  readonly watchConfig: boolean
  /**
   * Worker processes that serve requests: `auto` = one per available CPU
   * (os.availableParallelism, within the cgroup's CPU quota: cluster/cpus.ts), a number, or 1 = a single process with no
   * primary. Above 1, a primary process runs the health checks and the admin
   * API and supervises the workers. Default: `DEFAULTS.workers`.
   */
  readonly workers: 'auto' | number
  /** The Redis every instance shares (shared cache, purges, rate limits); absent = each instance on its own. */
  readonly redis?: RedisConfig
  /** Present when a route uses `consistency: { readYourWrites }`. */
  readonly readYourWrites?: ReadYourWritesConfig
  /** The request id every request carries; undefined = `requestId: false` (none). Default: `DEFAULTS.requestId`. */
  readonly requestId: RequestIdConfig | undefined
  readonly tracing: TracingConfig
}

/**
 * Every request gets an id: the one a trusted proxy sent in `header`, or a
 * new one. It goes upstream in `header`, back to the client in `header`, and
 * into the access log.
 */
export interface RequestIdConfig {
  /** Lower-case field name. */
  readonly header: string
}

/** W3C trace context (traceparent/tracestate) and span export. Defaults: `DEFAULTS.tracing` (no export). */
export interface TracingConfig {
  /** Send `traceparent` upstream with a new span id for the proxy hop (continuing the client's trace, or starting one). */
  readonly propagate: boolean
  /** Export one span per request over OTLP/HTTP (JSON); absent = no export. */
  readonly otlp?: OtlpConfig
}

/** Defaults: `DEFAULTS.tracing.otlp`. */
export interface OtlpConfig {
  /** The collector's traces URL, e.g. `http://127.0.0.1:4318/v1/traces`. */
  readonly endpoint: string
  /** `service.name` of the spans; default: proxyName. */
  readonly serviceName: string
  /** Sent with every export (lower-case names). */
  readonly headers: Readonly<Record<string, string>>
  /** Spans waiting for export at most; more are dropped (counted), never waited for. */
  readonly maxQueue: number
  /** Spans per export request at most. */
  readonly maxBatch: number
  /** ms between exports (sooner when a batch is full). */
  readonly flushInterval: number
  /** ms an export may take before it is abandoned (its spans dropped). */
  readonly timeout: number
}

/**
 * One connection for every feature that shares state between instances.
 * Defaults: `DEFAULTS.redis`.
 */
export interface RedisConfig {
  /**
   * Single-server mode: `redis://[user:password@]host[:port][/db]` or
   * `rediss://…` (TLS). Absent when `sentinel` or `cluster` names the nodes.
   */
  readonly url?: string
  /** Credentials for every node (they override the URL's). */
  readonly username?: string
  readonly password?: string
  /** TLS to Redis: set by `rediss://` or a `tls` block. */
  readonly tls?: RedisTlsConfig
  /** Put before every key Switchyard writes, so one Redis can serve other applications. */
  readonly keyPrefix: string
  /** Redis Sentinel: the master's name and the sentinels to ask for it. */
  readonly sentinel?: { readonly masterName: string, readonly nodes: readonly RedisNode[] }
  /** Redis Cluster: seed nodes (the rest are discovered). */
  readonly cluster?: { readonly nodes: readonly RedisNode[] }
  /** Longest any one operation may take before it counts as failed and the request goes on without Redis (ms). */
  readonly timeout: number
  /** Longest a connection attempt may take (ms); reconnects back off up to `maxReconnectDelay`. */
  readonly connectTimeout: number
  readonly maxReconnectDelay: number
}

export interface RedisNode {
  readonly host: string
  readonly port: number
}

/** Absolute paths; `rediss://` with no block = Node's default trust store, SNI from the host. */
export interface RedisTlsConfig {
  readonly ca?: string
  readonly cert?: string
  readonly key?: string
  readonly servername?: string
}

/** The second-level cache in Redis, shared by every instance. */
export interface SharedCacheConfig {
  readonly enabled: boolean
  /**
   * AES-256-GCM keys: the first seals what is written, every one opens what is
   * read (rotation: put the new key first, drop the old one once its entries
   * have expired). At least one when enabled.
   */
  readonly encryptionKeys: readonly EncryptionKeyConfig[]
}

export interface EncryptionKeyConfig {
  /** Written in each sealed value, so a reader knows which key opens it. */
  readonly id: string
  /** Where the key was read from (`env:NAME` or `file:PATH`), for messages; never the key itself. */
  readonly from: string
  /** The 32 key bytes, base64; read when the config was loaded. */
  readonly secret: string
}

export interface AdminConfig {
  /** `false` in YAML turns the admin listener off (`enabled: false`). */
  readonly enabled: boolean
  /** Default: `DEFAULTS.admin.bind`; `host` and `port` are read from it. */
  readonly bind: string
  readonly host: string
  readonly port: number
  /** Bearer token; required to bind a non-loopback address, and then required on every call. */
  readonly token?: string
}

/** Defaults: `DEFAULTS.accessLog`. */
export interface AccessLogConfig {
  readonly enabled: boolean
  /** Absolute file path; absent = stdout. */
  readonly path?: string
  /** `json`: one JSON object a line; `combined`: Apache's combined format, for tools that expect it. */
  readonly format: 'json' | 'combined'
  /** Query parameters whose values are logged as `REDACTED` (names compared case-insensitively). */
  readonly redactQuery: readonly string[]
}

/** Defaults: `DEFAULTS.cache`, but `statusName`. */
export interface CacheConfig {
  /** Total bytes of stored responses, headers + body. */
  readonly maxBytes: number
  /** Bigger responses stream through uncached. */
  readonly maxEntryBytes: number
  /** Heuristic freshness (RFC 9111 §4.2.2: 10% of the time since Last-Modified) for heuristically cacheable statuses. */
  readonly heuristic: boolean
  /** Cap on a heuristic lifetime (ms). */
  readonly heuristicMaxAge: number
  /** The cache's name in `Cache-Status` (RFC 9211); default `proxyName`. */
  readonly statusName: string
  /** How long a collapsed request waits for the one that went upstream before going itself (ms). */
  readonly collapseTimeout: number
  /**
   * How long a key whose last answer could not be stored skips the collapse
   * (Varnish's hit-for-miss): its requests go upstream at once, side by side,
   * and the first storable answer is stored and ends it (ms; 0 = never).
   */
  readonly hitForMiss: number
  /** Clients (IPs/CIDRs) allowed to send the PURGE method; empty = PURGE is proxied like any method. */
  readonly purgeFrom: readonly string[]
  /** A second-level cache in the top-level `redis`, shared by every instance; absent = this instance's memory only. */
  readonly shared?: SharedCacheConfig
  /**
   * RFC 9213 target list: lower-case response fields whose directives this
   * cache follows instead of Cache-Control and Expires, most specific first
   * (the first present and valid one wins); empty = Cache-Control only.
   */
  readonly targetedCacheControl: readonly string[]
}

/** Defaults: `DEFAULTS.route.cache`, which every route has when the top-level `cache` exists. */
export interface RouteCacheConfig {
  readonly enabled: boolean
  readonly key: CacheKeyConfig
  /** Store responses that carry Set-Cookie (false: they are never stored). */
  readonly allowSetCookie: boolean
  /** Lifetime for responses that allow caching but state none (ms); absent = heuristic rules only. */
  readonly defaultTtl?: number
}

/** Defaults: `DEFAULTS.route.cache.key`. */
export interface CacheKeyConfig {
  /** `keep`: the query as sent; `sort`: parameters sorted; `ignore`: no query in the key. */
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
  /** Upgraded connections (WebSocket tunnels) open at once on this listener; more get 503. Default: `DEFAULTS.listener.maxTunnels`. */
  readonly maxTunnels: number
  /** Every request on this listener is answered with this redirect, before routing. Absent = none. */
  readonly redirect?: RedirectConfig
  /** Connections start with a PROXY protocol header (v1 or v2) from an L4 balancer. Absent = off. */
  readonly proxyProtocol?: ProxyProtocolConfig
}

/**
 * Accepting the PROXY protocol (HAProxy `accept-proxy`, NGINX `listen …
 * proxy_protocol` + `set_real_ip_from`, Traefik `proxyProtocol.trustedIPs`):
 * the header is read before TLS or HTTP, and the client it announces is the
 * connection's client everywhere. Only from `trustedSources`: any other peer,
 * a malformed header or none within `timeout` has its connection closed.
 * Defaults: `DEFAULTS.listener.proxyProtocol`.
 */
export interface ProxyProtocolConfig {
  /** IPs and CIDRs of the balancers; `proxyProtocol: true` takes the top-level `trustedProxies`. */
  readonly trustedSources: readonly string[]
  /** How long a new connection may take to send its header (ms). */
  readonly timeout: number
}

/** PROXY protocol version a backend's connections start with (HAProxy `send-proxy` / `send-proxy-v2`). */
export type SendProxyProtocol = 'v1' | 'v2'

/**
 * A redirect the proxy answers itself (no upstream, no cache): the Location
 * is the request's scheme, host, port, path and query with the written parts
 * replaced (see proxy/redirect.ts). Default status: `DEFAULTS.route.redirect`.
 */
export interface RedirectConfig {
  /** Absent = the request's own (the listener's). */
  readonly scheme?: 'http' | 'https'
  readonly status: RedirectStatus
  /** Lower-cased; IPv6 in brackets. Absent = the request's. */
  readonly host?: string
  /** Absent = the request's port when scheme and host are unchanged, else the scheme's default. */
  readonly port?: number
  /** Replaces the whole path (the query is kept). Absent = the request's. */
  readonly path?: string
}

/** 301/302 may turn a POST into a GET (RFC 9110 §15.4.2); 307/308 keep the method and body. */
export type RedirectStatus = 301 | 302 | 307 | 308

/** Defaults: `DEFAULTS.listener.tls`. */
export interface TlsConfig {
  /** The first certificate is the default when SNI matches none. */
  readonly certificates: readonly CertificateConfig[]
  readonly minVersion: 'TLSv1.2' | 'TLSv1.3'
  /** Offer h2 by ALPN. */
  readonly http2: boolean
}

export interface CertificateConfig {
  /** Absolute paths (relative ones are resolved against the config file's folder). */
  readonly cert: string
  readonly key: string
  /** Host names this pair serves; empty = taken from the certificate's SAN/CN at load. */
  readonly serverNames: readonly string[]
}

/** Defaults: `DEFAULTS.forwarding`. */
export interface ForwardingConfig {
  /** Add X-Forwarded-For/-Proto/-Host. */
  readonly xForwarded: boolean
  /** Add RFC 7239 Forwarded. */
  readonly forwarded: boolean
  /** Add Via. */
  readonly via: boolean
}

/** Defaults: `DEFAULTS.limits`. */
export interface LimitsConfig {
  /** Sum of header name + value bytes of one request, same rule for h1 and h2. */
  readonly maxHeaderBytes: number
  /** Number of header fields of one request. */
  readonly maxHeaderCount: number
  /** Length of the request target as sent (h1 request-target, h2 :path); longer is 414 (NGINX large_client_header_buffers). */
  readonly maxUriBytes: number
}

/** Defaults: `DEFAULTS.timeouts`. */
export interface ClientTimeoutsConfig {
  /** Time a client has to send a complete request head. */
  readonly clientHeaders: number
  /** Idle keep-alive connection / h2 session lifetime without streams. */
  readonly clientIdle: number
  /** On shutdown, how long in-flight requests may take to finish before connections are cut. */
  readonly drain: number
  /** Longest pause between two chunks of a request body; then 408 or a reset. */
  readonly clientBody: number
  /** Deadline for receiving the whole request, head and body, from its start (ms; 0 = none). */
  readonly request: number
  /** Longest wait for the client to take more of a streamed response (NGINX send_timeout); then it is cut (ms; 0 = none). */
  readonly clientSend: number
  /** An upgraded connection (WebSocket) with no traffic either way for this long is closed (HAProxy `timeout tunnel`). */
  readonly tunnel: number
  /**
   * Once one side of a tunnel has closed its half, the tunnel's idle limit
   * (ms): the other side must close too or keep bytes moving (HAProxy
   * `timeout client-fin` / `server-fin`).
   */
  readonly tunnelFin: number
}

/** Defaults: `DEFAULTS.pathNormalization`. */
export interface PathNormalizationConfig {
  /** Collapse runs of `/` into one (Envoy merge_slashes). */
  readonly mergeSlashes: boolean
  /**
   * `%2F` / `%5C` in a path (Envoy path_with_escaped_slashes_action): `keep` them
   * as they are, `reject` the request with 400, or `decode` them (both to `/`).
   * `reject` and `decode` treat a raw backslash as `%5C`.
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
  /** Absent = not limited. */
  readonly rateLimit?: RateLimitConfig
  /**
   * `Link` values sent to the client as a 103 Early Hints response as soon as
   * the request goes upstream (RFC 8297), before the origin has answered;
   * empty = none.
   */
  readonly earlyHints: readonly string[]
  /** Which servers of the shard may answer, and whether the cache may. Default: `DEFAULTS.route.consistency`. */
  readonly consistency: Consistency
  /** Addresses/CIDRs (of the trusted client address) the route takes; empty = any. Checked after `deny`. */
  readonly allow: readonly string[]
  /** Addresses/CIDRs the route refuses with 403; empty = none. */
  readonly deny: readonly string[]
  /** Absent = no authentication. */
  readonly basicAuth?: BasicAuthConfig
  /** The route answers with this redirect; its backend is never contacted. Absent = none. */
  readonly redirect?: RedirectConfig
  /** Compress responses for clients that accept it (proxy/compression/). Absent = never. */
  readonly compression?: CompressionConfig
}

/** A content coding the proxy can apply; `zstd` only where node:zlib has it (Node >= 22.15). */
export type CompressionAlgorithm = 'zstd' | 'br' | 'gzip'

/**
 * Response compression (NGINX gzip, Caddy encode, Traefik compress). Defaults:
 * `DEFAULTS.route.compression`.
 */
export interface CompressionConfig {
  /** What the proxy offers, best first: the order breaks ties between codings the client weighs equally. */
  readonly algorithms: readonly CompressionAlgorithm[]
  /** A response with a smaller Content-Length is sent as it is; one of unknown length is compressed. */
  readonly minBytes: number
  /** Media types (`text/html`) or whole top-level types (`text/*`, which leaves out text/event-stream). */
  readonly types: readonly string[]
  /** Per algorithm: gzip 1–9, br 0–11, zstd 1–19. */
  readonly level: { readonly gzip: number, readonly br: number, readonly zstd: number }
}

/** HTTP Basic authentication (RFC 7617). Defaults: `DEFAULTS.route.basicAuth`. */
export interface BasicAuthConfig {
  readonly realm: string
  /** At least one; `passwordHash` in the `$scrypt$…` form of `switchyard hash-password`. */
  readonly users: ReadonlyArray<{ readonly name: string, readonly passwordHash: string }>
  /** Send the client's Authorization field upstream too. */
  readonly forward: boolean
}

/**
 * Consistency on replicated shards (servers' `role`). `eventual`: safe
 * methods go to any server and may be cached, unsafe ones to the shard's
 * primary when it has one. `strong`: every request to the primary, never
 * cached; with the primary down, 503 rather than a replica.
 */
export type Consistency = 'eventual' | 'strong' | ReadYourWritesConsistency

/**
 * `eventual`, and after a client's successful write on a shard, that
 * client's reads on that shard go to the primary, past the cache, for
 * `window` ms (a signed cookie carries the deadline: see `readYourWrites`).
 */
export interface ReadYourWritesConsistency {
  readonly readYourWrites: { readonly window: number }
}

/** How read-your-writes cookies are signed and named (top-level `readYourWrites`). Defaults: `DEFAULTS.readYourWrites`. */
export interface ReadYourWritesConfig {
  /**
   * HMAC key shared by every instance (so any of them honours another's
   * cookie). Absent in the file: a random key made once per process, good
   * for this process and its workers only (a warning says so).
   */
  readonly key: string
  readonly keyGenerated: boolean
  readonly cookie: string
}

/**
 * A route's rate limit (GCRA, a token bucket without a timer): `average`
 * requests per `period` per key, at most `burst` of them at once. Defaults:
 * `DEFAULTS.route.rateLimit`, but `burst`, which defaults to `average`.
 */
export interface RateLimitConfig {
  readonly average: number
  /** ms, a whole number of seconds (the RateLimit-Policy window is whole seconds). */
  readonly period: number
  readonly burst: number
  /** Whose requests share one limit. */
  readonly by: RateLimitBy
  /** `local`: this process's memory; `redis`: one limit across every process and instance on the top-level `redis`. */
  readonly store: 'local' | 'redis'
}

/**
 * `clientIp`: the client address (behind `trustedProxies`, the one they
 * report); a header (lower-cased name) or cookie value: a request without it
 * is limited by its client address instead.
 */
export type RateLimitBy = 'clientIp' | { readonly header: string } | { readonly cookie: string }

/** Defaults (no `match`, or a key left out): `DEFAULTS.route.match`. */
export interface RouteMatchConfig {
  /** Lower-cased; exact (`api.example.com`) or wildcard (`*.example.com`); absent = any host. */
  readonly host?: string
  /** Plain string prefix: `/v1` also matches `/v10`; write `/v1/` for a segment. `/` (the default) on a pathRegex route. */
  readonly pathPrefix: string
  /**
   * RE2 pattern the whole normalised path (no query) must match, as if
   * written `^(?:…)$`. A route has it or a pathPrefix, not both; regex routes
   * are tried before prefix routes of their host class. Absent = none.
   */
  readonly pathRegex?: string
  /** Upper-cased; empty = any method. */
  readonly methods: readonly string[]
  /** Names of the listeners whose requests the route takes (Traefik entryPoints, HAProxy frontends); empty = every listener. */
  readonly listeners: readonly string[]
  /** Lower-cased names; exact value equality. */
  readonly headers: Readonly<Record<string, string>>
}

export interface RewriteConfig {
  /** Removed from the front of the path when present. */
  readonly stripPrefix?: string
  /** Added to the front of the (stripped) path. */
  readonly addPrefix?: string
  /**
   * When `pattern` matches the whole path, the path sent upstream becomes
   * `replacement` with `$1` / `${1}` / `${name}` filled from its groups; the
   * query is kept. `pattern` defaults to the route's `match.pathRegex`. Not
   * with stripPrefix/addPrefix. Absent = none.
   */
  readonly regex?: RegexRewriteConfig
}

export interface RegexRewriteConfig {
  readonly pattern: string
  readonly replacement: string
}

export interface HeaderOpsConfig {
  /** Lower-cased name → value; replaces any existing field. */
  readonly set: Readonly<Record<string, string>>
  /** Lower-cased names removed. */
  readonly remove: readonly string[]
}

/** Defaults of the keys a backend may leave out: `DEFAULTS.backend`. */
export interface BackendConfig {
  readonly name: string
  /** Always at least one; a backend written with `servers:` has one shard named `default`. */
  readonly shards: readonly ShardConfig[]
  /** Absent when there is a single shard and no `shardBy`. */
  readonly shardBy?: ShardByConfig
  readonly balance: BalanceConfig
  /** Send the client's Host upstream; false sends the server's own host:port. */
  readonly passHostHeader: boolean
  readonly timeouts: UpstreamTimeoutsConfig
  /** Max connections per server in its pool. */
  readonly connections: number
  /**
   * How requests go to the servers: HTTP/1.1, HTTP/2 over TLS (`h2`, ALPN;
   * https:// servers) or cleartext HTTP/2 with prior knowledge (`h2c`;
   * http:// servers). gRPC needs one of the h2 forms.
   */
  readonly protocol: UpstreamProtocol
  /** Cookie-based session affinity; absent = off. */
  readonly sticky?: StickyConfig
  /** Active HTTP health checks; absent = off (servers are assumed up). */
  readonly healthCheck?: HealthCheckConfig
  /** Passive health (Envoy outlier detection); absent = off. */
  readonly outlierDetection?: OutlierDetectionConfig
  readonly retries: RetriesConfig
  /**
   * Per-server concurrency limit of the backend's servers (HAProxy `maxconn`);
   * 0 = unlimited. A server's own `maxConn` overrides it.
   */
  readonly maxConn: number
  /** Requests that may wait per shard when every replica is at maxConn (HAProxy `maxqueue`). */
  readonly maxQueue: number
  /** A server that comes back up ramps its weight from ~0 to full over this (ms, 0 = off). */
  readonly slowStart: number
  /**
   * Envoy panic threshold, percent of a shard's servers: when fewer than this
   * are healthy, balance over all of them, ignoring health (0 = off).
   */
  readonly panicThreshold: number
  /**
   * TLS to the servers: present exactly when they are `https://` (a backend's
   * servers all use one scheme), with every default filled in when the backend
   * has no `tls` block.
   */
  readonly tls?: BackendTlsConfig
  /**
   * Each connection to the servers starts with a PROXY header naming the
   * client; connections are then never shared between client connections.
   * A server's own setting overrides it. Absent = off.
   */
  readonly sendProxyProtocol?: SendProxyProtocol
}

/**
 * How Switchyard connects to a backend's `https://` servers (verification is
 * always on unless `insecureSkipVerify`). Defaults: `DEFAULTS.backend.tls`.
 */
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
  readonly minVersion: 'TLSv1.2' | 'TLSv1.3'
  /** Accept any server certificate; a loaded config warns about it. */
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

/** Defaults: `DEFAULTS.backend.sticky.cookie`. */
export interface StickyCookieConfig {
  readonly name: string
  /** ms; absent = session cookie. */
  readonly maxAge?: number
  readonly path: string
  /** `SameSite`. */
  readonly sameSite: 'Lax' | 'Strict' | 'None'
  /** `HttpOnly`. `Secure` is added on TLS listeners always. */
  readonly httpOnly: boolean
}

/** The wire protocol to a backend's servers (HAProxy `proto h2`, Envoy `http2_protocol_options`). */
export type UpstreamProtocol = 'http1' | 'h2' | 'h2c'

/** Defaults: `DEFAULTS.backend.healthCheck`. */
export interface HealthCheckConfig {
  /**
   * `http`: a request to `path`, judged by status (and body). `grpc`: the
   * standard grpc.health.v1.Health/Check over the backend's h2 or h2c; up
   * only on SERVING (path, method, host and expect* do not apply).
   */
  readonly type: 'http' | 'grpc'
  /** grpc: the service name asked about; '' = the server as a whole. */
  readonly service: string
  /** May carry a query. */
  readonly path: string
  readonly method: 'GET' | 'HEAD'
  /** Host header for probes; absent = the server's host:port. */
  readonly host?: string
  /** ms between probes, each delayed by a random jitter. */
  readonly interval: number
  /** Fraction of `interval` added at random, 0..1. */
  readonly jitter: number
  /** ms. */
  readonly timeout: number
  /** Consecutive successes to mark up. */
  readonly rise: number
  /** Consecutive failures to mark down. */
  readonly fall: number
  /** Inclusive status ranges counted as success; YAML `200-399`, `200`, or a list. */
  readonly expectStatus: readonly (readonly [number, number])[]
  /** Body must contain this substring (absent: not checked). */
  readonly expectBody?: string
}

/** Defaults: `DEFAULTS.backend.outlierDetection`. */
export interface OutlierDetectionConfig {
  /** Consecutive 5xx answers from real traffic that eject (0 = off). */
  readonly consecutive5xx: number
  /** Consecutive connect/reset/timeout failures that eject (0 = off). */
  readonly consecutiveGatewayFailure: number
  /** First ejection lasts this; each repeat ejection multiplies it (ms). */
  readonly baseEjectionTime: number
  /** Cap on one ejection (ms). */
  readonly maxEjectionTime: number
  /** Never eject more than this percent of a shard's servers. */
  readonly maxEjectionPercent: number
}

/** Defaults: `DEFAULTS.backend.retries`. */
export interface RetriesConfig {
  /** Extra attempts on another replica of the same shard (0 = off). */
  readonly attempts: number
  /** Also retry non-idempotent methods (POST, PATCH…). */
  readonly nonIdempotent: boolean
  /**
   * Retry budget (Finagle style): each request earns this fraction of a retry
   * (e.g. 0.2: retries add at most ~20% load), kept in a bucket of at
   * most RETRY_BUCKET_CAP retries so a burst from one dead replica is covered
   * but a long outage cannot multiply the traffic. Retries after a failed
   * connect are free: that request reached no server…
   */
  readonly budgetPercent: number
  /** …and this many concurrent retries are always allowed, budget or not. */
  readonly minRetryConcurrency: number
  /** A request body up to this size is buffered so it can be replayed; bigger bodies are streamed and not retried. */
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
  /** 0 < weight <= 256. Default: `DEFAULTS.backend.server.weight`. */
  readonly weight: number
  /** Per-server concurrency limit; absent = the backend's `maxConn`. */
  readonly maxConn?: number
  /**
   * `primary`: the shard's one server that takes writes; `replica`: may lag
   * behind it (routes' `consistency` decides who gets what). Default:
   * `DEFAULTS.backend.server.role`.
   */
  readonly role: ServerRole
  /** Overrides the backend's `sendProxyProtocol`; absent = the backend's. */
  readonly sendProxyProtocol?: SendProxyProtocol
}

export type ServerRole = 'primary' | 'replica'

/** Exactly one source of the shard key. */
export type ShardByConfig =
  | { readonly header: string; readonly missing: ShardKeyMissing }
  | { readonly cookie: string; readonly missing: ShardKeyMissing }
  | { readonly query: string; readonly missing: ShardKeyMissing }
  | { readonly pathSegment: number; readonly missing: ShardKeyMissing }

/** Request without a shard key: `any` spreads it over shards round-robin, `reject` answers 400. Default: `DEFAULTS.backend.shardBy.missing`. */
export type ShardKeyMissing = 'any' | 'reject'

/** Default: `DEFAULTS.backend.balance`, which also holds each algorithm's option defaults. */
export type BalanceConfig =
  | { readonly algorithm: 'roundRobin' }
  /** Fewest active requests per weight; power of two choices above `choiceThreshold` servers. */
  | { readonly algorithm: 'leastConn'; readonly choiceThreshold: number }
  /**
   * Consistent hash of the client address on a ring with `virtualNodes` points
   * per unit of weight; `boundedLoad` ε > 0 caps any server at (1+ε)× the
   * average active load (0 = off).
   */
  | { readonly algorithm: 'ipHash'; readonly virtualNodes: number; readonly boundedLoad: number }
  /** Peak-EWMA latency × (active+1), power of two choices; `decay` is the EWMA time constant (ms). */
  | { readonly algorithm: 'leastLatency'; readonly decay: number }

/** Defaults: `DEFAULTS.backend.timeouts`. */
export interface UpstreamTimeoutsConfig {
  /** TCP (+TLS) connect. */
  readonly connect: number
  /** From request sent to response headers received. */
  readonly headers: number
  /** Max idle time between two response body chunks. */
  readonly body: number
  /** Idle pooled connection lifetime. */
  readonly keepAlive: number
  /** Max time a request waits in the shard queue for a free server slot. */
  readonly queue: number
}

// ── Defaults ──────────────────────────────────────────────────────────────

/**
 * Every default of the configuration, stated once. The validator fills each
 * key left out from here, the comments above point here, and
 * test/config/defaults.test.ts checks that config/example.yaml states these
 * values. Shaped like the YAML: a top-level key's defaults are under its own
 * name; `listener`, `route` and `backend` hold the defaults of one list item or
 * named entry (and `backend.server` of one server). In Config units: durations
 * in ms, sizes in bytes. A new key gets its default here, next to its type.
 */
export const DEFAULTS = deepFreeze({
  proxyName: 'switchyard',
  trustedProxies: [] as readonly string[],
  forwarding: { xForwarded: true, forwarded: false, via: true } satisfies ForwardingConfig,
  requestId: { header: 'x-request-id' } satisfies RequestIdConfig,
  readYourWrites: { cookie: 'switchyard_ryw' } satisfies Pick<ReadYourWritesConfig, 'cookie'>,
  /** `otlp` holds the defaults of an `otlp` block that is written; without one nothing is exported. */
  tracing: {
    propagate: true,
    otlp: { maxQueue: 2048, maxBatch: 512, flushInterval: 5000, timeout: 10_000 } satisfies Pick<OtlpConfig, 'maxQueue' | 'maxBatch' | 'flushInterval' | 'timeout'>
  },
  limits: { maxHeaderBytes: 16 * 1024, maxHeaderCount: 100, maxUriBytes: 8 * 1024 } satisfies LimitsConfig,
  timeouts: {
    clientHeaders: 30_000, clientIdle: 60_000, drain: 30_000, clientBody: 30_000, request: 0, clientSend: 60_000, tunnel: 3_600_000, tunnelFin: 30_000
  } satisfies ClientTimeoutsConfig,
  pathNormalization: { mergeSlashes: false, escapedSlashes: 'keep' } satisfies PathNormalizationConfig,
  routes: [] as readonly RouteConfig[],
  backends: {} as Readonly<Record<string, BackendConfig>>,
  /** `statusName` is left out: it defaults to the proxyName. */
  cache: {
    maxBytes: 64 * 1024 * 1024, maxEntryBytes: 1024 * 1024, heuristic: true, heuristicMaxAge: 3_600_000, collapseTimeout: 10_000, hitForMiss: 120_000,
    purgeFrom: [] as readonly string[],
    targetedCacheControl: ['cdn-cache-control'] as readonly string[]
  } satisfies Omit<CacheConfig, 'statusName'>,
  /** The admin listener's `host` and `port` are read from `bind`. */
  admin: { bind: '127.0.0.1:9901' } satisfies Pick<AdminConfig, 'bind'>,
  accessLog: { enabled: true, format: 'json', redactQuery: [] } satisfies AccessLogConfig,
  watchConfig: false,
  workers: 'auto' as 'auto' | number,
  redis: { keyPrefix: 'switchyard:', timeout: 250, connectTimeout: 2000, maxReconnectDelay: 5000 } satisfies Omit<RedisConfig, 'url'>,
  listener: {
    maxTunnels: 10_000,
    redirect: { status: 301 } satisfies Pick<RedirectConfig, 'status'>,
    proxyProtocol: { timeout: 5000 } satisfies Pick<ProxyProtocolConfig, 'timeout'>,
    tls: {
      minVersion: 'TLSv1.2', http2: true,
      certificate: { serverNames: [] as readonly string[] }
    } satisfies Pick<TlsConfig, 'minVersion' | 'http2'> & { certificate: Pick<CertificateConfig, 'serverNames'> }
  },
  route: {
    match: { pathPrefix: '/', methods: [] as readonly string[], listeners: [] as readonly string[], headers: {} } satisfies RouteMatchConfig,
    rewrite: {} satisfies RewriteConfig,
    requestHeaders: { set: {}, remove: [] as readonly string[] } satisfies HeaderOpsConfig,
    responseHeaders: { set: {}, remove: [] as readonly string[] } satisfies HeaderOpsConfig,
    cache: {
      enabled: true,
      key: { query: 'keep', ignoreParams: [] as readonly string[], headers: [] as readonly string[] } satisfies CacheKeyConfig,
      allowSetCookie: false
    } satisfies RouteCacheConfig,
    earlyHints: [] as readonly string[],
    consistency: 'eventual' as Consistency,
    allow: [] as readonly string[],
    deny: [] as readonly string[],
    basicAuth: { realm: 'switchyard', forward: false } satisfies Pick<BasicAuthConfig, 'realm' | 'forward'>,
    redirect: { status: 301 } satisfies Pick<RedirectConfig, 'status'>,
    compression: {
      algorithms: ['br', 'gzip'] as readonly CompressionAlgorithm[],
      minBytes: 1024,
      types: [
        'text/*', 'application/json', 'application/javascript', 'application/xml', 'application/xhtml+xml',
        'application/rss+xml', 'application/atom+xml', 'application/ld+json', 'application/manifest+json',
        'application/wasm', 'image/svg+xml', 'image/x-icon', 'font/ttf', 'font/otf'
      ] as readonly string[],
      // Fast levels for on-the-fly work (br's own default, 11, is for static files).
      level: { gzip: 6, br: 4, zstd: 3 }
    } satisfies CompressionConfig,
    /** `average` is required; `burst` defaults to it. */
    rateLimit: { period: 1000, by: 'clientIp', store: 'local' } satisfies Pick<RateLimitConfig, 'period' | 'by' | 'store'>
  },
  backend: {
    /** The algorithm, and the default of every option of every algorithm (each reads the ones it takes). */
    balance: {
      algorithm: 'roundRobin', choiceThreshold: 10, virtualNodes: 100, boundedLoad: 0, decay: 10_000
    } satisfies BalanceDefaults,
    shardBy: { missing: 'any' } satisfies { missing: ShardKeyMissing },
    passHostHeader: true,
    timeouts: { connect: 5000, headers: 60_000, body: 60_000, keepAlive: 4000, queue: 5000 } satisfies UpstreamTimeoutsConfig,
    connections: 128,
    protocol: 'http1' as UpstreamProtocol,
    maxConn: 0,
    maxQueue: 1024,
    slowStart: 0,
    panicThreshold: 0,
    server: { weight: 1, role: 'replica' } satisfies Pick<ServerConfig, 'weight' | 'role'>,
    sticky: {
      cookie: { name: 'SWITCHYARD_SERVER', path: '/', sameSite: 'Lax', httpOnly: true } satisfies StickyCookieConfig
    } satisfies StickyConfig,
    healthCheck: {
      type: 'http', service: '', path: '/healthz', method: 'GET', interval: 2000, jitter: 0.1, timeout: 1000, rise: 2, fall: 3,
      expectStatus: [[200, 399]] as ReadonlyArray<readonly [number, number]>
    } satisfies HealthCheckConfig,
    outlierDetection: {
      consecutive5xx: 5, consecutiveGatewayFailure: 3, baseEjectionTime: 30_000, maxEjectionTime: 300_000, maxEjectionPercent: 50
    } satisfies OutlierDetectionConfig,
    retries: {
      attempts: 2, nonIdempotent: false, budgetPercent: 0.2, minRetryConcurrency: 3, bufferBodyBytes: 64 * 1024
    } satisfies RetriesConfig,
    tls: { minVersion: 'TLSv1.2', insecureSkipVerify: false } satisfies BackendTlsConfig
  }
})

/** The `balance` block's defaults: the algorithm, and every option any algorithm takes. */
type BalanceDefaults = { readonly algorithm: BalanceConfig['algorithm'] } & {
  readonly [K in Exclude<KeysOfUnion<BalanceConfig>, 'algorithm'>]: number
}

type KeysOfUnion<T> = T extends unknown ? keyof T : never

/** What deepFreeze returns: readonly all the way down, as it is at run time. */
export type DeepReadonly<T> = T extends object ? { readonly [K in keyof T]: DeepReadonly<T[K]> } : T

/** Freezes `value` and everything reachable from it; the config is a tree (shared defaults at most), so a plain walk ends. */
export function deepFreeze<T> (value: T): DeepReadonly<T> {
  if (value !== null && typeof value === 'object') {
    Object.freeze(value)
    for (const v of Object.values(value)) deepFreeze(v)
  }
  return value as DeepReadonly<T>
}
