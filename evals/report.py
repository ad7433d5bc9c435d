"""The HTML report of an eval run: one self-contained page (inline CSS and SVG, nothing fetched from outside).

In order: the verdict and what ran, the metrics as a chart and a table (95% intervals, thresholds, the
difference to a baseline), the latency distribution, the metrics per intent and per tag, the worst cases
with their thread and outputs, and the cases that moved since the baseline. A section the run has no data
for is left out (benchmark runs have no threads). Every string of the run goes through ``esc``: threads
hold customer text, and a Content-Security-Policy lets only the page's own sorting script run.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from evals.report_svg import (
    MetricRow,
    cell_bar,
    esc,
    finite,
    fmt,
    fmt_interval,
    fmt_signed,
    latency_charts,
    metric_charts,
    metric_rows,
    unit_and_direction,
)

__all__ = ["esc", "fmt", "passed", "render", "worst_cases"]

WORST_CASES = 10
TOP_SUGGESTIONS = 3
MAX_CHANGED_ROWS = 300
PASSAGE_CHARS = 400

_SORT_SCRIPT = """document.querySelectorAll("table.sortable thead th").forEach(function (th) {
  var button = document.createElement("button");
  button.type = "button"; button.className = "sort"; button.textContent = th.textContent;
  th.textContent = ""; th.appendChild(button);
  button.addEventListener("click", function () {
    var table = th.closest("table"), body = table.tBodies[0], col = th.cellIndex;
    var asc = th.getAttribute("aria-sort") !== "ascending";
    table.querySelectorAll("thead th").forEach(function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", asc ? "ascending" : "descending");
    function key(row) {
      var cell = row.cells[col]; if (!cell) { return ""; }
      var raw = cell.hasAttribute("data-sort") ? cell.getAttribute("data-sort") : cell.textContent.trim();
      var num = parseFloat(raw); return isNaN(num) ? raw.toLowerCase() : num;
    }
    Array.prototype.slice.call(body.rows).sort(function (x, y) {
      var a = key(x), b = key(y);
      var d = (typeof a === "number" && typeof b === "number") ? a - b : String(a).localeCompare(String(b));
      return asc ? d : -d;
    }).forEach(function (row) { body.appendChild(row); });
  });
});"""
_SCRIPT_HASH = base64.b64encode(hashlib.sha256(_SORT_SCRIPT.encode()).digest()).decode()
_CSP = (f"default-src 'none'; style-src 'unsafe-inline'; img-src data:; script-src 'sha256-{_SCRIPT_HASH}'; "
        "base-uri 'none'; form-action 'none'")

_CSS = """
:root { color-scheme: light; --fg: #1a202c; --muted: #4a5568; --line: #cbd5e0; --soft: #f7fafc;
  --pass: #166534; --fail: #b91c1c; --bar: #2b6cb0; --tick: #b45309; --base: #6b21a8; --system: #0f766e; }
body { margin: 0; background: #fff; color: var(--fg);
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1120px; margin: 0 auto; padding: 1.5rem 1.25rem 4rem; }
h1 { font-size: 1.8rem; margin: .1rem 0 .8rem; overflow-wrap: anywhere; }
h2 { font-size: 1.35rem; margin: 2.5rem 0 .75rem; padding-bottom: .25rem; border-bottom: 2px solid var(--line); }
h3 { font-size: 1.1rem; margin: 1.25rem 0 .5rem; overflow-wrap: anywhere; }
h4 { font-size: 1rem; margin: 1rem 0 .35rem; } h5 { font-size: .95rem; margin: .75rem 0 .25rem; }
.kicker { margin: 0; color: var(--muted); text-transform: uppercase; letter-spacing: .06em; font-size: .8rem; }
.verdict { display: flex; gap: 1.25rem; align-items: flex-start; padding: 1rem 1.25rem; margin: 1rem 0;
  border: 2px solid; border-radius: 8px; }
.verdict.pass { border-color: var(--pass); background: #f0fdf4; }
.verdict.fail { border-color: var(--fail); background: #fef2f2; }
.verdict-word { font-size: 2.4rem; font-weight: 800; letter-spacing: .05em; line-height: 1; }
.verdict ul { margin: .25rem 0 0; padding-left: 1.2rem; } .verdict p { margin: 0; }
.pass .verdict-word, .ok, .better { color: var(--pass); }
.fail .verdict-word, .bad, .worse { color: var(--fail); }
.columns { display: grid; grid-template-columns: repeat(auto-fit, minmax(300px, 1fr)); gap: 0 2rem; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .15rem 1rem; margin: .5rem 0; }
dl.facts dt { font-weight: 600; color: var(--muted); } dl.facts dd { margin: 0; overflow-wrap: anywhere; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: .35rem .6rem; border-bottom: 1px solid var(--line); vertical-align: top; }
thead th { background: var(--soft); white-space: nowrap; }
.num { text-align: right; white-space: nowrap; }
.scroll { overflow-x: auto; }
.desc { display: block; color: var(--muted); font-size: .85rem; }
.muted { color: var(--muted); }
.cell-bar { display: inline-block; width: 3.5rem; height: .6rem; margin-right: .4rem; vertical-align: middle;
  background: #e2e8f0; }
.cell-bar > span { display: block; height: 100%; background: var(--bar); }
svg { display: block; max-width: 100%; height: auto; margin: .5rem 0 1rem; }
svg text { font: 12px system-ui, -apple-system, "Segoe UI", sans-serif; fill: var(--fg); }
.case { border: 1px solid var(--line); border-radius: 8px; padding: .25rem 1rem 1rem; margin: 1.25rem 0; }
.thread { list-style: none; padding: 0; margin: 0; max-height: 28rem; overflow: auto; }
.msg { margin: .4rem 0; padding: .45rem .75rem; border-radius: 6px; background: var(--soft);
  border-left: 4px solid #718096; }
.msg.customer { border-left-color: var(--bar); } .msg.agent { border-left-color: var(--pass); background: #f0fdf4; }
.msg p, .text { margin: .2rem 0 0; white-space: pre-wrap; overflow-wrap: anywhere; }
.role { font-weight: 700; text-transform: capitalize; }
blockquote { margin: .25rem 0; padding-left: .75rem; border-left: 3px solid var(--line); color: var(--muted); }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .9em;
  overflow-wrap: anywhere; }
button.sort { all: unset; cursor: pointer; font-weight: 700; }
button.sort:focus-visible { outline: 2px solid var(--bar); outline-offset: 2px; }
th[aria-sort=ascending] button.sort::after { content: " ▲"; }
th[aria-sort=descending] button.sort::after { content: " ▼"; }
"""


def _facts(pairs: Iterable[tuple[str, Any]]) -> str:
    rows = []
    for label, value in pairs:
        if value is None or value == "" or value == {} or value == []:
            continue
        if isinstance(value, Mapping | list):
            text = json.dumps(value, ensure_ascii=False, default=str)
            value = text if len(text) <= 300 else text[:299] + "…"
        rows.append(f"<dt>{esc(label)}</dt><dd>{esc(value)}</dd>")
    return f'<dl class="facts">{"".join(rows)}</dl>' if rows else ""


def _duration(seconds: Any) -> str | None:
    s = finite(seconds)
    if s is None:
        return None
    return f"{s:.1f} s" if s < 120 else f"{int(s // 60)} min {s % 60:.0f} s"


# --- verdict and header -------------------------------------------------------------------------------

def _failures(run: Mapping[str, Any], comparison: Mapping[str, Any] | None) -> list[str]:
    metrics = run.get("metrics") or {}
    out = []
    for gate in run.get("thresholds") or []:
        if gate.get("passed"):
            continue
        name = str(gate.get("metric"))
        unit, _ = unit_and_direction(name, metrics.get(name))
        op = "≥" if gate.get("bound") == "min" else "≤"
        actual = "not measured" if finite(gate.get("actual")) is None else fmt(gate["actual"], unit)
        out.append(f"<li><strong>{esc(name)}</strong> is {esc(actual)}; the threshold is {op} "
                   f"{esc(fmt(gate.get('threshold'), unit))}</li>")
    errors = int(run.get("errors") or 0)
    if errors:
        out.append(f"<li>{errors} case{'s' if errors != 1 else ''} failed to run</li>")
    for name in (comparison or {}).get("regressions") or []:
        diff = (comparison or {}).get("metrics", {}).get(name, {})
        unit, _ = unit_and_direction(name, metrics.get(name))
        out.append(f"<li><strong>{esc(name)}</strong> got significantly worse than the baseline: "
                   f"{esc(fmt_signed(diff.get('delta'), unit))} {esc(fmt_interval(diff.get('ci'), unit, True))}</li>")
    return out


def passed(run: Mapping[str, Any], comparison: Mapping[str, Any] | None = None) -> bool:
    """The run's own verdict; for a run that lacks one, whether nothing failed."""
    return run["passed"] if isinstance(run.get("passed"), bool) else not _failures(run, comparison)


def _verdict(run: Mapping[str, Any], comparison: Mapping[str, Any] | None) -> str:
    failures = _failures(run, comparison)
    ok = passed(run, comparison)
    gates = run.get("thresholds") or []
    if ok:
        detail = (f"<p>{len(gates)} threshold{'s' if len(gates) != 1 else ''} hold, no case failed to run"
                  f"{', nothing got worse than the baseline' if comparison else ''}.</p>")
    else:
        detail = f"<ul>{''.join(failures)}</ul>" if failures else "<p>The run did not pass.</p>"
    word, css = ("PASS", "pass") if ok else ("FAIL", "fail")
    return (f'<div class="verdict {css}" id="verdict" role="status"><span class="verdict-word">{word}</span>'
            f"<div>{detail}</div></div>")


def _header(run: Mapping[str, Any], comparison: Mapping[str, Any] | None) -> str:
    cases = run.get("cases") or []
    about = _facts([("Created", run.get("created_at")), ("Duration", _duration(run.get("duration_s"))),
                    ("Target", run.get("target")), ("Engine", run.get("engine")),
                    ("Engines used", run.get("engines_used")), ("Run id", run.get("id")),
                    ("Cases", len(cases) if cases else None), ("Errors", run.get("errors"))])
    parts = [f'<div><h2 id="h-about">What ran</h2>{about}</div>']
    versions = run.get("versions") or {}
    if versions:
        shown = {k: "none" if v is None else v for k, v in versions.items()}
        parts.append(f'<div><h2 id="h-versions">Versions</h2>{_facts(shown.items())}</div>')
    suite = run.get("suite") or {}
    if suite:
        parts.append(f'<div><h2 id="h-suite">Suite</h2>{_facts(suite.items())}</div>')
    details = run.get("details") or {}
    if details:
        parts.append(f'<div><h2 id="h-details">Dataset</h2>{_facts(details.items())}</div>')
    others = [o for o in run.get("other_systems") or [] if isinstance(o, Mapping)]
    for k, other in enumerate(others):  # systems a benchmark scored beside this one, e.g. the llm engine
        parts.append(f'<div><h2 id="h-other-{k}">Also ran: {esc(other.get("name"))}</h2>'
                     f'{_facts((other.get("details") or {}).items()) or "<p>no details</p>"}</div>')
    return (f'<header id="summary"><p class="kicker">Eval run · {esc(run.get("kind") or "run")}</p>'
            f'<h1>{esc(run.get("name") or run.get("id") or "Eval run")}</h1>{_verdict(run, comparison)}'
            f'<div class="columns">{"".join(parts)}</div></header>')


# --- metrics table -----------------------------------------------------------------------------------

def _metrics_table(run: Mapping[str, Any], rows: Sequence[MetricRow],
                   comparison: Mapping[str, Any] | None) -> str:
    if not rows:
        return ""
    metrics = run.get("metrics") or {}
    paired = (comparison or {}).get("metrics") or {}
    system_name = (run.get("baseline_system") or {}).get("name") or "Baseline system"
    has_system = any(r.system is not None for r in rows)
    head = ["Metric", "Value", "95% interval", "n", "Threshold"]
    if comparison is not None:
        head += ["Baseline", "Change"]
    if has_system:
        head.append(str(system_name))
    others = [o for o in run.get("other_systems") or [] if isinstance(o, Mapping)]
    head += [str(o.get("name")) for o in others]
    body = []
    for r in rows:
        entry = metrics.get(r.name) or {}
        cells = [f'<th scope="row">{esc(r.name)}<span class="desc">{esc(entry.get("description") or "")}</span></th>',
                 f'<td class="num" data-sort="{r.value if r.value is not None else ""}">'
                 f'{esc(fmt(r.value, r.unit)) if r.value is not None else "not measured"}</td>',
                 f'<td class="num">{esc(fmt_interval(entry.get("ci"), r.unit))}</td>',
                 f'<td class="num">{esc(entry.get("n", "—"))}</td>', _threshold_cell(run, r)]
        if comparison is not None:
            cells += [f'<td class="num">{esc(fmt(r.baseline, r.unit))}</td>', _change_cell(paired.get(r.name), r)]
        if has_system:
            cells.append(f'<td class="num">{esc(fmt(r.system, r.unit))}</td>')
        cells += [f'<td class="num">{esc(fmt((o.get("metrics") or {}).get(r.name), r.unit))}</td>'
                  for o in others]
        body.append(f'<tr data-metric="{esc(r.name)}">{"".join(cells)}</tr>')
    return ('<section id="metrics" aria-labelledby="h-metrics"><h2 id="h-metrics">Metrics table</h2>'
            f'<div class="scroll"><table id="metrics-table" class="sortable"><thead><tr>'
            f"{_head_cells(head)}</tr></thead>"
            f'<tbody>{"".join(body)}</tbody></table></div></section>')


def _head_cells(labels: Iterable[str]) -> str:
    return "".join(f'<th scope="col">{esc(label)}</th>' for label in labels)


def _threshold_cell(run: Mapping[str, Any], r: MetricRow) -> str:
    if r.threshold is None:
        return "<td>—</td>"
    gate: Mapping[str, Any] = next((g for g in run.get("thresholds") or [] if g.get("metric") == r.name), {})
    op = "≥" if gate.get("bound") == "min" else "≤"
    state = '<span class="ok">✓ holds</span>' if r.passed else '<span class="bad">✗ fails</span>'
    return f'<td class="num">{op} {esc(fmt(r.threshold, r.unit))} {state}</td>'


def _change_cell(diff: Mapping[str, Any] | None, r: MetricRow) -> str:
    if not diff:
        return "<td>—</td>"
    direction = str(diff.get("direction") or "unknown")
    said = {"better": "▲ significantly better", "worse": "▼ significantly worse", "same": "no significant change",
            "unknown": "significance unknown"}.get(direction, direction)
    css = direction if direction in ("better", "worse") else "muted"
    return (f'<td class="num" data-sort="{finite(diff.get("delta")) or 0}">'
            f'{esc(fmt_signed(diff.get("delta"), r.unit))} {esc(fmt_interval(diff.get("ci"), r.unit, True))}'
            f'<span class="desc {css}">{esc(said)}</span></td>')


# --- breakdowns ----------------------------------------------------------------------------------------

def _breakdown_table(groups: Mapping[str, Any], label: str, order: Sequence[str]) -> str:
    present = {n for g in groups.values() for n in (g.get("metrics") or {})}
    names = [n for n in order if n in present] + sorted(present - set(order))
    head = "".join(f'<th scope="col">{esc(h)}</th>' for h in [label, "n", *names])
    body = []
    for key, group in groups.items():
        cells = [f'<th scope="row">{esc(key)}</th>', f'<td class="num">{esc(group.get("n", "—"))}</td>']
        for name in names:
            value = finite((group.get("metrics") or {}).get(name))
            unit = unit_and_direction(name)[0]
            bar = cell_bar(value, unit)
            cells.append(f'<td class="num" data-sort="{value if value is not None else ""}">{bar}'
                         f"{esc(fmt(value, unit))}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    return (f'<div class="scroll"><table class="sortable"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table></div>')


def _breakdowns(run: Mapping[str, Any]) -> str:
    order = list(run.get("metrics") or {})
    out = []
    if run.get("by_intent"):
        out.append('<section id="by-intent" aria-labelledby="h-by-intent"><h2 id="h-by-intent">By intent</h2>'
                   f'{_breakdown_table(run["by_intent"], "Expected intent", order)}</section>')
    if run.get("by_tag"):
        out.append('<section id="by-tag" aria-labelledby="h-by-tag"><h2 id="h-by-tag">By tag</h2>'
                   f'{_breakdown_table(run["by_tag"], "Tag", order)}</section>')
    return "".join(out)


# --- worst cases ---------------------------------------------------------------------------------------

def _mean_score(case: Mapping[str, Any]) -> float | None:
    values = [v for n, raw in (case.get("scores") or {}).items()
              if (v := finite(raw)) is not None and unit_and_direction(n) == ("", True)]
    return sum(values) / len(values) if values else None


def worst_cases(cases: Sequence[Mapping[str, Any]], limit: int = WORST_CASES) -> list[Mapping[str, Any]]:
    """Cases that failed to run first, then the lowest mean score; cases with full marks are left out."""
    ranked = []
    for i, case in enumerate(cases):
        mean = _mean_score(case)
        if case.get("error"):
            ranked.append((0, 0.0, i))
        elif mean is not None and mean < 1 - 1e-9:
            ranked.append((1, mean, i))
    return [cases[i] for _, _, i in sorted(ranked)[:limit]]


def _case(case: Mapping[str, Any], index: int) -> str:
    ident = f"case-{index}"
    mean = _mean_score(case)
    intent = case.get("intent") or {}
    latency = ", ".join(f"{op} {fmt(v, 'ms')}" for op, raw in (case.get("latency_ms") or {}).items()
                        if (v := finite(raw)) is not None)
    thread = case.get("thread") or {}
    facts = _facts([("Mean score", fmt(mean) if mean is not None else None),
                    ("Channel", case.get("channel") or thread.get("channel")),
                    ("Tags", ", ".join(map(str, case.get("tags") or [])) or None), ("Note", case.get("note")),
                    ("Intent", f"expected {intent.get('expected')}, predicted {intent.get('predicted')}"
                     if intent else None), ("Latency", latency or None)])
    out = [f'<article class="case" aria-labelledby="{ident}-h"><h3 id="{ident}-h">{esc(case.get("id"))}</h3>']
    if case.get("error"):
        out.append(f'<p class="bad"><strong>Failed to run:</strong> {esc(case["error"])}</p>')
    scores = "".join(f'<tr><th scope="row">{esc(n)}</th><td class="num {_score_class(v)}">{esc(fmt(v))}</td></tr>'
                     for n, v in (case.get("scores") or {}).items())
    out.append(f'<div class="columns"><div>{facts}</div>')
    if scores:
        out.append('<div><table><thead><tr><th scope="col">Score</th><th scope="col" class="num">Value</th></tr>'
                   f"</thead><tbody>{scores}</tbody></table></div>")
    out.append("</div>")
    if case.get("expect"):
        out.append(f"<h4>Expected</h4>{_facts(case['expect'].items())}")
    out.append(_thread(thread))
    out.append(_outputs(case.get("outputs") or {}))
    return "".join(out) + "</article>"


def _score_class(value: Any) -> str:
    v = finite(value)
    return "" if v is None else "ok" if v >= 1 - 1e-9 else "bad" if v <= 0.5 else ""


def _thread(thread: Mapping[str, Any]) -> str:
    messages = thread.get("messages") or []
    if not messages:
        return ""
    items = []
    for m in messages:
        role = str(m.get("role") or "unknown")
        css = role if role in ("customer", "agent", "system", "bot") else "other"
        ts = f' <time class="muted">{esc(m["ts"])}</time>' if m.get("ts") else ""
        items.append(f'<li class="msg {css}"><span class="role">{esc(role)}</span>{ts}<p>{esc(m.get("text"))}</p></li>')
    customer = _facts((thread.get("customer") or {}).items())
    return (f"<h4>Thread</h4>{customer}"
            f'<ol class="thread" tabindex="0" aria-label="Thread messages">{"".join(items)}</ol>')


def _outputs(outputs: Mapping[str, Any]) -> str:
    if not outputs:
        return ""
    answered = outputs.get("answered")
    out = ["<h4>Outputs</h4>", _facts([("Answered", None if answered is None else "yes" if answered else "no"),
                                       ("Engine", outputs.get("engine")),
                                       ("Fell back from", outputs.get("fallback_from"))])]
    suggestions = outputs.get("suggestions") or []
    if suggestions:
        items = []
        for s in suggestions[:TOP_SUGGESTIONS]:
            meta = " · ".join(x for x in (esc(s.get("source")), f"confidence {fmt(s.get('confidence'))}"
                                          if finite(s.get("confidence")) is not None else "") if x)
            cites = "".join(
                f'<li><strong>{esc(c.get("title") or c.get("document_id"))}</strong>'
                f'{" — " + esc(c["section"]) if c.get("section") else ""} <code>{esc(c.get("document_id"))}</code>'
                f"<blockquote>{esc(_clip(c.get('passage')))}</blockquote></li>" for c in s.get("citations") or [])
            items.append(f'<li><p class="text">{esc(s.get("text"))}</p><span class="desc">{meta}</span>'
                         f'{f"<ul>{cites}</ul>" if cites else ""}</li>')
        out.append(f"<h5>Suggestions (top {min(len(suggestions), TOP_SUGGESTIONS)} of {len(suggestions)})</h5>"
                   f"<ol>{''.join(items)}</ol>")
    summary = outputs.get("summary") or {}
    if summary:
        facts = "".join(f"<li><strong>{esc(f.get('kind'))}</strong>: {esc(f.get('value'))}</li>"
                        for f in summary.get("facts") or [])
        status = f' <span class="muted">({esc(summary["status"])})</span>' if summary.get("status") else ""
        out.append(f'<h5>Summary{status}</h5><p class="text">{esc(summary.get("abstract"))}</p>'
                   f'{f"<ul>{facts}</ul>" if facts else ""}')
    actions = outputs.get("next_actions") or []
    if actions:
        steps = "".join(f"<li>{esc(a.get('title') or a.get('action'))} <code>{esc(a.get('action'))}</code>"
                        f"{' · step ' + esc(a['step_id']) if a.get('step_id') else ''}</li>" for a in actions)
        out.append(f"<h5>Next actions</h5><ol>{steps}</ol>")
    found = outputs.get("search") or []
    if found:
        out.append(f"<h5>Knowledge search</h5><ol>{''.join(f'<li><code>{esc(d)}</code></li>' for d in found)}</ol>")
    return "".join(out)


def _clip(text: Any, limit: int = PASSAGE_CHARS) -> str:
    text = "" if text is None else str(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _worst_section(cases: Sequence[Mapping[str, Any]]) -> str:
    if not cases:
        return ""
    worst = worst_cases(cases)
    body = "".join(_case(c, i) for i, c in enumerate(worst)) if worst else \
        '<p class="ok">Every case scored full marks and ran without error.</p>'
    return ('<section id="worst-cases" aria-labelledby="h-worst"><h2 id="h-worst">Worst cases</h2>'
            f'<p class="muted">Up to {WORST_CASES}: cases that failed to run, then the lowest mean score.</p>'
            f"{body}</section>")


# --- comparison ----------------------------------------------------------------------------------------

def _id_list(ids: Sequence[Any], limit: int = 20) -> str:
    shown = ", ".join(esc(i) for i in ids[:limit])
    return shown + (f" and {len(ids) - limit} more" if len(ids) > limit else "")


def _comparison(comparison: Mapping[str, Any] | None, metrics: Mapping[str, Any]) -> str:
    if comparison is None:
        return ""
    base = comparison.get("baseline") or {}
    out = ['<section id="comparison" aria-labelledby="h-comparison"><h2 id="h-comparison">Difference to the '
           "baseline</h2>",
           _facts([("Baseline", f"{base.get('name') or ''} ({base.get('id')})"), ("Created", base.get("created_at")),
                   ("Git commit", base.get("git_commit")), ("Shared cases", comparison.get("shared_cases")),
                   ("Only in the baseline", len(comparison.get("only_in_baseline") or []) or None),
                   ("Only in this run", len(comparison.get("only_in_run") or []) or None)])]
    for key, label in (("only_in_baseline", "Only in the baseline"), ("only_in_run", "Only in this run")):
        if comparison.get(key):
            out.append(f'<p><strong>{label}:</strong> {_id_list(comparison[key])}</p>')
    for key, label, css in (("regressions", "Significantly worse", "worse"),
                            ("improvements", "Significantly better", "better")):
        names = comparison.get(key) or []
        said = ", ".join(f"<strong>{esc(n)}</strong>" for n in names) or "none"
        out.append(f'<p id="{key}" class="{css if names else ""}">{label}: {said}</p>')
    out.append(_changed_cases(comparison.get("cases") or [], metrics))
    return "".join(out) + "</section>"


def _changed_cases(cases: Sequence[Mapping[str, Any]], metrics: Mapping[str, Any]) -> str:
    rows = []
    for case in cases:
        for name, pair in (case.get("scores") or {}).items():
            before, after = (finite(pair[0]), finite(pair[1])) if isinstance(pair, Sequence) and len(pair) == 2 \
                else (None, None)
            if before is None or after is None:
                continue
            unit, higher = unit_and_direction(name, metrics.get(name))
            worse = after < before if higher else after > before
            rows.append((not worse, -abs(after - before), str(case.get("id")), name, before, after, unit, worse))
    if not rows:
        return "<h3>Changed cases</h3><p>No case scored differently.</p>"
    rows.sort()
    body = "".join(
        f'<tr class="{"worse" if worse else "better"}"><th scope="row">{esc(case_id)}</th><td>{esc(name)}</td>'
        f'<td class="num">{esc(fmt(before, unit))}</td><td class="num">{esc(fmt(after, unit))}</td>'
        f'<td class="num" data-sort="{after - before}">{esc(fmt_signed(after - before, unit))} '
        f'{"▼ worse" if worse else "▲ better"}</td></tr>'
        for _, _, case_id, name, before, after, unit, worse in rows[:MAX_CHANGED_ROWS])
    more = f"<p>{len(rows) - MAX_CHANGED_ROWS} more changes not shown.</p>" if len(rows) > MAX_CHANGED_ROWS else ""
    return (f"<h3>Changed cases ({len(cases)})</h3>"
            '<div class="scroll"><table id="changed-cases" class="sortable"><thead><tr><th scope="col">Case</th>'
            '<th scope="col">Metric</th><th scope="col">Before</th><th scope="col">After</th>'
            f'<th scope="col">Change</th></tr></thead><tbody>{body}</tbody></table></div>{more}')


# --- page ----------------------------------------------------------------------------------------------

def render(run: Mapping[str, Any], baseline: Mapping[str, Any] | None = None) -> str:
    """The run as one self-contained HTML page; ``baseline`` is compared when the run holds no comparison."""
    comparison = run.get("comparison")
    if comparison is None and baseline is not None:
        from evals.runs import compare  # runs imports this module when it writes a report

        comparison = compare(baseline, run)
    cases = run.get("cases") or []
    rows = metric_rows(run, comparison)
    system_name = (run.get("baseline_system") or {}).get("name")
    body = "".join([_header(run, comparison), metric_charts(rows, system_name),
                    _metrics_table(run, rows, comparison), latency_charts(cases), _breakdowns(run),
                    _worst_section(cases), _comparison(comparison, run.get("metrics") or {})])
    title = f"{run.get('name') or run.get('id') or 'Eval run'} · {'PASS' if passed(run, comparison) else 'FAIL'}"
    return ("<!DOCTYPE html>\n"
            f'<html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{esc(title)}</title><style>{_CSS}</style></head>"
            f"<body><main>{body}</main><script>{_SORT_SCRIPT}</script></body></html>\n")
