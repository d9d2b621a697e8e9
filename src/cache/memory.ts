// How much memory a cache of maxBytes needs, and V8's heap sized from it.
// Startup code (main.ts) reads these; nothing on the request path does.

const MiB = 1024 * 1024

/**
 * What one Switchyard process holds besides its share of cache.maxBytes:
 * Node and V8 themselves (about 95 MiB idle with the dashboard, TLS and
 * metrics loaded), sockets and their buffers, V8's young generation, garbage
 * not yet collected, and malloc's fragmentation around freed bodies. README
 * states it: RSS stays within maxBytes (a worker's share) + this, per
 * process. Measured with npm run bench:memory (10x maxBytes of distinct 2 KiB
 * responses): 32 MiB levels at about 165 MiB RSS, 128 MiB at about 290 MiB.
 */
export const MEMORY_OVERHEAD_BYTES = 192 * MiB

/**
 * V8 old space beyond the cache's own heap part: everything that is not the
 * cache. A ceiling, not a target: a larger one did not raise RSS in the
 * benchmark, a smaller one would risk running out under load.
 */
export const HEAP_OVERHEAD_MIB = 128

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
