import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { comparePeers, h2loadLogDurations, haproxyConfig, nginxConfig, parseH2load, parseWrk, percentile, spread, varnishVcl, WRK_MARK, WRK_SCRIPT } from '../../bench/peers.js'
import type { PeerRow } from '../../bench/peers.js'
import { which } from '../../bench/tools.js'

const CONFIG = { ports: { h1: 18081, tls: 18443 }, originPort: 18090, dir: '/tmp/bench-x/', cert: '/tmp/bench-x/bench.crt', key: '/tmp/bench-x/bench.key' }

t.test('nginx config: one worker, keep-alive upstream, proxy_cache on /cached, everything under the temp dir', async (t) => {
  const c = nginxConfig(CONFIG)
  t.match(c, /^worker_processes 1;$/m)
  t.notMatch(c, /^user /m)
  t.match(c, /upstream origin \{\n\s+server 127\.0\.0\.1:18090;\n\s+keepalive 64;/)
  t.match(c, /listen 127\.0\.0\.1:18081;/)
  t.match(c, /listen 127\.0\.0\.1:18443 ssl http2;/)
  t.match(c, /proxy_http_version 1\.1;\n\s+proxy_set_header Connection "";/)
  t.match(c, /location \/cached \{[^}]*proxy_cache bench;/)
  t.notMatch(c, /location \/ \{[^}]*proxy_cache bench;/)
  t.match(c, /access_log off;/)
  t.match(c, /pid "\/tmp\/bench-x\/nginx\.pid";/)
  // Every path nginx writes is under the dir (the trailing slash is not doubled).
  for (const m of c.matchAll(/"(\/[^"]*)"/g)) {
    const path = m[1] ?? ''
    t.ok(path.startsWith('/tmp/bench-x/') && !path.includes('//'), path)
  }
})

t.test('nginx config: the worker user only when asked (root), keepalive as given, unquotable paths refused', async (t) => {
  t.match(nginxConfig({ ...CONFIG, user: 'root', keepalive: 8 }), /^user "root";\nworker_processes 1;$/m)
  t.match(nginxConfig({ ...CONFIG, keepalive: 8 }), /keepalive 8;/)
  t.throws(() => nginxConfig({ ...CONFIG, dir: '/tmp/a;b' }), /does not quote/)
  t.throws(() => nginxConfig({ ...CONFIG, cert: '/tmp/$x' }), /does not quote/)
})

const noNginx = which('nginx') === null ? 'nginx not installed' : which('openssl') === null ? 'openssl not installed (nginx -t loads the certificate)' : false
t.test('nginx config passes nginx -t (when nginx and openssl are installed)', { skip: noNginx }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bench-nginx-test-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  // nginx -t loads the certificate: a throwaway one.
  const cert = join(dir, 'c.pem')
  const key = join(dir, 'k.pem')
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-days', '1', '-keyout', key, '-out', cert], { stdio: 'ignore' })
  const conf = join(dir, 'nginx.conf')
  writeFileSync(conf, nginxConfig({ ...CONFIG, dir, cert, key, ...(process.getuid?.() === 0 ? { user: 'root' } : {}) }))
  // Throws (and fails the test) when nginx -t exits non-zero.
  t.doesNotThrow(() => execFileSync('nginx', ['-t', '-c', conf, '-p', dir, '-g', 'daemon off;'], { stdio: 'ignore' }))
})

t.test('HAProxy config: one thread, keep-alive reuse, X-Forwarded-For, h2 by ALPN on the TLS port; unquotable paths refused', async (t) => {
  const c = haproxyConfig({ ports: { h1: 18081, tls: 18443 }, originPort: 18090, pem: '/tmp/bench-x/bench.pem' })
  t.match(c, /^ {2}nbthread 1$/m)
  t.match(c, /^ {2}option forwardfor$/m)
  t.match(c, /^ {2}http-reuse always$/m)
  t.match(c, /^ {2}bind 127\.0\.0\.1:18081$/m)
  t.match(c, /^ {2}bind 127\.0\.0\.1:18443 ssl crt \/tmp\/bench-x\/bench\.pem alpn h2,http\/1\.1$/m)
  t.match(c, /^ {2}server origin 127\.0\.0\.1:18090$/m)
  t.throws(() => haproxyConfig({ ports: { h1: 1, tls: 2 }, originPort: 3, pem: '/tmp/a b.pem' }), /does not quote/)
})

t.test('Varnish VCL: /cached looked up, the rest passed, the origin as the backend', async (t) => {
  const v = varnishVcl(18090)
  t.match(v, /^vcl 4\.1;/)
  t.match(v, /\.port = "18090";/)
  t.match(v, /if \(req\.url !~ "\^\/cached"\) \{\n\s+return \(pass\);/)
})

const noHaproxy = which('haproxy') === null ? 'haproxy not installed' : which('openssl') === null ? 'openssl not installed' : false
t.test('HAProxy config passes haproxy -c (when haproxy and openssl are installed)', { skip: noHaproxy }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bench-haproxy-test-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  const pem = join(dir, 'bench.pem')
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-days', '1', '-keyout', pem, '-out', join(dir, 'c.pem')], { stdio: 'ignore' })
  writeFileSync(pem, readFileSync(join(dir, 'c.pem'), 'utf8') + readFileSync(pem, 'utf8'))
  const conf = join(dir, 'haproxy.cfg')
  writeFileSync(conf, haproxyConfig({ ports: { h1: 18081, tls: 18443 }, originPort: 18090, pem }))
  // Throws (and fails the test) when haproxy -c exits non-zero.
  t.doesNotThrow(() => execFileSync('haproxy', ['-c', '-f', conf], { stdio: 'ignore' }))
})

const noVarnish = which('varnishd') === null ? 'varnishd not installed' : false
t.test('Varnish VCL compiles (varnishd -C, when varnish is installed)', { skip: noVarnish }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bench-varnish-test-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  const vcl = join(dir, 'bench.vcl')
  writeFileSync(vcl, varnishVcl(18090))
  t.doesNotThrow(() => execFileSync('varnishd', ['-C', '-j', 'none', '-n', join(dir, 'work'), '-f', vcl], { stdio: 'ignore' }))
})

t.test('the wrk script prints the marked line that parseWrk reads', async (t) => {
  t.match(WRK_SCRIPT, /latency:percentile\(99\.9\)/)
  const stdout = `Running 2s test @ http://127.0.0.1:1/\n  1 threads and 20 connections\nRequests/sec:  79481.88\n${WRK_MARK}{"requests":166921,"durationUs":2100114,"bytes":46570959,"connect":0,"read":1,"write":0,"status":2,"timeout":3,"p50":229,"p90":311,"p99":3378,"p999":5830,"mean":341.3,"max":7663}\n`
  const w = parseWrk(stdout)
  t.same(w, { requests: 166921, durationUs: 2100114, bytes: 46570959, connect: 0, read: 1, write: 0, status: 2, timeout: 3, p50: 229, p90: 311, p99: 3378, p999: 5830, mean: 341.3, max: 7663 })
  t.equal(parseWrk('Requests/sec: 1\n'), null)
  t.equal(parseWrk(`${WRK_MARK}{"requests":1}\n`), null, 'a field missing')
  t.equal(parseWrk(`${WRK_MARK}{not json\n`), null)
})

t.test('parseH2load reads the summary; a missing line is null', async (t) => {
  const stdout = `starting benchmark...
Application protocol: h2
finished in 3.01s, 35401.00 req/s, 5.50MB/s
requests: 70802 total, 70802 started, 70802 done, 70800 succeeded, 2 failed, 1 errored, 1 timeout
status codes: 70800 2xx, 0 3xx, 1 4xx, 1 5xx
traffic: 11.01MB (11540726) total`
  t.same(parseH2load(stdout), {
    seconds: 3.01, reqPerSec: 35401, done: 70802, succeeded: 70800, failed: 2, errored: 1, timeout: 1,
    status2xx: 70800, status3xx: 0, status4xx: 1, status5xx: 1, protocol: 'h2'
  })
  t.equal(parseH2load(stdout.replace('finished in 3.01s', 'finished in 850.5ms'))?.seconds, 0.8505)
  t.equal(parseH2load(stdout.replace(/^status codes.*$/m, '')), null)
})

t.test('h2load log: durations from the third column; other lines left out', async (t) => {
  t.same(h2loadLogDurations('1796541987698951\t200\t514\n1796541987698951\t200\t693\nnoise\n\t200\t5\n1\t200\tx\n'), [514, 693])
})

t.test('percentile: nearest rank', async (t) => {
  const v = Array.from({ length: 1000 }, (_, i) => i + 1)
  t.equal(percentile(v, 50), 500)
  t.equal(percentile(v, 99), 990)
  t.equal(percentile(v, 99.9), 999)
  t.equal(percentile(v, 100), 1000)
  t.equal(percentile([7], 0), 7)
  t.ok(Number.isNaN(percentile([], 50)))
})

t.test('spread: median (middle two averaged), least, largest; non-numbers left out', async (t) => {
  t.same(spread([3, 1, 2]), { median: 2, min: 1, max: 3, n: 3 })
  t.same(spread([4, 1, null, 3, undefined, 2, NaN]), { median: 2.5, min: 1, max: 4, n: 4 })
  t.equal(spread([null, undefined]), null)
})

const row = (name: string, reqPerCore: number | null, p50: number, over: Partial<PeerRow> = {}): PeerRow => ({
  name, reqPerSec: reqPerCore, reqPerCore, latencyMs: { p50, p99: p50 * 10, p99_9: p50 * 20 },
  nginx: 'nginx', native: 'haproxy', nodePeers: ['http-proxy', 'other-node'], ceiling: 'ceiling', latencyRef: 'direct', ...over
})

t.test('comparePeers: per-core ratios to nginx, the best Node peer and the ceiling; latency added over the reference', async (t) => {
  const rows = [
    row('direct', null, 1, { nginx: null, native: null, nodePeers: [], ceiling: null, latencyRef: null }),
    row('ceiling', 50_000, 1.5),
    row('nginx', 40_000, 2),
    row('haproxy', 32_000, 2),
    row('http-proxy', 10_000, 4),
    row('other-node', 12_000, 3),
    row('switchyard', 20_000, 2.5)
  ]
  const by = new Map(comparePeers(rows).map((c) => [c.name, c]))
  const sy = by.get('switchyard')
  t.equal(sy?.vsNginx, 0.5)
  t.equal(sy?.vsNative, 0.625)
  t.equal(sy?.native, 'haproxy')
  t.equal(sy?.bestNode, 'other-node')
  t.equal(sy?.vsBestNode, 20_000 / 12_000)
  t.equal(sy?.vsCeiling, 0.4)
  t.same(sy?.addedMs, { p50: 1.5, p99: 15, p99_9: 30 })
  // A row is not compared with itself; a Node peer that is not the best is compared with the best.
  t.equal(by.get('nginx')?.vsNginx, null)
  t.equal(by.get('haproxy')?.vsNative, null)
  t.equal(by.get('nginx')?.vsNative, 1.25)
  t.equal(by.get('ceiling')?.vsCeiling, null)
  t.equal(by.get('other-node')?.vsBestNode, null)
  t.equal(by.get('http-proxy')?.vsBestNode, 10_000 / 12_000)
  t.same(by.get('direct'), { name: 'direct', vsNginx: null, vsNative: null, native: null, vsBestNode: null, bestNode: null, vsCeiling: null, addedMs: null })
})

t.test('comparePeers: a reference that did not run, or has no CPU, gives null, not a number', async (t) => {
  const rows = [row('switchyard', 20_000, 2.5), row('nginx', null, 2), row('http-proxy', 0, 1)]
  const [sy] = comparePeers(rows)
  t.equal(sy?.vsNginx, null, 'nginx has no req/s per core')
  t.equal(sy?.vsNative, null, 'no haproxy row')
  t.equal(sy?.vsCeiling, null, 'no ceiling row')
  t.equal(sy?.vsBestNode, null, 'a Node peer at 0 is no reference')
  t.equal(sy?.addedMs, null, 'no direct row')
  t.equal(comparePeers([row('x', null, 1, { latencyRef: 'x' })])[0]?.addedMs?.p50, 0)
})
