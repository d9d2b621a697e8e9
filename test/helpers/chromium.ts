// The headless Chromium the dashboard tests drive (playwright-core, the
// system's browser): one place for its path, flags and clean-up.
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { chromium, type BrowserContext } from 'playwright-core'
import type { Teardown } from './certs.js'

/** SWITCHYARD_CHROMIUM overrides the browser path (e.g. on a developer machine). */
export const CHROMIUM = process.env.SWITCHYARD_CHROMIUM ?? '/usr/bin/chromium'

/** In CI a missing browser is a failure, not a skip. */
export const inCI = process.env.CI !== undefined && process.env.CI !== '' && process.env.CI !== 'false' && process.env.CI !== '0'

const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync']

/** A fresh browser profile, closed and removed on teardown; `ignoreHTTPSErrors` for pages behind the test certificate. */
export async function browserContext (t: Teardown, opts: { readonly ignoreHTTPSErrors?: boolean } = {}): Promise<BrowserContext> {
  const userDataDir = await mkdtemp(path.join(os.tmpdir(), 'switchyard-chromium-'))
  const ctx = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: ARGS,
    viewport: { width: 1360, height: 1000 },
    colorScheme: 'light',
    ignoreHTTPSErrors: opts.ignoreHTTPSErrors === true
  })
  t.teardown(async () => {
    await ctx.close()
    await rm(userDataDir, { recursive: true, force: true })
  })
  return ctx
}
