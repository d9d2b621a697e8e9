// parseConfig / loadConfig end to end: files on disk, YAML syntax errors,
// defaults, freezing, the example config, certificate file checks.

import { execFileSync } from 'node:child_process'
import { truncateSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import type { Test } from 'tap'
import { ConfigError, formatIssue } from '../../src/errors.js'
import { certificateWhen, loadConfig, parseConfig } from '../../src/config/load.js'
import { generateCertificate } from '../../src/certs.js'
import type { Config } from '../../src/config/schema.js'
import { testCertificatePair } from '../helpers/certs.js'

const root = fileURLToPath(new URL('../../', import.meta.url))
const fixture = (name: string): string => join(root, 'test/fixtures/config', name)
const example = join(root, 'config/example.yaml')

/** Runs `fn`, which must throw a ConfigError, and returns it. */
async function configError (t: Test, fn: () => unknown): Promise<ConfigError> {
  try {
    await fn()
  } catch (err) {
    if (err instanceof ConfigError) return err
    throw err
  }
  t.fail('expected a ConfigError')
  return new ConfigError('', [])
}

const MINIMAL = 'listeners:\n  - bind: ":0"\n'

t.test('a file with three mistakes yields exactly those three issues', async (t) => {
  const file = fixture('three-mistakes.yaml')
  const err = await configError(t, () => loadConfig(file))
  t.equal(err.code, 'LB_ERR_CONFIG')
  t.equal(err.file, file)
  t.same(err.issues.map((i) => [i.path, i.line, i.column]), [
    ['routes[0].match.pathPrefx', 13, 7],
    ['routes[1].backend', 16, 14],
    ['backends.api.servers[1].url', 22, 14]
  ])
  t.match(err.issues[0]?.message, 'did you mean `pathPrefix`?')
  t.match(err.issues[1]?.message, 'unknown backend `frontend` (known backends: api)')
  t.equal(err.issues[2]?.message, 'expected an http(s) URL, got "10.0.0.2:9002"')
  // The printed form: one issue per line, file:line:column path: message.
  t.match(err.message, /three-mistakes\.yaml: 3 configuration errors\n/)
  t.ok(err.message.includes(`${file}:22:14 backends.api.servers[1].url: expected an http(s) URL, got "10.0.0.2:9002"`))
  t.equal(formatIssue('config.yaml', err.issues[2]!), 'config.yaml:22:14 backends.api.servers[1].url: expected an http(s) URL, got "10.0.0.2:9002"')
})

t.test('YAML syntax errors carry line and column', async (t) => {
  t.test('an unterminated quote', async (t) => {
    const err = await configError(t, () => parseConfig('listeners:\n  - bind: ":0\n  - bind: x\n', 'config.yaml'))
    t.same(err.issues, [{ path: 'listeners[0].bind', message: 'Missing closing "quote', line: 2, column: 11 }],
      'points at the opening quote, not at the end of the file')
  })
  t.test('a nested mapping on one line', async (t) => {
    const err = await configError(t, () => parseConfig(`${MINIMAL}proxyName: a: b\n`, 'config.yaml'))
    t.same(err.issues, [{ path: 'proxyName.a', message: 'Nested mappings are not allowed in compact mappings', line: 3, column: 12 }])
  })
  t.test('a tab used for indentation', async (t) => {
    const err = await configError(t, () => parseConfig('listeners:\n\t- bind: ":0"\n', 'config.yaml'))
    t.match(err.issues[0], { line: 2, column: 1, message: /tab/i })
  })
  t.test('a duplicate key names its path', async (t) => {
    const text = 'listeners:\n  - bind: ":0"\nbackends:\n  api:\n    servers: [{ url: "http://a" }]\n  api:\n    servers: [{ url: "http://b" }]\n'
    const err = await configError(t, () => parseConfig(text, 'config.yaml'))
    t.same(err.issues, [{ path: 'backends.api', message: 'Map keys must be unique', line: 6, column: 3 }])
  })
  t.test('a duplicate key right after a nested value names itself, not that value', async (t) => {
    const text = 'listeners:\n  - bind: ":0"\nroutes: []\nbackends:\n  b:\n    servers: [{ url: "http://a" }]\nroutes: []\n'
    const err = await configError(t, () => parseConfig(text, 'config.yaml'))
    t.same(err.issues, [{ path: 'routes', message: 'Map keys must be unique', line: 7, column: 1 }])
  })
  t.test('the cascade after the first error is dropped', async (t) => {
    const err = await configError(t, () => parseConfig('a: [1, 2\nb: }\nlisteners:\n  - bind: 1\n', 'config.yaml'))
    t.equal(err.issues.length, 1, JSON.stringify(err.issues))
    t.equal(err.issues[0]?.line, 2)
  })
  t.test('a second document is refused at its start, not inside the first one\'s last value', async (t) => {
    const one = 'the config must be one YAML document; a second one starts here (remove it, or merge it into the first)'
    const nested = 'listeners:\n  - bind: ":0"\nbackends:\n  api:\n    servers: [{ url: "http://a" }]\n'
    for (const [what, text, line] of [
      ['after ---', `${MINIMAL}---\n${MINIMAL}`, 3],
      ['after a nested value', `${nested}---\nlisteners: []\n`, 6],
      ['itself broken', `${nested}\n# more\n---\nlisteners: [oops\nx: }\n`, 8],
      ['after ...', `${nested}...\nroutes: []\n`, 7],
      ['an empty one after a trailing ---', `${nested}---\n`, 6]
    ] as const) {
      const err = await configError(t, () => parseConfig(text, 'config.yaml'))
      t.same(err.issues, [{ path: '', message: one, line, column: 1 }], what)
    }
    t.doesNotThrow(() => parseConfig(`---\n${MINIMAL}...\n`, 'config.yaml'), 'one document with its explicit start and end is fine')
  })
})

t.test('defaults are applied', async (t) => {
  const c = parseConfig(MINIMAL + y(`
    routes:
      - backend: api
    backends:
      api:
        servers: [{ url: "http://127.0.0.1:9001" }]
  `), 'conf/config.yaml')
  t.same(c, {
    source: resolve('conf/config.yaml'),
    proxyName: 'switchyard',
    listeners: [{ name: 'listener-0', bind: ':0', host: '0.0.0.0', port: 0, maxTunnels: 10_000 }],
    trustedProxies: [],
    forwarding: { xForwarded: true, forwarded: false, via: true },
    limits: { maxHeaderBytes: 16_384, maxHeaderCount: 100, maxUriBytes: 8192 },
    timeouts: { clientHeaders: 30_000, clientIdle: 60_000, drain: 30_000, clientBody: 30_000, request: 0, clientSend: 60_000, tunnel: 3_600_000, tunnelFin: 30_000 },
    pathNormalization: { mergeSlashes: false, escapedSlashes: 'keep' },
    routes: [{
      name: 'route-0',
      index: 0,
      match: { pathPrefix: '/', methods: [], listeners: [], headers: {} },
      backend: 'api',
      rewrite: {},
      requestHeaders: { set: {}, remove: [] },
      responseHeaders: { set: {}, remove: [] },
      earlyHints: [],
      consistency: 'eventual',
      allow: [],
      deny: []
    }],
    backends: {
      api: {
        name: 'api',
        shards: [{ name: 'default', servers: [{ name: 'server-0', url: 'http://127.0.0.1:9001', weight: 1, role: 'replica' }] }],
        balance: { algorithm: 'roundRobin' },
        passHostHeader: true,
        timeouts: { connect: 5000, headers: 60_000, body: 60_000, keepAlive: 4000, queue: 5000 },
        connections: 128,
        protocol: 'http1',
        retries: { attempts: 2, nonIdempotent: false, budgetPercent: 0.2, minRetryConcurrency: 3, bufferBodyBytes: 65_536 },
        maxConn: 0,
        maxQueue: 1024,
        slowStart: 0,
        panicThreshold: 0
      }
    },
    admin: { enabled: true, bind: '127.0.0.1:9901', host: '127.0.0.1', port: 9901 },
    accessLog: { enabled: true, format: 'json', redactQuery: [] },
    watchConfig: false,
    workers: 'auto',
    requestId: { header: 'x-request-id' },
    tracing: { propagate: true }
  })
  for (const key of ['shardBy', 'sticky', 'healthCheck', 'outlierDetection']) {
    t.notOk(Object.hasOwn(c.backends.api!, key), `absent optional ${key} is omitted, not undefined`)
  }
  t.notOk(Object.hasOwn(c.backends.api!.shards[0]!.servers[0]!, 'maxConn'))
  t.notOk(Object.hasOwn(c.routes[0]!.match, 'host'))
  t.notOk(Object.hasOwn(c.admin, 'token'))
  t.notOk(Object.hasOwn(c.accessLog, 'path'))
})

t.test('the result is deep-frozen', async (t) => {
  const c = await loadConfig(example, { checkFiles: false })
  let objects = 0
  const walk = (v: unknown, path: string): void => {
    if (v === null || typeof v !== 'object') return
    objects++
    if (!Object.isFrozen(v)) t.fail(`not frozen: ${path}`)
    for (const [k, child] of Object.entries(v)) walk(child, `${path}.${k}`)
  }
  walk(c, 'config')
  t.ok(objects > 50, `walked ${objects} objects`)
  t.throws(() => { (c as { proxyName: string }).proxyName = 'x' }, TypeError)
  t.throws(() => { (c.listeners as ListenerArray).push(c.listeners[0]!) }, TypeError)
  t.throws(() => { (c.backends.api!.shards[0]!.servers[0] as { weight: number }).weight = 9 }, TypeError)
})

type ListenerArray = Array<Config['listeners'][number]>

t.test('config/example.yaml is valid and shows every feature', async (t) => {
  const c = await loadConfig(example, { checkFiles: false })
  t.equal(c.source, example)
  t.same(c.listeners.map((l) => [l.name, l.tls !== undefined]), [['https', true], ['http', false], ['http-to-https', false], ['behind-lb', false]])
  t.same(c.listeners[3]?.proxyProtocol, { trustedSources: ['10.0.0.0/8'], timeout: 5000 }, 'a listener behind an L4 balancer')
  t.same(c.listeners[2]?.redirect, { status: 301, scheme: 'https', port: 8443 }, 'a listener that redirects to https')
  t.same(c.routes.find((r) => r.redirect !== undefined)?.redirect, { status: 308, host: 'example.com' }, 'a route that redirects')
  t.same(c.routes.find((r) => r.compression !== undefined)?.compression, {
    algorithms: ['br', 'gzip'], minBytes: 1024, types: ['text/*', 'application/json', 'application/javascript', 'image/svg+xml'],
    level: { gzip: 6, br: 4, zstd: 3 }
  }, 'a route that compresses')
  t.same(c.listeners[0]?.tls?.certificates.map((x) => x.cert), [join(root, 'certs/dev.crt'), join(root, 'certs/dev.crt')],
    'cert paths resolve against the config folder')
  t.equal(c.listeners[0]?.tls?.certificates[0]?.key, join(root, 'certs/dev.key'))
  t.ok(c.trustedProxies.length > 0)
  t.ok(c.routes.some((r) => r.match.host?.startsWith('*.') === true), 'a wildcard host route')
  t.ok(c.routes.some((r) => r.match.host !== undefined && !r.match.host.startsWith('*')), 'an exact host route')
  t.ok(c.routes.some((r) => r.match.host === undefined), 'an any-host route')
  t.ok(c.routes.some((r) => r.match.methods.length > 0 && Object.keys(r.match.headers).length > 0))
  t.ok(c.routes.some((r) => r.rewrite.stripPrefix !== undefined && r.rewrite.addPrefix !== undefined))
  t.ok(c.routes.some((r) => r.match.pathRegex !== undefined && r.rewrite.regex?.pattern === r.match.pathRegex), 'a regex route with a regex rewrite')
  t.ok(c.routes.some((r) => Object.keys(r.requestHeaders.set).length > 0 && r.responseHeaders.remove.length > 0))
  const backends = Object.values(c.backends)
  t.ok(backends.some((b) => b.shards.length === 1 && b.shards[0]?.name === 'default'), 'a plain servers backend')
  t.ok(backends.some((b) => b.shards.length > 1 && b.shardBy !== undefined), 'a sharded backend')
  t.ok(backends.some((b) => b.balance.algorithm === 'leastConn' && b.sticky !== undefined && b.healthCheck !== undefined &&
    b.outlierDetection !== undefined && b.retries.attempts > 0 && b.maxConn > 0 && b.maxQueue > 0 && b.slowStart > 0),
  'a leastConn backend with sticky, health checks, outlier detection, retries, limits and slow start')
  t.ok(backends.some((b) => b.shards.length > 1 && b.balance.algorithm === 'ipHash' && b.balance.boundedLoad > 0),
    'a sharded ipHash backend with bounded load')
  t.ok(backends.some((b) => b.shards.some((s) => s.servers.some((v) => v.maxConn !== undefined))), 'a server maxConn')
  t.ok(backends.some((b) => b.tls?.ca === join(root, 'certs/dev.crt') && b.tls.servername !== undefined &&
    b.tls.cert !== undefined && b.tls.key !== undefined), 'an https backend with every tls option')
  t.same([c.admin, c.accessLog, c.watchConfig, c.timeouts.drain],
    [{ enabled: true, bind: '127.0.0.1:9901', host: '127.0.0.1', port: 9901 }, { enabled: true, format: 'json', redactQuery: ['token', 'access_token', 'api_key'] },
      false, 30_000],
    'admin, accessLog (with redactions), watchConfig and timeouts.drain, written at their defaults')
  // The same text through parseConfig, without I/O.
  const { readFile } = await import('node:fs/promises')
  t.same(parseConfig(await readFile(example, 'utf8'), example, { checkFiles: false }), c)
})

t.test('certificate files are checked by loadConfig', async (t) => {
  const tls = (cert: string, key: string): string =>
    `listeners:\n  - bind: "127.0.0.1:0"\n    tls:\n      cert: ${cert}\n      key: ${key}\n`

  t.test('a missing key file is reported at its key', async (t) => {
    const dir = t.testdir({ 'config.yaml': tls('certs/a.crt', 'certs/a.key'), certs: { 'a.crt': 'PEM' } })
    const file = join(dir, 'config.yaml')
    const err = await configError(t, () => loadConfig(file))
    t.same(err.issues, [{
      path: 'listeners[0].tls.key',
      message: `cannot read ${join(dir, 'certs/a.key')}: no such file`,
      line: 5,
      column: 12
    }])
  })
  t.test('the same check without I/O is skipped, or done synchronously by parseConfig', async (t) => {
    const dir = t.testdir({ 'config.yaml': tls('a.crt', 'a.key') })
    const file = join(dir, 'config.yaml')
    const c = await loadConfig(file, { checkFiles: false })
    t.equal(c.listeners[0]?.tls?.certificates[0]?.cert, join(dir, 'a.crt'))
    const text = tls('a.crt', 'a.key')
    t.equal(parseConfig(text, file).listeners.length, 1, 'parseConfig does no file checks by default')
    const err = await configError(t, () => parseConfig(text, file, { checkFiles: true }))
    t.same(err.issues.map((i) => [i.path, i.line]), [['listeners[0].tls.cert', 4], ['listeners[0].tls.key', 5]])
  })
  t.test('present files pass and resolve against the config folder', async (t) => {
    const pair = testCertificatePair()
    const dir = t.testdir({ conf: { 'config.yaml': tls('../certs/a.crt', 'certs/a.key'), certs: { 'a.key': pair.keyPem } }, certs: { 'a.crt': pair.certPem } })
    const c = await loadConfig(join(dir, 'conf/config.yaml'))
    t.same(c.listeners[0]?.tls?.certificates[0], { cert: join(dir, 'certs/a.crt'), key: join(dir, 'conf/certs/a.key'), serverNames: [] })
  })
  t.test('a directory is not a certificate', async (t) => {
    const dir = t.testdir({ 'config.yaml': tls('certs', 'a.key'), certs: {}, 'a.key': 'PEM' })
    const err = await configError(t, () => loadConfig(join(dir, 'config.yaml')))
    t.same(err.issues.map((i) => [i.path, i.message]), [['listeners[0].tls.cert', `cannot read ${join(dir, 'certs')}: not a regular file`]])
  })
  t.test('file issues come with every other issue, in file order', async (t) => {
    const dir = t.testdir({
      'config.yaml': 'proxyName: "a b"\n' + tls('a.crt', 'a.key').replace('listeners:', 'listeners:\n  - bind: nope')
    })
    const err = await configError(t, () => loadConfig(join(dir, 'config.yaml')))
    t.same(err.issues.map((i) => i.path), ['proxyName', 'listeners[0].bind', 'listeners[1].tls.cert', 'listeners[1].tls.key'])
  })
})

t.test('certificate pairs are loaded as a TLS listener loads them', async (t) => {
  const a = testCertificatePair()
  const b = testCertificatePair(['other.test'])
  const listener = (i: number, cert: string, key: string): string =>
    `  - name: l${i}\n    bind: "127.0.0.1:0"\n    tls:\n      cert: ${cert}\n      key: ${key}\n`

  t.test('a garbage certificate and a key of another certificate, each at its line, with the other mistakes', async (t) => {
    const dir = t.testdir({
      'config.yaml': 'proxyName: "a b"\nlisteners:\n' + listener(0, 'garbage.crt', 'a.key') + listener(1, 'a.crt', 'b.key'),
      'garbage.crt': 'this is not a certificate\n',
      'a.crt': a.certPem,
      'a.key': a.keyPem,
      'b.key': b.keyPem
    })
    const err = await configError(t, () => loadConfig(join(dir, 'config.yaml')))
    t.same(err.issues.map((i) => [i.path, i.line, i.column]), [
      ['proxyName', 1, 12],
      ['listeners[0].tls.cert', 6, 13],
      ['listeners[1].tls.key', 12, 12]
    ])
    t.equal(err.issues[1]?.message,
      `TLS certificate file ${join(dir, 'garbage.crt')} is not a valid PEM certificate: no \`-----BEGIN CERTIFICATE-----\` block found`)
    t.equal(err.issues[2]?.message, `TLS key file ${join(dir, 'b.key')} does not match certificate file ${join(dir, 'a.crt')}`)
  })
  t.test('swapped files and a truncated certificate, in a certificates list', async (t) => {
    const text = y(`
      listeners:
        - bind: "127.0.0.1:0"
          tls:
            certificates:
              - { cert: a.key, key: a.crt }
              - { cert: cut.crt, key: a.key }
    `)
    const dir = t.testdir({ 'config.yaml': text, 'a.crt': a.certPem, 'a.key': a.keyPem, 'cut.crt': a.certPem.slice(0, 200) })
    const err = await configError(t, () => loadConfig(join(dir, 'config.yaml')))
    t.same(err.issues.map((i) => [i.path, i.line]), [['listeners[0].tls.certificates[0].cert', 5], ['listeners[0].tls.certificates[1].cert', 6]])
    t.match(err.issues[0]?.message, /holds a private key, not a certificate \(are cert and key swapped\?\)/)
    t.match(err.issues[1]?.message, new RegExp(`TLS certificate file .*cut\\.crt is not a valid PEM certificate`))
  })
  t.test('parseConfig with checkFiles does the same, synchronously; without it no pair is read', async (t) => {
    const dir = t.testdir({ 'a.crt': a.certPem, 'b.key': b.keyPem })
    const text = 'listeners:\n' + listener(0, 'a.crt', 'b.key')
    const file = join(dir, 'config.yaml')
    t.same(issuesAt(() => parseConfig(text, file, { checkFiles: true })), [['listeners[0].tls.key', 6]])
    t.equal(parseConfig(text, file).listeners.length, 1)
  })
  t.test('a good pair passes', async (t) => {
    const dir = t.testdir({ 'config.yaml': 'listeners:\n' + listener(0, 'a.crt', 'a.key'), 'a.crt': a.certPem, 'a.key': a.keyPem })
    const warnings: string[] = []
    t.equal((await loadConfig(join(dir, 'config.yaml'), { onWarning: (w) => warnings.push(w.message) })).listeners[0]?.tls?.certificates[0]?.cert,
      join(dir, 'a.crt'))
    t.same(warnings, [], 'valid for long: nothing to say')
  })
  t.test('a certificate about to expire loads, with a warning at its line', async (t) => {
    const soon = generateCertificate({ names: ['localhost'], days: 5 })
    const dir = t.testdir({ 'config.yaml': 'listeners:\n' + listener(0, 's.crt', 's.key'), 's.crt': soon.certPem, 's.key': soon.keyPem })
    const warnings: Array<[string, number, string]> = []
    await loadConfig(join(dir, 'config.yaml'), { onWarning: (w) => warnings.push([w.path, w.line, w.message]) })
    t.match(warnings, [['listeners[0].tls.cert', 5, /^the certificate expires on \d{4}-.*, in [45] days$/]])
  })
})

t.test('certificateWhen: expired, not yet valid, or within 14 days of its end', async (t) => {
  const now = Date.UTC(2026, 5, 1)
  const cert = (from: string, to: string) => ({ validFrom: from, validTo: to })
  t.equal(certificateWhen(cert('Jan  1 00:00:00 2026 GMT', 'Jan  1 00:00:00 2027 GMT'), now), undefined)
  t.match(certificateWhen(cert('Jan  1 00:00:00 2025 GMT', 'Jan  1 00:00:00 2026 GMT'), now), /^the certificate expired on 2026-01-01.*clients refuse it$/)
  t.match(certificateWhen(cert('Jul  1 00:00:00 2026 GMT', 'Jan  1 00:00:00 2027 GMT'), now), /not valid before 2026-07-01/)
  t.match(certificateWhen(cert('Jan  1 00:00:00 2026 GMT', 'Jun  2 00:00:00 2026 GMT'), now), /expires on 2026-06-02.*in 1 day$/)
  t.match(certificateWhen(cert('Jan  1 00:00:00 2026 GMT', 'Jun 14 00:00:00 2026 GMT'), now), /in 13 days$/)
  t.equal(certificateWhen(cert('Jan  1 00:00:00 2026 GMT', 'Jun 16 00:00:00 2026 GMT'), now), undefined, '15 days left: quiet')
})

t.test('an unreadable config file is a ConfigError too', async (t) => {
  const dir = t.testdir({})
  const file = join(dir, 'nope.yaml')
  const err = await configError(t, () => loadConfig(file))
  t.same(err.issues, [{ path: '', message: 'cannot read the config file: no such file', line: 0, column: 0 }])
  t.equal(err.message, `${file}: 1 configuration error\n${file} (root): cannot read the config file: no such file`)
})

t.test('a config path that is a FIFO, a folder or a huge file is refused, never read', async (t) => {
  const dir = t.testdir({ folder: {}, 'huge.yaml': '' })
  const fifo = join(dir, 'fifo.yaml')
  execFileSync('mkfifo', [fifo])
  // No writer ever opens the FIFO: a read of it would wait for ever, and this test with it.
  t.same((await configError(t, () => loadConfig(fifo))).issues.map((i) => i.message), ['cannot read the config file: not a regular file'])
  t.same((await configError(t, () => loadConfig(join(dir, 'folder')))).issues.map((i) => i.message), ['cannot read the config file: is a directory'])
  truncateSync(join(dir, 'huge.yaml'), 17 * 1024 * 1024)
  t.match((await configError(t, () => loadConfig(join(dir, 'huge.yaml')))).issues[0]?.message, /^cannot read the config file: 17825792 bytes, more than the 16777216 a config file may hold$/)
})

/** [path, line] of each issue `fn` throws. */
function issuesAt (fn: () => unknown): Array<[string, number]> {
  try {
    fn()
  } catch (err) {
    if (err instanceof ConfigError) return err.issues.map((i) => [i.path, i.line])
    throw err
  }
  return []
}

/** Drops the first newline and the common indentation. */
function y (text: string): string {
  const lines = text.replace(/^\n/, '').split('\n')
  const indent = Math.min(...lines.filter((l) => l.trim() !== '').map((l) => l.length - l.trimStart().length))
  return lines.map((l) => l.slice(indent)).join('\n')
}
