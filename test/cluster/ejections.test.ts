// Ejections across a cluster's processes, with hand-driven timers: another
// worker's ejection is lifted by its "back" or by its own expiry, whichever
// comes first (the worker that decided may die before it says "back"); the
// primary's table gives a booting worker what is still in force.
import t from 'tap'
import { parseConfig } from '../../src/config/load.js'
import { ejectionRank, EjectionTable, RemoteEjections, type EjectionNotice } from '../../src/cluster/ejections.js'
import type { EjectionListener } from '../../src/health/outlier.js'
import { allServers, buildState, type RuntimeState } from '../../src/proxy/state.js'
import { sendNothing } from '../../src/upstream/pool.js'
import type { Server } from '../../src/upstream/server.js'

function state (onEjection?: EjectionListener): RuntimeState {
  return buildState(parseConfig(`
admin: false
listeners: [{ name: web, bind: "127.0.0.1:0" }]
routes: [{ name: all, backend: app }]
backends:
  app:
    outlierDetection: {}
    servers:
      - { name: s1, url: "http://127.0.0.1:9001" }
      - { name: s2, url: "http://127.0.0.1:9002" }
`, 'ejections.yaml', { checkFiles: false }), { dispatcher: sendNothing, ...(onEjection === undefined ? {} : { onEjection }) })
}

function named (st: RuntimeState, name: string): Server {
  const s = allServers(st).find((x) => x.name === name)
  if (s === undefined) throw new Error(name)
  return s
}

const notice = (server: string, ejected: boolean, ms = 0): EjectionNotice =>
  ({ backend: 'app', shard: 'default', server, ejected, reason: ejected ? 'consecutive 5xx: 5' : 'ejection ended, on probation', ms })

/** Timers fired by hand. */
class Timers {
  readonly pending = new Map<number, { fn: () => void, ms: number }>()
  #next = 1
  readonly deps = {
    setTimeout: (fn: () => void, ms: number) => { const id = this.#next++; this.pending.set(id, { fn, ms }); return id },
    clearTimeout: (h: unknown) => { this.pending.delete(h as number) }
  }

  fireAll (): void {
    for (const [id, p] of [...this.pending]) {
      this.pending.delete(id)
      p.fn()
    }
  }
}

t.test('another worker\'s ejection ends on its own time when no "back" comes (the deciding worker died)', async (t) => {
  const st = state()
  const timers = new Timers()
  const remote = new RemoteEjections(timers.deps)
  const s1 = named(st, 's1')
  remote.apply(st, notice('s1', true, 30_000))
  t.equal(s1.ejected, true, 'ejected here too')
  t.notOk(s1.healthy)
  t.same([...timers.pending.values()].map((p) => p.ms), [30_000], 'for the time the deciding worker ejected it')
  timers.fireAll()
  t.equal(s1.ejected, false, 'back when that time is over')
  t.equal(remote.size, 0)
  remote.apply(st, notice('s1', false))
  t.equal(s1.ejected, false, 'a late "back" changes nothing')
})

t.test('a "back" before the expiry lifts it and cancels the timer', async (t) => {
  const st = state()
  const timers = new Timers()
  const remote = new RemoteEjections(timers.deps)
  remote.apply(st, notice('s1', true, 30_000))
  remote.apply(st, notice('s1', false))
  t.equal(named(st, 's1').ejected, false)
  t.equal(timers.pending.size, 0, 'no timer left to fire later')
})

t.test('an ejection this worker decided is its own: another\'s "back" or expiry does not lift it', async (t) => {
  const st = state()
  const timers = new Timers()
  const remote = new RemoteEjections(timers.deps)
  const s2 = named(st, 's2')
  s2.setEjected(true, 'consecutive 5xx: 5') // this worker's detector
  remote.apply(st, notice('s2', true, 30_000))
  remote.apply(st, notice('s2', false))
  t.equal(s2.ejected, true, 'still out')

  // Held on another's word, then this worker's own detector decides about it: the other's timer is dropped.
  const s1 = named(st, 's1')
  remote.apply(st, notice('s1', true, 30_000))
  remote.forget(s1)
  timers.fireAll()
  t.equal(s1.ejected, true, 'the expired remote timer does not lift what is now this worker\'s ejection')
})

t.test('clear (a reload) cancels every timer', async (t) => {
  const st = state()
  const timers = new Timers()
  const remote = new RemoteEjections(timers.deps)
  remote.apply(st, notice('s1', true, 30_000))
  remote.clear()
  t.equal(timers.pending.size, 0)
  t.equal(remote.size, 0)
})

t.test('the primary\'s table: what is in force, with the time it has left', async (t) => {
  let now = 1000
  const table = new EjectionTable(() => now)
  table.record(notice('s1', true, 30_000))
  table.record(notice('s2', true, 10_000))
  now += 4000
  t.same(table.snapshot().map((n) => [n.server, n.ms]), [['s1', 26_000], ['s2', 6000]])
  table.record(notice('s2', false))
  t.same(table.snapshot().map((n) => n.server), ['s1'], 'a "back" removes it')
  now += 26_000
  t.same(table.snapshot(), [], 'an expired one is left out, even without a "back"')
  table.record(notice('s1', true, 30_000))
  table.clear()
  t.same(table.snapshot(), [], 'a reload clears it')

  // A booting worker applies the snapshot as another's ejections: they end on time there too.
  table.record(notice('s2', true, 5000))
  const st = state()
  const timers = new Timers()
  const remote = new RemoteEjections(timers.deps)
  for (const n of table.snapshot()) remote.apply(st, n)
  t.equal(named(st, 's2').ejected, true)
  t.same([...timers.pending.values()].map((p) => p.ms), [5000])
})

t.test('an ejection crossing another worker\'s past the cap: the one ranked later is undone by its own worker', async (t) => {
  const told: string[] = []
  const st = state((server, ejected) => {
    told.push(`${server.name} ${ejected ? 'out' : 'back'}`)
    return ejected ? 2_000 : undefined
  })
  const remote = new RemoteEjections(new Timers().deps)
  const s1 = named(st, 's1')
  const s2 = named(st, 's2')
  const backend = st.backends.get('app')!
  for (let i = 0; i < 5; i++) backend.observe(s2, '5xx')
  t.equal(s2.ejected, true, 'this worker ejected s2 (rank 2000), 1 of 2 within 50%')
  // The other worker ejected s1 first (rank 1000), before either heard of the other: worker.ts applyRemote.
  const applied = remote.apply(st, { ...notice('s1', true, 30_000), rank: 1_000 })
  t.equal(applied, s1)
  backend.contest(applied!, 1_000)
  t.same([s1.ejected, s2.ejected], [true, false], 'one of the two out, as one process would have it')
  t.same(told, ['s2 out', 's2 back'], 'and the others are told s2 is back')
  t.equal(remote.apply(st, notice('s1', false)), undefined, 'a "back" puts nothing out')
  t.ok(ejectionRank(1) < ejectionRank(2) + 1024 && ejectionRank(2) % 1024 === 2, 'ranks: the clock first, the worker id breaks ties')
})
