// entrySize against what an entry really costs: bench/entry-cost.ts in a
// child Node with --expose-gc (heap and ArrayBuffer deltas after full GCs
// over a few thousand entries built as the proxy builds them). Whatever the
// shape, counted >= real, so a full cache never holds more than maxBytes.
// Sizes only: no timing decides pass or fail.
import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { nodeArgs } from '../helpers/entry.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))

interface Cost { realPerEntry: number, countedPerEntry: number, heapPerEntry: number, arrayBuffersPerEntry: number, stored: number }

function measure (body: number, vary: boolean): Promise<Cost> {
  const env = { ...process.env }
  delete env.NODE_OPTIONS
  const argv = ['--expose-gc', ...nodeArgs('bench/entry-cost.ts'), '--json', '--entries', '4000', '--body', String(body)]
  if (vary) argv.push('--vary')
  return new Promise((resolve, reject) => {
    execFile(process.execPath, argv, { cwd: ROOT, env, timeout: 60_000 }, (err, stdout, stderr) => {
      if (err !== null) reject(new Error(`${err.message}\n${stderr}`))
      else resolve(JSON.parse(stdout) as Cost)
    })
  })
}

for (const [body, vary] of [[0, false], [200, false], [2048, false], [2048, true], [16384, false]] as const) {
  t.test(`a ${body}-byte body${vary ? ' with Vary and Cache-Tag' : ''}: entrySize >= the real cost`, async (t) => {
    const c = await measure(body, vary)
    t.equal(c.stored, 4001, 'every entry stored')
    t.ok(c.countedPerEntry >= c.realPerEntry,
      `counted ${c.countedPerEntry} B >= real ${c.realPerEntry} B (heap ${c.heapPerEntry} + array buffers ${c.arrayBuffersPerEntry})`)
    // A few bytes of noise from other small buffers; a kept pool slab would be kilobytes.
    t.ok(c.arrayBuffersPerEntry <= body + 16, `array buffers ${c.arrayBuffersPerEntry} B a ${body}-byte body: nothing of a bigger buffer kept`)
  })
}
