// What the knowledge page's parts share to show things: filling a node, times from the API, an empty table row.

import { ago, el } from "/app/common.js";

export const $ = (id) => document.getElementById(id);

// replaceChildren, leaving out the null of a condition (replaceChildren itself would write "null")
export function fill(node, ...children) {
  node.replaceChildren(...children.flat().filter((child) => child !== null && child !== undefined && child !== false));
  return node;
}

// the API writes some times without a zone: they are UTC
export function utc(iso) {
  return typeof iso === "string" && !/(Z|[+-]\d\d:?\d\d)$/i.test(iso) ? `${iso}Z` : iso;
}

export function time(iso) {
  if (!iso) return el("span", { class: "muted", text: "—" });
  const at = new Date(utc(iso));
  return el("time", { datetime: at.toISOString(), title: at.toLocaleString() }, `${ago(utc(iso))} ago`);
}

export function emptyRow(columns, text) {
  return el("tr", {}, el("td", { colspan: columns, class: "empty", text }));
}
