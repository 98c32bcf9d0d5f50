// SPDX-License-Identifier: MIT
// The browser view in a real browser: Debian's chromium, driven by
// playwright-core (no browser download), on a running
// `dmm serve networks/wave.json --http 127.0.0.1:0`. It sees every neuron's
// name, pauses, steps, changes a weight by clicking its heat-map cell and by
// clicking its edge in the graph (each checked with `dmm ctl get`), adds a
// neuron by typing an edit and sees its images drawn as pictures, keeps a
// sparkline of a picked leaf, takes a screenshot, removes the neuron by
// typing an edit, downloads a snapshot; then, on a network of 600 neurons,
// sees W binned, opens the full-resolution window by clicking a bin and sets
// a weight by clicking its cell there.
// Usage: node page.test.mjs DMM_EXE SOURCE_ROOT SCREENSHOT.png
// Exit 0 passed, 1 failed, 77 skipped (no chromium or no playwright-core).
import { spawn, execFileSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import { createInterface } from "node:readline";
import path from "node:path";

const [exe, root, shot] = process.argv.slice(2);
const CHROMIUM = "/usr/bin/chromium";
const GUARD_MS = 170000; // the whole test, a failure guard only (meson: 180 s)

let playwright;
try {
  playwright = await import("playwright-core");
} catch {
  console.log("skip: playwright-core is not installed (npm ci in tests/browser)");
  process.exit(77);
}
if (!existsSync(CHROMIUM)) {
  console.log("skip: no /usr/bin/chromium (tools/setup.sh installs it)");
  process.exit(77);
}

const guard = setTimeout(() => { console.error("FAIL: took longer than the guard"); process.exit(1); }, GUARD_MS);
let server, browser;

function fail(msg) { throw new Error(msg); }
const note = (s) => console.log(`  ${s}`);

function ctl(addr, ...args) {
  const out = execFileSync(exe, ["ctl", "--connect", addr, ...args], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  return JSON.parse(out.trim().split("\n").pop());
}

async function until(what, f, ms = 20000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > end) fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

// Every neuron of the network file: rows and columns of W.
function neuronsOf(file) {
  const m = JSON.parse(readFileSync(file, "utf8")).matrix, names = new Set();
  for (const f in m) for (const nf in m[f]) {
    names.add(`${f}/${nf}`);
    for (const i in m[f][nf]) for (const g in m[f][nf][i]) for (const ng in m[f][nf][i][g]) names.add(`${g}/${ng}`);
  }
  return [...names];
}

// Start `dmm serve NET --http 127.0.0.1:0 ARGS`: its protocol address and
// the page's URL.
async function serve(net, args) {
  server = spawn(exe, ["serve", net, "--http", "127.0.0.1:0", ...args], { stdio: ["ignore", "pipe", "inherit"] });
  const lines = createInterface({ input: server.stdout })[Symbol.asyncIterator]();
  const addr = (await lines.next()).value, url = (await lines.next()).value;
  if (!/^http:\/\/127\.0\.0\.1:\d+\/$/.test(url)) fail(`expected the page's address, got ${url}`);
  return { addr, url };
}

async function stop(addr) {
  const s = server;
  ctl(addr, "shutdown");
  const code = s.exitCode ?? (await new Promise((r) => s.on("exit", r)));
  if (code !== 0) fail(`dmm serve exited with ${code}`);
  server = null;
}

// Fill the weight form's value and send it; dmm ctl then reads it.
async function setPicked(page, addr, weight, value) {
  if ((await page.inputValue("#weight-path")) !== weight) fail(`clicking picked ${await page.inputValue("#weight-path")}, not ${weight}`);
  await page.fill("#weight-value", String(value));
  await page.click("#weight-set");
  await until(`${weight} = ${value}`, () => ctl(addr, "get", `accum/self/single/${weight}`) === value);
}

const tmp = mkdtempSync(path.join(os.tmpdir(), "dmm-browser-"));
try {
  const net = path.join(root, "networks", "wave.json");
  const { addr, url } = await serve(net, ["--rate", "20"]);

  browser = await playwright.chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync"],
  });
  const page = await browser.newPage({ viewport: { width: 1300, height: 900 }, acceptDownloads: true });
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto(url);

  // Every neuron's name is text in the page.
  for (const n of neuronsOf(net)) {
    await page.getByRole("button", { name: n, exact: true }).waitFor({ timeout: 20000 });
  }
  await until("the page to show a running step", async () => (await page.locator("#status").textContent()) === "running");

  // Pause, then step once: the server says so.
  await page.click("#pause");
  await until("pause", () => ctl(addr, "status").running === false);
  const t0 = ctl(addr, "status").step;
  await page.click("#step-btn");
  await until("one step", () => ctl(addr, "status").step === t0 + 1);
  await until("the page's step", async () => Number(await page.locator("#step").textContent()) === t0 + 1);

  // Click the cell of a weight, give it a new value, check it with dmm ctl.
  const weight = "identity/update-2/single/identity/update-2/single";
  const at = await until("the heat map cell", () => page.evaluate((p) => window.dmmView.cellCenter(p), weight));
  await page.mouse.click(at.x, at.y);
  if ((await page.inputValue("#weight-path")) !== weight) fail(`clicking the cell picked ${await page.inputValue("#weight-path")}`);
  await page.fill("#weight-value", "0.5");
  await page.click("#weight-set");
  // `dmm ctl get` prints the value alone.
  await until("the new weight", () => ctl(addr, "get", `accum/self/single/${weight}`) === 0.5);
  note("set by clicking: ok");
  // The page shows the change once a cycle has run.
  await page.click("#step-btn");
  await page.mouse.move(at.x, at.y);
  await until("the page to show 0.5", async () => (await page.locator("#heat-hover").textContent()).endsWith("= 0.5"));

  note("the heat map shows it");

  // Click an edge of the graph (update-3 reading itself): the same form.
  const loop = "identity/update-3/single/identity/update-3/single";
  const mid = await until("the edge", () => page.evaluate((p) => window.dmmView.edgeCenter(p), loop));
  await page.mouse.click(mid.x, mid.y);
  await setPicked(page, addr, loop, 0.25);
  note("set by clicking an edge: ok");

  // Add a neuron by typing an edit: a grid of pictures, fed by update-1.
  const add = { grid: { pic: { zoom: { identity: { "update-1": { single: 0.001 } } } } } };
  await page.fill("#edit-delta", JSON.stringify(add));
  await page.click("#edit-apply");
  await until("the new row", () => ctl(addr, "get", "accum/self/single/grid/pic/zoom/identity/update-1/single") === 0.001);
  await page.click("#step-btn");
  await page.getByRole("button", { name: "grid/pic", exact: true }).click();
  // Its outputs are 32 × 32 images: drawn as pictures.
  await page.locator("#images canvas[title='grid/pic/r as a picture']").waitFor({ timeout: 20000 });
  const pic = await page.evaluate(() => {
    const c = document.querySelector("#images canvas[title='grid/pic/r as a picture']");
    const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    return { w: c.width, h: c.height, corner: d[0], centre: d[4 * (16 * c.width + 16)] };
  });
  if (pic.w !== 32 || pic.h !== 32 || !(pic.corner > pic.centre)) fail(`r as a picture: ${JSON.stringify(pic)}`);
  note("a neuron added by an edit; its images drawn: ok");

  // A sparkline of a picked leaf, growing as cycles run.
  await page.locator("#tree .leaf").first().click();
  await page.click("#resume");
  await until("resume", () => ctl(addr, "status").running === true);
  await until("a sparkline", () => page.evaluate(() => window.dmmView.sparks()[0] >= 5));
  note("sparkline: ok");
  await page.waitForTimeout(1500);
  await page.screenshot({ path: shot });
  note("screenshot taken");

  // Remove it by typing the edit that cancels its weight.
  await page.click("#pause");
  await until("pause", () => ctl(addr, "status").running === false);
  add.grid.pic.zoom.identity["update-1"].single = -0.001;
  await page.fill("#edit-delta", JSON.stringify(add));
  await page.click("#edit-apply");
  const gone = () => { try { ctl(addr, "get", "accum/self/single/grid/pic"); return false; } catch (e) { return /nothing is stored/.test(String(e.stderr)); } };
  await until("the row gone", gone);
  await page.getByRole("button", { name: "grid/pic", exact: true }).waitFor({ state: "detached", timeout: 20000 });
  note("a neuron removed by an edit: ok");

  // Save a snapshot: a download, not a file the server writes.
  const [dl] = await Promise.all([page.waitForEvent("download"), page.click("#save")]);
  const state = JSON.parse(readFileSync(await dl.path(), "utf8"));
  if (state["dmm-state"] !== 1 || state.step !== ctl(addr, "status").step) fail(`the snapshot: step ${state.step}`);
  if (!/^dmm-state-\d+\.json$/.test(dl.suggestedFilename())) fail(`downloaded as ${dl.suggestedFilename()}`);
  note("snapshot downloaded: ok");
  if (errors.length) fail(`errors in the page: ${errors.join("; ")}`);
  await stop(addr);

  // A W of 600 × 600: drawn binned; a click on a bin opens a window at
  // full resolution, where a click picks one weight.
  const N = 600, m = { accum: { self: { accum: { accum: { self: { single: 1 } } } } }, identity: {} };
  for (let i = 0; i < N; i++) {
    const row = {};
    for (let j = 1; j <= 4; j++) row[`n${(i * 7 + j * 13) % N}`] = { single: ((i + j) % 5) - 2 || 1 };
    m.identity[`n${i}`] = { single: { identity: row } };
  }
  const big = path.join(tmp, "big.json");
  writeFileSync(big, JSON.stringify({ dmm: 1, matrix: m }));
  const b = await serve(big, ["--paused"]);
  await page.goto(b.url);
  const h = await until("W binned", () => page.evaluate(() => { const h = window.dmmView.heat(); return h.bin ? h : null; }));
  if (h.rows !== N + 1 || h.cols !== N + 1 || h.bin.h > 512 || h.bin.w > 512) fail(`heat map ${JSON.stringify(h)}`);
  const target = "identity/n300/single/identity/n" + ((300 * 7 + 13) % N) + "/single";
  const bin = await page.evaluate((p) => window.dmmView.cellCenter(p), target);
  if (!bin || bin.window) fail("no bin for the weight");
  await page.mouse.click(bin.x, bin.y);
  await page.locator("#heat-win").waitFor({ state: "visible", timeout: 20000 });
  await page.locator("#heat-win").scrollIntoViewIfNeeded();
  const cell = await until("the window", () => page.evaluate((p) => { const c = window.dmmView.cellCenter(p); return c && c.window ? c : null; }, target));
  await page.mouse.click(cell.x, cell.y);
  await setPicked(page, b.addr, target, 3.5);
  note("big W: binned, window, set by clicking: ok");
  if (errors.length) fail(`errors in the page: ${errors.join("; ")}`);
  await stop(b.addr);
  await browser.close();
  browser = null;
  rmSync(tmp, { recursive: true, force: true });
  console.log(`ok: names, pause, step, set by a cell and by an edge, add and remove a neuron, pictures, sparkline, snapshot, big W; screenshot ${shot}`);
  clearTimeout(guard);
} catch (e) {
  console.error("FAIL:", e.message);
  if (browser) await browser.close().catch(() => {});
  if (server) server.kill("SIGKILL");
  rmSync(tmp, { recursive: true, force: true });
  process.exit(1);
}
