// Preloaded into Switchyard by bench/cache-memory.ts (`node --import <this>
// dist/src/main.js …`): every 250 ms, appends this process's memory as one
// JSON line to $SWITCHYARD_MEMORY_PROBE. Switchyard exposes no heap figures
// of its own, and /proc shows only RSS. Does nothing without the variable;
// the timer never keeps the process alive.

import { appendFileSync } from 'node:fs'
import { getHeapStatistics } from 'node:v8'

const file = process.env.SWITCHYARD_MEMORY_PROBE
if (file !== undefined && file !== '') {
  const limit = getHeapStatistics().heap_size_limit
  setInterval(() => {
    const m = process.memoryUsage()
    appendFileSync(file, JSON.stringify({ t: Date.now(), pid: process.pid, rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, arrayBuffers: m.arrayBuffers, limit }) + '\n')
  }, 250).unref()
}
