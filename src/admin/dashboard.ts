// The live dashboard served at `GET /` by the admin listener: one
// self-contained page (inline CSS and JS, no external requests; works
// offline). It polls `status` and `snapshot` once a second, sending
// `Authorization: Bearer <token>` when the page was opened with `#token=…`.
//
// Data it reads (every field optional; missing ones render as "—"):
//   /status   { listeners: [{ name, bind, tls?, http2? }], routes: [{ name, backend, match }],
//               backends: [{ name, algorithm, active, retries, shards: [{ name, queued,
//                 servers: [{ name, url, weight, healthy, checkUp, ejected, active, requests,
//                   failures, lastCheck?: { ok, reason, status? } }] }] }],
//               cache?: { hits, misses, entries, bytes, maxBytes, ... } }
//   /snapshot { now, history: [{ t, rps, errors, hitRatio, backends: { [name]: { rps, p50, p99 } } }],
//               routes: { [name]: { rps?, errors?, p50?, p99? } }, backends: { [name]: { rps?, errors?, p50?, p99? } } }
//   Times are epoch milliseconds (seconds are accepted), latencies milliseconds,
//   `rps` and `errors` per second, `hitRatio` in [0, 1].
//
// Tests find servers by `data-server="<backend>/<shard>/<server>"` and their
// health by `data-state="up" | "down"`.
//
// The script and style are allowed by hash in DASHBOARD_CSP, so the page runs
// under a strict Content-Security-Policy (no 'unsafe-inline'). The script
// sets styles only through the CSSOM, which CSP does not restrict.
import { createHash } from 'node:crypto'

const CSS = String.raw`
:root {
  --bg: #f5f7fa; --card: #ffffff; --border: #d8dee4; --text: #1f2328; --muted: #59636e;
  --faint: #eef1f4; --grid: #e6e9ed; --accent: #0969da;
  --up: #1a7f37; --up-bg: #dafbe1; --down: #cf222e; --down-bg: #ffebe9; --warn: #9a6700; --warn-bg: #fff8c5;
  --shadow: 0 1px 2px rgba(31, 35, 40, .06);
  color-scheme: light dark;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #0d1117; --card: #161b22; --border: #30363d; --text: #e6edf3; --muted: #9198a1;
    --faint: #1c2129; --grid: #262c34; --accent: #4493f8;
    --up: #3fb950; --up-bg: rgba(46, 160, 67, .15); --down: #f85149; --down-bg: rgba(248, 81, 73, .12);
    --warn: #d29922; --warn-bg: rgba(187, 128, 9, .15); --shadow: none;
  }
}
* { box-sizing: border-box; }
html, body { margin: 0; }
body {
  background: var(--bg); color: var(--text);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  -webkit-font-smoothing: antialiased;
}
.num, td.n, .tile .value, .mini .v { font-variant-numeric: tabular-nums; }
code, .mono { font-family: ui-monospace, SFMono-Regular, "SF Mono", Menlo, Consolas, monospace; font-size: 12.5px; }
header.top {
  position: sticky; top: 0; z-index: 5; display: flex; align-items: center; gap: 16px;
  padding: 10px 24px; background: var(--card); border-bottom: 1px solid var(--border);
}
.brand { display: flex; align-items: center; gap: 10px; font-weight: 650; font-size: 16px; letter-spacing: -.01em; }
.brand svg { width: 22px; height: 22px; color: var(--accent); }
.brand .sub { color: var(--muted); font-weight: 500; }
.spacer { flex: 1; }
.pill {
  display: inline-flex; align-items: center; gap: 6px; padding: 2px 10px; border-radius: 999px;
  font-size: 12px; font-weight: 600; border: 1px solid var(--border); color: var(--muted); white-space: nowrap;
}
.pill::before { content: ""; width: 8px; height: 8px; border-radius: 50%; background: currentColor; }
.pill[data-conn="live"] { color: var(--up); background: var(--up-bg); border-color: transparent; }
.pill[data-conn="partial"] { color: var(--warn); background: var(--warn-bg); border-color: transparent; }
.pill[data-conn="offline"], .pill[data-conn="unauthorized"] { color: var(--down); background: var(--down-bg); border-color: transparent; }
#updated { color: var(--muted); font-size: 12px; }
main { max-width: 1400px; margin: 0 auto; padding: 20px 24px 48px; display: grid; gap: 20px; }
main > *, .charts > *, .two > *, #backends > * { min-width: 0; }
@media (max-width: 600px) { main { padding: 12px 10px 32px; } header.top { padding: 10px 12px; } #updated { display: none; } }
h2 { font-size: 13px; text-transform: uppercase; letter-spacing: .06em; color: var(--muted); margin: 0 0 10px; font-weight: 650; }
.card { background: var(--card); border: 1px solid var(--border); border-radius: 10px; box-shadow: var(--shadow); }
.notice { padding: 10px 14px; border-radius: 8px; background: var(--down-bg); color: var(--down); font-weight: 500; }
.notice[hidden] { display: none; }
.tiles { display: grid; grid-template-columns: repeat(auto-fit, minmax(170px, 1fr)); gap: 12px; }
.tile { padding: 14px 16px; }
.tile .label { color: var(--muted); font-size: 12px; font-weight: 600; }
.tile .value { font-size: 26px; font-weight: 650; letter-spacing: -.02em; margin-top: 2px; }
.tile .hint { color: var(--muted); font-size: 12px; min-height: 1.45em; }
.tile[data-tone="bad"] .value { color: var(--down); }
.tile[data-tone="good"] .value { color: var(--up); }
.bar { height: 6px; border-radius: 3px; background: var(--faint); overflow: hidden; margin-top: 6px; }
.bar > i { display: block; height: 100%; width: 0; background: var(--accent); border-radius: 3px; }
.charts-head { display: flex; align-items: center; gap: 12px; }
.charts-head h2 { margin: 0; }
.seg { display: inline-flex; border: 1px solid var(--border); border-radius: 6px; overflow: hidden; margin-left: auto; }
.seg button {
  font: inherit; font-size: 12px; padding: 2px 10px; border: 0; background: var(--card); color: var(--muted); cursor: pointer;
}
.seg button + button { border-left: 1px solid var(--border); }
.seg button[aria-pressed="true"] { background: var(--accent); color: #fff; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(min(100%, 520px), 1fr)); gap: 12px; margin-top: 10px; }
.chart { padding: 12px 14px 10px; position: relative; }
.chart h3 { margin: 0 0 6px; font-size: 13px; font-weight: 650; }
.chart canvas { display: block; width: 100%; height: 170px; }
.legend { display: flex; flex-wrap: wrap; gap: 4px 14px; margin-top: 6px; font-size: 12px; color: var(--muted); min-height: 18px; }
.legend span { display: inline-flex; align-items: center; gap: 6px; }
.legend i { width: 12px; height: 3px; border-radius: 2px; display: inline-block; }
.legend b { color: var(--text); font-weight: 600; }
.tip {
  position: absolute; pointer-events: none; background: var(--card); border: 1px solid var(--border); border-radius: 6px;
  padding: 6px 8px; font-size: 12px; box-shadow: 0 4px 12px rgba(0, 0, 0, .12); white-space: nowrap; z-index: 2;
}
.tip[hidden] { display: none; }
.tip .t { color: var(--muted); margin-bottom: 2px; }
#backends { display: grid; gap: 14px; }
.backend > header { display: flex; flex-wrap: wrap; align-items: center; gap: 10px 18px; padding: 12px 16px; border-bottom: 1px solid var(--border); }
.backend h3 { margin: 0; font-size: 16px; font-weight: 650; }
.badge { font-size: 11.5px; font-weight: 600; padding: 1px 8px; border-radius: 999px; background: var(--faint); color: var(--muted); }
.badge[data-tone="good"] { background: var(--up-bg); color: var(--up); }
.badge[data-tone="bad"] { background: var(--down-bg); color: var(--down); }
.badge[data-tone="warn"] { background: var(--warn-bg); color: var(--warn); }
.minis { display: flex; flex-wrap: wrap; gap: 4px 20px; margin-left: auto; }
.mini { display: flex; flex-direction: column; min-width: 56px; }
.mini .k { font-size: 11px; color: var(--muted); font-weight: 600; text-transform: uppercase; letter-spacing: .04em; }
.mini .v { font-weight: 650; }
.shard { padding: 8px 16px 12px; }
.shard + .shard { border-top: 1px dashed var(--border); }
.shard-head { display: flex; align-items: center; gap: 10px; margin: 4px 0 6px; font-size: 13px; }
.shard-head .sname { font-weight: 650; }
.shard-head .queued { color: var(--muted); }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; }
table.servers { table-layout: fixed; min-width: 1080px; }
table.servers th:nth-child(1) { width: 150px; }
table.servers th:nth-child(2) { width: 150px; }
table.servers th:nth-child(n+4):nth-child(-n+7) { width: 88px; }
table.servers th:nth-child(8) { width: 280px; }
table.servers td { overflow: hidden; text-overflow: ellipsis; }
th { text-align: left; font-size: 11px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); font-weight: 600; padding: 4px 10px; white-space: nowrap; }
td { padding: 6px 10px; border-top: 1px solid var(--faint); white-space: nowrap; }
th.n, td.n { text-align: right; }
td.check { white-space: normal; color: var(--muted); max-width: 360px; }
td.url { color: var(--muted); }
tr.server { border-left: 3px solid var(--up); }
tr.server td:first-child { font-weight: 600; }
.state { display: inline-flex; align-items: center; gap: 7px; }
.dot { width: 10px; height: 10px; border-radius: 50%; background: var(--up); box-shadow: 0 0 0 3px var(--up-bg); flex: none; }
.state .lbl { font-size: 12px; font-weight: 650; color: var(--up); text-transform: uppercase; letter-spacing: .03em; }
tr.server[data-state="down"] { background: var(--down-bg); border-left-color: var(--down); }
tr.server[data-state="down"] .dot { background: var(--down); box-shadow: 0 0 0 3px var(--down-bg); }
tr.server[data-state="down"] .lbl { color: var(--down); }
.empty { color: var(--muted); padding: 18px; text-align: center; }
.two { display: grid; grid-template-columns: repeat(auto-fit, minmax(min(100%, 420px), 1fr)); gap: 20px; align-items: start; }
.panel { padding: 14px 16px; }
dl.kv { display: grid; grid-template-columns: repeat(auto-fill, minmax(130px, 1fr)); gap: 10px 16px; margin: 0 0 14px; }
dl.kv div { display: flex; flex-direction: column; }
dl.kv dt { font-size: 11px; color: var(--muted); font-weight: 600; text-transform: uppercase; letter-spacing: .04em; }
dl.kv dd { margin: 0; font-weight: 650; font-variant-numeric: tabular-nums; }
form.purge { display: flex; flex-wrap: wrap; gap: 8px; align-items: center; padding-top: 12px; border-top: 1px solid var(--border); }
form.purge label { font-weight: 600; font-size: 13px; width: 100%; }
select, input[type="text"], button.primary {
  font: inherit; font-size: 13px; padding: 6px 10px; border-radius: 6px; border: 1px solid var(--border);
  background: var(--bg); color: var(--text);
}
input[type="text"] { flex: 1; min-width: 220px; }
input[type="text"]:focus, select:focus { outline: 2px solid var(--accent); outline-offset: -1px; }
button.primary { background: var(--down); border-color: var(--down); color: #fff; font-weight: 600; cursor: pointer; }
button.primary:disabled { opacity: .6; cursor: progress; }
#purge-result { width: 100%; font-size: 13px; min-height: 1.45em; }
#purge-result[data-tone="good"] { color: var(--up); }
#purge-result[data-tone="bad"] { color: var(--down); }
.chips { display: flex; flex-wrap: wrap; gap: 6px; margin-bottom: 12px; }
.chip { border: 1px solid var(--border); border-radius: 6px; padding: 3px 8px; font-size: 12.5px; }
.chip b { font-weight: 650; }
.chip .mono { color: var(--muted); }
footer { color: var(--muted); font-size: 12px; text-align: center; }
`

const JS = String.raw`
(function () {
  'use strict';

  var POLL_MS = 1000;
  var WINDOWS = { '1m': 60e3, '5m': 300e3, '15m': 900e3 };
  var PALETTE = ['#0969da', '#8250df', '#d4760b', '#0e8a8a', '#bf3989', '#6e7781', '#5a32a3', '#9a6700'];
  var state = { status: undefined, snapshot: undefined, windowMs: WINDOWS['5m'], colors: new Map() };

  // ---- defensive accessors --------------------------------------------------
  function num (v) { return typeof v === 'number' && isFinite(v) ? v : undefined; }
  function str (v) { return typeof v === 'string' ? v : typeof v === 'number' && isFinite(v) ? String(v) : undefined; }
  function arr (v) { return Array.isArray(v) ? v : []; }
  function obj (v) { return v !== null && typeof v === 'object' && !Array.isArray(v) ? v : {}; }
  function sum (xs) { var s = 0, any = false; xs.forEach(function (x) { if (x !== undefined) { s += x; any = true; } }); return any ? s : undefined; }
  function ms (t) { t = num(t); return t === undefined ? undefined : t < 1e11 ? t * 1000 : t; }

  // ---- formatting ------------------------------------------------------------
  var DASH = '\u2014';
  function fmtNum (v) {
    if (v === undefined) return DASH;
    var a = Math.abs(v);
    if (a >= 1e9) return (v / 1e9).toFixed(1) + 'G';
    if (a >= 1e6) return (v / 1e6).toFixed(1) + 'M';
    if (a >= 1e4) return (v / 1e3).toFixed(1) + 'k';
    if (Number.isInteger(v) || a >= 100) return Math.round(v).toLocaleString('en-US');
    return v.toFixed(a >= 10 ? 1 : 2).replace(/\.?0+$/, '');
  }
  function fmtMs (v) {
    if (v === undefined) return DASH;
    if (v === 0) return '0 ms';
    if (v < 1) return v.toFixed(2) + ' ms';
    if (v < 10) return v.toFixed(1) + ' ms';
    if (v < 1000) return Math.round(v) + ' ms';
    return (v / 1000).toFixed(v < 10000 ? 2 : 1) + ' s';
  }
  function fmtPct (r) {
    if (r === undefined) return DASH;
    var p = r * 100;
    if (p === 0) return '0%';
    if (p < 1) return p.toFixed(2) + '%';
    if (p < 100) return p.toFixed(1) + '%';
    return Math.round(p) + '%';
  }
  function fmtBytes (b) {
    if (b === undefined) return DASH;
    var units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'], i = 0;
    while (Math.abs(b) >= 1024 && i < units.length - 1) { b /= 1024; i++; }
    return (i === 0 ? String(Math.round(b)) : b.toFixed(b < 10 ? 2 : 1)) + ' ' + units[i];
  }
  function fmtClock (t) {
    var d = new Date(t);
    function p (n) { return n < 10 ? '0' + n : String(n); }
    return p(d.getHours()) + ':' + p(d.getMinutes()) + ':' + p(d.getSeconds());
  }
  function ratio (a, b) { return a === undefined || b === undefined || b === 0 ? undefined : a / b; }
  function words (k) { return k.replace(/([a-z0-9])([A-Z])/g, '$1 $2').toLowerCase(); }

  // ---- DOM helpers -----------------------------------------------------------
  function $ (id) { return document.getElementById(id); }
  function el (tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function setText (e, text) { if (e && e.textContent !== text) e.textContent = text; }
  function setAttr (e, name, value) {
    if (!e) return;
    if (value === undefined || value === null) { if (e.hasAttribute(name)) e.removeAttribute(name); }
    else if (e.getAttribute(name) !== value) e.setAttribute(name, value);
  }
  /** Keyed reconciliation: keeps one child per item, in order, reusing elements across polls. */
  function sync (parent, items, keyOf, create, update) {
    var old = new Map();
    Array.prototype.slice.call(parent.children).forEach(function (c) {
      if (c.dataset.key === undefined) c.remove(); else old.set(c.dataset.key, c);
    });
    var used = new Set(), prev = null;
    items.forEach(function (item, i) {
      var k = String(keyOf(item, i));
      if (used.has(k)) k = k + '#' + i;
      used.add(k);
      var node = old.get(k);
      if (node) old.delete(k); else { node = create(item); node.dataset.key = k; }
      update(node, item);
      var want = prev ? prev.nextSibling : parent.firstChild;
      if (node !== want) parent.insertBefore(node, want);
      prev = node;
    });
    old.forEach(function (n) { n.remove(); });
  }
  function emptyInto (parent, text) {
    if (parent.children.length === 1 && parent.firstChild.className === 'empty' && parent.firstChild.textContent === text) return;
    parent.replaceChildren(el('div', 'empty', text));
  }

  // ---- auth and fetching -----------------------------------------------------
  function token () {
    try { return new URLSearchParams(location.hash.replace(/^#/, '')).get('token') || ''; } catch (e) { return ''; }
  }
  function authHeaders (extra) {
    var h = Object.assign({}, extra || {});
    var t = token();
    if (t) h.authorization = 'Bearer ' + t;
    return h;
  }
  function getJson (path) {
    var ctrl = new AbortController();
    var timer = setTimeout(function () { ctrl.abort(); }, 4000);
    return fetch(path, { headers: authHeaders(), cache: 'no-store', signal: ctrl.signal }).then(function (r) {
      if (r.status === 401) { var e = new Error('unauthorized'); e.auth = true; throw e; }
      if (!r.ok) throw new Error(path + ': HTTP ' + r.status);
      return r.json();
    }).finally(function () { clearTimeout(timer); });
  }

  // ---- colours ---------------------------------------------------------------
  function cssVar (name) { return getComputedStyle(document.documentElement).getPropertyValue(name).trim(); }
  function colorFor (name) {
    if (!state.colors.has(name)) state.colors.set(name, PALETTE[state.colors.size % PALETTE.length]);
    return state.colors.get(name);
  }

  // ---- charts ----------------------------------------------------------------
  function niceMax (v) {
    if (!(v > 0)) return 1;
    var e = Math.pow(10, Math.floor(Math.log10(v)));
    var m = v / e;
    return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 2.5 ? 2.5 : m <= 5 ? 5 : 10) * e;
  }
  var PAD = { l: 58, r: 12, t: 10, b: 22 };

  function drawChart (canvas, spec) {
    canvas._spec = spec;
    var dpr = window.devicePixelRatio || 1;
    var w = canvas.clientWidth, h = canvas.clientHeight;
    if (!(w > 0 && h > 0)) return;
    if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
      canvas.width = Math.round(w * dpr); canvas.height = Math.round(h * dpr);
    }
    var ctx = canvas.getContext('2d');
    if (!ctx) return;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    var font = '11px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';
    var muted = cssVar('--muted') || '#59636e', grid = cssVar('--grid') || '#e6e9ed';
    var x0 = PAD.l, x1 = w - PAD.r, y0 = PAD.t, y1 = h - PAD.b;
    var end = spec.now, start = end - spec.windowMs;
    var max = 0, any = false;
    spec.series.forEach(function (s) {
      s.points.forEach(function (p) { if (p[0] >= start && p[1] !== undefined) { any = true; if (p[1] > max) max = p[1]; } });
    });
    var top = spec.max !== undefined ? spec.max : niceMax(max);
    function X (t) { return x0 + (t - start) / (end - start) * (x1 - x0); }
    function Y (v) { return y1 - v / top * (y1 - y0); }
    ctx.font = font; ctx.lineWidth = 1;
    // grid + y labels
    ctx.textAlign = 'right'; ctx.textBaseline = 'middle';
    for (var i = 0; i <= 4; i++) {
      var v = top * i / 4, y = Math.round(Y(v)) + 0.5;
      ctx.strokeStyle = grid; ctx.beginPath(); ctx.moveTo(x0, y); ctx.lineTo(x1, y); ctx.stroke();
      ctx.fillStyle = muted; ctx.fillText(spec.fmt(v), x0 - 8, y);
    }
    // x labels: one per minute (or per 15 s on the 1-minute window)
    ctx.textAlign = 'center'; ctx.textBaseline = 'top';
    var step = spec.windowMs <= 60e3 ? 15e3 : spec.windowMs <= 300e3 ? 60e3 : 180e3;
    for (var k = 0; k * step <= spec.windowMs; k++) {
      var tx = X(end - k * step);
      var label = k === 0 ? 'now' : '-' + (step < 60e3 ? (k * step / 1e3) + 's' : (k * step / 60e3) + 'm');
      ctx.fillStyle = muted; ctx.fillText(label, Math.min(Math.max(tx, x0 + 12), x1 - 12), y1 + 6);
    }
    if (!any) {
      ctx.textAlign = 'center'; ctx.textBaseline = 'middle'; ctx.fillStyle = muted;
      ctx.fillText('no data yet', (x0 + x1) / 2, (y0 + y1) / 2);
    }
    // lines; a gap in the samples (or a missing value) breaks the line
    ctx.save();
    ctx.beginPath(); ctx.rect(x0, y0 - 2, x1 - x0, y1 - y0 + 4); ctx.clip();
    spec.series.forEach(function (s) {
      ctx.strokeStyle = s.color; ctx.lineWidth = s.width || 1.75; ctx.lineJoin = 'round';
      ctx.setLineDash(s.dash || []);
      ctx.beginPath();
      var pen = false, lastT;
      s.points.forEach(function (p) {
        if (p[1] === undefined || p[0] < start - 5e3) { pen = false; return; }
        if (pen && lastT !== undefined && p[0] - lastT > 5e3) pen = false;
        var px = X(p[0]), py = Y(Math.min(p[1], top));
        if (pen) ctx.lineTo(px, py); else ctx.moveTo(px, py);
        pen = true; lastT = p[0];
      });
      ctx.stroke();
    });
    ctx.setLineDash([]);
    // hover crosshair
    if (canvas._hoverX !== undefined && any) {
      var ht = start + (canvas._hoverX - x0) / (x1 - x0) * (end - start);
      var hx = X(ht);
      ctx.strokeStyle = muted; ctx.lineWidth = 1; ctx.beginPath(); ctx.moveTo(hx, y0); ctx.lineTo(hx, y1); ctx.stroke();
      var rows = [];
      spec.series.forEach(function (s) {
        var best;
        s.points.forEach(function (p) { if (p[1] !== undefined && (best === undefined || Math.abs(p[0] - ht) < Math.abs(best[0] - ht))) best = p; });
        if (best && Math.abs(best[0] - ht) < 5e3) {
          ctx.fillStyle = s.color; ctx.beginPath(); ctx.arc(X(best[0]), Y(Math.min(best[1], top)), 3, 0, Math.PI * 2); ctx.fill();
          rows.push([s, best]);
        }
      });
      showTip(canvas, hx, ht, rows, spec.fmt);
    } else {
      showTip(canvas);
    }
    ctx.restore();
  }

  function showTip (canvas, x, t, rows, fmt) {
    var tip = canvas.parentNode.querySelector('.tip');
    if (!tip) return;
    if (!rows || rows.length === 0) { tip.hidden = true; return; }
    var box = el('div');
    box.appendChild(el('div', 't', fmtClock(t)));
    rows.forEach(function (r) {
      var line = el('div');
      var sw = el('i'); sw.style.display = 'inline-block'; sw.style.width = '10px'; sw.style.height = '3px';
      sw.style.marginRight = '6px'; sw.style.verticalAlign = 'middle'; sw.style.background = r[0].color;
      line.appendChild(sw);
      line.appendChild(document.createTextNode(r[0].label + ': '));
      line.appendChild(el('b', '', fmt(r[1][1])));
      box.appendChild(line);
    });
    tip.replaceChildren(box);
    tip.hidden = false;
    var left = canvas.offsetLeft + x + 12;
    if (left + tip.offsetWidth > canvas.offsetLeft + canvas.clientWidth) left = canvas.offsetLeft + x - tip.offsetWidth - 12;
    tip.style.left = left + 'px';
    tip.style.top = (canvas.offsetTop + 8) + 'px';
  }

  function legend (id, series, fmt) {
    var box = $(id);
    if (!box) return;
    sync(box, series, function (s) { return s.label; }, function () {
      var span = el('span'); span.appendChild(el('i')); span.appendChild(el('em')); span.appendChild(el('b'));
      return span;
    }, function (node, s) {
      node.children[0].style.background = s.color;
      setText(node.children[1], s.label);
      var last;
      for (var i = s.points.length - 1; i >= 0; i--) if (s.points[i][1] !== undefined) { last = s.points[i][1]; break; }
      setText(node.children[2], fmt(last));
    });
  }

  function wireHover (canvas) {
    canvas.addEventListener('mousemove', function (ev) {
      var r = canvas.getBoundingClientRect();
      var x = ev.clientX - r.left;
      canvas._hoverX = x >= PAD.l && x <= r.width - PAD.r ? x : undefined;
      if (canvas._spec) safe(function () { drawChart(canvas, canvas._spec); });
    });
    canvas.addEventListener('mouseleave', function () {
      canvas._hoverX = undefined;
      if (canvas._spec) safe(function () { drawChart(canvas, canvas._spec); });
    });
  }

  // ---- views -----------------------------------------------------------------
  function history () { return arr(obj(state.snapshot).history).filter(function (h) { return h !== null && typeof h === 'object'; }); }
  function latest () { var h = history(); return obj(h[h.length - 1]); }
  function backendsOf (status) { return arr(obj(status).backends).map(obj); }
  function serversOf (b) {
    var out = [];
    arr(b.shards).map(obj).forEach(function (s) { arr(s.servers).map(obj).forEach(function (v) { out.push(v); }); });
    return out;
  }
  function isDown (s) { return s.healthy === false || s.ejected === true || s.checkUp === false; }
  function stateLabel (s) {
    if (s.ejected === true) return 'ejected';
    if (s.checkUp === false) return 'check failing';
    if (s.healthy === false) return 'down';
    return 'up';
  }
  /** Current rates for a backend: the snapshot's own numbers, else the last history sample. */
  function backendRates (name) {
    var cur = obj(obj(obj(state.snapshot).backends)[name]);
    var hist = obj(obj(latest().backends)[name]);
    function pick (k) { return num(cur[k]) !== undefined ? num(cur[k]) : num(hist[k]); }
    return { rps: pick('rps'), errors: pick('errors'), p50: pick('p50'), p99: pick('p99') };
  }

  function renderTiles () {
    var status = obj(state.status), last = latest();
    var rps = num(last.rps), errors = num(last.errors);
    setText($('t-rps'), fmtNum(rps));
    setText($('t-rps-hint'), errors !== undefined ? fmtNum(errors) + ' errors/s' : '');
    var er = rps === undefined ? undefined : rps === 0 ? (errors === undefined ? undefined : 0) : ratio(errors, rps);
    setText($('t-err'), fmtPct(er));
    setAttr($('tile-err'), 'data-tone', er === undefined ? undefined : er >= 0.01 ? 'bad' : 'good');
    var backends = backendsOf(status);
    setText($('t-active'), fmtNum(sum(backends.map(function (b) { return num(b.active); }))));
    var queued = sum(backends.map(function (b) { return sum(arr(b.shards).map(function (s) { return num(obj(s).queued); })); }));
    setText($('t-active-hint'), queued ? fmtNum(queued) + ' queued' : '');
    var all = [], down = 0;
    backends.forEach(function (b) { serversOf(b).forEach(function (s) { all.push(s); if (isDown(s)) down++; }); });
    setText($('t-up'), all.length === 0 ? DASH : (all.length - down) + ' / ' + all.length);
    setText($('t-up-hint'), all.length === 0 ? '' : down === 0 ? 'all healthy' : down + ' down');
    setAttr($('tile-up'), 'data-tone', all.length === 0 ? undefined : down > 0 ? 'bad' : 'good');
    var cache = obj(status.cache);
    var life = ratio(num(cache.hits), sum([num(cache.hits), num(cache.misses)]));
    var recent = num(last.hitRatio);
    setText($('t-hit'), fmtPct(recent !== undefined ? recent : life));
    setText($('t-hit-hint'), life !== undefined ? 'lifetime ' + fmtPct(life) : status.cache === undefined && state.status !== undefined ? 'no cache' : '');
    var bytes = num(cache.bytes), maxBytes = num(cache.maxBytes);
    setText($('t-size'), fmtBytes(bytes));
    setText($('t-size-hint'), (maxBytes !== undefined ? 'of ' + fmtBytes(maxBytes) : '') +
      (num(cache.entries) !== undefined ? (maxBytes !== undefined ? ' \u00b7 ' : '') + fmtNum(num(cache.entries)) + ' entries' : ''));
    var fill = ratio(bytes, maxBytes);
    $('t-size-bar').style.width = fill === undefined ? '0' : Math.min(100, fill * 100).toFixed(1) + '%';
    document.title = (down > 0 ? '\u26a0 ' + down + ' down \u00b7 ' : '') + 'Switchyard admin';
  }

  function renderCharts () {
    var hist = history();
    var now = ms(obj(state.snapshot).now);
    if (now === undefined) { var lt = ms(latest().t); now = lt !== undefined ? lt : Date.now(); }
    var pts = function (f) { return hist.map(function (h) { return [ms(h.t), f(h)]; }).filter(function (p) { return p[0] !== undefined; }); };
    var names = [];
    backendsOf(state.status).forEach(function (b) { var n = str(b.name); if (n !== undefined && names.indexOf(n) < 0) names.push(n); });
    hist.forEach(function (h) { Object.keys(obj(h.backends)).forEach(function (n) { if (names.indexOf(n) < 0) names.push(n); }); });
    var base = { now: now, windowMs: state.windowMs };
    var up = cssVar('--accent') || '#0969da', down = cssVar('--down') || '#cf222e';
    var thr = [
      { label: 'requests/s', color: up, width: 2, points: pts(function (h) { return num(h.rps); }) },
      { label: 'errors/s', color: down, points: pts(function (h) { return num(h.errors); }) }
    ];
    drawChart($('c-rps'), Object.assign({ series: thr, fmt: fmtNum }, base));
    legend('l-rps', thr, fmtNum);
    ['p50', 'p99'].forEach(function (q) {
      var series = names.map(function (n) {
        return { label: n, color: colorFor(n), points: pts(function (h) { return num(obj(obj(h.backends)[n])[q]); }) };
      });
      drawChart($('c-' + q), Object.assign({ series: series, fmt: fmtMs }, base));
      legend('l-' + q, series, fmtMs);
    });
    var hit = [{ label: 'hit ratio', color: cssVar('--up') || '#1a7f37', width: 2, points: pts(function (h) { return num(h.hitRatio); }) }];
    drawChart($('c-hit'), Object.assign({ series: hit, fmt: fmtPct, max: 1 }, base));
    legend('l-hit', hit, fmtPct);
  }

  function mini (k) {
    var m = el('div', 'mini'); m.appendChild(el('span', 'k', k)); m.appendChild(el('span', 'v', DASH));
    return m;
  }
  function createBackend () {
    var card = el('article', 'card backend');
    var head = el('header');
    head.appendChild(el('h3'));
    head.appendChild(el('span', 'badge algo'));
    head.appendChild(el('span', 'badge health'));
    var minis = el('div', 'minis');
    ['req/s', 'err %', 'p50', 'p99', 'active', 'retries'].forEach(function (k) { minis.appendChild(mini(k)); });
    head.appendChild(minis);
    card.appendChild(head);
    card.appendChild(el('div', 'shards'));
    return card;
  }
  function updateBackend (card, b) {
    var name = str(b.name) || '(unnamed)';
    var head = card.firstChild;
    setText(head.children[0], name);
    setText(head.children[1], str(b.algorithm) || 'backend');
    var servers = serversOf(b), down = servers.filter(isDown).length;
    setText(head.children[2], servers.length === 0 ? 'no servers' : (servers.length - down) + '/' + servers.length + ' up');
    setAttr(head.children[2], 'data-tone', servers.length === 0 ? 'warn' : down === 0 ? 'good' : down === servers.length ? 'bad' : 'warn');
    var r = backendRates(name);
    var vals = [fmtNum(r.rps), r.rps === undefined || r.errors === undefined ? DASH : fmtPct(r.rps === 0 ? 0 : r.errors / r.rps),
      fmtMs(r.p50), fmtMs(r.p99), fmtNum(num(b.active)), fmtNum(num(b.retries))];
    var minis = head.children[3].children;
    vals.forEach(function (v, i) { setText(minis[i].children[1], v); });
    var shardsBox = card.children[1];
    var shards = arr(b.shards).map(obj);
    if (shards.length === 0) { emptyInto(shardsBox, 'No shards reported.'); return; }
    sync(shardsBox, shards, function (s, i) { return str(s.name) || '#' + i; }, createShard, function (node, s) { updateShard(node, s, name); });
  }
  var COLS = [['State', ''], ['Server', ''], ['URL', ''], ['Weight', 'n'], ['Active', 'n'], ['Requests', 'n'], ['Failures', 'n'], ['Last check', '']];
  function createShard () {
    var box = el('section', 'shard');
    var head = el('div', 'shard-head');
    head.appendChild(el('span', 'sname'));
    head.appendChild(el('span', 'badge'));
    head.appendChild(el('span', 'queued'));
    box.appendChild(head);
    var wrap = el('div', 'scroll');
    var table = el('table', 'servers');
    var tr = el('tr');
    COLS.forEach(function (c) { tr.appendChild(el('th', c[1], c[0])); });
    var thead = el('thead'); thead.appendChild(tr);
    table.appendChild(thead);
    table.appendChild(el('tbody'));
    wrap.appendChild(table);
    box.appendChild(wrap);
    return box;
  }
  function updateShard (box, s, backend) {
    var shardName = str(s.name) || 'default';
    var head = box.firstChild;
    setText(head.children[0], 'shard ' + shardName);
    var servers = arr(s.servers).map(obj), down = servers.filter(isDown).length;
    setText(head.children[1], servers.length === 0 ? 'empty' : (servers.length - down) + '/' + servers.length + ' up');
    setAttr(head.children[1], 'data-tone', servers.length === 0 ? 'warn' : down === 0 ? 'good' : down === servers.length ? 'bad' : 'warn');
    var q = num(s.queued);
    setText(head.children[2], q === undefined ? '' : q + ' queued');
    var tbody = box.querySelector('tbody');
    if (servers.length === 0) {
      tbody.replaceChildren();
      var tr = el('tr'); var td = el('td', 'empty', 'No servers.'); td.colSpan = COLS.length; tr.appendChild(td); tbody.appendChild(tr);
      return;
    }
    sync(tbody, servers, function (v, i) { return str(v.name) || str(v.url) || '#' + i; }, createServer, function (row, v) { updateServer(row, v, backend, shardName); });
  }
  function createServer () {
    var tr = el('tr', 'server');
    var st = el('td'); var wrap = el('span', 'state'); wrap.appendChild(el('span', 'dot')); wrap.appendChild(el('span', 'lbl'));
    st.appendChild(wrap); tr.appendChild(st);
    tr.appendChild(el('td', 'sv'));
    tr.appendChild(el('td', 'url mono'));
    ['weight', 'active', 'requests', 'failures'].forEach(function () { tr.appendChild(el('td', 'n')); });
    tr.appendChild(el('td', 'check'));
    return tr;
  }
  function updateServer (tr, v, backend, shard) {
    var name = str(v.name) || str(v.url) || '?';
    setAttr(tr, 'data-server', backend + '/' + shard + '/' + name);
    setAttr(tr, 'data-state', isDown(v) ? 'down' : 'up');
    var c = tr.children;
    setText(c[0].querySelector('.lbl'), stateLabel(v));
    setText(c[1], name);
    setText(c[2], str(v.url) || '');
    setText(c[3], fmtNum(num(v.weight)));
    setText(c[4], fmtNum(num(v.active)));
    setText(c[5], fmtNum(num(v.requests)));
    setText(c[6], fmtNum(num(v.failures)));
    var lc = v.lastCheck === undefined || v.lastCheck === null ? undefined : obj(v.lastCheck);
    var text = lc === undefined ? DASH : (lc.ok === true ? '\u2713 ' : lc.ok === false ? '\u2717 ' : '') +
      (str(lc.reason) || '') + (num(lc.status) !== undefined ? ' (' + lc.status + ')' : '');
    setText(c[7], text);
    setAttr(c[7], 'title', lc === undefined ? undefined : text);
  }
  function renderBackends () {
    var root = $('backends');
    var list = backendsOf(state.status);
    if (list.length === 0) { emptyInto(root, state.status === undefined ? 'Waiting for /status\u2026' : 'No backends reported.'); return; }
    sync(root, list, function (b, i) { return str(b.name) || '#' + i; }, createBackend, updateBackend);
  }

  var CACHE_LABELS = [['hits', 'Hits'], ['misses', 'Misses'], ['entries', 'Entries'], ['bytes', 'Size'], ['maxBytes', 'Max size'],
    ['evictions', 'Evictions'], ['staleServed', 'Stale served'], ['collapsed', 'Collapsed'], ['stored', 'Stored']];
  function renderCache () {
    var box = $('cache-stats');
    var status = state.status;
    if (status !== undefined && (obj(status).cache === undefined || obj(status).cache === null)) { emptyInto(box, 'No cache configured (or not reported).'); return; }
    var cache = obj(obj(status).cache);
    var known = CACHE_LABELS.map(function (p) { return p[0]; });
    var items = CACHE_LABELS.filter(function (p) { return num(cache[p[0]]) !== undefined; });
    Object.keys(cache).forEach(function (k) { if (known.indexOf(k) < 0 && num(cache[k]) !== undefined) items.push([k, words(k)]); });
    var life = ratio(num(cache.hits), sum([num(cache.hits), num(cache.misses)]));
    if (life !== undefined) items.splice(2, 0, ['__ratio', 'Hit ratio']);
    if (items.length === 0) { emptyInto(box, status === undefined ? 'Waiting for /status\u2026' : 'No cache counters reported.'); return; }
    sync(box, items, function (p) { return p[0]; }, function () {
      var d = el('div'); d.appendChild(el('dt')); d.appendChild(el('dd')); return d;
    }, function (d, p) {
      setText(d.children[0], p[1]);
      var v = p[0] === '__ratio' ? fmtPct(life) : /bytes$/i.test(p[0]) ? fmtBytes(num(cache[p[0]])) : fmtNum(num(cache[p[0]]));
      setText(d.children[1], v);
    });
  }

  function matchText (m) {
    m = obj(m);
    var parts = [];
    if (str(m.host)) parts.push(m.host);
    if (str(m.pathPrefix)) parts.push(m.pathPrefix + '*');
    if (arr(m.methods).length) parts.push(arr(m.methods).join(','));
    Object.keys(obj(m.headers)).forEach(function (h) { parts.push(h + ': ' + str(m.headers[h])); });
    return parts.length ? parts.join(' ') : '*';
  }
  function renderRoutes () {
    var status = obj(state.status), snapRoutes = obj(obj(state.snapshot).routes);
    var chips = $('listeners');
    var ls = arr(status.listeners).map(function (l) { return typeof l === 'string' ? { name: l } : obj(l); });
    if (ls.length === 0) emptyInto(chips, state.status === undefined ? 'Waiting for /status\u2026' : 'No listeners reported.');
    else {
      sync(chips, ls, function (l, i) { return str(l.name) || '#' + i; }, function () {
        var c = el('span', 'chip'); c.appendChild(el('b')); c.appendChild(document.createTextNode(' ')); c.appendChild(el('span', 'mono')); return c;
      }, function (c, l) {
        setText(c.children[0], str(l.name) || 'listener');
        var addr = str(l.bind) || str(l.address) || str(l.url) || '';
        var proto = l.tls ? (obj(l.tls).http2 === false || l.http2 === false ? 'https h1' : 'https h2+h1') : 'http';
        setText(c.children[1], addr + ' \u00b7 ' + proto);
      });
    }
    var tbody = $('routes');
    var list = arr(status.routes).map(obj);
    var names = list.map(function (r, i) { return str(r.name) || '#' + i; });
    Object.keys(snapRoutes).forEach(function (n) { if (names.indexOf(n) < 0) { names.push(n); list.push({ name: n }); } });
    if (list.length === 0) {
      tbody.replaceChildren();
      var tr = el('tr'); var td = el('td', 'empty', state.status === undefined ? 'Waiting for /status\u2026' : 'No routes reported.');
      td.colSpan = 5; tr.appendChild(td); tbody.appendChild(tr);
      return;
    }
    sync(tbody, list, function (r, i) { return str(r.name) || '#' + i; }, function () {
      var tr = el('tr');
      tr.appendChild(el('td')); tr.appendChild(el('td', 'mono')); tr.appendChild(el('td'));
      tr.appendChild(el('td', 'n')); tr.appendChild(el('td', 'n'));
      return tr;
    }, function (tr, r) {
      var n = str(r.name) || '';
      var s = obj(snapRoutes[n]);
      setText(tr.children[0], n || DASH);
      setText(tr.children[1], r.match === undefined ? DASH : matchText(r.match));
      setText(tr.children[2], str(r.backend) || DASH);
      setText(tr.children[3], fmtNum(num(s.rps)));
      setText(tr.children[4], fmtMs(num(s.p99)));
    });
  }

  function setConn (kind, text) {
    var p = $('conn');
    setAttr(p, 'data-conn', kind);
    setText(p, text);
  }

  function safe (fn) {
    try { fn(); } catch (e) { console.error('dashboard: render failed', e); }
  }
  function renderAll () {
    safe(renderTiles); safe(renderCharts); safe(renderBackends); safe(renderCache); safe(renderRoutes);
  }

  // ---- poll loop ---------------------------------------------------------------
  var timer, generation = 0;
  function tick () {
    return Promise.allSettled([getJson('status'), getJson('snapshot')]).then(function (res) {
      var okCount = 0, unauthorized = false, errs = [];
      if (res[0].status === 'fulfilled') { state.status = res[0].value; okCount++; } else { errs.push(res[0].reason); }
      if (res[1].status === 'fulfilled') { state.snapshot = res[1].value; okCount++; } else { errs.push(res[1].reason); }
      errs.forEach(function (e) { if (e && e.auth) unauthorized = true; });
      var notice = $('notice');
      if (unauthorized) {
        setConn('unauthorized', 'unauthorized');
        notice.textContent = token() ? 'The admin token in the URL was refused.' : 'This admin listener needs a token: open the page as \u2026/#token=YOUR_TOKEN';
        notice.hidden = false;
      } else {
        notice.hidden = true;
        if (okCount === 2) setConn('live', 'live');
        else if (okCount === 1) setConn('partial', 'partial data');
        else setConn('offline', 'offline');
      }
      if (okCount > 0) setText($('updated'), 'updated ' + fmtClock(Date.now()));
      var msg = errs.map(function (e) { return e && e.message ? e.message : String(e); }).join('; ');
      setAttr($('conn'), 'title', msg || undefined);
      renderAll();
    });
  }
  /** One poll at a time; a new generation (the token changed) retires the old loop. */
  function loop (gen) {
    if (gen !== generation) return;
    tick().catch(function (e) { console.error('dashboard: poll failed', e); }).finally(function () {
      if (gen === generation) timer = setTimeout(function () { loop(gen); }, POLL_MS);
    });
  }

  // ---- purge form ----------------------------------------------------------------
  var PLACEHOLDERS = { url: 'https://example.com/path?q=1', prefix: 'https://example.com/images/', tag: 'product-42' };
  function wirePurge () {
    var form = $('purge'), kind = $('purge-kind'), input = $('purge-value'), out = $('purge-result'), btn = $('purge-go');
    kind.addEventListener('change', function () { input.placeholder = PLACEHOLDERS[kind.value] || ''; });
    form.addEventListener('submit', function (ev) {
      ev.preventDefault();
      var value = input.value.trim();
      if (!value) { setAttr(out, 'data-tone', 'bad'); out.textContent = 'Enter a ' + kind.value + ' to purge.'; return; }
      var body = {}; body[kind.value] = value;
      btn.disabled = true;
      setAttr(out, 'data-tone', undefined); out.textContent = 'Purging\u2026';
      fetch('cache/purge', { method: 'POST', headers: authHeaders({ 'content-type': 'application/json' }), body: JSON.stringify(body), cache: 'no-store' })
        .then(function (r) {
          return r.text().then(function (t) {
            var j; try { j = JSON.parse(t); } catch (e) { j = undefined; }
            if (r.ok && j && num(j.purged) !== undefined) {
              setAttr(out, 'data-tone', 'good');
              out.textContent = 'Purged ' + j.purged + (j.purged === 1 ? ' entry' : ' entries') + ' for ' + kind.value + ' ' + value;
            } else {
              setAttr(out, 'data-tone', 'bad');
              out.textContent = 'Purge failed (' + r.status + '): ' + (j && str(j.error) ? j.error : t.trim() || r.statusText);
            }
          });
        })
        .catch(function (e) { setAttr(out, 'data-tone', 'bad'); out.textContent = 'Purge failed: ' + (e && e.message ? e.message : String(e)); })
        .finally(function () { btn.disabled = false; });
    });
  }

  function wireWindow () {
    var seg = $('window');
    seg.addEventListener('click', function (ev) {
      var b = ev.target.closest('button');
      if (!b || !WINDOWS[b.dataset.w]) return;
      state.windowMs = WINDOWS[b.dataset.w];
      Array.prototype.forEach.call(seg.querySelectorAll('button'), function (x) { x.setAttribute('aria-pressed', String(x === b)); });
      safe(renderCharts);
    });
  }

  function start () {
    wirePurge();
    wireWindow();
    ['c-rps', 'c-p50', 'c-p99', 'c-hit'].forEach(function (id) { wireHover($(id)); });
    window.addEventListener('resize', function () { safe(renderCharts); });
    window.addEventListener('hashchange', function () { clearTimeout(timer); generation++; loop(generation); });
    renderAll();
    loop(generation);
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start); else start();
})();
`

const LOGO = '<svg viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" aria-hidden="true">' +
  '<path d="M3 6h6l6 12h6"/><path d="M3 18h6l2-4"/><path d="M15 6h6"/><circle cx="12" cy="12" r="0.5"/></svg>'

function tile (id: string, label: string, extra = ''): string {
  return `<div class="card tile" id="tile-${id}"><div class="label">${label}</div><div class="value" id="t-${id}">\u2014</div>` +
    `<div class="hint" id="t-${id}-hint"></div>${extra}</div>`
}

function chart (id: string, title: string): string {
  return `<div class="card chart"><h3>${title}</h3><canvas id="c-${id}" role="img" aria-label="${title} chart"></canvas>` +
    `<div class="tip" hidden></div><div class="legend" id="l-${id}"></div></div>`
}

/** The whole page. */
export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Switchyard admin</title>
<link rel="icon" href="data:,">
<style>${CSS}</style>
</head>
<body>
<header class="top">
  <div class="brand">${LOGO}<span>Switchyard</span><span class="sub">admin</span></div>
  <div class="spacer"></div>
  <span id="updated"></span>
  <span id="conn" class="pill" data-conn="connecting" title="">connecting\u2026</span>
</header>
<main>
  <div id="notice" class="notice" role="alert" hidden></div>
  <section class="tiles" aria-label="Summary">
    ${tile('rps', 'Requests / s')}
    ${tile('err', 'Error rate')}
    ${tile('active', 'Active requests')}
    ${tile('up', 'Servers up')}
    ${tile('hit', 'Cache hit ratio')}
    ${tile('size', 'Cache size', '<div class="bar"><i id="t-size-bar"></i></div>')}
  </section>
  <section aria-label="Charts">
    <div class="charts-head"><h2>Traffic</h2>
      <div class="seg" id="window" role="group" aria-label="Time window">
        <button type="button" data-w="1m" aria-pressed="false">1m</button><button type="button" data-w="5m" aria-pressed="true">5m</button><button type="button" data-w="15m" aria-pressed="false">15m</button>
      </div>
    </div>
    <div class="charts">
      ${chart('rps', 'Throughput')}
      ${chart('hit', 'Cache hit ratio')}
      ${chart('p50', 'Latency p50')}
      ${chart('p99', 'Latency p99')}
    </div>
  </section>
  <section aria-label="Backends">
    <h2>Backends</h2>
    <div id="backends"></div>
  </section>
  <section class="two">
    <div class="card panel" aria-label="Cache">
      <h2>Cache</h2>
      <dl class="kv" id="cache-stats"></dl>
      <form class="purge" id="purge" autocomplete="off">
        <label for="purge-value">Purge from the cache</label>
        <select id="purge-kind" aria-label="What to purge">
          <option value="url">URL</option><option value="prefix">URL prefix</option><option value="tag">Tag</option>
        </select>
        <input type="text" id="purge-value" name="value" placeholder="https://example.com/path?q=1" spellcheck="false">
        <button type="submit" class="primary" id="purge-go">Purge</button>
        <output id="purge-result" role="status" aria-live="polite"></output>
      </form>
    </div>
    <div class="card panel" aria-label="Listeners and routes">
      <h2>Listeners</h2>
      <div class="chips" id="listeners"></div>
      <h2>Routes</h2>
      <div class="scroll"><table>
        <thead><tr><th>Route</th><th>Match</th><th>Backend</th><th class="n">req/s</th><th class="n">p99</th></tr></thead>
        <tbody id="routes"></tbody>
      </table></div>
    </div>
  </section>
  <footer>Refreshes every second \u00b7 data from <code>/status</code> and <code>/snapshot</code></footer>
</main>
<script>${JS}</script>
</body>
</html>
`

const sha256 = (s: string): string => `'sha256-${createHash('sha256').update(s, 'utf8').digest('base64')}'`

/** Allows exactly the page's own inline script and style, and requests to the admin listener itself. */
export const DASHBOARD_CSP = [
  "default-src 'none'",
  `script-src ${sha256(JS)}`,
  `style-src ${sha256(CSS)}`,
  "connect-src 'self'",
  'img-src data:',
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'"
].join('; ')

/** The inline script alone, for a syntax check in tests. */
export const DASHBOARD_SCRIPT = JS
