import { mkdirSync, writeFileSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { autoWorkers, cgroupCpuQuota } from '../../src/cluster/cpus.js'

t.test('cgroup v2 cpu.max: quota / period, rounded down (as libuv), at least 1; max is no quota', async (t) => {
  t.equal(cgroupCpuQuota('200000 100000\n'), 2)
  t.equal(cgroupCpuQuota('250000 100000'), 2, '2.5 CPUs: two workers, as Node 22\'s availableParallelism() says')
  t.equal(cgroupCpuQuota('50000 100000'), 1, 'under one CPU: still one worker')
  t.equal(cgroupCpuQuota('max 100000\n'), undefined)
  t.equal(cgroupCpuQuota('garbage'), undefined)
  t.equal(cgroupCpuQuota('0 100000'), undefined)
})

t.test('cgroup v1: cfs_quota_us / cfs_period_us; -1 is no quota; v2 wins when both are there', async (t) => {
  t.equal(cgroupCpuQuota(undefined, '300000\n', '100000\n'), 3)
  t.equal(cgroupCpuQuota(undefined, '-1\n', '100000\n'), undefined)
  t.equal(cgroupCpuQuota(undefined, '300000', undefined), undefined)
  t.equal(cgroupCpuQuota('100000 100000', '400000', '100000'), 1)
  t.equal(cgroupCpuQuota('max 100000', '400000', '100000'), undefined, 'v2 says none: v1 files are not read over it')
})

t.test('workers: auto reads the cgroup files: the available CPUs, capped by the quota', async (t) => {
  const cpus = availableParallelism()
  const none = t.testdir({})
  t.equal(autoWorkers(none), cpus, 'no cgroup files: the CPUs')
  const v2 = t.testdir({ 'cpu.max': '100000 100000\n' })
  t.equal(autoWorkers(v2), 1, 'a one-CPU limit: one worker')
  const wide = t.testdir({ 'cpu.max': `${(cpus + 8) * 100000} 100000\n` })
  t.equal(autoWorkers(wide), cpus, 'a limit above the CPUs: the CPUs')
  const v1 = t.testdir({})
  mkdirSync(join(v1, 'cpu'))
  writeFileSync(join(v1, 'cpu', 'cpu.cfs_quota_us'), '100000\n')
  writeFileSync(join(v1, 'cpu', 'cpu.cfs_period_us'), '100000\n')
  t.equal(autoWorkers(v1), 1, 'cgroup v1 alike')
})
