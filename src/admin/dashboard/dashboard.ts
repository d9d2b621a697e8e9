// The live dashboard's script, run by the browser (index.html loads it as
// `dashboard.<hash>.js`; see ../dashboard.ts for how it is built and served).
// It polls `status` and `snapshot` once a second, sending
// `Authorization: Bearer <token>` when the page was opened with `#token=…`.
//
// Type-checked against the types the server builds those documents from
// (./tsconfig.json: DOM lib, no Node types; the imports below are type-only,
// so the compiled script imports nothing): reading a field the server never
// sends is a compile error. What arrives is still only JSON, so each document
// goes through a decoder first that keeps the fields of the expected JSON
// type and drops the rest: missing or malformed data renders as "—", never as
// an exception.
//
// Tests find servers by `data-server="<backend>/<shard>/<server>"` and their
// health by `data-state="up" | "down"`; a cluster's workers by
// `data-worker="<id>"` and theirs by `data-state` (the state /status sends);
// Redis's by `#redis-state[data-state]` (up | down | degraded | connecting).
//
// The page runs under a strict Content-Security-Policy (scripts and styles
// from the admin listener only, nothing inline). The script sets styles only
// through the CSSOM, which CSP does not restrict.
import type { BackendStatus, ServerStatus } from '../../upstream/backend.js'
import type { AdminApi } from '../admin.js'
import type { AdminStatus, ListenerStatus, RouteStatus, WorkerStatusEntry } from '../api.js'
import type { MetricsSnapshot } from '../metrics.js'
import type { RedisStatus } from '../../redis/report.js'

// ---- the server's documents, as the page holds them ---------------------------

/** A server document of type T as decoded here: the same fields, each possibly missing (absent, null or malformed). */
type Loose<T> =
  T extends null | undefined ? undefined
    : T extends readonly (infer U)[] ? readonly Loose<U>[]
      : T extends object ? { readonly [K in keyof T]?: Loose<T[K]> | undefined }
        : T

/** A JSON object seen as T's fields, before they are checked. */
type Unchecked<T> = { readonly [K in keyof T]?: unknown }

type CacheStats = NonNullable<AdminStatus['cache']>
type HistoryPoint = MetricsSnapshot['history'][number]
type BackendPoint = HistoryPoint['backends'][string]
type SeriesSnapshot = MetricsSnapshot['backends'][string]
type ServerSnapshot = MetricsSnapshot['servers'][string]
type PurgeReply = ReturnType<AdminApi['purge']>

type Status = Loose<AdminStatus>
type Snapshot = Loose<MetricsSnapshot>
type Backend = Loose<BackendStatus>
type Shard = Loose<BackendStatus['shards'][number]>
type Server = Loose<ServerStatus>
type Listener = Loose<ListenerStatus>
type Route = Loose<RouteStatus>
type Cache = Loose<CacheStats>
type Point = Loose<HistoryPoint>
type Worker = Loose<WorkerStatusEntry>
type WorkerState = WorkerStatusEntry['state']
type Redis = Loose<RedisStatus>
type RedisState = RedisStatus['state']
type RedisOps = RedisStatus['operations'][string]
type SharedStats = NonNullable<RedisStatus['shared']>

const num = (v: unknown): number | undefined => typeof v === 'number' && Number.isFinite(v) ? v : undefined
const str = (v: unknown): string | undefined => typeof v === 'string' ? v : typeof v === 'number' && Number.isFinite(v) ? String(v) : undefined
const bool = (v: unknown): boolean | undefined => typeof v === 'boolean' ? v : undefined
/** Epoch milliseconds (seconds are accepted). */
const ms = (v: unknown): number | undefined => {
  const t = num(v)
  return t === undefined ? undefined : t < 1e11 ? t * 1000 : t
}
const isObject = (v: unknown): v is object => v !== null && typeof v === 'object' && !Array.isArray(v)
function fields<T> (v: unknown): Unchecked<T> {
  return isObject(v) ? v : {}
}
function list<T> (v: unknown, decode: (item: unknown) => T): T[] {
  return Array.isArray(v) ? v.map(decode) : []
}
/** A JSON object used as a map (name → value); `own` reads it. */
function record<T> (v: unknown, decode: (item: unknown) => T): Readonly<Record<string, T>> {
  return isObject(v) ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, decode(x)])) : {}
}
function own<T> (rec: Readonly<Record<string, T>> | undefined, key: string): T | undefined {
  return rec !== undefined && Object.hasOwn(rec, key) ? rec[key] : undefined
}

function decodeServer (v: unknown): Server {
  const s = fields<ServerStatus>(v)
  const c = s.lastCheck === undefined || s.lastCheck === null ? undefined : fields<NonNullable<ServerStatus['lastCheck']>>(s.lastCheck)
  return {
    name: str(s.name),
    url: str(s.url),
    weight: num(s.weight),
    state: str(s.state) as ServerStatus['state'] | undefined,
    checked: bool(s.checked),
    adminState: str(s.adminState) as ServerStatus['adminState'] | undefined,
    consecutiveFailures: num(s.consecutiveFailures),
    sinceChangeMs: num(s.sinceChangeMs),
    healthy: bool(s.healthy),
    checkUp: bool(s.checkUp),
    ejected: bool(s.ejected),
    active: num(s.active),
    requests: num(s.requests),
    failures: num(s.failures),
    lastCheck: c === undefined ? undefined : { ok: bool(c.ok), reason: str(c.reason), status: num(c.status) }
  }
}

function decodeShard (v: unknown): Shard {
  const s = fields<BackendStatus['shards'][number]>(v)
  return { name: str(s.name), queued: num(s.queued), servers: list(s.servers, decodeServer) }
}

function decodeBackend (v: unknown): Backend {
  const b = fields<BackendStatus>(v)
  return { name: str(b.name), algorithm: str(b.algorithm), active: num(b.active), retries: num(b.retries), shards: list(b.shards, decodeShard) }
}

function decodeListener (v: unknown): Listener {
  const l = fields<ListenerStatus>(v)
  return { name: str(l.name), address: str(l.address), port: num(l.port), tls: bool(l.tls) }
}

function decodeRoute (v: unknown): Route {
  const r = fields<RouteStatus>(v)
  return { name: str(r.name), host: str(r.host), pathPrefix: str(r.pathPrefix), methods: list(r.methods, str).filter((m) => m !== undefined), listeners: list(r.listeners, str).filter((l) => l !== undefined), backend: str(r.backend), cache: bool(r.cache) }
}

function decodeCache (v: unknown): Cache {
  const c = fields<CacheStats>(v)
  return {
    hits: num(c.hits),
    misses: num(c.misses),
    staleServed: num(c.staleServed),
    revalidated304: num(c.revalidated304),
    revalidated200: num(c.revalidated200),
    collapsed: num(c.collapsed),
    stored: num(c.stored),
    notStored: num(c.notStored),
    invalidations: num(c.invalidations),
    purges: num(c.purges),
    entries: num(c.entries),
    keys: num(c.keys),
    bytes: num(c.bytes),
    maxBytes: num(c.maxBytes),
    evictions: num(c.evictions)
  }
}

/** How each worker state looks: serving, on its way in or out, gone. Typed by the server's states, so a new one must be given a tone here. */
const WORKER_TONES: { readonly [K in WorkerState]: 'good' | 'warn' | 'bad' } = { ready: 'good', starting: 'warn', draining: 'warn', exited: 'bad' }

function decodeWorker (v: unknown): Worker {
  const w = fields<WorkerStatusEntry>(v)
  const state = str(w.state)
  return {
    id: num(w.id),
    pid: num(w.pid),
    // Only a key of WORKER_TONES passes, and those are exactly the WorkerStates.
    state: state !== undefined && Object.hasOwn(WORKER_TONES, state) ? state as WorkerState : undefined,
    startedAt: str(w.startedAt),
    restarts: num(w.restarts),
    requests: num(w.requests),
    connections: num(w.connections)
  }
}

/** How each Redis state looks: connected everywhere, in some processes or not yet, nowhere. Typed by the server's states, so a new one must be given a tone here. */
const REDIS_TONES: { readonly [K in RedisState]: 'good' | 'warn' | 'bad' } = { up: 'good', degraded: 'warn', connecting: 'warn', down: 'bad' }

function decodeRedisOps (v: unknown): Loose<RedisOps> {
  const o = fields<RedisOps>(v)
  return { ok: num(o.ok), error: num(o.error), timeout: num(o.timeout), down: num(o.down), shed: num(o.shed) }
}

function decodeShared (v: unknown): Loose<SharedStats> {
  const c = fields<SharedStats>(v)
  return {
    hits: num(c.hits),
    misses: num(c.misses),
    stored: num(c.stored),
    superseded: num(c.superseded),
    rejected: num(c.rejected),
    collapsed: num(c.collapsed),
    remotePurges: num(c.remotePurges),
    unavailable: num(c.unavailable)
  }
}

function decodeRedis (v: unknown): Redis {
  const r = fields<RedisStatus>(v)
  const state = str(r.state)
  const l = fields<RedisStatus['latency']>(r.latency)
  return {
    // Only a key of REDIS_TONES passes, and those are exactly the RedisStates.
    state: state !== undefined && Object.hasOwn(REDIS_TONES, state) ? state as RedisState : undefined,
    target: str(r.target),
    connected: str(r.connected),
    transitions: num(r.transitions),
    operations: record(r.operations, decodeRedisOps),
    latency: { count: num(l.count), meanMs: num(l.meanMs) },
    shared: r.shared === undefined || r.shared === null ? undefined : decodeShared(r.shared)
  }
}

function decodeStatus (v: unknown): Status {
  const s = fields<AdminStatus>(v)
  return {
    listeners: list(s.listeners, decodeListener),
    routes: list(s.routes, decodeRoute),
    backends: list(s.backends, decodeBackend),
    cache: s.cache === undefined || s.cache === null ? undefined : decodeCache(s.cache),
    // Absent means one process, not "no workers": keep the difference.
    workers: s.workers === undefined || s.workers === null ? undefined : list(s.workers, decodeWorker),
    // Absent means no `redis` block: no panel.
    redis: s.redis === undefined || s.redis === null ? undefined : decodeRedis(s.redis)
  }
}

function decodeBackendPoint (v: unknown): Loose<BackendPoint> {
  const p = fields<BackendPoint>(v)
  return { rps: num(p.rps), errors: num(p.errors), p50: num(p.p50), p99: num(p.p99) }
}

function decodeSeries (v: unknown): Loose<SeriesSnapshot> {
  const s = fields<SeriesSnapshot>(v)
  return { rps: num(s.rps), errors: num(s.errors), p50: num(s.p50), p99: num(s.p99) }
}

function decodePoint (v: unknown): Point {
  const h = fields<HistoryPoint>(v)
  return { t: ms(h.t), rps: num(h.rps), errors: num(h.errors), hitRatio: num(h.hitRatio), backends: record(h.backends, decodeBackendPoint) }
}

function decodeServerSnapshot (v: unknown): Loose<ServerSnapshot> {
  const s = fields<ServerSnapshot>(v)
  return { requests: num(s.requests), classes: record(s.classes, num) as Loose<ServerSnapshot['classes']>, upstreamSeconds: num(s.upstreamSeconds), upstreamResponses: num(s.upstreamResponses) }
}

function decodeSnapshot (v: unknown): Snapshot {
  const s = fields<MetricsSnapshot>(v)
  const t = fields<MetricsSnapshot['totals']>(s.totals)
  return {
    now: ms(s.now),
    totals: {
      statusClasses: record(t.statusClasses, num) as Loose<MetricsSnapshot['totals']['statusClasses']>,
      cache: (({ lookups, served }) => ({ lookups: num(lookups), served: num(served) }))(fields<MetricsSnapshot['totals']['cache']>(t.cache))
    },
    history: (Array.isArray(s.history) ? s.history : []).filter(isObject).map(decodePoint),
    routes: record(s.routes, decodeSeries),
    backends: record(s.backends, decodeSeries),
    servers: record(s.servers, decodeServerSnapshot),
    routeCache: record(s.routeCache, (x) => { const c = fields<{ lookups: number, served: number }>(x); return { lookups: num(c.lookups), served: num(c.served) } }),
    listenerConnections: record(s.listenerConnections, num)
  }
}

function decodePurgeReply (v: unknown): { readonly purged: number | undefined; readonly error: string | undefined } {
  return { purged: num(fields<Extract<PurgeReply, { purged: unknown }>>(v).purged), error: str(fields<Extract<PurgeReply, { error: unknown }>>(v).error) }
}

// ---- state -------------------------------------------------------------------

const POLL_MS = 1000
const WINDOWS: ReadonlyMap<string, number> = new Map([['1m', 60e3], ['5m', 300e3], ['15m', 900e3]])
const PALETTE = ['#0969da', '#8250df', '#d4760b', '#0e8a8a', '#bf3989', '#6e7781', '#5a32a3', '#9a6700']

const state: { status: Status | undefined; snapshot: Snapshot | undefined; windowMs: number; colors: Map<string, string> } =
  { status: undefined, snapshot: undefined, windowMs: 300e3, colors: new Map() }

/** Per server: its totals at the previous snapshot and the rates between the two (requests/s, share of 5xx). */
const serverRates = new Map<string, {
  t: number, requests: number, errors: number, upSeconds: number, upResponses: number,
  rps: number | undefined, errorRate: number | undefined, latencyMs: number | undefined
}>()
function updateServerRates (snap: Snapshot): void {
  const t = snap.now
  if (t === undefined) return
  for (const [key, v] of Object.entries(snap.servers ?? {})) {
    const requests = v?.requests ?? 0
    const errors = v?.classes?.['5xx'] ?? 0
    const prev = serverRates.get(key)
    if (prev !== undefined && t <= prev.t) continue
    const dt = prev === undefined ? 0 : (t - prev.t) / 1000
    const dr = prev === undefined ? 0 : requests - prev.requests
    const upSeconds = v?.upstreamSeconds ?? 0
    const upResponses = v?.upstreamResponses ?? 0
    const dn = prev === undefined ? 0 : upResponses - prev.upResponses
    serverRates.set(key, {
      t, requests, errors, upSeconds, upResponses,
      rps: prev === undefined || dt <= 0 ? undefined : Math.max(0, dr) / dt,
      errorRate: prev === undefined || dr <= 0 ? undefined : Math.max(0, errors - prev.errors) / dr,
      latencyMs: prev === undefined || dn <= 0 ? undefined : (upSeconds - prev.upSeconds) * 1000 / dn
    })
  }
}

function sum (xs: readonly (number | undefined)[]): number | undefined {
  let s = 0
  let any = false
  for (const x of xs) if (x !== undefined) { s += x; any = true }
  return any ? s : undefined
}

// ---- formatting ------------------------------------------------------------------

const DASH = '\u2014'
function fmtNum (v: number | undefined): string {
  if (v === undefined) return DASH
  const a = Math.abs(v)
  if (a >= 1e9) return (v / 1e9).toFixed(1) + 'G'
  if (a >= 1e6) return (v / 1e6).toFixed(1) + 'M'
  if (a >= 1e4) return (v / 1e3).toFixed(1) + 'k'
  if (Number.isInteger(v) || a >= 100) return Math.round(v).toLocaleString('en-US')
  return v.toFixed(a >= 10 ? 1 : 2).replace(/\.?0+$/, '')
}
function fmtMs (v: number | undefined): string {
  if (v === undefined) return DASH
  if (v === 0) return '0 ms'
  if (v < 1) return v.toFixed(2) + ' ms'
  if (v < 10) return v.toFixed(1) + ' ms'
  if (v < 1000) return Math.round(v) + ' ms'
  return (v / 1000).toFixed(v < 10000 ? 2 : 1) + ' s'
}
function fmtPct (r: number | undefined): string {
  if (r === undefined) return DASH
  const p = r * 100
  if (p === 0) return '0%'
  if (p < 1) return p.toFixed(2) + '%'
  if (p < 100) return p.toFixed(1) + '%'
  return Math.round(p) + '%'
}
function fmtBytes (bytes: number | undefined): string {
  if (bytes === undefined) return DASH
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let b = bytes
  let i = 0
  while (Math.abs(b) >= 1024 && i < units.length - 1) { b /= 1024; i++ }
  return (i === 0 ? String(Math.round(b)) : b.toFixed(b < 10 ? 2 : 1)) + ' ' + (units[i] ?? '')
}
/** `45s`, `12m 5s`, `3h 4m`, `2d 5h`. */
function fmtDuration (ms: number | undefined): string {
  if (ms === undefined) return DASH
  const s = Math.max(0, Math.floor(ms / 1000))
  if (s < 60) return s + 's'
  const m = Math.floor(s / 60)
  if (m < 60) return m + 'm ' + (s % 60) + 's'
  const h = Math.floor(m / 60)
  if (h < 24) return h + 'h ' + (m % 60) + 'm'
  return Math.floor(h / 24) + 'd ' + (h % 24) + 'h'
}
function fmtClock (t: number): string {
  const d = new Date(t)
  const p = (n: number): string => n < 10 ? '0' + n : String(n)
  return p(d.getHours()) + ':' + p(d.getMinutes()) + ':' + p(d.getSeconds())
}
function ratio (a: number | undefined, b: number | undefined): number | undefined {
  return a === undefined || b === undefined || b === 0 ? undefined : a / b
}

// ---- DOM helpers -------------------------------------------------------------------

function $ (id: string): HTMLElement {
  const e = document.getElementById(id)
  if (e === null) throw new Error(`no #${id} in the page`)
  return e
}
function byId<T extends HTMLElement> (id: string, type: { new (): T; prototype: T }): T {
  const e = $(id)
  if (!(e instanceof type)) throw new Error(`#${id} is not a ${type.name}`)
  return e
}
function el<K extends keyof HTMLElementTagNameMap> (tag: K, cls?: string, text?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag)
  if (cls) e.className = cls
  if (text !== undefined) e.textContent = text
  return e
}
function setText (e: Element | null | undefined, text: string): void {
  if (e && e.textContent !== text) e.textContent = text
}
function setAttr (e: Element | null | undefined, name: string, value: string | undefined): void {
  if (!e) return
  if (value === undefined) { if (e.hasAttribute(name)) e.removeAttribute(name) } else if (e.getAttribute(name) !== value) e.setAttribute(name, value)
}
/** Keyed reconciliation: keeps one child per item, in order, reusing elements across polls. */
function sync<T, E extends HTMLElement> (parent: HTMLElement, items: readonly T[], keyOf: (item: T, i: number) => string,
  create: (item: T) => E, update: (node: E, item: T) => void): void {
  const old = new Map<string, E>()
  for (const c of Array.from(parent.children)) {
    const key = c instanceof HTMLElement ? c.dataset.key : undefined
    // Only `create` makes children with a key: a keyed child is an E.
    if (key === undefined) c.remove(); else old.set(key, c as E)
  }
  const used = new Set<string>()
  let prev: E | null = null
  items.forEach((item, i) => {
    let k = keyOf(item, i)
    if (used.has(k)) k = k + '#' + i
    used.add(k)
    let node = old.get(k)
    if (node) old.delete(k); else { node = create(item); node.dataset.key = k }
    update(node, item)
    const want: ChildNode | null = prev ? prev.nextSibling : parent.firstChild
    if (node !== want) parent.insertBefore(node, want)
    prev = node
  })
  old.forEach((n) => { n.remove() })
}
function emptyInto (parent: HTMLElement, text: string): void {
  const only = parent.firstElementChild
  if (parent.children.length === 1 && only?.className === 'empty' && only.textContent === text) return
  parent.replaceChildren(el('div', 'empty', text))
}

// ---- auth and fetching ---------------------------------------------------------------

class Unauthorized extends Error {}

function token (): string {
  try { return new URLSearchParams(location.hash.replace(/^#/, '')).get('token') ?? '' } catch { return '' }
}
function authHeaders (extra: Record<string, string> = {}): Record<string, string> {
  const h = { ...extra }
  const t = token()
  if (t) h['authorization'] = 'Bearer ' + t
  return h
}
function getJson (path: string): Promise<unknown> {
  const ctrl = new AbortController()
  const timer = window.setTimeout(() => { ctrl.abort() }, 4000)
  return fetch(path, { headers: authHeaders(), cache: 'no-store', signal: ctrl.signal }).then((r): Promise<unknown> => {
    if (r.status === 401) throw new Unauthorized('unauthorized')
    if (!r.ok) throw new Error(path + ': HTTP ' + r.status)
    return r.json()
  }).finally(() => { window.clearTimeout(timer) })
}

// ---- colours ---------------------------------------------------------------------------

function cssVar (name: string): string { return getComputedStyle(document.documentElement).getPropertyValue(name).trim() }
function colorFor (name: string): string {
  let c = state.colors.get(name)
  if (c === undefined) {
    c = PALETTE[state.colors.size % PALETTE.length] ?? '#0969da'
    state.colors.set(name, c)
  }
  return c
}

// ---- charts ------------------------------------------------------------------------------

/** [epoch ms, value]; a missing value breaks the line. */
type Sample = readonly [number, number | undefined]
type Fmt = (v: number | undefined) => string
interface Series {
  readonly label: string
  readonly color: string
  readonly width?: number
  readonly dash?: number[]
  readonly points: readonly Sample[]
}
interface ChartSpec {
  readonly series: readonly Series[]
  readonly fmt: Fmt
  /** Fixed top of the y axis; otherwise a round number above the largest value. */
  readonly max?: number
  readonly now: number
  readonly windowMs: number
}

/** What each chart last drew and where the mouse is over it. */
const charts = new WeakMap<HTMLCanvasElement, { spec?: ChartSpec; hoverX?: number | undefined }>()
function chartOf (canvas: HTMLCanvasElement): { spec?: ChartSpec; hoverX?: number | undefined } {
  let c = charts.get(canvas)
  if (c === undefined) { c = {}; charts.set(canvas, c) }
  return c
}

function niceMax (v: number): number {
  if (!(v > 0)) return 1
  const e = Math.pow(10, Math.floor(Math.log10(v)))
  const m = v / e
  return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 2.5 ? 2.5 : m <= 5 ? 5 : 10) * e
}
const PAD = { l: 58, r: 12, t: 10, b: 22 }

function drawChart (canvas: HTMLCanvasElement, spec: ChartSpec): void {
  const chart = chartOf(canvas)
  chart.spec = spec
  const dpr = window.devicePixelRatio || 1
  const w = canvas.clientWidth
  const h = canvas.clientHeight
  if (!(w > 0 && h > 0)) return
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
    canvas.width = Math.round(w * dpr); canvas.height = Math.round(h * dpr)
  }
  const ctx = canvas.getContext('2d')
  if (!ctx) return
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0)
  ctx.clearRect(0, 0, w, h)
  const font = '11px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif'
  const muted = cssVar('--muted') || '#59636e'
  const grid = cssVar('--grid') || '#e6e9ed'
  const x0 = PAD.l
  const x1 = w - PAD.r
  const y0 = PAD.t
  const y1 = h - PAD.b
  const end = spec.now
  const start = end - spec.windowMs
  let max = 0
  let any = false
  for (const s of spec.series) {
    for (const [t, v] of s.points) if (t >= start && v !== undefined) { any = true; if (v > max) max = v }
  }
  const top = spec.max !== undefined ? spec.max : niceMax(max)
  const X = (t: number): number => x0 + (t - start) / (end - start) * (x1 - x0)
  const Y = (v: number): number => y1 - v / top * (y1 - y0)
  ctx.font = font; ctx.lineWidth = 1
  // grid + y labels
  ctx.textAlign = 'right'; ctx.textBaseline = 'middle'
  for (let i = 0; i <= 4; i++) {
    const v = top * i / 4
    const y = Math.round(Y(v)) + 0.5
    ctx.strokeStyle = grid; ctx.beginPath(); ctx.moveTo(x0, y); ctx.lineTo(x1, y); ctx.stroke()
    ctx.fillStyle = muted; ctx.fillText(spec.fmt(v), x0 - 8, y)
  }
  // x labels: one per minute (or per 15 s on the 1-minute window)
  ctx.textAlign = 'center'; ctx.textBaseline = 'top'
  const step = spec.windowMs <= 60e3 ? 15e3 : spec.windowMs <= 300e3 ? 60e3 : 180e3
  for (let k = 0; k * step <= spec.windowMs; k++) {
    const tx = X(end - k * step)
    const label = k === 0 ? 'now' : '-' + (step < 60e3 ? (k * step / 1e3) + 's' : (k * step / 60e3) + 'm')
    ctx.fillStyle = muted; ctx.fillText(label, Math.min(Math.max(tx, x0 + 12), x1 - 12), y1 + 6)
  }
  if (!any) {
    ctx.textAlign = 'center'; ctx.textBaseline = 'middle'; ctx.fillStyle = muted
    ctx.fillText('no data yet', (x0 + x1) / 2, (y0 + y1) / 2)
  }
  // lines; a gap in the samples (or a missing value) breaks the line
  ctx.save()
  ctx.beginPath(); ctx.rect(x0, y0 - 2, x1 - x0, y1 - y0 + 4); ctx.clip()
  for (const s of spec.series) {
    ctx.strokeStyle = s.color; ctx.lineWidth = s.width ?? 1.75; ctx.lineJoin = 'round'
    ctx.setLineDash(s.dash ?? [])
    ctx.beginPath()
    let pen = false
    let lastT: number | undefined
    for (const [t, v] of s.points) {
      if (v === undefined || t < start - 5e3) { pen = false; continue }
      if (pen && lastT !== undefined && t - lastT > 5e3) pen = false
      const px = X(t)
      const py = Y(Math.min(v, top))
      if (pen) ctx.lineTo(px, py); else ctx.moveTo(px, py)
      pen = true; lastT = t
    }
    ctx.stroke()
  }
  ctx.setLineDash([])
  // hover crosshair
  if (chart.hoverX !== undefined && any) {
    const ht = start + (chart.hoverX - x0) / (x1 - x0) * (end - start)
    const hx = X(ht)
    ctx.strokeStyle = muted; ctx.lineWidth = 1; ctx.beginPath(); ctx.moveTo(hx, y0); ctx.lineTo(hx, y1); ctx.stroke()
    const rows: [Series, number, number][] = []
    for (const s of spec.series) {
      let best: [number, number] | undefined
      for (const [t, v] of s.points) if (v !== undefined && (best === undefined || Math.abs(t - ht) < Math.abs(best[0] - ht))) best = [t, v]
      if (best && Math.abs(best[0] - ht) < 5e3) {
        ctx.fillStyle = s.color; ctx.beginPath(); ctx.arc(X(best[0]), Y(Math.min(best[1], top)), 3, 0, Math.PI * 2); ctx.fill()
        rows.push([s, best[0], best[1]])
      }
    }
    showTip(canvas, hx, ht, rows, spec.fmt)
  } else {
    showTip(canvas, 0, 0, [], spec.fmt)
  }
  ctx.restore()
}

function showTip (canvas: HTMLCanvasElement, x: number, t: number, rows: readonly [Series, number, number][], fmt: Fmt): void {
  const tip = canvas.parentElement?.querySelector('.tip')
  if (!(tip instanceof HTMLElement)) return
  if (rows.length === 0) { tip.hidden = true; return }
  const box = el('div')
  box.appendChild(el('div', 't', fmtClock(t)))
  for (const [s, , v] of rows) {
    const line = el('div')
    const sw = el('i'); sw.style.display = 'inline-block'; sw.style.width = '10px'; sw.style.height = '3px'
    sw.style.marginRight = '6px'; sw.style.verticalAlign = 'middle'; sw.style.background = s.color
    line.appendChild(sw)
    line.appendChild(document.createTextNode(s.label + ': '))
    line.appendChild(el('b', '', fmt(v)))
    box.appendChild(line)
  }
  tip.replaceChildren(box)
  tip.hidden = false
  let left = canvas.offsetLeft + x + 12
  if (left + tip.offsetWidth > canvas.offsetLeft + canvas.clientWidth) left = canvas.offsetLeft + x - tip.offsetWidth - 12
  tip.style.left = left + 'px'
  tip.style.top = (canvas.offsetTop + 8) + 'px'
}

function legend (id: string, series: readonly Series[], fmt: Fmt): void {
  const box = document.getElementById(id)
  if (!box) return
  sync(box, series, (s) => s.label, () => {
    const span = el('span'); span.appendChild(el('i')); span.appendChild(el('em')); span.appendChild(el('b'))
    return span
  }, (node, s) => {
    const swatch = node.children[0]
    if (swatch instanceof HTMLElement) swatch.style.background = s.color
    setText(node.children[1], s.label)
    let last: number | undefined
    for (let i = s.points.length - 1; i >= 0; i--) {
      const v = s.points[i]?.[1]
      if (v !== undefined) { last = v; break }
    }
    setText(node.children[2], fmt(last))
  })
}

function wireHover (canvas: HTMLCanvasElement): void {
  const redraw = (): void => {
    const spec = chartOf(canvas).spec
    if (spec) safe(() => { drawChart(canvas, spec) })
  }
  canvas.addEventListener('mousemove', (ev) => {
    const r = canvas.getBoundingClientRect()
    const x = ev.clientX - r.left
    chartOf(canvas).hoverX = x >= PAD.l && x <= r.width - PAD.r ? x : undefined
    redraw()
  })
  canvas.addEventListener('mouseleave', () => {
    chartOf(canvas).hoverX = undefined
    redraw()
  })
}

// ---- views -------------------------------------------------------------------------------

function history (): readonly Point[] { return state.snapshot?.history ?? [] }
function latest (): Point { const h = history(); return h[h.length - 1] ?? {} }
function backendsOf (status: Status | undefined): readonly Backend[] { return status?.backends ?? [] }
function serversOf (b: Backend): Server[] {
  const out: Server[] = []
  for (const s of b.shards ?? []) for (const v of s.servers ?? []) out.push(v)
  return out
}
function isDown (s: Server): boolean { return s.healthy === false || s.ejected === true || s.checkUp === false }
function stateLabel (s: Server): string {
  // /status says it in one word (up, down, no check, ejected); older ones only in booleans.
  const word = s.state ?? (s.ejected === true ? 'ejected' : s.checkUp === false ? 'check failing' : s.healthy === false ? 'down' : 'up')
  const failing = s.consecutiveFailures ?? 0
  return failing > 0 ? word + ' \u00b7 ' + failing + ' failed in a row' : word
}
/** The row's colour: down red; nothing checks it grey; its requests failing amber; else green. */
function rowState (s: Server): string {
  if (s.adminState === 'maint') return 'maint'
  if (s.adminState === 'drain') return 'drain'
  if (isDown(s)) return 'down'
  if ((s.consecutiveFailures ?? 0) > 0) return 'failing'
  return s.state === 'no check' ? 'nocheck' : 'up'
}
/** Current rates for a backend: the snapshot's own numbers, else the last history sample. */
function backendRates (name: string): { rps: number | undefined; errors: number | undefined; p50: number | undefined; p99: number | undefined } {
  const cur = own(state.snapshot?.backends, name) ?? {}
  const hist = own(latest().backends, name) ?? {}
  return { rps: cur.rps ?? hist.rps, errors: cur.errors ?? hist.errors, p50: cur.p50 ?? hist.p50, p99: cur.p99 ?? hist.p99 }
}

/** Served from the cache / lookups since start, as the per-second ratio counts (the hit counter leaves stale answers out). */
function lifetimeHitRatio (): number | undefined {
  const c = state.snapshot?.totals?.cache
  return ratio(c?.served, c?.lookups)
}

function renderTiles (): void {
  const status = state.status
  const last = latest()
  const rps = last.rps
  const errors = last.errors
  setText($('t-rps'), fmtNum(rps))
  setText($('t-rps-hint'), errors !== undefined ? fmtNum(errors) + ' errors/s' : '')
  const er = rps === undefined ? undefined : rps === 0 ? (errors === undefined ? undefined : 0) : ratio(errors, rps)
  setText($('t-err'), fmtPct(er))
  // Client errors (no route, bad requests, 429) are not the upstream's fault, but an operator must see them.
  const c4 = state.snapshot?.totals?.statusClasses?.['4xx']
  const c5 = state.snapshot?.totals?.statusClasses?.['5xx']
  setText($('t-err-hint'), c4 === undefined && c5 === undefined ? '' : fmtNum(c5 ?? 0) + ' 5xx \u00b7 ' + fmtNum(c4 ?? 0) + ' 4xx since start')
  setAttr($('tile-err'), 'data-tone', er === undefined ? undefined : er >= 0.01 ? 'bad' : 'good')
  const backends = backendsOf(status)
  setText($('t-active'), fmtNum(sum(backends.map((b) => b.active))))
  const queued = sum(backends.map((b) => sum((b.shards ?? []).map((s) => s.queued))))
  setText($('t-active-hint'), queued ? fmtNum(queued) + ' queued' : '')
  let all = 0
  let down = 0
  for (const b of backends) for (const s of serversOf(b)) { all++; if (isDown(s)) down++ }
  setText($('t-up'), all === 0 ? DASH : (all - down) + ' / ' + all)
  setText($('t-up-hint'), all === 0 ? '' : down === 0 ? 'all healthy' : down + ' down')
  setAttr($('tile-up'), 'data-tone', all === 0 ? undefined : down > 0 ? 'bad' : 'good')
  const cache = status?.cache ?? {}
  const life = lifetimeHitRatio()
  const recent = last.hitRatio
  setText($('t-hit'), fmtPct(recent !== undefined ? recent : life))
  setText($('t-hit-hint'), life !== undefined ? 'lifetime ' + fmtPct(life) : status !== undefined && status.cache === undefined ? 'no cache' : '')
  const bytes = cache.bytes
  const maxBytes = cache.maxBytes
  setText($('t-size'), fmtBytes(bytes))
  setText($('t-size-hint'), (maxBytes !== undefined ? 'of ' + fmtBytes(maxBytes) : '') +
    (cache.entries !== undefined ? (maxBytes !== undefined ? ' \u00b7 ' : '') + fmtNum(cache.entries) + ' entries' : ''))
  const fill = ratio(bytes, maxBytes)
  $('t-size-bar').style.width = fill === undefined ? '0' : Math.min(100, fill * 100).toFixed(1) + '%'
  document.title = (down > 0 ? '\u26a0 ' + down + ' down \u00b7 ' : '') + 'Switchyard admin'
}

function renderCharts (): void {
  const hist = history()
  const now = state.snapshot?.now ?? latest().t ?? Date.now()
  const pts = (f: (h: Point) => number | undefined): Sample[] => {
    const out: Sample[] = []
    for (const h of hist) if (h.t !== undefined) out.push([h.t, f(h)])
    return out
  }
  const names: string[] = []
  for (const b of backendsOf(state.status)) if (b.name !== undefined && !names.includes(b.name)) names.push(b.name)
  for (const h of hist) for (const n of Object.keys(h.backends ?? {})) if (!names.includes(n)) names.push(n)
  const base = { now, windowMs: state.windowMs }
  const up = cssVar('--accent') || '#0969da'
  const down = cssVar('--down') || '#cf222e'
  const thr: Series[] = [
    { label: 'requests/s', color: up, width: 2, points: pts((h) => h.rps) },
    { label: 'errors/s', color: down, points: pts((h) => h.errors) }
  ]
  drawChart(byId('c-rps', HTMLCanvasElement), { series: thr, fmt: fmtNum, ...base })
  legend('l-rps', thr, fmtNum)
  for (const q of ['p50', 'p99'] as const) {
    const series = names.map((n): Series => ({ label: n, color: colorFor(n), points: pts((h) => own(h.backends, n)?.[q]) }))
    drawChart(byId('c-' + q, HTMLCanvasElement), { series, fmt: fmtMs, ...base })
    legend('l-' + q, series, fmtMs)
  }
  const hit: Series[] = [{ label: 'hit ratio', color: cssVar('--up') || '#1a7f37', width: 2, points: pts((h) => h.hitRatio) }]
  drawChart(byId('c-hit', HTMLCanvasElement), { series: hit, fmt: fmtPct, max: 1, ...base })
  legend('l-hit', hit, fmtPct)
}

function mini (k: string): HTMLElement {
  const m = el('div', 'mini'); m.appendChild(el('span', 'k', k)); m.appendChild(el('span', 'v', DASH))
  return m
}
function createBackend (): HTMLElement {
  const card = el('article', 'card backend')
  const head = el('header')
  head.appendChild(el('h3'))
  head.appendChild(el('span', 'badge algo'))
  head.appendChild(el('span', 'badge health'))
  const minis = el('div', 'minis')
  for (const k of ['req/s', 'err %', 'p50', 'p99', 'active', 'retries']) minis.appendChild(mini(k))
  head.appendChild(minis)
  card.appendChild(head)
  card.appendChild(el('div', 'shards'))
  return card
}
function updateBackend (card: HTMLElement, b: Backend): void {
  const name = b.name || '(unnamed)'
  const head = card.children[0]
  setText(head?.children[0], name)
  setText(head?.children[1], b.algorithm || 'backend')
  const servers = serversOf(b)
  const down = servers.filter(isDown).length
  setText(head?.children[2], servers.length === 0 ? 'no servers' : (servers.length - down) + '/' + servers.length + ' up')
  setAttr(head?.children[2], 'data-tone', servers.length === 0 ? 'warn' : down === 0 ? 'good' : down === servers.length ? 'bad' : 'warn')
  const r = backendRates(name)
  const vals = [fmtNum(r.rps), r.rps === undefined || r.errors === undefined ? DASH : fmtPct(r.rps === 0 ? 0 : r.errors / r.rps),
    fmtMs(r.p50), fmtMs(r.p99), fmtNum(b.active), fmtNum(b.retries)]
  const minis = head?.children[3]?.children
  vals.forEach((v, i) => { setText(minis?.[i]?.children[1], v) })
  const shardsBox = card.children[1]
  if (!(shardsBox instanceof HTMLElement)) return
  const shards = b.shards ?? []
  if (shards.length === 0) { emptyInto(shardsBox, 'No shards reported.'); return }
  sync(shardsBox, shards, (s, i) => s.name || '#' + i, createShard, (node, s) => { updateShard(node, s, name) })
}
const COLS = [['State', ''], ['Server', ''], ['URL', ''], ['Weight', 'n'], ['Active', 'n'], ['Requests', 'n'], ['Failures', 'n'], ['Last check', ''], ['Admin', ''],
  ['req/s', 'n'], ['Err %', 'n'], ['Latency', 'n'], ['1xx/2xx/3xx/4xx/5xx', 'n'], ['Changed', 'n']] as const
const CLASS_COLS = ['1xx', '2xx', '3xx', '4xx', '5xx'] as const
/** The admin states the buttons set (POST /servers/{backend}/{shard}/{server}). */
const ADMIN_ACTIONS = ['ready', 'drain', 'maint'] as const
function createShard (): HTMLElement {
  const box = el('section', 'shard')
  const head = el('div', 'shard-head')
  head.appendChild(el('span', 'sname'))
  head.appendChild(el('span', 'badge'))
  head.appendChild(el('span', 'queued'))
  box.appendChild(head)
  const wrap = el('div', 'scroll')
  const table = el('table', 'servers')
  const tr = el('tr')
  for (const [label, cls] of COLS) tr.appendChild(el('th', cls, label))
  const thead = el('thead'); thead.appendChild(tr)
  table.appendChild(thead)
  table.appendChild(el('tbody'))
  wrap.appendChild(table)
  box.appendChild(wrap)
  return box
}
function updateShard (box: HTMLElement, s: Shard, backend: string): void {
  const shardName = s.name || 'default'
  const head = box.children[0]
  setText(head?.children[0], 'shard ' + shardName)
  const servers = s.servers ?? []
  const down = servers.filter(isDown).length
  setText(head?.children[1], servers.length === 0 ? 'empty' : (servers.length - down) + '/' + servers.length + ' up')
  setAttr(head?.children[1], 'data-tone', servers.length === 0 ? 'warn' : down === 0 ? 'good' : down === servers.length ? 'bad' : 'warn')
  setText(head?.children[2], s.queued === undefined ? '' : s.queued + ' queued')
  const tbody = box.querySelector('tbody')
  if (!tbody) return
  if (servers.length === 0) {
    tbody.replaceChildren()
    const tr = el('tr'); const td = el('td', 'empty', 'No servers.'); td.colSpan = COLS.length; tr.appendChild(td); tbody.appendChild(tr)
    return
  }
  sync(tbody, servers, (v, i) => v.name || v.url || '#' + i, createServer, (row, v) => { updateServer(row, v, backend, shardName) })
}
function createServer (): HTMLTableRowElement {
  const tr = el('tr', 'server')
  const st = el('td'); const wrap = el('span', 'state'); wrap.appendChild(el('span', 'dot')); wrap.appendChild(el('span', 'lbl'))
  st.appendChild(wrap); tr.appendChild(st)
  tr.appendChild(el('td', 'sv'))
  tr.appendChild(el('td', 'url mono'))
  for (let i = 0; i < 4; i++) tr.appendChild(el('td', 'n')) // weight, active, requests, failures
  tr.appendChild(el('td', 'check'))
  const admin = el('td', 'admin')
  for (const a of ADMIN_ACTIONS) {
    const b = el('button', 'adm', a)
    b.setAttribute('type', 'button')
    b.dataset.action = a
    admin.appendChild(b)
  }
  tr.appendChild(admin)
  tr.appendChild(el('td', 'n srv-rps'))
  tr.appendChild(el('td', 'n srv-err'))
  tr.appendChild(el('td', 'n srv-latency'))
  tr.appendChild(el('td', 'n srv-classes mono'))
  tr.appendChild(el('td', 'n srv-changed'))
  return tr
}
/** `3s`, `4m`, `2h 5m`, `3d`: how long ago, short. */
function fmtAgo (ms: number | undefined): string {
  if (ms === undefined) return DASH
  const s = Math.floor(ms / 1000)
  if (s < 60) return s + 's'
  if (s < 3600) return Math.floor(s / 60) + 'm'
  if (s < 86400) return Math.floor(s / 3600) + 'h ' + Math.floor((s % 3600) / 60) + 'm'
  return Math.floor(s / 86400) + 'd'
}
function updateServer (tr: HTMLTableRowElement, v: Server, backend: string, shard: string): void {
  const name = v.name || v.url || '?'
  setAttr(tr, 'data-server', backend + '/' + shard + '/' + name)
  setAttr(tr, 'data-state', rowState(v))
  const c = tr.children
  setText(c[0]?.querySelector('.lbl'), stateLabel(v))
  setText(c[1], name)
  setText(c[2], v.url || '')
  setText(c[3], fmtNum(v.weight))
  setText(c[4], fmtNum(v.active))
  setText(c[5], fmtNum(v.requests))
  setText(c[6], fmtNum(v.failures))
  const lc = v.lastCheck
  const text = lc === undefined ? DASH : (lc.ok === true ? '\u2713 ' : lc.ok === false ? '\u2717 ' : '') +
    (lc.reason || '') + (lc.status !== undefined ? ' (' + lc.status + ')' : '')
  setText(c[7], text)
  setAttr(c[7], 'title', lc === undefined ? undefined : text)
  // Traffic from the snapshot: rates between two polls, responses by class since start.
  const key = backend + '/' + shard + '/' + name
  const rates = serverRates.get(key)
  const totals = own(state.snapshot?.servers, key)
  setText(c[9], fmtNum(rates?.rps))
  setText(c[10], fmtPct(rates?.errorRate))
  setAttr(c[10], 'data-tone', rates?.errorRate === undefined ? undefined : rates.errorRate > 0 ? 'bad' : 'good')
  // Mean time to response headers over the last poll.
  setText(c[11], fmtMs(rates?.latencyMs))
  setText(c[12], totals === undefined ? DASH : CLASS_COLS.map((k) => fmtNum(totals.classes?.[k] ?? 0)).join(' / '))
  setText(c[13], v.sinceChangeMs === undefined ? DASH : fmtAgo(v.sinceChangeMs) + ' ago')
  setAttr(c[13], 'title', v.sinceChangeMs === undefined ? 'no change of state since the proxy started' : undefined)
  // The button of the state it is in is pressed; the others set theirs.
  const current = v.adminState ?? 'ready'
  for (const b of Array.from(c[8]?.querySelectorAll('button') ?? [])) b.setAttribute('aria-pressed', String(b.dataset.action === current))
}
/** A click on a server's ready / drain / maint button: POST it, then poll at once to show the result. */
function wireServerButtons (): void {
  $('backends').addEventListener('click', (ev) => {
    const b = ev.target instanceof Element ? ev.target.closest('button.adm') : null
    const row = b?.closest('tr.server')
    const id = row?.getAttribute('data-server')
    if (!(b instanceof HTMLButtonElement) || id === undefined || id === null) return
    const [backend, shard, server] = id.split('/')
    if (backend === undefined || shard === undefined || server === undefined) return
    b.disabled = true
    const path = 'servers/' + [backend, shard, server].map(encodeURIComponent).join('/')
    fetch(path, { method: 'POST', headers: authHeaders({ 'content-type': 'application/json' }), body: JSON.stringify({ state: b.dataset.action }), cache: 'no-store' })
      .then((r) => r.text().then((t) => {
        setAttr(row, 'title', r.ok ? undefined : 'failed (' + r.status + '): ' + t.trim())
        if (r.ok) { window.clearTimeout(timer); generation++; loop(generation) }
      }))
      .catch((e: unknown) => { setAttr(row, 'title', 'failed: ' + (e instanceof Error ? e.message : String(e))) })
      .finally(() => { b.disabled = false })
  })
}
function renderBackends (): void {
  const root = $('backends')
  const all = backendsOf(state.status)
  if (all.length === 0) { emptyInto(root, state.status === undefined ? 'Waiting for /status\u2026' : 'No backends reported.'); return }
  sync(root, all, (b, i) => b.name || '#' + i, createBackend, updateBackend)
}

const WORKER_COLS = 7
function createWorker (): HTMLTableRowElement {
  const tr = el('tr', 'worker')
  const st = el('td'); const wrap = el('span', 'state'); wrap.appendChild(el('span', 'dot')); wrap.appendChild(el('span', 'lbl'))
  st.appendChild(wrap); tr.appendChild(st)
  tr.appendChild(el('td'))
  tr.appendChild(el('td', 'mono'))
  for (let i = 0; i < 4; i++) tr.appendChild(el('td', 'n')) // requests, connections, restarts, uptime
  return tr
}
function updateWorker (tr: HTMLTableRowElement, w: Worker, now: number): void {
  setAttr(tr, 'data-worker', w.id === undefined ? undefined : String(w.id))
  setAttr(tr, 'data-state', w.state ?? 'unknown')
  setAttr(tr, 'data-tone', w.state === undefined ? undefined : WORKER_TONES[w.state])
  const c = tr.children
  setText(c[0]?.querySelector('.lbl'), w.state ?? 'unknown')
  setText(c[1], w.id === undefined ? DASH : String(w.id))
  // A pid is an identifier, not a quantity: never abbreviated. 0: no process yet.
  setText(c[2], w.pid === undefined || w.pid === 0 ? DASH : String(w.pid))
  setText(c[3], fmtNum(w.requests))
  setText(c[4], fmtNum(w.connections))
  setText(c[5], fmtNum(w.restarts))
  const started = w.startedAt === undefined ? NaN : Date.parse(w.startedAt)
  // An exited worker's startedAt is its last process's; it has no uptime.
  setText(c[6], w.state === 'exited' || Number.isNaN(started) ? DASH : fmtDuration(now - started))
  setAttr(c[6], 'title', Number.isNaN(started) ? undefined : 'started ' + new Date(started).toLocaleString())
}
function renderWorkers (): void {
  const workers = state.status?.workers
  // A single process sends no `workers`: no panel at all.
  $('workers-panel').hidden = workers === undefined
  if (workers === undefined) return
  const ready = workers.filter((w) => w.state === 'ready').length
  const summary = $('workers-summary')
  setText(summary, workers.length === 0 ? 'none' : ready + '/' + workers.length + ' ready')
  setAttr(summary, 'data-tone', ready === 0 ? 'bad' : ready === workers.length ? 'good' : 'warn')
  const tbody = $('workers')
  if (workers.length === 0) {
    tbody.replaceChildren()
    const tr = el('tr'); const td = el('td', 'empty', 'No workers reported.'); td.colSpan = WORKER_COLS; tr.appendChild(td); tbody.appendChild(tr)
    return
  }
  // The server's clock, as the charts use: uptime does not depend on the browser's.
  const now = state.snapshot?.now ?? Date.now()
  sync(tbody, workers, (w, i) => w.id === undefined ? '#' + i : String(w.id), createWorker, (tr, w) => { updateWorker(tr, w, now) })
}

type Tone = 'good' | 'warn' | 'bad'
/** One `dl.kv` entry: key (`data-stat`), label, value, and a tone that highlights it. */
type Stat = readonly [key: string, label: string, value: string, tone?: Tone | undefined, title?: string | undefined]

function renderStats (box: HTMLElement, items: readonly Stat[]): void {
  sync(box, items, ([k]) => k, () => {
    const d = el('div'); d.appendChild(el('dt')); d.appendChild(el('dd')); return d
  }, (d, [k, label, value, tone, title]) => {
    setAttr(d, 'data-stat', k)
    setAttr(d, 'data-tone', tone)
    setAttr(d, 'title', title)
    setText(d.children[0], label)
    setText(d.children[1], value)
  })
}

/** `tone` when `n` counts something gone wrong, else none: a zero is not highlighted. */
function flag (n: number | undefined, tone: Tone): Tone | undefined {
  return n === undefined || n === 0 ? undefined : tone
}

const REDIS_RESULTS = ['ok', 'error', 'timeout', 'down', 'shed'] as const
/** How a result is highlighted when its count is not zero: a failed operation red, one refused while down or shed while slow amber. */
const RESULT_TONES: { readonly [K in keyof RedisOps]: Tone | undefined } = { ok: undefined, error: 'bad', timeout: 'bad', down: 'warn', shed: 'warn' }

/** Every operation's counts added up by result (a malformed count counts as none). */
function redisTotals (ops: Redis['operations']): Record<keyof RedisOps, number> {
  const out = { ok: 0, error: 0, timeout: 0, down: 0, shed: 0 }
  for (const o of Object.values(ops ?? {})) for (const k of REDIS_RESULTS) out[k] += o?.[k] ?? 0
  return out
}

/** The shared cache's counters in the order shown: label, and the tone when not zero. */
const SHARED_LABELS: { readonly [K in keyof SharedStats]-?: readonly [string, Tone?] } = {
  hits: ['Hits'],
  misses: ['Misses'],
  stored: ['Stored'],
  superseded: ['Superseded'],
  rejected: ['Rejected', 'bad'],
  collapsed: ['Collapsed'],
  remotePurges: ['Remote purges'],
  unavailable: ['Unavailable', 'warn']
}
// Object.keys of a literal of exactly these keys.
const SHARED_KEYS = Object.keys(SHARED_LABELS) as (keyof SharedStats)[]

const REDIS_OP_COLS = 6
function createRedisOp (): HTMLTableRowElement {
  const tr = el('tr', 'redis-op')
  tr.appendChild(el('td', 'mono'))
  for (let i = 0; i < REDIS_RESULTS.length; i++) tr.appendChild(el('td', 'n'))
  return tr
}
function updateRedisOp (tr: HTMLTableRowElement, name: string, o: Loose<RedisOps>): void {
  setAttr(tr, 'data-op', name)
  setText(tr.children[0], name)
  REDIS_RESULTS.forEach((k, i) => {
    const td = tr.children[i + 1]
    setText(td, fmtNum(o[k]))
    const tone = RESULT_TONES[k]
    setAttr(td, 'data-tone', tone === undefined ? undefined : flag(o[k], tone))
  })
}

function renderRedis (): void {
  const redis = state.status?.redis
  // No `redis` block, no `redis` in /status: no panel at all.
  $('redis-panel').hidden = redis === undefined
  if (redis === undefined) return
  const indicator = $('redis-state')
  setAttr(indicator, 'data-state', redis.state ?? 'unknown')
  setAttr(indicator, 'data-tone', redis.state === undefined ? undefined : REDIS_TONES[redis.state])
  setText(indicator, redis.state ?? 'unknown')
  setText($('redis-target'), redis.target ?? '')
  const ops = redis.operations ?? {}
  const total = redisTotals(ops)
  const timed = redis.latency?.count
  renderStats($('redis-stats'), [
    ['connected', 'Connected', redis.connected ?? DASH, undefined, 'processes connected / processes'],
    ['transitions', 'Transitions', fmtNum(redis.transitions), undefined, 'state changes since start'],
    ['operations', 'Operations', fmtNum(total.ok + total.error + total.timeout + total.down + total.shed)],
    ['errors', 'Errors', fmtNum(total.error), flag(total.error, 'bad')],
    ['timeouts', 'Timeouts', fmtNum(total.timeout), flag(total.timeout, 'bad')],
    ['down', 'Refused (down)', fmtNum(total.down), flag(total.down, 'warn'), 'operations refused at once while not connected'],
    ['shed', 'Shed (slow)', fmtNum(total.shed), flag(total.shed, 'warn'), 'operations not sent: Redis timed out less than a second before'],
    ['latency', 'Mean latency', fmtMs(redis.latency?.meanMs), undefined, timed === undefined ? undefined : 'mean of ' + fmtNum(timed) + ' timed operations']
  ])
  const tbody = $('redis-ops')
  const names = Object.keys(ops).sort()
  if (names.length === 0) {
    tbody.replaceChildren()
    const tr = el('tr'); const td = el('td', 'empty', 'No operations yet.'); td.colSpan = REDIS_OP_COLS; tr.appendChild(td); tbody.appendChild(tr)
  } else {
    sync(tbody, names, (n) => n, createRedisOp, (tr, n) => { updateRedisOp(tr, n, own(ops, n) ?? {}) })
  }
  const shared = redis.shared
  // Only with `cache.shared`: the counters of the cache kept in Redis.
  $('redis-shared-box').hidden = shared === undefined
  if (shared === undefined) return
  const items: Stat[] = SHARED_KEYS.map((k) => {
    const [label, tone] = SHARED_LABELS[k]
    return [k, label, fmtNum(shared[k]), tone === undefined ? undefined : flag(shared[k], tone)]
  })
  items.splice(2, 0, ['ratio', 'Hit ratio', fmtPct(ratio(shared.hits, sum([shared.hits, shared.misses])))])
  renderStats($('redis-shared'), items)
}

/** Every cache counter the server sends, in the order shown, with its label. */
const CACHE_LABELS: { readonly [K in keyof CacheStats]-?: string } = {
  hits: 'Hits',
  misses: 'Misses',
  entries: 'Entries',
  bytes: 'Size',
  maxBytes: 'Max size',
  evictions: 'Evictions',
  staleServed: 'Stale served',
  collapsed: 'Collapsed',
  stored: 'Stored',
  revalidated304: 'revalidated304',
  revalidated200: 'revalidated200',
  notStored: 'not stored',
  invalidations: 'invalidations',
  purges: 'purges',
  keys: 'keys'
}
// Object.keys of a literal of exactly these keys.
const CACHE_KEYS = Object.keys(CACHE_LABELS) as (keyof CacheStats)[]

function renderCache (): void {
  const box = $('cache-stats')
  const status = state.status
  if (status !== undefined && status.cache === undefined) { emptyInto(box, 'No cache configured (or not reported).'); return }
  const cache: Cache = status?.cache ?? {}
  const items: [keyof CacheStats | 'ratio', string][] = CACHE_KEYS.filter((k) => cache[k] !== undefined).map((k) => [k, CACHE_LABELS[k]])
  const life = lifetimeHitRatio()
  if (life !== undefined) items.splice(2, 0, ['ratio', 'Hit ratio'])
  if (items.length === 0) { emptyInto(box, status === undefined ? 'Waiting for /status\u2026' : 'No cache counters reported.'); return }
  sync(box, items, ([k]) => k, () => {
    const d = el('div'); d.appendChild(el('dt')); d.appendChild(el('dd')); return d
  }, (d, [k, label]) => {
    setText(d.children[0], label)
    setText(d.children[1], k === 'ratio' ? fmtPct(life) : /bytes$/i.test(k) ? fmtBytes(cache[k]) : fmtNum(cache[k]))
  })
}

/** `127.0.0.1:8443`, `[::1]:9901`. */
function addressText (l: Listener): string {
  const a = l.address ?? ''
  const host = a.includes(':') ? '[' + a + ']' : a
  return l.port === undefined ? host : host + ':' + l.port
}
/** `api.example.com /v1/* GET,HEAD on web`; `*` when the route matches everything. */
function matchText (r: Route): string {
  const parts: string[] = []
  if (r.host && r.host !== '*') parts.push(r.host)
  if (r.pathPrefix) parts.push(r.pathPrefix + '*')
  if (r.methods && r.methods.length > 0) parts.push(r.methods.join(','))
  if (r.listeners && r.listeners.length > 0) parts.push('on ' + r.listeners.join(','))
  return parts.length ? parts.join(' ') : '*'
}
function renderRoutes (): void {
  const status = state.status
  const snapRoutes = state.snapshot?.routes ?? {}
  const chips = $('listeners')
  const ls = status?.listeners ?? []
  if (ls.length === 0) emptyInto(chips, status === undefined ? 'Waiting for /status\u2026' : 'No listeners reported.')
  else {
    sync(chips, ls, (l, i) => l.name || '#' + i, () => {
      const c = el('span', 'chip'); c.appendChild(el('b')); c.appendChild(document.createTextNode(' ')); c.appendChild(el('span', 'mono')); return c
    }, (c, l) => {
      setText(c.children[0], l.name || 'listener')
      const conns = own(state.snapshot?.listenerConnections, l.name ?? '')
      setText(c.children[1], addressText(l) + ' \u00b7 ' + (l.tls ? 'https h2+h1' : 'http') + ' \u00b7 ' + fmtNum(conns ?? 0) + ' conn')
    })
  }
  const tbody = $('routes')
  const rows: Route[] = [...(status?.routes ?? [])]
  const names = rows.map((r, i) => r.name || '#' + i)
  for (const n of Object.keys(snapRoutes)) if (!names.includes(n)) { names.push(n); rows.push({ name: n }) }
  if (rows.length === 0) {
    tbody.replaceChildren()
    const tr = el('tr'); const td = el('td', 'empty', status === undefined ? 'Waiting for /status\u2026' : 'No routes reported.')
    td.colSpan = 6; tr.appendChild(td); tbody.appendChild(tr)
    return
  }
  sync(tbody, rows, (r, i) => r.name || '#' + i, () => {
    const tr = el('tr')
    tr.appendChild(el('td')); tr.appendChild(el('td', 'mono')); tr.appendChild(el('td'))
    tr.appendChild(el('td', 'n')); tr.appendChild(el('td', 'n')); tr.appendChild(el('td', 'n'))
    return tr
  }, (tr, r) => {
    const n = r.name || ''
    const s = own(snapRoutes, n) ?? {}
    setText(tr.children[0], n || DASH)
    setText(tr.children[1], r.pathPrefix === undefined ? DASH : matchText(r))
    setText(tr.children[2], r.backend || DASH)
    setText(tr.children[3], fmtNum(s.rps))
    setText(tr.children[4], fmtMs(s.p99))
    const rc = own(state.snapshot?.routeCache, n)
    setText(tr.children[5], r.cache === false ? 'off' : fmtPct(ratio(rc?.served, rc?.lookups)))
  })
}

function setConn (kind: string, text: string): void {
  const p = $('conn')
  setAttr(p, 'data-conn', kind)
  setText(p, text)
}

function safe (fn: () => void): void {
  try { fn() } catch (e) { console.error('dashboard: render failed', e) }
}
function renderAll (): void {
  safe(renderTiles); safe(renderCharts); safe(renderBackends); safe(renderWorkers); safe(renderRedis); safe(renderCache); safe(renderRoutes)
}

// ---- poll loop -------------------------------------------------------------------------------

let timer: number | undefined
let generation = 0
function tick (): Promise<void> {
  return Promise.allSettled([getJson('status'), getJson('snapshot')]).then(([status, snapshot]) => {
    let okCount = 0
    const errs: unknown[] = []
    if (status.status === 'fulfilled') { state.status = decodeStatus(status.value); okCount++ } else errs.push(status.reason)
    if (snapshot.status === 'fulfilled') { state.snapshot = decodeSnapshot(snapshot.value); updateServerRates(state.snapshot); okCount++ } else errs.push(snapshot.reason)
    const unauthorized = errs.some((e) => e instanceof Unauthorized)
    const notice = $('notice')
    if (unauthorized) {
      setConn('unauthorized', 'unauthorized')
      notice.textContent = token() ? 'The admin token in the URL was refused.' : 'This admin listener needs a token: open the page as \u2026/#token=YOUR_TOKEN'
      notice.hidden = false
    } else {
      notice.hidden = true
      if (okCount === 2) setConn('live', 'live')
      else if (okCount === 1) setConn('partial', 'partial data')
      else setConn('offline', 'offline')
    }
    if (okCount > 0) setText($('updated'), 'updated ' + fmtClock(Date.now()))
    const msg = errs.map((e) => e instanceof Error && e.message ? e.message : String(e)).join('; ')
    setAttr($('conn'), 'title', msg || undefined)
    renderAll()
  })
}
/** One poll at a time; a new generation (the token changed) retires the old loop. */
function loop (gen: number): void {
  if (gen !== generation) return
  tick().catch((e: unknown) => { console.error('dashboard: poll failed', e) }).finally(() => {
    if (gen === generation) timer = window.setTimeout(() => { loop(gen) }, POLL_MS)
  })
}

// ---- purge form ----------------------------------------------------------------------------

const PLACEHOLDERS: ReadonlyMap<string, string> = new Map([['url', 'https://example.com/path?q=1'], ['prefix', 'https://example.com/images/'], ['tag', 'product-42'],
  ['path', '/products/42'], ['pathPrefix', '/static/']])
/** The purge body of one form choice: a path on every host is `{path, prefix}`. */
function purgeBody (what: string, value: string): object {
  if (what === 'path') return { path: value }
  if (what === 'pathPrefix') return { path: value, prefix: true }
  return { [what]: value }
}
function wirePurge (): void {
  const form = byId('purge', HTMLFormElement)
  const kind = byId('purge-kind', HTMLSelectElement)
  const input = byId('purge-value', HTMLInputElement)
  const out = byId('purge-result', HTMLOutputElement)
  const btn = byId('purge-go', HTMLButtonElement)
  kind.addEventListener('change', () => { input.placeholder = PLACEHOLDERS.get(kind.value) ?? '' })
  form.addEventListener('submit', (ev) => {
    ev.preventDefault()
    const what = kind.value
    const value = input.value.trim()
    if (!value) { setAttr(out, 'data-tone', 'bad'); out.textContent = 'Enter a ' + what + ' to purge.'; return }
    btn.disabled = true
    setAttr(out, 'data-tone', undefined); out.textContent = 'Purging\u2026'
    fetch('cache/purge', { method: 'POST', headers: authHeaders({ 'content-type': 'application/json' }), body: JSON.stringify(purgeBody(what, value)), cache: 'no-store' })
      .then((r) => r.text().then((t) => {
        let parsed: unknown
        try { parsed = JSON.parse(t) } catch { parsed = undefined }
        const j = decodePurgeReply(parsed)
        if (r.ok && j.purged !== undefined) {
          setAttr(out, 'data-tone', 'good')
          out.textContent = 'Purged ' + j.purged + (j.purged === 1 ? ' entry' : ' entries') + ' for ' + what + ' ' + value
        } else {
          setAttr(out, 'data-tone', 'bad')
          out.textContent = 'Purge failed (' + r.status + '): ' + (j.error || t.trim() || r.statusText)
        }
      }))
      .catch((e: unknown) => { setAttr(out, 'data-tone', 'bad'); out.textContent = 'Purge failed: ' + (e instanceof Error && e.message ? e.message : String(e)) })
      .finally(() => { btn.disabled = false })
  })
}

function wireWindow (): void {
  const seg = $('window')
  seg.addEventListener('click', (ev) => {
    const b = ev.target instanceof Element ? ev.target.closest('button') : null
    const w = b?.dataset.w === undefined ? undefined : WINDOWS.get(b.dataset.w)
    if (!b || w === undefined) return
    state.windowMs = w
    for (const x of Array.from(seg.querySelectorAll('button'))) x.setAttribute('aria-pressed', String(x === b))
    safe(renderCharts)
  })
}

function start (): void {
  wirePurge()
  wireServerButtons()
  wireWindow()
  for (const id of ['c-rps', 'c-p50', 'c-p99', 'c-hit']) wireHover(byId(id, HTMLCanvasElement))
  window.addEventListener('resize', () => { safe(renderCharts) })
  window.addEventListener('hashchange', () => { window.clearTimeout(timer); generation++; loop(generation) })
  renderAll()
  loop(generation)
}
if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start); else start()
