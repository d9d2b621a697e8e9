// `switchyard bench -c CONFIG`: the command starts the proxy of a real
// config as a child, loads one of its listeners, stops it. Load: 1 s over
// HTTP/1.1 and 0.5 s over HTTP/2 (h2load). Speed is never checked.
//
// The HTTP/2 test needs h2load (nghttp2-client; .ci/run installs it): without
// it, that test fails under CI and is skipped locally.
import { spawnSync } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import net from 'node:net'
import path from 'node:path'
import t, { type Test } from 'tap'
import type { BenchReport } from '../../src/loadtest/report.js'
import { testCertificate } from '../helpers/certs.js'
import { inCI } from '../helpers/chromium.js'
import { spawnCli } from '../helpers/cli.js'
import { startOrigin } from '../helpers/origin.js'

async function bench (t: Test, args: string[]): Promise<{ code: number | null, stdout: string, stderr: string }> {
  const p = spawnCli(t, ['bench', ...args])
  const code = await p.exited
  return { code, stdout: p.stdout(), stderr: p.stderr() }
}

/** A config with a plaintext and a TLS listener in front of `origin`, one process, no admin API. */
function config (t: Test, originUrl: string): string {
  const cert = testCertificate(t)
  const dir = t.testdir({
    'proxy.yaml': [
      'listeners:',
      '  - { name: plain, bind: "127.0.0.1:0" }',
      `  - { name: secure, bind: "127.0.0.1:0", tls: { cert: ${JSON.stringify(cert.certPath)}, key: ${JSON.stringify(cert.keyPath)} } }`,
      'workers: 1',
      'admin: false',
      'accessLog: false',
      'routes: [{ name: all, backend: app }]',
      'backends:',
      '  app:',
      `    servers: [{ url: "${originUrl}" }]`,
      ''
    ].join('\n')
  })
  return path.join(dir, 'proxy.yaml')
}

/** Is anything accepting connections on 127.0.0.1:port? */
async function accepting (port: number): Promise<boolean> {
  return await new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1')
    s.once('connect', () => { s.destroy(); resolve(true) })
    s.once('error', () => resolve(false))
  })
}

function alive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

t.test('-c CONFIG PATH: starts the proxy, loads its first listener through to the origin, stops it', async (t) => {
  const origin = await startOrigin(t)
  const file = config(t, origin.url)
  const json = path.join(t.testdirName, 'r.json')
  const r = await bench(t, ['-c', file, '/through', '-d', '1s', '-c', '2', '--expect', 'rps>0,non2xx<=0', '--json', json])
  t.equal(r.code, 0, r.stderr)
  const started = /started .*proxy\.yaml \(pid (\d+)\); listener plain at http:\/\/127\.0\.0\.1:(\d+)/.exec(r.stderr)
  t.ok(started, r.stderr)
  const report = JSON.parse(await readFile(json, 'utf8')) as BenchReport
  t.same(report.settings.config, { file, listener: 'plain', path: '/through' })
  t.equal(report.target.url, `http://127.0.0.1:${started![2]}/through`)
  t.ok(report.target.requests > 0, `requests ${report.target.requests}`)
  t.ok(report.target.latencyMs.p99 > 0)
  t.equal(report.target.statusClasses['2xx'], report.target.requests)
  t.equal(report.passed, true)
  const seen = origin.requests.filter((q) => q.url === '/through')
  t.ok(seen.length > 0, 'the origin got the load')
  t.ok(seen.every((q) => q.headers['x-forwarded-for'] !== undefined), 'through the proxy')
  t.notOk(alive(Number(started![1])), 'the proxy process is gone')
  t.notOk(await accepting(Number(started![2])), 'and its listener closed')
})

t.test('-c CONFIG --listener NAME --http2: h2load over TLS with ALPN h2', async (t) => {
  if (spawnSync('h2load', ['--version']).status !== 0) {
    if (inCI) t.fail('h2load not found (apt-get install nghttp2-client)')
    else t.comment('skipped: h2load not on PATH')
    return
  }
  const origin = await startOrigin(t)
  const file = config(t, origin.url)
  const json = path.join(t.testdirName, 'h2.json')
  const r = await bench(t, ['-c', file, '--listener', 'secure', '--http2', '-d', '500ms', '-c', '1', '-p', '2', '--json', json, '--quiet'])
  t.equal(r.code, 0, r.stderr)
  const report = JSON.parse(await readFile(json, 'utf8')) as BenchReport
  t.match(report.target, { tool: 'h2load', protocol: 'h2', url: /^https:\/\/127\.0\.0\.1:\d+\/$/ })
  t.ok(report.target.requests > 0, `requests ${report.target.requests}`)
  t.equal(report.target.statusClasses['2xx'], report.target.requests)
  t.ok(report.target.latencyMs.p50 > 0)
  t.equal(report.target.rpsPerSecond.reduce((a, b) => a + b, 0), report.target.requests)
  t.ok(origin.requests.some((q) => q.headers['x-forwarded-proto'] === 'https'), 'through the TLS listener')
})

t.test('a config that cannot run is exit 2, with the reason, and nothing is loaded', async (t) => {
  const origin = await startOrigin(t)
  const file = config(t, origin.url)
  const unknown = await bench(t, ['-c', file, '--listener', 'nope'])
  t.equal(unknown.code, 2)
  t.match(unknown.stderr, /--listener: no listener "nope" in .*proxy\.yaml \(listeners: plain, secure\)/)
  const dir = t.testdir({ 'bad.yaml': 'listeners:\n  - bind: "127.0.0.1:0"\nbackends: {}\nroutes: [{ name: all, backend: missing }]\n' })
  const bad = await bench(t, ['-c', path.join(dir, 'bad.yaml')])
  t.equal(bad.code, 2)
  t.match(bad.stderr, /bad\.yaml is not a valid config:\n.*bad\.yaml:\d+:\d+ routes\[0\]\.backend/)
  t.equal(origin.requests.length, 0)
})
