// The console's thread queue (left column): threads waiting for an answer first, the most urgent and then
// the longest waiting on top; a form to create a thread. Opening a thread is the conversation's job, and the
// conversation refreshes this list: the page hands the list its callbacks at start (connectConversation) so
// that the two modules do not import each other.

import { ago, api, el, notify } from "/app/common.js";
import { channelName } from "/app/console-channels.js";
import { $, busy, randomId, state } from "/app/console-state.js";

const queue = {
  threads: [],
  loading: false,     // a refresh runs
  again: false,       // and something changed meanwhile
};

// what the list asks of the open thread: open one the agent picked, reload the open one when others wrote in it
const conversation = { open: async () => {}, reload: async () => {} };

export function connectConversation({ open, reload }) {
  conversation.open = open;
  conversation.reload = reload;
}

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

export function renderThreads() {
  const list = $("thread-list");
  const focusedId = document.activeElement?.closest?.("#thread-list [data-thread]")?.dataset.thread;
  const threads = sortThreads(queue.threads);
  list.replaceChildren(...threads.map((thread, index) => {
    const cuesId = `thread-cues-${index}`;
    const cues = (thread.urgency_cues || []).join(", ");
    const waiting = thread.waiting_since ? `waiting ${ago(thread.waiting_since)}` : null;
    const button = el("button", {
      type: "button", class: "thread-item", "data-thread": thread.id,
      "aria-current": thread.id === state.selected ? "true" : null,
      "aria-describedby": cues ? cuesId : null,
      onclick: () => conversation.open(thread.id),
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
  const waitingCount = queue.threads.filter((t) => t.waiting_since).length;
  $("threads-status").textContent = queue.threads.length
    ? `${queue.threads.length} threads, ${waitingCount} waiting for an answer.`
    : "No threads yet: create one below.";
  if (focusedId) list.querySelector(`[data-thread="${CSS.escape(focusedId)}"]`)?.focus();
}

export async function loadThreads({ button } = {}) {
  if (queue.loading) {
    queue.again = true; // a change while a refresh runs: refresh once more after it
    return;
  }
  queue.loading = true;
  queue.again = false;
  try {
    await busy(button, async () => {
      const answer = await api("/v1/threads?limit=200");
      queue.threads = answer.threads;
      renderThreads();
      const open = queue.threads.find((t) => t.id === state.selected);
      if (open && state.thread && open.message_count !== state.thread.messages.length) {
        await conversation.reload(); // someone else wrote in the open thread
      }
    }, $("thread-list"));
  } finally {
    queue.loading = false;
  }
  if (queue.again) await loadThreads();
}

export async function createThread(event) {
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
    await conversation.open(id);
    $("send-as").value = "customer";
    $("composer").focus();
  });
}
