// A route's `compression`: `true` (every default) or { algorithms, minBytes,
// types, level }. zstd needs a Node whose zlib has it (22.15 / 23.8 on): on
// an older one it is dropped with a warning, so one config runs on every
// supported Node.
import * as zlib from 'node:zlib'
import { DEFAULTS, type CompressionAlgorithm, type CompressionConfig } from '../schema.js'
import type { Field, Reader } from '../reader.js'
import { isToken } from '../forms.js'
import { opt, size, toggle } from './common.js'

const KEYS = ['algorithms', 'minBytes', 'types', 'level'] as const
const ALGORITHMS: readonly CompressionAlgorithm[] = ['zstd', 'br', 'gzip']
const LEVELS: Readonly<Record<CompressionAlgorithm, readonly [number, number]>> = { gzip: [1, 9], br: [0, 11], zstd: [1, 19] }

/** Whether this Node's zlib compresses zstd. */
export const zstdAvailable = (): boolean => typeof (zlib as { createZstdCompress?: unknown }).createZstdCompress === 'function'

/** undefined: off (absent, `false`, invalid, or nothing this Node can do). */
export function readCompression (r: Reader, f: Field, zstd = zstdAvailable()): CompressionConfig | undefined {
  const t = toggle(r, f, KEYS)
  if (t === undefined || t === false) return undefined
  const d = DEFAULTS.route.compression
  if (t === true) return d
  const algorithms = opt(t, 'algorithms', (v) => algorithmList(r, v, zstd), d.algorithms)
  if (algorithms.length === 0) {
    r.warn(f.path, f.at, 'compression is off on this route: none of its algorithms is available on this Node.js')
    return undefined
  }
  return {
    algorithms,
    minBytes: opt(t, 'minBytes', (v) => size(r, v, 0), d.minBytes),
    types: opt(t, 'types', (v) => typeList(r, v), d.types),
    level: opt(t, 'level', (v) => levels(r, v), d.level)
  }
}

function algorithmList (r: Reader, f: Field, zstd: boolean): CompressionAlgorithm[] | undefined {
  const items = r.seq(f)
  if (items === undefined) return undefined
  if (items.length === 0) return r.expected(f, 'at least one of zstd, br, gzip')
  const out: CompressionAlgorithm[] = []
  for (const item of items) {
    const a = r.oneOf(item, ALGORITHMS)
    if (a === undefined) continue
    if (out.includes(a)) {
      r.report(item.path, item.at, `${a} is listed twice`)
      continue
    }
    if (a === 'zstd' && !zstd) {
      r.warn(item.path, item.at, `zstd is dropped: this Node.js (${process.version}) has no zstd in node:zlib (22.15 / 23.8 and later do)`)
      continue
    }
    out.push(a)
  }
  return out
}

function typeList (r: Reader, f: Field): string[] | undefined {
  const items = r.seq(f)
  if (items === undefined) return undefined
  const out: string[] = []
  for (const item of items) {
    const s = r.text(item)
    if (s === undefined) continue
    const t = s.trim().toLowerCase()
    const slash = t.indexOf('/')
    const [top, sub] = slash < 0 ? ['', ''] : [t.slice(0, slash), t.slice(slash + 1)]
    if (!isToken(top) || (sub !== '*' && !isToken(sub))) {
      r.expected(item, 'a media type without parameters (`text/html`) or a whole type (`text/*`)')
      continue
    }
    if (!out.includes(t)) out.push(t)
  }
  return out
}

function levels (r: Reader, f: Field): CompressionConfig['level'] | undefined {
  const m = r.map(f, ALGORITHMS)
  if (m === undefined) return undefined
  const d = DEFAULTS.route.compression.level
  const one = (a: CompressionAlgorithm): number => opt(m, a, (v) => r.integer(v, LEVELS[a][0], LEVELS[a][1]), d[a])
  return { gzip: one('gzip'), br: one('br'), zstd: one('zstd') }
}
