// The second-level cache in Redis, shared by every instance (cache.shared):
// lookups after a local miss, writes after a local store, the cross-instance
// fetch lock (at most one instance goes to the origin for a missing URL), and
// purges that reach Redis and every instance's local cache (pub/sub).
//
// Layout, under redis.keyPrefix (N = the sealer's name for a cache key):
//   c:{N}            hash: one field per variant (a name of variant + Vary
//                    values) → the sealed entry. Expires when its longest-
//                    lived entry is of no more use.
//   c:{N}:lock:L     the fetch lock of one variant key (L = name of the lock
//                    text); `{N}` keeps it in the hash's Redis Cluster slot.
//   ci               hash: N:V → "until:" + sealed { key, tags, until } of
//                    one variant (V = its field in c:{N}), so that purges by
//                    prefix or tag can find entries whose names are HMACs.
//                    One record per variant: variants differ in tags and
//                    lifetime. `until` (ms) is in clear so that Redis itself
//                    deletes a record once its time has passed: each write,
//                    and a timer while this instance's records may be live,
//                    sweep a few records on from a cursor (the hash's TTL
//                    tells as much about when an entry goes).
//   g:{N}            the URL's purge marker: a purge of the URL sets it to a
//                    value never used before as it deletes c:{N} (same
//                    script), and a write is refused when it changed since
//                    the lookup its fetch began with (a late write cannot
//                    undo a purge). Expires an hour after: longer than any fetch.
//   pe               the purge epoch: purges by prefix, tag or path (they can
//                    match any URL) set it to a new random integer before they
//                    delete; a write is refused when it moved since its fetch's
//                    lookup. Random, not counted: a Redis that restarted empty
//                    and counted the same number of purges again would let a
//                    write that began before them through. (An integer: older
//                    instances INCR it.)
//   pn               purge notices sent: every purge INCRs it. How the
//                    catch-up after a subscriber drop tells that notices were
//                    missed, and what a fetch without a lookup is checked by.
//   channel purge    sealed purge notices; channel fill: "a lock was let go".
//
// Nothing here throws into a request: every Redis failure is "Redis has
// nothing to say" (a miss, a lock not taken, a purge told only locally).
import { randomBytes } from 'node:crypto'
import type { Logger } from 'pino'
import type { CacheEntry } from '../entry.js'
import { sharedLifetime } from '../policy.js'
import { RedisUnavailable, type RedisClient, type RedisLink } from '../../redis/link.js'
import { decodeEntry, encodeEntry } from './codec.js'
import { pathMatcher } from '../key.js'
import type { Interner } from '../intern.js'
import { Removals } from '../removals.js'
import { Sealer } from './seal.js'
import type { SharedCacheMetricsInput } from '../../admin/metrics/types.js'
import type { CacheConfig, EncryptionKeyConfig } from '../../config/schema.js'

/** This instance's cache, where the other instances' purges are applied (cache.ts HttpCache). */
export interface LocalCache {
  /** Drops every entry (purges may have been missed); returns how many. */
  purgeAll (): number
  purgeUrl (key: string): number
  invalidate (key: string): number
  purgePrefix (prefix: string): number
  purgePath (path: string, prefix: boolean): number
  purgeTag (tag: string): number
  /** Where entries read from Redis share their header strings: they are filled into this cache. */
  readonly interner: Interner
}

/** What a lookup found: the entries under the key (any variant), and the fetch lock. */
export interface SharedLookup {
  readonly entries: readonly CacheEntry[]
  /** `mine`: this request fetches and must let go (`release`); `theirs`: another instance is fetching. */
  readonly lock: 'mine' | 'theirs' | 'none'
  /**
   * The purge epoch Redis had before the lookup and the URL's purge marker
   * (undefined when Redis did not answer): what the fetch's write must still
   * find. Opaque: handed back to store.
   */
  readonly epoch?: string
}

/** A fetch lock this instance holds. */
export interface SharedLock {
  /** Its Redis key (the same name the fill notice carries). */
  readonly name: string
  readonly token: string
  /** When it expires in Redis by itself (Date.now() ms). */
  readonly expires: number
}

/** Locks whose release could not be sent that are kept to be let go once Redis is back (the rest expire by themselves). */
export const MAX_UNRELEASED = 1000

/** Counters of the shared cache (the shape /metrics reads: hits, misses, stored, rejected, collapsed, remote purges, unavailable). */
export type SharedCacheStats = SharedCacheMetricsInput

// `ids`: the sender's key ids, i.e. the names it removed under and the index records it could open.
type PurgeNotice = { readonly from: string, readonly ids?: readonly string[] } & (
  | { readonly op: 'keys', readonly keys: readonly string[], readonly as: 'purge' | 'invalidation' }
  | { readonly op: 'prefix' | 'tag', readonly value: string }
  | { readonly op: 'path', readonly value: string, readonly prefix: boolean })

interface IndexMeta { readonly key: string, readonly tags: readonly string[], readonly until: number }

// KEYS[3]: the URL's purge marker, returned third ('' when none).
const LOOKUP = `
local out = {}
local vals = redis.call('HVALS', KEYS[1])
for i = 1, #vals do out[#out + 1] = vals[i] end
local lock = 'none'
if ARGV[3] == '1' and #vals == 0 then
  if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then lock = 'mine' else lock = 'theirs' end
end
return {lock, out, redis.call('GET', KEYS[3]) or ''}`

/**
 * Responses of one URL shared through Redis at most (its Vary'd variants):
 * every lookup reads them all, so a URL that varies on a field with endless
 * values (User-Agent) must not make each miss read and open thousands. The
 * rest stay in each instance's local cache.
 */
export const MAX_SHARED_VARIANTS = 64

/**
 * Bytes one URL's variants may hold in Redis together (one variant alone may
 * be bigger): a lookup reads them all, and one that cannot arrive within
 * redis.timeout would shed every Redis operation of the instance for a while
 * (rate limits included). 40 variants of 900 KiB made every lookup time out.
 */
export const MAX_SHARED_URL_BYTES = 8 * 1024 * 1024

// ARGV[5]/[6]: the fill channel and the lock's name, published when the lock is let go (one round trip for all of it).
// ARGV[7]: MAX_SHARED_VARIANTS; ARGV[8]: MAX_SHARED_URL_BYTES. A variant past either is not stored
// (the lock is let go all the same). ARGV[9]: the global counter's value the fetch began with; KEYS[3]:
// that counter (pe after a lookup, pn without one), or KEYS[1] in a Redis Cluster (the counter is in
// another slot), where ARGV[10] is its value read just before. ARGV[11] = '1': KEYS[4], the URL's purge
// marker, must still be ARGV[12]. Refused (-1) when a purge came since. Returns 1 when stored.
const STORE = `
local stored = 0
local global = ARGV[10]
if KEYS[3] ~= KEYS[1] then global = redis.call('GET', KEYS[3]) or '0' end
if global ~= ARGV[9] or (ARGV[11] == '1' and (redis.call('GET', KEYS[4]) or '') ~= ARGV[12]) then
  if ARGV[4] ~= '' and redis.call('GET', KEYS[2]) == ARGV[4] then
    redis.call('DEL', KEYS[2])
    redis.call('PUBLISH', ARGV[5], ARGV[6])
  end
  return -1
end
local others = 0
local fields = redis.call('HKEYS', KEYS[1])
for i = 1, #fields do
  if fields[i] ~= ARGV[1] then others = others + redis.call('HSTRLEN', KEYS[1], fields[i]) end
end
local room = others == 0 or others + string.len(ARGV[2]) <= tonumber(ARGV[8])
if room and (redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 or #fields < tonumber(ARGV[7])) then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  local ttl = tonumber(ARGV[3])
  if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
  stored = 1
end
if ARGV[4] ~= '' and redis.call('GET', KEYS[2]) == ARGV[4] then
  redis.call('DEL', KEYS[2])
  redis.call('PUBLISH', ARGV[5], ARGV[6])
end
return stored`

// KEYS[1]: the index. ARGV[1], ARGV[2]: a record to write ('' for none); ARGV[3]: now (ms);
// ARGV[4], ARGV[5]: the sweep's cursor and about how many records to look at.
// Deletes the records looked at whose time has passed; returns the next cursor.
const INDEX_STEP = `
if ARGV[1] ~= '' then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
local now = tonumber(ARGV[3])
local r = redis.call('HSCAN', KEYS[1], ARGV[4], 'COUNT', ARGV[5])
local items = r[2]
for i = 1, #items, 2 do
  local t = tonumber(string.match(items[i + 1], '^(%d+):'))
  if t ~= nil and t <= now then redis.call('HDEL', KEYS[1], items[i]) end
end
return r[1]`

// Deletes a URL's hash and returns its variants' fields (their index records go next). A purge
// (ARGV[1] not '') sets the URL's marker KEYS[2] to ARGV[1] in the same step, for ARGV[2] ms.
const DROP = `
local fields = redis.call('HKEYS', KEYS[1])
if ARGV[1] ~= '' then redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2]) end
redis.call('DEL', KEYS[1])
return fields`

const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('PUBLISH', ARGV[2], ARGV[3])
  return 1
end
return 0`

const INDEX = 'ci'
const EPOCH = 'pe'
const NOTICES = 'pn'
/**
 * How long a URL's purge marker outlives its last purge: longer than any
 * fetch (a write whose lookup saw it is refused once it is gone, but one
 * whose lookup found none would be let through).
 */
const MARKER_MS = 60 * 60 * 1000
const SCAN_COUNT = 500
/** Index records each write sweeps: more than one, so that sweeping outpaces writing and the index stays about the size of what is live. */
const SWEEP_ON_WRITE = 10
/** The timer's sweep: every SWEEP_MS, about SWEEP_COUNT records, for as long as a record this instance wrote may be there. */
const SWEEP_MS = 1000
const SWEEP_COUNT = 1000

export class SharedCache {
  readonly link: RedisLink
  readonly keys: readonly EncryptionKeyConfig[]
  readonly #sealer: Sealer
  readonly #local: LocalCache
  readonly #interner: Interner
  readonly #log: Logger | undefined
  /** In a Redis Cluster the purge epoch lives in another slot than any entry: see #write. */
  readonly #cluster: boolean
  /** The purge notice count (pn) as last read from Redis (a lookup, a purge of ours, a catch-up): what a fetch without a lookup of its own begins with. */
  #notices: string | undefined
  /**
   * Purges since the subscriber last (re)subscribed: the notice count then,
   * and how many purges were heard since (notices and our own). When the
   * count moved by more when it resubscribes, notices were missed meanwhile.
   */
  #baseline: number | undefined
  #heard = 0
  /** The subscriber came back while commands could not go: a catch-up is owed. */
  #behind = false
  /** The subscriber has subscribed once: purge notices are heard from then on. */
  #subscribed = false
  /** Catch-ups whose read of the notice count is out. */
  #catching = 0
  /** Who we are on the purge channel (our own notices are not applied twice). */
  readonly #id = randomBytes(8).toString('hex')
  readonly #lookup: ReturnType<RedisLink['script']>
  readonly #store: ReturnType<RedisLink['script']>
  readonly #release: ReturnType<RedisLink['script']>
  readonly #drop: ReturnType<RedisLink['script']>
  readonly #indexStep: ReturnType<RedisLink['script']>
  /** Writes in flight by lock name: a release waits for the write, so that whoever wakes finds the entry. */
  readonly #writing = new Map<string, Promise<void>>()
  /** Requests waiting for another instance's fetch, by lock name. */
  readonly #waiting = new Map<string, Set<() => void>>()
  /**
   * Purges Redis refused or did not answer (READONLY after a failover, a
   * timeout): entries read from Redis that a fetch began before one of them
   * matches are not used, or this instance would refill what it just purged.
   * By time (ms), bounded like the cache's own removals.
   */
  readonly #tombstones = new Removals(Date.now)
  /** Locks whose release could not be sent (Redis down), let go when it is up again, by name. */
  readonly #unreleased = new Map<string, SharedLock>()
  readonly #unsubscribe: Array<() => void>
  /** The index sweep: its cursor, when its current pass began, the latest `until` this instance wrote, its timer. */
  #cursor = '0'
  #passFrom = 0
  #sweepUntil = 0
  #sweeper: NodeJS.Timeout | undefined
  #sweeping = false
  #stats = { hits: 0, misses: 0, stored: 0, superseded: 0, rejected: 0, collapsed: 0, remotePurges: 0, unavailable: 0 }

  constructor (link: RedisLink, keys: readonly EncryptionKeyConfig[], local: LocalCache, log?: Logger) {
    this.link = link
    this.keys = keys
    this.#sealer = new Sealer(keys)
    this.#local = local
    this.#interner = local.interner
    this.#log = log
    this.#cluster = link.cluster
    this.#lookup = link.script('switchyardCacheLookup', LOOKUP, 3)
    this.#store = link.script('switchyardCacheStore', STORE, 4)
    this.#release = link.script('switchyardCacheRelease', RELEASE, 1)
    this.#drop = link.script('switchyardCacheDrop', DROP, 2)
    this.#indexStep = link.script('switchyardCacheIndex', INDEX_STEP, 1)
    this.#unsubscribe = [
      link.subscribe('purge', (m) => { this.#onPurge(m) }),
      link.subscribe('fill', (m) => { this.#wake(m.toString()) }),
      link.onSubscribed(() => {
        this.#subscribed = true
        void this.#catchUp(true)
      }),
      // The subscriber came back before the commands could go: the catch-up (or the first baseline) is made when they can.
      link.onState((state) => {
        if (state !== 'up') return
        if (this.#baseline === undefined || this.#behind) void this.#catchUp(this.#behind)
        this.#releaseLeftovers()
      })
    ]
    if (link.up) void this.#catchUp(false)
  }

  /**
   * Both connections up, the purge channel subscribed and the catch-up made:
   * from now on every purge of another instance reaches this one (until a
   * drop). A purge before then may be caught up later by dropping every
   * local copy (see #catchUp): what a test waits for before it purges.
   */
  get settled (): boolean {
    return this.link.up && this.#subscribed && this.#baseline !== undefined && !this.#behind && this.#catching === 0
  }

  /** False while Redis is down: callers skip the round trip altogether. */
  get up (): boolean {
    return this.link.up
  }

  /**
   * What a fetch without a lookup of its own begins with (undefined before
   * Redis was first read; see store): the purge notice count last read. Such
   * a fetch has no URL marker to compare, and a purge of its URL moves only
   * that marker and pn; so its write is refused when any purge at all came
   * since (pn moved), which no missed URL purge can slip past. Only those
   * fetches (revalidations, fetches while Redis was away) pay for unrelated
   * purges; a fetch after a lookup is checked against its own URL's marker.
   */
  get epoch (): string | undefined {
    return this.#notices === undefined ? undefined : `n:${this.#notices}`
  }

  stats (): SharedCacheStats {
    return { ...this.#stats }
  }

  /** Stops hearing purges (a reload made another SharedCache); the Redis link stays. */
  close (): void {
    clearInterval(this.#sweeper)
    this.#sweeper = undefined
    for (const off of this.#unsubscribe) off()
    for (const waiters of this.#waiting.values()) for (const wake of waiters) wake()
    this.#waiting.clear()
  }

  /**
   * The entries stored under `key`, and, when `lockText` is given and nothing
   * is stored, the fetch lock for it (held for `lockMs` at most).
   */
  async lookup (key: string, lockText: string | undefined, lockMs: number): Promise<SharedLookup & { readonly held?: SharedLock }> {
    const names = this.#sealer.names(key)
    const first = names[0]!
    const hash = `c:{${first}}`
    // Without a lock to take, the script's second key is the hash itself (the same Cluster slot).
    const lockKey = lockText === undefined ? hash : this.#lockName(first, lockText)
    const token = randomBytes(12).toString('base64url')
    const expires = Date.now() + lockMs
    let lock: SharedLookup['lock']
    let entries: CacheEntry[]
    let epoch: string
    try {
      // The epoch is read first, in the same round trip: a purge between the two only makes the write more careful.
      // The notice count is read along for the fetches without a lookup (see epoch).
      const [seen, notices, [reply, sealed, marker]] = await this.link.run('cache_lookup', (c) => Promise.all([
        c.get(EPOCH),
        c.get(NOTICES),
        this.#lookup(c, [hash, lockKey, markerKey(first)], [token, Math.max(1, Math.round(lockMs)), lockText === undefined ? '0' : '1']) as Promise<[Buffer, Buffer[], Buffer]>
      ]))
      this.#notices = notices ?? '0'
      epoch = `u:${seen ?? '0'}:${marker.toString()}`
      lock = reply.toString() as SharedLookup['lock']
      entries = this.#open(key, first, sealed)
      // Written under an older key's name (a key rotation in progress).
      for (let i = 1; sealed.length === 0 && i < names.length; i++) {
        const older = await this.link.run('cache_lookup', (c) => c.hvalsBuffer(`c:{${names[i]!}}`))
        if (older.length > 0) entries = this.#open(key, names[i]!, older)
      }
    } catch (err) {
      this.#unavailable(err)
      // The script may have taken the lock all the same (it ran, its answer came late): let it
      // go, or the other instances' misses would wait collapseTimeout for a fetch nobody announces.
      if (lockText !== undefined && !(err instanceof RedisUnavailable && !err.sent)) this.release({ name: lockKey, token, expires })
      return { entries: [], lock: 'none' }
    }
    entries = entries.filter((e) => this.#tombstones.allows(e, e.requestTime))
    if (entries.length > 0) this.#stats.hits++
    else this.#stats.misses++
    return { entries, lock, epoch, ...(lock === 'mine' ? { held: { name: lockKey, token, expires } } : {}) }
  }

  /** Resolves when another instance lets go of the lock for `lockText` (stored or not), or after `ms`. */
  waitFill (key: string, lockText: string, ms: number): Promise<void> {
    this.#stats.collapsed++
    const name = this.#lockName(this.#sealer.name(key), lockText)
    return new Promise((resolve) => {
      let waiters = this.#waiting.get(name)
      if (waiters === undefined) this.#waiting.set(name, waiters = new Set())
      const done = (): void => {
        clearTimeout(timer)
        waiters!.delete(done)
        if (waiters!.size === 0) this.#waiting.delete(name)
        resolve()
      }
      const timer = setTimeout(done, ms)
      waiters.add(done)
    })
  }

  /**
   * Writes `entry` to Redis (not awaited by the request): for as long as it
   * is of use, sealed, and indexed for purges; `lock` (held by this fetch) is
   * let go in the same step, and the instances waiting on it are woken.
   * `epoch`: its lookup's (the purge epoch and the URL's marker then), or,
   * without one, the `epoch` getter's when its fetch began; a purge since that
   * may match it (by any instance) keeps it out of Redis, however late the
   * write arrives. Unknown: not written.
   */
  store (entry: CacheEntry, lock: SharedLock | undefined, epoch: string | undefined): void {
    const now = Date.now()
    const ttl = sharedLifetime(entry, now)
    if (ttl <= 0 || epoch === undefined) {
      if (lock !== undefined) this.release(lock)
      return
    }
    const name = lock?.name
    // Sealing and encoding wait for the next turn of the event loop: the client's
    // answer, which is being finished right now, goes out first.
    const write = new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.#write(entry, ttl, now, lock, epoch)).finally(() => {
      if (name !== undefined && this.#writing.get(name) === write) this.#writing.delete(name)
    })
    if (name !== undefined) this.#writing.set(name, write)
  }

  /** Lets go of a fetch lock that stored nothing (after any write still in flight), waking the waiters. */
  release (lock: SharedLock): void {
    const pending = this.#writing.get(lock.name) ?? Promise.resolve()
    void pending.then(async () => {
      try {
        await this.link.runAside('cache_release', (c) => this.#release(c, [lock.name], [lock.token, this.link.channel('fill'), lock.name]))
      } catch (err) {
        this.#unavailable(err)
        // Not sent (Redis down): let go once it is back, not after collapseTimeout,
        // which every miss for this URL (this instance's too) would wait out.
        if (err instanceof RedisUnavailable && !err.sent && lock.expires > Date.now() && this.#unreleased.size < MAX_UNRELEASED) {
          this.#unreleased.set(lock.name, lock)
        }
      }
    })
  }

  /**
   * Removes `keys` from Redis and tells every instance to drop them from its
   * local cache. Resolves with how many entries (variants) Redis held under
   * them, or undefined when Redis could not be reached (then only this
   * instance has dropped them).
   */
  async remove (keys: readonly string[], as: 'purge' | 'invalidation'): Promise<number | undefined> {
    if (keys.length === 0) return 0
    try {
      // Only a purge moves the URL's marker (not the global epoch: a CMS purging
      // other URLs a few times a second would keep slow fetches out of Redis).
      // An invalidation follows any client's successful POST, PUT or DELETE
      // (RFC 9111 §4.4): with the marker moved by each, no fetch of a URL under
      // steady writes would ever be stored in Redis. It stays best effort, as
      // the RFC has it: a write racing it can land after.
      if (as === 'purge') await this.#bump(false)
      const n = await this.#dropNames(keys.flatMap((k) => this.#sealer.names(k)), as === 'purge')
      await this.#notify({ from: this.#id, ids: this.#sealer.ids, op: 'keys', keys, as })
      return n
    } catch (err) {
      this.#unavailable(err)
      for (const k of keys) this.#tombstones.url(k)
      return undefined
    }
  }

  /**
   * Removes from Redis every entry whose key starts with `prefix` (or that
   * carries `tag`), found through the index, and tells every instance to do
   * the same locally. Resolves with how many keys were removed from Redis,
   * or undefined when Redis could not be reached.
   */
  async purgeMatching (op: 'prefix' | 'tag' | 'path', value: string, pathPrefix = false): Promise<number | undefined> {
    const matches = matcher(op, value, pathPrefix)
    try {
      await this.#bump(true)
      const n = await this.#scanIndex(matches)
      const ids = this.#sealer.ids
      await this.#notify(op === 'path' ? { from: this.#id, ids, op, value, prefix: pathPrefix } : { from: this.#id, ids, op, value })
      return n
    } catch (err) {
      this.#unavailable(err)
      this.#tombstones.pattern(matches)
      return undefined
    }
  }

  /** Redis is back: the locks whose release could not be sent, and have not expired yet, go now. */
  #releaseLeftovers (): void {
    const now = Date.now()
    const locks = [...this.#unreleased.values()]
    this.#unreleased.clear()
    for (const lock of locks) if (lock.expires > now) this.release(lock)
  }

  /**
   * A purge begins: the notice count (and, for one that can match any URL,
   * the epoch) moves before anything is deleted, so a write checked before it
   * lands before the delete (and goes with it), and one checked after it is
   * refused. A URL's marker moves as it is deleted (DROP).
   */
  async #bump (epoch: boolean): Promise<void> {
    const [notices] = await this.link.run('cache_epoch', (c) => Promise.all([c.incr(NOTICES), ...(epoch ? [c.set(EPOCH, newEpoch())] : [])]))
    this.#notices = String(notices)
    this.#heard++
  }

  /**
   * Pub/sub is not replayed: after the subscriber was away (`resubscribed`),
   * a notice count (pn) that moved more than by the purges heard means notices
   * were missed, and the local copies they named would be served for their
   * whole lifetime. Which ones is not known, so every local copy goes (Redis
   * still holds the valid ones); so does everything when it cannot be read.
   */
  async #catchUp (resubscribed: boolean): Promise<void> {
    // Not connected for commands yet (the subscriber often is first): done once it is (see onState).
    if (!this.link.up) {
      this.#behind ||= resubscribed
      return
    }
    this.#behind = false
    let now: number | undefined
    this.#catching++
    try {
      const seen = await this.link.run('cache_epoch', (c) => c.get(NOTICES)) ?? '0'
      this.#notices = seen
      now = Number(seen)
    } catch (err) {
      this.#unavailable(err)
    } finally {
      this.#catching--
    }
    const missed = now === undefined || (this.#baseline !== undefined && now !== this.#baseline + this.#heard)
    if (resubscribed && missed) {
      const n = this.#local.purgeAll()
      this.#log?.warn({ dropped: n }, 'shared cache: purge notices may have been missed while the subscriber was away; dropped the local copies')
    }
    this.#baseline = now
    this.#heard = 0
  }

  async #write (entry: CacheEntry, ttl: number, now: number, lock: SharedLock | undefined, epoch: string): Promise<void> {
    // A lookup's `u:<pe>:<marker>` (the epoch and the URL's marker), or the getter's `n:<pn>` (the notice count alone).
    const [kind, global = '', marker = ''] = epoch.split(':')
    const byUrl = kind === 'u'
    const counter = byUrl ? EPOCH : NOTICES
    const first = this.#sealer.name(entry.key)
    const hash = `c:{${first}}`
    const field = this.#sealer.name(`${entry.variant}\0${JSON.stringify(entry.varyValues)}`)
    const value = this.#sealer.seal(first, encodeEntry(entry))
    const record = `${first}:${field}`
    const until = Math.ceil(now + ttl)
    const meta = Buffer.concat([Buffer.from(`${until}:`), this.#sealer.seal(`${INDEX}:${record}`, Buffer.from(JSON.stringify({ key: entry.key, tags: entry.tags, until })))])
    try {
      const lockKey = lock?.name ?? hash
      const args = (current: string): Array<string | number | Buffer> => [field, value, Math.ceil(ttl), lock?.token ?? '', this.link.channel('fill'), lockKey,
        MAX_SHARED_VARIANTS, MAX_SHARED_URL_BYTES, global, current, byUrl ? '1' : '0', marker]
      // The index record goes first: a purge by prefix or tag that finds the epoch
      // unmoved by this write scans after it, so it finds the record.
      const stored = await this.link.run('cache_store', async (c) => {
        // One node: sent together (ioredis pipelines what is sent in one tick), one round trip, all checked in the script.
        if (!this.#cluster) return (await Promise.all([this.#sweepStep(c, record, meta, SWEEP_ON_WRITE), this.#store(c, [hash, lockKey, counter, markerKey(first)], args(''))]))[1]
        // A Cluster: the counter is in another slot, so one after the other; a purge by prefix
        // or tag between its read and the write (one round trip) can still be undone. The
        // URL's marker is in the hash's slot: checked in the script all the same.
        await this.#sweepStep(c, record, meta, SWEEP_ON_WRITE)
        const current = await c.get(counter) ?? '0'
        return await this.#store(c, [hash, lockKey, hash, markerKey(first)], args(current))
      })
      if (Number(stored) === 1) this.#stats.stored++
      else if (Number(stored) === -1) this.#stats.superseded++
      if (until > this.#sweepUntil) this.#sweepUntil = until
      this.#sweeper ??= setInterval(() => { this.#sweep() }, SWEEP_MS).unref()
    } catch (err) {
      this.#unavailable(err)
      // The lock was to go with the write (HttpCache.finish leaves it to us).
      if (lock !== undefined) this.release(lock)
    }
  }

  /** The entries that open under `name` and are what was asked for; the others are deleted from Redis. */
  #open (key: string, name: string, sealed: readonly Buffer[]): CacheEntry[] {
    const out: CacheEntry[] = []
    let bad = false
    for (const v of sealed) {
      const plain = this.#sealer.open(name, v)
      const entry = plain === undefined ? undefined : decodeEntry(plain, this.#interner)
      if (entry === undefined || entry.key !== key) {
        bad = true
        continue
      }
      out.push(entry)
    }
    if (bad) {
      this.#stats.rejected++
      this.#log?.warn({ name }, 'shared cache: a value in Redis did not open with our keys (another key, or tampered): deleted, never served')
      // All of this key's variants go: we cannot tell which field held the bad value without opening each again.
      void this.link.run('cache_delete', (c) => c.del(`c:{${name}}`)).catch((err: unknown) => { this.#unavailable(err) })
    }
    return out
  }

  /**
   * Removes the variants whose index records `match`. Records sealed with a
   * key we lack are another instance's (a key rotation in progress), never
   * garbage: left for it. `only`: look at records of these key ids alone.
   * `gone`: called once no lookup can find them in Redis any more, before
   * the last index records go.
   */
  async #scanIndex (match: (meta: IndexMeta) => boolean, only?: ReadonlySet<string>, gone?: () => void): Promise<number> {
    let cursor = '0'
    let removed = 0
    let told = false
    const now = Date.now()
    do {
      const [next, items] = await this.link.run('cache_scan', (c) => c.hscanBuffer(INDEX, cursor, 'COUNT', SCAN_COUNT)) as [Buffer, Buffer[]]
      cursor = next.toString()
      const drop: string[] = []
      const hit: string[] = []
      for (let i = 0; i + 1 < items.length; i += 2) {
        const record = items[i]!.toString()
        const { until, sealed } = splitRecord(items[i + 1]!)
        const id = this.#sealer.keyId(sealed)
        if (only !== undefined && (id === undefined || !only.has(id))) continue
        if (until !== undefined && until <= now) {
          drop.push(record)
          continue
        }
        if (id === undefined || !this.#sealer.ids.includes(id)) continue
        const plain = this.#sealer.open(`${INDEX}:${record}`, sealed)
        let meta: IndexMeta | undefined
        try { meta = plain === undefined ? undefined : JSON.parse(plain.toString()) as typeof meta } catch { meta = undefined }
        if (meta === undefined || typeof meta.key !== 'string' || !Array.isArray(meta.tags) || !(meta.until > now)) drop.push(record)
        else if (match(meta)) hit.push(record)
      }
      if (drop.length > 0 || hit.length > 0) {
        await this.link.run('cache_delete', async (c) => {
          // A variant's record removes that variant only (a tag may be on some variants and not others);
          // a record of the older layout (N alone) stands for the whole URL.
          await Promise.all(hit.map((r) => {
            const at = r.indexOf(':')
            return at < 0 ? c.del(`c:{${r}}`) : c.hdel(`c:{${r.slice(0, at)}}`, r.slice(at + 1))
          }))
          if (cursor === '0') {
            told = true
            gone?.()
          }
          await c.hdel(INDEX, ...drop, ...hit)
        })
      }
      removed += hit.length
    } while (cursor !== '0')
    if (!told) gone?.()
    return removed
  }

  /** One step of the index sweep (after writing `record`, unless ''), from the shared cursor. */
  async #sweepStep (c: RedisClient, record: string, value: Buffer | string, count: number): Promise<void> {
    const now = Date.now()
    if (this.#cursor === '0') this.#passFrom = now
    const next = await this.#indexStep(c, [INDEX], [record, value, now, this.#cursor, count]) as Buffer
    this.#cursor = next.toString()
  }

  /** The timer's turn: stops once a whole pass began after every record this instance wrote had expired. */
  #sweep (): void {
    if (this.#cursor === '0' && this.#passFrom > this.#sweepUntil) {
      clearInterval(this.#sweeper)
      this.#sweeper = undefined
      return
    }
    if (this.#sweeping || !this.link.up) return
    this.#sweeping = true
    this.link.run('cache_sweep', (c) => this.#sweepStep(c, '', '', SWEEP_COUNT))
      .catch((err: unknown) => { this.#unavailable(err) })
      .finally(() => { this.#sweeping = false })
  }

  /**
   * Deletes the hashes named `names` and their variants' index records (and
   * any record of the older, one-per-URL layout); resolves with how many
   * variants they held. `purge`: their markers move too (see remove).
   * `gone`: called once the hashes are deleted, before the records go.
   */
  async #dropNames (names: readonly string[], purge: boolean, gone?: () => void): Promise<number> {
    if (names.length === 0) return 0
    // Never a value the marker had before (an INCR'd count would start again at 1 once it expired).
    const mark = purge ? randomBytes(12).toString('base64url') : ''
    return await this.link.run('cache_delete', async (c) => {
      const fields = await Promise.all(names.map(async (n) => await this.#drop(c, [`c:{${n}}`, markerKey(n)], [mark, MARKER_MS]) as Buffer[]))
      gone?.()
      await c.hdel(INDEX, ...names.flatMap((n, i) => [n, ...fields[i]!.map((f) => `${n}:${f.toString()}`)]))
      return fields.reduce((sum, f) => sum + f.length, 0)
    })
  }

  async #notify (notice: PurgeNotice): Promise<void> {
    await this.link.publish('purge', this.#sealer.seal('purge', Buffer.from(JSON.stringify(notice))))
  }

  #onPurge (message: Buffer): void {
    const plain = this.#sealer.open('purge', message)
    let n: PurgeNotice | undefined
    try { n = plain === undefined ? undefined : JSON.parse(plain.toString()) as PurgeNotice } catch { n = undefined }
    if (n === undefined) {
      this.#log?.warn('shared cache: a purge notice did not open with our keys: ignored')
      return
    }
    if (n.from === this.#id) return
    // The purges that moved the notice count (see remove): what the catch-up counts.
    if (n.op !== 'keys' || n.as === 'purge') this.#heard++
    this.#stats.remotePurges++
    const notice = n
    const apply = (): void => { applyLocally(this.#local, notice) }
    apply()
    // During a key rotation the sender could not name or open what was written under a key it
    // does not have yet (or any more): removing that from Redis is up to those that have it.
    const theirs = Array.isArray(n.ids) ? new Set(n.ids) : undefined
    const ids = this.#sealer.ids
    const only = new Set(theirs === undefined ? [] : ids.filter((id) => !theirs.has(id)))
    if (only.size === 0) return
    // Then locally again, as soon as the copies are gone from Redis: a lookup begun before then may
    // have filled this cache from one (what it stored goes; one still under way is kept out by the
    // removal). Not later: a fetch begun since can only have found the origin, and keeps its answer.
    const work = n.op === 'keys'
      ? this.#dropNames(n.keys.flatMap((k) => this.#sealer.names(k).filter((_, i) => only.has(ids[i]!))), n.as === 'purge', apply)
      : this.#scanIndex(matcher(n.op, n.value, n.op === 'path' && n.prefix), only, apply)
    work.catch((err: unknown) => { this.#unavailable(err) })
  }

  /** The fetch lock of a variant key (`lockText`, cache/key.ts lockKey), in its primary key's (`first`) Cluster slot. */
  #lockName (first: string, lockText: string): string {
    return `c:{${first}}:lock:${this.#sealer.name(lockText)}`
  }

  #wake (name: string): void {
    const waiters = this.#waiting.get(name)
    if (waiters === undefined) return
    for (const wake of [...waiters]) wake()
  }

  #unavailable (err: unknown): void {
    this.#stats.unavailable++
    this.#log?.debug({ err }, 'shared cache: Redis unavailable for this operation; going on without it')
  }
}

/**
 * The shared cache a cache should have under `config`: the current one when
 * it already uses this Redis link and these keys, else a new one (and the
 * current one stops listening); none without `shared` or a link.
 */
export function sharedCacheFor (config: CacheConfig, link: RedisLink | undefined, local: LocalCache, log: Logger | undefined,
  current: SharedCache | undefined): SharedCache | undefined {
  const want = config.shared?.enabled === true && link !== undefined ? config.shared.encryptionKeys : undefined
  if (current !== undefined && want !== undefined && current.link === link && sameKeys(current.keys, want)) return current
  current?.close()
  return want === undefined ? undefined : new SharedCache(link!, want, local, log)
}

function applyLocally (local: LocalCache, n: PurgeNotice): void {
  if (n.op === 'keys') {
    for (const k of n.keys) {
      if (n.as === 'purge') local.purgeUrl(k)
      else local.invalidate(k)
    }
  } else if (n.op === 'prefix') {
    local.purgePrefix(n.value)
  } else if (n.op === 'path') {
    local.purgePath(n.value, n.prefix)
  } else {
    local.purgeTag(n.value)
  }
}

/** A purge epoch no earlier one had: 48 random bits, as a decimal integer. */
function newEpoch (): string {
  return String(randomBytes(6).readUIntBE(0, 6))
}

/** The purge marker of the URL whose hash is c:{name}: in the hash's Cluster slot. */
function markerKey (name: string): string {
  return `g:{${name}}`
}

/** Which index records a purge by prefix, tag or path removes. */
function matcher (op: 'prefix' | 'tag' | 'path', value: string, pathPrefix: boolean): (meta: Pick<IndexMeta, 'key' | 'tags'>) => boolean {
  if (op === 'path') {
    const onPath = pathMatcher(value, pathPrefix)
    return (meta) => onPath(meta.key)
  }
  return op === 'prefix' ? (meta) => meta.key.startsWith(value) : (meta) => meta.tags.includes(value)
}

/** An index record's parts: its `until` in clear, and the sealed rest (the older layout: sealed alone). */
function splitRecord (value: Buffer): { until: number | undefined, sealed: Buffer } {
  const colon = value.indexOf(0x3a)
  if (colon < 1 || colon > 16) return { until: undefined, sealed: value }
  const digits = value.subarray(0, colon).toString('latin1')
  return /^\d+$/.test(digits) ? { until: Number(digits), sealed: value.subarray(colon + 1) } : { until: undefined, sealed: value }
}

function sameKeys (a: readonly EncryptionKeyConfig[], b: readonly EncryptionKeyConfig[]): boolean {
  return a.length === b.length && a.every((k, i) => k.id === b[i]!.id && k.secret === b[i]!.secret)
}

