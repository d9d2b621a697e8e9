import t from 'tap'
import { WaitQueue } from '../../src/upstream/queue.js'

const item = (id: number) => ({ id, queued: false })

t.test('FIFO order, bounded, and removal from the middle', async (t) => {
  const q = new WaitQueue<ReturnType<typeof item>>(3)
  const [a, b, c, d] = [item(1), item(2), item(3), item(4)]
  t.ok(q.push(a)); t.ok(q.push(b)); t.ok(q.push(c))
  t.notOk(q.push(d), 'full at max')
  t.equal(d.queued, false)
  q.remove(b)
  t.equal(q.size, 2)
  t.equal(b.queued, false)
  t.ok(q.push(d), 'room again after a removal')
  t.same([q.shift()?.id, q.shift()?.id, q.shift()?.id, q.shift()], [1, 3, 4, undefined])
  t.equal(q.size, 0)
  q.remove(a) // not queued: no effect
  t.equal(q.size, 0)
})

t.test('iteration is oldest first, and a waiter may be removed while it runs', async (t) => {
  const q = new WaitQueue<ReturnType<typeof item>>(5)
  const all = [item(1), item(2), item(3), item(4)]
  for (const x of all) q.push(x)
  const seen: number[] = []
  for (const x of q) {
    seen.push(x.id)
    if (x.id % 2 === 0) q.remove(x)
    if (x.id === 1) q.remove(all[2]!) // one not reached yet
  }
  t.same(seen, [1, 2, 4])
  t.same([...q].map((x) => x.id), [1], 'the ones left keep their order')
})

t.test('long runs stay correct across compaction', async (t) => {
  const q = new WaitQueue<ReturnType<typeof item>>(10_000)
  let next = 0
  let expected = 0
  for (let round = 0; round < 50; round++) {
    for (let i = 0; i < 100; i++) q.push(item(next++))
    for (let i = 0; i < 90; i++) {
      const got = q.shift()
      if (got?.id !== expected++) return t.fail(`expected ${expected - 1}, got ${got?.id}`)
    }
  }
  t.equal(q.size, 500)
})
