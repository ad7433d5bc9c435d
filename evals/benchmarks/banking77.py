"""Banking77-format intent benchmark: accuracy and macro-F1 of ``copilot.intents.IntentClassifier``.

Files have a header ``text,category``. When the test file carries an ``oos`` label (out of scope), the
classifier is trained without it, its unknown threshold is measured on held-out known intents, and the
out-of-scope recall is reported.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable
from pathlib import Path

from sklearn.metrics import f1_score

from copilot.errors import InvalidInput
from copilot.intents import UNKNOWN, IntentClassifier
from copilot.ports import Embedder
from evals.contract import BenchmarkResult, latency_summary

OUT_OF_SCOPE = "oos"


def read(path: Path) -> tuple[list[str], list[str]]:
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            if not {"text", "category"} <= set(reader.fieldnames or []):
                raise InvalidInput(f"{path} is not in Banking77 format: the header must have text,category")
            rows = [(r["text"], r["category"]) for r in reader if r["text"] and r["category"]]
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"cannot read {path}: {exc}") from exc
    if not rows:
        raise InvalidInput(f"{path} has no rows")
    return [t for t, _ in rows], [c for _, c in rows]


def run(train: Path, test: Path, embedder: Embedder, log: Callable[[str], None]) -> BenchmarkResult:
    train_texts, train_intents = read(train)
    test_texts, test_intents = read(test)
    keep = [i for i, intent in enumerate(train_intents) if intent != OUT_OF_SCOPE]
    has_oos = OUT_OF_SCOPE in test_intents
    log(f"banking77: training on {len(keep)} messages, {len({train_intents[i] for i in keep})} intents")
    started = time.perf_counter()
    classifier = IntentClassifier(embedder)
    texts, intents = [train_texts[i] for i in keep], [train_intents[i] for i in keep]
    if has_oos:
        threshold = classifier.calibrate_unknown(texts, intents)
        log(f"banking77: unknown below {threshold:.3f} (keeps 95% of held-out known intents)")
    else:
        classifier.fit(texts, intents)
    train_s = time.perf_counter() - started
    log(f"banking77: trained in {train_s:.1f} s; predicting {len(test_texts)} messages")
    latencies: list[float] = []
    predicted: list[str] = []
    for start in range(0, len(test_texts), 64):
        batch = test_texts[start : start + 64]
        began = time.perf_counter()
        predicted += [p.intent for p in classifier.predict(batch)]
        latencies += [(time.perf_counter() - began) * 1000 / len(batch)] * len(batch)
    expected = [UNKNOWN if i == OUT_OF_SCOPE else i for i in test_intents]
    metrics = {
        "accuracy": sum(p == e for p, e in zip(predicted, expected, strict=True)) / len(expected),
        "macro_f1": float(f1_score(expected, predicted, average="macro")),
    }
    if has_oos:
        oos = [p for p, e in zip(predicted, expected, strict=True) if e == UNKNOWN]
        metrics["oos_recall"] = sum(p == UNKNOWN for p in oos) / len(oos)
    cases = []
    for index, (guess, label, ms) in enumerate(zip(predicted, expected, latencies, strict=True)):
        scores: dict[str, float | None] = {"accuracy": float(guess == label)}
        if has_oos:
            scores["oos_recall"] = float(guess == UNKNOWN) if label == UNKNOWN else None
        cases.append({"id": str(index), "scores": scores, "intent": {"expected": label, "predicted": guess},
                      "latency_ms": {"predict": ms}})
    return BenchmarkResult("banking77", "copilot", len(expected), metrics, latency_summary(latencies),
                           {"train_s": round(train_s, 1), "train_messages": len(keep)}, cases=cases)
