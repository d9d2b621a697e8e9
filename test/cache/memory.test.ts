import t from 'tap'
import { HEAP_OVERHEAD_MIB, heapLimitMiB, heapSizeGiven } from '../../src/cache/memory.js'

t.test('heapLimitMiB: the cache share in MiB, rounded up, + HEAP_OVERHEAD_MIB', async (t) => {
  t.equal(heapLimitMiB(32 * 1024 * 1024), 32 + HEAP_OVERHEAD_MIB)
  t.equal(heapLimitMiB(32 * 1024 * 1024 + 1), 33 + HEAP_OVERHEAD_MIB)
  t.equal(heapLimitMiB(1024), 1 + HEAP_OVERHEAD_MIB)
})

t.test('heapSizeGiven: --max-old-space-size on the command line or in NODE_OPTIONS, in any spelling V8 takes', async (t) => {
  t.equal(heapSizeGiven([], undefined), false)
  t.equal(heapSizeGiven(['--import', 'tsx'], '--enable-source-maps'), false)
  t.equal(heapSizeGiven(['--max-old-space-size=512'], undefined), true)
  t.equal(heapSizeGiven(['--max_old_space_size=512'], undefined), true)
  t.equal(heapSizeGiven([], '--enable-source-maps  --max-old-space-size=256'), true)
  t.equal(heapSizeGiven(['--max-old-space-size-x=1'], ''), false, 'another flag')
  t.equal(heapSizeGiven(['--max-semi-space-size=16'], undefined), false)
})
