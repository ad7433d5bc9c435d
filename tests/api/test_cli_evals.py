"""``copilot eval init | run | compare`` as a QA team uses them, in-process with typer's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from api.cli import app
from evals.suite import load_suite

SMALL = 6  # cases of the example suite each run takes: a few replies, an unanswerable, next actions, summaries


def _invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``eval init`` once, then a smaller suite of the same kinds over the knowledge it wrote."""
    folder = tmp_path_factory.mktemp("evals")
    done = _invoke("eval", "init", str(folder), "--json")
    assert done.exit_code == 0, done.output
    suite = load_suite(folder / "suite.jsonl")
    kinds: dict[str, list[Any]] = {}
    for case in suite.cases:
        kinds.setdefault(next(t for t in case.tags if t in ("reply", "unanswerable", "next-action", "summary")),
                         []).append(case)
    picked = kinds["reply"][:2] + kinds["unanswerable"][:1] + kinds["next-action"][:2] + kinds["summary"][:1]
    # the sample suite's thresholds are for all its cases; a handful of them says nothing against them
    small = suite.model_copy(update={"cases": picked, "meta": suite.meta.model_copy(update={"thresholds": {}})})
    (folder / "small.jsonl").write_text(small.to_jsonl(), encoding="utf-8")
    return folder


@pytest.fixture(autouse=True)
def _data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COPILOT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)


def test_init_writes_a_suite_of_30_cases_and_its_knowledge(workspace: Path) -> None:
    suite = load_suite(workspace / "suite.jsonl")

    assert len(suite.cases) >= 30 and suite.meta.tenant == "brightwave"
    assert suite.knowledge_dir() == (workspace / "knowledge").resolve()
    assert (workspace / "knowledge" / "brand-voice.yaml").is_file()
    assert not (workspace / "knowledge" / "evals").exists()
    again = _invoke("eval", "init", str(workspace))
    assert again.exit_code == 2 and "--force" in again.output


def test_run_writes_run_and_report_then_a_baseline_run_compares(workspace: Path, tmp_path: Path) -> None:
    first = _invoke("eval", "run", str(workspace / "small.jsonl"), "--out", str(tmp_path / "a"), "--json")

    assert first.exit_code == 0, first.output
    summary = json.loads(first.output)
    run = json.loads((tmp_path / "a" / "run.json").read_text())
    assert summary["passed"] is True and summary["run_file"] == str(tmp_path / "a" / "run.json")
    assert len(run["cases"]) == SMALL and run["errors"] == 0
    assert run["versions"]["knowledge_version"] >= 1 and run["versions"]["embedding_model"]
    assert {"answer_decision", "next_action_top1", "summary_rougeL", "suggest_p95_ms"} <= set(run["metrics"])
    assert "<svg" in (tmp_path / "a" / "report.html").read_text()

    second = _invoke("eval", "run", str(workspace / "small.jsonl"), "--out", str(tmp_path / "b"),
                     "--baseline", str(tmp_path / "a" / "run.json"), "--json")
    assert second.exit_code == 0, second.output
    comparison = json.loads((tmp_path / "b" / "run.json").read_text())["comparison"]
    # quality is deterministic; a latency may read as "worse" on a loaded machine and does not gate
    assert comparison["shared_cases"] == SMALL
    assert [r for r in comparison["regressions"] if not r.endswith("_ms")] == []
    # the grounded engine is deterministic: nothing but latency may move
    assert [c for c in comparison["cases"]] == []

    compared = _invoke("eval", "compare", str(tmp_path / "a"), str(tmp_path / "b"), "--json")
    assert compared.exit_code == 0, compared.output
    assert json.loads(compared.output)["metrics"]["answer_decision"]["delta"] == 0


def test_a_threshold_the_run_misses_fails_it_with_exit_1(workspace: Path, tmp_path: Path) -> None:
    done = _invoke("eval", "run", str(workspace / "small.jsonl"), "--out", str(tmp_path / "run"),
                   "--fail-under", "answer_decision=1.01", "--fail-under", "suggest_p95_ms=0.001")

    assert done.exit_code == 1, done.output
    assert "FAIL" in done.output
    gates = {g["metric"]: g for g in json.loads((tmp_path / "run" / "run.json").read_text())["thresholds"]}
    assert gates["answer_decision"]["passed"] is False and gates["suggest_p95_ms"]["bound"] == "max"


@pytest.mark.parametrize(("args", "fragment"), [
    (["--fail-under", "answer_decision"], "METRIC=VALUE"),
    (["--fail-under", "answer_decisions=0.5"], "unknown metric"),
    (["--engine", "gpt"], "unknown engine"),
    (["--baseline", "missing.json"], "no such run file"),
    (["--url", "http://127.0.0.1:9"], "--key"),
])
def test_bad_options_exit_2_before_running(workspace: Path, args: list[str], fragment: str,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COPILOT_API_KEY", raising=False)

    done = _invoke("eval", "run", str(workspace / "small.jsonl"), *args)

    assert done.exit_code == 2, done.output
    assert fragment in done.output
    assert not Path("eval-runs").exists()


def test_a_suite_that_is_not_one_exits_2_naming_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"suite": {"name": "x", "tenant": "brightwave"}}\n{"id": "a", "thread_id": "t", "expect": '
                   '{"next_actions": "verify_identity"}}\n')

    done = _invoke("eval", "run", str(bad))

    assert done.exit_code == 2 and "line 2" in done.output


def test_compare_refuses_a_file_that_is_not_a_run(tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text('{"format": "something else"}')

    done = _invoke("eval", "compare", str(tmp_path / "x.json"), str(tmp_path / "x.json"))

    assert done.exit_code == 2 and "not an eval run" in done.output


def test_from_feedback_without_feedback_says_so(tmp_path: Path) -> None:
    assert _invoke("tenants", "create", "brightwave").exit_code == 0

    done = _invoke("eval", "from-feedback", "--tenant", "brightwave")

    assert done.exit_code == 2 and "no accepted or edited suggestions" in done.output
