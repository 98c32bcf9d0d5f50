// SPDX-License-Identifier: MIT
// The browser view in a real browser: Debian's chromium, driven by
// playwright-core (no browser download), on a running
// `dmm serve networks/wave.json --http 127.0.0.1:0`. It sees every neuron's
// name, pauses, steps, changes a weight by clicking its heat-map cell and
// checks it with `dmm ctl get`, and takes a screenshot.
// Usage: node page.test.mjs DMM_EXE SOURCE_ROOT SCREENSHOT.png
// Exit 0 passed, 1 failed, 77 skipped (no chromium or no playwright-core).
import { spawn, execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import path from "node:path";

const [exe, root, shot] = process.argv.slice(2);
const CHROMIUM = "/usr/bin/chromium";
const GUARD_MS = 120000; // the whole test, a failure guard only

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
  const out = execFileSync(exe, ["ctl", "--connect", addr, ...args], { encoding: "utf8" });
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

try {
  const net = path.join(root, "networks", "wave.json");
  server = spawn(exe, ["serve", net, "--http", "127.0.0.1:0", "--rate", "20"], { stdio: ["ignore", "pipe", "inherit"] });
  const lines = createInterface({ input: server.stdout })[Symbol.asyncIterator]();
  const addr = (await lines.next()).value, url = (await lines.next()).value;
  if (!/^http:\/\/127\.0\.0\.1:\d+\/$/.test(url)) fail(`expected the page's address, got ${url}`);

  browser = await playwright.chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync"],
  });
  const page = await browser.newPage({ viewport: { width: 1300, height: 900 } });
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
  // A neuron's outputs as a tree of numbers.
  await page.getByRole("button", { name: "identity/update-1", exact: true }).click();
  await page.locator("#tree .num").first().waitFor({ timeout: 20000 });

  note("outputs: ok");
  await page.click("#resume");
  await until("resume", () => ctl(addr, "status").running === true);
  await page.waitForTimeout(1500);
  await page.screenshot({ path: shot });
  if (errors.length) fail(`errors in the page: ${errors.join("; ")}`);
  note("screenshot taken");
  ctl(addr, "shutdown");
  await browser.close();
  browser = null;
  const code = server.exitCode ?? (await new Promise((r) => server.on("exit", r)));
  if (code !== 0) fail(`dmm serve exited with ${code}`);
  server = null;
  console.log(`ok: names, pause, step, click-to-set, outputs; screenshot ${shot}`);
  clearTimeout(guard);
} catch (e) {
  console.error("FAIL:", e.message);
  if (browser) await browser.close().catch(() => {});
  if (server) server.kill("SIGKILL");
  process.exit(1);
}
