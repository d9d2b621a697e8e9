// Micro-benchmark of route matching with regex routes (issue 15, item 4). Not
// a test and not part of `npm test`:
//
//   npx tsx bench/route-match.ts [--lookups 200000] [--rounds 5] [--router path/to/router.ts]
//
// Tables of N prefix routes, or N regex routes plus one catch-all prefix
// route; lookups that (a) take the last regex route, (b) pass every regex
// route's literal prefix and then miss them all, (c) are ruled out by the
// literal prefixes alone. µs per lookup, the least over the rounds (wall
// time). `--router` loads another build of router.ts (e.g. main's, to check a
// table without pathRegex costs what it did). Then `(a+)+$` on paths of 50,
// 100 and 200 KB: the time grows with the length, not exponentially.

import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import type { RouteConfig } from '../src/config/schema.js'
import type { RouteInput, Router } from '../src/router/router.js'
import { compilePathRegex } from '../src/router/regex.js'

const args = parseArgs({ options: { lookups: { type: 'string', default: '200000' }, rounds: { type: 'string', default: '5' }, router: { type: 'string' } } }).values
const LOOKUPS = Number(args.lookups)
const ROUNDS = Number(args.rounds)
const mod = await import(args.router === undefined ? '../src/router/router.js' : pathToFileURL(resolve(args.router)).href) as {
  createRouter: <R extends { readonly config: RouteConfig }>(routes: readonly R[]) => Router<R>
}

function route (index: number, match: Partial<RouteConfig['match']>): { config: RouteConfig } {
  return {
    config: {
      name: `r${index}`, index, backend: 'b', match: { pathPrefix: '/', methods: [], listeners: [], headers: {}, ...match },
      rewrite: {}, requestHeaders: { set: {}, remove: [] }, responseHeaders: { set: {}, remove: [] }, earlyHints: [], consistency: 'eventual', allow: [], deny: []
    }
  }
}

const req = (path: string): RouteInput => ({ host: 'api.example.com', path, method: 'GET', header: () => undefined })

/** µs per lookup of `path`, the least over the rounds. */
function time (router: Router<{ config: RouteConfig }>, path: string, expect: string): number {
  const input = req(path)
  if (router.match(input)?.config.name !== expect) throw new Error(`${path}: expected ${expect}, got ${router.match(input)?.config.name}`)
  let best = Infinity
  for (let r = 0; r < ROUNDS; r++) {
    const t0 = performance.now()
    for (let i = 0; i < LOOKUPS; i++) router.match(input)
    best = Math.min(best, (performance.now() - t0) * 1000 / LOOKUPS)
  }
  return best
}

const rows: string[][] = [['table', 'lookup', 'µs/lookup']]
for (const n of [1, 10, 50, 100]) {
  // Prefix routes only: /svc0/ … /svcN-1/, and the catch-all.
  const prefixes = mod.createRouter([...Array.from({ length: n }, (_, i) => route(i, { pathPrefix: `/svc${i}/` })), route(n, {})])
  rows.push([`${n} prefix routes`, 'last prefix', time(prefixes, `/svc${n - 1}/users/42`, `r${n - 1}`).toFixed(3)])
  rows.push([`${n} prefix routes`, 'catch-all', time(prefixes, '/other/users/42', `r${n}`).toFixed(3)])
  if (args.router !== undefined) continue
  // Regex routes: ^/api/v<i>/(\w+)/(\d+)$ (literal prefix /api/v<i>/), and the catch-all.
  const regexes = mod.createRouter([...Array.from({ length: n }, (_, i) => route(i, { pathRegex: `^/api/v${i}/(\\w+)/(\\d+)$` })), route(n, {})])
  rows.push([`${n} regex routes`, 'last regex', time(regexes, `/api/v${n - 1}/users/42`, `r${n - 1}`).toFixed(3)])
  // Literal prefixes all pass: every regex runs and misses.
  const same = mod.createRouter([...Array.from({ length: n }, (_, i) => route(i, { pathRegex: `^/api/(\\w+)/(\\d+)/x${i}$` })), route(n, {})])
  rows.push([`${n} regex routes`, 'every regex runs, none matches', time(same, '/api/users/42/y', `r${n}`).toFixed(3)])
  rows.push([`${n} regex routes`, 'ruled out by literal prefix', time(regexes, '/static/app.css', `r${n}`).toFixed(3)])
}
const width = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)))
for (const r of rows) console.log(r.map((x, c) => c === 2 ? x.padStart(width[c]!) : x.padEnd(width[c]!)).join('  '))

if (args.router === undefined) {
  console.log('\n(a+)+$ on a run of `a` ending in `b` (no match):')
  const re = compilePathRegex('/(a+)+$')
  if ('error' in re) throw new Error(re.error)
  for (const kb of [50, 100, 200]) {
    const path = '/' + 'a'.repeat(kb * 1024) + 'b'
    let best = Infinity
    for (let r = 0; r < ROUNDS; r++) {
      const t0 = performance.now()
      if (re.test(path)) throw new Error('matched')
      best = Math.min(best, performance.now() - t0)
    }
    console.log(`  ${String(kb).padStart(3)} KB  ${best.toFixed(2)} ms`)
  }
}
