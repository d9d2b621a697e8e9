// A CacheEntry as bytes for the shared cache, and back: the head as JSON, then
// the body. What comes back is checked field by field before it is trusted
// (it was sealed by us, but possibly by an older version of us).
import type { CacheDirectives } from '../cache-control.js'
import type { CacheEntry } from '../entry.js'
import type { Interner } from '../intern.js'
import { compactBody, entrySize } from '../store.js'

const FORMAT = 1

type Head = Omit<CacheEntry, 'body'> & { readonly format: number }

export function encodeEntry (e: CacheEntry): Buffer {
  const head: Head = {
    format: FORMAT, key: e.key, variant: e.variant, status: e.status, statusText: e.statusText, headers: e.headers,
    requestTime: e.requestTime, responseTime: e.responseTime, cc: e.cc, freshness: e.freshness, date: e.date, ageValue: e.ageValue,
    etag: e.etag, lastModified: e.lastModified, varyNames: e.varyNames, varyValues: e.varyValues, tags: e.tags, size: e.size
  }
  const json = Buffer.from(JSON.stringify(head), 'utf8')
  const len = Buffer.alloc(4)
  len.writeUInt32BE(json.length)
  return Buffer.concat([len, json, e.body])
}

/** `interner`: the cache's that will hold the entry (its header strings are shared there). */
export function decodeEntry (buf: Buffer, interner: Interner): CacheEntry | undefined {
  if (buf.length < 4) return undefined
  const n = buf.readUInt32BE(0)
  if (4 + n > buf.length) return undefined
  let h: Partial<Head>
  try {
    h = JSON.parse(buf.subarray(4, 4 + n).toString('utf8')) as Partial<Head>
  } catch {
    return undefined
  }
  if (h.format !== FORMAT || typeof h.key !== 'string' || typeof h.variant !== 'string' || !Number.isInteger(h.status) ||
    typeof h.statusText !== 'string' || !strings(h.headers) || h.headers.length % 2 !== 0 || !num(h.requestTime) ||
    !num(h.responseTime) || typeof h.cc !== 'object' || h.cc === null || !num(h.freshness) || !num(h.date) || !num(h.ageValue) ||
    !(h.etag === undefined || typeof h.etag === 'string') || !(h.lastModified === undefined || num(h.lastModified)) ||
    !strings(h.varyNames) || !strings(h.varyValues) || !strings(h.tags) || !num(h.size)) return undefined
  // Its own exact-size memory (the record is a bigger buffer), names shared, and
  // the size counted as this version counts it, whatever the writer counted.
  const body = compactBody(buf.subarray(4 + n))
  const headers = interner.headers(h.headers)
  const size = entrySize({ key: h.key, variant: h.variant, statusText: h.statusText, headers, body, etag: h.etag, varyNames: h.varyNames, varyValues: h.varyValues, tags: h.tags }, interner)
  return {
    key: h.key, variant: h.variant, status: h.status!, statusText: h.statusText, headers, body,
    requestTime: h.requestTime, responseTime: h.responseTime, cc: h.cc as CacheDirectives, freshness: h.freshness, date: h.date,
    ageValue: h.ageValue, etag: h.etag, lastModified: h.lastModified, varyNames: h.varyNames, varyValues: h.varyValues,
    tags: h.tags, size
  }
}

const num = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v)
const strings = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string')
