// The operational top-level options — admin, accessLog, watchConfig — and
// timeouts.drain, through parseConfig: each bad input must yield the issue at
// the exact YAML path and line, and nothing else.

import { join, resolve } from 'node:path'
import t from 'tap'
import { LineCounter, parseDocument } from 'yaml'
import { ConfigError } from '../../src/errors.js'
import type { ConfigIssue } from '../../src/errors.js'
import { loadConfig, parseConfig } from '../../src/config/load.js'
import { BASE, issuesOf, only } from '../helpers/config.js'
import type { AdminConfig, Config } from '../../src/config/schema.js'
import { validateDocument } from '../../src/config/validate.js'


const parse = (text: string, file = 'config.yaml'): Config => parseConfig(text, file)
const adminOf = (text: string): AdminConfig => parse(BASE + text).admin

const DEFAULT_ADMIN: AdminConfig = { enabled: true, bind: '127.0.0.1:9901', host: '127.0.0.1', port: 9901 }
const TOKEN = '0123456789abcdef'
const NOT_LOOPBACK = 'is not a loopback address, and the admin API can change routing and purge the cache: ' +
  'bind it to loopback (127.0.0.1, ::1 or localhost), or set admin.token'

t.test('admin', async (t) => {
  t.test('absent, empty, true or {}: on at 127.0.0.1:9901', async (t) => {
    for (const text of ['', 'admin:\n', 'admin: true\n', 'admin: {}\n']) {
      const admin = adminOf(text)
      t.same(admin, DEFAULT_ADMIN, JSON.stringify(text))
      t.notOk(Object.hasOwn(admin, 'token'), 'no token key')
    }
  })
  t.test('false: off, the bind fields keep their defaults', async (t) => {
    t.same(adminOf('admin: false\n'), { ...DEFAULT_ADMIN, enabled: false })
  })
  t.test('loopback binds need no token, port 0 is allowed', async (t) => {
    t.same(adminOf('admin: { bind: "127.0.0.2:0" }\n'), { enabled: true, bind: '127.0.0.2:0', host: '127.0.0.2', port: 0 })
    t.match(adminOf('admin: { bind: "[::1]:9000" }\n'), { bind: '[::1]:9000', host: '::1', port: 9000 })
    t.match(adminOf('admin: { bind: "localhost:9000" }\n'), { host: 'localhost', port: 9000 })
    t.match(adminOf('admin: { bind: "LocalHost:9000" }\n'), { host: 'LocalHost' })
    t.match(adminOf('admin: { bind: "127.255.0.1:9000" }\n'), { host: '127.255.0.1' })
    t.match(adminOf('admin: { bind: "[0:0:0:0:0:0:0:1]:9000" }\n'), { host: '0:0:0:0:0:0:0:1' })
    t.match(adminOf('admin: { bind: "[::ffff:127.0.0.1]:9000" }\n'), { host: '::ffff:127.0.0.1' })
  })
  t.test('a token is kept, with or without a bind', async (t) => {
    t.same(adminOf(`admin: { token: "${TOKEN}" }\n`), { ...DEFAULT_ADMIN, token: TOKEN })
    t.same(adminOf(`admin:\n  bind: ":9901"\n  token: ${TOKEN}!~\n`),
      { enabled: true, bind: ':9901', host: '0.0.0.0', port: 9901, token: `${TOKEN}!~` })
  })
  t.test('a non-loopback bind without a token is refused at admin.bind', async (t) => {
    only(t, BASE + 'admin:\n  bind: ":9901"\n', 'admin.bind', 8, `\`:9901\` ${NOT_LOOPBACK}`)
    for (const bind of ['0.0.0.0:9901', '10.0.0.1:9901', '128.0.0.1:9901', '[::]:9901', '[::2]:9901', 'admin.example.com:9901']) {
      only(t, BASE + `admin: { bind: "${bind}" }\n`, 'admin.bind', 7, `\`${bind}\` ${NOT_LOOPBACK}`)
    }
    t.test('an empty token is no token', async (t) => {
      only(t, BASE + 'admin:\n  bind: "0.0.0.0:9901"\n  token:\n', 'admin.bind', 8, NOT_LOOPBACK)
    })
  })
  t.test('a bad token is reported without its value, and alone', async (t) => {
    const tokenIssue = (text: string): ConfigIssue | undefined => {
      const issues = issuesOf(BASE + text)
      t.equal(issues.length, 1, JSON.stringify(issues))
      return issues[0]
    }
    let i = tokenIssue('admin:\n  bind: "0.0.0.0:9901"\n  token: s3cret\n')
    t.match(i, { path: 'admin.token', line: 9, message: 'expected a token of at least 16 visible ASCII characters, no spaces, got 6 characters' })
    t.notMatch(i?.message, 's3cret')
    i = tokenIssue('admin: { token: "0123456789 abcdefgh" }\n')
    t.match(i, { path: 'admin.token', line: 7, message: /got a space or a character that is not visible ASCII$/ })
    t.notMatch(i?.message, 'abcdefgh')
    i = tokenIssue('admin: { token: "0123456789abcdefé" }\n')
    t.match(i, { path: 'admin.token', message: /not visible ASCII$/ })
    i = tokenIssue('admin: { token: 12345678901234567890 }\n')
    t.match(i, { path: 'admin.token', line: 7, message: /, got a number \(quote the token\)$/ })
    t.notMatch(i?.message, '123456')
    i = tokenIssue('admin: { token: [a] }\n')
    t.match(i, { path: 'admin.token', message: /, got a list$/ })
  })
  t.test('bad binds show the accepted forms', async (t) => {
    only(t, BASE + 'admin: { bind: nope }\n', 'admin.bind', 7, /^expected host:port like 127\.0\.0\.1:8443, .*got "nope"$/)
    only(t, BASE + 'admin:\n  bind: 9901\n', 'admin.bind', 8, /^expected host:port .*, got 9901$/)
    only(t, BASE + 'admin: { bind: "127.0.0.1:65536" }\n', 'admin.bind', 7, /port 0-65535/)
  })
  t.test('keys and forms', async (t) => {
    only(t, BASE + 'admin:\n  tokn: x\n', 'admin.tokn', 8, 'unknown key `tokn`; did you mean `token`?')
    only(t, BASE + 'admin:\n  port: 9901\n', 'admin.port', 8, 'unknown key `port`; expected one of bind, token')
    only(t, BASE + 'admin:\n  enabled: false\n', 'admin.enabled', 8, 'unknown key `enabled`; write `admin: false` to turn the admin API off')
    only(t, BASE + 'admin: "127.0.0.1:9901"\n', 'admin', 7,
      'expected a mapping (bind, token), true (127.0.0.1:9901) or false (off), got "127.0.0.1:9901"')
    only(t, BASE + 'admin: []\n', 'admin', 7, /got a list$/)
  })
  t.test('the admin bind may not be a listener bind', async (t) => {
    const two = 'listeners:\n  - bind: ":0"\n  - { name: web, bind: "127.0.0.1:8080" }\n'
    only(t, two + 'admin: { bind: "127.0.0.1:8080" }\n', 'admin.bind', 4,
      'admin.bind `127.0.0.1:8080` is the bind address of listeners[1] (`127.0.0.1:8080`); give the admin API its own address')
    t.test('compared after normalizing, as listeners are', async (t) => {
      only(t, 'listeners:\n  - bind: "LOCALHOST:8080"\nadmin: { bind: "localhost:8080" }\n', 'admin.bind', 3,
        'admin.bind `localhost:8080` is the bind address of listeners[0] (`LOCALHOST:8080`)')
      only(t, 'listeners:\n  - bind: "[::1]:8080"\nadmin:\n  bind: "[::1]:8080"\n', 'admin.bind', 4, /listeners\[0\] \(`\[::1\]:8080`\)/)
      const issues = issuesOf(`listeners:\n  - bind: ":8080"\nadmin: { bind: "0.0.0.0:8080", token: ${TOKEN} }\n`)
      t.same(issues.map((i) => [i.path, i.line]), [['admin.bind', 3]])
    })
    t.test('a listener on the default admin address is reported at the listener', async (t) => {
      const text = 'listeners:\n  - bind: ":0"\n  - bind: "127.0.0.1:9901"\n'
      const message = '`127.0.0.1:9901` is the admin API\'s default bind address (admin.bind `127.0.0.1:9901`); ' +
        'use another address here, or set admin.bind (or `admin: false`)'
      only(t, text, 'listeners[1].bind', 3, message)
      only(t, text + `admin: { token: ${TOKEN} }\n`, 'listeners[1].bind', 3, message)
      only(t, text + 'admin: true\n', 'listeners[1].bind', 3, message)
      t.equal(parse(text + 'admin: false\n').admin.enabled, false, 'no admin listener, no clash')
      t.equal(parse(text + 'admin: { bind: "127.0.0.1:9902" }\n').admin.port, 9902)
    })
    t.test('port 0 never clashes', async (t) => {
      t.equal(parse('listeners:\n  - bind: "127.0.0.1:0"\nadmin: { bind: "127.0.0.1:0" }\n').admin.port, 0)
    })
    t.test('a duplicate listener bind is reported once, not again for the admin', async (t) => {
      const issues = issuesOf('listeners:\n  - bind: "127.0.0.1:8080"\n  - bind: "127.0.0.1:8080"\nadmin: { bind: "127.0.0.1:8080" }\n')
      t.same(issues.map((i) => [i.path, i.line]), [['listeners[1].bind', 3], ['admin.bind', 4]])
      t.match(issues[1]?.message, 'listeners[0]')
    })
  })
})

t.test('accessLog', async (t) => {
  const logOf = (text: string, file = 'config.yaml'): Config['accessLog'] => parse(BASE + text, file).accessLog
  /** The defaults of the keys a case does not write. */
  const D = { format: 'json', redactQuery: [] }
  t.test('absent, empty, true or {}: on, to stdout', async (t) => {
    for (const text of ['', 'accessLog:\n', 'accessLog: true\n', 'accessLog: {}\n', 'accessLog: { enabled: true }\n']) {
      const log = logOf(text)
      t.same(log, { enabled: true, ...D }, JSON.stringify(text))
      t.notOk(Object.hasOwn(log, 'path'))
    }
  })
  t.test('format and redactQuery', async (t) => {
    t.same(logOf('accessLog: { format: combined, redactQuery: [Token, api_key] }\n'), { enabled: true, format: 'combined', redactQuery: ['token', 'api_key'] })
    only(t, BASE + 'accessLog: { format: clf }\n', 'accessLog.format', 7, /json, combined/)
    only(t, BASE + 'accessLog: { redactQuery: ["a=b"] }\n', 'accessLog.redactQuery[0]', 7, /a query parameter name/)
  })
  t.test('false or enabled: false: off', async (t) => {
    t.same(logOf('accessLog: false\n'), { enabled: false, ...D })
    t.same(logOf('accessLog: { enabled: false }\n'), { enabled: false, ...D })
  })
  t.test('path resolves against the config file folder', async (t) => {
    t.same(logOf('accessLog: { path: logs/access.log }\n', 'conf/config.yaml'), { enabled: true, path: resolve('conf/logs/access.log'), ...D })
    t.same(logOf('accessLog: { path: ../access.log }\n', 'conf/config.yaml'), { enabled: true, path: resolve('access.log'), ...D })
    t.same(logOf('accessLog: { path: /var/log/sy/access.log }\n', 'conf/config.yaml'), { enabled: true, path: '/var/log/sy/access.log', ...D })
    t.same(logOf('accessLog: { enabled: false, path: a.log }\n', '/etc/sy/config.yaml'), { enabled: false, path: '/etc/sy/a.log', ...D })
  })
  t.test('mistakes', async (t) => {
    only(t, BASE + 'accessLog:\n  path: logs/\n', 'accessLog.path', 8, 'expected a file path like logs/access.log, not a folder, got "logs/"')
    for (const p of ['.', '..', 'logs/.', 'logs/..']) {
      only(t, BASE + `accessLog: { path: "${p}" }\n`, 'accessLog.path', 7, /not a folder/)
    }
    only(t, BASE + 'accessLog: { path: "" }\n', 'accessLog.path', 7, 'expected a non-empty string, got ""')
    only(t, BASE + 'accessLog: { path: 5 }\n', 'accessLog.path', 7, 'expected a string, got 5')
    only(t, BASE + 'accessLog: { enabled: "no" }\n', 'accessLog.enabled', 7, 'expected true or false, got "no"')
    only(t, BASE + 'accessLog:\n  paht: a.log\n', 'accessLog.paht', 8, 'unknown key `paht`; did you mean `path`?')
    only(t, BASE + 'accessLog: stdout\n', 'accessLog', 7, 'expected a mapping, true (every default) or false (off), got "stdout"')
  })
  t.test('its file is handed to load.ts for the file check', async (t) => {
    const folders = (text: string, source: string): unknown => {
      const lines = new LineCounter()
      return validateDocument(parseDocument(BASE + text, { lineCounter: lines }), lines, source).folders
    }
    t.same(folders('accessLog:\n  path: logs/access.log\n', '/etc/sy/config.yaml'),
      [{ path: 'accessLog.path', file: '/etc/sy/logs/access.log', line: 8, column: 9 }])
    t.same(folders('accessLog: { enabled: false, path: logs/access.log }\n', '/etc/sy/config.yaml'), [], 'not when the log is off')
    t.same(folders('', '/etc/sy/config.yaml'), [])
  })
  t.test('loadConfig checks that the folder exists', async (t) => {
    const text = (path: string): string => BASE + `accessLog: { path: ${path} }\n`
    const dir = t.testdir({ 'ok.yaml': text('logs/access.log'), 'bad.yaml': text('nope/access.log'), 'file.yaml': text('x/a.log'), logs: {}, x: 'a file' })
    t.equal((await loadConfig(join(dir, 'ok.yaml'))).accessLog.path, join(dir, 'logs/access.log'))
    t.equal((await loadConfig(join(dir, 'bad.yaml'), { checkFiles: false })).accessLog.path, join(dir, 'nope/access.log'))
    for (const [file, check] of [['bad.yaml', (f: string) => loadConfig(f)], ['file.yaml', (f: string) => parseConfig(text('x/a.log'), f, { checkFiles: true })]] as const) {
      try {
        await check(join(dir, file))
        t.fail(`${file} should fail`)
      } catch (err) {
        t.ok(err instanceof ConfigError, String(err))
        const folder = join(dir, file === 'bad.yaml' ? 'nope' : 'x')
        t.match((err as ConfigError).issues, [{ path: 'accessLog.path', line: 7, column: 20, message: folder }], file)
      }
    }
  })
  t.test('loadConfig checks that the file can be appended to: a folder of that name cannot', async (t) => {
    // Found only as the log was opened: `start` died with an internal error and its stack.
    const text = BASE + 'accessLog: { path: logs }\n'
    const dir = t.testdir({ 'c.yaml': text, logs: {} })
    for (const check of [(f: string) => loadConfig(f), (f: string) => parseConfig(text, f, { checkFiles: true })]) {
      try {
        await check(join(dir, 'c.yaml'))
        t.fail('should fail')
      } catch (err) {
        t.ok(err instanceof ConfigError, String(err))
        t.match((err as ConfigError).issues, [{ path: 'accessLog.path', line: 7, column: 20, message: `cannot write ${join(dir, 'logs')}: is a directory` }])
      }
    }
  })
})

t.test('watchConfig', async (t) => {
  t.equal(parse(BASE).watchConfig, false)
  t.equal(parse(BASE + 'watchConfig:\n').watchConfig, false)
  t.equal(parse(BASE + 'watchConfig: true\n').watchConfig, true)
  only(t, BASE + 'watchConfig: "yes"\n', 'watchConfig', 7, 'expected true or false, got "yes"')
  only(t, BASE + 'watchconfig: true\n', 'watchconfig', 7, 'unknown key `watchconfig`; did you mean `watchConfig`?')
})

t.test('timeouts.drain', async (t) => {
  t.equal(parse(BASE).timeouts.drain, 30_000)
  t.same(parse(BASE + 'timeouts: { drain: 1m30s }\n').timeouts, { clientHeaders: 30_000, clientIdle: 60_000, drain: 90_000, clientBody: 30_000, request: 0, clientSend: 60_000, tunnel: 3_600_000, tunnelFin: 30_000 })
  t.equal(parse(BASE + 'timeouts: { drain: 0 }\n').timeouts.drain, 0, '0 = cut at once')
  only(t, BASE + 'timeouts:\n  drain: soon\n', 'timeouts.drain', 8, /^expected a duration like 500ms, .*got "soon"$/)
  only(t, BASE + 'timeouts:\n  drain: 600h\n', 'timeouts.drain', 8, /at most 596h31m23s/)
  only(t, BASE + 'timeouts:\n  drian: 5s\n', 'timeouts.drian', 8, 'unknown key `drian`; did you mean `drain`?')
})

t.test('timeouts.clientSend', async (t) => {
  t.equal(parse(BASE).timeouts.clientSend, 60_000, 'NGINX send_timeout\'s default')
  t.equal(parse(BASE + 'timeouts: { clientSend: 5s }\n').timeouts.clientSend, 5_000)
  t.equal(parse(BASE + 'timeouts: { clientSend: 0 }\n').timeouts.clientSend, 0, '0 = never')
  only(t, BASE + 'timeouts:\n  clientSend: slow\n', 'timeouts.clientSend', 8, /^expected a duration like 500ms, .*got "slow"$/)
})

t.test('every new option in one file: all issues, in file order', async (t) => {
  const issues = issuesOf(BASE + [
    'timeouts: { drain: x }',
    'admin:',
    '  bind: ":9901"',
    'accessLog: { path: logs/ }',
    'watchConfig: 1'
  ].join('\n') + '\n')
  t.same(issues.map((i) => [i.path, i.line]), [
    ['timeouts.drain', 7], ['admin.bind', 9], ['accessLog.path', 10], ['watchConfig', 11]
  ])
})

t.test('timeouts.clientBody, timeouts.request, timeouts.tunnel', async (t) => {
  const d = parse(BASE).timeouts
  t.equal(d.clientBody, 30_000, 'a stalled body is cut after 30s by default')
  t.equal(d.request, 0, 'no whole-request deadline by default')
  t.equal(d.tunnel, 3_600_000, 'an idle tunnel lives an hour')
  t.equal(d.tunnelFin, 30_000, 'a half-closed one 30 s (HAProxy client-fin)')
  const c = parse(BASE + 'timeouts: { clientBody: 5s, request: 1m, tunnel: 10m, tunnelFin: 5s }\n').timeouts
  t.same([c.clientBody, c.request, c.tunnel, c.tunnelFin], [5000, 60_000, 600_000, 5000])
  only(t, BASE + 'timeouts:\n  clientBody: 0\n', 'timeouts.clientBody', 8, /greater than 0/)
  only(t, BASE + 'timeouts:\n  tunnel: forever\n', 'timeouts.tunnel', 8, /^expected a duration/)
  only(t, BASE + 'timeouts:\n  tunnelFin: 0\n', 'timeouts.tunnelFin', 8, /greater than 0/)
})

t.test('pathNormalization', async (t) => {
  t.same(parse(BASE).pathNormalization, { mergeSlashes: false, escapedSlashes: 'keep' })
  t.same(parse(BASE + 'pathNormalization: { mergeSlashes: true, escapedSlashes: reject }\n').pathNormalization,
    { mergeSlashes: true, escapedSlashes: 'reject' })
  only(t, BASE + 'pathNormalization:\n  escapedSlashes: drop\n', 'pathNormalization.escapedSlashes', 8, /keep, reject or decode|keep.*reject.*decode/)
  only(t, BASE + 'pathNormalization:\n  mergeSlash: true\n', 'pathNormalization.mergeSlash', 8, 'unknown key `mergeSlash`; did you mean `mergeSlashes`?')
})

t.test('listeners[].maxTunnels', async (t) => {
  t.equal(parse(BASE).listeners[0]!.maxTunnels, 10_000)
  t.equal(parse('listeners:\n  - { bind: ":0", maxTunnels: 3 }\n' + BASE.split('\n').slice(2).join('\n')).listeners[0]!.maxTunnels, 3)
  only(t, 'listeners:\n  - { bind: ":0", maxTunnels: -1 }\n' + BASE.split('\n').slice(2).join('\n'), 'listeners[0].maxTunnels', 2, 'expected an integer >= 0, got -1')
})
