// A backend (HAProxy backend = Envoy cluster = Traefik service): its shards,
// each a set of replica servers with their own balancer, and the pools
// behind them. Built once per config.
import type { BackendConfig } from '../config/schema.js'
import { createBalancer } from '../balancer/balancer.js'
import { Server } from './server.js'
import { ShardSelector, type Shard } from './shard.js'
import { createPool } from './pool.js'

export class Backend {
  readonly name: string
  readonly config: BackendConfig
  readonly shards: readonly Shard[]
  readonly selector: ShardSelector
  readonly servers: readonly Server[]

  constructor (config: BackendConfig) {
    this.name = config.name
    this.config = config
    const all: Server[] = []
    this.shards = config.shards.map((shard) => {
      const servers = shard.servers.map((s) => new Server({
        name: s.name,
        url: s.url,
        weight: s.weight,
        backend: config.name,
        shard: shard.name,
        dispatcher: createPool(s, config)
      }))
      all.push(...servers)
      return Object.freeze({ name: shard.name, servers, balancer: createBalancer(config.balance, servers) })
    })
    this.servers = all
    this.selector = new ShardSelector(this.shards, config.shardBy)
  }

  async close (): Promise<void> {
    await Promise.all(this.servers.map((s) => s.dispatcher.close()))
  }
}
