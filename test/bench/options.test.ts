import t from 'tap'
import { intOption, selectNames } from '../../bench/options.js'
import { usageError } from '../helpers/bench.js'

const KNOWN = ['direct', 'h1', 'one', 'two', 'one-pinned', 'two-pinned'] as const
const GROUPS = { workers: ['one', 'two', 'one-pinned', 'two-pinned'], 'workers-pinned': ['one-pinned', 'two-pinned'] } as const

t.test('names come back in the known order, each once, whatever was typed', async (t) => {
  t.same(selectNames('only', 'two, direct,two,,one', KNOWN), ['direct', 'one', 'two'])
})

t.test('a group stands for its names, and mixes with single names', async (t) => {
  t.same(selectNames('only', 'workers', KNOWN, GROUPS), ['one', 'two', 'one-pinned', 'two-pinned'])
  t.same(selectNames('only', 'workers-pinned,direct', KNOWN, GROUPS), ['direct', 'one-pinned', 'two-pinned'])
  t.same(selectNames('only', 'workers,one', KNOWN, GROUPS), ['one', 'two', 'one-pinned', 'two-pinned'])
})

t.test('an unknown name, or none at all, is a UsageError that says what is known', async (t) => {
  t.equal(usageError(() => selectNames('only', 'h1,h3', KNOWN, GROUPS)),
    '--only: unknown name(s) ["h3"]; known: direct, h1, one, two, one-pinned, two-pinned; groups: workers, workers-pinned')
  t.match(usageError(() => selectNames('only', ' , ', KNOWN)), /^--only: unknown name\(s\) \[\]; known: direct/)
  // Only the object's own keys are groups.
  t.match(usageError(() => selectNames('only', 'toString', KNOWN, GROUPS)), /unknown name\(s\) \["toString"\]/)
})

t.test('intOption accepts integers from min and names the flag otherwise', async (t) => {
  t.equal(intOption('duration', '10', 1), 10)
  t.equal(usageError(() => intOption('duration', '0', 1)), '--duration must be an integer >= 1, got "0"')
  t.match(usageError(() => intOption('duration', '1.5', 1)), /^--duration must be an integer/)
})
