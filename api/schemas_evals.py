"""Request and response bodies of the eval routes (QA teams)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from api.schemas import EXAMPLE_THREAD
from evals.suite import MAX_CASES, Case


class EvalRequest(BaseModel):
    """A suite to run on the tenant's live knowledge, as a job: its metadata and its cases."""

    name: str = Field(..., min_length=1, max_length=200, description="The suite's name; runs of one name are "
                                                                     "compared with each other.")
    description: str = Field("", max_length=2000, description="What the suite covers.")
    engine: Literal["grounded", "llm"] = Field("grounded", description="The engine to run the cases through.")
    k: int = Field(5, ge=1, le=50, description="The k of retrieval hit@k.")
    thresholds: dict[str, float] = Field(default_factory=dict, description="metric -> the least value that passes "
                                         "(the most, for latencies in ms), e.g. {\"citation_hit\": 0.8}.")
    cases: list[Case] = Field(..., min_length=1, max_length=MAX_CASES, description="The cases.")
    baseline_run_id: str | None = Field(None, max_length=40, description="An earlier run of this tenant to "
                                        "compare with case by case; a significant regression fails the run.")

    model_config = {"json_schema_extra": {"examples": [{
        "name": "billing-smoke", "thresholds": {"citation_hit": 0.5},
        "cases": [{"id": "double-charge", "thread": EXAMPLE_THREAD, "tags": ["billing"],
                   "expect": {"documents": ["articles/billing/duplicate-charges-and-disputes.md"],
                              "intent": "billing_dispute"}}]}]}, "extra": "forbid"}


class EvalAccepted(BaseModel):
    """An eval run queued as a job."""

    id: str = Field(..., description="The run id: poll GET /v1/evals/{id}.")
    status: Literal["queued"] = Field("queued", description="Always queued when accepted.")


class EvalSummary(BaseModel):
    """A finished eval run, without its cases."""

    id: str = Field(..., description="The run id.")
    name: str = Field(..., description="The suite's name.")
    engine: str = Field(..., description="The engine the cases ran through.")
    cases: int = Field(..., description="How many cases.")
    passed: bool = Field(..., description="Every threshold held, no case failed to run, no regression.")
    metrics: dict[str, float] = Field(..., description="metric -> value.")
    created_at: datetime = Field(..., description="When it finished.")


class EvalList(BaseModel):
    """The tenant's eval runs, newest first."""

    runs: list[EvalSummary] = Field(..., description="Newest first.")


class EvalView(BaseModel):
    """An eval run: its job status and, once it succeeded, the whole run (the run.json of the CLI)."""

    id: str = Field(..., description="The run id.")
    status: Literal["queued", "running", "succeeded", "failed"] = Field(..., description="Poll until succeeded "
                                                                                          "or failed.")
    done: int = Field(..., description="Cases run so far.")
    total: int = Field(..., description="Cases in all.")
    progress: float = Field(..., description="done / total, 0 to 1.")
    current: str | None = Field(None, description="The case last run.")
    error: str | None = Field(None, description="Once failed, why.")
    passed: bool | None = Field(None, description="Once succeeded, whether the run passed its gates.")
    run: dict[str, Any] | None = Field(None, description="Once succeeded, the run: metrics with 95% intervals, "
                                                         "thresholds, per-case outputs and scores, comparison.")
    report_url: str | None = Field(None, description="Once succeeded, the HTML report.")


class EvalComparison(BaseModel):
    """Run B against run A (the baseline): per metric the paired difference over shared cases."""

    baseline: dict[str, Any] = Field(..., description="Run A: id, name, created_at, git_commit.")
    shared_cases: int = Field(..., description="Cases in both runs (by id).")
    only_in_baseline: list[str] = Field(..., description="Case ids only in A.")
    only_in_run: list[str] = Field(..., description="Case ids only in B.")
    metrics: dict[str, Any] = Field(..., description="metric -> {a, b, delta, ci (95% of B - A), n, significant, "
                                                     "direction: better | worse | same}.")
    regressions: list[str] = Field(..., description="Metrics significantly worse in B.")
    improvements: list[str] = Field(..., description="Metrics significantly better in B.")
    cases: list[dict[str, Any]] = Field(..., description="Cases whose scores changed: {id, scores: {metric: "
                                                         "[before, after]}}.")
