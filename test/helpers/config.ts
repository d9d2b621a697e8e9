// Shared by the config validation tests: run parseConfig and look at the
// issues it reports, against a small valid base config.
import type { Test } from 'tap'
import { parseConfig } from '../../src/config/load.js'
import { ConfigError, type ConfigIssue } from '../../src/errors.js'

/** Every issue parseConfig reports for `text` (none when it is valid). */
export function issuesOf (text: string): ConfigIssue[] {
  try {
    parseConfig(text, 'config.yaml')
  } catch (err) {
    if (err instanceof ConfigError) return [...err.issues]
    throw err
  }
  return []
}

/** Asserts exactly one issue, at `path` on `line`, whose message matches. */
export function only (t: Test, text: string, path: string, line: number, message?: RegExp | string): void {
  const issues = issuesOf(text)
  t.equal(issues.length, 1, `one issue, got ${JSON.stringify(issues)}`)
  t.match(issues[0], { path, line, ...(message === undefined ? {} : { message }) })
}

/** A valid config of lines 1-6; tests append below it, so their own lines start at 7. */
export const BASE = [
  'listeners:',
  '  - bind: ":0"',
  'backends:',
  '  api:',
  '    servers:',
  '      - url: http://127.0.0.1:9000',
  ''
].join('\n')
