import { api, ApiError, el, notify } from "/app/common.js";

const PAGES = [
  ["/app/console.html", "Agent console", "assist", "Threads, reply suggestions, summaries and next-best actions"],
  ["/app/content.html", "Knowledge", "content", "Documents, uploads, brand voice and knowledge gaps"],
  ["/app/qa.html", "Evals", "evals", "Eval runs, reports and comparisons"],
];

async function showPages() {
  const me = await api("/v1/me");
  const mine = PAGES.filter(([, , permission]) => me.permissions.includes(permission));
  const next = new URLSearchParams(location.search).get("next");
  if (next && mine.some(([href]) => href === next)) {
    location.href = next;
    return;
  }
  document.getElementById("pages").replaceChildren(...mine.map(([href, label, , what]) =>
    el("li", {}, el("a", { href, text: label }), ` — ${what}`)));
  notify(`Signed in to ${me.tenant} as ${me.role}.`);
}

document.getElementById("signin").addEventListener("submit", async (event) => {
  event.preventDefault();
  sessionStorage.setItem("copilot.key", document.getElementById("key").value.trim());
  try {
    await showPages();
  } catch (error) {
    sessionStorage.removeItem("copilot.key");
    notify(error instanceof ApiError && error.status === 401 ? "That key is unknown or revoked." : String(error),
           "error");
  }
});

if (sessionStorage.getItem("copilot.key")) showPages().catch(() => sessionStorage.removeItem("copilot.key"));
