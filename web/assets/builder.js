// Recipes: the presets, and the builder that makes a recipe of any ops of
// the contract, with regions picked on the first chosen photo.
"use strict";
import { $, el, status } from "./dom.js";

export const PRESETS = {
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
let firstPhoto = () => undefined;
function pickRegion(done) {
  const photo = firstPhoto();
  if (!photo) { status("choose a photo first: regions are picked on the first one", true); return; }
  pickDone = done; pickRect = null; $("pickbox").style.display = "none";
  $("pickimg").src = URL.createObjectURL(photo);
  $("picker").showModal();
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
$("pickcancel").onclick = () => $("picker").close();
$("pickok").onclick = () => {
  const img = $("pickimg");
  if (pickRect && pickRect[2] > 2 && pickRect[3] > 2) {
    const s = img.naturalWidth / img.getBoundingClientRect().width;
    const [x, y, w, h] = pickRect.map((n) => Math.round(n * s));
    pickDone({ x, y, width: w, height: h });
  }
  $("picker").close();
};

// Fills in the presets and the builder's ops; `first` gives the photo
// regions are picked on.
export function initBuilder(first) {
  firstPhoto = first;
  for (const [name, p] of Object.entries(PRESETS)) {
    $("presets").append(el("label", {},
      el("input", { type: "checkbox", name: "recipe", value: name, checked: name === "thumb" }), ` ${p.label}`));
  }
  for (const op of Object.keys(OPS)) $("addop").append(el("option", { value: op, textContent: op }));
}

// The recipes chosen now: ticked presets, then the built ones.
export function chosenRecipes() {
  return [...document.querySelectorAll("input[name=recipe]:checked")]
    .map((c) => ({ name: c.value, ops: PRESETS[c.value].ops }))
    .concat(customRecipes);
}
