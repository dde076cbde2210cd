// A job's life after its uploads, in Debian's Chromium (headless): a photo
// whose file is cut short fails with its reason and a Retry button; Retry
// queues it again (it fails again: the file is what it is); "Add the chosen
// recipes" runs a new recipe on the photos already uploaded; "My jobs" lists
// the job across a reload and "Delete now" removes it. axe-core finds no
// serious or critical violation with a failed tile or with My jobs shown.
//
//   node job_life.mjs <app url> <screenshot dir> <photo dir>
//
// Run by web/tests/browser.rs; exits non-zero on any failure.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { checkAccessibility, launch, watchedPage } from "./common.mjs";

const [url, shots, photos] = process.argv.slice(2);
const jpeg = readFileSync(join(photos, "rocket.jpg"));
writeFileSync(join(shots, "cut.jpg"), jpeg.subarray(0, jpeg.length >> 1));

const browser = await launch();
let page;
try {
  const context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
  const problems = [];
  page = await watchedPage(context, problems, /status of 404/);
  const cdp = await context.newCDPSession(page);
  page.on("dialog", (d) => d.accept());
  const report = [];
  const tile = (name, recipe) => page.locator(".card", { hasText: name }).locator(`.out[data-recipe="${recipe}"]`);
  const state = (name, recipe) => tile(name, recipe).getAttribute("data-state");

  await page.goto(url);
  await page.setInputFiles("#files", [join(photos, "rocket.jpg"), join(shots, "cut.jpg")]);
  await page.click("#go");
  await page.waitForFunction(() => document.getElementById("summary").dataset.state === "done", null, { timeout: 60_000 });
  const failed = tile("cut.jpg", "thumb");
  if (await state("cut.jpg", "thumb") !== "failed") throw new Error("the cut file did not fail");
  const why = await failed.locator(".why").textContent();
  if (!/truncated|corrupt/.test(why)) throw new Error(`the failure reads ${why}`);
  report.push(await checkAccessibility(page, cdp, "a failed result"));

  // Retry: queued again (the server says 202), and failed again.
  const [retried] = await Promise.all([
    page.waitForResponse((r) => r.url().endsWith("/thumb/retry")),
    failed.getByRole("button", { name: "Retry thumb of cut.jpg" }).click(),
  ]);
  if (retried.status() !== 202) throw new Error(`retry answered ${retried.status()}`);
  await page.waitForFunction(() => document.getElementById("summary").dataset.state === "done", null, { timeout: 60_000 });
  await failed.locator(".why").waitFor();

  // More recipes on the photos already uploaded: black & white.
  await page.check("input[name=recipe][value=bw]");
  const [added] = await Promise.all([
    page.waitForResponse((r) => r.url().endsWith("/recipes")),
    page.click("#addrecipes"),
  ]);
  if (added.status() !== 201) throw new Error(`adding recipes answered ${added.status()}`);
  await page.waitForFunction(() => document.querySelector('.out[data-recipe="bw"][data-state="done"]'), null, { timeout: 60_000 });
  await page.waitForFunction(() => document.getElementById("summary").dataset.state === "done", null, { timeout: 60_000 });
  if (await state("rocket.jpg", "bw") !== "done" || await state("cut.jpg", "bw") !== "failed") {
    throw new Error("black & white is not done on the photo and failed on the cut file");
  }
  const summary = await page.textContent("#summary");
  if (!summary.includes("2 done, 2 failed of 4")) throw new Error(`summary reads ${summary}`);

  // My jobs, across a reload: the job with its counts, and a link back.
  await page.reload();
  await page.waitForFunction(() => document.querySelectorAll(".out").length === 4);
  const entry = page.locator("#myjobs li");
  await entry.filter({ hasText: "2 done, 2 failed of 4" }).waitFor();
  if (await entry.count() !== 1) throw new Error(`My jobs lists ${await entry.count()} jobs`);
  report.push(await checkAccessibility(page, cdp, "My jobs"));
  const jobId = await entry.getAttribute("data-job");

  // Delete now: the server forgets the job, the page and the list too.
  const [deleted] = await Promise.all([
    page.waitForResponse((r) => r.request().method() === "DELETE"),
    entry.getByRole("button", { name: /Delete/ }).click(),
  ]);
  if (deleted.status() !== 204) throw new Error(`delete answered ${deleted.status()}`);
  await page.waitForFunction(() => document.querySelectorAll(".card").length === 0);
  await page.locator("#myjobsbox").waitFor({ state: "hidden" });
  if (await page.evaluate(() => location.hash)) throw new Error("the deleted job's link stays in the address");
  console.log(`ok: retried, recipes added, My jobs across a reload, deleted: ${jobId}; ${report.join("; ")}`);
} catch (e) {
  if (page) await page.screenshot({ path: join(shots, "job-life-failure.png"), fullPage: true }).catch(() => {});
  console.error(e);
  process.exitCode = 1;
} finally {
  await browser.close();
}
