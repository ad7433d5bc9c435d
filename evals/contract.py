"""The benchmark output contract shared by every ``copilot eval benchmark``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from evals.metrics import BOOTSTRAP_SAMPLES, SEED, describe
from evals.runs import finish, new_run, versions

# the run metrics a benchmark's latency summary becomes, beside the scores
_LATENCY_METRICS = {"p50_ms": ("p50", 50), "p95_ms": ("p95", 95)}


@dataclass
class BenchmarkResult:
    benchmark: str
    system: str
    n: int
    metrics: dict[str, float]
    latency_ms: dict[str, float]
    details: dict[str, Any] = field(default_factory=dict)
    baseline: BenchmarkResult | None = None
    # further systems scored on the same items beside this one (not baselines), e.g. the llm engine beside the
    # grounded one; each carries its own details (how often it fell back) and cases
    others: list[BenchmarkResult] = field(default_factory=list)
    # one record per evaluated item, as in an eval run (``id``, ``scores``, ``latency_ms``, ``intent``...);
    # the scores that are means of per-item values carry the names of ``metrics``
    cases: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "benchmark": self.benchmark, "system": self.system, "n": self.n,
            "metrics": {k: round(v, 4) for k, v in self.metrics.items()},
            "latency_ms": {k: round(v, 2) for k, v in self.latency_ms.items()},
        }
        if self.details:
            out["details"] = self.details
        if self.baseline is not None:
            out["baseline"] = self.baseline.as_json()
        if self.others:
            out["others"] = [other.as_json() for other in self.others]
        return out

    def to_run(self, *, dataset: str | None = None) -> dict[str, Any]:
        """The result as a finished eval run (format ``copilot.eval-run/1``), read like a suite's run.

        Metrics come from the cases (value, 95% bootstrap interval, n); the benchmark's own figures stay the
        values, and those that are not means of per-item scores (macro-F1) have no interval."""
        run = new_run("benchmark", self.benchmark, engine=self.system, target="in-process", versions=versions(),
                      details={**self.details, "dataset": dataset, "n": self.n}, cases=list(self.cases))
        finish(run, {})
        metrics: dict[str, dict[str, Any]] = run.setdefault("metrics", {})
        for name, value in self.metrics.items():
            entry = metrics.get(name)
            if entry is None:
                entry = metrics[name] = _entry(name, value, None, self.n)
            entry["value"] = float(value)
        samples = _latency_samples(self.cases)
        for name, (key, q) in _LATENCY_METRICS.items():
            if name not in metrics and key in self.latency_ms:
                ci = _percentile_interval(samples, q) if samples else None
                metrics[name] = _entry(name, self.latency_ms[key], ci, len(samples) or self.n)
        if self.baseline is not None:
            run["baseline_system"] = {"name": self.baseline.system, "metrics": dict(self.baseline.metrics)}
        if self.others:
            run["other_systems"] = [
                {"name": o.system, "details": dict(o.details), "metrics": {
                    **o.metrics, **{name: o.latency_ms[key] for name, (key, _) in _LATENCY_METRICS.items()
                                    if key in o.latency_ms}}}
                for o in self.others]
        return run


def _entry(name: str, value: float, ci: list[float] | None, n: int) -> dict[str, Any]:
    meta = describe(name)
    return {"value": float(value), "ci": ci, "n": n, "higher_is_better": meta.higher_is_better, "unit": meta.unit,
            "description": meta.description}


def _latency_samples(cases: list[dict[str, Any]]) -> list[float]:
    """The timed cases' latencies (a benchmark times one operation per case)."""
    return [float(v) for c in cases for v in (c.get("latency_ms") or {}).values() if v is not None]


def _percentile_interval(samples: list[float], q: float) -> list[float]:
    """Percentile bootstrap 95% interval of the q-th percentile (the seed and sample count of the metrics)."""
    values = np.asarray(samples, dtype=float)
    rng = np.random.default_rng(SEED)
    boot = np.empty(BOOTSTRAP_SAMPLES)
    for i in range(BOOTSTRAP_SAMPLES):
        boot[i] = np.percentile(values[rng.integers(0, len(values), len(values))], q)
    return [float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))]


def latency_summary(samples_ms: list[float]) -> dict[str, float]:
    if not samples_ms:
        return {"p50": 0.0, "p95": 0.0, "p99": 0.0}
    values = np.asarray(samples_ms)
    return {"p50": float(np.percentile(values, 50)), "p95": float(np.percentile(values, 95)),
            "p99": float(np.percentile(values, 99))}
