// The brand voice: its guide laid out, and a live check of a draft with its problems marked in the text and
// the automatic fixes offered.

import { api, ApiError, el, showError } from "/app/common.js";
import { $, fill } from "/app/content-view.js";

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

export async function loadVoice() {
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

export function scheduleCheck(delay = 400) {
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
