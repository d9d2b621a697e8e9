// CPU time of a process from /proc/<pid>/stat (Linux), to turn "requests per
// second" into "requests per second per core" for the proxy under test.

import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'

let ticksPerSecond: number | undefined

/** USER_HZ, the unit of utime/stime in /proc (almost always 100). */
export function clockTicks (): number {
  if (ticksPerSecond === undefined) {
    try {
      const n = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim())
      ticksPerSecond = Number.isFinite(n) && n > 0 ? n : 100
    } catch {
      ticksPerSecond = 100
    }
  }
  return ticksPerSecond
}

/** utime + stime of every thread of `pid`, in seconds; null when /proc is unavailable or the process is gone. */
export function processCpuSeconds (pid: number): number | null {
  let stat: string
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  } catch {
    return null
  }
  // The command name (field 2) is in parentheses and may contain spaces: split after the last ')'.
  // Then field 3 (state) is index 0, so utime (field 14) is index 11 and stime (field 15) index 12.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  const utime = Number(fields[11])
  const stime = Number(fields[12])
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) return null
  return (utime + stime) / clockTicks()
}

/** A CPU-time meter over a wall-clock window, for a child (by pid) or this process. */
export interface CpuMeter {
  /** CPU seconds ÷ wall seconds since the meter started: 1.0 = one full core. Null when not measurable. */
  stop (): { cpuSeconds: number, wallSeconds: number, share: number } | null
}

export function meterPid (pid: number | undefined): CpuMeter {
  const wall0 = process.hrtime.bigint()
  const cpu0 = pid === undefined ? null : processCpuSeconds(pid)
  return {
    stop () {
      if (pid === undefined || cpu0 === null) return null
      const cpu1 = processCpuSeconds(pid)
      if (cpu1 === null) return null
      const wallSeconds = Number(process.hrtime.bigint() - wall0) / 1e9
      const cpuSeconds = cpu1 - cpu0
      return { cpuSeconds, wallSeconds, share: cpuSeconds / wallSeconds }
    }
  }
}

/** One process's part of a `meterPids` window. */
export interface PidCpu {
  readonly pid: number
  readonly cpuSeconds: number
  readonly share: number
}

/**
 * The CPU of several processes summed over one window: a primary and its
 * workers, each of which /proc counts apart (a parent's utime excludes
 * children that are still running). Null when any of them cannot be read at
 * either end: one that exited took its CPU time with it, so a sum would be short.
 */
export function meterPids (pids: readonly number[]): { stop (): { cpuSeconds: number, wallSeconds: number, share: number, each: PidCpu[] } | null } {
  const wall0 = process.hrtime.bigint()
  const cpu0 = pids.map(processCpuSeconds)
  return {
    stop () {
      const cpu1 = pids.map(processCpuSeconds)
      const wallSeconds = Number(process.hrtime.bigint() - wall0) / 1e9
      const each: PidCpu[] = []
      for (let i = 0; i < pids.length; i++) {
        const a = cpu0[i]
        const b = cpu1[i]
        if (a === null || a === undefined || b === null || b === undefined) return null
        each.push({ pid: pids[i] ?? 0, cpuSeconds: b - a, share: (b - a) / wallSeconds })
      }
      if (each.length === 0) return null
      const cpuSeconds = each.reduce((n, p) => n + p.cpuSeconds, 0)
      return { cpuSeconds, wallSeconds, share: cpuSeconds / wallSeconds, each }
    }
  }
}

/** Same for the harness itself (autocannon runs in it), from process.cpuUsage(). */
export function meterSelf (): CpuMeter {
  const wall0 = process.hrtime.bigint()
  const cpu0 = process.cpuUsage()
  return {
    stop () {
      const d = process.cpuUsage(cpu0)
      const wallSeconds = Number(process.hrtime.bigint() - wall0) / 1e9
      const cpuSeconds = (d.user + d.system) / 1e6
      return { cpuSeconds, wallSeconds, share: cpuSeconds / wallSeconds }
    }
  }
}

/**
 * The harness plus the children it waited for during the window (utime,
 * stime, cutime and cstime of /proc/self/stat): autocannon in-process, or
 * wrk / h2load run as a child that has exited and been reaped by the time
 * stop() is called. Null off Linux.
 */
export function meterSelfAndReaped (): CpuMeter {
  const read = (): number | null => {
    try {
      const stat = readFileSync('/proc/self/stat', 'utf8')
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      const v = [f[11], f[12], f[13], f[14]].map(Number)
      return v.every(Number.isFinite) ? v.reduce((a, b) => a + b, 0) / clockTicks() : null
    } catch {
      return null
    }
  }
  const wall0 = process.hrtime.bigint()
  const cpu0 = read()
  return {
    stop () {
      const cpu1 = read()
      if (cpu0 === null || cpu1 === null) return null
      const wallSeconds = Number(process.hrtime.bigint() - wall0) / 1e9
      const cpuSeconds = cpu1 - cpu0
      return { cpuSeconds, wallSeconds, share: cpuSeconds / wallSeconds }
    }
  }
}

/** Busy CPU seconds of the whole machine (all CPUs) from /proc/stat; null off Linux. */
export function systemBusySeconds (): number | null {
  let stat: string
  try {
    stat = readFileSync('/proc/stat', 'utf8')
  } catch {
    return null
  }
  // cpu  user nice system idle iowait irq softirq steal guest guest_nice (guest is already inside user)
  const line = stat.slice(0, stat.indexOf('\n')).trim().split(/\s+/)
  if (line[0] !== 'cpu') return null
  const v = line.slice(1).map(Number)
  const busy = (v[0] ?? 0) + (v[1] ?? 0) + (v[2] ?? 0) + (v[5] ?? 0) + (v[6] ?? 0) + (v[7] ?? 0)
  return busy / clockTicks()
}

/** Machine-wide busy cores over a window (2.0 = both CPUs of a 2-CPU box fully busy). */
export function meterSystem (): CpuMeter {
  const wall0 = process.hrtime.bigint()
  const busy0 = systemBusySeconds()
  return {
    stop () {
      const busy1 = systemBusySeconds()
      if (busy0 === null || busy1 === null) return null
      const wallSeconds = Number(process.hrtime.bigint() - wall0) / 1e9
      const cpuSeconds = busy1 - busy0
      return { cpuSeconds, wallSeconds, share: cpuSeconds / wallSeconds }
    }
  }
}
