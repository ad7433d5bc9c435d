// The open thread (middle column): its messages, and a composer that sends as the agent or as the customer,
// reports what became of an inserted suggestion and checks a draft against the brand voice. Opening a thread
// reloads the copilot panel beside it.

import { api, el, notify, showError } from "/app/common.js";
import { channelName, updateMeter } from "/app/console-channels.js";
import { loadActions, loadSummary, showCatchUp } from "/app/console-insights.js";
import { $, busy, failed, placeholder, randomId, state, time } from "/app/console-state.js";
import { loadSuggestions } from "/app/console-suggestions.js";
import { loadThreads, renderThreads } from "/app/console-threads.js";

function renderMessages() {
  const list = $("messages");
  const messages = state.thread?.messages || [];
  if (!messages.length) {
    list.replaceChildren(el("li", { class: "msg-empty muted", text: "No messages yet." }));
    return;
  }
  const who = { customer: state.thread.customer?.name || "Customer", agent: "Agent", system: "System", bot: "Bot" };
  list.replaceChildren(...messages.map((m) => el("li", { class: `msg msg-${m.role}` },
    el("p", { class: "msg-head" },
      el("span", { class: "msg-role", text: who[m.role] || m.role }),
      m.ts ? el("time", { datetime: m.ts, text: time(m.ts) }) : null),
    el("p", { class: "msg-text", text: m.text }))));
  list.scrollTop = list.scrollHeight;
}

function renderThreadHeader() {
  const thread = state.thread;
  const badge = $("thread-channel");
  if (!thread) {
    $("thread-heading").textContent = "Conversation";
    badge.hidden = true;
    $("thread-meta").textContent = "Choose a thread from the list, or create one.";
    return;
  }
  const customer = thread.customer || {};
  $("thread-heading").textContent = customer.name ? `Conversation with ${customer.name}` : `Thread ${state.selected}`;
  badge.textContent = channelName(thread.channel);
  badge.hidden = false;
  $("thread-meta").textContent = [
    `Thread ${state.selected}`, customer.id ? `customer ${customer.id}` : null,
    customer.tier ? `${customer.tier} tier` : null, `${thread.messages.length} messages`,
  ].filter(Boolean).join(" · ");
}

function setComposerEnabled(enabled) {
  for (const id of ["composer", "send-as", "send", "check-voice", "refresh-suggestions", "refresh-summary",
    "refresh-actions"]) $(id).disabled = !enabled;
}

export async function selectThread(id) {
  if (!id) return;
  const token = ++state.loadToken;
  state.selected = id;
  state.thread = null;
  state.inserted = null;
  setComposerEnabled(false);
  history.replaceState(null, "", `#${encodeURIComponent(id)}`);
  $("composer").value = "";
  for (const region of ["suggestions", "summary", "actions"]) $(region).removeAttribute("aria-busy");
  $("voice-check").replaceChildren();
  $("catch-up").hidden = true;
  $("suggestions").replaceChildren();
  $("suggestions-note").textContent = "";
  placeholder($("summary"), "Loading…");
  placeholder($("actions"), "Loading…");
  renderThreads();
  placeholder($("messages"), "Loading the thread…");
  $("thread-meta").textContent = `Loading thread ${id}…`;
  try {
    const view = await api(`/v1/threads/${encodeURIComponent(id)}`);
    if (token !== state.loadToken) return;
    state.thread = view.thread;
  } catch (error) {
    if (token !== state.loadToken) return;
    renderThreadHeader();
    placeholder($("summary"), "No thread open.");
    placeholder($("actions"), "No thread open.");
    failed($("messages"), error);
    return;
  }
  renderThreadHeader();
  renderMessages();
  setComposerEnabled(true);
  updateMeter();
  loadCopilot();
}

export async function reloadOpenThread() {
  const before = state.thread?.messages.length || 0;
  const token = state.loadToken;
  const view = await api(`/v1/threads/${encodeURIComponent(state.selected)}`);
  if (token !== state.loadToken) return;
  const added = view.thread.messages.slice(before);
  state.thread = view.thread;
  renderThreadHeader();
  renderMessages();
  if (added.some((m) => m.role === "customer")) {
    notify("New message from the customer.");
    loadSuggestions();
  }
}

function loadCopilot() {
  loadSuggestions();
  loadSummary();
  loadActions();
}

// --- the composer ----------------------------------------------------------------------------------

export async function send(event) {
  event.preventDefault();
  const textarea = $("composer");
  const text = textarea.value.trim();
  const role = $("send-as").value;
  if ($("send").disabled) return; // Ctrl+Enter while a send runs, or before a thread is open
  if (!state.selected || !text) {
    notify("Write a message first.", "error");
    textarea.focus();
    return;
  }
  const id = state.selected;
  const token = state.loadToken;
  await busy($("send"), async () => {
    const answer = await api(`/v1/threads/${encodeURIComponent(id)}/messages`, {
      method: "POST",
      body: { messages: [{ id: randomId("m-"), role, text, ts: new Date().toISOString() }] },
    });
    const inserted = state.inserted;
    if (token === state.loadToken) {
      state.thread = answer.thread;
      textarea.value = "";
      $("voice-check").replaceChildren();
      renderThreadHeader();
      renderMessages();
      updateMeter();
      if (answer.catch_up) showCatchUp(answer.catch_up);
    }
    if (role === "agent" && inserted) {
      state.inserted = null;
      const body = text === inserted.text.trim()
        ? { suggestion_id: inserted.id, event: "accepted" }
        : { suggestion_id: inserted.id, event: "edited", final_text: text };
      api("/v1/feedback", { method: "POST", body }).catch(showError);
    }
    if (token === state.loadToken) {
      if (role === "customer") loadSuggestions();
      loadSummary();
      loadActions();
    }
    loadThreads();
    textarea.focus();
  });
}

export async function checkVoice() {
  const text = $("composer").value;
  const box = $("voice-check");
  if (!text.trim()) {
    notify("Write a message to check.", "error");
    return;
  }
  await busy($("check-voice"), async () => {
    const check = await api("/v1/brand-voice/check", {
      method: "POST", body: { text, channel: state.thread.channel },
    });
    if (!check.violations.length) {
      box.replaceChildren(el("p", { class: "good-text small-text", text: "Fits the brand voice." }));
      return;
    }
    box.replaceChildren(el("div", {},
      el("p", { class: "small-text", text: "Brand voice:" }),
      el("ul", { class: "violations" }, check.violations.map((v) => el("li", {},
        v.text ? el("q", { text: v.text }) : null, v.text ? " — " : null, v.message,
        v.fix !== null && v.fix !== undefined ? el("span", { class: "muted", text: " (fixable)" }) : null))),
      check.fixed_text !== text ? el("button", {
        type: "button", class: "secondary small",
        onclick: () => {
          $("composer").value = check.fixed_text;
          updateMeter();
          box.replaceChildren(el("p", { class: "small-text", text: check.remaining.length
            ? `Fixed what could be fixed; ${check.remaining.length} left to fix by hand.` : "Fixed." }));
          $("composer").focus();
        },
      }, `Apply ${check.changes.length} fix${check.changes.length === 1 ? "" : "es"}`) : null));
  });
}
