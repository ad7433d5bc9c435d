"""The benchmark output contract shared by every ``copilot eval benchmark``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class BenchmarkResult:
    benchmark: str
    system: str
    n: int
    metrics: dict[str, float]
    latency_ms: dict[str, float]
    details: dict[str, Any] = field(default_factory=dict)
    baseline: BenchmarkResult | None = None

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
        return out


def latency_summary(samples_ms: list[float]) -> dict[str, float]:
    if not samples_ms:
        return {"p50": 0.0, "p95": 0.0, "p99": 0.0}
    values = np.asarray(samples_ms)
    return {"p50": float(np.percentile(values, 50)), "p95": float(np.percentile(values, 95)),
            "p99": float(np.percentile(values, 99))}
