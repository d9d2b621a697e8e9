// How much memory a cache of maxBytes needs, and V8's heap sized from it.
// Startup code (main.ts) reads these; nothing on the request path does.

const MiB = 1024 * 1024

/**
 * What one Switchyard process holds besides its share of cache.maxBytes:
 * Node and V8 themselves, the code, TLS, sockets and their buffers, and the
 * garbage a running GC has not collected yet. README states it: RSS stays
 * within maxBytes (a worker's share) + this, per process.
 */
export const MEMORY_OVERHEAD_BYTES = 128 * MiB

/** V8 old space beyond the cache's own heap part: everything that is not the cache. */
export const HEAP_OVERHEAD_MIB = 64

/**
 * --max-old-space-size (MiB) for a process holding `maxBytes` of cache:
 * all of it (bodies live outside the heap, but entrySize counts the heap
 * part with them) + HEAP_OVERHEAD_MIB.
 */
export function heapLimitMiB (maxBytes: number): number {
  return Math.ceil(maxBytes / MiB) + HEAP_OVERHEAD_MIB
}

/** Whether V8's old space size was chosen by whoever started Node (argv or NODE_OPTIONS). */
export function heapSizeGiven (execArgv: readonly string[], nodeOptions: string | undefined): boolean {
  const given = (a: string): boolean => /^--max[-_]old[-_]space[-_]size(=|$)/.test(a)
  return execArgv.some(given) || (nodeOptions ?? '').split(/\s+/).some(given)
}
