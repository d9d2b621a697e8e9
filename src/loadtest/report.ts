// What `switchyard bench` writes: the JSON document (BenchReport, schema in
// README), the text summary and the HTML report. Pure: strings in, strings out.
// The HTML is one file whose charts are SVG drawn here, so it needs no
// script, no network and no library, and reads the same without JS.
import type { BenchOptions } from './args.js'
import { formatMeasured, type Expectation, type Verdict } from './expect.js'
import { percentileAxis, type Comparison, type RunSummary } from './stats.js'

export const REPORT_VERSION = 1

export interface BenchReport {
  /** Bumped when a field changes meaning or goes away; new fields may appear within a version. */
  readonly version: typeof REPORT_VERSION
  readonly startedAt: string
  /** The command's options as run (warmupSec: seconds of load before each measured run, not counted). */
  readonly settings: Pick<BenchOptions, 'durationSec' | 'warmupSec' | 'connections' | 'pipelining' | 'method' | 'headers'> & {
    readonly bodyBytes: number
    readonly timeoutSec: number
    readonly http2: boolean
    /** With -c: the config started, its listener and the path loaded. */
    readonly config?: { readonly file: string, readonly listener: string, readonly path: string }
  }
  readonly target: RunSummary
  readonly baseline?: RunSummary
  /** With a baseline that answered at least once. */
  readonly comparison?: Comparison
  readonly expectations: ReadonlyArray<Expectation & { readonly measured: number, readonly ok: boolean }>
  /** Every expectation met, and at least one response. */
  readonly passed: boolean
}

export function buildReport (parts: Omit<BenchReport, 'version' | 'expectations' | 'passed'>, verdicts: readonly Verdict[]): BenchReport {
  const passed = parts.target.requests > 0 && verdicts.every((v) => v.ok)
  return {
    version: REPORT_VERSION,
    ...parts,
    expectations: verdicts.map((v) => ({ ...v.expectation, measured: v.measured, ok: v.ok })),
    passed
  }
}

/** `0.812`, `12.3`, `1234` (ms, three significant digits below 100). */
export function fmtMs (v: number): string {
  return v >= 100 ? String(Math.round(v)) : String(Number(v.toPrecision(3)))
}

export function fmtRps (v: number): string {
  return v >= 100 ? String(Math.round(v)) : String(Number(v.toPrecision(3)))
}

export function fmtRatio (v: number): string {
  return `${v.toFixed(2)}x`
}

function signed (ms: number): string {
  return `${ms >= 0 ? '+' : '-'}${fmtMs(Math.abs(ms))}`
}

/** The live line on a terminal, redrawn each second: `target 3s / 10s  12345 req/s  p99 1.2 ms  errors 0`. */
export function progressLine (name: string, second: number, durationSec: number, rps: number, p99Ms: number, errors: number): string {
  return `${name} ${second}s / ${durationSec}s  ${fmtRps(rps)} req/s  p99 ${fmtMs(p99Ms)} ms  errors ${errors}`
}

const NO_COMPARISON = 'no comparison: the baseline answered nothing'

const COLUMNS = ['req/s', 'p50 ms', 'p90 ms', 'p99 ms', 'p99.9 ms', 'max ms', 'requests', 'non-2xx', 'errors'] as const

function row (r: RunSummary): string[] {
  const l = r.latencyMs
  return [fmtRps(r.rps), fmtMs(l.p50), fmtMs(l.p90), fmtMs(l.p99), fmtMs(l.p99_9), fmtMs(l.max), String(r.requests), String(r.non2xx), String(r.errors)]
}

/** The table printed on stdout at the end of a run. */
export function textSummary (report: BenchReport): string {
  const s = report.settings
  const runs: Array<[string, RunSummary]> = [['target', report.target]]
  if (report.baseline !== undefined) runs.push(['baseline', report.baseline])
  const lines = runs.map(([name, r]) => `${name}: ${r.url} (${r.tool}, ${r.protocol})`)
  lines.push(`${s.connections} connections, pipelining ${s.pipelining}, ${s.durationSec} s each${s.warmupSec > 0 ? ` after ${s.warmupSec} s of warm-up` : ''}, ${s.method}`)
  const table = [['', ...COLUMNS], ...runs.map(([name, r]) => [name, ...row(r)])]
  const widths = table[0]!.map((_, i) => Math.max(...table.map((t) => t[i]!.length)))
  lines.push('', ...table.map((t) => t.map((c, i) => i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)).join('  ')))
  for (const [name, r] of runs) {
    const kinds = Object.entries(r.errorsByKind).map(([k, n]) => `${k} ${n}`).join(', ')
    const codes = Object.entries(r.statusCodes).filter(([c]) => c[0] !== '2').map(([c, n]) => `${c} ${n}`).join(', ')
    if (kinds !== '' || codes !== '') lines.push(`${name}: ${[codes === '' ? '' : `status ${codes}`, kinds === '' ? '' : `errors ${kinds}`].filter((x) => x !== '').join('; ')}`)
  }
  const c = report.comparison
  if (c !== undefined) lines.push('', `target vs baseline: ${fmtRatio(c.rpsRatio)} req/s, ${signed(c.addedP50Ms)} ms p50, ${signed(c.addedP99Ms)} ms p99`)
  else if (report.baseline !== undefined) lines.push('', NO_COMPARISON)
  return lines.join('\n') + '\n'
}

// --- HTML -------------------------------------------------------------------

function esc (s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')
}

interface Series {
  readonly name: string
  /** CSS class: colour and dash. */
  readonly cls: string
  readonly points: ReadonlyArray<readonly [number, number]>
  /** Tooltip of each point. */
  readonly labels: readonly string[]
  /** Written on the element, for readers (and tests) that want the numbers. */
  readonly values: readonly number[]
}

interface Chart {
  readonly id: string
  readonly title: string
  readonly xLabel: string
  readonly yLabel: string
  readonly xMax: number
  readonly xTicks: ReadonlyArray<{ readonly at: number, readonly label: string }>
  readonly series: readonly Series[]
  /** Shown over an empty plot (e.g. "no errors"). */
  readonly empty?: string
}

const W = 760
const H = 280
const M = { left: 64, right: 40, top: 16, bottom: 44 }

/** 1, 2, 5 × 10^n at or above v. */
function niceMax (v: number): number {
  if (!(v > 0)) return 1
  const p = Math.pow(10, Math.floor(Math.log10(v)))
  for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p
  return 10 * p
}

function fmtTick (v: number): string {
  return Math.abs(v) >= 1000 ? `${Number((v / 1000).toPrecision(3))}k` : String(Number(v.toPrecision(3)))
}

function svgChart (c: Chart): string {
  const yMax = niceMax(Math.max(0, ...c.series.flatMap((s) => s.points.map((p) => p[1]))))
  const pw = W - M.left - M.right
  const ph = H - M.top - M.bottom
  const x = (v: number): number => M.left + (c.xMax > 0 ? v / c.xMax : 0) * pw
  const y = (v: number): number => M.top + ph - (v / yMax) * ph
  const n = (v: number): string => v.toFixed(1)
  const parts: string[] = []
  parts.push(`<svg id="${c.id}" class="chart" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${esc(c.title)}" xmlns="http://www.w3.org/2000/svg">`)
  for (let i = 0; i <= 4; i++) {
    const v = (yMax * i) / 4
    parts.push(`<line class="grid" x1="${M.left}" x2="${W - M.right}" y1="${n(y(v))}" y2="${n(y(v))}"/><text class="tick" x="${M.left - 6}" y="${n(y(v) + 4)}" text-anchor="end">${fmtTick(v)}</text>`)
  }
  for (const t of c.xTicks) {
    parts.push(`<line class="grid" x1="${n(x(t.at))}" x2="${n(x(t.at))}" y1="${M.top}" y2="${M.top + ph}"/><text class="tick" x="${n(x(t.at))}" y="${M.top + ph + 16}" text-anchor="middle">${esc(t.label)}</text>`)
  }
  parts.push(`<line class="axis" x1="${M.left}" x2="${W - M.right}" y1="${M.top + ph}" y2="${M.top + ph}"/><line class="axis" x1="${M.left}" x2="${M.left}" y1="${M.top}" y2="${M.top + ph}"/>`)
  parts.push(`<text class="label" x="${M.left + pw / 2}" y="${H - 6}" text-anchor="middle">${esc(c.xLabel)}</text>`)
  parts.push(`<text class="label" transform="translate(14 ${M.top + ph / 2}) rotate(-90)" text-anchor="middle">${esc(c.yLabel)}</text>`)
  for (const s of c.series) {
    const pts = s.points.map(([a, b]) => `${n(x(a))},${n(y(b))}`).join(' ')
    parts.push(`<g class="series ${s.cls}" data-series="${esc(s.name)}"><polyline points="${pts}" data-values="${s.values.join(',')}"><title>${esc(s.name)}</title></polyline>`)
    s.points.forEach(([a, b], i) => {
      parts.push(`<circle cx="${n(x(a))}" cy="${n(y(b))}" r="2.5"><title>${esc(`${s.name}: ${s.labels[i] ?? ''}`)}</title></circle>`)
    })
    parts.push('</g>')
  }
  if (c.empty !== undefined) parts.push(`<text class="empty" x="${M.left + pw / 2}" y="${M.top + ph / 2}" text-anchor="middle">${esc(c.empty)}</text>`)
  parts.push('</svg>')
  const legend = c.series.map((s) => `<span class="key ${s.cls}">${esc(s.name)}</span>`).join(' ')
  return `<figure><figcaption>${esc(c.title)} ${legend}</figcaption>${parts.join('')}</figure>`
}

function runs (report: BenchReport): Array<{ name: string, r: RunSummary, cls: string }> {
  const out = [{ name: 'target', r: report.target, cls: 'target' }]
  if (report.baseline !== undefined) out.push({ name: 'baseline', r: report.baseline, cls: 'baseline' })
  return out
}

function secondTicks (n: number): Array<{ at: number, label: string }> {
  const step = niceMax(Math.max(1, n / 8))
  const out = []
  for (let s = 0; s <= n; s += step) out.push({ at: s, label: `${s}s` })
  return out
}

export function rpsChart (report: BenchReport): string {
  const rs = runs(report)
  const n = Math.max(...rs.map(({ r }) => r.rpsPerSecond.length))
  return svgChart({
    id: 'chart-rps',
    title: 'Requests per second',
    xLabel: 'seconds since start (each point: the responses of that second)',
    yLabel: 'req/s',
    xMax: n,
    xTicks: secondTicks(n),
    series: rs.map(({ name, r, cls }) => ({
      name, cls,
      points: r.rpsPerSecond.map((v, i) => [i + 0.5, v] as const),
      labels: r.rpsPerSecond.map((v, i) => `second ${i + 1}: ${v} req/s`),
      values: r.rpsPerSecond
    }))
  })
}

/** The percentile labels of HDR plots: 0%, 90%, 99%, 99.9%, … up to `decades`. */
function percentileTicks (decades: number): Array<{ at: number, label: string }> {
  const out = [{ at: 0, label: '0%' }]
  for (let d = 1; d <= decades; d++) out.push({ at: d, label: `${Number((100 - 100 / Math.pow(10, d)).toPrecision(d + 2))}%` })
  return out
}

export function latencyChart (report: BenchReport): string {
  const rs = runs(report)
  // One decade past what the largest run can resolve, where 100% (the max) is drawn.
  const decades = Math.max(1, ...rs.map(({ r }) => Math.ceil(Math.log10(Math.max(10, r.requests)))))
  return svgChart({
    id: 'chart-latency',
    title: 'Latency by percentile',
    xLabel: 'percentile (log scale: 1/(1-p), as HDR histograms plot it)',
    yLabel: 'latency ms',
    xMax: decades,
    xTicks: percentileTicks(decades),
    series: rs.map(({ name, r, cls }) => ({
      name, cls,
      points: r.percentileCurve.map((p) => [percentileAxis(p.percentile, decades), p.ms] as const),
      labels: r.percentileCurve.map((p) => `p${p.percentile}: ${fmtMs(p.ms)} ms`),
      values: r.percentileCurve.map((p) => p.ms)
    })),
    ...(rs.every(({ r }) => r.requests === 0) ? { empty: 'no response measured' } : {})
  })
}

export function errorsChart (report: BenchReport): string {
  const rs = runs(report)
  const n = Math.max(...rs.map(({ r }) => r.errorsPerSecond.length))
  const series: Series[] = []
  for (const { name, r, cls } of rs) {
    series.push({
      name: `${name} errors`, cls: `${cls} errors`,
      points: r.errorsPerSecond.map((v, i) => [i + 0.5, v] as const),
      labels: r.errorsPerSecond.map((v, i) => `second ${i + 1}: ${v} errors`),
      values: r.errorsPerSecond
    })
    series.push({
      name: `${name} non-2xx`, cls: `${cls} non2xx`,
      points: r.non2xxPerSecond.map((v, i) => [i + 0.5, v] as const),
      labels: r.non2xxPerSecond.map((v, i) => `second ${i + 1}: ${v} non-2xx`),
      values: r.non2xxPerSecond
    })
  }
  const none = rs.every(({ r }) => r.errors === 0 && r.non2xx === 0)
  return svgChart({
    id: 'chart-errors',
    title: 'Errors (no response) and non-2xx answers per second',
    xLabel: 'seconds since start',
    yLabel: 'per second',
    xMax: n,
    xTicks: secondTicks(n),
    series,
    ...(none ? { empty: 'no errors, every answer 2xx' } : {})
  })
}

function summaryTable (report: BenchReport): string {
  const head = `<tr><th></th>${COLUMNS.map((c) => `<th>${c}</th>`).join('')}</tr>`
  const fields = ['rps', 'p50', 'p90', 'p99', 'p99_9', 'max', 'requests', 'non2xx', 'errors']
  const body = runs(report).map(({ name, r }) =>
    `<tr class="${name}"><th>${name}</th>${row(r).map((v, i) => `<td data-field="${name}.${fields[i]!}">${v}</td>`).join('')}</tr>`).join('')
  return `<table class="summary">${head}${body}</table>`
}

function detailList (report: BenchReport): string {
  return runs(report).map(({ name, r }) => {
    const classes = Object.entries(r.statusClasses).map(([k, v]) => `${k} ${v}`).join(', ')
    const codes = Object.entries(r.statusCodes).map(([k, v]) => `${k} ${v}`).join(', ') || 'none'
    const kinds = Object.entries(r.errorsByKind).map(([k, v]) => `${esc(k)} ${v}`).join(', ') || 'none'
    return `<dl class="${name}"><dt>${name}</dt><dd>${esc(r.url)} (${r.tool}, ${r.protocol}, ${r.durationSec} s)</dd>` +
      `<dt>status classes</dt><dd data-field="${name}.statusClasses">${classes}</dd><dt>status codes</dt><dd>${codes}</dd>` +
      `<dt>errors by kind</dt><dd data-field="${name}.errorsByKind">${kinds}</dd></dl>`
  }).join('')
}

function expectationList (report: BenchReport): string {
  if (report.expectations.length === 0) return ''
  const items = report.expectations.map((e) =>
    `<li class="${e.ok ? 'ok' : 'failed'}" data-expect="${esc(e.text)}">${e.ok ? 'met' : 'FAILED'}: ${esc(e.text)} (measured ${esc(formatMeasured(e, e.measured))})</li>`).join('')
  return `<h2>Expectations</h2><ul class="expect">${items}</ul>`
}

const CSS = `
body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:820px;color:#1d2430;padding:0 12px}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:24px 0 8px}
.meta{color:#566;margin:0 0 12px}
.verdict{display:inline-block;padding:2px 10px;border-radius:4px;font-weight:600}
.verdict.pass{background:#dff3e4;color:#135c2a}.verdict.fail{background:#fbe1e1;color:#8a1717}
table.summary{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}
table.summary th,table.summary td{padding:4px 8px;border-bottom:1px solid #dde;text-align:right}
table.summary th:first-child{text-align:left}
figure{margin:16px 0}figcaption{font-weight:600;margin-bottom:4px}
.key{font-weight:400;font-size:12px;margin-left:10px}.key::before{content:"";display:inline-block;width:18px;height:3px;margin-right:4px;vertical-align:middle;background:currentColor}
svg.chart{max-width:100%;height:auto;background:#fbfcfe;border:1px solid #e3e7ef}
.grid{stroke:#e6e9f0}.axis{stroke:#8892a6}.tick{font-size:11px;fill:#566}.label{font-size:12px;fill:#344}
.empty{font-size:13px;fill:#8892a6}
.series polyline{fill:none;stroke-width:2}.series circle{stroke:none}
.target{color:#1f6fd1}.target polyline{stroke:#1f6fd1}.target circle{fill:#1f6fd1}
.baseline{color:#e07b00}.baseline polyline{stroke:#e07b00;stroke-dasharray:6 4}.baseline circle{fill:#e07b00}
.target.non2xx{color:#7b4bd6}.target.non2xx polyline{stroke:#7b4bd6}.target.non2xx circle{fill:#7b4bd6}
.target.errors{color:#d12f2f}.target.errors polyline{stroke:#d12f2f}.target.errors circle{fill:#d12f2f}
.baseline.errors{color:#8a1717}.baseline.errors polyline{stroke:#8a1717}.baseline.errors circle{fill:#8a1717}
.baseline.non2xx{color:#a58ad9}.baseline.non2xx polyline{stroke:#a58ad9}.baseline.non2xx circle{fill:#a58ad9}
dl{display:grid;grid-template-columns:140px 1fr;gap:2px 12px;margin:8px 0}dt{color:#566}dd{margin:0}
ul.expect li.failed{color:#8a1717;font-weight:600}ul.expect li.ok{color:#135c2a}
`

/** The whole report: one file, no script, no external resource (the CSP says so to the browser). */
export function htmlReport (report: BenchReport): string {
  const c = report.comparison
  const s = report.settings
  const compare = c === undefined
    ? (report.baseline === undefined ? '' : `<p class="comparison">${NO_COMPARISON}</p>`)
    : `<p class="comparison" data-field="comparison">target vs baseline: <b data-field="comparison.rpsRatio">${fmtRatio(c.rpsRatio)}</b> req/s, ` +
      `<b data-field="comparison.addedP50Ms">${signed(c.addedP50Ms)}</b> ms p50, <b data-field="comparison.addedP99Ms">${signed(c.addedP99Ms)}</b> ms p99</p>`
  // The JSON rides along (inert: not a script type the browser runs); `<` escaped so it cannot close the tag.
  const data = JSON.stringify(report).replace(/</g, '\\u003c')
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>switchyard bench: ${esc(report.target.url)}</title>
<style>${CSS}</style></head><body>
<h1>switchyard bench</h1>
<p class="meta">${esc(report.startedAt)} · ${s.method} · ${s.connections} connections · pipelining ${s.pipelining} · ${s.durationSec} s per run${s.warmupSec > 0 ? ` (after ${s.warmupSec} s of warm-up)` : ''} · ${s.http2 ? 'HTTP/2 (h2load)' : 'HTTP/1.1 (autocannon)'}${s.config === undefined ? '' : ` · config ${esc(s.config.file)}, listener ${esc(s.config.listener)}`}</p>
<p><span class="verdict ${report.passed ? 'pass' : 'fail'}" id="verdict">${report.passed ? 'passed' : 'failed'}</span></p>
${summaryTable(report)}
${compare}
${expectationList(report)}
<h2>Charts</h2>
${rpsChart(report)}
${latencyChart(report)}
${errorsChart(report)}
<h2>Details</h2>
${detailList(report)}
<script type="application/json" id="bench-data">${data}</script>
</body></html>
`
}
