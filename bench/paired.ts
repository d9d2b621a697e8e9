// The pure parts of bench/pair.ts: its command line and its summary. Apart
// from it so that a test can import them without starting a benchmark.

import { resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { intOption, selectNames, UsageError } from './options.js'
import { spread } from './peers.js'
import type { Spread } from './peers.js'

export const PAIR_SCENARIOS = ['pass', 'tls', 'h2', 'hit'] as const
export type PairScenario = typeof PAIR_SCENARIOS[number]

export interface PairOptions {
  /** The two Switchyard entry points, absolute. */
  readonly mainA: string
  readonly mainB: string
  readonly scenario: PairScenario
  readonly rounds: number
  readonly durationSec: number
  readonly warmupSec: number
  /** wrk connections per side (h2 uses its own fixed shape). */
  readonly connections: number
  /** Flags for node itself, per side (`--args-a '--max-semi-space-size=64'`). */
  readonly argsA: readonly string[]
  readonly argsB: readonly string[]
  /** Both sides write Switchyard's default JSON access log (to their log file). */
  readonly accessLog: boolean
  readonly help: boolean
}

export const PAIR_USAGE = `usage: node dist/bench/pair.js <mainA.js> <mainB.js> [options]
       npm run bench:pair -- <mainA.js> <mainB.js> [options]
  <mainA.js> <mainB.js>  Switchyard entry points (e.g. dist/src/main.js of two checkouts)
  --scenario <s>         ${PAIR_SCENARIOS.join(' | ')} (default pass)
  --rounds <n>           rounds, fresh processes each (default 6)
  --duration <s>         measured seconds per round (default 3)
  --warmup <s>           unmeasured seconds of load per round (default 2, 0 = none)
  --connections <n>      wrk connections per side (default 25; h2 is always h2load -c 5 -m 10)
  --args-a '<args>'      node flags for A, split on spaces (e.g. '--max-semi-space-size=64')
  --args-b '<args>'      node flags for B
  --access-log           both sides write the default JSON access log (default off, as in npm run bench)
  --help`

const ARG_FLAGS = new Set(['--args-a', '--args-b'])

/** Node flags as typed in one shell word: split on whitespace (no quoting inside). */
export function splitNodeArgs (raw: string | undefined): string[] {
  return raw === undefined ? [] : raw.split(/\s+/).filter((s) => s !== '')
}

/**
 * The command line, paths resolved against `cwd`. A UsageError says what is
 * wrong. `--args-a --foo` is read as `--args-a=--foo`: parseArgs would
 * otherwise refuse a value that starts with a dash, which every node flag does.
 */
export function parsePairOptions (argv: readonly string[], cwd: string): PairOptions {
  const args: string[] = []
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] ?? ''
    const next = argv[i + 1]
    if (ARG_FLAGS.has(a) && next !== undefined) {
      args.push(`${a}=${next}`)
      i++
    } else {
      args.push(a)
    }
  }
  const { values, positionals } = readArgs(args)
  const help = values.help === true
  if (!help && positionals.length !== 2) {
    throw new UsageError(`expected two Switchyard entry points (A and B), got ${positionals.length}${positionals.length > 0 ? `: ${positionals.join(' ')}` : ''}`)
  }
  return {
    mainA: resolve(cwd, positionals[0] ?? ''),
    mainB: resolve(cwd, positionals[1] ?? ''),
    scenario: oneScenario(values.scenario),
    rounds: intOption('rounds', values.rounds, 1),
    durationSec: intOption('duration', values.duration, 1),
    warmupSec: intOption('warmup', values.warmup, 0),
    connections: intOption('connections', values.connections, 1),
    argsA: splitNodeArgs(values['args-a']),
    argsB: splitNodeArgs(values['args-b']),
    accessLog: values['access-log'] === true,
    help
  }
}

function readArgs (args: string[]) {
  try {
    return parseArgs({
      args,
      options: {
        scenario: { type: 'string', default: 'pass' },
        rounds: { type: 'string', default: '6' },
        duration: { type: 'string', default: '3' },
        warmup: { type: 'string', default: '2' },
        connections: { type: 'string', default: '25' },
        'args-a': { type: 'string' },
        'args-b': { type: 'string' },
        'access-log': { type: 'boolean', default: false },
        help: { type: 'boolean', default: false }
      },
      strict: true,
      allowPositionals: true
    })
  } catch (err) {
    // parseArgs throws a TypeError for an unknown flag or a missing value.
    throw new UsageError(err instanceof Error ? err.message : String(err))
  }
}

function oneScenario (raw: string): PairScenario {
  const s = selectNames('scenario', raw, PAIR_SCENARIOS)
  if (s.length !== 1 || s[0] === undefined) throw new UsageError(`--scenario takes one of ${PAIR_SCENARIOS.join(', ')}, got ${JSON.stringify(raw)}`)
  return s[0]
}

/** CPU-µs per request; null when nothing was served or the CPU is unknown. */
export function usPerRequest (cpuSeconds: number | null, requests: number): number | null {
  if (cpuSeconds === null || !Number.isFinite(cpuSeconds) || cpuSeconds < 0 || !(requests > 0)) return null
  return cpuSeconds * 1e6 / requests
}

/** One round's two costs; null for a side that was not measured. */
export interface RoundCost { readonly aUs: number | null, readonly bUs: number | null }

export interface PairSummary {
  /** Median (and range) of each side's µs per request over the rounds. */
  readonly a: Spread | null
  readonly b: Spread | null
  /** Median and range of the per-round B/A: each ratio comes from one shared window, so host noise cancels within it. */
  readonly ratio: Spread | null
  /** Each round's B/A, null where a side is missing. */
  readonly ratios: ReadonlyArray<number | null>
}

/** B/A of one round, or null. */
export function roundRatio (r: RoundCost): number | null {
  return r.aUs === null || r.bUs === null || !(r.aUs > 0) ? null : r.bUs / r.aUs
}

/**
 * The median of the per-round ratios, not the ratio of the medians: the
 * medians of A and B may come from different rounds, hence different noise.
 */
export function summarizePair (rounds: readonly RoundCost[]): PairSummary {
  const ratios = rounds.map(roundRatio)
  return {
    a: spread(rounds.map((r) => r.aUs)),
    b: spread(rounds.map((r) => r.bUs)),
    ratio: spread(ratios),
    ratios
  }
}
