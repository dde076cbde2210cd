// My jobs: the jobs made in this browser, kept in its localStorage (ids and
// tokens never leave it but to this server, in headers), each with its
// counts, expiry, a link back and "Delete now".
"use strict";
import { $, el, status } from "./dom.js";
import { call } from "./api.js";

const KEY = "darkroom.jobs";
// The most recent jobs kept; each is looked up when the list shows.
const KEPT = 30;

export function myJobs() {
  try { return JSON.parse(localStorage.getItem(KEY)) || []; } catch (_) { return []; }
}

function save(jobs) { localStorage.setItem(KEY, JSON.stringify(jobs)); }

export function remember(job, photos) {
  const jobs = myJobs().filter((j) => j.id !== job.id);
  jobs.unshift({ id: job.id, token: job.token, created: new Date().toISOString(), photos });
  save(jobs.slice(0, KEPT));
}

export function forget(id) { save(myJobs().filter((j) => j.id !== id)); }

export const jobLink = (job) => `#job=${job.id}&token=${job.token}`;

// Lists the jobs, each as the server sees it now; a job the server no
// longer has (expired, deleted elsewhere) is forgotten.
export async function showMyJobs(current, onDeleted) {
  const list = $("myjobs");
  const jobs = myJobs();
  $("myjobsbox").hidden = jobs.length === 0;
  const rows = await Promise.all(jobs.map(async (job) => {
    const { status: code, body } = await call(job, "GET", "?limit=1");
    if (code === 404) { forget(job.id); return null; }
    const c = body.counts || { done: 0, failed: 0, total: 0 };
    const made = new Date(job.created).toLocaleString();
    const link = el("a", { href: jobLink(job), textContent: `${made} · ${job.photos} photos` });
    if (current && current.id === job.id) link.ariaCurrent = "page";
    const counts = el("span", { className: "dim",
      textContent: ` ${body.state || "?"}: ${c.done} done, ${c.failed} failed of ${c.total}; kept until ${new Date(body.expires_at).toLocaleString()} ` });
    const del = el("button", { type: "button", className: "ghost", textContent: "Delete now",
      ariaLabel: `Delete now: the job of ${made}` });
    del.onclick = async () => {
      if (!confirm("Delete this job, its photos and its results now?")) return;
      const { status: gone } = await call(job, "DELETE", "");
      if (gone !== 204 && gone !== 404) { status(`could not delete the job (HTTP ${gone})`, true); return; }
      forget(job.id);
      onDeleted(job);
      showMyJobs(current, onDeleted);
    };
    const li = el("li", {}, link, counts, del);
    li.dataset.job = job.id;
    return li;
  }));
  list.replaceChildren(...rows.filter(Boolean));
  $("myjobsbox").hidden = list.children.length === 0;
}
