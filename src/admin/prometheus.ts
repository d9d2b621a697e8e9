// The Prometheus text exposition format, version 0.0.4, written once:
// https://prometheus.io/docs/instrumenting/exposition_formats/#text-based-format
// A small builder (families of counters, gauges and summaries whose lines are
// kept together, each with one `# HELP` and one `# TYPE` line) and a strict
// parser that checks every line against the grammar, used by the tests.
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

// ---------------------------------------------------------------------------
// Strict parser (used by the tests to check what the builder writes).

export interface ParsedSample {
  /** The sample's own name (`x`, `x_sum`, `x_count`, `x_bucket`). */
  readonly name: string
  readonly labels: Readonly<Record<string, string>>
  readonly value: number
  readonly timestamp?: number
}

export interface ParsedFamily {
  readonly name: string
  readonly type: MetricType
  readonly help: string | undefined
  readonly samples: readonly ParsedSample[]
}

export class PrometheusParseError extends Error {
  readonly line: number
  constructor (line: number, message: string) {
    super(`line ${line}: ${message}`)
    this.name = 'PrometheusParseError'
    this.line = line
  }
}

interface MutableFamily { name: string, type: MetricType, help: string | undefined, typed: boolean, samples: ParsedSample[], series: Set<string> }

const TYPES: ReadonlySet<string> = new Set(['counter', 'gauge', 'summary', 'histogram', 'untyped'])
const FLOAT = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/
const INT = /^[+-]?\d+$/
const BLANK = /[ \t]/

function parseFloatStrict (s: string): number | undefined {
  if (s === 'NaN') return NaN
  if (s === '+Inf') return Infinity
  if (s === '-Inf') return -Infinity
  return FLOAT.test(s) ? Number(s) : undefined
}

/** Reads an escaped string up to `end` (a quote, or end of line for HELP); returns [text, index after]. */
function unescape (line: string, from: number, lineNo: number, quoted: boolean): [string, number] {
  let out = ''
  let i = from
  for (;;) {
    if (i >= line.length) {
      if (quoted) throw new PrometheusParseError(lineNo, 'unterminated label value')
      return [out, i]
    }
    const c = line[i]!
    if (quoted && c === '"') return [out, i + 1]
    if (c === '\\') {
      const n = line[i + 1]
      if (n === '\\') out += '\\'
      else if (n === 'n') out += '\n'
      else if (n === '"' && quoted) out += '"'
      else throw new PrometheusParseError(lineNo, `invalid escape sequence \\${n ?? ''}`)
      i += 2
      continue
    }
    out += c
    i++
  }
}

function skipBlanks (line: string, i: number): number {
  while (i < line.length && BLANK.test(line[i]!)) i++
  return i
}

function readName (line: string, i: number, re: RegExp): [string, number] {
  let j = i
  while (j < line.length && /[a-zA-Z0-9_:]/.test(line[j]!)) j++
  const name = line.slice(i, j)
  return re.test(name) ? [name, j] : ['', i]
}

/**
 * Parses exposition text strictly: every line must match the 0.0.4 grammar;
 * HELP and TYPE at most once per family, TYPE before the family's first
 * sample; a family's lines together; no duplicate series; label names valid
 * and not repeated; only the `\\`, `\"` and `\n` escapes; summary samples
 * carry `quantile`, histogram buckets `le`; the text ends with a line feed.
 * Throws PrometheusParseError naming the line.
 */
export function parsePrometheusText (text: string): ParsedFamily[] {
  if (text === '') return []
  if (!text.endsWith('\n')) throw new PrometheusParseError(text.split('\n').length, 'the last line must end with a line feed')
  const lines = text.slice(0, -1).split('\n')
  const families = new Map<string, MutableFamily>()
  const order: MutableFamily[] = []
  /** Families whose group has ended: no more lines for them. */
  const closed = new Set<string>()
  let current: MutableFamily | undefined

  const enter = (name: string, lineNo: number): MutableFamily => {
    if (current !== undefined && current.name === name) return current
    if (closed.has(name)) throw new PrometheusParseError(lineNo, `lines of family ${name} are not together`)
    if (current !== undefined) closed.add(current.name)
    let f = families.get(name)
    if (f === undefined) {
      f = { name, type: 'untyped', help: undefined, typed: false, samples: [], series: new Set() }
      families.set(name, f)
      order.push(f)
    }
    current = f
    return f
  }

  /** The family a sample name belongs to: a typed family owning the suffix, else its own (untyped) family. */
  const familyOf = (sample: string): string => {
    for (const [suffix, types] of [['_sum', ['summary', 'histogram']], ['_count', ['summary', 'histogram']], ['_bucket', ['histogram']]] as const) {
      if (sample.endsWith(suffix)) {
        const base = sample.slice(0, -suffix.length)
        const f = families.get(base)
        if (f !== undefined && f.typed && (types as readonly string[]).includes(f.type)) return base
      }
    }
    return sample
  }

  for (let idx = 0; idx < lines.length; idx++) {
    const line = lines[idx]!
    const lineNo = idx + 1
    if (line.trim() === '') continue
    if (line.includes('\r')) throw new PrometheusParseError(lineNo, 'carriage return in line')

    if (line.startsWith('#')) {
      let i = skipBlanks(line, 1)
      const kw = line.startsWith('HELP', i) ? 'HELP' : line.startsWith('TYPE', i) ? 'TYPE' : undefined
      if (kw === undefined || !BLANK.test(line[i + 4] ?? '')) continue // a plain comment
      i = skipBlanks(line, i + 4)
      const [name, j] = readName(line, i, METRIC_NAME)
      if (name === '') throw new PrometheusParseError(lineNo, `${kw}: invalid metric name`)
      if (j < line.length && !BLANK.test(line[j]!)) throw new PrometheusParseError(lineNo, `${kw}: invalid metric name`)
      const f = enter(name, lineNo)
      const rest = skipBlanks(line, j)
      if (kw === 'HELP') {
        if (f.help !== undefined) throw new PrometheusParseError(lineNo, `second HELP line for ${name}`)
        f.help = unescape(line, rest, lineNo, false)[0]
      } else {
        if (f.typed) throw new PrometheusParseError(lineNo, `second TYPE line for ${name}`)
        if (f.samples.length > 0) throw new PrometheusParseError(lineNo, `TYPE line for ${name} after its samples`)
        const type = line.slice(rest).trim()
        if (!TYPES.has(type)) throw new PrometheusParseError(lineNo, `unknown metric type ${JSON.stringify(type)}`)
        f.type = type as MetricType
        f.typed = true
      }
      continue
    }

    // metric_name [ "{" label_name "=" '"' label_value '"' { "," ... } [ "," ] "}" ] value [ timestamp ]
    const [name, afterName] = readName(line, 0, METRIC_NAME)
    if (name === '') throw new PrometheusParseError(lineNo, 'invalid metric name')
    let i = afterName
    const labels: Record<string, string> = {}
    const labelKeys: string[] = []
    const brace = skipBlanks(line, i)
    if (line[brace] === '{') {
      i = skipBlanks(line, brace + 1)
      while (line[i] !== '}') {
        const [label, k] = readName(line, i, LABEL_NAME)
        if (label === '' || label.startsWith('__')) throw new PrometheusParseError(lineNo, `invalid label name at column ${i + 1}`)
        if (Object.hasOwn(labels, label)) throw new PrometheusParseError(lineNo, `duplicate label ${label}`)
        i = skipBlanks(line, k)
        if (line[i] !== '=') throw new PrometheusParseError(lineNo, `expected = after label ${label}`)
        i = skipBlanks(line, i + 1)
        if (line[i] !== '"') throw new PrometheusParseError(lineNo, `expected " to open the value of ${label}`)
        const [value, after] = unescape(line, i + 1, lineNo, true)
        labels[label] = value
        labelKeys.push(label)
        i = skipBlanks(line, after)
        if (line[i] === ',') i = skipBlanks(line, i + 1)
        else if (line[i] !== '}') throw new PrometheusParseError(lineNo, 'expected , or } after a label value')
      }
      i++
    }
    if (!BLANK.test(line[i] ?? '')) throw new PrometheusParseError(lineNo, 'expected a blank before the value')
    const fields = line.slice(i).trim().split(/[ \t]+/)
    if (fields.length > 2) throw new PrometheusParseError(lineNo, 'unexpected text after the timestamp')
    const value = parseFloatStrict(fields[0] ?? '')
    if (value === undefined) throw new PrometheusParseError(lineNo, `invalid value ${JSON.stringify(fields[0])}`)
    let timestamp: number | undefined
    if (fields.length === 2) {
      if (!INT.test(fields[1]!)) throw new PrometheusParseError(lineNo, `invalid timestamp ${JSON.stringify(fields[1])}`)
      timestamp = Number(fields[1])
    }

    const f = enter(familyOf(name), lineNo)
    if (f.type === 'summary' && name === f.name) {
      const q = labels.quantile
      if (q === undefined || parseFloatStrict(q) === undefined) throw new PrometheusParseError(lineNo, `summary sample ${name} needs a numeric quantile label`)
    }
    if ((f.type === 'summary' || f.type === 'histogram') && name !== f.name && labels.quantile !== undefined) {
      throw new PrometheusParseError(lineNo, `${name} must not carry a quantile label`)
    }
    if (f.type === 'histogram') {
      if (name === f.name) throw new PrometheusParseError(lineNo, `histogram ${f.name} has no sample named like the family`)
      if (name.endsWith('_bucket') && (labels.le === undefined || parseFloatStrict(labels.le) === undefined)) {
        throw new PrometheusParseError(lineNo, `histogram bucket ${name} needs a numeric le label`)
      }
    }
    const key = JSON.stringify([name, ...labelKeys.sort().map((k) => [k, labels[k]!])])
    if (f.series.has(key)) throw new PrometheusParseError(lineNo, `duplicate series ${name}${JSON.stringify(labels)}`)
    f.series.add(key)
    f.samples.push(timestamp === undefined ? { name, labels, value } : { name, labels, value, timestamp })
  }
  return order.map((f) => ({ name: f.name, type: f.type, help: f.help, samples: f.samples }))
}
