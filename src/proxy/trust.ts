// trustedProxies → a node:net BlockList, built once per config. BlockList
// matches IPv4-mapped IPv6 peers (::ffff:a.b.c.d) against IPv4 ranges too.
import { BlockList, isIPv6 } from 'node:net'

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
