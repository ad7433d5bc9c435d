// The agent console's shared state (the open thread and what the agent did in it) and how its requests run:
// buttons disabled meanwhile, errors shown, answers for a thread the agent has left dropped.

import { el, showError } from "/app/common.js";

export const $ = (id) => document.getElementById(id);

export const state = {
  selected: null,       // the open thread's id
  thread: null,         // {channel, customer, messages}
  inserted: null,       // {id, text}: the suggestion last put in the composer
  loadToken: 0,         // bumps on every thread switch; answers for an older thread are dropped
};

export function hasCustomerMessage() {
  return (state.thread?.messages || []).some((m) => m.role === "customer");
}

// --- small helpers ---------------------------------------------------------------------------------

export function randomId(prefix) {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return prefix + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export function pct(value) {
  return `${Math.round((value || 0) * 100)}%`;
}

export function time(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? "" : date.toLocaleString([], { dateStyle: "short", timeStyle: "short" });
}

export function words(machineName) {
  return String(machineName || "").replaceAll("_", " ");
}

// run a request with its button disabled (and aria-busy on a region, if given); errors go to showError
export async function busy(button, work, region) {
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

export async function refreshPanel(name, button, region, request, render, fail) {
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

// drops the answer of a panel's request still on its way
export function cancelPanel(name) {
  panelSeq[name] = (panelSeq[name] || 0) + 1;
}

export function placeholder(node, text) {
  node.replaceChildren(el("p", { class: "muted small-text", text }));
}

export function failed(node, error) {
  placeholder(node, `Could not load: ${error.message || error}`);
  showError(error);
}
