// Drives Debian's Chromium (headless) through the Darkroom UI, on a
// phone-sized viewport: picks recipes (a preset and one built in the recipe
// builder), uploads three photos, an iPhone-style HEIC and a text file through the file input,
// waits for every output's tile to show `done` over the live event stream, checks
// the text file's error, downloads one result and checks its size, and that
// no URL the page used or shows carries the job's token.
//
//   node ui.mjs <app url> <screenshot dir> <photo dir> [screenshot name]
//
// With STREAMS_REFUSED=1 the server refuses the progress stream (429), and
// the page must follow the job by polling its status instead.
//
// Run by web/tests/browser.rs; exits non-zero on any failure.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { launch } from "./common.mjs";

const [url, shots, photos, shot = "ui.png"] = process.argv.slice(2);
const streamsRefused = process.env.STREAMS_REFUSED === "1";
mkdirSync(shots, { recursive: true });

// Width and height of a JPEG (first SOFn marker) or PNG (IHDR).
function dimensions(bytes) {
  if (bytes[0] === 0x89 && bytes[1] === 0x50) {
    return [bytes.readUInt32BE(16), bytes.readUInt32BE(20)];
  }
  let i = 2;
  while (i < bytes.length) {
    const marker = bytes[i + 1];
    const len = bytes.readUInt16BE(i + 2);
    if (marker >= 0xc0 && marker <= 0xcf && ![0xc4, 0xc8, 0xcc].includes(marker)) {
      return [bytes.readUInt16BE(i + 7), bytes.readUInt16BE(i + 5)];
    }
    i += 2 + len;
  }
  throw new Error("no image dimensions found");
}

const browser = await launch();
let page;
try {
  const context = await browser.newContext({ viewport: { width: 390, height: 844 }, acceptDownloads: true });
  page = await context.newPage();
  const problems = [];
  let refused = 0;
  page.on("response", (r) => { if (r.url().endsWith("/events") || r.url().includes("/events?")) refused += r.status() === 429; });
  // The job's token stays in the page's fragment and headers: every URL
  // the page asks for (images, downloads, the event stream) is a signed link.
  const tokenUrls = [];
  page.on("request", (r) => { if (/[?&]token=/.test(r.url().split("#")[0])) tokenUrls.push(r.url()); });
  const jobRequests = [];
  page.on("request", (r) => { if (r.method() === "POST" && new URL(r.url()).pathname === "/api/jobs") jobRequests.push(r.postData()); });
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("console", (m) => {
    // The text file's upload is refused with a 400 on purpose, and the
    // progress stream with a 429 when the server is told to.
    const expected = streamsRefused ? /status of (400|429)/ : /status of 400/;
    if (m.type() === "error" && !expected.test(m.text())) problems.push(`console: ${m.text()}`);
  });

  await page.goto(url);
  // The thumbnail preset is on by default; add black & white.
  await page.check("input[name=recipe][value=bw]");
  // And a recipe of our own: rotate 90°, then AVIF at speed 9 and 4:4:4,
  // keeping the photo's copyright and its wide gamut (the builder must send
  // only the settings AVIF takes, or the server refuses the recipe; at the
  // default speed a full-size AVIF is over the budget).
  await page.fill("#rname", "turned");
  await page.selectOption("#addop", "rotate");
  await page.selectOption("#addop", "format");
  const setting = (field) => `#ops .oprow:nth-child(2) label:has-text("${field}") select`;
  await page.selectOption(setting("format"), "avif");
  await page.selectOption(setting("subsampling"), "444");
  await page.fill(`#ops .oprow:nth-child(2) label:has-text("speed") input`, "9");
  await page.selectOption(setting("metadata"), "copyright");
  await page.selectOption(setting("keep_icc"), "yes");
  await page.click("#saverecipe");
  const chip = await page.textContent("#custom .chip");
  if (!chip.includes("turned: rotate → format")) throw new Error(`recipe chip reads ${chip}`);

  writeFileSync(join(shots, "notes.txt"), "not a photo");
  await page.setInputFiles("#files", [
    join(photos, "rocket.jpg"), join(photos, "chelsea.png"), join(photos, "coffee.png"),
    join(photos, "heif", "rocket.heic"), join(shots, "notes.txt"),
  ]);
  await page.click("#go");
  await page.waitForFunction(() => document.querySelectorAll(".out").length > 0, null, { timeout: 60_000 });
  const sent = JSON.parse(jobRequests[0]).recipes.find((r) => r.name === "turned");
  const format = sent && sent.ops[1];
  if (!format || format.format !== "avif" || format.speed !== 9 || format.subsampling !== "444"
      || format.metadata !== "copyright" || format.keep_icc !== true || "progressive" in format) {
    throw new Error(`the builder sent ${JSON.stringify(sent)}`);
  }

  // 4 photos × 3 recipes, all done, streamed in by SSE.
  await page.waitForFunction(() => document.querySelectorAll(".out[data-state=done]").length === 12,
    null, { timeout: 120_000 });
  await page.waitForFunction(() => document.getElementById("summary").dataset.state === "done");
  const urls = await page.$$eval("a[href], img[src]", (els) => els.map((e) => e.href || e.src));
  const withToken = tokenUrls.concat(urls.filter((u) => /[?&]token=/.test(u.split("#")[0])));
  if (withToken.length) throw new Error(`the job token is in URLs: ${withToken.join(" ")}`);
  if (!urls.some((u) => u.includes("sig="))) throw new Error(`no signed link in the page: ${urls.join(" ")}`);
  const messages = await page.$$eval("#filelist .msg", (els) => els.map((e) => e.textContent));
  if (messages.filter((m) => m === "uploaded").length !== 4) throw new Error(`upload messages: ${messages}`);
  if (!/not a supported image/.test(messages[4])) throw new Error(`the text file got: ${messages[4]}`);
  if (await page.isHidden("#zip")) throw new Error("no download-all link");
  const zip = await page.textContent("#zip");
  if (!zip.includes("all 12 results")) throw new Error(`the zip link reads ${zip}`);

  // Download rocket.jpg's thumbnail: 640×427 fits 256×256 as 256×171.
  const rocket = page.locator(".card", { hasText: "rocket.jpg" });
  const [download] = await Promise.all([
    page.waitForEvent("download"),
    rocket.locator(".out[data-recipe=thumb] a[download]").click(),
  ]);
  const bytes = readFileSync(await download.path());
  const [w, h] = dimensions(bytes);
  if (w !== 256 || h !== 171) throw new Error(`downloaded thumbnail is ${w}×${h}, not 256×171`);
  // The custom recipe turned it: 427×640 AVIF.
  const turned = await rocket.locator(".out[data-recipe=turned] span").first().textContent();
  if (!turned.includes("427×640")) throw new Error(`turned output reads ${turned}`);
  // The original and its three results show once scrolled to (they load lazily).
  await rocket.scrollIntoViewIfNeeded();
  await page.waitForFunction(() => {
    const card = [...document.querySelectorAll(".card")].find((c) => c.textContent.includes("rocket.jpg"));
    const imgs = [...card.querySelectorAll("img")];
    return imgs.length === 4 && imgs.every((i) => i.complete && i.naturalWidth > 0);
  }, null, { timeout: 30_000 });
  // A HEIC's "before", which Chromium cannot show, is the server's JPEG of it; its "after"
  // shows too. Neither the preview nor its progress counts as a result.
  const heic = page.locator(".card", { hasText: "rocket.heic" });
  await heic.locator("img[data-preview]").waitFor({ timeout: 30_000 });
  await heic.scrollIntoViewIfNeeded();
  await page.waitForFunction(() => {
    const card = [...document.querySelectorAll(".card")].find((c) => c.textContent.includes("rocket.heic"));
    return [...card.querySelectorAll("img")].every((i) => i.complete && i.naturalWidth > 0);
  }, null, { timeout: 30_000 });
  const heicImages = await heic.locator("img").evaluateAll((imgs) =>
    imgs.map((i) => ({ shown: i.naturalWidth > 0, preview: "preview" in i.dataset, width: i.naturalWidth })));
  if (heicImages.length !== 4 || !heicImages.every((i) => i.shown) || !heicImages[0].preview || heicImages[0].width !== 640) {
    throw new Error(`HEIC card images: ${JSON.stringify(heicImages)}`);
  }
  if (await heic.locator(".out").count() !== 3) throw new Error("the HEIC's preview shows as a result");
  const summary = await page.textContent("#summary");
  if (!summary.includes("12 done, 0 failed of 12")) throw new Error(`summary reads ${summary}`);
  if (tokenUrls.length) throw new Error(`the job token is in URLs: ${tokenUrls.join(" ")}`);
  if (problems.length) throw new Error(problems.join("\n"));
  if (streamsRefused !== (refused > 0)) throw new Error(`progress streams refused: ${refused}`);
  await page.screenshot({ path: join(shots, shot), fullPage: true });
  console.log(`ok: 12 outputs done, thumbnail ${w}×${h}, progress streams refused: ${refused}, screenshot in ${shots}/${shot}`);
} catch (e) {
  if (page) await page.screenshot({ path: join(shots, "ui-failure.png"), fullPage: true }).catch(() => {});
  console.error(e);
  process.exitCode = 1;
} finally {
  await browser.close();
}
