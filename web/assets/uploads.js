// The chosen photos, and their uploads: a few at a time, each with its
// progress bar and its outcome; over the client's rate (429) a file waits as
// told and goes again.
"use strict";
import { $, el } from "./dom.js";

const AT_ONCE = 3;
// Up to this many photos, each one's progress shows; more fold into one line.
const LISTED = 12;
let chosen = [];
let sent = 0, refused = 0;

export const firstChosen = () => chosen[0];
export const chosenCount = () => chosen.length;

function tally() {
  const n = chosen.length;
  const line = sent + refused === 0 ? `${n} photo${n === 1 ? "" : "s"} chosen`
    : `${sent} of ${n} photos uploaded` + (refused ? `, ${refused} refused (open for why)` : "");
  $("filesummary").textContent = line;
  $("filesummary").className = refused ? "err" : "";
}

function showFiles() {
  sent = refused = 0;
  $("filedetails").hidden = chosen.length === 0;
  $("filedetails").open = chosen.length <= LISTED;
  tally();
  $("filelist").replaceChildren(...chosen.map((f, i) => el("div", { className: "file" },
    el("span", { className: "name", textContent: f.name, title: f.name }),
    el("progress", { max: 100, value: 0, id: `p${i}`, ariaLabel: `upload of ${f.name}` }),
    el("span", { className: "msg", id: `m${i}` }))));
}

export function initFiles() {
  $("files").addEventListener("change", (e) => { chosen = [...e.target.files]; showFiles(); });
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault(); drop.classList.remove("over");
    chosen = [...e.dataTransfer.files].filter((f) => f.type.startsWith("image/") || !f.type);
    showFiles();
  });
}

// Sends one file; over the client's rate (429), waits as told and sends it again.
function upload(job, file, i) {
  return new Promise((resolve) => {
    const xhr = new XMLHttpRequest();
    const bar = $(`p${i}`), msg = $(`m${i}`);
    xhr.open("POST", `/api/jobs/${job.id}/images`);
    xhr.setRequestHeader("Authorization", `Bearer ${job.token}`);
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) bar.value = 100 * e.loaded / e.total; };
    xhr.onload = () => {
      let body = {};
      try { body = JSON.parse(xhr.responseText); } catch (_) { /* not JSON: said below */ }
      if (xhr.status === 201 && body.images && body.images.length) {
        bar.value = 100; msg.textContent = "uploaded"; msg.className = "msg okc"; sent += 1;
      } else if (xhr.status === 429) {
        const wait = Number(xhr.getResponseHeader("Retry-After")) || 5;
        msg.textContent = `busy; sending again in ${wait} s`; msg.className = "msg";
        setTimeout(() => upload(job, file, i).then(resolve), wait * 1000);
        return;
      } else {
        msg.textContent = (body.errors && body.errors[0] && body.errors[0].error) || body.error || `failed (HTTP ${xhr.status})`;
        msg.className = "msg err"; msg.title = msg.textContent; refused += 1;
      }
      tally();
      resolve();
    };
    xhr.onerror = () => { msg.textContent = "network error"; msg.className = "msg err"; refused += 1; tally(); resolve(); };
    const form = new FormData();
    form.append("file", file, file.name);
    xhr.send(form);
  });
}

// Uploads every chosen photo to the job, AT_ONCE at a time.
export async function uploadAll(job) {
  const files = [...chosen.entries()];
  const next = async () => { for (let f; (f = files.shift());) await upload(job, f[1], f[0]); };
  await Promise.all(Array.from({ length: AT_ONCE }, next));
}
