// The CLI as a user runs it: a child process per command.
import { spawn, spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
function cli (...args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(root, 'src/main.ts'), ...args],
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

  const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'src/main.ts'), 'start', '-c', file], { cwd: root })
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
