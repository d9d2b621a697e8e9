// Builds the live dashboard (see dashboard.ts) from src/admin/dashboard/ into
// dist/dashboard/. `npm run build:dashboard`; also the first step of `build`,
// `prepare`, `prestart` and `test`. A build tool, not part of the proxy:
// nothing in src/ imports it, and it needs the `typescript` dev dependency.
//
// 1. Type-checks the browser script with src/admin/dashboard/tsconfig.json
//    (DOM lib, no Node types) together with the server modules it imports
//    types from.
// 2. Refuses any Node.js-only API in the script: those server modules bring
//    Node's types into the program, so the compiler alone would accept
//    `process` or `Buffer`. Refuses any runtime import too: there is no
//    bundler, the browser gets this one file.
// 3. Compiles dashboard.ts alone to dashboard.js, copies index.html and
//    dashboard.css, and writes manifest.json last.
// 4. Loads the result exactly as the admin listener will.
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import ts from 'typescript'
import {
  DASHBOARD_DIRS, loadDashboard, MANIFEST, sha256, sourceDigests,
  type DashboardDirs, type DashboardManifest
} from './dashboard.js'

const formatHost: ts.FormatDiagnosticsHost = {
  getCanonicalFileName: (f) => f,
  getCurrentDirectory: () => ts.sys.getCurrentDirectory(),
  getNewLine: () => '\n'
}

class BuildError extends Error {}

function fail (diagnostics: readonly ts.Diagnostic[]): never {
  throw new BuildError(ts.formatDiagnostics(diagnostics, formatHost).trimEnd())
}

function where (file: ts.SourceFile, node: ts.Node): string {
  const { line, character } = file.getLineAndCharacterOfPosition(node.getStart(file))
  return `${path.relative(ts.sys.getCurrentDirectory(), file.fileName)}:${line + 1}:${character + 1}`
}

/**
 * Identifiers in `file` whose every declaration is outside the default
 * library (the DOM, ECMAScript) and outside the project's own sources: Node.js
 * globals and members (`process`, `Buffer`, `Error.captureStackTrace`…) or
 * other packages' declarations, none of which a browser has.
 */
function foreignApis (program: ts.Program, file: ts.SourceFile): string[] {
  const checker = program.getTypeChecker()
  const browserOrOurs = (sf: ts.SourceFile): boolean => program.isSourceFileDefaultLibrary(sf) || !sf.isDeclarationFile
  const found: string[] = []
  const visit = (node: ts.Node): void => {
    if (ts.isIdentifier(node)) {
      const declarations = checker.getSymbolAtLocation(node)?.declarations ?? []
      const first = declarations[0]
      if (first !== undefined && !declarations.some((d) => browserOrOurs(d.getSourceFile()))) {
        const from = path.relative(ts.sys.getCurrentDirectory(), first.getSourceFile().fileName)
        found.push(`${where(file, node)}: \`${node.text}\` is not a browser API (declared in ${from})`)
      }
    }
    ts.forEachChild(node, visit)
  }
  visit(file)
  return found
}

/** Imports left in the compiled script: the browser would have to fetch them. */
function runtimeImports (js: string): string[] {
  const file = ts.createSourceFile('dashboard.js', js, ts.ScriptTarget.Latest, true, ts.ScriptKind.JS)
  const found: string[] = []
  const visit = (node: ts.Node): void => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier !== undefined) {
      found.push(`dashboard.js: ${node.getText(file)}`)
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      found.push(`dashboard.js: ${node.getText(file)}`)
    }
    ts.forEachChild(node, visit)
  }
  visit(file)
  return found
}

/** Type-checks and compiles `dirs.sources/dashboard.ts`; returns the JavaScript. */
function compile (dirs: DashboardDirs): string {
  const configFile = path.join(dirs.sources, 'tsconfig.json')
  const parsed = ts.getParsedCommandLineOfConfigFile(configFile, {}, {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: (d) => fail([d])
  })
  if (parsed === undefined) throw new BuildError(`cannot read ${configFile}`)
  if (parsed.errors.length > 0) fail(parsed.errors)
  const entry = path.join(dirs.sources, 'dashboard.ts')
  // The tsconfig says noEmit (tsc on it must not write the server modules anywhere); only dashboard.ts is emitted, in memory.
  const program = ts.createProgram({ rootNames: parsed.fileNames, options: { ...parsed.options, noEmit: false } })
  const diagnostics = ts.getPreEmitDiagnostics(program)
  if (diagnostics.length > 0) fail(diagnostics)
  const file = program.getSourceFile(entry)
  if (file === undefined) throw new BuildError(`${configFile} does not include ${entry}`)
  const foreign = foreignApis(program, file)
  if (foreign.length > 0) throw new BuildError(foreign.join('\n'))
  let js: string | undefined
  const banner = '// The Switchyard dashboard, compiled from src/admin/dashboard/dashboard.ts by src/admin/dashboard-build.ts.\n'
  const emitted = program.emit(file, (name, text) => { if (name.endsWith('.js')) js = banner + text })
  if (emitted.diagnostics.length > 0) fail(emitted.diagnostics)
  if (js === undefined) throw new BuildError(`no JavaScript was emitted for ${entry}`)
  const imports = runtimeImports(js)
  if (imports.length > 0) throw new BuildError(`the dashboard script may import types only (there is no bundler):\n${imports.join('\n')}`)
  return js
}

/** Builds `dirs.sources` into `dirs.build` (see the top of this file). */
export async function buildDashboard (dirs: DashboardDirs = DASHBOARD_DIRS): Promise<void> {
  const sources = await sourceDigests(dirs.sources)
  if (sources === undefined) throw new BuildError(`no dashboard sources in ${dirs.sources}`)
  const js = compile(dirs)
  const files = {
    'index.html': await readFile(path.join(dirs.sources, 'index.html'), 'utf8'),
    'dashboard.css': await readFile(path.join(dirs.sources, 'dashboard.css'), 'utf8'),
    'dashboard.js': js
  }
  // The sources may have changed while compiling: the manifest must describe what was built.
  const after = await sourceDigests(dirs.sources)
  if (JSON.stringify(after) !== JSON.stringify(sources)) throw new BuildError(`${dirs.sources} changed during the build; run it again`)
  await mkdir(dirs.build, { recursive: true })
  const manifestFile = path.join(dirs.build, MANIFEST)
  await rm(manifestFile, { force: true })
  for (const [name, body] of Object.entries(files)) await writeFile(path.join(dirs.build, name), body)
  const manifest: DashboardManifest = {
    sources,
    files: Object.fromEntries(Object.entries(files).map(([name, body]) => [name, sha256(body)]))
  }
  await writeFile(manifestFile, `${JSON.stringify(manifest, null, 2)}\n`)
  await loadDashboard(dirs)
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  buildDashboard().then(() => {
    console.log(`dashboard: built ${path.relative(process.cwd(), DASHBOARD_DIRS.build) || '.'}`)
  }, (err: unknown) => {
    console.error(err instanceof BuildError ? `dashboard: build failed:\n${err.message}` : err)
    process.exitCode = 1
  })
}
