// `proxyProtocol` on a listener and `sendProxyProtocol` on a backend or a
// server: defaults, forms, and each mistake at its YAML path and line.
import t from 'tap'
import { parseConfig } from '../../src/config/load.js'
import { BASE, only } from '../helpers/config.js'

/** BASE's listener (line 2) with `proxyProtocol` on line 3, and `top` (e.g. trustedProxies) at the end. */
const onListener = (pp: string, top = ''): string =>
  `listeners:\n  - bind: ":0"\n    proxyProtocol: ${pp}\n` + BASE.split('\n').slice(2).join('\n') + top
const listenerPP = (yaml: string): unknown => parseConfig(yaml, 'config.yaml').listeners[0]?.proxyProtocol

t.test('listener proxyProtocol: forms and defaults', async (t) => {
  t.equal(listenerPP(BASE), undefined, 'absent: off')
  t.equal(listenerPP(onListener('false')), undefined, 'false: off')
  t.same(listenerPP(onListener('true', 'trustedProxies: [10.0.0.0/8, "fd00::/8"]\n')),
    { trustedSources: ['10.0.0.0/8', 'fd00::/8'], timeout: 5000 }, 'true: the trustedProxies, 5s')
  t.same(listenerPP(onListener('{ trustedSources: [192.0.2.10, 198.51.100.0/24], timeout: 250ms }')),
    { trustedSources: ['192.0.2.10', '198.51.100.0/24'], timeout: 250 })
  t.same(listenerPP(onListener('{ timeout: 2s }', 'trustedProxies: [127.0.0.1]\n')), { trustedSources: ['127.0.0.1'], timeout: 2000 },
    'a mapping without trustedSources: the trustedProxies')
})

t.test('listener proxyProtocol: mistakes at their path and line', async (t) => {
  only(t, onListener('true'), 'listeners[0].proxyProtocol', 3, /trustedProxies, which lists none/)
  only(t, onListener('{ trustedSources: [] }'), 'listeners[0].proxyProtocol.trustedSources', 3, /at least one IP or CIDR/)
  only(t, onListener('{ trustedSources: [not-an-ip] }'), 'listeners[0].proxyProtocol.trustedSources[0]', 3, /an IP address or CIDR/)
  only(t, onListener('{ trustedSources: [10.0.0.1], timeout: 0s }'), 'listeners[0].proxyProtocol.timeout', 3, /greater than 0/)
  only(t, onListener('{ trustedSource: [10.0.0.1] }', 'trustedProxies: [127.0.0.1]\n'), 'listeners[0].proxyProtocol.trustedSource', 3,
    /did you mean `trustedSources`\?/)
  only(t, onListener('v2'), 'listeners[0].proxyProtocol', 3, /mapping, true/)
})

const backend = (lines: string): string => `listeners:\n  - bind: ":0"\nbackends:\n  api:\n${lines}`
const sendOf = (yaml: string): [unknown, unknown[]] => {
  const b = parseConfig(yaml, 'config.yaml').backends.api!
  return [b.sendProxyProtocol, b.shards[0]!.servers.map((s) => s.sendProxyProtocol)]
}

t.test('sendProxyProtocol on a backend and a server', async (t) => {
  t.same(sendOf(BASE), [undefined, [undefined]], 'absent: off')
  t.same(sendOf(backend('    sendProxyProtocol: v2\n    servers: [{ url: "http://127.0.0.1:9000" }, { url: "http://127.0.0.1:9001", sendProxyProtocol: v1 }]\n')),
    ['v2', [undefined, 'v1']])
  only(t, backend('    sendProxyProtocol: v3\n    servers: [{ url: "http://127.0.0.1:9000" }]\n'), 'backends.api.sendProxyProtocol', 5, /one of v1, v2/)
  only(t, backend('    servers:\n      - url: "http://127.0.0.1:9000"\n        sendProxyProtocol: true\n'),
    'backends.api.servers[0].sendProxyProtocol', 7, /one of v1, v2/)
})
