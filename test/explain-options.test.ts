// OPTIONS * as `switchyard explain` shows it: the URL with no path
// (`OPTIONS https://host`, the absolute form of OPTIONS *, RFC 9112 §3.2.4)
// gets the plan the proxy makes, answered by the proxy itself before any
// redirect or route, and the command exits 0.
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { parseConfig } from '../src/config/load.js'
import { explain, explainCommand, formatExplanation, parseExplainRequest } from '../src/explain.js'
import { tempDir } from './helpers/certs.js'

const yaml = `listeners:
  - { name: web, bind: "127.0.0.1:8080" }
  - { name: to-https, bind: "127.0.0.1:80", redirect: { scheme: https } }
routes:
  - { name: app, backend: app }
backends: { app: { servers: [{ url: "http://127.0.0.1:9001" }] } }
`
const config = parseConfig(yaml, '', { checkFiles: false })

t.test('OPTIONS of a URL without a path is OPTIONS *, answered by the proxy', async (t) => {
  const req = parseExplainRequest('OPTIONS http://shop.test:8080')
  t.equal(req.target, '*')
  const e = explain(config, req)
  t.equal(e.route, null, 'no route is asked')
  t.equal(e.request.path, '*')
  t.equal(e.request.host, 'shop.test')
  t.same(e.result, {
    status: 200, code: 'OPTIONS', summary: 'OPTIONS * is about the proxy itself: 200, Content-Length: 0, no Allow', detail: 'no route, no upstream, no cache'
  })
  t.ok(e.routes.every((r) => r.verdict === 'unreached' && r.reasons[0] === 'not reached: the proxy answers OPTIONS * itself'))
  t.equal(e.shard, null)
  t.equal(e.cache, null)
  t.match(formatExplanation(e), /✓ 200 OPTIONS: OPTIONS \* is about the proxy itself: 200, Content-Length: 0, no Allow \(no route, no upstream, no cache\)/)
  // Before the listener's redirect, as in the proxy.
  t.equal(explain(config, parseExplainRequest('OPTIONS http://shop.test:80')).result.code, 'OPTIONS')
  // A path, even `/`, is a resource: routed as usual.
  t.equal(explain(config, parseExplainRequest('OPTIONS http://shop.test:8080/')).route, 'app')
  t.equal(parseExplainRequest('GET http://shop.test:8080').target, '/', 'any other method: /')
})

t.test('OPTIONS or TRACE with Max-Forwards: 0: the proxy is the final recipient, as in the proxy', async (t) => {
  const e = explain(config, parseExplainRequest('OPTIONS http://shop.test:8080/doc', ['Max-Forwards: 0']))
  t.equal(e.route, null, 'no route is asked')
  t.equal(e.result.status, 200)
  t.equal(e.result.code, 'OPTIONS')
  t.match(e.result.summary, /Max-Forwards: 0 makes the proxy the final recipient/)
  t.ok(e.routes.every((r) => r.verdict === 'unreached' && /Max-Forwards: 0/.test(r.reasons[0]!)))
  const trace = explain(config, parseExplainRequest('TRACE http://shop.test:8080/doc', ['Max-Forwards: 0']))
  t.same([trace.result.status, trace.result.code], [405, 'LB_ERR_METHOD_NOT_ALLOWED'])
  t.equal(explain(config, parseExplainRequest('OPTIONS http://shop.test:8080/doc', ['Max-Forwards: 2'])).route, 'app', 'above 0: routed as usual')
})

t.test('the command exits 0 for it', async (t) => {
  const dir = tempDir(t)
  const file = join(dir, 'c.yaml')
  writeFileSync(file, yaml)
  const r = await explainCommand({
    config: file, request: ['OPTIONS http://shop.test:8080'], headers: [], client: undefined, admin: undefined, json: false, token: undefined, response: undefined
  })
  t.equal(r.code, 0)
  t.match(r.stdout, /200 OPTIONS/)
})
