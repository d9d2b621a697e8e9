// The `cache` blocks, top-level and per route, through parseConfig: each bad
// input must yield the issue at the exact YAML path and line, and nothing else.

import { readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { parseConfig } from '../../src/config/load.js'
import { BASE, issuesOf, only } from '../helpers/config.js'
import type { CacheConfig, Config, RouteCacheConfig } from '../../src/config/schema.js'


/** BASE + one route (lines 7-9) + the text given (from line 10). */
const ROUTE = BASE + 'routes:\n  - name: r\n    backend: api\n'

const parse = (text: string): Config => parseConfig(text, 'config.yaml')
const cacheOf = (text: string): CacheConfig | undefined => parse(BASE + text).cache

const DEFAULT_CACHE: CacheConfig = {
  maxBytes: 64 * 1024 * 1024,
  maxEntryBytes: 1024 * 1024,
  heuristic: true,
  heuristicMaxAge: 3_600_000,
  statusName: 'switchyard',
  collapseTimeout: 10_000,
  hitForMiss: 120_000,
  purgeFrom: [],
  targetedCacheControl: ['cdn-cache-control']
}
const DEFAULT_ROUTE_CACHE: RouteCacheConfig = {
  enabled: true,
  key: { query: 'keep', ignoreParams: [], headers: [] },
  allowSetCookie: false
}

t.test('top-level cache', async (t) => {
  t.test('absent: no cache anywhere, and no route has cache settings', async (t) => {
    for (const text of [ROUTE, ROUTE + 'cache:\n', ROUTE + 'cache: false\n']) {
      const c = parse(text)
      t.notOk(Object.hasOwn(c, 'cache'), JSON.stringify(text.slice(BASE.length)))
      t.notOk(Object.hasOwn(c.routes[0] as object, 'cache'))
    }
  })
  t.test('{} or true: every default, statusName = proxyName', async (t) => {
    t.same(cacheOf('cache: {}\n'), DEFAULT_CACHE)
    t.same(cacheOf('cache: true\n'), DEFAULT_CACHE)
    t.same(cacheOf('proxyName: edge-1\ncache: true\n'), { ...DEFAULT_CACHE, statusName: 'edge-1' })
    t.same(cacheOf('proxyName: edge-1\ncache: { maxBytes: 1MiB }\n'), { ...DEFAULT_CACHE, maxBytes: 1024 * 1024, statusName: 'edge-1' })
  })
  t.test('every option as written', async (t) => {
    t.same(cacheOf([
      'cache:',
      '  maxBytes: 256MiB',
      '  maxEntryBytes: 10MB',
      '  heuristic: false',
      '  heuristicMaxAge: 1m30s',
      '  statusName: "*edge/cache:1.0%"',
      '  collapseTimeout: 500ms',
      '  hitForMiss: 0',
      '  purgeFrom: [127.0.0.1, 10.0.0.0/8, "::1", "fd00::/8"]',
      '  targetedCacheControl: [switchyard-cache-control, cdn-cache-control]',
      ''
    ].join('\n')), {
      maxBytes: 256 * 1024 * 1024,
      maxEntryBytes: 10_000_000,
      heuristic: false,
      heuristicMaxAge: 90_000,
      statusName: '*edge/cache:1.0%',
      collapseTimeout: 500,
      hitForMiss: 0,
      purgeFrom: ['127.0.0.1', '10.0.0.0/8', '::1', 'fd00::/8'],
      targetedCacheControl: ['switchyard-cache-control', 'cdn-cache-control']
    })
    t.match(cacheOf('cache: { maxBytes: 1KiB, maxEntryBytes: 1KiB, heuristicMaxAge: 0 }\n'),
      { maxBytes: 1024, maxEntryBytes: 1024, heuristicMaxAge: 0 }, 'the smallest sizes, and 0 for heuristicMaxAge')
    t.match(cacheOf('cache: { maxBytes: 2048, maxEntryBytes: 2048 }\n'), { maxBytes: 2048, maxEntryBytes: 2048 },
      'plain numbers are bytes; maxEntryBytes may equal maxBytes')
  })
  t.test('not a mapping, true or false', async (t) => {
    only(t, BASE + 'cache: 64MiB\n', 'cache', 7, 'expected a mapping, true (every default) or false (off), got "64MiB"')
    only(t, BASE + 'cache: [a]\n', 'cache', 7, /^expected a mapping, true/)
  })
  t.test('unknown keys, with a suggestion', async (t) => {
    only(t, BASE + 'cache:\n  maxByte: 1MiB\n', 'cache.maxByte', 8, 'unknown key `maxByte`; did you mean `maxBytes`?')
    only(t, BASE + 'cache:\n  statusname: edge\n', 'cache.statusname', 8, 'did you mean `statusName`?')
    only(t, BASE + 'cache: { ttl: 5s }\n', 'cache.ttl', 7,
      'unknown key `ttl`; expected one of maxBytes, maxEntryBytes, heuristic, heuristicMaxAge, statusName, collapseTimeout, hitForMiss, purgeFrom, shared')
    only(t, BASE + 'cahce: {}\n', 'cahce', 7, 'unknown key `cahce`; did you mean `cache`?')
  })
  t.test('maxBytes is a size of at least 1KiB', async (t) => {
    only(t, BASE + 'cache:\n  maxBytes: 1000\n', 'cache.maxBytes', 8, 'expected a size of at least 1KiB, got 1000')
    only(t, BASE + 'cache:\n  maxBytes: 64mb\n', 'cache.maxBytes', 8,
      'expected a size like 512B, 16KiB, 64MiB, 1GiB, 10KB, 10MB or a plain number of bytes, got "64mb"')
    only(t, BASE + 'cache:\n  maxEntryBytes: 0\n', 'cache.maxEntryBytes', 8, 'expected a size of at least 1B, got 0')
  })
  t.test('maxEntryBytes is at most maxBytes, reported where it was written', async (t) => {
    only(t, BASE + 'cache:\n  maxBytes: 1MiB\n  maxEntryBytes: 2MiB\n', 'cache.maxEntryBytes', 9,
      '`maxEntryBytes` (2MiB) must be at most `maxBytes` (1MiB)')
    only(t, BASE + 'cache:\n  maxEntryBytes: 128MiB\n', 'cache.maxEntryBytes', 8,
      '`maxEntryBytes` (128MiB) must be at most `maxBytes` (64MiB, the default)')
    only(t, BASE + 'cache:\n  heuristic: true\n  maxEntryBytes: 1500\n  maxBytes: 1KiB\n', 'cache.maxEntryBytes', 9,
      '`maxEntryBytes` (1500B) must be at most `maxBytes` (1KiB)')
    only(t, BASE + 'cache:\n  maxBytes: 512KiB\n', 'cache.maxBytes', 8,
      '`maxEntryBytes` (1MiB, the default) must be at most `maxBytes` (512KiB)')
    t.test('a broken maxBytes is reported once, without the comparison', async (t) => {
      only(t, BASE + 'cache:\n  maxBytes: 10\n  maxEntryBytes: 1MiB\n', 'cache.maxBytes', 8, /at least 1KiB/)
    })
  })
  t.test('heuristic, heuristicMaxAge, collapseTimeout', async (t) => {
    only(t, BASE + 'cache:\n  heuristic: yes\n', 'cache.heuristic', 8, 'expected true or false, got "yes"')
    only(t, BASE + 'cache:\n  heuristicMaxAge: 1 hour\n', 'cache.heuristicMaxAge', 8, /^expected a duration like 500ms/)
    only(t, BASE + 'cache:\n  heuristicMaxAge: 3600\n', 'cache.heuristicMaxAge', 8, /^expected a duration like .*, got 3600$/)
    only(t, BASE + 'cache:\n  collapseTimeout: 0\n', 'cache.collapseTimeout', 8, 'expected a duration greater than 0, got 0')
    only(t, BASE + 'cache:\n  hitForMiss: always\n', 'cache.hitForMiss', 8, /^expected a duration like .*, got "always"$/)
    only(t, BASE + 'cache:\n  collapseTimeout: 600h\n', 'cache.collapseTimeout', 8, /at most 596h31m23s/)
  })
  t.test('statusName must be an sf-token', async (t) => {
    for (const bad of ['1cache', 'my cache', '-edge', 'edge!', 'edge;x']) {
      only(t, BASE + `cache:\n  statusName: "${bad}"\n`, 'cache.statusName', 8,
        `expected a structured-field token: a letter or \`*\`, then letters, digits, \`_\`, \`-\`, \`.\`, \`:\`, \`%\`, \`*\` or \`/\`, got ${JSON.stringify(bad)}`)
    }
    only(t, BASE + 'cache:\n  statusName: ""\n', 'cache.statusName', 8, 'expected a non-empty string, got ""')
    only(t, BASE + 'cache:\n  statusName: 5\n', 'cache.statusName', 8, 'expected a string, got 5')
    for (const good of ['a', '*', 'Edge_1', 'edge.example.com', 'cdn/edge:8443', 'x%20y', '*-*']) {
      t.equal(cacheOf(`cache: { statusName: "${good}" }\n`)?.statusName, good, good)
    }
  })
  t.test('a proxyName that is no sf-token cannot be the default statusName', async (t) => {
    const msg = /^the default `statusName` is the proxyName `1edge`, which is not a structured-field token.*; set `statusName`$/
    only(t, BASE + 'proxyName: 1edge\ncache: true\n', 'cache.statusName', 8, msg)
    only(t, BASE + 'proxyName: 1edge\ncache: {}\n', 'cache.statusName', 8, msg)
    only(t, BASE + 'proxyName: 1edge\ncache:\n  heuristic: false\n', 'cache.statusName', 9, msg)
    t.equal(cacheOf('proxyName: 1edge\ncache: { statusName: edge }\n')?.statusName, 'edge', 'an explicit statusName is enough')
    t.doesNotThrow(() => parse(BASE + 'proxyName: 1edge\n'), 'without a cache the proxyName is fine as it is')
  })
  t.test('purgeFrom: IPs and CIDRs', async (t) => {
    only(t, BASE + 'cache:\n  purgeFrom:\n    - 127.0.0.1\n    - 10.0.0.0/33\n', 'cache.purgeFrom[1]', 10,
      'expected an IP address or CIDR like 10.0.0.0/8, 192.168.1.10 or fd00::/8, got "10.0.0.0/33"')
    only(t, BASE + 'cache:\n  purgeFrom: 127.0.0.1\n', 'cache.purgeFrom', 8, 'expected a list, got "127.0.0.1"')
    only(t, BASE + 'cache:\n  purgeFrom: [localhost]\n', 'cache.purgeFrom[0]', 8, /IP address or CIDR/)
  })
  t.test('targetedCacheControl: the RFC 9213 target list, in order', async (t) => {
    t.same(cacheOf('cache: {}\n')?.targetedCacheControl, ['cdn-cache-control'], 'default: CDN-Cache-Control')
    t.same(cacheOf('cache:\n  targetedCacheControl: [switchyard-cache-control, cdn-cache-control]\n')?.targetedCacheControl,
      ['switchyard-cache-control', 'cdn-cache-control'])
    t.same(cacheOf('cache:\n  targetedCacheControl: []\n')?.targetedCacheControl, [], 'empty: Cache-Control only')
    only(t, BASE + 'cache:\n  targetedCacheControl:\n    - cdn-cache-control\n    - CDN-Cache-Control\n', 'cache.targetedCacheControl[1]', 10,
      'expected a lower-case header field name like `cdn-cache-control`, got "CDN-Cache-Control"')
    only(t, BASE + 'cache:\n  targetedCacheControl: [my cache]\n', 'cache.targetedCacheControl[0]', 8, /lower-case header field name/)
    only(t, BASE + 'cache:\n  targetedCacheControl:\n    - cdn-cache-control\n    - cdn-cache-control\n', 'cache.targetedCacheControl[1]', 10,
      /^duplicate targeted field `cdn-cache-control`/)
    only(t, BASE + 'cache:\n  targetedCacheControl: [cache-control]\n', 'cache.targetedCacheControl[0]', 8,
      /^`cache-control` is not a targeted field/)
    only(t, BASE + 'cache:\n  targetedCacheControl: cdn-cache-control\n', 'cache.targetedCacheControl', 8, 'expected a list, got "cdn-cache-control"')
  })
})

t.test('route cache', async (t) => {
  const routeCache = (text: string): RouteCacheConfig | undefined => parse(ROUTE + text + 'cache: {}\n').routes[0]?.cache
  t.test('with the top-level cache, every route has cache settings, defaults filled', async (t) => {
    const c = parse(BASE + [
      'cache: true',
      'routes:',
      '  - { name: a, backend: api }',
      '  - { name: b, backend: api, match: { pathPrefix: /b }, cache: true }',
      '  - { name: c, backend: api, match: { pathPrefix: /c }, cache: {} }',
      '  - name: d',
      '    backend: api',
      '    match: { pathPrefix: /d }',
      '    cache:',
      ''
    ].join('\n'))
    t.same(c.routes.map((r) => r.cache), [DEFAULT_ROUTE_CACHE, DEFAULT_ROUTE_CACHE, DEFAULT_ROUTE_CACHE, DEFAULT_ROUTE_CACHE])
    t.notOk(Object.hasOwn(c.routes[0]?.cache as object, 'defaultTtl'), 'no defaultTtl = heuristic rules only')
  })
  t.test('false: not cached, the other settings at their defaults', async (t) => {
    t.same(routeCache('    cache: false\n'), { ...DEFAULT_ROUTE_CACHE, enabled: false })
    t.same(routeCache('    cache: { enabled: false }\n'), { ...DEFAULT_ROUTE_CACHE, enabled: false })
  })
  t.test('every option as written', async (t) => {
    t.same(routeCache([
      '    cache:',
      '      enabled: true',
      '      key:',
      '        query: sort',
      '        ignoreParams: [utm_source, utm_medium, utm_source, "1"]',
      '        headers: [Accept-Language, X-Tenant, x-tenant]',
      '      allowSetCookie: true',
      '      defaultTtl: 5m',
      ''
    ].join('\n')), {
      enabled: true,
      key: { query: 'sort', ignoreParams: ['utm_source', 'utm_medium', '1'], headers: ['accept-language', 'x-tenant'] },
      allowSetCookie: true,
      defaultTtl: 300_000
    })
    t.same(routeCache('    cache: { key: { query: ignore } }\n')?.key, { query: 'ignore', ignoreParams: [], headers: [] })
    t.same(routeCache('    cache: { key: { query: keep, ignoreParams: [a] } }\n')?.key, { query: 'keep', ignoreParams: ['a'], headers: [] })
    t.same(routeCache('    cache: { key: {} }\n')?.key, DEFAULT_ROUTE_CACHE.key)
  })
  t.test('not a mapping, true or false', async (t) => {
    only(t, ROUTE + '    cache: yes\ncache: {}\n', 'routes[0].cache', 10, 'expected a mapping, true (every default) or false (off), got "yes"')
  })
  t.test('mistakes inside, each at its own path and line', async (t) => {
    const at = (lines: string): string => ROUTE + '    cache:\n' + lines + 'cache: {}\n'
    only(t, at('      enabled: 1\n'), 'routes[0].cache.enabled', 11, 'expected true or false, got 1')
    only(t, at('      allowSetCookie: "no"\n'), 'routes[0].cache.allowSetCookie', 11, 'expected true or false, got "no"')
    only(t, at('      defaultTtl: 0\n'), 'routes[0].cache.defaultTtl', 11, 'expected a duration greater than 0, got 0')
    only(t, at('      defaultTtl: 60\n'), 'routes[0].cache.defaultTtl', 11, /^expected a duration like/)
    only(t, at('      defaultTTL: 1m\n'), 'routes[0].cache.defaultTTL', 11, 'unknown key `defaultTTL`; did you mean `defaultTtl`?')
    only(t, at('      enable: false\n'), 'routes[0].cache.enable', 11, 'did you mean `enabled`?')
    only(t, at('      key: query\n'), 'routes[0].cache.key', 11, 'expected a mapping, got "query"')
    only(t, at('      key:\n        query: sorted\n'), 'routes[0].cache.key.query', 12,
      'expected one of keep, sort, ignore, got "sorted"; did you mean `sort`?')
    only(t, at('      key:\n        header: [accept]\n'), 'routes[0].cache.key.header', 12, 'unknown key `header`; did you mean `headers`?')
    only(t, at('      key:\n        headers:\n          - accept\n          - "x tenant"\n'), 'routes[0].cache.key.headers[1]', 14,
      'expected a header name (an HTTP token), got "x tenant"')
    only(t, at('      key:\n        headers: accept\n'), 'routes[0].cache.key.headers', 12, 'expected a list, got "accept"')
    only(t, at('      key:\n        ignoreParams: [a, ""]\n'), 'routes[0].cache.key.ignoreParams[1]', 12, 'expected a non-empty string, got ""')
    only(t, at('      key:\n        ignoreParams: [5]\n'), 'routes[0].cache.key.ignoreParams[0]', 12, 'expected a string, got 5')
  })
  t.test('ignoreParams means nothing with query: ignore', async (t) => {
    only(t, ROUTE + '    cache:\n      key:\n        query: ignore\n        ignoreParams: [utm_source]\ncache: {}\n',
      'routes[0].cache.key.ignoreParams', 13, '`ignoreParams` has no effect with `query: ignore` (the key has no query at all)')
  })
  t.test('without the top-level cache, a route cache is an error at the route key', async (t) => {
    const msg = 'a route `cache` needs the top-level `cache` block, which turns caching on, and there is none; add `cache: {}` at the top level'
    only(t, ROUTE + '    cache: true\n', 'routes[0].cache', 10, msg)
    only(t, ROUTE + '    cache: false\n', 'routes[0].cache', 10, msg)
    only(t, ROUTE + '    cache:\n      enabled: true\n', 'routes[0].cache', 10, msg)
    only(t, ROUTE + '    cache: { enabled: true }\ncache: false\n', 'routes[0].cache', 10,
      'a route `cache` needs the top-level `cache` block, which turns caching on, and it is `false`; add `cache: {}` at the top level')
    const c = parse(ROUTE + '    cache:\n')
    t.notOk(Object.hasOwn(c.routes[0] as object, 'cache'), 'an empty route `cache:` takes the default: nothing')
  })
  t.test('a broken top-level cache does not also flag the route caches', async (t) => {
    only(t, ROUTE + '    cache: { enabled: false }\ncache: { maxBytes: 1 }\n', 'cache.maxBytes', 11, /at least 1KiB/)
    only(t, ROUTE + '    cache: true\ncache: 1GiB\n', 'cache', 11, /^expected a mapping, true/)
  })
})

t.test('every cache problem at once, in file order', async (t) => {
  const issues = issuesOf(BASE + [
    'proxyName: "9"',                               // 7
    'cache:',                                       // 8
    '  maxBytes: 1MiB',                             // 9
    '  maxEntryBytes: 2MiB',                        // 10
    '  collapseTimeout: 0',                         // 11
    '  purgeFrom: [nope]',                          // 12
    'routes:',                                      // 13
    '  - backend: api',                             // 14
    '    cache:',                                   // 15
    '      key: { query: ignore, ignoreParams: [a], headers: ["a b"] }', // 16
    '      defaultTtl: -1s',                        // 17
    ''
  ].join('\n'))
  t.same(issues.map((i) => [i.path, i.line]), [
    ['cache.statusName', 9],
    ['cache.maxEntryBytes', 10],
    ['cache.collapseTimeout', 11],
    ['cache.purgeFrom[0]', 12],
    ['routes[0].cache.key.ignoreParams', 16],
    ['routes[0].cache.key.headers[0]', 16],
    ['routes[0].cache.defaultTtl', 17]
  ])
})

t.test('the cache settings are deep-frozen, shared defaults included', async (t) => {
  const c = parse(BASE + [
    'cache: { purgeFrom: [127.0.0.1] }',
    'routes:',
    '  - { name: a, backend: api }',
    '  - { name: b, backend: api, match: { pathPrefix: /b }, cache: { key: { headers: [accept] } } }',
    ''
  ].join('\n'))
  const walk = (v: unknown, at: string): void => {
    if (v === null || typeof v !== 'object') return
    if (!Object.isFrozen(v)) t.fail(`not frozen: ${at}`)
    for (const [k, child] of Object.entries(v)) walk(child, `${at}.${k}`)
  }
  walk(c, 'config')
  t.throws(() => { (c.cache as { maxBytes: number }).maxBytes = 1 }, TypeError)
  t.throws(() => { (c.cache?.purgeFrom as string[]).push('10.0.0.1') }, TypeError)
  t.throws(() => { (c.routes[0]?.cache?.key.headers as string[]).push('x') }, TypeError)
  t.throws(() => { (c.routes[1]?.cache as { enabled: boolean }).enabled = false }, TypeError)
  const again = parse(BASE + 'cache: {}\nroutes: [{ backend: api }]\n')
  t.same(again.routes[0]?.cache, DEFAULT_ROUTE_CACHE, 'a later parse still sees the untouched defaults')
})

t.test('config/example.yaml documents a working cache', async (t) => {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
  const file = path.join(root, 'config/example.yaml')
  const c = parseConfig(readFileSync(file, 'utf8'), file)
  t.ok(c.cache, 'the top-level cache block is there')
  t.ok(c.routes.every((r) => r.cache !== undefined), 'so every route has cache settings')
  t.ok(c.routes.some((r) => r.cache?.enabled === false), 'one route opts out')
  t.ok(c.routes.some((r) => r.cache?.key.query === 'sort' && r.cache.defaultTtl !== undefined), 'one route shows the full block')
})
