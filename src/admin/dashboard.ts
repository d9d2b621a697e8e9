// The live dashboard's files, as the admin listener serves them. The page is
// src/admin/dashboard/: index.html, dashboard.css, and dashboard.ts, the
// browser script, type-checked against the server's own types. The build
// (dashboard-build.ts: `npm run build:dashboard`, also the first step of
// `build`, `prepare`, `prestart` and `test`) compiles the script and writes the
// three files to dist/dashboard/ with a manifest of their SHA-256 and of the
// sources'.
//
// The admin listener loads that folder once, at start. It refuses, with an
// error that says to build, a missing build, a modified one, or a stale one
// (a source changed since the build; checked whenever the sources are there):
// it never serves an old page. The script and stylesheet are served under
// content-hashed names, `/dashboard.<hash>.js` and `/dashboard.<hash>.css`,
// cacheable forever; the page, rewritten to name them, is served no-store.
import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

/** Where the dashboard's sources and build live. */
export interface DashboardDirs {
  /** src/admin/dashboard: compared with the build's manifest when present. */
  readonly sources: string
  /** dist/dashboard: what the build wrote. */
  readonly build: string
}

export interface DashboardAsset {
  readonly type: string
  readonly body: string
}

/** What the admin listener serves: the page at `/`, and its script and stylesheet under their hashed paths. */
export interface Dashboard {
  readonly html: string
  /** `/dashboard.<hash>.js` and `/dashboard.<hash>.css`. */
  readonly assets: ReadonlyMap<string, DashboardAsset>
}

/** What dist/dashboard/manifest.json holds: SHA-256 (hex) by file name. */
export interface DashboardManifest {
  readonly sources: Readonly<Record<string, string>>
  readonly files: Readonly<Record<string, string>>
}

/** The source files a build depends on (all in src/admin/dashboard/). */
export const DASHBOARD_SOURCES = ['index.html', 'dashboard.css', 'dashboard.ts', 'tsconfig.json'] as const
/** The files a build writes besides manifest.json, which it writes last. */
export const DASHBOARD_FILES = ['index.html', 'dashboard.css', 'dashboard.js'] as const
export const MANIFEST = 'manifest.json'

// This module runs from src/admin/ (through tsx) or from dist/src/admin/ (built).
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), import.meta.url.endsWith('.ts') ? '../..' : '../../..')
export const DASHBOARD_DIRS: DashboardDirs = {
  sources: path.join(root, 'src', 'admin', 'dashboard'),
  build: path.join(root, 'dist', 'dashboard')
}

/** The build is missing, modified or stale: the admin listener does not start. */
export class DashboardError extends Error {
  override readonly name = 'DashboardError'
}

/** Scripts and styles from the admin listener only, nothing inline; requests to the admin listener itself. */
export const DASHBOARD_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  'img-src data:',
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'"
].join('; ')

/** The scripts and stylesheet never change under one name. */
export const ASSET_CACHE_CONTROL = 'public, max-age=31536000, immutable'

export const sha256 = (data: string | Buffer): string => createHash('sha256').update(data).digest('hex')

/** `dashboard.js` with content `body` → `dashboard.<first 16 hex digits of its SHA-256>.js`. */
export function hashedName (file: string, body: string): string {
  const dot = file.lastIndexOf('.')
  return `${file.slice(0, dot)}.${sha256(body).slice(0, 16)}${file.slice(dot)}`
}

/** SHA-256 of each of DASHBOARD_SOURCES in `dir`; undefined when the folder (a deployed dist/ alone) is not there. */
export async function sourceDigests (dir: string): Promise<Record<string, string> | undefined> {
  if (!existsSync(dir)) return undefined
  const out: Record<string, string> = {}
  for (const name of DASHBOARD_SOURCES) {
    try {
      out[name] = sha256(await readFile(path.join(dir, name)))
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
      out[name] = 'missing'
    }
  }
  return out
}

/** Names of `have`'s entries that differ from `want`'s (added, removed or changed). */
function differing (want: Readonly<Record<string, string>>, have: Readonly<Record<string, string>>): string[] {
  const names = new Set([...Object.keys(want), ...Object.keys(have)])
  return [...names].filter((n) => want[n] !== have[n]).sort()
}

/** `<tag attr="name">` in the page → the hashed name; exactly once, or the page and the build disagree. */
function reference (html: string, attr: 'href' | 'src', name: string, hashed: string): string {
  const ref = `${attr}="${name}"`
  const at = html.indexOf(ref)
  if (at === -1 || html.indexOf(ref, at + 1) !== -1) throw new DashboardError(`admin: the dashboard build's index.html must reference ${name} exactly once, as ${ref}`)
  return html.slice(0, at) + `${attr}="${hashed}"` + html.slice(at + ref.length)
}

/**
 * Reads the built dashboard from `dirs.build` and checks it against its
 * manifest and, when `dirs.sources` exists, against the sources. Throws an
 * error that names the problem and the command to run.
 */
export async function loadDashboard (dirs: DashboardDirs = DASHBOARD_DIRS): Promise<Dashboard> {
  const rebuild = 'run `npm run build:dashboard` (or `npm run build`)'
  let manifest: DashboardManifest
  try {
    manifest = JSON.parse(await readFile(path.join(dirs.build, MANIFEST), 'utf8')) as DashboardManifest
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'is not built' : `build is unreadable (${(err as Error).message})`
    throw new DashboardError(`admin: the dashboard ${why}: ${path.join(dirs.build, MANIFEST)}; ${rebuild}`, { cause: err })
  }
  const files: Record<string, string> = {}
  for (const name of DASHBOARD_FILES) {
    try {
      files[name] = await readFile(path.join(dirs.build, name), 'utf8')
    } catch (err) {
      throw new DashboardError(`admin: the dashboard build is incomplete: ${path.join(dirs.build, name)}: ${(err as Error).message}; ${rebuild}`, { cause: err })
    }
  }
  const modified = differing(manifest.files ?? {}, Object.fromEntries(Object.entries(files).map(([n, body]) => [n, sha256(body)])))
  if (modified.length > 0) {
    throw new DashboardError(`admin: the dashboard build in ${dirs.build} does not match its manifest (${modified.join(', ')}); ${rebuild}`)
  }
  const sources = await sourceDigests(dirs.sources)
  if (sources !== undefined) {
    const changed = differing(manifest.sources ?? {}, sources)
    if (changed.length > 0) {
      throw new DashboardError(`admin: the dashboard build in ${dirs.build} is stale: ${changed.join(', ')} in ${dirs.sources} changed since it was built; ${rebuild}`)
    }
  }
  const js = files['dashboard.js']!
  const css = files['dashboard.css']!
  const jsName = hashedName('dashboard.js', js)
  const cssName = hashedName('dashboard.css', css)
  const html = reference(reference(files['index.html']!, 'href', 'dashboard.css', cssName), 'src', 'dashboard.js', jsName)
  return {
    html,
    assets: new Map([
      [`/${jsName}`, { type: 'text/javascript; charset=utf-8', body: js }],
      [`/${cssName}`, { type: 'text/css; charset=utf-8', body: css }]
    ])
  }
}
