import t, { type Test } from 'tap'
import { closeSync, constants, mkdtempSync, openSync, readFileSync, readSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { execFileSync } from 'node:child_process'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { RequestRecord } from '../../src/admin/metrics.js'
import { accessLogCombined, accessLogJson, apacheTime, createAccessLog, createAccessLogTo, isoClock, MAX_BUFFERED, ms3, redactQuery, str } from '../../src/proxy/access-log.js'

const T0 = 1_700_000_000_123

function rec (over: Partial<RequestRecord> = {}): RequestRecord {
  return {
    time: T0, listener: 'https', protocol: 'h2', clientAddress: '203.0.113.7', method: 'GET', host: 'api.example.com',
    path: '/v1/users?id=7', status: 200, bytes: 512, route: 'api', backend: 'users', shard: 'a', server: 'a-1',
    cacheStatus: 'miss', upstreamMs: 11.2041234, totalMs: 12.8709876, retries: 0, ...over
  }
}

function tempDir (t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-access-log-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  return dir
}

const lines = (t: Test, text: string): Record<string, unknown>[] => {
  t.ok(text.endsWith('\n'), 'the log ends with a line feed')
  return text.slice(0, -1).split('\n').map((l) => JSON.parse(l) as Record<string, unknown>)
}

t.test('one JSON line per request in a file, flushed by close()', async (t) => {
  const path = join(tempDir(t), 'access.log')
  const log = createAccessLog({ enabled: true, path })
  t.ok(log)
  log!.write(rec())
  log!.write(rec({
    time: T0 + 5, method: 'POST', path: '/v1/orders', status: 502, bytes: 0, server: 'a-2', cacheStatus: undefined,
    errorCode: 'LB_ERR_UPSTREAM_CONNECT', errorFlag: 'UF', upstreamMs: undefined, totalMs: 3, retries: 2
  }))
  log!.write(rec({ status: 0, route: undefined, backend: undefined, shard: undefined, server: undefined, cacheStatus: undefined, upstreamMs: undefined }))
  await log!.close()
  const [ok, failed, gone] = lines(t, readFileSync(path, 'utf8'))
  t.same(ok, {
    level: 30,
    time: new Date(T0).toISOString(),
    listener: 'https',
    protocol: 'h2',
    client: '203.0.113.7',
    method: 'GET',
    host: 'api.example.com',
    path: '/v1/users?id=7',
    status: 200,
    bytes: 512,
    route: 'api',
    backend: 'users',
    shard: 'a',
    server: 'a-1',
    cache: 'miss',
    upstream_ms: 11.204,
    total_ms: 12.871,
    retries: 0
  }, 'every field, ms rounded to the microsecond, no pid/hostname/msg')
  t.equal(ok!.time, '2023-11-14T22:13:20.123Z', 'ISO time of the request start')
  t.same(Object.keys(ok!).slice(0, 2), ['level', 'time'])
  t.match(failed, { method: 'POST', status: 502, bytes: 0, error: 'LB_ERR_UPSTREAM_CONNECT', flag: 'UF', total_ms: 3, retries: 2 })
  t.notOk('upstream_ms' in failed! || 'cache' in failed!, 'absent fields are left out')
  t.same(Object.keys(gone!).sort(), ['bytes', 'client', 'host', 'level', 'listener', 'method', 'path', 'protocol', 'retries', 'status', 'time', 'total_ms'])
  t.equal(gone!.status, 0)
})

t.test('stored: whether the upstream answer ended up in the cache, beside cache, when known', async (t) => {
  const line = (over: Partial<RequestRecord>) => JSON.parse(accessLogJson(rec(over), isoClock())) as Record<string, unknown>
  t.equal(line({ cacheStored: false }).stored, false)
  t.equal(line({ cacheStored: true }).stored, true)
  t.notOk('stored' in line({ cacheStatus: 'hit', cacheStored: undefined }), 'absent when nothing was to be stored')
  t.match(accessLogJson(rec({ cacheStored: false }), isoClock()), /"cache":"miss","stored":false,/)
})

t.test('client-controlled text cannot break the line', async (t) => {
  const path = join(tempDir(t), 'access.log')
  const log = createAccessLog({ enabled: true, path })!
  const evil = '/x"}\n{"forged":true}\r\n\u2028\\'
  log.write(rec({ path: evil, host: 'h"\n', method: 'G\tET' }))
  await log.close()
  const text = readFileSync(path, 'utf8')
  const parsed = lines(t, text)
  t.equal(parsed.length, 1)
  t.equal(parsed[0]!.path, evil)
  t.equal(parsed[0]!.host, 'h"\n')
  t.notOk('forged' in parsed[0]!)
})

t.test('appends to an existing file; many lines past the 4 KiB buffer all arrive', async (t) => {
  const path = join(tempDir(t), 'access.log')
  writeFileSync(path, '{"earlier":true}\n')
  const log = createAccessLog({ enabled: true, path })!
  for (let i = 0; i < 2000; i++) log.write(rec({ path: `/item/${i}`, bytes: i }))
  await log.close()
  const parsed = lines(t, readFileSync(path, 'utf8'))
  t.equal(parsed.length, 2001)
  t.same(parsed[0], { earlier: true }, 'existing content kept')
  t.same(parsed.slice(1).map((l) => l.bytes), Array.from({ length: 2000 }, (_, i) => i), 'in order, none lost')
})

t.test('reopen: a moved file is opened anew; one that cannot be says why and keeps the open one', async (t) => {
  const dir = tempDir(t)
  const path = join(dir, 'access.log')
  const errors: Error[] = []
  const log = createAccessLog({ enabled: true, path }, { onError: (err) => { errors.push(err) } })!
  log.write(rec({ path: '/before' }))
  renameSync(path, join(dir, 'access.log.1')) // logrotate
  t.equal(log.reopen(), undefined, 'reopened')
  log.write(rec({ path: '/after' }))
  // The folder taken away (a mount gone, a wrong logrotate rule): nothing to reopen into.
  const moved = `${dir}-gone`
  renameSync(dir, moved)
  t.teardown(() => { rmSync(moved, { recursive: true, force: true }) })
  t.match(log.reopen(), /access\.log: ENOENT$/, 'why not, in words')
  log.write(rec({ path: '/still' }))
  await log.close()
  t.same(errors, [], 'not a write failure')
  t.same(lines(t, readFileSync(join(moved, 'access.log.1'), 'utf8')).map((l) => l.path), ['/before'])
  t.same(lines(t, readFileSync(join(moved, 'access.log'), 'utf8')).map((l) => l.path), ['/after', '/still'], 'lines kept going to the open file')
})

t.test('close() is idempotent and later writes are dropped', async (t) => {
  const path = join(tempDir(t), 'access.log')
  const log = createAccessLog({ enabled: true, path })!
  log.write(rec())
  const a = log.close()
  const b = log.close()
  t.equal(a, b, 'the same promise')
  await a
  log.write(rec()) // after close: no throw, no line
  await log.close()
  t.equal(lines(t, readFileSync(path, 'utf8')).length, 1)
})

t.test('disabled: no access log; an unopenable path fails at creation', async (t) => {
  t.equal(createAccessLog({ enabled: false }), undefined)
  t.equal(createAccessLog({ enabled: false, path: '/nonexistent/dir/access.log' }), undefined, 'the path is not touched')
  t.throws(() => createAccessLog({ enabled: true, path: join(tempDir(t), 'missing', 'access.log') }), { code: 'ENOENT' })
})

t.test('createAccessLogTo writes each line to the given stream', async (t) => {
  const chunks: string[] = []
  const log = createAccessLogTo({ write (s: string) { chunks.push(s) } })
  log.write(rec())
  log.write(rec({ status: 404, route: undefined, errorCode: 'LB_ERR_NO_ROUTE', errorFlag: 'NR' }))
  t.equal(chunks.length, 2, 'one write per request')
  t.ok(chunks.every((c) => c.endsWith('\n') && !c.slice(0, -1).includes('\n')))
  t.equal(chunks[0], accessLogJson(rec(), isoClock()), 'the same line the file log writes')
  t.match(JSON.parse(chunks[1]!), { status: 404, error: 'LB_ERR_NO_ROUTE', flag: 'NR' })
  await log.close()
  log.write(rec())
  t.equal(chunks.length, 2, 'nothing after close')
})

t.test('redactQuery: the values of the named parameters, names decoded and case-insensitive; the rest as sent', async (t) => {
  t.equal(redactQuery('a=1&token=s&b=2', ['token']), 'a=1&token=REDACTED&b=2')
  t.equal(redactQuery('TOKEN=s&to%6Ben=t&token', ['token']), 'TOKEN=REDACTED&to%6Ben=REDACTED&token=REDACTED')
  t.equal(redactQuery('a=%E0%A4%A&token=x', ['token']), 'a=%E0%A4%A&token=REDACTED', 'a bad escape elsewhere is left as sent')
  t.equal(redactQuery('a=1', []), 'a=1')
  t.equal(redactQuery('', ['token']), '')
})

t.test('JSON line: the detail fields, query redacted', async (t) => {
  const r = rec({
    path: '/v1/users',
    detail: {
      query: 'id=7&token=abc', httpVersion: 'HTTP/2.0', userAgent: 'ua', referer: 'https://r/', requestId: 'rid',
      requestBytes: 3, tlsVersion: 'TLSv1.3', sni: 'api.example.com', upstream: '10.0.0.1:9000', compression: 'br'
    }
  })
  const line = JSON.parse(accessLogJson(r, isoClock(), ['token'])) as Record<string, unknown>
  t.match(line, {
    time: '2023-11-14T22:13:20.123Z', path: '/v1/users', query: 'id=7&token=REDACTED', request_bytes: 3, user_agent: 'ua', referer: 'https://r/',
    request_id: 'rid', tls_version: 'TLSv1.3', sni: 'api.example.com', upstream: '10.0.0.1:9000', shard: 'a', cache: 'miss', compression: 'br'
  })
  const plain = JSON.parse(accessLogJson(rec({ detail: { query: '', httpVersion: 'HTTP/1.1', requestId: 'r2' } }), isoClock())) as Record<string, unknown>
  t.notOk('compression' in plain, 'absent when nothing was compressed')
})

t.test('combined: Apache\'s line, quotes and control bytes escaped, - for nothing', async (t) => {
  t.equal(apacheTime(T0), '[14/Nov/2023:22:13:20 +0000]')
  const r = rec({
    path: '/x', status: 404, bytes: 0,
    detail: { query: 'token=1&q=2', httpVersion: 'HTTP/1.1', userAgent: 'a "b"\n', requestId: 'r' }
  })
  t.equal(accessLogCombined(r, ['token']), '203.0.113.7 - - [14/Nov/2023:22:13:20 +0000] "GET /x?token=REDACTED&q=2 HTTP/1.1" 404 - "-" "a \\"b\\"\\x0a"\n')
})

t.test('ms3: the text of Math.round(ms * 1000) / 1000, for every microsecond in a range and for odd values', async (t) => {
  const old = (ms: number): string => String(Math.round(ms * 1000) / 1000)
  let differ = 0
  for (let us = 0; us < 20_000; us++) if (ms3(us / 1000) !== old(us / 1000)) differ++
  t.equal(differ, 0, 'every µs below 20 ms')
  for (const ms of [0, 0.0004, 0.0005, 1.2, 1.204, 11.2041234, 12.8709876, 999.9996, 1234567.891, 2147483.647, 2147483.648, 1e12 + 0.5, -0.3, -5, NaN, Infinity]) {
    t.equal(ms3(ms), old(ms), String(ms))
  }
})

t.test('str: what JSON.stringify writes, plain text or not', async (t) => {
  const values = ['', 'api', '203.0.113.7', '/v1/users?id=7&x=%20', 'a"b', 'a\\b', 'tab\there', 'nl\n', '\x00', '\x1f', '\x7f', 'caf\u00e9',
    '\u2028', '\ud83d\ude00', '\ud800', 'lone \udc00 low', '~ !#$&\'()*+,;=']
  // The message in ASCII: a raw U+2028 in it breaks the TAP line (CI's reporter).
  const label = (v: string): string => JSON.stringify(v).replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
  for (const v of values) t.equal(str(v), JSON.stringify(v), label(v))
})

t.test('a destination that takes nothing: lines past MAX_BUFFERED are dropped and counted, the rest arrive once it reads', async (t) => {
  // A FIFO held open for reading by the test, which reads nothing: a stuck log shipper.
  const fifo = join(tempDir(t), 'access.fifo')
  execFileSync('mkfifo', [fifo])
  // O_RDWR: the log's open for writing does not wait for a reader; O_NONBLOCK: reading never blocks the
  // event loop the log needs to go on writing (an empty pipe is EAGAIN, and the test waits a moment).
  const reader = openSync(fifo, constants.O_RDWR | constants.O_NONBLOCK)
  t.teardown(() => { try { closeSync(reader) } catch {} })
  let dropped = 0
  const log = createAccessLog({ enabled: true, path: fifo }, { onDrop: () => { dropped++ } })!
  const long = rec({ path: '/p?' + 'q'.repeat(8000) })
  const lineBytes = accessLogJson(long, isoClock()).length
  const n = Math.ceil((MAX_BUFFERED * 1.5) / lineBytes)
  for (let i = 0; i < n; i++) log.write(long)
  t.ok(dropped > 0, `${dropped} of ${n} lines dropped`)
  t.ok(dropped < n, 'the first 16 MiB are kept')
  // The reader catches up: what was kept arrives, whole lines.
  let got = 0
  const buf = Buffer.alloc(1 << 20)
  const closing = log.close()
  for (let tries = 0; tries < 10_000 && got < n - dropped; tries++) {
    let k = 0
    try {
      k = readSync(reader, buf, 0, buf.length, null)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err
    }
    for (let i = 0; i < k; i++) if (buf[i] === 10) got++
    if (k === 0) await new Promise((resolve) => setTimeout(resolve, 5))
  }
  await closing
  t.equal(got, n - dropped, 'every kept line arrived')
})
