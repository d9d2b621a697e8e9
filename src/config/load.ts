// YAML text → validated, normalized, deep-frozen Config. Startup-only: the hot
// path never imports this. Every problem found (syntax, `${…}` references,
// rules, certificate files, backend TLS files that are not the PEM they
// should be, bind addresses) is thrown at once as one ConfigError.
// `switchyard check`, start and reload all load through here, so they accept
// and refuse the same files with the same messages.

import { accessSync, constants, readFileSync, statSync, type Stats } from 'node:fs'
import { access, readFile, stat } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import { LineCounter, isMap, isPair, isScalar, isSeq, parseDocument } from 'yaml'
import type { Node, YAMLError } from 'yaml'
import { CertificateError, loadCertificatePair } from '../certs.js'
import { ConfigError } from '../errors.js'
import type { ConfigIssue } from '../errors.js'
import { checkBinds } from './binds.js'
import { checkTlsPem, type PemRole, type PemText } from './pem.js'
import { joinPath } from './reader.js'
import { type BackendTlsPem, type Config, deepFreeze } from './schema.js'
import { type Reference, type Resolved, fileValue, substituteDocument } from './substitute.js'
import { type BindRef, type FileRef, type SecretRef, type TlsFileRefs, validateDocument } from './validate.js'

export interface LoadOptions {
  /**
   * Check that every certificate and key file exists and is readable, and
   * that each listener's certificate and key parse and belong together.
   * Default: true for loadConfig, false for parseConfig (which reads no
   * certificate files by default).
   */
  readonly checkFiles?: boolean
  /**
   * loadConfig only: try each bind address on this machine (config/binds.ts).
   * Default false; `switchyard check`, start and reload turn it on.
   */
  readonly checkBinds?: boolean
  /**
   * loadConfig only: the file's text, already read (a cluster's primary reads
   * it once and gives its workers the same bytes it validated).
   */
  readonly text?: string
  /** Where `${NAME}` is looked up. Default: process.env. */
  readonly env?: Readonly<Record<string, string | undefined>>
  /**
   * Told each warning (the config works, but probably not as meant), in file
   * order, before the result is returned or the ConfigError thrown.
   */
  readonly onWarning?: (warning: ConfigIssue) => void
}

/** Where a listener or the admin block was written, for startup errors. */
export interface ConfigOrigin {
  /** The config file as it was named to parseConfig/loadConfig. */
  readonly file: string
  /** `listeners[1]` or `admin`. */
  readonly path: string
  /** Of its bind value; 0 when it was not written (the admin default). */
  readonly line: number
  readonly column: number
}

/** Per loaded config: where each listener (by index) and the admin block were written. */
const origins = new WeakMap<Config, { readonly listeners: readonly ConfigOrigin[], readonly admin: ConfigOrigin }>()

/**
 * Where listener number `part` (or the admin block) of a config from
 * parseConfig/loadConfig was written; undefined for a config built in code.
 */
export function configOrigin (config: Config, part: number | 'admin'): ConfigOrigin | undefined {
  const o = origins.get(config)
  return part === 'admin' ? o?.admin : o?.listeners[part]
}

/**
 * Parses and validates config text. `file` names the source in messages and is
 * the base for relative certificate and `${file:…}` paths ('' = none; paths
 * resolve against the cwd).
 * @throws ConfigError with every issue found
 */
export function parseConfig (text: string, file: string, opts: LoadOptions = {}): Config {
  const result = analyse(text, file, opts)
  if (opts.checkFiles !== true) return finish(file, result, [], [], opts)
  const certWarnings: ConfigIssue[] = []
  const fileIssues = checkFilesSync(result, certWarnings)
  const toRead = tlsToRead(result.tlsFiles, fileIssues)
  const texts = new Map(toRead.flatMap(pemFiles).map((f) => [f, readText(f)]))
  const tls = loadTlsPem(toRead, texts)
  return finish(file, withTlsPem(result, tls.pems), [...fileIssues, ...tls.issues], certWarnings, opts)
}

/**
 * Reads, parses and validates a config file.
 * @throws ConfigError with every issue found, including unreadable files
 */
export async function loadConfig (file: string, opts: LoadOptions = {}): Promise<Config> {
  let text: string
  try {
    text = opts.text ?? await readConfigFile(file)
  } catch (err) {
    throw new ConfigError(file, [{ path: '', message: `cannot read the config file: ${fsReason(err)}`, line: 0, column: 0 }])
  }
  const result = analyse(text, file, opts)
  const certWarnings: ConfigIssue[] = []
  const fileIssues = opts.checkFiles === false ? [] : await checkFilesAsync(result, certWarnings)
  let analysed = result
  const tlsIssues: ConfigIssue[] = []
  if (opts.checkFiles !== false) {
    const toRead = tlsToRead(result.tlsFiles, fileIssues)
    const files = toRead.flatMap(pemFiles)
    const texts = new Map(await Promise.all(files.map(async (f) => [f, await readFile(f, 'utf8').catch((err: Error) => err)] as const)))
    const tls = loadTlsPem(toRead, texts)
    analysed = withTlsPem(result, tls.pems)
    tlsIssues.push(...tls.issues)
  }
  const binds = opts.checkBinds === true ? await checkBinds(result.binds) : { issues: [], warnings: [] }
  return finish(file, analysed, [...fileIssues, ...tlsIssues, ...binds.issues], [...certWarnings, ...binds.warnings], opts)
}

interface Analysis {
  readonly config: Config | undefined
  readonly issues: readonly ConfigIssue[]
  readonly warnings: readonly ConfigIssue[]
  readonly files: readonly FileRef[]
  readonly tlsFiles: readonly TlsFileRefs[]
  readonly folders: readonly FileRef[]
  readonly binds: readonly BindRef[]
  /** Paths whose `${…}` could not be expanded: other issues there would only repeat that. */
  readonly unexpanded: ReadonlySet<string>
}

function analyse (text: string, file: string, opts: LoadOptions): Analysis {
  const lines = new LineCounter()
  // prettyErrors off: we place the error ourselves and want the bare message.
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false })
  if (doc.errors.length > 0) {
    // A broken tree would only add confusing follow-up issues, so stop at syntax.
    const issues = syntaxIssues(doc.errors, doc.contents, lines)
    return { config: undefined, issues, warnings: [], files: [], tlsFiles: [], folders: [], binds: [], unexpanded: new Set() }
  }
  const source = file === '' ? '' : resolve(file)
  // After parsing, before the rules: the rules see the values the proxy will use.
  const substitution = substituteDocument(doc, lines, referenceResolver(source === '' ? resolve('') : dirname(source), opts.env ?? process.env))
  const v = validateDocument(doc, lines, source)
  const secrets = readSecrets(v.secrets, opts.env ?? process.env)
  const issues = [...substitution.issues, ...v.issues.filter((i) => !substitution.failed.has(i.path)), ...secrets.issues]
  return { ...v, config: withSecrets(v.config, secrets.values), issues, unexpanded: substitution.failed }
}

// ── encryption keys: read once at load, carried in the Config ───────────────

/** 32 bytes, as `openssl rand -base64 32` or `-hex 32` prints them. */
const KEY_BYTES = 32

function readSecrets (refs: readonly SecretRef[], env: Readonly<Record<string, string | undefined>>): {
  values: Map<string, string>, issues: ConfigIssue[]
} {
  const values = new Map<string, string>()
  const issues: ConfigIssue[] = []
  for (const ref of refs) {
    const where = 'env' in ref.source ? `environment variable \`${ref.source.env}\`` : `file ${ref.source.file}`
    let text: string | undefined
    if ('env' in ref.source) {
      text = env[ref.source.env]
      if (text === undefined) issues.push({ path: ref.path, line: ref.line, column: ref.column, message: `${where} is not set` })
    } else {
      try {
        text = readSmallFile(ref.source.file)
      } catch (err) {
        issues.push({ path: ref.path, line: ref.line, column: ref.column, message: `cannot read the key: ${ref.source.file}: ${fsReason(err)}` })
      }
    }
    if (text === undefined) continue
    const key = decodeKey(text.trim())
    if (key === undefined) {
      // Never the value: it is a secret, even when malformed.
      issues.push({
        path: ref.path, line: ref.line, column: ref.column,
        message: `${where} must hold ${KEY_BYTES} random bytes in base64 or hex (\`openssl rand -base64 ${KEY_BYTES}\`)`
      })
      continue
    }
    values.set(ref.path, key.toString('base64'))
  }
  return { values, issues }
}

function decodeKey (s: string): Buffer | undefined {
  if (/^[0-9a-fA-F]{64}$/.test(s)) return Buffer.from(s, 'hex')
  if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(s)) return undefined
  const b = Buffer.from(s, 'base64')
  return b.length === KEY_BYTES ? b : undefined
}

function withSecrets (config: Config, values: ReadonlyMap<string, string>): Config {
  const shared = config.cache?.shared
  if (config.cache === undefined || shared === undefined || values.size === 0) return config
  const encryptionKeys = shared.encryptionKeys.map((k, i) => ({ ...k, secret: values.get(`cache.shared.encryptionKeys[${i}]`) ?? '' }))
  return { ...config, cache: { ...config.cache, shared: { ...shared, encryptionKeys } } }
}

/** `${NAME}` from `env`; `${file:path}` read from disk, relative to the config file's folder. */
function referenceResolver (baseDir: string, env: Readonly<Record<string, string | undefined>>): (ref: Reference) => Resolved {
  return (ref) => {
    if (ref.kind === 'env') {
      const value = env[ref.name]
      return value === undefined ? { error: `environment variable \`${ref.name}\` is not set` } : { value }
    }
    const path = resolve(baseDir, ref.path)
    try {
      return { value: fileValue(readSmallFile(path)) }
    } catch (err) {
      return { error: `cannot read \`\${file:${ref.path}}\` (${path}): ${fsReason(err)}` }
    }
  }
}

/** `more`: the file and bind checks' issues and warnings, added to the analysis'. */
function finish (file: string, result: Analysis, moreIssues: readonly ConfigIssue[], moreWarnings: readonly ConfigIssue[], opts: LoadOptions): Config {
  const byPosition = (a: ConfigIssue, b: ConfigIssue): number => a.line - b.line || a.column - b.column
  for (const w of [...result.warnings, ...moreWarnings].sort(byPosition)) opts.onWarning?.(w)
  const issues = [...result.issues, ...moreIssues.filter((i) => !result.unexpanded.has(i.path))]
  const config = result.config
  if (issues.length > 0 || config === undefined) throw new ConfigError(file, issues.sort(byPosition))
  recordOrigins(file, config, result.binds)
  return deepFreeze(config)
}

// ── backend TLS files: read once, checked as PEM, carried in the Config ──────

const PEM_ROLES: readonly PemRole[] = ['ca', 'cert', 'key']

/** The TLS blocks whose files all passed the file check: the others are reported already. */
function tlsToRead (refs: readonly TlsFileRefs[], fileIssues: readonly ConfigIssue[]): TlsFileRefs[] {
  const bad = new Set(fileIssues.map((i) => i.path))
  return refs.filter((t) => !PEM_ROLES.some((role) => t[role] !== undefined && bad.has(t[role].path)))
}

function pemFiles (t: TlsFileRefs): string[] {
  return PEM_ROLES.flatMap((role) => t[role]?.file ?? [])
}

function readText (file: string): string | Error {
  try {
    return readFileSync(file, 'utf8')
  } catch (err) {
    return err as Error
  }
}

/** Each backend's PEM (by backend name), and an issue at the file's YAML key for each problem. */
function loadTlsPem (refs: readonly TlsFileRefs[], texts: ReadonlyMap<string, string | Error>): {
  pems: Map<string, BackendTlsPem>, issues: ConfigIssue[]
} {
  const pems = new Map<string, BackendTlsPem>()
  const issues: ConfigIssue[] = []
  for (const t of refs) {
    const given: { [R in PemRole]?: PemText } = {}
    let read = true
    for (const role of PEM_ROLES) {
      const ref = t[role]
      const text = ref === undefined ? undefined : texts.get(ref.file)
      if (ref === undefined || text === undefined) continue
      if (text instanceof Error) {
        issues.push(fileIssue(ref, fsReason(text)))
        read = false
      } else {
        given[role] = { file: ref.file, text }
      }
    }
    if (!read) continue
    const check = checkTlsPem(given, t.minVersion)
    if (check.ok) {
      pems.set(t.backend, check.pem)
      continue
    }
    for (const p of check.problems) {
      const ref = p.role === undefined ? undefined : t[p.role]
      // A problem of the files together is the block's, shown where its first file is named.
      const at = ref ?? t.ca ?? t.cert ?? t.key
      if (at === undefined) continue
      issues.push({ path: ref?.path ?? at.path.slice(0, at.path.lastIndexOf('.')), message: p.message, line: at.line, column: at.column })
    }
  }
  return { pems, issues }
}

function withTlsPem (result: Analysis, pems: ReadonlyMap<string, BackendTlsPem>): Analysis {
  const config = result.config
  if (config === undefined || pems.size === 0) return result
  const backends = Object.fromEntries(Object.entries(config.backends).map(([name, b]) => {
    const pem = pems.get(name)
    return [name, pem === undefined || b.tls === undefined ? b : { ...b, tls: { ...b.tls, pem } }]
  }))
  return { ...result, config: { ...config, backends } }
}

function recordOrigins (file: string, config: Config, binds: readonly BindRef[]): void {
  const at = (path: string): { line: number, column: number } => {
    const b = binds.find((x) => x.path === path)
    return b === undefined ? { line: 0, column: 0 } : { line: b.line, column: b.column }
  }
  origins.set(config, {
    listeners: config.listeners.map((_, i) => ({ file, path: `listeners[${i}]`, ...at(`listeners[${i}].bind`) })),
    admin: { file, path: 'admin', ...at('admin.bind') }
  })
}

/** Every certificate/key file exists and is readable; then each pair parses and matches. */
async function checkFilesAsync (result: Analysis, warnings: ConfigIssue[]): Promise<ConfigIssue[]> {
  const issues = (await Promise.all([...result.files.map(checkFile), ...result.folders.map(checkFolder)])).flat()
  return [...issues, ...checkPairs(result.files, issues, warnings)]
}

function checkFilesSync (result: Analysis, warnings: ConfigIssue[]): ConfigIssue[] {
  const issues = [...result.files.flatMap(checkFileSync), ...result.folders.flatMap(checkFolderSync)]
  return [...issues, ...checkPairs(result.files, issues, warnings)]
}

/**
 * Loads each `cert` + `key` pair (siblings in the YAML: `….cert` and `….key`)
 * as a TLS listener will, once both files are readable (`unreadable` holds
 * the issues already found), and reports at the file at fault.
 */
function checkPairs (files: readonly FileRef[], unreadable: readonly ConfigIssue[], warnings: ConfigIssue[]): ConfigIssue[] {
  const byPath = new Map(files.map((f) => [f.path, f]))
  const bad = new Set(unreadable.map((i) => i.path))
  const out: ConfigIssue[] = []
  for (const cert of files) {
    // Listener pairs; a backend's client pair is checked with its CA in pem.ts.
    if (!cert.path.endsWith('.cert') || !cert.path.startsWith('listeners[')) continue
    const key = byPath.get(`${cert.path.slice(0, -'.cert'.length)}.key`)
    if (key === undefined || bad.has(cert.path) || bad.has(key.path)) continue
    try {
      const { x509 } = loadCertificatePair(cert.file, key.file)
      const when = certificateWhen(x509, Date.now())
      if (when !== undefined) warnings.push({ path: cert.path, message: when, line: cert.line, column: cert.column })
    } catch (err) {
      if (!(err instanceof CertificateError)) throw err
      const ref = err.file === 'cert' ? cert : key
      out.push({ path: ref.path, message: err.message, line: ref.line, column: ref.column })
    }
  }
  return out
}

/** Days before its end a listener certificate is warned about. */
const CERT_WARN_DAYS = 14

/**
 * A warning for a certificate clients will refuse (expired, not yet valid) or
 * soon will: it is served all the same (refusing it would turn an expired
 * certificate into an outage at the next start), but `check`, the start and
 * every reload say so at its line.
 */
export function certificateWhen (x509: { readonly validFrom: string, readonly validTo: string }, now: number): string | undefined {
  const from = Date.parse(x509.validFrom)
  const to = Date.parse(x509.validTo)
  if (now < from) return `the certificate is not valid before ${new Date(from).toISOString()}: clients refuse it`
  if (now > to) return `the certificate expired on ${new Date(to).toISOString()}: clients refuse it`
  const days = Math.floor((to - now) / 86_400_000)
  if (days < CERT_WARN_DAYS) return `the certificate expires on ${new Date(to).toISOString()}, in ${days} day${days === 1 ? '' : 's'}`
  return undefined
}

/** yaml's own words for it name its API (`please use YAML.parseAllDocuments()`). */
const ONE_DOCUMENT = 'the config must be one YAML document; a second one starts here (remove it, or merge it into the first)'

/**
 * One issue per YAML error, minus the cascade: after the first error the parser
 * is out of step and reports every following token as unexpected.
 */
function syntaxIssues (errors: readonly YAMLError[], root: Node | null, lines: LineCounter): ConfigIssue[] {
  const out: ConfigIssue[] = []
  for (const e of errors) {
    if (e.code === 'MULTIPLE_DOCS') {
      // At the second document's start (its `---`, or its first line after a
      // `...`), which is past the first one's last value: no key of ours is there.
      const { line, col } = lines.linePos(e.pos[0])
      out.push({ path: '', message: ONE_DOCUMENT, line, column: col })
      continue
    }
    const { path, node } = nodeAt(root, e.pos[0], '')
    // An unclosed quote is noticed where the text runs out; point at where the string starts.
    const offset = e.code === 'MISSING_CHAR' && isScalar(node) ? node.range?.[0] ?? e.pos[0] : e.pos[0]
    const { line, col } = lines.linePos(offset)
    if (out.length > 0 && (e.code === 'UNEXPECTED_TOKEN' || out.some((i) => i.line === line))) continue
    out.push({ path, message: e.message, line, column: col })
  }
  return out
}

/** The deepest node covering `offset` and its YAML path, so a syntax error still names a key. */
function nodeAt (node: Node | null, offset: number, path: string): { path: string, node: Node | null } {
  // An offset inside an item is that item's; one just past an item's end
  // (an unterminated quote runs to it) is that item's unless the next item
  // starts there (a second `routes:` is the second routes, not the value before it).
  if (isMap(node)) {
    let ending: { value: Node | null, path: string } | undefined
    for (const pair of node.items) {
      if (!isPair(pair) || !isScalar(pair.key)) continue
      const key = String(pair.key.value)
      const end = (pair.value as Node | null)?.range?.[2] ?? pair.key.range?.[2] ?? -1
      const start = pair.key.range?.[0] ?? Infinity
      if (offset >= start && offset < end) return nodeAt(pair.value as Node | null, offset, joinPath(path, key))
      if (offset >= start && offset === end) ending = { value: pair.value as Node | null, path: joinPath(path, key) }
    }
    if (ending !== undefined) return nodeAt(ending.value, offset, ending.path)
  } else if (isSeq(node)) {
    let ending: number | undefined
    for (let i = 0; i < node.items.length; i++) {
      const range = (node.items[i] as Node | null)?.range
      if (range === undefined || range === null || offset < range[0]) continue
      if (offset < range[2]) return nodeAt(node.items[i] as Node, offset, `${path}[${i}]`)
      if (offset === range[2]) ending = i
    }
    if (ending !== undefined) return nodeAt(node.items[ending] as Node, offset, `${path}[${ending}]`)
  }
  return { path, node }
}

async function checkFile (ref: FileRef): Promise<ConfigIssue[]> {
  try {
    if (!(await stat(ref.file)).isFile()) return [fileIssue(ref, 'not a regular file')]
    await access(ref.file, constants.R_OK)
    return []
  } catch (err) {
    return [fileIssue(ref, fsReason(err))]
  }
}

function checkFileSync (ref: FileRef): ConfigIssue[] {
  try {
    if (!statSync(ref.file).isFile()) return [fileIssue(ref, 'not a regular file')]
    accessSync(ref.file, constants.R_OK)
    return []
  } catch (err) {
    return [fileIssue(ref, fsReason(err))]
  }
}

/**
 * The access log (its file, in `folders`): its folder must exist, and the
 * file must be one to append to (a folder of that name, or a file this
 * process may not write, would fail only as the log is opened).
 */
async function checkFolder (ref: FileRef): Promise<ConfigIssue[]> {
  const folder = dirname(ref.file)
  try {
    if (!(await stat(folder)).isDirectory()) return [folderIssue(ref, 'not a folder')]
  } catch (err) {
    return [folderIssue(ref, fsReason(err))]
  }
  try {
    if ((await stat(ref.file)).isDirectory()) return [writeIssue(ref, 'is a directory')]
    await access(ref.file, constants.W_OK)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') return [writeIssue(ref, fsReason(err))]
    try {
      await access(folder, constants.W_OK) // it is created there
    } catch (err) {
      return [folderIssue(ref, fsReason(err))]
    }
  }
  return []
}

function checkFolderSync (ref: FileRef): ConfigIssue[] {
  const folder = dirname(ref.file)
  try {
    if (!statSync(folder).isDirectory()) return [folderIssue(ref, 'not a folder')]
  } catch (err) {
    return [folderIssue(ref, fsReason(err))]
  }
  try {
    if (statSync(ref.file).isDirectory()) return [writeIssue(ref, 'is a directory')]
    accessSync(ref.file, constants.W_OK)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') return [writeIssue(ref, fsReason(err))]
    try {
      accessSync(folder, constants.W_OK)
    } catch (err) {
      return [folderIssue(ref, fsReason(err))]
    }
  }
  return []
}

function folderIssue (ref: FileRef, reason: string): ConfigIssue {
  if (reason === 'no such file') reason = 'no such folder'
  return { path: ref.path, message: `cannot use the folder ${dirname(ref.file)}: ${reason}`, line: ref.line, column: ref.column }
}

function writeIssue (ref: FileRef, reason: string): ConfigIssue {
  return { path: ref.path, message: `cannot write ${ref.file}: ${reason}`, line: ref.line, column: ref.column }
}

function fileIssue (ref: FileRef, reason: string): ConfigIssue {
  return { path: ref.path, message: `cannot read ${ref.file}: ${reason}`, line: ref.line, column: ref.column }
}

/** What a config file may hold at most: a generated one with thousands of routes is a few MiB. */
const CONFIG_FILE_MAX = 16 * 1024 * 1024

/**
 * The config file's text. Only a regular file of at most CONFIG_FILE_MAX: a
 * FIFO would block the load (and every reload queued behind it, and the
 * drain waiting for them), a device could be read forever, and a huge file
 * would be parsed into every worker's heap.
 */
export async function readConfigFile (file: string): Promise<string> {
  regularFile(await stat(file), CONFIG_FILE_MAX, 'a config file')
  return readFile(file, 'utf8')
}

/** Throws unless `st` is a regular file of at most `max` bytes (`what` may hold that much). */
function regularFile (st: Stats, max: number, what: string): void {
  if (st.isDirectory()) throw Object.assign(new Error('is a directory'), { code: 'EISDIR' })
  if (!st.isFile()) throw new Error('not a regular file')
  if (st.size > max) throw new Error(`${st.size} bytes, more than the ${max} ${what} may hold`)
}

/** What `${file:…}` and key files may hold at most: secrets, tokens and URLs are small. */
const SMALL_FILE_MAX = 1024 * 1024

/**
 * A small regular file's text. A device, FIFO or socket is refused before it
 * is opened (/dev/zero would be read forever, a FIFO without a writer would
 * block the load), and so is a file above SMALL_FILE_MAX.
 */
function readSmallFile (path: string): string {
  regularFile(statSync(path), SMALL_FILE_MAX, 'a secret or value file')
  return readFileSync(path, 'utf8')
}

function fsReason (err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code
  if (code === 'ENOENT') return 'no such file'
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied'
  if (code === 'EISDIR') return 'is a directory'
  return err instanceof Error ? err.message : String(err)
}
