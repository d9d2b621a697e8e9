// /metrics by Prometheus conventions (issue 14, item 6), from a real process
// and real traffic, in one process and in a cluster: latency histograms with
// `_bucket` series in seconds, a shard label, no empty label values, process
// and Node.js runtime metrics under prom-client's names, switchyard_build_info,
// and the config hash with reload counters.
import { createHash } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { request } from 'undici'
import { spawnCli } from '../helpers/cli.js'
import { startServer } from '../helpers/origin.js'
import { parsePrometheusText, type ParsedFamily } from '../helpers/prometheus-parser.js'

const hash = (text: string): string => createHash('sha256').update(text).digest('hex').slice(0, 16)
const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version

for (const workers of [1, 2]) {
  t.test(`workers: ${workers}`, async (t) => {
    const origin = await startServer(t, (_req, res) => { res.end('ok') })
    const dir = t.testdir({})
    const file = path.join(dir, 'config.yaml')
    const yaml = [
      `workers: ${workers}`,
      'listeners: [{ name: web, bind: "127.0.0.1:0" }]',
      'accessLog: false',
      'admin: { bind: "127.0.0.1:0" }',
      'routes: [{ name: app, match: { host: app.test }, backend: app }]',
      'backends:',
      '  app:',
      '    shards:',
      `      - { name: s1, servers: [{ name: a1, url: "${origin.url}" }] }`,
      ''
    ].join('\n')
    writeFileSync(file, yaml)
    const proc = spawnCli(t, ['start', file])
    const admin = await proc.waitForLog((l) => l.msg === 'admin: listening')
    const port = (await proc.waitForLog((l) => l.msg === 'listening')).port as number
    const adminUrl = `http://127.0.0.1:${String(admin.port)}`
    for (let i = 0; i < 5; i++) await (await request(`http://127.0.0.1:${String(port)}/x`, { headers: { host: 'app.test' } })).body.text()
    const noRoute = await request(`http://127.0.0.1:${String(port)}/x`, { headers: { host: 'nowhere.test' } })
    await noRoute.body.text()
    t.equal(noRoute.statusCode, 404)

    const scrape = async (): Promise<Map<string, ParsedFamily>> => {
      const res = await request(`${adminUrl}/metrics`)
      return new Map(parsePrometheusText(await res.body.text()).map((f) => [f.name, f]))
    }
    const fam = (m: Map<string, ParsedFamily>, name: string): ParsedFamily => {
      const f = m.get(name)
      if (f === undefined) throw new Error(`no family ${name}`)
      return f
    }
    // A cluster's counters arrive with the workers' exports: wait until the six requests are in.
    let m = await scrape()
    for (let i = 0; i < 100 && fam(m, 'switchyard_requests_total').samples.reduce((a, s) => a + s.value, 0) < 6; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50))
      m = await scrape()
    }

    const duration = fam(m, 'switchyard_request_duration_seconds')
    t.equal(duration.type, 'histogram')
    const buckets = duration.samples.filter((s) => s.name === 'switchyard_request_duration_seconds_bucket' && s.labels.route === 'app')
    t.ok(buckets.length > 5, 'bucket series')
    t.ok(buckets.some((b) => b.labels.le === '0.005') && buckets.some((b) => b.labels.le === '1'), 'le bounds in seconds')
    const inf = buckets.find((b) => b.labels.le === '+Inf')
    const count = duration.samples.find((s) => s.name === 'switchyard_request_duration_seconds_count' && s.labels.route === 'app')
    t.equal(inf?.value, 5)
    t.equal(count?.value, 5)
    t.same(buckets.map((b) => b.value), [...buckets.map((b) => b.value)].sort((a, b) => a - b), 'cumulative')
    t.equal(fam(m, 'switchyard_backend_upstream_duration_seconds').type, 'histogram')

    const requests = fam(m, 'switchyard_requests_total').samples
    t.equal(requests.find((s) => s.labels.server === 'a1' && s.labels.code_class === '2xx')?.labels.shard, 's1', 'the server\'s shard is a label')
    t.equal(requests.find((s) => s.labels.code_class === '4xx')?.labels.route, '(none)', 'no route: (none)')
    const empty = [...m.values()].flatMap((f) => f.samples.filter((s) => Object.values(s.labels).includes('')).map((s) => s.name))
    t.same(empty, [], 'no empty label value anywhere')

    for (const name of ['process_cpu_user_seconds_total', 'process_cpu_system_seconds_total', 'process_cpu_seconds_total']) {
      t.equal(fam(m, name).type, 'counter', name)
      t.ok(fam(m, name).samples[0]!.value > 0, `${name} > 0`)
    }
    for (const name of ['process_resident_memory_bytes', 'process_start_time_seconds', 'process_open_fds', 'nodejs_heap_size_used_bytes',
      'nodejs_heap_size_total_bytes', 'nodejs_external_memory_bytes', 'nodejs_eventloop_lag_p99_seconds']) {
      t.equal(fam(m, name).type, 'gauge', name)
    }
    t.ok(fam(m, 'process_resident_memory_bytes').samples[0]!.value > 10 * 1024 * 1024, 'RSS in bytes')
    t.ok(Math.abs(fam(m, 'process_start_time_seconds').samples[0]!.value - Date.now() / 1000) < 600, 'start time in epoch seconds')
    t.same(fam(m, 'switchyard_build_info').samples.map((s) => [s.labels.version, s.labels.node_version, s.value]), [[VERSION, process.version, 1]])

    t.same(fam(m, 'switchyard_config_info').samples.map((s) => [s.labels.hash, s.value]), [[hash(yaml), 1]], 'the hash of the file in use')
    const reloads = (mm: Map<string, ParsedFamily>): Record<string, number> =>
      Object.fromEntries(fam(mm, 'switchyard_config_reloads_total').samples.map((s) => [s.labels.result!, s.value]))
    t.same(reloads(m), { success: 0, failure: 0 })

    const reload = async (): Promise<number> => (await request(`${adminUrl}/reload`, { method: 'POST', headers: { 'content-type': 'application/json' } })).statusCode
    const changed = yaml.replace('name: app, match', 'name: app2, match')
    writeFileSync(file, changed)
    t.equal(await reload(), 200)
    writeFileSync(file, 'listeners: nope\n')
    t.equal(await reload(), 400)
    m = await scrape()
    t.same(reloads(m), { success: 1, failure: 1 })
    t.same(fam(m, 'switchyard_config_info').samples.map((s) => s.labels.hash), [hash(changed)], 'the hash follows the applied reload, not the refused one')
    t.equal(fam(m, 'switchyard_config_last_reload_successful').samples[0]!.value, 0)

    proc.child.kill('SIGTERM')
    t.equal(await proc.exited, 0)
  })
}
