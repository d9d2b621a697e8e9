// A backend's `tls` block: the rules (validate/backend-tls.ts), the file checks and the
// PEM checks at load (load.ts, pem.ts), and the warning for insecureSkipVerify.

import { generateKeyPairSync } from 'node:crypto'
import { join } from 'node:path'
import t from 'tap'
import type { Test } from 'tap'
import { generateCertificate, generateCertificateAuthority } from '../../src/certs.js'
import { loadConfig, parseConfig } from '../../src/config/load.js'
import { ConfigError, type ConfigIssue } from '../../src/errors.js'
import { issuesOf, only } from '../helpers/config.js'

const ca = generateCertificateAuthority({ commonName: 'Backend CA' })
const client = generateCertificate({ names: ['client.test'], commonName: 'proxy', issuer: ca, usage: ['client'] })
const stranger = generateCertificate({ names: ['client.test'], issuer: ca, usage: ['client'] })

/** Lines 1-6; the backend's servers are https:// and its `tls` block (when given) starts on line 7. */
const HEAD = [
  'listeners:',
  '  - bind: ":0"',
  'backends:',
  '  api:',
  '    servers:',
  '      - url: https://127.0.0.1:9443',
  ''
].join('\n')

/** HEAD plus a `tls:` block with these lines (each indented under it), from line 7. */
function withTls (...lines: string[]): string {
  return `${HEAD}    tls:\n${lines.map((l) => `      ${l}\n`).join('')}`
}

/** Every issue parseConfig reports with its files checked (none when valid). */
function fileIssues (text: string, file: string): ConfigIssue[] {
  try {
    parseConfig(text, file, { checkFiles: true })
  } catch (err) {
    if (err instanceof ConfigError) return [...err.issues]
    throw err
  }
  return []
}

/** A folder with the PEM files and `config.yaml` = `text`; returns the config path. */
function configDir (t: Test, text: string, files: Record<string, string> = {}): string {
  const dir = t.testdir({ 'config.yaml': text, pki: { 'ca.pem': ca.certPem, 'client.crt': client.certPem, 'client.key': client.keyPem, ...files } })
  return join(dir, 'config.yaml')
}

t.test('a complete block: paths resolved against the config folder, PEM read at load', async (t) => {
  const text = withTls('ca: pki/ca.pem', 'servername: API.Internal', 'cert: pki/client.crt', 'key: pki/client.key', 'minVersion: TLSv1.3')
  const file = configDir(t, text)
  const dir = join(file, '..')
  const c = await loadConfig(file)
  const tls = c.backends.api?.tls
  t.match(tls, {
    ca: join(dir, 'pki/ca.pem'),
    servername: 'api.internal',
    cert: join(dir, 'pki/client.crt'),
    key: join(dir, 'pki/client.key'),
    minVersion: 'TLSv1.3',
    insecureSkipVerify: false,
    pem: { ca: ca.certPem, cert: client.certPem, key: client.keyPem, sha256: /^[0-9a-f]{64}$/ }
  })
  t.ok(Object.isFrozen(tls?.pem), 'frozen with the rest')
  t.same(parseConfig(text, file, { checkFiles: true }).backends.api?.tls, tls, 'parseConfig reads the same, synchronously')
  const noIo = parseConfig(text, file)
  t.notOk(Object.hasOwn(noIo.backends.api!.tls!, 'pem'), 'no files read without checkFiles')
})

t.test('the file hash follows the contents, not the names', async (t) => {
  const text = withTls('ca: pki/ca.pem', 'cert: pki/client.crt', 'key: pki/client.key')
  const sha = (file: string): string | undefined => parseConfig(text, file, { checkFiles: true }).backends.api?.tls?.pem?.sha256
  const a = sha(configDir(t, text))
  t.equal(sha(configDir(t, text)), a, 'same files elsewhere: same hash')
  t.not(sha(configDir(t, text, { 'client.crt': stranger.certPem, 'client.key': stranger.keyPem })), a, 'another client certificate')
  t.not(sha(configDir(t, text, { 'ca.pem': `${ca.certPem}${client.certPem}` })), a, 'a CA bundle with one more certificate')
})

t.test('https:// servers without a block get every default; http:// servers get no tls', async (t) => {
  const c = parseConfig(HEAD, 'config.yaml')
  t.same(c.backends.api?.tls, { minVersion: 'TLSv1.2', insecureSkipVerify: false })
  const sharded = parseConfig(HEAD.replace(/    servers:\n.*\n/, y`
    |    shardBy: { header: x-k }
    |    shards:
    |      - { name: a, servers: [{ url: "https://10.0.0.1" }] }
    |      - { name: b, servers: [{ url: "https://10.0.0.2" }] }
  `), 'config.yaml')
  t.same(sharded.backends.api?.tls, { minVersion: 'TLSv1.2', insecureSkipVerify: false }, 'the same across shards')
  const plain = parseConfig(HEAD.replace('https:', 'http:'), 'config.yaml')
  t.notOk(Object.hasOwn(plain.backends.api!, 'tls'))
  t.same(parseConfig(`${HEAD}    tls:\n`, 'config.yaml').backends.api?.tls, { minVersion: 'TLSv1.2', insecureSkipVerify: false },
    'an empty `tls:` is every default')
})

t.test('cert and key come together', async (t) => {
  only(t, withTls('cert: client.crt'), 'backends.api.tls.key', 8, '`cert` (the client certificate) needs `key`, its private key: set both or neither')
  only(t, withTls('ca: ca.pem', 'key: client.key'), 'backends.api.tls.cert', 8, '`key` needs `cert`, the client certificate it belongs to: set both or neither')
})

t.test('tls on a backend of http:// servers is a mistake', async (t) => {
  only(t, withTls('ca: ca.pem').replace('https:', 'http:'), 'backends.api.tls', 7,
    '`tls` is for https:// servers, and the servers of this backend are http://; write their URLs as https://host:port, or remove `tls`')
})

t.test('the servers of one backend share a scheme', async (t) => {
  only(t, `${HEAD}      - url: http://127.0.0.1:9080\n`, 'backends.api.servers[1].url', 7,
    'this server is http:// but backends.api.servers[0] is https://; the servers of a backend all use one scheme ' +
    '(a retry or failover may send any request to any of them): use https:// for all of them, or give these their own backend')
  only(t, HEAD.replace(/    servers:\n.*\n/, y`
    |    shardBy: { header: x-k }
    |    shards:
    |      - { name: a, servers: [{ url: "http://10.0.0.1" }] }
    |      - { name: b, servers: [{ url: "https://10.0.0.2" }] }
  `), 'backends.api.shards[1].servers[0].url', 8, /this server is https:\/\/ but backends\.api\.shards\[0\]\.servers\[0\] is http:\/\//)
  t.same(issuesOf(`${HEAD}      - url: https://127.0.0.2:9443\n`), [], 'all https is fine')
})

t.test('insecureSkipVerify: valid, with a warning at its line', async (t) => {
  const warnings: ConfigIssue[] = []
  const c = parseConfig(withTls('minVersion: TLSv1.2', 'insecureSkipVerify: true'), 'config.yaml', { onWarning: (w) => warnings.push(w) })
  t.equal(c.backends.api?.tls?.insecureSkipVerify, true)
  t.same(warnings, [{
    path: 'backends.api.tls.insecureSkipVerify',
    message: 'server certificates are not verified: anyone on the network path can pose as these servers; trust their CA with `ca` instead',
    line: 9,
    column: 27
  }])
  const none: ConfigIssue[] = []
  parseConfig(withTls('insecureSkipVerify: false'), 'config.yaml', { onWarning: (w) => none.push(w) })
  t.same(none, [], 'false: no warning')
  t.throws(() => parseConfig(`${withTls('insecureSkipVerify: true')}proxyName: "a b"\n`, 'config.yaml', { onWarning: (w) => none.push(w) }), ConfigError)
  t.match(none, [{ path: 'backends.api.tls.insecureSkipVerify' }], 'an invalid config: the warning is told too, beside its errors')
  only(t, withTls('insecureSkipVerify: yes please'), 'backends.api.tls.insecureSkipVerify', 8, 'expected true or false, got "yes please"')
})

t.test('minVersion', async (t) => {
  only(t, withTls('minVersion: TLSv1.1'), 'backends.api.tls.minVersion', 8, 'TLSv1.1 is not allowed; use TLSv1.2 or TLSv1.3')
  only(t, withTls('minVersion: TLSv13'), 'backends.api.tls.minVersion', 8, /^expected one of TLSv1\.2, TLSv1\.3, got "TLSv13"; did you mean `TLSv1\.3`\?$/)
  only(t, withTls('minVersion: 1.3'), 'backends.api.tls.minVersion', 8, 'expected one of TLSv1.2, TLSv1.3, got 1.3')
})

t.test('servername is a DNS name', async (t) => {
  only(t, withTls('servername: 10.0.0.1'), 'backends.api.tls.servername', 8, /^an IP address is never sent as SNI \(RFC 6066\); leave `servername` out/)
  only(t, withTls('servername: "[::1]"'), 'backends.api.tls.servername', 8, /never sent as SNI/)
  only(t, withTls('servername: "*.internal"'), 'backends.api.tls.servername', 8, 'expected a DNS name like api.internal (no port, no wildcard), got "*.internal"')
  only(t, withTls('servername: api.internal:443'), 'backends.api.tls.servername', 8, /expected a DNS name/)
})

t.test('unknown keys and wrong shapes', async (t) => {
  only(t, withTls('insecureSkipVerfy: true'), 'backends.api.tls.insecureSkipVerfy', 8, 'unknown key `insecureSkipVerfy`; did you mean `insecureSkipVerify`?')
  only(t, withTls('rejectUnauthorized: false'), 'backends.api.tls.rejectUnauthorized', 8,
    'unknown key `rejectUnauthorized`; expected one of ca, servername, cert, key, minVersion, insecureSkipVerify')
  only(t, `${HEAD}    tls: true\n`, 'backends.api.tls', 7, 'expected a mapping, got true')
  only(t, withTls('ca: [a.pem]'), 'backends.api.tls.ca', 8, 'expected a string, got a list')
})

t.test('files: missing or unreadable ones are reported at their key', async (t) => {
  const text = withTls('ca: pki/nope.pem', 'cert: pki/client.crt', 'key: pki')
  const file = configDir(t, text)
  const dir = join(file, '..')
  t.same(fileIssues(text, file), [
    { path: 'backends.api.tls.ca', message: `cannot read ${join(dir, 'pki/nope.pem')}: no such file`, line: 8, column: 11 },
    { path: 'backends.api.tls.key', message: `cannot read ${join(dir, 'pki')}: not a regular file`, line: 10, column: 12 }
  ], 'and no PEM check on top for that backend')
  const err = await loadConfig(file).then(() => undefined, (e: unknown) => e)
  t.type(err, ConfigError)
  t.same((err as ConfigError).issues.map((i) => i.path), ['backends.api.tls.ca', 'backends.api.tls.key'], 'loadConfig: the same')
})

t.test('files: PEM that is not what it should be is a config error at load', async (t) => {
  const ca3 = withTls('ca: pki/ca.pem')
  const check = (text: string, files: Record<string, string>): ConfigIssue[] => fileIssues(text, configDir(t, text, files))
  t.match(check(ca3, { 'ca.pem': 'hello\n' }), [{ path: 'backends.api.tls.ca', line: 8, message: /pki\/ca\.pem is not a PEM file/ }], 'not PEM')
  t.match(check(ca3, { 'ca.pem': client.keyPem }), [{ path: 'backends.api.tls.ca', line: 8, message: /pki\/ca\.pem holds no PEM certificate/ }],
    'a key where a certificate should be')
  const garbled = ca.certPem.replace(/\n[A-Za-z0-9+/]{20}/, '\nAAAAAAAAAAAAAAAAAAAA')
  t.match(check(ca3, { 'ca.pem': `${client.certPem}${garbled}` }),
    [{ path: 'backends.api.tls.ca', message: /certificate 2 of .*pki\/ca\.pem is not a valid certificate/ }], 'the second certificate of a bundle is damaged')

  const mtls = withTls('ca: pki/ca.pem', 'cert: pki/client.crt', 'key: pki/client.key')
  t.match(check(mtls, { 'client.crt': 'garbage' }), [{ path: 'backends.api.tls.cert', line: 9, message: /is not a PEM file/ }])
  t.match(check(mtls, { 'client.key': '-----BEGIN PRIVATE KEY-----\nnonsense\n-----END PRIVATE KEY-----\n' }),
    [{ path: 'backends.api.tls.key', line: 10, message: /pki\/client\.key is not a PEM private key/ }])
  const issues = check(mtls, { 'client.key': stranger.keyPem })
  t.match(issues, [{ path: 'backends.api.tls.key', line: 10, column: 12, message: /pki\/client\.key is not the private key of the certificate in .*pki\/client\.crt$/ }],
    'a key that does not match its certificate')
  t.equal(issues.length, 1)
  const encrypted = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'secret' }
  }).privateKey
  t.match(check(mtls, { 'client.key': encrypted }), [{ path: 'backends.api.tls.key', message: /is an encrypted private key; Switchyard reads unencrypted keys only/ }])

  const err = await loadConfig(configDir(t, mtls, { 'client.key': stranger.keyPem })).then(() => undefined, (e: unknown) => e)
  t.match((err as ConfigError).issues, [{ path: 'backends.api.tls.key', line: 10 }], 'loadConfig (async reads): the same')
  t.match((err as ConfigError).message, /config\.yaml:10:12 backends\.api\.tls\.key: .* is not the private key of the certificate in /,
    'printed like every other config error')
})

t.test('TLS file issues come with the other issues, in file order', async (t) => {
  const text = `proxyName: "a b"\n${withTls('ca: pki/ca.pem', 'servername: 1.2.3.4')}`
  const issues = fileIssues(text, configDir(t, text, { 'ca.pem': 'nope' }))
  t.same(issues.map((i) => i.path), ['proxyName', 'backends.api.tls.ca', 'backends.api.tls.servername'])
})

/** Template tag: drops the first newline and, per line, everything up to `|`. */
function y (strings: TemplateStringsArray): string {
  return strings.raw.join('').replace(/^\n/, '').split('\n').map((l) => l.replace(/^\s*\|/, '')).join('\n').replace(/\n\s*$/, '\n')
}
