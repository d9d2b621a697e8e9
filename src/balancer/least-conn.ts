// Weighted least connections (HAProxy lb_fwlc.c) with power of two choices
// on large shards (Envoy least_request). The load of a server is HAProxy's
// fwlc key: 0 when idle, else (active + 1) / weight, so idle servers always
// come first and, once busy, a server is ranked by its load *after* it takes
// this request, which keeps weights accurate at low concurrency. Ties go to
// whichever comes first from a start offset that rotates on every pick, so
// equally loaded servers take turns. Above `choiceThreshold` servers a pick
// looks at two random eligible servers instead of all of them (Mitzenmacher's
// power of two choices: O(1), and almost as good as the full scan).
import type { Server } from '../upstream/server.js'
import { LowestScore } from './lowest-score.js'
import { num } from './pick.js'

export class LeastConn extends LowestScore {
  protected readonly metric = 'load ((active + 1) / weight)'

  constructor (servers: readonly Server[], choiceThreshold: number) {
    super(servers, Math.max(2, choiceThreshold))
  }

  /** HAProxy fwlc key: 0 when idle, else (active + 1) / effective weight. */
  score (s: Server, now: number): number {
    return s.active === 0 ? 0 : (s.active + 1) / s.effectiveWeight(now)
  }

  protected describe (s: Server, now: number): string {
    return s.active === 0 ? 'idle: load 0' : `load (${s.active}+1)/${num(s.effectiveWeight(now))} = ${num(this.score(s, now))}`
  }
}
