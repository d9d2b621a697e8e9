#!/usr/bin/env node
// The command line: the only file that touches `process`.
//   switchyard start [[-c] FILE]  run a config (no file: the embedded demo)
//   switchyard check [-c] FILE    validate, print the routing table, exit 0/1
//   switchyard certs [--dir DIR] [--name NAME]... [--force]
//   switchyard explain [-c] FILE 'GET URL' [-H 'n: v']... [--client IP] [--response 'n: v']... [--admin URL] [--json]
//   switchyard demo-origins [--host HOST] [--port PORT]
//   switchyard bench URL | -c CONFIG [PATH] [options]   (src/loadtest/)
import cluster from 'node:cluster'
import { existsSync, readFileSync, statSync, watch } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { pino, type Logger } from 'pino'
import { StartupError, createApp, type ReloadResult } from './app.js'
import { ConfigReport } from './admin/config-report.js'
import { heapLimitMiB, heapSizeGiven } from './cache/memory.js'
import { ensureDevCertificate, generateCertificate, writeCertificatePair } from './certs.js'
import type { Port } from './cluster/ipc.js'
import { startPrimary, type LoadedConfig } from './cluster/primary.js'
import type { WorkerProcess } from './cluster/supervisor.js'
import { runWorker } from './cluster/worker.js'
import { isHttpMethod } from './config/forms.js'
import { loadConfig, readConfigFile, type LoadOptions } from './config/load.js'
import type { Config } from './config/schema.js'
import { DEMO_ORIGINS, demoOriginsAt, startDemoOrigins } from './demo/origin.js'
import { ConfigError, formatIssue, type ConfigIssue } from './errors.js'
import { explainCommand } from './explain.js'
import { BENCH_USAGE } from './loadtest/args.js'
import { benchCommand } from './loadtest/command.js'
import { routingTable } from './router/table.js'
import { hashPasswordCommand } from './auth/hash-password-command.js'
import { terminalSafe } from './terminal.js'
import { autoWorkers } from './cluster/cpus.js'

/** One line per command, shown with a mistake in its arguments. */
const COMMANDS = {
  start: 'switchyard start [[-c] FILE]',
  check: 'switchyard check [-c] FILE',
  certs: 'switchyard certs [--dir DIR] [--name NAME]... [--force]',
  explain: "switchyard explain [-c] FILE 'METHOD URL' [-H 'name: value']... [--client IP] [--response 'name: value']... [--admin URL] [--json]",
  'demo-origins': 'switchyard demo-origins [--host HOST] [--port PORT]',
  'hash-password': 'switchyard hash-password < PASSWORD_FILE',
  bench: BENCH_USAGE
} as const

const USAGE = `Usage: switchyard <command> [options]

Commands:
  start [[-c] FILE]   Run the proxy with FILE. Without a file, run the embedded
                      demo (config/demo.yaml, demo origins on 127.0.0.1:9101-9104,
                      a dev certificate generated into certs/ when absent).
  check [-c] FILE     Validate FILE as start would (certificates, bind
                      addresses, \${…} references included); print every error
                      with its YAML path and line, or the normalized routing
                      table. Warnings do not fail. Exit 0 if valid, 1 if not.
  certs [--dir DIR] [--name NAME]... [--force]
                      Generate a self-signed development certificate pair
                      (DIR/dev.crt, DIR/dev.key; default DIR certs/, names
                      localhost 127.0.0.1 ::1).
  explain [-c] FILE 'METHOD URL' [-H 'name: value']... [--client IP]
          [--response 'name: value']... [--admin URL] [--json]
                      Show, without sending anything, how the proxy would
                      handle the request: route, rewrites, shard, replica,
                      sticky cookie, cache. The file comes first (or with -c);
                      the request is one argument 'METHOD URL', or two
                      (METHOD URL), or just the URL (GET). --admin uses live
                      health and cache state (token: $SWITCHYARD_ADMIN_TOKEN).
                      --response gives a 200's fields (content-type,
                      content-length…) to decide compression for.
                      Exit 0 if a route matches, 2 if none, 1 on bad input.
  hash-password       Print the scrypt hash of a password for a route's
                      basicAuth users (passwordHash). The password is one
                      line on stdin, or typed twice at a prompt on a terminal.
  demo-origins [--host HOST] [--port PORT]
                      Run only the demo origins (shards a and b, two replicas
                      each) on HOST (default 127.0.0.1), ports PORT to PORT+3
                      (default 9101; 0: free ports, logged), for a proxy that
                      runs elsewhere (compose.yaml's origins service).
                      SIGINT/SIGTERM stop them.
  bench URL [options] | bench -c CONFIG [--listener NAME] [PATH] [options]
                      Load-test URL, or the proxy of CONFIG (started, loaded,
                      stopped): autocannon (HTTP/1.1) or h2load (--http2).
                      -d 10s, -c connections, -p pipelining, -m, -H, --body,
                      --baseline URL (also load it; ratio), --expect
                      'p99<5ms,rps>10000' (exit 1 if not met), --json FILE,
                      --html FILE (report with charts), --quiet.
                      Exit 0 ok, 1 expectation failed, 2 usage error or could
                      not run. switchyard bench --help for every option.

Options:
  -c, --config FILE   Configuration file (YAML); the same as FILE
  -h, --help          Show this help
  -v, --version       Print the version
`

/** A mistake in the arguments: printed with the command's usage line. */
class UsageError extends Error {
  readonly usage: string
  /** 2, or 1 for explain, whose 2 means "no route matched". */
  readonly exitCode: number

  constructor (message: string, usage: string, exitCode = 2) {
    super(message)
    this.usage = usage
    this.exitCode = exitCode
  }
}

/**
 * The config file of `start`/`check`: `-c FILE` or one positional FILE.
 * Anything more is a mistake, not something to ignore.
 */
function fileArgument (command: 'start' | 'check', option: string | undefined, rest: readonly string[]): string | undefined {
  const extra = option === undefined ? rest.slice(1) : rest
  if (extra.length > 0) {
    const why = option === undefined ? '' : ` (the config file is already given with -c ${option})`
    throw new UsageError(`unexpected argument${extra.length === 1 ? '' : 's'} ${extra.map((a) => JSON.stringify(a)).join(' ')}${why}`, COMMANDS[command])
  }
  return option ?? rest[0]
}

/**
 * `explain`'s file and request. With -c every positional is the request;
 * without, the first positional is the file. A request where the file should
 * be is reported, not read as a file name.
 */
function explainArguments (option: string | undefined, rest: readonly string[]): { config: string | undefined, request: string[] } {
  if (option !== undefined) return { config: option, request: [...rest] }
  const [first, ...request] = rest
  if (first !== undefined && looksLikeRequest(first) && !existsSync(first)) {
    throw new UsageError(`"${first}" is a request, not a config file: the file comes first (or give it with -c)`, COMMANDS.explain, 1)
  }
  return { config: first, request }
}

function looksLikeRequest (arg: string): boolean {
  const word = arg.trim().split(/\s+/)[0] ?? ''
  return /^https?:\/\//i.test(word) || isHttpMethod(word.toUpperCase())
}

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
  try {
    return await run(argv)
  } catch (err) {
    if (!(err instanceof UsageError)) throw err
    process.stderr.write(`switchyard: ${err.message}\nUsage: ${err.usage}\n`)
    return err.exitCode
  }
}

const OPTIONS = {
  config: { type: 'string', short: 'c' },
  dir: { type: 'string' },
  name: { type: 'string', multiple: true },
  force: { type: 'boolean' },
  header: { type: 'string', short: 'H', multiple: true },
  response: { type: 'string', multiple: true },
  client: { type: 'string' },
  admin: { type: 'string' },
  json: { type: 'boolean' },
  host: { type: 'string' },
  port: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'v' }
} as const

/** parseArgs, with an unknown option or a missing value as a UsageError. */
function parseArguments (argv: string[]): ReturnType<typeof parseArgs<{ args: string[], allowPositionals: true, options: typeof OPTIONS }>> {
  try {
    return parseArgs({ args: argv, allowPositionals: true, options: OPTIONS })
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code?.startsWith('ERR_PARSE_ARGS_') !== true) throw err
    const command = argv.find((a) => !a.startsWith('-'))
    const usage = command !== undefined && command in COMMANDS ? COMMANDS[command as keyof typeof COMMANDS] : 'switchyard <command> [options] (switchyard --help)'
    throw new UsageError((err as Error).message, usage)
  }
}

async function run (argv: string[]): Promise<number> {
  // bench has its own options (-c is connections or a config, -d, -p…).
  if (argv[0] === 'bench') return await bench(argv.slice(1))
  const { values, positionals } = parseArguments(argv)
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
  const rest = positionals.slice(1)
  switch (command) {
    case 'check': return check(fileArgument('check', values.config, rest))
    case 'certs':
      if (rest.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(rest[0])}`, COMMANDS.certs)
      return certs(values.dir ?? path.join(root, 'certs'), values.name, values.force === true)
    case 'start': return start(fileArgument('start', values.config, rest), root)
    case 'hash-password':
      if (rest.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(rest[0])} (the password is read from stdin, never from the command line)`, COMMANDS['hash-password'])
      return hashPasswordCommand({
        stdin: process.stdin,
        stdout: (s) => { process.stdout.write(s) },
        stderr: (s) => { process.stderr.write(s) }
      })
    case 'demo-origins':
      if (rest.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(rest[0])}`, COMMANDS['demo-origins'])
      return demoOrigins(values.host ?? '127.0.0.1', firstPort(values.port))
    case 'explain': {
      const r = await explainCommand({
        ...explainArguments(values.config, rest), headers: values.header, client: values.client, response: values.response,
        admin: values.admin, json: values.json === true, token: process.env.SWITCHYARD_ADMIN_TOKEN
      })
      process.stdout.write(terminalSafe(r.stdout))
      process.stderr.write(terminalSafe(r.stderr))
      return r.code
    }
    default:
      process.stderr.write(`switchyard: unknown command "${command}"\n\n${USAGE}`)
      return 2
  }
}

async function bench (argv: string[]): Promise<number> {
  const cleanups: Array<() => void> = []
  const interrupted = (signal: NodeJS.Signals): void => {
    for (const fn of cleanups) fn()
    process.exit(signal === 'SIGINT' ? 130 : 143)
  }
  process.once('SIGINT', interrupted)
  process.once('SIGTERM', interrupted)
  try {
    return await benchCommand(argv, {
      stdout: (s) => { process.stdout.write(s) },
      stderr: (s) => { process.stderr.write(s) },
      isTTY: process.stderr.isTTY === true,
      execPath: process.execPath,
      execArgv: process.execArgv,
      mainScript: process.argv[1] ?? fileURLToPath(import.meta.url),
      onInterrupt: (fn) => { cleanups.push(fn) }
    })
  } finally {
    process.off('SIGINT', interrupted)
    process.off('SIGTERM', interrupted)
  }
}

/**
 * How check, start and reload load the file: every check, bind addresses
 * included. Warnings are collected into `warnings`.
 */
function loadOptions (warnings: ConfigIssue[]): LoadOptions {
  return { checkBinds: true, onWarning: (w) => warnings.push(w) }
}

/** `file:line:col path: warning: message`, in the error format. */
function formatWarning (file: string, w: ConfigIssue): string {
  return formatIssue(file, { ...w, message: `warning: ${w.message}` })
}

function plural (n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`
}

/**
 * Loads `file`, printing its problems (errors and warnings, in file order) on
 * stderr, as `check` does; a running proxy also passes `logWarning` to log
 * the warnings of a valid file as JSON lines for its log pipeline.
 */
async function readConfig (file: string, logWarning?: (w: ConfigIssue) => void, text?: string): Promise<{ config: Config | undefined, warnings: number }> {
  const warnings: ConfigIssue[] = []
  try {
    const config = await loadConfig(file, { ...loadOptions(warnings), ...(text === undefined ? {} : { text }) })
    for (const w of warnings) {
      process.stderr.write(terminalSafe(formatWarning(file, w)) + '\n')
      logWarning?.(w)
    }
    return { config, warnings: warnings.length }
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    const lines = [
      ...err.issues.map((i) => ({ at: i, text: formatIssue(err.file, i) })),
      ...warnings.map((w) => ({ at: w, text: formatWarning(err.file, w) }))
    ].sort((a, b) => a.at.line - b.at.line || a.at.column - b.at.column)
    for (const l of lines) process.stderr.write(terminalSafe(l.text) + '\n')
    const also = warnings.length === 0 ? '' : `, ${plural(warnings.length, 'warning')}`
    process.stderr.write(`${plural(err.issues.length, 'error')}${also} in ${err.file}\n`)
    return { config: undefined, warnings: warnings.length }
  }
}

async function check (file: string | undefined): Promise<number> {
  if (file === undefined) throw new UsageError('a config file is required', COMMANDS.check)
  const { config, warnings } = await readConfig(file)
  if (config === undefined) return 1
  process.stdout.write(terminalSafe(`${file}: valid${warnings === 0 ? '' : ` (${plural(warnings, 'warning')}, above)`}\n\n${routingTable(config)}`))
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

/**
 * Reads and validates the config file for a reload: the config and the bytes
 * it came from, or every error as `file:line:col path: message`. `running`:
 * how many workers serve now (a change of `workers` waits for a restart).
 */
async function loadForReload (file: string, log: Logger, running: number): Promise<LoadedConfig | { readonly errors: readonly string[] }> {
  const warnings: ConfigIssue[] = []
  try {
    const text = await readConfigFile(file).catch(() => undefined)
    const config = await loadConfig(file, { ...loadOptions(warnings), ...(text === undefined ? {} : { text }) })
    if (workerCount(config) !== running) log.warn({ workers: config.workers, running }, 'workers: a change takes effect at the next start')
    return { config, source: { file, text: text ?? '' } }
  } catch (err) {
    const errors = err instanceof ConfigError ? err.issues.map((i) => formatIssue(err.file, i)) : [(err as Error).message]
    log.error({ errors }, 'configuration rejected; the running one keeps serving')
    return { errors }
  } finally {
    if (warnings.length > 0) log.warn({ warnings: warnings.map((w) => formatWarning(file, w)) }, 'configuration warnings')
  }
}

/** How many processes serve requests: `workers`, with `auto` = the CPUs this process may use, within its cgroup's quota. */
function workerCount (config: Config): number {
  return config.workers === 'auto' ? autoWorkers() : config.workers
}

/**
 * The application log: pino JSON lines whose `time` is RFC 3339 (UTC), as
 * in the access log, so every line the process writes reads the same way.
 */
function appLogger (base?: Record<string, unknown>): Logger {
  return pino({ name: 'switchyard', timestamp: pino.stdTimeFunctions.isoTime, ...(base === undefined ? {} : { base }) })
}

/** The signals `start` acts on, handled from its first line (see processSignals). */
interface Signals {
  /** Resolves with SIGINT or SIGTERM: time to drain and stop. */
  readonly stop: Promise<string>
  /** Once the proxy is up: what SIGHUP and SIGUSR2 do (one that came earlier runs it now). */
  onHangup (reload: (signal: string) => void): void
  /** What SIGUSR1 does: reopen the access log (before the proxy is up it is ignored, not Node's inspector). */
  onUsr1 (reopen: () => void): void
}

/**
 * Handled from the start: a signal that arrives while the proxy is still
 * starting (a cluster waits for every worker) would otherwise take its
 * default action and end the process; instead SIGTERM stops and SIGHUP
 * reloads once the proxy is up.
 */
function processSignals (): Signals {
  let reload: ((signal: string) => void) | undefined
  let pending: string | undefined
  // SIGUSR2 reloads too, as it does HAProxy's master: an operator (or a
  // script) used to it must not get Node's default, which ends the process.
  const hangup = (signal: string): void => {
    if (reload === undefined) pending = signal
    else reload(signal)
  }
  process.on('SIGHUP', hangup)
  process.on('SIGUSR2', hangup)
  // Kept after the first: a second one (an impatient `kill`, Ctrl-C twice)
  // would take Node's default and end the drain with every request in it.
  // The drain is bounded by timeouts.drain; SIGKILL is there for the rest.
  const stop = new Promise<string>((resolve) => {
    process.on('SIGINT', () => resolve('SIGINT'))
    process.on('SIGTERM', () => resolve('SIGTERM'))
  })
  // Node's own SIGUSR1 opens the inspector: a logrotate postrotate must never do that.
  let reopen = (): void => {}
  process.on('SIGUSR1', () => { reopen() })
  return {
    stop,
    onUsr1 (fn) { reopen = fn },
    onHangup (fn) {
      reload = fn
      if (pending !== undefined) {
        fn(pending)
        pending = undefined
      }
    }
  }
}

/** The lines for listeners (or admin) that could not start: which, where in the file, and why; no stack trace. */
function notStarted (err: StartupError): number {
  process.stderr.write(`${err.message}\nswitchyard: not started: ${plural(err.failures.length, 'listener')} could not start\n`)
  return 1
}

async function start (file: string | undefined, root: string): Promise<number> {
  if (cluster.isWorker) return await startWorker()
  const signals = processSignals()
  const log: Logger = appLogger()
  const demo = file === undefined
  let closeDemo: (() => Promise<void>) | undefined
  if (demo) {
    const c = await ensureDevCertificate(path.join(root, 'certs'))
    if (c.created) log.info({ cert: c.certPath }, 'generated a self-signed development certificate')
    let origins
    try {
      origins = await startDemoOrigins()
    } catch (err) {
      if (typeof (err as NodeJS.ErrnoException).code !== 'string') throw err
      // One line, as for a listener: most often another demo is still running.
      process.stderr.write(`switchyard: the demo's origins (127.0.0.1:9101-9104) could not start: ${(err as Error).message}` +
        ' (another demo or `switchyard demo-origins` running?)\n')
      return 1
    }
    closeDemo = () => origins.close()
  }
  const configFile = file ?? path.join(root, 'config', 'demo.yaml')
  // Valid but risky settings (TLS verification off, a route that never matches) are logged on every load.
  const logWarning = (w: ConfigIssue): void => {
    log.warn({ file: configFile, line: w.line, column: w.column, path: w.path }, `config warning: ${w.message}`)
  }
  const text = await readConfigFile(configFile).catch(() => undefined)
  const { config } = await readConfig(configFile, logWarning, text)
  if (config === undefined) {
    await closeDemo?.()
    return 1
  }
  const workers = workerCount(config)
  if (workers > 1 && text !== undefined) {
    try {
      return await startCluster({ config, source: { file: configFile, text } }, workers, log, demo, signals)
    } finally {
      await closeDemo?.()
    }
  }
  // A running process cannot resize its own heap (V8 fixes it at start), and
  // starting a second, sized one would cost a whole Node process: the value is
  // logged for NODE_OPTIONS instead (README: The response cache).
  if (config.cache !== undefined && !heapSizeGiven(process.execArgv, process.env.NODE_OPTIONS)) {
    const mib = heapLimitMiB(config.cache.maxBytes)
    log.info({ nodeOptions: `--max-old-space-size=${mib}` }, `cache: V8's heap is not sized; NODE_OPTIONS=--max-old-space-size=${mib} bounds this process's memory by cache.maxBytes`)
  }
  let reloadFromFile: () => Promise<ReloadResult> = () => Promise.resolve({ ok: false, errors: ['not started'] })
  const configReport = new ConfigReport(text ?? '')
  const app = createApp(config, { log, config: configReport, reloadSource: () => reloadFromFile() })
  try {
    await app.start()
  } catch (err) {
    await app.stop()
    await closeDemo?.()
    if (!(err instanceof StartupError)) throw err
    return notStarted(err)
  }
  if (demo) printDemoHelp(app.listeners.map((l) => ({ name: l.name, tls: l.tls !== undefined, port: l.address().port })), app.adminAddress())

  // Reload: SIGHUP, the admin API, or (watchConfig) a change to the file. A bad
  // file is reported with its YAML paths and the running config keeps serving.
  const reload = async (reason: string): Promise<ReloadResult> => {
    log.info({ reason, file: configFile }, 'reloading configuration')
    const loaded = await loadForReload(configFile, log, 1)
    if ('errors' in loaded) {
      configReport.reloaded(false)
      return { ok: false, errors: loaded.errors }
    }
    const result = await app.reload(loaded.config)
    configReport.reloaded(result.ok, loaded.source.text)
    if (!result.ok) log.error({ errors: result.errors }, 'configuration rejected; the running one keeps serving')
    return result
  }
  reloadFromFile = () => reload('admin API')
  signals.onHangup((signal) => { void reload(signal) })
  signals.onUsr1(() => { app.reopenLogs() })
  const watcher = config.watchConfig ? watchFile(configFile, () => { void reload('file changed') }) : undefined

  const signal = await signals.stop
  const drain = app.state.config.timeouts.drain
  log.info({ signal, drainMs: drain }, 'stopping: no new connections, draining in-flight requests')
  watcher?.close()
  await app.stop(drain)
  await closeDemo?.()
  log.info('stopped')
  return 0
}

/**
 * The primary of `workers` processes (cluster/primary.ts): forks them, serves
 * the admin API, runs the health checks, reloads on SIGHUP, drains all on
 * SIGTERM or SIGINT.
 */
async function startCluster (initial: LoadedConfig, workers: number, log: Logger, demo: boolean,
  signals: Signals): Promise<number> {
  const configFile = initial.source.file
  const cache = initial.config.cache
  // Each worker's V8 heap sized from its share of the cache, unless whoever
  // started us chose a size (workers inherit execArgv and NODE_OPTIONS).
  // Fixed at start: a reload that changes maxBytes keeps the workers' heaps.
  if (cache !== undefined && !heapSizeGiven(process.execArgv, process.env.NODE_OPTIONS)) {
    const mib = heapLimitMiB(Math.floor(cache.maxBytes / workers))
    cluster.setupPrimary({ execArgv: [...process.execArgv, `--max-old-space-size=${mib}`] })
    log.info({ maxOldSpaceSize: mib }, 'cluster: worker heaps sized from cache.maxBytes')
  }
  const spawn = (id: number): WorkerProcess => {
    const w = cluster.fork({ SWITCHYARD_WORKER_ID: String(id) })
    // A worker's process errors (a kill or write that failed as it died) are
    // its exit's business, never the primary's end.
    w.on('error', (err) => { log.warn({ err, worker: id }, 'worker: process error') })
    return {
      pid: w.process.pid ?? 0,
      port: w,
      kill: (signal) => { w.process.kill(signal) },
      onExit: (fn) => { w.on('exit', fn) }
    }
  }
  let primary
  try {
    primary = await startPrimary(initial, {
      log,
      count: workers,
      spawn,
      load: async () => await loadForReload(configFile, log, workers)
    })
  } catch (err) {
    if (err instanceof StartupError) return notStarted(err)
    process.stderr.write(`switchyard: not started: ${(err as Error).message}\n`)
    return 1
  }
  const p = primary
  log.info({ workers, pids: p.workers().map((w) => w.pid) }, 'cluster: every worker is ready')
  if (demo) {
    printDemoHelp(initial.config.listeners.map((l) => ({ name: l.name, tls: l.tls !== undefined, port: l.port })), p.adminAddress(), workers)
  }
  signals.onHangup((signal) => { void p.reload(signal) })
  signals.onUsr1(() => { p.reopenLogs() })
  const watcher = initial.config.watchConfig ? watchFile(configFile, () => { void p.reload('file changed') }) : undefined
  const drain = p.config.timeouts.drain
  log.info({ signal: await signals.stop, drainMs: drain }, 'stopping: every worker drains its in-flight requests')
  watcher?.close()
  await p.stop(drain)
  log.info('stopped')
  return 0
}

/**
 * A worker of the cluster: its config comes from the primary. It drains and
 * exits when the primary says so, on SIGTERM, or when the primary is gone
 * (a worker never outlives its primary). Ctrl-C reaches every process of the
 * terminal's group: the primary drains the workers, so they ignore SIGINT
 * (and SIGHUP: the primary reloads them).
 */
async function startWorker (): Promise<number> {
  const log: Logger = appLogger({ pid: process.pid, worker: Number(process.env.SWITCHYARD_WORKER_ID ?? 0) })
  // node:cluster exits a worker at once when its IPC channel closes unasked (the primary
  // killed, OOM): every request in flight would be cut. Marked as an expected
  // disconnect, it is left to the 'disconnect' handler below, which drains first.
  if (cluster.worker !== undefined) cluster.worker.exitedAfterDisconnect = true
  process.on('SIGINT', () => {})
  // A hangup reaches the whole group too (the terminal closed, `pkill -HUP`),
  // and so may a SIGUSR2: the primary reloads; Node's default would end the
  // worker and its requests.
  process.on('SIGHUP', () => {})
  process.on('SIGUSR2', () => {})
  // The primary tells its workers to reopen (IPC); a SIGUSR1 sent to a worker itself does the same, never Node's inspector.
  let reopen = (): void => {}
  process.on('SIGUSR1', () => { reopen() })
  let worker
  try {
    worker = await runWorker(process as unknown as Port, log)
  } catch (err) {
    // A StartupError is the operator's problem, said in its lines (the primary prints them); anything else is a bug, with its stack.
    if (err instanceof StartupError) log.error({ failures: err.failures }, 'worker: could not start')
    else log.error({ err }, 'worker: could not start')
    // The open IPC channel would keep this process alive: the primary sees the exit.
    if (process.connected) process.disconnect()
    return 1
  }
  const w = worker
  reopen = () => { w.app.reopenLogs() }
  const drain = w.app.state.config.timeouts.drain
  let drained = false
  process.on('SIGTERM', () => { void w.stop(drain) })
  process.once('disconnect', () => {
    // Its own disconnect below, once drained as asked, is no news.
    if (drained) return
    log.warn('worker: the primary is gone; draining and exiting')
    void w.stop(drain)
  })
  await w.drained
  drained = true
  if (process.connected) process.disconnect()
  return 0
}

/** `--port` of demo-origins: the first of four consecutive ports, or 0 for free ones. */
function firstPort (value: string | undefined): number {
  if (value === undefined) return DEMO_ORIGINS[0]!.port
  const port = /^\d{1,5}$/.test(value) ? Number(value) : NaN
  if (!(port <= 65535 - (DEMO_ORIGINS.length - 1))) {
    throw new UsageError(`--port must be 0 or a port up to ${65535 - (DEMO_ORIGINS.length - 1)} (the first of ${DEMO_ORIGINS.length}), got ${JSON.stringify(value)}`, COMMANDS['demo-origins'])
  }
  return port
}

/**
 * The demo origins alone, until SIGINT or SIGTERM. A port that cannot be
 * bound is one line and exit 1, like a listener of `start`.
 */
async function demoOrigins (host: string, port: number): Promise<number> {
  const signals = processSignals()
  const log: Logger = appLogger()
  let group
  try {
    group = await startDemoOrigins(demoOriginsAt(host, port))
  } catch (err) {
    if (typeof (err as NodeJS.ErrnoException).code !== 'string') throw err
    process.stderr.write(`switchyard: demo origins not started: ${(err as Error).message}\n`)
    return 1
  }
  const ports = group.ports
  log.info({ host, origins: DEMO_ORIGINS.map((o, i) => ({ shard: o.shard, replica: o.replica, port: ports[i] })) }, 'demo origins: listening')
  const signal = await signals.stop
  await group.close()
  log.info({ signal }, 'demo origins: stopped')
  return 0
}

/**
 * Call `changed` once per burst of writes to `file` (editors write in several
 * steps), and when what its path leads to changes: a Kubernetes ConfigMap
 * volume (or an `ln -sfn` deploy) swaps a symlink beside the file, and no
 * event names the file itself.
 */
function watchFile (file: string, changed: () => void): { close (): void } {
  const identity = (): string => {
    try {
      const s = statSync(file)
      return `${s.dev}:${s.ino}:${s.size}:${s.mtimeMs}`
    } catch {
      return 'none'
    }
  }
  let seen = identity()
  let named = false
  let timer: NodeJS.Timeout | undefined
  const fire = (): void => {
    timer = undefined
    const now = identity()
    if (!named && now === seen) return
    named = false
    seen = now
    changed()
  }
  const w = watch(path.dirname(file), (_event, name) => {
    if (name === path.basename(file)) {
      named = true
      clearTimeout(timer)
      timer = setTimeout(fire, 200)
    } else {
      // Anything else in the folder (an access log written there too) only
      // makes it look once, not later and later.
      timer ??= setTimeout(fire, 200)
    }
  })
  return { close: () => { clearTimeout(timer); w.close() } }
}

function printDemoHelp (listeners: { name: string; tls: boolean; port: number }[], admin: { port: number } | undefined, workers = 1): void {
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
    lines.push(`  curl -s -D - -o /dev/null http://127.0.0.1:${http.port}/static/logo.txt | grep -i cache-status   # ${workers === 1 ? 'twice: miss, then hit' : `a miss, then a hit once each of the ${workers} workers has it (each caches for itself)`}`)
    lines.push(`  curl -X POST http://127.0.0.1:9101/_demo/stop   # stop replica a1 for 20 s: failover, and it turns red on the dashboard`)
  }
  lines.push('Each answer names the shard/replica that served it and echoes the forwarded headers.')
  if (admin !== undefined) lines.push(`Dashboard, status and metrics: http://127.0.0.1:${admin.port}/  (/status, /metrics)`)
  lines.push('Ctrl-C stops.', '')
  console.log(lines.join('\n'))
}

main(process.argv.slice(2)).then((code) => { process.exitCode = code }, (err: unknown) => {
  // Expected failures (config, bind, certificate) were printed and returned 1
  // above; this is a bug: one line to read first, then the stack to report.
  const summary = err instanceof Error ? `${err.name}: ${err.message.split('\n')[0] ?? ''}` : String(err)
  process.stderr.write(`switchyard: internal error: ${summary}\n`)
  if (err instanceof Error && err.stack !== undefined) process.stderr.write(`${err.stack}\n`)
  process.exitCode = 1
})
