// The few DOM helpers every module uses.
"use strict";

export const $ = (id) => document.getElementById(id);

export const el = (tag, props = {}, ...kids) => {
  const e = Object.assign(document.createElement(tag), props);
  for (const k of kids) e.append(k);
  return e;
};

// The page's one line of news, read out by screen readers (role=status).
export function status(text, bad = false) {
  $("status").textContent = text;
  $("status").className = bad ? "err" : "";
}
