import t from 'tap'
import { FRESH_SLOT, RESTART_POLICY, nextRestart, type SlotHistory } from '../../src/cluster/restart.js'

t.test('a worker that ran past stableMs is replaced at once and resets the back-off', async (t) => {
  const d = nextRestart(RESTART_POLICY, { quickExits: 7 }, RESTART_POLICY.stableMs)
  t.equal(d.delayMs, 0)
  t.same(d.history, FRESH_SLOT)
})

t.test('the first quick exit is replaced at once; a loop backs off, doubling to the cap', async (t) => {
  let h: SlotHistory = FRESH_SLOT
  const delays: number[] = []
  for (let i = 0; i < 10; i++) {
    const d = nextRestart(RESTART_POLICY, h, 50)
    delays.push(d.delayMs)
    h = d.history
  }
  t.same(delays, [0, 100, 200, 400, 800, 1600, 3200, 6400, 10_000, 10_000])
  t.equal(h.quickExits, 10)
})

t.test('the cap holds however long the loop runs', async (t) => {
  const d = nextRestart(RESTART_POLICY, { quickExits: 10_000 }, 0)
  t.equal(d.delayMs, RESTART_POLICY.maxDelayMs)
  t.ok(Number.isFinite(d.delayMs))
})

t.test('a stable worker after a loop starts the count again', async (t) => {
  const looped = nextRestart(RESTART_POLICY, { quickExits: 5 }, 10)
  t.equal(looped.delayMs, 1600)
  const stable = nextRestart(RESTART_POLICY, looped.history, 60_000)
  t.equal(stable.delayMs, 0)
  const next = nextRestart(RESTART_POLICY, stable.history, 10)
  t.equal(next.delayMs, 0, 'first quick exit after a stable run is not a loop')
})
