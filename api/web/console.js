// The agent console: the thread queue (left), the open thread with a composer (middle) and the copilot
// panel (right): reply suggestions with their sources, a catch-up summary, next-best actions and a
// knowledge search. Every text from the API is set with textContent (through el()), never as HTML.
// This module starts the page and wires its controls; each part lives in its own console-*.js module.

import { showError, signedIn } from "/app/common.js";
import { updateMeter } from "/app/console-channels.js";
import { checkVoice, reloadOpenThread, selectThread, send } from "/app/console-conversation.js";
import { loadActions, loadSummary, search } from "/app/console-insights.js";
import { $, randomId } from "/app/console-state.js";
import { initCitationDialog, loadSuggestions } from "/app/console-suggestions.js";
import { connectConversation, createThread, loadThreads } from "/app/console-threads.js";

const REFRESH_MS = 15000;

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
  initCitationDialog();
  connectConversation({ open: selectThread, reload: reloadOpenThread });
  await loadThreads();
  const wanted = decodeURIComponent(location.hash.slice(1));
  if (wanted) await selectThread(wanted);
  setInterval(() => {
    if (!document.hidden) loadThreads();
  }, REFRESH_MS);
}

start();
