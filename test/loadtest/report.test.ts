import t from 'tap'
import { evaluate, parseExpectations } from '../../src/loadtest/expect.js'
import { buildReport, htmlReport, progressLine, textSummary } from '../../src/loadtest/report.js'
import { Recorder, compare } from '../../src/loadtest/stats.js'

function runOf (url: string, latency: number, n: number): ReturnType<Recorder['summary']> {
  const r = new Recorder()
  for (let i = 0; i < n; i++) r.response(i * (2000 / n), i % 10 === 0 ? 503 : 200, latency)
  r.error(1500, 'ECONNRESET')
  const s = r.summary({ url, tool: 'autocannon', protocol: 'http/1.1', durationSec: 2 })
  r.destroy()
  return s
}

const settings = { durationSec: 2, warmupSec: 0, connections: 4, pipelining: 1, method: 'GET', headers: {}, bodyBytes: 0, timeoutSec: 10, http2: false }

t.test('passed: every expectation met and at least one response', async (t) => {
  const target = runOf('http://127.0.0.1:1/<x>', 2, 100)
  const ok = buildReport({ startedAt: 'now', settings, target }, evaluate(parseExpectations('p99<5ms'), target))
  t.equal(ok.version, 1)
  t.equal(ok.passed, true)
  t.same(ok.expectations.map((e) => [e.text, e.measured, e.ok]), [['p99<5ms', 2, true]])
  t.equal(buildReport({ startedAt: 'now', settings, target }, evaluate(parseExpectations('p99<1ms'), target)).passed, false)
  const empty = new Recorder()
  t.equal(buildReport({ startedAt: 'now', settings, target: empty.summary({ ...target, durationSec: 1 }) }, []).passed, false)
  empty.destroy()
})

t.test('the text summary and the HTML carry the same numbers, the HTML needs no script or network', async (t) => {
  const target = runOf('http://127.0.0.1:1/<x>', 2, 100)
  const baseline = runOf('http://127.0.0.1:2/', 1, 200)
  const report = buildReport({ startedAt: 'now', settings, target, baseline, comparison: compare(target, baseline) }, [])
  const text = textSummary(report)
  t.match(text, /target\s+50\s+2\s+2\s+2\s+2\s+2\s+100\s+10\s+1\n/)
  t.match(text, /target vs baseline: 0\.50x req\/s, \+1 ms p50, \+1 ms p99/)
  t.match(text, /target: status 503 10; errors ECONNRESET 1/)
  const html = htmlReport(report)
  t.notMatch(html, /<script(?! type="application\/json")/, 'no executable script')
  t.notMatch(html, /(src|href)="?https?:/, 'nothing loaded from the network')
  t.notMatch(html, /<x>/, 'the URL is escaped')
  t.match(html, /<svg id="chart-rps"/)
  t.match(html, /<svg id="chart-latency"/)
  t.match(html, /<svg id="chart-errors"/)
  t.match(html, /data-series="baseline"><polyline points="[^"]+" data-values="100,100"/)
  t.match(html, /<td data-field="target.rps">50<\/td>/)
  t.match(html, /data-field="comparison.rpsRatio">0.50x</)
  const json = /<script type="application\/json" id="bench-data">(.*)<\/script>/.exec(html)![1]!
  t.same(JSON.parse(json), JSON.parse(JSON.stringify(report)), 'the JSON rides along intact')
})

t.test('the live progress line', async (t) => {
  t.equal(progressLine('target', 3, 10, 12345.6, 1.23456, 2), 'target 3s / 10s  12346 req/s  p99 1.23 ms  errors 2')
  t.equal(progressLine('baseline', 1, 0.5, 42.25, 0, 0), 'baseline 1s / 0.5s  42.3 req/s  p99 0 ms  errors 0')
})

t.test('a baseline that answered nothing: no ratio, said so', async (t) => {
  const target = runOf('http://127.0.0.1:1/', 2, 100)
  const none = new Recorder()
  const baseline = none.summary({ url: 'http://127.0.0.1:2/', tool: 'autocannon', protocol: 'http/1.1', durationSec: 2 })
  none.destroy()
  const report = buildReport({ startedAt: 'now', settings, target, baseline }, [])
  t.match(textSummary(report), /\nno comparison: the baseline answered nothing\n/)
  t.match(htmlReport(report), /<p class="comparison">no comparison: the baseline answered nothing<\/p>/)
})
