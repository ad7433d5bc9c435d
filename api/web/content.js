// The content owner's page: documents with their versions, uploads with progress, the brand voice with a live
// draft check, and the knowledge gaps. Text from the API goes in with textContent (el()), never as HTML.
// This module starts the page and wires its controls; each part lives in its own content-*.js module.

import { ApiError, showError, signedIn } from "/app/common.js";
import { loadDocuments, renderDocuments } from "/app/content-documents.js";
import { loadAnalytics } from "/app/content-gaps.js";
import { renderIdFields, upload } from "/app/content-upload.js";
import { $ } from "/app/content-view.js";
import { loadVoice, scheduleCheck } from "/app/content-voice.js";

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
  // enabled only now: a click before the page is wired would submit the form natively (a reload: files lost)
  $("upload-submit").disabled = false;
  $("voice-draft").addEventListener("input", () => scheduleCheck());
  $("voice-channel").addEventListener("change", () => scheduleCheck(0));
  $("voice-verified").addEventListener("change", () => scheduleCheck(0));
  $("gaps-period").addEventListener("change", loadAnalytics);
  await Promise.all([loadDocuments(), loadVoice(), loadAnalytics()]);
  if ($("voice-draft").value.trim()) scheduleCheck(0);
}

start();
