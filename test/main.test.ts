// The CLI as a user runs it: a child process per command.
import { spawn, spawnSync } from 'node:child_process'
import { once } from 'node:events'
import fs, { readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { nodeArgs } from './helpers/entry.js'
import { reapOnExit } from './helpers/reap.js'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
function cli (...args: string[]) {
  const r = spawnSync(process.execPath, [...nodeArgs('src/main.ts'), ...args],
    { cwd: root, encoding: 'utf8', timeout: 60_000 })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

t.test('check: a config with three mistakes prints all three with path and line, exit 1', async (t) => {
  const r = cli('check', '-c', 'test/fixtures/config/three-mistakes.yaml')
  t.equal(r.code, 1)
  const lines = r.stderr.trim().split('\n')
  t.match(lines[0], /three-mistakes\.yaml:13:\d+ routes\[0\]\.match\.pathPrefx: .*did you mean `pathPrefix`/)
  t.match(lines[1], /three-mistakes\.yaml:16:\d+ routes\[1\]\.backend: unknown backend `frontend`/)
  t.match(lines[2], /three-mistakes\.yaml:22:\d+ backends\.api\.servers\[1\]\.url: expected an http\(s\) URL/)
  t.match(lines[3], /^3 errors in /)
})

t.test('check: a second YAML document is named at its `---` line, exit 1', async (t) => {
  const dir = t.testdir({
    'two.yaml': 'listeners: [{ name: web, bind: "127.0.0.1:0" }]\nroutes: [{ backend: api }]\nbackends:\n  api:\n' +
      '    servers: [{ url: "http://127.0.0.1:9" }]\n---\nroutes: [oops\n'
  })
  const r = cli('check', path.join(dir, 'two.yaml'))
  t.equal(r.code, 1)
  const lines = r.stderr.trim().split('\n')
  t.equal(lines[0], `${path.join(dir, 'two.yaml')}:6:1 (root): the config must be one YAML document; a second one starts here (remove it, or merge it into the first)`)
  t.match(lines[1], /^1 error in /)
})

t.test('check: a valid config prints the routing table in precedence order, exit 0', async (t) => {
  const dir = t.testdir({
    'ok.yaml': `
listeners: [{ name: web, bind: "127.0.0.1:0" }]
routes:
  - { name: catch-all, match: { pathPrefix: / }, backend: app }
  - { name: api, match: { host: api.test, pathPrefix: /v1 }, backend: app }
backends:
  app:
    shardBy: { header: x-user-id }
    shards:
      - { name: a, servers: [{ url: "http://127.0.0.1:9001" }] }
      - { name: b, servers: [{ url: "http://127.0.0.1:9002", weight: 3 }] }
`
  })
  const r = cli('check', '-c', path.join(dir, 'ok.yaml'))
  t.equal(r.code, 0, r.stderr)
  t.match(r.stdout, /valid/)
  t.ok(r.stdout.indexOf('api ') < r.stdout.indexOf('catch-all'), 'exact-host route listed before the catch-all')
  t.match(r.stdout, /shard b: b-0=http:\/\/127\.0\.0\.1:9002 w3/)
  t.match(r.stdout, /shardBy header=x-user-id missing=any/)
})

t.test('insecureSkipVerify: check prints the backend TLS and a warning (exit 0), start logs the warning', async (t) => {
  const dir = t.testdir({
    'skip.yaml': `
listeners: [{ name: web, bind: "127.0.0.1:0" }]
admin: false
accessLog: false
routes: [{ backend: secure }]
backends:
  secure:
    servers: [{ url: "https://127.0.0.1:9" }]
    tls:
      servername: api.internal
      insecureSkipVerify: true
`
  })
  const file = path.join(dir, 'skip.yaml')
  const r = cli('check', '-c', file)
  t.equal(r.code, 0, r.stderr)
  t.match(r.stdout, /\n    tls: NOT verified \(insecureSkipVerify\), servername=api\.internal, TLSv1\.2\+\n/)
  t.match(r.stdout, /\n    WARNING: tls\.insecureSkipVerify is on: server certificates are not verified/)

  const child = reapOnExit(spawn(process.execPath, [...nodeArgs('src/main.ts'), 'start', '-c', file], { cwd: root }))
  t.teardown(() => { child.kill('SIGKILL') })
  let out = ''
  child.stdout.setEncoding('utf8')
  const logged = await new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (chunk: string) => {
      out += chunk
      const line = out.split('\n').find((l) => l.includes('config warning'))
      if (line !== undefined && out.includes('"listening"')) resolve(line)
    })
    child.once('exit', (code) => reject(new Error(`exited ${code}: ${out}`)))
  })
  t.match(JSON.parse(logged), {
    level: 40, file, path: 'backends.secure.tls.insecureSkipVerify', line: 11, msg: /^config warning: server certificates are not verified/
  })
  child.kill('SIGTERM')
  t.equal((await once(child, 'exit'))[0], 0, 'stops cleanly')
})

t.test('the shipped demo and example configs are valid', async (t) => {
  // Cert files may be absent on a fresh clone: check only the config itself here.
  const { parseConfig } = await import('../src/config/load.js')
  for (const f of ['config/demo.yaml', 'config/example.yaml']) {
    t.doesNotThrow(() => parseConfig(readFileSync(path.join(root, f), 'utf8'), f), f)
  }
})

t.test('unknown command and help', async (t) => {
  const bad = cli('frobnicate')
  t.equal(bad.code, 2)
  t.match(bad.stderr, /unknown command "frobnicate"/)
  const help = cli('--help')
  t.equal(help.code, 0)
  t.match(help.stdout, /switchyard <command>/)
})

t.test('certs writes a pair into --dir', async (t) => {
  const dir = t.testdir({})
  const r = cli('certs', '--dir', dir)
  t.equal(r.code, 0, r.stderr)
  t.match(readFileSync(path.join(dir, 'dev.crt'), 'utf8'), /BEGIN CERTIFICATE/)
  t.match(readFileSync(path.join(dir, 'dev.key'), 'utf8'), /PRIVATE KEY/)
  t.match(cli('certs', '--dir', dir).stdout, /kept existing/)
})

t.test('check and start take the file positionally or with -c; anything more is a usage error', async (t) => {
  const file = 'test/fixtures/config/three-mistakes.yaml'
  const positional = cli('check', file)
  t.equal(positional.code, 1)
  t.equal(positional.stderr, cli('check', '-c', file).stderr, 'the same as -c FILE')
  t.same(cli('check', file, 'extra.yaml'), { code: 2, stdout: '', stderr: 'switchyard: unexpected argument "extra.yaml"\nUsage: switchyard check [-c] FILE\n' })
  t.same(cli('check', '-c', file, 'other.yaml'), {
    code: 2,
    stdout: '',
    stderr: `switchyard: unexpected argument "other.yaml" (the config file is already given with -c ${file})\nUsage: switchyard check [-c] FILE\n`
  })
  t.same(cli('check'), { code: 2, stdout: '', stderr: 'switchyard: a config file is required\nUsage: switchyard check [-c] FILE\n' })
  const start = cli('start', 'config/demo.yaml', 'more', 'args')
  t.same(start, { code: 2, stdout: '', stderr: 'switchyard: unexpected arguments "more" "args"\nUsage: switchyard start [[-c] FILE]\n' },
    'refused before anything starts')
  t.equal(cli('start', file).code, 1, 'start FILE reads FILE (which has mistakes), not the demo')
  t.same(cli('certs', 'somewhere'), { code: 2, stdout: '', stderr: 'switchyard: unexpected argument "somewhere"\nUsage: switchyard certs [--dir DIR] [--name NAME]... [--force]\n' })
  const unknown = cli('check', '--cofnig', file)
  t.equal(unknown.code, 2)
  t.match(unknown.stderr, /^switchyard: Unknown option '--cofnig'.*\nUsage: switchyard check \[-c\] FILE\n$/s)
  t.notMatch(unknown.stderr, /^\s+at /m, 'no stack trace')
})

t.test('the command in the comment at the top of config/example.yaml works as written', async (t) => {
  const header = readFileSync(path.join(root, 'config/example.yaml'), 'utf8').split('\n').filter((l) => l.startsWith('#'))
  const commands = header.join('\n').match(/`?switchyard (certs|check [^`\n]+?)`?(?=\s|$)/g)?.map((c) => c.replaceAll('`', '').split(/\s+/).slice(1))
  t.same(commands, [['check', 'config/example.yaml'], ['certs']], 'the check command, and how to make the certificate it needs')
  // In the comment's order of need: the certificate first (kept when it exists), then the check.
  t.equal(cli(...commands![1]!).code, 0)
  const r = cli(...commands![0]!)
  t.equal(r.code, 0, r.stderr)
  t.match(r.stdout, /^config\/example\.yaml: valid\n/)
  t.equal(r.stderr, '', 'no warnings either')
})

t.test('check warns about a route that can never match, naming both routes and lines, and still exits 0', async (t) => {
  const dir = t.testdir({
    'shadow.yaml': [
      'listeners: [{ bind: "127.0.0.1:0" }]',
      'admin: false',
      'routes:',
      '  - name: api',
      '    match: { pathPrefix: /api/ }',
      '    backend: app',
      '  - name: api-again',
      '    match: { pathPrefix: /api/ }',
      '    backend: app',
      'backends:',
      '  app:',
      '    servers: [{ url: "http://127.0.0.1:9001" }]',
      ''
    ].join('\n')
  })
  const file = path.join(dir, 'shadow.yaml')
  const r = cli('check', file)
  t.equal(r.code, 0)
  t.equal(r.stderr, `${file}:7:5 routes[1]: warning: route \`api-again\` (line 7) can never match: ` +
    'route `api` (line 4) has the same host, pathPrefix and headers and comes first\n')
  t.match(r.stdout, `${file}: valid (1 warning, above)\n`)
})

t.test('check with ${…} references: resolved values are used, the admin token is never printed', async (t) => {
  const token = 'from-the-environment-5f0c7e0a9b1d'
  const dir = t.testdir({
    'secret.yaml': [
      'listeners: [{ name: "${LISTENER_NAME}", bind: "127.0.0.1:0" }]',
      'admin: { bind: "127.0.0.1:0", token: "${SY_TEST_ADMIN_TOKEN}" }',
      'routes: [{ backend: app, requestHeaders: { set: { x-note: "$${not-a-reference}" } } }]',
      'backends:',
      '  app:',
      '    servers: [{ url: "${file:upstream.url}" }]',
      ''
    ].join('\n'),
    'upstream.url': 'http://127.0.0.1:9001\n'
  })
  const file = path.join(dir, 'secret.yaml')
  const ok = cli2(['check', file], { LISTENER_NAME: 'public', SY_TEST_ADMIN_TOKEN: token })
  t.equal(ok.code, 0, ok.stderr)
  t.match(ok.stdout, /public +http +127\.0\.0\.1:0/)
  t.match(ok.stdout, /server-0=http:\/\/127\.0\.0\.1:9001/)
  t.match(ok.stdout, 'auth: bearer token (set, not shown)')
  t.notOk((ok.stdout + ok.stderr).includes(token), 'the token is in no output')
  const unset = cli2(['check', file], { LISTENER_NAME: 'public' })
  t.equal(unset.code, 1)
  t.equal(unset.stderr, `${file}:2:38 admin.token: environment variable \`SY_TEST_ADMIN_TOKEN\` is not set\n1 error in ${file}\n`)
  const short = cli2(['check', file], { LISTENER_NAME: 'public', SY_TEST_ADMIN_TOKEN: 'short-Secret' })
  t.equal(short.code, 1)
  t.match(short.stderr, 'admin.token: expected a token of at least 16 visible ASCII characters, no spaces, got 12 characters')
  t.notOk(short.stderr.includes('short-Secret'), 'a refused token is not printed either')
})

t.test('explain takes the file positionally too; its request stays unambiguous', async (t) => {
  const file = 'test/fixtures/config/explain.yaml'
  const withC = cli('explain', '-c', file, 'GET https://api.example.com/v1/users')
  t.equal(withC.code, 0, withC.stderr)
  t.equal(cli('explain', file, 'GET https://api.example.com/v1/users').stdout, withC.stdout, 'FILE first, then the request')
  t.equal(cli('explain', file, 'GET', 'https://api.example.com/v1/users').stdout, withC.stdout, 'the request as two words')
  t.equal(cli('explain', '-c', file, 'GET', 'https://api.example.com/v1/users').stdout, withC.stdout)
  const swapped = cli('explain', 'GET https://api.example.com/v1/users', file)
  t.equal(swapped.code, 1, 'bad input is 1 for explain (2 means no route)')
  t.match(swapped.stderr, /is a request, not a config file: the file comes first \(or give it with -c\)\nUsage: switchyard explain \[-c\] FILE 'METHOD URL'/)
  t.match(cli('explain', 'https://api.example.com/', file).stderr, /is a request, not a config file/)
  // A request pasted from a ticket: its escape sequences are shown, never run by the terminal.
  const hostile = cli('explain', file, 'G\u001b[2JET https://api.example.com/\u009b31m')
  t.equal(hostile.code, 1)
  t.notMatch(hostile.stderr, /[\u001b\u009b]/, 'no raw ESC or CSI on the terminal')
  t.match(hostile.stderr, /\\u001b\[2J/, 'shown escaped')
})

function cli2 (args: string[], env: Record<string, string>) {
  const r = spawnSync(process.execPath, [...nodeArgs('src/main.ts'), ...args],
    { cwd: root, encoding: 'utf8', timeout: 60_000, env: { ...process.env, ...env } })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

t.test('hash-password: the hash of the line on stdin, which verifies', async (t) => {
  const { parseScryptHash, verifyPassword } = await import('../src/auth/password.js')
  const run = (input: string, ...args: string[]) => {
    const r = spawnSync(process.execPath, [...nodeArgs('src/main.ts'), 'hash-password', ...args],
      { cwd: root, encoding: 'utf8', timeout: 60_000, input })
    return { code: r.status, stdout: r.stdout, stderr: r.stderr }
  }
  const r = run('correct horse\n')
  t.equal(r.code, 0)
  t.match(r.stdout, /^\$scrypt\$N=16384,r=8,p=1\$[A-Za-z0-9+/]+=*\$[A-Za-z0-9+/]+=*\n$/)
  const h = parseScryptHash(r.stdout.trim())
  if (typeof h === 'string') throw new Error(h)
  t.equal(await verifyPassword('correct horse', h), true, 'the newline is not part of the password')
  t.equal(await verifyPassword('correct horse\n', h), false)
  t.equal(run('').code, 1, 'an empty password is refused')
  t.match(run('a\nb\n').stderr, /one line/)
  const arg = run('x\n', 'hunter2')
  t.equal(arg.code, 2, 'never from the command line')
  t.match(arg.stderr, /read from stdin/)
  const huge = run('x'.repeat(100 * 1024) + '\n')
  t.equal(huge.code, 1, 'a 100 KiB line is refused')
  t.match(huge.stderr, /more than 65536 bytes on stdin/)
  // Endless input ends too, with memory bounded, instead of reading until killed.
  const zero = fs.openSync('/dev/zero', 'r')
  try {
    const endless = spawnSync(process.execPath, [...nodeArgs('src/main.ts'), 'hash-password'],
      { cwd: root, encoding: 'utf8', timeout: 60_000, stdio: [zero, 'pipe', 'pipe'] })
    t.equal(endless.status, 1, 'stdin from /dev/zero')
    t.match(endless.stderr, /more than 65536 bytes/)
  } finally {
    fs.closeSync(zero)
  }
})
