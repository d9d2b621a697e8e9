// watchConfig: true reloads when the file's content changes, also when it is
// mounted as a Kubernetes ConfigMap: config.yaml -> ..data/config.yaml, and an
// update swaps the `..data` symlink (no event names config.yaml itself).
import { mkdirSync, renameSync, symlinkSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { request } from 'undici'
import { spawnCli } from '../helpers/cli.js'
import { startServer } from '../helpers/origin.js'

t.test('a ConfigMap-style symlink swap beside the file reloads it', async (t) => {
  const origin = await startServer(t, (_req, res) => { res.end('ok') })
  const dir = t.testdir({})
  const config = (version: number): string => [
    'workers: 1',
    'watchConfig: true',
    'listeners: [{ name: web, bind: "127.0.0.1:0" }]',
    'accessLog: false',
    'admin: false',
    `routes: [{ name: all, backend: app, responseHeaders: { set: { x-version: "${version}" } } }]`,
    'backends:',
    '  app:',
    `    servers: [{ url: "${origin.url}" }]`,
    ''
  ].join('\n')
  const publish = (version: number): void => {
    mkdirSync(path.join(dir, `..v${version}`))
    writeFileSync(path.join(dir, `..v${version}`, 'config.yaml'), config(version))
    symlinkSync(`..v${version}`, path.join(dir, '..data_tmp'))
    renameSync(path.join(dir, '..data_tmp'), path.join(dir, '..data'))
  }
  publish(1)
  symlinkSync('..data/config.yaml', path.join(dir, 'config.yaml'))
  const proc = spawnCli(t, ['start', path.join(dir, 'config.yaml')])
  const port = (await proc.waitForLog((l) => l.msg === 'listening')).port as number
  const version = async (): Promise<unknown> => {
    const res = await request(`http://127.0.0.1:${String(port)}/`)
    await res.body.dump()
    return res.headers['x-version']
  }
  t.equal(await version(), '1')

  publish(2)
  let seen = await version()
  for (let i = 0; i < 40 && seen !== '2'; i++) {
    await new Promise((resolve) => setTimeout(resolve, 100))
    seen = await version()
  }
  t.equal(seen, '2', 'the new ConfigMap content is served')
  proc.child.kill('SIGTERM')
  t.equal(await proc.exited, 0)
})
