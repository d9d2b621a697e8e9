// `${ENV_NAME}` and `${file:path}` in config values, so secrets (the admin
// token, later Redis URLs and keys) need not be written in the YAML. Applied
// after YAML parsing, to string scalars only: a value can never add keys,
// list items or anchors, whatever the variable holds. Keys are not expanded,
// and an expanded value is not scanned again. `$${` is a literal `${`.

import { isMap, isScalar, isSeq } from 'yaml'
import type { Document, LineCounter, Node } from 'yaml'
import type { ConfigIssue } from '../errors.js'
import { joinPath } from './reader.js'

/** What a `${…}` refers to. */
export type Reference =
  | { readonly kind: 'env', readonly name: string }
  | { readonly kind: 'file', readonly path: string }

/** The replacement text, or why there is none. */
export type Resolved = { readonly value: string } | { readonly error: string }

export type Expansion =
  | { readonly ok: true, readonly value: string }
  | { readonly ok: false, readonly errors: readonly string[] }

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/
const FORMS = '`${NAME}` (letters, digits and `_`) or `${file:PATH}`; write `$${` for a literal `${`'

/**
 * Expands every reference in `text`. `$${` becomes `${` and is not a
 * reference. Every bad or unresolved reference is an error (never an empty
 * string).
 */
export function expand (text: string, resolve: (ref: Reference) => Resolved): Expansion {
  if (!text.includes('${')) return { ok: true, value: text }
  let out = ''
  const errors: string[] = []
  let i = 0
  while (i < text.length) {
    const at = text.indexOf('${', i)
    if (at < 0) {
      out += text.slice(i)
      break
    }
    if (at > 0 && text[at - 1] === '$') {
      // `$${`: the first `$` escapes; keep one `${` and go on after it.
      out += text.slice(i, at - 1) + '${'
      i = at + 2
      continue
    }
    out += text.slice(i, at)
    const end = text.indexOf('}', at + 2)
    if (end < 0) {
      errors.push(`unterminated \`\${\` (expected ${FORMS})`)
      break
    }
    const body = text.slice(at + 2, end)
    i = end + 1
    const ref = parseReference(body)
    if (ref === undefined) {
      errors.push(`\`\${${body}}\` is not a reference: expected ${FORMS}`)
      continue
    }
    const r = resolve(ref)
    if ('error' in r) errors.push(r.error)
    else out += r.value
  }
  return errors.length > 0 ? { ok: false, errors } : { ok: true, value: out }
}

function parseReference (body: string): Reference | undefined {
  if (body.startsWith('file:')) {
    const path = body.slice(5)
    return path === '' ? undefined : { kind: 'file', path }
  }
  return ENV_NAME.test(body) ? { kind: 'env', name: body } : undefined
}

/** A file's content as a config value: with one trailing newline (LF or CRLF) trimmed. */
export function fileValue (content: string): string {
  if (content.endsWith('\r\n')) return content.slice(0, -2)
  if (content.endsWith('\n')) return content.slice(0, -1)
  return content
}

export interface SubstitutionResult {
  readonly issues: readonly ConfigIssue[]
  /** YAML paths of values that could not be expanded: no other issue should be reported there. */
  readonly failed: ReadonlySet<string>
}

/**
 * Expands references in every string scalar value of `doc`, in place.
 * Problems are issues at the value's YAML path and position.
 */
export function substituteDocument (doc: Document, lines: LineCounter, resolve: (ref: Reference) => Resolved): SubstitutionResult {
  const issues: ConfigIssue[] = []
  const failed = new Set<string>()
  const visit = (node: unknown, path: string): void => {
    // Aliases are skipped: their anchor is expanded where it is defined.
    if (isMap(node)) {
      for (const pair of node.items) {
        const key = isScalar(pair.key) ? pair.key.value : undefined
        if (typeof key !== 'string' && typeof key !== 'number') continue
        visit(pair.value, joinPath(path, String(key)))
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => visit(item, `${path}[${i}]`))
    } else if (isScalar(node) && typeof node.value === 'string') {
      const r = expand(node.value, resolve)
      if (r.ok) {
        node.value = r.value
        return
      }
      failed.add(path)
      const offset = (node as Node).range?.[0]
      const { line, col } = offset === undefined ? { line: 0, col: 0 } : lines.linePos(offset)
      issues.push({ path, message: r.errors.join('; '), line, column: col })
    }
  }
  visit(doc.contents, '')
  return { issues, failed }
}
