"""The composition root's wiring: the engines over a knowledge base, thread files, the sample brand."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from copilot.conversation import Thread
from copilot.drafting import LLMEngine, LLMSummarizer
from copilot.errors import InvalidInput, describe_validation_error
from copilot.history import ActionHistory
from copilot.intents import IntentClassifier
from copilot.nextactions import NextActionEngine, NextActions
from copilot.ports import ChatResult
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

    def __init__(self, kb: KnowledgeBase, settings: Settings, *,
                 on_usage: Callable[[ChatResult], None] | None = None) -> None:
        self.kb = kb
        self.grounded = GroundedEngine(kb.retriever)
        chat = None
        if settings.llm_base_url and settings.llm_model:
            # the openai SDK takes 1-2 s to import: only a process with an LLM pays for it
            from copilot.llm import OpenAIChatModel

            chat = OpenAIChatModel.from_settings(settings, on_usage=on_usage)
        self.llm = LLMEngine(chat, kb.retriever, self.grounded) if chat is not None else None
        self.llm_summaries = LLMSummarizer(chat) if chat is not None else None
        self._intents: dict[str, tuple[int, IntentClassifier | None]] = {}
        self._next_actions: dict[str, tuple[tuple[int, int, str], NextActionEngine]] = {}
        self._histories: dict[str, tuple[TenantProfile, str, ActionHistory | None]] = {}
        self._lock = threading.Lock()  # guards _tenant_locks only
        self._tenant_locks: dict[str, threading.Lock] = {}

    def _tenant(self, tenant: str, what: str) -> threading.Lock:
        """The lock of one thing built from one tenant's knowledge: while a tenant's history is embedded, its
        suggestions (which need its intents) and every other tenant's requests go on."""
        with self._lock:
            return self._tenant_locks.setdefault(f"{tenant}\0{what}", threading.Lock())

    def warm(self, tenant: str) -> None:
        """Build what the tenant's requests need before the first one asks: the lexical index, the intent
        classifier, the learned history and the next-action engine."""
        self.kb.retriever.index(tenant)
        self._next_action_engine(tenant)

    def intents(self, tenant: str, profile: TenantProfile) -> IntentClassifier | None:
        """The tenant's intent classifier, trained on its labelled examples once per version of them."""
        key = hash(tuple(profile.intent_examples))
        with self._tenant(tenant, "intents"):
            cached = self._intents.get(tenant)
            if cached and cached[0] == key:
                return cached[1]
            classifier = None
            if len({intent for _, intent in profile.intent_examples}) >= 2:
                texts, labels = zip(*profile.intent_examples, strict=True)
                classifier = IntentClassifier(self.kb.embedder).fit(list(texts), list(labels))
            self._intents[tenant] = (key, classifier)
            return classifier

    def history(self, tenant: str, profile: TenantProfile) -> tuple[str, ActionHistory | None]:
        """The tenant's learned next actions and a fingerprint of the history they learned from, built once per
        version of its labelled threads: the profile is read once per knowledge version, and a new version whose
        threads are the same (an article changed) keeps the history without embedding it again."""
        with self._tenant(tenant, "history"):
            cached = self._histories.get(tenant)
            if cached is not None and cached[0] is profile:
                return cached[1], cached[2]
            digest = hashlib.sha256()
            for thread in profile.action_history:
                digest.update(thread.model_dump_json().encode())
            fingerprint = digest.hexdigest()
            if cached is not None and cached[1] == fingerprint:
                history = cached[2]
            elif profile.action_history and any(t.actions for t in profile.action_history):
                history = ActionHistory.from_threads(profile.action_history, self.kb.embedder)
            else:
                history = None
            self._histories[tenant] = (profile, fingerprint, history)
            return fingerprint, history

    def intent_of(self, tenant: str, text: str) -> str | None:
        """The tenant's intent for one customer turn, or None without a classifier or a turn."""
        if not text.strip():
            return None
        classifier = self.intents(tenant, self.kb.profile(tenant))
        return classifier.predict([text])[0].intent if classifier is not None else None

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
        return self.engine(engine).suggest(tenant, thread, self.kb.profile(tenant), n)

    def stream(self, tenant: str, thread: Thread, *, engine: str | None = None) -> Iterator[dict[str, Any]]:
        """The llm engine's draft as it is written (``LLMEngine.stream``); only the llm engine streams."""
        chosen = self.engine(engine or "llm")
        if not isinstance(chosen, LLMEngine):
            raise InvalidInput("streaming needs the llm engine")
        return chosen.stream(tenant, thread, self.kb.profile(tenant))

    def summarize(self, tenant: str, thread: Thread, *, style: str = "after_contact",
                  engine: str | None = None) -> Summary:
        use_llm = isinstance(self.engine(engine), LLMEngine)
        profile = self.kb.profile(tenant)
        summary = summarize(thread, style, intents=self.intents(tenant, profile))
        if use_llm and self.llm_summaries is not None:
            return self.llm_summaries.summarize(thread, summary)
        return summary

    def next_actions(self, tenant: str, thread: Thread, *, done_actions: Sequence[str] = (),
                     n: int = 3) -> NextActions:
        return self._next_action_engine(tenant).recommend(thread, done_actions=done_actions, n=n)

    def _next_action_engine(self, tenant: str) -> NextActionEngine:
        profile = self.kb.profile(tenant)
        intents = self.intents(tenant, profile)
        fingerprint, history = self.history(tenant, profile)
        # the engine embeds its playbooks when built: once per version of them, not per request
        key = (hash(tuple(p.model_dump_json() for p in profile.playbooks)), hash(tuple(profile.intent_examples)),
               fingerprint)
        with self._tenant(tenant, "next_actions"):
            cached = self._next_actions.get(tenant)
            if cached is None or cached[0] != key:
                cached = (key, NextActionEngine(profile.playbooks, self.kb.embedder, intents=intents,
                                                history=history))
                self._next_actions[tenant] = cached
        return cached[1]


def read_thread(path: Path) -> Thread:
    """A thread file as consoles send it; a clear ``InvalidInput`` when it is not one."""
    try:
        return Thread.model_validate_json(path.read_bytes())
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror or exc}") from exc
    except ValidationError as exc:
        raise InvalidInput(f"{path} is not a thread: {describe_validation_error(exc)}") from exc


def thread_tenant(thread: Thread, tenant: str | None, *, how_to_name: str) -> str:
    """The tenant a request is for: the one named, else the thread's own; they must not disagree."""
    chosen = tenant or thread.tenant
    if not chosen:
        raise InvalidInput(f"no tenant: {how_to_name}")
    if tenant and thread.tenant and tenant != thread.tenant:
        raise InvalidInput(f"the thread belongs to tenant {thread.tenant!r}, not {tenant!r}")
    return chosen
