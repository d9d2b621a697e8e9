#!/usr/bin/env node
// The command line: the only file that touches `process`.
//   switchyard start [-c FILE]   run a config (no -c: the embedded demo)
//   switchyard check -c FILE     validate, print the routing table, exit 0/1
//   switchyard certs [--dir DIR] [--name NAME]... [--force]
//   switchyard explain -c FILE 'GET URL' [-H 'n: v']... [--client IP] [--admin URL] [--json]
import { existsSync, readFileSync, watch } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { pino, type Logger } from 'pino'
import { createApp, type ReloadResult } from './app.js'
import { ensureDevCertificate, generateCertificate, writeCertificatePair } from './certs.js'
import { loadConfig, type LoadOptions } from './config/load.js'
import type { Config } from './config/schema.js'
import { startDemoOrigins } from './demo/origin.js'
import { ConfigError, formatIssue } from './errors.js'
import { explainCommand } from './explain.js'
import { routingTable } from './router/table.js'

const USAGE = `Usage: switchyard <command> [options]

Commands:
  start [-c FILE]     Run the proxy with FILE. Without -c, run the embedded demo
                      (config/demo.yaml, demo origins on 127.0.0.1:9101-9104,
                      a dev certificate generated into certs/ when absent).
  check -c FILE       Validate FILE; print every error with its YAML path and
                      line, or the normalized routing table. Exit 0 if valid, 1 if not.
  certs [--dir DIR] [--name NAME]... [--force]
                      Generate a self-signed development certificate pair
                      (DIR/dev.crt, DIR/dev.key; default DIR certs/, names
                      localhost 127.0.0.1 ::1).
  explain -c FILE 'METHOD URL' [-H 'name: value']... [--client IP]
          [--admin URL] [--json]
                      Show, without sending anything, how the proxy would
                      handle the request: route, rewrites, shard, replica,
                      sticky cookie, cache. --admin uses live health and cache
                      state (token: $SWITCHYARD_ADMIN_TOKEN). Exit 0 if a route
                      matches, 2 if none, 1 on bad input.

Options:
  -c, --config FILE   Configuration file (YAML)
  -h, --help          Show this help
  -v, --version       Print the version
`

/** The package root (holds package.json), from src/ or dist/src/. */
function packageRoot (): string {
  let dir = path.dirname(fileURLToPath(import.meta.url))
  while (!existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir)
    if (up === dir) throw new Error('package.json not found above ' + fileURLToPath(import.meta.url))
    dir = up
  }
  return dir
}

async function main (argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c' },
      dir: { type: 'string' },
      name: { type: 'string', multiple: true },
      force: { type: 'boolean' },
      header: { type: 'string', short: 'H', multiple: true },
      client: { type: 'string' },
      admin: { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
      version: { type: 'boolean', short: 'v' }
    }
  })
  const root = packageRoot()
  if (values.version === true) {
    console.log((JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string }).version)
    return 0
  }
  const command = positionals[0]
  if (values.help === true || command === undefined || command === 'help') {
    process.stdout.write(USAGE)
    return command === undefined && values.help !== true ? 2 : 0
  }
  switch (command) {
    case 'check': return check(values.config)
    case 'certs': return certs(values.dir ?? path.join(root, 'certs'), values.name, values.force === true)
    case 'start': return start(values.config, root)
    case 'explain': {
      const r = await explainCommand({
        config: values.config, request: positionals.slice(1), headers: values.header, client: values.client,
        admin: values.admin, json: values.json === true, token: process.env.SWITCHYARD_ADMIN_TOKEN
      })
      process.stdout.write(r.stdout)
      process.stderr.write(r.stderr)
      return r.code
    }
    default:
      process.stderr.write(`switchyard: unknown command "${command}"\n\n${USAGE}`)
      return 2
  }
}

async function readConfig (file: string, opts: LoadOptions = {}): Promise<Config | undefined> {
  try {
    return await loadConfig(file, opts)
  } catch (err) {
    if (err instanceof ConfigError) {
      for (const issue of err.issues) process.stderr.write(formatIssue(err.file, issue) + '\n')
      process.stderr.write(`${err.issues.length} error${err.issues.length === 1 ? '' : 's'} in ${err.file}\n`)
      return undefined
    }
    throw err
  }
}

async function check (file: string | undefined): Promise<number> {
  if (file === undefined) {
    process.stderr.write('switchyard check: -c FILE is required\n')
    return 2
  }
  const config = await readConfig(file)
  if (config === undefined) return 1
  process.stdout.write(`${file}: valid\n\n${routingTable(config)}`)
  return 0
}

async function certs (dir: string, names: string[] | undefined, force: boolean): Promise<number> {
  if (names === undefined && !force) {
    const r = await ensureDevCertificate(dir)
    console.log(r.created ? `generated ${r.certPath} and ${r.keyPath}` : `kept existing ${r.certPath} (use --force to replace)`)
    return 0
  }
  const list = names ?? ['localhost', '127.0.0.1', '::1']
  const files = writeCertificatePair(dir, 'dev', generateCertificate({ names: list, commonName: 'Switchyard dev' }))
  console.log(`generated ${files.certPath} and ${files.keyPath} for ${list.join(', ')}`)
  return 0
}

async function start (file: string | undefined, root: string): Promise<number> {
  const log: Logger = pino({ name: 'switchyard' })
  const demo = file === undefined
  let closeDemo: (() => Promise<void>) | undefined
  if (demo) {
    const c = await ensureDevCertificate(path.join(root, 'certs'))
    if (c.created) log.info({ cert: c.certPath }, 'generated a self-signed development certificate')
    const origins = await startDemoOrigins()
    closeDemo = () => origins.close()
  }
  const configFile = file ?? path.join(root, 'config', 'demo.yaml')
  // Valid but risky settings (backend TLS verification off) are logged on every load.
  const loadOptions: LoadOptions = {
    onWarning: (w) => log.warn({ file: configFile, line: w.line, column: w.column, path: w.path }, `config warning: ${w.message}`)
  }
  const config = await readConfig(configFile, loadOptions)
  if (config === undefined) {
    await closeDemo?.()
    return 1
  }
  let reloadFromFile: () => Promise<ReloadResult> = () => Promise.resolve({ ok: false, errors: ['not started'] })
  const app = createApp(config, { log, reloadSource: () => reloadFromFile() })
  await app.start()
  if (demo) printDemoHelp(app.listeners.map((l) => ({ name: l.name, tls: l.tls !== undefined, port: l.address().port })), app.adminAddress())

  // Reload: SIGHUP, the admin API, or (watchConfig) a change to the file. A bad
  // file is reported with its YAML paths and the running config keeps serving.
  const reload = async (reason: string): Promise<ReloadResult> => {
    log.info({ reason, file: configFile }, 'reloading configuration')
    let next: Config
    try {
      next = await loadConfig(configFile, loadOptions)
    } catch (err) {
      const errors = err instanceof ConfigError ? err.issues.map((i) => formatIssue(err.file, i)) : [(err as Error).message]
      log.error({ errors }, 'configuration rejected; the running one keeps serving')
      return { ok: false, errors }
    }
    const result = await app.reload(next)
    if (!result.ok) log.error({ errors: result.errors }, 'configuration rejected; the running one keeps serving')
    return result
  }
  reloadFromFile = () => reload('admin API')
  process.on('SIGHUP', () => { void reload('SIGHUP') })
  const watcher = config.watchConfig ? watchFile(configFile, () => { void reload('file changed') }) : undefined

  const signal = await new Promise<string>((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'))
    process.once('SIGTERM', () => resolve('SIGTERM'))
  })
  const drain = app.state.config.timeouts.drain
  log.info({ signal, drainMs: drain }, 'stopping: no new connections, draining in-flight requests')
  watcher?.close()
  await app.stop(drain)
  await closeDemo?.()
  log.info('stopped')
  return 0
}

/** Call `changed` once per burst of writes to `file` (editors write in several steps). */
function watchFile (file: string, changed: () => void): { close (): void } {
  let timer: NodeJS.Timeout | undefined
  const w = watch(path.dirname(file), (_event, name) => {
    if (name !== path.basename(file)) return
    clearTimeout(timer)
    timer = setTimeout(changed, 200)
  })
  return { close: () => { clearTimeout(timer); w.close() } }
}

function printDemoHelp (listeners: { name: string; tls: boolean; port: number }[], admin: { port: number } | undefined): void {
  const https = listeners.find((l) => l.tls)
  const http = listeners.find((l) => !l.tls)
  const lines = ['', 'Switchyard demo is running: 2 shards (a, b) x 2 replicas on 127.0.0.1:9101-9104.', 'Try:']
  if (https !== undefined) {
    lines.push(`  curl -k --http2   https://127.0.0.1:${https.port}/`)
    lines.push(`  curl -k --http1.1 https://127.0.0.1:${https.port}/`)
    lines.push(`  curl -k https://127.0.0.1:${https.port}/users -H 'x-user-id: alice'   # same user, same shard, every time`)
  }
  if (http !== undefined) {
    lines.push(`  curl http://127.0.0.1:${http.port}/ -H 'x-user-id: bob'`)
    lines.push(`  curl -s -D - -o /dev/null http://127.0.0.1:${http.port}/static/logo.txt | grep -i cache-status   # twice: miss, then hit`)
    lines.push(`  curl -X POST http://127.0.0.1:9101/_demo/stop   # stop replica a1 for 20 s: failover, and it turns red on the dashboard`)
  }
  lines.push('Each answer names the shard/replica that served it and echoes the forwarded headers.')
  if (admin !== undefined) lines.push(`Dashboard, status and metrics: http://127.0.0.1:${admin.port}/  (/status, /metrics)`)
  lines.push('Ctrl-C stops.', '')
  console.log(lines.join('\n'))
}

main(process.argv.slice(2)).then((code) => { process.exitCode = code }, (err: unknown) => {
  process.stderr.write(`switchyard: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`)
  process.exitCode = 1
})
