// What is measured: the counter and gauge families (name, help, labels, in
// exposition order) and the option defaults. Metrics builds its registry from
// here, and so does a merge of several instances' exports (merge.ts), so the
// two always expose the same families.
import { Registry, type Cell, type Vec } from './registry.js'
import type { MetricsOptions } from './types.js'

/** The families of one registry, by role. */
export interface Families {
  // Fed by record()
  readonly requests: Vec
  readonly upstreamErrors: Vec
  readonly requestErrors: Vec
  readonly retries: Vec
  readonly cache: Vec
  readonly rateLimited: Vec
  readonly serverUpstreamSeconds: Vec
  readonly serverUpstreamResponses: Vec
  // Events
  readonly activeConnections: Vec
  readonly connections: Vec
  readonly proxyRefused: Vec
  readonly activeStreams: Vec
  readonly streams: Vec
  readonly healthTransitions: Vec
  readonly rateLimitTransitions: Vec
  readonly internalErrors: Cell
  readonly accessLogDropped: Cell
}

/** A registry holding every family, past `maxLabelSets` label sets each folding into `other`. */
export function defineFamilies (maxLabelSets: number): { readonly registry: Registry, readonly families: Families } {
  const r = new Registry(maxLabelSets)
  const families: Families = {
    requests: r.counter('switchyard_requests_total',
      'Finished requests by route, backend, shard, server and status class (code_class="none": no response was sent; "(none)": no route matched or no server was picked).',
      ['route', 'backend', 'shard', 'server', 'code_class']),
    upstreamErrors: r.counter('switchyard_upstream_errors_total', 'Requests that failed on the upstream side, by backend and error code.', ['backend', 'code']),
    requestErrors: r.counter('switchyard_request_errors_total',
      'Requests that failed for a reason other than the upstream (no route, bad request, client gone, internal), by error code.', ['code']),
    retries: r.counter('switchyard_retries_total', 'Retries to another server after an upstream failure, by backend.', ['backend']),
    cache: r.counter('switchyard_cache_requests_total', 'Requests by route and cache status (hit, miss, stale, collapsed, bypass...).', ['route', 'result']),
    rateLimited: r.counter('switchyard_ratelimited_total', 'Requests refused with 429 by their route\'s rate limit, by route.', ['route']),
    serverUpstreamSeconds: r.counter('switchyard_server_upstream_seconds_total',
      'Time from dispatch to response headers, summed per server (with switchyard_server_upstream_responses_total: its mean latency over any interval).',
      ['backend', 'shard', 'server']),
    serverUpstreamResponses: r.counter('switchyard_server_upstream_responses_total', 'Response heads received from the server.', ['backend', 'shard', 'server']),
    activeConnections: r.gauge('switchyard_active_connections', 'Open client connections by listener and protocol.', ['listener', 'protocol']),
    connections: r.counter('switchyard_connections_total', 'Client connections accepted by listener and protocol.', ['listener', 'protocol']),
    proxyRefused: r.counter('switchyard_proxy_protocol_refused_total',
      'Connections closed before HTTP on a proxyProtocol listener, by listener and reason (untrusted source, malformed header, timeout).',
      ['listener', 'reason']),
    activeStreams: r.gauge('switchyard_active_streams', 'Open HTTP/2 streams by listener.', ['listener']),
    streams: r.counter('switchyard_streams_total', 'HTTP/2 streams opened by listener.', ['listener']),
    healthTransitions: r.counter('switchyard_health_transitions_total',
      'Server health changes by backend, shard, server and new state (to="up"|"down").', ['backend', 'shard', 'server', 'to']),
    rateLimitTransitions: r.counter('switchyard_ratelimit_store_transitions_total',
      'Rate limits with store: redis switching to the local limit (to="local": Redis down, slow or failing) and back (to="redis").', ['to']),
    internalErrors: r.counterCell('switchyard_internal_errors_total',
      'Exceptions contained while handling a request (a bug: that request\'s stream or connection was reset, the process kept serving).'),
    accessLogDropped: r.counterCell('switchyard_access_log_dropped_total',
      'Access log lines dropped because their destination (stdout, a file) took none for longer than 16 MiB of lines.')
  }
  return { registry: r, families }
}

/** MetricsOptions with every default filled in and checked. */
export function resolveOptions (opts: MetricsOptions = {}): Required<MetricsOptions> {
  const maxLabelSets = opts.maxLabelSets ?? 1000
  const maxLatencySeries = opts.maxLatencySeries ?? 200
  const summaryWindowMs = opts.summaryWindowMs ?? 120_000
  const historySeconds = opts.historySeconds ?? 300
  if (!(maxLabelSets >= 1) || !(maxLatencySeries >= 1)) throw new RangeError('maxLabelSets and maxLatencySeries must be at least 1')
  if (!(summaryWindowMs >= 2)) throw new RangeError('summaryWindowMs must be at least 2')
  if (!Number.isInteger(historySeconds) || historySeconds < 1) throw new RangeError('historySeconds must be a positive integer')
  return { maxLabelSets, maxLatencySeries, summaryWindowMs, historySeconds }
}
