"""Eval runs wired in this process: the engines as a ``Target``, and a scratch workspace for suites that
bring their own knowledge (the suite's ``knowledge`` folder indexed into a temporary data directory)."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from api.wiring import Engines
from copilot.conversation import Thread
from copilot.errors import InvalidInput, NotFound
from copilot.nextactions import NextActions
from copilot.ports import ChatModel
from copilot.settings import Settings
from copilot.suggest import KNOWLEDGE_KINDS, SuggestionSet
from copilot.summarize import Summary
from copilot.voice import BrandVoice
from evals.runner import CaseProgress, run_suite
from evals.suite import Suite
from knowledge.base import KnowledgeBase
from knowledge.ingest import Progress as IngestProgress


class EngineTarget:
    """The engines of this process as an eval target; threads by id come from ``threads`` when given
    (the service store), else a case must carry its thread."""

    name = "in-process"

    def __init__(self, engines: Engines, threads: Callable[[str, str], Thread] | None = None) -> None:
        self.engines = engines
        self._threads = threads

    def describe(self, tenant: str) -> dict[str, Any]:
        llm = self.engines.llm
        return {"knowledge_version": self.engines.kb.registry.knowledge_version(tenant),
                "embedding_model": self.engines.kb.embedder.name,
                "model": llm.chat.model if llm is not None else None}

    def thread(self, tenant: str, thread_id: str) -> Thread:
        if self._threads is None:
            raise NotFound(f"case asks for kept thread {thread_id!r}, but an in-process run has no kept threads: "
                           "put the thread in the case, or run against a server with --url")
        return self._threads(tenant, thread_id)

    def suggest(self, tenant: str, thread: Thread, engine: str) -> SuggestionSet:
        result = self.engines.suggest(tenant, thread, engine=engine)
        if result.intent is None and result.query:
            result.intent = self.engines.intent_of(tenant, result.query)
        return result

    def summarize(self, tenant: str, thread: Thread, style: str, engine: str) -> Summary:
        return self.engines.summarize(tenant, thread, style=style, engine=engine)

    def next_actions(self, tenant: str, thread: Thread, done_actions: list[str]) -> NextActions:
        return self.engines.next_actions(tenant, thread, done_actions=done_actions)

    def search(self, tenant: str, query: str, k: int) -> list[str]:
        return [p.document_id for p in self.engines.kb.search(tenant, query, k, kinds=KNOWLEDGE_KINDS)]

    def voice(self, tenant: str) -> BrandVoice | None:
        return self.engines.kb.profile(tenant).voice


@contextmanager
def suite_workspace(suite: Suite, settings: Settings,
                    progress: Callable[[IngestProgress], None] | None = None) -> Iterator[Settings]:
    """Settings for the run: with a ``knowledge`` folder, a temporary data directory holding just that
    knowledge for the suite's tenant (so a run never touches the service's data); else ``settings``."""
    folder = suite.knowledge_dir()
    if folder is None:
        yield settings
        return
    with tempfile.TemporaryDirectory(prefix="copilot-eval-") as scratch:
        scratch_settings = settings.model_copy(update={"data_dir": Path(scratch), "database_url": None,
                                                       "chroma_url": None})
        kb = KnowledgeBase(scratch_settings)
        kb.ensure_tenant(suite.meta.tenant)
        report = kb.ingest(suite.meta.tenant, [folder], by="eval", progress=progress)
        if report.failed:
            failed = "; ".join(f"{f['path']}: {f['error']}" for f in report.failed[:3])
            raise InvalidInput(f"the suite's knowledge did not ingest: {failed}")
        yield scratch_settings


def run_in_process(suite: Suite, settings: Settings, *, engine: str | None = None,
                   make_kb: Callable[[Settings], KnowledgeBase] = KnowledgeBase,
                   thresholds: dict[str, float] | None = None, baseline: dict[str, Any] | None = None,
                   progress: Callable[[CaseProgress], None] | None = None,
                   ingest_progress: Callable[[IngestProgress], None] | None = None,
                   judge: ChatModel | None = None) -> dict[str, Any]:
    """A suite run in this process: its own knowledge when it names one, else the configured data."""
    with suite_workspace(suite, settings, ingest_progress) as run_settings:
        kb = KnowledgeBase(run_settings) if run_settings is not settings else make_kb(settings)
        if suite.meta.tenant not in kb.registry.tenants():
            raise InvalidInput(f"unknown tenant {suite.meta.tenant!r} in {run_settings.data_dir}: ingest its "
                               "knowledge first, or give the suite a 'knowledge' folder")
        return run_suite(suite, EngineTarget(Engines(kb, run_settings)), engine=engine, thresholds=thresholds,
                         baseline=baseline, progress=progress, judge=judge)
