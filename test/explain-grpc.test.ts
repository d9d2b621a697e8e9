// HTTP/2 backends as `switchyard explain` shows them (issue 15, item 7): the
// protocol the request goes upstream over, TE: trailers passed on by the
// same header policy the proxy uses, and a gRPC call never cached.
import t from 'tap'
import { parseConfig } from '../src/config/load.js'
import { explain, formatExplanation, parseExplainRequest } from '../src/explain.js'

const config = parseConfig(`listeners: [{ name: web, bind: "127.0.0.1:8080" }]
cache: { maxBytes: 1MiB }
routes:
  - { name: grpc, match: { pathPrefix: /helloworld.Greeter/ }, backend: greeter }
  - { name: app, backend: app }
backends:
  greeter: { protocol: h2c, servers: [{ url: "http://127.0.0.1:50051" }] }
  app: { servers: [{ url: "http://127.0.0.1:9001" }] }
`, '', { checkFiles: false })

t.test('a gRPC call: upstream over h2c, TE: trailers kept, not cached', async (t) => {
  const e = explain(config, parseExplainRequest('POST http://x.test:8080/helloworld.Greeter/SayHello',
    ['content-type: application/grpc', 'te: trailers', 'grpc-timeout: 1S']))
  t.equal(e.route, 'grpc')
  t.match(e.replicas!.upstream, { method: 'POST', url: 'http://127.0.0.1:50051/helloworld.Greeter/SayHello', protocol: 'h2c' })
  const te = e.rewrite!.requestHeaders.find((c) => c.name === 'te')
  t.equal(te, undefined, 'TE: trailers goes on unchanged (only changes are listed)')
  t.match(e.cache, { enabled: true, lookup: false })
  const text = formatExplanation(e)
  t.match(text, /upstream +POST http:\/\/127\.0\.0\.1:50051\/helloworld\.Greeter\/SayHello {2}\(Host: x\.test:8080\) {2}over h2c \(cleartext HTTP\/2/)
})

t.test('an HTTP/1.1 backend: TE is hop-by-hop, and the upstream line says HTTP/1.1', async (t) => {
  const e = explain(config, parseExplainRequest('GET http://x.test:8080/a', ['te: trailers']))
  t.equal(e.route, 'app')
  t.equal(e.replicas!.upstream?.protocol, 'http1')
  t.match(e.rewrite!.requestHeaders.find((c) => c.name === 'te'), { op: '-', before: 'trailers' })
  t.match(formatExplanation(e), /upstream +GET http:\/\/127\.0\.0\.1:9001\/a {2}\(Host: x\.test:8080\) {2}over HTTP\/1\.1\n/)
})
