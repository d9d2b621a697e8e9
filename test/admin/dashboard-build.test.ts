// The dashboard build on small pages of its own: it compiles a browser
// script to one import-free file and writes a build the admin listener loads,
// and it refuses a type error, a Node.js API and a runtime import.
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { buildDashboard } from '../../src/admin/dashboard-build.js'
import { loadDashboard, type DashboardDirs } from '../../src/admin/dashboard.js'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')

const HTML = '<!doctype html>\n<link rel="stylesheet" href="dashboard.css">\n<p id="x"></p>\n<script type="module" src="dashboard.js"></script>\n'

/** A page in a temporary folder: sources (with a tsconfig like the real one) and an empty build folder. */
async function page (t: Test, script: string, extra: Record<string, string> = {}): Promise<DashboardDirs> {
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'switchyard-dashboard-build-'))
  t.teardown(() => rm(tmp, { recursive: true, force: true }))
  const dirs = { sources: path.join(tmp, 'src'), build: path.join(tmp, 'build') }
  await mkdir(dirs.sources)
  const tsconfig = {
    extends: path.join(root, 'tsconfig.json'),
    compilerOptions: {
      lib: ['ES2023', 'DOM', 'DOM.Iterable'],
      types: [],
      // For `/// <reference types="node" />` below: Node's types in the program, as the real server modules bring them.
      typeRoots: [path.join(root, 'node_modules', '@types')],
      rootDir: '.',
      sourceMap: false,
      noEmit: true
    },
    include: ['dashboard.ts'],
    exclude: []
  }
  const files: Record<string, string> = {
    'package.json': '{ "type": "module" }\n',
    'tsconfig.json': JSON.stringify(tsconfig),
    'index.html': HTML,
    'dashboard.css': 'p { color: green }\n',
    'dashboard.ts': script,
    ...extra
  }
  for (const [name, body] of Object.entries(files)) await writeFile(path.join(dirs.sources, name), body)
  return dirs
}

t.test('builds a script that imports only types into one file the admin listener loads', async (t) => {
  const dirs = await page(t, [
    "import type { MetricsSnapshot } from './types.js'",
    "const snap: Pick<MetricsSnapshot, 'now'> = { now: Date.now() }",
    "document.getElementById('x')!.textContent = String(snap.now)",
    ''
  ].join('\n'), { 'types.ts': "export interface MetricsSnapshot { readonly now: number }\n" })
  await buildDashboard(dirs)
  const js = await readFile(path.join(dirs.build, 'dashboard.js'), 'utf8')
  t.match(js, /textContent = String\(snap\.now\)/)
  t.notMatch(js, /^\s*import\s/m, 'the type import is gone')
  const d = await loadDashboard(dirs)
  t.match(d.html, /<script type="module" src="dashboard\.[0-9a-f]{16}\.js"><\/script>/)
  t.equal(d.assets.size, 2)
})

t.test('a type error fails the build, and nothing is written', async (t) => {
  const dirs = await page(t, "const n: number = document.title\nconsole.log(n)\n")
  await t.rejects(buildDashboard(dirs), { message: /error TS2322: Type 'string' is not assignable to type 'number'/ })
  await t.rejects(loadDashboard(dirs), { message: /not built/ })
})

t.test('a Node.js API fails the build even when Node types are in the program', async (t) => {
  const dirs = await page(t, [
    '/// <reference types="node" />',
    "document.title = process.version + Buffer.from('x').length",
    'setImmediate(() => {})',
    ''
  ].join('\n'))
  const err = await buildDashboard(dirs).then(() => undefined, (e: unknown) => e)
  t.ok(err instanceof Error)
  const message = (err as Error).message
  t.match(message, /dashboard\.ts:2:\d+: `process` is not a browser API \(declared in .*@types\/node\//)
  t.match(message, /`Buffer` is not a browser API/)
  t.match(message, /`setImmediate` is not a browser API/)
  t.notMatch(message, /`document`|`title`/, 'DOM names are fine')
})

t.test('a runtime import fails the build: there is no bundler', async (t) => {
  const dirs = await page(t, "import { label } from './label.js'\ndocument.title = label\n", { 'label.ts': "export const label = 'x'\n" })
  await t.rejects(buildDashboard(dirs), { message: /may import types only.*\n.*import \{ label \} from '\.\/label\.js'/ })
})
