// `requestId` and `tracing`: the request id every request carries (Envoy's
// x-request-id, HAProxy's unique-id-header) and W3C trace context, with an
// optional OTLP/HTTP span export.
import { DEFAULTS } from '../schema.js'
import type { OtlpConfig, RequestIdConfig, TracingConfig } from '../schema.js'
import type { Field, MapView } from '../reader.js'
import { HEADER_VALUE_RULE, isSafeHeaderValue, isToken } from '../forms.js'
import { type Context, duration, headerName, opt, toggle } from './common.js'

const KEYS = {
  requestId: ['header'],
  tracing: ['propagate', 'otlp'],
  otlp: ['endpoint', 'serviceName', 'headers', 'maxQueue', 'maxBatch', 'flushInterval', 'timeout']
} as const

/** `requestId`: a mapping, true (the defaults) or false (off: no id is made, sent or logged). */
export function readRequestId (ctx: Context, m: MapView): RequestIdConfig | undefined {
  const f = m.get('requestId')
  if (f === undefined) return DEFAULTS.requestId
  const v = toggle(ctx.r, f, KEYS.requestId)
  if (v === undefined) return DEFAULTS.requestId
  if (typeof v === 'boolean') return v ? DEFAULTS.requestId : undefined
  return { header: opt(v, 'header', (h) => headerName(ctx.r, h), DEFAULTS.requestId.header) }
}

/** No `tracing` block: propagate, export nothing. */
export const DEFAULT_TRACING: TracingConfig = Object.freeze({ propagate: DEFAULTS.tracing.propagate })

export function readTracing (ctx: Context, m: MapView, proxyName: string): TracingConfig {
  return opt<TracingConfig>(m, 'tracing', (f) => tracing(ctx, f, proxyName), DEFAULT_TRACING)
}

function tracing (ctx: Context, f: Field, proxyName: string): TracingConfig | undefined {
  const m = ctx.r.map(f, KEYS.tracing)
  if (m === undefined) return undefined
  const propagate = opt(m, 'propagate', (v) => ctx.r.boolean(v), DEFAULTS.tracing.propagate)
  const o = m.get('otlp')
  const otlpConfig = o === undefined ? undefined : otlp(ctx, o, proxyName)
  return { propagate, ...(otlpConfig === undefined ? {} : { otlp: otlpConfig }) }
}

const URL_FORM = 'an http:// or https:// URL of an OTLP/HTTP traces endpoint, like http://127.0.0.1:4318/v1/traces'

function otlp (ctx: Context, f: Field, proxyName: string): OtlpConfig | undefined {
  const r = ctx.r
  const m = r.map(f, KEYS.otlp)
  if (m === undefined) return undefined
  const d = DEFAULTS.tracing.otlp
  const endpointField = m.require('endpoint')
  let endpoint: string | undefined
  if (endpointField !== undefined) {
    const s = r.string(endpointField)
    if (s !== undefined) {
      let u: URL | undefined
      try { u = new URL(s) } catch {}
      if (u === undefined || (u.protocol !== 'http:' && u.protocol !== 'https:')) r.expected(endpointField, URL_FORM)
      else endpoint = u.href
    }
  }
  // Sent with every export (an API key): names are tokens, values single-line.
  const headers: Record<string, string> = {}
  const headersField = m.get('headers')
  const hm = headersField === undefined ? undefined : r.map(headersField)
  for (const { key, keyNode, field } of hm?.entries() ?? []) {
    const value = r.string(field)
    if (!isToken(key)) r.report(field.path, keyNode, `expected a header name (an HTTP token), got ${JSON.stringify(key)}`)
    else if (value !== undefined && !isSafeHeaderValue(value)) r.report(field.path, field.at, HEADER_VALUE_RULE)
    else if (value !== undefined) headers[key.toLowerCase()] = value
  }
  const maxQueue = opt(m, 'maxQueue', (v) => r.integer(v, 1, 1_000_000), d.maxQueue)
  const maxBatch = opt(m, 'maxBatch', (v) => r.integer(v, 1, 100_000), d.maxBatch)
  if (maxBatch > maxQueue) r.report(`${f.path}.maxBatch`, m.get('maxBatch')?.at ?? f.at, `maxBatch (${maxBatch}) may not exceed maxQueue (${maxQueue})`)
  return {
    endpoint: endpoint ?? '',
    serviceName: opt(m, 'serviceName', (v) => r.text(v), proxyName),
    headers,
    maxQueue,
    maxBatch,
    flushInterval: opt(m, 'flushInterval', (v) => duration(r, v, 1), d.flushInterval),
    timeout: opt(m, 'timeout', (v) => duration(r, v, 1), d.timeout)
  }
}
