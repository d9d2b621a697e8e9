// Collapsed misses wait on one fetch. When that fetch ends with nothing
// stored for a reason that says nothing about the URL (its client went
// away, it was a HEAD), one waiter takes the fetch over and the others keep
// waiting, instead of all of them going upstream at once (a client aborting
// a slow miss would otherwise let a whole queue loose on the origin).
import http from 'node:http'
import t from 'tap'
import type { Test } from 'tap'
import { request } from 'undici'
import { startOrigin, type Origin } from '../helpers/origin.js'
import { startProxy, type RunningProxy } from '../helpers/proxy.js'

const WAITERS = 5

interface HeldOrigin {
  readonly o: Origin
  /** The first request's response, once it is held. */
  readonly first: Promise<http.ServerResponse>
}

/** Holds the first request (answered by the test, or cut on teardown); answers the others `fetch <n>`, storable. */
async function origin (t: Test): Promise<HeldOrigin> {
  let hold!: (res: http.ServerResponse) => void
  const first = new Promise<http.ServerResponse>((resolve) => { hold = resolve })
  const o = await startOrigin(t, (_seen, res) => {
    const n = o.requests.length
    if (n === 1) {
      t.teardown(() => { res.destroy() })
      return hold(res)
    }
    const body = `fetch ${n}`
    res.writeHead(200, { 'cache-control': 'max-age=60', 'content-length': String(body.length) }).end(body)
  })
  return { o, first }
}

async function proxy (t: Test, o: Origin): Promise<RunningProxy> {
  return startProxy(t, `
listeners: [{ name: web, bind: "127.0.0.1:0" }]
cache: { collapseTimeout: 20s }
routes: [{ backend: o }]
backends: { o: { retries: { attempts: 0 }, servers: [{ url: "${o.url}" }] } }
`)
}

async function waiters (p: RunningProxy): Promise<Array<{ body: string, cache: string }>> {
  return Promise.all(Array.from({ length: WAITERS }, async () => {
    const r = await request(p.url('web') + '/slow')
    return { body: await r.body.text(), cache: String(r.headers['cache-status']) }
  }))
}

/** Long enough for the waiters' requests to reach the cache on a loaded machine. */
const settle = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 300))

t.test('the leader\'s client aborts: one waiter fetches for the rest', async (t) => {
  const { o, first } = await origin(t)
  const p = await proxy(t, o)
  const leader = http.get(`${p.url('web')}/slow`, { agent: false })
  leader.on('error', () => {})
  await first
  const answers = waiters(p)
  await settle()
  leader.destroy()
  const got = await answers
  t.equal(o.requests.length, 2, 'the aborted fetch, then one more for every waiter')
  t.ok(got.every((r) => r.body === 'fetch 2'), 'all answered from the fetch that took over')
  t.equal(got.filter((r) => /collapsed/.test(r.cache)).length, WAITERS - 1, 'the others waited on it')
})

t.test('a HEAD leads: the GETs waiting on it collapse onto one GET', async (t) => {
  const { o, first } = await origin(t)
  const p = await proxy(t, o)
  const head = request(`${p.url('web')}/slow`, { method: 'HEAD' })
  const held = await first
  const answers = waiters(p)
  await settle()
  // A HEAD's answer is never stored: its fetch ends with nothing for the GETs.
  held.writeHead(200, { 'cache-control': 'max-age=60', 'content-length': '7' }).end()
  t.equal((await head).statusCode, 200)
  const got = await answers
  t.equal(o.requests.length, 2, 'the HEAD, then one GET for every waiter')
  t.ok(got.every((r) => r.body === 'fetch 2'))
})
