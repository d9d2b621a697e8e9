// A stand-in for the shared Redis connection (src/redis/, being written):
// one ioredis client behind the RedisEval interface the Redis store uses.
// It fails fast rather than queueing: no offline queue, no per-command
// retries, a per-command timeout; it reconnects by itself, with back-off.
// When the shared connection lands, the store takes that instead and this
// file goes.
import { createHash } from 'node:crypto'
import { Redis } from 'ioredis'
import type { Logger } from 'pino'
import type { RedisConfig } from '../config/schema.js'
import type { RedisEval } from './redis.js'

export interface RedisClient extends RedisEval {
  close (): Promise<void>
}

/** Reconnect back-off: 50 ms, 100 ms … up to 2 s between attempts, for ever. */
function reconnectDelay (times: number): number {
  return Math.min(times * 50, 2000)
}

export function connectRedis (cfg: RedisConfig, log?: Logger): RedisClient {
  const client = new Redis(cfg.url, {
    keyPrefix: cfg.keyPrefix,
    commandTimeout: cfg.timeout,
    connectTimeout: Math.max(cfg.timeout, 1000),
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    retryStrategy: reconnectDelay
  })
  // Every failure reaches the caller as a rejected command; the connection's
  // own errors would otherwise be printed by ioredis once per reconnect.
  client.on('error', (err: Error) => log?.debug({ err }, 'redis connection error'))
  const shas = new Map<string, string>()
  return {
    get up () { return client.status === 'ready' },
    async eval (script, keys, args) {
      let sha = shas.get(script)
      if (sha === undefined) shas.set(script, sha = createHash('sha1').update(script).digest('hex'))
      try {
        return await client.evalsha(sha, keys.length, ...keys, ...args)
      } catch (err) {
        // The script cache is empty after a restart or SCRIPT FLUSH: send the script itself once.
        if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err
        return await client.eval(script, keys.length, ...keys, ...args)
      }
    },
    async close () {
      client.disconnect()
    }
  }
}
