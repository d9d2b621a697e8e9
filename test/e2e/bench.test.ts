// `switchyard bench URL`: the real command in a child process against a real
// origin on loopback, its JSON, its exit codes, and its HTML report opened in
// real Chromium. Load: four 0.5 s runs and one of 0.3 s against a closed
// port (1.8 s in all). Speed is
// never checked, only that each run produced numbers.
//
// The browser part needs /usr/bin/chromium (or SWITCHYARD_CHROMIUM): without
// it, that test fails under CI and is skipped locally.
import { existsSync } from 'node:fs'
import net, { type AddressInfo } from 'node:net'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import t, { type Test } from 'tap'
import type { BenchReport } from '../../src/loadtest/report.js'
import { fmtMs, fmtRatio, fmtRps } from '../../src/loadtest/report.js'
import { CHROMIUM, browserContext, inCI } from '../helpers/chromium.js'
import { spawnCli } from '../helpers/cli.js'
import { closedPort, startServer } from '../helpers/origin.js'

type T = Test

/** Runs `switchyard bench ...args` to the end, without blocking this process (the origin lives here). */
async function bench (t: T, args: string[], env?: Record<string, string>): Promise<{ code: number | null, stdout: string, stderr: string }> {
  const p = spawnCli(t, ['bench', ...args], env === undefined ? {} : { env })
  const code = await p.exited
  return { code, stdout: p.stdout(), stderr: p.stderr() }
}

/** What the origin last received. */
interface Seen { method: string, header: string | undefined, body: string }

/** Every 5th answer of /flaky is a 503; the rest 200. */
async function origin (t: T, seen: Seen[] = []): Promise<string> {
  let n = 0
  const s = await startServer(t, (req, res) => {
    n++
    if (req.url === '/flaky' && n % 5 === 0) res.statusCode = 503
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      if (seen.length < 5) seen.push({ method: req.method ?? '', header: req.headers['x-bench'] as string | undefined, body: Buffer.concat(chunks).toString() })
      res.end('hello')
    })
  })
  return s.url
}

function numbersOf (t: T, r: BenchReport['target']): void {
  t.ok(r.requests > 0, `${r.url}: requests ${r.requests}`)
  t.ok(r.rps > 0, 'rps')
  for (const k of ['p50', 'p90', 'p99', 'p99_9', 'max'] as const) t.ok(r.latencyMs[k] > 0, `${k} ${r.latencyMs[k]}`)
  t.ok(r.latencyMs.p50 <= r.latencyMs.p99 && r.latencyMs.p99 <= r.latencyMs.max, 'percentiles in order')
  t.equal(r.rpsPerSecond.reduce((a, b) => a + b, 0), r.requests, 'the seconds add up to the total')
  t.equal(Object.values(r.statusClasses).reduce((a, b) => a + b, 0), r.requests, 'status classes add up')
  t.ok(r.percentileCurve.length > 2, 'a percentile curve')
}

t.test('a URL and a baseline: JSON with both runs and the ratio, a met --expect exits 0, the HTML report renders in Chromium', async (t) => {
  const url = await origin(t)
  const dir = t.testdir({})
  const json = path.join(dir, 'r.json')
  const html = path.join(dir, 'r.html')
  const r = await bench(t, [`${url}/flaky`, '-d', '500ms', '-c', '2', '--baseline', `${url}/`, '--expect', 'p99<60s,rps>0,errors<=100%',
    '--json', json, '--html', html])
  t.equal(r.code, 0, r.stderr)
  t.match(r.stdout, /target\s+\d/)
  t.match(r.stdout, /baseline\s+\d/)
  t.match(r.stdout, /target vs baseline: \d+\.\d\dx req\/s/)
  t.match(r.stdout, /expectation met: p99<60s: measured [\d.]+ms/)
  t.equal(r.stderr, '', 'no progress line when stderr is not a terminal')
  const report = JSON.parse(await readFile(json, 'utf8')) as BenchReport
  t.equal(report.version, 1)
  t.equal(report.passed, true)
  t.same(report.settings, { durationSec: 0.5, warmupSec: 0, connections: 2, pipelining: 1, method: 'GET', headers: {}, bodyBytes: 0, timeoutSec: 10, http2: false })
  t.equal(report.target.url, `${url}/flaky`)
  t.equal(report.target.tool, 'autocannon')
  numbersOf(t, report.target)
  numbersOf(t, report.baseline!)
  t.ok(report.target.statusCodes['503']! > 0, '503s counted')
  t.equal(report.target.non2xx, report.target.statusClasses['5xx'])
  t.equal(report.baseline!.non2xx, 0)
  t.equal(report.comparison!.rpsRatio, report.target.rps / report.baseline!.rps)
  t.same(report.expectations.map((e) => e.ok), [true, true, true])

  if (!existsSync(CHROMIUM)) {
    if (inCI) t.fail(`${CHROMIUM} not found; the report cannot be checked in a browser`)
    else t.comment(`report in Chromium skipped: ${CHROMIUM} not found`)
    return
  }
  const ctx = await browserContext(t)
  const page = await ctx.newPage()
  const requests: string[] = []
  page.on('request', (req) => { requests.push(req.url()) })
  page.on('pageerror', (err) => { t.fail(`page error: ${err.message}`) })
  page.on('console', (msg) => { if (msg.type() === 'error') t.fail(`console: ${msg.text()}`) })
  await page.goto(`file://${html}`)
  t.same(requests, [`file://${html}`], 'the report loads nothing else')
  t.equal(await page.textContent('#verdict'), 'passed')

  // The table and the ratio say what the JSON says.
  const cell = async (f: string): Promise<string | null> => await page.textContent(`[data-field="${f}"]`)
  t.equal(await cell('target.rps'), fmtRps(report.target.rps))
  t.equal(await cell('target.p99'), fmtMs(report.target.latencyMs.p99))
  t.equal(await cell('baseline.p50'), fmtMs(report.baseline!.latencyMs.p50))
  t.equal(await cell('target.non2xx'), String(report.target.non2xx))
  t.equal(await cell('comparison.rpsRatio'), fmtRatio(report.comparison!.rpsRatio))

  // Each chart is drawn (an SVG with a real size) with one line per run, carrying the JSON's numbers.
  for (const id of ['chart-rps', 'chart-latency', 'chart-errors']) {
    const box = await page.locator(`svg#${id}`).boundingBox()
    t.ok(box !== null && box.width > 300 && box.height > 100, `${id} is laid out: ${JSON.stringify(box)}`)
  }
  const values = async (chart: string, series: string): Promise<string | null> =>
    await page.getAttribute(`svg#${chart} g[data-series="${series}"] polyline`, 'data-values')
  t.equal(await values('chart-rps', 'target'), report.target.rpsPerSecond.join(','))
  t.equal(await values('chart-rps', 'baseline'), report.baseline!.rpsPerSecond.join(','))
  t.equal(await values('chart-latency', 'target'), report.target.percentileCurve.map((p) => p.ms).join(','))
  t.equal(await page.locator('svg#chart-latency g[data-series="target"] circle').count(), report.target.percentileCurve.length)
  t.equal(await values('chart-errors', 'target non-2xx'), report.target.non2xxPerSecond.join(','))
  t.equal(await values('chart-errors', 'target errors'), report.target.errorsPerSecond.join(','))
  const lineBox = await page.locator('svg#chart-latency g[data-series="baseline"] polyline').boundingBox()
  t.ok(lineBox !== null && lineBox.width > 100, 'the baseline curve spans the chart')
  const ticks = await page.locator('svg#chart-latency text.tick').allTextContents()
  t.ok(ticks.includes('99%') && ticks.includes('99.9%'), `log-scale percentile axis: ${ticks.join(' ')}`)
  const embedded = JSON.parse((await page.textContent('#bench-data'))!) as BenchReport
  t.same(embedded, report, 'the JSON inside the report is the JSON file')
})

t.test('an unmet --expect exits 1 and says which, with the measured value; method, headers and body are sent', async (t) => {
  const seen: Seen[] = []
  const url = await origin(t, seen)
  const r = await bench(t, [`${url}/`, '-d', '500ms', '-c', '1', '--expect', 'p50<0.000001ms,rps>0', '--quiet',
    '-m', 'POST', '-H', 'X-Bench: yes', '--body', 'payload'])
  t.equal(r.code, 1)
  t.match(r.stderr, /^switchyard: bench: expectation failed: p50<0.000001ms: measured [\d.]+ms$/m)
  t.notMatch(r.stderr, /rps>0/, 'a met expectation is not a failure line')
  t.equal(r.stdout, '', '--quiet prints no summary')
  t.same(seen[0], { method: 'POST', header: 'yes', body: 'payload' })
})

t.test('nothing listening: errors by kind, no latency, exit 1 with the reason', async (t) => {
  const port = await closedPort()
  const dir = t.testdir({})
  const json = path.join(dir, 'r.json')
  const r = await bench(t, [`http://127.0.0.1:${port}/`, '-d', '300ms', '-c', '1', '--json', json, '--html', path.join(dir, 'r.html')])
  t.equal(r.code, 1)
  t.match(r.stderr, /no response from http:\/\/127\.0\.0\.1:\d+\/ \(ECONNREFUSED x\d+\)/)
  const report = JSON.parse(await readFile(json, 'utf8')) as BenchReport
  t.equal(report.passed, false)
  t.equal(report.target.requests, 0)
  t.ok(report.target.errors > 0)
  t.same(Object.keys(report.target.errorsByKind), ['ECONNREFUSED'])
  t.equal(report.target.errorsPerSecond.reduce((a, b) => a + b, 0), report.target.errors)
  t.same(report.target.percentileCurve, [])
  t.match(await readFile(path.join(dir, 'r.html'), 'utf8'), /no response measured/)
})

t.test('a server that answers with anything but HTTP: errors by kind, not a clean empty run', async (t) => {
  const garbage = net.createServer((socket) => {
    socket.on('error', () => {})
    socket.once('data', () => { socket.end('NOT HTTP AT ALL\r\n\r\n') })
  })
  await new Promise<void>((resolve) => garbage.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => { garbage.close(() => resolve()) }))
  const dir = t.testdir({})
  const json = path.join(dir, 'r.json')
  const r = await bench(t, [`http://127.0.0.1:${(garbage.address() as AddressInfo).port}/`, '-d', '300ms', '-c', '1', '--json', json])
  t.equal(r.code, 1)
  const report = JSON.parse(await readFile(json, 'utf8')) as BenchReport
  t.equal(report.target.requests, 0)
  t.ok((report.target.errorsByKind['invalid HTTP response'] ?? 0) > 0, 'named as what it is')
})

t.test('interim answers (103 Early Hints) are not counted as responses', async (t) => {
  let served = 0
  const s = await startServer(t, (_req, res) => {
    res.writeEarlyHints({ link: '</a.css>; rel=preload; as=style' })
    setTimeout(() => { served++; res.end('final') }, 5)
  })
  const dir = t.testdir({})
  const json = path.join(dir, 'r.json')
  const r = await bench(t, [s.url, '-d', '500ms', '-c', '1', '--json', json])
  t.equal(r.code, 0)
  const report = JSON.parse(await readFile(json, 'utf8')) as BenchReport
  t.ok(report.target.requests > 0)
  t.ok(report.target.requests <= served, `${report.target.requests} responses counted, ${served} final answers sent`)
  t.equal(report.target.statusClasses['1xx'], 0, 'none in the 1xx class')
  t.equal(report.target.statusClasses['2xx'], report.target.requests)
})

t.test('usage errors exit 2 before any load', async (t) => {
  const url = await origin(t)
  const bad = await bench(t, [url, '--expect', 'p99=5ms'])
  t.equal(bad.code, 2)
  t.match(bad.stderr, /switchyard: bench: --expect: cannot read "p99=5ms"/)
  t.match(bad.stderr, /Usage: switchyard bench URL/)
  t.equal((await bench(t, ['--frobnicate', url])).code, 2)
  t.equal((await bench(t, [])).code, 2)
  const help = await bench(t, ['--help'])
  t.equal(help.code, 0)
  t.match(help.stdout, /--expect EXPR/)
})

t.test('--http2 without h2load on PATH is a clear error, not a fake run', async (t) => {
  const url = await origin(t)
  const r = await bench(t, [url, '--http2', '-d', '1s'], { PATH: path.join(t.testdirName, 'empty') })
  t.equal(r.code, 2)
  t.match(r.stderr, /--http2 needs h2load \(from nghttp2\) on PATH/)
})
