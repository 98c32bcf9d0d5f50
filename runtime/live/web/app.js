// SPDX-License-Identifier: MIT
// The browser view: one WebSocket to /ws speaking docs/protocol.md. It reads
// Self's output (W) through a diff subscription (whole W once, then patches
// of what changed) whose `every` keeps updates near 10 per second whatever
// the engine's rate, draws the neuron graph and W as a heat map (binned past
// 512 rows or columns, with a full-resolution window around a clicked bin),
// shows the outputs of a picked neuron, and sends every change as an
// ordinary request (set, edit, pause, ...), so the server validates and logs
// it as it does for any client.
"use strict";

const $ = (id) => document.getElementById(id);
const byLabel = new Intl.Collator("en", { numeric: true }).compare;
const MAX_EDGES = 4000; // edges drawn; the largest |w| first
const SPARK_LEN = 300; // cycles kept per sparkline
const MAX_CELLS = 512; // heat-map cells drawn per dimension; more are binned
const WIN = 64; // the full-resolution window around a clicked bin
const TREE_MAX = 300; // numbers and nodes shown in a neuron's output tree

const S = {
  ws: null, nextId: 1, waiting: new Map(), subs: new Map(),
  self: null, Wmap: new Map(), wSub: 0, every: 1, W: [], rows: [], cols: [], neurons: [],
  maxAbs: 1, dirty: false, sel: null, selSub: 0, sparks: new Map(),
  lastStatus: null, drawnEdges: [], token: null, Wv: {}, bin: null, win: null, wStep: -1,
};

// ---- paths: labels joined by "/", with "\" escaping "/" and "\" ----------
const esc = (l) => l.replace(/\\/g, "\\\\").replace(/\//g, "\\/");
const join = (parts) => parts.map(esc).join("/");
// A path's labels; "" is the empty list.
function split(path) {
  const out = [];
  let cur = "";
  if (path === "") return out;
  for (let i = 0; i < path.length; i++) {
    const ch = path[i];
    if (ch === "\\" && i + 1 < path.length) cur += path[++i];
    else if (ch === "/") { out.push(cur); cur = ""; }
    else cur += ch;
  }
  out.push(cur);
  return out;
}

function log(text, err) {
  const d = document.createElement("div");
  d.textContent = text;
  if (err) d.className = "err";
  $("log").prepend(d);
  while ($("log").childNodes.length > 50) $("log").lastChild.remove();
}

// ---- the connection ------------------------------------------------------
function rpc(op, fields) {
  const id = S.nextId++;
  const msg = Object.assign({ id, op }, fields || {});
  return new Promise((resolve) => {
    S.waiting.set(id, resolve);
    if (S.ws && S.ws.readyState === WebSocket.OPEN) S.ws.send(JSON.stringify(msg));
    else { S.waiting.delete(id); resolve({ ok: false, error: { code: "closed", message: "not connected" } }); }
  });
}

async function must(op, fields) {
  const r = await rpc(op, fields);
  if (!r.ok) log(`${op}: ${r.error.code}: ${r.error.message}${r.error.path ? " at " + r.error.path : ""}`, true);
  return r;
}

function tokenFromUrl() {
  const m = /(?:^#|&)token=([^&]*)/.exec(location.hash);
  if (m) return decodeURIComponent(m[1]);
  return sessionStorage.getItem("dmm-token");
}

function connect() {
  S.token = tokenFromUrl();
  const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws");
  S.ws = ws;
  ws.onmessage = (ev) => {
    let m;
    try { m = JSON.parse(ev.data); } catch (e) { log("not JSON from the server", true); return; }
    if (m.event === "cycle" || m.event === "patch") { const h = S.subs.get(m.subscription); if (h) h(m); return; }
    if (m.event) { log(`${m.event}: ${m.message || ""}`, m.event !== "idle"); return; }
    const r = S.waiting.get(m.id);
    if (r) { S.waiting.delete(m.id); r(m); }
  };
  ws.onopen = start;
  ws.onclose = () => {
    $("conn").textContent = "disconnected";
    for (const r of S.waiting.values()) r({ ok: false, error: { code: "closed", message: "connection closed" } });
    S.waiting.clear();
    S.subs.clear();
  };
}

async function start() {
  const hello = await rpc("hello", S.token ? { token: S.token } : {});
  if (!hello.ok) {
    const t = prompt("This server needs its token:");
    if (t) { sessionStorage.setItem("dmm-token", t); setTimeout(connect, 100); }
    $("conn").textContent = "unauthorized";
    return;
  }
  $("conn").textContent = "connected";
  // status says which output is Self's (W); W itself comes by subscription.
  const st = await must("status");
  if (!st.ok) return;
  S.self = st.self.path;
  await subscribeW(1);
  status();
  setInterval(status, 500);
}

function get(v, parts) {
  for (const p of parts) { if (v === null || typeof v !== "object" || !(p in v)) return {}; v = v[p]; }
  return v;
}

// A diff subscription: its first event holds W whole, then each one holds
// the patches since the one before (docs/protocol.md).
async function subscribeW(every) {
  const old = S.wSub;
  S.wSub = 0;
  if (old) { S.subs.delete(old); rpc("unsubscribe", { subscription: old }); }
  const r = await must("subscribe", { paths: [S.self], every, diff: true });
  if (!r.ok) return;
  S.every = every;
  S.wSub = r.subscription;
  S.subs.set(r.subscription, (ev) => {
    if (ev.event === "cycle") S.Wv = ev.values[S.self];
    else for (const [rel, v] of ev.patches[S.self] || []) S.Wv = patch(S.Wv, split(rel), v);
    S.wStep = ev.step;
    setW(S.Wv);
  });
}

// The subtree at parts of root replaced by v ({} removes it); a last part
// ":number" sets only the scalar part. Returns the new root.
function patch(root, parts, v) {
  if (!parts.length) return v;
  const obj = (x) => (x !== null && typeof x === "object" ? x : x ? { ":number": x } : {});
  root = obj(root);
  let node = root;
  for (let i = 0; i < parts.length - 1; i++) node = node[parts[i]] = obj(node[parts[i]]);
  const last = parts[parts.length - 1];
  if (last !== ":number" && v !== null && typeof v === "object" && !Object.keys(v).length) delete node[last];
  else node[last] = v;
  return root;
}

// After a change or a step the page asks for W again (whole, then patches):
// the subscription's `every` may skip the cycle that shows it.
function refreshW() { return subscribeW(S.every); }

// Updates near 10 per second: every = cycles per second / 10.
async function status() {
  const r = await rpc("status");
  if (!r.ok) return;
  $("step").textContent = r.step;
  $("rate").textContent = r.rate;
  $("status").textContent = r.running ? "running" : "paused";
  const now = performance.now(), last = S.lastStatus;
  S.lastStatus = { t: now, step: r.step };
  if (!last || now - last.t < 100) return;
  const cps = ((r.step - last.step) * 1000) / (now - last.t);
  $("speed").textContent = r.running ? `${cps.toFixed(1)} cycles/s` : "";
  const want = Math.max(1, Math.round(cps / 10));
  if (r.running && S.wSub && (want > 2 * S.every || want * 2 < S.every)) subscribeW(want);
}

// ---- W: six levels, f/nf/i (a row, an input) × g/ng/o (a column, an output)
function num(v) { return typeof v === "number" ? v : v && typeof v[":number"] === "number" ? v[":number"] : 0; }

function setW(w) {
  const out = [];
  const walk = (v, parts) => {
    if (parts.length === 6) { const x = num(v); if (x !== 0) out.push({ p: parts, w: x }); return; }
    if (v === null || typeof v !== "object") return;
    for (const k of Object.keys(v)) if (k !== ":number") walk(v[k], parts.concat([k]));
  };
  walk(w, []);
  S.W = out;
  const rows = new Set(), cols = new Set(), neurons = new Set();
  S.Wmap = new Map();
  let maxAbs = 0;
  for (const e of out) {
    e.row = join(e.p.slice(0, 3)); e.col = join(e.p.slice(3));
    e.to = join(e.p.slice(0, 2)); e.from = join(e.p.slice(3, 5));
    rows.add(e.row); cols.add(e.col); neurons.add(e.to); neurons.add(e.from);
    S.Wmap.set(e.row + "\n" + e.col, e);
    maxAbs = Math.max(maxAbs, Math.abs(e.w));
  }
  S.rows = [...rows].sort(byLabel);
  S.cols = [...cols].sort(byLabel);
  S.maxAbs = maxAbs || 1;
  const list = [...neurons].sort(byLabel);
  if (list.join("\n") !== S.neurons.join("\n")) { S.neurons = list; drawNeuronList(); }
  if (!S.dirty) { S.dirty = true; requestAnimationFrame(draw); }
}

// Diverging map, 0 white: red positive, blue negative (as dmm render).
function colour(x) {
  const t = Math.max(-1, Math.min(1, x / S.maxAbs));
  const a = Math.round(255 * (1 - Math.abs(t)));
  return t >= 0 ? [255, a, a] : [a, a, 255];
}

function draw() {
  S.dirty = false;
  drawGraph();
  drawHeat();
  showHover();
}

// ---- the graph: a column per type, its neurons stacked -----------------
function layout(canvas) {
  const types = new Map();
  for (const n of S.neurons) {
    const t = n.split(/(?<!\\)\//)[0];
    if (!types.has(t)) types.set(t, []);
    types.get(t).push(n);
  }
  const pos = new Map(), W = canvas.width, H = canvas.height, tw = W / Math.max(1, types.size);
  let ti = 0;
  for (const [t, ns] of types) {
    const per = Math.max(1, Math.floor((H - 40) / 16)), sub = Math.ceil(ns.length / per);
    ns.forEach((n, i) => {
      const c = Math.floor(i / per), r = i % per, rowsHere = Math.min(per, ns.length - c * per);
      pos.set(n, { x: ti * tw + ((c + 0.5) * tw) / sub, y: 30 + ((r + 0.5) * (H - 40)) / rowsHere, type: t });
    });
    pos.set("#type:" + t, { x: ti * tw + tw / 2, y: 14 });
    ti++;
  }
  return { pos, types };
}

function drawGraph() {
  const cv = $("graph"), g = cv.getContext("2d");
  g.clearRect(0, 0, cv.width, cv.height);
  const { pos, types } = layout(cv);
  let edges = S.W;
  if (edges.length > MAX_EDGES) edges = [...edges].sort((a, b) => Math.abs(b.w) - Math.abs(a.w)).slice(0, MAX_EDGES);
  $("graph-note").textContent = edges.length < S.W.length ? `(the ${MAX_EDGES} largest of ${S.W.length} weights)` : `(${S.W.length} weights)`;
  S.drawnEdges = [];
  for (const e of edges) {
    const a = pos.get(e.from), b = pos.get(e.to);
    if (!a || !b) continue;
    const [r, gg, bb] = colour(e.w);
    g.strokeStyle = `rgb(${Math.min(r, 230)},${Math.min(gg, 200)},${Math.min(bb, 230)})`;
    g.lineWidth = 0.5 + (3.5 * Math.abs(e.w)) / S.maxAbs;
    const toSelfDelta = e.p[2] === "delta" && join(e.p.slice(0, 2)) === join(S.self.split("/").slice(0, 2));
    g.setLineDash(toSelfDelta ? [6, 3] : []);
    g.beginPath();
    let m;
    if (a === b) { // a neuron reading itself: a loop
      g.arc(a.x + 12, a.y - 8, 8, 0, 2 * Math.PI);
      m = { x: a.x + 20, y: a.y - 8 };
    } else {
      const cx = (a.x + b.x) / 2 + (b.y - a.y) * 0.15, cy = (a.y + b.y) / 2 - (b.x - a.x) * 0.15;
      g.moveTo(a.x, a.y);
      g.quadraticCurveTo(cx, cy, b.x, b.y);
      m = { x: 0.25 * a.x + 0.5 * cx + 0.25 * b.x, y: 0.25 * a.y + 0.5 * cy + 0.25 * b.y };
    }
    g.stroke();
    S.drawnEdges.push({ e, m });
  }
  g.setLineDash([]);
  g.font = "11px monospace";
  g.textAlign = "center";
  for (const t of types.keys()) {
    const p = pos.get("#type:" + t);
    g.fillStyle = "#555";
    g.fillText(t, p.x, p.y);
  }
  for (const n of S.neurons) {
    const p = pos.get(n);
    g.fillStyle = n === S.sel ? "#ffb300" : "#37474f";
    g.beginPath(); g.arc(p.x, p.y, 5, 0, 2 * Math.PI); g.fill();
    if (S.neurons.length <= 120) { g.fillStyle = "#000"; g.fillText(n, p.x, p.y - 8); }
  }
}

$("graph").addEventListener("click", (ev) => {
  const cv = $("graph"), rect = cv.getBoundingClientRect();
  const x = ((ev.clientX - rect.left) * cv.width) / rect.width, y = ((ev.clientY - rect.top) * cv.height) / rect.height;
  let best = null, bd = 12 * 12;
  for (const d of S.drawnEdges) {
    const dd = (d.m.x - x) ** 2 + (d.m.y - y) ** 2;
    if (dd < bd) { bd = dd; best = d.e; }
  }
  if (best) pickWeight(best.row + "/" + best.col, best.w);
});

// ---- the heat map: rows = inputs, columns = outputs, in label order -----
// Past MAX_CELLS rows or columns, each drawn cell is a bin of br × bc cells
// showing its largest weight (by size); a click on a bin opens a window of
// WIN × WIN cells at full resolution around it, where a click picks one.
function cellIndex() {
  const ri = new Map(S.rows.map((r, i) => [r, i])), ci = new Map(S.cols.map((c, i) => [c, i]));
  return { ri, ci };
}

function drawHeat() {
  const cv = $("heat"), z = +$("zoom").value, nr = S.rows.length, nc = S.cols.length;
  if (!nr || !nc) return;
  const br = Math.ceil(nr / MAX_CELLS), bc = Math.ceil(nc / MAX_CELLS);
  const h = Math.ceil(nr / br), w = Math.ceil(nc / bc);
  S.bin = br > 1 || bc > 1 ? { br, bc, h, w } : null;
  $("heat-note").textContent = S.bin ? `${nr} × ${nc}, binned ${br} × ${bc}: click for a full-resolution window` : `${nr} × ${nc}`;
  if (cv.width !== w || cv.height !== h) { cv.width = w; cv.height = h; }
  // "fit" (0): as large as fits about 540 pixels, binned or not.
  const fit = Math.max(1, Math.min(48, Math.floor(540 / Math.max(w, h))));
  const zz = z ? (S.bin ? Math.min(z, fit) : z) : fit;
  cv.style.width = w * zz + "px";
  cv.style.height = h * zz + "px";
  const g = cv.getContext("2d"), img = g.createImageData(w, h), d = img.data;
  d.fill(255);
  const { ri, ci } = cellIndex(), best = S.bin ? new Float64Array(w * h) : null;
  for (const e of S.W) {
    const r = Math.floor(ri.get(e.row) / br), c = Math.floor(ci.get(e.col) / bc), at = r * w + c;
    if (best) { if (Math.abs(e.w) <= Math.abs(best[at])) continue; best[at] = e.w; }
    const k = 4 * at, [R, G, B] = colour(e.w);
    d[k] = R; d[k + 1] = G; d[k + 2] = B;
  }
  g.putImageData(img, 0, 0);
  drawWindow();
}

// The window: WIN × WIN cells from (r0, c0), every weight at full size.
function drawWindow() {
  const cv = $("heat-win");
  if (!S.win || !S.bin) { cv.hidden = true; $("win-note").textContent = ""; S.win = null; return; }
  const nr = S.rows.length, nc = S.cols.length;
  const r0 = Math.max(0, Math.min(S.win.r0, nr - WIN)), c0 = Math.max(0, Math.min(S.win.c0, nc - WIN));
  const h = Math.min(WIN, nr), w = Math.min(WIN, nc);
  Object.assign(S.win, { r0, c0, h, w });
  cv.hidden = false;
  cv.width = w; cv.height = h;
  cv.style.width = w * 6 + "px";
  cv.style.height = h * 6 + "px";
  $("win-note").textContent = `window: rows ${r0}–${r0 + h - 1}, columns ${c0}–${c0 + w - 1} at full resolution`;
  const g = cv.getContext("2d"), img = g.createImageData(w, h), d = img.data;
  d.fill(255);
  const { ri, ci } = cellIndex();
  for (const e of S.W) {
    const r = ri.get(e.row) - r0, c = ci.get(e.col) - c0;
    if (r < 0 || c < 0 || r >= h || c >= w) continue;
    const k = 4 * (r * w + c), [R, G, B] = colour(e.w);
    d[k] = R; d[k + 1] = G; d[k + 2] = B;
  }
  g.putImageData(img, 0, 0);
}

function weightAt(r, c) {
  const path = S.rows[r] + "/" + S.cols[c], e = S.Wmap.get(S.rows[r] + "\n" + S.cols[c]);
  return { path, w: e ? e.w : 0, r, c };
}

// The cell (or bin's first cell) under the pointer on canvas cv of h × w
// drawn cells, each of br × bc cells of W starting at (r0, c0).
function cellAt(ev, cv, h, w, br, bc, r0, c0) {
  const rect = cv.getBoundingClientRect();
  const c = Math.floor(((ev.clientX - rect.left) / rect.width) * w), r = Math.floor(((ev.clientY - rect.top) / rect.height) * h);
  if (r < 0 || c < 0 || r >= h || c >= w) return null;
  const R = r0 + r * br, C = c0 + c * bc;
  return R < S.rows.length && C < S.cols.length ? weightAt(R, C) : null;
}
const heatCell = (ev) => (S.bin ? cellAt(ev, $("heat"), S.bin.h, S.bin.w, S.bin.br, S.bin.bc, 0, 0) : cellAt(ev, $("heat"), S.rows.length, S.cols.length, 1, 1, 0, 0));
const winCell = (ev) => (S.win ? cellAt(ev, $("heat-win"), S.win.h, S.win.w, 1, 1, S.win.r0, S.win.c0) : null);

// The last pointer position over a heat map, read again whenever W is drawn:
// a weight that changes under a still pointer shows its new value.
let hover = null;
function showHover() {
  const c = hover && hover.at(hover.ev);
  if (hover) $("heat-hover").textContent = c ? hover.text(c) : "";
}
const hoverOn = (at, text) => (ev) => { hover = { ev, at, text }; showHover(); };
$("heat").addEventListener("mousemove", hoverOn(heatCell, (c) => (S.bin ? `bin at ${c.path}` : `${c.path} = ${c.w}`)));
$("heat").addEventListener("click", (ev) => {
  const c = heatCell(ev);
  if (!c) return;
  if (!S.bin) { pickWeight(c.path, c.w); return; }
  S.win = { r0: c.r + Math.floor(S.bin.br / 2) - WIN / 2, c0: c.c + Math.floor(S.bin.bc / 2) - WIN / 2 };
  drawWindow();
});
$("heat-win").addEventListener("mousemove", hoverOn(winCell, (c) => `${c.path} = ${c.w}`));
for (const id of ["heat", "heat-win"]) $(id).addEventListener("mouseleave", () => { hover = null; });
$("heat-win").addEventListener("click", (ev) => { const c = winCell(ev); if (c) pickWeight(c.path, c.w); });
$("zoom").addEventListener("change", drawHeat);

// Where things are on screen, for the browser test: a weight's cell (in
// the window when W is binned and the window holds it; else its bin), an
// edge's midpoint in the graph.
function centre(cv, h, w, r, c) {
  const rect = cv.getBoundingClientRect();
  return { x: rect.left + ((c + 0.5) * rect.width) / w, y: rect.top + ((r + 0.5) * rect.height) / h };
}
window.dmmView = {
  cellCenter(path) {
    for (let r = 0; r < S.rows.length; r++) {
      if (!path.startsWith(S.rows[r] + "/")) continue;
      const c = S.cols.indexOf(path.slice(S.rows[r].length + 1));
      if (c < 0) continue;
      const win = S.win;
      if (win && r >= win.r0 && r < win.r0 + win.h && c >= win.c0 && c < win.c0 + win.w)
        return Object.assign(centre($("heat-win"), win.h, win.w, r - win.r0, c - win.c0), { window: true });
      if (S.bin) return centre($("heat"), S.bin.h, S.bin.w, Math.floor(r / S.bin.br), Math.floor(c / S.bin.bc));
      return centre($("heat"), S.rows.length, S.cols.length, r, c);
    }
    return null;
  },
  edgeCenter(path) {
    const cv = $("graph"), rect = cv.getBoundingClientRect();
    const d = S.drawnEdges.find((x) => x.e.row + "/" + x.e.col === path);
    return d ? { x: rect.left + (d.m.x * rect.width) / cv.width, y: rect.top + (d.m.y * rect.height) / cv.height } : null;
  },
  heat() { return { rows: S.rows.length, cols: S.cols.length, bin: S.bin, win: S.win, step: S.wStep }; },
  sparks() { return [...S.sparks.values()].map((h) => h.values.length); },
};

// ---- changes: a weight, an edit ------------------------------------------
function pickWeight(path, w) {
  $("weight-path").value = path;
  $("weight-value").value = String(w);
  $("weight-value").focus();
  $("weight-value").select();
}

$("weight-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const value = Number($("weight-value").value);
  if (!Number.isFinite(value)) { log("set: the weight must be a number", true); return; }
  const r = await must("set", { path: $("weight-path").value, value });
  if (r.ok) { log(`set ${$("weight-path").value} = ${r.value} (from step ${r.step})`); refreshW(); }
});

$("edit-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  let delta;
  try { delta = JSON.parse($("edit-delta").value); } catch (e) { log("edit: not JSON: " + e.message, true); return; }
  const r = await must("edit", { delta });
  if (r.ok) { log(`edit applied (from step ${r.step})`); refreshW(); }
});

$("remove-neuron").addEventListener("click", async () => {
  // Every weight into or out of the neuron, negated: one edit.
  const delta = {};
  for (const e of S.W) {
    if (e.to !== S.sel && e.from !== S.sel) continue;
    let v = delta;
    for (let i = 0; i < 5; i++) v = v[e.p[i]] = v[e.p[i]] || {};
    v[e.p[5]] = -e.w;
  }
  const r = await must("edit", { delta });
  if (r.ok) { log(`removed ${S.sel} (from step ${r.step})`); refreshW(); }
});

// ---- controls ---------------------------------------------------------------
$("pause").onclick = () => must("pause").then(status);
$("resume").onclick = () => must("resume").then(status);
$("step-btn").onclick = () => must("step", { n: Math.max(1, +$("step-n").value || 1) }).then(() => { status(); refreshW(); });
$("rate-btn").onclick = () => {
  const v = $("rate-in").value.trim();
  must("rate", { hz: v === "max" ? "max" : Number(v) }).then(status);
};
$("undo").onclick = () => must("undo").then((r) => { if (r.ok) { log("undone"); refreshW(); } });
$("save").onclick = async () => {
  const r = await must("snapshot");
  if (!r.ok) return;
  const a = document.createElement("a");
  a.href = URL.createObjectURL(new Blob([JSON.stringify(r.state, null, 1)], { type: "application/json" }));
  a.download = `dmm-state-${r.state.step}.json`;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
};

// ---- a neuron's outputs: a tree of numbers, sparklines, pictures ----------
function drawNeuronList() {
  const ul = $("neurons");
  ul.replaceChildren();
  for (const n of S.neurons) {
    const li = document.createElement("li"), b = document.createElement("button");
    b.type = "button";
    b.textContent = n;
    b.title = "neuron " + n;
    b.setAttribute("aria-pressed", String(n === S.sel));
    b.onclick = () => select(n);
    li.append(b);
    ul.append(li);
  }
}

async function select(n) {
  S.sel = n;
  drawNeuronList();
  $("detail-h").textContent = n;
  $("remove-neuron").hidden = false;
  S.sparks.clear();
  $("sparks").replaceChildren();
  if (S.selSub) { S.subs.delete(S.selSub); rpc("unsubscribe", { subscription: S.selSub }); }
  const g = await must("get", { path: n });
  if (g.ok) showOutputs(g.value);
  const r = await must("subscribe", { paths: [n], every: S.every });
  if (!r.ok) return;
  S.selSub = r.subscription;
  S.subs.set(r.subscription, (ev) => { if (S.sel === n) showOutputs(ev.values[n]); });
  S.dirty = true;
  requestAnimationFrame(draw);
}

// Sparklines take every update; the tree and pictures are drawn once per
// frame, from the newest value, so a big value never backs the page up.
function showOutputs(v) {
  for (const [path, h] of S.sparks) {
    h.values.push(num(get(v, path.split("\u0000"))));
    if (h.values.length > SPARK_LEN) h.values.shift();
  }
  const first = S.shown === undefined;
  S.shown = v;
  if (first) requestAnimationFrame(drawOutputs);
}

function drawOutputs() {
  const v = S.shown;
  S.shown = undefined;
  for (const h of S.sparks.values()) spark(h);
  S.treeLeft = TREE_MAX;
  $("tree").replaceChildren(tree(v, []));
  if (S.treeLeft < 0) { const more = document.createElement("div"); more.textContent = `… (the first ${TREE_MAX} numbers shown)`; $("tree").append(more); }
  const imgs = $("images");
  imgs.replaceChildren();
  if (v && typeof v === "object")
    for (const k of Object.keys(v).sort(byLabel)) { const c = picture(v[k]); if (c) { c.title = `${S.sel}/${k} as a picture`; imgs.append(c); } }
}

function tree(v, path) {
  const ul = document.createElement("ul");
  if (v === null || typeof v !== "object") v = { ":number": v };
  for (const k of Object.keys(v).sort(byLabel)) {
    if (S.treeLeft-- <= 0) break;
    const li = document.createElement("li"), x = v[k], p = path.concat(k === ":number" ? [] : [k]);
    if (typeof x === "number") {
      li.className = "leaf";
      li.innerHTML = "";
      li.append(k + ": ");
      const s = document.createElement("span");
      s.className = "num";
      s.textContent = String(x);
      li.append(s);
      li.title = "click: sparkline of this number";
      li.onclick = (ev) => { ev.stopPropagation(); addSpark(k === ":number" ? path : p); };
    } else {
      li.append(k);
      li.append(tree(x, p));
    }
    ul.append(li);
  }
  return ul;
}

function addSpark(path) {
  const key = path.join("\u0000");
  if (S.sparks.has(key)) return;
  const row = document.createElement("div"), c = document.createElement("canvas"), lab = document.createElement("span");
  c.width = 200; c.height = 28;
  lab.textContent = `${S.sel}/${join(path)}`;
  row.append(c, lab);
  $("sparks").append(row);
  S.sparks.set(key, { c, lab, values: [] });
}

function spark(h) {
  const g = h.c.getContext("2d"), vs = h.values, W = h.c.width, H = h.c.height;
  g.clearRect(0, 0, W, H);
  if (vs.length < 2) return;
  const lo = Math.min(...vs), hi = Math.max(...vs), span = hi - lo || 1;
  g.strokeStyle = "#1565c0";
  g.beginPath();
  vs.forEach((x, i) => {
    const px = (i * W) / Math.max(vs.length - 1, 60), py = H - 2 - ((x - lo) * (H - 4)) / span;
    i ? g.lineTo(px, py) : g.moveTo(px, py);
  });
  g.stroke();
  h.lab.title = `last ${vs[vs.length - 1]}`;
}

// A value whose numbers all sit at depth 2 is a matrix; at depth 3, channels
// of matrices (3 channels: RGB). Anything else is not a picture.
function picture(v) {
  const depth = (x) => (typeof x === "number" ? 0 : x && typeof x === "object" && !(":number" in x) ? (() => {
    let d = -1;
    for (const k in x) { const e = depth(x[k]); if (e < 0 || (d >= 0 && e !== d)) return -1; d = e; }
    return d < 0 ? -1 : d + 1;
  })() : -1);
  const d = depth(v);
  if (d !== 2 && d !== 3) return null;
  const chans = d === 3 ? Object.keys(v).sort(byLabel).map((k) => v[k]) : [v];
  const rows = new Set(), cols = new Set();
  for (const m of chans) for (const r in m) { rows.add(r); for (const c in m[r]) cols.add(c); }
  const R = [...rows].sort(byLabel), C = [...cols].sort(byLabel);
  if (R.length * C.length > 1 << 20) return null;
  let lo = Infinity, hi = -Infinity;
  for (const m of chans) for (const r in m) for (const c in m[r]) { lo = Math.min(lo, m[r][c]); hi = Math.max(hi, m[r][c]); }
  const cv = document.createElement("canvas");
  cv.width = C.length; cv.height = R.length;
  const z = Math.max(1, Math.floor(160 / Math.max(R.length, C.length)));
  cv.style.width = C.length * z + "px";
  cv.style.height = R.length * z + "px";
  const g = cv.getContext("2d"), img = g.createImageData(C.length, R.length), span = hi - lo || 1;
  R.forEach((r, i) => C.forEach((c, j) => {
    const k = 4 * (i * C.length + j);
    const at = (m) => (m[r] && typeof m[r][c] === "number" ? m[r][c] : 0);
    if (chans.length === 3) for (let q = 0; q < 3; q++) img.data[k + q] = (255 * (at(chans[q]) - lo)) / span;
    else { const x = (255 * (at(chans[0]) - lo)) / span; img.data[k] = img.data[k + 1] = img.data[k + 2] = x; }
    img.data[k + 3] = 255;
  }));
  g.putImageData(img, 0, 0);
  return cv;
}

connect();
