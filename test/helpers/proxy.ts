// Start a real Switchyard (from YAML text) on ephemeral loopback ports for
// end-to-end tests; stopped on teardown even when the test fails.
import type { Test } from 'tap'
import { createApp, type App } from '../../src/app.js'
import { parseConfig } from '../../src/config/load.js'
import type { Config } from '../../src/config/schema.js'
import type { PipelineHooks } from '../../src/proxy/pipeline.js'

export interface RunningProxy {
  readonly app: App
  readonly config: Config
  /** Port of the listener with this name. */
  port (listener: string): number
  /** `http://127.0.0.1:PORT` or `https://…` of the listener with this name. */
  url (listener: string): string
}

export async function startProxy (t: Test, yaml: string, hooks?: PipelineHooks): Promise<RunningProxy> {
  // Tests run in parallel: no admin listener on the fixed default port, and no
  // access log lines in the TAP stream, unless a test asks for them.
  if (!/^admin:/m.test(yaml)) yaml = `admin: false\n${yaml}`
  if (!/^accessLog:/m.test(yaml)) yaml = `accessLog: false\n${yaml}`
  const config = parseConfig(yaml, 'test.yaml', { checkFiles: false })
  const app = createApp(config, hooks === undefined ? {} : { hooks })
  t.teardown(() => app.stop())
  await app.start()
  const byName = (name: string) => {
    const l = app.listeners.find((x) => x.name === name)
    if (l === undefined) throw new Error(`no listener ${name}`)
    return l
  }
  return {
    app,
    config,
    port: (name) => byName(name).address().port,
    url: (name) => `${byName(name).tls === undefined ? 'http' : 'https'}://127.0.0.1:${byName(name).address().port}`
  }
}
