// The PROXY protocol as `switchyard explain` shows it (issue 15, item 7): on a
// listener that takes the header, --client is the address a balancer
// announces, and allow/deny and ipHash judge it; a backend that sends the
// header says so, and whom it names.
import t from 'tap'
import { parseConfig } from '../src/config/load.js'
import { explain, formatExplanation, parseExplainRequest } from '../src/explain.js'

const config = parseConfig(`listeners:
  - { name: edge, bind: "127.0.0.1:8080", proxyProtocol: { trustedSources: [10.0.0.0/8], timeout: 2s } }
routes:
  - { name: listed, match: { pathPrefix: /listed }, backend: sends, allow: [203.0.113.0/24] }
  - { name: plain, backend: plain }
backends:
  sends: { sendProxyProtocol: v2, balance: { algorithm: ipHash }, servers: [{ url: "http://127.0.0.1:9001" }] }
  plain: { servers: [{ url: "http://127.0.0.1:9002" }] }
`, '', { checkFiles: false })

t.test('the client address comes from the PROXY header', async (t) => {
  const e = explain(config, parseExplainRequest('GET http://shop.test:8080/listed', [], '203.0.113.7'))
  t.equal(e.request.listener, 'edge')
  t.equal(e.request.proxyProtocol, 'PROXY protocol v1/v2 from 10.0.0.0/8, header within 2s; others closed')
  t.equal(e.request.balancerClient, '203.0.113.7', 'ipHash hashes the announced client')
  t.equal(e.access?.client, '203.0.113.7')
  t.equal(e.access?.denied, null)
  t.equal(e.replicas?.upstream?.proxyHeader,
    'PROXY v2 header naming client 203.0.113.7 and its port, on a connection of this client connection\'s own (never shared with another client)')
  const text = formatExplanation(e)
  t.match(text, /client +203\.0\.113\.7 \(not a trusted proxy\)\n +client address from the PROXY v1\/v2 header \(PROXY protocol v1\/v2 from 10\.0\.0\.0\/8, header within 2s; others closed\)\n/)
  t.match(text, /upstream +GET http:\/\/127\.0\.0\.1:9001\/listed .*\n +PROXY v2 header naming client 203\.0\.113\.7/)

  const outside = explain(config, parseExplainRequest('GET http://shop.test:8080/listed', [], '198.51.100.7'))
  t.match(outside.access?.denied, /198\.51\.100\.7/)
})

t.test('no PROXY header: nothing said', async (t) => {
  const c = parseConfig(`listeners: [{ name: web, bind: "127.0.0.1:8080" }]
backends: { plain: { servers: [{ url: "http://127.0.0.1:9002" }] } }
routes: [{ backend: plain }]
`, '', { checkFiles: false })
  const e = explain(c, parseExplainRequest('GET http://shop.test:8080/'))
  t.equal(e.request.proxyProtocol, null)
  t.equal(e.replicas?.upstream?.proxyHeader, undefined)
  t.notMatch(formatExplanation(e), /PROXY/)
})
