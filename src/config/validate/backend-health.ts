// A backend's health: active checks (`healthCheck`) and passive ones
// (`outlierDetection`). Part of the backends section (backends.ts calls it).
// Both blocks are off when absent, empty or `false`, and take every default
// when `true` or `{}`.

import { isSeq } from 'yaml'
import { DEFAULTS } from '../schema.js'
import type { HealthCheckConfig, OutlierDetectionConfig } from '../schema.js'
import type { Field, MapView, Reader } from '../reader.js'
import { formatDuration } from '../units.js'
import { isRequestPath, normalizeHostHeader } from '../forms.js'
import { type Context, duration, fraction, opt, optChecked, percent, toggle } from './common.js'

const KEYS = {
  healthCheck: ['type', 'service', 'path', 'method', 'host', 'interval', 'jitter', 'timeout', 'rise', 'fall', 'expectStatus', 'expectBody'],
  outlierDetection: ['consecutive5xx', 'consecutiveGatewayFailure', 'baseEjectionTime', 'maxEjectionTime', 'maxEjectionPercent']
} as const

const PROBE_METHODS = ['GET', 'HEAD'] as const

/** The backend's `healthCheck` block; undefined when off. */
export function readHealthCheck (ctx: Context, backend: MapView): HealthCheckConfig | undefined {
  const f = backend.get('healthCheck')
  return f === undefined ? undefined : healthCheck(ctx.r, f)
}

/** The backend's `outlierDetection` block; undefined when off. */
export function readOutlierDetection (ctx: Context, backend: MapView): OutlierDetectionConfig | undefined {
  const f = backend.get('outlierDetection')
  return f === undefined ? undefined : outlierDetection(ctx.r, f)
}

function healthCheck (r: Reader, f: Field): HealthCheckConfig | undefined {
  const m = toggle(r, f, KEYS.healthCheck)
  const d = DEFAULTS.backend.healthCheck
  if (m === true) return d
  if (m === false || m === undefined) return undefined
  const hostField = m.get('host')
  const hostText = hostField === undefined ? undefined : r.text(hostField)
  const host = hostText === undefined ? undefined : normalizeHostHeader(hostText)
  if (hostField !== undefined && hostText !== undefined && host === undefined) {
    r.expected(hostField, 'a Host header value: a host name or IP, with an optional port, like api.internal or 10.0.0.1:8080')
  }
  const type = opt(m, 'type', (v) => r.oneOf(v, ['http', 'grpc'] as const), d.type)
  const serviceField = m.get('service')
  const service = serviceField === undefined ? d.service : (r.string(serviceField) ?? d.service)
  if (type === 'grpc') {
    // The grpc.health.v1 request is fixed: none of the HTTP probe's request or verdict options apply.
    for (const key of ['path', 'method', 'host', 'expectStatus', 'expectBody']) {
      const k = m.get(key)
      if (k !== undefined) r.report(k.path, k.at, `\`${key}\` does not apply to \`type: grpc\` (its verdict is the Health/Check answer: SERVING is up)`)
    }
  } else if (serviceField !== undefined) {
    r.report(serviceField.path, serviceField.at, '`service` applies only to `type: grpc`')
  }
  const bodyField = m.get('expectBody')
  const expectBody = bodyField === undefined ? undefined : r.text(bodyField)
  const interval = optChecked(m, 'interval', (v) => duration(r, v, 1), d.interval)
  const timeout = optChecked(m, 'timeout', (v) => duration(r, v, 1), d.timeout)
  // A probe still running when the next one is due would overlap it.
  compare(r, m, { key: 'timeout', value: timeout }, 'shorter than', { key: 'interval', value: interval })
  const method = opt(m, 'method', (v) => probeMethod(r, v), d.method)
  // A HEAD answer has no body, so a body check could never pass.
  if (method === 'HEAD' && bodyField !== undefined && expectBody !== undefined) {
    r.expected(bodyField, 'no `expectBody` with `method: HEAD` (a HEAD answer has no body); use GET')
  }
  return {
    type,
    service,
    path: opt(m, 'path', (v) => requestPath(r, v), d.path),
    method,
    ...(host === undefined ? {} : { host }),
    interval: interval ?? d.interval,
    jitter: opt(m, 'jitter', (v) => fraction(r, v), d.jitter),
    timeout: timeout ?? d.timeout,
    rise: opt(m, 'rise', (v) => r.integer(v, 1), d.rise),
    fall: opt(m, 'fall', (v) => r.integer(v, 1), d.fall),
    expectStatus: opt<HealthCheckConfig['expectStatus']>(m, 'expectStatus', (v) => expectStatus(r, v), d.expectStatus),
    ...(expectBody === undefined ? {} : { expectBody })
  }
}

function requestPath (r: Reader, f: Field): string | undefined {
  const s = r.text(f)
  if (s === undefined) return undefined
  return isRequestPath(s) ? s : r.expected(f, 'a path starting with `/` (visible ASCII, no spaces or `#`; a query is fine)')
}

/** GET or HEAD, in any case (as route methods are). */
function probeMethod (r: Reader, f: Field): HealthCheckConfig['method'] | undefined {
  const s = r.text(f)
  if (s === undefined) return undefined
  const upper = s.toUpperCase()
  const method = PROBE_METHODS.find((x) => x === upper)
  return method ?? r.expected(f, `one of ${PROBE_METHODS.join(', ')}`)
}

/** `200`, `"200-399"`, or a list of those. */
function expectStatus (r: Reader, f: Field): Array<[number, number]> | undefined {
  if (!isSeq(f.node)) {
    const range = statusRange(r, f)
    return range === undefined ? undefined : [range]
  }
  const items = r.seq(f) ?? []
  if (items.length === 0) {
    r.report(f.path, f.at, 'at least one status or range is required')
    return undefined
  }
  const out: Array<[number, number]> = []
  let ok = true
  for (const item of items) {
    const range = statusRange(r, item)
    if (range === undefined) ok = false
    else out.push(range)
  }
  return ok ? out : undefined
}

function statusRange (r: Reader, f: Field): [number, number] | undefined {
  const v = r.scalar(f)
  const m = typeof v === 'string' ? /^(\d+)(?:-(\d+))?$/.exec(v) : null
  let lo: number
  let hi: number
  if (typeof v === 'number' && Number.isInteger(v)) {
    lo = hi = v
  } else if (m !== null) {
    lo = Number(m[1])
    hi = Number(m[2] ?? m[1])
  } else {
    return r.expected(f, 'a status like 200 or a range like 200-399')
  }
  if (lo < 100 || hi > 599) return r.expected(f, 'status codes from 100 to 599')
  if (lo > hi) return r.expected(f, `a range from low to high, like ${hi}-${lo}`)
  return [lo, hi]
}

function outlierDetection (r: Reader, f: Field): OutlierDetectionConfig | undefined {
  const m = toggle(r, f, KEYS.outlierDetection)
  const d = DEFAULTS.backend.outlierDetection
  if (m === true) return d
  if (m === false || m === undefined) return undefined
  const base = optChecked(m, 'baseEjectionTime', (v) => duration(r, v, 1), d.baseEjectionTime)
  const max = optChecked(m, 'maxEjectionTime', (v) => duration(r, v, 1), d.maxEjectionTime)
  compare(r, m, { key: 'maxEjectionTime', value: max }, 'at least', { key: 'baseEjectionTime', value: base })
  return {
    consecutive5xx: opt(m, 'consecutive5xx', (v) => r.integer(v, 0), d.consecutive5xx),
    consecutiveGatewayFailure: opt(m, 'consecutiveGatewayFailure', (v) => r.integer(v, 0), d.consecutiveGatewayFailure),
    baseEjectionTime: base ?? d.baseEjectionTime,
    maxEjectionTime: max ?? d.maxEjectionTime,
    maxEjectionPercent: opt(m, 'maxEjectionPercent', (v) => percent(r, v, true), d.maxEjectionPercent)
  }
}

/** A duration option as read: its key and value (undefined when invalid). */
interface Bound {
  readonly key: string
  readonly value: number | undefined
}

/**
 * Checks two durations of one block against each other, and reports a
 * breach at `subject` (or at `other` when only that one was written).
 * Skipped when either is invalid: that is reported already.
 */
function compare (r: Reader, m: MapView, subject: Bound, rule: 'shorter than' | 'at least', other: Bound): void {
  if (subject.value === undefined || other.value === undefined) return
  if (rule === 'shorter than' ? subject.value < other.value : subject.value >= other.value) return
  // The defaults obey every rule, so at least one of the two was written.
  const at = m.get(subject.key) ?? m.get(other.key)
  if (at === undefined) return
  const show = (b: Bound): string => `\`${b.key}\` (${formatDuration(b.value as number)}${m.has(b.key) ? '' : ', the default'})`
  r.report(at.path, at.at, `${show(subject)} must be ${rule} ${show(other)}`)
}
