// Compression as `switchyard explain` and `check` show it (issue 15, item 7):
// the coding plan() negotiated and, given a response head, the decision the
// proxy's sink makes (compression/decide.ts), word for word.
import t from 'tap'
import { parseConfig } from '../src/config/load.js'
import { explain, explainCommand, formatExplanation, parseExplainRequest } from '../src/explain.js'
import { routingTable } from '../src/router/table.js'
import { tempDir } from './helpers/certs.js'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'

const yaml = `listeners: [{ name: web, bind: "127.0.0.1:8080" }]
cache: {}
routes:
  - { name: assets, match: { pathPrefix: /assets }, backend: app, compression: { algorithms: [gzip, br], minBytes: 2KiB } }
  - { name: app, backend: app }
backends: { app: { servers: [{ url: "http://127.0.0.1:9001" }] } }
`
const config = parseConfig(yaml, '', { checkFiles: false })
const html = { status: 200, headers: ['content-type', 'text/html; charset=utf-8', 'content-length', String(14 * 1024)] }

t.test('with a response: the proxy\'s decision in words', async (t) => {
  const e = explain(config, parseExplainRequest('GET http://example.com/assets/a.html', ['Accept-Encoding: br;q=1, gzip;q=0.8']), { response: html })
  t.match(e.compression, {
    summary: 'gzip 6, br 4; ≥ 2 KiB; 14 types', coding: 'br', negotiation: 'client accepts br q=1',
    result: 'compressed with br: client accepts br q=1, type text/html, 14 KiB; Vary: Accept-Encoding'
  })
  const text = formatExplanation(e)
  t.match(text, /Compression\n +route +gzip 6, br 4; ≥ 2 KiB; 14 types\n +coding +br: client accepts br q=1/)
  t.match(text, /→ +compressed with br: client accepts br q=1, type text\/html, 14 KiB; Vary: Accept-Encoding/)
  t.match(e.rewrite?.requestHeaders, [{ op: '~', name: 'accept-encoding', before: 'br;q=1, gzip;q=0.8', after: 'br' }],
    'the origin is asked for the negotiated coding')
  t.match(e.cache?.variant, /\nce:br$/, 'the cache keys the negotiated coding')

  const why = (ae: string | undefined, response = html): string | undefined =>
    explain(config, parseExplainRequest('GET http://example.com/assets/a', ae === undefined ? [] : [`Accept-Encoding: ${ae}`]), { response }).compression?.result
  t.equal(why('gzip', { status: 200, headers: ['content-type', 'text/html', 'content-encoding', 'gzip'] }),
    'not compressed: Content-Encoding already gzip; Vary: Accept-Encoding')
  t.equal(why('gzip', { status: 200, headers: ['content-type', 'text/html', 'content-length', '100'] }),
    'not compressed: 100 B is under minBytes (2 KiB)')
  t.equal(why('gzip', { status: 200, headers: ['content-type', 'image/png'] }), 'not compressed: type image/png is not in types')
  t.equal(why(undefined), 'not compressed: no Accept-Encoding; Vary: Accept-Encoding')
  t.equal(why('gzip, br'), 'compressed with gzip: client accepts gzip q=1, type text/html, 14 KiB; Vary: Accept-Encoding', 'ties: the route\'s order')
})

t.test('without a response: the negotiated coding and what the response needs; none on other routes', async (t) => {
  const e = explain(config, parseExplainRequest('GET http://example.com/assets/a', ['Accept-Encoding: gzip']))
  t.match(e.compression?.result, /^gzip \(client accepts gzip q=1\) when the response is of a listed type, 2 KiB or more/)
  const ranged = explain(config, parseExplainRequest('GET http://example.com/assets/a', ['Accept-Encoding: gzip', 'Range: bytes=0-1']))
  t.equal(ranged.compression?.result, 'not compressed: a Range request')
  t.equal(explain(config, parseExplainRequest('GET http://example.com/other', ['Accept-Encoding: gzip'])).compression, null)
})

t.test('the command takes --response fields', async (t) => {
  const dir = tempDir(t)
  const file = join(dir, 'c.yaml')
  writeFileSync(file, yaml)
  const r = await explainCommand({
    config: file, request: ['GET http://example.com/assets/x'], headers: ['accept-encoding: gzip'], client: undefined, admin: undefined,
    json: false, token: undefined, response: ['Content-Type: application/json', 'content-length: 4096']
  })
  t.equal(r.code, 0)
  t.match(r.stdout, /compressed with gzip: client accepts gzip q=1, type application\/json, 4 KiB/)
  const bad = await explainCommand({
    config: file, request: ['GET http://example.com/assets/x'], headers: [], client: undefined, admin: undefined, json: false, token: undefined, response: ['nonsense']
  })
  t.equal(bad.code, 1)
  t.match(bad.stderr, /expected --response 'name: value'/)
})

t.test('check: the route shows its compression', async (t) => {
  const table = routingTable(config)
  t.match(table, /assets +host=\* pathPrefix=\/assets -> app +\[compression: gzip 6, br 4; ≥ 2 KiB; 14 types\]/)
  t.notMatch(table, /app +host=\* pathPrefix=\/ -> app +\[compression/)
})
