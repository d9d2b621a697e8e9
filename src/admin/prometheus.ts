// The Prometheus text exposition format, version 0.0.4, written once:
// https://prometheus.io/docs/instrumenting/exposition_formats/#text-based-format
// A small builder: families of counters, gauges and summaries whose lines are
// kept together, each with one `# HELP` and one `# TYPE` line. (The strict
// parser the tests read it back with is test/helpers/prometheus-parser.ts.)
// Pure: no I/O, no clock. Runs per scrape, never per request.

export type MetricType = 'counter' | 'gauge' | 'summary' | 'histogram' | 'untyped'

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/

export function isValidMetricName (name: string): boolean {
  return METRIC_NAME.test(name)
}

/** A label name; names starting with `__` are reserved for Prometheus itself. */
export function isValidLabelName (name: string): boolean {
  return LABEL_NAME.test(name) && !name.startsWith('__')
}

const LABEL_ESCAPE = /[\\"\n]/g
const HELP_ESCAPE = /[\\\n]/g
const escapeChar = (c: string): string => (c === '\n' ? '\\n' : '\\' + c)

/** Label values escape backslash, double quote and line feed. */
export function escapeLabelValue (value: string): string {
  return value.replace(LABEL_ESCAPE, escapeChar)
}

/** HELP text escapes backslash and line feed only. */
export function escapeHelp (help: string): string {
  return help.replace(HELP_ESCAPE, escapeChar)
}

/** A sample value: `NaN`, `+Inf`, `-Inf`, integers in plain digits, other numbers in shortest round-trip form. */
export function formatValue (n: number): string {
  if (Number.isInteger(n)) return Math.abs(n) < 1e21 ? String(n) : BigInt(n).toString()
  if (Number.isNaN(n)) return 'NaN'
  if (n === Infinity) return '+Inf'
  if (n === -Infinity) return '-Inf'
  return String(n)
}

/** Suffixes a family of this type owns besides its own name. */
function ownSuffixes (type: MetricType): readonly string[] {
  switch (type) {
    case 'summary': return ['_sum', '_count']
    case 'histogram': return ['_bucket', '_sum', '_count']
    case 'counter': case 'gauge': case 'untyped': return []
    default: { const never: never = type; return never }
  }
}

/** One metric family: its lines are written together, after its HELP and TYPE lines. */
class FamilyBase {
  readonly name: string
  readonly type: MetricType
  readonly labelNames: readonly string[]
  readonly #help: string
  readonly #series = new Set<string>()
  protected lines = ''

  constructor (name: string, type: MetricType, help: string, labelNames: readonly string[], reserved: readonly string[]) {
    if (!isValidMetricName(name)) throw new TypeError(`invalid metric name ${JSON.stringify(name)}`)
    const seen = new Set<string>()
    for (const l of labelNames) {
      if (!isValidLabelName(l)) throw new TypeError(`${name}: invalid label name ${JSON.stringify(l)}`)
      if (reserved.includes(l)) throw new TypeError(`${name}: label name "${l}" is reserved for ${type} families`)
      if (seen.has(l)) throw new TypeError(`${name}: duplicate label name "${l}"`)
      seen.add(l)
    }
    this.name = name
    this.type = type
    this.labelNames = labelNames
    this.#help = help
  }

  /** `{a="x",b="y"}` for these label values (plus one extra label), or '' without labels; checks uniqueness. */
  protected labels (values: readonly string[]): string {
    if (values.length !== this.labelNames.length) {
      throw new TypeError(`${this.name}: expected ${this.labelNames.length} label values, got ${values.length}`)
    }
    let s = ''
    for (let i = 0; i < values.length; i++) {
      s += (i === 0 ? '{' : ',') + this.labelNames[i]! + '="' + escapeLabelValue(values[i]!) + '"'
    }
    if (this.#series.has(s)) throw new Error(`${this.name}: duplicate series ${s === '' ? '(no labels)' : s}`)
    this.#series.add(s)
    return s === '' ? s : s + '}'
  }

  text (): string {
    return `# HELP ${this.name} ${escapeHelp(this.#help)}\n# TYPE ${this.name} ${this.type}\n${this.lines}`
  }
}

/** A counter, gauge or untyped family: one sample per label set. */
export class Family extends FamilyBase {
  sample (labelValues: readonly string[], value: number): this {
    this.lines += this.name + this.labels(labelValues) + ' ' + formatValue(value) + '\n'
    return this
  }
}

export interface SummaryValue {
  /** [quantile in 0..1, value] pairs, written in this order. */
  readonly quantiles: readonly (readonly [number, number])[]
  readonly sum: number
  readonly count: number
}

/** A summary family: per label set, one sample per quantile, then `_sum` and `_count`. */
export class SummaryFamily extends FamilyBase {
  sample (labelValues: readonly string[], v: SummaryValue): this {
    const l = this.labels(labelValues)
    const open = l === '' ? '{' : l.slice(0, -1) + ','
    for (const [q, value] of v.quantiles) {
      if (!(q >= 0 && q <= 1)) throw new RangeError(`${this.name}: quantile ${q} is outside [0, 1]`)
      this.lines += this.name + open + 'quantile="' + formatValue(q) + '"} ' + formatValue(value) + '\n'
    }
    this.lines += this.name + '_sum' + l + ' ' + formatValue(v.sum) + '\n'
    this.lines += this.name + '_count' + l + ' ' + formatValue(v.count) + '\n'
    return this
  }
}

export interface HistogramValue {
  /** [upper bound in seconds, count of values <= it] pairs, cumulative, ascending; +Inf is added. */
  readonly buckets: readonly (readonly [number, number])[]
  readonly sum: number
  readonly count: number
}

/** A histogram family: per label set, cumulative `_bucket` samples with `le` (ending at +Inf = count), then `_sum` and `_count`. */
export class HistogramFamily extends FamilyBase {
  sample (labelValues: readonly string[], v: HistogramValue): this {
    const l = this.labels(labelValues)
    const open = l === '' ? '{' : l.slice(0, -1) + ','
    let last = 0
    for (const [le, n] of v.buckets) {
      if (n < last) throw new RangeError(`${this.name}: bucket counts must be cumulative`)
      last = n
      this.lines += this.name + '_bucket' + open + 'le="' + formatValue(le) + '"} ' + formatValue(n) + '\n'
    }
    this.lines += this.name + '_bucket' + open + 'le="+Inf"} ' + formatValue(v.count) + '\n'
    this.lines += this.name + '_sum' + l + ' ' + formatValue(v.sum) + '\n'
    this.lines += this.name + '_count' + l + ' ' + formatValue(v.count) + '\n'
    return this
  }
}

/**
 * One exposition: families in the order they were created, each with its
 * lines together. Names are checked when a family is created: invalid names,
 * a second family of the same name, or a name another family's samples use
 * (`x_sum` next to summary `x`) throw.
 */
export class Exposition {
  readonly #families: FamilyBase[] = []
  /** Every sample name in use → the family that owns it. */
  readonly #names = new Map<string, string>()

  counter (name: string, help: string, labelNames: readonly string[] = []): Family {
    return this.#add(new Family(name, 'counter', help, labelNames, []))
  }

  gauge (name: string, help: string, labelNames: readonly string[] = []): Family {
    return this.#add(new Family(name, 'gauge', help, labelNames, []))
  }

  untyped (name: string, help: string, labelNames: readonly string[] = []): Family {
    return this.#add(new Family(name, 'untyped', help, labelNames, []))
  }

  summary (name: string, help: string, labelNames: readonly string[] = []): SummaryFamily {
    return this.#add(new SummaryFamily(name, 'summary', help, labelNames, ['quantile']))
  }

  histogram (name: string, help: string, labelNames: readonly string[] = []): HistogramFamily {
    return this.#add(new HistogramFamily(name, 'histogram', help, labelNames, ['le']))
  }

  #add<F extends FamilyBase> (f: F): F {
    const names = [f.name, ...ownSuffixes(f.type).map((s) => f.name + s)]
    for (const n of names) {
      const owner = this.#names.get(n)
      if (owner !== undefined) throw new Error(`metric name ${n} of ${f.name} is already used by family ${owner}`)
    }
    for (const n of names) this.#names.set(n, f.name)
    this.#families.push(f)
    return f
  }

  /** The exposition text; ends with a line feed (or is empty). */
  text (): string {
    let s = ''
    for (const f of this.#families) s += f.text()
    return s
  }
}
