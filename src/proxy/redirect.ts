// Redirect answers (a listener's or a route's `redirect`): the Location is
// the request's own URL, as the plan parsed it, with the written parts
// replaced. Pure; the session writes the answer.
import type { RedirectConfig, RedirectStatus } from '../config/schema.js'
import type { Authority } from '../authority.js'

export interface RedirectAnswer {
  readonly status: RedirectStatus
  readonly location: string
  /** Whose `redirect` it is: the listener's (before routing) or the matched route's. */
  readonly by: 'listener' | 'route'
}

/**
 * `scheme://host[:port]path?query` for a request with `scheme` (the
 * listener's), `authority` and `target` (normalised path + the query as
 * sent). The request's port is kept only while scheme and host are; a port
 * that is the scheme's default is left out. `path` replaces the whole path.
 */
export function redirectLocation (c: RedirectConfig, scheme: 'http' | 'https', authority: Authority, target: string): string {
  const to = c.scheme ?? scheme
  const port = c.port ?? (to === scheme && c.host === undefined ? authority.port : undefined)
  const host = c.host ?? authority.host
  const hostPort = port === undefined || port === (to === 'https' ? 443 : 80) ? host : `${host}:${port}`
  let pathQuery = target
  if (c.path !== undefined) {
    const q = target.indexOf('?')
    pathQuery = q === -1 ? c.path : c.path + target.slice(q)
  }
  return `${to}://${hostPort}${pathQuery}`
}

/** The reason phrases, for the log and HTTP/1.1. */
export const REDIRECT_TEXT: Readonly<Record<RedirectStatus, string>> = Object.freeze({
  301: 'Moved Permanently', 302: 'Found', 307: 'Temporary Redirect', 308: 'Permanent Redirect'
})

/** One line for `check` and `explain`: `301 → https://{host}{path}?{query}`. */
export function describeRedirect (c: RedirectConfig): string {
  const to = c.scheme ?? '{scheme}'
  const port = c.port === undefined
    ? (c.scheme === undefined && c.host === undefined ? '{:port}' : '')
    : c.port === (c.scheme === 'https' ? 443 : c.scheme === 'http' ? 80 : 0) ? '' : `:${c.port}`
  return `${c.status} → ${to}://${c.host ?? '{host}'}${port}${c.path ?? '{path}'}{?query}`
}
