"""The composition root's wiring: the engines over a knowledge base, thread files, the sample brand."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from copilot.conversation import Thread
from copilot.drafting import LLMEngine
from copilot.errors import InvalidInput
from copilot.llm import OpenAIChatModel
from copilot.settings import Settings
from copilot.suggest import GroundedEngine, SuggestionSet
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
