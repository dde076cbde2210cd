// The jobs API as the page uses it: every call carries the job's token in a
// header; URLs the browser loads on its own (images, downloads, the event
// stream) are signed links, so no URL carries the token.
"use strict";

const LINKS_PER_REQUEST = 500;
const signedLinks = new Map();   // path -> {url, until}
const toSign = new Map();        // job id -> {job, waiting: Map(path -> [{resolve, reject}])}

const auth = (job, more = {}) => ({ headers: { Authorization: `Bearer ${job.token}`, ...more } });

// A call on the job; the answer's JSON (or {}) with its status.
export async function call(job, method, rest, body) {
  const init = { method, ...auth(job, body ? { "Content-Type": "application/json" } : {}) };
  if (body) init.body = JSON.stringify(body);
  const res = await fetch(`/api/jobs/${job.id}${rest}`, init);
  let json = {};
  try { json = await res.json(); } catch (_) { /* 204 and errors without a body */ }
  return { status: res.status, body: json, retryAfter: Number(res.headers.get("Retry-After")) || 0 };
}

export async function createJob(recipes) {
  const res = await fetch("/api/jobs", {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ recipes }),
  });
  return { status: res.status, body: await res.json() };
}

// Whether the link known for path has more than a minute left.
export function fresh(path) {
  const known = signedLinks.get(path);
  return Boolean(known) && known.until - Date.now() > 60_000;
}

// A signed link to path, asked for with the other paths wanted in this turn.
export function signedLink(job, path) {
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
      const { status, body } = await call(job, "POST", "/links", { paths: chunk });
      if (status !== 200) throw new Error(`could not get download links (HTTP ${status})`);
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
// its link is stale gets a fresh one. `failed` hears why a link could not be had.
export function linkTo(job, el, attr, path, failed = () => {}) {
  el.dataset.path = path;
  const point = () => signedLink(job, path).then(
    (url) => { if (el.dataset.path === path) el[attr] = url; return url; },
    (err) => failed(err));
  if (attr === "href") {
    el.onclick = (e) => {
      if (fresh(path)) return;
      e.preventDefault();
      point().then((url) => url && el.click());
    };
  } else {
    el.addEventListener("error", () => { if (!fresh(path)) point(); });
  }
  point();
}
