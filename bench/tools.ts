// The external programs of the peers comparison: nginx, HAProxy and Varnish (the
// native peers), wrk (HTTP/1.1
// load where autocannon saturates before the proxy) and h2load (HTTP/2 load).
// The bench installs them itself when they are missing, from Debian's packages,
// and only when it runs as root; CI never does (it does not run the bench).

import { execFileSync } from 'node:child_process'

export interface Tool { readonly command: string, readonly pkg: string }

/** The programs, each with the Debian package that has it. */
export const TOOLS = {
  nginx: { command: 'nginx', pkg: 'nginx-light' },
  haproxy: { command: 'haproxy', pkg: 'haproxy' },
  varnishd: { command: 'varnishd', pkg: 'varnish' },
  wrk: { command: 'wrk', pkg: 'wrk' },
  h2load: { command: 'h2load', pkg: 'nghttp2-client' }
} as const satisfies Record<string, Tool>
export type ToolName = keyof typeof TOOLS

/** Each wanted tool's path, or why it is not there. */
export type ToolPaths = Record<ToolName, { readonly path: string } | { readonly missing: string }>

/** The command's path from `which`, or null. */
export function which (command: string): string | null {
  try {
    const out = execFileSync('which', [command], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
    return out === '' ? null : out
  } catch {
    return null
  }
}

/**
 * Looks up every tool in `wanted`; installs the missing ones with
 * `apt-get install -y` (after one `apt-get update` if that fails) when
 * `install` is on, this process is root and apt-get exists; otherwise says
 * why each is missing.
 */
export function ensureTools (wanted: readonly ToolName[], install: boolean, log: (msg: string) => void): ToolPaths {
  const out = {} as Record<ToolName, { path: string } | { missing: string }>
  const missing: ToolName[] = []
  for (const name of Object.keys(TOOLS) as ToolName[]) {
    if (!wanted.includes(name)) {
      out[name] = { missing: 'not needed by the scenarios asked for' }
      continue
    }
    const path = which(TOOLS[name].command)
    if (path !== null) out[name] = { path }
    else missing.push(name)
  }
  if (missing.length === 0) return out
  const pkgs = missing.map((n) => TOOLS[n].pkg)
  let why: string
  if (!install) {
    why = `not installed, and --no-install (Debian package ${pkgs.join(', ')})`
  } else if (process.getuid?.() !== 0) {
    why = `not installed and this is not root: install it with \`sudo apt-get install -y ${pkgs.join(' ')}\``
  } else if (which('apt-get') === null) {
    why = `not installed and there is no apt-get here (Debian package ${pkgs.join(', ')})`
  } else {
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
    const install = (): string | null => {
      try {
        execFileSync('apt-get', ['install', '-y', '--no-install-recommends', ...pkgs], { stdio: ['ignore', 'ignore', 'pipe'], env, timeout: 300_000 })
        return null
      } catch (err) {
        return err instanceof Error ? err.message.split('\n')[0] ?? err.message : String(err)
      }
    }
    log(`installing ${pkgs.join(' ')} (apt-get install -y): ${missing.join(', ')} not found`)
    let failed = install()
    if (failed !== null) {
      try {
        execFileSync('apt-get', ['update'], { stdio: 'ignore', env, timeout: 300_000 })
      } catch { /* the install below says what failed */ }
      failed = install()
    }
    why = failed === null ? 'apt-get install succeeded but it is still not on PATH' : `apt-get install -y ${pkgs.join(' ')} failed: ${failed}`
  }
  for (const name of missing) {
    const path = which(TOOLS[name].command)
    out[name] = path !== null ? { path } : { missing: `${TOOLS[name].command}: ${why}` }
  }
  return out
}
