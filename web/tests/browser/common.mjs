// What the browser tests share: Debian's Chromium launched headless, a
// page that collects its errors and its long main-thread tasks, and
// axe-core's accessibility check of the page as it stands.
import { chromium } from "playwright-core";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const AXE = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");

export async function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

// A page that records every main-thread task over 50 ms (the Long Tasks
// API) from its first script on, and the page errors and console errors
// not matched by `expected`, into `problems`.
export async function watchedPage(context, problems, expected = /^$/) {
  const page = await context.newPage();
  await page.addInitScript(() => {
    window.__longTasks = [];
    window.__toolTime = [];   // when the test's own tools (axe) ran in the page
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) window.__longTasks.push([e.startTime, e.duration]);
    }).observe({ type: "longtask", buffered: true });
  });
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error" && !expected.test(m.text())) problems.push(`console: ${m.text()}`);
  });
  return page;
}

// The longest main-thread task of the page's own so far, in ms: tasks that
// overlap a run of the test's tools are the tools', not the page's.
export async function longestTask(page) {
  return page.evaluate(() => {
    const tool = (s, d) => window.__toolTime.some(([a, b]) => s < b && s + d > a);
    return Math.max(0, ...window.__longTasks.filter(([s, d]) => !tool(s, d)).map(([, d]) => d));
  });
}

// The JS heap the page uses now, in bytes (Chromium's own count).
export async function heapUsed(cdp) {
  const { usedSize } = await cdp.send("Runtime.getHeapUsage");
  return usedSize;
}

// Runs axe-core on the page; throws listing every serious or critical
// violation. axe goes in through the DevTools protocol, which the page's
// content security policy (scripts from its own origin only) does not stop.
export async function checkAccessibility(page, cdp, state) {
  const loaded = await page.evaluate(() => typeof window.axe !== "undefined");
  if (!loaded) await cdp.send("Runtime.evaluate", { expression: AXE });
  const found = await page.evaluate(async () => {
    const start = performance.now();
    const result = await window.axe.run(document, { resultTypes: ["violations"] });
    window.__toolTime.push([start, performance.now()]);
    return result.violations
      .filter((v) => v.impact === "serious" || v.impact === "critical")
      .map((v) => `${v.id} (${v.impact}): ${v.help}: ${v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join(", ")}`);
  });
  if (found.length) throw new Error(`accessibility (axe-core), ${state}:\n${found.join("\n")}`);
  return `${state}: no serious or critical violation`;
}
