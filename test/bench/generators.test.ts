// The bench's wrk runner against a real local server: the report line is
// read, and a paced run really waits between requests (each connection
// cannot send more than one request per shortest think time). wrk is
// installed by .ci/run.
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { Children } from '../../bench/children.js'
import { runWrk } from '../../bench/generators.js'
import { paceRange, WRK_SCRIPT, wrkScript } from '../../bench/peers.js'
import { which } from '../../bench/tools.js'

t.test('paceRange: half to one and a half times the mean, whole ms, at least 1', async (t) => {
  t.same(paceRange(10), { lo: 5, hi: 15 })
  t.same(paceRange(1), { lo: 1, hi: 2 })
  t.same(paceRange(3), { lo: 2, hi: 5 })
})

t.test('wrkScript: unpaced is the plain report script; paced adds a random delay() before it', async (t) => {
  t.equal(wrkScript(null), WRK_SCRIPT)
  const paced = wrkScript(20)
  t.match(paced, /^delay = function \(\) return math\.random\(10, 30\) end\n/)
  t.ok(paced.endsWith(WRK_SCRIPT), 'the report script follows unchanged')
})

const noWrk = which('wrk') === null ? 'wrk is not installed' : false

t.test('runWrk, saturating and paced, against a real server', { skip: noWrk }, async (t) => {
  const server = createServer((_req, res) => { res.end('ok') })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { server.close() })
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`
  const dir = mkdtempSync(join(tmpdir(), 'bench-wrk-test-'))
  const children = new Children()
  t.teardown(async () => {
    await children.stopAll()
    rmSync(dir, { recursive: true, force: true })
  })
  const connections = 4
  const durationSec = 1
  const paced = await runWrk(url, { children, cpu: null, dir, connections, durationSec, paceMs: 40 })
  // Each connection waits at least lo = 20 ms after every answer: at most durationSec / 20 ms + 1 requests each.
  const bound = connections * (durationSec * 1000 / paceRange(40).lo + 1)
  t.ok(paced.requests > 0, `paced: ${paced.requests} requests`)
  t.ok(paced.requests <= bound, `paced: ${paced.requests} requests, at most ${bound}`)
  t.equal(paced.errors + paced.timeouts + paced.non2xx, 0)
  t.ok(paced.latencyMs.p99 >= paced.latencyMs.p50, 'percentiles read in order')
  t.ok(paced.latencyMs.p50 < paceRange(40).lo, 'the think time is not counted in a request\'s latency')
  const saturated = await runWrk(url, { children, cpu: null, dir, connections, durationSec })
  t.ok(saturated.requests > 0, `unpaced: ${saturated.requests} requests`)
  t.equal(saturated.errors + saturated.timeouts + saturated.non2xx, 0)
})
