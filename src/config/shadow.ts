// Routes that can never match, for a `check` warning. The router (see
// router/router.ts) tries routes by host class, then longest pathPrefix, then
// more conditions (listeners and methods count one each, each header one),
// then file order. So among routes with the same host, pathPrefix, headers
// and listeners:
//   - a route without `methods` gets nothing once an earlier one without
//     `methods` exists (the same conditions, and file order decides);
//   - a route with `methods` gets nothing when the routes with `methods`
//     before it in the file already list every one of its methods (those
//     with `methods` all come before those without, whatever the file order).
// pathRegex routes are ordered the same way among themselves (before every
// prefix route), so the same holds for routes with the same pathRegex.
// Routes that differ in host, path, headers or listeners are never
// reported (a route bound to listeners that another one's cover may still
// be shadowed; that is left unsaid rather than guessed).
// Pure.

import type { RouteConfig } from './schema.js'

export interface ShadowedRoute {
  /** The route that never matches. */
  readonly route: RouteConfig
  /** The routes that take every request it would get, in file order. */
  readonly by: readonly RouteConfig[]
}

/** Every route that can never match, in file order. */
export function shadowedRoutes (routes: readonly RouteConfig[]): ShadowedRoute[] {
  const groups = new Map<string, { anyMethod?: RouteConfig, owners: Map<string, RouteConfig> }>()
  const out: ShadowedRoute[] = []
  for (const route of [...routes].sort((a, b) => a.index - b.index)) {
    const m = route.match
    const headers = Object.entries(m.headers).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    const key = JSON.stringify([m.host ?? null, m.pathRegex ?? null, m.pathPrefix, headers, [...m.listeners].sort()])
    const group = groups.get(key) ?? { owners: new Map<string, RouteConfig>() }
    groups.set(key, group)
    if (m.methods.length === 0) {
      if (group.anyMethod !== undefined) out.push({ route, by: [group.anyMethod] })
      else group.anyMethod = route
      continue
    }
    const owners = m.methods.map((method) => group.owners.get(method))
    if (owners.every((o) => o !== undefined)) {
      const by = [...new Set(owners)].sort((a, b) => a.index - b.index)
      out.push({ route, by })
    }
    for (const method of m.methods) if (!group.owners.has(method)) group.owners.set(method, route)
  }
  return out
}
