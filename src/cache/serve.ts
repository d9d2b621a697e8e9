// Answering a request from a stored entry: 304 for a matching conditional,
// 206 for one satisfiable range (416 when none is), HEAD without a body,
// `Age` and `Cache-Status` added (RFC 9111 §4, RFC 9110 §13–14). Writes
// through the narrow ClientWriter, so it knows nothing of sessions or sockets.
import type { CacheEntry } from './entry.js'
import type { HitHead, HitHeads } from './hit-heads.js'
import { currentAge, notModified, parseHttpDate, preconditionFailed, type RequestFacts } from './policy.js'
import { cacheStatus } from './status.js'

/** Where an answer is written: the client's session implements it. */
export interface ClientWriter {
  readonly method: string
  /** The client has gone or an answer has started: nothing more may be written. */
  readonly answered: boolean
  /** A request header by lower-case name (If-Range). */
  header (name: string): string | undefined
  /** Status and body bytes sent, for logs. */
  status: number
  bytesOut: number
  /** False when the head could not be written (the writer has contained the failure). */
  writeHead (status: number, headers: readonly string[]): boolean
  /**
   * A whole plain hit: its prepared head (`head.fields`, whose other forms the
   * writer may keep in it), `body` (undefined for HEAD) and the end.
   */
  sendHit (status: number, head: HitHead, body: Buffer | undefined): void
  end (body?: Buffer): void
}

/**
 * A plain hit: answered with the entry's prepared head, which is rebuilt only
 * when Age or the Cache-Status ttl has moved on (about once a second per
 * entry; `heads` keeps it). Conditionals and Range take serveEntry's general path.
 * `name`: the cache's Cache-Status name; `collapsed`: the request waited on
 * another's fetch.
 */
export function serveHit (w: ClientWriter, facts: RequestFacts, entry: CacheEntry, now: number, heads: HitHeads, name: string,
  collapsed: boolean): void {
  const ageMs = currentAge(entry, now)
  const ttl = Math.round((entry.freshness - ageMs) / 1000)
  if (facts.conditional) {
    return serveEntry(w, facts, entry, now, cacheStatus(name, { hit: true, collapsed, ttl }))
  }
  if (w.answered) return
  const age = Math.floor(ageMs / 1000)
  let head = heads.get(entry)
  if (head === undefined || head.age !== age || head.ttl !== ttl || head.name !== name || head.collapsed !== collapsed) {
    // concat: an array of exactly this length (push would leave growth room in every memo).
    const fields = entry.headers.concat(['age', String(age), 'cache-status', cacheStatus(name, { hit: true, collapsed, ttl })])
    head = { age, ttl, name, collapsed, fields, h2: undefined, h1: undefined, h1Bytes: undefined }
    heads.set(entry, head)
  }
  w.status = entry.status
  if (w.method === 'HEAD') return w.sendHit(entry.status, head, undefined)
  w.bytesOut = entry.body.length
  w.sendHit(entry.status, head, entry.body)
}

const NO_FIELDS: readonly string[] = Object.freeze([])

/**
 * Answer from `entry` at `now` (ms since the epoch), with `cacheStatus` as
 * its Cache-Status; `own`: fields for this client alone, never stored (the
 * Set-Cookie of the 304 its request revalidated with).
 */
export function serveEntry (w: ClientWriter, facts: RequestFacts, entry: CacheEntry, now: number, cacheStatus: string,
  own: readonly string[] = NO_FIELDS): void {
  if (w.answered) return
  const headers = entry.headers.slice()
  headers.push('age', String(Math.floor(currentAge(entry, now) / 1000)), 'cache-status', cacheStatus)
  for (let i = 0; i < own.length; i++) headers.push(own[i]!)
  w.status = entry.status
  if (preconditionFailed(facts, entry)) {
    // Nothing of the stored response: a 412 is about the request, and must not be cached downstream as it.
    w.status = 412
    if (w.writeHead(412, ['cache-status', cacheStatus, 'content-length', '0'])) w.end()
    return
  }
  if (entry.status === 200 && notModified(facts, entry)) return sendNotModified(w, headers)
  let body = entry.body
  let code = entry.status
  if (entry.status === 200 && facts.range !== undefined && rangeApplies(w.header('if-range'), entry)) {
    const r = singleRange(facts.range, body.length)
    if (r === 'unsatisfiable') {
      w.status = 416
      const h = headers.filter(notBodyHeader)
      h.push('content-range', `bytes */${body.length}`, 'content-length', '0')
      if (w.writeHead(416, h)) w.end()
      return
    }
    if (r !== undefined) {
      code = 206
      w.status = 206
      body = body.subarray(r[0], r[1] + 1)
      const h = headers.filter(notBodyHeader)
      h.push('content-range', `bytes ${r[0]}-${r[1]}/${entry.body.length}`, 'content-length', String(body.length))
      if (!w.writeHead(206, h)) return
      if (w.method === 'HEAD') w.end()
      else {
        w.bytesOut = body.length // the range sent, as the access log counts it
        w.end(body)
      }
      return
    }
  }
  if (w.method !== 'HEAD') w.bytesOut = body.length
  if (!w.writeHead(code, headers)) return
  if (w.method === 'HEAD') w.end()
  else w.end(body)
}

/** A 304 with what `fields` (a 200's, Cache-Status included) may carry in one (see notModifiedHeader). */
export function sendNotModified (w: ClientWriter, fields: readonly string[]): void {
  w.status = 304
  if (w.writeHead(304, fields.filter(notModifiedHeader))) w.end()
}

/**
 * If-Range (RFC 9110 §13.1.5): the range applies only if the validator still
 * matches: an entity-tag by strong comparison, a date only when it is exactly
 * the Last-Modified and that is strong (a second or more before Date, §8.8.2.2).
 */
function rangeApplies (ifRange: string | undefined, entry: CacheEntry): boolean {
  if (ifRange === undefined) return true
  const v = ifRange.trim()
  if (v.startsWith('"')) return entry.etag === v
  const t = parseHttpDate(v)
  const lm = entry.lastModified
  return t !== undefined && lm !== undefined && lm === t && entry.date - lm >= 1000
}

/** Longer than any one range of a body a cache holds; a longer field is ignored (the whole is sent). */
const MAX_RANGE_FIELD = 256

/**
 * `bytes=a-b` | `bytes=a-` | `bytes=-n` → inclusive [start, end]; several
 * ranges, or anything else → undefined (send the whole, RFC 9110 §14.2).
 * Read in one pass: a backtracking regex here (`\s*(\d*)\s*`) cost 0.4 s
 * of the event loop on a 16 KB field of blanks, on every hit.
 */
export function singleRange (value: string, size: number): [number, number] | 'unsatisfiable' | undefined {
  if (value.length > MAX_RANGE_FIELD) return undefined
  const v = value.trim()
  if (v.length < 6 || v.slice(0, 5).toLowerCase() !== 'bytes') return undefined
  let i = blanks(v, 5)
  if (v.charCodeAt(i) !== 61) return undefined // '='
  i = blanks(v, i + 1)
  const aEnd = digits(v, i)
  const a = v.slice(i, aEnd)
  i = blanks(v, aEnd)
  if (v.charCodeAt(i) !== 45) return undefined // '-'
  i = blanks(v, i + 1)
  const bEnd = digits(v, i)
  const b = v.slice(i, bEnd)
  if (blanks(v, bEnd) !== v.length) return undefined
  if (a === '' && b === '') return undefined
  let start: number
  let end: number
  if (a === '') {
    const n = Number(b)
    if (n === 0) return 'unsatisfiable'
    start = Math.max(0, size - n)
    end = size - 1
  } else {
    start = Number(a)
    end = b === '' ? size - 1 : Math.min(Number(b), size - 1)
    if (b !== '' && Number(b) < start) return undefined // invalid: ignore the Range
  }
  if (start >= size || size === 0) return 'unsatisfiable'
  return [start, end]
}

function blanks (s: string, i: number): number {
  while (i < s.length && (s.charCodeAt(i) === 32 || s.charCodeAt(i) === 9)) i++
  return i
}

function digits (s: string, i: number): number {
  while (i < s.length && s.charCodeAt(i) >= 48 && s.charCodeAt(i) <= 57) i++
  return i
}

/** Remaining freshness of `entry` at `now`, whole seconds (negative when stale), for Cache-Status. */
export function ttlSeconds (entry: CacheEntry, now: number): number {
  return Math.round((entry.freshness - currentAge(entry, now)) / 1000)
}

/** A filter of flat [name, value…] fields: each pair whose name is not one of `names` (lower-case). */
function fieldsWithout (names: ReadonlySet<string>): (_v: string, i: number, all: readonly string[]) => boolean {
  return (_v, i, all) => !names.has((i % 2 === 0 ? all[i]! : all[i - 1]!).toLowerCase())
}

const BODY_HEADERS = ['content-length', 'content-range', 'transfer-encoding']
const notBodyHeader = fieldsWithout(new Set(BODY_HEADERS))

/**
 * A 304 sends no representation metadata beyond what guides cache updates
 * (RFC 9110 §15.4.5), and never Content-Encoding: a weak ETag matches the
 * identity copy the client may hold as well as this compressed one, and a
 * cache freshening that copy with the 304's fields would mislabel its bytes.
 */
const notModifiedHeader = fieldsWithout(new Set([...BODY_HEADERS, 'content-encoding']))
