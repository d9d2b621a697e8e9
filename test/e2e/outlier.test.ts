// Outlier detection through a real proxy and origins, counted at the origins
// and in /status: what a client can make a server answer does not eject it.
import t, { type Test } from 'tap'
import { Pool } from 'undici'
import { startProxy, type RunningProxy } from '../helpers/proxy.js'
import { startServer } from '../helpers/origin.js'

/** Origins answering 501 to a method they do not know (as Apache and Python's http.server do), their name otherwise; `hits` per origin. */
async function origins (t: Test, n: number): Promise<{ ports: number[], hits: number[] }> {
  const hits = Array.from({ length: n }, () => 0)
  const ports: number[] = []
  for (let i = 0; i < n; i++) {
    const s = await startServer(t, (req, res) => {
      req.resume()
      hits[i]!++
      res.writeHead(req.method === 'GET' ? 200 : 501).end(`s${i + 1}`)
    })
    ports.push(s.port)
  }
  return { ports, hits }
}

function yaml (ports: number[], outlier: string): string {
  return `
listeners: [{ name: web, bind: "127.0.0.1:0" }]
routes: [{ name: all, backend: app }]
backends:
  app:
    retries: { attempts: 0 }
    outlierDetection: ${outlier}
    servers:
${ports.map((p, i) => `      - { name: s${i + 1}, url: "http://127.0.0.1:${p}" }`).join('\n')}
`
}

function servers (proxy: RunningProxy): Array<{ name: string, state: string, consecutiveFailures: number }> {
  return proxy.app.status()[0]!.shards[0]!.servers as unknown as Array<{ name: string, state: string, consecutiveFailures: number }>
}

async function statuses (client: Pool, method: string, n: number): Promise<Record<string, number>> {
  const out: Record<string, number> = {}
  for (let i = 0; i < n; i++) {
    const r = await client.request({ method, path: `/x${i}` })
    await r.body.dump()
    out[r.statusCode] = (out[r.statusCode] ?? 0) + 1
  }
  return out
}

t.test('501 answers to a client\'s unknown method eject no server', async (t) => {
  const { ports, hits } = await origins(t, 2)
  const proxy = await startProxy(t, yaml(ports, '{ consecutive5xx: 3, maxEjectionPercent: 100 }'))
  const client = new Pool(proxy.url('web'), { connections: 1 })
  t.teardown(() => client.close())
  t.same(await statuses(client, 'PROPFIND', 20), { 501: 20 }, 'the origins\' 501s reach the client')
  t.same(servers(proxy).map((s) => [s.name, s.state, s.consecutiveFailures]), [['s1', 'no check', 0], ['s2', 'no check', 0]],
    'neither is ejected nor shows failures')
  hits[0] = hits[1] = 0
  t.same(await statuses(client, 'GET', 20), { 200: 20 })
  t.same(hits, [10, 10], 'both still take their share')
})

t.test('the last server serving is not ejected when the other is down by its health check', async (t) => {
  const hits = [0, 0]
  const ports: number[] = []
  for (let i = 0; i < 2; i++) {
    ports.push((await startServer(t, (req, res) => {
      req.resume()
      if (req.url === '/healthz') return res.writeHead(i === 0 ? 503 : 200).end()
      hits[i]!++
      res.writeHead(req.url?.startsWith('/boom') === true ? 500 : 200).end(`s${i + 1}`)
    })).port)
  }
  const proxy = await startProxy(t, yaml(ports, '{ consecutive5xx: 3, maxEjectionPercent: 50 }') +
    '    healthCheck: { path: /healthz, interval: 100ms, timeout: 90ms, rise: 1, fall: 1 }\n')
  const state = (): string[] => servers(proxy).map((s) => `${s.name}:${s.state}`)
  for (let i = 0; i < 200 && state()[0] !== 's1:down'; i++) await new Promise((resolve) => setTimeout(resolve, 25))
  t.same(state(), ['s1:down', 's2:up'], 's1 is down by its check')
  const client = new Pool(proxy.url('web'), { connections: 1 })
  t.teardown(() => client.close())
  for (let i = 0; i < 5; i++) await (await client.request({ method: 'GET', path: `/boom${i}` })).body.dump()
  t.same(state(), ['s1:down', 's2:up'], 's2 is not ejected: it is all the shard has')
  hits[0] = hits[1] = 0
  t.same(await statuses(client, 'GET', 10), { 200: 10 }, 'later requests are served')
  t.same(hits, [0, 10], 'by s2')
})
