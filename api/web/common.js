// Shared by every page: sign-in with an API key (kept in this tab's sessionStorage only), calls to the
// /v1 API with problem+json errors shown to the user, small DOM helpers. Text from the API is always set
// with textContent, never as HTML.

const KEY = "copilot.key";

export function apiKey() {
  return sessionStorage.getItem(KEY);
}

export function signOut() {
  sessionStorage.removeItem(KEY);
  location.href = "/app/";
}

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

// fetch a /v1 route with the key; JSON in and out; FormData bodies go as multipart
export async function api(path, { method = "GET", body, raw = false } = {}) {
  const headers = { Authorization: `Bearer ${apiKey()}` };
  let payload = body;
  if (body !== undefined && !(body instanceof FormData)) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  const response = await fetch(path, { method, headers, body: payload });
  if (response.status === 401 && path !== "/v1/me") {
    signOut();
  }
  if (!response.ok) {
    let problem = {};
    try { problem = await response.json(); } catch { problem = { title: response.statusText }; }
    throw new ApiError(response.status, problem);
  }
  if (raw) return response;
  if (response.status === 204) return null;
  return response.json();
}

// who the key is ({key_id, tenant, role, permissions}); sends to the sign-in page without a valid key
export async function signedIn(permission) {
  if (!apiKey()) {
    location.href = `/app/?next=${encodeURIComponent(location.pathname)}`;
    throw new Error("not signed in");
  }
  const me = await api("/v1/me");
  renderHeader(me);
  if (permission && !me.permissions.includes(permission)) {
    notify(`A ${me.role} key may not use this page.`, "error");
    throw new Error("forbidden");
  }
  return me;
}

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// a message in the page's live region (role=status), errors in red; clears after a while
export function notify(message, kind = "info") {
  const region = document.getElementById("notice");
  if (!region) return;
  region.textContent = message;
  region.className = `notice ${kind}`;
  clearTimeout(notify.timer);
  notify.timer = setTimeout(() => { region.textContent = ""; region.className = "notice"; }, 8000);
}

export function showError(error) {
  notify(error instanceof ApiError ? `${error.message} (HTTP ${error.status})` : String(error.message || error),
         "error");
}

export function ago(iso) {
  if (!iso) return "";
  const seconds = Math.max(0, (Date.now() - new Date(iso).getTime()) / 1000);
  if (seconds < 60) return `${Math.round(seconds)} s`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min`;
  if (seconds < 86400) return `${Math.round(seconds / 3600)} h`;
  return `${Math.round(seconds / 86400)} d`;
}

const PAGES = [
  { href: "/app/console.html", label: "Agent console", permission: "assist" },
  { href: "/app/content.html", label: "Knowledge", permission: "content" },
  { href: "/app/qa.html", label: "Evals", permission: "evals" },
];

function renderHeader(me) {
  const nav = document.getElementById("nav");
  if (!nav) return;
  nav.replaceChildren(
    ...PAGES.filter((p) => me.permissions.includes(p.permission)).map((p) =>
      el("a", { href: p.href, "aria-current": location.pathname === p.href ? "page" : null, text: p.label })),
    el("span", { class: "who", text: `${me.tenant} · ${me.role}` }),
    el("button", { type: "button", class: "link", onclick: signOut, text: "Sign out" }),
  );
}
