// The runtime record of one upstream server (a replica inside a shard).
// Mutated in exactly two places: the upstream pool (`active`, counters) and,
// from the next milestone on, the health checker (`healthy`).
import type { Dispatcher } from 'undici'
import { hashString } from '../balancer/hash.js'

export class Server {
  readonly name: string
  /** Opaque, stable id (for sticky cookies): never reveals the address. */
  readonly id: string
  readonly url: string
  readonly weight: number
  readonly backend: string
  readonly shard: string
  /** `host:port` to send as Host when the backend does not pass the client's. */
  readonly hostHeader: string
  readonly dispatcher: Dispatcher

  healthy = true
  /** Requests in flight right now. */
  active = 0
  /** Requests sent, and of those the ones that failed at transport level. */
  requests = 0
  failures = 0

  constructor (init: { name: string; url: string; weight: number; backend: string; shard: string; dispatcher: Dispatcher }) {
    this.name = init.name
    this.url = init.url
    this.weight = init.weight
    this.backend = init.backend
    this.shard = init.shard
    this.dispatcher = init.dispatcher
    this.id = hashString(`${init.backend}/${init.name}`).toString(36)
    const u = new URL(init.url)
    this.hostHeader = u.host
  }
}
