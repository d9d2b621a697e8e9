// trustedProxies → a node:net BlockList, built once per config. BlockList
// matches IPv4-mapped IPv6 peers (::ffff:a.b.c.d) against IPv4 ranges too.
import { BlockList, isIP, isIPv6 } from 'node:net'
import { parseAuthority } from '../authority.js'

export function buildTrustList (cidrs: readonly string[]): BlockList {
  const list = new BlockList()
  for (const entry of cidrs) {
    const slash = entry.indexOf('/')
    const addr = slash === -1 ? entry : entry.slice(0, slash)
    const family = isIPv6(addr) ? 'ipv6' : 'ipv4'
    if (slash === -1) list.addAddress(addr, family)
    else list.addSubnet(addr, Number(entry.slice(slash + 1)), family)
  }
  return list
}

/**
 * The client as a chain of trusted proxies reports it: walk X-Forwarded-For
 * from the right (nearest hop first) past every trusted proxy; the first
 * untrusted address is the client. If every hop is trusted, the leftmost one.
 */
export function trustedClientAddress (xff: string | undefined, peer: string, list: BlockList): string {
  if (xff === undefined || xff === '') return peer
  let end = xff.length
  let candidate = peer
  while (end > 0) {
    const comma = xff.lastIndexOf(',', end - 1)
    const hop = stripPort(xff.slice(comma + 1, end).trim())
    end = comma === -1 ? 0 : comma
    if (hop === '' || isIP(hop) === 0) return candidate // garbage: stop at what we know
    candidate = hop
    if (!list.check(hop, isIPv6(hop) ? 'ipv6' : 'ipv4')) return hop
  }
  return candidate
}

/** `1.2.3.4:5678` → `1.2.3.4`; `[::1]:80` → `::1`; a bare address unchanged. */
function stripPort (hop: string): string {
  if (isIP(hop) !== 0) return hop
  const host = parseAuthority(hop)?.host ?? hop
  return host.startsWith('[') ? host.slice(1, -1) : host
}
