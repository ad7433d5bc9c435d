// The copilot panel's context boxes (right column): a catch-up summary of the thread, the next-best actions
// with their playbook and escalation advice, and a search of the knowledge.

import { ago, api, el, notify } from "/app/common.js";
import { $, busy, failed, placeholder, refreshPanel, state, time, words } from "/app/console-state.js";

// --- catch-up and summary --------------------------------------------------------------------------

function summaryView(summary) {
  const sentiment = summary.sentiment || {};
  const trend = sentiment.start !== null && sentiment.start !== undefined && sentiment.end !== null
    ? `${sentiment.direction} (${sentiment.start.toFixed(2)} → ${sentiment.end.toFixed(2)})`
    : sentiment.direction;
  const rows = [
    ["Status", summary.status ? words(summary.status) : "—"],
    ["Intent", summary.intent ? words(summary.intent.name) : "—"],
    ["Sentiment", trend || "—"],
  ];
  if (summary.waiting_since) rows.push(["Waiting", `${ago(summary.waiting_since)} (since ${time(summary.waiting_since)})`]);
  const list = (title, items, render) => items.length
    ? [el("h4", { text: title }), el("ul", { class: "compact" }, items.map((item) => el("li", {}, render(item))))]
    : [];
  return [
    el("p", { class: "abstract", text: summary.abstract || "Nothing to summarise yet." }),
    el("dl", { class: "facts-grid" }, rows.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: v })])),
    ...list("Key facts", summary.facts || [], (f) => [el("span", { class: "muted", text: `${words(f.kind)}: ` }),
      f.value]),
    ...list("Done by the agent", summary.actions || [], (a) => a),
    ...list("Next steps", summary.next_steps || [], (s) => [
      el("span", { class: "badge", text: s.owner === "agent" ? "agent" : "customer" }), " ",
      el("span", { class: "muted", text: `${words(s.kind)}: ` }), s.text]),
    summary.note ? el("p", { class: "muted small-text", text: summary.note }) : null,
  ].filter(Boolean);
}

export function showCatchUp(summary) {
  $("catch-up-body").replaceChildren(...summaryView(summary));
  $("catch-up").hidden = false;
  $("messages").scrollTop = $("messages").scrollHeight; // the panel took room from the messages
  notify("The thread had been quiet: a catch-up summary is shown above the messages.");
}

export function loadSummary() {
  const box = $("summary");
  placeholder(box, "Summarising…");
  return refreshPanel("summary", $("refresh-summary"), box,
    () => api("/v1/summaries", { method: "POST", body: { thread_id: state.selected, style: "catch_up" } }),
    (summary) => box.replaceChildren(...summaryView(summary)),
    (error) => failed(box, error));
}

// --- next-best actions -----------------------------------------------------------------------------

export function loadActions() {
  const box = $("actions");
  placeholder(box, "Finding next steps…");
  return refreshPanel("actions", $("refresh-actions"), box,
    () => api("/v1/next-best-actions", { method: "POST", body: { thread_id: state.selected } }),
    (next) => box.replaceChildren(...actionsView(next)),
    (error) => failed(box, error));
}

function actionsView(next) {
  const nodes = [];
  if (next.playbook) {
    const p = next.playbook;
    nodes.push(el("p", { class: "small-text" }, "Playbook: ", el("strong", { text: p.name }),
      ` — ${p.done.length} done, ${p.remaining.length} to go`
      + (p.awaiting_customer.length ? `, waiting on the customer for ${p.awaiting_customer.length}` : "")));
  }
  if (!next.actions.length) {
    nodes.push(el("p", { class: "muted small-text", text: "No next steps suggested for this thread." }));
  } else {
    nodes.push(el("ol", { class: "action-list" }, next.actions.map((a) => el("li", { class: "action" },
      el("p", { class: "action-title" }, el("strong", { text: a.title }), " ",
        el("span", { class: "badge", text: words(a.kind) }), " ",
        a.preconditions_met ? el("span", { class: "badge good", text: "ready" })
          : el("span", { class: "badge warn", text: "blocked" })),
      el("p", { class: "small-text", text: a.reason }),
      a.blocked_by.length ? el("p", { class: "small-text warn-text", text: `Blocked by: ${a.blocked_by.join("; ")}` })
        : null))));
  }
  if (next.escalation.length) {
    nodes.push(el("h4", { text: "Escalation advice" }), el("ul", { class: "compact" }, next.escalation.map((e) =>
      el("li", { class: "escalation" },
        el("span", { class: "badge bad", text: e.kind === "channel_switch" ? `move to ${e.target}` : `escalate to ${e.target}` }),
        " ", e.reason,
        e.evidence ? el("blockquote", { class: "evidence", text: e.evidence }) : null))));
  }
  return nodes;
}

// --- knowledge search ------------------------------------------------------------------------------

export async function search(event) {
  event.preventDefault();
  const q = $("search-q").value.trim();
  const results = $("search-results");
  if (!q) return;
  await busy($("search-button"), async () => {
    try {
      const answer = await api(`/v1/knowledge/search?q=${encodeURIComponent(q)}&k=5`);
      if (!answer.results.length) {
        results.replaceChildren(el("li", { class: "muted small-text", text: "Nothing found." }));
        return;
      }
      results.replaceChildren(...answer.results.map((r) => el("li", { class: "search-result" },
        el("p", { class: "result-title" }, el("strong", { text: r.title }),
          r.section ? el("span", { class: "muted", text: ` › ${r.section}` }) : null, " ",
          el("span", { class: "badge", text: r.kind })),
        el("p", { class: "result-text small-text", text: r.text }))));
      notify(`${answer.results.length} knowledge passages found.`);
    } catch (error) {
      failed(results, error);
    }
  }, results);
}
