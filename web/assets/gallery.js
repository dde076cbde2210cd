// The gallery: a card per photo, its original and a tile per recipe. A tile
// holds its result once done, a placeholder saying where it stands before,
// and a failure's reason with a Retry button. Images load as they scroll
// into view (loading=lazy), so hundreds of photos cost what is on screen.
"use strict";
import { $, el, status } from "./dom.js";
import { fresh, linkTo } from "./api.js";

// The output the server makes of an original browsers cannot show (HEIC, TIFF, JPEG XL):
// the card's "before", never a result.
export const BEFORE = ".before";

const cards = new Map();   // image id -> {node, name, tiles, before, original, preview}
let recipeNames = [];      // the job's recipes, in order: one tile each
let hooks = { open() {}, retry() {} };

const WAITING = { queued: "queued", processing: "developing…" };
// Cards go in the order of their photos' names, as a file browser shows
// them (photo-9 before photo-10), whichever result comes first.
const byName = new Intl.Collator(undefined, { numeric: true });

export function initGallery(on) { hooks = on; }

export function clearGallery() {
  cards.clear();
  recipeNames = [];
  $("gallery").replaceChildren();
}

// The job's recipes: every card gets a tile (a placeholder at first) for each.
export function setRecipes(names) {
  recipeNames = names;
  for (const [image, c] of cards) for (const name of names) tile(c, image, name);
}

const linkFailed = (err) => status(err.message, true);

function card(job, image, name) {
  let c = cards.get(image);
  if (c) return c;
  const original = `/api/jobs/${job.id}/images/${image}/original`;
  const before = el("img", { alt: `${name}, original`, loading: "lazy", width: 240, height: 160 });
  const figure = el("figure", { className: "orig" }, before, el("figcaption", { textContent: "original" }));
  const tiles = el("div", { className: "tiles" }, figure);
  const node = el("section", { className: "card", ariaLabel: name },
    el("h3", { textContent: name, title: name }), tiles);
  node.dataset.image = image;
  const gallery = $("gallery");
  const next = [...gallery.children].find((n) => byName.compare(n.ariaLabel, name) > 0);
  gallery.insertBefore(node, next || null);
  c = { node, name, tiles: new Map(), row: tiles, figure, before, original, preview: null };
  cards.set(image, c);
  linkTo(job, before, "src", original, linkFailed);
  // Most browsers cannot show a HEIC, a TIFF or a JPEG XL: until the server's JPEG of it
  // comes, say so rather than show a broken picture (a link gone stale also fails to
  // load, and is fetched again instead).
  before.addEventListener("error", () => {
    if (!fresh(original) || c.preview) return;
    replaceBefore(c, el("div", { className: "ph", textContent: "Preparing a preview (a format this browser cannot show)…" }));
  });
  for (const recipe of recipeNames) tile(c, image, recipe);
  return c;
}

function replaceBefore(c, node) {
  c.before.replaceWith(node);
  c.before = node;
}

// The server's JPEG of an original browsers cannot show, as the card's "before".
export function showBefore(job, image, name, url) {
  const c = card(job, image, name);
  if (c.preview === url) return;
  c.preview = url;
  const img = el("img", { alt: `${c.name}, original (as JPEG)`, loading: "lazy", width: 240, height: 160 });
  img.dataset.preview = "";
  replaceBefore(c, img);
  linkTo(job, img, "src", url, linkFailed);
}

// The tile of `recipe` on card c, made as a placeholder if new.
function tile(c, image, recipe) {
  let t = c.tiles.get(recipe);
  if (t) return t;
  const node = el("figure", { className: "out" });
  node.dataset.recipe = recipe;
  t = { node, out: { recipe, state: "queued" }, image };
  c.tiles.set(recipe, t);
  c.row.append(node);
  render(null, c, t);
  return t;
}

export function showOutput(job, image, name, out) {
  const c = card(job, image, name);
  if (out.recipe === BEFORE) {
    if (out.state === "done") showBefore(job, image, name, out.url);
    if (out.state === "failed" && !c.preview) {
      c.preview = "none";
      replaceBefore(c, el("div", { className: "ph", textContent: `No preview of the original: ${out.error || "failed"}` }));
    }
    return;
  }
  const t = tile(c, image, out.recipe);
  const same = t.out.state === out.state && t.out.url === out.url && t.out.error === out.error;
  t.out = out;
  if (!same) render(job, c, t);
}

function render(job, c, t) {
  const { node, out } = t;
  node.dataset.state = out.state;
  const size = out.width ? ` ${out.width}×${out.height}` : "";
  const label = el("span", { className: `label state-${out.state}`, textContent: `${out.recipe}${size}` });
  const caption = el("figcaption", {}, label);
  if (out.state === "done") {
    const img = el("img", { alt: `${c.name}, ${out.recipe}`, loading: "lazy", width: 240, height: 160 });
    const open = el("button", { type: "button", className: "open", ariaLabel: `View ${out.recipe} of ${c.name}` }, img);
    open.onclick = () => hooks.open(t.image, out.recipe);
    const a = el("a", { href: "#", textContent: "download", ariaLabel: `Download ${out.recipe} of ${c.name}` });
    a.setAttribute("download", "");
    linkTo(job, img, "src", out.url, linkFailed);
    linkTo(job, a, "href", out.url, linkFailed);
    caption.append(" ", a);
    node.replaceChildren(open, caption);
  } else if (out.state === "failed") {
    const retry = el("button", { type: "button", className: "ghost retry", textContent: "Retry",
      ariaLabel: `Retry ${out.recipe} of ${c.name}` });
    // Disabled while asked, so a double click sends one request; a refusal leaves it to try again.
    retry.onclick = async () => {
      retry.disabled = true;
      try { await hooks.retry(t.image, out.recipe); } finally { retry.disabled = false; }
    };
    const why = el("span", { className: "why", textContent: out.error || "failed", title: out.error || "" });
    node.replaceChildren(el("div", { className: "ph failed" }, el("strong", { textContent: "Failed" }), why, retry), caption);
  } else {
    node.replaceChildren(el("div", { className: "ph waiting", textContent: WAITING[out.state] || out.state }), caption);
  }
}

// Done results in gallery order, as {image, recipe, name, url, original}.
export function doneResults() {
  const all = [];
  for (const node of $("gallery").children) {
    const image = node.dataset.image, c = cards.get(image);
    for (const [recipe, t] of c.tiles) {
      if (t.out.state === "done") all.push({ image, recipe, name: c.name, url: t.out.url, original: c.preview && c.preview !== "none" ? c.preview : c.original });
    }
  }
  return all;
}

// Whether a card still waits for its "before" preview.
export const awaitingPreviews = () =>
  [...cards.values()].some((c) => !c.preview && c.before.classList.contains("ph"));
