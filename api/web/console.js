// The agent console: the thread queue (left), the open thread with a composer (middle) and the copilot
// panel (right): reply suggestions with their sources, a catch-up summary, next-best actions and a
// knowledge search. Every text from the API is set with textContent (through el()), never as HTML.

import { ago, api, el, notify, showError, signedIn } from "/app/common.js";

const REFRESH_MS = 15000;
const CHANNEL_NAMES = {
  sms: "SMS", whatsapp: "WhatsApp", messenger: "Messenger", apple_messages: "Apple Messages",
  webchat: "Web chat", x_dm: "X DM", app: "In-app", email: "Email",
};
// characters per message, as copilot/channels.py counts them (code points); sms counts segments instead
const CHANNEL_LIMITS = { whatsapp: 4096, messenger: 2000, x_dm: 10000 };
const SMS_MAX_SEGMENTS = 3; // copilot/channels.py SMS_MAX_SEGMENTS_PER_MESSAGE
const REJECT_REASONS = [
  ["wrong_answer", "Wrong answer"], ["off_topic", "Off topic"], ["tone", "Tone"],
  ["outdated", "Outdated"], ["other", "Other"],
];

// GSM 03.38, mirrored from copilot/channels.py: the basic set, and the extension set (two septets each)
const GSM_BASIC = new Set(
  "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
  "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà");
const GSM_EXTENDED = new Set("^{}\\[~]|€\f");

const $ = (id) => document.getElementById(id);

const state = {
  threads: [],
  selected: null,       // the open thread's id
  thread: null,         // {channel, customer, messages}
  inserted: null,       // {id, text}: the suggestion last put in the composer
  shown: new Set(),     // suggestion ids already reported as shown
  loadingThreads: false,
  threadsAgain: false,
  loadToken: 0,         // bumps on every thread switch; answers for an older thread are dropped
};

// --- small helpers ---------------------------------------------------------------------------------

export function smsLength(text) {
  const chars = [...text];
  if (chars.every((c) => GSM_BASIC.has(c) || GSM_EXTENDED.has(c))) {
    const units = chars.reduce((sum, c) => sum + (GSM_EXTENDED.has(c) ? 2 : 1), 0);
    return { encoding: "GSM-7", units, segments: units <= 160 ? 1 : Math.ceil(units / 153) };
  }
  const units = text.length; // UTF-16 code units
  return { encoding: "UCS-2", units, segments: units <= 70 ? 1 : Math.ceil(units / 67) };
}

function randomId(prefix) {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return prefix + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function channelName(channel) {
  return CHANNEL_NAMES[channel] || channel;
}

function pct(value) {
  return `${Math.round((value || 0) * 100)}%`;
}

function time(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? "" : date.toLocaleString([], { dateStyle: "short", timeStyle: "short" });
}

function words(machineName) {
  return String(machineName || "").replaceAll("_", " ");
}

// run a request with its button disabled (and aria-busy on a region, if given); errors go to showError
async function busy(button, work, region) {
  if (button) button.disabled = true;
  if (region) region.setAttribute("aria-busy", "true");
  try {
    return await work();
  } catch (error) {
    showError(error);
    return undefined;
  } finally {
    if (button) button.disabled = false;
    if (region) region.removeAttribute("aria-busy");
  }
}

// load one copilot panel: only the latest request of a panel counts (an answer overtaken by a newer request,
// or for a thread the agent has left, is dropped); its refresh button is disabled meanwhile
const panelSeq = {};

async function refreshPanel(name, button, region, request, render, fail) {
  const seq = (panelSeq[name] = (panelSeq[name] || 0) + 1);
  const token = state.loadToken;
  const current = () => seq === panelSeq[name] && token === state.loadToken;
  button.disabled = true;
  region.setAttribute("aria-busy", "true");
  try {
    const answer = await request();
    if (current()) render(answer);
  } catch (error) {
    if (current()) fail(error);
  } finally {
    if (current()) {
      button.disabled = !state.thread;
      region.removeAttribute("aria-busy");
    }
  }
}

function placeholder(node, text) {
  node.replaceChildren(el("p", { class: "muted small-text", text }));
}

function failed(node, error) {
  placeholder(node, `Could not load: ${error.message || error}`);
  showError(error);
}

// --- the thread list -------------------------------------------------------------------------------

export function sortThreads(threads) {
  const waiting = threads.filter((t) => t.waiting_since);
  const others = threads.filter((t) => !t.waiting_since);
  waiting.sort((a, b) => (b.urgency || 0) - (a.urgency || 0)
    || new Date(a.waiting_since) - new Date(b.waiting_since));
  others.sort((a, b) => new Date(b.updated_at) - new Date(a.updated_at));
  return [...waiting, ...others];
}

function urgencyBadge(thread) {
  const urgency = thread.urgency || 0;
  if (urgency <= 0) return null;
  const level = urgency >= 0.6 ? ["High", "bad"] : urgency >= 0.3 ? ["Medium", "warn"] : ["Low", ""];
  const cues = (thread.urgency_cues || []).join(", ");
  return el("span", { class: `badge ${level[1]}`, title: cues || null },
    `${level[0]} urgency`);
}

function renderThreads() {
  const list = $("thread-list");
  const focusedId = document.activeElement?.closest?.("#thread-list [data-thread]")?.dataset.thread;
  const threads = sortThreads(state.threads);
  list.replaceChildren(...threads.map((thread, index) => {
    const cuesId = `thread-cues-${index}`;
    const cues = (thread.urgency_cues || []).join(", ");
    const waiting = thread.waiting_since ? `waiting ${ago(thread.waiting_since)}` : null;
    const button = el("button", {
      type: "button", class: "thread-item", "data-thread": thread.id,
      "aria-current": thread.id === state.selected ? "true" : null,
      "aria-describedby": cues ? cuesId : null,
      onclick: () => selectThread(thread.id),
    },
    el("span", { class: "thread-top" },
      el("span", { class: "thread-name", text: thread.customer_name || thread.id }),
      el("span", { class: "badge", text: channelName(thread.channel) })),
    el("span", { class: "thread-preview", text: thread.preview || "No messages yet" }),
    el("span", { class: "thread-bottom" },
      waiting ? el("span", { class: "waiting", text: waiting }) :
        el("span", { class: "muted", text: `updated ${ago(thread.updated_at)} ago` }),
      urgencyBadge(thread)));
    return el("li", {}, button,
      cues ? el("span", { id: cuesId, class: "visually-hidden", text: `Urgency cues: ${cues}` }) : null);
  }));
  const waitingCount = state.threads.filter((t) => t.waiting_since).length;
  $("threads-status").textContent = state.threads.length
    ? `${state.threads.length} threads, ${waitingCount} waiting for an answer.`
    : "No threads yet: create one below.";
  if (focusedId) list.querySelector(`[data-thread="${CSS.escape(focusedId)}"]`)?.focus();
}

async function loadThreads({ button } = {}) {
  if (state.loadingThreads) {
    state.threadsAgain = true; // a change while a refresh runs: refresh once more after it
    return;
  }
  state.loadingThreads = true;
  state.threadsAgain = false;
  try {
    await busy(button, async () => {
      const answer = await api("/v1/threads?limit=200");
      state.threads = answer.threads;
      renderThreads();
      const open = state.threads.find((t) => t.id === state.selected);
      if (open && state.thread && open.message_count !== state.thread.messages.length) {
        await reloadOpenThread(); // someone else wrote in the open thread
      }
    }, $("thread-list"));
  } finally {
    state.loadingThreads = false;
  }
  if (state.threadsAgain) await loadThreads();
}

async function createThread(event) {
  event.preventDefault();
  const form = $("new-thread");
  const id = $("new-thread-id").value.trim();
  const channel = $("new-thread-channel").value;
  const name = $("new-thread-name").value.trim();
  await busy($("create-thread"), async () => {
    // PUT replaces a kept thread: refuse an id that is taken rather than wipe its messages (looked up in
    // the list, not with a GET that would answer 404 and log an error in the browser's console)
    const kept = await api("/v1/threads?limit=500");
    if (kept.threads.some((t) => t.id === id)) {
      notify(`A thread "${id}" exists already: choose another id.`, "error");
      $("new-thread-id").focus();
      return;
    }
    await api(`/v1/threads/${encodeURIComponent(id)}`, {
      method: "PUT", body: { channel, customer: name ? { name } : {}, messages: [] },
    });
    notify(`Thread "${id}" created. Send the first message as the customer to try the copilot.`);
    form.reset();
    $("new-thread-box").open = false;
    $("new-thread-id").value = randomId("th-").slice(0, 11);
    await loadThreads();
    await selectThread(id);
    $("send-as").value = "customer";
    $("composer").focus();
  });
}

// --- the open thread -------------------------------------------------------------------------------

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

function hasCustomerMessage() {
  return (state.thread?.messages || []).some((m) => m.role === "customer");
}

async function selectThread(id) {
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

async function reloadOpenThread() {
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

export function meterText(channel, text) {
  if (channel === "sms") {
    const sms = smsLength(text);
    const over = sms.segments > SMS_MAX_SEGMENTS;
    const unit = sms.encoding === "GSM-7" ? "characters" : "UTF-16 units";
    return {
      text: `SMS · ${sms.encoding} · ${sms.units} ${unit} · ${sms.segments} segment${sms.segments === 1 ? "" : "s"}`
        + (over ? ` — over ${SMS_MAX_SEGMENTS} segments may arrive late or out of order` : "")
        + (sms.encoding === "UCS-2" && text ? " (a character outside GSM-7 makes segments 70/67)" : ""),
      over,
    };
  }
  const length = [...text].length;
  const limit = CHANNEL_LIMITS[channel];
  if (limit) {
    const over = length > limit;
    return { text: `${channelName(channel)} · ${length} / ${limit}` + (over ? " — over the channel's limit" : ""),
      over };
  }
  return { text: `${channelName(channel)} · ${length} characters, no length limit`, over: false };
}

function updateMeter() {
  const meter = $("channel-meter");
  if (!state.thread) {
    meter.textContent = "";
    return;
  }
  const { text, over } = meterText(state.thread.channel, $("composer").value);
  meter.textContent = text;
  meter.classList.toggle("over", over);
}

async function send(event) {
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

async function checkVoice() {
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

function showCatchUp(summary) {
  $("catch-up-body").replaceChildren(...summaryView(summary));
  $("catch-up").hidden = false;
  $("messages").scrollTop = $("messages").scrollHeight; // the panel took room from the messages
  notify("The thread had been quiet: a catch-up summary is shown above the messages.");
}

function loadSummary() {
  const box = $("summary");
  placeholder(box, "Summarising…");
  return refreshPanel("summary", $("refresh-summary"), box,
    () => api("/v1/summaries", { method: "POST", body: { thread_id: state.selected, style: "catch_up" } }),
    (summary) => box.replaceChildren(...summaryView(summary)),
    (error) => failed(box, error));
}

// --- next-best actions -----------------------------------------------------------------------------

function loadActions() {
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

// --- suggestions -----------------------------------------------------------------------------------

const citationDialog = () => $("citation-dialog");
let citationOpener = null;

function openCitation(citation, opener) {
  citationOpener = opener;
  $("citation-title").textContent = citation.title || citation.document_id;
  $("citation-section").textContent = citation.section || "";
  $("citation-passage").textContent = citation.passage || citation.text || "";
  $("citation-document").textContent = citation.document_id ? `Document: ${citation.document_id}` : "";
  citationDialog().showModal();
  $("citation-close").focus();
}

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

function loadSuggestions() {
  const list = $("suggestions");
  const note = $("suggestions-note");
  if (!hasCustomerMessage()) {
    panelSeq.suggestions = (panelSeq.suggestions || 0) + 1; // drops an answer still on its way
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
  if (state.shown.has(id)) return;
  state.shown.add(id);
  api("/v1/feedback", { method: "POST", body: { suggestion_id: id, event: "shown" } }).catch((error) => {
    state.shown.delete(id);
    showError(error);
  });
}

// --- knowledge search ------------------------------------------------------------------------------

async function search(event) {
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

// --- start -----------------------------------------------------------------------------------------

async function start() {
  try {
    await signedIn("assist");
  } catch (error) {
    if (error.message !== "forbidden" && error.message !== "not signed in") showError(error);
    return;
  }
  $("console").hidden = false;
  $("new-thread-id").value = randomId("th-").slice(0, 11);
  $("new-thread").addEventListener("submit", createThread);
  $("refresh-threads").addEventListener("click", (event) => loadThreads({ button: event.currentTarget }));
  $("composer-form").addEventListener("submit", send);
  $("composer").addEventListener("input", updateMeter);
  $("composer").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      $("composer-form").requestSubmit();
    }
  });
  $("check-voice").addEventListener("click", checkVoice);
  $("refresh-suggestions").addEventListener("click", () => loadSuggestions());
  $("refresh-summary").addEventListener("click", () => loadSummary());
  $("refresh-actions").addEventListener("click", () => loadActions());
  $("dismiss-catch-up").addEventListener("click", () => {
    $("catch-up").hidden = true;
    $("composer").focus();
  });
  $("search").addEventListener("submit", search);
  citationDialog().addEventListener("close", () => {
    if (citationOpener?.isConnected) citationOpener.focus();
    citationOpener = null;
  });
  await loadThreads();
  const wanted = decodeURIComponent(location.hash.slice(1));
  if (wanted) await selectThread(wanted);
  setInterval(() => {
    if (!document.hidden) loadThreads();
  }, REFRESH_MS);
}

start();
