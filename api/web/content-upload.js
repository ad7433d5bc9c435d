// Uploading documents with progress: per-file document ids, the bytes sent, then the indexing job followed
// until it ends, and its ingest report.

import { api, ApiError, apiKey, el, notify, showError, signOut } from "/app/common.js";
import { loadDocuments } from "/app/content-documents.js";
import { $, fill } from "/app/content-view.js";

function bytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export function renderIdFields() {
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

export async function upload(event) {
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
  if (r.flagged?.length) parts.push(`${r.flagged.length} flagged`);
  return parts.join(", ");
}

function renderReport(r) {
  const failed = r.failed || [];
  const flagged = r.flagged || [];
  fill($("upload-report"),
    el("h3", { text: "Ingest report" }),
    el("dl", { class: "stats", id: "ingest-report" },
      ...[["Added", r.added], ["Updated", r.updated], ["Unchanged", r.unchanged], ["Failed", failed.length],
          ["Chunks indexed", r.chunks]].map(([label, value]) =>
        el("div", {}, el("dt", { text: label }), el("dd", { text: value ?? 0 })))),
    failed.length ? el("div", {},
      el("h4", { class: "failed", text: "Not ingested" }),
      el("ul", { id: "ingest-failed" }, ...failed.map((f) =>
        el("li", {}, el("code", { text: f.path }), `: ${f.error}`)))) : null,
    flagged.length ? el("div", {},
      el("h4", { class: "failed", text: "Flagged as prompt injection" }),
      el("p", { class: "muted", text: "Live, but these passages are left out of suggestions until the document is fixed." }),
      el("ul", { id: "ingest-flagged" }, ...flagged.map((f) =>
        el("li", {}, el("code", { text: f.document_id }), `: ${f.cues.join(", ")}`)))) : null);
  const problems = [
    failed.length ? `${failed.length} file${failed.length === 1 ? " was" : "s were"} not ingested.` : null,
    flagged.length ? `${flagged.length} document${flagged.length === 1 ? " reads" : "s read"} as prompt injection.` : null,
  ].filter(Boolean);
  if (problems.length) notify(`${problems.join(" ")} See the report.`, "error");
  else notify(`Uploaded: ${reportLine(r)}.`);
}
