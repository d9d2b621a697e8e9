// Regular expressions on paths: `match.pathRegex` and `rewrite.regex`.
// The engine is re2js, a port of RE2: matching time is linear in the path's
// length whatever the pattern, so no route can ever be a ReDoS; the price is
// no backreferences and no lookaround, refused at load with that reason.
// Every pattern is matched against the WHOLE normalised path (no query), as
// if written `^(?:…)$` (Envoy's safe_regex, HAProxy's `path_reg ^…$`): `^`
// and `$` may be written and change nothing. Compiled once, at load. Pure.
import { RE2JS } from 're2js'

/** A compiled path pattern. */
export interface PathRegex {
  /** As written in the config. */
  readonly source: string
  /** Does the whole path match. */
  test (path: string): boolean
  /** The capture groups of a whole-path match (index 0: the path), or undefined when it does not match; allocates. */
  exec (path: string): readonly (string | undefined)[] | undefined
  /** `$1=2, $name=users`: the groups of a match as explain shows them; '' when there are none. */
  describeCaptures (path: string): string
  /**
   * Every path it matches starts with this (maybe ''): a plain startsWith
   * that rules most paths out before the engine runs.
   */
  readonly literalPrefix: string
  readonly groupCount: number
  /** Group name → its number. */
  readonly names: Readonly<Record<string, number>>
}

/** Compile `source`, or say why it is refused (the message names the linear-time engine when that is the reason). */
export function compilePathRegex (source: string): PathRegex | { readonly error: string } {
  let re: RE2JS
  try {
    re = RE2JS.compile(source)
  } catch (err) {
    return { error: whyRefused(source, err) }
  }
  const groupCount = re.groupCount()
  const names: Record<string, number> = Object.freeze({ ...re.namedGroups() })
  const literalPrefix = literalPrefixOf(source)
  const exec = (path: string): (string | undefined)[] | undefined => {
    if (!path.startsWith(literalPrefix)) return undefined
    const m = re.matcher(path)
    if (!m.matches()) return undefined
    const out: (string | undefined)[] = []
    for (let i = 0; i <= groupCount; i++) out.push(m.group(i) ?? undefined)
    return out
  }
  return Object.freeze({
    source,
    literalPrefix,
    groupCount,
    names,
    test: literalPrefix === ''
      ? (path: string) => re.matches(path)
      : (path: string) => path.startsWith(literalPrefix) && re.matches(path),
    exec,
    describeCaptures (path: string): string {
      const g = exec(path)
      if (g === undefined) return ''
      const byNumber = new Map(Object.entries(names).map(([n, i]) => [i, n]))
      const parts: string[] = []
      for (let i = 1; i <= groupCount; i++) parts.push(`$${byNumber.get(i) ?? i}=${g[i] ?? '(none)'}`)
      return parts.join(', ')
    }
  })
}

/** Explain a compile error; RE2's refusals of backtracking features say why RE2 has none. */
function whyRefused (source: string, err: unknown): string {
  const linear = 'Switchyard matches paths with RE2, a linear-time engine (no pattern can be a ReDoS), which has no'
  if (/\\[1-9]/.test(source.replace(/\\\\/g, ''))) return `\`${/\\[1-9]/.exec(source.replace(/\\\\/g, ''))![0]}\` is a backreference: ${linear} backreferences`
  const look = /\(\?<?[=!]/.exec(source)
  if (look !== null) {
    const what = look[0].includes('<') ? 'lookbehind' : 'lookahead'
    return `\`${look[0]}\` is a ${what}: ${linear} lookaround (match the part itself, or use a second route or a capture group)`
  }
  const msg = err instanceof Error ? err.message : String(err)
  return `not a valid RE2 regular expression: ${msg.replace(/^error parsing regexp: /, '')}`
}

/**
 * The literal text every whole-path match of `source` begins with: the
 * characters after an optional `^` up to the first metacharacter, less the
 * last one when a `*`, `?` or `{` may repeat it zero times; '' when the
 * pattern has a top-level `|` or starts with anything else (a group, a flag,
 * an escape, a class).
 */
export function literalPrefixOf (source: string): string {
  if (hasTopLevelAlternation(source)) return ''
  let i = source.startsWith('^') ? 1 : 0
  let out = ''
  for (; i < source.length; i++) {
    const c = source[i]!
    if ('\\.+*?()|[]{}^$'.includes(c)) {
      if (c === '*' || c === '?' || c === '{') out = out.slice(0, -1)
      return out
    }
    out += c
  }
  return out
}

function hasTopLevelAlternation (source: string): boolean {
  let depth = 0
  for (let i = 0; i < source.length; i++) {
    const c = source[i]
    if (c === '\\') { i++; continue }
    if (c === '[') {
      // a class: `]` right after `[` or `[^` is a member, `\` escapes
      i++
      if (source[i] === '^') i++
      if (source[i] === ']') i++
      while (i < source.length && source[i] !== ']') { if (source[i] === '\\') i++; i++ }
      continue
    }
    if (c === '(') depth++
    else if (c === ')') depth--
    else if (c === '|' && depth === 0) return true
  }
  return false
}

/** A replacement, parsed once: literal text and group numbers, in order. */
export type Replacement = readonly (string | number)[]

/**
 * Parse a replacement (NGINX's rewrite, Traefik's replacePathRegex): `$1` is
 * group 1 (all the digits: `$12` is group 12, `$1x` group 1 then `x`),
 * `$name` a named group (letters, digits, `_`), `${1}` / `${name}` the same
 * with an end (in the YAML, `$${name}`: `${…}` there is an environment
 * variable), `$$` a `$`. It must start with a literal `/`, and its literal
 * text may hold no space, control, `?` or `#` (the query is the client's and
 * is kept), so it can only give an origin-form path: captures are parts of
 * the normalised path, which has none of those either.
 */
export function parseReplacement (text: string, re: Pick<PathRegex, 'groupCount' | 'names'>): Replacement | { readonly error: string } {
  if (!text.startsWith('/')) return { error: 'the replacement must start with `/` (it is the whole upstream path)' }
  const out: (string | number)[] = []
  let lit = ''
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!
    if (c !== '$') {
      const code = c.charCodeAt(0)
      if (code <= 0x20 || code >= 0x7f || c === '?' || c === '#') {
        return {
          error: code <= 0x20 || code >= 0x7f
            ? `the replacement may not contain the character ${JSON.stringify(c)} (write it percent-encoded)`
            : `the replacement may not contain \`${c}\` (it is the path only: the client's query is kept as sent)`
        }
      }
      lit += c
      continue
    }
    if (text[i + 1] === '$') { lit += '$'; i++; continue }
    const braced = text[i + 1] === '{'
    const from = braced ? i + 2 : i + 1
    const ref = /^(\d+|[A-Za-z_]\w*)/.exec(text.slice(from))?.[0]
    if (ref === undefined || (braced && text[from + ref.length] !== '}')) {
      return { error: '`$` must be followed by a group: `$1`, `$name`, `${1}` (`$${1}` in the YAML); write `$$` for a `$`' }
    }
    i = from + ref.length - (braced ? 0 : 1)
    const group = /^\d/.test(ref) ? Number(ref) : re.names[ref]
    if (group === undefined) {
      const names = Object.keys(re.names)
      return { error: `$${ref} names no group of the pattern (${names.length === 0 ? 'it has no named groups: (?P<name>…)' : `named groups: ${names.join(', ')}`})` }
    }
    if (group > re.groupCount) return { error: `$${ref} refers to group ${group}, but the pattern has ${re.groupCount === 0 ? 'no groups' : `only ${re.groupCount}`}` }
    if (lit !== '') out.push(lit)
    lit = ''
    out.push(group)
  }
  if (lit !== '') out.push(lit)
  return Object.freeze(out)
}

/** A compiled `rewrite.regex`. */
export interface RegexRewrite {
  readonly pattern: PathRegex
  readonly replacement: Replacement
  /** As written. */
  readonly replacementSource: string
}

/** Bytes an origin-form path may hold (as the request target's: visible ASCII and obs-text), and no `?`. */
const BAD_PATH = /[^\x21-\x3e\x40-\x7e\x80-\xff]/

/**
 * `target` (path + query) with its path replaced when the pattern matches
 * the whole path; unchanged when it does not. Undefined when the result is
 * not an origin-form path (the load-time checks make this unreachable; the
 * proxy answers 500 rather than send it).
 */
export function applyRegexRewrite (rw: RegexRewrite, target: string): string | undefined {
  const q = target.indexOf('?')
  const path = q === -1 ? target : target.slice(0, q)
  const groups = rw.pattern.exec(path)
  if (groups === undefined) return target
  let out = ''
  const parts = rw.replacement
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i]!
    out += typeof p === 'string' ? p : groups[p] ?? ''
  }
  if (out.charCodeAt(0) !== 47 || BAD_PATH.test(out)) return undefined
  return q === -1 ? out : out + target.slice(q)
}
