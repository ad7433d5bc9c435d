// The content owner's page: documents with their versions, uploads with progress, the brand voice with a live
// draft check, and the knowledge gaps. Text from the API goes in with textContent (el()), never as HTML.

import { api, ApiError, apiKey, ago, el, notify, showError, signOut, signedIn } from "/app/common.js";

const $ = (id) => document.getElementById(id);

// replaceChildren, leaving out the null of a condition (replaceChildren itself would write "null")
function fill(node, ...children) {
  node.replaceChildren(...children.flat().filter((child) => child !== null && child !== undefined && child !== false));
  return node;
}

// --- small helpers ------------------------------------------------------------------------------------

// the API writes some times without a zone: they are UTC
function utc(iso) {
  return typeof iso === "string" && !/(Z|[+-]\d\d:?\d\d)$/i.test(iso) ? `${iso}Z` : iso;
}

function time(iso) {
  if (!iso) return el("span", { class: "muted", text: "—" });
  const at = new Date(utc(iso));
  return el("time", { datetime: at.toISOString(), title: at.toLocaleString() }, `${ago(utc(iso))} ago`);
}

function pct(value) {
  return value === null || value === undefined ? "—" : `${Math.round(value * 1000) / 10}%`;
}

function bytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

function docPath(id) {
  return `/v1/knowledge/documents/${id.split("/").map(encodeURIComponent).join("/")}`;
}

function emptyRow(columns, text) {
  return el("tr", {}, el("td", { colspan: columns, class: "empty", text }));
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// --- documents ----------------------------------------------------------------------------------------

let documents = [];
let selected = null;

async function loadDocuments() {
  try {
    const body = await api("/v1/knowledge/documents");
    documents = body.documents;
    $("documents-summary").textContent =
      `${documents.length} document${documents.length === 1 ? "" : "s"} · knowledge version ${body.knowledge_version}`;
    renderDocuments();
  } catch (error) {
    fill($("documents").tBodies[0], emptyRow(7, "The documents could not be loaded."));
    showError(error);
  }
}

function renderDocuments() {
  const query = $("doc-filter").value.trim().toLowerCase();
  const shown = documents.filter((d) => !query ||
    [d.document_id, d.title, d.kind].some((field) => String(field).toLowerCase().includes(query)));
  const rows = shown.map((d) => el("tr", { class: d.document_id === selected ? "selected" : null,
                                           "data-document-id": d.document_id },
    el("td", { class: "id" }, el("button", {
      type: "button", class: "link doc-open", "aria-current": d.document_id === selected ? "true" : null,
      onclick: () => showDocument(d.document_id), text: d.document_id })),
    el("td", {}, el("span", { class: "badge", text: d.kind })),
    el("td", { class: "wrap", text: d.title }),
    el("td", { class: "num", text: `v${d.version}` }),
    el("td", { class: "num", text: d.chunks }),
    el("td", { class: "nowrap" }, time(d.updated_at)),
    el("td", { class: "wrap", text: d.updated_by })));
  fill($("documents").tBodies[0],
    ...(rows.length ? rows : [emptyRow(7, documents.length ? "No document matches the filter." : "No documents yet.")]));
}

async function showDocument(id) {
  selected = id;
  renderDocuments();
  const panel = $("document-detail");
  try {
    const d = await api(docPath(id));
    const heading = el("h3", { id: "detail-h", tabindex: "-1", text: d.title || d.document_id });
    fill(panel,
      heading,
      el("dl", { class: "facts" },
        el("dt", { text: "Document id" }), el("dd", {}, el("code", { text: d.document_id })),
        el("dt", { text: "Kind" }), el("dd", { text: d.kind }),
        el("dt", { text: "Version" }), el("dd", { text: `v${d.version}` }),
        el("dt", { text: "Status" }), el("dd", { text: d.status }),
        el("dt", { text: "Chunks" }), el("dd", { text: `${d.chunks} passages indexed` }),
        el("dt", { text: "Updated" }), el("dd", {}, time(d.updated_at)),
        el("dt", { text: "By" }), el("dd", { text: d.updated_by }),
        el("dt", { text: "Source" }), el("dd", { text: d.source })),
      el("table", { id: "document-history" },
        el("caption", { text: "Version history" }),
        el("thead", {}, el("tr", {},
          ...["Version", "Change", "Chunks", "When", "By"].map((h) =>
            el("th", { scope: "col", class: h === "Chunks" ? "num" : null, text: h })))),
        el("tbody", {}, ...[...d.history].reverse().map((v) => el("tr", {},
          el("th", { scope: "row", text: `v${v.version}` }),
          el("td", { text: v.action }),
          el("td", { class: "num", text: v.chunks }),
          el("td", { class: "nowrap" }, time(v.at)),
          el("td", { class: "wrap", text: v.by }))))),
      el("div", { class: "actions" },
        el("button", { type: "button", class: "danger", id: "document-delete",
                       onclick: () => deleteDocument(d.document_id), text: "Delete this document" })));
    heading.focus();
  } catch (error) {
    showError(error);
    if (error instanceof ApiError && error.status === 404) {
      resetDetail();
      await loadDocuments();
    }
  }
}

function resetDetail() {
  selected = null;
  fill($("document-detail"),
    el("h3", { id: "detail-h", tabindex: "-1", text: "Document" }),
    el("p", { class: "muted", text: "Choose a document id in the table to see its version history." }));
}

async function deleteDocument(id) {
  if (!confirm(`Delete ${id}? Its passages leave search at once.`)) return;
  try {
    await api(docPath(id), { method: "DELETE" });
    notify(`Deleted ${id}.`);
    resetDetail();
    await loadDocuments();
    $("doc-filter").focus();
  } catch (error) {
    showError(error);
  }
}

// --- upload with progress -----------------------------------------------------------------------------

function renderIdFields() {
  const files = [...$("upload-files").files];
  $("upload-ids").hidden = files.length === 0;
  fill($("upload-id-fields"), ...files.map((file, i) => el("div", {},
    el("label", { for: `upload-id-${i}`, text: `Document id of ${file.name} (${bytes(file.size)})` }),
    el("input", { id: `upload-id-${i}`, name: "document_id", type: "text", autocomplete: "off",
                  placeholder: file.name, "data-file-name": file.name }))));
}

// multipart POST with XMLHttpRequest, for its upload progress events; resolves {status, body}
function send(form, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/v1/knowledge/documents");
    xhr.setRequestHeader("Authorization", `Bearer ${apiKey()}`);
    xhr.responseType = "text";
    xhr.upload.addEventListener("progress", (event) => onProgress(event.loaded, event.lengthComputable ? event.total : 0));
    xhr.addEventListener("load", () => {
      let body = {};
      try { body = JSON.parse(xhr.responseText || "{}"); } catch { body = { title: xhr.statusText }; }
      if (xhr.status === 401) signOut();
      if (xhr.status >= 200 && xhr.status < 300) resolve({ status: xhr.status, body });
      else reject(new ApiError(xhr.status, body));
    });
    xhr.addEventListener("error", () => reject(new Error("The upload failed: the network or the server is down.")));
    xhr.addEventListener("abort", () => reject(new Error("The upload was cancelled.")));
    xhr.send(form);
  });
}

function setUploadProgress(loaded, total) {
  const bar = $("upload-progress");
  if (total > 0) {
    bar.max = total;
    bar.value = loaded;
    $("upload-bytes").textContent = `${bytes(loaded)} of ${bytes(total)}`;
  } else {
    bar.removeAttribute("value");
    $("upload-bytes").textContent = bytes(loaded);
  }
}

async function upload(event) {
  event.preventDefault();
  const files = [...$("upload-files").files];
  if (!files.length) {
    notify("Choose one or more files first.", "error");
    $("upload-files").focus();
    return;
  }
  const ids = [...document.querySelectorAll("#upload-id-fields input")].map((input) => input.value.trim());
  const form = new FormData();
  files.forEach((file) => form.append("files", file, file.name));
  if (ids.some(Boolean)) files.forEach((file, i) => form.append("document_id", ids[i] || file.name));

  const button = $("upload-submit");
  button.disabled = true;
  fill($("upload-report"));
  $("ingest-row").hidden = true;
  setUploadProgress(0, files.reduce((sum, f) => sum + f.size, 0));
  $("upload-status").textContent = `Uploading ${files.length} file${files.length === 1 ? "" : "s"}…`;
  try {
    const { status, body } = await send(form, setUploadProgress);
    const bar = $("upload-progress");
    bar.value = bar.max;
    let report = body.report;
    if (status === 202 && body.job_id) report = await followJob(body.job_id);
    if (report) {
      renderReport(report);
      $("upload-status").textContent = `Done: ${reportLine(report)}.`;
    }
    $("upload").reset();
    renderIdFields();
    await loadDocuments();
  } catch (error) {
    $("upload-status").textContent = "The upload failed.";
    showError(error);
  } finally {
    button.disabled = false;
  }
}

// poll an ingest job every second until it succeeded or failed; returns its report
async function followJob(jobId) {
  $("ingest-row").hidden = false;
  const bar = $("ingest-progress");
  bar.removeAttribute("value");
  let said = "";
  for (;;) {
    const job = await api(`/v1/jobs/${encodeURIComponent(jobId)}`);
    if (job.total > 0) {
      bar.max = job.total;
      bar.value = job.done;
    }
    $("ingest-count").textContent = job.total ? `${job.done} of ${job.total} files` : job.status;
    const line = job.status === "queued" ? "Queued for indexing…"
      : `Indexing: ${job.done} of ${job.total} files${job.current ? ` (last: ${job.current})` : ""}…`;
    if (line !== said && job.status !== "succeeded" && job.status !== "failed") {
      $("upload-status").textContent = line;
      said = line;
    }
    if (job.status === "succeeded") return job.result || {};
    if (job.status === "failed") throw new Error(`Indexing failed: ${job.error || "no reason given"}`);
    await sleep(1000);
  }
}

function reportLine(r) {
  const parts = [`${r.added ?? 0} added`, `${r.updated ?? 0} updated`, `${r.unchanged ?? 0} unchanged`];
  if (r.removed) parts.push(`${r.removed} removed`);
  parts.push(`${(r.failed || []).length} failed`);
  return parts.join(", ");
}

function renderReport(r) {
  const failed = r.failed || [];
  fill($("upload-report"),
    el("h3", { text: "Ingest report" }),
    el("dl", { class: "stats", id: "ingest-report" },
      ...[["Added", r.added], ["Updated", r.updated], ["Unchanged", r.unchanged], ["Failed", failed.length],
          ["Chunks indexed", r.chunks]].map(([label, value]) =>
        el("div", {}, el("dt", { text: label }), el("dd", { text: value ?? 0 })))),
    failed.length ? el("div", {},
      el("h4", { class: "failed", text: "Not ingested" }),
      el("ul", { id: "ingest-failed" }, ...failed.map((f) =>
        el("li", {}, el("code", { text: f.path }), `: ${f.error}`)))) : null);
  if (failed.length) notify(`${failed.length} file${failed.length === 1 ? " was" : "s were"} not ingested: see the report.`, "error");
  else notify(`Uploaded: ${reportLine(r)}.`);
}

// --- brand voice --------------------------------------------------------------------------------------

const CHANNEL_NAMES = { default: "Other channels", sms: "SMS", whatsapp: "WhatsApp", messenger: "Messenger",
  apple_messages: "Apple Messages", webchat: "Web chat", x_dm: "X direct messages", app: "App", email: "Email" };
const channelName = (c) => CHANNEL_NAMES[c] || c;

function pairTable(caption, headers, rows) {
  return el("table", {},
    el("caption", { class: "visually-hidden", text: caption }),
    el("thead", {}, el("tr", {}, ...headers.map((h) => el("th", { scope: "col", text: h })))),
    el("tbody", {}, ...rows.map(([first, ...rest]) => el("tr", {},
      el("th", { scope: "row", text: first }),
      ...rest.map((cell) => el("td", { class: "pre" }, cell))))));
}

function perChannel(map) {
  const entries = Object.entries(map || {});
  entries.sort(([a], [b]) => (a === "default" ? -1 : b === "default" ? 1 : a.localeCompare(b)));
  return entries.map(([channel, value]) => [channelName(channel), value]);
}

function chips(items, kind) {
  return items.length ? el("ul", { class: kind ? `chips ${kind}` : "chips" }, ...items.map((i) => el("li", { text: i })))
    : el("p", { class: "muted", text: "None." });
}

function section(title, open, ...content) {
  return el("details", { open }, el("summary", { text: title }), ...content);
}

async function loadVoice() {
  const box = $("voice-guide");
  try {
    const v = await api("/v1/brand-voice");
    const naming = { first_name: "by first name", full_name: "by full name", never: "never by name" }[v.use_customer_name]
      || v.use_customer_name;
    fill(box,
      el("h3", { id: "voice-name", text: `The guide of ${v.name}` }),
      el("dl", { class: "facts" },
        el("dt", { text: "Tone" }), el("dd", {}, chips(v.tone)),
        el("dt", { text: "Reading level" }),
        el("dd", { text: `Flesch–Kincaid grade ${v.reading_level_max_grade} at most` }),
        el("dt", { text: "Customers are greeted" }), el("dd", { text: naming }),
        el("dt", { text: "Without a name" }), el("dd", { text: v.greeting_without_name })),
      section("Greetings and sign-offs", true,
        pairTable("Greetings and sign-offs per channel", ["Channel", "Greeting", "Sign-off"],
          [...new Set([...Object.keys(v.greeting || {}), ...Object.keys(v.sign_off || {})])]
            .sort((a, b) => (a === "default" ? -1 : b === "default" ? 1 : a.localeCompare(b)))
            .map((c) => [channelName(c), v.greeting?.[c] ?? el("span", { class: "muted", text: "(default)" }),
                         v.sign_off?.[c] ?? el("span", { class: "muted", text: c === "default" ? "none" : "(default)" })]))),
      section(`Banned phrases (${v.banned_phrases.length})`, true,
        v.banned_phrases.length ? pairTable("Banned phrases and their replacements", ["Phrase", "Replaced by"],
          v.banned_phrases.map((b) => [b.phrase, b.replacement || el("span", { class: "muted", text: "(removed)" })]))
          : el("p", { class: "muted", text: "None." })),
      section(`Never promise (${v.never_promise.length})`, true,
        el("p", { class: "hint", text: "Flagged in drafts, never fixed automatically." }), chips(v.never_promise, "warn")),
      section(`Needs a verified customer (${v.verification_required_for.length})`, false,
        chips(v.verification_required_for, "warn")),
      section("Emoji policy", true,
        pairTable("Emoji policy per channel", ["Channel", "Emoji"],
          perChannel(v.emoji).map(([c, p]) => [c, { none: "none (removed)", sparing: "sparing (one kept)",
                                                    allowed: "allowed" }[p] || p]))),
      section(`Preferred terms (${v.preferred_terms.length})`, false,
        v.preferred_terms.length ? pairTable("Preferred terms", ["Say", "Instead of"],
          v.preferred_terms.map((t) => [t.use, t.instead_of.join(", ")])) : el("p", { class: "muted", text: "None." })),
      section(`Empathy openers (${v.empathy_openers.length})`, false,
        el("ul", { class: "plain" }, ...v.empathy_openers.map((t) => el("li", { text: t })))),
      section(`Clarifying questions (${v.clarifying_questions.length})`, false,
        el("ul", { class: "plain" }, ...v.clarifying_questions.map((t) => el("li", { text: t })))),
      v.guide ? section("Guide", false, el("p", { class: "pre", text: v.guide })) : null);
  } catch (error) {
    fill(box, el("p", { class: "muted", text: error instanceof ApiError && error.status === 404
      ? "This brand has no brand-voice guide yet: upload one (brand-voice.yaml)." : "The brand voice could not be loaded." }));
    showError(error);
  }
}

const RULES = { banned_phrase: "Banned phrase", preferred_term: "Brand term", never_promise: "Never promise",
  verification: "Needs verification", emoji: "Emoji", reading_level: "Reading level" };

let checkTimer = null;
let checkSeq = 0;

function scheduleCheck(delay = 400) {
  clearTimeout(checkTimer);
  checkTimer = setTimeout(checkDraft, delay);
}

async function checkDraft() {
  const text = $("voice-draft").value;
  const seq = ++checkSeq;
  if (!text.trim()) {
    renderCheck(null);
    return;
  }
  try {
    const result = await api("/v1/brand-voice/check", { method: "POST", body: {
      text, channel: $("voice-channel").value, verified: $("voice-verified").checked } });
    if (seq === checkSeq) renderCheck(result, text);
  } catch (error) {
    if (seq === checkSeq) showError(error);
  }
}

// the draft as DOM nodes: text runs, and <mark>s over the spans of violations (offsets are code points)
function highlighted(text, violations) {
  const chars = Array.from(text);
  const spans = violations.map((v, i) => ({ ...v, n: i + 1 })).filter((v) => v.rule !== "reading_level" && v.end > v.start);
  const cuts = new Set([0, chars.length]);
  spans.forEach((v) => { cuts.add(Math.max(0, Math.min(v.start, chars.length))); cuts.add(Math.max(0, Math.min(v.end, chars.length))); });
  const points = [...cuts].sort((a, b) => a - b);
  const nodes = [];
  for (let i = 0; i < points.length - 1; i++) {
    const [from, to] = [points[i], points[i + 1]];
    const piece = chars.slice(from, to).join("");
    const over = spans.filter((v) => v.start <= from && v.end >= to);
    if (!over.length) {
      nodes.push(document.createTextNode(piece));
      continue;
    }
    nodes.push(el("mark", { class: ["v", ...over.map((v) => `v-${v.rule}`)].join(" "),
                            title: over.map((v) => v.message).join("; ") }, piece));
    const ending = over.filter((v) => v.end === to);
    if (ending.length) nodes.push(el("sup", { class: "ref", text: ending.map((v) => v.n).join(",") }));
  }
  return nodes;
}

function violationItem(v) {
  let fix;
  if (v.fix === null || v.fix === undefined) fix = el("span", { class: "byhand", text: "fix by hand" });
  else if (v.fix === "") fix = el("span", { class: "fix", text: "fix: delete it" });
  else fix = el("span", { class: "fix" }, "fix: ", el("q", { text: v.fix }));
  return el("li", { "data-rule": v.rule },
    el("span", { class: "rule", text: RULES[v.rule] || v.rule }),
    v.text ? el("q", { text: v.text }) : el("span", { class: "muted", text: "whole draft" }),
    ` — ${v.message} · `, fix);
}

function renderCheck(result, text) {
  const summary = $("voice-summary");
  const details = $("voice-details") || el("div", { id: "voice-details" });
  if (!details.isConnected) $("voice-result").append(details);
  if (!result) {
    summary.className = "muted";
    summary.textContent = "Type a draft to check it.";
    fill(details);
    return;
  }
  const v = result.violations;
  const fixable = v.filter((x) => x.fix !== null && x.fix !== undefined).length;
  const length = result.limit ? `${result.length} of ${result.limit} characters` : `${result.length} characters`;
  const sms = result.sms_segments !== null && result.sms_segments !== undefined
    ? ` · ${result.sms_segments} SMS segment${result.sms_segments === 1 ? "" : "s"}` : "";
  summary.className = v.length ? "" : "ok-text";
  summary.textContent = v.length
    ? `${v.length} problem${v.length === 1 ? "" : "s"}: ${fixable} can be fixed automatically, ${v.length - fixable} by hand · ${length}${sms}.`
    : `On brand: no problems · ${length}${sms}.`;
  const changed = result.changes.length > 0 || result.fixed_text.trim() !== text.trim();
  fill(details,
    el("h4", { text: "Your draft" }),
    el("p", { class: "highlighted", id: "voice-highlight" }, ...highlighted(text, v)),
    v.length ? el("ol", { class: "violations", id: "voice-violations", "aria-label": "Problems" },
      ...v.map(violationItem)) : null,
    changed ? el("div", {},
      el("h4", { text: "With the automatic fixes" }),
      el("p", { class: "highlighted", id: "voice-fixed" }, ...highlighted(result.fixed_text, result.remaining)),
      el("div", { class: "actions" }, el("button", { type: "button", class: "secondary", id: "voice-apply",
        text: "Use the fixed text", onclick: () => {
          $("voice-draft").value = result.fixed_text;
          $("voice-draft").focus();
          scheduleCheck(0);
        } })),
      result.changes.length ? el("details", {}, el("summary", { text: `Changes made (${result.changes.length})` }),
        el("ul", {}, ...result.changes.map((c) => el("li", { text: c })))) : null,
      result.remaining.length ? el("h5", { text: "Still to fix by hand after the fixes" }) : null,
      result.remaining.length
        ? el("ol", { class: "violations", id: "voice-remaining" }, ...result.remaining.map(violationItem)) : null)
      : null);
}

// --- analytics: knowledge gaps and acceptance ---------------------------------------------------------

async function loadAnalytics() {
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

// --- start --------------------------------------------------------------------------------------------

async function start() {
  try {
    await signedIn("content");
  } catch (error) {
    if (error instanceof ApiError) showError(error);
    return;
  }
  $("doc-filter").addEventListener("input", renderDocuments);
  $("documents-refresh").addEventListener("click", loadDocuments);
  $("upload-files").addEventListener("change", renderIdFields);
  $("upload").addEventListener("submit", upload);
  $("voice-draft").addEventListener("input", () => scheduleCheck());
  $("voice-channel").addEventListener("change", () => scheduleCheck(0));
  $("voice-verified").addEventListener("change", () => scheduleCheck(0));
  $("gaps-period").addEventListener("change", loadAnalytics);
  await Promise.all([loadDocuments(), loadVoice(), loadAnalytics()]);
  if ($("voice-draft").value.trim()) scheduleCheck(0);
}

start();
