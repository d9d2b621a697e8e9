// A route's `compression`: `true`, every key as written, each mistake at its
// YAML path and line, and zstd dropped with a warning where Node lacks it.
import t from 'tap'
import { parseConfig } from '../../src/config/load.js'
import { DEFAULTS } from '../../src/config/schema.js'
import { zstdAvailable } from '../../src/config/validate/compression.js'
import type { ConfigIssue } from '../../src/errors.js'
import { BASE, only } from '../helpers/config.js'

/** BASE with one route (line 7) whose `compression` is on line 9. */
const onRoute = (c: string): string => BASE + `routes:\n  - backend: api\n    compression: ${c}\n`

function compression (yaml: string, warnings: ConfigIssue[] = []): unknown {
  return parseConfig(yaml, 'config.yaml', { onWarning: (w) => warnings.push(w) }).routes[0]?.compression
}

t.test('absent or false: none; true or {}: every default', async (t) => {
  t.equal(compression(BASE + 'routes:\n  - backend: api\n'), undefined)
  t.equal(compression(onRoute('false')), undefined)
  t.same(compression(onRoute('true')), DEFAULTS.route.compression)
  t.same(compression(onRoute('{}')), DEFAULTS.route.compression)
  t.same(DEFAULTS.route.compression.algorithms, ['br', 'gzip'])
  t.equal(DEFAULTS.route.compression.minBytes, 1024)
  t.notOk(DEFAULTS.route.compression.types.includes('text/event-stream'), 'SSE is not compressed by default')
})

t.test('every key as written: sizes, lower-cased types, levels', async (t) => {
  t.same(compression(onRoute('{ algorithms: [gzip], minBytes: 2KiB, types: [Text/HTML, "application/*"], level: { gzip: 9 } }')), {
    algorithms: ['gzip'], minBytes: 2048, types: ['text/html', 'application/*'], level: { gzip: 9, br: 4, zstd: 3 }
  })
  t.same((compression(onRoute('{ minBytes: 0 }')) as { minBytes: number }).minBytes, 0)
})

t.test('mistakes, at their path and line', async (t) => {
  only(t, onRoute('{ algorithms: [deflate] }'), 'routes[0].compression.algorithms[0]', 9, /expected one of zstd, br, gzip, got "deflate"/)
  only(t, onRoute('{ algorithms: [] }'), 'routes[0].compression.algorithms', 9, /at least one/)
  only(t, onRoute('{ algorithms: [gzip, gzip] }'), 'routes[0].compression.algorithms[1]', 9, /listed twice/)
  only(t, onRoute('{ minBytes: lots }'), 'routes[0].compression.minBytes', 9)
  only(t, onRoute('{ types: ["text html"] }'), 'routes[0].compression.types[0]', 9, /media type/)
  only(t, onRoute('{ types: ["text/html; charset=utf-8"] }'), 'routes[0].compression.types[0]', 9, /without parameters/)
  only(t, onRoute('{ level: { gzip: 10 } }'), 'routes[0].compression.level.gzip', 9, /from 1 to 9/)
  only(t, onRoute('{ level: { br: 12 } }'), 'routes[0].compression.level.br', 9, /from 0 to 11/)
  only(t, onRoute('{ level: { deflate: 1 } }'), 'routes[0].compression.level', 9, /deflate/)
  only(t, onRoute('{ gzip: true }'), 'routes[0].compression', 9, /gzip/)
  only(t, onRoute('yes'), 'routes[0].compression', 9, /true \(every default\) or false/)
})

t.test('zstd: kept where node:zlib has it, else dropped with a warning (and the route keeps the rest)', async (t) => {
  const warnings: ConfigIssue[] = []
  const c = compression(onRoute('{ algorithms: [zstd, br] }'), warnings) as { algorithms: string[] } | undefined
  if (zstdAvailable()) {
    t.same(c?.algorithms, ['zstd', 'br'])
    t.same(warnings, [])
  } else {
    t.same(c?.algorithms, ['br'])
    t.match(warnings, [{ path: 'routes[0].compression.algorithms[0]', line: 9, message: /zstd is dropped: this Node\.js .* has no zstd/ }])
    const only: ConfigIssue[] = []
    t.equal(compression(onRoute('{ algorithms: [zstd] }'), only), undefined, 'nothing left: compression is off')
    t.ok(only.some((w) => w.path === 'routes[0].compression' && /compression is off on this route/.test(w.message)), 'and says so')
  }
})
