// Bind addresses tried on this machine (loadConfig with checkBinds), and the
// words for a failed bind shared with startup errors.

import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import t from 'tap'
import { bindErrorReason, privilegedPortWarning } from '../../src/config/binds.js'
import { loadConfig } from '../../src/config/load.js'
import { ConfigError, type ConfigIssue } from '../../src/errors.js'

const BACKEND = 'backends:\n  api:\n    servers:\n      - url: http://127.0.0.1:9000\n'

async function issuesOf (file: string): Promise<ConfigIssue[]> {
  try {
    await loadConfig(file, { checkBinds: true })
  } catch (err) {
    if (err instanceof ConfigError) return [...err.issues]
    throw err
  }
  return []
}

t.test('an address this machine does not have is an error at its bind, every one of them', async (t) => {
  const dir = t.testdir({
    'config.yaml': [
      'listeners:',
      '  - { name: ok, bind: "127.0.0.1:0" }',
      '  - { name: far, bind: "10.255.255.1:8080" }',
      '  - { name: far6, bind: "[fd00:255::1]:8080" }',
      'admin:',
      '  bind: "10.255.255.1:9901"',
      '  token: "0123456789abcdef0123"',
      BACKEND
    ].join('\n')
  })
  const found = await issuesOf(join(dir, 'config.yaml'))
  t.same(found.map((i) => [i.path, i.line, i.column]), [
    ['listeners[1].bind', 3, 24],
    ['listeners[2].bind', 4, 25],
    ['admin.bind', 6, 9]
  ])
  t.equal(found[0]?.message,
    '10.255.255.1 is not an address of this machine (EADDRNOTAVAIL); use one of its addresses, or 0.0.0.0 / :: for all')
  t.match(found[1]?.message, /^fd00:255::1 is not an address of this machine/)
})

t.test('loopback, wildcards, localhost and port 0 pass; a port in use is not the config\'s fault', async (t) => {
  // A real server holds a port: a running Switchyard checking its next config is in this situation.
  const busy = http.createServer()
  await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => busy.close(() => resolve())))
  const port = (busy.address() as AddressInfo).port
  const dir = t.testdir({
    'config.yaml': [
      'listeners:',
      `  - bind: "127.0.0.1:${port}"`,
      // Linux binds the whole of 127.0.0.0/8, which an interface list shows as one address.
      `  - bind: "${process.platform === 'linux' ? '127.0.0.2' : '127.0.0.1'}:0"`,
      '  - bind: "[::1]:0"',
      '  - bind: ":0"',
      '  - bind: "[::]:0"',
      '  - bind: "localhost:0"',
      'admin: { bind: "127.0.0.1:0" }',
      BACKEND
    ].join('\n')
  })
  t.same(await issuesOf(join(dir, 'config.yaml')), [])
  t.equal(busy.listening, true, 'the busy port was not disturbed')
})

t.test('without checkBinds nothing is bound (explain, library use)', async (t) => {
  const dir = t.testdir({ 'config.yaml': 'listeners:\n  - bind: "10.255.255.1:8080"\n' + BACKEND })
  t.equal((await loadConfig(join(dir, 'config.yaml'))).listeners[0]?.host, '10.255.255.1')
})

t.test('bindErrorReason: the words for each system error', async (t) => {
  const sys = (code: string): NodeJS.ErrnoException => Object.assign(new Error(`listen ${code}: x`), { code, syscall: 'listen' })
  t.equal(bindErrorReason(sys('EADDRINUSE'), '127.0.0.1', 8280), 'address already in use (EADDRINUSE)')
  t.equal(bindErrorReason(sys('EACCES'), '0.0.0.0', 443),
    'permission denied (EACCES): port 443 is below 1024, which needs root or CAP_NET_BIND_SERVICE ' +
    '(e.g. `setcap cap_net_bind_service=+ep $(command -v node)`), or use a port >= 1024')
  t.equal(bindErrorReason(sys('EACCES'), '0.0.0.0', 8443), 'permission denied (EACCES)')
  t.match(bindErrorReason(sys('EADDRNOTAVAIL'), '10.1.2.3', 80), /^10\.1\.2\.3 is not an address of this machine \(EADDRNOTAVAIL\)/)
  t.equal(bindErrorReason(sys('ENOTFOUND'), 'proxy.internal', 80), 'the host name proxy.internal does not resolve to an address (ENOTFOUND)')
  t.match(bindErrorReason(sys('EAFNOSUPPORT'), '::', 80), /address family is not available \(EAFNOSUPPORT/)
  t.equal(bindErrorReason(new Error('admin: cannot listen on 127.0.0.1:9901: x', { cause: sys('EADDRINUSE') }), '127.0.0.1', 9901),
    'address already in use (EADDRINUSE)', 'looks through a wrapping error')
  t.equal(bindErrorReason(sys('EWHAT'), 'h', 1), 'listen EWHAT: x (EWHAT)')
  t.equal(bindErrorReason(new Error('plain'), 'h', 1), 'plain')
})

t.test('privilegedPortWarning says what to do', async (t) => {
  t.equal(privilegedPortWarning(443, 1024), 'port 443 is privileged on this machine (below 1024): this process cannot bind it; ' +
    'run as root or with CAP_NET_BIND_SERVICE, or use a port >= 1024')
})
