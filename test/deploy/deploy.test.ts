// The deployment files agree with the config they ship with,
// deploy/switchyard.yaml: the ports they open are its listeners' and its
// admin API's, every probe asks the admin API's /healthz, every grace period
// outlasts its drain, what they mount is where it looks for itself and its
// certificates, and nothing runs as root. The files are parsed, not run
// (there is no Docker engine or cluster here); `switchyard check` is run for
// real on the config.
import { createHash, randomBytes } from 'node:crypto'
import { readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { parse, parseAllDocuments } from 'yaml'
import { parseConfig } from '../../src/config/load.js'
import { DEMO_ORIGINS } from '../../src/demo/origin.js'
import { testCertificatePair } from '../helpers/certs.js'
import { cli, root } from '../helpers/cli.js'

/** After the drain: health checks stop, pools close, the process exits. */
const MARGIN_SECONDS = 5

const read = (file: string): string => readFileSync(path.join(root, file), 'utf8')
const pkg = JSON.parse(read('package.json')) as { version: string, bin: Record<string, string>, engines: { node: string } }
const IMAGE = `switchyard:${pkg.version}`

// ---------------------------------------------------------------- Dockerfile

interface Instruction { readonly op: string, readonly args: string }
interface Stage { readonly image: string, readonly name: string | undefined, readonly instructions: Instruction[] }

/** Instructions with `\` continuations joined and comments dropped, grouped by FROM. */
function dockerStages (text: string): Stage[] {
  const stages: Stage[] = []
  let buf = ''
  for (const raw of text.split('\n')) {
    const line = raw.trimEnd()
    if (line.trimStart().startsWith('#') || (buf === '' && line.trim() === '')) continue
    if (line.endsWith('\\')) {
      buf += line.slice(0, -1) + ' '
      continue
    }
    const [, op = '', args = ''] = /^\s*(\S+)\s*(.*)$/s.exec(buf + line) ?? []
    buf = ''
    if (op.toUpperCase() === 'FROM') {
      const [image = '', as, name] = args.split(/\s+/)
      stages.push({ image, name: as?.toUpperCase() === 'AS' ? name : undefined, instructions: [] })
    } else {
      stages.at(-1)?.instructions.push({ op: op.toUpperCase(), args: args.trim() })
    }
  }
  return stages
}

const stages = dockerStages(read('Dockerfile'))
const runtime = stages.at(-1)!
const all = (stage: Stage, op: string): string[] => stage.instructions.filter((i) => i.op === op).map((i) => i.args)
const last = (stage: Stage, op: string): string | undefined => all(stage, op).at(-1)
const entrypoint = [...JSON.parse(last(runtime, 'ENTRYPOINT') ?? '[]') as string[], ...JSON.parse(last(runtime, 'CMD') ?? '[]') as string[]]
/** Where the container (and the systemd unit) reads the config. */
const CONFIG_PATH = entrypoint[entrypoint.indexOf('start') + 1] ?? ''
const [uid, gid] = (last(runtime, 'USER') ?? '').split(':').map(Number)

/** `COPY [--from=x] [--chown=…] src... dest`. */
function copies (stage: Stage): Array<{ from: string | undefined, sources: string[], dest: string }> {
  return all(stage, 'COPY').map((args) => {
    const words = args.split(/\s+/)
    const from = words.find((w) => w.startsWith('--from='))?.slice('--from='.length)
    const rest = words.filter((w) => !w.startsWith('--'))
    return { from, sources: rest.slice(0, -1), dest: rest.at(-1) ?? '' }
  })
}

/** `.dockerignore` patterns as a test of a context path (or any folder above it). */
function dockerIgnored (text: string): (file: string) => boolean {
  const rules = text.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#')).map((l) => {
    const negate = l.startsWith('!')
    const glob = (negate ? l.slice(1) : l).replace(/^\/+|\/+$/g, '')
    const re = glob.split(/(\*\*\/|\*\*|\*|\?)/).map((part) =>
      part === '**/' ? '(?:.*/)?' : part === '**' ? '.*' : part === '*' ? '[^/]*' : part === '?' ? '[^/]' : part.replace(/[.+^${}()|[\]\\]/g, '\\$&')).join('')
    return { negate, re: new RegExp(`^${re}$`) }
  })
  return (file) => {
    const parts = file.split('/')
    let ignored = false
    for (const { negate, re } of rules) {
      if (parts.some((_p, i) => re.test(parts.slice(0, i + 1).join('/')))) ignored = !negate
    }
    return ignored
  }
}

// ------------------------------------------------------------ shipped config

const configText = read('deploy/switchyard.yaml')
const raw = parse(configText) as Record<string, unknown> & { timeouts?: Record<string, unknown>, admin?: Record<string, unknown> }

/** `${NAME}` references in the config's string values: what every deployment must provide. */
function envReferences (value: unknown): string[] {
  if (typeof value === 'string') return [...value.matchAll(/(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g)].map((m) => m[1]!)
  if (Array.isArray(value)) return value.flatMap(envReferences)
  if (value !== null && typeof value === 'object') return Object.values(value).flatMap(envReferences)
  return []
}
/** The shared cache's keys named by `env: NAME` (32 bytes each, not `${…}` strings). */
const KEY_ENV_NAMES = ((raw.cache as { shared?: { encryptionKeys?: Array<{ env?: string }> } } | undefined)?.shared?.encryptionKeys ?? [])
  .flatMap((k) => k.env ?? [])
const ENV_NAMES = [...new Set([...envReferences(raw), ...KEY_ENV_NAMES])]
/** What a deployment would put in each variable: a URL for `…_URL`, else 32 random bytes in hex (a valid token and key alike). */
const sampleEnv = (): Record<string, string> =>
  Object.fromEntries(ENV_NAMES.map((n) => [n, n.endsWith('_URL') ? 'redis://redis:6379' : randomBytes(32).toString('hex')]))
const shipped = parseConfig(configText, CONFIG_PATH, { env: sampleEnv() })

const SERVING_PORTS = shipped.listeners.map((l) => l.port).sort((a, b) => a - b)
const ADMIN_PORT = shipped.admin.port
const ALL_PORTS = [...SERVING_PORTS, ADMIN_PORT].sort((a, b) => a - b)
const DRAIN_SECONDS = shipped.timeouts.drain / 1000
const CERT_FILES = shipped.listeners.flatMap((l) => l.tls?.certificates.flatMap((c) => [c.cert, c.key]) ?? [])
const CERT_DIRS = [...new Set(CERT_FILES.map((f) => path.dirname(f)))]
const ORIGIN_URLS = Object.values(shipped.backends).flatMap((b) => b.shards.flatMap((s) => s.servers.map((v) => new URL(v.url))))
const ADMIN_TOKEN_ENV = envReferences(raw.admin?.token)[0]

const sorted = (ports: Iterable<number>): number[] => [...ports].sort((a, b) => a - b)

t.test('the shipped config is one a container can run', async (t) => {
  t.equal(CONFIG_PATH, '/etc/switchyard/switchyard.yaml', 'the image reads it from /etc/switchyard')
  t.ok(shipped.listeners.some((l) => l.tls !== undefined), 'a TLS listener')
  t.ok(shipped.listeners.some((l) => l.tls === undefined), 'a plaintext listener')
  for (const l of shipped.listeners) t.equal(l.host, '0.0.0.0', `${l.name} listens on every interface`)
  t.ok(ALL_PORTS.every((p) => p >= 1024), 'no port needs a privilege')
  t.equal(shipped.admin.enabled, true)
  t.equal(shipped.admin.host, '0.0.0.0', 'admin on every interface, so probes reach it')
  t.type(ADMIN_TOKEN_ENV, 'string', 'the admin token is an ${ENV} reference, not written in the file')
  t.type(raw.timeouts?.drain, 'string', 'timeouts.drain is written out, not left to the default')
  t.type(shipped.workers, 'number', 'workers is a number: `auto` counts the host\'s CPUs, not the container\'s')
  t.ok(CERT_FILES.length > 0)
  for (const f of CERT_FILES) t.equal(path.dirname(f), path.join(path.dirname(CONFIG_PATH), 'certs'), `${f}: under certs/ beside the config`)
  t.ok(ORIGIN_URLS.length > 0)
  t.same(sorted(new Set(ORIGIN_URLS.map((u) => Number(u.port)))), DEMO_ORIGINS.map((o) => o.port), 'routes to the demo origins\' ports')
  t.same([...new Set(ORIGIN_URLS.map((u) => u.hostname))], ['origins'], 'on the host `origins`')
})

t.test('switchyard check accepts the shipped config, with the certificates and token where it says', async (t) => {
  const pair = testCertificatePair()
  interface Folder { [name: string]: string | Folder }
  const fixture: Folder = { [path.basename(CONFIG_PATH)]: configText }
  const pems = shipped.listeners.flatMap((l) => l.tls?.certificates.flatMap((c) => [{ file: c.cert, pem: pair.certPem }, { file: c.key, pem: pair.keyPem }]) ?? [])
  for (const { file, pem } of pems) {
    // certs/tls.crt → { certs: { 'tls.crt': … } }
    const parts = path.relative(path.dirname(CONFIG_PATH), file).split(path.sep)
    let dir = fixture
    for (const p of parts.slice(0, -1)) dir = (dir[p] ??= {}) as Folder
    dir[parts.at(-1)!] = pem
  }
  const file = path.join(t.testdir(fixture), path.basename(CONFIG_PATH))
  const env = sampleEnv()
  const r = cli(['check', file], { env })
  t.equal(r.code, 0, r.stderr)
  t.equal(r.stderr, '', 'no warnings either')
  t.match(r.stdout, `${file}: valid\n`)
  t.match(r.stdout, 'auth: bearer token (set, not shown)')

  const without = cli(['check', file], { env: { ...env, [ADMIN_TOKEN_ENV!]: '' } })
  t.equal(without.code, 1, 'an empty token is refused: it really comes from the environment')
  t.match(without.stderr, /admin\.token: /)
})

t.test('Dockerfile: the image runs the shipped config as a non-root user and probes its /healthz', async (t) => {
  const engines = /(\d+)\.(\d+)/.exec(pkg.engines.node)!
  for (const s of stages) {
    t.match(s.image, /^node:\d+-bookworm-slim$/, `${s.name ?? 'runtime'} stage on a slim Node image`)
    t.ok(Number(/^node:(\d+)/.exec(s.image)?.[1]) >= Number(engines[1]), `${s.image} satisfies engines ${pkg.engines.node}`)
  }
  t.ok(stages.length >= 2, 'multi-stage')

  t.same(sorted(last(runtime, 'EXPOSE')?.split(/\s+/).map((p) => Number(p.replace(/\/tcp$/, ''))) ?? []), ALL_PORTS, 'EXPOSE = listeners + admin')
  t.equal(last(runtime, 'STOPSIGNAL'), 'SIGTERM', 'STOPSIGNAL SIGTERM: docker stop drains')
  t.same(entrypoint, ['node', pkg.bin.switchyard, 'start', CONFIG_PATH], 'runs the bin of package.json on the config')

  t.ok(Number.isInteger(uid) && uid! > 0, `USER is a numeric non-root uid (Kubernetes runAsNonRoot can check it), got ${String(last(runtime, 'USER'))}`)
  t.ok(Number.isInteger(gid) && gid! > 0, 'and a numeric non-root gid')
  t.match(all(runtime, 'RUN').join('\n'), new RegExp(`useradd [^\\n]*--uid ${uid}\\b`), 'that user is created')
  t.notOk(runtime.instructions.some((i) => i.op === 'USER' && /^(0|root)\b/.test(i.args)), 'never root')

  const health = last(runtime, 'HEALTHCHECK') ?? ''
  const command = health.slice(health.indexOf('CMD') + 'CMD'.length).trim()
  t.match(command, /^\["node", "-e", /, 'HEALTHCHECK runs node (no curl in a slim image)')
  const url = new URL(/https?:\/\/[^'"\s)]+/.exec(command)?.[0] ?? 'http://invalid')
  t.equal(Number(url.port), ADMIN_PORT, 'HEALTHCHECK on the admin port')
  t.equal(url.pathname, '/healthz')
  t.notMatch(health, /authorization|bearer/i, '/healthz needs no token')

  const byName = new Map(stages.map((s) => [s.name, s]))
  const copied = copies(runtime)
  const modules = copied.find((c) => c.sources.some((s) => s.endsWith('node_modules')))
  const deps = byName.get(modules?.from)
  t.ok(deps !== undefined, 'node_modules come from a stage')
  t.match(all(deps!, 'RUN').join('\n'), /npm ci [^\n]*--omit=dev/, 'production dependencies only')
  for (const wanted of ['dist/src', 'dist/dashboard']) {
    const c = copied.find((x) => x.sources.some((s) => s.endsWith(wanted)))
    t.ok(c !== undefined, `the runtime copies ${wanted}`)
    t.match(all(byName.get(c?.from) ?? runtime, 'RUN').join('\n'), /npm run build/, `${wanted} from the stage that builds`)
  }
  t.ok(copied.some((c) => c.from === undefined && c.sources.includes('package.json')), 'package.json: the CLI finds its root by it')
  const intoImage = copied.filter((c) => c.from === undefined).flatMap((c) => c.sources)
  t.notOk(intoImage.some((s) => /certs|\.key$|\.pem$/.test(s)), 'no certificate or key copied in')

  const ignored = dockerIgnored(read('.dockerignore'))
  for (const s of intoImage) t.notOk(ignored(s), `${s} is in the build context`)
  for (const s of ['node_modules', 'dist/src/main.js', 'certs/dev.key', 'deploy/certs/tls.key', '.git']) t.ok(ignored(s), `${s} is kept out of it`)
})

// ------------------------------------------------------------ compose.yaml

interface ComposeService {
  image?: string
  build?: unknown
  user?: string
  command?: string[] | string
  entrypoint?: string[] | string
  ports?: Array<string | { target: number, published?: number | string, host_ip?: string }>
  volumes?: Array<string | { type?: string, source: string, target: string, read_only?: boolean }>
  environment?: Record<string, string> | string[]
  depends_on?: Record<string, { condition: string }> | string[]
  healthcheck?: { disable?: boolean, test?: string[] }
  stop_grace_period?: string
}
const compose = parse(read('compose.yaml'), { merge: true }) as { services: Record<string, ComposeService>, volumes?: Record<string, unknown> }
const services = Object.entries(compose.services)
/** The proxies: our image with its own command (start the shipped config). */
const instances = services.filter(([, s]) => s.image === IMAGE && s.command === undefined && s.entrypoint === undefined)

function composePorts (s: ComposeService): Array<{ container: number, hostIp: string | undefined }> {
  return (s.ports ?? []).map((p) => {
    if (typeof p !== 'string') return { container: p.target, hostIp: p.host_ip }
    const parts = p.replace(/\/tcp$/, '').split(':')
    return { container: Number(parts.at(-1)), hostIp: parts.length === 3 ? parts[0] : undefined }
  })
}

function composeVolumes (s: ComposeService): Array<{ source: string, target: string, readOnly: boolean }> {
  return (s.volumes ?? []).map((v) => {
    if (typeof v !== 'string') return { source: v.source, target: v.target, readOnly: v.read_only === true }
    const [source = '', target = '', mode = ''] = v.split(':')
    return { source, target, readOnly: mode.split(',').includes('ro') }
  })
}

function composeEnv (s: ComposeService): Record<string, string> {
  const env = s.environment ?? {}
  return Array.isArray(env) ? Object.fromEntries(env.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)])) : env
}

/** Go durations as compose writes them: 1m30s, 35s, 500ms. */
function goDuration (text: string): number {
  const unit: Record<string, number> = { h: 3600, m: 60, s: 1, ms: 0.001 }
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(ms|h|m|s)/g)]
  if (parts.map((p) => p[0]).join('') !== text) return NaN
  return parts.reduce((sum, p) => sum + Number(p[1]) * unit[p[2]!]!, 0)
}

/** The command line `demo-origins` runs with: its host and first port. */
function originsArgs (args: readonly string[]): { host: string | undefined, ports: number[] } {
  const at = args.indexOf('demo-origins')
  const option = (name: string): string | undefined => {
    const i = args.indexOf(name, at)
    return i === -1 ? args.find((a) => a.startsWith(`${name}=`))?.slice(name.length + 1) : args[i + 1]
  }
  const first = Number(option('--port') ?? DEMO_ORIGINS[0]!.port)
  return { host: option('--host'), ports: DEMO_ORIGINS.map((_o, i) => first + i) }
}

t.test('compose.yaml: two instances of the image, one config, the ports and grace it asks for', async (t) => {
  t.equal(instances.length, 2, `two Switchyard instances (${instances.map(([n]) => n).join(', ')})`)
  const configSources = new Set<string>()
  const certSources = new Set<string>()
  for (const [name, s] of instances) {
    t.ok(s.build !== undefined, `${name}: built from this repository`)
    const ports = composePorts(s)
    t.same(sorted(ports.map((p) => p.container)), ALL_PORTS, `${name}: publishes the listeners and the admin API`)
    t.equal(ports.find((p) => p.container === ADMIN_PORT)?.hostIp, '127.0.0.1', `${name}: the admin API on the host's loopback only`)

    const volumes = composeVolumes(s)
    const config = volumes.find((v) => v.target === CONFIG_PATH)
    t.ok(config?.readOnly, `${name}: the config mounted read-only at ${CONFIG_PATH}`)
    t.equal(path.resolve(root, config?.source ?? ''), path.join(root, 'deploy/switchyard.yaml'), `${name}: it is deploy/switchyard.yaml`)
    configSources.add(config?.source ?? '')
    for (const dir of CERT_DIRS) {
      const certs = volumes.find((v) => v.target === dir)
      t.ok(certs?.readOnly, `${name}: certificates mounted read-only at ${dir}`)
      certSources.add(certs?.source ?? '')
    }

    const env = composeEnv(s)
    for (const n of ENV_NAMES) t.ok(env[n] !== undefined, `${name}: sets ${n}, which the config reads`)
    t.match(env[ADMIN_TOKEN_ENV!], /^\$\{[A-Z_]+:\?/, `${name}: the token comes from the host environment, required`)
    t.ok(goDuration(s.stop_grace_period ?? '10s') >= DRAIN_SECONDS + MARGIN_SECONDS,
      `${name}: stop_grace_period ${String(s.stop_grace_period)} outlasts timeouts.drain ${DRAIN_SECONDS}s`)
    t.notOk(s.healthcheck?.disable, `${name}: keeps the image's HEALTHCHECK`)

    const redisUrl = new URL(env.SWITCHYARD_REDIS_URL ?? 'redis://missing')
    t.match(compose.services[redisUrl.hostname]?.image, /^redis:/, `${name}: SWITCHYARD_REDIS_URL names the redis service`)
    t.equal(redisUrl.port, '6379')
    const deps = Array.isArray(s.depends_on) ? s.depends_on : Object.keys(s.depends_on ?? {})
    t.ok(deps.includes(redisUrl.hostname), `${name}: starts after redis`)
  }
  t.equal(configSources.size, 1, 'both instances mount the same config')
  t.equal(certSources.size, 1, 'and the same certificates')

  const origins = compose.services[ORIGIN_URLS[0]!.hostname]
  t.equal(origins?.image, IMAGE, 'the origins the config names run from the same image')
  const args = originsArgs(Array.isArray(origins?.command) ? origins.command : [])
  t.equal(args.host, '0.0.0.0', 'reachable from the instances')
  t.same(args.ports, sorted(new Set(ORIGIN_URLS.map((u) => Number(u.port)))), 'on the ports the config routes to')

  // Whatever writes the certificates writes the names the config reads, into the volume the instances mount.
  const [certSource] = certSources
  const writers = services.filter(([, s]) => composeVolumes(s).some((v) => v.source === certSource && !v.readOnly))
  t.equal(writers.length, 1, 'one service writes the certificates volume')
  const script = [writers[0]?.[1].entrypoint, writers[0]?.[1].command].flat().join(' ')
  for (const f of CERT_FILES) t.ok(script.includes(path.basename(f)), `it writes ${path.basename(f)}`)
  t.ok(compose.volumes !== undefined && certSource! in compose.volumes, 'a named volume, not a folder of the host')
})

t.test('compose.yaml: nothing runs as root', async (t) => {
  t.ok(uid! > 0, 'our image\'s USER')
  for (const [name, s] of services) {
    if (s.image === IMAGE) {
      t.equal(s.user, undefined, `${name}: runs as the image's user`)
    } else {
      // Other images (the official redis one) start as root unless told.
      t.match(s.user, /^[1-9]\d*(:[1-9]\d*)?$/, `${name}: a numeric non-root user`)
    }
  }
})

// ---------------------------------------------------------------- Kubernetes

interface Selector { matchLabels?: Record<string, string> }
interface ContainerPort { name?: string, containerPort: number }
interface Probe { httpGet?: { path: string, port: number | string } }
interface SecurityContext {
  runAsNonRoot?: boolean, runAsUser?: number, runAsGroup?: number, fsGroup?: number,
  allowPrivilegeEscalation?: boolean, readOnlyRootFilesystem?: boolean, capabilities?: { drop?: string[] }
}
interface Container {
  name: string, image: string, command?: string[], args?: string[], ports?: ContainerPort[]
  env?: Array<{ name: string, value?: string, valueFrom?: { secretKeyRef?: { name: string, key: string } } }>
  startupProbe?: Probe, readinessProbe?: Probe, livenessProbe?: Probe
  lifecycle?: { preStop?: { exec?: { command: string[] }, sleep?: { seconds: number } } }
  resources?: { requests?: Record<string, string>, limits?: Record<string, string> }
  securityContext?: SecurityContext
  volumeMounts?: Array<{ name: string, mountPath: string, readOnly?: boolean }>
}
interface PodSpec {
  terminationGracePeriodSeconds?: number, securityContext?: SecurityContext, containers: Container[]
  topologySpreadConstraints?: Array<{ labelSelector: Selector }>
  volumes?: Array<{ name: string, projected?: { sources: Array<{ configMap?: KeyItems, secret?: KeyItems }> } }>
}
interface KeyItems { name: string, items: Array<{ key: string, path: string }> }
interface K8sObject {
  apiVersion: string, kind: string
  metadata: { name: string, labels?: Record<string, string>, annotations?: Record<string, string> }
  data?: Record<string, string>
  spec?: {
    replicas?: number, selector?: Selector & Record<string, string>
    template?: { metadata: { labels: Record<string, string>, annotations?: Record<string, string> }, spec: PodSpec }
    ports?: Array<{ name?: string, port: number, targetPort: number | string }>
    maxUnavailable?: number, minAvailable?: number
    scaleTargetRef?: { apiVersion: string, kind: string, name: string }
    minReplicas?: number, maxReplicas?: number
    metrics?: Array<{ type: string, resource?: { name: string, target: { type: string } } }>
  }
}

const K8S_DIR = 'deploy/kubernetes'
const k8sFiles = readdirSync(path.join(root, K8S_DIR)).filter((f) => f.endsWith('.yaml')).sort()
const k8s: K8sObject[] = k8sFiles.flatMap((f) => parseAllDocuments(read(path.join(K8S_DIR, f))).map((d) => d.toJS() as K8sObject)).filter((o) => o !== null)
const find = (kind: string, name: string): K8sObject | undefined => k8s.find((o) => o.kind === kind && o.metadata.name === name)
const deployment = k8s.find((o) => o.kind === 'Deployment' && o.spec?.template?.spec.containers.some((c) => c.image === IMAGE && c.args === undefined))
const pod = deployment?.spec?.template
const proxy = pod?.spec.containers.find((c) => c.image === IMAGE)

/** Does `selector` pick pods labelled `labels`? */
const selects = (selector: Record<string, string> | undefined, labels: Record<string, string> | undefined): boolean =>
  selector !== undefined && Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => labels?.[k] === v)

/** A probe's or Service's port, by number or by the container port's name. */
const portOf = (c: Container | undefined, port: number | string | undefined): number | undefined =>
  typeof port === 'number' ? port : c?.ports?.find((p) => p.name === port)?.containerPort

/** Kubernetes CPU quantities: 2, "1", 500m. */
const cpu = (q: string | undefined): number => q === undefined ? NaN : q.endsWith('m') ? Number(q.slice(0, -1)) / 1000 : Number(q)

t.test('kubernetes: the ConfigMap is deploy/switchyard.yaml, and a change to it rolls the pods', async (t) => {
  t.ok(deployment !== undefined, 'a Deployment runs the image\'s own command')
  const mount = proxy?.volumeMounts?.find((m) => CONFIG_PATH.startsWith(m.mountPath + '/'))
  t.ok(mount?.readOnly, `a read-only volume over ${path.dirname(CONFIG_PATH)}`)
  const sources = pod?.spec.volumes?.find((v) => v.name === mount?.name)?.projected?.sources ?? []
  const inMount = (p: string): string => path.posix.join(mount?.mountPath ?? '', p)

  const configItem = sources.flatMap((s) => s.configMap === undefined ? [] : s.configMap.items.map((i) => ({ map: s.configMap!.name, ...i })))
    .find((i) => inMount(i.path) === CONFIG_PATH)
  t.ok(configItem !== undefined, `a ConfigMap item lands at ${CONFIG_PATH}`)
  const configMap = find('ConfigMap', configItem?.map ?? '')
  t.ok(configMap !== undefined, `ConfigMap ${String(configItem?.map)} is in ${K8S_DIR}`)
  t.equal(configMap?.data?.[configItem?.key ?? ''], configText,
    `its ${String(configItem?.key)} is deploy/switchyard.yaml verbatim: copy the file in, or run kubectl create configmap ` +
    `${String(configItem?.map)} --from-file=switchyard.yaml=deploy/switchyard.yaml --dry-run=client -o yaml`)
  t.equal(pod?.metadata.annotations?.['checksum/config'], createHash('sha256').update(configText).digest('hex'),
    'checksum/config is the SHA-256 of deploy/switchyard.yaml (sha256sum deploy/switchyard.yaml)')

  // The TLS pair from a Secret that is referenced, never committed.
  const secretItems = sources.flatMap((s) => s.secret === undefined ? [] : s.secret.items.map((i) => ({ secret: s.secret!.name, ...i })))
  for (const f of CERT_FILES) t.ok(secretItems.some((i) => inMount(i.path) === f), `a Secret item lands at ${f}`)
  t.equal(k8s.filter((o) => o.kind === 'Secret').length, 0, 'no Secret object in the repository')
  for (const f of [...k8sFiles.map((f) => path.join(K8S_DIR, f)), 'compose.yaml', 'Dockerfile', 'deploy/switchyard.yaml']) {
    t.notMatch(read(f), /PRIVATE KEY/, `${f}: no private key`)
  }
})

t.test('kubernetes: the pods open the config\'s ports and probe the admin API\'s /healthz', async (t) => {
  t.equal(proxy?.image, IMAGE, 'the image of this version')
  t.equal(proxy?.command, undefined, 'the image\'s entrypoint')
  t.same(sorted(proxy?.ports?.map((p) => p.containerPort) ?? []), ALL_PORTS, 'container ports = listeners + admin')
  for (const kind of ['startupProbe', 'readinessProbe', 'livenessProbe'] as const) {
    const probe = proxy?.[kind]
    if (kind === 'startupProbe' && probe === undefined) continue
    t.equal(probe?.httpGet?.path, '/healthz', `${kind}: GET /healthz`)
    t.equal(portOf(proxy, probe?.httpGet?.port), ADMIN_PORT, `${kind}: on the admin port`)
  }

  const env = new Map(proxy?.env?.map((e) => [e.name, e]))
  for (const n of ENV_NAMES) t.ok(env.has(n), `sets ${n}, which the config reads`)
  t.ok(env.get(ADMIN_TOKEN_ENV!)?.valueFrom?.secretKeyRef !== undefined, 'the token from a Secret')
  t.equal(env.get(ADMIN_TOKEN_ENV!)?.value, undefined, 'not written in the manifest')
  const redisUrl = new URL(env.get('SWITCHYARD_REDIS_URL')?.value ?? 'redis://missing')
  const redis = find('Service', redisUrl.hostname)
  t.ok(redis?.spec?.ports?.some((p) => p.port === Number(redisUrl.port)), `SWITCHYARD_REDIS_URL names Service ${redisUrl.hostname}:${redisUrl.port}`)
  const redisPods = k8s.filter((o) => o.kind === 'Deployment' && selects(redis?.spec?.selector, o.spec?.template?.metadata.labels))
  t.ok(redisPods.length === 1 && redisPods[0]!.spec!.template!.spec.containers.every((c) => /^redis:/.test(c.image)), 'and it selects the redis pods')

  const originHost = ORIGIN_URLS[0]!.hostname
  const origins = find('Service', originHost)
  t.same(sorted(origins?.spec?.ports?.map((p) => p.port) ?? []), sorted(new Set(ORIGIN_URLS.map((u) => Number(u.port)))), `Service ${originHost}: the ports the config routes to`)
  const originPods = k8s.filter((o) => o.kind === 'Deployment' && selects(origins?.spec?.selector, o.spec?.template?.metadata.labels))
  t.equal(originPods.length, 1, `Service ${originHost} selects one Deployment`)
  const originContainer = originPods[0]?.spec?.template?.spec.containers[0]
  t.equal(originContainer?.image, IMAGE, 'the demo origins from the same image')
  const args = originsArgs(originContainer?.args ?? [])
  t.equal(args.host, '0.0.0.0')
  for (const p of origins?.spec?.ports ?? []) {
    t.ok(args.ports.includes(portOf(originContainer, p.targetPort) ?? NaN), `Service port ${p.port} reaches a demo origin`)
  }
})

t.test('kubernetes: the README and the Deployment\'s own comment create every Secret the pods read', async (t) => {
  const referenced = new Set<string>()
  for (const c of proxy?.env ?? []) if (c.valueFrom?.secretKeyRef !== undefined) referenced.add(c.valueFrom.secretKeyRef.name)
  for (const m of read('deploy/kubernetes/deployment.yaml').matchAll(/^\s+- secret:\n\s+name: (\S+)/gm)) referenced.add(m[1]!)
  t.ok(referenced.size >= 3, `the admin token, the cache key and the TLS pair: ${[...referenced].join(', ')}`)
  const created = (text: string): Set<string> => new Set([...text.matchAll(/kubectl create secret (?:generic|tls) (\S+)/g)].map((m) => m[1]!))
  for (const [where, text] of [['README.md', read('README.md')], ['deployment.yaml', read('deploy/kubernetes/deployment.yaml')]] as const) {
    const made = created(text)
    for (const name of referenced) t.ok(made.has(name), `${where} creates Secret ${name}`)
  }
})

t.test('README: the docker run example and the systemd steps set every variable the shipped config reads', async (t) => {
  const readme = read('README.md')
  const run = /docker run -d --name switchyard[^]*?switchyard:\S+\n/.exec(readme)?.[0] ?? ''
  t.not(run, '', 'the example is there')
  for (const n of ENV_NAMES) t.match(run, new RegExp(`-e ${n}=`), `sets ${n}`)
  // systemd: the environment file the README writes.
  const envFile = /^.*\/etc\/switchyard\/switchyard\.env\n/m.exec(readme.slice(readme.indexOf('**systemd.**')))?.[0] ?? ''
  const block = readme.slice(readme.indexOf('**systemd.**')).split('```')[1] ?? ''
  t.not(envFile, '', 'the systemd steps write the environment file')
  for (const n of ENV_NAMES) t.match(block, new RegExp(`${n}=`), `the systemd environment file sets ${n}`)
})

t.test('kubernetes: the grace period outlasts the pre-stop delay and the drain', async (t) => {
  const preStop = proxy?.lifecycle?.preStop
  const sleep = preStop?.sleep?.seconds ?? (preStop?.exec?.command.at(-2)?.endsWith('sleep') === true ? Number(preStop.exec.command.at(-1)) : NaN)
  t.ok(sleep > 0, `preStop sleeps (${sleep}s) while the endpoint is removed`)
  const grace = pod?.spec.terminationGracePeriodSeconds ?? 30
  t.ok(grace >= sleep + DRAIN_SECONDS + MARGIN_SECONDS,
    `terminationGracePeriodSeconds ${grace} >= preStop ${sleep} + drain ${DRAIN_SECONDS} + ${MARGIN_SECONDS}`)
})

t.test('kubernetes: Service, PodDisruptionBudget and autoscaler point at the Deployment', async (t) => {
  const labels = pod?.metadata.labels
  t.ok(selects(deployment?.spec?.selector?.matchLabels, labels), 'the Deployment selects its own pods')
  for (const c of pod?.spec.topologySpreadConstraints ?? []) t.ok(selects(c.labelSelector.matchLabels, labels), 'pods spread by their own labels')

  const service = k8s.find((o) => o.kind === 'Service' && selects(o.spec?.selector, labels))
  t.ok(service !== undefined, 'a Service selects the pods')
  t.equal(k8s.filter((o) => o.kind === 'Service' && selects(o.spec?.selector, labels)).length, 1, 'one')
  const targets = service?.spec?.ports?.map((p) => portOf(proxy, p.targetPort)) ?? []
  t.same(sorted(targets.map(Number)), SERVING_PORTS, 'it reaches every listener')
  t.notOk(targets.includes(ADMIN_PORT), 'and not the admin API')

  const pdb = k8s.find((o) => o.kind === 'PodDisruptionBudget')
  t.equal(pdb?.apiVersion, 'policy/v1')
  t.same(pdb?.spec?.selector?.matchLabels, deployment?.spec?.selector?.matchLabels, 'the PodDisruptionBudget guards these pods')

  const hpa = k8s.find((o) => o.kind === 'HorizontalPodAutoscaler')
  t.equal(hpa?.apiVersion, 'autoscaling/v2')
  t.same(hpa?.spec?.scaleTargetRef, { apiVersion: deployment?.apiVersion, kind: 'Deployment', name: deployment?.metadata.name }, 'the autoscaler scales the Deployment')
  t.ok((hpa?.spec?.minReplicas ?? 1) >= 2, 'two replicas at least')
  t.equal(deployment?.spec?.replicas, undefined, 'the autoscaler owns the count: kubectl apply would reset a fixed one')
  const floor = hpa?.spec?.minReplicas ?? 1
  t.ok(pdb?.spec?.maxUnavailable !== undefined ? pdb.spec.maxUnavailable >= 1 && pdb.spec.maxUnavailable < floor : (pdb?.spec?.minAvailable ?? floor) < floor,
    'a drain can always evict one pod, and never all')
  if (hpa?.spec?.metrics?.some((m) => m.resource?.name === 'cpu')) t.ok(cpu(proxy?.resources?.requests?.cpu) > 0, 'CPU utilization needs a CPU request')
  t.ok(typeof shipped.workers === 'number' && shipped.workers <= cpu(proxy?.resources?.limits?.cpu),
    `workers (${String(shipped.workers)}) within the CPU limit (${String(proxy?.resources?.limits?.cpu)})`)
  t.ok(proxy?.resources?.limits?.memory !== undefined, 'a memory limit')
})

t.test('kubernetes: every pod runs as non-root on a read-only root filesystem', async (t) => {
  const pods = k8s.filter((o) => o.spec?.template !== undefined)
  t.ok(pods.length >= 3, 'proxy, origins and redis')
  for (const o of pods) {
    const spec = o.spec!.template!.spec
    t.equal(spec.securityContext?.runAsNonRoot, true, `${o.metadata.name}: runAsNonRoot`)
    for (const c of spec.containers) {
      const user = c.securityContext?.runAsUser ?? spec.securityContext?.runAsUser
      t.ok(user !== undefined && user > 0, `${o.metadata.name}/${c.name}: a non-root uid`)
      t.equal(c.securityContext?.allowPrivilegeEscalation, false, `${o.metadata.name}/${c.name}: no privilege escalation`)
      t.equal(c.securityContext?.readOnlyRootFilesystem, true, `${o.metadata.name}/${c.name}: read-only root filesystem`)
      t.same(c.securityContext?.capabilities?.drop, ['ALL'], `${o.metadata.name}/${c.name}: no capabilities`)
    }
  }
  t.equal(pod?.spec.securityContext?.runAsUser, uid, 'the proxy runs as the image\'s user')
  t.equal(pod?.spec.securityContext?.fsGroup, gid, 'and its group reads the mounted key')
})

// ------------------------------------------------------------------- systemd

/** `Section.Key` → every value given, in order. */
function unitFile (text: string): Map<string, string[]> {
  const out = new Map<string, string[]>()
  let section = ''
  for (const raw of text.split('\n')) {
    const line = raw.trim()
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue
    const header = /^\[(.+)\]$/.exec(line)
    if (header !== null) {
      section = header[1]!
      continue
    }
    const eq = line.indexOf('=')
    const key = `${section}.${line.slice(0, eq).trim()}`
    out.set(key, [...(out.get(key) ?? []), line.slice(eq + 1).trim()])
  }
  return out
}

/** systemd time spans: 40, 40s, 1min 30s, 2min. */
function systemdSeconds (text: string): number {
  if (/^\d+$/.test(text)) return Number(text)
  const unit: Record<string, number> = { ms: 0.001, s: 1, sec: 1, m: 60, min: 60, h: 3600, hr: 3600 }
  const parts = [...text.matchAll(/(\d+)\s*(ms|sec|s|min|m|hr|h)\b/g)]
  return parts.length === 0 ? NaN : parts.reduce((sum, p) => sum + Number(p[1]) * unit[p[2]!]!, 0)
}

t.test('systemd: the unit starts the config, reloads on HUP, outlasts the drain, and is sandboxed', async (t) => {
  const unit = unitFile(read('deploy/systemd/switchyard.service'))
  const one = (key: string): string | undefined => unit.get(`Service.${key}`)?.at(-1)

  const exec = one('ExecStart')?.split(/\s+/) ?? []
  t.same(exec.slice(-2), ['start', CONFIG_PATH], 'ExecStart: start, on the path the container uses')
  t.ok(exec.some((w) => w.endsWith(`/${pkg.bin.switchyard}`)), 'the bin of package.json')
  t.match(one('ExecReload'), /^\/bin\/kill (-HUP|-s HUP|--signal=HUP) \$MAINPID$/, 'ExecReload sends SIGHUP (reload)')
  t.equal(one('KillSignal') ?? 'SIGTERM', 'SIGTERM', 'stop drains')
  t.equal(one('KillMode'), 'mixed', 'SIGTERM to the primary only; it drains its workers')
  const stop = systemdSeconds(one('TimeoutStopSec') ?? '90s')
  t.ok(stop >= DRAIN_SECONDS + MARGIN_SECONDS, `TimeoutStopSec ${stop}s outlasts timeouts.drain ${DRAIN_SECONDS}s`)
  t.equal(one('Restart'), 'on-failure')

  const user = one('User')
  t.ok(one('DynamicUser') === 'yes' || (user !== undefined && !['root', '0'].includes(user)), `a dedicated user, not root (${String(user)})`)
  t.ok(unit.get('Service.EnvironmentFile') !== undefined, 'the admin token from an environment file')
  for (const e of unit.get('Service.Environment') ?? []) {
    for (const n of ENV_NAMES) t.notOk(e.includes(`${n}=`), `${n} is not written in the unit`)
  }

  for (const [key, value] of [
    ['NoNewPrivileges', 'yes'], ['ProtectSystem', 'strict'], ['ProtectHome', 'yes'], ['PrivateTmp', 'yes'],
    ['PrivateDevices', 'yes'], ['ProtectKernelTunables', 'yes'], ['ProtectKernelModules', 'yes'], ['ProtectControlGroups', 'yes'],
    ['CapabilityBoundingSet', 'CAP_NET_BIND_SERVICE'], ['AmbientCapabilities', 'CAP_NET_BIND_SERVICE']
  ] as const) {
    t.equal(one(key), value, `${key}=${value}`)
  }
  const families = one('RestrictAddressFamilies')?.split(/\s+/) ?? []
  t.same([...families].sort(), ['AF_INET', 'AF_INET6', 'AF_UNIX'], 'IPv4, IPv6, and AF_UNIX for the workers\' IPC')
  t.ok(Number(one('LimitNOFILE')) >= 65536, 'room for many connections')
  t.not(one('MemoryDenyWriteExecute'), 'yes', 'V8\'s JIT needs writable executable memory')
  t.equal(unit.get('Install.WantedBy')?.[0], 'multi-user.target')
})
