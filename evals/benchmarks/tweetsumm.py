"""TweetSumm summary benchmark: ROUGE-1/2/L F1 (stemmed, best of the references, averaged) of the abstract.

The Lead baseline (first customer message + last agent message, handles and links removed) runs beside it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from rouge_score import rouge_scorer
from rouge_score.tokenizers import DefaultTokenizer

from copilot.conversation import Message, Role, Thread
from copilot.errors import InvalidInput
from copilot.summarize import abstract, opening_and_reply
from evals.contract import BenchmarkResult, latency_summary

_ROLES = {"customer": Role.CUSTOMER, "agent": Role.AGENT}


def thread_from_text(text: str) -> Thread:
    """TweetSumm's dialogue text: one message a line, ``\\tCustomer:\\t...`` or ``\\tAgent:\\t...``."""
    messages = []
    for line in text.split("\n"):
        parts = [p for p in line.split("\t") if p.strip()]
        if len(parts) >= 2 and parts[0].strip().rstrip(":").lower() in _ROLES:
            messages.append(Message(role=_ROLES[parts[0].strip().rstrip(":").lower()], text="\t".join(parts[1:])))
    return Thread(channel="x_dm", messages=messages)


def load(path: Path) -> list[tuple[str, Thread, list[str]]]:
    """(id, thread, reference summaries) per dialogue with references; the id is the file's ``dialog_id``
    (or ``id``) when it has one, else the dialogue's index in the file."""
    cases: list[tuple[str, Thread, list[str]]] = []
    seen: set[str] = set()
    number = 0
    try:
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                number += 1
                if not line.strip():
                    continue
                row = json.loads(line)
                references = [r for r in row.get("abstractive_summaries") or [] if r and r.strip()]
                if references:
                    ident = str(row.get("dialog_id") or row.get("id") or len(cases))
                    if ident in seen:  # ids name cases in a run: keep them distinct
                        ident = f"{ident}#{len(cases)}"
                    seen.add(ident)
                    cases.append((ident, thread_from_text(row["text"]), references))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise InvalidInput(f"{path} is not in TweetSumm format (line {number}): {exc}") from exc
    if not cases:
        raise InvalidInput(f"{path} has no dialogues with reference summaries")
    return cases


def lead(thread: Thread) -> str:
    customer, agent = opening_and_reply(thread)
    return f"{customer} {agent}".strip()


def _score(name: str, cases: list[tuple[str, Thread, list[str]]], summarize: Callable[[Thread], str]
           ) -> BenchmarkResult:
    # the tokenizer given: without one rouge-score logs through absl, which configures the root logger
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"],
                                      tokenizer=DefaultTokenizer(use_stemmer=True))
    best: dict[str, list[float]] = {"rouge1": [], "rouge2": [], "rougeL": []}
    latencies = []
    records = []
    for ident, thread, references in cases:
        started = time.perf_counter()
        summary = summarize(thread)
        ms = (time.perf_counter() - started) * 1000
        latencies.append(ms)
        scores = max((scorer.score(ref, summary) for ref in references), key=lambda s: s["rougeL"].fmeasure)
        for metric in best:
            best[metric].append(scores[metric].fmeasure)
        records.append({"id": ident, "scores": {metric: scores[metric].fmeasure for metric in best},
                        "latency_ms": {"summary": ms}, "outputs": {"summary": {"abstract": summary}}})
    metrics = {metric: float(np.mean(values)) for metric, values in best.items()}
    return BenchmarkResult("tweetsumm", name, len(cases), metrics, latency_summary(latencies), cases=records)


def run(path: Path, log: Callable[[str], None]) -> BenchmarkResult:
    cases = load(path)
    log(f"tweetsumm: {len(cases)} dialogues from {path}")
    result = _score("copilot", cases, abstract)
    result.baseline = _score("lead", cases, lead)
    return result
