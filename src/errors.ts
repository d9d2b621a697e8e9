// Every failure the proxy can answer with has one row here: a stable code that
// tests and clients branch on, the HTTP status, who is at fault, and a short
// flag for logs (in the spirit of Envoy's response flags and HAProxy's
// termination states). Imports nothing.

export type ErrorSource = 'downstream' | 'upstream' | 'internal'

export interface ErrorKind {
  readonly code: string
  readonly status: number
  readonly source: ErrorSource
  /** Short log flag, Envoy style. */
  readonly flag: string
  readonly message: string
}

function kind (code: string, status: number, source: ErrorSource, flag: string, message: string): ErrorKind {
  return Object.freeze({ code, status, source, flag, message })
}

export const Errors = Object.freeze({
  NO_ROUTE: kind('LB_ERR_NO_ROUTE', 404, 'downstream', 'NR', 'no route matches this request'),
  BAD_REQUEST: kind('LB_ERR_BAD_REQUEST', 400, 'downstream', 'DPE', 'malformed request'),
  HEADERS_TOO_LARGE: kind('LB_ERR_HEADERS_TOO_LARGE', 431, 'downstream', 'HTL', 'request header fields too large'),
  URI_TOO_LONG: kind('LB_ERR_URI_TOO_LONG', 414, 'downstream', 'UTL', 'request target too long'),
  METHOD_NOT_ALLOWED: kind('LB_ERR_METHOD_NOT_ALLOWED', 405, 'downstream', 'DPE', 'method not supported by this proxy'),
  SHARD_KEY_MISSING: kind('LB_ERR_SHARD_KEY_MISSING', 400, 'downstream', 'SKM', 'the request carries no shard key'),
  FORBIDDEN: kind('LB_ERR_FORBIDDEN', 403, 'downstream', 'AD', 'the route does not accept requests from this client address'),
  UNAUTHORIZED: kind('LB_ERR_UNAUTHORIZED', 401, 'downstream', 'UA', 'the route requires valid credentials'),
  RATE_LIMITED: kind('LB_ERR_RATE_LIMITED', 429, 'downstream', 'RL', 'too many requests: the route\'s rate limit is used up'),
  NO_HEALTHY_SERVER: kind('LB_ERR_NO_HEALTHY_SERVER', 503, 'upstream', 'UH', 'no healthy server for this backend shard'),
  PRIMARY_UNAVAILABLE: kind('LB_ERR_PRIMARY_UNAVAILABLE', 503, 'upstream', 'NP', 'the shard\'s primary is not available and this request may not go to a replica'),
  QUEUE_FULL: kind('LB_ERR_QUEUE_FULL', 503, 'upstream', 'UO', 'every server is at maxConn and the queue is full'),
  QUEUE_TIMEOUT: kind('LB_ERR_QUEUE_TIMEOUT', 503, 'upstream', 'QT', 'timed out waiting for a free server'),
  UPSTREAM_CONNECT: kind('LB_ERR_UPSTREAM_CONNECT', 502, 'upstream', 'UF', 'could not connect to the upstream server'),
  UPSTREAM_RESET: kind('LB_ERR_UPSTREAM_RESET', 502, 'upstream', 'UC', 'the upstream server closed the connection'),
  UPSTREAM_PROTOCOL: kind('LB_ERR_UPSTREAM_PROTOCOL', 502, 'upstream', 'UPE', 'the upstream server sent an invalid response'),
  UPSTREAM_TIMEOUT: kind('LB_ERR_UPSTREAM_TIMEOUT', 504, 'upstream', 'UT', 'the upstream server did not answer in time'),
  UPSTREAM_BAD_RESPONSE: kind('LB_ERR_UPSTREAM_BAD_RESPONSE', 502, 'upstream', 'UBR', 'the upstream response head is malformed'),
  BODY_TOO_LARGE: kind('LB_ERR_BODY_TOO_LARGE', 413, 'downstream', 'BTL', 'a GET, HEAD, DELETE, OPTIONS or TRACE request body of unknown length is larger than the backend\'s bufferBodyBytes'),
  CLIENT_BODY_TIMEOUT: kind('LB_ERR_CLIENT_BODY_TIMEOUT', 408, 'downstream', 'SI', 'the request body stalled'),
  REQUEST_TIMEOUT: kind('LB_ERR_REQUEST_TIMEOUT', 408, 'downstream', 'RT', 'the request was not received in time'),
  TRANSFER_CODING: kind('LB_ERR_TRANSFER_CODING', 501, 'downstream', 'DPE', 'a request transfer coding other than chunked is not implemented'),
  HTTP_VERSION: kind('LB_ERR_HTTP_VERSION_NOT_SUPPORTED', 505, 'downstream', 'DPE', 'only HTTP/1.x and HTTP/2 are spoken here'),
  MISDIRECTED: kind('LB_ERR_MISDIRECTED_REQUEST', 421, 'downstream', 'MR', 'this connection\'s certificate does not serve that host'),
  TOO_MANY_TUNNELS: kind('LB_ERR_TOO_MANY_TUNNELS', 503, 'downstream', 'LO', 'too many upgraded connections on this listener'),
  AUTH_BUSY: kind('LB_ERR_AUTH_BUSY', 503, 'downstream', 'AB', 'too many password checks under way; try again'),
  ONLY_IF_CACHED: kind('LB_ERR_ONLY_IF_CACHED', 504, 'downstream', 'OIC', 'only-if-cached and nothing suitable is cached'),
  PURGE_FORBIDDEN: kind('LB_ERR_PURGE_FORBIDDEN', 405, 'downstream', 'DPE', 'PURGE is not allowed from this address'),
  CLIENT_ABORTED: kind('LB_ERR_CLIENT_ABORTED', 499, 'downstream', 'DC', 'the client went away'),
  CLIENT_SEND_TIMEOUT: kind('LB_ERR_CLIENT_SEND_TIMEOUT', 499, 'downstream', 'CD',
    'the client took nothing of the response for timeouts.clientSend'),
  CLIENT_TOO_SLOW: kind('LB_ERR_CLIENT_TOO_SLOW', 499, 'downstream', 'SB',
    'the client read too slowly a body the proxy cannot pause (one the origin ends by closing): cut at 16 MiB held'),
  PURGE_INCOMPLETE: kind('LB_ERR_PURGE_INCOMPLETE', 503, 'internal', 'PI', 'the purge did not reach every worker'),
  REWRITE_INVALID: kind('LB_ERR_REWRITE_INVALID', 500, 'internal', 'RWI', 'the route\'s rewrite did not give a valid path'),
  INTERNAL: kind('LB_ERR_INTERNAL', 500, 'internal', 'INT', 'internal error')
})

/** One problem in a config file, located by its YAML path and position. */
export interface ConfigIssue {
  /** e.g. `backends.api.servers[1].url` */
  readonly path: string
  readonly message: string
  /** 1-based; 0 when the position is unknown (e.g. a missing top-level key). */
  readonly line: number
  readonly column: number
}

export class ConfigError extends Error {
  readonly code = 'LB_ERR_CONFIG'
  readonly file: string
  readonly issues: readonly ConfigIssue[]

  constructor (file: string, issues: readonly ConfigIssue[]) {
    super(`${file}: ${issues.length} configuration error${issues.length === 1 ? '' : 's'}\n` +
      issues.map((i) => formatIssue(file, i)).join('\n'))
    this.name = 'ConfigError'
    this.file = file
    this.issues = issues
  }
}

/** `config.yaml:14:9 backends.api.servers[1].url: expected an http(s) URL, got "10.0.0.1"` */
export function formatIssue (file: string, issue: ConfigIssue): string {
  const where = issue.line > 0 ? `${file}:${issue.line}:${issue.column}` : file
  return `${where} ${issue.path === '' ? '(root)' : issue.path}: ${issue.message}`
}
