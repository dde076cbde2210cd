// The page: make a job of the chosen recipes and photos, follow it as it
// develops (live events, or polling when the stream is refused), add
// recipes to it, retry what failed, and come back to it from "My jobs".
"use strict";
import { $, status } from "./dom.js";
import { call, createJob, fresh, linkTo, signedLink } from "./api.js";
import { chosenRecipes, initBuilder } from "./builder.js";
import { chosenCount, firstChosen, initFiles, uploadAll } from "./uploads.js";
import { awaitingPreviews, clearGallery, initGallery, setRecipes, showBefore, showOutput } from "./gallery.js";
import { initViewer, openViewer } from "./viewer.js";
import { jobLink, remember, showMyJobs } from "./jobs.js";

let job = null;        // the job shown: {id, token}
let uploading = false;
let watching = null;   // its EventSource, or a poller; null once it is done

function showJob(state, counts) {
  const summary = $("summary");
  summary.textContent = `${state}: ${counts.done} done, ${counts.failed} failed of ${counts.total}`;
  summary.dataset.state = state;
  const bar = $("progress");
  bar.hidden = counts.total === 0;
  bar.max = Math.max(counts.total, 1);
  bar.value = counts.done + counts.failed;
  const zip = $("zip"), archive = `/api/jobs/${job.id}/archive`;
  zip.hidden = counts.done === 0;
  if (counts.done > 0 && zip.dataset.path !== archive) linkTo(job, zip, "href", archive);
  // A zip made now holds what is done now: say so until the job is.
  zip.textContent = state === "done" && !uploading
    ? `Download all ${counts.done} results (zip)`
    : `Download the ${counts.done} results done so far (zip)`;
  $("addrecipes").hidden = false;
}

// Shows the job as it stands, a page of images at a time; false when it is
// gone (expired, deleted, or the link's token is wrong).
async function snapshot(shown) {
  let snap;
  for (let after = null, first = true; first || after; first = false) {
    const { status: code, body } = await call(shown, "GET", after ? `?after=${after}` : "");
    if (code !== 200) { status("this job does not exist (or has expired), or the link's token is wrong", true); return false; }
    if (shown !== job) return false;
    snap = body;
    if (first) setRecipes(snap.recipes.map((r) => r.name));
    for (const image of snap.images) {
      for (const out of image.outputs) showOutput(shown, image.id, image.name, out);
      if (image.before) showBefore(shown, image.id, image.name, image.before);
    }
    after = snap.next;
  }
  showJob(snap.state, snap.counts);
  $("expiry").textContent = `kept until ${new Date(snap.expires_at).toLocaleString()}`;
  return true;
}

// A first snapshot (for a reloaded page), then live events.
async function watch(shown) {
  if (await snapshot(shown)) follow(shown);
}

// Follows the job again after something made it move (a retry, more recipes).
function keepFollowing() {
  if (!watching) follow(job);
}

const finished = () => $("summary").dataset.state === "done" && !uploading;

function stopWatching() {
  if (watching) watching.close();
  watching = null;
}

// Opens the job's progress stream. The server ends it once the job is
// done; while photos are still uploading, the browser reconnects and hears
// what changed since.
async function follow(shown) {
  const path = `/api/jobs/${shown.id}/events`;
  let url;
  try { url = await signedLink(shown, path); } catch (_) { pollJob(shown); return; }
  if (shown !== job) return;
  const events = new EventSource(url);
  watching = events;
  events.addEventListener("output", (e) => {
    const d = JSON.parse(e.data);
    showOutput(shown, d.image, d.name, d);
  });
  events.addEventListener("job", (e) => {
    const d = JSON.parse(e.data);
    showJob(d.state, d.counts);
    if (finished()) { status("done"); stopWatching(); awaitPreviews(shown); }
  });
  // A browser reconnecting after the stream's link expired is refused: the
  // page opens it again on a fresh link. A stream refused otherwise (too
  // many open: 429) or broken for good: the page follows the job by
  // polling instead.
  events.addEventListener("error", () => {
    if (events.readyState !== EventSource.CLOSED || watching !== events) return;
    if (fresh(path)) pollJob(shown); else follow(shown);
  });
}

// Follows a job by reading its status every few seconds until it is done
// (and nothing is uploading) or the page stops watching it.
function pollJob(shown) {
  const poller = { closed: false, close() { this.closed = true; } };
  watching = poller;
  const tick = async () => {
    if (poller.closed) return;
    const there = await snapshot(shown);
    if (!there) return;
    if (finished()) { status("done"); stopWatching(); awaitPreviews(shown); return; }
    setTimeout(tick, 3000);
  };
  tick();
}

// Previews are no results: a job can be done before the last of them is made. While a card
// still waits for one, look at the job again now and then (for two minutes at most).
function awaitPreviews(shown, tries = 40) {
  if (!awaitingPreviews() || tries === 0) return;
  setTimeout(async () => { if (await snapshot(shown)) awaitPreviews(shown, tries - 1); }, 3000);
}

// Shows `next` (or nothing) in place of the job shown.
function show(next) {
  stopWatching();
  job = next;
  clearGallery();
  for (const id of ["summary", "expiry"]) $(id).textContent = "";
  delete $("summary").dataset.state;
  $("zip").hidden = true;
  $("progress").hidden = true;
  $("addrecipes").hidden = !next;
  $("hint").hidden = Boolean(next);
  if (next) watch(next);
  showMyJobs(job, deleted);
}

function deleted(gone) {
  status("job deleted");
  if (job && job.id === gone.id) { history.replaceState(null, "", location.pathname); show(null); }
}

async function develop(e) {
  e.preventDefault();
  const list = chosenRecipes();
  if (!list.length) { status("choose at least one recipe", true); return; }
  if (!chosenCount()) { status("choose some photos", true); return; }
  $("go").disabled = true;
  const { status: code, body } = await createJob(list);
  if (code !== 201) { status(body.error, true); $("go").disabled = false; return; }
  const created = { id: body.id, token: body.token };
  remember(created, chosenCount());
  // The token lives in the fragment: the link can be shared, and servers never log it.
  history.replaceState(null, "", jobLink(created));
  uploading = true;
  status("uploading…");
  show(created);
  await uploadAll(created);
  uploading = false;
  // The first upload gave the job its full term: show it.
  if (job === created && await snapshot(created)) {
    if (finished()) stopWatching();
    status(finished() ? "done" : "developing…");
  }
  $("go").disabled = false;
}

// Runs the chosen recipes on the job's photos as uploaded; over the work
// rate, the server queues what it can and the rest follows when told.
async function addRecipes() {
  const list = chosenRecipes();
  if (!job || !list.length) { status("choose the recipes to add", true); return; }
  $("addrecipes").disabled = true;
  for (;;) {
    const { status: code, body, retryAfter } = await call(job, "POST", "/recipes", { recipes: list });
    if (code !== 201 && code !== 429) { status(body.error || `failed (HTTP ${code})`, true); break; }
    setRecipes(body.recipes.map((r) => r.name));
    keepFollowing();
    if (code === 201) { status(`recipes added: ${body.queued} more results on the way`); break; }
    status(`${body.waiting} results wait for your work rate; sending again in ${retryAfter || 5} s`);
    await new Promise((r) => setTimeout(r, (retryAfter || 5) * 1000));
  }
  $("addrecipes").disabled = false;
}

async function retry(image, recipe) {
  const { status: code, body } = await call(job, "POST", `/images/${image}/${encodeURIComponent(recipe)}/retry`);
  if (code !== 202) { status(body.error || `could not retry (HTTP ${code})`, true); await snapshot(job); return; }
  showOutput(job, image, "", body);
  status(`${recipe} queued again`);
  keepFollowing();
}

function fromLocation() {
  const params = new URLSearchParams(location.hash.slice(1));
  const id = params.get("job"), token = params.get("token");
  return id && token ? { id, token } : null;
}

initBuilder(firstChosen);
initFiles();
initGallery({ open: (image, recipe) => openViewer(job, image, recipe), retry });
initViewer();
$("form").addEventListener("submit", develop);
$("addrecipes").onclick = addRecipes;
window.addEventListener("hashchange", () => {
  const next = fromLocation();
  if (next && (!job || next.id !== job.id)) show(next);
});
show(fromLocation());
