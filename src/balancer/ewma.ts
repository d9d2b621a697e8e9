// Peak-EWMA latency (Finagle / linkerd): a spike is taken at once, a recovery
// is averaged in; and the cost decays toward zero while a server is not
// picked, so a server that was slow once is tried again and never starved.
// Pure arithmetic on numbers kept on the Server record.

/** Cost after observing `rtt` ms at `now` (ms), given the previous cost and its time. */
export function peakEwmaObserve (cost: number, stamp: number, rtt: number, now: number, decay: number): number {
  if (rtt >= cost) return rtt
  const w = Math.exp(-Math.max(0, now - stamp) / decay)
  return cost * w + rtt * (1 - w)
}

/** The cost as seen at `now`: decayed since the last observation. */
export function peakEwmaCurrent (cost: number, stamp: number, now: number, decay: number): number {
  if (cost === 0) return 0
  return cost * Math.exp(-Math.max(0, now - stamp) / decay)
}
