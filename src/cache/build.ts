// Building a stored entry from a response (Pingora's response_cache_filter
// output, undici's cache-handler): what is kept of its fields, its lifetime,
// validators, Vary values and tags, all computed once at store time. Pure
// but for the cache's Interner, which keeps repeated strings once.
import { combinedValue, firstValue, isName } from '../fields.js'
import type { CacheEntry } from './entry.js'
import {
  freshnessLifetime, parseAge, parseHttpDate, responseTags, storableHeaders, varyNames, varyValues, type StoreOptions
} from './policy.js'
import type { Interner } from './intern.js'
import { responseDirectives } from './targeted.js'
import { compactBody, entrySize } from './store.js'

/** Where the entry is stored and what it is stored for. */
export interface EntryPlace {
  /** Primary key and variant key (cache/key.ts). */
  readonly key: string
  readonly variant: string
  /** The request's raw headers: the stored response's Vary values come from them. */
  readonly requestHeaders: readonly string[]
  readonly opts: StoreOptions
  /** The negotiated coding on a compressing route (see CacheTarget.coding). */
  readonly coding?: string | undefined
}

/**
 * A storable entry for a complete response, or undefined when its Vary is `*`.
 * `interner` is the cache's that will hold it; `freshness` (ms) when the
 * store decision already computed it.
 */
export function buildEntry (interner: Interner, place: EntryPlace, status: number, statusText: string, headers: readonly string[],
  body: Buffer, requestTime: number, responseTime: number, freshness?: number): CacheEntry | undefined {
  const names = varyNames(headers)
  if (names === '*') return undefined
  // RFC 9213: a targeted field on the route's list replaces Cache-Control.
  const cc = responseDirectives(headers, place.opts.targets, interner)
  // Dates contain commas, so a repeated field cannot be joined: the first one counts.
  const date = parseHttpDate(firstValue(headers, 'date'))
  const lm = parseHttpDate(firstValue(headers, 'last-modified'))
  // §3.1: never keep fields named by private="…" / no-cache="…", nor Age.
  const clean = storableHeaders(headers, cc).filter(notAge)
  // The body is complete in memory: always frame it by length (a chunked origin sent none).
  if (firstValue(clean, 'content-length') === undefined && status !== 204 && status !== 304) clean.push('content-length', String(body.length))
  const tags = responseTags(headers)
  const kept = interner.headers(clean)
  const own = compactBody(body)
  const etag = combinedValue(headers, 'etag')
  const vary = varyValues(names, place.requestHeaders, place.coding)
  const tagList = tags.length === 0 ? NO_TAGS : tags
  const size = entrySize({ key: place.key, variant: place.variant, statusText, headers: kept, body: own, etag, varyNames: names, varyValues: vary, tags: tagList }, interner)
  // One object literal, every field in the same order: a spread, or fields
  // added later, can leave V8 a dictionary of several hundred bytes per entry.
  return Object.freeze({
    key: place.key,
    variant: place.variant,
    status,
    statusText,
    headers: kept,
    body: own,
    requestTime,
    responseTime,
    cc,
    freshness: freshness ?? freshnessLifetime(status, headers, cc, responseTime, place.opts),
    date: date ?? responseTime,
    ageValue: parseAge(headers) ?? 0,
    etag,
    lastModified: lm,
    varyNames: names,
    varyValues: vary,
    tags: tagList,
    size
  })
}

const NO_TAGS: readonly string[] = Object.freeze([])

/** The Age field lines of `headers`, flat. */
export function ageFields (headers: readonly string[]): string[] {
  const out: string[] = []
  for (let i = 0; i + 1 < headers.length; i += 2) if (isName(headers[i]!, 'age')) out.push(headers[i]!, headers[i + 1]!)
  return out
}

function notAge (_v: string, i: number, all: readonly string[]): boolean {
  const name = i % 2 === 0 ? all[i]! : all[i - 1]!
  return name.length !== 3 || name.toLowerCase() !== 'age'
}
