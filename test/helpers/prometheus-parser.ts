// A strict parser of the Prometheus text exposition format, version 0.0.4,
// for tests: it checks every line of what src/admin/prometheus.ts writes
// against the grammar and hands back the families, so tests can assert on
// values instead of on text.
// https://prometheus.io/docs/instrumenting/exposition_formats/#text-based-format
import { isValidLabelName, isValidMetricName, type MetricType } from '../../src/admin/prometheus.js'

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

/** The name at `i` and the index after it, or ['', i] when it is not a valid name. */
function readName (line: string, i: number, isValid: (name: string) => boolean): [string, number] {
  let j = i
  while (j < line.length && /[a-zA-Z0-9_:]/.test(line[j]!)) j++
  const name = line.slice(i, j)
  return isValid(name) ? [name, j] : ['', i]
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
      const [name, j] = readName(line, i, isValidMetricName)
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
    const [name, afterName] = readName(line, 0, isValidMetricName)
    if (name === '') throw new PrometheusParseError(lineNo, 'invalid metric name')
    let i = afterName
    const labels: Record<string, string> = {}
    const labelKeys: string[] = []
    const brace = skipBlanks(line, i)
    if (line[brace] === '{') {
      i = skipBlanks(line, brace + 1)
      while (line[i] !== '}') {
        const [label, k] = readName(line, i, isValidLabelName) // names starting with __ are reserved
        if (label === '') throw new PrometheusParseError(lineNo, `invalid label name at column ${i + 1}`)
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
