// recordUs against hdr-histogram-js's own recordValue: the same histogram for
// every value a latency can take, at every bucket edge.
import * as hdr from 'hdr-histogram-js'
import t from 'tap'
import { newHistogram, recordUs, toMicros } from '../../../src/admin/metrics/latency.js'

t.test('recordUs counts every value in the slot recordValue counts it in', async (t) => {
  const values: number[] = [0, 1, 2, 3, 999, 1000, 1023, 1024, 1025, 2047, 2048, 2049, 4095, 4096, 4097]
  for (let p = 11; p <= 25; p++) for (const d of [-1, 0, 1]) values.push(2 ** p + d)
  let seed = 12345
  const random = (): number => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed / 2 ** 31 }
  for (let i = 0; i < 20000; i++) values.push(toMicros(Math.exp(random() * Math.log(60_000)))) // 1 µs .. 60 s, log-spread
  values.push(toMicros(60_000), toMicros(120_000))
  const ours = newHistogram()
  const theirs = newHistogram()
  for (const v of values) {
    recordUs(ours, v)
    theirs.recordValue(v)
  }
  t.equal(ours.totalCount, values.length)
  t.equal(ours.totalCount, theirs.totalCount)
  t.equal(ours.maxValue, theirs.maxValue)
  t.equal(ours.minNonZeroValue, theirs.minNonZeroValue)
  for (const q of [1, 10, 50, 90, 99, 99.9, 99.99, 100]) t.equal(ours.getValueAtPercentile(q), theirs.getValueAtPercentile(q), `p${q}`)
  t.equal(hdr.encodeIntoCompressedBase64(ours), hdr.encodeIntoCompressedBase64(theirs), 'the same counts everywhere')
})

t.test('a value past the histogram fails as recordValue fails', async (t) => {
  const h = newHistogram()
  t.throws(() => recordUs(h, 2 ** 30), /outside of histogram covered range/)
  t.equal(h.totalCount, 0)
})
