// A typed walk over the YAML syntax tree (not its plain-JS form) so every value
// keeps its position: each problem becomes a ConfigIssue with the YAML path and
// the 1-based line:column of the offending node. Readers record an issue and
// return undefined instead of throwing, so one pass finds every problem.

import { isAlias, isMap, isScalar, isSeq } from 'yaml'
import type { Document, LineCounter, Node, Scalar, YAMLMap, YAMLSeq } from 'yaml'
import type { ConfigIssue } from '../errors.js'
import { didYouMean } from './suggest.js'

export type ValueNode = Scalar | YAMLMap | YAMLSeq

/** One value in the document, with the path used in issues about it. */
export interface Field {
  readonly path: string
  /** The value with aliases followed; null when the key has no value (`key:`). */
  readonly node: ValueNode | null
  /** Where issues point: the value, or its key when the value is empty. */
  readonly at: Node | null
}

/** A key of a mapping whose keys are names chosen by the user (backends, headers). */
export interface Entry {
  readonly key: string
  readonly keyNode: Node
  readonly field: Field
}

const PLAIN_KEY = /^[A-Za-z0-9_-]+$/

/** `backends` + `api` → `backends.api`; odd keys are quoted: `backends["a.b"]`. */
export function joinPath (path: string, key: string): string {
  if (!PLAIN_KEY.test(key)) return `${path}[${JSON.stringify(key)}]`
  return path === '' ? key : `${path}.${key}`
}

export class Reader {
  readonly issues: ConfigIssue[] = []
  /** Not errors: the config works, but probably not as meant (a route that can never match). */
  readonly warnings: ConfigIssue[] = []
  readonly #doc: Document
  readonly #lines: LineCounter

  constructor (doc: Document, lines: LineCounter) {
    this.#doc = doc
    this.#lines = lines
  }

  /** The document's top-level value. */
  root (): Field {
    const node = this.#deref(this.#doc.contents)
    return { path: '', node, at: node }
  }

  /** 1-based line and column of a node; 0:0 when it has no position. */
  position (node: Node | null | undefined): { line: number, column: number } {
    const offset = node?.range?.[0]
    if (offset === undefined) return { line: 0, column: 0 }
    const { line, col } = this.#lines.linePos(offset)
    return { line, column: col }
  }

  report (path: string, at: Node | null | undefined, message: string): void {
    this.issues.push({ path, message, ...this.position(at) })
  }

  warn (path: string, at: Node | null | undefined, message: string): void {
    this.warnings.push({ path, message, ...this.position(at) })
  }

  /** Reports `expected <what>, got <value>` at the field. */
  expected (f: Field, what: string): undefined {
    this.report(f.path, f.at, `expected ${what}, got ${describe(f.node)}`)
    return undefined
  }

  /** A mapping; with `known`, every other key is reported (with a suggestion when one is close). */
  map (f: Field, known?: readonly string[]): MapView | undefined {
    if (!isMap(f.node)) return this.expected(f, 'a mapping')
    const view = new MapView(this, f.node, f.path)
    if (known !== undefined) view.checkKeys(known)
    return view
  }

  /** The items of a list, each as a Field with an indexed path. */
  seq (f: Field): Field[] | undefined {
    if (!isSeq(f.node)) return this.expected(f, 'a list')
    return f.node.items.map((item, i) => {
      const node = this.#deref(item as Node | null)
      return { path: `${f.path}[${i}]`, node, at: node }
    })
  }

  /** The raw scalar value (string, number, boolean, null), or undefined for a collection. */
  scalar (f: Field): unknown {
    return scalarValue(f.node)
  }

  string (f: Field): string | undefined {
    const v = scalarValue(f.node)
    return typeof v === 'string' ? v : this.expected(f, 'a string')
  }

  /** A non-empty string. */
  text (f: Field): string | undefined {
    const v = this.string(f)
    if (v === '') return this.expected(f, 'a non-empty string')
    return v
  }

  /** A string, or a number/boolean taken as written (header values such as `2` or `true`). */
  stringish (f: Field): string | undefined {
    const node = f.node
    if (isScalar(node)) {
      if (typeof node.value === 'string') return node.value
      if (typeof node.value === 'number' || typeof node.value === 'boolean') return node.source ?? String(node.value)
    }
    return this.expected(f, 'a string')
  }

  boolean (f: Field): boolean | undefined {
    const v = scalarValue(f.node)
    return typeof v === 'boolean' ? v : this.expected(f, 'true or false')
  }

  /** A finite number, in [min, max] when a bound is given. */
  number (f: Field, min = -Infinity, max = Infinity): number | undefined {
    const v = scalarValue(f.node)
    if (typeof v === 'number' && Number.isFinite(v) && v >= min && v <= max) return v
    const range = min === -Infinity && max === Infinity
      ? ''
      : max === Infinity ? ` >= ${min}` : min === -Infinity ? ` <= ${max}` : ` from ${min} to ${max}`
    return this.expected(f, `a number${range}`)
  }

  /** An integer in [min, max]. */
  integer (f: Field, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
    const v = scalarValue(f.node)
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `from ${min} to ${max}`
      return this.expected(f, `an integer ${range}`)
    }
    return v
  }

  /** One of a closed set of strings (case-sensitive, with a suggestion when one is close). */
  oneOf<T extends string> (f: Field, allowed: readonly T[]): T | undefined {
    const v = scalarValue(f.node)
    if (typeof v === 'string' && (allowed as readonly string[]).includes(v)) return v as T
    const hint = typeof v === 'string' ? didYouMean(v, allowed) : ''
    this.report(f.path, f.at, `expected one of ${allowed.join(', ')}, got ${describe(f.node)}${hint}`)
    return undefined
  }

  deref (node: Node | null | undefined): ValueNode | null {
    return this.#deref(node)
  }

  #deref (node: Node | null | undefined): ValueNode | null {
    // Aliases are followed; a bad one is already a YAML error, so treat it as empty.
    const target = isAlias(node) ? node.resolve(this.#doc) : node
    return isScalar(target) || isMap(target) || isSeq(target) ? target : null
  }
}

export class MapView {
  readonly #reader: Reader
  readonly node: YAMLMap
  readonly path: string
  readonly #fields = new Map<string, Field>()
  readonly #entries: Entry[] = []

  constructor (reader: Reader, node: YAMLMap, path: string) {
    this.#reader = reader
    this.node = node
    this.path = path
    for (const pair of node.items) {
      const keyNode = reader.deref(pair.key as Node | null)
      const key = scalarValue(keyNode)
      if (typeof key !== 'string' && typeof key !== 'number') {
        reader.report(path, keyNode ?? node, `keys must be plain strings, got ${describe(keyNode)}`)
        continue
      }
      const name = String(key)
      const value = reader.deref(pair.value as Node | null)
      const field = { path: joinPath(path, name), node: value, at: isEmpty(value) ? keyNode : value }
      this.#fields.set(name, field)
      this.#entries.push({ key: name, keyNode: keyNode as Node, field })
    }
  }

  /** Every key in file order (for maps whose keys are user-chosen names). */
  entries (): readonly Entry[] {
    return this.#entries
  }

  has (key: string): boolean {
    return this.#fields.has(key)
  }

  /** The value of an optional key; undefined when absent or empty (`key:` means "use the default"). */
  get (key: string): Field | undefined {
    const f = this.#fields.get(key)
    return f === undefined || isEmpty(f.node) ? undefined : f
  }

  /** The value of a required key; reports it when absent (at this mapping) or empty (at the key). */
  require (key: string, why = ''): Field | undefined {
    const f = this.#fields.get(key)
    if (f === undefined) {
      this.#reader.report(joinPath(this.path, key), this.node, `missing required key \`${key}\`${why}`)
      return undefined
    }
    if (isEmpty(f.node)) {
      this.#reader.report(f.path, f.at, `\`${key}\` needs a value${why}`)
      return undefined
    }
    return f
  }

  /** Reports each key not in `known`, suggesting the closest known one. */
  checkKeys (known: readonly string[]): void {
    for (const e of this.#entries) {
      if (known.includes(e.key)) continue
      const hint = didYouMean(e.key, known)
      const list = hint === '' ? `; expected one of ${known.join(', ')}` : hint
      this.#reader.report(e.field.path, e.keyNode, `unknown key \`${e.key}\`${list}`)
    }
  }
}

function isEmpty (node: ValueNode | null): boolean {
  return node === null || (isScalar(node) && node.value === null)
}

function scalarValue (node: ValueNode | null): unknown {
  return isScalar(node) ? node.value : undefined
}

/** How a value is shown in messages: `"10.0.0.1"`, `5`, `true`, `a list`, `nothing`. */
export function describe (node: ValueNode | null): string {
  if (isMap(node)) return 'a mapping'
  if (isSeq(node)) return 'a list'
  if (!isScalar(node) || node.value === null) return 'nothing'
  const v = node.value
  // A long value is shown by its start: an error line must stay readable (and small).
  if (typeof v === 'string') return v.length > 80 ? `${JSON.stringify(v.slice(0, 60))}… (${v.length} characters)` : JSON.stringify(v)
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v)
  return typeof v
}
