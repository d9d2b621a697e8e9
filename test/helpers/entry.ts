// How a test starts Switchyard (or a bench script) in a child process.
//
// `npm test` compiles to dist/ before tap runs, and the compiled JS starts in
// half the CPU time of `--import tsx` (which loads esbuild and its cache on
// every start). CI is CPU-bound on two cores, and the suite starts a few
// hundred children and cluster workers. A dist/ older than any source file
// (tap run by hand after an edit) is not used: the child then runs the sources
// through tsx, as before.
import { readdirSync, statSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')

let fresh: boolean | undefined

function newestSource (dir: string): number {
  let newest = 0
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name)
    if (e.isDirectory()) newest = Math.max(newest, newestSource(p))
    else if (e.name.endsWith('.ts')) newest = Math.max(newest, statSync(p).mtimeMs)
  }
  return newest
}

/** Whether dist/ was built from the sources as they are now. */
export function distIsFresh (): boolean {
  if (fresh === undefined) {
    try {
      const built = statSync(path.join(ROOT, 'dist/src/main.js')).mtimeMs
      fresh = built >= Math.max(newestSource(path.join(ROOT, 'src')), newestSource(path.join(ROOT, 'bench')))
    } catch {
      fresh = false
    }
  }
  return fresh
}

/**
 * Node's arguments to run a source file (`src/main.ts`, `bench/x.ts`), given
 * relative to the repository: its compiled JS when dist/ is fresh, else the
 * TypeScript through tsx.
 */
export function nodeArgs (source: string): string[] {
  return distIsFresh()
    ? [path.join(ROOT, 'dist', source.replace(/\.ts$/, '.js'))]
    : ['--import', 'tsx', path.join(ROOT, source)]
}
