// Can this machine listen on the config's bind addresses? Asked of the kernel
// itself: each distinct host is bound on port 0 (a free port the OS picks)
// and released at once. That answers exactly what `listen` will answer about
// the address (not an address of this machine, a name that does not resolve,
// no IPv6), honours what a list of interfaces would miss (Linux binds all of
// 127.0.0.0/8, and `net.ipv4.ip_nonlocal_bind` allows floating addresses),
// and never holds a configured port, so it works while the proxy runs (a
// reload checks the new file with the old one serving). Whether a port is in
// use is not a property of the config and is not checked here; it is
// reported when the listener starts.

import { readFileSync } from 'node:fs'
import { createServer } from 'node:net'
import type { ConfigIssue } from '../errors.js'
import type { BindRef } from './validate.js'

/** Bind problems (errors) and privileged ports this process could not bind (warnings). */
export interface BindCheck {
  readonly issues: readonly ConfigIssue[]
  readonly warnings: readonly ConfigIssue[]
}

export async function checkBinds (binds: readonly BindRef[]): Promise<BindCheck> {
  const byHost = new Map<string, Promise<unknown>>()
  for (const b of binds) if (!byHost.has(b.host)) byHost.set(b.host, tryHost(b.host))
  const issues: ConfigIssue[] = []
  const warnings: ConfigIssue[] = []
  const lowest = lowestUnprivilegedPort()
  for (const b of binds) {
    const err = await byHost.get(b.host)
    if (err !== undefined) {
      issues.push({ path: b.path, message: bindErrorReason(err, b.host, b.port), line: b.line, column: b.column })
    } else if (b.port > 0 && b.port < lowest) {
      warnings.push({ path: b.path, message: privilegedPortWarning(b.port, lowest), line: b.line, column: b.column })
    }
  }
  return { issues, warnings }
}

/** Resolves with the error `listen` gave on `host` port 0, or undefined when it could bind. */
function tryHost (host: string): Promise<unknown> {
  return new Promise((resolve) => {
    const server = createServer()
    server.once('error', resolve)
    server.listen({ port: 0, host }, () => {
      server.close(() => resolve(undefined))
    })
  })
}

/**
 * Why `listen` failed, in words, with the system's code in parentheses:
 * `address already in use (EADDRINUSE)`. Shared by the config check and by
 * startup errors, so both say the same thing.
 */
export function bindErrorReason (err: unknown, host: string, port: number): string {
  const code = errorCode(err)
  switch (code) {
    case 'EADDRINUSE':
      return 'address already in use (EADDRINUSE)'
    case 'EACCES':
    case 'EPERM':
      return port > 0 && port < 1024
        ? `permission denied (${code}): port ${port} is below 1024, which needs root or CAP_NET_BIND_SERVICE ` +
          '(e.g. `setcap cap_net_bind_service=+ep $(command -v node)`), or use a port >= 1024'
        : `permission denied (${code})`
    case 'EADDRNOTAVAIL':
      return `${host} is not an address of this machine (EADDRNOTAVAIL); use one of its addresses, or 0.0.0.0 / :: for all`
    case 'ENOTFOUND':
    case 'EAI_NONAME':
    case 'EAI_AGAIN':
    case 'EAI_FAIL':
      return `the host name ${host} does not resolve to an address (${code})`
    case 'EAFNOSUPPORT':
      return `this machine cannot listen on ${host}: its address family is not available (EAFNOSUPPORT; IPv6 turned off?)`
    default: {
      const text = err instanceof Error ? err.message : String(err)
      return code === undefined ? text : `${text} (${code})`
    }
  }
}

function errorCode (err: unknown): string | undefined {
  // The admin listener wraps the socket error: look through `cause` too.
  for (let e = err, depth = 0; e !== null && typeof e === 'object' && depth < 4; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code
    if (typeof code === 'string') return code
  }
  return undefined
}

export function privilegedPortWarning (port: number, lowest: number): string {
  return `port ${port} is privileged on this machine (below ${lowest}): this process cannot bind it; ` +
    'run as root or with CAP_NET_BIND_SERVICE, or use a port >= ' + String(lowest)
}

/** CAP_NET_BIND_SERVICE's bit in /proc/<pid>/status `CapEff`. */
const CAP_NET_BIND_SERVICE = 10n

/**
 * The lowest port this process may bind without privileges, as Linux decides:
 * 0 for root or with CAP_NET_BIND_SERVICE, else
 * `net.ipv4.ip_unprivileged_port_start` (1024 by default). 0 (no warning)
 * elsewhere, or when it cannot be read: this is for a warning only.
 */
export function lowestUnprivilegedPort (): number {
  if (process.platform !== 'linux' || process.getuid?.() === 0) return 0
  try {
    const caps = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1]
    if (caps !== undefined && ((BigInt(`0x${caps}`) >> CAP_NET_BIND_SERVICE) & 1n) === 1n) return 0
    const start = Number(readFileSync('/proc/sys/net/ipv4/ip_unprivileged_port_start', 'utf8').trim())
    return Number.isInteger(start) && start >= 0 ? start : 0
  } catch {
    return 0
  }
}
