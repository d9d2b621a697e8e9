import t from 'tap'
import { BenchUsageError, parseBenchArgs, parseDuration } from '../../src/loadtest/args.js'

function usageError (argv: string[]): string {
  try {
    parseBenchArgs(argv)
  } catch (err) {
    if (err instanceof BenchUsageError) return err.message
    throw err
  }
  throw new Error(`no BenchUsageError for ${argv.join(' ')}`)
}

t.test('a URL with the defaults', async (t) => {
  const o = parseBenchArgs(['http://127.0.0.1:8080/x'])
  t.same(o.target, { url: 'http://127.0.0.1:8080/x', path: '/' })
  t.same([o.durationSec, o.warmupSec, o.connections, o.pipelining, o.method, o.timeoutSec, o.http2, o.quiet], [10, 0, 10, 1, 'GET', 10, false, false])
  t.equal(parseBenchArgs(['http://h/', '--warmup', '2s']).warmupSec, 2)
  t.equal(parseBenchArgs(['http://h/', '--warmup', '0']).warmupSec, 0)
  t.same(o.expect, [])
})

t.test('every option, autocannon/wrk style', async (t) => {
  const o = parseBenchArgs(['https://127.0.0.1:8443/', '-d', '500ms', '-c', '50', '-p', '4', '-m', 'post', '-H', 'X-A: 1', '-H', 'content-type: text/plain',
    '--body', 'hi', '--baseline', 'http://127.0.0.1:9000/', '--expect', 'p99<5ms', '--json', 'r.json', '--html', 'r.html', '-q', '--timeout', '2s'])
  t.equal(o.durationSec, 0.5)
  t.equal(o.connections, 50)
  t.equal(o.pipelining, 4)
  t.equal(o.method, 'POST')
  t.same(o.headers, { 'x-a': '1', 'content-type': 'text/plain' })
  t.equal(o.body, 'hi')
  t.equal(o.baseline, 'http://127.0.0.1:9000/')
  t.equal(o.expect.length, 1)
  t.same([o.json, o.html, o.quiet, o.timeoutSec], ['r.json', 'r.html', true, 2])
  t.same(parseBenchArgs(['http://h/', '--body', '@b.json']).body, { file: 'b.json' })
  t.equal(parseBenchArgs(['http://h/', '--connections', '7']).connections, 7)
})

t.test('-c: a number is connections, anything else the config; PATH and --listener go with the config', async (t) => {
  const o = parseBenchArgs(['-c', 'proxy.yaml', '-c', '20', '--listener', 'http', '/static/x'])
  t.same(o.target, { config: 'proxy.yaml', path: '/static/x', listener: 'http' })
  t.equal(o.connections, 20)
  t.same(parseBenchArgs(['--config', 'p.yaml']).target, { config: 'p.yaml', path: '/' })
})

t.test('durations', async (t) => {
  t.same(['10s', '1m', '250ms', '2', '1.5s'].map((d) => parseDuration(d)), [10, 60, 0.25, 2, 1.5])
  t.throws(() => parseDuration('0s'), { name: 'BenchUsageError' })
  t.throws(() => parseDuration('10 minutes'), /--duration: expected a time like 10s/)
  t.throws(() => parseBenchArgs(['http://h/', '--warmup', 'x']), /--warmup: expected a time/)
})

t.test('mistakes are usage errors that say what is wrong', async (t) => {
  t.equal(usageError([]), 'a URL or -c CONFIG is required')
  t.match(usageError(['ftp://x/']), /expected an http:\/\/ or https:\/\/ URL/)
  t.match(usageError(['not a url']), /not a URL/)
  t.match(usageError(['http://a/', 'http://b/']), /unexpected argument "http:\/\/b\/"/)
  t.match(usageError(['-c', 'a.yaml', '-c', 'b.yaml']), /one config file at most/)
  t.match(usageError(['-c', 'a.yaml', 'static']), /request path starting with \//)
  t.match(usageError(['http://a/', '--listener', 'x']), /--listener needs -c CONFIG/)
  t.match(usageError(['http://a/', '-c', '0']), /--connections: expected a whole number from 1/)
  t.match(usageError(['http://a/', '-p', 'x']), /--pipelining/)
  t.match(usageError(['http://a/', '-H', 'novalue']), /--header: expected 'name: value'/)
  t.match(usageError(['http://a/', '--expect', 'p99=5']), /--expect: cannot read "p99=5"/)
  t.match(usageError(['http://a/', '--frobnicate']), /Unknown option '--frobnicate'/)
  t.match(usageError(['http://a/', '--http2', '-m', 'PUT']), /--http2 \(h2load\) sends GET, or POST with --body/)
  t.match(usageError(['http://a/', '--baseline', 'x']), /--baseline: not a URL/)
})

t.test('--help needs nothing else', async (t) => {
  t.equal(parseBenchArgs(['--help']).help, true)
})
