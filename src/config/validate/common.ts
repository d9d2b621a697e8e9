// What every section of the validator shares: the Context a section reads
// with (the Reader, and the files and binds it hands to load.ts), opt() for
// optional keys, the duration/size/percentage readers, Unique, and the value
// checks more than one section makes. Sections import from here, never from
// each other (backend-health.ts and backend-tls.ts are parts of the backends
// section, called by backends.ts alone); validate.ts composes them.

import { resolve } from 'node:path'
import { isMap } from 'yaml'
import type { BackendTlsConfig, TlsConfig } from '../schema.js'
import type { Field, MapView, Reader } from '../reader.js'
import { NAME_FORM, isIpOrCidr, isName, isToken } from '../forms.js'
import {
  DURATION_FORMS, MAX_DURATION_MS, SIZE_FORMS, formatDuration, formatSize, parseDuration, parsePercent, parseSize
} from '../units.js'

/** A certificate or key file (or a folder) named in the config, for load.ts to check. */
export interface FileRef {
  /** YAML path of the key, e.g. `listeners[0].tls.cert`. */
  readonly path: string
  /** Absolute path (in `folders`: the access log file, whose folder must exist). */
  readonly file: string
  readonly line: number
  readonly column: number
}

/** A backend's TLS files (also in `files`), for load.ts to read and check as PEM once they passed the file check. */
export interface TlsFileRefs {
  readonly backend: string
  readonly minVersion: BackendTlsConfig['minVersion']
  readonly ca?: FileRef
  readonly cert?: FileRef
  readonly key?: FileRef
}

/**
 * A secret named in the config by where it is (`env: NAME` or `file: PATH`),
 * for load.ts to read: the validator itself reads nothing.
 */
export interface SecretRef {
  /** YAML path of the item, e.g. `cache.shared.encryptionKeys[0]`. */
  readonly path: string
  readonly source: { readonly env: string } | { readonly file: string }
  readonly line: number
  readonly column: number
}

/** A well-formed bind address (a listener's or the admin API's), for load.ts to try on this machine. */
export interface BindRef {
  /** YAML path of the `bind` value, e.g. `listeners[1].bind` or `admin.bind`. */
  readonly path: string
  readonly host: string
  readonly port: number
  readonly line: number
  readonly column: number
}

/**
 * What a section reads with: the Reader (issues and warnings go there), and
 * the lists of files, folders and binds that load.ts checks afterwards, in
 * the order the sections found them.
 */
export class Context {
  readonly r: Reader
  readonly files: FileRef[] = []
  readonly tlsFiles: TlsFileRefs[] = []
  readonly binds: BindRef[] = []
  readonly folders: FileRef[] = []
  readonly secrets: SecretRef[] = []
  readonly #baseDir: string

  /** `baseDir`: the config file's folder, against which relative paths resolve. */
  constructor (r: Reader, baseDir: string) {
    this.r = r
    this.#baseDir = baseDir
  }

  /** A certificate/key path: made absolute and remembered for the file check; '' when absent or not a path. */
  file (f: Field | undefined): string {
    return this.fileRef(f)?.file ?? ''
  }

  /** Like file(), but the reference itself (for the PEM check of a backend's TLS files). */
  fileRef (f: Field | undefined): FileRef | undefined {
    if (f === undefined) return undefined
    const s = this.r.text(f)
    if (s === undefined) return undefined
    const ref = { path: f.path, file: resolve(this.#baseDir, s), ...this.r.position(f.at) }
    this.files.push(ref)
    return ref
  }

  /** A path written at `f`, made absolute. */
  resolve (s: string): string {
    return resolve(this.#baseDir, s)
  }

  /** Remembers that the folder of `file` (written at `f`) must exist, and `file` be one to append to. */
  folderOf (f: Field, file: string): void {
    this.folders.push({ path: f.path, file, ...this.r.position(f.at) })
  }

  /** Remembers a well-formed bind address (written at `f`) for the bind check. */
  bind (f: Field, parsed: { host: string, port: number }): void {
    this.binds.push({ path: f.path, ...parsed, ...this.r.position(f.at) })
  }
}

/** The value of an optional key, or its default when absent, empty or invalid (then an issue is recorded). */
export function opt<T> (m: MapView, key: string, read: (f: Field) => T | undefined, fallback: T): T {
  const f = m.get(key)
  return f === undefined ? fallback : read(f) ?? fallback
}

/** Like opt, but undefined when the value is invalid, for rules that compare two values. */
export function optChecked<T> (m: MapView, key: string, read: (f: Field) => T | undefined, fallback: T): T | undefined {
  const f = m.get(key)
  return f === undefined ? fallback : read(f)
}

/** `true` or `{}`: every default; `false`: off, as if absent; a mapping: those options. */
export function toggle (r: Reader, f: Field, keys: readonly string[]): MapView | boolean | undefined {
  const v = r.scalar(f)
  if (typeof v === 'boolean') return v
  if (!isMap(f.node)) return r.expected(f, 'a mapping, true (every default) or false (off)')
  return r.map(f, keys)
}

/** Milliseconds, at least `min` (1 = must be > 0). */
export function duration (r: Reader, f: Field, min = 0): number | undefined {
  const ms = parseDuration(r.scalar(f))
  if (ms === undefined) return r.expected(f, DURATION_FORMS)
  if (ms > MAX_DURATION_MS) return r.expected(f, 'a duration of at most 596h31m23s (the Node.js timer limit)')
  if (ms < min) return r.expected(f, min === 1 ? 'a duration greater than 0' : `a duration of at least ${formatDuration(min)}`)
  return ms
}

export function size (r: Reader, f: Field, min: number): number | undefined {
  const bytes = parseSize(r.scalar(f))
  if (bytes === undefined) return r.expected(f, SIZE_FORMS)
  if (bytes < min) return r.expected(f, `a size of at least ${formatSize(min)}`)
  return bytes
}

/** A fraction 0..1, written as a number (`0.2`) or a percentage (`20%`). */
export function fraction (r: Reader, f: Field): number | undefined {
  const v = r.scalar(f)
  const pct = parsePercent(v)
  const x = typeof v === 'number' ? v : pct === undefined ? undefined : pct / 100
  if (x === undefined || !Number.isFinite(x) || x < 0 || x > 1) {
    return r.expected(f, 'a fraction from 0 to 1 like 0.2, or a percentage like 20%')
  }
  return x
}

/** A percentage 0..100, written as a number (`50`) or with its sign (`50%`). */
export function percent (r: Reader, f: Field, whole = false): number | undefined {
  const v = r.scalar(f)
  const x = typeof v === 'number' ? v : parsePercent(v)
  if (x === undefined || !Number.isFinite(x) || x < 0 || x > 100 || (whole && !Number.isInteger(x))) {
    return r.expected(f, whole ? 'a whole percentage from 0 to 100 like 50 or 50%' : 'a percentage from 0 to 100 like 50 or 12.5%')
  }
  return x
}

/** Listener, route, backend, shard and server names. */
export function entryName (r: Reader, f: Field): string | undefined {
  const s = r.text(f)
  if (s === undefined) return undefined
  return isName(s) ? s : r.expected(f, NAME_FORM)
}

export function httpToken (r: Reader, f: Field): string | undefined {
  const s = r.text(f)
  if (s === undefined) return undefined
  return isToken(s) ? s : r.expected(f, 'a single word (an HTTP token, no spaces)')
}

/** A header name, lower-cased. */
export function headerName (r: Reader, f: Field): string | undefined {
  const s = r.string(f)
  if (s === undefined) return undefined
  if (!isToken(s)) return r.expected(f, 'a header name (an HTTP token)')
  return s.toLowerCase()
}

/** A cookie name (shard keys, sticky cookies, rate-limit keys). */
export function cookieName (r: Reader, f: Field): string | undefined {
  // Cookie names are tokens (RFC 6265) and, unlike header names, case-sensitive.
  const name = r.text(f)
  if (name !== undefined && !isToken(name)) return r.expected(f, 'a cookie name (an HTTP token)')
  return name
}

/** IPs and CIDRs (trustedProxies, cache.purgeFrom). */
export function ipList (r: Reader, f: Field): string[] | undefined {
  const out: string[] = []
  for (const item of r.seq(f) ?? []) {
    const s = r.string(item)
    if (s === undefined) continue
    if (isIpOrCidr(s)) out.push(s)
    else r.expected(item, 'an IP address or CIDR like 10.0.0.0/8, 192.168.1.10 or fd00::/8')
  }
  return out
}

/** A TLS version floor (a listener's or a backend's). */
export function minVersion (r: Reader, f: Field): TlsConfig['minVersion'] | undefined {
  const v = r.scalar(f)
  if (v === 'TLSv1' || v === 'TLSv1.1' || v === 'TLSv1.0') {
    r.report(f.path, f.at, `${v} is not allowed; use TLSv1.2 or TLSv1.3`)
    return undefined
  }
  return r.oneOf(f, ['TLSv1.2', 'TLSv1.3'] as const)
}

/** `host:port` as compared for clashes: IPv6 in brackets, names lower-cased. */
export function bindKey (host: string, port: number): string {
  return `${host.includes(':') ? `[${host}]` : host.toLowerCase()}:${port}`
}

/** A listener's well-formed bind, by bindKey(), for the admin API's bind check. */
export interface ListenerBind {
  /** The listener's YAML path, e.g. `listeners[1]`. */
  readonly owner: string
  /** As written. */
  readonly bind: string
  readonly field: Field
}

/** Reports the second and later uses of a value, naming where it was first used. */
export class Unique {
  readonly #r: Reader
  readonly #what: string
  readonly #seen = new Map<string, string>()

  constructor (r: Reader, what: string) {
    this.#r = r
    this.#what = what
  }

  /** False (and reported) when `value` was seen before. */
  add (value: string, at: Field, owner: string): boolean {
    const first = this.#seen.get(value)
    if (first === undefined) {
      this.#seen.set(value, owner)
      return true
    }
    this.#r.report(at.path, at.at, `duplicate ${this.#what} \`${value}\` (already used by ${first})`)
    return false
  }
}
