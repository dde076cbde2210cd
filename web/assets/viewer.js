// The viewer: one result full size over its original, a slider between
// them (before on the left), zoom to 100 %, ←/→ between results, Esc to
// close, and its download.
"use strict";
import { $ } from "./dom.js";
import { linkTo } from "./api.js";
import { doneResults } from "./gallery.js";

let job = null;
let at = null;   // {image, recipe} shown now

export function initViewer() {
  const dialog = $("viewer");
  $("split").addEventListener("input", split);
  $("vprev").onclick = () => step(-1);
  $("vnext").onclick = () => step(1);
  $("vzoom").onclick = () => zoom(!dialog.classList.contains("actual"));
  $("vclose").onclick = () => dialog.close();
  dialog.addEventListener("keydown", (e) => {
    // The slider takes its own arrows; elsewhere they go between results.
    if (e.target === $("split")) return;
    if (e.key === "ArrowLeft") { e.preventDefault(); step(-1); }
    if (e.key === "ArrowRight") { e.preventDefault(); step(1); }
  });
  // Clicking the backdrop closes it, as lightboxes do.
  dialog.addEventListener("click", (e) => { if (e.target === dialog) dialog.close(); });
}

export function openViewer(forJob, image, recipe) {
  job = forJob;
  show(image, recipe);
  const dialog = $("viewer");
  if (!dialog.open) dialog.showModal();
  $("vclose").focus();
}

function show(image, recipe) {
  const result = doneResults().find((r) => r.image === image && r.recipe === recipe);
  if (!result) return;
  at = { image, recipe };
  $("vtitle").textContent = `${result.name} · ${recipe}`;
  const after = $("vafter"), before = $("vbefore");
  after.alt = `${result.name}, ${recipe}`;
  before.alt = `${result.name}, original`;
  linkTo(job, after, "src", result.url);
  linkTo(job, before, "src", result.original);
  linkTo(job, $("vdownload"), "href", result.url);
  const all = doneResults();
  const i = all.findIndex((r) => r.image === image && r.recipe === recipe);
  $("vcount").textContent = `${i + 1} of ${all.length}`;
}

// The next (1) or previous (-1) result of the gallery, round the ends.
function step(by) {
  const all = doneResults();
  if (!at || !all.length) return;
  const i = all.findIndex((r) => r.image === at.image && r.recipe === at.recipe);
  const next = all[(i + by + all.length) % all.length];
  show(next.image, next.recipe);
}

// The original shows left of the split, the result right of it.
function split() {
  const v = Number($("split").value);
  $("vbefore").style.clipPath = `inset(0 ${100 - v}% 0 0)`;
  $("vline").style.left = `${v}%`;
}

// 100 %: the result at its own pixels, the stage scrolling; else fit to the screen.
function zoom(actual) {
  $("viewer").classList.toggle("actual", actual);
  $("vzoom").textContent = actual ? "Fit" : "100 %";
  $("vzoom").setAttribute("aria-pressed", String(actual));
}
