// YAML text → validated, normalized, deep-frozen Config. Startup-only: the hot
// path never imports this. Every problem found (syntax, rules, missing
// certificate files, backend TLS files that are not the PEM they should be) is
// thrown at once as one ConfigError.

import { accessSync, constants, readFileSync, statSync } from 'node:fs'
import { access, readFile, stat } from 'node:fs/promises'
import { resolve } from 'node:path'
import { LineCounter, isMap, isPair, isScalar, isSeq, parseDocument } from 'yaml'
import type { Node, YAMLError } from 'yaml'
import { ConfigError } from '../errors.js'
import type { ConfigIssue } from '../errors.js'
import { checkTlsPem, type PemRole, type PemText } from './pem.js'
import { joinPath } from './reader.js'
import type { BackendTlsPem, Config } from './schema.js'
import { type FileRef, type TlsFileRefs, validateDocument } from './validate.js'

export interface LoadOptions {
  /**
   * Check that every certificate and key file exists and is readable.
   * Default: true for loadConfig, false for parseConfig (which does no I/O by default).
   */
  readonly checkFiles?: boolean
  /**
   * Told each warning (a valid but risky setting, e.g. backend TLS
   * verification turned off) of a config that loaded without errors.
   */
  readonly onWarning?: (warning: ConfigIssue) => void
}

/**
 * Parses and validates config text. `file` names the source in messages and is
 * the base for relative certificate paths ('' = none; paths resolve against the cwd).
 * @throws ConfigError with every issue found
 */
export function parseConfig (text: string, file: string, opts: LoadOptions = {}): Config {
  const result = analyse(text, file)
  if (opts.checkFiles !== true) return finish(file, result, result.issues, opts)
  const fileIssues = [...result.files.flatMap(checkFileSync), ...result.folders.flatMap(checkFolderSync)]
  const toRead = tlsToRead(result.tlsFiles, fileIssues)
  const texts = new Map(toRead.flatMap(pemFiles).map((f) => [f, readText(f)]))
  const tls = loadTlsPem(toRead, texts)
  return finish(file, withTlsPem(result, tls.pems), [...result.issues, ...fileIssues, ...tls.issues], opts)
}

/**
 * Reads, parses and validates a config file.
 * @throws ConfigError with every issue found, including unreadable files
 */
export async function loadConfig (file: string, opts: LoadOptions = {}): Promise<Config> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    throw new ConfigError(file, [{ path: '', message: `cannot read the config file: ${fsReason(err)}`, line: 0, column: 0 }])
  }
  const result = analyse(text, file)
  if (opts.checkFiles === false) return finish(file, result, result.issues, opts)
  const fileIssues = (await Promise.all([...result.files.map(checkFile), ...result.folders.map(checkFolder)])).flat()
  const toRead = tlsToRead(result.tlsFiles, fileIssues)
  const files = toRead.flatMap(pemFiles)
  const texts = new Map(await Promise.all(files.map(async (f) => [f, await readFile(f, 'utf8').catch((err: Error) => err)] as const)))
  const tls = loadTlsPem(toRead, texts)
  return finish(file, withTlsPem(result, tls.pems), [...result.issues, ...fileIssues, ...tls.issues], opts)
}

interface Analysis {
  readonly config: Config | undefined
  readonly issues: readonly ConfigIssue[]
  readonly warnings: readonly ConfigIssue[]
  readonly files: readonly FileRef[]
  readonly tlsFiles: readonly TlsFileRefs[]
  readonly folders: readonly FileRef[]
}

function analyse (text: string, file: string): Analysis {
  const lines = new LineCounter()
  // prettyErrors off: we place the error ourselves and want the bare message.
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false })
  if (doc.errors.length > 0) {
    // A broken tree would only add confusing follow-up issues, so stop at syntax.
    return { config: undefined, issues: syntaxIssues(doc.errors, doc.contents, lines), warnings: [], files: [], tlsFiles: [], folders: [] }
  }
  return validateDocument(doc, lines, file === '' ? '' : resolve(file))
}

function finish (file: string, result: Analysis, issues: readonly ConfigIssue[], opts: LoadOptions): Config {
  const config = result.config
  if (issues.length > 0 || config === undefined) {
    throw new ConfigError(file, [...issues].sort((a, b) => a.line - b.line || a.column - b.column))
  }
  const frozen = deepFreeze(config)
  for (const w of result.warnings) opts.onWarning?.(w)
  return frozen
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

/**
 * One issue per YAML error, minus the cascade: after the first error the parser
 * is out of step and reports every following token as unexpected.
 */
function syntaxIssues (errors: readonly YAMLError[], root: Node | null, lines: LineCounter): ConfigIssue[] {
  const out: ConfigIssue[] = []
  for (const e of errors) {
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
  if (isMap(node)) {
    for (const pair of node.items) {
      if (!isPair(pair) || !isScalar(pair.key)) continue
      const key = String(pair.key.value)
      const end = (pair.value as Node | null)?.range?.[2] ?? pair.key.range?.[2] ?? -1
      const start = pair.key.range?.[0] ?? Infinity
      if (offset >= start && offset <= end) return nodeAt(pair.value as Node | null, offset, joinPath(path, key))
    }
  } else if (isSeq(node)) {
    for (let i = 0; i < node.items.length; i++) {
      const range = (node.items[i] as Node | null)?.range
      if (range !== undefined && range !== null && offset >= range[0] && offset <= range[2]) {
        return nodeAt(node.items[i] as Node, offset, `${path}[${i}]`)
      }
    }
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

/** A folder a file will be created in (the access log's): it must exist. */
async function checkFolder (ref: FileRef): Promise<ConfigIssue[]> {
  try {
    return (await stat(ref.file)).isDirectory() ? [] : [folderIssue(ref, 'not a folder')]
  } catch (err) {
    return [folderIssue(ref, fsReason(err))]
  }
}

function checkFolderSync (ref: FileRef): ConfigIssue[] {
  try {
    return statSync(ref.file).isDirectory() ? [] : [folderIssue(ref, 'not a folder')]
  } catch (err) {
    return [folderIssue(ref, fsReason(err))]
  }
}

function folderIssue (ref: FileRef, reason: string): ConfigIssue {
  if (reason === 'no such file') reason = 'no such folder'
  return { path: ref.path, message: `cannot use the folder ${ref.file}: ${reason}`, line: ref.line, column: ref.column }
}

function fileIssue (ref: FileRef, reason: string): ConfigIssue {
  return { path: ref.path, message: `cannot read ${ref.file}: ${reason}`, line: ref.line, column: ref.column }
}

function fsReason (err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code
  if (code === 'ENOENT') return 'no such file'
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied'
  if (code === 'EISDIR') return 'is a directory'
  return err instanceof Error ? err.message : String(err)
}

function deepFreeze<T> (value: T): T {
  // The config is a tree (shared defaults at most), so a plain walk ends.
  if (value !== null && typeof value === 'object') {
    Object.freeze(value)
    for (const v of Object.values(value)) deepFreeze(v)
  }
  return value
}
