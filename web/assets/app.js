"use strict";
const $ = (id) => document.getElementById(id);
const el = (tag, props = {}, ...kids) => {
  const e = Object.assign(document.createElement(tag), props);
  for (const k of kids) e.append(k);
  return e;
};

// The output the server makes of an original browsers cannot show (HEIC, TIFF, JPEG XL):
// the card's "before", never a result.
const BEFORE = ".before";

const PRESETS = {
  thumb:  { label: "Thumbnail 256 px", ops: [{op:"thumbnail", width:256, height:256}] },
  square: { label: "Smart square 512", ops: [{op:"crop", aspect:"1:1", gravity:"smart"}, {op:"thumbnail", width:512, height:512}] },
  redeye: { label: "Red-eye removal", ops: [{op:"red_eye"}] },
  teeth:  { label: "Teeth whitening", ops: [{op:"teeth_whiten", strength:0.6}] },
  bw:     { label: "Black & white", ops: [{op:"recolor", mode:"grayscale"}, {op:"contrast", amount:0.2}] },
  sepia:  { label: "Sepia", ops: [{op:"recolor", mode:"sepia"}] },
  pop:    { label: "Contrast boost", ops: [{op:"contrast", amount:0.3}, {op:"sharpen", amount:1.0}] },
  webp:   { label: "WebP 1600 px", ops: [{op:"resize", width:1600, height:1600, fit:"inside"}, {op:"format", format:"webp", quality:80}] },
  avif:   { label: "AVIF 1600 px", ops: [{op:"resize", width:1600, height:1600, fit:"inside"}, {op:"format", format:"avif", quality:65}] },
};

// Every op of the contract, with its fields: [name, kind, default, choices].
// "region" fields are optional x/y/width/height picked on a photo.
const OPS = {
  crop:         [["mode", "choice", "aspect", ["aspect", "rectangle"]], ["aspect", "text", "16:9"],
                 ["gravity", "choice", "center", ["center","north","south","east","west","smart"]], ["rect", "region"]],
  thumbnail:    [["width", "int", 256], ["height", "int", 256]],
  resize:       [["width", "int", 800], ["height", "int", 600], ["fit", "choice", "inside", ["inside","cover","fill"]]],
  red_eye:      [["region", "region"]],
  teeth_whiten: [["strength", "float", 0.6], ["region", "region"]],
  recolor:      [["mode", "choice", "grayscale", ["grayscale","sepia","hue_rotate","tint"]], ["degrees", "float", 90],
                 ["color", "color", "#3366cc"], ["amount", "float", 0.5]],
  contrast:     [["amount", "float", 0.2]],
  brightness:   [["amount", "float", 0.1]],
  rotate:       [["degrees", "choice", "90", ["90","180","270"]]],
  flip:         [["axis", "choice", "horizontal", ["horizontal","vertical"]]],
  blur:         [["sigma", "float", 2]],
  sharpen:      [["amount", "float", 1]],
  format:       [["format", "choice", "jpeg", ["jpeg","png","webp","avif"]], ["quality", "int", 85],
                 ["subsampling", "choice", "420", ["420","444"]], ["progressive", "choice", "no", ["no","yes"]],
                 ["lossless", "choice", "no", ["no","yes"]], ["speed", "int", 5],
                 ["metadata", "choice", "strip", ["strip","copyright","all"]], ["keep_icc", "choice", "no", ["no","yes"]]],
};

for (const [name, p] of Object.entries(PRESETS)) {
  $("presets").append(el("label", {},
    el("input", { type: "checkbox", name: "recipe", value: name, checked: name === "thumb" }), ` ${p.label}`));
}
for (const op of Object.keys(OPS)) $("addop").append(el("option", { value: op, textContent: op }));

// ---- recipe builder ----
let draft = [];           // rows: {op, inputs: {field: element}, region: {x,y,width,height}|null}
let customRecipes = [];   // {name, ops}

function addOpRow(op) {
  const row = { op, inputs: {}, region: null };
  const div = el("div", { className: "oprow" }, el("span", { className: "name", textContent: op }));
  for (const [field, kind, def, choices] of OPS[op]) {
    if (kind === "region") {
      const shown = el("span", { className: "dim", textContent: field === "rect" ? "whole image" : "automatic" });
      const pick = el("button", { type: "button", className: "ghost", textContent: "pick on photo" });
      pick.onclick = () => pickRegion((r) => { row.region = r; shown.textContent = `${r.x},${r.y} ${r.width}×${r.height}`; });
      const clear = el("button", { type: "button", className: "ghost", textContent: "clear" });
      clear.onclick = () => { row.region = null; shown.textContent = field === "rect" ? "whole image" : "automatic"; };
      div.append(pick, shown, clear);
      continue;
    }
    let input;
    if (kind === "choice") {
      input = el("select", { "aria-label": `${op} ${field}` });
      for (const c of choices) input.append(el("option", { value: c, textContent: c }));
      input.value = def;
    } else {
      input = el("input", { type: kind === "color" ? "color" : kind === "text" ? "text" : "number", value: def, "aria-label": `${op} ${field}` });
      if (kind === "float") input.step = "0.05";
      if (kind === "text") input.size = 6;
    }
    row.inputs[field] = input;
    div.append(el("label", {}, `${field} `, input));
  }
  const remove = el("button", { type: "button", className: "ghost", textContent: "✕", title: "remove op" });
  remove.onclick = () => { draft = draft.filter((r) => r !== row); div.remove(); };
  div.append(remove);
  draft.push(row);
  $("ops").append(div);
}
$("addop").onchange = (e) => { if (e.target.value) addOpRow(e.target.value); e.target.value = ""; };

function opJson(row) {
  const v = (f) => row.inputs[f].value;
  const num = (f) => Number(v(f));
  switch (row.op) {
    case "crop":
      if (v("mode") === "aspect") return { op: "crop", aspect: v("aspect"), gravity: v("gravity") };
      if (!row.region) throw new Error("crop: pick a rectangle on a photo, or use an aspect");
      return { op: "crop", ...row.region };
    case "thumbnail": return { op: "thumbnail", width: num("width"), height: num("height") };
    case "resize": return { op: "resize", width: num("width"), height: num("height"), fit: v("fit") };
    case "red_eye": return row.region ? { op: "red_eye", region: row.region } : { op: "red_eye" };
    case "teeth_whiten": {
      const o = { op: "teeth_whiten", strength: num("strength") };
      if (row.region) o.region = row.region;
      return o;
    }
    case "recolor": {
      const mode = v("mode"), o = { op: "recolor", mode };
      if (mode === "hue_rotate") o.degrees = num("degrees");
      if (mode === "tint") { o.color = v("color"); o.amount = num("amount"); }
      return o;
    }
    case "rotate": return { op: "rotate", degrees: num("degrees") };
    case "flip": return { op: "flip", axis: v("axis") };
    case "format": {
      // Each setting goes only with the formats it applies to, as the contract asks.
      const format = v("format"), o = { op: "format", format };
      if (format !== "png") o.quality = num("quality");
      const lossless = (format === "webp" || format === "avif") && v("lossless") === "yes";
      if (lossless) o.lossless = true;
      if ((format === "jpeg" || format === "avif") && !lossless) o.subsampling = v("subsampling");
      if (format === "jpeg" && v("progressive") === "yes") o.progressive = true;
      if (format === "avif") o.speed = num("speed");
      if (v("metadata") !== "strip") o.metadata = v("metadata");
      if (v("keep_icc") === "yes") o.keep_icc = true;
      return o;
    }
    default: {
      const [[field]] = OPS[row.op];
      return { op: row.op, [field]: num(field) };
    }
  }
}

$("saverecipe").onclick = () => {
  try {
    const name = $("rname").value.trim() || `recipe${customRecipes.length + 1}`;
    if (!/^[A-Za-z0-9_-]{1,40}$/.test(name)) throw new Error("recipe name: 1 to 40 letters, digits, _ or -");
    if (!draft.length) throw new Error("add at least one op");
    const recipe = { name, ops: draft.map(opJson) };
    customRecipes.push(recipe);
    const chip = el("span", { className: "chip", textContent: `${name}: ${recipe.ops.map((o) => o.op).join(" → ")}` });
    const x = el("button", { type: "button", textContent: "✕", title: "remove recipe" });
    x.onclick = () => { customRecipes = customRecipes.filter((r) => r !== recipe); chip.remove(); };
    chip.append(x);
    $("custom").append(chip);
    draft = []; $("ops").innerHTML = ""; $("rname").value = "";
    status("");
  } catch (err) { status(err.message, true); }
};

// ---- region picker: coordinates in pixels of the (EXIF-oriented) photo ----
let pickDone = null, pickStart = null, pickRect = null;
function pickRegion(done) {
  if (!chosen.length) { status("choose a photo first: regions are picked on the first one", true); return; }
  pickDone = done; pickRect = null; $("pickbox").style.display = "none";
  $("pickimg").src = URL.createObjectURL(chosen[0]);
  $("picker").classList.add("open");
}
const pickPoint = (e) => {
  const r = $("pickimg").getBoundingClientRect();
  return [Math.min(Math.max(e.clientX - r.left, 0), r.width), Math.min(Math.max(e.clientY - r.top, 0), r.height)];
};
$("pickwrap").onpointerdown = (e) => { e.preventDefault(); pickStart = pickPoint(e); $("pickwrap").setPointerCapture(e.pointerId); };
$("pickwrap").onpointermove = (e) => {
  if (!pickStart) return;
  const [x, y] = pickPoint(e), box = $("pickbox");
  pickRect = [Math.min(x, pickStart[0]), Math.min(y, pickStart[1]), Math.abs(x - pickStart[0]), Math.abs(y - pickStart[1])];
  Object.assign(box.style, { display: "block", left: `${pickRect[0]}px`, top: `${pickRect[1]}px`, width: `${pickRect[2]}px`, height: `${pickRect[3]}px` });
};
$("pickwrap").onpointerup = () => { pickStart = null; };
$("pickcancel").onclick = () => $("picker").classList.remove("open");
$("pickok").onclick = () => {
  const img = $("pickimg");
  if (pickRect && pickRect[2] > 2 && pickRect[3] > 2) {
    const s = img.naturalWidth / img.getBoundingClientRect().width;
    const [x, y, w, h] = pickRect.map((n) => Math.round(n * s));
    pickDone({ x, y, width: w, height: h });
  }
  $("picker").classList.remove("open");
};

// ---- files ----
let chosen = [];
function showFiles() {
  $("filelist").innerHTML = "";
  chosen.forEach((f, i) => {
    $("filelist").append(el("div", { className: "file" },
      el("span", { className: "name", textContent: f.name, title: f.name }),
      el("progress", { max: 100, value: 0, id: `p${i}` }),
      el("span", { className: "msg", id: `m${i}` })));
  });
}
$("files").addEventListener("change", (e) => { chosen = [...e.target.files]; showFiles(); });
const drop = $("drop");
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => {
  e.preventDefault(); drop.classList.remove("over");
  chosen = [...e.dataTransfer.files].filter((f) => f.type.startsWith("image/") || !f.type);
  showFiles();
});

function status(text, bad = false) { $("status").textContent = text; $("status").className = bad ? "err" : ""; }

function recipes() {
  return [...document.querySelectorAll("input[name=recipe]:checked")]
    .map((c) => ({ name: c.value, ops: PRESETS[c.value].ops }))
    .concat(customRecipes);
}

// Sends one file; over the client's rate (429), waits as told and sends it again.
function upload(job, file, i) {
  return new Promise((resolve) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", `/api/jobs/${job.id}/images`);
    xhr.setRequestHeader("Authorization", `Bearer ${job.token}`);
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) $(`p${i}`).value = 100 * e.loaded / e.total; };
    const msg = $(`m${i}`);
    xhr.onload = () => {
      let body = {};
      try { body = JSON.parse(xhr.responseText); } catch (_) {}
      if (xhr.status === 201 && body.images && body.images.length) {
        $(`p${i}`).value = 100; msg.textContent = "uploaded"; msg.className = "msg okc";
      } else if (xhr.status === 429) {
        const wait = Number(xhr.getResponseHeader("Retry-After")) || 5;
        msg.textContent = `busy; sending again in ${wait} s`; msg.className = "msg";
        setTimeout(() => upload(job, file, i).then(resolve), wait * 1000);
        return;
      } else {
        msg.textContent = (body.errors && body.errors[0] && body.errors[0].error) || body.error || `failed (HTTP ${xhr.status})`;
        msg.className = "msg err"; msg.title = msg.textContent;
      }
      resolve();
    };
    xhr.onerror = () => { msg.textContent = "network error"; msg.className = "msg err"; resolve(); };
    const form = new FormData();
    form.append("file", file, file.name);
    xhr.send(form);
  });
}

// ---- results: one card per image, updated by events ----
const cards = new Map();   // image id -> {card, outs: Map(recipe -> row), after: img, afterOf: recipe}

// ---- signed links ----
// URLs end up in logs and histories, so none carries the job's token: the
// server signs each path for a few minutes, many paths to a request.
const LINKS_PER_REQUEST = 500;
const signedLinks = new Map();   // path -> {url, until}
const toSign = new Map();        // job id -> {job, waiting: Map(path -> [{resolve, reject}])}

// Whether the link known for path has more than a minute left.
function fresh(path) {
  const known = signedLinks.get(path);
  return Boolean(known) && known.until - Date.now() > 60_000;
}

// A signed link to path, asked for with the other paths wanted in this turn.
function signedLink(job, path) {
  if (fresh(path)) return Promise.resolve(signedLinks.get(path).url);
  let batch = toSign.get(job.id);
  if (!batch) {
    batch = { job, waiting: new Map() };
    toSign.set(job.id, batch);
    setTimeout(() => { toSign.delete(job.id); signAll(batch); });
  }
  return new Promise((resolve, reject) => {
    batch.waiting.set(path, [...(batch.waiting.get(path) || []), { resolve, reject }]);
  });
}

async function signAll({ job, waiting }) {
  const paths = [...waiting.keys()];
  for (let i = 0; i < paths.length; i += LINKS_PER_REQUEST) {
    const chunk = paths.slice(i, i + LINKS_PER_REQUEST);
    try {
      const res = await fetch(`/api/jobs/${job.id}/links`, {
        method: "POST",
        headers: { Authorization: `Bearer ${job.token}`, "Content-Type": "application/json" },
        body: JSON.stringify({ paths: chunk }),
      });
      if (!res.ok) throw new Error(`could not get download links (HTTP ${res.status})`);
      const body = await res.json();
      const until = Date.parse(body.expires_at);
      chunk.forEach((path, j) => {
        signedLinks.set(path, { url: body.links[j], until });
        for (const w of waiting.get(path)) w.resolve(body.links[j]);
      });
    } catch (err) {
      for (const path of chunk) for (const w of waiting.get(path)) w.reject(err);
    }
  }
}

// Points el's src or href at a signed link to path. A page left open
// outlives its links: an image that fails to load, or a link clicked, once
// its link is stale gets a fresh one.
function linkTo(job, el, attr, path) {
  el.dataset.path = path;
  const point = () => signedLink(job, path).then(
    (url) => { if (el.dataset.path === path) el[attr] = url; return url; },
    (err) => { status(err.message, true); });
  if (attr === "href") {
    el.onclick = (e) => {
      if (fresh(path)) return;
      e.preventDefault();
      point().then((url) => url && el.click());
    };
  } else {
    el.onerror = () => { if (!fresh(path)) point(); };
  }
  point();
}

function card(job, image, name) {
  let c = cards.get(image);
  if (c) return c;
  const before = el("img", { alt: `${name} (original)`, loading: "lazy" });
  const original = `/api/jobs/${job.id}/images/${image}/original`;
  linkTo(job, before, "src", original);
  // Most browsers cannot show a HEIC, a TIFF or a JPEG XL: until the server's JPEG of it
  // comes, say so rather than show a broken picture (a link gone stale also fails to
  // load, and is fetched again instead).
  before.addEventListener("error", () => {
    if (!fresh(original) || c.preview) return;
    const note = el("div", { className: "nopreview",
      textContent: "Preparing a preview of the original (a format this browser cannot show)…" });
    c.before.replaceWith(note);
    c.before = note;
  });
  const after = el("img", { alt: `${name} (result)`, loading: "lazy" });
  const outs = el("div", { className: "outs" });
  const node = el("div", { className: "card" }, el("h3", { textContent: name, title: name }),
    el("div", { className: "pair" },
      el("figure", {}, before, el("figcaption", { textContent: "before" })),
      el("figure", {}, after, el("figcaption", { textContent: "after" }))),
    outs);
  node.dataset.image = image;
  $("gallery").append(node);
  c = { node, outs, before, after, name, rows: new Map(), afterOf: null, preview: null };
  cards.set(image, c);
  return c;
}

// The server's JPEG of an original browsers cannot show, as the card's "before".
function showBefore(job, c, url) {
  if (c.preview === url) return;
  c.preview = url;
  const img = el("img", { alt: `${c.name} (original, as JPEG)`, loading: "lazy" });
  img.dataset.preview = "";
  c.before.replaceWith(img);
  c.before = img;
  linkTo(job, img, "src", url);
}

function showOutput(job, image, name, out) {
  const c = card(job, image, name);
  if (out.recipe === BEFORE) {
    if (out.state === "done") showBefore(job, c, out.url);
    if (out.state === "failed" && !c.preview) {
      c.preview = "none";
      const note = el("div", { className: "nopreview", textContent: `No preview of the original: ${out.error || "failed"}` });
      c.before.replaceWith(note);
      c.before = note;
    }
    return;
  }
  let row = c.rows.get(out.recipe);
  if (!row) {
    row = el("div", { className: "out" });
    c.rows.set(out.recipe, row);
    c.outs.append(row);
  }
  row.innerHTML = "";
  row.dataset.recipe = out.recipe;
  row.dataset.state = out.state;
  const label = el("span", { className: `state-${out.state}`,
    textContent: `${out.recipe}: ${out.state}` + (out.width ? ` ${out.width}×${out.height}` : "") });
  row.append(label);
  if (out.state === "failed") { label.title = out.error || ""; row.append(el("span", { className: "err", textContent: out.error || "" })); }
  if (out.state === "done") {
    const a = el("a", { href: "#", textContent: "download" });
    a.setAttribute("download", "");
    linkTo(job, a, "href", out.url);
    const show = el("a", { href: "#", textContent: "show" });
    show.onclick = (e) => { e.preventDefault(); linkTo(job, c.after, "src", out.url); c.afterOf = out.recipe; };
    row.append(show, a);
    if (!c.afterOf) { linkTo(job, c.after, "src", out.url); c.afterOf = out.recipe; }
  }
}

function showJob(job, state, counts) {
  $("summary").textContent = `${state}: ${counts.done} done, ${counts.failed} failed of ${counts.total}`;
  $("summary").dataset.state = state;
  const archive = `/api/jobs/${job.id}/archive`;
  if (counts.done > 0 && $("zip").dataset.path !== archive) { $("zip").hidden = false; linkTo(job, $("zip"), "href", archive); }
}

// Shows the job as it stands, a page of images at a time; false when it is
// gone (expired, or the link's token is wrong).
async function snapshot(job) {
  let snap;
  for (let after = null, first = true; first || after; first = false) {
    const page = after ? `?after=${after}` : "";
    const res = await fetch(`/api/jobs/${job.id}${page}`, { headers: { Authorization: `Bearer ${job.token}` } });
    if (!res.ok) { status("this job does not exist (or has expired), or the link's token is wrong", true); return false; }
    snap = await res.json();
    for (const image of snap.images) {
      for (const out of image.outputs) showOutput(job, image.id, image.name, out);
      if (image.before) showBefore(job, card(job, image.id, image.name), image.before);
    }
    after = snap.next;
  }
  showJob(job, snap.state, snap.counts);
  $("expiry").textContent = `kept until ${new Date(snap.expires_at).toLocaleString()}`;
  return true;
}

// A first snapshot (for a reloaded page), then live events.
async function watch(job) {
  if (!(await snapshot(job))) return;
  return follow(job);
}

// Opens the job's progress stream. The server ends it once the job is
// done; while photos are still uploading, the browser reconnects and hears
// what changed since.
async function follow(job) {
  const path = `/api/jobs/${job.id}/events`;
  let url;
  try { url = await signedLink(job, path); } catch (_) { pollJob(job); return; }
  const events = new EventSource(url);
  watching = events;
  events.addEventListener("output", (e) => {
    const d = JSON.parse(e.data);
    showOutput(job, d.image, d.name, d);
  });
  events.addEventListener("job", (e) => {
    const d = JSON.parse(e.data);
    showJob(job, d.state, d.counts);
    if (d.state === "done" && !uploading) { status("done"); events.close(); awaitPreviews(job); }
  });
  // A browser reconnecting after the stream's link expired is refused: the
  // page opens it again on a fresh link. A stream refused otherwise (too
  // many open: 429) or broken for good: the page follows the job by
  // polling instead.
  events.addEventListener("error", () => {
    if (events.readyState !== EventSource.CLOSED || watching !== events) return;
    if (fresh(path)) pollJob(job); else follow(job);
  });
  return events;
}

// Previews are no results: a job can be done before the last of them is made. While a card
// still waits for one, look at the job again now and then (for two minutes at most).
function awaitPreviews(job, tries = 40) {
  const waiting = [...cards.values()].some((c) => !c.preview && c.before.classList.contains("nopreview"));
  if (!waiting || tries === 0) return;
  setTimeout(async () => { await snapshot(job); awaitPreviews(job, tries - 1); }, 3000);
}

// Follows a job by reading its status every few seconds until it is done
// (and nothing is uploading) or the page stops watching it.
function pollJob(job) {
  const poller = { closed: false, polling: true, close() { this.closed = true; } };
  watching = poller;
  const tick = async () => {
    if (poller.closed) return;
    const there = await snapshot(job);
    const done = $("summary").dataset.state === "done";
    if (!there || (done && !uploading)) { if (there) { status("done"); awaitPreviews(job); } return; }
    setTimeout(tick, 3000);
  };
  tick();
}

let uploading = false;
let watching = null;
$("form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const list = recipes();
  if (!list.length) { status("choose at least one recipe", true); return; }
  if (!chosen.length) { status("choose some photos", true); return; }
  $("go").disabled = true;
  const res = await fetch("/api/jobs", {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ recipes: list }),
  });
  const body = await res.json();
  if (res.status !== 201) { status(body.error, true); $("go").disabled = false; return; }
  const job = { id: body.id, token: body.token };
  // The token lives in the fragment: the link can be shared, and servers never log it.
  location.hash = `job=${job.id}&token=${job.token}`;
  $("gallery").innerHTML = ""; cards.clear();
  uploading = true;
  status("uploading…");
  await watch(job);
  const files = [...chosen.entries()];
  const next = async () => { for (let f; (f = files.shift());) await upload(job, f[1], f[0]); };
  await Promise.all([next(), next(), next()]);
  uploading = false;
  // The first upload gave the job its full term: show it.
  await snapshot(job);
  const done = $("summary").dataset.state === "done";
  if (done && watching) watching.close();
  status(done ? "done" : "developing…");
  $("go").disabled = false;
});

const params = new URLSearchParams(location.hash.slice(1));
if (params.get("job") && params.get("token")) watch({ id: params.get("job"), token: params.get("token") });
