"""Benchmarks write the same run.json and report as eval suites: one case record per item, read back."""

from __future__ import annotations

import csv
import gzip
import itertools
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from rouge_score import rouge_scorer

from evals.benchmarks import banking77, doc2dial, star, tweetsumm
from evals.contract import BenchmarkResult
from evals.runs import FORMAT, read_run, write_run
from knowledge.embeddings import LocalEmbedder
from tests.conftest import DATASETS

TWEETSUMM = DATASETS / "tweetsumm" / "tweetsumm_valid.jsonl"
BANKING77 = DATASETS / "banking77" / "train.csv"
DOC2DIAL = DATASETS / "doc2dial" / "doc2dial_rc_val_dmv_ssa_va.csv.gz"
STAR = DATASETS / "star"
STAR_TASKS = ("weather", "trivia", "bank_balance", "plane_search")
INTENTS = ("card_arrival", "lost_or_stolen_card", "exchange_rate", "top_up_failed")

needs_tweetsumm = pytest.mark.skipif(not TWEETSUMM.is_file(), reason="TweetSumm is not in shared/datasets")
needs_banking77 = pytest.mark.skipif(not BANKING77.is_file(), reason="Banking77 is not in shared/datasets")
needs_doc2dial = pytest.mark.skipif(not DOC2DIAL.is_file(), reason="doc2dial is not in shared/datasets")
needs_star = pytest.mark.skipif(not (STAR / "dialogues.jsonl.gz").is_file(), reason="STAR is not in shared/datasets")


def _quiet(message: str) -> None:
    del message


def _mean(cases: list[dict[str, Any]], name: str) -> float:
    values = [c["scores"][name] for c in cases if c["scores"].get(name) is not None]
    return sum(values) / len(values)


def _check_run(result: BenchmarkResult, tmp_path: Path, dataset: str) -> dict[str, Any]:
    """The run as written and read back: its metric values are the benchmark's, inside their intervals."""
    run = result.to_run(dataset=dataset)
    run_path, report_path = write_run(run, tmp_path / result.system)
    back = read_run(run_path.parent)
    assert report_path.is_file() and "<html" in report_path.read_text(encoding="utf-8")
    assert back["format"] == FORMAT
    assert (back["kind"], back["name"], back["engine"], back["target"]) == (
        "benchmark", result.benchmark, result.system, "in-process")
    assert back["details"]["dataset"] == dataset and back["details"]["n"] == result.n
    assert len(back["cases"]) == result.n
    for name, value in result.metrics.items():
        entry = back["metrics"][name]
        assert entry["value"] == pytest.approx(value)
        if entry["ci"] is not None:
            low, high = entry["ci"]
            assert low - 1e-9 <= entry["value"] <= high + 1e-9, (name, entry)
    for name, key in (("p50_ms", "p50"), ("p95_ms", "p95")):
        entry = back["metrics"][name]
        assert entry["value"] == pytest.approx(result.latency_ms[key])
        assert entry["higher_is_better"] is False and entry["unit"] == "ms"
        low, high = entry["ci"]
        assert low <= entry["value"] <= high
    assert back["passed"] is True and back["errors"] == 0
    assert "cases" not in result.as_json()  # the JSON summary callers read stays as it was
    return back


@pytest.fixture
def tweetsumm_slice(tmp_path: Path) -> Path:
    path = tmp_path / "tweetsumm_5.jsonl"
    with TWEETSUMM.open(encoding="utf-8") as handle:
        path.write_text("".join(itertools.islice(handle, 5)), encoding="utf-8")
    return path


@needs_tweetsumm
def test_tweetsumm_run_has_a_case_per_dialogue_and_the_lead_beside_it(tweetsumm_slice: Path,
                                                                      tmp_path: Path) -> None:
    ids = [json.loads(line)["dialog_id"] for line in tweetsumm_slice.read_text(encoding="utf-8").splitlines()]

    result = tweetsumm.run(tweetsumm_slice, _quiet)

    assert result.n == len(result.cases) == 5
    assert [c["id"] for c in result.cases] == ids
    assert result.baseline is not None and [c["id"] for c in result.baseline.cases] == ids
    for outcome in (result, result.baseline):
        for name in ("rouge1", "rouge2", "rougeL"):
            assert _mean(outcome.cases, name) == pytest.approx(outcome.metrics[name])
        assert all(c["latency_ms"]["summary"] >= 0 for c in outcome.cases)
    run = _check_run(result, tmp_path, str(tweetsumm_slice))
    assert run["baseline_system"] == {"name": "lead", "metrics": pytest.approx(result.baseline.metrics)}
    assert run["metrics"]["rougeL"]["n"] == 5
    assert "<html" in (tmp_path / "copilot" / "report.html").read_text(encoding="utf-8")
    assert "baseline_system" not in _check_run(result.baseline, tmp_path, str(tweetsumm_slice))


@needs_tweetsumm
def test_tweetsumm_rouge_does_not_configure_logging(tweetsumm_slice: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[object] = []
    # rouge-score without a tokenizer logs through absl, which calls logging.basicConfig (DEBUG lines of every
    # library on stderr) when the root logger has no handler yet
    monkeypatch.setattr(rouge_scorer.logging, "info", lambda *args, **kwargs: calls.append(args))

    tweetsumm.run(tweetsumm_slice, _quiet)

    assert calls == []


def test_tweetsumm_ids_fall_back_to_the_index(tmp_path: Path) -> None:
    data = tmp_path / "mini.jsonl"
    text = "\tCustomer:\t@Acme my bill doubled\n\tAgent:\t@1 Sorry, please DM us your account number.\n"
    rows = [{"text": text, "abstractive_summaries": ["Customer's bill doubled. Agent asks for the account."]},
            {"dialog_id": "d9", "text": text, "abstractive_summaries": ["Bill doubled; agent asks for a DM."]},
            {"dialog_id": "d9", "text": text, "abstractive_summaries": ["Bill doubled."]}]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")

    assert [ident for ident, _, _ in tweetsumm.load(data)] == ["0", "d9", "d9#2"]


def _banking_files(tmp_path: Path, *, out_of_scope: int = 0) -> tuple[Path, Path]:
    """Banking77 rows of four intents: 12 to train and 4 to test each (``out_of_scope`` test rows of a fifth
    intent labelled ``oos``)."""
    by_intent: dict[str, list[str]] = defaultdict(list)
    with BANKING77.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            by_intent[row["category"]].append(row["text"])
    train = [(t, i) for i in INTENTS for t in by_intent[i][:12]]
    test = [(t, i) for i in INTENTS for t in by_intent[i][12:16]]
    test += [(t, "oos") for t in by_intent["atm_support"][:out_of_scope]]
    paths = []
    for name, rows in (("train.csv", train), ("test.csv", test)):
        path = tmp_path / name
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["text", "category"])
            writer.writerows(rows)
        paths.append(path)
    return paths[0], paths[1]


@needs_banking77
@pytest.mark.parametrize("out_of_scope", [0, 4])
def test_banking77_run_has_a_case_per_message(tmp_path: Path, embedder: LocalEmbedder, out_of_scope: int) -> None:
    train, test = _banking_files(tmp_path, out_of_scope=out_of_scope)

    result = banking77.run(train, test, embedder, _quiet)

    assert result.n == len(result.cases) == 16 + out_of_scope
    assert [c["id"] for c in result.cases] == [str(i) for i in range(result.n)]
    assert _mean(result.cases, "accuracy") == pytest.approx(result.metrics["accuracy"])
    assert all(c["scores"]["accuracy"] == float(c["intent"]["expected"] == c["intent"]["predicted"])
               for c in result.cases)
    if out_of_scope:
        assert _mean(result.cases, "oos_recall") == pytest.approx(result.metrics["oos_recall"])
        assert sum(c["scores"]["oos_recall"] is not None for c in result.cases) == out_of_scope
    run = _check_run(result, tmp_path, str(test))
    assert run["metrics"]["macro_f1"]["ci"] is None  # not a mean of per-message scores
    assert run["metrics"]["macro_f1"]["n"] == result.n
    assert run["metrics"]["accuracy"]["ci"] is not None
    assert set(run["by_intent"]) >= set(INTENTS)
    assert "baseline_system" not in run


@needs_doc2dial
def test_doc2dial_run_has_a_case_per_turn_for_both_systems(tmp_path: Path, embedder: LocalEmbedder) -> None:
    data = tmp_path / "doc2dial_8.csv"
    rows = list(itertools.islice(doc2dial.read_rows(DOC2DIAL), 8))
    with data.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    ids = [c.id for c in doc2dial.load(data)[0]]

    result = doc2dial.run(data, "all", embedder, _quiet)

    assert result.baseline is not None
    for outcome in (result, result.baseline):
        assert outcome.n == len(outcome.cases) == len(ids)
        assert [c["id"] for c in outcome.cases] == ids
        for name in ("hit@1", "hit@5", "hit@10", "mrr@10", "doc@1", "grounding_f1"):
            assert _mean(outcome.cases, name) == pytest.approx(outcome.metrics[name])
    run = _check_run(result, tmp_path, str(data))
    assert run["metrics"]["mean_passage_words"]["ci"] is None
    assert run["baseline_system"]["name"] == "naive"


@needs_star
def test_star_run_has_a_case_per_action_tagged_with_its_task(tmp_path: Path, embedder: LocalEmbedder) -> None:
    root = tmp_path / "star"
    kept: dict[str, list[str]] = {t: [] for t in STAR_TASKS}
    with gzip.open(STAR / "dialogues.jsonl.gz", "rt", encoding="utf-8") as handle:
        for line in handle:
            tasks = [w["Task"] for w in json.loads(line)["Scenario"]["WizardCapabilities"]]
            if len(tasks) == 1 and tasks[0] in kept and len(kept[tasks[0]]) < 2:
                kept[tasks[0]].append(line)
            if all(len(lines) == 2 for lines in kept.values()):
                break
    root.mkdir()
    with gzip.open(root / "dialogues.jsonl.gz", "wt", encoding="utf-8") as out:
        out.writelines(line for lines in kept.values() for line in lines)
    for task in STAR_TASKS:
        (root / "tasks" / task).mkdir(parents=True)
        (root / "tasks" / task / f"{task}.json").write_bytes((STAR / "tasks" / task / f"{task}.json").read_bytes())

    result = star.run(root, embedder, _quiet, folds=2, members=1)

    assert result.baseline is not None
    for outcome in (result, result.baseline):
        assert outcome.n == len(outcome.cases) == len({c["id"] for c in outcome.cases})
        assert {t for c in outcome.cases for t in c["tags"]} == set(STAR_TASKS)
        for name in ("top1", "top3"):
            assert _mean(outcome.cases, name) == pytest.approx(outcome.metrics[name])
    assert all("rank" in c["latency_ms"] for c in result.cases)  # fewer than 100 a fold: every one timed
    run = _check_run(result, tmp_path, str(root))
    assert set(run["by_tag"]) == set(STAR_TASKS)
    assert run["baseline_system"]["name"] == "bigram"


def test_to_run_without_cases_keeps_the_figures() -> None:
    result = BenchmarkResult("doc2dial", "naive", 3, {"hit@1": 0.5, "mean_passage_words": 120.0},
                             {"p50": 4.0, "p95": 9.0, "p99": 9.5})

    run = result.to_run()

    assert run["cases"] == [] and run["details"] == {"dataset": None, "n": 3}
    assert run["metrics"]["hit@1"] == {"value": 0.5, "ci": None, "n": 3, "higher_is_better": True, "unit": "",
                                       "description": "hit@1"}
    assert run["metrics"]["p95_ms"]["value"] == 9.0 and run["metrics"]["p95_ms"]["ci"] is None
    assert "p99_ms" not in run["metrics"]
