// Analytics of the knowledge: suggestion acceptance over a period, and the questions it could not answer.

import { api, el, showError } from "/app/common.js";
import { $, emptyRow, fill, time, utc } from "/app/content-view.js";

function pct(value) {
  return value === null || value === undefined ? "—" : `${Math.round(value * 1000) / 10}%`;
}

export async function loadAnalytics() {
  const days = Number($("gaps-period").value);
  const since = new Date(Date.now() - days * 86400000).toISOString();
  try {
    const a = await api(`/v1/analytics?since=${encodeURIComponent(since)}`);
    $("gaps-when").textContent =
      `${new Date(utc(a.since)).toLocaleDateString()} to ${new Date(utc(a.until)).toLocaleDateString()}`;
    const stats = [
      ["Suggestion requests", a.requests], ["Answered", pct(a.answered_rate)],
      ["Suggestions shown", a.suggestions_shown], ["Accepted or edited", pct(a.acceptance_rate)],
      ["Accepted as is", a.accepted], ["Edited", a.edited], ["Rejected", a.rejected],
      ["Rejection rate", pct(a.rejection_rate)],
      ["Text changed in edits", a.mean_edit_ratio === null || a.mean_edit_ratio === undefined ? "—" : pct(a.mean_edit_ratio)],
    ];
    fill($("acceptance"), ...stats.map(([label, value]) =>
      el("div", {}, el("dt", { text: label }), el("dd", { text: value }))));
    const rows = a.knowledge_gaps.map((g) => el("tr", {},
      el("th", { scope: "row", class: "wrap", text: g.question }),
      el("td", { class: "num", text: g.count }),
      el("td", { class: "wrap" }, g.examples.length
        ? el("ul", { class: "plain" }, ...g.examples.map((e) => el("li", { text: e })))
        : el("span", { class: "muted", text: "—" })),
      el("td", { class: "nowrap" }, time(g.last_asked))));
    fill($("gaps").tBodies[0],
      ...(rows.length ? rows : [emptyRow(4, "No unanswered questions in this period.")]));
  } catch (error) {
    fill($("gaps").tBodies[0], emptyRow(4, "The analytics could not be loaded."));
    showError(error);
  }
}
