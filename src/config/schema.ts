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
  readonly routes: readonly RouteConfig[]
  readonly backends: Readonly<Record<string, BackendConfig>>
}

export interface ListenerConfig {
  readonly name: string
  /** As written, e.g. `127.0.0.1:8443`, `[::1]:8080`, `:8080`. */
  readonly bind: string
  readonly host: string
  readonly port: number
  /** Absent: plaintext HTTP/1.1. Present: TLS with ALPN h2 + http/1.1. */
  readonly tls?: TlsConfig
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

export interface UpstreamTimeoutsConfig {
  /** TCP (+TLS) connect (default 5s). */
  readonly connect: number
  /** From request sent to response headers received (default 60s). */
  readonly headers: number
  /** Max idle time between two response body chunks (default 60s). */
  readonly body: number
  /** Idle pooled connection lifetime (default 4s). */
  readonly keepAlive: number
}
