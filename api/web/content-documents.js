// The knowledge documents: a filterable table, and one document's detail with its version history, which
// the content owner may delete.

import { api, ApiError, el, notify, showError } from "/app/common.js";
import { $, emptyRow, fill, time } from "/app/content-view.js";

function docPath(id) {
  return `/v1/knowledge/documents/${id.split("/").map(encodeURIComponent).join("/")}`;
}

let documents = [];
let selected = null;

export async function loadDocuments() {
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

export function renderDocuments() {
  const query = $("doc-filter").value.trim().toLowerCase();
  const shown = documents.filter((d) => !query ||
    [d.document_id, d.title, d.kind].some((field) => String(field).toLowerCase().includes(query)));
  const rows = shown.map((d) => el("tr", { class: d.document_id === selected ? "selected" : null,
                                           "data-document-id": d.document_id },
    el("td", { class: "id" }, el("button", {
      type: "button", class: "link doc-open", "aria-current": d.document_id === selected ? "true" : null,
      onclick: () => showDocument(d.document_id), text: d.document_id })),
    el("td", {}, el("span", { class: "badge", text: d.kind }), d.flagged ? " " : null, flagBadge(d.flagged)),
    el("td", { class: "wrap", text: d.title }),
    el("td", { class: "num", text: `v${d.version}` }),
    el("td", { class: "num", text: d.chunks }),
    el("td", { class: "nowrap" }, time(d.updated_at)),
    el("td", { class: "wrap", text: d.updated_by })));
  fill($("documents").tBodies[0],
    ...(rows.length ? rows : [emptyRow(7, documents.length ? "No document matches the filter." : "No documents yet.")]));
}

// passages that read as prompt injection: always set as text, never as HTML (the excerpts are stored content)
function flagBadge(flagged) {
  if (!flagged) return null;
  return el("span", { class: "badge bad flagged", title: `Reads as prompt injection: ${flagged.cues.join(", ")}`,
                      text: "flagged" });
}

function flagDetail(flagged) {
  return el("div", { class: "flag-detail", id: "document-flag", role: "note" },
    el("p", {}, el("strong", { text: "Flagged: " }),
      `${flagged.passages} passage${flagged.passages === 1 ? "" : "s"} read as prompt injection ` +
      `(${flagged.cues.join(", ")}). They are left out of suggestions until the document is fixed.`),
    el("ul", {}, ...flagged.excerpts.map((x) =>
      el("li", {}, x.section ? el("em", { text: `${x.section}: ` }) : null, el("q", { text: x.text }),
        ` (${x.cues.join(", ")})`))));
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
      d.flagged ? flagDetail(d.flagged) : null,
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
