"""TweetSumm summary benchmark: ROUGE-1/2/L F1 (stemmed, best of the references, averaged) of the abstract.

The Lead baseline (first customer message + last agent message, handles and links removed) runs beside it.
With an ``LLMSummarizer`` the llm engine's abstracts are scored too, as the engine serves them: where the
model's abstract is refused (it states a number, id or date the thread does not) or the endpoint fails, the
grounded abstract stands in, and the result counts both. An endpoint that fails on ``FAILURES_IN_A_ROW``
dialogues in a row stops the run with its ``LLMError``: a dead endpoint would only measure the grounded engine.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from rouge_score import rouge_scorer
from rouge_score.tokenizers import DefaultTokenizer

from copilot.conversation import Message, Role, Thread
from copilot.drafting import LLMSummarizer
from copilot.errors import InvalidInput, LLMError
from copilot.summarize import abstract, opening_and_reply
from evals.contract import BenchmarkResult, latency_summary

ENGINES = ("grounded", "llm", "both")
PROGRESS_EVERY = 10   # dialogues between two progress lines of the llm engine (each is a model call)
FAILURES_IN_A_ROW = 3  # endpoint failures on consecutive dialogues that stop the run

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


Abstract = tuple[str, dict[str, Any]]  # the text scored, and what else the case record's outputs say


def _plain(summarize: Callable[[Thread], str]) -> Callable[[Thread], Abstract]:
    return lambda thread: (summarize(thread), {})


class _LLMAbstracts:
    """The llm engine's abstract of each dialogue, the grounded one where the model's is refused or the
    endpoint fails; counts both, logs progress, and stops the run on an endpoint that keeps failing."""

    def __init__(self, summarizer: LLMSummarizer, total: int, log: Callable[[str], None]) -> None:
        self.summarizer = summarizer
        self.total = total
        self.log = log
        self.done = self.refused = self.failed = self.failed_in_a_row = 0

    def __call__(self, thread: Thread) -> Abstract:
        outcome: Abstract
        try:
            written = self.summarizer.abstract(thread)
        except LLMError as exc:
            self.failed_in_a_row += 1
            if self.failed_in_a_row >= FAILURES_IN_A_ROW:
                raise type(exc)(f"the llm engine failed on {self.failed_in_a_row} dialogues in a row, the last: "
                               f"{exc.message}", **exc.fields) from exc
            self.failed += 1
            outcome = self._grounded(thread, f"llm engine failed: {exc.message}")
        else:
            self.failed_in_a_row = 0
            if written.refused is not None:
                self.refused += 1
                outcome = self._grounded(thread, f"the model's abstract was refused: it {written.refused}")
            else:
                outcome = written.text, {"engine": "llm"}
        self.done += 1
        if self.done % PROGRESS_EVERY == 0 or self.done == self.total:
            self.log(f"tweetsumm llm: {self.done}/{self.total} dialogues, {self.refused + self.failed} fell back to "
                     f"the grounded abstract ({self.refused} refused, {self.failed} failed)")
        return outcome

    @staticmethod
    def _grounded(thread: Thread, note: str) -> Abstract:
        return abstract(thread), {"engine": "grounded", "note": note}

    def details(self) -> dict[str, Any]:
        return {"model": self.summarizer.chat.model, "llm_abstracts": self.done - self.refused - self.failed,
                "fallbacks": self.refused + self.failed, "refused": self.refused, "failed": self.failed}


def _score(name: str, cases: list[tuple[str, Thread, list[str]]], summarize: Callable[[Thread], Abstract]
           ) -> BenchmarkResult:
    # the tokenizer given: without one rouge-score logs through absl, which configures the root logger
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"],
                                      tokenizer=DefaultTokenizer(use_stemmer=True))
    best: dict[str, list[float]] = {"rouge1": [], "rouge2": [], "rougeL": []}
    latencies = []
    records = []
    for ident, thread, references in cases:
        started = time.perf_counter()
        summary, outputs = summarize(thread)
        ms = (time.perf_counter() - started) * 1000
        latencies.append(ms)
        scores = max((scorer.score(ref, summary) for ref in references), key=lambda s: s["rougeL"].fmeasure)
        for metric in best:
            best[metric].append(scores[metric].fmeasure)
        records.append({"id": ident, "scores": {metric: scores[metric].fmeasure for metric in best},
                        "latency_ms": {"summary": ms}, "outputs": {"summary": {"abstract": summary, **outputs}}})
    metrics = {metric: float(np.mean(values)) for metric, values in best.items()}
    return BenchmarkResult("tweetsumm", name, len(cases), metrics, latency_summary(latencies), cases=records)


def run(path: Path, log: Callable[[str], None], *, llm: LLMSummarizer | None = None,
        engines: str = "grounded") -> BenchmarkResult:
    """The grounded engine (system ``copilot``) and the Lead baseline; with ``llm``, the llm engine (system
    ``llm``) beside them (``both``) or in the grounded engine's place (``llm``).

    Raises:
        InvalidInput: the file is not TweetSumm, or ``engines`` asks for the llm engine without ``llm``.
        LLMError: the endpoint failed on ``FAILURES_IN_A_ROW`` dialogues in a row.
    """
    if engines not in ENGINES:
        raise InvalidInput(f"unknown engine {engines!r}; use {', '.join(ENGINES)}")
    if engines != "grounded" and llm is None:
        raise InvalidInput("the llm engine is not configured: set COPILOT_LLM_BASE_URL and COPILOT_LLM_MODEL")
    cases = load(path)
    log(f"tweetsumm: {len(cases)} dialogues from {path}")
    results = []
    if engines != "llm":
        results.append(_score("copilot", cases, _plain(abstract)))
    if llm is not None and engines != "grounded":
        log(f"tweetsumm llm: summarising with {llm.chat.model}, one model call per dialogue")
        written = _LLMAbstracts(llm, len(cases), log)
        scored = _score("llm", cases, written)
        scored.details = written.details()
        results.append(scored)
    result, *others = results
    result.baseline = _score("lead", cases, _plain(lead))
    result.others = others
    return result
