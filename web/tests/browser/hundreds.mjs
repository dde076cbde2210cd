// Hundreds of photos in Debian's Chromium (headless), on a desktop
// viewport: uploads every photo of a folder with two recipes and checks that
// every result shows, that no main-thread task of the page took over 200 ms,
// that images below the fold are not requested until scrolled to, and that
// the JS heap stays under 150 MB. Then the viewer: slider, keyboard, zoom.
// axe-core finds no serious or critical violation in any state; the empty,
// running, done and viewer states are screenshots.
//
//   node hundreds.mjs <app url> <screenshot dir> <photo folder>
//
// Run by web/tests/browser.rs; exits non-zero on any failure.
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { checkAccessibility, heapUsed, launch, longestTask, watchedPage } from "./common.mjs";

const [url, shots, folder] = process.argv.slice(2);
const files = readdirSync(folder).filter((f) => f.endsWith(".jpg")).sort().map((f) => join(folder, f));
const MAX_TASK_MS = 200;
const MAX_HEAP = 150 * 1024 * 1024;

const browser = await launch();
let page;
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const problems = [];
  page = await watchedPage(context, problems);
  const cdp = await context.newCDPSession(page);
  // Which images' pictures (original or result) the page asked for.
  const requested = new Set();
  page.on("request", (r) => {
    const m = new URL(r.url()).pathname.match(/^\/api\/jobs\/[^/]+\/images\/([^/]+)\//);
    if (m && r.resourceType() === "image") requested.add(m[1]);
  });
  const report = [];

  await page.goto(url);
  await page.screenshot({ path: join(shots, "ui-empty.jpg"), quality: 85 });
  report.push(await checkAccessibility(page, cdp, "empty"));

  await page.check("input[name=recipe][value=bw]");
  await page.setInputFiles("#files", files);
  await page.click("#go");
  let heap = 0;
  const total = files.length * 2;
  const done = () => page.$$eval(".out[data-state=done]", (els) => els.length);
  await page.waitForFunction(() => document.querySelectorAll(".out[data-state=done]").length >= 40,
    null, { timeout: 300_000 });
  const toGallery = () => page.evaluate(() => document.getElementById("bar").scrollIntoView());
  // Where results meet placeholders.
  await page.evaluate(() => document.querySelector(".out:not([data-state=done])").closest(".card")
    .scrollIntoView({ block: "center" }));
  await page.screenshot({ path: join(shots, "ui-running.jpg"), quality: 85 });
  report.push(await checkAccessibility(page, cdp, "running"));
  for (let n = await done(); n < total; n = await done()) {
    heap = Math.max(heap, await heapUsed(cdp));
    await page.waitForTimeout(1000);
  }
  await page.waitForFunction(() => document.getElementById("summary").dataset.state === "done", null, { timeout: 60_000 });
  const summary = await page.textContent("#summary");
  if (!summary.includes(`${total} done, 0 failed of ${total}`)) throw new Error(`summary reads ${summary}`);
  const zip = await page.textContent("#zip");
  if (!zip.includes(`all ${total} results`)) throw new Error(`the zip link reads ${zip}`);

  // The last photo's card is far below the fold: nothing of it was loaded.
  const last = page.locator(".card").last();
  const lastImage = await last.getAttribute("data-image");
  const early = requested.size;
  if (requested.has(lastImage)) throw new Error("the last card's images were requested before it was scrolled to");
  if (early >= files.length / 2) throw new Error(`${early} of ${files.length} photos' images requested without scrolling`);
  await last.scrollIntoViewIfNeeded();
  await page.waitForFunction((id) => {
    const imgs = [...document.querySelectorAll(`.card[data-image="${id}"] img`)];
    return imgs.length === 3 && imgs.every((i) => i.complete && i.naturalWidth > 0);
  }, lastImage, { timeout: 30_000 });
  if (!requested.has(lastImage)) throw new Error("the last card's images were not requested once scrolled to");
  heap = Math.max(heap, await heapUsed(cdp));
  const longest = await longestTask(page);
  await toGallery();
  await page.screenshot({ path: join(shots, "ui-done.jpg"), quality: 85 });
  report.push(await checkAccessibility(page, cdp, "done"));

  // The viewer: the first result, the split moved, the next and back by keyboard, 100 %, Esc.
  await page.locator(".out[data-state=done] button.open").first().click();
  await page.waitForFunction(() => {
    const a = document.getElementById("vafter");
    return document.getElementById("viewer").open && a.complete && a.naturalWidth > 0;
  });
  const first = await page.textContent("#vtitle");
  await page.focus("#split");
  await page.keyboard.press("Home");
  const clipped = await page.$eval("#vbefore", (i) => i.style.clipPath);
  if (clipped !== "inset(0px 100% 0px 0px)" && clipped !== "inset(0 100% 0 0)") throw new Error(`slider at 0 clips the original as ${clipped}`);
  await page.fill("#split", "30");
  await page.focus("#vclose");
  await page.keyboard.press("ArrowRight");
  const second = await page.textContent("#vtitle");
  if (second === first) throw new Error("→ did not move to the next result");
  await page.keyboard.press("ArrowLeft");
  if (await page.textContent("#vtitle") !== first) throw new Error("← did not come back");
  if (!(await page.textContent("#vcount")).startsWith(`1 of ${total}`)) throw new Error("the viewer's count is wrong");
  // On a narrow screen the second result (black & white, full size) is shrunk to fit;
  // at 100 % it shows at its own pixels.
  await page.keyboard.press("ArrowRight");
  await page.setViewportSize({ width: 400, height: 700 });
  const shown = () => page.$eval("#vafter", (i) => [i.getBoundingClientRect().width, i.naturalWidth]);
  await page.waitForFunction(() => document.getElementById("vafter").naturalWidth > 400);
  const [fit, own] = await shown();
  if (!(fit < own)) throw new Error(`fitted, the result is ${fit} px wide of its ${own}`);
  await page.click("#vzoom");
  const [actual] = await shown();
  if (Math.abs(actual - own) > 1) throw new Error(`at 100 % the result is ${actual} px wide of its ${own}`);
  await page.setViewportSize({ width: 1280, height: 800 });
  await page.click("#vzoom");
  await page.screenshot({ path: join(shots, "ui-viewer.jpg"), quality: 85 });
  report.push(await checkAccessibility(page, cdp, "viewer"));
  await page.keyboard.press("Escape");
  if (await page.$eval("#viewer", (d) => d.open)) throw new Error("Esc did not close the viewer");

  if (longest > MAX_TASK_MS) throw new Error(`a main-thread task took ${longest.toFixed(0)} ms`);
  if (heap > MAX_HEAP) throw new Error(`the JS heap reached ${(heap / 1048576).toFixed(0)} MB`);
  if (problems.length) throw new Error(problems.join("\n"));
  console.log(`ok: ${total} results of ${files.length} photos; longest task ${longest.toFixed(0)} ms; `
    + `JS heap at most ${(heap / 1048576).toFixed(1)} MB; ${early} photos' images loaded before scrolling; `
    + report.join("; "));
} catch (e) {
  if (page) await page.screenshot({ path: join(shots, "hundreds-failure.png"), fullPage: false }).catch(() => {});
  console.error(e);
  process.exitCode = 1;
} finally {
  await browser.close();
}
