// config/example.yaml states each option's default (`Default: X`) where it
// writes the key; DEFAULTS in schema.ts holds them for the validator. These
// tests keep the two from drifting: every default the example states must be
// DEFAULTS' value, as the validator reads it (X is written into the example
// and the file parsed again), and every default DEFAULTS holds must be stated.

import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { type Document, LineCounter, isMap, isScalar, isSeq, parseDocument } from 'yaml'
import type { Node } from 'yaml'
import { parseConfig } from '../../src/config/load.js'
import { DEFAULTS } from '../../src/config/schema.js'
import { ConfigError } from '../../src/errors.js'

const file = fileURLToPath(new URL('../../config/example.yaml', import.meta.url))
const text = readFileSync(file, 'utf8')
const lines = text.split('\n')

/** A key the example writes: its YAML path (as setIn takes it), and the 1-based line of the key. */
interface Written {
  readonly path: ReadonlyArray<string | number>
  readonly line: number
  readonly ancestors: readonly Written[]
}

function writtenKeys (): Written[] {
  const counter = new LineCounter()
  const doc = parseDocument(text, { lineCounter: counter })
  const out: Written[] = []
  const walk = (node: unknown, path: Array<string | number>, ancestors: Written[]): void => {
    if (isMap(node)) {
      for (const pair of node.items) {
        if (!isScalar(pair.key)) continue
        const key = String(pair.key.value)
        const w: Written = { path: [...path, key], line: counter.linePos((pair.key as Node).range?.[0] ?? 0).line, ancestors }
        out.push(w)
        walk(pair.value, w.path as Array<string | number>, [w, ...ancestors])
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => walk(item, [...path, i], ancestors))
    }
  }
  walk(doc.contents, [], [])
  return out
}

/**
 * Where DEFAULTS keeps a written key's default: list items and named
 * backends collapse into `listener`, `route`, `backend`, `server`…, as
 * DEFAULTS is shaped (a shard's servers are servers).
 */
function defaultsPath (path: ReadonlyArray<string | number>): string {
  const parts: string[] = []
  path.forEach((p, i) => {
    if (typeof p === 'number') parts.push((parts.pop() ?? '').replace(/s$/, ''))
    else if (path[i - 1] === 'backends' && i === 1) parts.splice(-1, 1, 'backend')
    else parts.push(p)
  })
  return parts.join('.').replace('shard.server', 'server')
}

/** Where the Config holds a written key's value: a plain `servers` list is the backend's one shard. */
function configPath (path: ReadonlyArray<string | number>): Array<string | number> {
  const out = [...path]
  const i = out.indexOf('servers')
  if (i > 0 && out[i - 2] === 'backends') out.splice(i, 0, 'shards', 0)
  return out
}

function lookup (root: unknown, path: string): { found: boolean, value: unknown } {
  let v = root
  for (const p of path.split('.')) {
    if (v === null || typeof v !== 'object' || !Object.hasOwn(v, p)) return { found: false, value: undefined }
    v = (v as Record<string, unknown>)[p]
  }
  return { found: true, value: v }
}

function getIn (root: unknown, path: ReadonlyArray<string | number>): unknown {
  return path.reduce<unknown>((v, p) => (v as Record<string | number, unknown> | undefined)?.[p], root)
}

const isSection = (v: unknown): boolean => v !== null && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length > 0
const isEmpty = (v: unknown): boolean => v !== null && typeof v === 'object' && Object.keys(v).length === 0

// ── what the example states ─────────────────────────────────────────────────

/** The comment lines right above `line` (1-based), nearest last. */
function commentBlock (line: number): string[] {
  const block: string[] = []
  for (let i = line - 2; i >= 0 && /^\s*#/.test(lines[i] as string); i--) block.unshift(lines[i] as string)
  return block
}

/** The comment at the end of a line, quoted strings left out. */
function trailingComment (line: number): string {
  const code = (lines[line - 1] as string).replace(/"[^"]*"|'[^']*'/g, '""')
  return /\s#(.*)$/.exec(code)?.[1] ?? ''
}

/** X of the first `Default: X` in comment text: a flow collection whole, else one word. */
function defaultIn (comment: string): string | undefined {
  const rest = /Default:\s*(.*)$/s.exec(comment.replace(/\s*\n\s*#?/g, ' '))?.[1]
  if (rest === undefined) return undefined
  const open = rest[0]
  if (open === '[' || open === '{') {
    const close = open === '[' ? ']' : '}'
    let depth = 0
    for (let i = 0; i < rest.length; i++) {
      if (rest[i] === open) depth++
      else if (rest[i] === close && --depth === 0) return rest.slice(0, i + 1)
    }
  }
  return /^\S+/.exec(rest)?.[0].replace(/[.,;]$/, '').replace(/^`(.*)`$/, '$1')
}

/**
 * An entry `<key>: …` in a comment that documents several options (as the
 * `balance` comment documents each algorithm's): its first line and the more
 * indented lines that follow it.
 */
function entryIn (block: readonly string[], key: string): string | undefined {
  const start = block.findIndex((l) => new RegExp(`^\\s*#\\s*(- )?${key}:`).test(l))
  if (start < 0) return undefined
  const indent = (l: string): number => (/^\s*#(\s*)/.exec(l)?.[1] ?? '').length
  const entry = [block[start] as string]
  for (const l of block.slice(start + 1)) {
    if (indent(l) <= indent(block[start] as string)) break
    entry.push(l)
  }
  return entry.join('\n')
}

/**
 * The default the example states for a written key: at the end of its line,
 * in the comment right above it, in an ancestor's comment documenting it as
 * an entry, or in an ancestor's own flow-mapping default
 * (`Default: { algorithm: roundRobin }`).
 */
function stated (w: Written): string | undefined {
  const key = String(w.path[w.path.length - 1])
  const own = defaultIn(trailingComment(w.line)) ?? defaultIn(commentBlock(w.line).join('\n'))
  if (own !== undefined) return own
  for (const a of w.ancestors) {
    const entry = entryIn(commentBlock(a.line), key)
    const x = entry === undefined ? undefined : defaultIn(entry)
    if (x !== undefined) return x
  }
  for (const a of w.ancestors) {
    const x = stated(a)
    const flow = x?.startsWith('{') === true ? parseDocument(x).toJS() as Record<string, unknown> : undefined
    if (flow !== undefined && Object.hasOwn(flow, key)) return String(flow[key])
  }
  return undefined
}

// ── what the validator makes of it ──────────────────────────────────────────

/** The example, edited, parsed and validated; the issues when it is refused. */
function parseEdited (edit: (doc: Document) => void): { config?: unknown, issues?: string } {
  const doc = parseDocument(text)
  edit(doc)
  try {
    return { config: parseConfig(String(doc), file, { checkFiles: false }) }
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    return { issues: err.issues.map((i) => `${i.path}: ${i.message}`).join('; ') }
  }
}

/** The key's value in the first of `edits` of the example that is accepted; else the first one's issues. */
function valueAfter (w: Written, edits: ReadonlyArray<(doc: Document) => void>): { value?: unknown, issues?: string } {
  let first: string | undefined
  for (const edit of edits) {
    const parsed = parseEdited(edit)
    if (parsed.config !== undefined) return { value: getIn(parsed.config, configPath(w.path)) }
    first ??= parsed.issues
  }
  return { issues: first ?? '' }
}

const parentOf = (w: Written): Array<string | number> => w.path.slice(0, -1) as Array<string | number>
const keyOf = (w: Written): string => String(w.path[w.path.length - 1])

/**
 * The value the key gets when the example writes `x` for it; if that is
 * refused because of the keys beside it (`algorithm: roundRobin` next to
 * leastConn's `choiceThreshold`), when `x` is written alone in its block.
 */
function written (w: Written, x: string): { value?: unknown, issues?: string } {
  const value = (): Node => parseDocument(x).contents as Node
  return valueAfter(w, [
    (doc) => doc.setIn(w.path, value()),
    (doc) => doc.setIn(parentOf(w), doc.createNode({ [keyOf(w)]: value() }))
  ])
}

/** The value the key gets when the example leaves it out (or, if that is refused, leaves its block empty). */
function leftOut (w: Written): { value?: unknown, issues?: string } {
  return valueAfter(w, [
    (doc) => doc.deleteIn(w.path),
    (doc) => doc.setIn(parentOf(w), doc.createNode({}))
  ])
}

// ── the checks ──────────────────────────────────────────────────────────────

const keys = writtenKeys()
/** DEFAULTS paths whose stated value was checked. */
const checked = new Set<string>()

t.test('each default the example states is the one in DEFAULTS', async (t) => {
  const seen = new Set<string>()
  for (const w of keys) {
    const where = `example.yaml:${w.line} ${w.path.join('.')}`
    const dpath = defaultsPath(w.path)
    const { found, value: d } = lookup(DEFAULTS, dpath)
    if (!found || isSection(d)) continue
    const first = !seen.has(dpath)
    seen.add(dpath)
    const x = stated(w)
    if (x === undefined) {
      // Stated once, where the example first writes the key; `[]` and `{}` go without saying.
      if (first && !isEmpty(d)) t.fail(`${where}: no \`Default:\` stated; DEFAULTS.${dpath} is ${JSON.stringify(d)}`)
      continue
    }
    if (x === 'absent') {
      t.fail(`${where}: says the default is absent, but DEFAULTS.${dpath} is ${JSON.stringify(d)}`)
    } else if (x === 'empty' || x === 'no') {
      t.ok(isEmpty(d), `${where}: says ${x}, DEFAULTS.${dpath} is ${JSON.stringify(d)}`)
    } else {
      const got = written(w, x)
      if (got.issues !== undefined) t.fail(`${where}: the stated default \`${x}\` is refused: ${got.issues}`)
      else t.strictSame(got.value, d, `${where}: \`Default: ${x}\` is DEFAULTS.${dpath}`)
    }
    const without = leftOut(w)
    if (without.issues !== undefined) t.fail(`${where}: the example is refused without the key: ${without.issues}`)
    else t.strictSame(without.value, d, `${where}: left out, the key takes DEFAULTS.${dpath}`)
    checked.add(dpath)
  }
  t.ok(checked.size >= 60, `the example states most defaults (${checked.size} checked)`)
})

t.test('a default the example states for a key DEFAULTS has none for is not a value the validator fills in', async (t) => {
  // Such a key has a default that depends on something else (`Default: the
  // backend's`, `Default: proxyName`): writing the words in changes the config,
  // or is refused. When it does not, the validator has a default of its own
  // that belongs in DEFAULTS.
  for (const w of keys) {
    const dpath = defaultsPath(w.path)
    if (lookup(DEFAULTS, dpath).found) continue
    const x = stated(w)
    if (x === undefined || x === 'absent' || x === 'empty') continue
    const got = written(w, x)
    const without = leftOut(w)
    if (got.issues !== undefined || without.issues !== undefined) continue
    t.notSame(got.value, without.value,
      `example.yaml:${w.line} ${w.path.join('.')}: \`Default: ${x}\` is not a value the validator fills in by itself (else it belongs in DEFAULTS.${dpath})`)
  }
})

/** Defaults of keys the example does not write, each with the reason. */
const NOT_IN_EXAMPLE: Readonly<Record<string, string>> = {
  'backend.balance.decay': 'an option of leastLatency, which is not an algorithm the example uses'
}

t.test('every default in DEFAULTS is stated in the example', async (t) => {
  const leaves: string[] = []
  const walk = (v: unknown, path: string): void => {
    if (isSection(v)) for (const [k, child] of Object.entries(v as object)) walk(child, path === '' ? k : `${path}.${k}`)
    else if (!isEmpty(v)) leaves.push(path)
  }
  walk(DEFAULTS, '')
  for (const leaf of leaves) {
    if (Object.hasOwn(NOT_IN_EXAMPLE, leaf)) continue
    t.ok(checked.has(leaf), `DEFAULTS.${leaf} is stated where config/example.yaml writes the key (or listed in NOT_IN_EXAMPLE, with why)`)
  }
})
