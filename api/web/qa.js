// The QA page: eval runs with their reports, starting a run from a JSONL suite, comparing two runs.
// Text from the API goes in with textContent (el()); the HTML report is shown in a sandboxed frame.

import { api, ApiError, ago, el, notify, showError, signedIn } from "/app/common.js";

const $ = (id) => document.getElementById(id);

// replaceChildren, leaving out the null of a condition (replaceChildren itself would write "null")
function fill(node, ...children) {
  node.replaceChildren(...children.flat().filter((child) => child !== null && child !== undefined && child !== false));
  return node;
}
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// the API writes some times without a zone: they are UTC
function utc(iso) {
  return typeof iso === "string" && !/(Z|[+-]\d\d:?\d\d)$/i.test(iso) ? `${iso}Z` : iso;
}

function time(iso) {
  if (!iso) return el("span", { class: "muted", text: "—" });
  const at = new Date(utc(iso));
  return el("time", { datetime: at.toISOString(), title: at.toLocaleString() }, `${ago(utc(iso))} ago`);
}

function emptyRow(columns, text) {
  return el("tr", {}, el("td", { colspan: columns, class: "empty", text }));
}

// metrics in ms are latencies (lower is better); the others are scores and rates from 0 to 1
const isLatency = (name) => name.endsWith("_ms");

function fmt(name, value) {
  if (value === null || value === undefined || Number.isNaN(value)) return "—";
  if (isLatency(name)) return `${Math.round(value)} ms`;
  return Number.isInteger(value) ? String(value) : value.toFixed(3).replace(/0+$/, "").replace(/\.$/, "");
}

function signed(name, value) {
  if (value === null || value === undefined) return "—";
  const text = fmt(name, Math.abs(value));
  return value > 0 ? `+${text}` : value < 0 ? `−${text}` : fmt(name, 0);
}

function interval(name, ci) {
  return Array.isArray(ci) && ci.length === 2 ? `[${signed(name, ci[0])}, ${signed(name, ci[1])}]` : "—";
}

const KEY_METRICS = ["retrieval_hit_at_k", "citation_hit", "groundedness", "answer_decision", "must_contain",
  "voice_compliance", "intent_accuracy", "summary_rougeL", "next_action_top1", "suggest_p95_ms"];

function keyMetrics(metrics) {
  const names = KEY_METRICS.filter((n) => n in metrics);
  const shown = (names.length ? names : Object.keys(metrics)).slice(0, 4);
  const rest = Object.keys(metrics).length - shown.length;
  return el("ul", { class: "metrics-inline" },
    ...shown.map((n) => el("li", {}, el("span", { class: "name", text: `${n} ` }), fmt(n, metrics[n]))),
    rest > 0 ? el("li", { class: "muted", text: `+${rest} more in the report` }) : null);
}

// --- runs ---------------------------------------------------------------------------------------------

let runs = [];
const picked = new Set();

async function loadRuns() {
  try {
    runs = (await api("/v1/evals")).runs;
    for (const id of [...picked]) if (!runs.some((r) => r.id === id)) picked.delete(id);
    renderRuns();
    renderBaselines();
  } catch (error) {
    fill($("runs").tBodies[0], emptyRow(8, "The runs could not be loaded."));
    showError(error);
  }
}

function runLabel(run) {
  return `${run.name} (${new Date(utc(run.created_at)).toLocaleString()})`;
}

function renderRuns() {
  const rows = runs.map((run) => el("tr", { "data-run-id": run.id, class: picked.has(run.id) ? "selected" : null },
    el("td", { class: "pick-cell" },
      el("input", { type: "checkbox", class: "pick", id: `pick-${run.id}`, value: run.id, checked: picked.has(run.id),
                    onchange: (event) => pick(run.id, event.target.checked) }),
      el("label", { for: `pick-${run.id}`, class: "visually-hidden", text: `Compare ${runLabel(run)}` })),
    el("th", { scope: "row", class: "wrap" }, run.name, el("br"), el("code", { class: "muted", text: run.id })),
    el("td", { text: run.engine }),
    el("td", { class: "num", text: run.cases }),
    el("td", {}, el("span", { class: run.passed ? "badge good" : "badge bad", text: run.passed ? "✓ passed" : "✗ failed" })),
    el("td", {}, keyMetrics(run.metrics || {})),
    el("td", { class: "nowrap" }, time(run.created_at)),
    el("td", {}, el("button", { type: "button", class: "secondary report-open", onclick: () => openReport(run),
                                 "aria-label": `Report of ${runLabel(run)}`, text: "Report" }))));
  fill($("runs").tBodies[0], ...(rows.length ? rows : [emptyRow(8, "No finished runs yet: start one below.")]));
  renderPicked();
}

function pick(id, on) {
  if (on) picked.add(id); else picked.delete(id);
  document.querySelector(`tr[data-run-id="${CSS.escape(id)}"]`)?.classList.toggle("selected", on);
  renderPicked();
}

// A is the older of the two ticked runs (the baseline), B the newer
function pickedPair() {
  const two = runs.filter((r) => picked.has(r.id));
  if (two.length !== 2) return null;
  two.sort((x, y) => new Date(utc(x.created_at)) - new Date(utc(y.created_at)));
  return two;
}

function renderPicked() {
  const pair = pickedPair();
  $("compare").disabled = !pair;
  $("compare-hint").textContent = pair
    ? `A (baseline): ${runLabel(pair[0])}; B: ${runLabel(pair[1])}.`
    : picked.size > 2 ? `${picked.size} runs ticked: tick exactly two.`
      : picked.size === 1 ? "One run ticked: tick one more." : "Tick two runs to compare them.";
}

function renderBaselines() {
  const select = $("suite-baseline");
  const keep = select.value;
  select.replaceChildren(el("option", { value: "", text: "None" }),
    ...runs.map((r) => el("option", { value: r.id, text: `${runLabel(r)} · ${r.id}` })));
  select.value = runs.some((r) => r.id === keep) ? keep : "";
}

// --- the HTML report, in a sandboxed frame --------------------------------------------------------------

// The frame inherits this page's Content-Security-Policy (no inline styles, no scripts) and its sandbox runs
// no script at all: so the report's <script> and CSP <meta> are dropped, its <style> is applied through the
// CSSOM once the frame has loaded, and its style="width: N%" bars become data-w attributes with a rule each.
// Done on the text, not with DOMParser: parsing inline styles under this page's policy logs violations.
// The report escapes every string it shows, so these patterns only meet its own markup.
function frameable(html) {
  const css = [];
  const widths = new Set();
  const page = html
    .replace(/<script\b[^>]*>[\s\S]*?<\/script\s*>/gi, "")
    .replace(/<style\b[^>]*>([\s\S]*?)<\/style\s*>/gi, (_, rules) => { css.push(rules); return ""; })
    .replace(/<meta\s[^>]*http-equiv[^>]*>/gi, "")
    .replace(/\sstyle\s*=\s*("([^"]*)"|'([^']*)')/gi, (_, __, double, single) => {
      const width = /^\s*width\s*:\s*(\d{1,3})%\s*;?\s*$/i.exec(double ?? single ?? "");
      if (!width) return "";
      widths.add(width[1]);
      return ` data-w="${width[1]}"`;
    });
  const rules = [...widths].map((w) => `[data-w="${w}"] { width: ${w}%; }`);
  return { html: page, css: [...css, ...rules].join("\n") };
}

async function openReport(run) {
  const frame = $("report-frame");
  try {
    const response = await api(`/v1/evals/${encodeURIComponent(run.id)}/report`, { raw: true });
    const { html, css } = frameable(await response.text());
    frame.classList.add("loading");
    frame.onload = () => {
      try {
        const doc = frame.contentDocument;
        if (doc) {
          const sheet = new frame.contentWindow.CSSStyleSheet();
          sheet.replaceSync(css);
          doc.adoptedStyleSheets = [sheet];
        }
      } catch (error) {
        notify(`The report is shown without its styles (${error.message}).`, "error");
      }
      frame.classList.remove("loading");
    };
    frame.title = `Eval report of ${runLabel(run)}, ${run.passed ? "passed" : "failed"}`;
    frame.srcdoc = html;
    $("report-h").textContent = `Report: ${run.name}`;
    $("report-section").hidden = false;
    $("report-section").scrollIntoView({ block: "start" });
    $("report-h").focus({ preventScroll: true });
  } catch (error) {
    showError(error);
  }
}

function closeReport() {
  $("report-section").hidden = true;
  $("report-frame").removeAttribute("srcdoc");
  $("runs-h").scrollIntoView({ block: "start" });
  document.querySelector("#runs .report-open")?.focus();
}

// --- compare two runs ---------------------------------------------------------------------------------

const DIRECTION = { better: "▲ better", worse: "▼ worse", same: "= same", unknown: "? unknown" };

async function compareRuns() {
  const pair = pickedPair();
  if (!pair) return;
  const [a, b] = pair;
  try {
    const c = await api(`/v1/evals/compare?a=${encodeURIComponent(a.id)}&b=${encodeURIComponent(b.id)}`);
    renderComparison(c, a, b);
    $("comparison-section").hidden = false;
    $("comparison-section").scrollIntoView({ block: "start" });
    $("comparison-h").focus({ preventScroll: true });
  } catch (error) {
    showError(error);
  }
}

function idList(ids) {
  return ids.length ? el("ul", { class: "plain" }, ...ids.map((id) => el("li", {}, el("code", { text: id }))))
    : el("span", { class: "muted", text: "none" });
}

function nameList(names, css) {
  return names.length ? el("span", { class: css }, names.join(", ")) : el("span", { class: "muted", text: "none" });
}

function renderComparison(c, a, b) {
  const metricRows = Object.entries(c.metrics).map(([name, m]) => {
    const direction = m.direction || "unknown";
    const css = direction === "better" || direction === "worse" ? direction : "same";
    return el("tr", { class: `row-${css}`, "data-metric": name },
      el("th", { scope: "row", text: name }),
      el("td", { class: "num", text: fmt(name, m.a) }),
      el("td", { class: "num", text: fmt(name, m.b) }),
      el("td", { class: "num", text: signed(name, m.delta) }),
      el("td", { class: "num", text: interval(name, m.ci) }),
      el("td", { class: "num", text: m.n ?? "—" }),
      el("td", { class: css, text: DIRECTION[direction] || direction }));
  });
  const caseRows = c.cases.flatMap((kase) => Object.entries(kase.scores).map(([name, [before, after]]) => {
    const delta = after - before;
    const better = isLatency(name) ? delta < 0 : delta > 0;
    return el("tr", { class: better ? "row-better" : "row-worse" },
      el("th", { scope: "row", class: "wrap" }, el("code", { text: kase.id })),
      el("td", { text: name }),
      el("td", { class: "num", text: fmt(name, before) }),
      el("td", { class: "num", text: fmt(name, after) }),
      el("td", { class: better ? "num better" : "num worse", text: `${signed(name, delta)} ${better ? "▲ better" : "▼ worse"}` }));
  }));
  fill($("comparison"),
    el("dl", { class: "facts" },
      el("dt", { text: "A (baseline)" }), el("dd", {}, runLabel(a), " · ", el("code", { text: a.id })),
      el("dt", { text: "B" }), el("dd", {}, runLabel(b), " · ", el("code", { text: b.id })),
      el("dt", { text: "Shared cases" }), el("dd", { text: c.shared_cases }),
      el("dt", { text: "Only in A" }), el("dd", {}, idList(c.only_in_baseline)),
      el("dt", { text: "Only in B" }), el("dd", {}, idList(c.only_in_run)),
      el("dt", { text: "Regressions" }), el("dd", { id: "comparison-regressions" }, nameList(c.regressions, "worse")),
      el("dt", { text: "Improvements" }), el("dd", { id: "comparison-improvements" }, nameList(c.improvements, "better"))),
    el("div", { class: "scroll-box", tabindex: "0", role: "region", "aria-label": "Metrics compared (scrolls)" },
      el("table", { id: "comparison-metrics" },
        el("caption", { text: "Metrics over the shared cases: B − A with its 95% interval; significant when the interval excludes 0" }),
        el("thead", {}, el("tr", {}, ...["Metric", "A", "B", "B − A", "95% interval", "n", "Direction"].map((h, i) =>
          el("th", { scope: "col", class: i > 0 && i < 6 ? "num" : null, text: h })))),
        el("tbody", {}, ...(metricRows.length ? metricRows : [emptyRow(7, "No metric in common.")])))),
    el("h3", { text: `Changed cases (${c.cases.length})` }),
    caseRows.length ? el("div", { class: "scroll-box", tabindex: "0", role: "region", "aria-label": "Changed cases (scrolls)" },
      el("table", { id: "comparison-cases" },
        el("caption", { class: "visually-hidden", text: "Case scores that changed from A to B" }),
        el("thead", {}, el("tr", {}, ...["Case", "Metric", "A", "B", "Change"].map((h, i) =>
          el("th", { scope: "col", class: i > 1 ? "num" : null, text: h })))),
        el("tbody", {}, ...caseRows)))
      : el("p", { class: "muted", text: "No shared case scored differently." }));
}

// --- start a run from a JSONL suite -------------------------------------------------------------------

const META_KEYS = new Set(["name", "tenant", "description", "engine", "knowledge", "k", "thresholds"]);
const CASE_KEYS = new Set(["id", "tenant", "thread", "thread_id", "tags", "note", "expect"]);
const MAX_CASES = 5000;

// the suite as the POST /v1/evals body, or the problems found, each with its line
function parseSuite(text) {
  const errors = [];
  const cases = [];
  const lines = [];  // line number of each case, to place the API's errors
  const seen = new Map();
  let meta = null;
  text.split("\n").forEach((raw, index) => {
    const number = index + 1;
    const line = raw.replace(/\r$/, "");
    if (!line.trim()) return;
    let record;
    try {
      record = JSON.parse(line);
    } catch (error) {
      errors.push(`line ${number}: not JSON (${error.message})`);
      return;
    }
    if (record === null || typeof record !== "object" || Array.isArray(record)) {
      errors.push(`line ${number}: expected a JSON object`);
      return;
    }
    if ("suite" in record) {
      if (Object.keys(record).length > 1) errors.push(`line ${number}: the metadata line holds only "suite"`);
      if (meta !== null || cases.length) {
        errors.push(`line ${number}: the suite's metadata must be the first line, once`);
        return;
      }
      meta = record.suite;
      if (meta === null || typeof meta !== "object" || Array.isArray(meta)) {
        errors.push(`line ${number}: "suite" must be an object`);
        meta = {};
        return;
      }
      for (const key of Object.keys(meta)) if (!META_KEYS.has(key)) errors.push(`line ${number}: unknown suite field "${key}"`);
      if (typeof meta.name !== "string" || !meta.name.trim()) errors.push(`line ${number}: the suite needs a "name"`);
      else if (meta.name.length > 200) errors.push(`line ${number}: the name is longer than 200 characters`);
      if (meta.description !== undefined && typeof meta.description !== "string") errors.push(`line ${number}: "description" must be text`);
      if (meta.engine !== undefined && !["grounded", "llm"].includes(meta.engine)) errors.push(`line ${number}: "engine" must be grounded or llm`);
      if (meta.k !== undefined && !(Number.isInteger(meta.k) && meta.k >= 1 && meta.k <= 50)) errors.push(`line ${number}: "k" must be a whole number from 1 to 50`);
      if (meta.thresholds !== undefined) {
        if (meta.thresholds === null || typeof meta.thresholds !== "object" || Array.isArray(meta.thresholds)) {
          errors.push(`line ${number}: "thresholds" must be an object of metric: number`);
        } else {
          for (const [metric, value] of Object.entries(meta.thresholds)) {
            if (typeof value !== "number" || !Number.isFinite(value)) errors.push(`line ${number}: threshold "${metric}" must be a number`);
          }
        }
      }
      return;
    }
    if (meta === null) {
      errors.push(`line ${number}: the first line must be the suite's metadata ({"suite": {"name": …}})`);
      meta = {};
    }
    for (const key of Object.keys(record)) if (!CASE_KEYS.has(key)) errors.push(`line ${number}: unknown case field "${key}"`);
    if (typeof record.id !== "string" || !record.id) errors.push(`line ${number}: the case needs an "id"`);
    else if (seen.has(record.id)) errors.push(`line ${number}: case id "${record.id}" is used twice (first on line ${seen.get(record.id)})`);
    else seen.set(record.id, number);
    const hasThread = record.thread !== undefined && record.thread !== null;
    const hasId = record.thread_id !== undefined && record.thread_id !== null;
    if (hasThread === hasId) errors.push(`line ${number}: give either "thread" or "thread_id"`);
    cases.push(record);
    lines.push(number);
  });
  if (meta === null && !errors.length) errors.push("the suite is empty: it needs a metadata line and cases");
  else if (!cases.length && !errors.length) errors.push("the suite has no cases");
  if (cases.length > MAX_CASES) errors.push(`more than ${MAX_CASES} cases: split the suite`);
  if (errors.length) return { errors };
  const body = { name: meta.name, cases };
  for (const key of ["description", "engine", "k", "thresholds"]) if (meta[key] !== undefined) body[key] = meta[key];
  return { body, lines, errors };
}

function showSuiteErrors(errors) {
  fill($("suite-errors"), ...errors.slice(0, 100).map((e) => el("li", { text: e })),
    errors.length > 100 ? el("li", { text: `and ${errors.length - 100} more` }) : null);
  $("suite-text").setAttribute("aria-invalid", errors.length ? "true" : "false");
}

function describeParsed() {
  const text = $("suite-text").value;
  if (!text.trim()) {
    $("suite-parsed").textContent = "";
    showSuiteErrors([]);
    return;
  }
  const { body, errors } = parseSuite(text);
  showSuiteErrors(errors);
  $("suite-parsed").textContent = body
    ? `“${body.name}”: ${body.cases.length} case${body.cases.length === 1 ? "" : "s"}, engine ${body.engine || "grounded"}, `
      + `k ${body.k ?? 5}, ${Object.keys(body.thresholds || {}).length} thresholds.`
    : `${errors.length} problem${errors.length === 1 ? "" : "s"} in the suite.`;
}

// the API's 422 errors name the case by index: point at its line
function apiErrors(error, lines) {
  const found = error.problem?.errors || [];
  return found.map((e) => {
    const loc = (e.loc || []).filter((part) => part !== "body");
    const index = /^\d+$/.test(String(loc[1])) ? Number(loc[1]) : -1;
    if (loc[0] === "cases" && lines[index] !== undefined) {
      return `line ${lines[index]}: ${loc.slice(2).join(".") || "case"}: ${e.msg}`;
    }
    return `${loc.join(".") || "suite"}: ${e.msg}`;
  });
}

let running = false;

async function startRun(event) {
  event.preventDefault();
  if (running) return;
  const text = $("suite-text").value;
  if (!text.trim()) {
    showSuiteErrors(["paste a suite or load a .jsonl file first"]);
    $("suite-text").focus();
    return;
  }
  const { body, lines, errors } = parseSuite(text);
  showSuiteErrors(errors);
  if (!body) {
    notify(`The suite has ${errors.length} problem${errors.length === 1 ? "" : "s"}: see the list under the form.`, "error");
    $("suite-text").focus();
    return;
  }
  const baseline = $("suite-baseline").value;
  if (baseline) body.baseline_run_id = baseline;
  running = true;
  $("suite-submit").disabled = true;
  const bar = $("run-progress");
  bar.max = body.cases.length;
  bar.value = 0;
  $("run-count").textContent = `0 of ${body.cases.length}`;
  $("run-status").textContent = `Starting “${body.name}”…`;
  try {
    const accepted = await api("/v1/evals", { method: "POST", body });
    const view = await followRun(accepted.id);
    await loadRuns();
    const run = runs.find((r) => r.id === view.id);
    fill($("run-status"),
      `Finished “${body.name}”: `,
      el("span", { class: view.passed ? "badge good" : "badge bad", text: view.passed ? "✓ passed" : "✗ failed" }),
      " ",
      run ? el("button", { type: "button", class: "link", onclick: () => openReport(run), text: "Open its report" }) : null);
    notify(`The run of “${body.name}” ${view.passed ? "passed" : "failed"} its gates.`, view.passed ? "info" : "error");
  } catch (error) {
    if (error instanceof ApiError && (error.status === 400 || error.status === 422)) {
      const listed = apiErrors(error, lines);
      showSuiteErrors(listed.length ? listed : [error.message]);
    }
    $("run-status").textContent = "The run did not finish.";
    showError(error);
  } finally {
    running = false;
    $("suite-submit").disabled = false;
  }
}

// poll the run every second until it succeeded or failed
async function followRun(id) {
  const bar = $("run-progress");
  let said = "";
  for (;;) {
    const view = await api(`/v1/evals/${encodeURIComponent(id)}`);
    if (view.total > 0) {
      bar.max = view.total;
      bar.value = view.done;
      $("run-count").textContent = `${view.done} of ${view.total}`;
    }
    if (view.status === "succeeded") return view;
    if (view.status === "failed") throw new Error(`The run failed: ${view.error || "no reason given"}`);
    const line = view.status === "queued" ? "Queued…"
      : `Running: ${view.done} of ${view.total} cases${view.current ? ` (last: ${view.current})` : ""}…`;
    if (line !== said) {
      $("run-status").textContent = line;
      said = line;
    }
    await sleep(1000);
  }
}

async function loadFile() {
  const file = $("suite-file").files[0];
  if (!file) return;
  try {
    $("suite-text").value = (await file.text()).replace(/^\uFEFF/, "");
    describeParsed();
    notify(`Loaded ${file.name}.`);
  } catch (error) {
    showError(error);
  }
}

// --- start --------------------------------------------------------------------------------------------

async function start() {
  try {
    await signedIn("evals");
  } catch (error) {
    if (error instanceof ApiError) showError(error);
    return;
  }
  $("runs-refresh").addEventListener("click", loadRuns);
  $("compare").addEventListener("click", compareRuns);
  $("report-close").addEventListener("click", closeReport);
  $("suite-form").addEventListener("submit", startRun);
  // enabled only now: a click before the page is wired would submit the form natively (a reload: suite lost)
  $("suite-submit").disabled = false;
  $("suite-file").addEventListener("change", loadFile);
  let timer = null;
  $("suite-text").addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(describeParsed, 500);
  });
  await loadRuns();
}

start();
