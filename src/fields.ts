// Header fields as Node and undici carry them: flat [name, value, name,
// value…] lists, names in any case. The one set of lookups every module uses
// (routing, forwarding, the cache), so that a field is read the same way
// wherever a decision depends on it. Imports nothing.

/** `name` equals `lowerName` ignoring ASCII case, without allocating. */
export function isName (name: string, lowerName: string): boolean {
  if (name === lowerName) return true
  const n = name.length
  if (n !== lowerName.length) return false
  for (let i = 0; i < n; i++) {
    let c = name.charCodeAt(i)
    if (c >= 65 && c <= 90) c |= 0x20
    if (c !== lowerName.charCodeAt(i)) return false
  }
  return true
}

/** Does a comma-separated list (Connection, Upgrade, Pragma) contain `token`, ignoring case? */
export function hasToken (value: string, token: string): boolean {
  const parts = value.split(',')
  for (let i = 0; i < parts.length; i++) if (parts[i]!.trim().toLowerCase() === token) return true
  return false
}

/** The first value of a field, or undefined. */
export function firstValue (flat: readonly string[], lowerName: string): string | undefined {
  for (let i = 0; i + 1 < flat.length; i += 2) if (isName(flat[i]!, lowerName)) return flat[i + 1]
  return undefined
}

/**
 * Every value of a field joined into one, as RFC 9110 §5.3 combines a list
 * field sent on several lines (`sep` `, `; Cookie uses `; `, RFC 9113 §8.2.3).
 */
export function combinedValue (flat: readonly string[], lowerName: string, sep = ', '): string | undefined {
  let out: string | undefined
  for (let i = 0; i + 1 < flat.length; i += 2) {
    if (isName(flat[i]!, lowerName)) out = out === undefined ? flat[i + 1]! : out + sep + flat[i + 1]!
  }
  return out
}

/** Every line of a field replaced by one, `value`, at the end (none when undefined). */
export function setField (flat: string[], lowerName: string, value: string | undefined): void {
  for (let i = flat.length - 2; i >= 0; i -= 2) if (isName(flat[i]!, lowerName)) flat.splice(i, 2)
  if (value !== undefined) flat.push(lowerName, value)
}

/** `flat` without the fields named `lowerName` (any case); `flat` itself when it has none. */
export function withoutField (flat: readonly string[], lowerName: string): readonly string[] {
  if (countFields(flat, lowerName) === 0) return flat
  const out: string[] = []
  for (let i = 0; i + 1 < flat.length; i += 2) {
    if (!isName(flat[i]!, lowerName)) out.push(flat[i]!, flat[i + 1]!)
  }
  return out
}

/** How many lines of a field there are. */
export function countFields (flat: readonly string[], lowerName: string): number {
  let n = 0
  for (let i = 0; i < flat.length; i += 2) if (isName(flat[i]!, lowerName)) n++
  return n
}

/**
 * A request field as routing, shard keys, rate-limit keys and trust read it:
 * every line of it as one value (RFC 9110 §5.3), Cookie joined with `; `
 * (RFC 9113 §8.2.3), the rest with `, ` (as Envoy's header matchers see a
 * repeated header). Reading only the first line would let a client send one
 * value for our route decision and another for a backend that reads the last.
 */
export function requestField (flat: readonly string[], lowerName: string): string | undefined {
  return combinedValue(flat, lowerName, lowerName === 'cookie' ? '; ' : ', ')
}

/**
 * One Link field value (RFC 8288 §3) in the form Node's writeEarlyHints
 * accepts: `<uri-reference>` then `; param[=value]`s. The target has no
 * spaces, angle brackets or controls, so no value can break a header line.
 */
const LINK_VALUE = /^<[^<>\s\x00-\x1f\x7f]*>(?:[ \t]*;[ \t]*[^;"\s=\x00-\x1f\x7f]+(?:=(?:"[^"\x00-\x1f\x7f]*"|[^;"\s\x00-\x1f\x7f]*))?)*$/

export function isLinkValue (s: string): boolean {
  return LINK_VALUE.test(s)
}

/** An interim response's fields: every link, and the other fields by lower-case name. */
export interface InterimHead {
  link: string[]
  [name: string]: string | string[]
}

/** Fields an interim response never passes on: hop-by-hop, framing, and state a client must not take from a 1xx. */
const NOT_INTERIM = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade',
  'content-length', 'set-cookie'])
/** A lower-case field name as RFC 9110 §5.1 allows it (what HTTP/2 sends, and what we lower-case to). */
export const LOWER_FIELD_NAME = /^[!#$%&'*+\-.^_`|~0-9a-z]+$/
/** A field value with no control character but HTAB. */
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/

/**
 * A response head as it comes off the wire: flat name, value, name, value…,
 * latin1 strings (as Node's parser gives them, bytes kept exact).
 */
export type RawFields = readonly string[]

/** undici's flat Buffers (its h2 client) as RawFields; RawFields pass as they are. */
export function rawFields (raw: readonly (Buffer | string)[] | null | undefined): RawFields {
  if (raw === null || raw === undefined || raw.length === 0) return NO_RAW_FIELDS
  if (typeof raw[0] === 'string') return raw as RawFields
  const out = new Array<string>(raw.length)
  for (let i = 0; i < raw.length; i++) out[i] = raw[i]!.toString('latin1')
  return out
}

const NO_RAW_FIELDS: RawFields = Object.freeze([])

/**
 * The head of an interim response (flat, as the parser gives it) as
 * the client may get it: lower-case name → value. `link` holds every
 * well-formed link of every Link field (a Link field split where a comma
 * precedes the next `<`); other fields are kept when their name and value
 * are well-formed and they are not hop-by-hop or framing (NOT_INTERIM),
 * repeated ones joined with `, `.
 */
/**
 * The field names a Connection value lists (RFC 9110 §7.6.1), lower-case,
 * without its options (close, keep-alive; upgrade, which is handled apart):
 * never a name the proxy itself adds. Undefined when there are none.
 */
export function connectionNames (tokens: string): Set<string> | undefined {
  let names: Set<string> | undefined
  for (const t of tokens.split(',')) {
    const n = t.trim().toLowerCase()
    if (n !== '' && n !== 'close' && n !== 'keep-alive' && n !== 'upgrade') (names ??= new Set()).add(n)
  }
  return names
}

export function interimHead (raw: RawFields): InterimHead {
  const out = Object.create(null) as InterimHead
  out.link = []
  // Fields the Connection field names are hop-by-hop (RFC 9110 §7.6.1), in a 1xx as in the final answer.
  const connection = combinedValue(raw, 'connection')
  const named = connection === undefined ? undefined : connectionNames(connection)
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase()
    const value = raw[i + 1]!
    if (named?.has(name) === true) continue
    if (name === 'link') {
      for (const part of value.split(/,[ \t]*(?=<)/)) {
        const link = part.trim()
        if (isLinkValue(link)) out.link.push(link)
      }
    } else if (!NOT_INTERIM.has(name) && LOWER_FIELD_NAME.test(name) && FIELD_VALUE.test(value)) {
      const prev = out[name]
      out[name] = typeof prev === 'string' ? `${prev}, ${value}` : value
    }
  }
  return out
}
