// Property-based fuzzing of a real Switchyard in its own process: "no request,
// response or config may crash, poison, bypass or stall the proxy".
//
// Two origins stand behind it: a well-behaved echo origin (cacheable JSON
// saying which Host and target it was asked for) and a raw-socket origin
// whose answers fast-check generates (odd statuses, repeated single-value
// fields, hop-by-hop fields, obs-fold, non-ASCII bytes, broken framing,
// closes mid-body, stalls). Requests go over raw HTTP/1.1 sockets (plain and
// TLS) and node:http2 sessions. For every run:
//   1. the proxy process is still alive and admin /healthz answers;
//   2. every request gets a well-formed answer within a bound (a complete
//      HTTP/1.1 response with a 3-digit status, a close after a truncated
//      proxied body, or an h2 response / RST_STREAM / GOAWAY; never a hang),
//      and a 5xx the proxy made itself carries x-switchyard-error;
//   3. nothing malformed or foreign is stored: after each batch every URL it
//      used is fetched again over HTTP/1.1 and h2, and a cache hit must be a
//      complete, well-formed answer that belongs to the URL asked for;
//   4. nothing bypasses request validation: more than one Host, or a Host
//      that is not `uri-host [":" port]` (RFC 9112 §3.2), is answered 4xx and
//      never reaches an origin.
//
// Replay a failure with the seed it prints:  FUZZ_SEED=<seed> npx tap test/e2e/fuzz.test.ts
// More runs (and budget):                     FUZZ_RUNS=<multiplier> (default 1)
// Wall-clock budget per property:             FUZZ_BUDGET_MS (default 20000; runs past it are skipped)
import http2 from 'node:http2'
import net from 'node:net'
import type { ClientHttp2Session, IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http2'
import fc from 'fast-check'
import t from 'tap'
import type { Test } from 'tap'
import { testCertificate } from '../helpers/certs.js'
import { startChildProxy, type ChildProxy } from '../helpers/child-proxy.js'
import { tlsAndPlainListeners } from '../helpers/e2e.js'
import { startOrigin, type Origin } from '../helpers/origin.js'
import { answerBytes, startFuzzOrigin, type Answer, type Framing, type FuzzOrigin } from '../helpers/raw-origin.js'
import { field, h1Exchange, h2Exchange, type H2Outcome, type WireOutcome, type WireResponse } from '../helpers/wire.js'

/** Bound for one request: the proxy's own upstream timeouts below are 2 s. */
const LIMIT_MS = 8000
/** Wall-clock budget per property; runs past it are skipped (and counted), so shrinking ends too. */
const BUDGET_MS = Number(process.env.FUZZ_BUDGET_MS ?? 20_000)
const RUNS = Math.max(1, Number(process.env.FUZZ_RUNS ?? 1))
const SEED = process.env.FUZZ_SEED === undefined ? undefined : Number(process.env.FUZZ_SEED)
// Each of the two properties may use its whole budget (BUDGET_MS * RUNS); the
// regressions and the proxy's start come on top. tap's default 120 s per file
// would cut FUZZ_RUNS=2 and more short in the middle of the regressions.
t.setTimeout(2 * BUDGET_MS * RUNS + 180_000)

// ---- the proxy under test ------------------------------------------------------

interface Fixture {
  readonly proxy: ChildProxy
  readonly echo: Origin
  readonly raw: FuzzOrigin
}

async function setup (tt: Test): Promise<Fixture> {
  const cert = testCertificate(tt)
  const echo = await startOrigin(tt, (seen, res) => {
    const hosts: string[] = []
    for (let i = 0; i < seen.rawHeaders.length; i += 2) {
      if (seen.rawHeaders[i]!.toLowerCase() === 'host') hosts.push(seen.rawHeaders[i + 1]!)
    }
    const body = JSON.stringify({ echo: true, hosts, url: seen.url, method: seen.method })
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), 'cache-control': 'public, max-age=60' })
    res.end(body)
  })
  const raw = await startFuzzOrigin(tt)
  // One process: a crash must end the proxy for the fuzz to see it (a cluster's
  // primary would replace the worker and hide it).
  const proxy = await startChildProxy(tt, `
workers: 1
accessLog: false
admin: { bind: "127.0.0.1:0" }
# Long targets (up to 18 KB) go on to the origins, which is what is fuzzed here.
limits: { maxUriBytes: 32KiB }
timeouts: { drain: 1s }
cache: { maxBytes: 64MiB, maxEntryBytes: 1MiB, collapseTimeout: 2s, purgeFrom: [127.0.0.1/32] }
${tlsAndPlainListeners(cert)}
routes:
  - { name: bad, match: { pathPrefix: /bad/ }, backend: bad }
  - { name: host, match: { host: fuzz.test, pathPrefix: /echo/ }, backend: echo }
  - { name: echo, match: { pathPrefix: / }, backend: echo }
backends:
  echo:
    servers: [{ url: "${echo.url}" }]
  bad:
    retries: { attempts: 0 }
    timeouts: { headers: 2s, body: 2s }
    servers: [{ url: "${raw.url}" }]
`)
  return { proxy, echo, raw }
}

// ---- what a well-formed answer is ------------------------------------------------

type Transport = 'h1' | 'h1-tls' | 'h2'

/** What came back for one request, over either protocol. */
type Outcome = { readonly proto: 'h1'; readonly o: WireOutcome } | { readonly proto: 'h2'; readonly o: H2Outcome }

interface Judged {
  readonly status: number | undefined
  readonly headers: ReadonlyMap<string, string[]>
  readonly body: Buffer
  /** A complete message (h1: framing satisfied; h2: END_STREAM). */
  readonly complete: boolean
  readonly hit: boolean
}

function judged (out: Outcome): Judged | undefined {
  if (out.proto === 'h1') {
    const r: WireResponse | undefined = out.o.responses[0]
    if (r === undefined) return undefined
    const headers = new Map<string, string[]>()
    for (const [n, v] of r.fields) headers.set(n.toLowerCase(), [...(headers.get(n.toLowerCase()) ?? []), v])
    return { status: r.status, headers, body: r.body, complete: r.complete, hit: isHit(field(r, 'cache-status')) }
  }
  const o = out.o
  if (o.headers === undefined) return undefined
  const headers = new Map<string, string[]>()
  for (const [n, v] of Object.entries(o.headers as IncomingHttpHeaders)) {
    if (v !== undefined && !n.startsWith(':')) headers.set(n, Array.isArray(v) ? v : [v])
  }
  const cs = headers.get('cache-status')
  return { status: o.status, headers, body: o.body, complete: o.ended && o.rstCode === undefined, hit: isHit(cs?.join(', ')) }
}

/** Switchyard's own Cache-Status entry says hit (an origin may send its own entries: RFC 9211). */
function isHit (cacheStatus: string | undefined): boolean {
  return cacheStatus !== undefined && cacheStatus.split(',').some((e) => /^\s*switchyard\s*;(.*;)?\s*hit\b/.test(e))
}

/** Problems with the protocol-level shape of an outcome; `expectAnswer`: a request that must be answered. */
function shapeProblems (out: Outcome, expectAnswer: boolean): string[] {
  const p: string[] = []
  if (out.proto === 'h1') {
    const o = out.o
    if (o.timedOut) p.push(`no answer and no close within ${LIMIT_MS} ms (got ${JSON.stringify(o.head.slice(0, 200))})`)
    if (o.malformed !== undefined) p.push(`malformed HTTP/1.1: ${o.malformed}; starts ${JSON.stringify(o.head.slice(0, 300))}`)
    if (expectAnswer && !o.timedOut && o.responses.length === 0 && o.malformed === undefined) p.push('connection closed without an answer')
    return p
  }
  const o = out.o
  if (o.timedOut) p.push(`h2: no response, RST_STREAM or GOAWAY within ${LIMIT_MS} ms`)
  if (o.headers !== undefined && !/^\d{3}$/.test(String(o.status))) p.push(`h2: bad :status ${String(o.status)}`)
  return p
}

/** 2: a 5xx the proxy made itself says which error it is. `originStatus`: the status the origin sent, if any. */
function errorProblems (j: Judged, originStatus: string | undefined): string[] {
  if (j.status === undefined || j.status < 500 || j.status > 599) return []
  if (j.headers.has('x-switchyard-error')) return []
  if (originStatus !== undefined && Number(originStatus) === j.status) return []
  return [`${j.status} without x-switchyard-error (origin sent ${originStatus ?? 'nothing'})`]
}

/** 3: a cache hit is complete and framed by its own length. */
function hitProblems (j: Judged, method: string): string[] {
  if (!j.hit) return []
  const p: string[] = []
  if (!j.complete) p.push('cache hit delivered incomplete (truncated or reset)')
  const cl = j.headers.get('content-length')
  if (cl !== undefined && method !== 'HEAD' && j.status !== 304 && j.status !== 206 && !(cl.length === 1 && Number(cl[0]) === j.body.length)) {
    p.push(`cache hit content-length ${cl.join(',')} but ${j.body.length} body bytes`)
  }
  return p
}

/** Hop-by-hop fields never reach the client (RFC 9110 §7.6.1), nor those the origin's Connection names. */
function hopProblems (j: Judged, answer: Answer): string[] {
  const p: string[] = []
  if (j.headers.has('x-switchyard-error')) return p // the proxy's own answer, not the origin's
  const named = answer.fields.filter(([n]) => n.toLowerCase() === 'connection')
    .flatMap(([, v]) => v.split(',').map((x) => x.trim().toLowerCase()))
    .filter((x) => x !== '' && x !== 'close' && x !== 'keep-alive')
  for (const name of ['proxy-connection', 'te', 'http2-settings', ...named]) {
    if (j.headers.has(name)) p.push(`hop-by-hop field ${name} passed to the client`)
  }
  if (j.status !== 101 && j.headers.has('upgrade')) p.push('upgrade passed to the client')
  return p
}

function describe (out: Outcome): string {
  if (out.proto === 'h1') {
    const o = out.o
    const r = o.responses[0]
    return r === undefined
      ? `h1: no response (${o.closed ? 'closed' : 'open'}${o.timedOut ? ', timed out' : ''})`
      : `h1: ${r.statusLine}${r.complete ? '' : ' (truncated)'}${o.closed ? ', closed' : ''}`
  }
  const o = out.o
  return `h2: ${o.status === undefined ? 'no response' : `:status ${o.status}`}${o.ended ? '' : ', no END_STREAM'}` +
    `${o.rstCode === undefined ? '' : `, RST_STREAM ${o.rstCode}`}${o.sessionError === undefined ? '' : `, ${o.sessionError}`}` +
    `${o.refused === undefined ? '' : `, client refused: ${o.refused}`}`
}

// ---- sending -------------------------------------------------------------------------

async function h2Connect (proxy: ChildProxy): Promise<ClientHttp2Session> {
  const session = http2.connect(`https://127.0.0.1:${proxy.port('tls')}`, { rejectUnauthorized: false })
  session.on('error', () => {})
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('h2: no connection within 3 s')), 3000)
    session.once('connect', () => { clearTimeout(timer); resolve() })
    session.once('close', () => { clearTimeout(timer); reject(new Error('h2: session closed while connecting')) })
  })
  return session
}

/** A plain GET (or HEAD) of `target` on `authority`, over any transport; `noCache` makes it go upstream. */
async function simpleGet (fx: Fixture, transport: Transport, session: () => Promise<ClientHttp2Session>,
  method: string, authority: string, target: string, noCache = false): Promise<Outcome> {
  if (transport === 'h2') {
    const headers = { ':method': method, ':path': target, ':authority': authority, ...(noCache ? { 'cache-control': 'no-cache' } : {}) }
    return { proto: 'h2', o: await h2Exchange(await session(), headers, undefined, LIMIT_MS) }
  }
  const extra = noCache ? 'Cache-Control: no-cache\r\n' : ''
  const bytes = Buffer.from(`${method} ${target} HTTP/1.1\r\nHost: ${authority}\r\n${extra}Connection: close\r\n\r\n`, 'latin1')
  return {
    proto: 'h1',
    o: await h1Exchange({ port: fx.proxy.port(transport === 'h1' ? 'plain' : 'tls'), tls: transport === 'h1-tls', chunks: [bytes], method, limitMs: LIMIT_MS })
  }
}

/** One h2 session per run, opened on first use; destroyed after. */
function lazySession (fx: Fixture): { get (): Promise<ClientHttp2Session>; close (): void } {
  let s: Promise<ClientHttp2Session> | undefined
  return {
    get () { s ??= h2Connect(fx.proxy); return s },
    close () { void s?.then((x) => x.destroy(), () => {}) }
  }
}

// ---- running a property with a budget --------------------------------------------

let runCounter = 0
/** A fresh tag per run, so runs (and shrinking steps) never share cache keys. */
function nextRun (): string {
  return `t${++runCounter}`
}

async function liveness (fx: Fixture): Promise<string[]> {
  const dead = await fx.proxy.check()
  return dead === undefined ? [] : [`PROXY NOT ALIVE after this batch: ${dead}`]
}

async function runProperty<T> (tt: Test, name: string, arb: fc.Arbitrary<T>, numRuns: number,
  body: (value: T, run: string) => Promise<string[]>, fx: Fixture): Promise<void> {
  const seed = SEED ?? (Date.now() ^ Math.floor(Math.random() * 0x7fffffff)) | 0
  tt.comment(`${name}: seed ${seed}, ${numRuns * RUNS} runs (replay: FUZZ_SEED=${seed} npx tap test/e2e/fuzz.test.ts)`)
  const deadline = Date.now() + BUDGET_MS * RUNS
  let executed = 0
  let skipped = 0
  const prop = fc.asyncProperty(arb, async (value) => {
    if (Date.now() > deadline) { skipped++; return true }
    executed++
    await fx.proxy.ensureRunning()
    const problems = await body(value, nextRun())
    if (problems.length > 0) throw new Error(problems.join('\n'))
    return true
  })
  const started = Date.now()
  const details = await fc.check(prop, { seed, numRuns: numRuns * RUNS })
  tt.comment(`${name}: ${executed} runs executed in ${Date.now() - started} ms, ${skipped} skipped past the budget, ` +
    `proxy restarted ${fx.proxy.restarts} times so far`)
  if (!details.failed) {
    tt.pass(`${name}: ${executed} runs`)
    return
  }
  const err = details.errorInstance
  const report = [
    `${name} FAILED: seed ${seed}, counterexample after ${details.numShrinks} shrinks:`,
    fc.stringify(details.counterexample),
    '--- problems:',
    err instanceof Error ? err.message : String(err),
    `--- replay: FUZZ_SEED=${seed} npx tap test/e2e/fuzz.test.ts (counterexample path ${details.counterexamplePath ?? '?'})`
  ].join('\n')
  tt.comment(report)
  tt.fail(`${name}: seed ${seed}: ${(err instanceof Error ? err.message : String(err)).split('\n')[0]!.slice(0, 300)}`)
}

// ---- arbitraries: the misbehaving origin's answers -------------------------------------

const NOW = new Date().toUTCString()
const LONG = 'x'.repeat(9000)

/** Fields HTTP/2 (Node) allows once per message, with plausible and odd values. */
const SINGLE_VALUE: Readonly<Record<string, readonly string[]>> = {
  'content-type': ['text/plain', 'application/json', 'text/html; charset=utf-8', ''],
  etag: ['"a"', '"b"', 'W/"a"', 'unquoted', '"a", "b"'],
  location: ['/x', 'http://fuzz.test/y', '//evil.test/', 'http://[::1/'],
  date: [NOW, 'Thu, 01 Jan 1970 00:00:00 GMT', 'garbage', '0'],
  'last-modified': [NOW, 'Thu, 01 Jan 1970 00:00:00 GMT', 'yesterday'],
  'x-content-type-options': ['nosniff', 'sniff'],
  age: ['0', '30', '100000', '-1', 'abc', '1.5'],
  expires: [NOW, '0', '-1', 'Thu, 01 Jan 2099 00:00:00 GMT'],
  'retry-after': ['1', '120', NOW, 'soon'],
  'user-agent': ['origin/1.0'],
  'content-location': ['/elsewhere', 'http://fuzz.test/echo/x'],
  'content-encoding': ['gzip', 'identity', 'br, gzip'],
  'content-range': ['bytes 0-1/2', 'bytes */10'],
  'access-control-max-age': ['60'],
  'content-language': ['en', 'fr'],
  'if-none-match': ['"a"'],
  from: ['a@b.test'],
  'max-forwards': ['1']
}
const SINGLE_NAMES = Object.keys(SINGLE_VALUE)

const CACHE_CONTROL = ['max-age=60', 'public', 'public, max-age=60', 's-maxage=60', 'max-age=60, s-maxage=0', 'must-revalidate, max-age=60',
  'max-age=60, stale-while-revalidate=30', 'max-age=60, stale-if-error=60', 'private="set-cookie", max-age=60', 'no-cache="x-a", max-age=60',
  'max-age=99999999999999', 'max-age="60"', 'public,,max-age=60', 'immutable, max-age=60']
const NOT_CACHEABLE = ['no-store', 'private', 'no-cache', 'max-age=0', 'max-age=-1', '']

/** Fields that may repeat, and fields a proxy must never pass on. */
const OTHER_FIELDS: readonly (readonly [string, readonly string[]])[] = [
  ['vary', ['*', 'accept', 'Accept, Accept-Encoding', '', ',,', 'host', `x-${'v'.repeat(300)}`, 'caf\xe9', 'accept, *', 'cookie', 'a b']],
  ['connection', ['close', 'keep-alive', 'x-hop', 'x-hop, te', 'content-type']],
  ['keep-alive', ['timeout=5']],
  ['transfer-encoding', ['gzip', 'identity', 'chunked, chunked']],
  ['upgrade', ['h2c', 'websocket']],
  ['te', ['trailers']],
  ['proxy-connection', ['keep-alive']],
  ['x-hop', ['secret']],
  ['set-cookie', ['a=b', 'a=b; Path=/']],
  ['server', ['origin', '']],
  ['x-switchyard-error', ['LB_ERR_SPOOFED']],
  ['cache-status', ['origin; hit']],
  ['via', ['1.1 origin']],
  ['link', ['</a>; rel=preload']],
  ['pragma', ['no-cache']],
  ['warning', ['110 - "stale"']]
]

/** Values no field should carry: empty, huge, obs-fold, non-ASCII and control bytes. */
const ODD_VALUES = ['', LONG, 'caf\xe9', '\xc3\xa9t\xc3\xa9', 'a\r\n b', 'a\r\n\tb', ' lead', 'trail ', 'a\x00b', 'a\x01b', 'a\x7fb']

const caseOf = (name: string, style: number): string =>
  style === 0 ? name : style === 1 ? name.replace(/(^|-)([a-z])/g, (_m, d: string, c: string) => d + c.toUpperCase()) : name.toUpperCase()

const valueFor = (pool: readonly string[]): fc.Arbitrary<string> =>
  fc.oneof({ weight: 5, arbitrary: fc.constantFrom(...pool) }, { weight: 1, arbitrary: fc.constantFrom(...ODD_VALUES) })

/** A single-value field sent 1-3 times, with the same value or different ones. */
const singleField: fc.Arbitrary<[string, string][]> = fc.constantFrom(...SINGLE_NAMES).chain((name) =>
  fc.record({
    style: fc.nat(2),
    values: fc.array(valueFor(SINGLE_VALUE[name]!), { minLength: 1, maxLength: 3 }),
    same: fc.boolean()
  }).map(({ style, values, same }) => values.map((v): [string, string] => [caseOf(name, style), same ? values[0]! : v])))

const otherField: fc.Arbitrary<[string, string][]> = fc.constantFrom(...OTHER_FIELDS).chain(([name, pool]) =>
  fc.tuple(fc.nat(2), valueFor(pool)).map(([style, v]): [string, string][] => [[caseOf(name, style), v]]))

const badName: fc.Arbitrary<[string, string][]> = fc.constantFrom<[string, string]>(['', 'v'], ['bad name', 'v'], ['x\x7f', 'v'], ['caf\xe9', 'v'], ['x(y)', 'v'])
  .map((f) => [f])

const cacheControlField: fc.Arbitrary<[string, string][]> = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...CACHE_CONTROL) },
  { weight: 1, arbitrary: fc.constantFrom(...NOT_CACHEABLE) }
).map((v): [string, string][] => [['Cache-Control', v]])

const framingArb: fc.Arbitrary<Framing> = fc.oneof(
  { weight: 8, arbitrary: fc.constant<Framing>({ kind: 'length', delta: 0 }) },
  { weight: 2, arbitrary: fc.integer({ min: -3, max: 3 }).filter((d) => d !== 0).map((delta): Framing => ({ kind: 'length', delta })) },
  { weight: 3, arbitrary: fc.constant<Framing>({ kind: 'chunked', flaw: 'none' }) },
  {
    weight: 2,
    arbitrary: fc.constantFrom('bad-size', 'no-last-chunk', 'no-crlf', 'extension', 'trailers', 'huge-size' as const)
      .map((flaw): Framing => ({ kind: 'chunked', flaw }))
  },
  { weight: 1, arbitrary: fc.constant<Framing>({ kind: 'none' }) },
  { weight: 1, arbitrary: fc.constantFrom(0, 1, 5).map((other): Framing => ({ kind: 'two-lengths', other })) },
  { weight: 1, arbitrary: fc.constant<Framing>({ kind: 'te-and-length' }) }
)

const answerArb: fc.Arbitrary<Answer> = fc.record({
  version: fc.oneof({ weight: 12, arbitrary: fc.constant('HTTP/1.1') }, { weight: 1, arbitrary: fc.constantFrom('HTTP/1.0', 'HTTP/2', 'http/1.1', 'ICY') }),
  interim: fc.oneof({ weight: 6, arbitrary: fc.constant([]) }, { weight: 1, arbitrary: fc.array(fc.constantFrom(100, 102, 103), { minLength: 1, maxLength: 2 }) }),
  status: fc.oneof(
    { weight: 8, arbitrary: fc.constantFrom('200', '203', '204', '206', '300', '301', '304', '404', '410', '500', '502', '503', '999') },
    { weight: 1, arbitrary: fc.constantFrom('100', '101', '103', '199', '600', '000', '1000', '20', 'abc') }
  ),
  reason: fc.oneof({ weight: 6, arbitrary: fc.constant('OK') }, { weight: 1, arbitrary: fc.constantFrom('', 'caf\xe9', 'x'.repeat(1000), 'a\tb') }),
  fields: fc.tuple(
    fc.oneof({ weight: 5, arbitrary: cacheControlField }, { weight: 1, arbitrary: fc.constant([]) }),
    fc.array(fc.oneof({ weight: 4, arbitrary: singleField }, { weight: 3, arbitrary: otherField }, { weight: 1, arbitrary: badName }), { maxLength: 5 })
  ).map(([cc, rest]) => [...cc, ...rest.flat()]),
  framing: framingArb,
  bodySize: fc.oneof({ weight: 8, arbitrary: fc.constantFrom(0, 1, 2, 10, 100) }, { weight: 2, arbitrary: fc.constantFrom(70_000, 300_000, 1_100_000) }),
  ending: fc.oneof({ weight: 8, arbitrary: fc.constant('keep' as const) }, { weight: 8, arbitrary: fc.constant('close' as const) },
    { weight: 1, arbitrary: fc.constantFrom('stall', 'stall-head', 'reset' as const) }),
  smuggle: fc.oneof({ weight: 8, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
  /** An origin that closes after the answer usually says so. */
  announceClose: fc.boolean()
}).map(({ announceClose, ...a }): Answer => announceClose && (a.ending === 'close' || a.ending === 'reset') ? { ...a, fields: [...a.fields, ['Connection', 'close']] } : a)

interface AnswerCase {
  readonly answer: Answer
  /** Who asks for it first (concurrently). */
  readonly requests: readonly { readonly transport: Transport; readonly method: 'GET' | 'HEAD' }[]
}

const answerCaseArb: fc.Arbitrary<AnswerCase> = fc.record({
  answer: answerArb,
  requests: fc.array(fc.record({
    transport: fc.constantFrom<Transport>('h1', 'h1-tls', 'h2'),
    method: fc.oneof({ weight: 4, arbitrary: fc.constant('GET' as const) }, { weight: 1, arbitrary: fc.constant('HEAD' as const) })
  }), { minLength: 1, maxLength: 2 })
})

/**
 * Whether the origin's answer is a complete, correctly framed message: then
 * the proxy has no excuse to give the client nothing (an empty close, or an h2
 * reset before any response). Statuses 204 and 304 and HEAD answers have no
 * body; a 304 may carry the Content-Length its 200 would have (RFC 9110 §8.6).
 */
function soundAnswer (a: Answer, method: string): boolean {
  if (!/^HTTP\/1\.[01]$/.test(a.version) || !/^[2-9]\d\d$/.test(a.status) || a.smuggle) return false
  if (a.ending !== 'keep' && a.ending !== 'close') return false
  if (a.fields.some(([n]) => /^(content-length|transfer-encoding)$/i.test(n))) return false
  const f = a.framing
  if (a.status === '204' || a.status === '304' || method === 'HEAD') {
    if (a.bodySize > 0) return false
    return f.kind === 'none' || (f.kind === 'length' && (f.delta === 0 || (f.delta > 0 && a.status === '304')))
  }
  switch (f.kind) {
    case 'length': return f.delta === 0
    case 'chunked': return f.flaw === 'none' || f.flaw === 'extension' || f.flaw === 'trailers'
    case 'none': return a.ending === 'close'
    default: return false
  }
}

/** For messages: the answer exactly as the origin writes it (head, then the body's first bytes). */
function answerText (a: Answer): string {
  const { head, body } = answerBytes(a)
  return JSON.stringify(head.toString('latin1') + body.subarray(0, 80).toString('latin1') + (body.length > 80 ? `…(${body.length} bytes)` : ''))
}

// ---- arbitraries: requests ------------------------------------------------------------

type TargetSpec =
  | { readonly form: 'origin'; readonly suffix: string }
  | { readonly form: 'absolute'; readonly scheme: string; readonly authority: string; readonly suffix: string }
  | { readonly form: 'asterisk' }
  | { readonly form: 'empty' }
  | { readonly form: 'relative'; readonly suffix: string }

type BodySpec =
  | { readonly kind: 'none' }
  /** Content-Length: size; `sent` bytes follow (fewer: the client stops and half-closes; more: pipelined garbage). */
  | { readonly kind: 'length'; readonly size: number; readonly sent: number }
  | { readonly kind: 'chunked'; readonly size: number; readonly flaw: 'none' | 'bad-size' | 'no-end' }
  | { readonly kind: 'te-and-length'; readonly size: number }
  | { readonly kind: 'two-lengths'; readonly size: number; readonly other: number }

interface RequestSpec {
  readonly transport: Transport
  readonly method: string
  readonly target: TargetSpec
  /** Host field values (h2: the first is :authority, a second goes in `host`). */
  readonly hosts: readonly string[]
  readonly fields: readonly (readonly [string, string])[]
  /** 120 extra fields (over limits.maxHeaderCount). */
  readonly flood: boolean
  readonly body: BodySpec
  readonly version: string
  readonly close: boolean
  readonly expect100: boolean
  readonly upgrade: 'none' | 'h2c' | 'websocket'
}

const SUFFIXES = ['', '/', '/a', '/a/../b', '/..', '/../..', '/%2e%2e/x', '/%2E./x', '//x', '///', '/%2fx', '/a%2f..%2fb', '?q=1',
  '/x?a=1&a=2', '?', '#frag', '/%00', '/%', '/%zz', '/\xff\xfe', '/caf\xc3\xa9', '/\xfc', `/${'a'.repeat(9000)}`, `?${'q'.repeat(20000)}`,
  '/a b', '/\t', '/"<>', '/;x', '/x;y=z', '/*', '/.', '/./x', '/%2e/', '/x/..%2f..%2fbad']

const suffixArb = fc.array(fc.constantFrom(...SUFFIXES), { maxLength: 3 }).map((parts) => parts.join(''))

const HOSTS = ['127.0.0.1', 'localhost', 'fuzz.test', 'FUZZ.Test', 'fuzz.test.', 'fuzz.test:80', 'fuzz.test:443', 'fuzz.test:', 'fuzz.test:99999',
  'fuzz.test:65536', 'fuzz.test:-1', 'fuzz.test:0', 'fuzz.test:8x', '[::1]', '[::1]:8443', '[::1', '::1', 'fuzz.test/x', 'fuzz.test/echo',
  'a/b/c', 'fuzz.test?x', 'fuzz.test#f', 'u@fuzz.test', 'u:p@fuzz.test', 'fuzz.test@evil.test', 'fuzz test', ' fuzz.test', '',
  'h'.repeat(300), 'caf\xe9.test', 'xn--caf-dma.test', '%66uzz.test', '..', '.', 'fuzz..test', '*', '_', 'fuzz.test\\x']
const hostArb = fc.oneof({ weight: 3, arbitrary: fc.constantFrom('fuzz.test', '127.0.0.1') }, { weight: 4, arbitrary: fc.constantFrom(...HOSTS) })

const REQUEST_NAMES = ['accept', 'accept-encoding', 'cookie', 'range', 'if-none-match', 'if-modified-since', 'if-range', 'cache-control',
  'pragma', 'authorization', 'connection', 'keep-alive', 'te', 'transfer-encoding', 'content-length', 'upgrade', 'proxy-connection',
  'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'forwarded', 'via', 'max-forwards', 'x-a', 'user-agent', 'origin',
  'content-type', 'expect', 'host']
const REQUEST_VALUES = ['', '0', '1', 'a', 'close', 'keep-alive', 'x-a', 'host', 'content-length', 'no-cache', 'max-age=0', 'only-if-cached',
  'max-stale', 'bytes=0-1', 'bytes=5-', 'bytes=-3', 'bytes=0-0,2-3', '"etag"', '*', NOW, 'trailers', 'chunked', 'gzip, chunked', 'h2c',
  'websocket', '1.1 other', '10.0.0.1', 'for=1.2.3.4', 'a=b; c=d', 'x'.repeat(20000), 'caf\xe9', 'a\tb', ' padded ', '100-continue']

const requestField: fc.Arbitrary<[string, string]> = fc.tuple(
  fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom(...REQUEST_NAMES) },
    { weight: 2, arbitrary: fc.stringMatching(/^[a-z][a-z0-9-]{0,12}$/) },
    { weight: 1, arbitrary: fc.constantFrom('', 'bad name', 'x\x7f', 'caf\xe9', 'x(y)') }
  ),
  fc.nat(2),
  fc.constantFrom(...REQUEST_VALUES)
).map(([name, style, value]) => [caseOf(name, style), value])

const targetArb: fc.Arbitrary<TargetSpec> = fc.oneof(
  { weight: 10, arbitrary: suffixArb.map((suffix): TargetSpec => ({ form: 'origin', suffix })) },
  {
    weight: 3,
    arbitrary: fc.record({ scheme: fc.constantFrom('http', 'https', 'HTTP', 'ftp'), authority: hostArb, suffix: suffixArb })
      .map((r): TargetSpec => ({ form: 'absolute', ...r }))
  },
  { weight: 1, arbitrary: fc.constantFrom<TargetSpec>({ form: 'asterisk' }, { form: 'empty' }) },
  { weight: 1, arbitrary: suffixArb.map((suffix): TargetSpec => ({ form: 'relative', suffix })) }
)

const bodyArb: fc.Arbitrary<BodySpec> = fc.oneof(
  { weight: 8, arbitrary: fc.constant<BodySpec>({ kind: 'none' }) },
  { weight: 3, arbitrary: fc.constantFrom(0, 1, 100, 70_000).map((size): BodySpec => ({ kind: 'length', size, sent: size })) },
  {
    weight: 1,
    arbitrary: fc.tuple(fc.constantFrom(5, 100), fc.constantFrom(-3, 3))
      .map(([size, d]): BodySpec => ({ kind: 'length', size, sent: size + d }))
  },
  { weight: 2, arbitrary: fc.record({ size: fc.constantFrom(0, 10, 70_000), flaw: fc.constantFrom('none', 'none', 'bad-size', 'no-end' as const) }).map((b): BodySpec => ({ kind: 'chunked', ...b })) },
  { weight: 1, arbitrary: fc.constant<BodySpec>({ kind: 'te-and-length', size: 10 }) },
  { weight: 1, arbitrary: fc.constant<BodySpec>({ kind: 'two-lengths', size: 10, other: 11 }) }
)

const requestArb: fc.Arbitrary<RequestSpec> = fc.record({
  transport: fc.constantFrom<Transport>('h1', 'h1-tls', 'h2'),
  method: fc.oneof(
    { weight: 8, arbitrary: fc.constant('GET') },
    { weight: 4, arbitrary: fc.constantFrom('HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH', 'TRACE') },
    { weight: 2, arbitrary: fc.constantFrom('PURGE', 'CONNECT', 'get', 'Get', 'FOO', 'M-SEARCH', 'PROPFIND', 'QUERY', 'G ET', '') }
  ),
  target: targetArb,
  hosts: fc.oneof(
    { weight: 1, arbitrary: fc.constant([]) },
    { weight: 8, arbitrary: hostArb.map((h) => [h]) },
    { weight: 2, arbitrary: fc.tuple(hostArb, fc.oneof(hostArb, fc.constant('fuzz.test'))).map(([a, b]) => [a, b]) }
  ),
  fields: fc.array(requestField, { maxLength: 5 }),
  flood: fc.oneof({ weight: 15, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
  body: bodyArb,
  version: fc.oneof({ weight: 15, arbitrary: fc.constant('HTTP/1.1') }, { weight: 1, arbitrary: fc.constantFrom('HTTP/1.0', 'HTTP/2.0', 'HTTP/1.2', '') }),
  close: fc.boolean(),
  expect100: fc.oneof({ weight: 8, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
  upgrade: fc.oneof({ weight: 12, arbitrary: fc.constant('none' as const) }, { weight: 1, arbitrary: fc.constantFrom('h2c', 'websocket' as const) })
})

/** The request target as written, with the run's tag in its path (so the origin's log tells what reached it). */
function targetOf (spec: TargetSpec, tag: string): string {
  switch (spec.form) {
    case 'origin': return `/echo/${tag}${spec.suffix}`
    case 'absolute': return `${spec.scheme}://${spec.authority}/echo/${tag}${spec.suffix}`
    case 'relative': return `echo/${tag}${spec.suffix}`
    case 'asterisk': return '*'
    case 'empty': return ''
  }
}

/**
 * The request's bytes; `incomplete`: the client may stop before its request is
 * complete (so it half-closes, and the proxy must close, answered or not);
 * `malformed`: its framing is broken, so a close without an answer is
 * acceptable (the server may reset before the client reads its 400).
 */
function h1Bytes (r: RequestSpec, tag: string): { chunks: Buffer[]; incomplete: boolean; malformed: boolean } {
  const lines = [`${r.method} ${targetOf(r.target, tag)}${r.version === '' ? '' : ` ${r.version}`}`]
  for (const h of r.hosts) lines.push(`Host: ${h}`)
  for (const [n, v] of r.fields) lines.push(`${n}: ${v}`)
  if (r.flood) for (let i = 0; i < 120; i++) lines.push(`x-flood-${i}: v`)
  if (r.expect100) lines.push('Expect: 100-continue')
  if (r.upgrade === 'h2c') lines.push('Connection: Upgrade, HTTP2-Settings', 'Upgrade: h2c', 'HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA')
  else if (r.upgrade === 'websocket') lines.push('Connection: Upgrade', 'Upgrade: websocket', 'Sec-WebSocket-Version: 13', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==')
  else if (r.close) lines.push('Connection: close')
  const b = r.body
  let body = Buffer.alloc(0)
  let incomplete = false
  switch (b.kind) {
    case 'none': break
    case 'length':
      lines.push(`Content-Length: ${b.size}`)
      body = Buffer.alloc(Math.max(0, b.sent), 0x62)
      incomplete = b.sent < b.size
      break
    case 'chunked':
      lines.push('Transfer-Encoding: chunked')
      body = Buffer.concat([
        Buffer.from(b.size === 0 ? '' : `${b.flaw === 'bad-size' ? 'zz' : b.size.toString(16)}\r\n`, 'latin1'),
        Buffer.alloc(b.size, 0x62),
        Buffer.from(b.size === 0 ? '' : '\r\n', 'latin1'),
        Buffer.from(b.flaw === 'no-end' ? '' : '0\r\n\r\n', 'latin1')
      ])
      incomplete = b.flaw === 'no-end'
      break
    case 'te-and-length':
      lines.push(`Content-Length: ${b.size}`, 'Transfer-Encoding: chunked')
      body = Buffer.from(`${b.size.toString(16)}\r\n${'b'.repeat(b.size)}\r\n0\r\n\r\n`, 'latin1')
      break
    case 'two-lengths':
      lines.push(`Content-Length: ${b.size}`, `Content-Length: ${b.other}`)
      body = Buffer.alloc(b.size, 0x62)
      break
  }
  // A Content-Length or Transfer-Encoding among the random fields makes the framing anyone's guess.
  const ambiguous = r.fields.some(([n]) => /^(content-length|transfer-encoding)$/i.test(n))
  const malformed = ambiguous || incomplete || b.kind === 'te-and-length' || b.kind === 'two-lengths' ||
    (b.kind === 'chunked' && b.flaw !== 'none') || (b.kind === 'length' && b.sent !== b.size)
  return { chunks: [Buffer.from(lines.join('\r\n') + '\r\n\r\n', 'latin1'), body], incomplete: incomplete || ambiguous, malformed }
}

function h2Request (r: RequestSpec, tag: string): { headers: OutgoingHttpHeaders; body: Buffer | undefined } {
  const headers: Record<string, string | string[]> = {}
  for (const [n, v] of r.fields) {
    const k = n.toLowerCase()
    const prev = headers[k]
    headers[k] = prev === undefined ? v : [...(Array.isArray(prev) ? prev : [prev]), v]
  }
  if (r.flood) for (let i = 0; i < 120; i++) headers[`x-flood-${i}`] = 'v'
  if (r.expect100) headers.expect = '100-continue'
  headers[':method'] = r.method
  if (r.hosts[0] !== undefined) headers[':authority'] = r.hosts[0]
  if (r.hosts[1] !== undefined) headers.host = r.hosts[1]
  if (r.method !== 'CONNECT') headers[':path'] = targetOf(r.target, tag)
  let body: Buffer | undefined
  const b = r.body
  if (b.kind === 'length') {
    headers['content-length'] = String(b.size)
    body = Buffer.alloc(Math.max(0, b.sent), 0x62)
  } else if (b.kind !== 'none') {
    body = Buffer.alloc(b.size, 0x62)
  }
  return { headers: headers as OutgoingHttpHeaders, body }
}

/** For messages: the request as sent (long parts cut, the flood summarized). */
function requestText (r: RequestSpec, tag: string): string {
  const cut = (x: string): string => x.length > 300 ? `${x.slice(0, 300)}…(${x.length} chars)` : x
  const flood = r.flood ? ' + 120 x-flood-N fields' : ''
  if (r.transport === 'h2') {
    const { headers, body } = h2Request({ ...r, flood: false }, tag)
    const shown = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, typeof v === 'string' ? cut(v) : v]))
    return `h2 ${JSON.stringify(shown)}${flood}${body === undefined ? '' : ` + ${body.length} body bytes`}`
  }
  const { chunks } = h1Bytes({ ...r, flood: false }, tag)
  const head = chunks[0]!.toString('latin1')
  return `${r.transport} ${JSON.stringify(head.split('\r\n').map(cut).join('\r\n'))}${flood}${chunks[1]!.length > 0 ? ` + ${chunks[1]!.length} body bytes` : ''}`
}

// ---- the echo oracle ------------------------------------------------------------------

// RFC 9112 §3.2 / RFC 3986 §3.2.2: Host = uri-host [ ":" port ].
const VALID_HOST = /^(?:\[[0-9A-Fa-f:.]+\]|(?:[A-Za-z0-9\-._~!$&'()*+,;=]|%[0-9A-Fa-f]{2})*)(?::[0-9]*)?$/

/** What the proxy should take as authority and origin-form target, as RFC 9112 §3.2 says. */
function effective (r: RequestSpec, tag: string): { authority: string | undefined; target: string; hostFields: number } {
  const raw = targetOf(r.target, tag)
  if (r.transport !== 'h2' && r.target.form === 'absolute' && /^https?$/i.test(r.target.scheme)) {
    const start = raw.indexOf('//') + 2
    let end = raw.indexOf('/', start)
    const q = raw.indexOf('?', start)
    if (end === -1 || (q !== -1 && q < end)) end = q
    const target = end === -1 ? '/' : raw.slice(end)
    return { authority: end === -1 ? raw.slice(start) : raw.slice(start, end), target: target.startsWith('?') ? `/${target}` : target, hostFields: r.hosts.length }
  }
  // HTTP/1.1 parsers strip the optional whitespace around a field value (RFC 9112 §5.1).
  const host = r.hosts[0]
  return { authority: host === undefined || r.transport === 'h2' ? host : host.replace(/^[ \t]+|[ \t]+$/g, ''), target: raw, hostFields: r.hosts.length }
}

/**
 * Host as the proxy may normalise it (lower case, trailing dot, leading zeros
 * in the port, the scheme's default or an empty port): two spellings that
 * normalise alike name the same origin.
 */
function normalizeHost (scheme: 'http' | 'https', authority: string): string {
  let host = authority.toLowerCase()
  let port = ''
  const colon = host.lastIndexOf(':')
  if (colon >= 0 && colon > host.lastIndexOf(']')) {
    port = host.slice(colon + 1).replace(/^0+(?=\d)/, '')
    host = host.slice(0, colon)
  }
  if (host.endsWith('.')) host = host.slice(0, -1)
  return port === '' || port === (scheme === 'https' ? '443' : '80') ? host : `${host}:${port}`
}

interface EchoBody { readonly echo: true; readonly hosts: readonly string[]; readonly url: string; readonly method: string }

function echoOf (j: Judged): EchoBody | undefined {
  if (j.status !== 200 || j.body.length === 0) return undefined
  try {
    const v = JSON.parse(j.body.toString('latin1')) as EchoBody
    return v.echo === true ? v : undefined
  } catch {
    return undefined
  }
}

/**
 * An echo answer must come from the origin the request named: a Host that
 * differs (after normalisation) is a poisoned cache or a misroute. The path
 * may legitimately differ (the proxy normalises dot-segments and encodings),
 * so a cache hit's path is checked against `forwarded`: what the origin saw
 * when the same request went upstream (see `groundTruth`).
 */
function echoProblems (j: Judged, scheme: 'http' | 'https', authority: string, target: string, forwarded?: EchoBody): string[] {
  const e = echoOf(j)
  if (e === undefined) return []
  const seenHost = e.hosts[0] ?? ''
  const what = `${j.hit ? 'CACHE HIT' : 'answer'} for Host ${JSON.stringify(authority)} ${JSON.stringify(target)} is the origin's answer to ` +
    `Host ${JSON.stringify(e.hosts)} ${JSON.stringify(e.url)}`
  // The origin sees the proxy's normalised Host (normalising it again could strip one more trailing dot).
  const sameHost = normalizeHost(scheme, seenHost) === normalizeHost(scheme, authority) || seenHost.toLowerCase() === normalizeHost(scheme, authority)
  if (e.hosts.length !== 1 || !sameHost) return [what]
  if (forwarded !== undefined && (forwarded.url !== e.url || normalizeHost(scheme, forwarded.hosts[0] ?? '') !== normalizeHost(scheme, seenHost))) {
    return [`${what}, but this request goes upstream as Host ${JSON.stringify(forwarded.hosts)} ${JSON.stringify(forwarded.url)}`]
  }
  return []
}

// ---- the properties -------------------------------------------------------------------

t.test('fuzz', async (t) => {
  const fx = await setup(t)

  await t.test('misbehaving origin: the proxy stays up, answers well-formed, stores nothing malformed', async (t) => {
    await runProperty(t, 'origin answers', fc.array(answerCaseArb, { minLength: 1, maxLength: 4 }), 60, async (cases, run) => {
      const problems: string[] = []
      const session = lazySession(fx)
      try {
        const ids = cases.map((c, i) => {
          const id = `${run}x${i}z`
          fx.raw.answers.set(id, c.answer)
          return id
        })
        const judge = (what: string, c: AnswerCase, method: string, out: Outcome): void => {
          const j = judged(out)
          const sound = soundAnswer(c.answer, method)
          const ps = [...shapeProblems(out, sound)]
          if (j !== undefined) {
            ps.push(...errorProblems(j, c.answer.status), ...hitProblems(j, method), ...hopProblems(j, c.answer))
            if (!c.answer.smuggle && j.body.includes('SMUGGLED')) ps.push('the body of a response the origin smuggled behind another one')
            if (sound && !j.complete && !j.headers.has('x-switchyard-error')) ps.push('truncated, though the origin\'s answer was complete')
          }
          if (out.proto === 'h2') {
            // The requests here are plain GET / HEAD: a PROTOCOL_ERROR means the response was malformed.
            if (out.o.rstCode === 1) ps.push('h2 stream reset with PROTOCOL_ERROR (a malformed h2 response)')
            else if (sound && j === undefined && !out.o.timedOut) ps.push('h2 stream reset before any response to a sound origin answer')
          }
          if (ps.length > 0) problems.push(`${what} → ${describe(out)}: ${ps.join('; ')}\n    origin answer: ${answerText(c.answer)}`)
        }
        // First requests, concurrently.
        await Promise.all(cases.flatMap((c, i) => c.requests.map(async (r) => {
          const out = await simpleGet(fx, r.transport, session.get, r.method, 'fuzz.test', `/bad/${ids[i]}/x`)
          judge(`${r.method} /bad/${ids[i]}/x over ${r.transport}`, c, r.method, out)
        })))
        problems.push(...await liveness(fx))
        if (problems.length > 0) return problems
        // Everything again over h1 and h2: a stored answer must serve both.
        await Promise.all(cases.flatMap((c, i) => (['h1-tls', 'h2', 'h1'] as const).map(async (transport) => {
          const out = await simpleGet(fx, transport, session.get, 'GET', 'fuzz.test', `/bad/${ids[i]}/x`)
          judge(`again: GET /bad/${ids[i]}/x over ${transport}`, c, 'GET', out)
        })))
        problems.push(...await liveness(fx))
      } finally {
        session.close()
      }
      return problems
    }, fx)
  })

  await t.test('fuzzed requests: the proxy stays up, answers well-formed, validates Host, keys the cache by what it forwards', async (t) => {
    await runProperty(t, 'requests', fc.array(requestArb, { minLength: 1, maxLength: 5 }), 300, async (reqs, run) => {
      const problems: string[] = []
      const session = lazySession(fx)
      const refetch = new Map<string, { scheme: 'http' | 'https'; authority: string; target: string }>()
      try {
        await Promise.all(reqs.map(async (r, i) => {
          const tag = `${run}x${i}z`
          const eff = effective(r, tag)
          const bytes = h1Bytes(r, tag)
          let out: Outcome
          if (r.transport === 'h2') {
            const { headers, body } = h2Request(r, tag)
            out = { proto: 'h2', o: await h2Exchange(await session.get(), headers, body, LIMIT_MS) }
            if (out.o.refused !== undefined) return // Node's client would not send it
          } else {
            const { chunks, incomplete } = bytes
            out = {
              proto: 'h1',
              o: await h1Exchange({ port: fx.proxy.port(r.transport === 'h1' ? 'plain' : 'tls'), tls: r.transport === 'h1-tls', chunks, endAfterWrite: incomplete, method: r.method, limitMs: LIMIT_MS })
            }
          }
          const j = judged(out)
          const ps = [...shapeProblems(out, !bytes.malformed)]
          const scheme = r.transport === 'h1' ? 'http' : 'https'
          if (j !== undefined) ps.push(...errorProblems(j, undefined), ...hitProblems(j, r.method))
          // 4: Host validation. h2 may carry both :authority and Host (differing is only a SHOULD, not checked).
          const badHost = (r.transport !== 'h2' && eff.hostFields > 1) ||
            (eff.authority !== undefined && eff.authority !== '' && !VALID_HOST.test(eff.authority))
          if (badHost) {
            const reached = fx.echo.requests.some((s) => s.url.includes(tag))
            if (reached) ps.push('request with an invalid or repeated Host reached the origin')
            if (j?.status !== undefined && (j.status < 400 || j.status > 499)) ps.push(`invalid or repeated Host answered ${j.status}, not 4xx`)
          } else if (j !== undefined && eff.authority !== undefined) {
            ps.push(...echoProblems(j, scheme, eff.authority, eff.target))
          }
          if (ps.length > 0) problems.push(`${requestText(r, tag)} → ${describe(out)}: ${ps.join('; ')}`)
          // The URL this request named, as a client would write it: fetched again below.
          if (j?.status === 200 && eff.authority !== undefined) {
            let u: URL | undefined
            try { u = new URL(`${scheme}://${eff.authority}${eff.target}`) } catch { u = undefined }
            if (u !== undefined && u.host !== '' && u.pathname.startsWith('/')) {
              refetch.set(`${scheme} ${u.host} ${u.pathname}${u.search}`, { scheme, authority: u.host, target: u.pathname + u.search })
            }
          }
        }))
        problems.push(...await liveness(fx))
        if (problems.length > 0) return problems
        for (const u of refetch.values()) {
          for (const transport of u.scheme === 'http' ? ['h1'] as const : ['h1-tls', 'h2'] as const) {
            const out = await simpleGet(fx, transport, session.get, 'GET', u.authority, u.target)
            const j = judged(out)
            const ps = [...shapeProblems(out, true)]
            // A hit: what would this request have been forwarded as? Ask the origin (no-cache).
            const truth = j?.hit === true && echoOf(j) !== undefined
              ? judged(await simpleGet(fx, transport, session.get, 'GET', u.authority, u.target, true))
              : undefined
            const forwarded = truth === undefined ? undefined : echoOf(truth)
            if (j !== undefined) ps.push(...errorProblems(j, undefined), ...hitProblems(j, 'GET'), ...echoProblems(j, u.scheme, u.authority, u.target, forwarded))
            if (ps.length > 0) problems.push(`again: GET ${u.scheme}://${u.authority}${u.target} over ${transport} → ${describe(out)}: ${ps.join('; ')}`)
          }
        }
        problems.push(...await liveness(fx))
      } finally {
        session.close()
      }
      return problems
    }, fx)
  })

  await t.test('regressions: each defect this fuzz found, as the exact bytes that trigger it', async (t) => {
    await regressions(t, fx)
  })
})

// ---- regressions ---------------------------------------------------------------------
// One deterministic check per defect the properties found (minimised by hand),
// so a fix can be verified directly and stays verified. Each starts from a live
// proxy and ends with it alive.

const OK_ANSWER: Answer = {
  version: 'HTTP/1.1', interim: [], status: '200', reason: 'OK', fields: [], framing: { kind: 'length', delta: 0 },
  bodySize: 2, ending: 'keep', smuggle: false
}

async function regressions (t: Test, fx: Fixture): Promise<void> {
  let n = 0
  /** Registers `answer` under a fresh id; returns its path. */
  const serve = (answer: Partial<Answer>): string => {
    const id = `reg${++n}z`
    fx.raw.answers.set(id, { ...OK_ANSWER, ...answer })
    return `/bad/${id}/x`
  }
  const h2get = async (path: string, authority = 'fuzz.test'): Promise<H2Outcome> => {
    const session = await h2Connect(fx.proxy)
    try {
      return await h2Exchange(session, { ':method': 'GET', ':path': path, ':authority': authority }, undefined, 3000)
    } finally {
      session.destroy()
    }
  }
  /** `text` in one write, then `body` (if any) in a second one: a body in its own segment matters for some defects. */
  const h1raw = (listener: 'plain' | 'tls', text: string, body?: string): Promise<WireOutcome> =>
    h1Exchange({
      port: fx.proxy.port(listener),
      tls: listener === 'tls',
      chunks: [Buffer.from(text, 'latin1'), ...(body === undefined ? [] : [Buffer.from(body, 'latin1')])],
      method: text.slice(0, text.indexOf(' ')),
      limitMs: 3000
    })
  const h1get = (listener: 'plain' | 'tls', path: string, host = 'fuzz.test'): Promise<WireOutcome> =>
    h1raw(listener, `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`)
  const alive = async (t: Test): Promise<void> => {
    const dead = await fx.proxy.check()
    t.equal(dead, undefined, 'the proxy is still alive')
    if (dead !== undefined) t.comment(dead)
  }
  const answered = (t: Test, o: H2Outcome, what: string): void => {
    t.notOk(o.timedOut, `${what}: answered or reset within 3 s, not left hanging`)
  }
  /**
   * An HTTP/1.1 GET by a client that reads nothing for half a second: all it
   * got, head included, and whether the proxy closed the connection (not our
   * 5 s limit).
   */
  const slowH1Get = (path: string): Promise<{ bytes: Buffer; closedByProxy: boolean }> => new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port: fx.proxy.port('plain') })
    const chunks: Buffer[] = []
    let closedByProxy = true
    const timer = setTimeout(() => { closedByProxy = false; socket.destroy() }, 5000)
    socket.once('connect', () => socket.write(`GET ${path} HTTP/1.1\r\nHost: fuzz.test\r\n\r\n`))
    socket.pause()
    setTimeout(() => { socket.on('data', (c: Buffer) => { chunks.push(c) }).resume() }, 500)
    socket.on('error', () => {})
    socket.once('close', () => { clearTimeout(timer); resolve({ bytes: Buffer.concat(chunks), closedByProxy }) })
  })
  /** One HTTP/1.1 GET of a 4 MB answer the origin closes after, read after a 500 ms pause; true if all went well. */
  const slowH1Reader = async (t: Test, attempt: number): Promise<boolean> => {
    const path = serve({ fields: [['Connection', 'close']], bodySize: 4_000_000, ending: 'close' })
    const got = (await slowH1Get(path)).bytes.length
    const complete = got > 4_000_000
    t.ok(complete, `HTTP/1.1 slow reader, try ${attempt}: the whole body arrives (got ${got} bytes with the head)`)
    const dead = await fx.proxy.check()
    t.equal(dead, undefined, `HTTP/1.1 slow reader, try ${attempt}: the proxy is still alive`)
    return complete && dead === undefined
  }

  await t.test('repeated single-value field, stored via HTTP/1.1, fetched over h2: no crash', async (t) => {
    await fx.proxy.ensureRunning()
    for (const fields of [
      [['Cache-Control', 'max-age=60'], ['X-Content-Type-Options', 'nosniff'], ['X-Content-Type-Options', 'nosniff']],
      [['Cache-Control', 'max-age=60'], ['ETag', '"a"'], ['ETag', '"b"']]
    ] as [string, string][][]) {
      await fx.proxy.ensureRunning()
      const path = serve({ fields })
      const first = await h1get('tls', path)
      const r = first.responses[0]
      t.ok(r?.status === 200 || (r?.status === 502 && field(r, 'x-switchyard-error') !== undefined),
        `${JSON.stringify(fields)}: the HTTP/1.1 client gets the answer or our 502 (got ${describe({ proto: 'h1', o: first })})`)
      const o = await h2get(path)
      answered(t, o, 'h2')
      t.ok(o.status === 200 || (o.status === 502 && o.headers?.['x-switchyard-error'] !== undefined), `h2 gets a 200 or our 502, got ${describe({ proto: 'h2', o })}`)
      await alive(t)
    }
  })

  await t.test('repeated single-value field on an uncached answer over h2: answered, not left hanging', async (t) => {
    await fx.proxy.ensureRunning()
    const path = serve({ fields: [['Retry-After', '1'], ['Retry-After', '2']] })
    const o = await h2get(path)
    answered(t, o, 'h2')
    t.ok(o.status !== undefined || o.rstCode !== undefined, `h2 gets a response or a reset, got ${describe({ proto: 'h2', o })}`)
    await alive(t)
  })

  await t.test('reason phrase with obs-text or DEL: HTTP/1.1 clients get an answer, not a hang', async (t) => {
    for (const reason of ['caf\xe9', '\x7f']) {
      await fx.proxy.ensureRunning()
      const o = await h1get('plain', serve({ reason }))
      t.notOk(o.timedOut, `${JSON.stringify(reason)}: answered or closed within 3 s`)
      t.ok(o.responses[0] !== undefined && o.responses[0].complete, `${JSON.stringify(reason)}: a complete answer (got ${describe({ proto: 'h1', o })})`)
      await alive(t)
    }
  })

  await t.test('request line with HTTP/2.0 on an HTTP/1.1 connection: an error answer, no crash', async (t) => {
    for (const listener of ['plain', 'tls'] as const) {
      await fx.proxy.ensureRunning()
      const o = await h1raw(listener, 'GET /echo/v2 HTTP/2.0\r\nHost: fuzz.test\r\n\r\n')
      const status = o.responses[0]?.status
      t.ok(status !== undefined && status >= 400 && status <= 599, `${listener}: 4xx/5xx answer (got ${describe({ proto: 'h1', o })})`)
      await alive(t)
    }
  })

  await t.test('origin closes right after a large Content-Length body while the client applies backpressure: complete, no crash', async (t) => {
    for (const fields of [[['Connection', 'close']], []] as [string, string][][]) {
      await fx.proxy.ensureRunning()
      const o = await h2get(serve({ fields, bodySize: 1_100_000, ending: 'close' }))
      t.ok(o.status === 200 && o.ended && o.body.length === 1_100_000,
        `${fields.length > 0 ? 'with' : 'without'} Connection: close: the whole 1,100,000 bytes arrive (got ${describe({ proto: 'h2', o })}, ${o.body.length} bytes)`)
      await alive(t)
    }
    // The same with an HTTP/1.1 client that does not read for half a second. Whether
    // undici's parser is paused when the FIN arrives is a race: three tries.
    await fx.proxy.ensureRunning()
    for (let attempt = 1; attempt <= 3; attempt++) {
      if (!await slowH1Reader(t, attempt)) break
    }
  })

  await t.test('Upgrade request (h2c, websocket) with a Content-Length body: answered, not left hanging', async (t) => {
    for (const [method, name, upgrade] of [['GET', 'h2c', 'Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA'],
      ['DELETE', 'websocket', 'Connection: Upgrade\r\nUpgrade: websocket'], ['HEAD', 'websocket', 'Connection: Upgrade\r\nUpgrade: websocket']] as const) {
      await fx.proxy.ensureRunning()
      const o = await h1raw('plain', `${method} /echo/upgradebody HTTP/1.1\r\nHost: fuzz.test\r\n${upgrade}\r\nContent-Length: 1\r\n\r\n`, 'b')
      t.notOk(o.timedOut, `${method} + Upgrade: ${name}: answered or closed within 3 s (got ${describe({ proto: 'h1', o })})`)
      t.ok(o.responses[0] !== undefined, `${method} + Upgrade: ${name}: an answer arrives`)
      await alive(t)
    }
  })

  await t.test('304 with the Content-Length of its 200 and no body (RFC 9110 §8.6): HTTP/1.1 clients get the 304', async (t) => {
    await fx.proxy.ensureRunning()
    const o = await h1get('plain', serve({ status: '304', reason: 'Not Modified', fields: [['ETag', '"a"']], bodySize: 0, framing: { kind: 'length', delta: 2 } }))
    t.equal(o.responses[0]?.status, 304, `a 304 arrives (got ${describe({ proto: 'h1', o })})`)
    await alive(t)
  })

  await t.test('204 with a Content-Length from the origin: h2 clients get a well-formed 204', async (t) => {
    await fx.proxy.ensureRunning()
    const o = await h2get(serve({ status: '204', reason: 'No Content', bodySize: 0, framing: { kind: 'length', delta: 5 } }))
    t.ok(o.status === 204 && o.rstCode === undefined, `a 204 without PROTOCOL_ERROR (got ${describe({ proto: 'h2', o })})`)
    await alive(t)
  })

  await t.test('origin closes (FIN or RST) short of its Content-Length while the client applies backpressure: an error, no crash', async (t) => {
    // undici 7 pauses its parser under backpressure; when the origin's close then
    // arrives with all bytes parsed, it asserts the parser is not paused
    // (nodejs/undici#5360) and the assertion is thrown from a socket event.
    // Found as: HEAD, then GETs of 102 + 200 Connection: close, Content-Length
    // 300,003 and 300,000 bytes.
    for (const ending of ['close', 'reset'] as const) {
      for (const fields of [[['Connection', 'close']], []] as [string, string][][]) {
        await fx.proxy.ensureRunning()
        const what = `${ending}${fields.length > 0 ? ' with Connection: close' : ''}`
        const path = serve({ fields, bodySize: 1_100_000, framing: { kind: 'length', delta: 3 }, ending })
        const o = await h2get(path)
        answered(t, o, `${what}: h2`)
        t.ok(!o.ended || o.body.length < 1_100_003, `${what}: h2 never gets a complete-looking answer (got ${describe({ proto: 'h2', o })}, ${o.body.length} bytes)`)
        await alive(t)
        const got = await slowH1Get(`${path}?h1`)
        const headEnd = got.bytes.indexOf('\r\n\r\n')
        const length = /\r\ncontent-length: *(\d+)/i.exec(got.bytes.subarray(0, headEnd).toString('latin1'))?.[1]
        const body = headEnd < 0 ? 0 : got.bytes.length - headEnd - 4
        t.ok(got.closedByProxy, `${what}: HTTP/1.1 slow reader: the proxy closes the connection`)
        t.ok(headEnd < 0 || (length !== undefined && body < Number(length)),
          `${what}: HTTP/1.1 slow reader: no answer, or fewer body bytes than its Content-Length (${body} of ${length ?? 'none'})`)
        await alive(t)
      }
    }
  })

  await t.test('Host with / ? @ or a repeated Host: 400, never forwarded, never poisons the cache', async (t) => {
    await fx.proxy.ensureRunning()
    for (const [i, host] of ['fuzz.test/x', 'fuzz.test?x', 'u@fuzz.test', 'fuzz test'].entries()) {
      const o = await h1get('plain', `/echo/reghost${i}z`, host)
      t.equal(o.responses[0]?.status, 400, `Host ${JSON.stringify(host)}: 400 (got ${describe({ proto: 'h1', o })})`)
      t.notOk(fx.echo.requests.some((r) => r.url.includes(`reghost${i}z`)), `Host ${JSON.stringify(host)}: not forwarded`)
    }
    // The poisoned entry would be stored under http://fuzz.test/x/echo/reghost0z.
    const victim = await h1get('plain', '/x/echo/reghost0z')
    const body = victim.responses[0]?.body.toString('latin1') ?? ''
    t.match(body, /"url":"\/x\/echo\/reghost0z"/, 'Host fuzz.test GET /x/echo/reghost0z gets its own answer, not the one for Host fuzz.test/x')
    const twice = await h1raw('plain', 'GET /echo/reghost9z HTTP/1.1\r\nHost: fuzz.test\r\nHost: other.test\r\nConnection: close\r\n\r\n')
    t.equal(twice.responses[0]?.status, 400, `two Host fields: 400 (RFC 9112 §3.2) (got ${describe({ proto: 'h1', o: twice })})`)
    await alive(t)
  })

  await t.test('an origin that answers 431 and resets while the request body still comes: its head and the cut, or our 502; never nothing', async (t) => {
    // The echo origin (Node, 16 KiB header limit) answers an 18 KB target
    // with a close-delimited 431 and a reset (the body it did not read).
    // With the proxy's head for it written but held by Node, the reset
    // closed the client connection with nothing sent (seed 1170646768). A
    // race: origin-truncation.test.ts (/head-rst) is the deterministic form.
    for (let i = 0; i < 8; i++) {
      await fx.proxy.ensureRunning()
      const o = await h1raw('tls', `QUERY /echo/reg431x${i}z/${'a'.repeat(18_000)} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n`,
        'a\r\n0123456789\r\n0\r\n\r\n')
      const r = o.responses[0]
      t.ok(r !== undefined && (r.status === 431 || (r.status === 502 && field(r, 'x-switchyard-error') !== undefined)),
        `try ${i}: the origin's 431 or our 502 (got ${describe({ proto: 'h1', o })})`)
    }
    await alive(t)
  })

  await t.test('Expect: 100-continue, Connection: close and a broken chunk size: a 400 after the 100, not a hang', async (t) => {
    // Node's parse error came while the request was being answered; it must
    // still end that request (seed 1170646768, once the case above was fixed).
    await fx.proxy.ensureRunning()
    const o = await h1raw('plain', 'GET /echo/regexpect HTTP/1.1\r\nHost: fuzz.test\r\nExpect: 100-continue\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n',
      'zz\r\n0123456789\r\n0\r\n\r\n')
    t.notOk(o.timedOut, 'answered or closed within 3 s')
    t.equal(o.responses[0]?.status, 400, `a 400 (got ${describe({ proto: 'h1', o })})`)
    await alive(t)
  })
}
