"""How the eval report writes values and draws them: SVG bar charts, latency histograms, table-cell bars.

The value helpers (``esc``, ``fmt`` and kin) are shared with the page in ``evals.report``, which imports this
module and never the reverse. Each chart is one inline ``<svg>`` with a title and a description, so the page
fetches nothing and a screen reader hears what the chart shows.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from evals.metrics import describe

# --- values --------------------------------------------------------------------------------------------

def esc(value: Any) -> str:
    """Text of the run made safe for HTML text and quoted attributes."""
    return html.escape("" if value is None else str(value), quote=True)


def finite(value: Any) -> float | None:
    """The value as a float when it is a finite number, else None."""
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def fmt(value: Any, unit: str = "") -> str:
    """A metric value as the report shows it: three decimals, or whole milliseconds."""
    v = finite(value)
    if v is None:
        return "—"
    if unit == "ms":
        return f"{v:,.0f} ms" if abs(v) >= 10 else f"{v:.1f} ms"
    return f"{v:.3f}"


def fmt_signed(value: Any, unit: str = "") -> str:
    """``fmt`` with a plus sign on a value that is not negative: a difference."""
    v = finite(value)
    text = fmt(v, unit)
    return text if v is None or v < 0 else "+" + text


def fmt_interval(ci: Any, unit: str = "", signed: bool = False) -> str:
    """A confidence interval as ``[low, high]``, or a dash when the run has none."""
    if not isinstance(ci, Sequence) or len(ci) != 2 or finite(ci[0]) is None or finite(ci[1]) is None:
        return "—"
    show = fmt_signed if signed else fmt
    return f"[{show(ci[0], unit)}, {show(ci[1], unit)}]"


def unit_and_direction(name: str, entry: Mapping[str, Any] | None = None) -> tuple[str, bool]:
    """(unit, higher_is_better) from the run's entry, else from the registry."""
    known = describe(name)
    entry = entry or {}
    return str(entry.get("unit", known.unit) or ""), bool(entry.get("higher_is_better", known.higher_is_better))


# --- metric chart --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MetricRow:
    """One metric as the chart and the metrics table show it."""

    name: str
    unit: str
    value: float | None
    ci: tuple[float, float] | None
    threshold: float | None
    passed: bool | None
    baseline: float | None
    system: float | None


def metric_rows(run: Mapping[str, Any], comparison: Mapping[str, Any] | None) -> list[MetricRow]:
    """The run's metrics, then any threshold on a metric it did not measure."""
    metrics = run.get("metrics") or {}
    gates = {g.get("metric"): g for g in run.get("thresholds") or []}
    paired = (comparison or {}).get("metrics") or {}
    system = (run.get("baseline_system") or {}).get("metrics") or {}
    rows = []
    for name in [*metrics, *(g for g in gates if g not in metrics)]:
        entry = metrics.get(name) or {}
        ci = entry.get("ci")
        low, high = (finite(ci[0]), finite(ci[1])) if isinstance(ci, Sequence) and len(ci) == 2 else (None, None)
        gate = gates.get(name) or {}
        rows.append(MetricRow(str(name), unit_and_direction(str(name), entry)[0], finite(entry.get("value")),
                              (low, high) if low is not None and high is not None else None,
                              finite(gate.get("threshold")), gate.get("passed") if gate else None,
                              finite((paired.get(name) or {}).get("a")), finite(system.get(name))))
    return rows


def _nice(top: float) -> float:
    """The smallest 1, 2, 2.5 or 5 times a power of ten at or above ``top``."""
    if top <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(top))
    return next(step * power for step in (1, 2, 2.5, 5, 10) if step * power >= top)


def _svg(ident: str, title: str, desc: str, width: int, height: int, body: str) -> str:
    return (f'<svg role="img" aria-labelledby="{ident}-t {ident}-d" viewBox="0 0 {width} {height}" '
            f'width="{width}" height="{height}">'
            f'<title id="{ident}-t">{esc(title)}</title><desc id="{ident}-d">{esc(desc)}</desc>{body}</svg>')


def _metric_chart(rows: Sequence[MetricRow], ident: str, title: str, system_name: str | None) -> str:
    ms = rows[0].unit == "ms"
    peaks = [v for r in rows for v in (r.value, r.threshold, r.baseline, r.system, *(r.ci or ())) if v is not None]
    top = _nice(max(peaks, default=1.0) * 1.05) if ms else 1.0
    left, plot, row_h, head = 230, 470, 28, 30
    width, height = left + plot + 140, head + row_h * len(rows) + 28

    def x(v: float) -> float:
        return left + plot * min(max(v / top, 0.0), 1.0)

    out = []
    for i in range(5):
        gx = left + plot * i / 4
        out.append(f'<line x1="{gx:.1f}" y1="{head - 6}" x2="{gx:.1f}" y2="{height - 24}" stroke="#e2e8f0"/>'
                   f'<text x="{gx:.1f}" y="{height - 8}" text-anchor="middle">{esc(fmt(top * i / 4, rows[0].unit))}'
                   "</text>")
    legend = [("bar", "value"), ("whisker", "95% interval")]
    if any(r.threshold is not None for r in rows):
        legend.append(("tick", "threshold"))
    if any(r.baseline is not None for r in rows):
        legend.append(("base", "baseline run"))
    if any(r.system is not None for r in rows):
        legend.append(("system", system_name or "baseline system"))
    for i, (mark, label) in enumerate(legend):
        lx = left + i * 125
        out.append(_mark(mark, lx + 6, 12) + f'<text x="{lx + 16}" y="16">{esc(label)}</text>')
    for i, r in enumerate(rows):
        cy = head + i * row_h + row_h / 2
        said = [f"{r.name}: {fmt(r.value, r.unit)}"]
        parts = [f'<rect x="{left}" y="{cy - 6:.1f}" width="{plot}" height="12" fill="#edf2f7"/>']
        if r.value is not None:
            colour = "#c53030" if r.passed is False else "#2b6cb0"
            parts.append(f'<rect x="{left}" y="{cy - 6:.1f}" width="{x(r.value) - left:.1f}" height="12" '
                         f'fill="{colour}"/>')
        if r.ci is not None:
            lo, hi = x(r.ci[0]), x(r.ci[1])
            said.append(f"95% interval {fmt(r.ci[0], r.unit)} to {fmt(r.ci[1], r.unit)}")
            parts.append(f'<path d="M{lo:.1f} {cy:.1f}H{hi:.1f}M{lo:.1f} {cy - 5:.1f}V{cy + 5:.1f}'
                         f'M{hi:.1f} {cy - 5:.1f}V{cy + 5:.1f}" stroke="#1a202c" stroke-width="1.5" fill="none"/>')
        if r.threshold is not None:
            said.append(f"threshold {fmt(r.threshold, r.unit)} ({'holds' if r.passed else 'fails'})")
            parts.append(_mark("tick", x(r.threshold), cy))
        if r.baseline is not None:
            said.append(f"baseline {fmt(r.baseline, r.unit)}")
            parts.append(_mark("base", x(r.baseline), cy))
        if r.system is not None:
            said.append(f"{system_name or 'baseline system'} {fmt(r.system, r.unit)}")
            parts.append(_mark("system", x(r.system), cy))
        label = r.name if len(r.name) <= 30 else r.name[:29] + "…"
        flag = " ✗" if r.passed is False else ""
        out.append(f"<g><title>{esc('; '.join(said))}</title>"
                   f'<text x="{left - 8}" y="{cy + 4:.1f}" text-anchor="end">{esc(label)}</text>{"".join(parts)}'
                   f'<text x="{left + plot + 10}" y="{cy + 4:.1f}">{esc(fmt(r.value, r.unit) + flag)}</text></g>')
    desc = "Horizontal bars with whiskers; the metrics table below holds the same values."
    return _svg(ident, title, desc, width, height, "".join(out))


def _mark(kind: str, x: float, y: float) -> str:
    if kind == "bar":
        return f'<rect x="{x - 6:.1f}" y="{y - 5:.1f}" width="12" height="10" fill="#2b6cb0"/>'
    if kind == "whisker":
        return (f'<path d="M{x - 6:.1f} {y:.1f}H{x + 6:.1f}M{x - 6:.1f} {y - 4:.1f}V{y + 4:.1f}'
                f'M{x + 6:.1f} {y - 4:.1f}V{y + 4:.1f}" stroke="#1a202c" stroke-width="1.5" fill="none"/>')
    if kind == "tick":
        return (f'<line x1="{x:.1f}" y1="{y - 11:.1f}" x2="{x:.1f}" y2="{y + 11:.1f}" stroke="#b45309" '
                'stroke-width="3"/>')
    if kind == "base":
        return (f'<polygon points="{x:.1f},{y - 7:.1f} {x + 6:.1f},{y:.1f} {x:.1f},{y + 7:.1f} {x - 6:.1f},{y:.1f}" '
                'fill="#6b21a8" stroke="#fff"/>')
    return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="5" fill="#fff" stroke="#0f766e" stroke-width="2.5"/>'


def metric_charts(rows: Sequence[MetricRow], system_name: str | None) -> str:
    """The metrics section: one bar chart for the 0 to 1 metrics, one for the milliseconds."""
    shares = [r for r in rows if r.unit != "ms" and r.value is not None]
    times = [r for r in rows if r.unit == "ms" and r.value is not None]
    if not shares and not times:
        return ""
    out = ['<section id="metric-chart" aria-labelledby="h-metric-chart"><h2 id="h-metric-chart">Metrics</h2>']
    if shares:
        out.append(_metric_chart(shares, "chart-shares", "Quality metrics on a 0 to 1 scale", system_name))
    if times:
        out.append(_metric_chart(times, "chart-ms", "Latency metrics in milliseconds", system_name))
    return "".join(out) + "</section>"


# --- latency -------------------------------------------------------------------------------------------

_OPERATIONS = {"suggest": "Suggestions", "summary": "Summary", "next_actions": "Next actions"}


def latency_charts(cases: Sequence[Mapping[str, Any]]) -> str:
    """The latency section: a histogram per operation the cases timed."""
    charts = []
    for op, label in _OPERATIONS.items():
        values = [v for c in cases if (v := finite((c.get("latency_ms") or {}).get(op))) is not None]
        if values:
            charts.append(f"<h3>{label}</h3>{_histogram(values, f'latency-{op}', label)}")
    if not charts:
        return ""
    return ('<section id="latency" aria-labelledby="h-latency"><h2 id="h-latency">Latency distribution</h2>'
            f'{"".join(charts)}</section>')


def _histogram(values: Sequence[float], ident: str, label: str) -> str:
    top = _nice(max(values))
    bins = min(30, max(5, 2 * math.ceil(math.sqrt(len(values)))))
    counts, edges = np.histogram(values, bins=bins, range=(0.0, top))
    left, plot_w, plot_h, head = 50, 760, 150, 20
    width, height, tallest = left + plot_w + 30, head + plot_h + 40, max(int(counts.max()), 1)
    base = head + plot_h
    out = [f'<line x1="{left}" y1="{base}" x2="{left + plot_w}" y2="{base}" stroke="#4a5568"/>',
           f'<text x="{left - 6}" y="{head + 4}" text-anchor="end">{tallest}</text>',
           f'<text x="{left - 6}" y="{base}" text-anchor="end">0</text>',
           f'<text x="12" y="{head + plot_h / 2:.0f}" transform="rotate(-90 12 {head + plot_h / 2:.0f})" '
           'text-anchor="middle">cases</text>']
    step = plot_w / bins
    for i, count in enumerate(counts):
        h = plot_h * int(count) / tallest
        out.append(f'<rect x="{left + i * step + 1:.1f}" y="{base - h:.1f}" width="{step - 2:.1f}" height="{h:.1f}" '
                   f'fill="#2b6cb0"><title>{fmt(edges[i], "ms")} to {fmt(edges[i + 1], "ms")}: {int(count)} '
                   "cases</title></rect>")
    for i in range(5):
        gx = left + plot_w * i / 4
        out.append(f'<text x="{gx:.1f}" y="{base + 16}" text-anchor="middle">{fmt(top * i / 4, "ms")}</text>')
    p50, p95 = (float(np.percentile(values, q)) for q in (50, 95))
    for name, v, colour in (("p50", p50, "#1a202c"), ("p95", p95, "#b45309")):
        gx = left + plot_w * min(v / top, 1.0)
        out.append(f'<line x1="{gx:.1f}" y1="{head - 6}" x2="{gx:.1f}" y2="{base}" stroke="{colour}" '
                   f'stroke-width="2" stroke-dasharray="5 3"/><text x="{gx + 4:.1f}" y="{head + 2}" '
                   f'fill="{colour}">{name} {fmt(v, "ms")}</text>')
    summary = (f"{len(values)} cases; median {fmt(p50, 'ms')}, p95 {fmt(p95, 'ms')}, "
               f"max {fmt(max(values), 'ms')}")
    return _svg(ident, f"{label} latency histogram", summary, width, height, "".join(out)) + \
        f'<p class="muted">{esc(summary)}</p>'


# --- table cells ---------------------------------------------------------------------------------------

def cell_bar(value: float | None, unit: str) -> str:
    """A small bar for a 0 to 1 value in a table cell; nothing for milliseconds or a missing value."""
    return "" if value is None or unit == "ms" else (
        f'<span class="cell-bar" aria-hidden="true"><span style="width:{100 * min(max(value, 0), 1):.0f}%">'
        "</span></span>")
