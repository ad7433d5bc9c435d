// The copilot's reply suggestions (right column): each with its source, confidence, check warnings and
// citations (opened in a dialog); the agent inserts one into the composer or rejects it with a reason, and
// every suggestion shown is reported as feedback.

import { api, el, notify, showError } from "/app/common.js";
import { updateMeter } from "/app/console-channels.js";
import { $, busy, cancelPanel, hasCustomerMessage, pct, refreshPanel, state, words } from "/app/console-state.js";

const REJECT_REASONS = [
  ["wrong_answer", "Wrong answer"], ["off_topic", "Off topic"], ["tone", "Tone"],
  ["outdated", "Outdated"], ["other", "Other"],
];

const shown = new Set(); // suggestion ids already reported as shown

// --- a citation's passage, in a dialog --------------------------------------------------------------

const citationDialog = () => $("citation-dialog");
let citationOpener = null;

// gives the focus back to the citation that opened the dialog, when it closes
export function initCitationDialog() {
  citationDialog().addEventListener("close", () => {
    if (citationOpener?.isConnected) citationOpener.focus();
    citationOpener = null;
  });
}

function openCitation(citation, opener) {
  citationOpener = opener;
  $("citation-title").textContent = citation.title || citation.document_id;
  $("citation-section").textContent = citation.section || "";
  $("citation-passage").textContent = citation.passage || citation.text || "";
  $("citation-document").textContent = citation.document_id ? `Document: ${citation.document_id}` : "";
  citationDialog().showModal();
  $("citation-close").focus();
}

// --- the suggestions -------------------------------------------------------------------------------

function sourceBadge(source) {
  const cls = { macro: "good", knowledge: "good", llm: "warn", clarify: "" }[source] ?? "";
  return el("span", { class: `badge source ${cls}`, text: source });
}

function suggestionItem(s) {
  const item = el("li", { class: "suggestion", "data-suggestion": s.id });
  const problems = (s.checks || []).filter((c) => !c.passed || c.violations.length);
  const changes = (s.checks || []).flatMap((c) => c.changes.map((change) => `${c.name}: ${change}`));
  const insert = el("button", { type: "button", class: "small", onclick: () => insertSuggestion(s) }, "Insert");
  const reject = el("button", { type: "button", class: "danger small", onclick: () => openReject(s, item, reject) },
    "Reject");
  item.append(...[
    el("p", { class: "suggestion-head" }, sourceBadge(s.source), " ",
      el("span", { class: "confidence", text: `${pct(s.confidence)} confidence` }),
      s.sms_segments ? el("span", { class: "muted", text: ` · ${s.sms_segments} SMS segment${s.sms_segments === 1 ? "" : "s"}` }) : null,
      s.messages && s.messages.length > 1 ? el("span", { class: "muted", text: ` · sent as ${s.messages.length} messages` }) : null),
    el("p", { class: "suggestion-text", text: s.text }),
    problems.length ? el("ul", { class: "violations small-text", "aria-label": "Check warnings" },
      problems.flatMap((c) => (c.violations.length ? c.violations : ["did not pass"]).map((v) =>
        el("li", {}, el("strong", { text: `${c.name}: ` }), v)))) : null,
    changes.length ? el("p", { class: "muted small-text", text: `Adjusted: ${changes.join("; ")}` }) : null,
    s.citations && s.citations.length ? el("div", { class: "citations" },
      el("span", { class: "small-text muted", text: "Sources: " }),
      s.citations.map((c) => {
        const button = el("button", { type: "button", class: "link citation", "aria-haspopup": "dialog" },
          c.section ? `${c.title} › ${c.section}` : c.title);
        button.addEventListener("click", () => openCitation(c, button));
        return button;
      })) : null,
    el("div", { class: "suggestion-buttons" }, insert, reject),
  ].filter(Boolean));
  return item;
}

function insertSuggestion(s) {
  const textarea = $("composer");
  textarea.value = s.text;
  state.inserted = { id: s.id, text: s.text };
  $("send-as").value = "agent";
  updateMeter();
  textarea.focus();
  textarea.setSelectionRange(textarea.value.length, textarea.value.length);
  notify("Suggestion inserted: edit it if needed, then send.");
}

function openReject(s, item, rejectButton) {
  if (item.querySelector("form.reject-form")) {
    item.querySelector("form.reject-form select").focus();
    return;
  }
  const n = item.dataset.suggestion;
  const select = el("select", { id: `reason-${n}`, name: "reason" },
    REJECT_REASONS.map(([value, label]) => el("option", { value, text: label })));
  const details = el("input", { id: `reason-text-${n}`, name: "details", maxlength: "400", autocomplete: "off" });
  const submit = el("button", { type: "submit", class: "danger small" }, "Send rejection");
  const close = () => {
    form.remove();
    rejectButton.focus();
  };
  const form = el("form", { class: "reject-form", "aria-label": "Reject this suggestion" },
    el("label", { for: select.id, text: "Reason" }), select,
    el("label", { for: details.id, text: "Details (optional)" }), details,
    el("div", { class: "suggestion-buttons" }, submit,
      el("button", { type: "button", class: "secondary small", onclick: close }, "Cancel")));
  form.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      event.preventDefault();
      close();
    }
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = details.value.trim();
    const reason = (text ? `${select.value}: ${text}` : select.value).slice(0, 500);
    await busy(submit, async () => {
      await api("/v1/feedback", { method: "POST", body: { suggestion_id: s.id, event: "rejected", reason } });
      form.remove();
      item.classList.add("rejected");
      for (const button of item.querySelectorAll(".suggestion-buttons button")) button.disabled = true;
      item.querySelector(".suggestion-buttons").append(el("span", { class: "muted small-text", text: "Rejected" }));
      if (state.inserted?.id === s.id) state.inserted = null;
      notify("Rejection recorded. Thank you: it helps improve the knowledge.");
      $("composer").focus();
    });
  });
  item.append(form);
  select.focus();
}

export function loadSuggestions() {
  const list = $("suggestions");
  const note = $("suggestions-note");
  if (!hasCustomerMessage()) {
    cancelPanel("suggestions");
    list.replaceChildren();
    note.textContent = "No customer message to answer yet. Send one as the customer to try the copilot.";
    return undefined;
  }
  note.textContent = "Finding suggestions…";
  return refreshPanel("suggestions", $("refresh-suggestions"), list,
    () => api("/v1/suggestions", { method: "POST", body: { thread_id: state.selected, n: 3 } }),
    (set) => renderSuggestions(set),
    (error) => {
      list.replaceChildren();
      note.textContent = `No suggestions: ${error.message}`;
      showError(error);
    });
}

function renderSuggestions(set) {
  const list = $("suggestions");
  const note = $("suggestions-note");
  const count = `${set.suggestions.length} suggestion${set.suggestions.length === 1 ? "" : "s"}`;
  const details = [
    set.note, set.intent ? `Intent: ${words(set.intent)}.` : null,
    set.flagged_documents?.length ? `Left out as suspicious: ${set.flagged_documents.join(", ")}.` : null,
  ].filter(Boolean).join(" ");
  note.replaceChildren(...[
    el("span", { class: set.answered ? null : "unanswered", text: set.answered ? `${count}.`
      : "Nothing in the knowledge fits well enough to answer: ask a clarifying question, or search the knowledge below." }),
    details ? el("span", { class: "note-detail", text: ` ${details}` }) : null,
  ].filter(Boolean));
  list.replaceChildren(...set.suggestions.map((s) => suggestionItem(s)));
  if (!set.suggestions.length) list.append(el("li", { class: "muted small-text", text: "No suggestions." }));
  for (const s of set.suggestions) reportShown(s.id);
}

function reportShown(id) {
  if (shown.has(id)) return;
  shown.add(id);
  api("/v1/feedback", { method: "POST", body: { suggestion_id: id, event: "shown" } }).catch((error) => {
    shown.delete(id);
    showError(error);
  });
}
