"""Intent detection on the sample brand's intent set, with the real MiniLM embeddings."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.cli import app
from copilot.errors import InvalidInput
from copilot.intents import UNKNOWN, IntentClassifier
from knowledge.embeddings import LocalEmbedder

INTENTS = Path(__file__).resolve().parents[2] / "samples" / "brightwave" / "intents.csv"


def _examples() -> tuple[list[str], list[str]]:
    with INTENTS.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [r["example"] for r in rows], [r["intent"] for r in rows]


def test_classifier_predicts_held_out_sample_messages(embedder: LocalEmbedder) -> None:
    texts, intents = _examples()
    train = [i for i in range(len(texts)) if i % 4]
    test = [i for i in range(len(texts)) if not i % 4]

    classifier = IntentClassifier(embedder).fit([texts[i] for i in train], [intents[i] for i in train])
    predicted = [p.intent for p in classifier.predict([texts[i] for i in test])]

    accuracy = sum(p == intents[i] for p, i in zip(predicted, test, strict=True)) / len(test)
    assert accuracy >= 0.5  # 24 close intents from ~7 examples each; chance is 0.04


def test_calibrated_classifier_answers_unknown_for_off_topic_messages(embedder: LocalEmbedder) -> None:
    texts, intents = _examples()
    classifier = IntentClassifier(embedder)

    threshold = classifier.calibrate_unknown(texts, intents)
    [known, off_topic] = classifier.predict(["my phone was stolen last night, block my sim",
                                             "what is the capital of Mongolia"])

    assert classifier.unknown_below == threshold
    assert known.intent != UNKNOWN
    assert off_topic.intent == UNKNOWN


@pytest.mark.parametrize(("texts", "intents"), [([], []), (["a", "b"], ["x"]), (["a", "b"], ["x", "x"])])
def test_fit_with_bad_examples_is_invalid_input(embedder: LocalEmbedder, texts: list[str], intents: list[str]) -> None:
    with pytest.raises(InvalidInput):
        IntentClassifier(embedder).fit(texts, intents)


def test_benchmark_banking77_reports_accuracy_f1_and_oos_recall(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    texts, intents = _examples()
    train, test = tmp_path / "train.csv", tmp_path / "test.csv"
    with train.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "category"])
        writer.writerows((t, i) for n, (t, i) in enumerate(zip(texts, intents, strict=True)) if n % 4)
    with test.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "category"])
        writer.writerows((t, i) for n, (t, i) in enumerate(zip(texts, intents, strict=True)) if not n % 4)
        writer.writerows([("how tall is the eiffel tower", "oos"), ("recommend me a pasta recipe", "oos")])
    monkeypatch.setenv("COPILOT_DATA_DIR", str(tmp_path / "data"))

    result = CliRunner().invoke(app, ["eval", "benchmark", "banking77", "--train", str(train), "--test", str(test),
                                      "--json"])

    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["benchmark"] == "banking77"
    assert set(payload["metrics"]) == {"accuracy", "macro_f1", "oos_recall"}
    assert 0.0 <= payload["metrics"]["oos_recall"] <= 1.0
    assert payload["metrics"]["accuracy"] >= 0.5


def test_benchmark_banking77_without_test_file_exits_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["eval", "benchmark", "banking77", "--train", str(tmp_path / "x.csv")])

    assert result.exit_code == 2
