// Throwaway self-signed certificates for tests. Key generation is the slow part,
// so each distinct set of names is generated once per test process and the
// files are written into a fresh temp dir that the test's teardown removes.

import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateCertificate, writeCertificatePair } from '../../src/certs.js'
import type { CertificatePair, CertificateFiles } from '../../src/certs.js'

/** Anything with tap's `t.teardown`. */
export interface Teardown {
  teardown (fn: () => unknown): void
}

export interface TestCertificate extends CertificatePair, CertificateFiles {
  readonly dir: string
}

export const LOCALHOST_NAMES: readonly string[] = ['localhost', '127.0.0.1', '::1']

const memo = new Map<string, CertificatePair>()

/** A cached pair for `names` (default localhost, 127.0.0.1, ::1); CN is the first name. */
export function testCertificatePair (names: readonly string[] = LOCALHOST_NAMES): CertificatePair {
  const key = names.join('\n')
  let pair = memo.get(key)
  if (pair === undefined) {
    pair = generateCertificate({ names })
    memo.set(key, pair)
  }
  return pair
}

/** Writes a cached pair as `<tmp>/test.crt` + `test.key`; removed on teardown. Use certPem as `ca` to trust it. */
export function testCertificate (t: Teardown, names: readonly string[] = LOCALHOST_NAMES): TestCertificate {
  const dir = tempDir(t)
  const pair = testCertificatePair(names)
  return { dir, ...pair, ...writeCertificatePair(dir, 'test', pair) }
}

/** A fresh dir under os.tmpdir(), removed on teardown. */
export function tempDir (t: Teardown): string {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-test-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  return dir
}
