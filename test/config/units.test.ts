import t from 'tap'
import {
  DURATION_FORMS, MAX_DURATION_MS, SIZE_FORMS, formatDuration, formatSize, parseDuration, parsePercent, parseSize
} from '../../src/config/units.js'

t.test('durations become milliseconds', async (t) => {
  const cases: Array<[unknown, number]> = [
    ['500ms', 500],
    ['2s', 2000],
    ['1m', 60_000],
    ['1h', 3_600_000],
    ['1m30s', 90_000],
    ['1h2m3s4ms', 3_723_004],
    ['1.5s', 1500],
    ['0s', 0],
    ['0', 0],
    [0, 0]
  ]
  for (const [input, ms] of cases) t.equal(parseDuration(input), ms, String(input))
})

t.test('bad durations are refused', async (t) => {
  const bad: unknown[] = [
    '', '5', 5, -1, '1s1m', '1s1s', '5 sec', '-1s', '0.5ms', 'ms', '1d', '1S', ' 1s', '1s ', '1.s',
    null, true, [], {}
  ]
  for (const input of bad) t.equal(parseDuration(input), undefined, JSON.stringify(input))
})

t.test('the duration limit is a separate constant the validator applies', async (t) => {
  t.equal(MAX_DURATION_MS, 2147483647)
  t.equal(parseDuration('597h'), 597 * 3_600_000, 'parsing itself does not cap')
})

t.test('sizes become bytes', async (t) => {
  const cases: Array<[unknown, number]> = [
    ['512B', 512],
    ['16KiB', 16_384],
    ['64MiB', 67_108_864],
    ['1GiB', 1_073_741_824],
    ['10KB', 10_000],
    ['10MB', 10_000_000],
    ['1GB', 1_000_000_000],
    ['1.5MiB', 1_572_864],
    [1024, 1024],
    ['1024', 1024],
    [0, 0]
  ]
  for (const [input, bytes] of cases) t.equal(parseSize(input), bytes, String(input))
})

t.test('bad sizes are refused', async (t) => {
  const bad: unknown[] = ['', '1.5', -1, 1.5, '10kb', '10 MiB', 'MiB', '1TiB', '0.5B', '-1KiB', true, null, [], Infinity]
  for (const input of bad) t.equal(parseSize(input), undefined, JSON.stringify(input))
})

t.test('the accepted forms are spelled out for messages', async (t) => {
  for (const form of ['500ms', '2s', '1m', '1h', '1m30s']) t.ok(DURATION_FORMS.includes(form), form)
  for (const form of ['512B', '16KiB', '64MiB', '1GiB', '10KB', '10MB', 'plain number of bytes']) t.ok(SIZE_FORMS.includes(form), form)
})

t.test('percentages: the number before the sign', async (t) => {
  t.equal(parsePercent('20%'), 20)
  t.equal(parsePercent('0%'), 0)
  t.equal(parsePercent('12.5%'), 12.5)
  t.equal(parsePercent('150%'), 150, 'ranges are the caller\'s business')
  for (const bad of ['20', 20, '20 %', '%', '-5%', '.5%', '5%%', '', null]) t.equal(parsePercent(bad), undefined, JSON.stringify(bad))
})

t.test('durations are written back in the form they are read', async (t) => {
  const cases: Array<[number, string]> = [[0, '0s'], [500, '500ms'], [1000, '1s'], [1500, '1s500ms'], [90_000, '1m30s'], [300_000, '5m'], [3_723_004, '1h2m3s4ms']]
  for (const [ms, text] of cases) {
    t.equal(formatDuration(ms), text)
    t.equal(parseDuration(text), ms, `${text} reads back`)
  }
})

t.test('sizes are written back in a form they are read: the largest exact unit', async (t) => {
  const cases: Array<[number, string]> = [
    [0, '0B'], [1, '1B'], [1000, '1KB'], [1024, '1KiB'], [1500, '1500B'], [1536, '1536B'],
    [64 * 1024 ** 2, '64MiB'], [10_000_000, '10MB'], [1024 ** 3, '1GiB'], [3 * 1000 ** 3, '3GB'], [2048 * 1024 ** 3, '2048GiB']
  ]
  for (const [bytes, text] of cases) {
    t.equal(formatSize(bytes), text)
    t.equal(parseSize(text), bytes, `${text} reads back`)
  }
})
