import t from 'tap'
import { escapeHelp, escapeLabelValue, Exposition, formatValue, isValidLabelName, isValidMetricName } from '../../src/admin/prometheus.js'
import { parsePrometheusText, PrometheusParseError } from '../helpers/prometheus-parser.js'

t.test('values: integers without exponent, shortest floats, NaN and infinities', async (t) => {
  t.equal(formatValue(0), '0')
  t.equal(formatValue(-0), '0')
  t.equal(formatValue(42), '42')
  t.equal(formatValue(-7), '-7')
  t.equal(formatValue(2 ** 53 + 2), '9007199254740994')
  t.equal(formatValue(1e21), '1000000000000000000000', 'large integers stay in plain digits')
  t.equal(formatValue(1.5), '1.5')
  t.equal(formatValue(0.1 + 0.2), '0.30000000000000004', 'round-trips exactly')
  t.equal(formatValue(1.5e-7), '1.5e-7')
  t.equal(formatValue(NaN), 'NaN')
  t.equal(formatValue(Infinity), '+Inf')
  t.equal(formatValue(-Infinity), '-Inf')
  for (const n of [0, 42, 1e21, 1.5, 0.1 + 0.2, 1.5e-7, 123456.789, -2.5e300]) {
    const text = `# TYPE x gauge\nx ${formatValue(n)}\n`
    t.equal(parsePrometheusText(text)[0]!.samples[0]!.value, n, `${n} parses back`)
  }
})

t.test('escaping: label values escape \\ " and newline; HELP escapes \\ and newline only', async (t) => {
  t.equal(escapeLabelValue('plain'), 'plain')
  t.equal(escapeLabelValue('C:\\DIR\\FILE.TXT'), 'C:\\\\DIR\\\\FILE.TXT')
  t.equal(escapeLabelValue('say "hi"\nbye'), 'say \\"hi\\"\\nbye')
  t.equal(escapeLabelValue('tab\tand ünïcode ✓'), 'tab\tand ünïcode ✓', 'other characters pass through')
  t.equal(escapeHelp('a "quoted" \\ line\nnext'), 'a "quoted" \\\\ line\\nnext')
})

t.test('metric and label names', async (t) => {
  for (const ok of ['a', 'switchyard_requests_total', '_x', 'ns:sub:name', 'A9']) t.ok(isValidMetricName(ok), ok)
  for (const bad of ['', '9a', 'a-b', 'a b', 'é', 'a.b']) t.notOk(isValidMetricName(bad), JSON.stringify(bad))
  for (const ok of ['route', '_x', 'code_class', 'A9']) t.ok(isValidLabelName(ok), ok)
  for (const bad of ['', '9a', 'a:b', 'a-b', '__name__', '__x']) t.notOk(isValidLabelName(bad), JSON.stringify(bad))
})

t.test('builder: HELP and TYPE once per family, lines grouped, trailing newline', async (t) => {
  const x = new Exposition()
  const a = x.counter('app_requests_total', 'Requests.\nSecond "line" \\ here', ['route', 'code'])
  const g = x.gauge('app_up', 'Up.')
  const s = x.summary('app_latency_seconds', 'Latency.', ['route'])
  // Interleaved writes still come out grouped by family.
  a.sample(['api', '200'], 10)
  g.sample([], 1)
  a.sample(['web', '500'], 2)
  s.sample(['api'], { quantiles: [[0.5, 0.01], [0.99, 0.25]], sum: 1.5, count: 30 })
  const text = x.text()
  t.equal(text, [
    '# HELP app_requests_total Requests.\\nSecond "line" \\\\ here',
    '# TYPE app_requests_total counter',
    'app_requests_total{route="api",code="200"} 10',
    'app_requests_total{route="web",code="500"} 2',
    '# HELP app_up Up.',
    '# TYPE app_up gauge',
    'app_up 1',
    '# HELP app_latency_seconds Latency.',
    '# TYPE app_latency_seconds summary',
    'app_latency_seconds{route="api",quantile="0.5"} 0.01',
    'app_latency_seconds{route="api",quantile="0.99"} 0.25',
    'app_latency_seconds_sum{route="api"} 1.5',
    'app_latency_seconds_count{route="api"} 30',
    ''
  ].join('\n'))
  const fams = parsePrometheusText(text)
  t.same(fams.map((f) => [f.name, f.type, f.samples.length]), [
    ['app_requests_total', 'counter', 2], ['app_up', 'gauge', 1], ['app_latency_seconds', 'summary', 4]
  ])
  t.equal(fams[0]!.help, 'Requests.\nSecond "line" \\ here', 'HELP round-trips')
  t.equal(new Exposition().text(), '', 'an empty exposition is empty')
  t.same(parsePrometheusText(''), [])
})

t.test('builder: a summary without labels, and an empty family', async (t) => {
  const x = new Exposition()
  x.summary('lat', 'h').sample([], { quantiles: [[0.5, NaN]], sum: 0, count: 0 })
  x.counter('none_total', 'no samples yet', ['k'])
  const text = x.text()
  t.match(text, /^lat\{quantile="0\.5"\} NaN$/m)
  t.match(text, /^lat_sum 0$/m)
  const fams = parsePrometheusText(text)
  t.equal(fams[1]!.name, 'none_total')
  t.equal(fams[1]!.samples.length, 0)
})

t.test('builder: label values with every special character round-trip', async (t) => {
  const nasty = ['back\\slash', 'quote"d', 'new\nline', '\\"\n\\n', '', '{}=,', 'ünï ✓ \t']
  const x = new Exposition()
  const f = x.gauge('g', 'h', ['v', 'i'])
  nasty.forEach((v, i) => f.sample([v, String(i)], i))
  const text = x.text()
  t.equal(text.split('\n').length, nasty.length + 3, 'one line per sample: newlines are escaped')
  const samples = parsePrometheusText(text)[0]!.samples
  t.same(samples.map((s) => s.labels.v), nasty)
  t.same(samples.map((s) => s.value), nasty.map((_, i) => i))
})

t.test('builder rejects what would break the format', async (t) => {
  const x = new Exposition()
  t.throws(() => x.counter('bad-name', 'h'), /invalid metric name/)
  t.throws(() => x.counter('ok', 'h', ['__reserved']), /invalid label name/)
  t.throws(() => x.counter('ok2', 'h', ['a', 'a']), /duplicate label name/)
  t.throws(() => x.summary('s', 'h', ['quantile']), /reserved/)
  x.summary('lat', 'h')
  t.throws(() => x.gauge('lat', 'h'), /already used/)
  t.throws(() => x.counter('lat_count', 'h'), /already used/, 'a summary owns its _sum and _count')
  t.throws(() => x.counter('lat_sum', 'h'), /already used/)
  x.gauge('lat_max', 'h') // not a summary suffix
  const c = x.counter('c_total', 'h', ['a', 'b'])
  t.throws(() => c.sample(['x'], 1), /expected 2 label values/)
  c.sample(['x', 'y'], 1)
  t.throws(() => c.sample(['x', 'y'], 2), /duplicate series/)
  const s = x.summary('s2', 'h')
  t.throws(() => s.sample([], { quantiles: [[1.5, 1]], sum: 1, count: 1 }), /outside/)
  parsePrometheusText(x.text())
})

t.test('parser accepts the example from the exposition format documentation', async (t) => {
  const text = String.raw`# HELP http_requests_total The total number of HTTP requests.
# TYPE http_requests_total counter
http_requests_total{method="post",code="200"} 1027 1395066363000
http_requests_total{method="post",code="400"}    3 1395066363000

# Escaping in label values:
msdos_file_access_time_seconds{path="C:\\DIR\\FILE.TXT",error="Cannot find file:\n\"FILE.TXT\""} 1.458255915e9

# Minimalistic line:
metric_without_timestamp_and_labels 12.47

# A weird metric from before the epoch:
something_weird{problem="division by zero"} +Inf -3982045

# A histogram, which has a pretty complex representation in the text format:
# HELP http_request_duration_seconds A histogram of the request duration.
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{le="0.05"} 24054
http_request_duration_seconds_bucket{le="0.1"} 33444
http_request_duration_seconds_bucket{le="0.2"} 100392
http_request_duration_seconds_bucket{le="0.5"} 129389
http_request_duration_seconds_bucket{le="1"} 133988
http_request_duration_seconds_bucket{le="+Inf"} 144320
http_request_duration_seconds_sum 53423
http_request_duration_seconds_count 144320

# Finally a summary, which has a complex representation, too:
# HELP rpc_duration_seconds A summary of the RPC duration in seconds.
# TYPE rpc_duration_seconds summary
rpc_duration_seconds{quantile="0.01"} 3102
rpc_duration_seconds{quantile="0.05"} 3272
rpc_duration_seconds{quantile="0.5"} 4773
rpc_duration_seconds{quantile="0.9"} 9001
rpc_duration_seconds{quantile="0.99"} 76656
rpc_duration_seconds_sum 1.7560473e+07
rpc_duration_seconds_count 2693
`
  const fams = parsePrometheusText(text)
  t.same(fams.map((f) => [f.name, f.type]), [
    ['http_requests_total', 'counter'], ['msdos_file_access_time_seconds', 'untyped'], ['metric_without_timestamp_and_labels', 'untyped'],
    ['something_weird', 'untyped'], ['http_request_duration_seconds', 'histogram'], ['rpc_duration_seconds', 'summary']
  ])
  t.same(fams[0]!.samples[1], { name: 'http_requests_total', labels: { method: 'post', code: '400' }, value: 3, timestamp: 1395066363000 })
  t.same(fams[1]!.samples[0]!.labels, { path: 'C:\\DIR\\FILE.TXT', error: 'Cannot find file:\n"FILE.TXT"' })
  t.equal(fams[3]!.samples[0]!.value, Infinity)
  t.equal(fams[3]!.samples[0]!.timestamp, -3982045)
  t.equal(fams[4]!.samples.length, 8)
  t.equal(fams[5]!.samples.at(-2)!.value, 17560473)
})

t.test('parser accepts a trailing comma and blanks inside braces, and plain comments', async (t) => {
  const fams = parsePrometheusText('# just a comment\n#HELPless comment\na{ x = "1" , y="2", } 1\n')
  t.same(fams[0]!.samples[0]!.labels, { x: '1', y: '2' })
})

t.test('parser rejects every malformed line', async (t) => {
  const bad: [string, RegExp][] = [
    ['a 1', /line feed/],
    ['9a 1\n', /invalid metric name/],
    ['a{b="1} 1\n', /unterminated/],
    ['a{b="\\t"} 1\n', /invalid escape/],
    ['a{b="x"c="y"} 1\n', /expected , or }/],
    ['a{b=x} 1\n', /expected "/],
    ['a{__b="x"} 1\n', /invalid label name/],
    ['a{b-c="x"} 1\n', /expected =/],
    ['a{b="1",b="2"} 1\n', /duplicate label/],
    ['a{b="1"}1\n', /blank before the value/],
    ['a\n', /blank before the value/],
    ['a \n', /invalid value/],
    ['a 1,5\n', /invalid value/],
    ['a Inf\n', /invalid value/],
    ['a 0x10\n', /invalid value/],
    ['a 1 2.5\n', /invalid timestamp/],
    ['a 1 2 3\n', /after the timestamp/],
    ['a 1\na 2\n', /duplicate series/],
    ['a{x="1",y="2"} 1\na{y="2",x="1"} 2\n', /duplicate series/],
    ['a 1\nb 1\na{x="1"} 1\n', /not together/],
    ['# TYPE a counter\n# TYPE a gauge\n', /second TYPE/],
    ['# HELP a x\n# HELP a y\n', /second HELP/],
    ['a 1\n# TYPE a counter\n', /after its samples/],
    ['# TYPE a countr\n', /unknown metric type/],
    ['# TYPE a-b counter\n', /invalid metric name/],
    ['# HELP a bad \\t escape\n', /invalid escape/],
    ['# TYPE s summary\ns 1\n', /quantile/],
    ['# TYPE s summary\ns_sum{quantile="0.5"} 1\n', /must not carry a quantile/],
    ['# TYPE h histogram\nh_bucket 1\n', /le label/],
    ['# TYPE h histogram\nh 1\n', /no sample named like the family/],
    ['a 1\r\n', /carriage return/]
  ]
  for (const [text, re] of bad) {
    t.throws(() => parsePrometheusText(text), re, JSON.stringify(text))
    t.throws(() => parsePrometheusText(text), PrometheusParseError)
  }
  try {
    parsePrometheusText('a 1\nb 1\nb{x="1"} 1\nc oops\n')
  } catch (err) {
    t.equal((err as PrometheusParseError).line, 4, 'the error names the line')
  }
})
