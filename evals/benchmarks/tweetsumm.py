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


def load(path: Path) -> list[tuple[Thread, list[str]]]:
    cases = []
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
                    cases.append((thread_from_text(row["text"]), references))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise InvalidInput(f"{path} is not in TweetSumm format (line {number}): {exc}") from exc
    if not cases:
        raise InvalidInput(f"{path} has no dialogues with reference summaries")
    return cases


def lead(thread: Thread) -> str:
    customer, agent = opening_and_reply(thread)
    return f"{customer} {agent}".strip()


def _score(name: str, cases: list[tuple[Thread, list[str]]], summarize: Callable[[Thread], str]) -> BenchmarkResult:
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    best: dict[str, list[float]] = {"rouge1": [], "rouge2": [], "rougeL": []}
    latencies = []
    for thread, references in cases:
        started = time.perf_counter()
        summary = summarize(thread)
        latencies.append((time.perf_counter() - started) * 1000)
        scores = max((scorer.score(ref, summary) for ref in references), key=lambda s: s["rougeL"].fmeasure)
        for metric in best:
            best[metric].append(scores[metric].fmeasure)
    metrics = {metric: float(np.mean(values)) for metric, values in best.items()}
    return BenchmarkResult("tweetsumm", name, len(cases), metrics, latency_summary(latencies))


def run(path: Path, log: Callable[[str], None]) -> BenchmarkResult:
    cases = load(path)
    log(f"tweetsumm: {len(cases)} dialogues from {path}")
    result = _score("copilot", cases, abstract)
    result.baseline = _score("lead", cases, lead)
    return result
