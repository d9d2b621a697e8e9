// The label registry: every counter and gauge family with its name, help and
// label names, in the order the exposition writes them. A labelled family
// keeps its label sets in a Vec (a CounterVec / GaugeVec in Prometheus client
// terms) whose cells record() and the connection / health events increment;
// an unlabelled one is a single cell. render.ts walks the families; nothing
// here formats text. A cluster primary merges workers' registries by family
// name (export, add), into a registry built from the same catalog.
//
// The hot path builds no strings and allocates nothing once its label sets
// exist: label sets live in nested Maps keyed by each label value. Every
// family holds at most `limit` label sets (routes, backends and servers come
// from the config, but codes and cache outcomes are open-ended); later ones
// are counted under `other`.
import type { FamilyExport, StatusClass } from './types.js'

export const OTHER = 'other'
/** The label value for "there was none" (no route matched, no server was picked): never an empty string. */
export const NONE = '(none)'

/** The `code_class` label values, indexed by classIndex(). */
export const CLASSES: readonly StatusClass[] = ['none', '1xx', '2xx', '3xx', '4xx', '5xx', OTHER]

/** Index into CLASSES of a response status (0: no response was sent). */
export function classIndex (status: number): number {
  if (status === 0) return 0
  return status >= 100 && status < 600 ? Math.floor(status / 100) : 6
}

/** A counter or gauge value. */
export interface Cell { value: number }

/**
 * The label sets of one family as nested Maps, one level per label: finding a
 * cell builds no key string. Past `limit` label sets, new ones share the cell
 * whose labels are all `other`.
 */
export class Vec {
  readonly labelNames: readonly string[]
  readonly #limit: number
  readonly #root = new Map<string, unknown>()
  #size = 0
  // The last label set asked for and its cell: steady traffic asks for the
  // same one again and again (cells are never removed, so it stays valid).
  #lastA: string | undefined
  #lastB = ''
  #lastC = ''
  #lastD = ''
  #lastE = ''
  #lastCell: Cell | undefined

  constructor (labelNames: readonly string[], limit: number) {
    this.labelNames = labelNames
    this.#limit = limit
  }

  cell (a: string, b = '', c = '', d = '', e = ''): Cell {
    if (a === this.#lastA && b === this.#lastB && c === this.#lastC && d === this.#lastD && e === this.#lastE) return this.#lastCell!
    const found = this.#find(a, b, c, d, e)
    this.#lastA = a
    this.#lastB = b
    this.#lastC = c
    this.#lastD = d
    this.#lastE = e
    this.#lastCell = found
    return found
  }

  #find (a: string, b: string, c: string, d: string, e: string): Cell {
    const depth = this.labelNames.length
    let map = this.#root
    for (let level = 0; level < depth; level++) {
      const next = map.get(level === 0 ? a : level === 1 ? b : level === 2 ? c : level === 3 ? d : e)
      if (next === undefined) return this.#create(a, b, c, d, e, false)
      if (level === depth - 1) return next as Cell
      map = next as Map<string, unknown>
    }
    return this.#create(a, b, c, d, e, false)
  }

  #create (a: string, b: string, c: string, d: string, e: string, force: boolean): Cell {
    if (!force && this.#size >= this.#limit) return this.#create(OTHER, OTHER, OTHER, OTHER, OTHER, true)
    const depth = this.labelNames.length
    if (depth > 5) throw new Error('at most five labels per family')
    let map = this.#root
    for (let level = 0; level < depth; level++) {
      const key = level === 0 ? a : level === 1 ? b : level === 2 ? c : level === 3 ? d : e
      let next = map.get(key)
      if (level === depth - 1) {
        if (next === undefined) {
          next = { value: 0 }
          map.set(key, next)
          this.#size++
        }
        return next as Cell
      }
      if (next === undefined) {
        next = new Map<string, unknown>()
        map.set(key, next)
      }
      map = next as Map<string, unknown>
    }
    throw new Error('a labelled family needs at least one label')
  }

  /** Every label set with its cell; `labels` is reused between calls. */
  forEach (fn: (labels: readonly string[], cell: Cell) => void): void {
    const labels = new Array<string>(this.labelNames.length).fill('')
    const walk = (map: Map<string, unknown>, level: number): void => {
      for (const [key, next] of map) {
        labels[level] = key
        if (level === labels.length - 1) fn(labels, next as Cell)
        else walk(next as Map<string, unknown>, level + 1)
      }
    }
    walk(this.#root, 0)
  }

  sum (): number {
    let s = 0
    this.forEach((_, cell) => { s += cell.value })
    return s
  }
}

/** One family as the exposition sees it: `collect` calls `emit` once per label set (`labels` may be reused between calls). */
export interface Collector {
  readonly name: string
  readonly type: 'counter' | 'gauge'
  readonly help: string
  readonly labelNames: readonly string[]
  collect (emit: (labels: readonly string[], value: number) => void): void
}

/** The families of one Metrics instance, in exposition order. */
export class Registry {
  readonly #limit: number
  readonly #families: Collector[] = []
  /** Every family's label sets (or its one cell), by name: what add() writes to. */
  readonly #byName = new Map<string, Vec | Cell>()

  /** `limit`: most label sets per labelled family. */
  constructor (limit: number) {
    this.#limit = limit
  }

  get families (): readonly Collector[] {
    return this.#families
  }

  counter (name: string, help: string, labelNames: readonly string[]): Vec {
    return this.#vec(name, 'counter', help, labelNames)
  }

  gauge (name: string, help: string, labelNames: readonly string[]): Vec {
    return this.#vec(name, 'gauge', help, labelNames)
  }

  /** An unlabelled counter. */
  counterCell (name: string, help: string): Cell {
    const cell: Cell = { value: 0 }
    this.#family({ name, type: 'counter', help, labelNames: [], collect: (emit) => { emit([], cell.value) } }, cell)
    return cell
  }

  /** Every family with its label sets and values, as plain JSON (labels copied). */
  export (): FamilyExport[] {
    return this.#families.map((c) => {
      const rows: [string[], number][] = []
      c.collect((labels, value) => { rows.push([[...labels], value]) })
      return { name: c.name, rows }
    })
  }

  /**
   * Adds `value` to label set `labels` of family `name` (a merge of exports);
   * past the limit a new label set counts under `other`, as in record().
   */
  add (name: string, labels: readonly string[], value: number): void {
    const target = this.#byName.get(name)
    if (target === undefined) throw new Error(`unknown metric family ${name}`)
    if (target instanceof Vec) {
      if (labels.length !== target.labelNames.length) throw new Error(`${name}: expected ${target.labelNames.length} label values, got ${labels.length}`)
      target.cell(labels[0]!, labels[1], labels[2], labels[3], labels[4]).value += value
    } else {
      if (labels.length !== 0) throw new Error(`${name} has no labels`)
      target.value += value
    }
  }

  /** Creates every label set of `other` (a registry of the same families), in its order, with value 0. */
  seed (other: Registry): void {
    for (const [name, target] of other.#byName) {
      if (target instanceof Vec) target.forEach((labels) => { this.add(name, labels, 0) })
    }
  }

  #vec (name: string, type: Collector['type'], help: string, labelNames: readonly string[]): Vec {
    const vec = new Vec(labelNames, this.#limit)
    this.#family({ name, type, help, labelNames, collect: (emit) => { vec.forEach((labels, cell) => { emit(labels, cell.value) }) } }, vec)
    return vec
  }

  #family (c: Collector, target: Vec | Cell): void {
    if (this.#byName.has(c.name)) throw new Error(`metric family ${c.name} is defined twice`)
    this.#families.push(c)
    this.#byName.set(c.name, target)
  }
}
