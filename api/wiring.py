"""The composition root's wiring: the engines over a knowledge base, thread files, the sample brand."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

from copilot.conversation import Thread
from copilot.drafting import LLMEngine, LLMSummarizer
from copilot.errors import InvalidInput
from copilot.intents import IntentClassifier
from copilot.llm import OpenAIChatModel
from copilot.nextactions import NextActionEngine, NextActions
from copilot.settings import Settings
from copilot.suggest import GroundedEngine, SuggestionSet, TenantProfile
from copilot.summarize import Summary, summarize
from knowledge.base import KnowledgeBase

SAMPLE_BRAND = "brightwave"


def sample_brand_dir() -> Path:
    """The sample brand's files, shipped in the repository beside the packages."""
    return Path(__file__).resolve().parent.parent / "samples" / SAMPLE_BRAND


class Engines:
    """The engines of one process, wired to a knowledge base: grounded always, llm when configured."""

    def __init__(self, kb: KnowledgeBase, settings: Settings) -> None:
        self.kb = kb
        self.grounded = GroundedEngine(kb.retriever)
        chat = OpenAIChatModel.from_settings(settings)
        self.llm = LLMEngine(chat, kb.retriever, self.grounded) if chat is not None else None
        self.llm_summaries = LLMSummarizer(chat) if chat is not None else None
        self._intents: dict[str, tuple[int, IntentClassifier | None]] = {}
        self._lock = threading.Lock()

    def intents(self, tenant: str, profile: TenantProfile) -> IntentClassifier | None:
        """The tenant's intent classifier, trained on its labelled examples once per version of them."""
        key = hash(tuple(profile.intent_examples))
        with self._lock:
            cached = self._intents.get(tenant)
            if cached and cached[0] == key:
                return cached[1]
            classifier = None
            if len({intent for _, intent in profile.intent_examples}) >= 2:
                texts, labels = zip(*profile.intent_examples, strict=True)
                classifier = IntentClassifier(self.kb.embedder).fit(list(texts), list(labels))
            self._intents[tenant] = (key, classifier)
            return classifier

    def engine(self, name: str | None) -> GroundedEngine | LLMEngine:
        """``grounded``, ``llm``, or None for the default (llm when configured, else grounded)."""
        if name not in (None, "grounded", "llm"):
            raise InvalidInput(f"unknown engine {name!r}; use grounded or llm")
        if name == "llm" and self.llm is None:
            raise InvalidInput("the llm engine is not configured: set COPILOT_LLM_BASE_URL and COPILOT_LLM_MODEL")
        if name == "grounded" or self.llm is None:
            return self.grounded
        return self.llm

    def suggest(self, tenant: str, thread: Thread, *, engine: str | None = None, n: int = 3) -> SuggestionSet:
        self.kb.registry.require_tenant(tenant)
        return self.engine(engine).suggest(tenant, thread, self.kb.profile(tenant), n)


    def summarize(self, tenant: str, thread: Thread, *, style: str = "after_contact",
                  engine: str | None = None) -> Summary:
        self.kb.registry.require_tenant(tenant)
        use_llm = isinstance(self.engine(engine), LLMEngine)
        profile = self.kb.profile(tenant)
        summary = summarize(thread, style, intents=self.intents(tenant, profile))
        if use_llm and self.llm_summaries is not None:
            return self.llm_summaries.summarize(thread, summary)
        return summary

    def next_actions(self, tenant: str, thread: Thread, *, done_actions: Sequence[str] = (),
                     n: int = 3) -> NextActions:
        self.kb.registry.require_tenant(tenant)
        profile = self.kb.profile(tenant)
        engine = NextActionEngine(profile.playbooks, self.kb.embedder, intents=self.intents(tenant, profile))
        return engine.recommend(thread, done_actions=done_actions, n=n)


def read_thread(path: Path) -> Thread:
    """A thread file as consoles send it; a clear ``InvalidInput`` when it is not one."""
    try:
        return Thread.model_validate_json(path.read_bytes())
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror or exc}") from exc
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}"
                             for e in exc.errors()[:3])
        raise InvalidInput(f"{path} is not a thread: {problems}") from exc
