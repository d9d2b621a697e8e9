// `${ENV}` / `${file:…}` references: the pure expansion, then through
// parseConfig/loadConfig (positions, relative files, no YAML injection).

import { execFileSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { loadConfig, parseConfig } from '../../src/config/load.js'
import { type Reference, type Resolved, expand, fileValue } from '../../src/config/substitute.js'
import { ConfigError, type ConfigIssue } from '../../src/errors.js'

const vars: Record<string, string> = { A: 'alpha', EMPTY: '', TOKEN: 's3cret-token-0123456789' }
const resolve = (ref: Reference): Resolved => {
  if (ref.kind === 'file') return ref.path === 'ok.txt' ? { value: 'from-file' } : { error: `cannot read ${ref.path}` }
  const v = vars[ref.name]
  return v === undefined ? { error: `\`${ref.name}\` is not set` } : { value: v }
}

t.test('expand: references, escapes and mistakes', async (t) => {
  t.same(expand('plain', resolve), { ok: true, value: 'plain' })
  t.same(expand('${A}', resolve), { ok: true, value: 'alpha' })
  t.same(expand('x-${A}-${A}-y', resolve), { ok: true, value: 'x-alpha-alpha-y' })
  t.same(expand('${EMPTY}', resolve), { ok: true, value: '' }, 'set but empty is a value')
  t.same(expand('${file:ok.txt}', resolve), { ok: true, value: 'from-file' })
  t.same(expand('$${A}', resolve), { ok: true, value: '${A}' }, '$${ is a literal ${')
  t.same(expand('$${A} and ${A}', resolve), { ok: true, value: '${A} and alpha' })
  t.same(expand('cost: $5, {braces}, $A', resolve), { ok: true, value: 'cost: $5, {braces}, $A' }, 'a lone $ or { is text')
  t.same(expand('${NOPE}', resolve), { ok: false, errors: ['`NOPE` is not set'] })
  t.same(expand('${file:gone.txt}', resolve), { ok: false, errors: ['cannot read gone.txt'] })
  t.same(expand('${NOPE}${file:gone.txt}', resolve), { ok: false, errors: ['`NOPE` is not set', 'cannot read gone.txt'] }, 'every problem')
  t.match(expand('${A', resolve), { ok: false, errors: [/^unterminated `\$\{`/] })
  t.match(expand('${}', resolve), { ok: false, errors: [/^`\$\{\}` is not a reference/] })
  t.match(expand('${my-var}', resolve), { ok: false, errors: [/^`\$\{my-var\}` is not a reference: expected `\$\{NAME\}`/] })
  t.match(expand('${file:}', resolve), { ok: false, errors: [/is not a reference/] })
  t.match(expand('${1A}', resolve), { ok: false, errors: [/is not a reference/] })
  t.same(expand('${A}', () => ({ value: '${TOKEN}' })), { ok: true, value: '${TOKEN}' }, 'an expanded value is not expanded again')
})

t.test('fileValue trims exactly one trailing newline', async (t) => {
  t.equal(fileValue('token\n'), 'token')
  t.equal(fileValue('token\r\n'), 'token')
  t.equal(fileValue('token\n\n'), 'token\n')
  t.equal(fileValue('token'), 'token')
  t.equal(fileValue('a\nb\n'), 'a\nb')
  t.equal(fileValue(''), '')
})

const BASE = 'listeners:\n  - bind: "127.0.0.1:0"\nbackends:\n  api:\n    servers:\n      - url: http://127.0.0.1:9000\n'

function issues (fn: () => unknown): ConfigIssue[] {
  try {
    fn()
  } catch (err) {
    if (err instanceof ConfigError) return [...err.issues]
    throw err
  }
  return []
}

t.test('through parseConfig: every string value, at its path and line', async (t) => {
  const env = { TOKEN: 'env-token-0123456789abcdef', HOST: 'api.example.com', PORT: '8080' }
  const text = BASE + [
    'admin:',
    '  token: ${TOKEN}',
    'routes:',
    '  - match: { host: "${HOST}" }',
    '    backend: api',
    '    requestHeaders: { set: { x-literal: "$${HOST}", x-port: "${PORT}" } }'
  ].join('\n') + '\n'
  const c = parseConfig(text, 'config.yaml', { env })
  t.equal(c.admin.token, 'env-token-0123456789abcdef')
  t.equal(c.routes[0]?.match.host, 'api.example.com')
  t.same(c.routes[0]?.requestHeaders.set, { 'x-literal': '${HOST}', 'x-port': '8080' })

  t.same(issues(() => parseConfig(text, 'config.yaml', { env: { HOST: 'h.test', PORT: '1' } })), [
    { path: 'admin.token', message: 'environment variable `TOKEN` is not set', line: 8, column: 10 }
  ], 'unset: one issue at the value, not an empty string and not a second "too short" issue')
})

t.test('a value cannot inject YAML structure', async (t) => {
  const env = { EVIL: 'x\nbackends: {}\n  admin: false', BIND: '"127.0.0.1:0", tls: {}' }
  const text = 'listeners:\n  - bind: ${BIND}\n    name: "${EVIL}"\n'
  const found = issues(() => parseConfig(text, 'config.yaml', { env }))
  t.same(found.map((i) => i.path), ['listeners[0].bind', 'listeners[0].name'], 'both stay single strings, refused by the rules')
  t.match(found[0]?.message, /^expected host:port/)
})

t.test('keys are names, not values: never expanded', async (t) => {
  const found = issues(() => parseConfig(BASE.replace('api:', '"${A}":') + 'routes: [{ backend: "${A}" }]\n', 'config.yaml', { env: { A: 'api' } }))
  t.same(found.map((i) => [i.path, i.line]), [['backends["${A}"]', 4], ['routes[0].backend', 7]])
  t.match(found[1]?.message, 'unknown backend `api`', 'the value was expanded, the key was not')
})

t.test('${file:…}: relative to the config folder, one newline trimmed, unreadable is an error', async (t) => {
  const dir = t.testdir({
    conf: {
      'config.yaml': BASE + 'admin:\n  token: ${file:secrets/admin.token}\n',
      'bad.yaml': BASE + 'admin:\n  token: "${file:secrets/missing.token}"\n',
      secrets: { 'admin.token': 'file-token-0123456789abcdef\n' }
    }
  })
  const c = await loadConfig(join(dir, 'conf/config.yaml'))
  t.equal(c.admin.token, 'file-token-0123456789abcdef')
  t.same(issues(() => parseConfig(BASE + 'admin:\n  token: ${file:secrets/admin.token}\n', join(dir, 'conf/x.yaml'))), [],
    'parseConfig reads them too, against the named file\'s folder')
  const err = await loadConfig(join(dir, 'conf/bad.yaml')).catch((e: unknown) => e)
  t.ok(err instanceof ConfigError)
  t.same((err as ConfigError).issues, [{
    path: 'admin.token',
    message: `cannot read \`\${file:secrets/missing.token}\` (${join(dir, 'conf/secrets/missing.token')}): no such file`,
    line: 8,
    column: 10
  }])
  writeFileSync(join(dir, 'conf/secrets/admin.token'), 'changed-token-0123456789abcdef')
  t.equal((await loadConfig(join(dir, 'conf/config.yaml'))).admin.token, 'changed-token-0123456789abcdef', 'read at each load (reload)')
})

t.test('${file:…}: a device, a FIFO, a directory or a huge file is a clear error, never a hang', async (t) => {
  const dir = t.testdir({ big: 'x'.repeat(1024 * 1024 + 1), sub: {} })
  execFileSync('mkfifo', [join(dir, 'fifo')])
  const cases: Array<[string, RegExp]> = [
    ['/dev/zero', /\(\/dev\/zero\): not a regular file$/],
    [join(dir, 'fifo'), /: not a regular file$/],
    [join(dir, 'sub'), /: is a directory$/],
    [join(dir, 'big'), /: 1048577 bytes, more than the 1048576 a secret or value file may hold$/]
  ]
  for (const [file, why] of cases) {
    const found = issues(() => parseConfig(BASE + `admin:\n  token: \${file:${file}}\n`, join(dir, 'x.yaml')))
    t.equal(found.length, 1, file)
    t.match(found[0], { path: 'admin.token', line: 8, message: why }, file)
  }
  // A key file (cache.shared) goes through the same reader.
  const keyed = issues(() => parseConfig(BASE + 'redis: { url: "redis://127.0.0.1:1" }\ncache: { shared: { encryptionKeys: [{ id: k, file: /dev/zero }] } }\n', join(dir, 'x.yaml')))
  t.match(keyed, [{ path: /encryptionKeys\[0\]/, message: /\/dev\/zero: not a regular file/ }])
})

t.test('certificate paths may come from the environment too', async (t) => {
  const c = parseConfig('listeners:\n  - bind: ":0"\n    tls: { cert: "${DIR}/a.crt", key: "${DIR}/a.key" }\n', '', { env: { DIR: '/etc/tls' } })
  t.same(c.listeners[0]?.tls?.certificates[0], { cert: '/etc/tls/a.crt', key: '/etc/tls/a.key', serverNames: [] })
})
