"""Eval runs as files: run.json (machine-readable) beside report.html, gates, and comparisons of two runs.

A run is a plain JSON object (format ``copilot.eval-run/1``) so that QA teams and scripts read it without
our code: the suite or benchmark it came from, what ran (engine, model, versions, knowledge version, git
commit), every case with its outputs, scores and timings, the aggregate metrics with 95% intervals, the
thresholds and whether they held, and, when a baseline was given, the paired difference per metric.
"""

from __future__ import annotations

import json
import math
import platform
import subprocess
import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from copilot.errors import InvalidInput
from evals.metrics import METRICS, aggregate, aggregators, describe, metric_names, paired_difference

FORMAT = "copilot.eval-run/1"


def new_run_id() -> str:
    return f"run_{uuid.uuid4().hex[:16]}"


def git_commit(cwd: Path | None = None) -> str | None:
    """The commit of the working tree the run came from, when it is a git checkout."""
    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd or Path(__file__).resolve().parent,
                              capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None


def versions(**extra: Any) -> dict[str, Any]:
    try:
        copilot_version = metadata.version("copilot")
    except metadata.PackageNotFoundError:
        copilot_version = None
    return {"copilot": copilot_version, "git_commit": git_commit(), "python": platform.python_version(), **extra}


def check_threshold_names(thresholds: Mapping[str, float]) -> None:
    unknown = sorted(set(thresholds) - set(METRICS))
    if unknown:
        raise InvalidInput(f"unknown metric(s) in thresholds: {', '.join(unknown)}; known: {', '.join(METRICS)}")


def parse_fail_under(items: Sequence[str]) -> dict[str, float]:
    """``--fail-under metric=value`` options as a dict; a clear error for anything else."""
    out: dict[str, float] = {}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if sep and not math.isfinite(out[name.strip()]):
            sep = ""
        if not sep or not name.strip():
            raise InvalidInput(f"--fail-under takes METRIC=VALUE (e.g. citation_hit=0.8), not {item!r}")
    return out


def gates(metrics: Mapping[str, Mapping[str, Any]], thresholds: Mapping[str, float]) -> list[dict[str, Any]]:
    """Each threshold with the measured value and whether it holds; a metric not measured fails."""
    out = []
    for name, bound in thresholds.items():
        meta = describe(name)
        actual = metrics.get(name, {}).get("value")
        passed = actual is not None and (actual >= bound if meta.higher_is_better else actual <= bound)
        out.append({"metric": name, "bound": "min" if meta.higher_is_better else "max", "threshold": bound,
                    "actual": actual, "passed": passed})
    return out


def compare(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    """What moved from run A (the baseline) to run B: per metric the paired difference over shared cases,
    significant when its 95% interval excludes 0; per case the scores that changed."""
    cases_a, cases_b = a.get("cases", []), b.get("cases", [])
    names = [n for n in metric_names(cases_b) if n in metric_names(cases_a)]
    metrics: dict[str, Any] = {}
    for name in names:
        diff = paired_difference(name, cases_a, cases_b)
        if diff is None:
            continue
        meta = describe(name)
        better = diff["delta"] > 0 if meta.higher_is_better else diff["delta"] < 0
        diff["direction"] = ("better" if better else "worse") if diff["significant"] else "same"
        metrics[name] = diff
    if not metrics and not cases_a and not cases_b:  # runs without cases (older benchmarks): values only
        for name, m in b.get("metrics", {}).items():
            if name in a.get("metrics", {}):
                metrics[name] = {"a": a["metrics"][name]["value"], "b": m["value"],
                                 "delta": m["value"] - a["metrics"][name]["value"], "ci": None, "n": None,
                                 "significant": False, "direction": "unknown"}
    by_id = {c["id"]: c for c in cases_a}
    changed = []
    for case in cases_b:
        old = by_id.get(case["id"])
        if old is None:
            continue
        moves = {}
        for name, value in case.get("scores", {}).items():
            before = old.get("scores", {}).get(name)
            if value is not None and before is not None and abs(value - before) > 1e-9:
                moves[name] = [before, value]
        if moves:
            changed.append({"id": case["id"], "scores": moves})
    return {
        "baseline": {"id": a.get("id"), "name": a.get("name"), "created_at": a.get("created_at"),
                     "git_commit": a.get("versions", {}).get("git_commit")},
        "shared_cases": len(set(by_id) & {c["id"] for c in cases_b}),
        "only_in_baseline": sorted(set(by_id) - {c["id"] for c in cases_b}),
        "only_in_run": sorted({c["id"] for c in cases_b} - set(by_id)),
        "metrics": metrics,
        "regressions": [n for n, m in metrics.items() if m["direction"] == "worse"],
        "improvements": [n for n, m in metrics.items() if m["direction"] == "better"],
        "cases": changed,
    }


def breakdown(cases: Sequence[Mapping[str, Any]], key: str) -> dict[str, dict[str, Any]]:
    """Metric values per expected intent (``key='intent'``) or per tag (``key='tags'``)."""
    groups: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for case in cases:
        if key == "intent":
            label = (case.get("intent") or {}).get("expected")
            if label:
                groups[label].append(case)
        else:
            for tag in case.get("tags", []):
                groups[tag].append(case)
    out = {}
    for label in sorted(groups):
        members = groups[label]
        names = [n for n in metric_names(members) if not n.endswith("_ms") and n != "intent_macro_f1"]
        funcs = aggregators(names)
        out[label] = {"n": len(members), "metrics": {n: funcs[n](members) for n in names}}
    return out


def finish(run: dict[str, Any], thresholds: Mapping[str, float], baseline: Mapping[str, Any] | None = None
           ) -> dict[str, Any]:
    """Aggregate the run's cases, check its thresholds, compare with the baseline; ``passed`` says it all:
    every threshold holds, no case failed to run, and no quality metric got significantly worse than the
    baseline (latencies are compared too, but only thresholds gate them)."""
    cases = run.get("cases", [])
    if cases:
        run["metrics"] = aggregate(cases)
        run["by_intent"] = breakdown(cases, "intent")
        run["by_tag"] = breakdown(cases, "tags")
    run["errors"] = sum(1 for c in cases if c.get("error"))
    run["thresholds"] = gates(run.get("metrics", {}), thresholds)
    if baseline is not None:
        run["comparison"] = compare(baseline, run)
    # latency moves with the machine's load: a slower run is reported, and gated by thresholds only
    regressions = [r for r in run.get("comparison", {}).get("regressions", []) if describe(r).unit != "ms"]
    run["passed"] = all(g["passed"] for g in run["thresholds"]) and run["errors"] == 0 and not regressions
    return run


def new_run(kind: str, name: str, **fields: Any) -> dict[str, Any]:
    return {"format": FORMAT, "id": new_run_id(), "kind": kind, "name": name,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"), **fields}


def read_run(path: Path) -> dict[str, Any]:
    """A run.json (or the folder holding one); a clear error for anything else."""
    if path.is_dir():
        path = path / "run.json"
    try:
        run = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InvalidInput(f"no such run file: {path}") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInput(f"{path} is not a run.json: {exc}") from exc
    if not isinstance(run, dict) or run.get("format") != FORMAT:
        raise InvalidInput(f"{path} is not an eval run (format {FORMAT!r})")
    return run


def write_run(run: Mapping[str, Any], out: Path, baseline: Mapping[str, Any] | None = None) -> tuple[Path, Path]:
    """OUT/run.json and OUT/report.html; returns both paths."""
    from evals.report import render

    try:
        out.mkdir(parents=True, exist_ok=True)
        run_path, report_path = out / "run.json", out / "report.html"
        tmp = out / ".run.json.tmp"
        tmp.write_text(json.dumps(run, indent=1, ensure_ascii=False, default=str), encoding="utf-8")
        tmp.replace(run_path)
        report_path.write_text(render(run, baseline), encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"cannot write the run to {out}: {exc.strerror or exc}") from exc
    return run_path, report_path
