"""Eval runs through the API: a QA key posts a suite, polls the job, reads the run and its report; the
same suite gives the same scores as in process; a kept thread can be a case; a baseline compares."""

from __future__ import annotations

import json
from typing import Any

import pytest

from api.evals import EngineTarget
from evals.runner import run_suite
from evals.suite import load_suite
from tests.api.conftest import Api
from tests.conftest import SAMPLE

SUITE = load_suite(SAMPLE / "evals" / "suite.jsonl")


def _cases(n: int = 6) -> list[dict[str, Any]]:
    """The sample suite's first reply cases and next-action cases, as JSON."""
    replies = [c for c in SUITE.cases if "reply" in c.tags][: n // 2]
    actions = [c for c in SUITE.cases if c.expect.next_action][: n - len(replies)]
    return [c.model_dump(mode="json", exclude_none=True) for c in replies + actions]


def _finished(api: Api, run_id: str) -> dict[str, Any]:
    api.service.wait_for_jobs()
    response = api.client.get(f"/v1/evals/{run_id}", headers=api.headers("qa"))
    assert response.status_code == 200, response.text
    view: dict[str, Any] = response.json()
    assert view["status"] == "succeeded", view
    return view


def test_qa_runs_a_suite_as_a_job_and_reads_run_and_report(sample_api: Api) -> None:
    body = {"name": "smoke", "cases": _cases(), "thresholds": {"next_action_top3": 0.0}}

    started = sample_api.client.post("/v1/evals", json=body, headers=sample_api.headers("qa"))

    assert started.status_code == 202, started.text
    run_id = started.json()["id"]
    assert started.headers["Location"] == f"/v1/evals/{run_id}"
    view = _finished(sample_api, run_id)
    run = view["run"]
    assert view["done"] == view["total"] == len(body["cases"])
    assert run["id"] == run_id and run["suite"]["tenant"] == "brightwave" and run["target"] == "in-process"
    assert {c["id"] for c in run["cases"]} == {c["id"] for c in body["cases"]}
    for name in ("retrieval_hit_at_k", "answer_decision", "next_action_top1", "suggest_p95_ms"):
        low, high = run["metrics"][name]["ci"]
        assert low <= run["metrics"][name]["value"] <= high
    assert view["passed"] is run["passed"] is True
    listed = sample_api.client.get("/v1/evals", headers=sample_api.headers("qa")).json()["runs"]
    assert run_id in [r["id"] for r in listed]
    report = sample_api.client.get(view["report_url"], headers=sample_api.headers("qa"))
    assert report.status_code == 200 and report.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in report.headers["content-security-policy"]
    assert "smoke" in report.text


def test_api_run_scores_what_an_in_process_run_scores(sample_api: Api) -> None:
    cases = _cases()
    started = sample_api.client.post("/v1/evals", json={"name": "same", "cases": cases},
                                     headers=sample_api.headers("qa"))
    api_run = _finished(sample_api, started.json()["id"])["run"]

    suite = SUITE.model_copy(update={"cases": [c for c in SUITE.cases if c.id in {x["id"] for x in cases}]})
    local = run_suite(suite, EngineTarget(sample_api.service.engines))

    def scores(run: dict[str, Any]) -> dict[str, Any]:
        return {c["id"]: c["scores"] for c in run["cases"]}

    assert scores(api_run) == scores(local)


def test_a_kept_thread_is_a_case_and_a_baseline_compares(sample_api: Api) -> None:
    case = next(c for c in SUITE.cases if c.expect.next_action and c.thread is not None)
    assert case.thread is not None
    thread = case.thread.model_dump(mode="json", exclude_none=True)
    body = {k: thread[k] for k in ("channel", "customer", "messages")}
    put = sample_api.client.put(f"/v1/threads/{case.id}", json=body, headers=sample_api.headers())
    assert put.status_code in (200, 201), put.text
    kept = {"id": case.id, "thread_id": case.id, "expect": case.expect.model_dump(mode="json", exclude_none=True)}
    first = _finished(sample_api, sample_api.client.post(
        "/v1/evals", json={"name": "kept", "cases": [kept]}, headers=sample_api.headers("qa")).json()["id"])
    inline = {**kept, "thread": thread}
    del inline["thread_id"]
    second = _finished(sample_api, sample_api.client.post(
        "/v1/evals", json={"name": "kept", "cases": [inline], "baseline_run_id": first["id"]},
        headers=sample_api.headers("qa")).json()["id"])

    assert first["run"]["cases"][0]["error"] is None
    assert first["run"]["cases"][0]["scores"] == second["run"]["cases"][0]["scores"]
    comparison = second["run"]["comparison"]
    assert comparison["baseline"]["id"] == first["id"] and comparison["shared_cases"] == 1
    assert comparison["regressions"] == [] and comparison["cases"] == []


@pytest.mark.parametrize(("change", "status", "fragment"), [
    ({"thresholds": {"citation_hits": 0.5}}, 422, "unknown metric"),
    ({"engine": "llm"}, 422, "not configured"),
    ({"baseline_run_id": "job_doesnotexist00"}, 404, "no eval run"),
    ({"cases": []}, 422, "cases"),
    ({"cases": [{"id": "a", "thread_id": "x"}, {"id": "a", "thread_id": "y"}]}, 422, "used twice"),
    ({"cases": [{"id": "a", "tenant": "globex", "thread_id": "x"}]}, 422, "tenant"),
    ({"cases": [{"id": "a"}]}, 422, "thread"),
    ({"knowledge": "/etc"}, 422, "knowledge"),
])
def test_a_bad_suite_is_refused_before_any_job(sample_api: Api, change: dict[str, Any], status: int,
                                               fragment: str) -> None:
    jobs_before = _count_jobs(sample_api)
    body = {"name": "bad", "cases": _cases(2), **change}

    response = sample_api.client.post("/v1/evals", json=body, headers=sample_api.headers("qa"))

    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert fragment in json.dumps(response.json())
    assert _count_jobs(sample_api) == jobs_before


def test_a_case_that_cannot_run_is_reported_and_fails_the_run(sample_api: Api) -> None:
    body = {"name": "missing", "cases": [{"id": "gone", "thread_id": "no-such-thread",
                                          "expect": {"next_action": "verify_identity"}}, *_cases(2)]}
    view = _finished(sample_api, sample_api.client.post("/v1/evals", json=body,
                                                        headers=sample_api.headers("qa")).json()["id"])

    gone = next(c for c in view["run"]["cases"] if c["id"] == "gone")
    assert "no-such-thread" in gone["error"]
    assert view["run"]["errors"] == 1 and view["passed"] is False


def _count_jobs(api: Api) -> int:
    from sqlalchemy import text

    with api.service.store.engine.connect() as connection:
        return int(connection.execute(text("select count(*) from jobs")).scalar_one())
