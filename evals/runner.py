"""Runs a suite through the engines and scores every case.

The engines are reached through a ``Target``: in the same process (the composition root wires one over
the engines and a knowledge base) or a running server over HTTP (``evals.remote.HttpTarget``). The runner
only asks a target for what a console or a content owner could ask the API, so both score the same way.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from copilot.channels import CHANNELS, plain_text, sms_length
from copilot.conversation import Thread, retrieval_query
from copilot.errors import CopilotError, Forbidden, LLMError, NotAuthenticated, ServiceUnavailable
from copilot.nextactions import NextActions
from copilot.ports import ChatModel
from copilot.suggest import SuggestionSet, is_verified
from copilot.summarize import Summary
from copilot.voice import BrandVoice, VoiceChecker
from evals import metrics as m
from evals.judge import judge_reply
from evals.runs import check_threshold_names, finish, new_run, versions
from evals.suite import Case, Suite

SMS_MAX_SEGMENTS = 3


class Target(Protocol):
    """What the runner needs of the engines; an in-process wiring or a server over HTTP."""

    name: str

    def describe(self, tenant: str) -> dict[str, Any]:
        """Versions to record: knowledge_version, embedding_model, model (the LLM, when configured)."""
        ...

    def thread(self, tenant: str, thread_id: str) -> Thread: ...

    def suggest(self, tenant: str, thread: Thread, engine: str) -> SuggestionSet: ...

    def summarize(self, tenant: str, thread: Thread, style: str, engine: str) -> Summary: ...

    def next_actions(self, tenant: str, thread: Thread, done_actions: list[str]) -> NextActions: ...

    def search(self, tenant: str, query: str, k: int) -> list[str]:
        """Document ids of the top k passages, best first."""
        ...

    def voice(self, tenant: str) -> BrandVoice | None: ...


@dataclass(frozen=True)
class CaseProgress:
    done: int
    total: int
    case_id: str


def _timed(call: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    value = call()
    return value, (time.perf_counter() - started) * 1000


def channel_fits(messages: list[str], channel: str) -> bool:
    rules = CHANNELS.get(channel)
    if rules is None:
        return True
    for text in messages:
        if rules.max_chars is not None and len(text) > rules.max_chars:
            return False
        if channel == "sms" and sms_length(text).segments > SMS_MAX_SEGMENTS:
            return False
        if not rules.markdown and plain_text(text)[1]:  # emphasis, links, headings or code marks left in
            return False
    return True


def _boilerplate(voice: BrandVoice | None, thread: Thread) -> list[str]:
    if voice is None:
        return []
    checker = VoiceChecker(voice)
    channel = thread.channel.value
    return [checker.greeting(channel, thread.customer.name), checker.sign_off(channel),
            voice.greeting_without_name]


def score_reply(case: Case, thread: Thread, result: SuggestionSet, voice: BrandVoice | None) -> dict[str, Any]:
    e = case.expect
    scores: dict[str, float | None] = {}
    offered = [s for s in result.suggestions if s.source != "clarify"]
    top = offered[0] if offered else None
    scores["answer_decision"] = float(bool(top) == e.answerable)
    if e.answerable and (e.documents or e.passage):
        cited = top.citations if top else []
        wanted = set(e.documents)
        ids = {c.document_id for c in cited} | ({top.macro_id} if top and top.macro_id else set())
        scores["citation_hit"] = float(bool(wanted & ids)) if wanted else None
        if cited:
            precise = [(not wanted or c.document_id in wanted or (top is not None and top.macro_id in wanted))
                       and (e.passage is None or m.holds_passage(c.passage, e.passage)) for c in cited]
            scores["citation_precision"] = sum(precise) / len(precise)
    if top is not None:
        scores["groundedness"] = m.groundedness(top.text, [c.passage for c in top.citations],
                                                _boilerplate(voice, thread)) if top.citations else 0.0
        if e.must_contain:
            scores["must_contain"] = float(all(m.contains(top.text, f) for f in e.must_contain))
        if e.must_not_contain:
            scores["must_not_contain"] = float(not any(m.contains(top.text, f) for f in e.must_not_contain))
        if e.reference:
            scores["reply_rougeL"] = m.rouge(e.reference, top.text)["rougeL"]
        if e.voice and voice is not None:
            violations = VoiceChecker(voice).check(top.text, thread.channel.value, verified=is_verified(thread))
            scores["voice_compliance"] = float(not violations)
        scores["channel_compliance"] = float(channel_fits(top.messages, thread.channel.value))
    elif e.must_not_contain:
        scores["must_not_contain"] = 1.0  # nothing said, nothing forbidden said
    return scores


def score_summary(case: Case, summary: Summary) -> dict[str, float | None]:
    e = case.expect
    scores: dict[str, float | None] = {}
    if e.summaries:
        best = m.best_rouge(e.summaries, summary.abstract)
        scores.update(summary_rouge1=best["rouge1"], summary_rouge2=best["rouge2"], summary_rougeL=best["rougeL"])
    if e.facts:
        carried = " ".join([summary.abstract, *(f.value for f in summary.facts)])
        scores["summary_fact_recall"] = sum(m.contains(carried, f) for f in e.facts) / len(e.facts)
    return scores


def score_next_actions(case: Case, result: NextActions) -> dict[str, float | None]:
    expected = case.expect.next_action
    wanted = {expected} if isinstance(expected, str) else set(expected or [])
    hits = [bool(wanted & {a.action, a.step_id}) for a in result.actions]
    return {"next_action_top1": float(any(hits[:1])), "next_action_top3": float(any(hits[:3]))}


def run_case(case: Case, tenant: str, target: Target, *, engine: str, k: int,
             voice: BrandVoice | None, judge: ChatModel | None = None) -> dict[str, Any]:
    e = case.expect
    record: dict[str, Any] = {"id": case.id, "tags": case.tags, "note": case.note, "expect":
                              e.model_dump(mode="json", exclude_defaults=True),
                              "scores": {}, "latency_ms": {}, "outputs": {}, "intent": None, "error": None}
    try:
        thread = case.thread if case.thread is not None else target.thread(tenant, case.thread_id or "")
        record["channel"] = thread.channel.value
        record["thread"] = {"customer": thread.customer.model_dump(mode="json", exclude_none=True),
                            "messages": [msg.model_dump(mode="json", include={"role", "text", "ts"})
                                         for msg in thread.messages]}
        outputs = record["outputs"]
        if case.wants_reply or e.intent:
            result, record["latency_ms"]["suggest"] = _timed(lambda: target.suggest(tenant, thread, engine))
            outputs.update(answered=result.answered, engine=result.engine, fallback_from=result.fallback_from,
                           suggestions=[s.model_dump(mode="json", include={"text", "source", "confidence",
                                                                            "macro_id", "citations"})
                                        for s in result.suggestions])
            if case.wants_reply:
                record["scores"].update(score_reply(case, thread, result, voice))
                top = next((s for s in result.suggestions if s.source != "clarify"), None)
                if judge is not None and top is not None:
                    verdict = judge_reply(judge, result.query, top.text, [c.passage for c in top.citations])
                    record["judge"] = {k: v for k, v in verdict.items() if not k.startswith("judge_")}
                    record["scores"].update({k: v for k, v in verdict.items() if k.startswith("judge_")})
            if e.intent:
                record["intent"] = {"expected": e.intent, "predicted": result.intent}
                record["scores"]["intent_accuracy"] = float(result.intent == e.intent)
        if e.documents:
            query = retrieval_query(thread).text
            found = target.search(tenant, query, k)
            outputs["search"] = found
            rank = next((i for i, doc in enumerate(found[:k], start=1) if doc in set(e.documents)), None)
            record["scores"].update(retrieval_hit_at_k=float(rank is not None),
                                    retrieval_mrr=1.0 / rank if rank else 0.0)
        if e.next_action:
            actions, record["latency_ms"]["next_actions"] = _timed(
                lambda: target.next_actions(tenant, thread, e.done_actions))
            outputs["next_actions"] = [a.model_dump(mode="json", include={"action", "step_id", "title"})
                                       for a in actions.actions]
            record["scores"].update(score_next_actions(case, actions))
        if e.summaries or e.facts:
            summary, record["latency_ms"]["summary"] = _timed(
                lambda: target.summarize(tenant, thread, e.summary_style, engine))
            outputs["summary"] = {"abstract": summary.abstract, "status": summary.status,
                                  "facts": [f.model_dump(mode="json", include={"kind", "value"})
                                            for f in summary.facts]}
            record["scores"].update(score_summary(case, summary))
    except (NotAuthenticated, Forbidden):
        raise  # the whole run would fail the same way: stop at once
    except ServiceUnavailable as exc:
        if not isinstance(exc, LLMError):
            raise
        record["error"] = f"{exc.type}: {exc.message}"
    except CopilotError as exc:
        record["error"] = f"{exc.type}: {exc.message}"
    return record


def run_suite(suite: Suite, target: Target, *, engine: str | None = None,
              thresholds: Mapping[str, float] | None = None, baseline: Mapping[str, Any] | None = None,
              progress: Callable[[CaseProgress], None] | None = None,
              judge: ChatModel | None = None) -> dict[str, Any]:
    """Every case through the target; the finished run (metrics, gates, comparison) as a dict. With a
    ``judge`` (a chat model), every offered reply is also graded for faithfulness and helpfulness."""
    gate = {**suite.meta.thresholds, **(thresholds or {})}
    check_threshold_names(gate)
    engine = engine or suite.meta.engine
    tenant = suite.meta.tenant
    started = time.perf_counter()
    described = target.describe(tenant)
    voice = target.voice(tenant)
    # one untimed call of each kind first: models load and per-tenant engines build once per process, and
    # the latencies measure answers, not that start-up
    kinds = (lambda c: c.wants_reply or c.expect.intent, lambda c: c.expect.next_action,
             lambda c: c.expect.summaries or c.expect.facts)
    for first in {id(c): c for c in (next((c for c in suite.cases if kind(c)), None) for kind in kinds)
                  if c is not None}.values():
        run_case(first, first.tenant or tenant, target, engine=engine, k=suite.meta.k, voice=voice)
    records = []
    for n, case in enumerate(suite.cases, start=1):
        records.append(run_case(case, case.tenant or tenant, target, engine=engine, k=suite.meta.k, voice=voice,
                                judge=judge))
        if progress is not None:
            progress(CaseProgress(n, len(suite.cases), case.id))
    used: dict[str, int] = {}
    for record in records:
        if record["outputs"].get("engine"):
            used[record["outputs"]["engine"]] = used.get(record["outputs"]["engine"], 0) + 1
    run = new_run(
        "suite", suite.meta.name, target=target.name, engine=engine, engines_used=used,
        suite={"name": suite.meta.name, "tenant": tenant, "description": suite.meta.description,
               "path": suite.path, "sha256": suite.sha256, "cases": len(suite.cases), "k": suite.meta.k},
        versions=versions(**described, judge=judge.model if judge is not None else None), cases=records)
    run["duration_s"] = round(time.perf_counter() - started, 2)
    return finish(run, gate, baseline)
