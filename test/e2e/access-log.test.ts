// The access log as log pipelines need it (issue 14, item 5), from a real
// process: the query with redacted parameters, user agent, referer, request
// id, request and response bytes, TLS version and SNI, upstream server,
// shard, cache status; RFC 3339 time in the access log and the application
// log alike; SIGUSR1 reopens the file (logrotate without copytruncate), also
// through a cluster's primary; `format: combined` writes Apache's lines.
import { execFileSync } from 'node:child_process'
import { closeSync, constants, existsSync, openSync, readFileSync, readSync, renameSync, writeFileSync } from 'node:fs'
import https from 'node:https'
import path from 'node:path'
import autocannon from 'autocannon'
import t from 'tap'
import { request } from 'undici'
import { spawnCli } from '../helpers/cli.js'
import { testCertificate } from '../helpers/certs.js'
import { startServer } from '../helpers/origin.js'
import { rawRequest } from '../helpers/e2e.js'
import { startProxy } from '../helpers/proxy.js'

const RFC3339 = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/

const lines = (file: string): Array<Record<string, unknown>> =>
  existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>) : []

for (const workers of [1, 2]) {
  t.test(`workers: ${workers}: every field, one time format, SIGUSR1 reopens`, async (t) => {
    const origin = await startServer(t, (req, res) => {
      req.resume()
      req.once('end', () => res.writeHead(200, { 'cache-control': 'no-store' }).end('hello'))
    })
    const cert = testCertificate(t, ['localhost', 'api.test'])
    const dir = t.testdir({})
    const file = path.join(dir, 'config.yaml')
    const log = path.join(dir, 'access.log')
    writeFileSync(file, [
      `workers: ${workers}`,
      'listeners:',
      '  - { name: web, bind: "127.0.0.1:0" }',
      `  - { name: tls, bind: "127.0.0.1:0", tls: { cert: "${cert.certPath}", key: "${cert.keyPath}" } }`,
      `accessLog: { path: ${log}, redactQuery: [token, API_KEY] }`,
      'admin: { bind: "127.0.0.1:0" }',
      'cache: {}',
      // The test client stands for a trusted proxy: its X-Request-Id is kept (another client's would be replaced).
      'trustedProxies: [127.0.0.1]',
      'routes: [{ name: all, backend: app }]',
      'backends:',
      '  app:',
      '    shards:',
      `      - { name: s1, servers: [{ name: a1, url: "${origin.url}" }] }`,
      ''
    ].join('\n'))
    const proc = spawnCli(t, ['start', file])
    const web = (await proc.waitForLog((l) => l.msg === 'listening' && l.listener === 'web')).port as number
    const tls = (await proc.waitForLog((l) => l.msg === 'listening' && l.listener === 'tls')).port as number
    // A cluster's primary tells the workers that are ready: wait for all of them.
    if (workers > 1) await proc.waitForLog((l) => l.msg === 'cluster: every worker is ready')
    for (const l of proc.logs) t.match(l.time, RFC3339, `application log: ${l.msg}`)

    const res = await request(`http://127.0.0.1:${String(web)}/p/x?a=1&token=s3cret&Api_Key=k&b=2`, {
      method: 'POST',
      headers: { host: 'shop.test', 'user-agent': 'agent/1.0', referer: 'https://ref.test/', 'x-request-id': 'req-42', 'content-type': 'text/plain' },
      body: 'twelve bytes'
    })
    t.equal(await res.body.text(), 'hello')
    // TLS with SNI, over HTTP/1.1.
    await new Promise<void>((resolve, reject) => {
      https.get({ host: '127.0.0.1', port: tls, path: '/tls', servername: 'api.test', headers: { host: 'api.test' }, ca: cert.certPem }, (r) => {
        r.resume()
        r.once('end', () => resolve())
      }).once('error', reject)
    })

    // logrotate: move the file, then SIGUSR1; the next line goes to a new file of the same name.
    renameSync(log, log + '.1')
    proc.child.kill('SIGUSR1')
    if (workers === 1) await proc.waitForLog((l) => l.msg === 'access log reopened')
    else {
      for (let i = 0; i < 200 && proc.logs.filter((l) => l.msg === 'access log reopened').length < workers; i++) await new Promise((resolve) => setTimeout(resolve, 25))
      t.equal(proc.logs.filter((l) => l.msg === 'access log reopened').length, workers, 'every worker reopened')
    }
    await (await request(`http://127.0.0.1:${String(web)}/after-rotate`)).body.text()
    proc.child.kill('SIGTERM')
    t.equal(await proc.exited, 0, 'SIGUSR1 did not end the process (nor open the inspector)')
    t.notMatch(proc.stderr(), /Debugger listening/)

    const before = lines(log + '.1')
    const after = lines(log)
    const post = before.find((l) => l.path === '/p/x')
    t.ok(post, 'the POST was logged before the rotation')
    t.match(post, {
      time: RFC3339,
      method: 'POST',
      host: 'shop.test',
      path: '/p/x',
      query: 'a=1&token=REDACTED&Api_Key=REDACTED&b=2',
      status: 200,
      bytes: 5,
      request_bytes: 12,
      user_agent: 'agent/1.0',
      referer: 'https://ref.test/',
      request_id: 'req-42',
      route: 'all',
      backend: 'app',
      shard: 's1',
      server: 'a1',
      upstream: new URL(origin.url).host
    })
    t.notOk(JSON.stringify(before).includes('s3cret'), 'the token is not in the log')
    const viaTls = before.find((l) => l.path === '/tls')
    t.match(viaTls, { tls_version: /^TLSv1\.[23]$/, sni: 'api.test', cache: /miss|bypass/ })
    t.equal(typeof viaTls?.request_id, 'string', 'a request without X-Request-Id gets one')
    t.same(after.map((l) => l.path), ['/after-rotate'], 'after SIGUSR1 the lines go to the new file')
    t.notOk(before.some((l) => l.path === '/after-rotate'))
  })
}

t.test('format: combined writes Apache combined lines', async (t) => {
  const origin = await startServer(t, (_req, res) => { res.end('hello') })
  const dir = t.testdir({})
  const file = path.join(dir, 'config.yaml')
  const log = path.join(dir, 'access.log')
  writeFileSync(file, `workers: 1\nlisteners: [{ name: web, bind: "127.0.0.1:0" }]\naccessLog: { path: ${log}, format: combined, redactQuery: [token] }\n` +
    `admin: false\nroutes: [{ name: all, backend: app }]\nbackends:\n  app:\n    servers: [{ url: "${origin.url}" }]\n`)
  const proc = spawnCli(t, ['start', file])
  const web = (await proc.waitForLog((l) => l.msg === 'listening')).port as number
  await (await request(`http://127.0.0.1:${String(web)}/a?token=x&q="1"`, { headers: { 'user-agent': 'ua "quoted"', referer: 'https://r.test/' } })).body.text()
  proc.child.kill('SIGTERM')
  t.equal(await proc.exited, 0)
  const line = readFileSync(log, 'utf8').trim()
  t.match(line, /^127\.0\.0\.1 - - \[\d\d\/[A-Z][a-z]{2}\/\d{4}:\d\d:\d\d:\d\d \+0000\] "GET \/a\?token=REDACTED&q=(%22|\\")1(%22|\\") HTTP\/1\.1" 200 5 "https:\/\/r\.test\/" "ua \\"quoted\\""$/)
})

t.test('compression: the coding Switchyard compressed an answer with, absent when it compressed nothing', async (t) => {
  const text = 'compress me '.repeat(500)
  const origin = await startServer(t, (req, res) => {
    req.resume()
    const body = req.url === '/small' ? 'tiny' : text
    res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'no-store', 'content-length': String(body.length) }).end(body)
  })
  const dir = t.testdir({})
  const file = path.join(dir, 'config.yaml')
  const log = path.join(dir, 'access.log')
  writeFileSync(file, `workers: 1\nlisteners: [{ name: web, bind: "127.0.0.1:0" }]\naccessLog: { path: ${log} }\n` +
    `routes: [{ backend: app, compression: true }]\nbackends: { app: { servers: [{ url: "${origin.url}" }] } }\n`)
  const proc = spawnCli(t, ['start', file])
  const web = (await proc.waitForLog((l) => l.msg === 'listening' && l.listener === 'web')).port as number
  for (const [p, enc] of [['/br', 'br'], ['/gzip', 'gzip'], ['/identity', 'identity'], ['/small', 'br']] as const) {
    const r = await request(`http://127.0.0.1:${String(web)}${p}`, { headers: { 'accept-encoding': enc } })
    await r.body.arrayBuffer()
  }
  proc.child.kill('SIGTERM')
  t.equal(await proc.exited, 0)
  const byPath = new Map(lines(log).map((l) => [l.path, l]))
  t.equal(byPath.get('/br')?.compression, 'br')
  t.equal(byPath.get('/gzip')?.compression, 'gzip')
  t.ok(byPath.has('/identity'), 'the identity answer is logged')
  t.notOk('compression' in (byPath.get('/identity') ?? {}), 'identity asked: none')
  t.ok(byPath.has('/small'), 'the small answer is logged')
  t.notOk('compression' in (byPath.get('/small') ?? {}), 'below minBytes: none')
  t.ok(Number(byPath.get('/br')?.bytes) < text.length, 'bytes counts what was sent, compressed')
})

t.test('a request node:http\'s parser refuses is logged and counted, as HAProxy logs a <BADREQ>', async (t) => {
  const dir = t.testdir({})
  const log = path.join(dir, 'access.log')
  const combined = path.join(dir, 'combined.log')
  const origin = await startServer(t, (_req, res) => { res.end('ok') })
  const yaml = (file: string, format: string) => `
listeners: [{ name: web, bind: "127.0.0.1:0" }]
accessLog: { path: ${JSON.stringify(file)}, format: ${format} }
routes: [{ backend: app }]
backends:
  app: { servers: [{ url: "${origin.url}" }] }
`
  for (const [file, format] of [[log, 'json'], [combined, 'combined']] as const) {
    const p = await startProxy(t, yaml(file, format))
    const port = p.port('web')
    const bad = await rawRequest(port, 'G\u0001T / HTTP/1.1\r\nHost: a.test\r\n\r\n')
    t.equal(bad.status, 400, `${format}: the parser's 400`)
    const big = await rawRequest(port, `GET / HTTP/1.1\r\nHost: a.test\r\nX-Big: ${'v'.repeat(64 * 1024)}\r\n\r\n`)
    t.equal(big.status, 431)
    t.equal((await rawRequest(port, 'GET /fine HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n')).status, 200)
    const metrics = p.app.metrics.prometheus()
    t.match(metrics, /switchyard_requests_total\{[^}]*code_class="4xx"[^}]*\} 2\b/, `${format}: both refusals counted in /metrics`)
  }
  const wait = async (file: string, n: number) => {
    for (let i = 0; i < 200 && (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter((l) => l !== '').length : 0) < n; i++) {
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  }
  await wait(log, 3)
  const json = lines(log)
  t.match(json.find((l) => l.status === 400), { method: '', path: '', error: 'LB_ERR_BAD_REQUEST', flag: 'DPE', detail: /^HPE_/, client: '127.0.0.1' })
  t.match(json.find((l) => l.status === 431), { error: 'LB_ERR_HEADERS_TOO_LARGE', detail: 'HPE_HEADER_OVERFLOW' })
  t.match(json.find((l) => l.status === 200), { path: '/fine' })
  await wait(combined, 3)
  const text = readFileSync(combined, 'utf8')
  t.match(text, /^127\.0\.0\.1 - - \[[^\]]+\] "-" 400 - "-" "-"$/m, 'Apache\'s "-" request line')
})

t.test('non-ASCII header bytes are logged as the bytes that came: \\xHH in combined, UTF-8 text in JSON', async (t) => {
  const dir = t.testdir({})
  const origin = await startServer(t, (req, res) => { req.resume(); res.end('ok') })
  // User-Agent ff fe (not UTF-8), Referer with é as UTF-8 (c3 a9), as raw bytes on the socket.
  const head = Buffer.concat([
    Buffer.from('GET /bytes HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\nUser-Agent: '), Buffer.from([0xff, 0xfe]),
    Buffer.from('\r\nReferer: http://x/'), Buffer.from('é', 'utf8'), Buffer.from('\r\n\r\n')
  ])
  const seen: Record<string, string> = {}
  for (const format of ['json', 'combined'] as const) {
    const file = path.join(dir, `${format}.log`)
    const p = await startProxy(t, `listeners: [{ name: web, bind: "127.0.0.1:0" }]
accessLog: { path: ${JSON.stringify(file)}, format: ${format} }
routes: [{ backend: app }]
backends: { app: { servers: [{ url: "${origin.url}" }] } }
`)
    t.equal((await rawRequest(p.port('web'), head)).status, 200)
    for (let i = 0; i < 200 && !(existsSync(file) && readFileSync(file, 'utf8').includes('\n')); i++) await new Promise((resolve) => setTimeout(resolve, 20))
    seen[format] = readFileSync(file, 'utf8')
  }
  t.match(seen.combined, / "http:\/\/x\/\\xc3\\xa9" "\\xff\\xfe"\n$/, 'combined: each byte as \\xHH, as Apache and nginx write them')
  const json = JSON.parse(seen.json!) as Record<string, unknown>
  t.equal(json.referer, 'http://x/é', 'JSON: UTF-8 bytes are text')
  t.equal(json.user_agent, '\u00ff\u00fe', 'JSON: bytes that are not UTF-8 stay one character each')
})

t.test('workers: 2 on one pipe (stdout under a container runtime): every line arrives whole, none cut into by the other worker', async (t) => {
  const origin = await startServer(t, (req, res) => { req.resume(); res.end('ok') })
  const dir = t.testdir({})
  const fifo = path.join(dir, 'access.fifo')
  execFileSync('mkfifo', [fifo])
  // The test is the log shipper: O_RDWR so the workers' opens do not wait, O_NONBLOCK so reading never blocks.
  const reader = openSync(fifo, constants.O_RDWR | constants.O_NONBLOCK)
  t.teardown(() => { try { closeSync(reader) } catch {} })
  let text = ''
  const buf = Buffer.alloc(1 << 20)
  const drain = (): void => {
    for (;;) {
      let k = 0
      try {
        k = readSync(reader, buf, 0, buf.length, null)
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err
      }
      if (k <= 0) return
      text += buf.toString('latin1', 0, k)
    }
  }
  const reading = setInterval(drain, 2)
  t.teardown(() => { clearInterval(reading) })
  const file = path.join(dir, 'config.yaml')
  writeFileSync(file, `workers: 2\nadmin: false\nlisteners: [{ name: web, bind: "127.0.0.1:0" }]\naccessLog: { path: ${fifo} }\n` +
    `routes: [{ backend: app }]\nbackends: { app: { servers: [{ url: "${origin.url}" }] } }\n`)
  const proc = spawnCli(t, ['start', file])
  await proc.waitForLog((l) => l.msg === 'cluster: every worker is ready')
  const port = (proc.logs.find((l) => l.msg === 'listening')!).port as number
  // Lines of about 3.5 KB (each under PIPE_BUF on its own), many at once from both workers.
  const amount = 3000
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    autocannon({ url: `http://127.0.0.1:${port}/x`, connections: 40, amount, timeout: 10, headers: { 'user-agent': 'u'.repeat(3000) } },
      (err, res) => err ? reject(err) : resolve(res))
  })
  t.equal(result.requests.total - result.non2xx, amount, 'every request answered')
  t.equal(result.errors, 0)
  proc.child.kill('SIGTERM')
  t.equal(await proc.exited, 0)
  drain()
  const got = text.split('\n').filter((l) => l !== '')
  const broken = got.filter((l) => { try { JSON.parse(l); return false } catch { return true } })
  t.equal(got.length, amount, 'a line per request')
  t.equal(broken.length, 0, `no line cut or spliced (${broken.length} of ${got.length}: ${JSON.stringify(broken[0]?.slice(0, 120))})`)
})
